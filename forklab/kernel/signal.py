"""Signals (kernel/signal.c): sending, the fork fence, handler flushing and parent notification.

Design. The model has no CPU, so a signal is *delivered* only at the points where a real
task would notice it: on the way back to user mode at the end of one of its syscalls
(arch/x86/entry/common.py runs ``do_signal``, which calls ``get_signal`` here) or, for a
fatal signal to a task that is not in a syscall, at once, as if it had been scheduled
(``complete_signal``).

Group-wide sends (to a process group or to all, ``PIDTYPE_PGID`` and above) are also
recorded in every ``multiprocess_signals`` record of the target's signal struct, so a fork in
progress hands them to the child (kernel/signal.c:1166-1172, kernel/fork.c:2256).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forklab.errors import TaskKilled, Unmodelled, kerr
from forklab.include.linux.sched import (
    PF,
    PIDTYPE,
    SIGNAL_GROUP_EXIT,
    SIGNAL_UNKILLABLE,
    SigAction,
    Sigpending,
    SigQueue,
    Task,
    TaskState,
)
from forklab.uapi import (
    CLD_DUMPED,
    CLD_EXITED,
    CLD_KILLED,
    SA_NOCLDWAIT,
    SI_USER,
    SA_RESETHAND,
    SIG_DFL,
    SIG_IGN,
    SIGABRT,
    SIGBUS,
    SIGCHLD,
    SIGCONT,
    SIGFPE,
    SIGILL,
    SIGKILL,
    SIGQUIT,
    SIGSEGV,
    SIGSTOP,
    SIGSYS,
    SIGTRAP,
    SIGTSTP,
    SIGTTIN,
    SIGTTOU,
    SIGURG,
    SIGWINCH,
    SIGXCPU,
    SIGXFSZ,
)

if TYPE_CHECKING:
    from forklab.state import KernelState

SIG_KERNEL_IGNORE = frozenset({SIGCONT, SIGCHLD, SIGWINCH, SIGURG})  # include/linux/signal.h:416
SIG_KERNEL_STOP = frozenset({SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})  # include/linux/signal.h:411
SIG_KERNEL_COREDUMP = frozenset(
    {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSEGV, SIGBUS, SIGSYS, SIGXCPU, SIGXFSZ}
)  # include/linux/signal.h:404-409
SIGRTMIN = 32
SYNCHRONOUS_MASK = (1 << (SIGSEGV - 1)) | (1 << (SIGBUS - 1)) | (1 << (SIGILL - 1)) | (1 << (SIGTRAP - 1)) \
    | (1 << (SIGFPE - 1)) | (1 << (SIGSYS - 1))  # kernel/signal.c:193-195


@dataclass(slots=True, frozen=True)
class KSignal:
    """struct ksignal (include/linux/signal.h:273-277): the action, siginfo and number get_signal chose."""

    ka: SigAction
    info: SigQueue
    sig: int


def sigmask(sig: int) -> int:
    """The bit for ``sig`` in a sigset (include/linux/signal.h:160)."""
    return 1 << (sig - 1)


def valid_signal(sig: int) -> bool:
    """0..64 are valid signal numbers (include/linux/signal.h:260-263)."""
    return 0 <= sig <= 64


def signal_pending(t: Task) -> bool:
    """A signal is pending for ``t`` and not blocked (include/linux/sched/signal.h:347-353)."""
    assert t.signal is not None
    return bool((t.pending.signal | t.signal.shared_pending.signal) & ~t.blocked) or bool(
        t.pending.signal & sigmask(SIGKILL)
    )


def fatal_signal_pending(t: Task) -> bool:
    """SIGKILL is pending for ``t`` (include/linux/sched/signal.h:360-363)."""
    return bool(t.pending.signal & sigmask(SIGKILL))


def sig_handler_ignored(handler: int, sig: int) -> bool:
    """The handler ignores ``sig`` explicitly or by default (kernel/signal.c:67-72)."""
    return handler == SIG_IGN or (handler == SIG_DFL and sig in SIG_KERNEL_IGNORE)


def sig_ignored(t: Task, sig: int, force: bool = False) -> bool:
    """Whether ``sig`` sent to ``t`` is dropped at once (kernel/signal.c:80-121).

    Blocked signals are kept; an unkillable init drops default-action signals unless the
    kernel forces SIGKILL/SIGSTOP from an ancestor namespace.
    """
    if t.blocked & sigmask(sig):
        return False
    if t.ptrace and sig != SIGKILL:
        return False
    assert t.sighand is not None and t.signal is not None
    handler = t.sighand.action[sig - 1].sa_handler
    kernel_only = sig in (SIGKILL, SIGSTOP)
    if t.signal.flags & SIGNAL_UNKILLABLE and handler == SIG_DFL and not (force and kernel_only):
        return True
    return sig_handler_ignored(handler, sig)


def __send_signal(k: KernelState, sig: int, info: SigQueue, t: Task, kind: PIDTYPE, force: bool = False) -> None:
    """Queue ``sig`` on ``t`` (or its group), note it for forks in progress (kernel/signal.c:1070-1206)."""
    assert t.signal is not None
    if t.exit_state or t.signal.flags & SIGNAL_GROUP_EXIT:
        return
    if sig_ignored(t, sig, force):
        return
    pending = t.pending if kind == PIDTYPE.PIDTYPE_PID else t.signal.shared_pending
    if sig < SIGRTMIN and pending.signal & sigmask(sig):
        return
    pending.list.append(info)
    pending.signal |= sigmask(sig)
    if kind > PIDTYPE.PIDTYPE_TGID:
        for delayed in t.signal.multiprocess:
            delayed.signal |= sigmask(sig)
    k.trace("send_signal", "kernel/signal.c:1070", f"sig {sig} to {t.pid}")
    complete_signal(k, sig, t)


def sig_fatal(t: Task, sig: int) -> bool:
    """The default action of ``sig`` kills and ``t`` has no handler (include/linux/signal.h:428-431)."""
    assert t.sighand is not None
    return (
        sig not in SIG_KERNEL_IGNORE
        and sig not in SIG_KERNEL_STOP
        and t.sighand.action[sig - 1].sa_handler == SIG_DFL
    )


def complete_signal(k: KernelState, sig: int, t: Task) -> None:
    """Wake a thread to take the signal; a fatal one takes the whole group down (kernel/signal.c:989-1063).

    A fatal signal that does not dump core marks the group as exiting and gives every thread
    SIGKILL at once, as the kernel's fast path does (so a fork in progress in that group fails
    with EINTR). The threads then die when they next run: a group in a syscall at its end, any
    other group at once, since the model has no CPU to let it run first (core-dumping signals
    too; the model writes no core dump).
    """
    assert t.signal is not None
    if not (sig_fatal(t, sig) and not t.blocked & sigmask(sig) and (sig == SIGKILL or not t.ptrace)):
        signal_wake_up(k, t, fatal=False)
        return
    in_syscall = any(th.signal is t.signal for th in k.in_syscall)
    if sig not in SIG_KERNEL_COREDUMP:
        t.signal.flags |= SIGNAL_GROUP_EXIT
        t.signal.group_exit_code = sig
        for thread in t.signal.thread_head:
            thread.pending.signal |= sigmask(SIGKILL)
            signal_wake_up(k, thread, fatal=True)
    if in_syscall:
        return  # get_signal takes it at the end of the syscall
    from forklab.kernel.exit import do_exit_for_signal

    for thread in list(t.signal.thread_head):
        if not thread.exit_state and not thread.flags & PF.PF_EXITING:
            do_exit_for_signal(k, thread, sig)


def signal_wake_up(k: KernelState, t: Task, fatal: bool) -> None:
    """Wake ``t`` if it sleeps interruptibly, or killably for a fatal signal (kernel/signal.c:757-770)."""
    if fatal and t.waits_on == "vfork_done":
        from forklab.kernel.fork import vfork_wait_killed

        vfork_wait_killed(k, t)
    if t.state & TaskState.TASK_INTERRUPTIBLE or (fatal and t.state & TaskState.TASK_WAKEKILL):
        from forklab.kernel.sched.core import wake_up_process

        wake_up_process(k, t)


def send_signal(k: KernelState, sig: int, t: Task, kind: PIDTYPE, sender: Task | None = None) -> None:
    """Build the siginfo for a send from user space and queue it (kernel/signal.c:1208-1250).

    A sender that is not visible in the target's pid namespace (it lives in an ancestor)
    forces SIGKILL/SIGSTOP through to a namespace init (``force``, :1216, :1238-1240).
    """
    from forklab.kernel.pid import pid_nr_ns, task_active_pid_ns

    si_pid = 0
    si_uid = 0
    force = False
    if sender is not None and sender.cred is not None:
        si_pid = pid_nr_ns(sender.group_leader.thread_pid if sender.group_leader else None, task_active_pid_ns(t))
        si_uid = sender.cred.uid
        force = si_pid == 0
    __send_signal(k, sig, SigQueue(sig, SI_USER, si_pid, si_uid), t, kind, force)


def force_sig_fault(k: KernelState, t: Task, sig: int, addr: int) -> None:
    """Send a synchronous fault signal that cannot be blocked or ignored (kernel/signal.c:1296-1334)."""
    assert t.sighand is not None
    action = t.sighand.action[sig - 1]
    blocked = bool(t.blocked & sigmask(sig))
    if action.sa_handler == SIG_IGN or blocked:
        t.blocked &= ~sigmask(sig)
        t.sighand.action[sig - 1] = SigAction(SIG_DFL)
    assert t.signal is not None
    if t.sighand.action[sig - 1].sa_handler == SIG_DFL and not t.ptrace:
        t.signal.flags &= ~SIGNAL_UNKILLABLE  # even an init dies of its own fault (kernel/signal.c:1320-1325)
    __send_signal(k, sig, SigQueue(sig, 1, 0, 0, addr), t, PIDTYPE.PIDTYPE_PID)


def send_sig_kill(k: KernelState, t: Task) -> None:
    """SIGKILL from the kernel (SEND_SIG_PRIV) to ``t``'s group (kernel/signal.c:1600-1606)."""
    __send_signal(k, SIGKILL, SigQueue(SIGKILL, 0x80), t, PIDTYPE.PIDTYPE_TGID, force=True)


