"""jiffies_64 (kernel/time/jiffies.c) on the model's clock.

The model has no tick: jiffies_64 is the number of whole ticks of ``KernelState.clock_ns``
since boot, counted from INITIAL_JIFFIES (five minutes before the 32-bit wrap, so that wrap
bugs show early, include/linux/jiffies.h:174).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.kernel.time.time import HZ, TICK_NSEC

if TYPE_CHECKING:
    from forklab.state import KernelState

INITIAL_JIFFIES = (-300 * HZ) & 0xFFFFFFFF  # include/linux/jiffies.h:174: (unsigned long)(unsigned int)(-300*HZ)


def get_jiffies_64(k: KernelState) -> int:
    """jiffies_64 now: INITIAL_JIFFIES plus the ticks the model clock has passed (kernel/time/jiffies.c:64-74)."""
    return INITIAL_JIFFIES + k.clock_ns // TICK_NSEC
