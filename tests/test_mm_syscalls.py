"""mmap, munmap, mprotect and madvise: errnos in 5.6 order, splitting/merging, access faults.

The docstring of each errno test names the source line of the check that fires.
"""

from __future__ import annotations

import errno

import pytest
from mm_fixture import PAGE, assert_consistent, fake_force_sig_fault, make_task

from forklab.errors import KernelError, Segfault
from forklab.include.linux.fdtable import File, Inode
from forklab.include.linux.mm_types import _PAGE_RW, MM_ANONPAGES, MM_SHMEMPAGES, VM
from forklab.include.linux.sched import Task
from forklab.mm.madvise import do_madvise
from forklab.mm.memory import get_pte, pte_pfn
from forklab.mm.mmap import TASK_SIZE, find_vma, ksys_mmap_pgoff, sys_mmap, vm_munmap
from forklab.mm.mprotect import do_mprotect_pkey
from forklab.mm.page_alloc import OVERCOMMIT_NEVER
from forklab.mm.uaccess import user_load, user_store
from forklab.state import KernelState
from forklab.uapi import (
    MADV_DODUMP,
    MADV_DOFORK,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HWPOISON,
    MADV_KEEPONFORK,
    MADV_NORMAL,
    MADV_REMOVE,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_HUGETLB,
    MAP_NORESERVE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    RLIMIT_AS,
    SIGSEGV,
)

RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS


@pytest.fixture(params=["copy", "shared"])  # Linux's fork, and the on-demand fork (tests/test_mm_shared_tables.py)
def k(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> KernelState:
    monkeypatch.setattr("forklab.mm.uaccess.force_sig_fault", fake_force_sig_fault)
    return KernelState(fork_page_tables=request.param)


@pytest.fixture
def t(k: KernelState) -> Task:
    task = make_task(k, 1)
    k.current = task
    return task


def err(excinfo: pytest.ExceptionInfo[KernelError]) -> tuple[int, str]:
    return excinfo.value.errno or 0, excinfo.value.source


def mmap(k: KernelState, t: Task, addr: int, length: int, prot: int = RW, flags: int = ANON, fd: int = -1,
         off: int = 0) -> int:
    return sys_mmap(k, t, addr, length, prot, flags, fd, off)


# --- mmap ---------------------------------------------------------------------------------------


def test_mmap_offset_unaligned(k: KernelState, t: Task) -> None:
    """arch/x86/kernel/sys_x86_64.c:96: the byte offset must be page aligned (checked before len)."""
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, 0, off=100)
    assert err(ei) == (errno.EINVAL, "arch/x86/kernel/sys_x86_64.c:96")


def test_mmap_len_zero(k: KernelState, t: Task) -> None:
    """mm/mmap.c:1375: len 0 is EINVAL."""
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, 0)
    assert err(ei) == (errno.EINVAL, "mm/mmap.c:1375")


def test_mmap_len_rounds_to_zero(k: KernelState, t: Task) -> None:
    """mm/mmap.c:1397: PAGE_ALIGN(len) overflowing to 0 is ENOMEM."""
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, 2**64 - 100)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:1397")


def test_mmap_len_larger_than_task_size(k: KernelState, t: Task) -> None:
    """mm/mmap.c:2177: len > TASK_SIZE is ENOMEM."""
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, TASK_SIZE + PAGE)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:2177")


def test_mmap_bad_map_type(k: KernelState, t: Task) -> None:
    """mm/mmap.c:1525: anonymous mappings accept only MAP_SHARED or MAP_PRIVATE (not even MAP_SHARED_VALIDATE)."""
    for flags in (MAP_ANONYMOUS, MAP_SHARED_VALIDATE | MAP_ANONYMOUS):
        with pytest.raises(KernelError) as ei:
            mmap(k, t, 0, PAGE, flags=flags)
        assert err(ei) == (errno.EINVAL, "mm/mmap.c:1525")
    assert t.mm is not None and t.mm.mmap == []


