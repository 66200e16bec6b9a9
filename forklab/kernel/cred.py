"""Credentials (kernel/cred.c); the per-uid user_struct they point at is kernel/user.py (kernel/user.c).

A task has two cred pointers: ``real_cred`` (objective: how others see it) and ``cred``
(subjective: how it acts). A fork gives the child the parent's *subjective* creds for both.
``user->processes`` counts every task (threads and zombies included) whose real creds name
that kuid; it is what RLIMIT_NPROC is checked against, and only ``release_task`` lowers it.
"""

from __future__ import annotations

import errno
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.cred import Cred
from forklab.include.linux.sched import Task
from forklab.kernel.user import free_uid
from forklab.kernel.user_namespace import create_user_ns, get_user_ns, put_user_ns
from forklab.trace import traced
from forklab.uapi import CLONE_NEWUSER, CLONE_THREAD

if TYPE_CHECKING:
    from forklab.state import KernelState


def get_cred(cred: Cred) -> Cred:
    """Take a reference on ``cred`` (include/linux/cred.h:237-245)."""
    cred.usage += 1
    return cred


def put_cred(k: KernelState, cred: Cred | None) -> None:
    """Drop a reference; the last one frees the cred and its user and user_ns refs (kernel/cred.c:98-152)."""
    if cred is None:
        return
    cred.usage -= 1
    if cred.usage == 0:
        free_uid(k, cred.user)
        put_user_ns(k, cred.user_ns)


# NOTE: every field of struct cred in one C call, for prepare_creds' memcpy without dataclasses.replace
_CRED = attrgetter(*(f.name for f in fields(Cred)))


def prepare_creds(k: KernelState, task: Task) -> Cred:
    """A new, private copy of ``task``'s subjective creds, usage 1 (kernel/cred.c:250-293)."""
    if k.fault.should_fail("prepare_creds:kmem_cache_alloc"):
        raise kerr(errno.ENOMEM, "cred allocation failed", "kernel/cred.c:256")
    old = task.cred
    assert old is not None and old.user is not None and old.user_ns is not None
    new = Cred(*_CRED(old))  # memcpy(new, old, sizeof(struct cred)) (kernel/cred.c:265)
    new.usage = 1
    old.user.count += 1
    get_user_ns(old.user_ns)
    return new


def abort_creds(k: KernelState, new: Cred) -> None:
    """Discard creds from prepare_creds that were never committed (kernel/cred.c:521-530)."""
    put_cred(k, new)


@traced
def copy_creds(k: KernelState, p: Task, clone_flags: int) -> None:
    """Give the child its creds: shared for a thread, else a fresh copy (kernel/cred.c:330-393)."""
    parent_cred = p.cred  # dup_task_struct copied the pointer without a reference
    assert parent_cred is not None and parent_cred.user is not None
    if clone_flags & CLONE_THREAD and not parent_cred.thread_keyring:
        p.real_cred = get_cred(parent_cred)
        get_cred(parent_cred)
        parent_cred.user.processes += 1
        if k.listeners:
            k.decide("kernel/cred.c:339", f"CLONE_THREAD set: share the creds (usage {parent_cred.usage - 2}"
                     f"\u2192{parent_cred.usage})", ("usage", parent_cred.usage))
        return
    new = prepare_creds(k, p)
    if clone_flags & CLONE_NEWUSER:
        try:
            create_user_ns(k, new)
        except OSError:
            put_cred(k, new)
            raise
    new.thread_keyring = 0  # a thread keyring is never inherited (kernel/cred.c:368-372)
    if not clone_flags & CLONE_THREAD:
        new.process_keyring = 0
    assert new.user is not None
    new.user.processes += 1
    p.cred = p.real_cred = get_cred(new)
    if k.listeners:
        k.trace("copy_creds", "kernel/cred.c:384", f"new creds uid {new.uid} euid {new.euid}"
                + (f" in user ns level {new.user_ns.level}" if new.user_ns is not None else ""))


@traced
def exit_creds(k: KernelState, tsk: Task) -> None:
    """Drop a task's two cred references (kernel/cred.c:160-177)."""
    cred, real = tsk.cred, tsk.real_cred
    tsk.cred = tsk.real_cred = None
    put_cred(k, real)
    put_cred(k, cred)


def cred_cap_issubset(set_: Cred, subset: Cred) -> bool:
    """Whether ``subset`` holds no capability ``set_`` lacks, across user namespaces (kernel/cred.c:412-432)."""
    if set_.user_ns is subset.user_ns:
        return not subset.cap_permitted & ~set_.cap_permitted
    ns = subset.user_ns
    while ns is not None and ns.parent is not None:
        if ns.parent is set_.user_ns and ns.owner == set_.euid:
            return True
        ns = ns.parent
    return False


def commit_creds(k: KernelState, task: Task, new: Cred) -> None:
    """Install ``new`` as both cred pointers, moving the process count if the user changed (kernel/cred.c:434-509)."""
    old = task.real_cred
    assert old is not None and old.user is not None and new.user is not None
    if (old.euid, old.egid, old.fsuid, old.fsgid) != (new.euid, new.egid, new.fsuid, new.fsgid) \
            or not cred_cap_issubset(old, new):
        if task.mm is not None:
            task.mm.flags &= ~3  # set_dumpable(task->mm, suid_dumpable) with suid_dumpable 0 (kernel/cred.c:455)
        task.pdeath_signal = 0  # kernel/cred.c:462
    if new.user is not old.user:
        new.user.processes += 1
        old.user.processes -= 1
    task.real_cred = get_cred(new)
    task.cred = new  # takes over prepare_creds' reference
    put_cred(k, old)
    put_cred(k, old)
