"""Time unit conversions (kernel/time/time.c): ns and jiffies to the clock_t of times(2) and /proc."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.time64 import NSEC_PER_SEC
from forklab.mm.uaccess import copy_to_user

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

HZ = 250  # CONFIG_HZ: kernel/Kconfig.hz's default (HZ_250)
USER_HZ = 100  # include/asm-generic/param.h:8: the clock_t unit
TICK_NSEC = (NSEC_PER_SEC + HZ // 2) // HZ  # include/linux/jiffies.h:61


def jiffies_64_to_clock_t(x: int) -> int:
    """Jiffies to USER_HZ ticks: x * TICK_NSEC / (NSEC_PER_SEC / USER_HZ), since TICK_NSEC is no multiple of a
    tick (kernel/time/time.c:652-671)."""
    return x * TICK_NSEC // (NSEC_PER_SEC // USER_HZ)


def nsec_to_clock_t(x: int) -> int:
    """Nanoseconds to USER_HZ ticks, rounding down (kernel/time/time.c:674-687)."""
    return x // (NSEC_PER_SEC // USER_HZ)


def put_timespec64(k: KernelState, t: Task, ns: int, uaddr: int) -> bool:
    """Write ``ns`` as a struct __kernel_timespec (two s64) at ``uaddr``; False on a fault (kernel/time/time.c:884-896)."""
    sec, nsec = divmod(ns, NSEC_PER_SEC)
    return copy_to_user(k, t, uaddr, sec.to_bytes(8, "little", signed=True) + nsec.to_bytes(8, "little", signed=True))
