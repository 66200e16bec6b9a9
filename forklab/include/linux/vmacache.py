"""The vma cache's inline helpers (include/linux/vmacache.h); the cache itself is forklab/mm/vmacache.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct


def vmacache_invalidate(mm: MmStruct) -> None:
    """Forget ``mm``'s cached vma: a vma left its list (include/linux/vmacache.h:23-26)."""
    mm.vmacache = None


__all__ = ["vmacache_invalidate"]
