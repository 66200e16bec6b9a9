"""Consistency checks and snapshots of the memory model (the spirit of mm/debug.c, validate_mm, check_mm).

Design essay
------------
``check_mm_invariants(k, mms)`` recomputes, from the page tables of ``mms`` (which must be all
live mms) and the shmem page caches their vmas reach, what every counter should be, and
returns one message per disagreement (an empty list means consistent):

* per pfn: ``_refcount == PTEs mapping it + page-cache references`` and
  ``_mapcount + 1 == PTEs mapping it`` (special PTEs, i.e. the zero page, excluded); a page with a
  reference that nothing explains is a leak, a freed page still mapped is a use-after-free;
* per mm: ``rss_stat`` equals the count of mapped anon/file/shmem pages, ``map_count`` equals the
  vma count, vmas are sorted, page aligned, non-overlapping, below TASK_SIZE, owned by the mm,
  every PTE lies inside a vma and every PTE table meets a vma, and
  ``pgtables_bytes == 4096 * number of PTE tables``;
* shmem files made by ``shmem_zero_setup`` live only in vmas: ``f_count`` equals the number
  of vmas mapping them;
* anon_vmas: every anonymous mapped page names a live anon_vma that is in the chain of the vma
  mapping it; ``refcount``, ``degree`` and the link count ``nr_avc`` match the kernel's
  bookkeeping rules (see forklab.mm.rmap).

``mem_snapshot(k)`` and ``mm_snapshot(k, mm)`` return hashable tuples of the observable state
(page metadata arrays as bytes, page contents, the allocator's free set normalised so that a
pfn taken fresh and freed again does not count as a change, commit charge, anon_vma shapes;
page tables as bytes, vma tuples, counters). Serial numbers and context ids are left out:
they are allocation artefacts, not state. ``mm_snapshot(..., mask_rw=True)`` clears _PAGE_RW
in the PTEs, for comparing a parent before and after a fork that failed after
write-protecting some of its COW PTEs (which the kernel does not undo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from forklab.include.linux.mm_types import (
    _PAGE_RW,
    _PAGE_SPECIAL,
    MM_ANONPAGES,
    MM_FILEPAGES,
    MM_SHMEMPAGES,
    PMD_SHIFT,
    PTE_PFN_SHIFT,
    MmStruct,
)
from forklab.mm.memory import _PFN_MASK, PTE_TABLE_BYTES, add_rss_of
from forklab.mm.mmap import TASK_SIZE
from forklab.mm.page_alloc import ZERO_PFN, PG_anon
from forklab.uapi import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from forklab.state import KernelState

Snapshot = tuple[object, ...]


def _mapped_pfns(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices and pfns of the non-special, non-empty entries of one PTE table."""
    nz = np.nonzero(table)[0]
    ptes = table[nz]
    normal = (ptes & np.uint64(_PAGE_SPECIAL)) == 0
    pfns = ((ptes & np.uint64(_PFN_MASK)) >> np.uint64(PTE_PFN_SHIFT)).astype(np.int64)
    keep = normal & (pfns != ZERO_PFN)
    return nz[keep], pfns[keep]


def _pte_share_errors(k: KernelState, mms: list[MmStruct]) -> list[str]:
    """Each share record's holders point at its table, and a table two mms point at has a record naming both."""
    errs = []
    live = {id(mm) for mm in mms}
    holders: dict[int, int] = {}
    for mm in mms:
        for pmd in mm.pgd:
            holders[id(mm.pgd[pmd])] = holders.get(id(mm.pgd[pmd]), 0) + 1
    for key, share in k.mem.pte_shares.by_table.items():
        if key != id(share.table):
            errs.append(f"share record {key:#x} is filed under another table")
        for mm in share.holders:
            if id(mm) in live and not any(t is share.table for t in mm.pgd.values()):
                errs.append(f"{mm!r} is a holder of a shared table it does not point at")
        if any(mm not in share.holders for mm in share.wrprotected):
            errs.append("a write-protected PMD entry of a non-holder")
    for key, n in holders.items():
        record = k.mem.pte_shares.by_table.get(key)
        if n > 1 and (record is None or len(record.holders) < n):
            errs.append(f"a PTE table is pointed at {n} times with {0 if record is None else len(record.holders)} holders")
    return errs


