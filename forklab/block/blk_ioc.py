"""Per-task I/O contexts (block/blk-ioc.c): the reference a task drops on exit.

``copy_io`` (kernel/fork.c) shares the io_context on CLONE_IO or gives the child a fresh one
with the parent's ioprio; ``exit_io_context`` drops the task's reference. No I/O scheduler
or cgroup state hangs off them in the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def exit_io_context(task: Task) -> None:
    """Drop the task's io_context reference (block/blk-ioc.c:203-214)."""
    ioc = task.io_context
    task.io_context = None
    if ioc is not None:
        ioc.refcount -= 1
        ioc.active_ref -= 1
        ioc.nr_tasks -= 1
