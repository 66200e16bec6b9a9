"""Swap (mm/swapfile.c): the model has no swap, so only the reuse decision of a write fault is here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.mm.memory import page_mapcount

if TYPE_CHECKING:
    from forklab.state import KernelState


def reuse_swap_page(k: KernelState, pfn: int) -> tuple[bool, int]:
    """Can the faulting vma keep the page? iff mapcount + swapcount <= 1 (mm/swapfile.c:1653-1687).

    No swap is modelled: the swap count is 0 and no page is ever in the swap cache.
    """
    count = page_mapcount(k, pfn)
    return count <= 1, count