def check_mm_invariants(k: KernelState, mms: list[MmStruct]) -> list[str]:
    """One message per broken invariant over the MemMap and all live ``mms`` (empty = consistent)."""
    mem = k.mem
    errs: list[str] = []
    n = mem.max_pfn
    pte_refs = np.zeros(n, dtype=np.int64)
    cache_refs = np.zeros(n, dtype=np.int64)
    inodes: dict[int, object] = {}
    file_refs: dict[int, tuple[object, int]] = {}
    avc_count: dict[int, int] = {}
    vma_points: dict[int, int] = {}
    counted: set[int] = set()
    errs += _pte_share_errors(k, mms)
    for mi, mm in enumerate(mms):
        tag = f"mm#{mi}"
        if mm.map_count != len(mm.mmap):
            errs.append(f"{tag}: map_count {mm.map_count} != {len(mm.mmap)} vmas")
        if mm.vmacache is not None and not any(v is mm.vmacache for v in mm.mmap):
            errs.append(f"{tag}: the vma cache holds {mm.vmacache!r}, which is not in the list")
        prev_end = 0
        for vma in mm.mmap:
            if vma.vm_mm is not mm:
                errs.append(f"{tag}: {vma!r} vm_mm is not its mm")
            if vma.vm_start % PAGE_SIZE or vma.vm_end % PAGE_SIZE or vma.vm_start >= vma.vm_end:
                errs.append(f"{tag}: {vma!r} is not a page-aligned non-empty range")
            if vma.vm_start < prev_end:
                errs.append(f"{tag}: {vma!r} overlaps or is out of order")
            if vma.vm_end > TASK_SIZE:
                errs.append(f"{tag}: {vma!r} ends above TASK_SIZE")
            prev_end = vma.vm_end
            if vma.vm_file is not None and vma.vm_file.f_inode.kind == "shmem":
                inodes[vma.vm_file.f_inode.i_ino] = vma.vm_file.f_inode
                seen = file_refs.get(vma.vm_file.f_inode.i_ino, (vma.vm_file, 0))
                file_refs[vma.vm_file.f_inode.i_ino] = (vma.vm_file, seen[1] + 1)
            for av in vma.anon_vma_chain:
                avc_count[av.serial] = avc_count.get(av.serial, 0) + 1
                if av.serial not in mem.anon_vmas:
                    errs.append(f"{tag}: {vma!r} is linked to freed anon_vma {av.serial}")
            if vma.anon_vma is not None:
                vma_points[vma.anon_vma.serial] = vma_points.get(vma.anon_vma.serial, 0) + 1
                if not any(av is vma.anon_vma for av in vma.anon_vma_chain):
                    errs.append(f"{tag}: {vma!r} anon_vma {vma.anon_vma.serial} is not in its own chain")
        if mm.pgtables_bytes != PTE_TABLE_BYTES * len(mm.pgd):
            errs.append(f"{tag}: pgtables_bytes {mm.pgtables_bytes} != {PTE_TABLE_BYTES} * {len(mm.pgd)} tables")
        rss = [0, 0, 0, 0]
        for pmd in sorted(mm.pgd):
            table = mm.pgd[pmd]
            lo, hi = pmd << PMD_SHIFT, (pmd + 1) << PMD_SHIFT
            span = [v for v in mm.mmap if v.vm_start < hi and v.vm_end > lo]
            if not span:
                errs.append(f"{tag}: PTE table {pmd:#x} covers no vma")
            for i in np.nonzero(table)[0].tolist():
                addr = lo + (i << PAGE_SHIFT)
                if not any(v.vm_start <= addr < v.vm_end for v in span):
                    errs.append(f"{tag}: PTE at {addr:#x} lies outside every vma")
            idx, pfns = _mapped_pfns(table)
            if pfns.size and int(pfns.max()) >= n:
                errs.append(f"{tag}: PTE table {pmd:#x} maps a pfn beyond mem_map")
                continue
            if id(table) not in counted:  # a table shared by an on-demand fork holds its pages once
                counted.add(id(table))
                np.add.at(pte_refs, pfns, 1)
            add_rss_of(k, rss, pfns, 1)
            anon = (mem.flags[pfns] & PG_anon) != 0
            for i, pfn in zip(idx[anon].tolist(), pfns[anon].tolist(), strict=True):
                addr = lo + (i << PAGE_SHIFT)
                serial = int(mem.mapping[pfn])
                if serial not in mem.anon_vmas:
                    errs.append(f"{tag}: anon pfn {pfn} at {addr:#x} names freed anon_vma {serial}")
                    continue
                owner = next((v for v in span if v.vm_start <= addr < v.vm_end), None)
                if owner is not None and not any(av.serial == serial for av in owner.anon_vma_chain):
                    errs.append(f"{tag}: anon pfn {pfn} at {addr:#x}: anon_vma {serial} not reachable from {owner!r}")
        for member in (MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES):
            if mm.rss_stat[member] != rss[member]:
                errs.append(f"{tag}: rss_stat[{member}] = {mm.rss_stat[member]}, page tables show {rss[member]}")
    for ino in sorted(file_refs):
        file, nvmas = file_refs[ino]
        count = getattr(file, "f_count", -1)
        if count != nvmas:  # shmem_zero_setup files are referenced by vmas only
            errs.append(f"shmem file ino {ino}: f_count {count} != {nvmas} vmas mapping it")
    for ino in sorted(inodes):
        inode = inodes[ino]
        pages = getattr(inode, "i_pages", {})
        for pgoff in sorted(pages):
            pfn = pages[pgoff]
            if not 0 < pfn < n:
                errs.append(f"shmem inode {ino}: pgoff {pgoff} maps bad pfn {pfn}")
                continue
            cache_refs[pfn] += 1
    expected = pte_refs + cache_refs
    refcount = mem._refcount[:n].astype(np.int64)
    mapcount = mem._mapcount[:n].astype(np.int64) + 1
    expected[ZERO_PFN] = refcount[ZERO_PFN]
    for pfn in np.nonzero(refcount != expected)[0].tolist():
        errs.append(f"pfn {pfn}: _refcount {int(refcount[pfn])} != {int(pte_refs[pfn])} PTEs + "
                    f"{int(cache_refs[pfn])} page-cache refs")
    pte_refs[ZERO_PFN] = mapcount[ZERO_PFN]
    for pfn in np.nonzero(mapcount != pte_refs)[0].tolist():
        errs.append(f"pfn {pfn}: page_mapcount {int(mapcount[pfn])} != {int(pte_refs[pfn])} PTEs")
    used = int((refcount[1:] > 0).sum())
    if used != mem.nr_used():
        errs.append(f"allocator counts {mem.nr_used()} used pages, mem_map has {used}")
    free = mem.free_pfns()
    for pfn in free:
        if pfn >= n or refcount[pfn] != 0:
            errs.append(f"pfn {pfn} is on the free list but in use")
    if len(set(free)) != len(free):
        errs.append("a pfn is on the free list twice")
    unused = int((refcount[1:] == 0).sum())
    if unused != len(free):
        errs.append(f"{unused} pfns below max_pfn are unused, the free list holds {len(free)}")
    for pfn in sorted(p for p in mem.contents if p >= n or refcount[p] == 0):
        errs.append(f"pfn {pfn} is free but keeps page contents")
    for serial in sorted(mem.anon_vmas):
        av = mem.anon_vmas[serial]
        children = [y for y in mem.anon_vmas.values() if y is not av and y.parent is av and y.nr_avc > 0]
        rooted = [y for y in mem.anon_vmas.values() if y is not av and y.root is av]
        want_ref = (1 if av.nr_avc > 0 else 0) + len(rooted)
        if av.refcount != want_ref:
            errs.append(f"anon_vma {serial}: refcount {av.refcount} != {want_ref}")
        want_deg = vma_points.get(serial, 0) + len(children) + (1 if av.parent is av and av.nr_avc > 0 else 0)
        if av.degree != want_deg:
            errs.append(f"anon_vma {serial}: degree {av.degree} != {want_deg}")
        if av.nr_avc != avc_count.get(serial, 0):
            errs.append(f"anon_vma {serial}: nr_avc {av.nr_avc} != {avc_count.get(serial, 0)} chain links")
        if av.refcount == 0:
            errs.append(f"anon_vma {serial}: alive with refcount 0")
        if av.root is None or av.root.serial not in mem.anon_vmas:
            errs.append(f"anon_vma {serial}: root is freed")
    return errs


