"""What the /proc files share (fs/proc/internal.h): the reader's access check.

``proc_may_access`` is ``ptrace_may_access(task, PTRACE_MODE_READ_FSCREDS)``, which
do_task_stat, proc_mem_open (maps, smaps), proc_fd_access_allowed (fd links) and
proc_ns_get_link ask: __ptrace_may_access's steps (the reader's own thread group; the same
fsuid/fsgid as all of the task's uids and gids, or CAP_SYS_PTRACE in the task's user
namespace; then, for a task whose mm is not SUID_DUMP_USER, CAP_SYS_PTRACE in the mm's user
namespace) and commoncap's cap_ptrace_access_check (the same user namespace and the task's
permitted set within the reader's effective set, or CAP_SYS_PTRACE there). The model has no
Yama or other LSM, which is what the kernel's remaining hook would ask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.kernel.capability import ns_capable
from forklab.kernel.signal import same_thread_group
from forklab.uapi import CAP_SYS_PTRACE

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def proc_may_access(viewer: Task, task: Task) -> bool:
    """ptrace_may_access(task, PTRACE_MODE_READ_FSCREDS) with ``viewer`` as current (see the module doc)."""
    from forklab.fs.exec import MMF_DUMPABLE_MASK, SUID_DUMP_USER  # import cycle: exec -> namei -> proc -> here
    if same_thread_group(task, viewer):
        return True
    cred, tcred = viewer.cred, task.cred
    assert cred is not None and tcred is not None and tcred.user_ns is not None
    same_ids = (cred.fsuid == tcred.euid == tcred.suid == tcred.uid
                and cred.fsgid == tcred.egid == tcred.sgid == tcred.gid)
    if not same_ids and not ns_capable(viewer, tcred.user_ns, CAP_SYS_PTRACE):
        return False
    mm = task.mm
    if mm is not None and mm.flags & MMF_DUMPABLE_MASK != SUID_DUMP_USER:
        mm_ns = mm.user_ns
        while mm_ns is None or mm_ns.parent is not None:  # the boot mm's user_ns is the initial one
            mm_ns = tcred.user_ns if mm_ns is None else mm_ns.parent
        mm_ns = mm.user_ns if mm.user_ns is not None else mm_ns
        if not ns_capable(viewer, mm_ns, CAP_SYS_PTRACE):
            return False
    # security_ptrace_access_check -> cap_ptrace_access_check (PTRACE_MODE_FSCREDS: the effective set)
    if cred.user_ns is tcred.user_ns and not tcred.cap_permitted & ~cred.cap_effective:
        return True
    return ns_capable(viewer, tcred.user_ns, CAP_SYS_PTRACE)


__all__ = ["proc_may_access"]