def test_mmap_fd_without_anonymous(k: KernelState, t: Task) -> None:
    """mm/mmap.c:1562 (EBADF for a closed fd); an open fd has no mmap in the model: ENODEV (mm/mmap.c:1499)."""
    from forklab.include.linux.fdtable import FilesStruct

    t.files = FilesStruct()
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, PAGE, flags=MAP_PRIVATE, fd=3)
    assert err(ei) == (errno.EBADF, "mm/mmap.c:1562")
    t.files.fdt.fd[3] = File(Inode(7, "f"))
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, PAGE, flags=MAP_PRIVATE, fd=3)
    assert err(ei) == (errno.ENODEV, "mm/mmap.c:1499")
    with pytest.raises(KernelError) as ei:  # no CONFIG_HUGETLB_PAGE in the model
        mmap(k, t, 0, PAGE, flags=ANON | MAP_HUGETLB)
    assert err(ei) == (errno.EINVAL, "mm/mmap.c:1574")


def test_mmap_fixed_rules(k: KernelState, t: Task) -> None:
    """mm/mmap.c:2200 (unaligned MAP_FIXED EINVAL), 1418 (NOREPLACE EEXIST), security/commoncap.c:1311 (EPERM)."""
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0x10000123, PAGE, flags=ANON | MAP_FIXED)
    assert err(ei) == (errno.EINVAL, "mm/mmap.c:2200")
    a = mmap(k, t, 0x10000000, 4 * PAGE, flags=ANON | MAP_FIXED)
    assert a == 0x10000000
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0x10002000, 4 * PAGE, flags=ANON | MAP_FIXED_NOREPLACE)
    assert err(ei) == (errno.EEXIST, "mm/mmap.c:1418")
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0x1000, PAGE, flags=ANON | MAP_FIXED)
    assert err(ei) == (errno.EPERM, "security/commoncap.c:1311")
    with pytest.raises(KernelError) as ei:
        mmap(k, t, TASK_SIZE - PAGE, 2 * PAGE, flags=ANON | MAP_FIXED)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:2198")
    # MAP_FIXED over existing memory replaces it (pages freed)
    user_store(k, t, 0x10001000, b"old")
    assert k.mem.nr_used() == 1
    mmap(k, t, 0x10001000, PAGE, flags=ANON | MAP_FIXED)
    assert k.mem.nr_used() == 0
    assert user_load(k, t, 0x10001000, 3) == bytes(3)
    assert t.mm is not None and len(t.mm.mmap) == 1  # re-merged with both neighbours
    assert_consistent(k, [t])


def test_mmap_rlimit_as(k: KernelState, t: Task) -> None:
    """mm/mmap.c:1707: RLIMIT_AS counts total_vm."""
    assert t.signal is not None
    t.signal.set_rlim(RLIMIT_AS, (8 * PAGE, 8 * PAGE))
    mmap(k, t, 0, 6 * PAGE)
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, 3 * PAGE)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:1707")
    mmap(k, t, 0, 2 * PAGE)


def test_mmap_max_map_count(k: KernelState, t: Task) -> None:
    """mm/mmap.c:1405: more than vm.max_map_count mappings is ENOMEM."""
    k.mem.sysctl_max_map_count = 3
    prots = [PROT_READ, RW, PROT_READ, RW, PROT_READ]  # alternate so nothing merges
    for prot in prots[:4]:
        mmap(k, t, 0, PAGE, prot=prot)
    assert t.mm is not None and t.mm.map_count == 4
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, PAGE, prot=PROT_READ)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:1405")


