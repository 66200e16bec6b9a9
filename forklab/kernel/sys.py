"""Identity, limits and prctl (kernel/sys.c) and capset (kernel/capability.c).

setresuid follows the kernel's rules for dropping capabilities (security/commoncap.c:
cap_emulate_setxuid): leaving uid 0 in all three of real, effective and saved clears the
permitted and effective sets; a change of real uid moves the task to another user_struct,
which is how RLIMIT_NPROC follows the uid.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.cred import Cred
from forklab.include.linux.sched import PF, Task
from forklab.include.linux.user_namespace import UserNamespace
from forklab.kernel.capability import capable, ns_capable
from forklab.uapi import (
    CAP_SETGID,
    CAP_SETUID,
    CAP_SYS_RESOURCE,
    PR_GET_CHILD_SUBREAPER,
    PR_GET_NAME,
    PR_GET_NO_NEW_PRIVS,
    PR_GET_PDEATHSIG,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_NAME,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    RLIM_INFINITY,
    RLIM_NLIMITS,
    RLIMIT_NOFILE,
    RLIMIT_NPROC,
)

if TYPE_CHECKING:
    from forklab.state import KernelState

NO_ID = 0xFFFFFFFF  # (uid_t) -1
SYSCTL_NR_OPEN = 1024 * 1024


def make_kid(ns: UserNamespace, extents_attr: str, uid: int) -> int | None:
    """Map an id of ``ns`` to the kernel id, or None if unmapped (kernel/user_namespace.c:make_kuid)."""
    if ns.parent is None:
        return uid if 0 <= uid < NO_ID else None
    for e in getattr(ns, extents_attr):
        if e.first <= uid < e.first + e.count:
            return int(e.lower_first + uid - e.first)
    return None


def set_user(k: KernelState, current: Task, new: Cred) -> None:
    """Move ``new`` to the user_struct of its uid; flag (not fail) an RLIMIT_NPROC excess (kernel/sys.c:468-495)."""
    from forklab.kernel.cred import alloc_uid, free_uid

    try:
        new_user = alloc_uid(k, new.uid)
    except OSError:
        raise kerr(errno.EAGAIN, "user_struct allocation failed", "kernel/sys.c:474") from None
    assert current.signal is not None
    if new_user.processes >= current.signal.rlim[RLIMIT_NPROC][0] and new_user is not k.root_user:
        current.flags |= PF.PF_NPROC_EXCEEDED
    else:
        current.flags &= ~PF.PF_NPROC_EXCEEDED
    free_uid(k, new.user)
    new.user = new_user


def cap_emulate_setxuid(new: Cred, old: Cred) -> None:
    """Drop capabilities as a uid-0 process becomes non-root (security/commoncap.c:938-966)."""
    root = make_kid(old.user_ns, "uid_map", 0) if old.user_ns is not None else 0
    if root in (old.uid, old.euid, old.suid) and root not in (new.uid, new.euid, new.suid):
        new.cap_permitted = 0
        new.cap_effective = 0
        new.cap_ambient = 0
    if old.euid == root and new.euid != root:
        new.cap_effective = 0
    if old.euid != root and new.euid == root:
        new.cap_effective = new.cap_permitted


def __sys_setresid(k: KernelState, current: Task, ids: tuple[int, int, int], gid: bool) -> None:
    """setresuid/setresgid (kernel/sys.c:622-690, 704-760)."""
    from forklab.kernel.cred import abort_creds, commit_creds, prepare_creds

    old = current.cred
    assert old is not None and old.user_ns is not None
    attr = "gid_map" if gid else "uid_map"
    kids: list[int | None] = []
    for value in ids:
        value &= 0xFFFFFFFF
        kid = None if value == NO_ID else make_kid(old.user_ns, attr, value)
        if value != NO_ID and kid is None:
            raise kerr(errno.EINVAL, f"id {value} is not mapped in the caller's user namespace",
                       "kernel/sys.c:638" if not gid else "kernel/sys.c:720")
        kids.append(kid)
    new = prepare_creds(k, current)
    try:
        fields = ("gid", "egid", "sgid") if gid else ("uid", "euid", "suid")
        olds = [getattr(old, f) for f in fields]
        if not ns_capable(current, old.user_ns, CAP_SETGID if gid else CAP_SETUID):
            for kid in kids:
                if kid is not None and kid not in olds:
                    raise kerr(errno.EPERM, "without CAP_SETUID/CAP_SETGID an id may only become one of the current ids",
                               "kernel/sys.c:651" if not gid else "kernel/sys.c:734")
        for f, kid in zip(fields, kids, strict=True):
            if kid is not None:
                setattr(new, f, kid)
        if gid:
            new.fsgid = new.egid
        else:
            if kids[0] is not None and kids[0] != old.uid:
                set_user(k, current, new)
            new.fsuid = new.euid
            cap_emulate_setxuid(new, old)
    except OSError:
        abort_creds(k, new)
        raise
    commit_creds(k, current, new)
    k.trace("setresgid" if gid else "setresuid", "kernel/sys.c:622", f"ids {new.uid}/{new.euid}/{new.suid}, caps {new.cap_effective:#x}")


def sys_setresuid(k: KernelState, current: Task, ruid: int, euid: int, suid: int) -> None:
    """SYSCALL_DEFINE3(setresuid) (kernel/sys.c:692-695)."""
    __sys_setresid(k, current, (ruid, euid, suid), gid=False)


def sys_setresgid(k: KernelState, current: Task, rgid: int, egid: int, sgid: int) -> None:
    """SYSCALL_DEFINE3(setresgid) (kernel/sys.c:762-765)."""
    __sys_setresid(k, current, (rgid, egid, sgid), gid=True)


def do_prlimit(k: KernelState, current: Task, resource: int, new: tuple[int, int] | None) -> tuple[int, int]:
    """getrlimit/setrlimit on the caller's process (kernel/sys.c:1523-1580); returns the old limit."""
    if not 0 <= resource < RLIM_NLIMITS:
        raise kerr(errno.EINVAL, f"unknown resource {resource}", "kernel/sys.c:1530")
    assert current.signal is not None
    old = current.signal.rlim[resource]
    if new is None:
        return old
    cur, maximum = new[0] & RLIM_INFINITY, new[1] & RLIM_INFINITY
    if cur > maximum:
        raise kerr(errno.EINVAL, "soft limit above hard limit", "kernel/sys.c:1533")
    if resource == RLIMIT_NOFILE and maximum > SYSCTL_NR_OPEN:
        raise kerr(errno.EPERM, "RLIMIT_NOFILE above fs.nr_open", "kernel/sys.c:1536")
    if maximum > old[1] and not capable(current, CAP_SYS_RESOURCE):
        raise kerr(errno.EPERM, "raising a hard limit needs CAP_SYS_RESOURCE", "kernel/sys.c:1553")
    current.signal.rlim[resource] = (cur, maximum)
    return old


