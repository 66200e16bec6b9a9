"""Identity, limits, process groups and sessions, getrusage and prctl (kernel/sys.c).

setresuid follows the kernel's rules for dropping capabilities (security/commoncap.c:
cap_emulate_setxuid): leaving uid 0 in all three of real, effective and saved clears the
permitted and effective sets; a change of real uid moves the task to another user_struct,
which is how RLIMIT_NPROC follows the uid.

Process groups and sessions. A thread group's process group and session are the struct pids
in ``signal->pids[PIDTYPE_PGID]`` and ``[PIDTYPE_SID]``; the group leader alone is linked on
each pid's ``tasks[PIDTYPE_PGID]``/``[PIDTYPE_SID]`` list, so ``pid_task(pid, PIDTYPE_PGID)``
answers "is there a process group with this id". setpgid and setsid move those links with
``change_pid`` (kernel/pid.py), which frees a struct pid its last user left. The checks keep
the kernel's order, so with several failing the kernel's errno wins: EINVAL (pgid < 0),
ESRCH (no such pid), EINVAL (not a group leader), then for a child of the caller EPERM
(other session) before EACCES (it has exec'd: PF_FORKNOEXEC is clear), for anyone else ESRCH
(neither the caller nor its child), then EPERM (a session leader), EPERM (no such group in
the caller's session). Numbers are read and returned in the caller's pid namespace
(find_task_by_vpid, pid_vnr): a group outside it reads as 0. Not modelled: controlling
terminals (no tty exists, so setsid's proc_clear_tty only clears the always-NULL
``signal->tty``), the process-events connector and the autogroup setsid creates
(sched_autogroup_create_attach): neither has an observable effect in the model.

getrusage. The model has no CPU: ``utime`` stays 0, and ``stime`` is the 1 µs each syscall
charges (arch/x86/entry/common.py). The kernel reports the *adjusted* times, which split the
scheduler's ``sum_exec_runtime`` in the utime:stime ratio (cputime_adjust,
kernel/sched/cputime.c:445-512); in the model the runtime is exactly utime + stime, so the
adjusted times equal the raw ones and no ``prev_cputime`` is kept. RUSAGE_SELF sums the
signal_struct's counters (threads that died, which __exit_signal adds there) and every
live thread (thread_group_cputime, kernel/sched/cputime.c:297-338); RUSAGE_CHILDREN is the
``c*`` counters wait_task_zombie accumulates; ``ru_maxrss`` is in KiB, the larger of the
recorded maximum and the mm's high-water RSS. Block I/O counts (ru_inblock, ru_oublock) are 0:
the model does no block I/O.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, kerr
from forklab.include.linux.cred import Cred
from forklab.include.linux.sched import (
    PF_FORKNOEXEC,
    PF_KTHREAD,
    PF_NPROC_EXCEEDED,
    PIDTYPE_PGID,
    PIDTYPE_SID,
    Task,
)
from forklab.include.linux.time import Tms
from forklab.kernel.capability import capable, ns_capable
from forklab.kernel.cred import abort_creds, commit_creds, prepare_creds
from forklab.kernel.pid import change_pid, find_task_by_vpid, find_vpid, pid_task, pid_vnr
from forklab.kernel.sched.cputime import thread_group_cputime_adjusted
from forklab.kernel.signal import same_thread_group, task_pgrp, task_session, valid_signal
from forklab.kernel.time.jiffies import get_jiffies_64
from forklab.kernel.time.time import jiffies_64_to_clock_t, nsec_to_clock_t
from forklab.kernel.user import alloc_uid, free_uid
from forklab.kernel.user_namespace import NO_ID, make_kid
from forklab.mm.memory import get_mm_rss
from forklab.security.commoncap import cap_emulate_setxuid
from forklab.uapi import (
    CAP_SETGID,
    CAP_SETUID,
    CAP_SYS_RESOURCE,
    PAGE_SIZE,
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
    RUSAGE_BOTH,
    RUSAGE_CHILDREN,
    RUSAGE_SELF,
    RUSAGE_THREAD,
    Rusage,
    Timeval,
)

if TYPE_CHECKING:
    from forklab.include.linux.pid import Pid
    from forklab.state import KernelState

NSEC_PER_SEC = 1_000_000_000  # include/vdso/time64.h:8
NSEC_PER_USEC = 1000  # include/vdso/time64.h:7
SYSCTL_NR_OPEN = 1024 * 1024


def set_user(k: KernelState, current: Task, new: Cred) -> None:
    """Move ``new`` to the user_struct of its uid; flag (not fail) an RLIMIT_NPROC excess (kernel/sys.c:468-495)."""

    try:
        new_user = alloc_uid(k, new.uid)
    except OSError:
        raise kerr(errno.EAGAIN, "user_struct allocation failed", "kernel/sys.c:474") from None
    assert current.signal is not None
    if new_user.processes >= current.signal.rlim[RLIMIT_NPROC][0] and new_user is not k.root_user:
        current.flags |= PF_NPROC_EXCEEDED
    else:
        current.flags &= ~PF_NPROC_EXCEEDED
    free_uid(k, new.user)
    new.user = new_user


def __sys_setresid(k: KernelState, current: Task, ids: tuple[int, int, int], gid: bool) -> None:
    """setresuid/setresgid (kernel/sys.c:622-690, 704-760)."""

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
    if k.listeners:
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
    current.signal.set_rlim(resource, (cur, maximum))
    return old


def sys_setpgid(k: KernelState, current: Task, pid: int, pgid: int) -> int:
    """setpgid(2): put process ``pid`` (0: the caller) in group ``pgid`` (0: its own pid) of its session (kernel/sys.c:1007-1076)."""
    group_leader = current.group_leader
    assert group_leader is not None
    if not pid:
        pid = pid_vnr(current, group_leader.thread_pid)  # task_pid_vnr(group_leader)
    if not pgid:
        pgid = pid
    if pgid < 0:
        raise kerr(errno.EINVAL, f"pgid {pgid} is negative", "kernel/sys.c:1018")
    p = find_task_by_vpid(current, pid)
    if p is None:
        raise kerr(errno.ESRCH, f"no process {pid} in the caller's pid namespace", "kernel/sys.c:1029")
    if p.exit_signal < 0:  # !thread_group_leader(p) (include/linux/sched/signal.h:629-632)
        raise kerr(errno.EINVAL, f"task {pid} is a thread, not a thread-group leader", "kernel/sys.c:1033")
    setpgid_check_target(current, group_leader, p)
    assert p.signal is not None
    if p.signal.leader:
        raise kerr(errno.EPERM, f"process {pid} is a session leader", "kernel/sys.c:1050")
    pgrp = p.thread_pid  # task_pid(p)
    if pgid != pid:
        pgrp = find_vpid(current, pgid)
        g = pid_task(pgrp, PIDTYPE_PGID)
        if g is None or task_session(g) is not task_session(group_leader):
            raise kerr(errno.EPERM, f"no process group {pgid} in the caller's session", "kernel/sys.c:1059")
    assert pgrp is not None
    if task_pgrp(p) is not pgrp:
        change_pid(k, p, PIDTYPE_PGID, pgrp)
    if k.listeners:
        k.trace("setpgid", "kernel/sys.c:1068", f"process {p.pid} -> process group {pgid}")
    return 0


def setpgid_check_target(current: Task, group_leader: Task, p: Task) -> None:
    """setpgid's who-may rule: a child in the caller's session that has not exec'd, or the caller (kernel/sys.c:1036-1047)."""
    assert p.real_parent is not None
    if same_thread_group(p.real_parent, group_leader):
        if task_session(p) is not task_session(group_leader):
            raise kerr(errno.EPERM, f"child {p.pid} is in another session", "kernel/sys.c:1038")
        if not p.flags & PF_FORKNOEXEC:
            raise kerr(errno.EACCES, f"child {p.pid} has already exec'd (PF_FORKNOEXEC is clear)", "kernel/sys.c:1041")
    elif p is not group_leader:
        raise kerr(errno.ESRCH, f"process {p.pid} is neither the caller nor its child", "kernel/sys.c:1045")


