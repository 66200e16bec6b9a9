"""nsproxy: the bundle of namespaces a task points to (kernel/nsproxy.c).

A fork shares the parent's nsproxy unless a CLONE_NEW* flag asks for a new namespace, or a
pending time namespace (after ``unshare(CLONE_NEWTIME)``) must be entered. Then a new nsproxy
is built in a fixed order -- mnt, uts, ipc, pid, cgroup, net, time -- so when several kinds
fail, the first in that order decides the errno, and whatever was created is dropped again.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.fs.namespace import copy_mnt_ns, put_mnt_ns
from forklab.include.linux.nsproxy import Nsproxy
from forklab.include.linux.sched import Task
from forklab.include.linux.user_namespace import UserNamespace
from forklab.ipc.namespace import copy_ipcs, put_ipc_ns
from forklab.kernel.capability import ns_capable
from forklab.kernel.cgroup.namespace import copy_cgroup_ns, put_cgroup_ns
from forklab.kernel.pid_namespace import copy_pid_ns, put_pid_ns
from forklab.kernel.time.namespace import copy_time_ns, put_time_ns, timens_on_fork
from forklab.kernel.utsname import copy_utsname, put_uts_ns
from forklab.net.core.net_namespace import copy_net_ns, put_net
from forklab.trace import register_arg_format, traced
from forklab.uapi import (
    CAP_SYS_ADMIN,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUTS,
    CLONE_SYSVSEM,
    CLONE_VM,
    clone_flags_str,
)

if TYPE_CHECKING:
    from forklab.state import KernelState

CLONE_NEW_ANY = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME


for _function in ("copy_namespaces", "create_new_namespaces", "copy_utsname", "copy_ipcs", "copy_pid_ns",
                  "copy_cgroup_ns", "copy_net_ns", "copy_time_ns", "copy_mnt_ns"):
    register_arg_format("flags", clone_flags_str, _function)  # their flags are the clone flags


@traced
def create_new_namespaces(k: KernelState, flags: int, tsk: Task, user_ns: UserNamespace) -> Nsproxy:
    """Build a new nsproxy, copying or sharing each kind in kernel order (kernel/nsproxy.c:65-143)."""
    old = tsk.nsproxy
    assert old is not None
    if k.fault.should_fail("create_nsproxy:kmem_cache_alloc"):
        raise kerr(errno.ENOMEM, "nsproxy allocation failed", "kernel/nsproxy.c:72")
    new = Nsproxy(count=1)
    try:
        assert old.mnt_ns and old.uts_ns and old.ipc_ns and old.pid_ns_for_children and old.cgroup_ns
        assert old.net_ns and old.time_ns_for_children and old.time_ns
        new.mnt_ns = copy_mnt_ns(k, flags, old.mnt_ns, user_ns)
        new.uts_ns = copy_utsname(k, flags, user_ns, old.uts_ns)
        new.ipc_ns = copy_ipcs(k, flags, user_ns, old.ipc_ns)
        new.pid_ns_for_children = copy_pid_ns(k, flags, user_ns, old.pid_ns_for_children)
        new.cgroup_ns = copy_cgroup_ns(k, flags, user_ns, old.cgroup_ns)
        new.net_ns = copy_net_ns(k, flags, user_ns, old.net_ns)
        new.time_ns_for_children = copy_time_ns(k, flags, user_ns, old.time_ns_for_children)
    except OSError:
        free_nsproxy(k, new)
        raise
    old.time_ns.count += 1
    new.time_ns = old.time_ns
    return new


@traced
def copy_namespaces(k: KernelState, flags: int, tsk: Task) -> None:
    """Give the child its nsproxy: shared, or new with the CLONE_NEW* namespaces (kernel/nsproxy.c:149-189).

    The capability check uses the *child's* user namespace, so CLONE_NEWUSER together with
    other CLONE_NEW* flags works without privilege.
    """
    old = tsk.nsproxy
    assert old is not None and tsk.cred is not None and tsk.cred.user_ns is not None
    user_ns = tsk.cred.user_ns
    if not flags & CLONE_NEW_ANY:
        vm_stays = k.has("timens_vm_allowed") and bool(flags & CLONE_VM)  # 6.2: switch at exec instead
        if old.time_ns_for_children is old.time_ns or vm_stays:
            old.count += 1
            if k.listeners:
                k.decide("kernel/nsproxy.c:158", f"no CLONE_NEW* flag: share the nsproxy (count {old.count - 1}"
                         f"\u2192{old.count})", ("count", old.count))
            return
    elif not ns_capable(tsk, user_ns, CAP_SYS_ADMIN):
        raise kerr(errno.EPERM, "CLONE_NEW* needs CAP_SYS_ADMIN in the child's user namespace",
                   "kernel/nsproxy.c:163")
    if flags & (CLONE_NEWIPC | CLONE_SYSVSEM) == CLONE_NEWIPC | CLONE_SYSVSEM:
        raise kerr(errno.EINVAL, "CLONE_NEWIPC cannot be combined with CLONE_SYSVSEM", "kernel/nsproxy.c:173")
    new = create_new_namespaces(k, flags, tsk, user_ns)
    if not (k.has("timens_vm_allowed") and flags & CLONE_VM):
        timens_on_fork(k, new)
    tsk.nsproxy = new
    if k.listeners:
        k.decide("kernel/nsproxy.c:187", f"CLONE_NEW* set: a new nsproxy ({clone_flags_str(flags & CLONE_NEW_ANY)})")


def free_nsproxy(k: KernelState, ns: Nsproxy) -> None:
    """Drop every namespace an nsproxy holds (kernel/nsproxy.c:191-208)."""
    put_mnt_ns(k, ns.mnt_ns)
    put_uts_ns(k, ns.uts_ns)
    put_ipc_ns(k, ns.ipc_ns)
    if ns.pid_ns_for_children is not None:
        put_pid_ns(k, ns.pid_ns_for_children)
    put_time_ns(k, ns.time_ns)
    put_time_ns(k, ns.time_ns_for_children)
    put_cgroup_ns(k, ns.cgroup_ns)
    put_net(k, ns.net_ns)


def switch_task_namespaces(k: KernelState, p: Task, new: Nsproxy | None) -> None:
    """Point ``p`` at ``new`` and drop its old nsproxy (kernel/nsproxy.c:241-255)."""
    old = p.nsproxy
    p.nsproxy = new
    if old is not None:
        old.count -= 1
        if old.count == 0:
            free_nsproxy(k, old)


@traced
def exit_task_namespaces(k: KernelState, p: Task) -> None:
    """Leave every namespace (kernel/nsproxy.c:257-260)."""
    switch_task_namespaces(k, p, None)


def unshare_nsproxy_namespaces(k: KernelState, unshare_flags: int, current: Task,
                               new_cred_ns: UserNamespace | None) -> Nsproxy | None:
    """A new nsproxy for unshare(2), or None when no CLONE_NEW* flag is set (kernel/nsproxy.c:214-237)."""
    if not unshare_flags & CLONE_NEW_ANY:
        return None
    assert current.cred is not None and current.cred.user_ns is not None
    user_ns = new_cred_ns if new_cred_ns is not None else current.cred.user_ns
    if not ns_capable(current, user_ns, CAP_SYS_ADMIN):
        raise kerr(errno.EPERM, "unshare(CLONE_NEW*) needs CAP_SYS_ADMIN in the user namespace",
                   "kernel/nsproxy.c:225")
    return create_new_namespaces(k, unshare_flags, current, user_ns)
