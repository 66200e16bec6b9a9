"""Exit, reparenting, orphaned process groups and wait (kernel/exit.c), in the kernel's order.

Exit. ``do_exit`` releases the task's resources in the kernel's order (mm first, which
releases a vfork parent and honours CLONE_CHILD_CLEARTID), then ``exit_notify`` hands its
children to a new reaper (``find_new_reaper``: a live thread of the group, then the nearest
child-subreaper ancestor in the same pid namespace, then the namespace's init), checks the
process groups that become orphaned, makes the task a zombie and notifies its parent. A
thread that is not the group leader is reaped at once (``autoreap``); a leader whose threads
still live stays an unreported zombie (``delay_group_leader``) until the last thread's
``release_task`` notifies the leader's parent (kernel/exit.c:214-233). The zombie keeps its
pid and stays counted in ``user->processes`` until ``release_task``, run by the parent's wait
or at once when the parent ignores SIGCHLD.

Exit states. ``exit_state`` changes only through ``exit_state_advance``, which checks that the
step is one the kernel makes: running -> EXIT_ZOMBIE (exit_notify, kernel/exit.c:660);
EXIT_ZOMBIE -> EXIT_DEAD (exit_notify's autoreap 676, reparent_leader 589, release_task's
zap_leader 226, wait_task_zombie's cmpxchg 1000, de_thread fs/exec.c:1170, __ptrace_detach
kernel/ptrace.c:545); EXIT_ZOMBIE -> EXIT_TRACE (wait_task_zombie for a ptrace-reparented
leader, 998-1000) and EXIT_TRACE -> EXIT_ZOMBIE or EXIT_DEAD (1077-1082). Every other step,
a second reap above all, is a model bug and raises ``InternalError``. The kernel's cmpxchg
in wait_task_zombie exists for a reaper racing another thread's reap; the model has no
concurrent reaper, so a failed cmpxchg can only be a bug and raises too.

Rusage. ``__exit_signal`` adds each dead thread's utime, stime, faults and context switches
to its signal_struct; ``wait_task_zombie`` adds the reaped group's totals (leader, dead
threads, and the children it reaped itself) to the waiter's c* fields exactly as
kernel/exit.c:1020-1060 does, and wait4 returns ``getrusage(child, RUSAGE_BOTH)`` taken
before the release. Times are the model's exact nanoseconds, so cputime_adjust is the
identity (kernel/sched/cputime.c:440-447 with CONFIG_VIRT_CPU_ACCOUNTING_NATIVE).

Wait. ``kernel_wait4`` and ``kernel_waitid`` check their arguments in the source's order, take
a reference on the struct pid they filter on, and run ``do_wait``: the children, then the
tracees, of every thread of the caller's group starting at the caller (only the caller's with
__WNOTHREAD), each through ``wait_consider_task``. When something is eligible but nothing is
ready, WNOHANG returns 0; otherwise the caller sleeps in TASK_INTERRUPTIBLE on
``wait_chldexit`` and ``Blocked`` is raised; the user calls again once woken. With a signal
pending where it would sleep, do_wait fails with -ERESTARTSYS (kernel/exit.c:1461): the return
to user mode delivers the signal and makes it EINTR after a handler without SA_RESTART, else
runs the wait again (arch/x86/kernel/signal.py), which may then reap, sleep or fail.

Pidfd pollers. do_notify_parent wakes the pollers of the task's pid first (do_notify_pidfd,
kernel/signal.c:1927), so a process's pidfd becomes readable-and-woken when its last thread is
gone. The 6.18 profile adds the wake-up of an untraced sub-thread's own pid in exit_notify
(for PIDFD_THREAD pidfds, 6.9's 64bef697d33b in the form of the 2025 cleanup "pidfs: cleanup
the usage of do_notify_pidfd()", which moved it to the ``autoreap = true`` branch and made
do_notify_parent's call unconditional again).

Reparenting order. The kernel moves all of a dying task's children under tasklist_lock, in one
splice after the loop (kernel/exit.c:638); nothing can run in between. A signal the loop sends
(pdeath_signal, SIGHUP to a newly orphaned group) can kill its target at once in the model
(a task not in a syscall dies as soon as a fatal signal arrives), so each child is moved to the
reaper's list when the loop reaches it, keeping every list consistent with ``real_parent``. The
final order of the reaper's children is the kernel's unless such a death in the loop adds the
victim's own children to the same reaper first.
"""

from __future__ import annotations