def do_getpgid(k: KernelState, current: Task, pid: int) -> int:
    """getpgid(2)/getpgrp(2): the process group of ``pid`` (0: the caller), numbered in the caller's namespace (kernel/sys.c:1078-1104)."""
    if not pid:
        grp = task_pgrp(current)
    else:
        p = find_task_by_vpid(current, pid)
        if p is None:
            raise kerr(errno.ESRCH, f"no task {pid} in the caller's pid namespace", "kernel/sys.c:1090")
        grp = task_pgrp(p)
        if grp is None:
            raise kerr(errno.ESRCH, f"task {pid} has no process group (it is being released)", "kernel/sys.c:1093")
    return pid_vnr(current, grp)


def sys_getsid(k: KernelState, current: Task, pid: int) -> int:
    """getsid(2): the session of ``pid`` (0: the caller), numbered in the caller's namespace (kernel/sys.c:1120-1146)."""
    if not pid:
        sid = task_session(current)
    else:
        p = find_task_by_vpid(current, pid)
        if p is None:
            raise kerr(errno.ESRCH, f"no task {pid} in the caller's pid namespace", "kernel/sys.c:1132")
        sid = task_session(p)
        if sid is None:
            raise kerr(errno.ESRCH, f"task {pid} has no session (it is being released)", "kernel/sys.c:1135")
    return pid_vnr(current, sid)