def test_mmap_overcommit_never(k: KernelState, t: Task) -> None:
    """mm/mmap.c:1723: a private writable mapping is charged; OVERCOMMIT_NEVER refuses past the limit."""
    k.mem.totalram_pages = 1000
    k.mem.sysctl_overcommit_memory = OVERCOMMIT_NEVER
    with pytest.raises(KernelError) as ei:
        mmap(k, t, 0, 600 * PAGE)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:1723")
    assert k.mem.vm_committed_as == 0
    mmap(k, t, 0, 600 * PAGE, prot=PROT_READ)  # read-only: not accountable
    assert k.mem.vm_committed_as == 0
    with pytest.raises(KernelError) as ei:  # MAP_NORESERVE is ignored under OVERCOMMIT_NEVER (mm/mmap.c:1531)
        mmap(k, t, 0, 600 * PAGE, flags=ANON | MAP_NORESERVE)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:1723")
    mmap(k, t, 0, 400 * PAGE)  # limit: 500 pages - admin reserve (min(3%, 8 MiB)) - user reserve
    assert k.mem.vm_committed_as == 400
    k.mem.sysctl_overcommit_memory = 0
    mmap(k, t, 0, 600 * PAGE, flags=ANON | MAP_NORESERVE)
    assert k.mem.vm_committed_as == 400


def test_mmap_topdown_placement_and_merge(k: KernelState, t: Task) -> None:
    """Top-down below mmap_base (arch/x86/kernel/sys_x86_64.c:204-223) and vma_merge (mm/mmap.c:1113)."""
    assert t.mm is not None
    base = t.mm.mmap_base
    a = mmap(k, t, 0, 2 * PAGE)
    b = mmap(k, t, 0, 3 * PAGE)
    assert a == base - 2 * PAGE and b == a - 3 * PAGE
    assert len(t.mm.mmap) == 1 and t.mm.mmap[0].vm_start == b and t.mm.mmap[0].vm_end == base
    c = mmap(k, t, 0, PAGE, prot=PROT_READ)
    assert c == b - PAGE and len(t.mm.mmap) == 2
    assert t.mm.total_vm == 6 and t.mm.data_vm == 5
    hint = mmap(k, t, 0x20000000, PAGE)
    assert hint == 0x20000000
    assert_consistent(k, [t])


# --- munmap ---------------------------------------------------------------------------------------


def test_munmap_errnos(k: KernelState, t: Task) -> None:
    """mm/mmap.c:2715 (unaligned or beyond TASK_SIZE), 2720 (len 0)."""
    for start, length, src in ((0x10000001, PAGE, "mm/mmap.c:2715"), (0x10000000, 0, "mm/mmap.c:2720"),
                               (TASK_SIZE + PAGE, PAGE, "mm/mmap.c:2715"), (TASK_SIZE - PAGE, 2 * PAGE, "mm/mmap.c:2715")):
        with pytest.raises(KernelError) as ei:
            vm_munmap(k, t, start, length)
        assert err(ei) == (errno.EINVAL, src)
    vm_munmap(k, t, 0x10000000, PAGE)  # nothing mapped: success


def test_munmap_middle_splits_and_frees(k: KernelState, t: Task) -> None:
    """__do_munmap splits at both ends and frees pages and empty page tables (mm/mmap.c:2708-2815)."""
    assert t.mm is not None
    a = mmap(k, t, 0x40000000, 4 * PAGE, flags=ANON | MAP_FIXED)
    for i in range(4):
        user_store(k, t, a + i * PAGE, b"q")
    vm_munmap(k, t, a + PAGE, 2 * PAGE)
    assert [(v.vm_start, v.vm_end) for v in t.mm.mmap] == [(a, a + PAGE), (a + 3 * PAGE, a + 4 * PAGE)]
    assert t.mm.rss_stat[MM_ANONPAGES] == 2 and k.mem.nr_used() == 2 and t.mm.total_vm == 2
    assert len(t.mm.pgd) == 1
    assert_consistent(k, [t])
    with pytest.raises(Segfault):
        user_load(k, t, a + PAGE, 1)
    vm_munmap(k, t, a, 4 * PAGE)
    assert t.mm.mmap == [] and t.mm.pgd == {} and t.mm.pgtables_bytes == 0 and k.mem.nr_used() == 0
    assert k.mem.vm_committed_as == 0
    assert_consistent(k, [t])


