"""Real-time priority helpers (include/linux/sched/rt.h, kernel/sched/rt.c)."""

from __future__ import annotations

MAX_USER_RT_PRIO = 100  # include/linux/sched/prio.h:20
MAX_RT_PRIO = MAX_USER_RT_PRIO


def rt_prio(prio: int) -> bool:
    """A real-time priority (include/linux/sched/rt.h:9-14)."""
    return prio < MAX_RT_PRIO
