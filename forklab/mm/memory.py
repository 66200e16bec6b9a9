"""Page tables, fork-time PTE copy, page faults and unmapping (mm/memory.c).

Design essay
------------
**Page tables.** ``mm.pgd`` maps a PMD index (``addr >> 21``) to a numpy array of up to 512 uint64
PTEs in the x86-64 layout (pfn in bits 12+, flag bits below). The upper levels (pgd, p4d, pud,
pmd) are folded into that dict: only PTE pages are allocations here (fallible, 4096 bytes
each in ``mm.pgtables_bytes``). The kernel also counts PMD and PUD pages in pgtables_bytes;
the model does not have them, so ``pgtables_bytes == 4096 * len(mm.pgd)`` always.

**Stored length.** A table's array holds entries 0..len-1 only, len a multiple of 16 grown on a
store past the end (``pte_table_len``, ``pte_table_cover``); the entries beyond read as
pte_none. Slices work unchanged; ``pte_offset`` returns None for an entry beyond the stored
length, as for a missing table. The kernel's counts are unchanged (4096 bytes per table).

**PTE bits.** ``vm_get_page_prot`` (forklab/mm/mmap.py) gives x86's ``protection_map``
(arch/x86/include/asm/pgtable_types.h:200-240): private mappings never carry ``_PAGE_RW`` in ``vm_page_prot`` (writes
go through a fault that sets it with ``maybe_mkwrite``); shared writable mappings do. PROT_NONE
is ``_PAGE_PROTNONE | _PAGE_ACCESSED`` without ``_PAGE_PRESENT``; ``pte_present`` accepts
either bit, as x86 does. The zero page is mapped with ``_PAGE_SPECIAL`` and ``vm_normal_page``
returns None for it, so it is never refcounted, never counted in RSS.

**Fork copy.** ``copy_page_range`` skips vmas without an anon_vma (and not PFNMAP/MIXEDMAP/
hugetlb): shared anonymous memory and untouched private memory are faulted in again by the
child. Otherwise ``copy_pte_range`` allocates the child's PTE page (fallible) and applies
``copy_one_pte`` to every present entry of the table at once (numpy over the index array of
non-empty entries; the rules are exactly the per-entry rules of mm/memory.c:775-792). The model
has no swap, migration or device-private entries, so the non-present branch of copy_one_pte
never runs (a PROT_NONE entry is "present" to x86's pte_present). A failure part-way leaves
the parent's already write-protected PTEs read-only, as in the kernel; the child's partial
tables are torn down by the caller (mmput -> exit_mmap).

**On-demand fork** (``Kernel(fork_page_tables="shared")``, beyond 5.6; docs/model.md). A table
one private anonymous vma alone covers is shared at fork (``share_page_range``): both mms'
pgd entries point at the same array, ``k.mem.pte_shares`` records its holders and which PMD
entries are write-protected (``pmd_write_protected``; the access path treats such an entry as
read-only), and no PTE or page count changes. ``handle_mm_fault`` under a write-protected
PMD entry first runs ``copy_shared_pte_table``; mprotect, partial zaps copy too, and a zap
that empties the table only drops the reference (``zap_shared_pte_tables``).

**Fast paths.** With no listener (``k.listeners`` empty) the traced per-table calls are not
observable, so ``copy_page_range`` runs ``copy_vma_ptes_batched`` (the vma's tables at once,
same fault sites in the same order), ``unmap_single_vma`` runs ``zap_vma_ptes_batched``, and a
user store that faults on a read-only PTE of private anonymous memory is resolved in one step by
``user_store_fastpath`` (mm/uaccess.py). Page counts move
by slices over pfn runs, by fancy indexing where the pfns are checked distinct, and by
``np.add.at`` only when a pfn repeats (``MemMap.add_page_counts``). tests/test_mm_fastpath.py
compares each with the full path. Their temporaries (the pfns, the comparisons, a zap's copy of
the entries) go into ``k.mem.work``'s reusable arrays: fresh ones would cost the host a page
fault per 4 KiB (995 per fork of 1 GiB, 512 per exit) as well as the arithmetic.

**COW fault.** ``do_wp_page`` follows 5.6: an anonymous page is reused in place iff
``reuse_swap_page`` says so, i.e. iff mapcount + swapcount <= 1 — the model has no swap cache,
so the swap count is always 0 and the rule is "mapcount <= 1". ``page_count`` (GUP pins etc.)
is not consulted, exactly as in 5.6. When the total is 1 the page moves to the faulting
vma's own anon_vma (``page_move_anon_rmap``). Otherwise ``wp_page_copy`` allocates a new page
(a zeroed one when the old PTE mapped the zero page), copies, maps it writable and drops the
old mapping (mapcount-1, refcount-1) — the *other* side's next write then finds mapcount 1 and
reuses the original page.

**Shared anonymous memory.** MAP_SHARED|MAP_ANONYMOUS vmas point at a shmem ``File`` whose
``Inode.i_pages`` (pgoff -> pfn) is the page cache. The cache holds one reference per page;
each PTE holds another and one mapcount. Read faults go through ``do_fault_around``
(``fault_around_bytes`` = 64 KiB): pages already in the cache within the 16-page window are
mapped too, as filemap_map_pages does. Write faults on a shared mapping go to
``do_shared_fault``; write-protect faults on shmem pages reuse in place (``wp_page_shared``:
shmem has no ``page_mkwrite``). Pages are zero-filled on first use (``shmem_getpage_gfp``,
forklab/mm/shmem.py).

**Not modelled.** memcg charging (never fails), NUMA hinting faults, THP (all mappings are
4 KiB pages), KSM, userfaultfd, swap, the per-task RSS cache (SPLIT_RSS_COUNTING: the model
updates ``mm.rss_stat`` exactly and immediately), TLB flushing (no TLB).

Fallible sites (``k.fault.should_fail``): ``copy_pte_range:pte_alloc``,
``do_anonymous_page:pte_alloc``, ``do_anonymous_page:alloc_page``, ``wp_page_copy:alloc_page``,
``do_fault_around:pte_alloc_one``, ``__do_fault:pte_alloc_one``,
``shmem_getpage_gfp:alloc_page``, plus the anon_vma sites of forklab.mm.rmap.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from forklab.errors import InternalError
from forklab.include.linux.highmem import copy_user_highpage
from forklab.include.linux.mm_types import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    MM_ANONPAGES,
    MM_FILEPAGES,
    MM_SHMEMPAGES,
    PMD_SHIFT,
    PTE_PFN_SHIFT,
    PTRS_PER_PTE,
    VM,
    MmStruct,
    PteTable,
    VmAreaStruct,
)
from forklab.include.linux.page_flags import PageAnon
from forklab.mm.internal import is_cow_mapping
from forklab.mm.page_alloc import (
    FORK_PAGE_TABLES_SHARED,
    ZERO_PFN,
    PG_anon,
    PG_swapbacked,
    PteShare,
    WorkArrays,
    alloc_page,
    of_pfns,
    pfn_run,
)
from forklab.mm.rmap import (
    anon_vma_prepare,
    page_add_file_rmap,
    page_add_new_anon_rmap,
    page_move_anon_rmap,
    page_remove_rmap,
    unlink_anon_vmas,
)
from forklab.trace import register_type_format, traced
from forklab.uapi import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from forklab.state import KernelState

PMD_SIZE = 1 << PMD_SHIFT
PTE_TABLE_BYTES = PTRS_PER_PTE * 8
SMALL_BATCH = 64  # batches of at most this many PTEs or pfns are worked on in plain Python, not numpy
PTE_TABLE_GRAIN = 16  # a stored PTE table's length is a multiple of this many entries (see pte_table_len)
_PFN_MASK = ((1 << 52) - 1) & ~(PAGE_SIZE - 1)
# pte_modify keeps these (arch/x86/include/asm/pgtable_types.h:124-126, _PAGE_CHG_MASK)
_PAGE_CHG_MASK = _PFN_MASK | _PAGE_SPECIAL | _PAGE_ACCESSED | _PAGE_DIRTY
_NOT_RW = np.uint64(~_PAGE_RW & (2**64 - 1))

# vm_fault_t (include/linux/mm_types.h:675-700)
VM_FAULT_OOM = 0x000001
VM_FAULT_SIGBUS = 0x000002
VM_FAULT_MAJOR = 0x000004
VM_FAULT_WRITE = 0x000008
VM_FAULT_SIGSEGV = 0x000040
VM_FAULT_NOPAGE = 0x000100
VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV

# fault flags (include/linux/mm.h:385-393)
FAULT_FLAG_WRITE = 0x01
FAULT_FLAG_USER = 0x40

FAULT_AROUND_BYTES = 65536  # mm/memory.c:3561
WP_COPY_ALLOC = "wp_page_copy:alloc_page"  # the fault-injection site of wp_page_copy's new page

VM_SPECIAL_PAGES = VM.VM_PFNMAP | VM.VM_MIXEDMAP
_VM_WRITE = VM.VM_WRITE


# --- PTE helpers (arch/x86/include/asm/pgtable.h) -------------------------------------------------


def pte_pfn(pte: int) -> int:
    """The page frame number in a PTE (arch/x86/include/asm/pgtable.h:211-216)."""
    return (pte & _PFN_MASK) >> PTE_PFN_SHIFT


def pfn_pte(pfn: int, prot: int) -> int:
    """A PTE mapping ``pfn`` with protection bits ``prot`` (arch/x86/include/asm/pgtable.h:591-598)."""
    return (pfn << PTE_PFN_SHIFT) | (prot & ~_PFN_MASK)


def pte_present(pte: int) -> bool:
    """Present or PROT_NONE (arch/x86/include/asm/pgtable.h:775-778)."""
    return bool(pte & (_PAGE_PRESENT | _PAGE_PROTNONE))


def pte_write(pte: int) -> bool:
    """_PAGE_RW set (arch/x86/include/asm/pgtable.h:166)."""
    return bool(pte & _PAGE_RW)


def pte_special(pte: int) -> bool:
    """_PAGE_SPECIAL set (arch/x86/include/asm/pgtable.h:196)."""
    return bool(pte & _PAGE_SPECIAL)


def pte_modify(pte: int, newprot: int) -> int:
    """Keep pfn, special, accessed and dirty; take the rest from ``newprot`` (arch/x86/include/asm/pgtable.h:611-624)."""
    return (pte & _PAGE_CHG_MASK) | (newprot & ~_PAGE_CHG_MASK)


def is_zero_pfn(pfn: int) -> bool:
    """The ZERO_PAGE (include/linux/pgtable.h: is_zero_pfn)."""
    return pfn == ZERO_PFN


def maybe_mkwrite(pte: int, vma: VmAreaStruct) -> int:
    """Set _PAGE_RW if the vma is writable (include/linux/mm.h:885-890)."""
    return pte | _PAGE_RW if vma.vm_flags & VM.VM_WRITE else pte


def vma_is_anonymous(vma: VmAreaStruct) -> bool:
    """No vm_ops: private anonymous memory (include/linux/mm.h:569-572); shmem vmas have a file."""
    return vma.vm_file is None


def vma_pages(vma: VmAreaStruct) -> int:
    """Length of the vma in pages (include/linux/mm.h:2585-2588)."""
    return (vma.vm_end - vma.vm_start) >> PAGE_SHIFT


# --- counters -------------------------------------------------------------------------------------


def add_mm_counter(mm: MmStruct, member: int, value: int) -> None:
    """RSS counter update (include/linux/mm.h:1703-1710); never negative in a consistent model."""
    mm.rss_stat[member] += value
    if mm.rss_stat[member] < 0:
        raise InternalError(f"rss counter {member} went negative in {mm!r}")


def mm_counter_file(k: KernelState, pfn: int) -> int:
    """MM_SHMEMPAGES for swap-backed page-cache pages, else MM_FILEPAGES (include/linux/mm.h:1739-1744)."""
    return rss_member(int(k.mem.flags[pfn]) & ~PG_anon)


def rss_member(page_flags: int) -> int:
    """mm_counter from a page's flags: anon (PageAnon), else shmem for swap-backed, else file (include/linux/mm.h:1739-1751)."""
    return MM_ANONPAGES if page_flags & PG_anon else MM_SHMEMPAGES if page_flags & PG_swapbacked else MM_FILEPAGES


