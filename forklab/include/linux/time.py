"""The clock ids and clock_nanosleep flag of include/uapi/linux/time.h, and struct tms (include/uapi/linux/times.h)."""

from __future__ import annotations

from dataclasses import dataclass

CLOCK_REALTIME = 0  # include/uapi/linux/time.h:46
CLOCK_MONOTONIC = 1  # include/uapi/linux/time.h:47
CLOCK_PROCESS_CPUTIME_ID = 2  # include/uapi/linux/time.h:48
CLOCK_THREAD_CPUTIME_ID = 3  # include/uapi/linux/time.h:49
CLOCK_MONOTONIC_RAW = 4  # include/uapi/linux/time.h:50
CLOCK_REALTIME_COARSE = 5  # include/uapi/linux/time.h:51
CLOCK_MONOTONIC_COARSE = 6  # include/uapi/linux/time.h:52
CLOCK_BOOTTIME = 7  # include/uapi/linux/time.h:53
CLOCK_REALTIME_ALARM = 8  # include/uapi/linux/time.h:54
CLOCK_BOOTTIME_ALARM = 9  # include/uapi/linux/time.h:55
CLOCK_TAI = 11  # include/uapi/linux/time.h:63
MAX_CLOCKS = 16  # include/uapi/linux/time.h:65
TIMER_ABSTIME = 0x01  # include/uapi/linux/time.h:72


@dataclass(slots=True, frozen=True)
class Tms:
    """struct tms (include/uapi/linux/times.h:7-12): clock ticks (USER_HZ) of the caller and its waited-for children."""

    tms_utime: int
    tms_stime: int
    tms_cutime: int
    tms_cstime: int
