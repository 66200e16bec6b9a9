"""User namespaces (kernel/user_namespace.c) and their ucounts (kernel/ucount.c)."""

from __future__ import annotations

import errno
import itertools
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.uidgid import kgid_has_mapping, kuid_has_mapping
from forklab.include.linux.user_namespace import UCOUNT, UID_GID_MAP_MAX_EXTENTS, UidGidExtent, UserNamespace
from forklab.kernel.ucount import dec_ucount, inc_ucount
from forklab.uapi import CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN

if TYPE_CHECKING:
    from forklab.include.linux.cred import Cred
    from forklab.include.linux.sched import Task as Task_
    from forklab.state import KernelState

USERNS_SETGROUPS_ALLOWED = 1  # include/linux/user_namespace.h:24
MAX_USER_NS_LEVEL = 32  # kernel/user_namespace.c:77
DEFAULT_OVERFLOWUID = 65534  # include/linux/highuid.h:41
NO_ID = 0xFFFFFFFF  # (uid_t) -1: never a mapped id


def get_user_ns(ns: UserNamespace) -> UserNamespace:
    """Take a reference (include/linux/user_namespace.h:100-105)."""
    ns.count += 1
    return ns


def put_user_ns(k: KernelState, ns: UserNamespace | None) -> None:
    """Drop a reference; the last one frees the ns and drops its parent (kernel/user_namespace.c:191-206)."""
    while ns is not None:
        ns.count -= 1
        if ns.count > 0:
            return
        parent = ns.parent
        dec_ucount(ns.parent, ns.owner, UCOUNT.UCOUNT_USER_NAMESPACES) if parent else None
        if k.listeners:
            k.trace("free_user_ns", "kernel/user_namespace.c:191", f"level {ns.level} [{ns.inum}]")
        ns = parent


def make_kid(ns: UserNamespace, extents_attr: str, uid: int) -> int | None:
    """Map an id of ``ns`` to the kernel id, or None if unmapped (kernel/user_namespace.c:make_kuid)."""
    if ns.parent is None:
        return uid if 0 <= uid < NO_ID else None
    for e in getattr(ns, extents_attr):
        if e.first <= uid < e.first + e.count:
            return int(e.lower_first + uid - e.first)
    return None


def map_id_up(extents: list[object], kid: int) -> int | None:
    """Map a kernel id to the namespace's id, or None (kernel/user_namespace.c:map_id_up)."""
    for e in extents:
        first, lower, count = e.first, e.lower_first, e.count  # type: ignore[attr-defined]
        if lower <= kid < lower + count:
            return int(kid - lower + first)
    return None


def _map_down(extents: list[object], lower: int, count: int) -> int | None:
    """The kernel id of the range [lower, lower+count) of a parent namespace, or None (map_id_range_down)."""
    for e in extents:
        first, kfirst, n = e.first, e.lower_first, e.count  # type: ignore[attr-defined]
        if first <= lower and lower + count <= first + n:
            return int(kfirst + lower - first)
    return None


def from_kuid_munged(ns: UserNamespace, kuid: int) -> int:
    """The id ``kuid`` has in ``ns``, or the overflow uid (kernel/user_namespace.c:from_kuid_munged)."""
    if ns.parent is None:
        return kuid
    mapped = map_id_up(list(ns.uid_map), kuid)
    return DEFAULT_OVERFLOWUID if mapped is None else mapped


def create_user_ns(k: KernelState, new: Cred) -> None:
    """Create a user namespace for the credentials ``new`` (kernel/user_namespace.c:69-152).

    Checks in source order: nesting depth (ENOSPC, :77), the user-namespace ucount at every
    level (ENOSPC, :81), chroot (EPERM, :91, checked by the caller who knows ``fs``), the
    creator's ids mapped in the parent (EPERM, :99). Then ``set_cred_user_ns`` gives the
    credentials the full capability set in the new namespace.
    """
    parent_ns = new.user_ns
    assert parent_ns is not None
    owner, group = new.euid, new.egid
    if parent_ns.level > MAX_USER_NS_LEVEL:
        raise kerr(errno.ENOSPC, "user namespaces nest at most 32 levels deep", "kernel/user_namespace.c:77")
    if not inc_ucount(parent_ns, owner, UCOUNT.UCOUNT_USER_NAMESPACES):
        raise kerr(errno.ENOSPC, "max_user_namespaces reached for this uid", "kernel/user_namespace.c:81")
    from forklab.fs.namespace import (
        current_chrooted,  # import cycle: forklab.kernel.user_namespace is still loading when this module loads
    )

    if k.current is not None and current_chrooted(k.current):
        dec_ucount(parent_ns, owner, UCOUNT.UCOUNT_USER_NAMESPACES)
        raise kerr(errno.EPERM, "a chrooted task may not create a user namespace", "kernel/user_namespace.c:91")
    if not (kuid_has_mapping(parent_ns, owner) and kgid_has_mapping(parent_ns, group)):
        dec_ucount(parent_ns, owner, UCOUNT.UCOUNT_USER_NAMESPACES)
        raise kerr(errno.EPERM, "the creator's euid/egid is not mapped in the parent user namespace",
                   "kernel/user_namespace.c:99")
    if k.fault.should_fail("create_user_ns:kmem_cache_zalloc"):
        dec_ucount(parent_ns, owner, UCOUNT.UCOUNT_USER_NAMESPACES)
        raise kerr(errno.ENOMEM, "user_ns_cachep allocation failed", "kernel/user_namespace.c:104")
    ns = UserNamespace(level=parent_ns.level + 1, parent=parent_ns, owner=owner, group=group,
                       flags=parent_ns.flags, inum=k.new_inum())
    # The new ns holds the creator's reference to the parent (kernel/user_namespace.c:119).
    set_cred_user_ns(new, ns, k.cap_full_set)
    if k.listeners:
        k.trace("create_user_ns", "kernel/user_namespace.c:69", f"level {ns.level} owner {owner} [{ns.inum}]")


