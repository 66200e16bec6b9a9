"""User memory access: loads and stores by a task, and the kernel's copy_{to,from}_user and copy_struct_from_user.

Design essay
------------
Every access goes page by page through what the MMU and the x86 fault handler do
(arch/x86/mm/fault.c:do_user_addr_fault). If the PTE already allows the access, the "hardware"
sets the accessed bit (and the dirty bit on a write) and no fault is taken. Otherwise it is a
page fault: ``find_vma``; no vma, or the address below the vma (the model does not grow
stacks), or an access the vma forbids (``access_error``: a write to a vma without VM_WRITE; a
read of a vma with none of VM_READ/VM_WRITE/VM_EXEC, i.e. PROT_NONE — x86 cannot express
write-only or exec-only, so those are readable) is a bad area; otherwise ``handle_mm_fault``
resolves it and the task's ``min_flt`` is incremented (no fault is ever major: no I/O).

A bad area in a user access sends SIGSEGV (``force_sig_fault``) and raises ``Segfault``. In
kernel mode (``copy_to_user``/``copy_from_user``/``put_user_int``/``get_user_int``) the
exception table turns it into EFAULT: the functions return False/None and no signal is sent.
An address above TASK_SIZE fails ``access_ok`` the same way.

VM_FAULT_OOM (an allocation in the fault path failed, e.g. under fail-nth): from user mode
5.6 runs the OOM killer and retries (arch/x86/mm/fault.c:1077, pagefault_out_of_memory); the
model has no OOM killer and instead raises ``kerr(ENOMEM, ...)`` for the access. From kernel
mode the fault is fixed up as EFAULT (fault.c:1066-1070), so the copy_* functions fail.
VM_FAULT_SIGBUS in user mode raises ``Segfault`` with reason "SIGBUS" after sending SIGBUS.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, Segfault, kerr
from forklab.include.linux.mm_types import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_RW,
    _PAGE_SPECIAL,
    PMD_SHIFT,
    PTE_PFN_SHIFT,
    PTRS_PER_PTE,
    VM,
)
from forklab.kernel.signal import force_sig_fault
from forklab.mm.memory import (
    _PFN_MASK,
    _VM_WRITE,
    FAULT_FLAG_USER,
    FAULT_FLAG_WRITE,
    VM_FAULT_OOM,
    VM_FAULT_SIGBUS,
    VM_FAULT_SIGSEGV,
    VM_SPECIAL_PAGES,
    WP_COPY_ALLOC,
    handle_mm_fault,
    pmd_write_protected,
)
from forklab.mm.mmap import TASK_SIZE, _mm, find_vma
from forklab.mm.page_alloc import PG_anon, PG_swapbacked, alloc_page, page_after_store
from forklab.uapi import PAGE_SHIFT, PAGE_SIZE, SIGBUS, SIGSEGV, CloneArgs

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


_PRESENT_RW = _PAGE_PRESENT | _PAGE_RW
_ACCESSED_DIRTY = _PAGE_ACCESSED | _PAGE_DIRTY
_PRESENT_RW_SPECIAL = _PAGE_PRESENT | _PAGE_RW | _PAGE_SPECIAL
_ACCESSED_DIRTY_RW = _ACCESSED_DIRTY | _PAGE_RW
_PG_ANON_SWAPBACKED = PG_anon | PG_swapbacked
# of these bits, a vma whose copy-on-write the fast path does has VM_WRITE alone
_COW_EXCLUDED_OR_WRITE = VM.VM_SHARED | VM_SPECIAL_PAGES | VM.VM_HUGETLB | VM.VM_WRITE
_IN_PAGE = PAGE_SIZE - 1  # an address's offset in its page
_PTE_INDEX = PTRS_PER_PTE - 1  # an address's page number, as an index in its PTE table
_VM_READ_EXEC_WRITE = VM.VM_READ | VM.VM_EXEC | VM.VM_WRITE


class _BadArea(Exception):
    def __init__(self, addr: int, reason: str, sig: int = SIGSEGV) -> None:
        super().__init__(reason)
        self.addr = addr
        self.reason = reason
        self.sig = sig


class _FaultOom(Exception):
    pass


def access_error(write: bool, vm_flags: int) -> bool:
    """Whether the vma forbids the access (arch/x86/mm/fault.c:1190-1229)."""
    if write:
        return not vm_flags & _VM_WRITE
    return not vm_flags & _VM_READ_EXEC_WRITE


def mmu_access(k: KernelState, mm: MmStruct, addr: int, write: bool) -> int:
    """The MMU's walk for one access: the pfn when the PTE allows it, else -1 (a page fault).

    On a hit the hardware sets the accessed bit, and the dirty bit on a write, when not yet set
    (Intel SDM vol. 3, 4.8); an access through a write-protected PMD entry faults.
    """
    table = mm.pgd.get(addr >> PMD_SHIFT)  # pte_offset, as the MMU walks it
    idx = (addr >> PAGE_SHIFT) & _PTE_INDEX
    if table is None or idx >= len(table) or addr >= TASK_SIZE:
        return -1
    pte: int = table.item(idx)
    if not pte & _PAGE_PRESENT:
        return -1
    if write:
        if not pte & _PAGE_RW or (k.mem.pte_shares.by_table and pmd_write_protected(k, mm, addr)):
            return -1
        if pte & _ACCESSED_DIRTY != _ACCESSED_DIRTY:
            table[idx] = pte | _ACCESSED_DIRTY
    elif not pte & _PAGE_ACCESSED:
        table[idx] = pte | _PAGE_ACCESSED
    return (pte & _PFN_MASK) >> PTE_PFN_SHIFT


def user_store_fastpath(k: KernelState, t: Task, addr: int, data: bytes) -> bool:
    """``user_store`` of a store within one page that the MMU allows, or whose fault is do_wp_page's reuse or
    copy of an anonymous page of private anonymous memory in a listener-free kernel; False, with nothing done,
    in every other case (the caller then takes the general path)."""
    # NOTE: stands for user_mode_access -> user_store -> _user_page -> mmu_access, and on a fault _fault_in ->
    # handle_mm_fault -> handle_pte_fault -> do_wp_page -> wp_page_reuse or wp_page_copy (mm/memory.c) and the
    # retried store, for the two cases that send no signal and need no exception exit work. mmu_access,
    # vmacache_find's hit, alloc_page's common case, copy_user_highpage, page_add_new_anon_rmap and pfn_pte
    # are written out in place. It leaves the state the full path leaves: page counts, page fields, RSS, fault
    # counts and fault-injection sites (tests/test_mm_fastpath.py).
    mm = t.mm
    off = addr & _IN_PAGE
    if mm is None or off + len(data) > PAGE_SIZE or addr >= TASK_SIZE or not data:
        return False
    table = mm.pgd.get(addr >> PMD_SHIFT)  # the MMU's walk
    idx = (addr >> PAGE_SHIFT) & _PTE_INDEX
    mem = k.mem
    if table is None or idx >= len(table) or (mem.pte_shares.by_table and pmd_write_protected(k, mm, addr)):
        return False
    pte: int = table.item(idx)
    pfn = (pte & _PFN_MASK) >> PTE_PFN_SHIFT
    if pte & _PRESENT_RW == _PRESENT_RW:  # the PTE allows the store
        if pte & _ACCESSED_DIRTY != _ACCESSED_DIRTY:
            table[idx] = pte | _ACCESSED_DIRTY
        mem.write_page(pfn, off, data)
        return True
    if k.listeners:  # the fault (a write to a present read-only PTE), traced: the general path
        return False
    vma = mm.vmacache  # NOTE: find_vma's vmacache_find hit in place (mm/vmacache.c:62-91)
    if vma is None or not vma.vm_start <= addr < vma.vm_end:
        vma = find_vma(mm, addr)
    if vma is None or vma.vm_start > addr or vma.vm_file is not None or vma.anon_vma is None \
            or vma.vm_flags & _COW_EXCLUDED_OR_WRITE != _VM_WRITE or pte & _PRESENT_RW_SPECIAL != _PAGE_PRESENT \
            or "cow_reuse_page_count" in k.changes:  # k.has, without its name check
        return False
    pv = mem.pv
    if not pv.flags[pfn] & PG_anon:  # the zero page is _PAGE_SPECIAL, never PG_anon
        return False
    refcount = pv._refcount[pfn]
    mapcount = pv._mapcount[pfn]
    if mapcount <= 0:  # do_wp_page: reuse_swap_page says reuse (mapcount <= 1)
        if mapcount == 0:
            pv.mapping[pfn] = vma.anon_vma.serial  # page_move_anon_rmap
        table[idx] = pte | _ACCESSED_DIRTY_RW  # wp_page_reuse; maybe_mkwrite, as the vma has VM_WRITE
    else:  # wp_page_copy
        fault = k.fault
        free = mem._free
        if fault.countdown > 0 or mem._nr_used >= mem.totalram_pages or not free or mem._freed:
            new_page = alloc_page(k, WP_COPY_ALLOC, False)  # not zeroed
            if new_page is None:
                raise _oom()
            pv = mem.pv  # the allocation may have grown mem_map
        else:  # NOTE: alloc_page's common case in place: a disarmed injector records the site, the lowest free pfn
            fault.sites.append(WP_COPY_ALLOC)
            new_page = free.pop()
            pv._refcount[new_page] = 1
            mem._nr_used += 1
        # copy_user_highpage, and the retried store into the copy (write_page): the new page has no contents yet
        old = mem.contents.get(pfn)
        if old is None:  # NOTE: page_after_store of a never-written page in place
            if any(data):
                mem.contents[new_page] = bytes(off) + data if off else data
        elif (after := page_after_store(old, off, data)) is not None:
            mem.contents[new_page] = after
        # page_add_new_anon_rmap: a fresh page's flags are 0 and its _mapcount -1
        pv.flags[new_page] = _PG_ANON_SWAPBACKED
        pv._mapcount[new_page] = 0
        pv.mapping[new_page] = vma.anon_vma.serial
        pv.index[new_page] = ((addr - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff  # linear_page_index
        table[idx] = (new_page << PTE_PFN_SHIFT) | vma.vm_page_prot | _ACCESSED_DIRTY_RW  # a pgprot has no pfn bits
        pv._mapcount[pfn] = mapcount - 1  # page_remove_rmap
        pv._refcount[pfn] = refcount - 1  # get_page, then put_page twice
        if refcount == 1:
            mem._free_pfn(pfn)
        t.min_flt += 1
        return True
    t.min_flt += 1
    mem.write_page(pfn, off, data)  # the retried store
    return True


def _fault_in(k: KernelState, t: Task, addr: int, write: bool, user: bool) -> int:
    """The MMU refused an access at ``addr``: handle the page fault and retry the access; the pfn it
    lands on (do_user_addr_fault, arch/x86/mm/fault.c:1300-1520)."""
    mm = t.mm if t.mm is not None else _mm(t)
    if addr >= TASK_SIZE:
        raise _BadArea(addr, "address outside the user address space")
    for _attempt in range(3):
        vma = find_vma(mm, addr)
        if vma is None or vma.vm_start > addr:
            raise _BadArea(addr, "no mapping at this address")
        if access_error(write, vma.vm_flags):
            raise _BadArea(addr, "write to a read-only mapping" if write else "read of a PROT_NONE mapping")
        flags = (FAULT_FLAG_WRITE if write else 0) | (FAULT_FLAG_USER if user else 0)
        fault = handle_mm_fault(k, vma, addr, flags)
        if fault & VM_FAULT_OOM:
            raise _FaultOom()
        if fault & VM_FAULT_SIGBUS:
            raise _BadArea(addr, "SIGBUS: the page cannot be provided", SIGBUS)
        if fault & VM_FAULT_SIGSEGV:
            raise _BadArea(addr, "fault handler refused the access")
        t.min_flt += 1
        pfn = mmu_access(k, mm, addr, write)  # the faulting instruction again
        if pfn >= 0:
            return pfn
    raise InternalError(f"fault at {addr:#x} did not make the page accessible")


def _kernel_page(k: KernelState, t: Task, addr: int, write: bool) -> int:
    """The page a kernel-mode access to ``t``'s memory at ``addr`` lands on (raises _BadArea, _FaultOom)."""
    pfn = -1 if t.mm is None else mmu_access(k, t.mm, addr, write)
    return pfn if pfn >= 0 else _fault_in(k, t, addr, write, False)