import contextlib
import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forklab.block.blk_ioc import exit_io_context
from forklab.errors import ERESTARTSYS, Blocked, InternalError, KernelError, KernelPanic, kerr
from forklab.fs.file import exit_files, fdget
from forklab.fs.fs_struct import exit_fs
from forklab.include.linux.sched import (
    __TASK_TRACED,
    EXIT_DEAD,
    EXIT_TRACE,
    EXIT_ZOMBIE,
    JOBCTL_LISTENING,
    PF_EXITING,
    PF_SIGNALED,
    PIDTYPE_MAX,
    PIDTYPE_PGID,
    PIDTYPE_PID,
    PIDTYPE_SID,
    PIDTYPE_TGID,
    SIGNAL_GROUP_EXIT,
    SIGNAL_STOP_CONTINUED,
    SIGNAL_STOP_STOPPED,
    TASK_DEAD,
    TASK_INTERRUPTIBLE,
    TASK_RUNNING,
    SignalStruct,
    Sigpending,
    Task,
    TaskState,
    is_global_init,
    set_current_state_sleep,
)
from forklab.ipc.sem import exit_sem
from forklab.kernel.cgroup.cgroup import cgroup_release
from forklab.kernel.cred import exit_creds
from forklab.kernel.fork import __cleanup_sighand, exit_mm_release, mmput, pidfd_pid
from forklab.kernel.nsproxy import exit_task_namespaces
from forklab.kernel.pid import (
    detach_pid,
    find_get_pid,
    get_pid,
    pid_has_task,
    pid_nr_ns,
    put_pid,
    task_active_pid_ns,
    task_pid_ptr,
)
from forklab.kernel.pid_namespace import zap_pid_ns_processes
from forklab.kernel.ptrace import __ptrace_unlink, exit_ptrace
from forklab.kernel.sched.core import deactivate_task, wake_up_process, wake_up_state
from forklab.kernel.signal import (
    SEND_SIG_NOINFO,
    SEND_SIG_PRIV,
    __kill_pgrp_info,
    do_notify_parent,
    do_notify_pidfd,
    exit_signals,
    group_send_sig_info,
    same_thread_group,
    sigmask,
    signal_group_exit,
    signal_pending,
    task_pgrp,
    task_session,
    thread_group_empty,
    zap_other_threads,
)
from forklab.kernel.sys import getrusage
from forklab.kernel.user_namespace import from_kuid_munged
from forklab.mm.memory import get_mm_rss
from forklab.trace import Value, register_arg_format, register_type_format, traced
from forklab.uapi import (
    __WALL,
    __WCLONE,
    __WNOTHREAD,
    CLD_CONTINUED,
    CLD_DUMPED,
    CLD_EXITED,
    CLD_KILLED,
    CLD_STOPPED,
    CLD_TRAPPED,
    O_NONBLOCK,
    P_ALL,
    P_PGID,
    P_PID,
    P_PIDFD,
    RUSAGE_BOTH,
    SIGCHLD,
    SIGCONT,
    SIGHUP,
    SIGKILL,
    WCONTINUED,
    WEXITED,
    WNOHANG,
    WNOWAIT,
    WSTOPPED,
    WUNTRACED,
    Rusage,
    SigInfo,
    WaitResult,
)

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct
    from forklab.include.linux.pid import Pid
    from forklab.state import KernelState

INT_MIN = -(2**31)  # include/linux/limits.h

EXIT_STATE_STEPS = frozenset({
    (TASK_RUNNING, EXIT_ZOMBIE),
    (EXIT_ZOMBIE, EXIT_DEAD),
    (EXIT_ZOMBIE, EXIT_TRACE),
    (EXIT_TRACE, EXIT_ZOMBIE),
    (EXIT_TRACE, EXIT_DEAD),
})


WAIT_OPTION_NAMES = ((WNOHANG, "WNOHANG"), (WUNTRACED, "WUNTRACED"), (WEXITED, "WEXITED"), (WCONTINUED, "WCONTINUED"),
                     (WNOWAIT, "WNOWAIT"), (__WNOTHREAD, "__WNOTHREAD"), (__WALL, "__WALL"), (__WCLONE, "__WCLONE"))


def wait_options_label(options: int) -> str:
    """wait options by name (``WNOHANG|__WALL``), ``0`` for none, for the trace."""
    names = [n for bit, n in WAIT_OPTION_NAMES if options & bit]
    rest = options & ~sum(bit for bit, _ in WAIT_OPTION_NAMES)
    return "|".join(names + ([hex(rest)] if rest else [])) or "0"


register_arg_format("options", wait_options_label)
for _function, _name in (("do_exit", "code"), ("do_group_exit", "exit_code")):
    register_arg_format(_name, hex, _function)  # a wait status: exit code << 8 | signal


# --- the exit state machine ------------------------------------------------------------------------


def exit_state_advance(k: KernelState, p: Task, new: TaskState, source: str) -> None:
    """Model code for every kernel assignment of ``p->exit_state``: one legal step, else InternalError
    (kernel/exit.c:660, 676, 589, 226, 1000, 1081; fs/exec.c:1170; kernel/ptrace.c:545)."""
    old = p.exit_state
    if (old, new) not in EXIT_STATE_STEPS:
        raise InternalError(f"task {p.pid}: exit_state {old!r} -> {new!r} is no step the kernel makes ({source})")
    p.exit_state = new
    if k.listeners:
        k.trace("exit_state", source, f"task {p.pid}: {old!r} -> {new!r}", tid=p.pid)


# --- release_task ---------------------------------------------------------------------------------


def __unhash_process(k: KernelState, p: Task, group_dead: bool) -> None:
    """Drop the task's pids and take it off the task, sibling and thread lists (kernel/exit.c:72-90)."""
    assert p.signal is not None
    k.nr_threads -= 1
    detach_pid(k, p, PIDTYPE_PID)
    if group_dead:
        detach_pid(k, p, PIDTYPE_TGID)
        detach_pid(k, p, PIDTYPE_PGID)
        detach_pid(k, p, PIDTYPE_SID)
        siblings = p.real_parent.children if p.real_parent is not None else []
        if p not in k.tasks or p not in siblings:
            raise InternalError(f"leader {p.pid} is missing from the process list or its parent's children")
        k.tasks.remove(p)  # list_del_rcu(&p->tasks)
        siblings.remove(p)  # list_del_init(&p->sibling)
        k.process_counts -= 1
    if p not in p.signal.thread_head:
        raise InternalError(f"task {p.pid} is not on its thread list")
    p.signal.thread_head.remove(p)  # list_del_rcu(&p->thread_group), (&p->thread_node)


