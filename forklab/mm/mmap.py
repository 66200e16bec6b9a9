"""mmap, munmap and the vma list: creation, lookup, merging, splitting, teardown (mm/mmap.c).

Design essay
------------
**The vma list.** ``mm.mmap`` is the address-ordered list the kernel keeps as a list plus an
rbtree. ``find_vma`` bisects it, after asking the vma cache (forklab/mm/vmacache.py), and so do
``find_vma_links``, ``vma_link`` and the ``vm_prev``/``vm_next`` lookups
(forklab/include/linux/mm_types.py): O(log n), where the kernel's tree walk or pointers are
O(log n) or O(1). The top-down gap search walks the list from the top, O(n) where the kernel's
rbtree, augmented with ``rb_subtree_gap``, is O(log n); it finds the same gap. Page tables are
per mm and indexed by address, so splitting or merging vmas never touches them.

**What mmap can map.** Anonymous private memory and anonymous shared memory (MAP_SHARED |
MAP_ANONYMOUS, which the kernel backs with an unlinked shmem file made by
``shmem_zero_setup``; the model builds ``File(Inode(ino, "/dev/zero (deleted)", kind="shmem"))``
and keeps that file out of every fd table). The model has no mmappable files: with
``fd >= 0`` and no MAP_ANONYMOUS, ``ksys_mmap_pgoff`` checks that ``fd`` is open (EBADF, as
``fget`` would) and then fails with **ENODEV** ("file has no mmap operation in the model"), the
errno do_mmap gives a file without ``f_op->mmap`` (mm/mmap.c:1499). The model is a kernel
built without CONFIG_HUGETLB_PAGE: MAP_HUGETLB|MAP_ANONYMOUS is EINVAL (hstate_sizelog is NULL,
mm/mmap.c:1574).

**Checks and their order** follow 5.6: x86 ``sys_mmap`` (offset alignment), ``ksys_mmap_pgoff``
(fd), ``do_mmap`` (len 0 EINVAL, rounded len 0 ENOMEM, pgoff overflow EOVERFLOW, map_count
ENOMEM, ``get_unmapped_area`` (len > TASK_SIZE ENOMEM, MAP_FIXED outside TASK_SIZE ENOMEM,
unaligned MAP_FIXED EINVAL, below mmap_min_addr without CAP_SYS_RAWIO EPERM),
MAP_FIXED_NOREPLACE EEXIST, MAP_LOCKED EPERM/EAGAIN, MAP_TYPE EINVAL), then ``mmap_region``
(RLIMIT_AS / RLIMIT_DATA ENOMEM, unmapping what MAP_FIXED covers, VM_ACCOUNT charge ENOMEM,
vma allocation ENOMEM, shmem file setup ENOMEM/ENOSPC).

**Address allocation** is x86's top-down allocator without ASLR: the highest gap below
``mm.mmap_base`` that fits (``unmapped_area_topdown``), falling back to bottom-up from
``TASK_UNMAPPED_BASE`` (PAGE_ALIGN(TASK_SIZE / 3)); VM_GROWSDOWN vmas keep the 1 MiB
``stack_guard_gap`` below them. A hint is honoured when the range is free.

**Merging** is the kernel's ``vma_merge`` for all eight cases, with ``__vma_adjust``'s
anon_vma import (a vma that grows over one with an anon_vma clones its chain — fallible, and
a failure simply means "no merge", as in the kernel) and removal of the swallowed vmas.

**Overcommit.** ``__vm_enough_memory`` (forklab/mm/util.py) implements the three policies of
mm/util.c:797-841 with ``vm_committed_as`` in ``k.mem``; ``sysctl_user_reserve_kbytes`` and
``sysctl_admin_reserve_kbytes`` take their boot values min(3% of RAM, 128 MiB) and min(3% of
RAM, 8 MiB) (mm/mmap.c:3644-3672). There is no swap.

**Not modelled:** soft-dirty (VM_SOFTDIRTY is not set), NUMA policies, userfaultfd, uprobes,
pkeys (``execute_only_pkey``), READ_IMPLIES_EXEC personality, stack growth
(``expand_stack``: an access below a VM_GROWSDOWN vma is a plain SIGSEGV), mlock's page
state (VM_LOCKED only changes ``locked_vm`` and populates), brk.

Fallible sites: ``mmap_region:vm_area_alloc``, ``__split_vma:vm_area_dup``,
``shmem_zero_setup:shmem_get_inode``, ``shmem_zero_setup:alloc_file_pseudo``, plus
``__vm_enough_memory`` refusals (policy, not injection) and the anon_vma sites of rmap.
"""

from __future__ import annotations

