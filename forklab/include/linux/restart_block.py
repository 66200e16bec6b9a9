"""struct restart_block (include/linux/restart_block.h): what a restarted syscall resumes from.

The model keeps the nanosleep member only: the clock, whether the caller passed a
remaining-time pointer (``type``, TT_NONE or TT_NATIVE), the pointer, and the absolute expiry
``hrtimer_nanosleep`` saves for ``hrtimer_nanosleep_restart``. It is frozen: the kernel
copies the task_struct at fork by value, and the model's ``copy(task)`` then shares an
immutable block, which is the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

TT_NONE = 0  # include/linux/restart_block.h:17
TT_NATIVE = 1  # include/linux/restart_block.h:18

RestartFn = Callable[["KernelState", "Task"], int]


@dataclass(slots=True, frozen=True)
class RestartBlock:
    """struct restart_block (include/linux/restart_block.h:25-56), its ``fn`` and nanosleep member.

    ``fn`` None is do_no_restart_syscall (kernel/signal.c:3052), which fails with EINTR.
    """

    fn: RestartFn | None = None
    clockid: int = 0
    type: int = TT_NONE
    rmtp: int = 0
    expires: int = 0