def __exit_signal(k: KernelState, tsk: Task) -> None:
    """Add the thread's counters to its signal_struct, unhash it, drop its sighand (kernel/exit.c:92-174)."""
    sig, sighand = tsk.signal, tsk.sighand
    assert sig is not None and sighand is not None
    group_dead = tsk.exit_signal >= 0  # thread_group_leader(tsk)
    if group_dead:
        sig.tty = None
    else:
        if sig.notify_count > 0:
            sig.notify_count -= 1
            if not sig.notify_count and sig.group_exit_task is not None:
                wake_up_process(k, sig.group_exit_task)
        if tsk is sig.curr_target:
            threads = sig.thread_head
            sig.curr_target = threads[(threads.index(tsk) + 1) % len(threads)]  # next_thread(tsk)
    sig.utime += tsk.utime  # task_cputime (kernel/exit.c:137-146)
    sig.stime += tsk.stime
    sig.min_flt += tsk.min_flt
    sig.maj_flt += tsk.maj_flt
    sig.nvcsw += tsk.nvcsw
    sig.nivcsw += tsk.nivcsw
    sig.nr_threads -= 1
    __unhash_process(k, tsk, group_dead)
    tsk.pending = Sigpending()  # flush_sigqueue(&tsk->pending)
    tsk.sighand = None
    __cleanup_sighand(sighand)
    if group_dead:
        sig.shared_pending = Sigpending()  # flush_sigqueue(&sig->shared_pending)
    sig.sigcnt -= 1  # put_signal_struct, from __put_task_struct (kernel/fork.c:740-750)


@traced
def release_task(k: KernelState, p: Task) -> None:
    """Free a dead task; the last thread of a zombie leader's group notifies the leader's parent (kernel/exit.c:191-235)."""
    while True:  # repeat: (kernel/exit.c:195)
        assert p.real_cred is not None and p.real_cred.user is not None
        p.real_cred.user.processes -= 1
        cgroup_release(p)
        if p.ptrace:  # ptrace_release_task (include/linux/ptrace.h:182-187)
            __ptrace_unlink(p)
        __exit_signal(k, p)
        zap_leader = False
        leader = p.group_leader
        assert leader is not None
        if leader is not p and thread_group_empty(leader) and leader.exit_state == EXIT_ZOMBIE:
            zap_leader = do_notify_parent(k, leader, leader.exit_signal)
            if zap_leader:
                exit_state_advance(k, leader, EXIT_DEAD, "kernel/exit.c:226")
        exit_creds(k, p)  # put_task_struct_rcu_user -> __put_task_struct (kernel/fork.c:725-740)
        if k.listeners:
            k.trace("release_task", "kernel/exit.c:191", f"task {p.pid} released", tid=p.pid)
        if not zap_leader:
            return
        p = leader


# --- orphaned process groups ----------------------------------------------------------------------


def will_become_orphaned_pgrp(pgrp: Pid, ignored_task: Task | None) -> bool:
    """No member outside ``ignored_task`` has a parent in another pgrp of its session (kernel/exit.c:270-287)."""
    for p in list(pgrp.tasks[PIDTYPE_PGID]):  # do_each_pid_task(pgrp, PIDTYPE_PGID, p)
        parent = p.real_parent
        assert parent is not None
        if p is ignored_task or (p.exit_state and thread_group_empty(p)) or is_global_init(parent):
            continue
        if task_pgrp(parent) is not pgrp and task_session(parent) is task_session(p):
            return False
    return True


def is_current_pgrp_orphaned(k: KernelState, task: Task) -> bool:
    """The task's own process group is orphaned (kernel/exit.c:289-298)."""
    pgrp = task_pgrp(task)
    if pgrp is None:
        raise InternalError(f"task {task.pid} has no process group")
    return will_become_orphaned_pgrp(pgrp, None)


def has_stopped_jobs(pgrp: Pid) -> bool:
    """Some process of the group is group-stopped (kernel/exit.c:300-310)."""
    for p in pgrp.tasks[PIDTYPE_PGID]:
        assert p.signal is not None
        if p.signal.flags & SIGNAL_STOP_STOPPED:
            return True
    return False


def kill_orphaned_pgrp(k: KernelState, tsk: Task, parent: Task | None) -> None:
    """SIGHUP then SIGCONT to a process group this exit orphans if it has stopped jobs (kernel/exit.c:317-345)."""
    pgrp = task_pgrp(tsk)
    if pgrp is None:
        raise InternalError(f"task {tsk.pid} has no process group")
    ignored_task: Task | None = tsk
    if parent is None:
        parent = tsk.real_parent  # exit: our parent is in another pgrp and we were its only link
    else:
        ignored_task = None  # reparent: our child is in another pgrp and was the only link
    assert parent is not None
    if task_pgrp(parent) is not pgrp and task_session(parent) is task_session(tsk) \
            and will_become_orphaned_pgrp(pgrp, ignored_task) and has_stopped_jobs(pgrp):
        if k.listeners:
            k.trace("kill_orphaned_pgrp", "kernel/exit.c:340", f"pgrp of {tsk.pid} is orphaned with stopped jobs")
        __kill_pgrp_info(k, SIGHUP, SEND_SIG_PRIV, pgrp)
        __kill_pgrp_info(k, SIGCONT, SEND_SIG_PRIV, pgrp)


# --- the mm -----------------------------------------------------------------------------------------


def mm_update_next_owner(k: KernelState, mm: MmStruct, p: Task) -> None:
    """Hand mm->owner to another user of the mm: children, siblings, parent, then anyone (kernel/exit.c:347-430)."""
    if mm.owner is not p:
        return
    if mm.mm_users <= 1:
        mm.owner = None
        return
    parent = p.real_parent
    candidates = [*p.children, *(parent.children if parent is not None else []),
                  *([parent] if parent is not None else []), *k.all_threads()]
    for c in candidates:
        if c is not p and c.mm is mm and not c.exit_state:
            mm.owner = c
            return
    mm.owner = None


@traced
def exit_mm(k: KernelState, tsk: Task) -> None:
    """mm_release, then detach and drop the mm (kernel/exit.c:435-488)."""
    exit_mm_release(k, tsk)
    mm = tsk.mm
    if mm is None:
        return
    tsk.mm = None
    mm_update_next_owner(k, mm, tsk)
    mmput(k, mm)


# --- reparenting ------------------------------------------------------------------------------------


def find_alive_thread(p: Task) -> Task | None:
    """The first thread of ``p``'s group that is not exiting (kernel/exit.c:490-499)."""
    assert p.signal is not None
    for t in p.signal.thread_head:
        if not t.flags & PF_EXITING:
            return t
    return None


