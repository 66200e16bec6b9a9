"""Helpers of procfs (fs/proc/util.c): a /proc name as a number."""

from __future__ import annotations


def name_to_int(name: str) -> int | None:
    """A /proc name as a number: decimal digits, no leading zero, below ~0U; None otherwise (fs/proc/util.c:4-24)."""
    valid = name.isascii() and name.isdigit() and not (len(name) > 1 and name[0] == "0")
    return int(name) if valid and int(name) < 0xFFFFFFFF else None


__all__ = ["name_to_int"]
