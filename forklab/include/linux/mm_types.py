"""mm_struct, vm_area_struct and anon_vma (include/linux/mm_types.h, include/linux/rmap.h).

Page tables are arrays, not objects: ``mm.pgd`` maps a PMD index (``addr >> PMD_SHIFT``) to a
numpy array of 512 PTEs. A PTE is a uint64 in the x86-64 layout: the page frame number in bits
12 and up, and the bits below (``_PAGE_PRESENT``, ``_PAGE_RW``...). The model folds the upper
levels (pgd, p4d, pud) into that one dict; each PTE page is still a fallible allocation.
Physical pages live in ``forklab.mm.page_alloc.MemMap`` (numpy arrays of ``_refcount`` and
``_mapcount`` indexed by pfn).
"""

from __future__ import annotations

import bisect
import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from forklab.errors import InternalError
from forklab.uapi import PAGE_SIZE

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File
    from forklab.include.linux.sched import Task
    from forklab.include.linux.user_namespace import UserNamespace

PMD_SHIFT = 21
PTRS_PER_PTE = 512
TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE  # arch/x86/include/asm/processor.h:890

# arch/x86/include/asm/pgtable_types.h:12-40
_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PROTNONE = 1 << 8  # shares the bit with _PAGE_GLOBAL (pgtable_types.h:36)
_PAGE_SPECIAL = 1 << 9
_PAGE_NX = 1 << 63
PTE_PFN_SHIFT = 12

PteTable = npt.NDArray[np.uint64]


class VM:
    """vm_flags bits (include/linux/mm.h:236-290), plain ints as the kernel's ``unsigned long``.

    Not an IntFlag: Flag arithmetic runs in Python (about 0.8 us per ``&``), and fork tests
    vm_flags a dozen times per vma. ``vm_flags_str`` names the bits for display.
    """

    VM_NONE = 0
    VM_READ = 0x00000001
    VM_WRITE = 0x00000002
    VM_EXEC = 0x00000004
    VM_SHARED = 0x00000008
    VM_MAYREAD = 0x00000010
    VM_MAYWRITE = 0x00000020
    VM_MAYEXEC = 0x00000040
    VM_MAYSHARE = 0x00000080
    VM_GROWSDOWN = 0x00000100
    VM_PFNMAP = 0x00000400
    VM_DENYWRITE = 0x00000800
    VM_LOCKED = 0x00002000
    VM_IO = 0x00004000
    VM_SEQ_READ = 0x00008000
    VM_RAND_READ = 0x00010000
    VM_DONTCOPY = 0x00020000
    VM_DONTEXPAND = 0x00040000
    VM_LOCKONFAULT = 0x00080000
    VM_ACCOUNT = 0x00100000
    VM_NORESERVE = 0x00200000
    VM_HUGETLB = 0x00400000
    VM_WIPEONFORK = 0x02000000
    VM_DONTDUMP = 0x04000000
    VM_MIXEDMAP = 0x10000000
    VM_HUGEPAGE = 0x20000000
    VM_NOHUGEPAGE = 0x40000000
    VM_MERGEABLE = 0x80000000


VM_STACK = VM.VM_GROWSDOWN  # include/linux/mm.h:318

VM_FLAG_NAMES = {v: k for k, v in vars(VM).items() if k.startswith("VM_") and v}


def vm_flags_str(flags: int) -> str:
    """``flags`` as ``VM_READ|VM_WRITE|...`` in bit order, unknown bits in hex, ``VM_NONE`` for 0."""
    parts = [name for bit, name in sorted(VM_FLAG_NAMES.items()) if flags & bit]
    rest = flags & ~sum(VM_FLAG_NAMES)
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "VM_NONE"

# enum mm_rss counters (include/linux/mm_types_task.h:36-42)
MM_FILEPAGES = 0
MM_ANONPAGES = 1
MM_SWAPENTS = 2
MM_SHMEMPAGES = 3
NR_MM_COUNTERS = 4


