"""Capability checks (kernel/capability.c): ``ns_capable`` and ``capable`` ask commoncap's ``cap_capable``, which walks up the user namespace tree."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.kernel.cred import commit_creds, prepare_creds
from forklab.security.commoncap import cap_capable
from forklab.uapi import CAP_SETPCAP, CAP_SYS_PTRACE

if TYPE_CHECKING:
    from forklab.include.linux.cred import Cred
    from forklab.include.linux.sched import Task
    from forklab.include.linux.user_namespace import UserNamespace
    from forklab.state import KernelState


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


def sys_capset(k: KernelState, current: Task, effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) on the caller: the new sets must stay within what it has (kernel/capability.c:220-275, security/commoncap.c:240-277)."""

    old = current.cred
    assert old is not None and old.user_ns is not None
    if permitted & ~old.cap_permitted:
        raise kerr(errno.EPERM, "capset: permitted may only shrink", "security/commoncap.c:262")
    if effective & ~permitted:
        raise kerr(errno.EPERM, "capset: effective must be a subset of permitted", "security/commoncap.c:268")
    allowed_inh = old.cap_inheritable | old.cap_permitted
    if not ns_capable(current, old.user_ns, CAP_SETPCAP):
        if inheritable & ~allowed_inh:
            raise kerr(errno.EPERM, "capset: inheritable beyond inheritable|permitted needs CAP_SETPCAP",
                       "security/commoncap.c:249")
    if inheritable & ~(old.cap_inheritable | old.cap_bset):
        raise kerr(errno.EPERM, "capset: inheritable beyond the bounding set", "security/commoncap.c:256")
    new = prepare_creds(k, current)
    new.cap_effective, new.cap_permitted, new.cap_inheritable = effective, permitted, inheritable
    new.cap_ambient &= permitted & inheritable
    commit_creds(k, current, new)


def ptracer_capable(t: Task, cred: Cred) -> bool:
    """An absent tracer adds no restriction; else the tracer needs CAP_SYS_PTRACE in the ns (kernel/capability.c:518-529)."""
    if not t.ptrace or t.parent is None or t.parent.cred is None or cred.user_ns is None:
        return True
    return cap_capable(t.parent.cred, cred.user_ns, CAP_SYS_PTRACE)