def _chunks(addr: int, n: int) -> list[tuple[int, int, int]]:
    out = []
    pos = 0
    while pos < n:
        a = addr + pos
        off = a & _IN_PAGE
        size = min(PAGE_SIZE - off, n - pos)
        out.append((a, off, size))
        pos += size
    return out


def _user_fault(k: KernelState, t: Task, e: _BadArea) -> Segfault:

    force_sig_fault(k, t, e.sig, e.addr)
    return Segfault(e.addr, e.reason, t.pid, e.sig)


def _oom() -> OSError:
    return kerr(errno.ENOMEM, "page allocation failed in the fault handler (VM_FAULT_OOM)", "mm/memory.c:3210")


def user_store(k: KernelState, t: Task, addr: int, data: bytes) -> None:
    """A store by task ``t``'s user code: the MMU writes where the PTE allows it, elsewhere the store takes
    a page fault; SIGSEGV and Segfault on a bad access (arch/x86/mm/fault.c:do_user_addr_fault)."""
    off = addr & _IN_PAGE
    if len(data) > 0 and off + len(data) <= PAGE_SIZE:  # within one page: the loop below, without the slicing
        k.mem.write_page(_user_page(k, t, addr, True), off, data)
        return
    for a, off, size in _chunks(addr, len(data)):
        pos = a - addr
        k.mem.write_page(_user_page(k, t, a, True), off, bytes(data[pos : pos + size]))


