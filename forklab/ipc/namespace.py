"""IPC namespaces (ipc/namespace.c): created by CLONE_NEWIPC, otherwise shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.nsproxy import Namespace
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.ns_common import copy_ns, put_ns
from forklab.uapi import CLONE_NEWIPC

if TYPE_CHECKING:
    from forklab.state import KernelState


def copy_ipcs(k: KernelState, flags: int, user_ns: UserNamespace, old_ns: Namespace) -> Namespace:
    """Share old_ns or copy it for CLONE_NEWIPC (ipc/namespace.c:79)."""
    return copy_ns(k, flags, CLONE_NEWIPC, user_ns, old_ns, UCOUNT.UCOUNT_IPC_NAMESPACES, ("ipc/namespace.c:39", "ipc/namespace.c:79"))


def put_ipc_ns(k: KernelState, ns: Namespace | None) -> None:
    """Drop a reference to a IPC namespace (ipc/namespace.c)."""
    put_ns(k, ns, UCOUNT.UCOUNT_IPC_NAMESPACES)
