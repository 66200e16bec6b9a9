"""Shared anonymous memory (mm/shmem.c): the shmem file behind MAP_SHARED|MAP_ANONYMOUS and its page cache.

``shmem_zero_setup`` backs a shared anonymous vma with an unlinked shmem file,
"/dev/zero (deleted)", kept out of every fd table and charged to the commit limit unless
VM_NORESERVE. Its inode's ``i_pages`` (pgoff -> pfn) is the page cache: ``shmem_getpage_gfp``
finds or allocates the zero-filled page a fault needs (SIGBUS past i_size), ``shmem_fault`` is
the vma's ->fault, and ``shmem_evict_inode`` frees the cache and the charge when the last
reference to the inode goes. No swap, no huge pages, no tmpfs mounts.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, kerr
from forklab.include.linux.fdtable import FMODE_READ, FMODE_WRITE, File, Inode
from forklab.include.linux.mm_types import VM
from forklab.include.linux.mman import vm_unacct_memory
from forklab.mm.memory import PAGE_ALIGN, VM_FAULT_OOM, VM_FAULT_SIGBUS, get_page, put_page
from forklab.mm.page_alloc import PG_swapbacked, alloc_page
from forklab.security.security import security_vm_enough_memory_mm
from forklab.uapi import O_RDWR, PAGE_SHIFT

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct, VmAreaStruct
    from forklab.state import KernelState


def shmem_evict_inode(k: KernelState, inode: Inode) -> None:
    """Last reference to a shmem inode: truncate its page cache, unaccount its size (mm/shmem.c:1120-1150)."""
    for index in sorted(inode.i_pages):
        put_page(k, inode.i_pages[index])
    inode.i_pages.clear()
    vm_unacct_memory(k, k.mem.shmem_acct.pop(inode.i_ino, 0))


def shmem_getpage_gfp(k: KernelState, inode: Inode, index: int) -> tuple[int, int | None]:
    """Find or create the page cache page at ``index``; returns (vm_fault_t, pfn with a ref) (mm/shmem.c:1696-1915)."""
    if index << PAGE_SHIFT >= inode.i_size:
        return VM_FAULT_SIGBUS, None
    pfn = inode.i_pages.get(index)
    if pfn is None:
        pfn = alloc_page(k, "shmem_getpage_gfp:alloc_page")
        if pfn is None:
            return VM_FAULT_OOM, None
        k.mem.flags[pfn] |= PG_swapbacked
        k.mem.mapping[pfn] = inode.i_ino
        k.mem.index[pfn] = index
        inode.i_pages[index] = pfn  # the page cache's reference is the allocation's
    get_page(k, pfn)  # the reference returned to the fault handler
    return 0, pfn


def shmem_fault(k: KernelState, vma: VmAreaStruct, address: int) -> tuple[int, int | None]:
    """vm_ops->fault of shmem: the page at the vma offset, with a reference (mm/shmem.c:1972-2063)."""
    file = vma.vm_file
    if file is None:
        raise InternalError("shmem_fault on a vma without a file")
    index = ((address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
    return shmem_getpage_gfp(k, file.f_inode, index)


def shmem_zero_setup(k: KernelState, mm: MmStruct, vma: VmAreaStruct) -> None:
    """Back a shared anonymous vma with an unlinked shmem file "/dev/zero (deleted)" (mm/shmem.c:4165-4193)."""
    size = vma.vm_end - vma.vm_start
    pages = PAGE_ALIGN(size) >> PAGE_SHIFT
    charged = 0
    if not vma.vm_flags & VM.VM_NORESERVE:  # shmem_acct_size (mm/shmem.c:169-173)
        if security_vm_enough_memory_mm(k, mm, pages):
            raise kerr(errno.ENOMEM, "overcommit policy refuses the shmem object", "mm/shmem.c:4100")
        charged = pages
    if k.fault.should_fail("shmem_zero_setup:shmem_get_inode"):
        vm_unacct_memory(k, charged)
        raise kerr(errno.ENOSPC, "shmem inode allocation failed", "mm/shmem.c:4106")
    inode = Inode(k.mem.new_ino(), "/dev/zero (deleted)", i_size=size, kind="shmem", nlink=0)
    if k.fault.should_fail("shmem_zero_setup:alloc_file_pseudo"):
        vm_unacct_memory(k, charged)  # iput -> shmem_evict_inode
        raise kerr(errno.ENOMEM, "file allocation for the shmem object failed", "mm/shmem.c:4113")
    k.mem.shmem_acct[inode.i_ino] = charged
    vma.vm_file = File(inode, f_flags=O_RDWR, f_mode=FMODE_READ | FMODE_WRITE)