def test_munmap_split_limit(k: KernelState, t: Task) -> None:
    """mm/mmap.c:2756: a middle unmap needing a split at vm.max_map_count is ENOMEM."""
    a = mmap(k, t, 0, 3 * PAGE)
    k.mem.sysctl_max_map_count = 1
    with pytest.raises(KernelError) as ei:
        vm_munmap(k, t, a + PAGE, PAGE)
    assert err(ei) == (errno.ENOMEM, "mm/mmap.c:2756")


# --- mprotect and access faults -----------------------------------------------------------------


def test_mprotect_errnos(k: KernelState, t: Task) -> None:
    """mm/mprotect.c:503 (unaligned), 511 (bad prot), 509 (wrap), 529/540/599 (holes ENOMEM)."""
    a = mmap(k, t, 0x50000000, 2 * PAGE, flags=ANON | MAP_FIXED)
    cases = [((a + 1, PAGE, PROT_READ), errno.EINVAL, "mm/mprotect.c:503"),
             ((a, PAGE, 0x10), errno.EINVAL, "mm/mprotect.c:511"),
             ((a, 2**64 - a, PROT_READ), errno.ENOMEM, "mm/mprotect.c:509"),
             ((0x7FFF00000000 - PAGE, PAGE, PROT_READ), errno.ENOMEM, "mm/mprotect.c:529"),
             ((a - PAGE, 2 * PAGE, PROT_READ), errno.ENOMEM, "mm/mprotect.c:540"),
             ((a, 3 * PAGE, PROT_READ), errno.ENOMEM, "mm/mprotect.c:599")]
    for args, code, src in cases:
        with pytest.raises(KernelError) as ei:
            do_mprotect_pkey(k, t, *args)
        assert err(ei) == (code, src), args
    do_mprotect_pkey(k, t, a + 5, 0, PROT_READ) if False else do_mprotect_pkey(k, t, a, 0, PROT_READ)
    assert t.mm is not None and t.mm.mmap[0].vm_flags & VM.VM_READ


def test_segfault_on_prot_none_and_readonly_write(k: KernelState, t: Task) -> None:
    """x86 access_error (arch/x86/mm/fault.c:1190-1229): write to !VM_WRITE, read of PROT_NONE -> SIGSEGV."""
    a = mmap(k, t, 0, PAGE, prot=PROT_READ)
    assert user_load(k, t, a, 2) == b"\0\0"
    with pytest.raises(Segfault) as se:
        user_store(k, t, a, b"x")
    assert se.value.addr == a and "read-only" in se.value.reason
    assert t.pending.signal & (1 << (SIGSEGV - 1))
    t.pending.signal = 0
    n = mmap(k, t, 0, PAGE, prot=PROT_NONE)
    with pytest.raises(Segfault):
        user_load(k, t, n, 1)
    assert t.pending.signal & (1 << (SIGSEGV - 1))
    w = mmap(k, t, 0, PAGE, prot=PROT_WRITE)  # write-only is readable on x86
    assert user_load(k, t, w, 1) == b"\0"
    x = mmap(k, t, 0, PAGE, prot=PROT_EXEC)
    assert user_load(k, t, x, 1) == b"\0"
    with pytest.raises(Segfault):
        user_load(k, t, 0x1000, 1)


