"""Page flag tests (include/linux/page-flags.h)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.mm.page_alloc import PG_anon

if TYPE_CHECKING:
    from forklab.state import KernelState


def PageAnon(k: KernelState, pfn: int) -> bool:
    """PageAnon(): page->mapping has PAGE_MAPPING_ANON (include/linux/page-flags.h:432-435)."""
    return bool(int(k.mem.flags[pfn]) & PG_anon)