def flush_signal_handlers(t: Task, force_default: bool) -> None:
    """Reset caught handlers to SIG_DFL, keep SIG_IGN, clear flags and masks (kernel/signal.c:538-552)."""
    assert t.sighand is not None
    for i, action in enumerate(t.sighand.action):
        handler = action.sa_handler
        if force_default or handler != SIG_IGN:
            handler = SIG_DFL
        t.sighand.action[i] = SigAction(handler)


def do_notify_parent(k: KernelState, tsk: Task, sig: int) -> bool:
    """Tell the parent a child died: SIGCHLD or exit_signal; True if it must be auto-reaped (kernel/signal.c:1910-2002)."""
    from forklab.kernel.pid import pid_nr_ns, task_active_pid_ns
    from forklab.kernel.user_namespace import from_kuid_munged

    parent = tsk.parent
    assert parent is not None and parent.sighand is not None and tsk.cred is not None and parent.cred is not None
    if sig != SIGCHLD and tsk.parent_exec_id != parent.self_exec_id:
        sig = SIGCHLD  # the parent exec'd since the fork (kernel/signal.c:1929-1936)
    si_pid = pid_nr_ns(tsk.thread_pid, task_active_pid_ns(parent))
    assert parent.cred.user_ns is not None
    si_uid = from_kuid_munged(parent.cred.user_ns, tsk.cred.uid)
    if tsk.exit_code & 0x80:
        code, status = CLD_DUMPED, tsk.exit_code & 0x7F
    elif tsk.exit_code & 0x7F:
        code, status = CLD_KILLED, tsk.exit_code & 0x7F
    else:
        code, status = CLD_EXITED, tsk.exit_code >> 8
    autoreap = False
    chld = parent.sighand.action[SIGCHLD - 1]
    if not tsk.ptrace and sig == SIGCHLD and (chld.sa_handler == SIG_IGN or chld.sa_flags & SA_NOCLDWAIT):
        autoreap = True
        if chld.sa_handler == SIG_IGN:
            sig = 0
    if valid_signal(sig) and sig:
        __send_signal(k, sig, SigQueue(sig, code, si_pid, si_uid, status), parent, PIDTYPE.PIDTYPE_TGID)
    k.trace("do_notify_parent", "kernel/signal.c:1910", f"child {tsk.pid} -> parent {parent.pid} sig {sig}"
            + (" (autoreap)" if autoreap else ""))
    __wake_up_parent(k, parent)
    return autoreap


