"""fork-time memory: COW, zero page, shared anonymous memory, DONTFORK, WIPEONFORK, mlock, fail-nth.

Each test drives forklab.kernel.fork.copy_mm and forklab.mm.uaccess directly on hand-built
tasks (see mm_fixture) and checks forklab.mm.debug.check_mm_invariants after every step.
"""

from __future__ import annotations

import errno

import pytest
from mm_fixture import PAGE, assert_consistent, fake_force_sig_fault, make_task, mmap_anon

from forklab.errors import KernelError, Segfault
from forklab.include.linux.mm_types import _PAGE_ACCESSED, _PAGE_RW, _PAGE_SPECIAL, MM_ANONPAGES, MM_SHMEMPAGES, VM
from forklab.include.linux.sched import Task
from forklab.kernel.fork import copy_mm, mmput
from forklab.mm.debug import mem_snapshot, mm_snapshot
from forklab.mm.madvise import do_madvise
from forklab.mm.memory import get_pte, pmd_write_protected, pte_pfn
from forklab.mm.mmap import find_vma
from forklab.mm.page_alloc import OVERCOMMIT_NEVER, ZERO_PFN
from forklab.mm.uaccess import copy_from_user, copy_to_user, user_load, user_store
from forklab.state import KernelState
from forklab.uapi import (
    CLONE_VM,
    MADV_DONTFORK,
    MADV_WIPEONFORK,
    MAP_LOCKED,
    PROT_READ,
    SIGSEGV,
)


def fork(k: KernelState, parent: Task, pid: int = 2, flags: int = 0) -> Task:
    child = Task(pid=pid, tgid=pid)
    from forklab.include.linux.sched import SighandStruct, SignalStruct

    child.signal = SignalStruct()
    child.sighand = SighandStruct()
    child.group_leader = child
    child.signal.thread_head.append(child)
    child.min_flt = 99
    k.current = parent
    copy_mm(k, flags, child, parent)
    return child


