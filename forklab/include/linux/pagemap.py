"""Page cache index helpers (include/linux/pagemap.h)."""

from __future__ import annotations

from forklab.include.linux.mm_types import VmAreaStruct
from forklab.uapi import PAGE_SHIFT


def linear_page_index(vma: VmAreaStruct, address: int) -> int:
    """The page's index in its mapping (include/linux/pagemap.h:566-575)."""
    return ((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