import bisect
import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, KernelError, kerr
from forklab.fs.file_table import vma_fput
from forklab.include.linux.fdtable import FMODE_PATH, File
from forklab.include.linux.mm_types import (
    _PAGE_ACCESSED,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_USER,
    TASK_SIZE_MAX,
    VM,
    MmStruct,
    VmAreaStruct,
    vm_flags_str,
    vma_end_key,
    vma_next_of,
    vma_prev_of,
    vma_start_key,
)
from forklab.include.linux.mman import calc_vm_flag_bits, calc_vm_prot_bits, vm_unacct_memory
from forklab.include.linux.vmacache import vmacache_invalidate
from forklab.kernel.capability import capable
from forklab.kernel.signal import rlimit, rlimit_max
from forklab.mm.internal import is_data_mapping, is_exec_mapping, is_stack_mapping
from forklab.mm.memory import (
    PAGE_ALIGN,
    free_pgtables,
    unmap_vmas,
    update_hiwater_rss,
    update_hiwater_vm,
    vm_start_gap,
    vma_pages,
)
from forklab.mm.mlock import can_do_mlock
from forklab.mm.page_alloc import OVERCOMMIT_NEVER
from forklab.mm.rmap import anon_vma_clone, anon_vma_prepare, unlink_anon_vmas
from forklab.mm.shmem import shmem_zero_setup
from forklab.mm.util import vm_mmap_pgoff
from forklab.mm.vmacache import vmacache_find, vmacache_update
from forklab.security.security import security_vm_enough_memory_mm
from forklab.trace import traced
from forklab.uapi import (
    CAP_IPC_LOCK,
    CAP_SYS_RAWIO,
    MAP_ANONYMOUS,
    MAP_DENYWRITE,
    MAP_EXECUTABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    PAGE_SHIFT,
    PAGE_SIZE,
    RLIMIT_AS,
    RLIMIT_DATA,
    RLIMIT_MEMLOCK,
    RLIMIT_STACK,
)

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import AnonVma
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

