"""Library helpers for simple filesystems (fs/libfs.c): the directory llseek the model's directories use."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.types import _s64
from forklab.uapi import SEEK_CUR, SEEK_SET

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File


def dcache_dir_lseek(file: File, offset: int, whence: int) -> int:
    """Directory seek: SEEK_SET or SEEK_CUR only, never negative (fs/libfs.c:134-170)."""
    if whence == SEEK_CUR:
        offset = _s64(offset + file.f_pos)
    elif whence != SEEK_SET:
        raise kerr(errno.EINVAL, "directories seek only with SEEK_SET or SEEK_CUR", "fs/libfs.c:146")
    if offset < 0:
        raise kerr(errno.EINVAL, "the resulting directory offset would be negative", "fs/libfs.c:142-146")
    file.f_pos = offset
    return offset
