"""High-resolution timers and nanosleep (kernel/time/hrtimer.c) on the model's clock.

The model has one clock, ``KernelState.clock_ns``: every syscall advances it by 1 µs, and it
jumps forward only when the timer interrupt fires. Its queued timers are the sleepers of
``nanosleep``/``clock_nanosleep``, in ``KernelState.hrtimer_bases``, in timerqueue order: by
hard expiry (``node.expires``), equal expiries in arming order (an rb-tree insert goes right of
an equal key). There are no CPUs and no clock events: ``hrtimer_interrupt`` is what happens
when the next event is due, and the program runner calls it when every task sleeps (the
clock jumps to the earliest hard expiry, as an idle CPU's clock event fires then) or when
the clock has passed it while tasks ran (``hrtimer_run_expired``).

A sleeper: ``hrtimer_nanosleep`` arms a timer for ``[rqtp, rqtp + slack]`` (the task's
``timer_slack_ns``, 0 for rt and deadline tasks) and ``do_nanosleep`` puts the task in
TASK_INTERRUPTIBLE. The kernel's task then sleeps inside do_nanosleep; the model's raises
``Blocked`` with the sleeper left on the task (``Task.nanosleep_sleeper``, the model's view
of the hrtimer_sleeper on its kernel stack), and the call issued again after the wake-up
resumes do_nanosleep's loop where schedule() returned. An expired timer (``hrtimer_wakeup``)
clears ``sleeper.task`` and wakes the task: the call returns 0. A signal that wakes it first
ends the sleep: the remaining time goes to ``rmtp`` (when given), and the call fails with
ERESTART_RESTARTBLOCK, which a handler turns into EINTR; without a handler the syscall
restarts through ``restart_block.fn`` (``hrtimer_nanosleep_restart``: the same absolute
expiry). An absolute sleep (TIMER_ABSTIME) fails with ERESTARTNOHAND instead.

Not modelled: the soft/hard interrupt split, per-CPU bases, migration, clock_was_set and
timer slack of the freezer; a task killed while it sleeps leaves its timer queued until the
next interrupt drops it (the kernel cancels it on the way out of do_nanosleep).
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import TYPE_CHECKING

from forklab.errors import ERESTART_RESTARTBLOCK, ERESTARTNOHAND, Blocked, kerr
from forklab.include.linux.hrtimer import HRTIMER_MODE_ABS, HRTIMER_MODE_REL, KTIME_MAX, Hrtimer, HrtimerSleeper
from forklab.include.linux.ktime import timespec64_to_ktime
from forklab.include.linux.restart_block import TT_NATIVE, TT_NONE
from forklab.include.linux.sched import (
    PF_EXITING,
    TaskState,
    set_current_state_sleep,
)
from forklab.include.linux.time import CLOCK_MONOTONIC
from forklab.include.linux.time64 import timespec64_valid
from forklab.kernel.sched.core import wake_up_process
from forklab.kernel.sched.deadline import dl_prio
from forklab.kernel.sched.rt import rt_prio
from forklab.kernel.signal import signal_pending
from forklab.kernel.time.time import put_timespec64

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

SLEEP_WAITS_ON = "hrtimer_nanosleep"  # what a sleeper's waits_on says


def enqueue_hrtimer(k: KernelState, sl: HrtimerSleeper) -> None:
    """Queue the timer by hard expiry, right of equal ones (kernel/time/hrtimer.c:961-975; lib/timerqueue.c:27-49)."""
    queue = k.hrtimer_bases
    i = len(queue)
    while i and queue[i - 1].timer.expires > sl.timer.expires:
        i -= 1
    queue.insert(i, sl)
    sl.timer.queued = True


def hrtimer_cancel(k: KernelState, sl: HrtimerSleeper) -> None:
    """Take the timer off the queue if it is still there (kernel/time/hrtimer.c:1273-1284, 985-1016)."""
    if sl.timer.queued:
        k.hrtimer_bases.remove(sl)
        sl.timer.queued = False


def hrtimer_sleeper_start_expires(k: KernelState, sl: HrtimerSleeper, mode: int) -> None:
    """Start the sleeper's timer: a relative expiry becomes now + it, the slack kept (kernel/time/hrtimer.c:1782-1797,
    1084-1113)."""
    if mode & HRTIMER_MODE_REL:
        now = k.clock_ns
        sl.timer._softexpires = min(sl.timer._softexpires + now, KTIME_MAX)  # ktime_add_safe
        sl.timer.expires = min(sl.timer.expires + now, KTIME_MAX)
    enqueue_hrtimer(k, sl)


def hrtimer_wakeup(k: KernelState, sl: HrtimerSleeper) -> None:
    """The sleeper's timer function: clear ``task`` and wake it (kernel/time/hrtimer.c:1761-1772)."""
    task = sl.task
    sl.task = None
    if task is not None:
        wake_up_process(k, task)


