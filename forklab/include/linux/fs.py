"""Inline helpers of include/linux/fs.h: access modes and file references."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.uapi import O_ACCMODE

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File

MAY_WRITE = 0x2  # include/linux/fs.h:94-95
MAY_READ = 0x4


def OPEN_FMODE(flags: int) -> int:
    """f_mode read/write bits of open flags: O_RDONLY->READ, O_WRONLY->WRITE, O_RDWR->both (include/linux/fs.h:3543)."""
    return (flags + 1) & O_ACCMODE


def ACC_MODE(flags: int) -> int:
    """MAY_READ/MAY_WRITE wanted by an access mode: RDONLY read, WRONLY write, RDWR and 3 both (include/linux/fs.h:3542)."""
    return (MAY_READ, MAY_WRITE, MAY_READ | MAY_WRITE, MAY_READ | MAY_WRITE)[flags & O_ACCMODE]


def get_file(f: File) -> File:
    """Take a reference on a struct file (include/linux/fs.h:984-988)."""
    f.f_count += 1
    return f
