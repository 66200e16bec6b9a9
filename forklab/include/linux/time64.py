"""struct timespec64 checks (include/linux/time64.h); a timespec is a (tv_sec, tv_nsec) pair."""

from __future__ import annotations

NSEC_PER_SEC = 1_000_000_000  # include/vdso/time64.h:8


def timespec64_valid(ts: tuple[int, int]) -> bool:
    """A valid timespec: tv_sec >= 0 and 0 <= tv_nsec < NSEC_PER_SEC (include/linux/time64.h:94-103)."""
    return ts[0] >= 0 and 0 <= ts[1] < NSEC_PER_SEC