def set_special_pids(k: KernelState, current: Task, pid: Pid) -> None:
    """Move the caller's thread group into session ``pid`` and process group ``pid`` (kernel/sys.c:1148-1157)."""
    curr = current.group_leader
    assert curr is not None and curr.signal is not None
    if task_session(curr) is not pid:
        change_pid(k, curr, PIDTYPE_SID, pid)
    if task_pgrp(curr) is not pid:
        change_pid(k, curr, PIDTYPE_PGID, pid)


def ksys_setsid(k: KernelState, current: Task) -> int:
    """setsid(2): a new session and process group led by the caller; returns the session id (kernel/sys.c:1159-1190)."""
    group_leader = current.group_leader
    assert group_leader is not None and group_leader.signal is not None
    sid = group_leader.thread_pid  # task_pid(group_leader)
    assert sid is not None
    session = pid_vnr(current, sid)
    if group_leader.signal.leader:
        raise kerr(errno.EPERM, "the caller is already a session leader", "kernel/sys.c:1168")
    if pid_task(sid, PIDTYPE_PGID) is not None:
        raise kerr(errno.EPERM, f"a process group {session} already exists", "kernel/sys.c:1174")
    group_leader.signal.leader = 1
    set_special_pids(k, current, sid)
    group_leader.signal.tty = None  # proc_clear_tty (drivers/tty/tty_jobctrl.c:73-82); the model has no ttys
    if k.listeners:
        k.trace("setsid", "kernel/sys.c:1177", f"process {group_leader.pid} leads session {session}")
    return session


def accumulate_thread_rusage(t: Task, r: dict[str, int]) -> None:
    """Add one thread's context switches and faults to ``r`` (kernel/sys.c:1698-1706); no block I/O in the model."""
    r["ru_nvcsw"] += t.nvcsw
    r["ru_nivcsw"] += t.nivcsw
    r["ru_minflt"] += t.min_flt
    r["ru_majflt"] += t.maj_flt


