"""cgroup namespaces (kernel/cgroup/namespace.c): created by CLONE_NEWCGROUP, otherwise shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.nsproxy import Namespace
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.ns_common import copy_ns, put_ns
from forklab.trace import traced
from forklab.uapi import CLONE_NEWCGROUP

if TYPE_CHECKING:
    from forklab.state import KernelState


@traced
def copy_cgroup_ns(k: KernelState, flags: int, user_ns: UserNamespace, old_ns: Namespace) -> Namespace:
    """Share old_ns or copy it for CLONE_NEWCGROUP (kernel/cgroup/namespace.c:50)."""
    return copy_ns(k, flags, CLONE_NEWCGROUP, user_ns, old_ns, UCOUNT.UCOUNT_CGROUP_NAMESPACES, ("kernel/cgroup/namespace.c:69", "kernel/cgroup/namespace.c:50"))


def put_cgroup_ns(k: KernelState, ns: Namespace | None) -> None:
    """Drop a reference to a cgroup namespace (kernel/cgroup/namespace.c)."""
    put_ns(k, ns, UCOUNT.UCOUNT_CGROUP_NAMESPACES)
