"""Memory locking (mm/mlock.c): only ``can_do_mlock``, which MAP_LOCKED asks; mlock(2) is not modelled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.kernel.capability import capable
from forklab.kernel.signal import rlimit
from forklab.uapi import CAP_IPC_LOCK, RLIMIT_MEMLOCK

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def can_do_mlock(t: Task) -> bool:
    """RLIMIT_MEMLOCK nonzero or CAP_IPC_LOCK (mm/mlock.c:29-36)."""
    return rlimit(t, RLIMIT_MEMLOCK) != 0 or capable(t, CAP_IPC_LOCK)