def propagate_has_child_subreaper(p: Task) -> None:
    """Mark every descendant that it has a subreaper above it (kernel/sys.c:2259-2275)."""
    stack = list(p.children)
    while stack:
        child = stack.pop(0)
        assert child.signal is not None
        if child.signal.has_child_subreaper:
            continue
        child.signal.has_child_subreaper = True
        stack.extend(child.children)


def prctl(k: KernelState, me: Task, option: int, arg2: int) -> int:
    """prctl(2) for the options fork and exit care about (kernel/sys.c:2282-2550)."""
    from forklab.kernel.signal import valid_signal

    assert me.signal is not None
    if option == PR_SET_PDEATHSIG:
        if not valid_signal(arg2):
            raise kerr(errno.EINVAL, f"signal {arg2} is not valid", "kernel/sys.c:2299")
        me.pdeath_signal = arg2
        return 0
    if option == PR_GET_PDEATHSIG:
        return me.pdeath_signal
    if option == PR_SET_CHILD_SUBREAPER:
        me.signal.is_child_subreaper = bool(arg2)
        if arg2:
            for leader in [t for t in me.signal.thread_head]:
                propagate_has_child_subreaper(leader)
        return 0
    if option == PR_GET_CHILD_SUBREAPER:
        return int(me.signal.is_child_subreaper)
    if option == PR_SET_NO_NEW_PRIVS:
        if arg2 != 1:
            raise kerr(errno.EINVAL, "PR_SET_NO_NEW_PRIVS takes 1", "kernel/sys.c:2448")
        me.no_new_privs = True
        return 0
    if option == PR_GET_NO_NEW_PRIVS:
        return int(me.no_new_privs)
    if option in (PR_SET_NAME, PR_GET_NAME):
        raise kerr(errno.EINVAL, "PR_SET_NAME/PR_GET_NAME take a user buffer; use Task.comm in the model",
                   "kernel/sys.c:2320")
    raise kerr(errno.EINVAL, f"prctl option {option} is not modelled (the kernel's default case)", "kernel/sys.c:2545")


def sys_umask(current: Task, mask: int) -> int:
    """umask(2): set the new mask, return the old (kernel/sys.c:1758-1762)."""
    assert current.fs is not None
    old = current.fs.umask
    current.fs.umask = mask & 0o777
    return old
