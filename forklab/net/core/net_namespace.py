"""network namespaces (net/core/net_namespace.c): created by CLONE_NEWNET, otherwise shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.nsproxy import Namespace
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.ns_common import copy_ns, put_ns
from forklab.uapi import CLONE_NEWNET

if TYPE_CHECKING:
    from forklab.state import KernelState


def copy_net_ns(k: KernelState, flags: int, user_ns: UserNamespace, old_ns: Namespace) -> Namespace:
    """Share old_ns or copy it for CLONE_NEWNET (net/core/net_namespace.c:441)."""
    return copy_ns(k, flags, CLONE_NEWNET, user_ns, old_ns, UCOUNT.UCOUNT_NET_NAMESPACES, ("net/core/net_namespace.c:451", "net/core/net_namespace.c:441"))


def put_net(k: KernelState, ns: Namespace | None) -> None:
    """Drop a reference to a network namespace (net/core/net_namespace.c)."""
    put_ns(k, ns, UCOUNT.UCOUNT_NET_NAMESPACES)