def find_child_reaper(k: KernelState, father: Task, dead: list[Task]) -> Task:
    """The pid namespace's init, another of its threads, or, for the last one, zap the namespace (kernel/exit.c:501-530)."""
    pid_ns = task_active_pid_ns(father)
    reaper = pid_ns.child_reaper
    if reaper is not father:
        if reaper is None:
            raise InternalError(f"pid namespace of task {father.pid} has no child reaper")
        return reaper
    reaper = find_alive_thread(father)
    if reaper is not None:
        pid_ns.child_reaper = reaper
        return reaper
    for p in list(dead):  # list_for_each_entry_safe(p, n, dead, ptrace_entry)
        dead.remove(p)
        release_task(k, p)
    zap_pid_ns_processes(k, pid_ns, father)
    return father


def find_new_reaper(k: KernelState, father: Task, child_reaper: Task) -> Task:
    """A live thread, else the nearest subreaper ancestor in the same pid ns, else init (kernel/exit.c:539-572)."""
    thread = find_alive_thread(father)
    if thread is not None:
        return thread
    assert father.signal is not None and father.thread_pid is not None
    if father.signal.has_child_subreaper:
        ns_level = father.thread_pid.level
        reaper = father.real_parent
        while reaper is not None and reaper.thread_pid is not None and reaper.thread_pid.level == ns_level:
            if reaper is k.idle_task:  # &init_task
                break
            assert reaper.signal is not None
            if reaper.signal.is_child_subreaper:
                thread = find_alive_thread(reaper)
                if thread is not None:
                    return thread
            reaper = reaper.real_parent
    return child_reaper


def reparent_leader(k: KernelState, father: Task, p: Task, dead: list[Task]) -> None:
    """A child moving to another group: exit_signal SIGCHLD, report a zombie, check its pgrp (kernel/exit.c:577-596)."""
    if p.exit_state == EXIT_DEAD:
        return
    p.exit_signal = SIGCHLD  # we don't want people slaying init
    if not p.ptrace and p.exit_state == EXIT_ZOMBIE and thread_group_empty(p):
        if do_notify_parent(k, p, p.exit_signal):
            exit_state_advance(k, p, EXIT_DEAD, "kernel/exit.c:589")
            dead.insert(0, p)  # list_add(&p->ptrace_entry, dead)
    kill_orphaned_pgrp(k, p, father)


@traced
def forget_original_parent(k: KernelState, father: Task, dead: list[Task]) -> None:
    """Hand every child (each of its threads) to the new reaper, with pdeath signals (kernel/exit.c:606-639)."""
    if father.ptraced:
        exit_ptrace(k, father, dead)
    reaper = find_child_reaper(k, father, dead)  # a dying namespace init zaps its namespace here
    if not father.children:
        return
    reaper = find_new_reaper(k, father, reaper)
    for p in list(father.children):
        father.children.remove(p)  # the splice of kernel/exit.c:638, child by child (module docstring)
        reaper.children.append(p)
        assert p.signal is not None
        for t in list(p.signal.thread_head):
            t.real_parent = reaper
            if (not t.ptrace) != (t.parent is father):
                raise InternalError(f"task {t.pid}: traced iff its parent is not the exiting task (kernel/exit.c:623)")
            if not t.ptrace:
                t.parent = t.real_parent
            if t.pdeath_signal:
                with contextlib.suppress(KernelError):  # the kernel ignores the result (kernel/exit.c:626-628)
                    group_send_sig_info(k, t.pdeath_signal, SEND_SIG_NOINFO, t, PIDTYPE_TGID)
        if not same_thread_group(reaper, father):
            reparent_leader(k, father, p, dead)
        if k.listeners:
            k.trace("reparent", "kernel/exit.c:620", f"child {p.pid} -> reaper {reaper.pid}", tid=father.pid)


@traced
def exit_notify(k: KernelState, tsk: Task, group_dead: bool) -> None:
    """Reparent the children, check orphaned pgrps, become a zombie, tell the parent or autoreap (kernel/exit.c:645-685)."""
    dead: list[Task] = []
    forget_original_parent(k, tsk, dead)
    assert tsk.group_leader is not None and tsk.signal is not None
    if group_dead:
        kill_orphaned_pgrp(k, tsk.group_leader, None)
    exit_state_advance(k, tsk, EXIT_ZOMBIE, "kernel/exit.c:660")
    leader = tsk.exit_signal >= 0  # thread_group_leader(tsk)
    alone = thread_group_empty(tsk)
    if tsk.ptrace:
        assert tsk.real_parent is not None and tsk.parent is not None
        reparented = tsk.real_parent.signal is not tsk.parent.signal  # ptrace_reparented(tsk)
        autoreap = do_notify_parent(k, tsk, tsk.exit_signal if leader and alone and not reparented else SIGCHLD)
    elif leader:
        autoreap = alone and do_notify_parent(k, tsk, tsk.exit_signal)
    else:
        autoreap = True
        if k.has("pidfd_thread"):  # 6.9+: an untraced sub-thread wakes its PIDFD_THREAD pollers (module docstring)
            do_notify_pidfd(k, tsk)
    if autoreap:
        exit_state_advance(k, tsk, EXIT_DEAD, "kernel/exit.c:676")
        dead.insert(0, tsk)  # list_add(&tsk->ptrace_entry, &dead)
    if tsk.signal.notify_count < 0 and tsk.signal.group_exit_task is not None:  # mt-exec: de_thread waits
        wake_up_process(k, tsk.signal.group_exit_task)
    for p in list(dead):
        release_task(k, p)


# --- exit and exit_group ------------------------------------------------------------------------------


