"""clock_nanosleep(2) (kernel/time/posix-timers.c): the clock's k_clock, then its nsleep.

The model has one clock (``KernelState.clock_ns``), so CLOCK_REALTIME, CLOCK_MONOTONIC,
CLOCK_BOOTTIME and CLOCK_TAI all sleep on it through ``hrtimer_nanosleep``
(kernel/time/hrtimer.py). Time namespaces have no offsets in the model, so
``timens_ktime_to_host`` is the identity. The CPU-time clocks (posix-cpu-timers.c), the
alarm clocks (CAP_WAKE_ALARM, alarmtimer.c) and clock fds raise ``Unmodelled``.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.include.linux.hrtimer import HRTIMER_MODE_ABS, HRTIMER_MODE_REL
from forklab.include.linux.ktime import timespec64_to_ktime
from forklab.include.linux.time import (
    CLOCK_BOOTTIME,
    CLOCK_BOOTTIME_ALARM,
    CLOCK_MONOTONIC,
    CLOCK_MONOTONIC_COARSE,
    CLOCK_MONOTONIC_RAW,
    CLOCK_PROCESS_CPUTIME_ID,
    CLOCK_REALTIME,
    CLOCK_REALTIME_ALARM,
    CLOCK_REALTIME_COARSE,
    CLOCK_TAI,
    CLOCK_THREAD_CPUTIME_ID,
    TIMER_ABSTIME,
)
from forklab.include.linux.time64 import timespec64_valid
from forklab.kernel.time.hrtimer import hrtimer_nanosleep, nanosleep_setup

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

HRTIMER_CLOCKS = frozenset({CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI})  # nsleep = common_nsleep*
NO_NSLEEP_CLOCKS = frozenset({CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE})
UNMODELLED_CLOCKS = frozenset({CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, CLOCK_REALTIME_ALARM,
                               CLOCK_BOOTTIME_ALARM})


def clockid_to_kclock(which_clock: int) -> str | None:
    """The k_clock of a clock id: "hrtimer", "none" (no nsleep), "unmodelled", or None for an unknown id
    (kernel/time/posix-timers.c:1397-1411)."""
    if which_clock < 0 or which_clock in UNMODELLED_CLOCKS:
        return "unmodelled"  # clock_posix_cpu / clock_posix_dynamic, the cpu-time and alarm clocks
    if which_clock in HRTIMER_CLOCKS:
        return "hrtimer"
    if which_clock in NO_NSLEEP_CLOCKS:
        return "none"
    return None


def common_nsleep(k: KernelState, current: Task, which_clock: int, flags: int, rqtp: tuple[int, int]) -> int:
    """nsleep of the hrtimer clocks: an absolute or relative hrtimer_nanosleep (kernel/time/posix-timers.c:1221-1242)."""
    mode = HRTIMER_MODE_ABS if flags & TIMER_ABSTIME else HRTIMER_MODE_REL
    return hrtimer_nanosleep(k, current, timespec64_to_ktime(rqtp), mode, which_clock)


def sys_clock_nanosleep(k: KernelState, current: Task, which_clock: int, flags: int, rqtp: tuple[int, int],
                        rmtp: int) -> int:
    """clock_nanosleep(2): EINVAL for an unknown clock, EOPNOTSUPP for one without nsleep, EINVAL for a bad
    timespec; an absolute sleep writes no remaining time (kernel/time/posix-timers.c:1244-1268)."""
    if current.nanosleep_sleeper is None:
        kc = clockid_to_kclock(which_clock)
        if kc is None:
            raise kerr(errno.EINVAL, f"no clock {which_clock}", "kernel/time/posix-timers.c:1251")
        if kc == "unmodelled":
            raise Unmodelled(f"clock_nanosleep on clock {which_clock}: CPU-time, alarm and fd clocks are not modelled")
        if kc == "none":
            raise kerr(errno.EOPNOTSUPP, f"clock {which_clock} cannot sleep", "kernel/time/posix-timers.c:1253")
        if not timespec64_valid(rqtp):
            raise kerr(errno.EINVAL, f"invalid timespec {rqtp}", "kernel/time/posix-timers.c:1259")
        nanosleep_setup(current, 0 if flags & TIMER_ABSTIME else rmtp)
    return common_nsleep(k, current, which_clock, flags, rqtp)
