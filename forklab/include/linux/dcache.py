"""Inline helpers of include/linux/dcache.h: the type tests ``d_can_lookup`` and ``d_is_reg``.

The model has no dentries, so they test the inode the name leads to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import Inode


def is_dir(inode: Inode) -> bool:
    """``d_can_lookup``/``S_ISDIR``: the inode is a directory (include/linux/dcache.h:404)."""
    return inode.kind == "dir"


def is_reg(inode: Inode) -> bool:
    """``d_is_reg``/``S_ISREG``: the inode is a regular file (include/linux/dcache.h:434)."""
    return inode.kind in ("reg", "shmem")