def synchronize_group_exit(tsk: Task, code: int) -> None:
    """6.0+: the last thread to start exiting marks the group exiting with its own code (kernel/exit.c:synchronize_group_exit (6.0)).

    ``signal->quick_threads`` counts the threads that have not started to exit; the model
    runs one exit at a time, so it equals ``signal->live`` here.
    """
    sig = tsk.signal
    assert sig is not None
    if sig.live == 1 and not sig.flags & SIGNAL_GROUP_EXIT:
        sig.flags = SIGNAL_GROUP_EXIT
        sig.group_exit_code = code
        sig.group_stop_count = 0


@traced
def do_exit(k: KernelState, tsk: Task, code: int) -> None:
    """Tear down a task in the kernel's order and leave a zombie (kernel/exit.c:711-854)."""
    if tsk.flags & PF_EXITING:
        raise InternalError(f"task {tsk.pid} exits twice")
    assert tsk.signal is not None
    if k.has("group_exit_on_last_thread"):
        synchronize_group_exit(tsk, code)
    exit_signals(k, tsk)  # sets PF_EXITING
    tsk.signal.live -= 1
    group_dead = tsk.signal.live == 0
    if group_dead and is_global_init(tsk):  # the last thread of the global init (kernel/exit.c:763-771)
        raise KernelPanic(f"Attempted to kill init! exitcode={tsk.signal.group_exit_code or code:#010x} "
                          "(kernel/exit.c:770)")
    if group_dead and tsk.mm is not None:  # setmax_mm_hiwater_rss (kernel/exit.c:777-778, include/linux/mm.h:1774-1781)
        tsk.signal.maxrss = max(tsk.signal.maxrss, tsk.mm.hiwater_rss, get_mm_rss(tsk.mm))
    tsk.exit_code = code
    exit_mm(k, tsk)
    exit_sem(tsk)
    exit_files(k, tsk)
    exit_fs(k, tsk)
    exit_task_namespaces(k, tsk)
    exit_io_context(tsk)
    if k.listeners:
        k.trace("do_exit", "kernel/exit.c:711", f"task {tsk.pid} exits with {code:#x}", tid=tsk.pid)
    exit_notify(k, tsk, group_dead)
    deactivate_task(k, tsk)
    tsk.state = TASK_DEAD


@traced
def do_group_exit(k: KernelState, current: Task, exit_code: int) -> None:
    """exit_group(2) and fatal signals: SIGKILL the other threads, exit; they die as they next run (kernel/exit.c:876-901)."""
    sig = current.signal
    assert sig is not None
    if exit_code & 0x80:  # BUG_ON(exit_code & 0x80): core dumps don't get here (kernel/exit.c:880)
        raise InternalError(f"do_group_exit with a core-dump code {exit_code:#x}")
    if signal_group_exit(sig):
        exit_code = sig.group_exit_code
    elif not thread_group_empty(current):
        sig.group_exit_code = exit_code
        sig.flags = SIGNAL_GROUP_EXIT
        zap_other_threads(k, current)  # kernel/exit.c:894
    do_exit(k, current, exit_code)
    for t in [t for t in sig.thread_head if not t.flags & PF_EXITING and t not in k.in_syscall]:
        saved, k.current = k.current, t  # each zapped thread's get_signal: the group exit is fatal, SIGKILL
        try:  # taken off the queue, PF_SIGNALED, do_group_exit -> do_exit (kernel/signal.c:2584-2592, 2711-2713)
            t.pending.signal &= ~sigmask(SIGKILL)
            t.flags |= PF_SIGNALED
            do_exit(k, t, sig.group_exit_code)
        finally:
            k.current = saved


# --- wait ------------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class WaitidInfo:
    """struct waitid_info (kernel/exit.c:911-916): what waitid reports about the child."""

    pid: int = 0
    uid: int = 0
    status: int = 0
    cause: int = 0


@dataclass(slots=True, eq=False)
class WaitOpts:
    """struct wait_opts (kernel/exit.c:918-930); ``wo_rusage`` not None asks for the child's rusage."""

    wo_type: int
    wo_flags: int
    wo_pid: Pid | None
    wo_info: WaitidInfo | None = None
    wo_stat: int = 0
    wo_rusage: Rusage | None = None
    notask_error: int = 0


@dataclass(slots=True, frozen=True)
class IntRef:
    """An ``int *`` into a task or signal_struct, as task_stopped_code returns one (kernel/exit.c:1103-1114)."""

    obj: Task | SignalStruct
    field: str

    def get(self) -> int:
        """``*p_code``."""
        value = getattr(self.obj, self.field)
        assert isinstance(value, int)
        return value

    def set(self, value: int) -> None:
        """``*p_code = value``."""
        setattr(self.obj, self.field, value)


def eligible_pid(wo: WaitOpts, p: Task) -> bool:
    """The pid filter: any child, or one whose pid of ``wo_type`` is ``wo_pid`` (kernel/exit.c:935-939)."""
    return wo.wo_type == PIDTYPE_MAX or task_pid_ptr(p, wo.wo_type) is wo.wo_pid


def eligible_child(wo: WaitOpts, ptrace: bool, p: Task) -> bool:
    """The pid filter, then __WALL / a tracee, else __WCLONE picks clone children (kernel/exit.c:941-966)."""
    if not eligible_pid(wo, p):
        return False
    if ptrace or wo.wo_flags & __WALL:
        return True
    return not ((p.exit_signal != SIGCHLD) ^ bool(wo.wo_flags & __WCLONE))  # clone children only with __WCLONE


