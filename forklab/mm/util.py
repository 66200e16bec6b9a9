"""Commit accounting and the mmap entry (mm/util.c): the overcommit policies and ``vm_mmap_pgoff``.

``__vm_enough_memory`` charges pages to ``vm_committed_as`` under the three policies of
``vm.overcommit_memory``: OVERCOMMIT_GUESS (0) refuses only a request larger than RAM plus
swap, OVERCOMMIT_ALWAYS (1) never refuses, OVERCOMMIT_NEVER (2) refuses past the commit limit
(``vm_commit_limit``: overcommit_kbytes or overcommit_ratio% of RAM, plus swap) less the admin
reserve (unless CAP_SYS_ADMIN) and the user reserve. The model has no swap.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError
from forklab.include.linux.mman import vm_acct_memory, vm_unacct_memory
from forklab.mm.page_alloc import OVERCOMMIT_ALWAYS, OVERCOMMIT_GUESS, OVERCOMMIT_NEVER
from forklab.uapi import PAGE_SHIFT

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File
    from forklab.include.linux.mm_types import MmStruct
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


def vm_mmap_pgoff(k: KernelState, t: Task, file: File | None, addr: int, length: int, prot: int, flags: int,
                  pgoff: int) -> int:
    """do_mmap under mmap_sem, then populate (mm/util.c:493-514)."""
    from forklab.mm.gup import mm_populate  # import cycle: mm/gup.py imports mm/mmap.py, which imports this module
    from forklab.mm.mmap import do_mmap  # import cycle: mm/mmap.py imports this module

    ret, populate = do_mmap(k, t, file, addr, length, prot, flags, 0, pgoff)
    if populate:
        mm_populate(k, t, ret, populate)
    return ret


def vm_commit_limit(k: KernelState) -> int:
    """CommitLimit: overcommit_kbytes or ratio% of RAM, plus swap (mm/util.c:747-759)."""
    mem = k.mem
    if mem.sysctl_overcommit_kbytes:
        allowed = mem.sysctl_overcommit_kbytes >> (PAGE_SHIFT - 10)
    else:
        allowed = mem.totalram_pages * mem.sysctl_overcommit_ratio // 100
    return allowed + mem.total_swap_pages


def __vm_enough_memory(k: KernelState, mm: MmStruct | None, pages: int, cap_sys_admin: bool) -> int:
    """Charge ``pages`` to vm_committed_as if the overcommit policy allows; 0 or -ENOMEM (mm/util.c:797-841)."""
    mem = k.mem
    vm_acct_memory(k, pages)
    if mem.sysctl_overcommit_memory == OVERCOMMIT_ALWAYS:
        return 0
    if mem.sysctl_overcommit_memory == OVERCOMMIT_GUESS:
        if pages > mem.totalram_pages + mem.total_swap_pages:
            vm_unacct_memory(k, pages)
            return -errno.ENOMEM
        return 0
    if mem.sysctl_overcommit_memory != OVERCOMMIT_NEVER:
        raise InternalError(f"bad vm.overcommit_memory {mem.sysctl_overcommit_memory}")
    allowed = vm_commit_limit(k)
    free_kbytes = mem.totalram_pages << (PAGE_SHIFT - 10)
    if not cap_sys_admin:
        allowed -= min(free_kbytes // 32, 1 << 13) >> (PAGE_SHIFT - 10)
    if mm is not None:
        reserve = min(free_kbytes // 32, 1 << 17) >> (PAGE_SHIFT - 10)
        allowed -= min(mm.total_vm // 32, reserve)
    if max(mem.vm_committed_as, 0) < allowed:
        return 0
    vm_unacct_memory(k, pages)
    return -errno.ENOMEM