def test_mprotect_write_bits_and_cow_reuse(k: KernelState, t: Task) -> None:
    """change_protection drops _PAGE_RW; restoring PROT_WRITE keeps private PTEs read-only until a fault (mm/mprotect.c:461)."""
    assert t.mm is not None
    a = mmap(k, t, 0x60000000, 3 * PAGE, flags=ANON | MAP_FIXED)
    for i in range(3):
        user_store(k, t, a + i * PAGE, b"m")
    pfn = pte_pfn(get_pte(t.mm, a + PAGE))
    do_mprotect_pkey(k, t, a + PAGE, PAGE, PROT_READ)
    assert len(t.mm.mmap) == 3 and t.mm.map_count == 3
    assert not get_pte(t.mm, a + PAGE) & _PAGE_RW and get_pte(t.mm, a) & _PAGE_RW
    with pytest.raises(Segfault):
        user_store(k, t, a + PAGE, b"n")
    do_mprotect_pkey(k, t, a + PAGE, PAGE, RW)
    assert len(t.mm.mmap) == 1  # merged back
    assert not get_pte(t.mm, a + PAGE) & _PAGE_RW
    flt = t.min_flt
    user_store(k, t, a + PAGE, b"n")
    assert t.min_flt == flt + 1 and pte_pfn(get_pte(t.mm, a + PAGE)) == pfn  # reused, no copy
    do_mprotect_pkey(k, t, a, 3 * PAGE, PROT_NONE)
    assert get_pte(t.mm, a) != 0 and not get_pte(t.mm, a) & 1  # PROT_NONE keeps the page, not present
    with pytest.raises(Segfault):
        user_load(k, t, a, 1)
    do_mprotect_pkey(k, t, a, 3 * PAGE, PROT_READ)
    assert user_load(k, t, a + PAGE, 1) == b"n"
    assert_consistent(k, [t])


def test_mprotect_accounting_on_first_write_permission(k: KernelState, t: Task) -> None:
    """mprotect_fixup charges VM_ACCOUNT when a private mapping becomes writable (mm/mprotect.c:416-421)."""
    a = mmap(k, t, 0, 4 * PAGE, prot=PROT_READ)
    assert k.mem.vm_committed_as == 0
    do_mprotect_pkey(k, t, a, 2 * PAGE, RW)
    assert k.mem.vm_committed_as == 2
    assert t.mm is not None
    v = find_vma(t.mm, a)
    assert v is not None and v.vm_flags & VM.VM_ACCOUNT and v.vm_end == a + 2 * PAGE
    assert t.mm.data_vm == 2
    vm_munmap(k, t, a, 4 * PAGE)
    assert k.mem.vm_committed_as == 0


def test_shared_mprotect_keeps_rw_in_ptes(k: KernelState, t: Task) -> None:
    """Shared writable shmem: vm_page_prot is PAGE_SHARED (RW) so PTEs are writable without a fault."""
    a = mmap(k, t, 0, 2 * PAGE, flags=MAP_SHARED | MAP_ANONYMOUS)
    user_load(k, t, a, 1)
    assert t.mm is not None and get_pte(t.mm, a) & _PAGE_RW
    assert t.mm.rss_stat[MM_SHMEMPAGES] == 1
    do_mprotect_pkey(k, t, a, 2 * PAGE, PROT_READ)
    assert not get_pte(t.mm, a) & _PAGE_RW
    assert_consistent(k, [t])


# --- madvise --------------------------------------------------------------------------------------


def test_madvise_invalid_behavior(k: KernelState, t: Task) -> None:
    """mm/madvise.c:1066: unknown advice is EINVAL, checked first."""
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, 1, 0, 5)
    assert err(ei) == (errno.EINVAL, "mm/madvise.c:1066")


def test_madvise_unaligned_start(k: KernelState, t: Task) -> None:
    """mm/madvise.c:1069: start must be page aligned."""
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, 0x10000001, PAGE, MADV_DONTFORK)
    assert err(ei) == (errno.EINVAL, "mm/madvise.c:1069")


def test_madvise_len_rounds_to_zero(k: KernelState, t: Task) -> None:
    """mm/madvise.c:1074: a nonzero length that page-rounds to 0 is EINVAL."""
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, 0x10000000, 2**64 - 1, MADV_DONTFORK)
    assert err(ei) == (errno.EINVAL, "mm/madvise.c:1074")