def wait_task_zombie_accounting(current: Task, p: Task) -> None:
    """Add a reaped group's times, faults, switches and maxrss to the waiter's c* fields (kernel/exit.c:1003-1060)."""
    psig, sig = current.signal, p.signal
    assert psig is not None and sig is not None
    tgutime = sig.utime + sum(t.utime for t in sig.thread_head)  # thread_group_cputime_adjusted
    tgstime = sig.stime + sum(t.stime for t in sig.thread_head)  # (kernel/sched/cputime.c:293-335)
    psig.cutime += tgutime + sig.cutime
    psig.cstime += tgstime + sig.cstime
    psig.cmin_flt += p.min_flt + sig.min_flt + sig.cmin_flt
    psig.cmaj_flt += p.maj_flt + sig.maj_flt + sig.cmaj_flt
    psig.cnvcsw += p.nvcsw + sig.nvcsw + sig.cnvcsw
    psig.cnivcsw += p.nivcsw + sig.nivcsw + sig.cnivcsw
    maxrss = max(sig.maxrss, sig.cmaxrss)
    if psig.cmaxrss < maxrss:
        psig.cmaxrss = maxrss


@traced
def wait_task_zombie(k: KernelState, current: Task, wo: WaitOpts, p: Task) -> int:
    """Report a zombie (WEXITED) and reap it unless WNOWAIT; returns its pid, 0 to go on (kernel/exit.c:974-1101)."""
    assert p.signal is not None and current.cred is not None and current.cred.user_ns is not None
    pid = pid_nr_ns(p.thread_pid, task_active_pid_ns(current))  # task_pid_vnr(p)
    if not wo.wo_flags & WEXITED:
        return 0
    if wo.wo_flags & WNOWAIT:
        assert p.real_cred is not None
        uid = from_kuid_munged(current.cred.user_ns, p.real_cred.uid)  # task_uid(p)
        status = p.exit_code
        if wo.wo_rusage is not None:
            wo.wo_rusage = getrusage(k, p, RUSAGE_BOTH)
    else:
        assert p.real_parent is not None and p.parent is not None
        reparented = p.real_parent.signal is not p.parent.signal  # ptrace_reparented(p)
        leader = p.exit_signal >= 0  # thread_group_leader(p)
        state = EXIT_TRACE if reparented and leader else EXIT_DEAD
        exit_state_advance(k, p, state, "kernel/exit.c:1000")  # cmpxchg(&p->exit_state, EXIT_ZOMBIE, state)
        assert p.real_cred is not None
        uid = from_kuid_munged(current.cred.user_ns, p.real_cred.uid)  # task_uid(p), read at kernel/exit.c:978
        if state == EXIT_DEAD and leader:
            wait_task_zombie_accounting(current, p)
        if wo.wo_rusage is not None:
            wo.wo_rusage = getrusage(k, p, RUSAGE_BOTH)
        status = p.signal.group_exit_code if p.signal.flags & SIGNAL_GROUP_EXIT else p.exit_code
        wo.wo_stat = status
        if state == EXIT_TRACE:
            if p.ptrace:  # ptrace_unlink
                __ptrace_unlink(p)
            state = EXIT_DEAD if do_notify_parent(k, p, p.exit_signal) else EXIT_ZOMBIE
            exit_state_advance(k, p, state, "kernel/exit.c:1081")
        if state == EXIT_DEAD:
            release_task(k, p)
    if wo.wo_info is not None:
        if (status & 0x7F) == 0:  # (status & 0x7f) == 0 (kernel/exit.c:1088)
            wo.wo_info.cause, wo.wo_info.status = CLD_EXITED, status >> 8
        else:
            wo.wo_info.cause = CLD_DUMPED if status & 0x80 else CLD_KILLED  # (status & 0x80) (kernel/exit.c:1092)
            wo.wo_info.status = status & 0x7F  # status & 0x7f (kernel/exit.c:1093)
        wo.wo_info.pid, wo.wo_info.uid = pid, uid
    if k.listeners:
        k.trace("wait_task_zombie", "kernel/exit.c:974", f"reported {pid} status {status:#x}", tid=current.pid)
    return pid


def task_stopped_code(p: Task, ptrace: bool) -> IntRef | None:
    """Where a stop is reported: the tracee's exit_code, or the group's group_exit_code (kernel/exit.c:1103-1114)."""
    if ptrace:
        if p.state & __TASK_TRACED and not p.jobctl & JOBCTL_LISTENING:  # task_is_traced(p)
            return IntRef(p, "exit_code")
    else:
        assert p.signal is not None
        if p.signal.flags & SIGNAL_STOP_STOPPED:
            return IntRef(p.signal, "group_exit_code")
    return None


@traced
def wait_task_stopped(k: KernelState, current: Task, wo: WaitOpts, ptrace: bool, p: Task) -> int:
    """Report a stopped child once (the code is consumed unless WNOWAIT); returns its pid or 0 (kernel/exit.c:1133-1198)."""
    assert current.cred is not None and current.cred.user_ns is not None and p.real_cred is not None
    if not ptrace and not wo.wo_flags & WUNTRACED:
        return 0
    p_code = task_stopped_code(p, ptrace)
    if p_code is None:
        return 0
    exit_code = p_code.get()
    if not exit_code:
        return 0
    if not wo.wo_flags & WNOWAIT:
        p_code.set(0)
    uid = from_kuid_munged(current.cred.user_ns, p.real_cred.uid)
    pid = pid_nr_ns(p.thread_pid, task_active_pid_ns(current))
    why = CLD_TRAPPED if ptrace else CLD_STOPPED
    if wo.wo_rusage is not None:
        wo.wo_rusage = getrusage(k, p, RUSAGE_BOTH)
    if not wo.wo_flags & WNOWAIT:
        wo.wo_stat = (exit_code << 8) | 0x7F  # (exit_code << 8) | 0x7f (kernel/exit.c:1185)
    if wo.wo_info is not None:
        wo.wo_info.cause, wo.wo_info.status, wo.wo_info.pid, wo.wo_info.uid = why, exit_code, pid, uid
    if k.listeners:
        k.trace("wait_task_stopped", "kernel/exit.c:1133", f"reported {pid} stopped by {exit_code}", tid=current.pid)
    return pid