def __wake_up_parent(k: KernelState, parent: Task) -> None:
    """Wake every thread of the parent sleeping in wait (kernel/exit.c:1473-1477)."""
    assert parent.signal is not None
    from forklab.kernel.sched.core import wake_up_process

    for thread in parent.signal.thread_head:
        if thread.waits_on == "wait_chldexit":
            wake_up_process(k, thread)


def check_kill_permission(sender: Task, t: Task, sig: int) -> None:
    """EPERM unless the sender's uid matches or it has CAP_KILL (kernel/signal.c:796-838)."""
    from forklab.kernel.capability import ns_capable
    from forklab.uapi import CAP_KILL

    scred, tcred = sender.cred, t.cred
    assert scred is not None and tcred is not None and tcred.user_ns is not None
    if sender.signal is t.signal:
        return
    if scred.euid in (tcred.suid, tcred.uid) or scred.uid in (tcred.suid, tcred.uid):
        return
    if ns_capable(sender, tcred.user_ns, CAP_KILL):
        return
    if sig == SIGCONT and sender.signal is not None and t.signal is not None and sender.signal.pids[PIDTYPE.PIDTYPE_SID] is t.signal.pids[PIDTYPE.PIDTYPE_SID]:
        return
    raise kerr(errno.EPERM, "sender has neither a matching uid nor CAP_KILL", "kernel/signal.c:819")