def test_madvise_range_wraps(k: KernelState, t: Task) -> None:
    """mm/madvise.c:1078: end < start is EINVAL."""
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, 2**64 - 2 * PAGE, 4 * PAGE, MADV_DONTFORK)
    assert err(ei) == (errno.EINVAL, "mm/madvise.c:1078")


def test_madvise_len_zero_succeeds_unmapped(k: KernelState, t: Task) -> None:
    """mm/madvise.c:1080-1082: len 0 returns 0 before looking at the vmas (no vma there: no ENOMEM)."""
    assert t.mm is not None and not t.mm.mmap
    assert do_madvise(k, t, 0x10000000, 0, MADV_DONTFORK) is None
    assert not t.mm.mmap


def test_madvise_unmapped_enomem(k: KernelState, t: Task) -> None:
    """mm/madvise.c:1111: no vma at or after start is ENOMEM."""
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, 0x10000000, PAGE, MADV_DONTFORK)
    assert err(ei) == (errno.ENOMEM, "mm/madvise.c:1111")


def test_madvise_partial_hole_applies_then_enomem(k: KernelState, t: Task) -> None:
    """mm/madvise.c:1115: a hole in the range: advice applied to mapped parts, then ENOMEM."""
    a = mmap(k, t, 0x70000000, PAGE, flags=ANON | MAP_FIXED)
    b = mmap(k, t, 0x70002000, PAGE, flags=ANON | MAP_FIXED)
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a, 3 * PAGE, MADV_DONTFORK)
    assert err(ei) == (errno.ENOMEM, "mm/madvise.c:1115")
    assert t.mm is not None
    assert all(v.vm_flags & VM.VM_DONTCOPY for v in t.mm.mmap)
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a, 2 * PAGE, MADV_KEEPONFORK)  # ends in the hole
    assert err(ei) == (errno.ENOMEM, "mm/madvise.c:1118")
    del b


def test_madvise_wipeonfork_needs_private_anon(k: KernelState, t: Task) -> None:
    """mm/madvise.c:97: MADV_WIPEONFORK on a shared (or file) mapping is EINVAL."""
    a = mmap(k, t, 0, PAGE, flags=MAP_SHARED | MAP_ANONYMOUS)
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a, PAGE, MADV_WIPEONFORK)
    assert ei.value.errno == errno.EINVAL and ei.value.source == "mm/madvise.c:1129"


def test_madvise_dofork_on_vm_io(k: KernelState, t: Task) -> None:
    """mm/madvise.c:89: MADV_DOFORK cannot clear the kernel's VM_DONTCOPY on VM_IO."""
    a = mmap(k, t, 0, PAGE)
    assert t.mm is not None
    t.mm.mmap[0].vm_flags |= VM.VM_IO | VM.VM_DONTCOPY
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a, PAGE, MADV_DOFORK)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(KernelError):
        do_madvise(k, t, a, PAGE, MADV_DODUMP)  # mm/madvise.c:110: VM_SPECIAL


def test_madvise_split_limit_enomem_and_alloc_eagain(k: KernelState, t: Task) -> None:
    """mm/madvise.c:147 (max_map_count: ENOMEM, unconverted) and 177 (split allocation ENOMEM -> EAGAIN)."""
    a = mmap(k, t, 0, 4 * PAGE)
    k.mem.sysctl_max_map_count = 1
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a + PAGE, PAGE, MADV_DONTFORK)
    assert err(ei) == (errno.ENOMEM, "mm/madvise.c:147")
    k.mem.sysctl_max_map_count = 65530
    k.fault.arm(1)
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a + PAGE, PAGE, MADV_DONTFORK)
    assert err(ei) == (errno.EAGAIN, "mm/madvise.c:177")
    assert k.fault.failed_site == "__split_vma:vm_area_dup"
    k.fault.arm(0)
    assert t.mm is not None and len(t.mm.mmap) == 1
    do_madvise(k, t, a + PAGE, PAGE, MADV_DONTFORK)
    assert len(t.mm.mmap) == 3 and t.mm.mmap[1].vm_flags & VM.VM_DONTCOPY
    do_madvise(k, t, a + PAGE, PAGE, MADV_DOFORK)
    assert len(t.mm.mmap) == 1  # merged back
    do_madvise(k, t, a, PAGE, MADV_NORMAL)
    assert_consistent(k, [t])


