"""struct nsproxy and the namespace structs it points to (include/linux/nsproxy.h and friends)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.pid import PidNamespace
    from forklab.include.linux.user_namespace import UserNamespace


@dataclass(slots=True, eq=False)
class Namespace:
    """The common part of a namespace: ``struct ns_common`` plus owner and ucount (e.g. uts_namespace)."""

    kind: str
    user_ns: UserNamespace | None = None
    count: int = 1
    inum: int = 0
    ucounts_uid: int | None = None
    ucounts_ns: UserNamespace | None = None
    name: dict[str, str] = field(default_factory=dict)
    parent: Namespace | None = None

    def __repr__(self) -> str:
        return f"<{self.kind}:[{self.inum}]>"


@dataclass(slots=True, eq=False)
class Nsproxy:
    """struct nsproxy (include/linux/nsproxy.h:31-40): the namespaces a task lives in."""

    count: int = 1
    uts_ns: Namespace | None = None
    ipc_ns: Namespace | None = None
    mnt_ns: Namespace | None = None
    pid_ns_for_children: PidNamespace | None = None
    net_ns: Namespace | None = None
    time_ns: Namespace | None = None
    time_ns_for_children: Namespace | None = None
    cgroup_ns: Namespace | None = None
