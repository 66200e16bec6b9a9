"""struct user_namespace and ucounts (include/linux/user_namespace.h)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class UCOUNT(enum.IntEnum):
    """enum ucount_type (include/linux/user_namespace.h:40-53)."""

    UCOUNT_USER_NAMESPACES = 0
    UCOUNT_PID_NAMESPACES = 1
    UCOUNT_UTS_NAMESPACES = 2
    UCOUNT_IPC_NAMESPACES = 3
    UCOUNT_NET_NAMESPACES = 4
    UCOUNT_MNT_NAMESPACES = 5
    UCOUNT_CGROUP_NAMESPACES = 6
    UCOUNT_TIME_NAMESPACES = 7
    UCOUNT_INOTIFY_INSTANCES = 8
    UCOUNT_INOTIFY_WATCHES = 9


UCOUNT_COUNTS = 10
INT_MAX = 2**31 - 1
UID_GID_MAP_MAX_EXTENTS = 340  # include/linux/user_namespace.h:15


@dataclass(slots=True, frozen=True)
class UidGidExtent:
    """struct uid_gid_extent (user_namespace.h:16-20): ``count`` ids from ``first`` map to ``lower_first``."""

    first: int
    lower_first: int
    count: int


@dataclass(slots=True, eq=False)
class UserNamespace:
    """struct user_namespace (include/linux/user_namespace.h:56-91)."""

    level: int = 0
    parent: UserNamespace | None = None
    owner: int = 0
    group: int = 0
    count: int = 1
    flags: int = 1
    inum: int = 0
    uid_map: list[UidGidExtent] = field(default_factory=list)
    gid_map: list[UidGidExtent] = field(default_factory=list)
    ucount_max: list[int] = field(default_factory=lambda: [INT_MAX] * UCOUNT_COUNTS)
    # struct ucounts, one per (this ns, kuid): kuid -> per-type counters (kernel/ucount.c:118-150)
    ucounts: dict[int, list[int]] = field(default_factory=dict)
