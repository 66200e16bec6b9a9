"""The page cache's fault path (mm/filemap.c): ``filemap_map_pages``, the fault-around of a read fault.

A read fault on a shmem vma first maps the pages already in the file's page cache within the
fault-around window (``do_fault_around``, mm/memory.c); the missing ones are left to ->fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.errors import InternalError
from forklab.mm.memory import alloc_set_pte, get_page, put_page
from forklab.uapi import PAGE_SHIFT

if TYPE_CHECKING:
    from forklab.mm.memory import VmFault
    from forklab.state import KernelState


def filemap_map_pages(k: KernelState, vmf: VmFault, start_pgoff: int, end_pgoff: int) -> None:
    """Map the cached pages of ``[start_pgoff, end_pgoff]`` around a read fault (mm/filemap.c:2645-2720)."""
    vma = vmf.vma
    file = vma.vm_file
    if file is None:
        raise InternalError("filemap_map_pages without a file")
    cache = file.f_inode.i_pages
    fault_address = vmf.address
    for pgoff in range(start_pgoff, end_pgoff + 1):
        pfn = cache.get(pgoff)
        if pfn is None:
            continue
        vmf.address = vma.vm_start + ((pgoff - vma.vm_pgoff) << PAGE_SHIFT)
        get_page(k, pfn)
        if alloc_set_pte(k, vmf, pfn):
            put_page(k, pfn)
    vmf.address = fault_address
