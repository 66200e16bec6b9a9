"""struct hrtimer and struct hrtimer_sleeper (include/linux/hrtimer.h), reduced to what nanosleep needs.

A timer has a soft and a hard expiry (``_softexpires`` and ``node.expires``, kept here as
``expires``): the slack between them lets the interrupt that expires one timer take every
other timer whose soft expiry has passed. Times are absolute ns on the model's clock
(``KernelState.clock_ns``, the only clock the model has).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task

HRTIMER_MODE_ABS = 0x00  # include/linux/hrtimer.h:42
HRTIMER_MODE_REL = 0x01  # include/linux/hrtimer.h:43
KTIME_MAX = (1 << 63) - 1  # include/linux/ktime.h:183 (S64_MAX)
KTIME_SEC_MAX = KTIME_MAX // 1_000_000_000  # include/linux/ktime.h:184


@dataclass(slots=True, eq=False)
class Hrtimer:
    """struct hrtimer (include/linux/hrtimer.h:117-126): expiry range, clock and whether it is queued."""

    _softexpires: int = 0
    expires: int = 0  # node.expires, the hard expiry the timerqueue is ordered by
    clockid: int = 0
    queued: bool = False  # state & HRTIMER_STATE_ENQUEUED


@dataclass(slots=True, eq=False)
class HrtimerSleeper:
    """struct hrtimer_sleeper (include/linux/hrtimer.h:135-138): the timer and the task to wake; ``task`` is
    None once the timer expired."""

    timer: Hrtimer
    task: Task | None
