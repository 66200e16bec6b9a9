"""Mount namespaces (fs/namespace.c): copy_mnt_ns, current_chrooted and the mount root a task's paths carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.nsproxy import Namespace
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.ns_common import copy_ns, put_ns
from forklab.uapi import CLONE_NEWNS

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


def current_chrooted(t: Task) -> bool:
    """Whether ``t``'s root is not its mount namespace's root (fs/namespace.c:3941-3960)."""
    return t.fs is not None and t.fs.root.dentry != t.fs.root.mnt_root


def current_mnt_root(t: Task) -> str:
    """The mount root Paths of this task carry (fs/namespace.c:3941 current_chrooted compares it)."""
    return t.fs.root.mnt_root if t.fs is not None else "/"


def copy_mnt_ns(k: KernelState, flags: int, ns: Namespace, user_ns: UserNamespace) -> Namespace:
    """Share ``ns`` or copy the mount tree for CLONE_NEWNS (fs/namespace.c:3177-3260; ucount :3148)."""
    return copy_ns(k, flags, CLONE_NEWNS, user_ns, ns, UCOUNT.UCOUNT_MNT_NAMESPACES,
                   ("fs/namespace.c:3148", "fs/namespace.c:3190"))


def put_mnt_ns(k: KernelState, ns: Namespace | None) -> None:
    """Drop a reference to a mount namespace (fs/namespace.c:3670-3680)."""
    put_ns(k, ns, UCOUNT.UCOUNT_MNT_NAMESPACES)
