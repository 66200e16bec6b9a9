"""Pid namespaces (kernel/pid_namespace.c): creation, nesting limits and teardown."""

from __future__ import annotations

import contextlib
import errno
from dataclasses import replace
from typing import TYPE_CHECKING

from forklab.errors import KernelError, kerr
from forklab.include.linux.pid import MAX_PID_NS_LEVEL, PIDNS_ADDING, PidNamespace
from forklab.include.linux.sched import PIDTYPE, PIDTYPE_MAX
from forklab.include.linux.threads import PID_MAX_LIMIT
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.pid import disable_pid_allocation, pid_task, task_active_pid_ns
from forklab.kernel.signal import SEND_SIG_PRIV, fatal_signal_pending, group_send_sig_info
from forklab.kernel.ucount import dec_ucount, inc_ucount
from forklab.kernel.user_namespace import get_user_ns, in_userns, put_user_ns
from forklab.trace import traced
from forklab.uapi import __WALL, CLONE_NEWPID, SIG_IGN, SIGCHLD, SIGKILL, WNOHANG

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


def create_pid_namespace(k: KernelState, user_ns: UserNamespace, parent: PidNamespace) -> PidNamespace:
    """A new pid namespace one level below ``parent`` (kernel/pid_namespace.c:76-128)."""
    assert parent.user_ns is not None and k.current is not None and k.current.cred is not None
    if not in_userns(parent.user_ns, user_ns):
        raise kerr(errno.EINVAL, "the new pid namespace's user namespace is not below the parent's",
                   "kernel/pid_namespace.c:84")
    level = parent.level + 1
    if level > MAX_PID_NS_LEVEL:
        raise kerr(errno.ENOSPC, "pid namespaces nest at most 32 levels deep", "kernel/pid_namespace.c:88")
    euid = k.current.cred.euid
    if not inc_ucount(user_ns, euid, UCOUNT.UCOUNT_PID_NAMESPACES):
        raise kerr(errno.ENOSPC, "max_pid_namespaces reached", "kernel/pid_namespace.c:91")
    if k.fault.should_fail("create_pid_namespace:kmem_cache_zalloc"):
        dec_ucount(user_ns, euid, UCOUNT.UCOUNT_PID_NAMESPACES)
        raise kerr(errno.ENOMEM, "pid_namespace allocation failed", "kernel/pid_namespace.c:95")
    parent.count += 1
    ns = PidNamespace(level=level, parent=parent, user_ns=get_user_ns(user_ns), inum=k.new_inum(),
                      pid_allocated=PIDNS_ADDING, ucounts_uid=euid, ucounts_ns=user_ns,
                      pid_max=PID_MAX_LIMIT if k.has("pid_max_per_ns") else parent.pid_max)
    if k.listeners:
        k.trace("create_pid_namespace", "kernel/pid_namespace.c:76", f"level {level} [{ns.inum}]")
    return ns


@traced
def copy_pid_ns(k: KernelState, flags: int, user_ns: UserNamespace, old_ns: PidNamespace) -> PidNamespace:
    """Share ``old_ns`` or create a child of it (kernel/pid_namespace.c:148-156)."""
    if not flags & CLONE_NEWPID:
        old_ns.count += 1
        return old_ns
    assert k.current is not None
    if task_active_pid_ns(k.current) is not old_ns:
        raise kerr(errno.EINVAL, "pid_ns_for_children was already unshared; fork once before a new CLONE_NEWPID",
                   "kernel/pid_namespace.c:152")
    return create_pid_namespace(k, user_ns, old_ns)


def put_pid_ns(k: KernelState, ns: PidNamespace | None) -> None:
    """Drop references up the chain; free each namespace that reaches zero (kernel/pid_namespace.c:158-177)."""
    while ns is not None and ns.parent is not None:
        ns.count -= 1
        if ns.count > 0:
            return
        parent = ns.parent
        if ns.ucounts_ns is not None and ns.ucounts_uid is not None:
            dec_ucount(ns.ucounts_ns, ns.ucounts_uid, UCOUNT.UCOUNT_PID_NAMESPACES)
        put_user_ns(k, ns.user_ns)
        if k.listeners:
            k.trace("destroy_pid_namespace", "kernel/pid_namespace.c:137", f"level {ns.level} [{ns.inum}]")
        ns = parent
    if ns is not None:
        ns.count -= 1  # the initial namespace is never freed


def zap_pid_ns_processes(k: KernelState, ns: PidNamespace, reaper: Task) -> None:
    """The namespace's init is exiting: stop allocation, SIGKILL every other member, reap (kernel/pid_namespace.c:179-262).

    The model kills and reaps synchronously: there is no scheduler loop to wait in, so the
    kernel_wait4(-1, __WALL) loop runs with WNOHANG until nothing is left to reap.
    """
    from forklab.kernel.exit import kernel_wait4  # import cycle: kernel/exit.py imports this module

    disable_pid_allocation(ns)
    assert reaper.sighand is not None
    action = reaper.sighand.action[SIGCHLD - 1]
    reaper.sighand.set_action(SIGCHLD - 1, replace(action, sa_handler=SIG_IGN))
    for nr in sorted(n for n in ns.idr if n >= 2):  # idr_for_each_entry_continue(&pid_ns->idr, pid, nr), nr = 2
        pid = ns.idr.get(nr)
        task = pid_task(pid, PIDTYPE.PIDTYPE_PID) if pid is not None else None
        if task is not None and not fatal_signal_pending(task):
            with contextlib.suppress(KernelError):  # the kernel ignores the result
                group_send_sig_info(k, SIGKILL, SEND_SIG_PRIV, task, PIDTYPE_MAX)
    while True:  # do { rc = kernel_wait4(-1, NULL, __WALL, NULL); } while (rc != -ECHILD) (225-229)
        try:
            pid_nr, _ = kernel_wait4(k, reaper, -1, __WALL | WNOHANG)
        except OSError:
            break
        if not pid_nr:
            break
