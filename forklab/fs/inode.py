"""Inode permission helpers (fs/inode.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.fdtable import Inode
from forklab.kernel.capability import ns_capable
from forklab.uapi import CAP_FOWNER

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def inode_owner_or_capable(t: Task, inode: Inode) -> bool:
    """The caller's fsuid owns the inode, or it has CAP_FOWNER (fs/inode.c:2083-2094)."""
    cred = t.cred
    if cred is None:
        return False
    if cred.fsuid == inode.i_uid:
        return True
    return cred.user_ns is not None and ns_capable(t, cred.user_ns, CAP_FOWNER)