@pytest.fixture(params=["copy", "shared"])  # Linux's fork, and the on-demand fork (tests/test_mm_shared_tables.py)
def k(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> KernelState:
    monkeypatch.setattr("forklab.mm.uaccess.force_sig_fault", fake_force_sig_fault)
    return KernelState(fork_page_tables=request.param)


def test_cow_after_fork_first_writer_copies_second_reuses(k: KernelState) -> None:
    """5.6 do_wp_page: reuse iff mapcount <= 1 (mm/memory.c:2804-2817); copy otherwise (2496-2641)."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 4)
    for i in range(4):
        user_store(k, p, addr + i * PAGE, bytes([i + 1]) * 8)
    assert p.min_flt == 4
    assert p.mm is not None
    pfns = [pte_pfn(get_pte(p.mm, addr + i * PAGE)) for i in range(4)]
    c = fork(k, p)
    assert c.mm is not None and c.mm is not p.mm and c.min_flt == 0
    assert_consistent(k, [p, c])
    for i in range(4):
        ppte, cpte = get_pte(p.mm, addr + i * PAGE), get_pte(c.mm, addr + i * PAGE)
        assert pte_pfn(cpte) == pfns[i]
        page = k.mem.page(pfns[i])
        if k.fork_page_tables == "copy":
            assert not ppte & _PAGE_RW and not cpte & _PAGE_RW
            assert not cpte & _PAGE_ACCESSED and ppte & _PAGE_ACCESSED
            assert (page._refcount, page._mapcount, page.mapcount) == (2, 1, 2)
        else:  # one table, held by both, its PMD entries write-protected; the pages are mapped by one table
            assert cpte == ppte and ppte & _PAGE_RW
            assert pmd_write_protected(k, p.mm, addr) and pmd_write_protected(k, c.mm, addr)
            assert (page._refcount, page.mapcount) == (1, 1)
    assert c.mm.rss_stat[MM_ANONPAGES] == 4
    used = k.mem.nr_used()
    # child writes first: gets a copy
    user_store(k, c, addr, b"child")
    new = pte_pfn(get_pte(c.mm, addr))
    assert new != pfns[0]
    assert k.mem.nr_used() == used + 1
    assert user_load(k, c, addr, 8) == b"child" + bytes([1]) * 3
    assert (k.mem.page(pfns[0])._refcount, k.mem.page(pfns[0]).mapcount) == (1, 1)
    assert c.min_flt == 1
    # parent writes second: mapcount is 1 -> reuse in place, no allocation
    user_store(k, p, addr, b"parent")
    assert pte_pfn(get_pte(p.mm, addr)) == pfns[0]
    assert get_pte(p.mm, addr) & _PAGE_RW
    assert k.mem.nr_used() == used + 1
    assert user_load(k, p, addr, 8) == b"parent" + bytes([1]) * 2
    assert user_load(k, c, addr, 8) == b"child" + bytes([1]) * 3
    # a read of a still-shared page takes no fault and shares the frame
    assert user_load(k, c, addr + PAGE, 1) == bytes([2])
    assert pte_pfn(get_pte(c.mm, addr + PAGE)) == pfns[1]
    assert_consistent(k, [p, c])
    mmput(k, c.mm)
    c.mm = None
    assert k.mem.page(pfns[1])._refcount == 1
    assert k.mem.nr_used() == 4
    assert_consistent(k, [p])


def test_zero_page_read_then_write(k: KernelState) -> None:
    """do_anonymous_page maps the zero page on read, a zeroed page on write (mm/memory.c:3171-3200)."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 2)
    assert p.mm is not None
    assert user_load(k, p, addr, 16) == bytes(16)
    pte = get_pte(p.mm, addr)
    assert pte_pfn(pte) == ZERO_PFN and pte & _PAGE_SPECIAL and not pte & _PAGE_RW
    assert p.mm.rss_stat[MM_ANONPAGES] == 0 and k.mem.nr_used() == 0
    assert k.mem.page(ZERO_PFN)._refcount == 1
    assert find_vma(p.mm, addr).anon_vma is None  # type: ignore[union-attr]
    user_store(k, p, addr + 8, b"\x01")
    pte = get_pte(p.mm, addr)
    assert pte_pfn(pte) != ZERO_PFN and pte & _PAGE_RW
    assert user_load(k, p, addr, 10) == bytes(8) + b"\x01\x00"
    assert p.mm.rss_stat[MM_ANONPAGES] == 1 and p.min_flt == 2
    assert_consistent(k, [p])


def test_untouched_and_zero_page_vmas_are_not_copied(k: KernelState) -> None:
    """copy_page_range skips vmas without anon_vma (mm/memory.c:972-974): the child refaults."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 2)
    user_load(k, p, addr, 1)
    c = fork(k, p)
    assert c.mm is not None and c.mm.pgd == {} and c.mm.pgtables_bytes == 0
    assert user_load(k, c, addr, 4) == bytes(4)
    assert_consistent(k, [p, c])


def test_shared_anonymous_visible_across_fork(k: KernelState) -> None:
    """MAP_SHARED|MAP_ANONYMOUS is shmem: one page cache page, one ref per PTE + the cache's."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 2, shared=True)
    user_store(k, p, addr, b"hello")
    assert p.mm is not None
    assert p.mm.rss_stat[MM_SHMEMPAGES] == 1
    pfn = pte_pfn(get_pte(p.mm, addr))
    assert k.mem.page(pfn)._refcount == 2
    c = fork(k, p)
    assert c.mm is not None and c.mm.pgd == {}  # shared vma has no anon_vma: not copied
    assert user_load(k, c, addr, 5) == b"hello"
    assert pte_pfn(get_pte(c.mm, addr)) == pfn
    assert (k.mem.page(pfn)._refcount, k.mem.page(pfn).mapcount) == (3, 2)
    assert get_pte(c.mm, addr) & _PAGE_RW  # shared writable: PAGE_SHARED has RW
    user_store(k, c, addr, b"HE")
    assert user_load(k, p, addr, 5) == b"HEllo"
    user_store(k, c, addr + PAGE, b"x")
    assert user_load(k, p, addr + PAGE, 1) == b"x"
    assert_consistent(k, [p, c])
    vma = find_vma(c.mm, addr)
    assert vma is not None and vma.vm_file is not None and vma.vm_file.f_count == 2
    shm_file = vma.vm_file
    mmput(k, c.mm)
    c.mm = None
    assert shm_file.f_count == 1
    assert k.mem.page(pfn)._refcount == 2
    assert_consistent(k, [p])
    mmput(k, p.mm)
    assert k.mem.nr_used() == 0 and k.mem.vm_committed_as == 0


def test_dontfork_hole_and_stats(k: KernelState) -> None:
    """VM_DONTCOPY vmas are skipped and their size leaves total_vm (kernel/fork.c:524-527)."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 3)
    for i in range(3):
        user_store(k, p, addr + i * PAGE, b"z")
    do_madvise(k, p, addr + PAGE, PAGE, MADV_DONTFORK)
    assert p.mm is not None and len(p.mm.mmap) == 3
    c = fork(k, p)
    assert c.mm is not None
    assert [(v.vm_start - addr) // PAGE for v in c.mm.mmap] == [0, 2]
    assert c.mm.total_vm == 2 and c.mm.data_vm == 2 and p.mm.total_vm == 3
    assert c.mm.map_count == 2
    with pytest.raises(Segfault):
        user_load(k, c, addr + PAGE, 1)
    assert c.pending.signal & (1 << (SIGSEGV - 1))
    assert copy_from_user(k, c, addr + PAGE, 1) is None
    assert user_load(k, c, addr + 2 * PAGE, 1) == b"z"
    assert_consistent(k, [p, c])


def test_wipeonfork_child_sees_zeros(k: KernelState) -> None:
    """VM_WIPEONFORK: fresh anon_vma, no PTE copy (kernel/fork.c:554-557, 603-604)."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 2)
    user_store(k, p, addr, b"secret")
    do_madvise(k, p, addr, 2 * PAGE, MADV_WIPEONFORK)
    c = fork(k, p)
    assert c.mm is not None and p.mm is not None
    cv, pv = c.mm.mmap[0], p.mm.mmap[0]
    assert cv.vm_flags & VM.VM_WIPEONFORK
    assert cv.anon_vma is not None and cv.anon_vma is not pv.anon_vma
    assert all(av is not pv.anon_vma for av in cv.anon_vma_chain)
    assert c.mm.pgd == {} and c.mm.rss_stat[MM_ANONPAGES] == 0
    assert user_load(k, c, addr, 6) == bytes(6)
    assert user_load(k, p, addr, 6) == b"secret"
    assert_consistent(k, [p, c])


def test_mlock_not_inherited(k: KernelState) -> None:
    """dup_mmap clears VM_LOCKED|VM_LOCKONFAULT; mm_init zeroes locked_vm (kernel/fork.c:561, 1017)."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 2, flags=MAP_LOCKED)
    assert p.mm is not None
    assert p.mm.mmap[0].vm_flags & VM.VM_LOCKED and p.mm.locked_vm == 2
    assert p.mm.rss_stat[MM_ANONPAGES] == 2  # MAP_LOCKED populates (write faults on private writable)
    c = fork(k, p)
    assert c.mm is not None
    assert not c.mm.mmap[0].vm_flags & VM.VM_LOCKED and c.mm.locked_vm == 0
    assert user_load(k, c, addr, 1) == b"\0"
    assert_consistent(k, [p, c])


def test_clone_vm_shares_mm(k: KernelState) -> None:
    """CLONE_VM: mmget and share (kernel/fork.c:1409-1413)."""
    p = make_task(k, 1)
    mmap_anon(k, p, 1)
    c = fork(k, p, flags=CLONE_VM)
    assert c.mm is p.mm and p.mm is not None and p.mm.mm_users == 2 and c.active_mm is p.mm
    mmput(k, c.mm)
    assert p.mm.mm_users == 1 and len(p.mm.mmap) == 1


def test_user_ns_reference_follows_mm(k: KernelState) -> None:
    """mm_init takes mm->user_ns, __mmdrop puts it (kernel/fork.c:1050, 697)."""
    p = make_task(k, 1)
    assert p.mm is not None and p.mm.user_ns is not None
    ns = p.mm.user_ns
    before = ns.count
    c = fork(k, p)
    assert c.mm is not None and c.mm.user_ns is ns and ns.count == before + 1
    mmput(k, c.mm)
    assert ns.count == before and c.mm.user_ns is None


def test_fork_overcommit_refusal_is_enomem(k: KernelState) -> None:
    """VM_ACCOUNT recharge refused -> dup_mmap fails -> copy_mm ENOMEM (kernel/fork.c:537-543, 1416)."""
    p = make_task(k, 1)
    k.mem.totalram_pages = 2048
    k.mem.sysctl_overcommit_memory = OVERCOMMIT_NEVER
    addr = mmap_anon(k, p, 600)
    user_store(k, p, addr, b"a")
    committed = k.mem.vm_committed_as
    assert committed == 600
    with pytest.raises(KernelError) as ei:
        fork(k, p)
    assert ei.value.errno == errno.ENOMEM and ei.value.source == "kernel/fork.c:1416"
    assert k.mem.vm_committed_as == committed
    assert_consistent(k, [p])


def _build_parent(k: KernelState) -> tuple[Task, int, int, int]:
    p = make_task(k, 1)
    a = mmap_anon(k, p, 3)
    for i in range(3):
        user_store(k, p, a + i * PAGE, bytes([0x40 + i]) * 3)
    s = mmap_anon(k, p, 2, shared=True)
    user_store(k, p, s, b"shm")
    w = mmap_anon(k, p, 1)
    user_store(k, p, w, b"wipe")
    do_madvise(k, p, w, PAGE, MADV_WIPEONFORK)
    far = mmap_anon(k, p, 1, addr=0x100000000)
    user_store(k, p, far, b"far")
    return p, a, s, far


def test_fail_nth_sweep_over_copy_mm_leaves_nothing_behind(k: KernelState) -> None:
    """Every fallible site of copy_mm fails with ENOMEM and releases all it took (kernel/fork.c:1416)."""
    p, a, s, far = _build_parent(k)
    assert p.mm is not None
    k.fault.arm(0)
    k.current = p
    ok = fork(k, p, pid=50)
    sites = list(k.fault.sites)
    assert {"dup_mm:allocate_mm", "mm_init:mm_alloc_pgd", "dup_mmap:vm_area_dup", "copy_pte_range:pte_alloc",
            "anon_vma_fork:anon_vma_alloc", "anon_vma_clone:anon_vma_chain_alloc",
            "__anon_vma_prepare:anon_vma_alloc"} <= set(sites)
    assert ok.mm is not None
    mmput(k, ok.mm)
    assert_consistent(k, [p])
    failures = 0
    for n in range(1, len(sites) + 1):
        mem0 = mem_snapshot(k)
        mm0 = mm_snapshot(k, p.mm)
        mm0_masked = mm_snapshot(k, p.mm, mask_rw=True)
        k.fault.arm(n)
        child = Task(pid=100 + n)
        k.current = p
        with pytest.raises(KernelError) as ei:
            copy_mm(k, 0, child, p)
        assert ei.value.errno == errno.ENOMEM
        assert k.fault.failed_site == sites[n - 1]
        k.fault.arm(0)
        failures += 1
        assert child.mm is None and child.active_mm is None
        assert mem_snapshot(k) == mem0, f"fail at site {n} ({sites[n - 1]}) changed physical memory"
        assert mm_snapshot(k, p.mm, mask_rw=True) == mm0_masked
        if n <= 2:  # allocate_mm / mm_alloc_pgd: before any PTE was touched
            assert mm_snapshot(k, p.mm) == mm0
        assert_consistent(k, [p])
    assert failures == len(sites)
    # the parent's write-protected pages are exclusive again: writes reuse them in place
    used = k.mem.nr_used()
    pfn = pte_pfn(get_pte(p.mm, a))
    user_store(k, p, a, b"again")
    assert pte_pfn(get_pte(p.mm, a)) == pfn and k.mem.nr_used() == used
    assert user_load(k, p, far, 3) == b"far" and user_load(k, p, s, 3) == b"shm"


def test_copy_to_user_cow_and_efault(k: KernelState) -> None:
    """Kernel-mode writes break COW like user writes; bad addresses are EFAULT without a signal."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 1, prot=PROT_READ)
    assert copy_to_user(k, p, addr, b"x") is False
    assert p.pending.signal == 0
    addr2 = mmap_anon(k, p, 1)
    user_store(k, p, addr2, b"orig")
    c = fork(k, p)
    assert copy_to_user(k, c, addr2, b"kern") is True
    assert user_load(k, p, addr2, 4) == b"orig" and user_load(k, c, addr2, 4) == b"kern"
    assert copy_from_user(k, c, 0x1000, 4) is None
    assert_consistent(k, [p, c])


def test_fault_oom_in_user_access_is_enomem(k: KernelState) -> None:
    """VM_FAULT_OOM from a user fault: modelled as ENOMEM instead of the OOM killer."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 1)
    k.fault.arm(1)
    with pytest.raises(KernelError) as ei:
        user_store(k, p, addr, b"x")
    assert ei.value.errno == errno.ENOMEM
    assert k.fault.failed_site == "do_anonymous_page:pte_alloc"
    k.fault.arm(4)  # pte_alloc succeeds, then anon_vma_chain_alloc, anon_vma_alloc, alloc_page
    assert copy_to_user(k, p, addr, b"x") is False
    assert k.fault.failed_site == "do_anonymous_page:alloc_page"
    k.fault.arm(0)
    assert_consistent(k, [p])
    user_store(k, p, addr, b"y")
    assert user_load(k, p, addr, 1) == b"y"


def test_anon_vma_clone_reuses_parent_anon_vma_after_split(k: KernelState) -> None:
    """5.6.4 anon_vma_clone (mm/rmap.c:275-277): when the parent vma's predecessor shares its anon_vma,
    the child's copy takes that anon_vma itself instead of a new child anon_vma (dst->vm_prev is the
    parent's vm_prev after vm_area_dup). COW is unaffected."""
    p = make_task(k, 1)
    addr = mmap_anon(k, p, 3)
    for i in range(3):
        user_store(k, p, addr + i * PAGE, bytes([i + 1]))
    from forklab.mm.mprotect import do_mprotect_pkey

    do_mprotect_pkey(k, p, addr + PAGE, PAGE, PROT_READ)
    assert p.mm is not None and len(p.mm.mmap) == 3
    a = p.mm.mmap[0].anon_vma
    assert all(v.anon_vma is a for v in p.mm.mmap)
    c = fork(k, p)
    assert c.mm is not None
    first, second, third = c.mm.mmap
    assert first.anon_vma is not a and first.anon_vma is not None and first.anon_vma.parent is a
    assert second.anon_vma is a and third.anon_vma is a
    assert_consistent(k, [p, c])
    user_store(k, c, addr + 2 * PAGE, b"c")
    user_store(k, p, addr + 2 * PAGE, b"p")
    assert user_load(k, c, addr + 2 * PAGE, 1) == b"c" and user_load(k, p, addr + 2 * PAGE, 1) == b"p"
    assert_consistent(k, [p, c])
    mmput(k, p.mm)
    p.mm = None
    assert_consistent(k, [c])
    mmput(k, c.mm)
    assert k.mem.anon_vmas == {} and k.mem.nr_used() == 0