@dataclass(slots=True, eq=False)
class AnonVma:
    """struct anon_vma (include/linux/rmap.h:29-63): the reverse map of a COW family of pages."""

    root: AnonVma | None = None
    parent: AnonVma | None = None
    refcount: int = 1
    degree: int = 1
    # model additions: a stable allocation number (what page->mapping records, see
    # forklab.mm.page_alloc.MemMap.mapping) and the size of the anon_vma's interval tree
    # (``rb_root``: the number of anon_vma_chain links that point at it).
    serial: int = 0
    nr_avc: int = 0


@dataclass(slots=True, eq=False)
class VmAreaStruct:
    """struct vm_area_struct (include/linux/mm_types.h:292-360): one mapping ``[vm_start, vm_end)``.

    ``anon_vma_chain`` is the list of anon_vmas this vma is linked into (its own and, after a
    fork, its ancestors'): the rmap that lets a page be found from a vma.
    """

    vm_start: int
    vm_end: int
    vm_flags: int
    vm_mm: MmStruct | None = None
    vm_pgoff: int = 0
    vm_file: File | None = None
    anon_vma: AnonVma | None = None
    anon_vma_chain: list[AnonVma] = field(default_factory=list)
    vm_page_prot: int = 0

    def __repr__(self) -> str:
        return f"<vma {self.vm_start:#x}-{self.vm_end:#x} {vm_flags_str(self.vm_flags)}>"


@dataclass(slots=True, eq=False)
class MmStruct:
    """struct mm_struct (include/linux/mm_types.h:370-540), the fields the model keeps.

    ``mmap`` is the address-ordered VMA list (the kernel's list + rbtree).
    """

    mmap: list[VmAreaStruct] = field(default_factory=list)
    pgd: dict[int, PteTable] = field(default_factory=dict)
    mm_users: int = 1
    mm_count: int = 1
    map_count: int = 0
    pgtables_bytes: int = 0
    total_vm: int = 0
    locked_vm: int = 0
    pinned_vm: int = 0
    data_vm: int = 0
    exec_vm: int = 0
    stack_vm: int = 0
    hiwater_rss: int = 0
    hiwater_vm: int = 0
    rss_stat: list[int] = field(default_factory=lambda: [0] * NR_MM_COUNTERS)
    def_flags: int = 0
    flags: int = 0
    mmap_base: int = 0x7F0000000000
    task_size: int = 1 << 47
    owner: Task | None = None
    user_ns: UserNamespace | None = None
    exe_file: File | None = None
    context_id: int = 0
    core_state: object | None = None
    vmacache: VmAreaStruct | None = None  # the model's one-entry stand-in for current->vmacache (mm/vmacache.py)

    def __repr__(self) -> str:
        return f"<mm users={self.mm_users} count={self.mm_count} vmas={len(self.mmap)}>"


# the sort keys of an mm's address-ordered vma list (mm.mmap), for bisect
vma_start_key = operator.attrgetter("vm_start")
vma_end_key = operator.attrgetter("vm_end")


def _index_of(mm: MmStruct, vma: VmAreaStruct) -> int:
    """Where ``vma`` is in ``mm.mmap``: found by its start in the address-ordered list, in O(log n) as the
    kernel's vm_prev/vm_next pointers are O(1); by a walk while a split or merge has the list out of order."""
    vmas = mm.mmap
    i = bisect.bisect_left(vmas, vma.vm_start, key=vma_start_key)
    if i < len(vmas) and vmas[i] is vma:
        return i
    for i, v in enumerate(vmas):
        if v is vma:
            return i
    raise InternalError(f"{vma!r} is not in {mm!r}")


def vma_prev_of(mm: MmStruct, vma: VmAreaStruct) -> VmAreaStruct | None:
    """``vma->vm_prev``: the vma before ``vma`` in the address-ordered list (include/linux/mm_types.h:302)."""
    i = _index_of(mm, vma)
    return mm.mmap[i - 1] if i else None


def vma_next_of(mm: MmStruct, vma: VmAreaStruct | None) -> VmAreaStruct | None:
    """``vma->vm_next``, or ``mm->mmap`` for None (include/linux/mm_types.h:302, mm_types.h:373)."""
    if vma is None:
        return mm.mmap[0] if mm.mmap else None
    i = _index_of(mm, vma)
    return mm.mmap[i + 1] if i + 1 < len(mm.mmap) else None
