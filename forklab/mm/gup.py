"""Faulting user pages in (mm/gup.c): ``mm_populate``, the populate step of MAP_POPULATE, MAP_LOCKED and mprotect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.mm_types import VM
from forklab.mm.memory import FAULT_FLAG_WRITE, VM_FAULT_ERROR, get_pte, handle_mm_fault, pte_present, pte_write
from forklab.mm.mmap import _mm, find_vma
from forklab.uapi import PAGE_SIZE

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


def mm_populate(k: KernelState, t: Task, start: int, length: int) -> None:
    """Fault in the range like get_user_pages; errors are ignored (mm/gup.c:1404-1450)."""
    mm = _mm(t)
    addr, end = start, start + length
    while addr < end:
        vma = find_vma(mm, addr)
        if vma is None or vma.vm_start >= end:
            return
        addr = max(addr, vma.vm_start)
        if vma.vm_flags & (VM.VM_IO | VM.VM_PFNMAP) or not vma.vm_flags & (VM.VM_READ | VM.VM_WRITE | VM.VM_EXEC):
            addr = vma.vm_end
            continue
        write = (vma.vm_flags & (VM.VM_WRITE | VM.VM_SHARED)) == VM.VM_WRITE
        while addr < min(vma.vm_end, end):
            pte = get_pte(mm, addr)
            if not pte_present(pte) or (write and not pte_write(pte)):
                ret = handle_mm_fault(k, vma, addr, FAULT_FLAG_WRITE if write else 0)
                if ret & VM_FAULT_ERROR:
                    return
                t.min_flt += 1
            addr += PAGE_SIZE
