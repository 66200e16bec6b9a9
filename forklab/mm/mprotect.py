"""mprotect(2): change the protection of a range, splitting and merging vmas (mm/mprotect.c).

Design essay
------------
``do_mprotect_pkey`` validates the request (unaligned start EINVAL, both GROWS flags EINVAL,
len 0 success, wrapping range ENOMEM, unknown prot bits EINVAL — x86 uses the generic
``arch_validate_prot``: READ|WRITE|EXEC|SEM only), then walks the vmas of the range. A hole
before or inside the range is ENOMEM (changes already applied to earlier vmas stay, as in the
kernel). Asking for a permission whose VM_MAY* bit is clear is EACCES.

``mprotect_fixup`` charges the commit limit when a private mapping first becomes writable
(VM_ACCOUNT), tries ``vma_merge``, else splits at the range edges (max_map_count and the
allocation failures give ENOMEM; the charge is given back on failure), sets the flags and
rewrites the PTEs with ``change_protection``: ``pte_modify`` keeps pfn, special, accessed and
dirty bits and takes the rest from the new ``vm_page_prot``. For a private mapping that never
contains _PAGE_RW, so after ``mprotect(PROT_READ|PROT_WRITE)`` every present page of a private
mapping is read-only and the next write takes a fault (do_wp_page: reuse when mapcount is 1,
copy when still shared after fork). 5.6 has no "try to keep writable" optimisation (that came
in 5.19). Shared writable shmem mappings get _PAGE_RW directly (no write notification).

pkeys are not modelled: the syscall is mprotect, i.e. ``pkey == -1``.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from forklab.errors import InternalError, kerr
from forklab.include.linux.mm_types import PMD_SHIFT, PTRS_PER_PTE, VM, MmStruct, VmAreaStruct, vma_next_of, vma_prev_of
from forklab.include.linux.mman import arch_validate_prot, calc_vm_prot_bits, vm_unacct_memory
from forklab.include.linux.types import U64
from forklab.mm.gup import mm_populate
from forklab.mm.memory import _PAGE_CHG_MASK, PAGE_ALIGN, unshare_pte_range
from forklab.mm.mmap import find_vma, may_expand_vm, split_vma, vm_get_page_prot, vm_stat_account, vma_merge
from forklab.security.security import security_vm_enough_memory_mm
from forklab.uapi import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000


def change_pte_range(mm: MmStruct, start: int, end: int, newprot: int) -> int:
    """pte_modify every present PTE of ``[start, end)``; returns the number changed (mm/mprotect.c:38-150)."""
    pages = 0
    keep = np.uint64(_PAGE_CHG_MASK)
    new = np.uint64(newprot & ~_PAGE_CHG_MASK & U64)
    addr = start
    while addr < end:
        nxt = min(((addr >> PMD_SHIFT) + 1) << PMD_SHIFT, end)
        table = mm.pgd.get(addr >> PMD_SHIFT)
        if table is not None:
            first = (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
            last = first + ((nxt - addr) >> PAGE_SHIFT)
            window = table[first:last]
            present = window != 0
            window[present] = (window[present] & keep) | new
            pages += int(present.sum())
        addr = nxt
    return pages


def change_protection(vma: VmAreaStruct, start: int, end: int, newprot: int) -> int:
    """Apply ``newprot`` to the PTEs of ``[start, end)`` in ``vma`` (mm/mprotect.c:300-318)."""
    if vma.vm_mm is None:
        raise InternalError("change_protection on a detached vma")
    return change_pte_range(vma.vm_mm, start, end, newprot)


def mprotect_fixup(k: KernelState, t: Task, vma: VmAreaStruct, prev: VmAreaStruct | None, start: int, end: int,
                   newflags: int) -> tuple[int, VmAreaStruct | None]:
    """Give ``[start, end)`` of ``vma`` the flags ``newflags``; returns (0 or -errno, new prev) (mm/mprotect.c:372-481)."""
    mm = vma.vm_mm
    if mm is None:
        raise InternalError("mprotect_fixup on a detached vma")
    oldflags = vma.vm_flags
    nrpages = (end - start) >> PAGE_SHIFT
    charged = 0
    if newflags == oldflags:
        return 0, vma
    if newflags & VM.VM_WRITE:
        if not may_expand_vm(t, mm, newflags, nrpages) and may_expand_vm(t, mm, oldflags, nrpages):
            return -errno.ENOMEM, prev
        if not oldflags & (VM.VM_ACCOUNT | VM.VM_WRITE | VM.VM_HUGETLB | VM.VM_SHARED | VM.VM_NORESERVE):
            charged = nrpages
            if security_vm_enough_memory_mm(k, mm, charged):
                return -errno.ENOMEM, prev
            newflags |= VM.VM_ACCOUNT
    pgoff = vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT)
    merged = vma_merge(k, mm, prev, start, end, newflags, vma.anon_vma, vma.vm_file, pgoff)
    if merged is not None:
        vma = merged
    else:
        if start != vma.vm_start:
            error = split_vma(k, mm, vma, start, 1)
            if error:
                vm_unacct_memory(k, charged)
                return error, vma
        if end != vma.vm_end:
            error = split_vma(k, mm, vma, end, 0)
            if error:
                vm_unacct_memory(k, charged)
                return error, vma
    vma.vm_flags = newflags
    vma.vm_page_prot = vm_get_page_prot(newflags)
    if k.mem.pte_shares:
        unshare_pte_range(k, mm, start, end)  # NOTE: on-demand fork, beyond 5.6: a shared table is copied first
    change_protection(vma, start, end, vma.vm_page_prot)
    if (oldflags & (VM.VM_WRITE | VM.VM_SHARED | VM.VM_LOCKED)) == VM.VM_LOCKED and newflags & VM.VM_WRITE:
        mm_populate(k, t, start, end - start)  # populate_vma_page_range

    vm_stat_account(mm, oldflags, -nrpages)
    vm_stat_account(mm, newflags, nrpages)
    return 0, vma


def do_mprotect_pkey(k: KernelState, t: Task, start: int, length: int, prot: int, pkey: int = -1) -> None:
    """mprotect(2) (mm/mprotect.c:482-607)."""
    mm = t.mm
    if mm is None:
        raise InternalError("mprotect without an mm")
    start &= U64
    length &= U64
    grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
    prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
    if grows == PROT_GROWSDOWN | PROT_GROWSUP:
        raise kerr(errno.EINVAL, "PROT_GROWSDOWN and PROT_GROWSUP together", "mm/mprotect.c:500")
    if start & (PAGE_SIZE - 1):
        raise kerr(errno.EINVAL, "start is not page aligned", "mm/mprotect.c:503")
    if not length:
        return
    length = PAGE_ALIGN(length)
    end = start + length
    if end <= start or end > U64:
        raise kerr(errno.ENOMEM, "the range wraps around the address space", "mm/mprotect.c:509")
    if not arch_validate_prot(prot):
        raise kerr(errno.EINVAL, f"unknown prot bits {prot:#x}", "mm/mprotect.c:511")
    if pkey != -1:
        raise kerr(errno.EINVAL, "protection key is not allocated (pkeys are not modelled)", "mm/mprotect.c:524")
    reqprot = prot
    vma = find_vma(mm, start)
    if vma is None:
        raise kerr(errno.ENOMEM, "no mapping at or after start", "mm/mprotect.c:529")
    prev = vma_prev_of(mm, vma)
    if grows & PROT_GROWSDOWN:
        if vma.vm_start >= end:
            raise kerr(errno.ENOMEM, "no mapping in the range", "mm/mprotect.c:533")
        start = vma.vm_start
        if not vma.vm_flags & VM.VM_GROWSDOWN:
            raise kerr(errno.EINVAL, "PROT_GROWSDOWN on a vma that does not grow down", "mm/mprotect.c:537")
    else:
        if vma.vm_start > start:
            raise kerr(errno.ENOMEM, "start is not mapped", "mm/mprotect.c:540")
        if grows & PROT_GROWSUP:
            raise kerr(errno.EINVAL, "PROT_GROWSUP: no vma grows up on x86", "mm/mprotect.c:545")
    if start > vma.vm_start:
        prev = vma
    nstart = start
    while True:
        mask_off_old_flags = VM.VM_READ | VM.VM_WRITE | VM.VM_EXEC
        newflags = calc_vm_prot_bits(prot) | (vma.vm_flags & ~mask_off_old_flags)
        if (newflags & ~(newflags >> 4)) & (VM.VM_READ | VM.VM_WRITE | VM.VM_EXEC):
            raise kerr(errno.EACCES, "requested access is not allowed by the mapping's VM_MAY* bits",
                       "mm/mprotect.c:576")
        tmp = min(vma.vm_end, end)
        error, prev = mprotect_fixup(k, t, vma, prev, nstart, tmp, newflags)
        if error:
            raise kerr(-error, "vma split or commit charge failed", "mm/mprotect.c:589")
        if prev is None:
            raise InternalError("mprotect_fixup returned no vma")
        nstart = tmp
        if nstart < prev.vm_end:
            nstart = prev.vm_end
        if nstart >= end:
            break
        nxt = vma_next_of(mm, prev)
        if nxt is None or nxt.vm_start != nstart:
            raise kerr(errno.ENOMEM, "the range has an unmapped hole", "mm/mprotect.c:599")
        vma = nxt
        prot = reqprot
    if k.listeners:
        k.trace("mprotect", "mm/mprotect.c:609", f"{start:#x}-{end:#x} prot={reqprot:#x}")


__all__ = ["change_protection", "do_mprotect_pkey", "mprotect_fixup"]