def __run_hrtimer(k: KernelState, sl: HrtimerSleeper) -> None:
    """Dequeue an expired timer and run its function (kernel/time/hrtimer.c:1477-1545)."""
    hrtimer_cancel(k, sl)
    if k.listeners:
        k.trace("hrtimer_expire", "kernel/time/hrtimer.c:1477", f"timer of task {sl.task.pid if sl.task else 0} "
                f"expires at {sl.timer._softexpires} ns", tid=sl.task.pid if sl.task else 0)
    hrtimer_wakeup(k, sl)


def __hrtimer_run_queues(k: KernelState, now: int) -> None:
    """Expire the timers in queue order until one whose soft expiry is still ahead (kernel/time/hrtimer.c:1547-1581)."""
    queue = k.hrtimer_bases
    while queue:
        sl = queue[0]
        if now < sl.timer._softexpires:
            break
        __run_hrtimer(k, sl)


def _drop_dead_sleepers(k: KernelState) -> None:
    """Drop the timers of tasks that died asleep: the kernel cancels them as do_nanosleep returns (see the module
    docstring)."""
    for sl in [s for s in k.hrtimer_bases if s.task is not None and (s.task.exit_state or s.task.flags & PF_EXITING)]:
        hrtimer_cancel(k, sl)


def __hrtimer_get_next_event(k: KernelState) -> int | None:
    """The earliest hard expiry of a queued timer, None if none is queued (kernel/time/hrtimer.c:566-590)."""
    _drop_dead_sleepers(k)
    return k.hrtimer_bases[0].timer.expires if k.hrtimer_bases else None


def hrtimer_interrupt(k: KernelState) -> bool:
    """The clock event of the next timer fires: the clock jumps to its hard expiry (if ahead) and every due timer
    expires; False when no timer is queued (kernel/time/hrtimer.c:1611-1660)."""
    expires_next = __hrtimer_get_next_event(k)
    if expires_next is None:
        return False
    k.clock_ns = max(k.clock_ns, expires_next)
    __hrtimer_run_queues(k, k.clock_ns)
    return True


def hrtimer_run_expired(k: KernelState) -> None:
    """hrtimer_run_queues as the tick runs it: expire the timers whose hard expiry the clock has passed, without
    moving the clock (kernel/time/hrtimer.c:1724-1754)."""
    queue = k.hrtimer_bases
    if queue and queue[0].timer.expires <= k.clock_ns:
        __hrtimer_run_queues(k, k.clock_ns)


