"""struct pid, struct upid and struct pid_namespace (include/linux/pid.h, pid_namespace.h)."""

from __future__ import annotations

from collections.abc import MutableSequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.include.linux.user_namespace import UserNamespace

PIDNS_ADDING = 1 << 31  # include/linux/pid_namespace.h:54
MAX_PID_NS_LEVEL = 32  # include/linux/pid_namespace.h:16


@dataclass(slots=True, eq=False)
class PidNamespace:
    """struct pid_namespace (include/linux/pid_namespace.h:24-52).

    ``idr`` maps a number to its struct pid; a number allocated but not yet made visible
    (alloc_pid between idr_alloc_cyclic and idr_replace) maps to ``None``. ``idr_next`` is the
    idr's cyclic cursor.
    """

    level: int = 0
    parent: PidNamespace | None = None
    user_ns: UserNamespace | None = None
    count: int = 1
    inum: int = 0
    idr: dict[int, Pid | None] = field(default_factory=dict)
    idr_next: int = 0
    pid_allocated: int = PIDNS_ADDING
    child_reaper: Task | None = None
    reboot: int = 0
    ucounts_uid: int | None = None
    ucounts_ns: UserNamespace | None = None
    proc_mnt: bool = False
    pid_max: int = 32768  # 6.14+: per namespace; the 5.6 profile uses the global kernel.pid_max

    def __repr__(self) -> str:
        return f"<pid_ns level={self.level} [{self.inum}]>"


@dataclass(slots=True, frozen=True)
class Upid:
    """struct upid (include/linux/pid.h:54-57): a number in one namespace."""

    nr: int
    ns: PidNamespace


@dataclass(slots=True, eq=False)
class Pid:
    """struct pid (include/linux/pid.h:59-68): one number per level, the tasks that use it, its pidfd pollers.

    ``wait_pidfd`` is the wait queue of tasks asleep in poll(2) on a pidfd of this pid
    (pidfd_poll registers them; do_notify_pidfd wakes them when the thread group has exited).
    """

    count: int = 1
    level: int = 0
    numbers: list[Upid] = field(default_factory=list)
    tasks: list[MutableSequence[Task]] = field(default_factory=lambda: [[], [], [], []])  # list or HlistHead
    wait_pidfd: list[Task] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<pid {'/'.join(str(u.nr) for u in self.numbers)}>"