def kill_something_info(k: KernelState, sender: Task, sig: int, pid: int) -> None:
    """kill(2): one process, a process group, or every process (kernel/signal.c:1556-1594)."""
    from forklab.kernel.pid import find_pid_ns, pid_task, task_active_pid_ns

    if not valid_signal(sig):
        raise kerr(errno.EINVAL, f"signal {sig} is not a valid signal", "kernel/signal.c:3710")
    ns = task_active_pid_ns(sender)
    if pid > 0:
        target = pid_task(find_pid_ns(pid, ns), PIDTYPE.PIDTYPE_TGID)
        if target is None:
            raise kerr(errno.ESRCH, f"no process {pid}", "kernel/signal.c:1433")
        check_kill_permission(sender, target, sig)
        if sig:
            send_signal(k, sig, target, PIDTYPE.PIDTYPE_TGID, sender)
        return
    if pid == -(2**31):
        raise kerr(errno.ESRCH, "pid INT_MIN names no process", "kernel/signal.c:1566")
    if pid == -1:
        targets = [t for t in _group_leaders(k) if t.tgid != 1 and t.signal is not sender.signal
                   and task_active_pid_ns(t).level >= ns.level]
        kind = PIDTYPE.PIDTYPE_SID  # the kernel's PIDTYPE_MAX: also above TGID, so delayed
    else:
        assert sender.signal is not None
        pgrp = sender.signal.pids[PIDTYPE.PIDTYPE_PGID] if pid == 0 else find_pid_ns(-pid, ns)
        targets = list(pgrp.tasks[PIDTYPE.PIDTYPE_PGID]) if pgrp is not None else []
        kind = PIDTYPE.PIDTYPE_PGID
    if not targets:
        raise kerr(errno.ESRCH, "no process in the target group", "kernel/signal.c:1435")
    last: OSError | None = None
    sent = 0
    for t in targets:
        try:
            check_kill_permission(sender, t, sig)
        except OSError as e:
            last = e
            continue
        sent += 1
        if sig:
            send_signal(k, sig, t, kind, sender)
    if not sent and last is not None:
        raise last


def _group_leaders(k: KernelState) -> list[Task]:
    return [t for t in k.tasks if t.group_leader is t and not t.exit_state]


def do_sigaction(k: KernelState, current: Task, sig: int, act: SigAction | None) -> SigAction:
    """Install a handler in the (possibly shared) table; return the old one (kernel/signal.c:3955-4000).

    Setting an action that ignores the signal discards it from every pending set of the group.
    """
    if not valid_signal(sig) or sig < 1 or (act is not None and sig in (SIGKILL, SIGSTOP)):
        raise kerr(errno.EINVAL, f"signal {sig} cannot take this action", "kernel/signal.c:3963")
    assert current.sighand is not None and current.signal is not None
    old = current.sighand.action[sig - 1]
    if act is not None:
        act = SigAction(act.sa_handler, act.sa_flags, act.sa_mask & ~(sigmask(SIGKILL) | sigmask(SIGSTOP)),
                        act.sa_restorer)
        current.sighand.action[sig - 1] = act
        if sig_handler_ignored(act.sa_handler, sig):
            for pending in [current.signal.shared_pending] + [t.pending for t in current.signal.thread_head]:
                pending.signal &= ~sigmask(sig)
                pending.list = [q for q in pending.list if q.si_signo != sig]
    return old


def sigprocmask(current: Task, how: int, newset: int | None) -> int:
    """Change the blocked mask; SIGKILL and SIGSTOP cannot be blocked (kernel/signal.c:2923-2955, 2998-3027)."""
    from forklab.uapi import SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK

    old = current.blocked
    if newset is None:
        return old
    newset &= ~(sigmask(SIGKILL) | sigmask(SIGSTOP)) & (2**64 - 1)
    if how == SIG_BLOCK:
        current.blocked = old | newset
    elif how == SIG_UNBLOCK:
        current.blocked = old & ~newset
    elif how == SIG_SETMASK:
        current.blocked = newset
    else:
        raise kerr(errno.EINVAL, f"sigprocmask: unknown how {how}", "kernel/signal.c:2946")
    return old