def do_nanosleep(k: KernelState, current: Task, sl: HrtimerSleeper, mode: int) -> int:
    """Sleep until the timer expires or a signal is pending: 0, or ERESTART_RESTARTBLOCK with the remaining time
    copied out (kernel/time/hrtimer.c:1865-1898).

    A first run arms the timer and sleeps (``Blocked``); the call issued again after the
    wake-up comes back here with the same sleeper (``Task.nanosleep_sleeper``), where the
    kernel's schedule() returns, and sleeps again if neither the timer nor a signal woke it.
    """
    again = True
    if current.nanosleep_sleeper is sl:  # schedule() returned
        hrtimer_cancel(k, sl)
        mode = HRTIMER_MODE_ABS
        again = sl.task is not None and not signal_pending(current)
    if again:
        current.nanosleep_sleeper = sl
        hrtimer_sleeper_start_expires(k, sl, mode)
        hrtimer_run_expired(k)  # a hard expiry already past fires at once
        if sl.task is not None and not signal_pending(current):
            set_current_state_sleep(k, current, TaskState.TASK_INTERRUPTIBLE, SLEEP_WAITS_ON)
            raise Blocked(current.pid, SLEEP_WAITS_ON)
        hrtimer_cancel(k, sl)  # schedule() returned at once: a pending signal keeps the task running
    current.nanosleep_sleeper = None
    if sl.task is None:
        return 0
    restart = current.restart_block
    if restart.type != TT_NONE:
        rem = sl.timer.expires - k.clock_ns  # hrtimer_expires_remaining: to the hard expiry
        if rem <= 0:
            return 0
        if not put_timespec64(k, current, rem, restart.rmtp):  # nanosleep_copyout (kernel/time/hrtimer.c:1846)
            raise kerr(errno.EFAULT, "rmtp is not writable", "kernel/time/hrtimer.c:1856")
    raise kerr(ERESTART_RESTARTBLOCK, f"a signal is pending in {SLEEP_WAITS_ON}", "kernel/time/hrtimer.c:1897")


def hrtimer_nanosleep_restart(k: KernelState, current: Task) -> int:
    """restart_block.fn of a relative nanosleep: sleep again until the saved absolute expiry
    (kernel/time/hrtimer.c:1900-1911)."""
    sl = current.nanosleep_sleeper
    if sl is None:
        expires = current.restart_block.expires
        sl = HrtimerSleeper(Hrtimer(expires, expires, current.restart_block.clockid), current)
    return do_nanosleep(k, current, sl, HRTIMER_MODE_ABS)


def hrtimer_nanosleep(k: KernelState, current: Task, rqtp: int, mode: int, clockid: int) -> int:
    """Sleep ``rqtp`` ns (or until ``rqtp`` with HRTIMER_MODE_ABS) with the task's slack; arms restart_block for a
    relative sleep a signal interrupted (kernel/time/hrtimer.c:1913-1943)."""
    sl = current.nanosleep_sleeper
    if sl is None:
        slack = 0 if dl_prio(current.prio) or rt_prio(current.prio) else current.timer_slack_ns
        sl = HrtimerSleeper(Hrtimer(rqtp, min(rqtp + slack, KTIME_MAX), clockid), current)
    try:
        return do_nanosleep(k, current, sl, mode)
    except OSError as e:
        if e.errno != ERESTART_RESTARTBLOCK:
            raise
        if mode == HRTIMER_MODE_ABS:
            raise kerr(ERESTARTNOHAND, "an absolute sleep does not restart", "kernel/time/hrtimer.c:1932") from None
        current.restart_block = replace(current.restart_block, fn=hrtimer_nanosleep_restart, clockid=sl.timer.clockid,
                                        expires=sl.timer.expires)
        raise


def nanosleep_setup(current: Task, rmtp: int) -> None:
    """Record whether the caller wants the remaining time, and where (kernel/time/hrtimer.c:1959-1960)."""
    current.restart_block = replace(current.restart_block, type=TT_NATIVE if rmtp else TT_NONE, rmtp=rmtp)


def sys_nanosleep(k: KernelState, current: Task, rqtp: tuple[int, int], rmtp: int) -> int:
    """nanosleep(2): EINVAL for an invalid timespec, then a relative CLOCK_MONOTONIC sleep
    (kernel/time/hrtimer.c:1948-1963)."""
    if current.nanosleep_sleeper is None:
        if not timespec64_valid(rqtp):
            raise kerr(errno.EINVAL, f"invalid timespec {rqtp}", "kernel/time/hrtimer.c:1957")
        nanosleep_setup(current, rmtp)
    return hrtimer_nanosleep(k, current, timespec64_to_ktime(rqtp), HRTIMER_MODE_REL, CLOCK_MONOTONIC)
