"""time namespaces (kernel/time/namespace.c): created by CLONE_NEWTIME, otherwise shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.nsproxy import Namespace, Nsproxy
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.ns_common import copy_ns, put_ns
from forklab.trace import traced
from forklab.uapi import CLONE_NEWTIME

if TYPE_CHECKING:
    from forklab.state import KernelState


@traced
def copy_time_ns(k: KernelState, flags: int, user_ns: UserNamespace, old_ns: Namespace) -> Namespace:
    """Share old_ns or copy it for CLONE_NEWTIME (kernel/time/namespace.c:132)."""
    return copy_ns(k, flags, CLONE_NEWTIME, user_ns, old_ns, UCOUNT.UCOUNT_TIME_NAMESPACES, ("kernel/time/namespace.c:84", "kernel/time/namespace.c:132"))


def put_time_ns(k: KernelState, ns: Namespace | None) -> None:
    """Drop a reference to a time namespace (kernel/time/namespace.c)."""
    put_ns(k, ns, UCOUNT.UCOUNT_TIME_NAMESPACES)


def timens_on_fork(k: KernelState, nsproxy: Nsproxy) -> None:
    """Enter the pending time namespace, if one was unshared (kernel/time/namespace.c:310-331)."""
    if nsproxy.time_ns is nsproxy.time_ns_for_children:
        return
    assert nsproxy.time_ns_for_children is not None
    nsproxy.time_ns_for_children.count += 1
    put_time_ns(k, nsproxy.time_ns)
    nsproxy.time_ns = nsproxy.time_ns_for_children
    if k.listeners:
        k.trace("timens_on_fork", "kernel/time/namespace.c:310", "child enters the unshared time namespace")
