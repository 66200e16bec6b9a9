"""UTS namespaces (kernel/utsname.c): created by CLONE_NEWUTS, otherwise shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.nsproxy import Namespace
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.ns_common import copy_ns, put_ns
from forklab.trace import traced
from forklab.uapi import CLONE_NEWUTS

if TYPE_CHECKING:
    from forklab.state import KernelState


@traced
def copy_utsname(k: KernelState, flags: int, user_ns: UserNamespace, old_ns: Namespace) -> Namespace:
    """Share old_ns or copy it for CLONE_NEWUTS (kernel/utsname.c:89)."""
    return copy_ns(k, flags, CLONE_NEWUTS, user_ns, old_ns, UCOUNT.UCOUNT_UTS_NAMESPACES, ("kernel/utsname.c:52", "kernel/utsname.c:89"))


def put_uts_ns(k: KernelState, ns: Namespace | None) -> None:
    """Drop a reference to a UTS namespace (kernel/utsname.c)."""
    put_ns(k, ns, UCOUNT.UCOUNT_UTS_NAMESPACES)