def next_signal(pending: Sigpending, blocked: int) -> int:
    """The lowest deliverable signal, synchronous (fault) signals first; 0 if none (kernel/signal.c:197-242)."""
    x = pending.signal & ~blocked
    if not x:
        return 0
    if x & SYNCHRONOUS_MASK:
        x &= SYNCHRONOUS_MASK
    return (x & -x).bit_length()


def __dequeue_signal(pending: Sigpending, blocked: int) -> SigQueue | None:
    """Take the next signal off one queue, with its siginfo (kernel/signal.c:607-625)."""
    sig = next_signal(pending, blocked)
    if not sig:
        return None
    pending.signal &= ~sigmask(sig)
    info = next((q for q in pending.list if q.si_signo == sig), SigQueue(sig))
    pending.list = [q for q in pending.list if q.si_signo != sig]
    return info


def dequeue_signal(tsk: Task, blocked: int) -> SigQueue | None:
    """Dequeue from the thread's own queue, then the group's (kernel/signal.c:631-700)."""
    assert tsk.signal is not None
    info = __dequeue_signal(tsk.pending, blocked)
    if info is None:
        info = __dequeue_signal(tsk.signal.shared_pending, blocked)
    return info


def get_signal(k: KernelState, task: Task) -> KSignal | None:
    """Dequeue signals until one has a handler; ignore, stop or die on the others (kernel/signal.c:2526-2756).

    Returns the signal to hand to a user handler, or None when nothing is left. A fatal
    signal ends the whole group (``do_group_exit``) and raises ``TaskKilled``.
    """
    from forklab.kernel.exit import do_group_exit

    assert task.signal is not None and task.sighand is not None
    while True:
        if task.signal.flags & SIGNAL_GROUP_EXIT:  # signal_group_exit (kernel/signal.c:2584)
            task.pending.signal &= ~sigmask(SIGKILL)
            sig = task.signal.group_exit_code or SIGKILL
            break
        info = dequeue_signal(task, task.blocked)
        if info is None:
            return None
        sig = info.si_signo
        action = task.sighand.action[sig - 1]
        if action.sa_handler == SIG_IGN:  # kernel/signal.c:2645
            _note_delivery(k, task, sig, "ignored")
            continue
        if action.sa_handler != SIG_DFL:  # kernel/signal.c:2647-2652
            if action.sa_flags & SA_RESETHAND:
                task.sighand.action[sig - 1] = SigAction(SIG_DFL)
            return KSignal(action, info, sig)
        if sig in SIG_KERNEL_IGNORE:  # kernel/signal.c:2660
            _note_delivery(k, task, sig, "ignored")
            continue
        if task.signal.flags & SIGNAL_UNKILLABLE and sig not in (SIGKILL, SIGSTOP):  # kernel/signal.c:2673
            _note_delivery(k, task, sig, "ignored")
            continue
        if sig in SIG_KERNEL_STOP:  # kernel/signal.c:2677-2708
            raise Unmodelled(f"signal {sig} would stop task {task.pid}: job-control stops are not modelled yet")
        break
    # fatal: (kernel/signal.c:2711-2739)
    task.flags |= PF.PF_SIGNALED
    k.signals_delivered.append((task.pid, sig, "killed"))
    k.trace("get_signal", "kernel/signal.c:2526", f"sig {sig}: kills task {task.pid}", tid=task.pid)
    do_group_exit(k, task, sig)
    raise TaskKilled(task.pid, sig)


def _note_delivery(k: KernelState, task: Task, sig: int, how: str) -> None:
    """Record one delivery for ``signals_delivered`` and the trace."""
    k.signals_delivered.append((task.pid, sig, how))
    k.trace("get_signal", "kernel/signal.c:2526", f"sig {sig}: {how}", tid=task.pid)


def signal_delivered(k: KernelState, task: Task, ksig: KSignal) -> None:
    """A handler's frame is set up: the signal counts as delivered (kernel/signal.c:2758-2773).

    The kernel also blocks ``sa_mask`` (and the signal, without SA_NODEFER) until the
    handler's sigreturn; the model runs no handler code, so the mask is restored at once.
    """
    _note_delivery(k, task, ksig.sig, f"handler {ksig.ka.sa_handler:#x} ran")


def signal_setup_done(k: KernelState, task: Task, ksig: KSignal) -> None:
    """The handler's frame is in place: mark the signal delivered (kernel/signal.c:2775-2781)."""
    signal_delivered(k, task, ksig)
