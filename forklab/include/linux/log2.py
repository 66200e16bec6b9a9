"""Integer log2 helpers (include/linux/log2.h)."""

from __future__ import annotations


def roundup_pow_of_two(n: int) -> int:
    """roundup_pow_of_two (include/linux/log2.h:173)."""
    return 1 << (n - 1).bit_length() if n > 1 else 1
