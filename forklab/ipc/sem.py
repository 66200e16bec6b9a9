"""SysV semaphore undo lists across fork (ipc/sem.c): CLONE_SYSVSEM shares them."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.sched import SemUndoList, Task
from forklab.uapi import CLONE_SYSVSEM

if TYPE_CHECKING:
    from forklab.state import KernelState


def get_undo_list(k: KernelState, current: Task) -> SemUndoList:
    """The caller's undo list, allocated on first use (ipc/sem.c:1807-1826)."""
    if current.sysvsem_undo_list is None:
        if k.fault.should_fail("get_undo_list:kzalloc"):
            raise kerr(errno.ENOMEM, "sem_undo_list allocation failed", "ipc/sem.c:1815")
        current.sysvsem_undo_list = SemUndoList(refcnt=1)
    return current.sysvsem_undo_list


def copy_semundo(k: KernelState, clone_flags: int, tsk: Task, current: Task) -> None:
    """Share the undo list with CLONE_SYSVSEM, else start with none (ipc/sem.c:2264-2283)."""
    if clone_flags & CLONE_SYSVSEM:
        undo_list = get_undo_list(k, current)
        undo_list.refcnt += 1
        tsk.sysvsem_undo_list = undo_list
    else:
        tsk.sysvsem_undo_list = None


def exit_sem(tsk: Task) -> None:
    """Drop the task's reference to its undo list (ipc/sem.c:2297-2310)."""
    ulp = tsk.sysvsem_undo_list
    tsk.sysvsem_undo_list = None
    if ulp is not None:
        ulp.refcnt -= 1
