"""Kernel samepage merging (mm/ksm.c): only the madvise flag bookkeeping; no merging is modelled."""

from __future__ import annotations

from forklab.include.linux.mm_types import VM, VmAreaStruct
from forklab.uapi import MADV_MERGEABLE


def ksm_madvise(vma: VmAreaStruct, behavior: int, new_flags: int) -> int:
    """VM_MERGEABLE bookkeeping of ksm_madvise (mm/ksm.c:2437-2490)."""
    if behavior == MADV_MERGEABLE:
        if new_flags & (VM.VM_MERGEABLE | VM.VM_SHARED | VM.VM_MAYSHARE | VM.VM_PFNMAP | VM.VM_IO
                        | VM.VM_DONTEXPAND | VM.VM_HUGETLB | VM.VM_MIXEDMAP):
            return new_flags
        return new_flags | VM.VM_MERGEABLE
    if not new_flags & VM.VM_MERGEABLE:
        return new_flags
    return new_flags & ~VM.VM_MERGEABLE