def user_load(k: KernelState, t: Task, addr: int, n: int) -> bytes:
    """A load by task ``t``'s user code, as ``user_store`` (arch/x86/mm/fault.c:do_user_addr_fault)."""
    off = addr & _IN_PAGE
    if n > 0 and off + n <= PAGE_SIZE:  # within one page: the loop below, without the joining
        return k.mem.read_bytes(_user_page(k, t, addr, False), off, n)
    out = bytearray()
    for a, off, size in _chunks(addr, n):
        out += k.mem.read_page(_user_page(k, t, a, False))[off : off + size]
    return bytes(out)


def _user_page(k: KernelState, t: Task, addr: int, write: bool) -> int:
    """The page a user access at ``addr`` lands on: the MMU's, or a page fault's; a bad area is SIGSEGV,
    OOM is ENOMEM."""
    pfn = -1 if t.mm is None else mmu_access(k, t.mm, addr, write)
    if pfn >= 0:
        return pfn
    try:
        return _fault_in(k, t, addr, write, True)
    except _BadArea as e:
        raise _user_fault(k, t, e) from None
    except _FaultOom:
        raise _oom() from None


def copy_to_user(k: KernelState, t: Task, addr: int, data: bytes) -> bool:
    """Kernel-mode write into ``t``'s memory; False = EFAULT, no signal (include/linux/uaccess.h:148-154, arch/x86/mm/fault.c:1066)."""
    mem = k.mem
    for a, off, size in _chunks(addr, len(data)):
        try:
            pfn = _kernel_page(k, t, a, True)
        except (_BadArea, _FaultOom):
            return False
        pos = a - addr
        mem.write_page(pfn, off, bytes(data[pos : pos + size]))
    return True


