"""Kernel integer types (include/linux/types.h)."""

from __future__ import annotations

U32 = 0xFFFFFFFF  # the largest u32 (include/linux/kernel.h:31, U32_MAX)
U64 = 2**64 - 1  # the largest u64 and unsigned long (include/linux/kernel.h:37, U64_MAX)


def _s64(v: int) -> int:
    """Wrap to loff_t, a signed 64-bit offset (include/linux/types.h:46)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v