def mm_counter(k: KernelState, pfn: int) -> int:
    """Which RSS counter a page belongs to (include/linux/mm.h:1746-1751)."""
    return rss_member(k.mem.pv.flags[pfn])


def add_rss_of(k: KernelState, rss: list[int], pfns: npt.NDArray[np.int64], sign: int,
               run: tuple[int, int] | None = None) -> None:
    """Count ``pfns`` into the RSS counters by kind (mm_counter, include/linux/mm.h:1835-1844).

    NOTE: vectorised over a whole PTE table, where the kernel counts one page at a time. ``run``:
    pfn_run(pfns) when the caller has it (None: not known to be a run).
    """
    n = int(pfns.size)
    if run is None and n > SMALL_BATCH:
        run = pfn_run(pfns, k.mem.work)  # one pass; a run's flags are a slice, not a gather
    fl = of_pfns(k.mem.flags, pfns, run)
    anon = np.bitwise_and(fl, PG_anon, out=k.mem.work.take("add_rss_of", n, np.uint32))  # nonzero: PageAnon
    nr_anon = int(np.count_nonzero(anon))
    rss[MM_ANONPAGES] += sign * nr_anon
    if nr_anon == n:
        return
    nr_shmem = int(np.count_nonzero((anon == 0) & ((fl & PG_swapbacked) != 0)))
    rss[MM_SHMEMPAGES] += sign * nr_shmem
    rss[MM_FILEPAGES] += sign * (n - nr_anon - nr_shmem)


def get_mm_rss(mm: MmStruct) -> int:
    """file + anon + shmem pages (include/linux/mm.h:1753-1758)."""
    return mm.rss_stat[MM_FILEPAGES] + mm.rss_stat[MM_ANONPAGES] + mm.rss_stat[MM_SHMEMPAGES]


# --- page table access ----------------------------------------------------------------------------


