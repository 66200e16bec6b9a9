"""The pids cgroup controller (kernel/cgroup/pids.c) over a minimal cgroup tree.

The model keeps only what fork touches: a tree of cgroups, each with a ``pids.max`` limit
and a ``pids.current`` counter, and ``events.max`` (how often a fork was refused). A fork
charges the caller's cgroup and every ancestor below the root; if any level goes over its
limit, everything is uncharged and the fork fails with EAGAIN. Tasks (threads), not
processes, are counted, and zombies stay charged until they are released.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.threads import PID_MAX_LIMIT

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

PIDS_MAX = PID_MAX_LIMIT + 1  # kernel/cgroup/pids.c:37, PID_MAX_LIMIT + 1: "max"


@dataclass(slots=True, eq=False)
class Cgroup:
    """A cgroup with its pids controller state (struct pids_cgroup, kernel/cgroup/pids.c:42-55)."""

    name: str
    parent: Cgroup | None = None
    limit: int = PIDS_MAX
    counter: int = 0
    events_max: int = 0
    children: list[Cgroup] = field(default_factory=list)
    nr_tasks: int = 0

    def path(self) -> str:
        """The cgroup's path from the root, e.g. ``/jobs/a``."""
        if self.parent is None:
            return "/"
        parent = self.parent.path()
        return f"{parent.rstrip('/')}/{self.name}"


def pids_charge(pids: Cgroup, num: int) -> None:
    """Charge ``num`` to a cgroup and its ancestors, ignoring limits (kernel/cgroup/pids.c:126-132)."""
    p: Cgroup | None = pids
    while p is not None and p.parent is not None:
        p.counter += num
        p = p.parent


def pids_uncharge(pids: Cgroup, num: int) -> None:
    """Uncharge a cgroup and its ancestors (kernel/cgroup/pids.c:108-116)."""
    pids_charge(pids, -num)


def pids_try_charge(pids: Cgroup, num: int) -> bool:
    """Charge the hierarchy; undo it all and fail if any level exceeds its limit (kernel/cgroup/pids.c:143-168)."""
    p: Cgroup | None = pids
    charged: list[Cgroup] = []
    while p is not None and p.parent is not None:
        p.counter += num
        charged.append(p)
        if p.counter > p.limit:
            for q in charged:
                q.counter -= num
            return False
        p = p.parent
    return True


def pids_can_fork(k: KernelState, current: Task) -> None:
    """Charge one task to the caller's cgroup; EAGAIN over pids.max (kernel/cgroup/pids.c:217-236)."""
    pids = current.cgroups
    assert pids is not None
    if not pids_try_charge(pids, 1):
        pids.events_max += 1
        raise kerr(errno.EAGAIN, f"pids.max of cgroup {pids.path()} reached", "kernel/cgroup/pids.c:226")


def pids_cancel_fork(current: Task) -> None:
    """Undo pids_can_fork after a later fork failure (kernel/cgroup/pids.c:238-246)."""
    assert current.cgroups is not None
    pids_uncharge(current.cgroups, 1)


def pids_release(task: Task) -> None:
    """Uncharge a released task (kernel/cgroup/pids.c:248-253)."""
    assert task.cgroups is not None
    pids_uncharge(task.cgroups, 1)