def set_cred_user_ns(cred: Cred, user_ns: UserNamespace, full_set: int) -> None:
    """Give ``cred`` a fresh start in ``user_ns``: all capabilities (kernel/user_namespace.c:42-59)."""
    cred.securebits = 0
    cred.cap_inheritable = 0
    cred.cap_permitted = full_set
    cred.cap_effective = full_set
    cred.cap_ambient = 0
    cred.cap_bset = full_set
    cred.user_ns = user_ns


def proc_write_id_map(k: KernelState, writer: Task_, target: Task_, uid_map: list[tuple[int, int, int]] | None,
                      gid_map: list[tuple[int, int, int]] | None, deny_setgroups: bool = False) -> None:
    """Write /proc/<target>/uid_map and gid_map (and "deny" to setgroups) as ``writer`` (kernel/user_namespace.c:844-1000, 1084-1115).

    The writer must live in the namespace or its parent (:1042) and hold CAP_SYS_ADMIN over it
    (:898); each map is written once (:892), 1 to 340 non-overlapping extents (:930, :950).
    ``new_idmap_permitted``: one extent of one id that maps the namespace owner's own euid
    (egid, once setgroups is denied) needs no privilege; anything else needs CAP_SETUID
    (CAP_SETGID) over the parent. Lower ids are the parent's and are stored as kernel ids (:984).
    """
    from forklab.kernel.capability import (
        ns_capable,  # import cycle: forklab.kernel.capability is still loading when this module loads
    )

    assert target.cred is not None and writer.cred is not None
    ns = target.cred.user_ns
    assert ns is not None
    if ns.parent is None:
        raise kerr(errno.EPERM, "the initial user namespace's maps are fixed", "kernel/user_namespace.c:892")
    if writer.cred.user_ns is not ns and writer.cred.user_ns is not ns.parent:
        raise kerr(errno.EPERM, "the writer must be in the namespace or its parent", "kernel/user_namespace.c:1042")
    if deny_setgroups:
        if gid_map is None and ns.gid_map:
            raise kerr(errno.EPERM, "setgroups cannot be denied after gid_map is written", "kernel/user_namespace.c:1178")
        ns.flags &= ~USERNS_SETGROUPS_ALLOWED
    for attr, extents, cap, own in (("uid_map", uid_map, CAP_SETUID, writer.cred.euid),
                                    ("gid_map", gid_map, CAP_SETGID, writer.cred.egid)):
        if extents is None:
            continue
        if getattr(ns, attr):
            raise kerr(errno.EPERM, f"{attr} may be written only once", "kernel/user_namespace.c:892")
        if not ns_capable(writer, ns, CAP_SYS_ADMIN):
            raise kerr(errno.EPERM, "writing an id map needs CAP_SYS_ADMIN over the namespace", "kernel/user_namespace.c:898")
        if not extents or len(extents) > UID_GID_MAP_MAX_EXTENTS:
            raise kerr(errno.EINVAL, "an id map holds 1 to 340 extents", "kernel/user_namespace.c:930")
        parent_attr = attr if ns.parent.parent is not None else None
        parsed = []
        for first, lower, count in extents:
            kernel_lower = lower if parent_attr is None else _map_down(getattr(ns.parent, parent_attr), lower, count)
            if kernel_lower is None:
                raise kerr(errno.EPERM, "lower ids are not mapped in the parent namespace", "kernel/user_namespace.c:987")
            parsed.append(UidGidExtent(int(first), int(kernel_lower), int(count)))
        spans = sorted((e.first, e.first + e.count) for e in parsed)
        if any(e.count <= 0 for e in parsed) or any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
            raise kerr(errno.EINVAL, "id map extents must be non-empty and must not overlap", "kernel/user_namespace.c:950")
        own_id = len(parsed) == 1 and parsed[0].count == 1 and ns.owner == writer.cred.euid \
            and parsed[0].lower_first == own and (attr == "uid_map" or not ns.flags & USERNS_SETGROUPS_ALLOWED)
        if not own_id and not ns_capable(writer, ns.parent, cap):
            raise kerr(errno.EPERM, f"mapping these ids needs {'CAP_SETUID' if attr == 'uid_map' else 'CAP_SETGID'} "
                       "over the parent user namespace", "kernel/user_namespace.c:1109")
        setattr(ns, attr, parsed)
    if k.listeners:
        k.trace("write_id_map", "kernel/user_namespace.c:855", f"user ns [{ns.inum}] maps set")


def in_userns(ancestor: UserNamespace, child: UserNamespace | None) -> bool:
    """Whether ``child`` is ``ancestor`` or below it (kernel/user_namespace.c:1227-1235)."""
    ns = child
    while ns is not None and ns.level > ancestor.level:
        ns = ns.parent
    return ns is ancestor
