"""ktime_t helpers (include/linux/ktime.h): a time in ns, at most KTIME_MAX."""

from __future__ import annotations

from forklab.include.linux.hrtimer import KTIME_MAX, KTIME_SEC_MAX
from forklab.include.linux.time64 import NSEC_PER_SEC


def timespec64_to_ktime(ts: tuple[int, int]) -> int:
    """A timespec as ns, clamped to KTIME_MAX (include/linux/ktime.h:78-84)."""
    if ts[0] >= KTIME_SEC_MAX:
        return KTIME_MAX
    return ts[0] * NSEC_PER_SEC + ts[1]