@traced
def wait_task_continued(k: KernelState, current: Task, wo: WaitOpts, p: Task) -> int:
    """Report a continued child once (SIGNAL_STOP_CONTINUED cleared unless WNOWAIT) (kernel/exit.c:1205-1248)."""
    assert p.signal is not None and current.cred is not None and current.cred.user_ns is not None
    assert p.real_cred is not None
    if not wo.wo_flags & WCONTINUED:
        return 0
    if not p.signal.flags & SIGNAL_STOP_CONTINUED:
        return 0
    if not wo.wo_flags & WNOWAIT:
        p.signal.flags &= ~SIGNAL_STOP_CONTINUED
    uid = from_kuid_munged(current.cred.user_ns, p.real_cred.uid)
    pid = pid_nr_ns(p.thread_pid, task_active_pid_ns(current))
    if wo.wo_rusage is not None:
        wo.wo_rusage = getrusage(k, p, RUSAGE_BOTH)
    if wo.wo_info is None:
        wo.wo_stat = 0xFFFF  # wo->wo_stat = 0xffff (kernel/exit.c:1240)
    else:
        wo.wo_info.cause, wo.wo_info.pid, wo.wo_info.uid, wo.wo_info.status = CLD_CONTINUED, pid, uid, SIGCONT
    if k.listeners:
        k.trace("wait_task_continued", "kernel/exit.c:1205", f"reported {pid} continued", tid=current.pid)
    return pid


@traced
def wait_consider_task(k: KernelState, current: Task, wo: WaitOpts, ptrace: bool, p: Task) -> int:
    """One candidate: skip the dead, reap a zombie, else its stop or continue; clears notask_error (kernel/exit.c:1257-1358)."""
    exit_state = p.exit_state
    if exit_state == EXIT_DEAD:
        return 0
    if not eligible_child(wo, ptrace, p):
        return 0
    if exit_state == EXIT_TRACE:
        if not ptrace:
            wo.notask_error = 0  # the debugger will notify us
        return 0
    assert p.real_parent is not None and p.parent is not None
    if not ptrace and p.ptrace:
        if p.real_parent.signal is p.parent.signal:  # !ptrace_reparented(p)
            ptrace = True  # traced by the real parent's group: reap it as its tracer
    if exit_state == EXIT_ZOMBIE:
        if not (p.exit_signal >= 0 and not thread_group_empty(p)):  # !delay_group_leader(p)
            if ptrace or not p.ptrace:  # a zombie tracee is visible only to its tracer
                return wait_task_zombie(k, current, wo, p)
        if not ptrace or wo.wo_flags & (WCONTINUED | WEXITED):
            wo.notask_error = 0
    else:
        wo.notask_error = 0  # alive: it will stop, continue or exit
    ret = wait_task_stopped(k, current, wo, ptrace, p)
    if ret:
        return ret
    return wait_task_continued(k, current, wo, p)


@traced
def do_wait_thread(k: KernelState, current: Task, wo: WaitOpts, tsk: Task) -> int:
    """Consider each child of one thread of the waiting group (kernel/exit.c:1369-1381)."""
    for p in list(tsk.children):
        ret = wait_consider_task(k, current, wo, False, p)
        if ret:
            return ret
    return 0


def ptrace_do_wait(k: KernelState, current: Task, wo: WaitOpts, tsk: Task) -> int:
    """Consider each tracee of one thread of the waiting group (kernel/exit.c:1383-1395)."""
    for p in list(tsk.ptraced):
        ret = wait_consider_task(k, current, wo, True, p)
        if ret:
            return ret
    return 0


@traced
def do_wait(k: KernelState, current: Task, wo: WaitOpts) -> int:
    """Scan every thread's children and tracees: a pid, 0 (WNOHANG), ECHILD, or sleep (kernel/exit.c:1419-1471)."""
    assert current.signal is not None
    wo.notask_error = -errno.ECHILD
    if wo.wo_type < PIDTYPE_MAX and (wo.wo_pid is None or not pid_has_task(wo.wo_pid, wo.wo_type)):
        raise kerr(errno.ECHILD, "the pid or process group waited for has no task of that type", "kernel/exit.c:1437")
    threads = current.signal.thread_head
    start = threads.index(current) if current in threads else 0
    for tsk in threads[start:] + threads[:start]:  # tsk = current; do { ... } while_each_thread(current, tsk)
        retval = do_wait_thread(k, current, wo, tsk)
        if retval:
            return retval
        retval = ptrace_do_wait(k, current, wo, tsk)
        if retval:
            return retval
        if wo.wo_flags & __WNOTHREAD:
            break
    if wo.notask_error:
        raise kerr(errno.ECHILD, "no child or tracee matches the wait", "kernel/exit.c:1459")
    if wo.wo_flags & WNOHANG:
        return 0
    if signal_pending(current):
        raise kerr(ERESTARTSYS, "a signal is pending where wait would sleep", "kernel/exit.c:1461")
    set_current_state_sleep(k, current, TASK_INTERRUPTIBLE, "wait_chldexit")
    raise Blocked(current.pid, "wait_chldexit")


def __wake_up_parent(k: KernelState, p: Task, parent: Task) -> None:
    """Wake the threads of ``parent``'s group asleep in wait on ``wait_chldexit`` (kernel/exit.c:1413-1417).

    child_wait_callback's filter (kernel/exit.c:1397-1411: only waiters whose pid filter and
    __WNOTHREAD admit ``p``) is not modelled, as the model keeps no wait_opts on the queue: every
    such waiter is woken, rescans when its user calls again, and sleeps again if nothing is ready.
    """
    assert parent.signal is not None
    for thread in parent.signal.thread_head:
        if thread.waits_on == "wait_chldexit":
            wake_up_state(k, thread, TASK_INTERRUPTIBLE)  # __wake_up_sync_key(..., TASK_INTERRUPTIBLE, p)