TASK_SIZE = TASK_SIZE_MAX  # arch/x86/include/asm/processor.h:890
DEFAULT_MAP_WINDOW = TASK_SIZE
TASK_UNMAPPED_BASE = (TASK_SIZE // 3 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)  # arch/x86/mm/mmap.c:109
MMAP_MIN_ADDR = 65536  # CONFIG_DEFAULT_MMAP_MIN_ADDR (security/min_addr.c)
STACK_GUARD_GAP = 256 << PAGE_SHIFT  # mm/mmap.c:2479
VM_SPECIAL = VM.VM_IO | VM.VM_DONTEXPAND | VM.VM_PFNMAP | VM.VM_MIXEDMAP  # include/linux/mm.h:331
VM_LOCKED_CLEAR_MASK = ~(VM.VM_LOCKED | VM.VM_LOCKONFAULT)
PAGE_MASK = ~(PAGE_SIZE - 1)
_PROT_BASE = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
# protection_map[VM_READ|VM_WRITE|VM_EXEC|VM_SHARED] (mm/mmap.c:92-95, x86 __P/__S values)
_PAGE_NONE = _PAGE_PROTNONE | _PAGE_ACCESSED
_PAGE_READONLY = _PROT_BASE | _PAGE_NX
_PAGE_READONLY_EXEC = _PROT_BASE
_PAGE_COPY = _PROT_BASE | _PAGE_NX
_PAGE_COPY_EXEC = _PROT_BASE
_PAGE_SHARED = _PROT_BASE | _PAGE_RW | _PAGE_NX
_PAGE_SHARED_EXEC = _PROT_BASE | _PAGE_RW
PROTECTION_MAP = (
    _PAGE_NONE, _PAGE_READONLY, _PAGE_COPY, _PAGE_COPY,
    _PAGE_READONLY_EXEC, _PAGE_READONLY_EXEC, _PAGE_COPY_EXEC, _PAGE_COPY_EXEC,
    _PAGE_NONE, _PAGE_READONLY, _PAGE_SHARED, _PAGE_SHARED,
    _PAGE_READONLY_EXEC, _PAGE_READONLY_EXEC, _PAGE_SHARED_EXEC, _PAGE_SHARED_EXEC,
)


def _mm(t: Task) -> MmStruct:
    """``t->mm`` of a task that must have one: a memory syscall or a user access by a kernel thread is a bug."""
    if t.mm is None:
        raise InternalError(f"memory syscall or user access by {t!r}, which has no mm")
    return t.mm


def _capable(t: Task | None, cap: int) -> bool:
    if t is None or t.cred is None:
        return False

    return capable(t, cap)


def vm_get_page_prot(vm_flags: int) -> int:
    """The PTE protection bits for ``vm_flags`` (mm/mmap.c:106-114)."""
    return PROTECTION_MAP[vm_flags & (VM.VM_READ | VM.VM_WRITE | VM.VM_EXEC | VM.VM_SHARED)]


# --- lookup ---------------------------------------------------------------------------------------


def find_vma(mm: MmStruct, addr: int) -> VmAreaStruct | None:
    """The first vma with ``vm_end > addr``: the vma cache's, else the list's (mm/mmap.c:2209-2241)."""
    vma = vmacache_find(mm, addr)
    if vma is not None:
        return vma
    vmas = mm.mmap
    i = bisect.bisect_right(vmas, addr, key=vma_end_key)
    if i == len(vmas):
        return None
    vma = vmas[i]
    vmacache_update(addr, vma)
    return vma


def find_vma_prev(mm: MmStruct, addr: int) -> tuple[VmAreaStruct | None, VmAreaStruct | None]:
    """find_vma plus the vma before it (the last vma when none follows) (mm/mmap.c:2246-2262)."""
    vma = find_vma(mm, addr)
    if vma is not None:
        return vma, vma_prev_of(mm, vma)
    return None, (mm.mmap[-1] if mm.mmap else None)


def count_vma_pages_range(mm: MmStruct, addr: int, end: int) -> int:
    """Pages of existing vmas inside ``[addr, end)`` (mm/mmap.c:560-586)."""
    total = 0
    for v in mm.mmap:
        lo, hi = max(v.vm_start, addr), min(v.vm_end, end)
        if lo < hi:
            total += (hi - lo) >> PAGE_SHIFT
    return total


def find_vma_links(mm: MmStruct, addr: int, end: int) -> tuple[int, VmAreaStruct | None]:
    """-ENOMEM when a vma overlaps ``[addr, end)``, else 0; and the last vma ending at or below ``addr``, where
    a new vma there would be linked (mm/mmap.c:526-560)."""
    vmas = mm.mmap
    i = bisect.bisect_right(vmas, addr, key=vma_end_key)  # the rbtree walk: the first vma with vm_end > addr
    prev = vmas[i - 1] if i else None
    if i < len(vmas) and vmas[i].vm_start < end:
        return -errno.ENOMEM, prev
    return 0, prev


def vma_link(mm: MmStruct, vma: VmAreaStruct) -> None:
    """Insert ``vma`` into the address-ordered list; map_count++ (mm/mmap.c:640-663)."""
    mm.mmap.insert(bisect.bisect_left(mm.mmap, vma.vm_start, key=vma_start_key), vma)
    vma.vm_mm = mm
    mm.map_count += 1


# --- statistics -----------------------------------------------------------------------------------


def vm_stat_account(mm: MmStruct, flags: int, npages: int) -> None:
    """total_vm and exec/stack/data_vm (mm/mmap.c:3287-3297)."""
    mm.total_vm += npages
    if is_exec_mapping(flags):
        mm.exec_vm += npages
    elif is_stack_mapping(flags):
        mm.stack_vm += npages
    elif is_data_mapping(flags):
        mm.data_vm += npages


def may_expand_vm(t: Task, mm: MmStruct, flags: int, npages: int) -> bool:
    """RLIMIT_AS and RLIMIT_DATA (with the Valgrind exception) (mm/mmap.c:3262-3285)."""
    if mm.total_vm + npages > rlimit(t, RLIMIT_AS) >> PAGE_SHIFT:
        return False
    if is_data_mapping(flags) and mm.data_vm + npages > rlimit(t, RLIMIT_DATA) >> PAGE_SHIFT:
        # the Valgrind exception; otherwise refuse (ignore_rlimit_data is false by default)
        return rlimit(t, RLIMIT_DATA) == 0 and mm.data_vm + npages <= rlimit_max(t, RLIMIT_DATA) >> PAGE_SHIFT
    return True


# --- merging (mm/mmap.c:985-1300) -----------------------------------------------------------------


def is_mergeable_vma(vma: VmAreaStruct, file: File | None, vm_flags: int) -> bool:
    """Same flags and same file (mm/mmap.c:985-1006)."""
    return vma.vm_flags == vm_flags and vma.vm_file is file


def is_mergeable_anon_vma(a1: AnonVma | None, a2: AnonVma | None, vma: VmAreaStruct | None) -> bool:
    """Equal anon_vmas, or one missing and the vma's chain a single link (mm/mmap.c:1008-1020)."""
    if (a1 is None or a2 is None) and (vma is None or len(vma.anon_vma_chain) <= 1):
        return True
    return a1 is a2


def can_vma_merge_before(vma: VmAreaStruct, vm_flags: int, anon_vma: AnonVma | None,
                         file: File | None, vm_pgoff: int) -> bool:
    """A range ending at ``vma`` can join it from below (mm/mmap.c:1034-1045)."""
    return is_mergeable_vma(vma, file, vm_flags) and is_mergeable_anon_vma(anon_vma, vma.anon_vma, vma) \
        and vma.vm_pgoff == vm_pgoff


def can_vma_merge_after(vma: VmAreaStruct, vm_flags: int, anon_vma: AnonVma | None,
                        file: File | None, vm_pgoff: int) -> bool:
    """A range starting at ``vma``'s end can join it from above (mm/mmap.c:1055-1068)."""
    return is_mergeable_vma(vma, file, vm_flags) and is_mergeable_anon_vma(anon_vma, vma.anon_vma, vma) \
        and vma.vm_pgoff + vma_pages(vma) == vm_pgoff


def _remove_merged(k: KernelState, mm: MmStruct, survivor: VmAreaStruct, gone: VmAreaStruct) -> None:
    mm.mmap.remove(gone)  # __vma_unlink_common
    vmacache_invalidate(mm)
    if gone.vm_file is not None:
        vma_fput(k, gone.vm_file)
    if gone.anon_vma is not None:
        if survivor.anon_vma is not gone.anon_vma:
            raise InternalError("merging vmas with different anon_vmas")
        unlink_anon_vmas(k, gone)  # anon_vma_merge
    elif gone.anon_vma_chain:
        unlink_anon_vmas(k, gone)
    mm.map_count -= 1


def __vma_adjust(k: KernelState, mm: MmStruct, vma: VmAreaStruct, start: int, end: int, pgoff: int,
                 expand: VmAreaStruct) -> int:
    """Move ``vma``'s bounds, adjusting or swallowing its successor(s) (mm/mmap.c:694-983, merge cases)."""
    nxt = vma_next_of(mm, vma)
    exporter: VmAreaStruct | None = None
    importer: VmAreaStruct | None = None
    removed: list[VmAreaStruct] = []
    adjust_next = 0
    survivor = vma
    if nxt is not None:
        if end >= nxt.vm_end:
            if nxt is expand:  # case 8: next swallows vma
                survivor, removed = nxt, [vma]
                exporter, importer = vma, nxt
            else:
                removed = [nxt]
                exporter, importer = nxt, vma
                if end > nxt.vm_end:  # case 6: also the vma after next
                    nxt2 = vma_next_of(mm, nxt)
                    if nxt2 is None or end != nxt2.vm_end:
                        raise InternalError("vma_merge case 6 with a bad end")
                    removed.append(nxt2)
                    if nxt.anon_vma is None:
                        exporter = nxt2
        elif end > nxt.vm_start:  # case 5
            adjust_next = (end - nxt.vm_start) >> PAGE_SHIFT
            exporter, importer = nxt, vma
        elif end < vma.vm_end:  # case 4
            adjust_next = -((vma.vm_end - end) >> PAGE_SHIFT)
            exporter, importer = vma, nxt
        if exporter is not None and importer is not None and exporter.anon_vma is not None \
                and importer.anon_vma is None:
            importer.anon_vma = exporter.anon_vma
            error = anon_vma_clone(k, importer, exporter)
            if error:
                return error
    if survivor is vma:
        vma.vm_start, vma.vm_pgoff = start, pgoff
        vma.vm_end = removed[-1].vm_end if removed else end
        if adjust_next and nxt is not None:
            nxt.vm_start += adjust_next << PAGE_SHIFT
            nxt.vm_pgoff += adjust_next
    else:
        survivor.vm_start, survivor.vm_pgoff = start, pgoff
    for gone in removed:
        _remove_merged(k, mm, survivor, gone)
    return 0


def vma_merge(k: KernelState, mm: MmStruct, prev: VmAreaStruct | None, addr: int, end: int, vm_flags: int,
              anon_vma: AnonVma | None, file: File | None, pgoff: int) -> VmAreaStruct | None:
    """Merge ``[addr, end)`` with flags ``vm_flags`` into its neighbours if compatible (mm/mmap.c:1113-1205)."""
    if vm_flags & VM_SPECIAL:
        return None
    pglen = (end - addr) >> PAGE_SHIFT
    nxt = vma_next_of(mm, prev)
    area = nxt
    if area is not None and area.vm_end == end:
        nxt = vma_next_of(mm, nxt)
    if prev is not None and prev.vm_end == addr and can_vma_merge_after(prev, vm_flags, anon_vma, file, pgoff):
        if nxt is not None and end == nxt.vm_start \
                and can_vma_merge_before(nxt, vm_flags, anon_vma, file, pgoff + pglen) \
                and is_mergeable_anon_vma(prev.anon_vma, nxt.anon_vma, None):
            err = __vma_adjust(k, mm, prev, prev.vm_start, nxt.vm_end, prev.vm_pgoff, prev)  # cases 1, 6
        else:
            err = __vma_adjust(k, mm, prev, prev.vm_start, end, prev.vm_pgoff, prev)  # cases 2, 5, 7
        return None if err else prev
    if nxt is not None and end == nxt.vm_start \
            and can_vma_merge_before(nxt, vm_flags, anon_vma, file, pgoff + pglen):
        if prev is not None and addr < prev.vm_end:  # case 4
            err = __vma_adjust(k, mm, prev, prev.vm_start, addr, prev.vm_pgoff, nxt)
        else:  # cases 3, 8
            if area is None:
                raise InternalError("vma_merge case 3/8 without an area")
            err = __vma_adjust(k, mm, area, addr, nxt.vm_end, nxt.vm_pgoff - pglen, nxt)
            area = nxt
        return None if err else area
    return None


def anon_vma_compatible(a: VmAreaStruct, b: VmAreaStruct) -> bool:
    """Adjacent, same file, flags equal but for rwx, contiguous pgoff (mm/mmap.c:1219-1227)."""
    return a.vm_end == b.vm_start and a.vm_file is b.vm_file \
        and not ((a.vm_flags ^ b.vm_flags) & ~(VM.VM_READ | VM.VM_WRITE | VM.VM_EXEC)) \
        and b.vm_pgoff == a.vm_pgoff + vma_pages(a)


def reusable_anon_vma(old: VmAreaStruct, a: VmAreaStruct, b: VmAreaStruct) -> AnonVma | None:
    """``old``'s anon_vma if compatible and its chain has one link (mm/mmap.c:1250-1260)."""
    if anon_vma_compatible(a, b) and old.anon_vma is not None and len(old.anon_vma_chain) == 1:
        return old.anon_vma
    return None


def find_mergeable_anon_vma(vma: VmAreaStruct,
                            neighbours: tuple[VmAreaStruct | None, VmAreaStruct | None] | None = None,
                            ) -> AnonVma | None:
    """A neighbour's anon_vma that ``vma`` may share (mm/mmap.c:1269-1293)."""
    if neighbours is not None:
        prev, nxt = neighbours
    else:
        mm = vma.vm_mm
        if mm is None or not any(v is vma for v in mm.mmap):
            return None
        prev, nxt = vma_prev_of(mm, vma), vma_next_of(mm, vma)
    if nxt is not None:
        found = reusable_anon_vma(nxt, vma, nxt)
        if found is not None:
            return found
    if prev is not None:
        return reusable_anon_vma(prev, prev, vma)
    return None


# --- stack growth (exec's new stack) --------------------------------------------------------------


def expand_downwards(k: KernelState, t: Task, vma: VmAreaStruct, address: int) -> int:
    """Grow a VM_GROWSDOWN vma down to ``address``: 0 or -errno (mm/mmap.c:2404-2476, 2267-2306)."""
    mm = vma.vm_mm
    assert mm is not None
    address &= PAGE_MASK
    if address < MMAP_MIN_ADDR:
        return -errno.EPERM
    if anon_vma_prepare(k, vma):
        return -errno.ENOMEM
    if address >= vma.vm_start:
        return 0
    size = vma.vm_end - address
    grow = (vma.vm_start - address) // PAGE_SIZE
    if grow > vma.vm_pgoff:
        return -errno.ENOMEM
    if not may_expand_vm(t, mm, vma.vm_flags, grow) or size > rlimit(t, RLIMIT_STACK):
        return -errno.ENOMEM
    if security_vm_enough_memory_mm(k, mm, grow):
        return -errno.ENOMEM
    vm_stat_account(mm, vma.vm_flags, grow)
    vma.vm_start = address
    vma.vm_pgoff -= grow
    return 0


# --- splitting ------------------------------------------------------------------------------------


def __split_vma(k: KernelState, mm: MmStruct, vma: VmAreaStruct, addr: int, new_below: int) -> int:
    """Split ``vma`` at ``addr``; the new vma takes the lower part iff ``new_below`` (mm/mmap.c:2630-2688)."""
    from forklab.kernel.fork import vm_area_dup  # import cycle: kernel/fork.py imports this module

    new = vm_area_dup(k, vma, "__split_vma:vm_area_dup")
    if new is None:
        return -errno.ENOMEM
    if new_below:
        new.vm_end = addr
    else:
        new.vm_start = addr
        new.vm_pgoff += (addr - vma.vm_start) >> PAGE_SHIFT
    err = anon_vma_clone(k, new, vma)
    if err:
        return err
    if new.vm_file is not None:
        new.vm_file.f_count += 1  # get_file
    if new_below:
        vma.vm_pgoff += (addr - new.vm_start) >> PAGE_SHIFT
        vma.vm_start = addr
    else:
        vma.vm_end = addr
    vma_link(mm, new)
    return 0


def split_vma(k: KernelState, mm: MmStruct, vma: VmAreaStruct, addr: int, new_below: int) -> int:
    """__split_vma after the max_map_count check (mm/mmap.c:2694-2701)."""
    if mm.map_count >= k.mem.sysctl_max_map_count:
        return -errno.ENOMEM
    return __split_vma(k, mm, vma, addr, new_below)


# --- unmapping ------------------------------------------------------------------------------------


def remove_vma(k: KernelState, vma: VmAreaStruct) -> None:
    """Drop the vma's file and free it (mm/mmap.c:171-183)."""
    if vma.vm_file is not None:
        vma_fput(k, vma.vm_file)
        vma.vm_file = None
    vma.vm_mm = None


def remove_vma_list(k: KernelState, mm: MmStruct, vmas: list[VmAreaStruct]) -> None:
    """Unaccount and free detached vmas (mm/mmap.c:2556-2572)."""
    update_hiwater_vm(mm)
    nr_accounted = 0
    for vma in vmas:
        nrpages = vma_pages(vma)
        if vma.vm_flags & VM.VM_ACCOUNT:
            nr_accounted += nrpages
        vm_stat_account(mm, vma.vm_flags, -nrpages)
        remove_vma(k, vma)
    vm_unacct_memory(k, nr_accounted)


def unmap_region(k: KernelState, mm: MmStruct, vmas: list[VmAreaStruct], prev: VmAreaStruct | None,
                 start: int, end: int) -> None:
    """Zap the PTEs of the detached vmas and free their page tables (mm/mmap.c:2579-2596)."""
    nxt = vma_next_of(mm, prev)
    update_hiwater_rss(mm)
    unmap_vmas(k, vmas, start, end)
    free_pgtables(k, mm, vmas, prev.vm_end if prev is not None else 0, nxt.vm_start if nxt is not None else 0)


def __do_munmap(k: KernelState, mm: MmStruct, start: int, length: int) -> None:
    """Unmap ``[start, start+len)``, splitting the vmas at the edges (mm/mmap.c:2708-2815)."""
    if start & (PAGE_SIZE - 1) or start > TASK_SIZE or length > TASK_SIZE - start:
        raise kerr(errno.EINVAL, "munmap start is unaligned or the range leaves the address space", "mm/mmap.c:2715")
    length = PAGE_ALIGN(length)
    end = start + length
    if length == 0:
        raise kerr(errno.EINVAL, "munmap length is 0", "mm/mmap.c:2720")
    vma = find_vma(mm, start)
    if vma is None or vma.vm_start >= end:
        return
    prev = vma_prev_of(mm, vma)
    if start > vma.vm_start:
        if end < vma.vm_end and mm.map_count >= k.mem.sysctl_max_map_count:
            raise kerr(errno.ENOMEM, "splitting the vma would exceed vm.max_map_count", "mm/mmap.c:2756")
        if __split_vma(k, mm, vma, start, 0):
            raise kerr(errno.ENOMEM, "vma split failed (allocation)", "mm/mmap.c:2760")
        prev = vma
    last = find_vma(mm, end)
    if last is not None and end > last.vm_start and __split_vma(k, mm, last, end, 1):
        raise kerr(errno.ENOMEM, "vma split failed (allocation)", "mm/mmap.c:2769")
    detached = [v for v in mm.mmap if v.vm_start >= start and v.vm_end <= end]
    if mm.locked_vm:
        for v in detached:
            if v.vm_flags & VM.VM_LOCKED:
                mm.locked_vm -= vma_pages(v)
    for v in detached:  # detach_vmas_to_be_unmapped
        mm.mmap.remove(v)
        mm.map_count -= 1
    vmacache_invalidate(mm)
    unmap_region(k, mm, detached, prev, start, end)
    remove_vma_list(k, mm, detached)


def do_munmap(k: KernelState, mm: MmStruct, start: int, length: int) -> int:
    """__do_munmap returning 0 or -errno (mm/mmap.c:2817-2821)."""
    try:
        __do_munmap(k, mm, start, length)
    except KernelError as e:
        return -(e.errno or errno.ENOMEM)
    return 0


def vm_munmap(k: KernelState, t: Task, start: int, length: int) -> None:
    """munmap(2) for task ``t`` (mm/mmap.c:2823-2863)."""
    mm = _mm(t)
    __do_munmap(k, mm, start, length)
    if k.listeners:
        k.trace("munmap", "mm/mmap.c:2854", f"{start:#x}+{length:#x}")


@traced
def exit_mmap(k: KernelState, mm: MmStruct) -> None:
    """Tear down every mapping of a dying mm: PTEs, page tables, vmas, commit charge (mm/mmap.c:3073-3144)."""
    if not mm.mmap:
        return
    vmas = list(mm.mmap)
    unmap_vmas(k, vmas, 0, 2**64 - 1)
    free_pgtables(k, mm, vmas, 0, 0)
    nr_accounted = 0
    for vma in vmas:
        if vma.vm_flags & VM.VM_ACCOUNT:
            nr_accounted += vma_pages(vma)
        remove_vma(k, vma)
    mm.mmap.clear()
    vmacache_invalidate(mm)  # the kernel frees the vmas and the mm with them; the model's mm outlives them
    vm_unacct_memory(k, nr_accounted)
    if mm.pgd:
        raise InternalError(f"exit_mmap left {len(mm.pgd)} PTE tables")


# --- address allocation ---------------------------------------------------------------------------


def unmapped_area_topdown(mm: MmStruct, length: int, low_limit: int, high_limit: int) -> int:
    """The highest gap of ``length`` bytes in ``[low_limit, high_limit]``; -ENOMEM if none (mm/mmap.c:1954-2063)."""
    if high_limit < length or low_limit > high_limit - length:
        return -errno.ENOMEM
    gap_end_limit = high_limit
    vmas = mm.mmap
    gap_start, gap_end = (vmas[-1].vm_end if vmas else 0), 2**64  # the gap above the highest vma, then downwards
    i = len(vmas)
    while True:
        if gap_end < low_limit + length:
            return -errno.ENOMEM
        if gap_start <= high_limit - length and gap_end > gap_start and gap_end - gap_start >= length:
            return min(gap_end, gap_end_limit) - length
        if not i:
            return -errno.ENOMEM
        i -= 1
        gap_start, gap_end = (vmas[i - 1].vm_end if i else 0), vm_start_gap(vmas[i])


def unmapped_area(mm: MmStruct, length: int, low_limit: int, high_limit: int) -> int:
    """The lowest gap of ``length`` bytes in ``[low_limit, high_limit]``; -ENOMEM if none (mm/mmap.c:1851-1952)."""
    gap_start = 0
    for vma in [*mm.mmap, None]:
        gap_end = vm_start_gap(vma) if vma is not None else high_limit
        lo = max(gap_start, low_limit)
        if lo + length <= min(gap_end, high_limit):
            return lo
        if vma is not None:
            gap_start = vma.vm_end
    return -errno.ENOMEM


def arch_get_unmapped_area_topdown(mm: MmStruct, addr0: int, length: int, flags: int) -> int:
    """x86-64 top-down placement: hint, then below mmap_base, then bottom-up (arch/x86/kernel/sys_x86_64.c:169-230)."""
    if length > TASK_SIZE:
        return -errno.ENOMEM
    if flags & MAP_FIXED:
        return addr0
    addr = addr0
    if addr:
        addr &= PAGE_MASK
        if not TASK_SIZE - length < addr:  # mmap_address_hint_valid
            vma = find_vma(mm, addr)
            if vma is None or addr + length <= vm_start_gap(vma):
                return addr
    found = unmapped_area_topdown(mm, length, PAGE_SIZE, mm.mmap_base)
    if found >= 0:
        return found
    # bottomup: arch_get_unmapped_area (sys_x86_64.c:131-166)
    addr = PAGE_ALIGN(addr0)
    vma = find_vma(mm, addr)
    if addr0 and DEFAULT_MAP_WINDOW - length >= addr and (vma is None or addr + length <= vm_start_gap(vma)):
        return addr
    return unmapped_area(mm, length, TASK_UNMAPPED_BASE, DEFAULT_MAP_WINDOW)


def get_unmapped_area(t: Task, mm: MmStruct, addr: int, length: int, flags: int) -> int:
    """Pick the address and validate it (mm/mmap.c:2165-2204)."""
    if length > TASK_SIZE:
        raise kerr(errno.ENOMEM, "length is larger than the address space", "mm/mmap.c:2177")
    addr = arch_get_unmapped_area_topdown(mm, addr, length, flags)
    if addr < 0:
        raise kerr(-addr, "no free gap in the address space is large enough", "arch/x86/kernel/sys_x86_64.c:223")
    if addr > TASK_SIZE - length:
        raise kerr(errno.ENOMEM, "the mapping would end beyond TASK_SIZE", "mm/mmap.c:2198")
    if addr & (PAGE_SIZE - 1):
        raise kerr(errno.EINVAL, "MAP_FIXED address is not page aligned", "mm/mmap.c:2200")
    if addr < MMAP_MIN_ADDR and not _capable(t, CAP_SYS_RAWIO):  # security_mmap_addr -> cap_mmap_addr
        raise kerr(errno.EPERM, "address below vm.mmap_min_addr needs CAP_SYS_RAWIO", "security/commoncap.c:1311")
    return addr


# --- mmap -----------------------------------------------------------------------------------------


def accountable_mapping(file: File | None, vm_flags: int) -> bool:
    """Private writable without MAP_NORESERVE is charged to the commit limit (mm/mmap.c:1673-1683)."""
    del file
    return (vm_flags & (VM.VM_NORESERVE | VM.VM_SHARED | VM.VM_WRITE)) == VM.VM_WRITE


def mmap_region(k: KernelState, t: Task, file: File | None, addr: int, length: int, vm_flags: int, pgoff: int) -> int:
    """Create (or merge) the vma for ``[addr, addr+len)``, unmapping what was there (mm/mmap.c:1685-1849)."""
    mm = _mm(t)
    npages = length >> PAGE_SHIFT
    if not may_expand_vm(t, mm, vm_flags, npages):
        nr_pages = count_vma_pages_range(mm, addr, addr + length)
        if not may_expand_vm(t, mm, vm_flags, npages - nr_pages):
            raise kerr(errno.ENOMEM, "RLIMIT_AS or RLIMIT_DATA would be exceeded", "mm/mmap.c:1707")
    while (links := find_vma_links(mm, addr, addr + length))[0]:
        if do_munmap(k, mm, addr, length):
            raise kerr(errno.ENOMEM, "unmapping the old mappings under MAP_FIXED failed", "mm/mmap.c:1714")
    charged = 0
    if accountable_mapping(file, vm_flags):
        charged = npages
        if security_vm_enough_memory_mm(k, mm, charged):
            raise kerr(errno.ENOMEM, "overcommit policy refuses the private writable mapping", "mm/mmap.c:1723")
        vm_flags |= VM.VM_ACCOUNT
    prev = links[1]
    vma = vma_merge(k, mm, prev, addr, addr + length, vm_flags, None, file, pgoff)
    if vma is None:
        if k.fault.should_fail("mmap_region:vm_area_alloc"):
            vm_unacct_memory(k, charged)
            raise kerr(errno.ENOMEM, "vma allocation failed", "mm/mmap.c:1742")
        vma = VmAreaStruct(vm_start=addr, vm_end=addr + length, vm_flags=vm_flags, vm_mm=mm,
                           vm_pgoff=pgoff, vm_page_prot=vm_get_page_prot(vm_flags))
        if vm_flags & VM.VM_SHARED:
            try:
                shmem_zero_setup(k, mm, vma)
            except KernelError:
                vm_unacct_memory(k, charged)
                raise
        vma_link(mm, vma)
    vm_stat_account(mm, vm_flags, npages)
    if vm_flags & VM.VM_LOCKED:
        if vm_flags & VM_SPECIAL:
            vma.vm_flags &= VM_LOCKED_CLEAR_MASK
        else:
            mm.locked_vm += npages
    vma.vm_page_prot = vm_get_page_prot(vma.vm_flags)  # vma_set_page_prot
    if k.listeners:
        k.trace("mmap_region", "mm/mmap.c:1685", f"{addr:#x}-{addr + length:#x} {vm_flags_str(vm_flags)}")
    return addr


def mlock_future_check(t: Task, mm: MmStruct, flags: int, length: int) -> bool:
    """RLIMIT_MEMLOCK for VM_LOCKED mappings unless CAP_IPC_LOCK (mm/mmap.c:1310-1326)."""
    if flags & VM.VM_LOCKED:
        locked = (length >> PAGE_SHIFT) + mm.locked_vm
        lock_limit = rlimit(t, RLIMIT_MEMLOCK) >> PAGE_SHIFT
        if locked > lock_limit and not _capable(t, CAP_IPC_LOCK):
            return False
    return True


def do_mmap(k: KernelState, t: Task, file: File | None, addr: int, length: int, prot: int, flags: int,
            vm_flags: int, pgoff: int) -> tuple[int, int]:
    """The mmap checks in 5.6 order, then mmap_region; returns (addr, bytes to populate) (mm/mmap.c:1363-1549)."""
    mm = _mm(t)
    if not length:
        raise kerr(errno.EINVAL, "mmap length is 0", "mm/mmap.c:1375")
    if flags & MAP_FIXED_NOREPLACE:
        flags |= MAP_FIXED
    if not flags & MAP_FIXED:
        addr &= PAGE_MASK  # round_hint_to_min
        if addr and addr < MMAP_MIN_ADDR:
            addr = PAGE_ALIGN(MMAP_MIN_ADDR)
    length = PAGE_ALIGN(length)
    if not length:
        raise kerr(errno.ENOMEM, "page-rounded mmap length overflows", "mm/mmap.c:1397")
    if pgoff + (length >> PAGE_SHIFT) >= 2**64:
        raise kerr(errno.EOVERFLOW, "pgoff + length overflows", "mm/mmap.c:1401")
    if mm.map_count > k.mem.sysctl_max_map_count:
        raise kerr(errno.ENOMEM, "vm.max_map_count mappings already exist", "mm/mmap.c:1405")
    addr = get_unmapped_area(t, mm, addr, length, flags)
    if flags & MAP_FIXED_NOREPLACE:
        vma = find_vma(mm, addr)
        if vma is not None and vma.vm_start < addr + length:
            raise kerr(errno.EEXIST, "MAP_FIXED_NOREPLACE range overlaps an existing mapping", "mm/mmap.c:1418")
    vm_flags |= calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | mm.def_flags \
        | VM.VM_MAYREAD | VM.VM_MAYWRITE | VM.VM_MAYEXEC
    if flags & MAP_LOCKED and not can_do_mlock(t):
        raise kerr(errno.EPERM, "MAP_LOCKED with RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK", "mm/mmap.c:1436")
    if not mlock_future_check(t, mm, vm_flags, length):
        raise kerr(errno.EAGAIN, "MAP_LOCKED would exceed RLIMIT_MEMLOCK", "mm/mmap.c:1439")
    if file is not None:
        raise InternalError("file mappings are not modelled (ksys_mmap_pgoff rejects them)")
    mtype = flags & MAP_TYPE
    if mtype == MAP_SHARED:
        if vm_flags & VM.VM_GROWSDOWN:
            raise kerr(errno.EINVAL, "MAP_SHARED|MAP_ANONYMOUS cannot grow down", "mm/mmap.c:1511")
        pgoff = 0
        vm_flags |= VM.VM_SHARED | VM.VM_MAYSHARE
    elif mtype == MAP_PRIVATE:
        pgoff = addr >> PAGE_SHIFT
    else:
        raise kerr(errno.EINVAL, f"mapping type {mtype:#x} is neither MAP_SHARED nor MAP_PRIVATE", "mm/mmap.c:1525")
    if flags & MAP_NORESERVE and k.mem.sysctl_overcommit_memory != OVERCOMMIT_NEVER:
        vm_flags |= VM.VM_NORESERVE
    addr = mmap_region(k, t, file, addr, length, vm_flags, pgoff)
    populate = 0
    if vm_flags & VM.VM_LOCKED or (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE:
        populate = length
    return addr, populate


def ksys_mmap_pgoff(k: KernelState, t: Task, addr: int, length: int, prot: int, flags: int, fd: int,
                    pgoff: int) -> int:
    """fd lookup (files are not mmappable in the model: ENODEV), MAP_HUGETLB, then vm_mmap_pgoff (mm/mmap.c:1551-1598)."""
    if not flags & MAP_ANONYMOUS:
        files = t.files
        ok = files is not None and 0 <= fd < len(files.fdt.fd) and files.fdt.fd[fd] is not None
        f = files.fdt.fd[fd] if ok and files is not None else None
        if f is None or f.f_mode & FMODE_PATH:
            raise kerr(errno.EBADF, f"fd {fd} is not an open file", "mm/mmap.c:1562")
        raise kerr(errno.ENODEV, "file has no mmap operation in the model", "mm/mmap.c:1499")
    if flags & MAP_HUGETLB:  # the model is built without CONFIG_HUGETLB_PAGE: hstate_sizelog() is NULL
        raise kerr(errno.EINVAL, "no huge page size available (kernel without hugetlbfs)", "mm/mmap.c:1574")
    flags &= ~(MAP_EXECUTABLE | MAP_DENYWRITE)
    return vm_mmap_pgoff(k, t, None, addr, length, prot, flags, pgoff)


def sys_mmap(k: KernelState, t: Task, addr: int, length: int, prot: int, flags: int, fd: int, off: int) -> int:
    """mmap(2) on x86-64: the byte offset must be page aligned (arch/x86/kernel/sys_x86_64.c:90-101)."""
    if off & (PAGE_SIZE - 1):
        raise kerr(errno.EINVAL, "mmap offset is not page aligned", "arch/x86/kernel/sys_x86_64.c:96")
    addr &= 2**64 - 1
    length &= 2**64 - 1
    return ksys_mmap_pgoff(k, t, addr, length, prot, flags, fd, (off & (2**64 - 1)) >> PAGE_SHIFT)


__all__ = [
    "TASK_SIZE",
    "__do_munmap",
    "__split_vma",
    "do_mmap",
    "do_munmap",
    "exit_mmap",
    "find_vma",
    "find_vma_links",
    "find_vma_prev",
    "ksys_mmap_pgoff",
    "mmap_region",
    "split_vma",
    "sys_mmap",
    "vm_munmap",
    "vm_stat_account",
    "vma_merge",
]
