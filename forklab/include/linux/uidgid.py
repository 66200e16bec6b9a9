"""Whether a kernel uid/gid maps into a user namespace (include/linux/uidgid.h)."""

from __future__ import annotations

from forklab.include.linux.user_namespace import UserNamespace


def kuid_has_mapping(ns: UserNamespace, kuid: int) -> bool:
    """Whether ``kuid`` is visible in ``ns`` (include/linux/uidgid.h:kuid_has_mapping)."""
    from forklab.kernel.user_namespace import (
        map_id_up,  # import cycle: forklab.kernel.user_namespace is still loading when this module loads
    )

    if ns.parent is None:
        return True
    return map_id_up(list(ns.uid_map), kuid) is not None


def kgid_has_mapping(ns: UserNamespace, kgid: int) -> bool:
    """Whether ``kgid`` is visible in ``ns`` (include/linux/uidgid.h:kgid_has_mapping)."""
    from forklab.kernel.user_namespace import (
        map_id_up,  # import cycle: forklab.kernel.user_namespace is still loading when this module loads
    )

    if ns.parent is None:
        return True
    return map_id_up(list(ns.gid_map), kgid) is not None