def test_madvise_core_dump_eintr(k: KernelState, t: Task) -> None:
    """5.6.8 (mmget_still_valid): write-locked advice during a core dump is EINTR."""
    a = mmap(k, t, 0, PAGE)
    assert t.mm is not None
    t.mm.core_state = object()
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a, PAGE, MADV_DONTFORK)
    assert ei.value.errno == errno.EINTR
    do_madvise(k, t, a, PAGE, MADV_DONTNEED)  # read-locked advice is not affected


def test_madvise_dontneed_private_and_shared(k: KernelState, t: Task) -> None:
    """MADV_DONTNEED zaps: private pages are freed (read back as zeros), shmem keeps its page cache."""
    a = mmap(k, t, 0, 2 * PAGE)
    s = mmap(k, t, 0, 2 * PAGE, flags=MAP_SHARED | MAP_ANONYMOUS)
    user_store(k, t, a, b"priv")
    user_store(k, t, s, b"shar")
    assert k.mem.nr_used() == 2
    do_madvise(k, t, a, 2 * PAGE, MADV_DONTNEED)
    do_madvise(k, t, s, 2 * PAGE, MADV_DONTNEED)
    assert t.mm is not None and t.mm.rss_stat[MM_ANONPAGES] == 0 and t.mm.rss_stat[MM_SHMEMPAGES] == 0
    assert k.mem.nr_used() == 1
    assert user_load(k, t, a, 4) == bytes(4) and user_load(k, t, s, 4) == b"shar"
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, s, PAGE, MADV_FREE)  # MADV_FREE needs anonymous memory
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a, PAGE, MADV_REMOVE)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(KernelError) as ei:
        do_madvise(k, t, a, PAGE, MADV_HWPOISON)  # CONFIG_MEMORY_FAILURE=n: unknown advice (mm/madvise.c:984)
    assert ei.value.errno == errno.EINVAL
    assert_consistent(k, [t])


def test_ksys_mmap_pgoff_shared_anon_has_shmem_file(k: KernelState, t: Task) -> None:
    """shmem_zero_setup gives the vma a "/dev/zero (deleted)" shmem file, charged unless NORESERVE."""
    a = ksys_mmap_pgoff(k, t, 0, 3 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
    assert t.mm is not None
    v = find_vma(t.mm, a)
    assert v is not None and v.vm_file is not None
    assert v.vm_file.f_inode.kind == "shmem" and v.vm_file.f_inode.name == "/dev/zero (deleted)"
    assert v.vm_flags & VM.VM_SHARED and v.vm_pgoff == 0 and not v.vm_flags & VM.VM_ACCOUNT
    assert k.mem.vm_committed_as == 3
    k.fault.arm(3)  # mmap_region:vm_area_alloc, shmem_get_inode, alloc_file_pseudo
    with pytest.raises(KernelError) as ei:
        ksys_mmap_pgoff(k, t, 0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
    assert ei.value.errno == errno.ENOMEM and k.fault.failed_site == "shmem_zero_setup:alloc_file_pseudo"
    k.fault.arm(2)
    with pytest.raises(KernelError) as ei:
        ksys_mmap_pgoff(k, t, 0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
    assert ei.value.errno == errno.ENOSPC
    k.fault.arm(0)
    assert k.mem.vm_committed_as == 3 and len(t.mm.mmap) == 1
    vm_munmap(k, t, a, 3 * PAGE)
    assert k.mem.vm_committed_as == 0