def _dense(table: np.ndarray) -> bytes:
    """A PTE table's 512 entries as bytes, however much of it the model stores (the rest is pte_none)."""
    return table.tobytes() + bytes(PTE_TABLE_BYTES - table.nbytes)


def mm_snapshot(k: KernelState, mm: MmStruct, mask_rw: bool = False) -> Snapshot:
    """A hashable picture of one mm: page tables, vmas and counters."""
    del k
    mask = np.uint64(~_PAGE_RW & (2**64 - 1)) if mask_rw else np.uint64(2**64 - 1)
    tables = tuple((pmd, _dense(mm.pgd[pmd] & mask)) for pmd in sorted(mm.pgd))
    vmas = tuple(
        (v.vm_start, v.vm_end, v.vm_flags, v.vm_pgoff, v.vm_page_prot,
         None if v.vm_file is None else (v.vm_file.f_inode.i_ino, v.vm_file.f_count),
         None if v.anon_vma is None else v.anon_vma.serial,
         tuple(av.serial for av in v.anon_vma_chain))
        for v in mm.mmap)
    counters = (mm.mm_users, mm.mm_count, mm.map_count, mm.pgtables_bytes, mm.total_vm, mm.locked_vm,
                mm.pinned_vm, mm.data_vm, mm.exec_vm, mm.stack_vm, mm.hiwater_rss, mm.hiwater_vm,
                tuple(mm.rss_stat), mm.def_flags, mm.flags, mm.mmap_base,
                None if mm.exe_file is None else mm.exe_file.f_count)
    return (tables, vmas, counters)


def mem_snapshot(k: KernelState) -> Snapshot:
    """A hashable picture of physical memory, the allocator, the commit charge and the anon_vmas."""
    mem = k.mem
    top = mem.max_pfn
    free = mem.free_pfns()
    while free and free[-1] == top - 1:
        free.pop()
        top -= 1
    arrays = tuple(a[:top].tobytes() for a in (mem._refcount, mem._mapcount, mem.flags, mem.mapping, mem.index))
    contents = tuple((pfn, mem.read_page(pfn)) for pfn in sorted(mem.contents))
    anon = tuple((s, av.refcount, av.degree, av.nr_avc, av.root.serial if av.root else 0,
                  av.parent.serial if av.parent else 0) for s, av in sorted(mem.anon_vmas.items()))
    return (arrays, contents, tuple(free), top, mem.nr_used(), mem.vm_committed_as, anon,
            tuple(sorted(mem.shmem_acct.items())))


__all__ = ["check_mm_invariants", "mem_snapshot", "mm_snapshot"]