def pte_offset(mm: MmStruct, addr: int) -> tuple[PteTable | None, int]:
    """The PTE table holding ``addr``'s entry (None: no table, or not grown that far) and the index (include/linux/mm.h:pte_offset_map)."""
    table = mm.pgd.get(addr >> PMD_SHIFT)
    idx = (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
    return (table if table is not None and idx < table.shape[0] else None), idx


def pte_table_len(idx: int) -> int:
    """The stored length of a PTE table whose highest entry in use is ``idx``: rounded up to PTE_TABLE_GRAIN."""
    # NOTE: the kernel's PTE page always has PTRS_PER_PTE entries (pte_alloc_one, one 4 KiB page, as
    # pgtables_bytes counts); the model stores only entries 0..len-1 and grows the array on a store past
    # the end, so that a process touching a few pages does not carry dense 4 KiB tables. Growing by one
    # grain at a time costs at most 32 small copies per table, next to 512 faults.
    return min(PTRS_PER_PTE, -(-(idx + 1) // PTE_TABLE_GRAIN) * PTE_TABLE_GRAIN)


def pte_table_cover(mm: MmStruct, pmd: int, nr: int) -> PteTable:
    """``mm``'s table at ``pmd`` (it must exist), grown to hold at least ``nr`` entries."""
    table = mm.pgd[pmd]
    if table.shape[0] >= nr:
        return table
    grown = np.zeros(pte_table_len(nr - 1), dtype=np.uint64)
    grown[: table.shape[0]] = table
    mm.pgd[pmd] = grown
    return grown


def get_pte(mm: MmStruct, addr: int) -> int:
    """The PTE for ``addr``; 0 (pte_none) if no table or no entry (mm/memory.c:__follow_pte_pmd, simplified)."""
    table, idx = pte_offset(mm, addr)
    return 0 if table is None else int(table[idx])


def follow_pte_pfn(mm: MmStruct, addr: int) -> int | None:
    """The pfn a present PTE maps at ``addr``, else None (mm/memory.c:4253-4310: follow_pte, reduced)."""
    pte = get_pte(mm, addr)
    return pte_pfn(pte) if pte & _PAGE_PRESENT else None


def pmd_populate(mm: MmStruct, addr: int, filled: PteTable | None = None) -> PteTable:
    """Install a new zeroed PTE table for ``addr``'s PMD slot (mm/memory.c:423-455: __pte_alloc).

    ``filled``: the batched fork copy's entries, installed as the new table in place of zeros.
    """
    pmd = addr >> PMD_SHIFT
    if pmd in mm.pgd:
        raise InternalError(f"PTE table for pmd {pmd:#x} already present")
    table = np.zeros(pte_table_len((addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)), dtype=np.uint64) \
        if filled is None else filled
    mm.pgd[pmd] = table
    mm.pgtables_bytes += PTE_TABLE_BYTES
    return table


def pte_alloc(k: KernelState, mm: MmStruct, addr: int, site: str, filled: PteTable | None = None) -> PteTable | None:
    """pte_alloc(): allocate the PTE page if the PMD is empty; None = ENOMEM (include/linux/mm.h:2052-2053)."""
    table = mm.pgd.get(addr >> PMD_SHIFT)
    if table is not None:
        return table
    if k.fault.should_fail(site):
        return None
    return pmd_populate(mm, addr, filled)


def set_pte_at(mm: MmStruct, addr: int, pte: int) -> None:
    """Write one PTE; the table must exist (arch/x86/include/asm/pgtable.h:1211)."""
    pmd = addr >> PMD_SHIFT
    if pmd not in mm.pgd:
        raise InternalError(f"set_pte_at({addr:#x}) without a PTE table")
    idx = (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
    pte_table_cover(mm, pmd, idx + 1)[idx] = np.uint64(pte)


# --- vm_normal_page and fork ----------------------------------------------------------------------


def vm_normal_page(k: KernelState, vma: VmAreaStruct, addr: int, pte: int) -> int | None:
    """The pfn of a refcounted page, or None for special mappings (zero page, PFNMAP) (mm/memory.c:592-646)."""
    pfn = pte_pfn(pte)
    if pte_special(pte):
        if vma.vm_flags & VM_SPECIAL_PAGES or is_zero_pfn(pfn):
            return None
        return None  # print_bad_pte
    if vma.vm_flags & VM_SPECIAL_PAGES:
        return None
    if is_zero_pfn(pfn):
        return None
    if pfn >= k.mem.max_pfn:
        raise InternalError(f"PTE {pte:#x} at {addr:#x} maps pfn {pfn} beyond mem_map")
    return pfn


@traced
def copy_one_pte(k: KernelState, dst_table: PteTable, src_table: PteTable, idx: np.ndarray,
                 vma: VmAreaStruct, rss: list[int]) -> None:
    """Copy the present PTEs at ``idx``: COW write-protects both sides, child clean (shared) and old (mm/memory.c:695-800).

    Vectorised over the index array of non-empty entries of one table; each entry gets exactly
    the kernel's per-entry treatment.
    """
    vm_flags = vma.vm_flags
    pte = src_table[idx]
    if is_cow_mapping(vm_flags):
        writable = (pte & np.uint64(_PAGE_RW)) != 0
        if writable.any():
            src_table[idx[writable]] &= np.uint64(~_PAGE_RW & (2**64 - 1))
            pte = np.where(writable, pte & np.uint64(~_PAGE_RW & (2**64 - 1)), pte)
    if vm_flags & VM.VM_SHARED:
        pte = pte & np.uint64(~_PAGE_DIRTY & (2**64 - 1))
    pte = pte & np.uint64(~_PAGE_ACCESSED & (2**64 - 1))
    dst_table[idx] = pte
    if vm_flags & VM_SPECIAL_PAGES:
        return
    normal = (pte & np.uint64(_PAGE_SPECIAL)) == 0
    pfns = ((pte[normal] & np.uint64(_PFN_MASK)) >> np.uint64(PTE_PFN_SHIFT)).astype(np.int64)
    pfns = pfns[pfns != ZERO_PFN]
    if pfns.size == 0:
        return
    mem = k.mem
    if int(pfns.max()) >= mem.max_pfn or (mem._refcount[pfns] <= 0).any():
        raise InternalError(f"fork copies a PTE of a free page in {vma!r}")
    np.add.at(mem._refcount, pfns, 1)  # get_page
    np.add.at(mem._mapcount, pfns, 1)  # page_dup_rmap
    add_rss_of(k, rss, pfns, 1)


@traced
def copy_pte_range(k: KernelState, dst_mm: MmStruct, src_mm: MmStruct, vma: VmAreaStruct,
                   addr: int, end: int) -> int:
    """Allocate the child's PTE page and copy the entries of ``[addr, end)`` (mm/memory.c:802-863)."""
    if pte_alloc(k, dst_mm, addr, "copy_pte_range:pte_alloc") is None:
        return -errno.ENOMEM
    src_table = src_mm.pgd.get(addr >> PMD_SHIFT)
    if src_table is None:
        raise InternalError("copy_pte_range without a source table")
    dst_table = pte_table_cover(dst_mm, addr >> PMD_SHIFT, src_table.shape[0])
    first = (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
    last = first + ((end - addr) >> PAGE_SHIFT)
    window = src_table[first:last]
    idx = np.nonzero(window)[0] + first
    rss = [0, 0, 0, 0]
    if idx.size:
        copy_one_pte(k, dst_table, src_table, idx, vma, rss)
    for member, value in enumerate(rss):
        if value:
            add_mm_counter(dst_mm, member, value)
    return 0


def pmd_spans(mm: MmStruct, start: int, end: int) -> list[tuple[PteTable, int, int, int]]:
    """The allocated PTE tables under ``[start, end)`` in address order: (table, first address, first index, end index)."""
    first, last = start >> PMD_SHIFT, (end - 1) >> PMD_SHIFT
    pgd = mm.pgd
    if first == last:  # inside one table (most vmas): the edge case below, with lo = start and the end at end
        table = pgd.get(first)
        if table is None:
            return []
        i = (start >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
        return [(table, start, i, i + ((end - start) >> PAGE_SHIFT))]
    spans = [] if last - first < 2 else \
        [(pgd[pmd], pmd << PMD_SHIFT, 0, PTRS_PER_PTE) for pmd in sorted(p for p in pgd if first < p < last)]
    for pmd in (first, last):  # the edge tables may be partly outside the range
        if pmd in pgd:
            lo = max(start, pmd << PMD_SHIFT)
            i = (lo >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
            edge = (pgd[pmd], lo, i, i + ((min(end, (pmd + 1) << PMD_SHIFT) - lo) >> PAGE_SHIFT))
            spans.insert(0 if pmd == first else len(spans), edge)
    return spans


def normal_pfn_list(ptes: npt.NDArray[np.uint64]) -> list[int]:
    """normal_pfns of a few entries, as a list."""
    return [pfn for pte in ptes.tolist() if pte and not pte & _PAGE_SPECIAL  # pte_none maps no page
            if (pfn := (pte & _PFN_MASK) >> PTE_PFN_SHIFT) != ZERO_PFN]


def normal_pfns(work: WorkArrays, ptes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """The refcounted pfns among ``ptes`` (vm_normal_page's rule for a vma without VM_PFNMAP/VM_MIXEDMAP), in order.

    The result may be ``work``'s array: valid until normal_pfns is called again.
    """
    if ptes.size <= SMALL_BATCH:  # a few entries: plain Python beats a dozen numpy calls
        return np.array(normal_pfn_list(ptes), dtype=np.int64)
    shifted = np.right_shift(ptes, np.uint64(PTE_PFN_SHIFT), out=work.take("normal_pfns", ptes.shape[0], np.uint64))
    pfns: npt.NDArray[np.int64] = shifted.view(np.int64)  # masked in place: fewer passes
    pfns &= _PFN_MASK >> PTE_PFN_SHIFT
    special = int(np.bitwise_or.reduce(ptes)) & _PAGE_SPECIAL
    if not special and int(pfns.min()) != ZERO_PFN:  # every entry maps a normal page (no pte_none among them)
        return pfns
    keep = pfns != ZERO_PFN
    if special:
        keep &= (ptes & np.uint64(_PAGE_SPECIAL)) == 0
    kept: npt.NDArray[np.int64] = pfns[keep]
    return kept


def tables_normal_pfns(work: WorkArrays, tables: list[PteTable]) -> npt.NDArray[np.int64]:
    """normal_pfns of every entry of ``tables`` together (the result may be ``work``'s array, as normal_pfns's)."""
    return normal_pfns(work, work.concatenate("pte_tables", tables))


def copy_vma_ptes_batched(k: KernelState, dst_mm: MmStruct, src_mm: MmStruct, vma: VmAreaStruct) -> int:
    """copy_page_range's table loop for a listener-free kernel: every table of ``vma`` at once; same result, same fault sites."""
    # NOTE: stands for copy_page_range -> copy_pte_range -> copy_one_pte (mm/memory.c) table by table:
    # the child's entries of all the tables are made at once with the child's mask (its new tables are
    # views of that one array); the tables are allocated in address order (each a fault-injection
    # site, stopping at the first failure, as the kernel's loop does), each parent table is
    # write-protected once allocated, and the page counts and RSS are updated once for the tables copied.
    vm_flags = vma.vm_flags
    cow = is_cow_mapping(vm_flags)
    child = ~_PAGE_ACCESSED & ~(_PAGE_DIRTY if vm_flags & VM.VM_SHARED else 0) & ~(_PAGE_RW if cow else 0)
    spans = pmd_spans(src_mm, vma.vm_start, vma.vm_end)
    if not spans:
        return 0
    windows = [src[first:last] for src, _lo, first, last in spans]
    mask = np.uint64(child & (2**64 - 1))
    if len(windows) == 1:
        made = windows[0] & mask  # one table (most vmas): the masked copy in one pass
    else:
        made = np.concatenate(windows)
        made &= mask
    at = 0
    ret = 0
    for (src, lo, first, last), src_w in zip(spans, windows, strict=True):
        pmd = lo >> PMD_SHIFT
        n = src_w.shape[0]
        whole = first == 0 and last >= src.shape[0] and pmd not in dst_mm.pgd
        filled = (made if len(spans) == 1 else made[at : at + n]) if whole else None  # one table: no view object
        if pte_alloc(k, dst_mm, lo, "copy_pte_range:pte_alloc", filled) is None:
            ret = -errno.ENOMEM
            break
        if cow:
            src_w &= _NOT_RW  # ptep_set_wrprotect
        if not whole:
            pte_table_cover(dst_mm, pmd, src.shape[0])[first : first + n] = made[at : at + n]
        at += n
    if at and not vm_flags & VM_SPECIAL_PAGES:
        dup_page_refs(k, dst_mm, vma, made[:at])
    return ret


def dup_page_refs(k: KernelState, dst_mm: MmStruct, vma: VmAreaStruct, ptes: npt.NDArray[np.uint64]) -> None:
    """get_page + page_dup_rmap for every normal page ``ptes`` map, and their RSS into ``dst_mm``."""
    if ptes.size <= SMALL_BATCH:
        dup_few_page_refs(k, dst_mm, vma, normal_pfn_list(ptes))
        return
    mem = k.mem
    pfns = normal_pfns(mem.work, ptes)
    if pfns.size == 0:
        return
    run = pfn_run(pfns, mem.work)
    if int(pfns.max()) >= mem.max_pfn or int(of_pfns(mem._refcount, pfns, run).min()) <= 0:
        raise InternalError(f"fork copies a PTE of a free page in {vma!r}")
    mem.add_page_counts(pfns, 1, run)
    rss = [0, 0, 0, 0]
    add_rss_of(k, rss, pfns, 1, run)
    for member, value in enumerate(rss):
        if value:
            add_mm_counter(dst_mm, member, value)


def dup_few_page_refs(k: KernelState, dst_mm: MmStruct, vma: VmAreaStruct, pfns: list[int]) -> None:
    """dup_page_refs of a few pages, one by one through the struct page views (numpy calls cost more here)."""
    mem = k.mem
    pv = mem.pv
    if pfns and max(pfns) >= mem._next_pfn:
        raise InternalError(f"fork copies a PTE beyond mem_map in {vma!r}")
    rss = [0, 0, 0, 0]
    for pfn in pfns:
        refcount = pv._refcount[pfn]
        if refcount <= 0:
            raise InternalError(f"fork copies a PTE of a free page in {vma!r}")
        pv._refcount[pfn] = refcount + 1
        pv._mapcount[pfn] += 1
        rss[rss_member(pv.flags[pfn])] += 1
    for member, value in enumerate(rss):
        if value:
            add_mm_counter(dst_mm, member, value)


@traced
def copy_page_range(k: KernelState, dst_mm: MmStruct, src_mm: MmStruct, vma: VmAreaStruct) -> int:
    """Copy the parent's PTEs of ``vma`` into the child, or skip when faults can refill them (mm/memory.c:955-1020)."""
    if not vma.vm_flags & (VM.VM_HUGETLB | VM.VM_PFNMAP | VM.VM_MIXEDMAP) and vma.anon_vma is None:
        return 0
    if k.fork_page_tables == FORK_PAGE_TABLES_SHARED:
        return share_page_range(k, dst_mm, src_mm, vma)
    if not k.listeners:
        return copy_vma_ptes_batched(k, dst_mm, src_mm, vma)
    start, end = vma.vm_start, vma.vm_end
    first, last = start >> PMD_SHIFT, (end - 1) >> PMD_SHIFT
    for pmd in sorted(p for p in src_mm.pgd if first <= p <= last):  # pmd_none_or_clear_bad skips the rest
        ret = copy_pte_range(k, dst_mm, src_mm, vma, max(start, pmd << PMD_SHIFT),
                             min(end, (pmd + 1) << PMD_SHIFT))
        if ret:
            return ret
    return 0


# --- on-demand fork (Kernel(fork_page_tables="shared")), beyond Linux 5.6 -------------------------

ODF_SOURCE = "on-demand fork (Zhao, Gong and Fonseca, EuroSys 2021)"  # the decisions' source: not in Linux
_ODF_EXCLUDED = VM.VM_SHARED | VM.VM_DONTCOPY | VM.VM_WIPEONFORK | VM_SPECIAL_PAGES | VM.VM_HUGETLB


def pte_share_of(k: KernelState, mm: MmStruct, pmd: int) -> PteShare | None:
    """The share record of ``mm``'s table at ``pmd``: it is shared, or ``mm``'s PMD entry is still write-protected."""
    shares = k.mem.pte_shares
    if not shares:
        return None
    table = mm.pgd.get(pmd)
    return None if table is None else shares.get(table)


def pmd_write_protected(k: KernelState, mm: MmStruct, addr: int) -> bool:
    """Whether the PMD entry above ``addr`` has its write bit clear (an on-demand fork shared the table below it)."""
    share = pte_share_of(k, mm, addr >> PMD_SHIFT)
    return share is not None and mm in share.wrprotected


def pte_table_shareable(mm: MmStruct, pmd: int) -> bool:
    """One private anonymous vma with an anon_vma, copied by fork, covers every vma part under ``pmd``'s table."""
    lo, hi = pmd << PMD_SHIFT, (pmd + 1) << PMD_SHIFT
    over = [v for v in mm.mmap if v.vm_start < hi and v.vm_end > lo]
    return len(over) == 1 and over[0].vm_file is None and over[0].anon_vma is not None \
        and not over[0].vm_flags & _ODF_EXCLUDED


def share_pte_table(k: KernelState, dst_mm: MmStruct, src_mm: MmStruct, pmd: int) -> None:
    """Point ``dst_mm``'s PMD entry at ``src_mm``'s table: one more holder, both PMD entries write-protected."""
    table = src_mm.pgd[pmd]
    shares = k.mem.pte_shares
    share = shares.get(table)
    if share is None:
        share = PteShare(table, pmd, [src_mm], [])
        shares.add(share)
    share.holders.append(dst_mm)
    for mm in (src_mm, dst_mm):
        if mm not in share.wrprotected:
            share.wrprotected.append(mm)
    dst_mm.pgd[pmd] = table
    dst_mm.pgtables_bytes += PTE_TABLE_BYTES
    if k.listeners:
        k.decide(ODF_SOURCE, f"share PTE table {pmd:#x} (refcount {len(share.holders)})", ("pmd", pmd),
                 ("refcount", len(share.holders)))


def share_page_range(k: KernelState, dst_mm: MmStruct, src_mm: MmStruct, vma: VmAreaStruct) -> int:
    """copy_page_range of the on-demand fork: share each table ``vma`` alone covers, copy the others."""
    eligible = vma.vm_file is None and vma.anon_vma is not None and not vma.vm_flags & _ODF_EXCLUDED
    shared = []
    ret = 0
    for table, lo, _first, _last in pmd_spans(src_mm, vma.vm_start, vma.vm_end):
        pmd = lo >> PMD_SHIFT
        if dst_mm.pgd.get(pmd) is table:
            continue
        inside = vma.vm_start <= pmd << PMD_SHIFT and (pmd + 1) << PMD_SHIFT <= vma.vm_end  # no other vma under it
        if eligible and pmd not in dst_mm.pgd and (inside or pte_table_shareable(src_mm, pmd)):
            share_pte_table(k, dst_mm, src_mm, pmd)
            shared.append(table)
            continue
        ret = copy_pte_range(k, dst_mm, src_mm, vma, lo, min(vma.vm_end, (pmd + 1) << PMD_SHIFT))
        if ret:
            break
    if shared:  # the child maps the shared tables' pages too: its RSS counts them
        rss = [0, 0, 0, 0]
        add_rss_of(k, rss, tables_normal_pfns(k.mem.work, shared), 1)
        for member, value in enumerate(rss):
            if value:
                add_mm_counter(dst_mm, member, value)
    return ret


def release_pte_share(k: KernelState, share: PteShare, mm: MmStruct) -> None:
    """``mm`` no longer holds ``share``'s table; the record goes once one holder is left with a writable PMD entry."""
    share.holders.remove(mm)
    if mm in share.wrprotected:
        share.wrprotected.remove(mm)
    if len(share.holders) == 1 and not share.wrprotected:
        k.mem.pte_shares.remove(share)


def copy_shared_pte_table(k: KernelState, mm: MmStruct, pmd: int, site: str | None) -> int:
    """Give ``mm`` its own copy of a shared table (or, its last holder, write access again); 0 or -ENOMEM."""
    share = pte_share_of(k, mm, pmd)
    if share is None:
        raise InternalError(f"copy_shared_pte_table: table {pmd:#x} is not shared")
    table = share.table
    if len(share.holders) == 1:
        k.mem.pte_shares.remove(share)
        if k.listeners:
            k.decide(ODF_SOURCE, f"reuse PTE table {pmd:#x} (refcount 1)", ("pmd", pmd), ("refcount", 1))
        return 0
    if site is not None and k.fault.should_fail(site):
        return -errno.ENOMEM
    for vma in [v for v in mm.mmap if v.vm_start < (pmd + 1) << PMD_SHIFT and v.vm_end > pmd << PMD_SHIFT]:
        if is_cow_mapping(vma.vm_flags):  # copy_one_pte's ptep_set_wrprotect, for every holder
            lo = max(vma.vm_start, pmd << PMD_SHIFT)
            i = (lo >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
            table[i : i + ((min(vma.vm_end, (pmd + 1) << PMD_SHIFT) - lo) >> PAGE_SHIFT)] &= _NOT_RW
    mine = table & np.uint64(~_PAGE_ACCESSED & (2**64 - 1))  # copy_one_pte's pte_mkold
    k.mem.add_page_counts(normal_pfns(k.mem.work, mine), 1)  # get_page + page_dup_rmap: two tables map the pages now
    mm.pgd[pmd] = mine
    release_pte_share(k, share, mm)
    if k.listeners:
        k.decide(ODF_SOURCE, f"copy shared PTE table {pmd:#x} (refcount {len(share.holders) + 1})", ("pmd", pmd),
                 ("refcount", len(share.holders) + 1))
    return 0


def unshare_pte_range(k: KernelState, mm: MmStruct, start: int, end: int) -> None:
    """Copy every shared table under ``[start, end)`` before its entries change (mprotect, a partial zap)."""
    for table, lo, _first, _last in pmd_spans(mm, start, end):
        if k.mem.pte_shares.get(table) is not None:
            copy_shared_pte_table(k, mm, lo >> PMD_SHIFT, None)


def zap_shared_pte_tables(k: KernelState, mm: MmStruct, start: int, end: int, rss: list[int]) -> None:
    """Before a zap: drop ``mm``'s reference to each shared table the range empties, copy those it only thins."""
    dropped = []
    for table, lo, first, last in pmd_spans(mm, start, end):
        share = k.mem.pte_shares.get(table)
        if share is None:
            continue
        pmd = lo >> PMD_SHIFT
        if len(share.holders) > 1 and not table[:first].any() and not table[last:].any():
            release_pte_share(k, share, mm)
            del mm.pgd[pmd]  # pmd_clear: the table stays with its other holders
            mm.pgtables_bytes -= PTE_TABLE_BYTES
            dropped.append(table)
            if k.listeners:
                k.decide(ODF_SOURCE, f"drop shared PTE table {pmd:#x} (refcount {len(share.holders)})",
                         ("pmd", pmd), ("refcount", len(share.holders)))
        else:
            copy_shared_pte_table(k, mm, pmd, None)
    if dropped:
        add_rss_of(k, rss, tables_normal_pfns(k.mem.work, dropped), -1)


# --- unmapping ------------------------------------------------------------------------------------


def zap_pte_range(k: KernelState, vma: VmAreaStruct, addr: int, end: int, rss: list[int]) -> None:
    """Clear the PTEs of ``[addr, end)`` in one table, dropping rmap, refcounts and RSS (mm/memory.c:1022-1130).

    Vectorised over the table like copy_one_pte: page_remove_rmap and the mmu_gather's
    put_page for every normal page; pages whose last reference goes are freed.
    """
    mm = vma.vm_mm
    if mm is None:
        raise InternalError(f"zap on a detached vma {vma!r}")
    table, first = pte_offset(mm, addr)
    if table is None:
        return
    last = first + ((end - addr) >> PAGE_SHIFT)
    idx = np.nonzero(table[first:last])[0] + first
    if idx.size == 0:
        return
    ptes = table[idx]
    table[idx] = np.uint64(0)
    if vma.vm_flags & VM_SPECIAL_PAGES:
        return
    normal = (ptes & np.uint64(_PAGE_SPECIAL)) == 0
    pfns = ((ptes[normal] & np.uint64(_PFN_MASK)) >> np.uint64(PTE_PFN_SHIFT)).astype(np.int64)
    pfns = pfns[pfns != ZERO_PFN]
    if pfns.size == 0:
        return
    mem = k.mem
    if int(pfns.max()) >= mem.max_pfn:
        raise InternalError(f"zap of a PTE beyond mem_map in {vma!r}")
    add_rss_of(k, rss, pfns, -1)
    np.subtract.at(mem._mapcount, pfns, 1)  # page_remove_rmap
    np.subtract.at(mem._refcount, pfns, 1)  # tlb_remove_page -> put_page
    if (mem._mapcount[pfns] < -1).any() or (mem._refcount[pfns] < 0).any():
        raise InternalError(f"zap underflowed a page count in {vma!r}")
    for pfn in np.unique(pfns[mem._refcount[pfns] == 0]).tolist():
        mem._free_pfn(pfn)


def zap_vma_ptes_batched(k: KernelState, vma: VmAreaStruct, start: int, end: int, rss: list[int]) -> None:
    """zap_pte_range over every table of ``[start, end)`` at once, for a listener-free kernel; the same result."""
    # NOTE: stands for unmap_page_range -> zap_pte_range (mm/memory.c) table by table: every entry is
    # cleared, then page_remove_rmap and the mmu_gather's put_page run for all the pages together,
    # and the pages whose last reference went are freed.
    mm = vma.vm_mm
    if mm is None:
        raise InternalError(f"zap on a detached vma {vma!r}")
    windows = [table[first:last] for table, _lo, first, last in pmd_spans(mm, start, end)]
    if not windows:
        return
    if len(windows) == 1 and windows[0].shape[0] <= SMALL_BATCH:  # a few entries of one table (most vmas)
        window = windows[0]
        few = [] if vma.vm_flags & VM_SPECIAL_PAGES else normal_pfn_list(window)  # read before the clear
        window.fill(0)
        zap_few_page_refs(k, vma, few, rss)
        return
    mem = k.mem
    ptes = mem.work.concatenate("zap_vma_ptes_batched", windows)
    for window in windows:
        window.fill(0)
    if vma.vm_flags & VM_SPECIAL_PAGES:
        return
    pfns = normal_pfns(mem.work, ptes)
    if pfns.size == 0:
        return
    if int(pfns.max()) >= mem.max_pfn:
        raise InternalError(f"zap of a PTE beyond mem_map in {vma!r}")
    run = pfn_run(pfns, mem.work)
    add_rss_of(k, rss, pfns, -1, run)
    distinct = mem.add_page_counts(pfns, -1, run)
    refcount = of_pfns(mem._refcount, pfns, run)
    if int(of_pfns(mem._mapcount, pfns, run).min()) < -1 or int(refcount.min()) < 0:
        raise InternalError(f"zap underflowed a page count in {vma!r}")
    freed = pfns[refcount == 0]
    if freed.size:
        mem._free_pfns(freed if distinct else np.unique(freed))


def zap_few_page_refs(k: KernelState, vma: VmAreaStruct, pfns: list[int], rss: list[int]) -> None:
    """zap_vma_ptes_batched's page counts for a few pages, one by one through the struct page views."""
    mem = k.mem
    pv = mem.pv
    if pfns and max(pfns) >= mem._next_pfn:
        raise InternalError(f"zap of a PTE beyond mem_map in {vma!r}")
    freed = []
    for pfn in pfns:
        rss[rss_member(pv.flags[pfn])] -= 1
        mapcount = pv._mapcount[pfn] - 1
        refcount = pv._refcount[pfn] - 1
        pv._mapcount[pfn] = mapcount
        pv._refcount[pfn] = refcount
        if mapcount < -1 or refcount < 0:  # the counts only fall, so a pfn mapped twice is checked at its lowest
            raise InternalError(f"zap underflowed a page count in {vma!r}")
        if refcount == 0:  # once per pfn, at its last reference in pfns
            freed.append(pfn)
    if freed:
        freed.sort()
        mem._free_pfns(np.array(freed, dtype=np.int64))


def unmap_single_vma(k: KernelState, vma: VmAreaStruct, start_addr: int, end_addr: int) -> None:
    """Zap the part of ``vma`` inside ``[start_addr, end_addr)`` (mm/memory.c:1261-1320)."""
    start = max(vma.vm_start, start_addr)
    if start >= vma.vm_end:
        return
    end = min(vma.vm_end, end_addr)
    if end <= vma.vm_start:
        return
    mm = vma.vm_mm
    if mm is None:
        raise InternalError(f"unmap of a detached vma {vma!r}")
    rss = [0, 0, 0, 0]
    if k.mem.pte_shares:
        zap_shared_pte_tables(k, mm, start, end, rss)
    if k.listeners:
        first, last = start >> PMD_SHIFT, (end - 1) >> PMD_SHIFT
        for pmd in sorted(p for p in mm.pgd if first <= p <= last):
            lo = max(start, pmd << PMD_SHIFT)
            hi = min(end, (pmd + 1) << PMD_SHIFT)
            zap_pte_range(k, vma, lo, hi, rss)
    else:
        zap_vma_ptes_batched(k, vma, start, end, rss)
    for member, value in enumerate(rss):
        if value:
            add_mm_counter(mm, member, value)


def unmap_vmas(k: KernelState, vmas: list[VmAreaStruct], start_addr: int, end_addr: int) -> None:
    """Unmap ``[start_addr, end_addr)`` of each vma of the list (mm/memory.c:1322-1334)."""
    for vma in vmas:
        if vma.vm_start >= end_addr:
            break
        unmap_single_vma(k, vma, start_addr, end_addr)


def zap_page_range(k: KernelState, vma: VmAreaStruct, start: int, size: int) -> None:
    """Remove user pages in a range (MADV_DONTNEED) without freeing page tables (mm/memory.c:1344-1362)."""
    unmap_single_vma(k, vma, start, start + size)


# --- faults ---------------------------------------------------------------------------------------


register_type_format(MmStruct, repr)  # <mm users=1 count=1 vmas=3>
register_type_format(VmAreaStruct, repr)  # <vma 0x...-0x... VM_READ|...>


@dataclass(slots=True)
class VmFault:
    """struct vm_fault (include/linux/mm.h:412-450), reduced to what the model's handlers use."""

    vma: VmAreaStruct
    address: int
    flags: int
    pgoff: int = 0
    orig_pte: int = 0
    page: int | None = None
    prealloc_pte: bool = False


def _mm_of(vma: VmAreaStruct) -> MmStruct:
    if vma.vm_mm is None:
        raise InternalError(f"fault on a detached vma {vma!r}")
    return vma.vm_mm


@traced
def wp_page_reuse(k: KernelState, vmf: VmFault) -> None:
    """Make the faulting PTE young, dirty and (if VM_WRITE) writable in place (mm/memory.c:2458-2478)."""
    entry = maybe_mkwrite(vmf.orig_pte | _PAGE_ACCESSED | _PAGE_DIRTY, vmf.vma)
    set_pte_at(_mm_of(vmf.vma), vmf.address, entry)


@traced
def wp_page_copy(k: KernelState, vmf: VmFault) -> int:
    """Break COW: new page (zeroed for the zero page, else a copy), map it writable, drop the old (mm/memory.c:2496-2641)."""
    vma = vmf.vma
    mm = _mm_of(vma)
    old_page = vmf.page
    if anon_vma_prepare(k, vma):
        if old_page is not None:
            put_page(k, old_page)
        return VM_FAULT_OOM
    new_page = alloc_page(k, WP_COPY_ALLOC, zeroed=is_zero_pfn(pte_pfn(vmf.orig_pte)))
    if new_page is None:
        if old_page is not None:
            put_page(k, old_page)
        return VM_FAULT_OOM
    if not is_zero_pfn(pte_pfn(vmf.orig_pte)):
        copy_user_highpage(k, new_page, pte_pfn(vmf.orig_pte))  # cow_user_page
    if old_page is not None:
        if not PageAnon(k, old_page):
            add_mm_counter(mm, mm_counter_file(k, old_page), -1)
            add_mm_counter(mm, MM_ANONPAGES, 1)
    else:
        add_mm_counter(mm, MM_ANONPAGES, 1)
    entry = maybe_mkwrite(pfn_pte(new_page, vma.vm_page_prot) | _PAGE_DIRTY, vma)
    page_add_new_anon_rmap(k, new_page, vma, vmf.address)
    set_pte_at(mm, vmf.address, entry)
    if old_page is not None:
        page_remove_rmap(k, old_page)
        put_page(k, old_page)  # the reference the old PTE held
        put_page(k, old_page)  # the reference do_wp_page took
    return VM_FAULT_WRITE


def wp_page_shared(k: KernelState, vmf: VmFault) -> int:
    """Write fault on a present shared page: shmem has no page_mkwrite, reuse in place (mm/memory.c:2698-2730)."""
    wp_page_reuse(k, vmf)
    return VM_FAULT_WRITE


@traced
def do_wp_page(k: KernelState, vmf: VmFault) -> int:
    """Write to a present read-only PTE: reuse or copy, as 5.6 decides (mm/memory.c:2750-2832)."""
    from forklab.mm.swapfile import (
        reuse_swap_page,  # import cycle: forklab.mm.memory is still loading when this module loads
    )

    vma = vmf.vma
    vmf.page = vm_normal_page(k, vma, vmf.address, vmf.orig_pte)
    if vmf.page is None:
        if (vma.vm_flags & (VM.VM_WRITE | VM.VM_SHARED)) == (VM.VM_WRITE | VM.VM_SHARED):
            wp_page_reuse(k, vmf)  # wp_pfn_shared, no pfn_mkwrite
            return VM_FAULT_WRITE
        return wp_page_copy(k, vmf)
    if PageAnon(k, vmf.page) and k.has("cow_reuse_page_count"):
        if k.mem.page(vmf.page)._refcount == 1:  # 5.9+: reuse only an unshared, unpinned page
            if k.listeners:
                k.decide("mm/memory.c:do_wp_page (5.9)", f"reuse page {vmf.page}: refcount 1", ("pfn", vmf.page),
                         ("refcount", 1))
            page_move_anon_rmap(k, vmf.page, vma)
            wp_page_reuse(k, vmf)
            return VM_FAULT_WRITE
    elif PageAnon(k, vmf.page):
        reuse, total_map_swapcount = reuse_swap_page(k, vmf.page)
        if reuse:
            if k.listeners:
                k.decide("mm/memory.c:2804", f"reuse page {vmf.page}: mapcount {total_map_swapcount}",
                         ("pfn", vmf.page), ("mapcount", total_map_swapcount))
            if total_map_swapcount == 1:
                page_move_anon_rmap(k, vmf.page, vma)
            wp_page_reuse(k, vmf)
            return VM_FAULT_WRITE
    elif (vma.vm_flags & (VM.VM_WRITE | VM.VM_SHARED)) == (VM.VM_WRITE | VM.VM_SHARED):
        return wp_page_shared(k, vmf)
    if k.listeners:
        k.decide("mm/memory.c:2828", f"copy page {vmf.page}: mapcount {page_mapcount(k, vmf.page)}",
                 ("pfn", vmf.page), ("mapcount", page_mapcount(k, vmf.page)))
    get_page(k, vmf.page)
    return wp_page_copy(k, vmf)


@traced
def do_anonymous_page(k: KernelState, vmf: VmFault) -> int:
    """First touch of private anonymous memory: zero page on read, fresh zeroed page on write (mm/memory.c:3153-3266)."""
    vma = vmf.vma
    mm = _mm_of(vma)
    if vma.vm_flags & VM.VM_SHARED:
        return VM_FAULT_SIGBUS
    if pte_alloc(k, mm, vmf.address, "do_anonymous_page:pte_alloc") is None:
        return VM_FAULT_OOM
    if not vmf.flags & FAULT_FLAG_WRITE:
        set_pte_at(mm, vmf.address, pfn_pte(ZERO_PFN, vma.vm_page_prot) | _PAGE_SPECIAL)
        return 0
    if anon_vma_prepare(k, vma):
        return VM_FAULT_OOM
    page = alloc_page(k, "do_anonymous_page:alloc_page", zeroed=True)
    if page is None:
        return VM_FAULT_OOM
    entry = pfn_pte(page, vma.vm_page_prot)
    if vma.vm_flags & VM.VM_WRITE:
        entry |= _PAGE_DIRTY | _PAGE_RW
    add_mm_counter(mm, MM_ANONPAGES, 1)
    page_add_new_anon_rmap(k, page, vma, vmf.address)
    set_pte_at(mm, vmf.address, entry)
    return 0


def _install_prealloc(mm: MmStruct, vmf: VmFault) -> PteTable:
    table = mm.pgd.get(vmf.address >> PMD_SHIFT)
    if table is not None:
        return table
    if not vmf.prealloc_pte:
        raise InternalError("mapping a file page without a PTE table or a preallocated one")
    vmf.prealloc_pte = False
    return pmd_populate(mm, vmf.address)


def alloc_set_pte(k: KernelState, vmf: VmFault, page: int) -> int:
    """Map the page-cache ``page`` at the fault address (mm/memory.c:3470-3534)."""
    vma = vmf.vma
    mm = _mm_of(vma)
    _install_prealloc(mm, vmf)
    if get_pte(mm, vmf.address):
        return VM_FAULT_NOPAGE
    write = bool(vmf.flags & FAULT_FLAG_WRITE)
    entry = pfn_pte(page, vma.vm_page_prot)
    if write:
        entry = maybe_mkwrite(entry | _PAGE_DIRTY, vma)
    if write and not vma.vm_flags & VM.VM_SHARED:
        raise InternalError("private file mappings (do_cow_fault) are not modelled")
    add_mm_counter(mm, mm_counter_file(k, page), 1)
    page_add_file_rmap(k, page)
    set_pte_at(mm, vmf.address, entry)
    return 0


def do_fault_around(k: KernelState, vmf: VmFault) -> int:
    """Map up to 16 cached pages around a read fault before calling ->fault (mm/memory.c:3600-3651)."""
    from forklab.mm.filemap import filemap_map_pages  # import cycle: mm/filemap.py imports this module

    vma = vmf.vma
    mm = _mm_of(vma)
    address = vmf.address
    nr_pages = FAULT_AROUND_BYTES >> PAGE_SHIFT
    mask = ~(nr_pages * PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    start_addr = max(address & mask, vma.vm_start)
    off = ((address - start_addr) >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
    start_pgoff = vmf.pgoff - off
    end_pgoff = start_pgoff - ((start_addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)) + PTRS_PER_PTE - 1
    end_pgoff = min(end_pgoff, vma_pages(vma) + vma.vm_pgoff - 1, start_pgoff + nr_pages - 1)
    if (address >> PMD_SHIFT) not in mm.pgd:
        if k.fault.should_fail("do_fault_around:pte_alloc_one"):
            return 0
        vmf.prealloc_pte = True
    filemap_map_pages(k, vmf, start_pgoff, end_pgoff)
    return VM_FAULT_NOPAGE if get_pte(mm, address) else 0


def __do_fault(k: KernelState, vmf: VmFault) -> int:
    """Preallocate the PTE page, then call vm_ops->fault (shmem_fault) (mm/memory.c:3268-3305)."""
    from forklab.mm.shmem import shmem_fault  # import cycle: mm/shmem.py imports this module

    mm = _mm_of(vmf.vma)
    if (vmf.address >> PMD_SHIFT) not in mm.pgd and not vmf.prealloc_pte:
        if k.fault.should_fail("__do_fault:pte_alloc_one"):
            return VM_FAULT_OOM
        vmf.prealloc_pte = True
    ret, page = shmem_fault(k, vmf.vma, vmf.address)
    vmf.page = page
    return ret


def finish_fault(k: KernelState, vmf: VmFault) -> int:
    """Map the page the ->fault handler returned (mm/memory.c:3536-3560)."""
    if vmf.page is None:
        raise InternalError("finish_fault without a page")
    return alloc_set_pte(k, vmf, vmf.page)


@traced
def do_read_fault(k: KernelState, vmf: VmFault) -> int:
    """Read fault on a file/shmem vma: fault-around, then ->fault and map (mm/memory.c:3676-3701)."""
    ret = do_fault_around(k, vmf)
    if ret:
        return ret
    ret = __do_fault(k, vmf)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        return ret
    ret |= finish_fault(k, vmf)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE) and vmf.page is not None:
        put_page(k, vmf.page)
    return ret


@traced
def do_shared_fault(k: KernelState, vmf: VmFault) -> int:
    """Write fault on a shared file/shmem vma: ->fault, map writable and dirty (mm/memory.c:3742-3783)."""
    ret = __do_fault(k, vmf)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        return ret
    ret |= finish_fault(k, vmf)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE) and vmf.page is not None:
        put_page(k, vmf.page)
    return ret


@traced
def do_fault(k: KernelState, vmf: VmFault) -> int:
    """Fault on a vma with vm_ops: read, COW or shared variant (mm/memory.c:3785-3830)."""
    if not vmf.flags & FAULT_FLAG_WRITE:
        ret = do_read_fault(k, vmf)
    elif not vmf.vma.vm_flags & VM.VM_SHARED:
        raise InternalError("private file mappings (do_cow_fault) are not modelled")
    else:
        ret = do_shared_fault(k, vmf)
    vmf.prealloc_pte = False  # pte_free of an unused preallocation
    return ret


@traced
def handle_pte_fault(k: KernelState, vmf: VmFault) -> int:
    """Dispatch on the PTE: none -> anonymous/file fault, write to read-only -> do_wp_page (mm/memory.c:4008-4094)."""
    mm = _mm_of(vmf.vma)
    vmf.orig_pte = get_pte(mm, vmf.address)
    if vmf.orig_pte == 0:
        if vma_is_anonymous(vmf.vma):
            return do_anonymous_page(k, vmf)
        return do_fault(k, vmf)
    if not vmf.orig_pte & _PAGE_PRESENT:
        raise InternalError(f"fault on a PROT_NONE PTE at {vmf.address:#x} in an accessible vma")
    entry = vmf.orig_pte
    if vmf.flags & FAULT_FLAG_WRITE:
        if not pte_write(entry):
            return do_wp_page(k, vmf)
        entry |= _PAGE_DIRTY
    entry |= _PAGE_ACCESSED
    set_pte_at(mm, vmf.address, entry)
    return 0


@traced
def handle_mm_fault(k: KernelState, vma: VmAreaStruct, address: int, flags: int) -> int:
    """Resolve a fault at ``address`` in ``vma``; returns vm_fault_t bits (mm/memory.c:4191-4230)."""
    address &= ~(PAGE_SIZE - 1)
    pgoff = ((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
    vmf = VmFault(vma=vma, address=address, flags=flags, pgoff=pgoff)
    if k.mem.pte_shares and pte_share_of(k, _mm_of(vma), address >> PMD_SHIFT) is not None \
            and copy_shared_pte_table(k, _mm_of(vma), address >> PMD_SHIFT, "copy_shared_pte_table:pte_alloc"):
        return VM_FAULT_OOM  # NOTE: on-demand fork, beyond 5.6: a fault under a shared table copies it first
    return handle_pte_fault(k, vmf)


def free_pgd_range(mm: MmStruct, addr: int, end: int, floor: int, ceiling: int) -> None:
    """Free the PTE pages in ``[addr, end)`` not shared with ``floor``/``ceiling`` neighbours (mm/memory.c:326-386)."""
    addr &= ~(PMD_SIZE - 1)
    if addr < floor:
        addr += PMD_SIZE
    if ceiling:
        ceiling &= ~(PMD_SIZE - 1)
        if not ceiling:
            return
        if end - 1 > ceiling - 1:
            end -= PMD_SIZE
    if addr > end - 1:
        return
    for pmd in sorted(p for p in mm.pgd if addr <= (p << PMD_SHIFT) < end):
        table = mm.pgd.pop(pmd)
        if table.any():
            raise InternalError(f"freeing PTE table {pmd:#x} that still maps pages")
        mm.pgtables_bytes -= PTE_TABLE_BYTES


def free_pgtables(k: KernelState, mm: MmStruct, vmas: list[VmAreaStruct], floor: int, ceiling: int) -> None:
    """Unlink the vmas' anon_vmas and free their page tables, grouping close vmas (mm/memory.c:388-421)."""
    i = 0
    while i < len(vmas):
        vma = vmas[i]
        addr = vma.vm_start
        unlink_anon_vmas(k, vma)
        while i + 1 < len(vmas) and vmas[i + 1].vm_start <= vma.vm_end + PMD_SIZE:
            i += 1
            vma = vmas[i]
            unlink_anon_vmas(k, vma)
        nxt_start = vmas[i + 1].vm_start if i + 1 < len(vmas) else ceiling
        free_pgd_range(mm, addr, vma.vm_end, floor, nxt_start)
        i += 1


def PAGE_ALIGN(x: int) -> int:
    """Round up to a page boundary, wrapping like an unsigned long (include/linux/mm.h:196)."""
    from forklab.mm.mmap import PAGE_MASK  # import cycle: forklab.fs.file_table is still loading when this module loads

    return (x + PAGE_SIZE - 1) & PAGE_MASK & (2**64 - 1)


def vm_start_gap(vma: VmAreaStruct) -> int:
    """vm_start lowered by the stack guard gap for VM_GROWSDOWN (include/linux/mm.h:2566-2576)."""
    start = vma.vm_start
    if vma.vm_flags & VM.VM_GROWSDOWN:
        from forklab.mm.mmap import (
            STACK_GUARD_GAP,  # import cycle: forklab.fs.file_table is still loading when this module loads
        )

        start -= STACK_GUARD_GAP
        if start > vma.vm_start or start < 0:
            start = 0
    return start


def update_hiwater_rss(mm: MmStruct) -> None:
    """hiwater_rss = max(hiwater_rss, rss) (include/linux/mm.h:1760-1766)."""
    mm.hiwater_rss = max(mm.hiwater_rss, get_mm_rss(mm))


def update_hiwater_vm(mm: MmStruct) -> None:
    """hiwater_vm = max(hiwater_vm, total_vm) (include/linux/mm.h:1768-1772)."""
    mm.hiwater_vm = max(mm.hiwater_vm, mm.total_vm)


def get_page(k: KernelState, pfn: int) -> None:
    """get_page(): take a reference (include/linux/mm.h:1044-1055)."""
    mem = k.mem
    if pfn == ZERO_PFN:
        return
    if int(mem._refcount[pfn]) <= 0:
        raise InternalError(f"get_page on free pfn {pfn}")
    mem._refcount[pfn] += 1


def put_page(k: KernelState, pfn: int) -> None:
    """put_page(): drop a reference, free the page at zero (include/linux/mm.h:1057-1080)."""
    mem = k.mem
    if pfn == ZERO_PFN:
        return
    if int(mem._refcount[pfn]) <= 0:
        raise InternalError(f"put_page on free pfn {pfn}")
    mem._refcount[pfn] -= 1
    if int(mem._refcount[pfn]) == 0:
        mem._free_pfn(pfn)


def page_mapcount(k: KernelState, pfn: int) -> int:
    """page_mapcount(): _mapcount + 1 (include/linux/mm.h:768-775)."""
    return int(k.mem._mapcount[pfn]) + 1


def page_count(k: KernelState, pfn: int) -> int:
    """page_count(): the reference count (include/linux/mm.h:932)."""
    return int(k.mem._refcount[pfn])


__all__ = [
    "FAULT_FLAG_USER",
    "FAULT_FLAG_WRITE",
    "PAGE_ALIGN",
    "VM_FAULT_ERROR",
    "VM_FAULT_OOM",
    "VM_FAULT_SIGBUS",
    "VM_FAULT_WRITE",
    "copy_one_pte",
    "copy_page_range",
    "copy_pte_range",
    "do_anonymous_page",
    "do_wp_page",
    "follow_pte_pfn",
    "free_pgd_range",
    "free_pgtables",
    "get_mm_rss",
    "get_page",
    "get_pte",
    "handle_mm_fault",
    "page_count",
    "page_mapcount",
    "pte_modify",
    "put_page",
    "unmap_vmas",
    "update_hiwater_rss",
    "update_hiwater_vm",
    "vm_normal_page",
    "vm_start_gap",
    "wp_page_copy",
    "wp_page_reuse",
    "zap_page_range",
]
