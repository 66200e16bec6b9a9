"""What the /proc files share (fs/proc/internal.h): the reader's access check.

``proc_may_access`` stands for ``ptrace_may_access(task, PTRACE_MODE_READ_FSCREDS)``, which
do_task_stat, proc_mem_open (maps, smaps), proc_fd_access_allowed (fd links) and
proc_ns_get_link ask, where the model can decide it: the reader's own thread group, and a
reader with CAP_SYS_PTRACE in the task's user namespace and its mm's, which passes every check
of __ptrace_may_access. Anything else raises Unmodelled rather than guessing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.errors import Unmodelled
from forklab.kernel.capability import ns_capable
from forklab.kernel.signal import same_thread_group
from forklab.uapi import CAP_SYS_PTRACE

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def proc_may_access(viewer: Task, task: Task, what: str) -> bool:
    """ptrace_may_access(task, PTRACE_MODE_READ_FSCREDS) for ``viewer``, where the model decides it; Unmodelled otherwise."""
    if same_thread_group(viewer, task):
        return True
    assert task.cred is not None and task.cred.user_ns is not None
    mm_ns = task.mm.user_ns if task.mm is not None else None
    if ns_capable(viewer, task.cred.user_ns, CAP_SYS_PTRACE) and (mm_ns is None or ns_capable(viewer, mm_ns, CAP_SYS_PTRACE)):
        return True
    raise Unmodelled(f"{what} read by task {viewer.pid}: ptrace_may_access for a reader without "
                     "CAP_SYS_PTRACE over the task is not modelled")


__all__ = ["proc_may_access"]
