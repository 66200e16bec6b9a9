"""/proc/self (fs/proc/self.c): the link to the reader's own /proc/<tgid>."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.sched import PIDTYPE
from forklab.kernel.pid import __task_pid_nr_ns

if TYPE_CHECKING:
    from forklab.include.linux.pid import PidNamespace
    from forklab.include.linux.sched import Task


def proc_self_get_link(reader: Task, ns: PidNamespace) -> str:
    """/proc/self: the reader's tgid in the namespace; ENOENT if it has none there (fs/proc/self.c:11-28)."""
    tgid = __task_pid_nr_ns(reader, PIDTYPE.PIDTYPE_TGID, ns)
    if not tgid:
        raise kerr(errno.ENOENT, "the reader has no tgid in /proc's pid namespace", "fs/proc/self.c:20")
    return str(tgid)


__all__ = ["proc_self_get_link"]
