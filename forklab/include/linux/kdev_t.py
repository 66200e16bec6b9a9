"""Device numbers (include/linux/kdev_t.h)."""

from __future__ import annotations

MINORBITS = 20  # include/linux/kdev_t.h:7


def MKDEV(major: int, minor: int) -> int:
    """Device number of (major, minor) (include/linux/kdev_t.h:12)."""
    return (major << MINORBITS) | minor
