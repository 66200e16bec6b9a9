"""The cgroup core's fork and exit hooks (kernel/cgroup/cgroup.c): they call each controller.

The model's only controller is pids (forklab/kernel/cgroup/pids.py).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.fs.file import fdget_raw
from forklab.kernel.cgroup.pids import pids_can_fork, pids_cancel_fork, pids_release

if TYPE_CHECKING:
    from forklab.include.linux.sched import KernelCloneArgs, Task
    from forklab.state import KernelState


def cgroup_can_fork(k: KernelState, current: Task, into: KernelCloneArgs | None = None) -> None:
    """Ask every controller whether the fork may go on; only pids can refuse here (kernel/cgroup/cgroup.c:5884-5906).

    ``into`` (5.7+, CLONE_INTO_CGROUP): the target cgroup comes from a directory fd in
    cgroupfs (cgroup_css_set_fork). The model has no cgroupfs files, so an open fd is never a
    cgroup directory: EBADF, as the kernel answers for a file that is not one.
    """
    if into is not None:

        if fdget_raw(current, into.cgroup) is None:
            raise kerr(errno.EBADF, f"CLONE_INTO_CGROUP: fd {into.cgroup} is not open", "kernel/cgroup/cgroup.c:cgroup_css_set_fork")
        raise kerr(errno.EBADF, f"CLONE_INTO_CGROUP: fd {into.cgroup} is not a cgroup2 directory (the model has no cgroupfs)",
                   "kernel/cgroup/cgroup.c:cgroup_css_set_fork")
    pids_can_fork(k, current)


def cgroup_cancel_fork(current: Task) -> None:
    """Undo cgroup_can_fork (kernel/cgroup/cgroup.c:5916-5925)."""
    pids_cancel_fork(current)


def cgroup_post_fork(child: Task) -> None:
    """Link the child into its css_set (kernel/cgroup/cgroup.c:5935-5992)."""
    assert child.cgroups is not None
    child.cgroups.nr_tasks += 1


def cgroup_release(task: Task) -> None:
    """Take a released task out of its cgroup and uncharge pids (kernel/cgroup/cgroup.c:6047-6063)."""
    assert task.cgroups is not None
    task.cgroups.nr_tasks -= 1
    pids_release(task)
