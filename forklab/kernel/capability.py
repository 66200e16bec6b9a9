"""Capability checks (kernel/capability.c): ``ns_capable`` walks up the user namespace tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.cred import Cred
    from forklab.include.linux.sched import Task
    from forklab.include.linux.user_namespace import UserNamespace


def cap_capable(cred: Cred, targ_ns: UserNamespace, cap: int) -> bool:
    """Whether ``cred`` has ``cap`` in ``targ_ns`` (security/commoncap.c:67-105).

    Walk up from ``targ_ns``: in the cred's own namespace the effective set decides; a cred
    that owns an ancestor's child namespace (is its creator, in the parent) has every capability
    in it.
    """
    ns: UserNamespace | None = targ_ns
    while ns is not None:
        if ns is cred.user_ns:
            return bool(cred.cap_effective & (1 << cap))
        if ns.level <= (cred.user_ns.level if cred.user_ns else 0):
            return False
        if ns.parent is cred.user_ns and ns.owner == cred.euid:
            return True
        ns = ns.parent
    return False


def ns_capable(t: Task, ns: UserNamespace, cap: int) -> bool:
    """``ns_capable(ns, cap)`` for task ``t`` as current (kernel/capability.c:390-393)."""
    if t.cred is None:
        return False
    return cap_capable(t.cred, ns, cap)


def capable(t: Task, cap: int) -> bool:
    """``capable(cap)``: ns_capable in the initial user namespace (kernel/capability.c:405-408)."""
    if t.cred is None or t.cred.user_ns is None:
        return False
    init_ns = t.cred.user_ns
    while init_ns.parent is not None:
        init_ns = init_ns.parent
    return ns_capable(t, init_ns, cap)
