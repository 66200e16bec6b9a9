"""SCHED_DEADLINE helpers (include/linux/sched/deadline.h, kernel/sched/deadline.c)."""

from __future__ import annotations

MAX_DL_PRIO = 0  # include/linux/sched/deadline.h:12


def dl_prio(prio: int) -> bool:
    """A deadline priority (include/linux/sched/deadline.h:14-19)."""
    return prio < MAX_DL_PRIO