def pidfd_get_pid(k: KernelState, current: Task, fd: int) -> Pid:
    """The struct pid behind a pidfd, with a reference; EBADF for no file or another file (kernel/exit.c:1473-1488)."""
    f = fdget(current, fd)
    if f is None:
        raise kerr(errno.EBADF, f"fd {fd} is not open", "kernel/exit.c:1480")
    return get_pid(pidfd_pid(k, f))


def _pidfd_nonblocking(current: Task, fd: int) -> bool:
    """5.10+: the pidfd's file was opened with PIDFD_NONBLOCK (O_NONBLOCK in f_flags)."""
    f = fdget(current, fd)
    return f is not None and bool(f.f_flags & O_NONBLOCK)


def waitid_pid(k: KernelState, current: Task, which: int, upid: int) -> tuple[int, Pid | None]:
    """kernel_waitid's switch on ``which``: the pid type and a referenced struct pid, or EINVAL/EBADF (kernel/exit.c:1504-1536)."""
    if which == P_ALL:
        return PIDTYPE_MAX, None
    if which == P_PID:
        if upid <= 0:
            raise kerr(errno.EINVAL, "P_PID needs a positive pid", "kernel/exit.c:1511")
        return PIDTYPE_PID, find_get_pid(current, upid)
    if which == P_PGID:
        if upid < 0:
            raise kerr(errno.EINVAL, "P_PGID needs a pgid >= 0", "kernel/exit.c:1518")
        if upid:
            return PIDTYPE_PGID, find_get_pid(current, upid)
        pgrp = task_pgrp(current)  # get_task_pid(current, PIDTYPE_PGID)
        return PIDTYPE_PGID, get_pid(pgrp) if pgrp is not None else None
    if which == P_PIDFD:
        if upid < 0:
            raise kerr(errno.EINVAL, "P_PIDFD needs an fd >= 0", "kernel/exit.c:1528")
        return PIDTYPE_PID, pidfd_get_pid(k, current, upid)
    raise kerr(errno.EINVAL, f"unknown idtype {which}", "kernel/exit.c:1535")


def kernel_waitid(k: KernelState, current: Task, which: int, upid: int, options: int) -> SigInfo | None:
    """waitid(2): the siginfo of the child reported, None when WNOHANG finds nothing (kernel/exit.c:1490-1547, 1549-1580)."""
    if options & ~(WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL):
        raise kerr(errno.EINVAL, "waitid: unknown option bits", "kernel/exit.c:1500")
    if not options & (WEXITED | WSTOPPED | WCONTINUED):
        raise kerr(errno.EINVAL, "waitid: none of WEXITED, WSTOPPED and WCONTINUED", "kernel/exit.c:1502")
    wo_type, pid = waitid_pid(k, current, which, upid)
    nonblock = which == P_PIDFD and k.has("pidfd_nonblock") and _pidfd_nonblocking(current, upid)
    wo = WaitOpts(wo_type=wo_type, wo_flags=options | (WNOHANG if nonblock else 0), wo_pid=pid, wo_info=WaitidInfo())
    try:
        ret = do_wait(k, current, wo)
    finally:
        put_pid(k, pid)
    if nonblock and ret == 0 and not options & WNOHANG:
        raise kerr(errno.EAGAIN, "waitid on a PIDFD_NONBLOCK pidfd with nothing to report",
                   "kernel/exit.c:kernel_waitid (5.10)")
    if ret <= 0 or wo.wo_info is None:
        return None  # WNOHANG, nothing ready: si_signo and si_pid stay 0
    return SigInfo(SIGCHLD, wo.wo_info.cause, wo.wo_info.pid, wo.wo_info.uid, wo.wo_info.status)


# NOTE: wait4's non-NULL rusage pointer (kernel/exit.c:1542): a Rusage is frozen, so one default instance serves
# every call, where a new one cost 16 frozen-field stores per wait
RUSAGE_WANTED = Rusage()


def wait_result_value(r: WaitResult) -> Value:
    """A WaitResult in a trace: (pid, status, ru_utime.tv_sec, ru_utime.tv_usec, ru_stime.tv_sec, ru_stime.tv_usec)."""
    ru = r.rusage
    return (r[0], r[1], ru.ru_utime.tv_sec, ru.ru_utime.tv_usec, ru.ru_stime.tv_sec, ru.ru_stime.tv_usec)


register_type_format(WaitResult, wait_result_value)


@traced
def kernel_wait4(k: KernelState, current: Task, upid: int, options: int, ru: bool = True) -> WaitResult:
    """wait4(2) -> (pid, wstatus) with the child's rusage when ``ru`` (a non-NULL rusage pointer); (0, 0) with
    WNOHANG; or sleep (kernel/exit.c:1582-1623)."""
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL):
        raise kerr(errno.EINVAL, "wait4: unknown option bits (WEXITED and WNOWAIT are waitid's)", "kernel/exit.c:1592")
    if upid == INT_MIN:
        raise kerr(errno.ESRCH, "wait4: -INT_MIN is not defined", "kernel/exit.c:1596")
    wo_type: int = PIDTYPE_PGID
    if upid == -1:
        wo_type, pid = PIDTYPE_MAX, None
    elif upid < 0:
        pid = find_get_pid(current, -upid)
    elif upid == 0:
        pgrp = task_pgrp(current)  # get_task_pid(current, PIDTYPE_PGID)
        pid = get_pid(pgrp) if pgrp is not None else None
    else:
        wo_type, pid = PIDTYPE_PID, find_get_pid(current, upid)
    wo = WaitOpts(wo_type=wo_type, wo_flags=options | WEXITED, wo_pid=pid, wo_rusage=RUSAGE_WANTED if ru else None)
    try:
        ret = do_wait(k, current, wo)
    finally:
        put_pid(k, pid)
    if ret <= 0:
        return WaitResult(0, 0)
    return WaitResult(ret, wo.wo_stat, wo.wo_rusage)