def copy_from_user(k: KernelState, t: Task, addr: int, n: int) -> bytes | None:
    """Kernel-mode read of ``t``'s memory; None = EFAULT, no signal (include/linux/uaccess.h:139-148)."""
    mem = k.mem
    out = bytearray()
    for a, off, size in _chunks(addr, n):
        try:
            pfn = _kernel_page(k, t, a, False)
        except (_BadArea, _FaultOom):
            return None
        out += mem.read_page(pfn)[off : off + size]
    return bytes(out)


def copy_struct_from_user(k: KernelState, current: Task, uargs: CloneArgs | int, usize: int, ksize: int) -> bytes:
    """copy_struct_from_user: the first ``ksize`` bytes, zero-filled; a larger tail must be zero (include/linux/uaccess.h:283-302)."""
    if isinstance(uargs, CloneArgs):
        data = uargs.to_bytes()[: min(usize, ksize)]
    else:
        if usize > ksize:
            tail = copy_from_user(k, current, uargs + ksize, usize - ksize)
            if tail is None:
                raise kerr(errno.EFAULT, "clone_args tail is not readable", "include/linux/uaccess.h:293")
            if any(tail):
                raise kerr(errno.E2BIG, "clone_args has non-zero bytes past the known struct",
                           "include/linux/uaccess.h:295")
        got = copy_from_user(k, current, uargs, min(usize, ksize))
        if got is None:
            raise kerr(errno.EFAULT, "clone_args is not readable", "kernel/fork.c:2614")
        data = got
    return data + bytes(ksize - len(data))


def put_user_int(k: KernelState, t: Task, addr: int, value: int, size: int = 4) -> bool:
    """put_user of a little-endian integer of ``size`` bytes; False = EFAULT (arch/x86/include/asm/uaccess.h:237)."""
    data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return copy_to_user(k, t, addr, data)


def get_user_int(k: KernelState, t: Task, addr: int, size: int = 4, signed: bool = True) -> int | None:
    """get_user of a little-endian integer; None = EFAULT (arch/x86/include/asm/uaccess.h:165)."""
    raw = copy_from_user(k, t, addr, size)
    if raw is None:
        return None
    return int.from_bytes(raw, "little", signed=signed)


__all__ = ["copy_from_user", "copy_struct_from_user", "copy_to_user", "get_user_int", "put_user_int", "user_load", "user_store",
           "user_store_fastpath"]