def getrusage(k: KernelState, p: Task, who: int) -> Rusage:
    """The rusage of ``p`` for RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_BOTH or RUSAGE_THREAD (kernel/sys.c:1708-1781)."""
    sig = p.signal
    assert sig is not None
    if who not in (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_BOTH, RUSAGE_THREAD):
        raise InternalError(f"getrusage: who {who} (the kernel's BUG() at kernel/sys.c:1763)")
    r = dict.fromkeys(("ru_nvcsw", "ru_nivcsw", "ru_minflt", "ru_majflt"), 0)
    utime = stime = maxrss = 0
    if who == RUSAGE_THREAD:
        utime, stime = p.utime, p.stime  # task_cputime_adjusted(current): equal to the raw times in the model
        accumulate_thread_rusage(p, r)
        maxrss = sig.maxrss
    if who in (RUSAGE_BOTH, RUSAGE_CHILDREN):
        utime, stime, maxrss = sig.cutime, sig.cstime, sig.cmaxrss
        r.update(ru_nvcsw=sig.cnvcsw, ru_nivcsw=sig.cnivcsw, ru_minflt=sig.cmin_flt, ru_majflt=sig.cmaj_flt)
    if who in (RUSAGE_BOTH, RUSAGE_SELF):
        # thread_group_cputime_adjusted: the dead threads' times in signal_struct plus every live thread's
        utime += sig.utime + sum(t.utime for t in sig.thread_head)
        stime += sig.stime + sum(t.stime for t in sig.thread_head)
        r["ru_nvcsw"] += sig.nvcsw
        r["ru_nivcsw"] += sig.nivcsw
        r["ru_minflt"] += sig.min_flt
        r["ru_majflt"] += sig.maj_flt
        maxrss = max(maxrss, sig.maxrss)
        for t in sig.thread_head:  # do { } while_each_thread(p, t)
            accumulate_thread_rusage(t, r)
    if who != RUSAGE_CHILDREN and p.mm is not None and not p.flags & PF_KTHREAD:
        # get_task_mm, then setmax_mm_hiwater_rss (include/linux/mm.h:1768-1774)
        maxrss = max(maxrss, p.mm.hiwater_rss, get_mm_rss(p.mm))
    return Rusage(ru_utime=Timeval(utime // NSEC_PER_SEC, utime % NSEC_PER_SEC // NSEC_PER_USEC),  # ns_to_kernel_old_timeval
                  ru_stime=Timeval(stime // NSEC_PER_SEC, stime % NSEC_PER_SEC // NSEC_PER_USEC),
                  ru_maxrss=maxrss * (PAGE_SIZE // 1024),  # pages to KiB
                  ru_minflt=r["ru_minflt"], ru_majflt=r["ru_majflt"], ru_nvcsw=r["ru_nvcsw"], ru_nivcsw=r["ru_nivcsw"])


def sys_getrusage(k: KernelState, current: Task, who: int) -> Rusage:
    """getrusage(2) for RUSAGE_SELF, RUSAGE_CHILDREN or RUSAGE_THREAD; any other ``who`` is EINVAL (kernel/sys.c:1783-1793)."""
    if who not in (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD):
        raise kerr(errno.EINVAL, f"who {who} is not RUSAGE_SELF, RUSAGE_CHILDREN or RUSAGE_THREAD", "kernel/sys.c:1787")
    return getrusage(k, current, who)


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


# --- times ---------------------------------------------------------------------------------------


def do_sys_times(current: Task) -> Tms:
    """struct tms of the caller: its group's times and its waited-for children's, in clock ticks (kernel/sys.c:944-955)."""
    sig = current.signal
    assert sig is not None
    tgutime, tgstime = thread_group_cputime_adjusted(current)
    return Tms(nsec_to_clock_t(tgutime), nsec_to_clock_t(tgstime), nsec_to_clock_t(sig.cutime),
               nsec_to_clock_t(sig.cstime))


def sys_times(k: KernelState, current: Task) -> tuple[int, Tms]:
    """times(2) -> (clock ticks since boot, as jiffies_64_to_clock_t gives them, and the struct tms)
    (kernel/sys.c:957-968)."""
    return jiffies_64_to_clock_t(get_jiffies_64(k)), do_sys_times(current)
