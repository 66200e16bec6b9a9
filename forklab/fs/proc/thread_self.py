"""/proc/thread-self (fs/proc/thread_self.c): the link to the reader's /proc/<tgid>/task/<tid>."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.sched import PIDTYPE
from forklab.kernel.pid import __task_pid_nr_ns

if TYPE_CHECKING:
    from forklab.include.linux.pid import PidNamespace
    from forklab.include.linux.sched import Task


def proc_thread_self_get_link(reader: Task, ns: PidNamespace) -> str:
    """/proc/thread-self: ``<tgid>/task/<tid>`` of the reader; ENOENT if it has none there (fs/proc/thread_self.c:11-28)."""
    tgid = __task_pid_nr_ns(reader, PIDTYPE.PIDTYPE_TGID, ns)
    pid = __task_pid_nr_ns(reader, PIDTYPE.PIDTYPE_PID, ns)
    if not pid:
        raise kerr(errno.ENOENT, "the reader has no pid in /proc's pid namespace", "fs/proc/thread_self.c:21")
    return f"{tgid}/task/{pid}"


__all__ = ["proc_thread_self_get_link"]
