"""Signals (kernel/signal.c): sending, thread-group targeting, job control and delivery.

Sending. Every send goes the kernel's way: ``kill_something_info`` (kill(2)),
``__kill_pgrp_info`` (process groups), ``kill_pid_info`` (one process, found by any of its
thread ids), ``do_send_specific`` (tgkill/tkill) and ``sys_pidfd_send_signal`` all end in
``group_send_sig_info`` (the permission check) and ``do_send_sig_info`` -> ``send_signal``
(the force rule for namespace inits, the siginfo's uid and pid as the target's namespaces see
them) -> ``__send_signal``: ``prepare_signal`` (the process-wide effects of stop and continue
signals, which happen at generation time), the queue, the delayed-for-fork copies, and
``complete_signal``, which picks the thread to wake: the named task if it wants the signal,
else the next willing thread from ``signal->curr_target`` -- never a zombie leader, whose
PF_EXITING makes ``wants_signal`` refuse. A fatal signal that does not dump core marks the
group as exiting and gives every thread SIGKILL at once.

The siginfo argument. The kernel passes a ``kernel_siginfo *`` or one of two special values;
the model passes a ``SigQueue``, ``SEND_SIG_NOINFO`` (from ``current``, whose ids the queue
records) or ``SEND_SIG_PRIV`` (None: from the kernel, never ignored by a namespace init).
Errors are ``KernelError``; the loops that the kernel runs on ``-errno`` values keep the
exception that decides the result, so kill(2) reports the rule and line that decided it.

Delivery: the model has no CPU. A signal is acted on where the target would notice it:

* at the end of its own syscall, on the way back to user mode (arch/x86/entry/common.py ->
  ``do_signal`` -> ``get_signal``); a group stop that starts or a stop that arrives during a
  syscall therefore stops the caller when the call returns -- its return value is given, and
  the task is TASK_STOPPED and can make no further call until continued;
* at once, for a task that is *not* in a syscall (in user mode, or asleep in a syscall that
  raised ``Blocked``): ``signal_wake_up_state`` wakes it if it sleeps in a state the signal
  may interrupt, and ``return_to_user_mode_now`` then runs its return to user mode through
  ``prepare_exit_to_usermode`` (arch/x86/entry/common.c:182), as the kick_process IPI or
  the wake-up would on Linux. This happens only when the task has work that cannot wait
  for a next syscall: a stop (JOBCTL_STOP_PENDING or a default-action stop signal), a
  continue to report (SIGNAL_CLD_MASK), or death (a group exit, or a default-action fatal
  signal). Caught signals alone still wait for the task's next syscall, as before; when a
  stop or death does run the return now, the handlers queued before it run first, as they
  would on Linux. It is the one place the model delivers to a task that is not running, and
  it runs at the end of ``__send_signal`` (every send, also one dropped by
  ``prepare_signal`` such as a SIGCONT to the default action), at the end of
  ``do_signal_stop`` (the other threads stop once the initiator has) and after a core
  dump's ``zap_threads`` (fs/coredump.py). While it runs, the task counts as in the kernel
  (``k.in_syscall``), so nested sends leave it to its own return path. A group that is
  exiting while one of its threads is in a syscall is left to that thread, whose
  ``get_signal`` runs ``do_group_exit`` at the syscall's end.

TIF_SIGPENDING is not a stored flag: ``signal_pending`` computes it from the queues and the
jobctl bits, and ``wants_signal`` asks whether a signal other than the one being completed
was pending (the flag as it was before the send). A thread that stopped resumes in
``get_signal`` at ``relock`` once woken: ``return_to_user_mode_now`` runs ``do_signal`` for it
first when a CLD_ report is due.

So a task asleep in wait4, a pipe read or pause is woken and stopped by a stop signal and
stays stopped; after SIGCONT it is TASK_RUNNING and its user re-issues the call (the model's
``Blocked`` convention). A vfork parent sleeps in TASK_KILLABLE, which only a fatal signal
wakes: a stop signal leaves it asleep with the stop pending, and the group stop is not
complete until it has stopped too, as on Linux. Once the vfork child releases it, it stops
at its next return to user mode: its next syscall's end, or at once if a signal sent to it
(such as the child's SIGCHLD) runs that return first; Linux stops it on the way out of
vfork.

Job control. ``do_signal_stop`` starts a group stop (``group_exit_code`` = the signal,
``group_stop_count`` = the threads that must stop, JOBCTL_STOP_PENDING|JOBCTL_STOP_CONSUME on
each); every thread consumes one count in ``task_participate_group_stop`` and goes to
TASK_STOPPED; the last one sets SIGNAL_STOP_STOPPED and sends the parent CLD_STOPPED
(``do_notify_parent_cldstop``, unless the parent's SIGCHLD has SA_NOCLDSTOP or is SIG_IGN).
A stop that finds its task asleep resumes, when woken, at get_signal's ``relock``: the first
thread to get there after SIGCONT reports CLD_CONTINUED (or CLD_STOPPED for a stop that
SIGCONT interrupted) from the SIGNAL_CLD_MASK bits ``prepare_signal`` left.

Handlers. A signal with a handler comes back from ``get_signal`` as a ``KSignal``;
``handle_signal`` (arch/x86/kernel/signal.py) decides the interrupted syscall's restart and
pushes the frame on ``task.sigframes``, and ``signal_delivered`` blocks the handler's sa_mask
and, without SA_NODEFER, the signal through ``set_current_blocked``, which hands shared signals
the new mask blocks to other threads (``__set_task_blocked``). The frame's rt_sigreturn puts
the saved mask back (for a task without user code, at once: arch/x86/entry/common.py).

Parent notification. ``do_notify_parent`` first wakes the pollers of the child's pidfds
(``do_notify_pidfd``), then sends SIGCHLD or the exit signal and wakes the parent's waiters
(``__wake_up_parent``, kernel/exit.py).

Group-wide sends (to a process group or to all, ``PIDTYPE_PGID`` and above) are also
recorded in every ``multiprocess_signals`` record of the target's signal struct, so a fork in
progress hands them to the child (kernel/signal.c:1166-1172, kernel/fork.c:2256).

Not modelled: RLIMIT_SIGPENDING (``__sigqueue_alloc`` never fails, so no siginfo is lost
and no real-time send fails with EAGAIN); ptrace stops (a traced task's signals are
delivered as if untraced, and a group stop of a traced task or a ptrace/freezer jobctl trap
raises ``Unmodelled``); signalfd; posix timers; the freezer; audit and LSM hooks; /proc/<pid>
directory fds as pidfds (the model's /proc has no such directories, so they are EBADF).
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, NoReturn

from forklab.errors import ERESTARTNOHAND, Blocked, InternalError, KernelError, TaskKilled, Unmodelled, kerr
from forklab.fs.file import fdget
from forklab.include.linux.sched import (
    __TASK_STOPPED,
    __TASK_TRACED,
    JOBCTL_PENDING_MASK,
    JOBCTL_STOP_CONSUME,
    JOBCTL_STOP_DEQUEUED,
    JOBCTL_STOP_PENDING,
    JOBCTL_STOP_SIGMASK,
    JOBCTL_TRAP_FREEZE,
    JOBCTL_TRAP_MASK,
    JOBCTL_TRAPPING,
    PF_EXITING,
    PF_SIGNALED,
    PIDTYPE_MAX,
    PIDTYPE_PGID,
    PIDTYPE_PID,
    PIDTYPE_SID,
    PIDTYPE_TGID,
    PT_SEIZED,
    SIGNAL_CLD_CONTINUED,
    SIGNAL_CLD_MASK,
    SIGNAL_CLD_STOPPED,
    SIGNAL_GROUP_COREDUMP,
    SIGNAL_GROUP_EXIT,
    SIGNAL_STOP_CONTINUED,
    SIGNAL_STOP_MASK,
    SIGNAL_STOP_STOPPED,
    SIGNAL_UNKILLABLE,
    TASK_INTERRUPTIBLE,
    TASK_RUNNING,
    TASK_STOPPED,
    TASK_WAKEKILL,
    SigAction,
    SignalStruct,
    Sigpending,
    SigQueue,
    Task,
    TaskState,
    is_global_init,
    set_current_state_sleep,
)
from forklab.kernel.capability import ns_capable
from forklab.kernel.pid import (
    __task_pid_nr_ns,
    find_task_by_vpid,
    find_vpid,
    ns_of_pid,
    pid_nr_ns,
    pid_task,
    pid_vnr,
    task_active_pid_ns,
)
from forklab.kernel.sched.core import wake_up_state
from forklab.kernel.user_namespace import DEFAULT_OVERFLOWUID, from_kuid_munged, make_kid
from forklab.trace import traced
from forklab.uapi import (
    _NSIG,
    CAP_KILL,
    CLD_CONTINUED,
    CLD_DUMPED,
    CLD_EXITED,
    CLD_KILLED,
    CLD_STOPPED,
    CLD_TRAPPED,
    NSIGBUS,
    NSIGCHLD,
    NSIGFPE,
    NSIGILL,
    NSIGPOLL,
    NSIGSEGV,
    NSIGSYS,
    NSIGTRAP,
    RLIM_INFINITY,
    SA_NOCLDSTOP,
    SA_NOCLDWAIT,
    SA_NODEFER,
    SA_RESETHAND,
    SEGV_MAPERR,
    SI_KERNEL,
    SI_SIGIO,
    SI_TIMER,
    SI_TKILL,
    SI_USER,
    SIG_BLOCK,
    SIG_DFL,
    SIG_IGN,
    SIG_SETMASK,
    SIG_UNBLOCK,
    SIGABRT,
    SIGBUS,
    SIGCHLD,
    SIGCONT,
    SIGFPE,
    SIGILL,
    SIGKILL,
    SIGPOLL,
    SIGQUIT,
    SIGRTMIN,
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
    SigInfo,
)

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File
    from forklab.include.linux.pid import Pid, PidNamespace
    from forklab.state import KernelState

SIG_KERNEL_ONLY = frozenset({SIGKILL, SIGSTOP})  # include/linux/signal.h:406-407
SIG_KERNEL_STOP = frozenset({SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})  # include/linux/signal.h:409-411
SIG_KERNEL_COREDUMP = frozenset(
    {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSEGV, SIGBUS, SIGSYS, SIGXCPU, SIGXFSZ}
)  # include/linux/signal.h:413-418
SIG_KERNEL_IGNORE = frozenset({SIGCONT, SIGCHLD, SIGWINCH, SIGURG})  # include/linux/signal.h:420-422
SYNCHRONOUS_MASK = (1 << (SIGSEGV - 1)) | (1 << (SIGBUS - 1)) | (1 << (SIGILL - 1)) | (1 << (SIGTRAP - 1)) \
    | (1 << (SIGFPE - 1)) | (1 << (SIGSYS - 1))  # kernel/signal.c:193-195
SIGSET_MASK = (1 << _NSIG) - 1  # a sigset_t of _NSIG bits


class _SiSpecial(enum.Enum):
    """The special siginfo pointer SEND_SIG_NOINFO (include/linux/sched/signal.h:501); SEND_SIG_PRIV is None."""

    SEND_SIG_NOINFO = 0


SEND_SIG_NOINFO: Final = _SiSpecial.SEND_SIG_NOINFO
SEND_SIG_PRIV: Final = None
KernelSiginfo = SigQueue | _SiSpecial | None


class SIL(enum.IntEnum):
    """enum siginfo_layout (include/linux/signal.h:30-41): which union member a siginfo uses."""

    SIL_KILL = 0
    SIL_TIMER = 1
    SIL_POLL = 2
    SIL_FAULT = 3
    SIL_FAULT_MCEERR = 4
    SIL_FAULT_BNDERR = 5
    SIL_FAULT_PKUERR = 6
    SIL_CHLD = 7
    SIL_RT = 8
    SIL_SYS = 9


SIG_SICODES: dict[int, tuple[int, SIL]] = {
    SIGILL: (NSIGILL, SIL.SIL_FAULT), SIGFPE: (NSIGFPE, SIL.SIL_FAULT), SIGSEGV: (NSIGSEGV, SIL.SIL_FAULT),
    SIGBUS: (NSIGBUS, SIL.SIL_FAULT), SIGTRAP: (NSIGTRAP, SIL.SIL_FAULT), SIGCHLD: (NSIGCHLD, SIL.SIL_CHLD),
    SIGPOLL: (NSIGPOLL, SIL.SIL_POLL), SIGSYS: (NSIGSYS, SIL.SIL_SYS),
}  # sig_sicodes (kernel/signal.c:3117-3131); x86 has no SIGEMT, and no MCEERR/BNDERR/PKUERR sends


@dataclass(slots=True, frozen=True)
class KSignal:
    """struct ksignal (include/linux/signal.h:273-277): the action, siginfo and number get_signal chose."""
    ka: SigAction
    info: SigQueue
    sig: int


# --- the thread-group helpers of include/linux/sched/signal.h -------------------------------------


def signal_group_exit(sig: SignalStruct) -> bool:
    """The group is exiting, or an exec is killing its other threads (include/linux/sched/signal.h:257-261)."""
    return bool(sig.flags & SIGNAL_GROUP_EXIT) or sig.group_exit_task is not None


def task_pgrp(task: Task) -> Pid | None:
    """The struct pid of the task's process group (include/linux/sched/signal.h:614-617)."""
    assert task.signal is not None
    return task.signal.pids[PIDTYPE_PGID]


def task_session(task: Task) -> Pid | None:
    """The struct pid of the task's session (include/linux/sched/signal.h:619-622)."""
    assert task.signal is not None
    return task.signal.pids[PIDTYPE_SID]


def task_tgid(task: Task) -> Pid | None:
    """The struct pid of the task's thread group (include/linux/sched/signal.h:604-607)."""
    assert task.signal is not None
    return task.signal.pids[PIDTYPE_TGID]


def rlimit(t: Task, resource: int) -> int:
    """task_rlimit: the soft limit of ``resource`` (include/linux/sched/signal.h:696-699, 684-688).

    The kernel's ``rlimit(limit)`` reads ``current``; the model names the task. A task without
    a signal_struct (the bare tasks the mm and fs unit tests build on an unbooted KernelState)
    has no limits: RLIM_INFINITY.
    """
    if t.signal is None:
        return RLIM_INFINITY
    return t.signal.rlim[resource][0]


def rlimit_max(t: Task, resource: int) -> int:
    """task_rlimit_max: the hard limit of ``resource``, RLIM_INFINITY without a signal_struct
    (include/linux/sched/signal.h:701-704, 690-694)."""
    if t.signal is None:
        return RLIM_INFINITY
    return t.signal.rlim[resource][1]


def same_thread_group(p1: Task, p2: Task) -> bool:
    """Both tasks share one signal_struct (include/linux/sched/signal.h:645-649)."""
    return p1.signal is p2.signal


def thread_group_empty(p: Task) -> bool:
    """No other thread shares ``p``'s thread group (include/linux/sched/signal.h:657-660)."""
    assert p.signal is not None
    threads = p.signal.thread_head
    return not threads or (len(threads) == 1 and threads[0] is p)  # every thread on the list is p


# --- sigsets, actions, pending state ------------------------------------------------------------


def sigmask(sig: int) -> int:
    """The bit for ``sig`` in a sigset (include/linux/signal.h:160)."""
    return 1 << (sig - 1)


_SIGKILL_BIT = sigmask(SIGKILL)  # the two tests below run at every syscall's exit, and at every fork


def valid_signal(sig: int) -> bool:
    """0.._NSIG are valid signal numbers (include/linux/signal.h:260-263)."""
    return 0 <= sig <= _NSIG


def signal_pending(t: Task) -> bool:
    """TIF_SIGPENDING as recalc_sigpending_tsk sets it: a jobctl stop or trap, or an unblocked signal
    (include/linux/sched/signal.h:347-350, kernel/signal.c:154-172)."""
    assert t.signal is not None
    return bool(t.jobctl & (JOBCTL_PENDING_MASK | JOBCTL_TRAP_FREEZE)) \
        or bool((t.pending.signal | t.signal.shared_pending.signal) & ~t.blocked) \
        or bool(t.pending.signal & _SIGKILL_BIT)


def fatal_signal_pending(t: Task) -> bool:
    """SIGKILL is pending for ``t`` (include/linux/sched/signal.h:357-360)."""
    return bool(t.pending.signal & _SIGKILL_BIT)


def sig_handler_ignored(handler: int, sig: int) -> bool:
    """The handler ignores ``sig`` explicitly or by default (kernel/signal.c:72-77)."""
    return handler == SIG_IGN or (handler == SIG_DFL and sig in SIG_KERNEL_IGNORE)


def sig_task_ignored(t: Task, sig: int, force: bool) -> bool:
    """The target's disposition drops ``sig``: global init never takes SIGKILL/SIGSTOP, an unkillable
    init drops default actions unless forced (kernel/signal.c:79-99)."""
    assert t.sighand is not None and t.signal is not None
    handler = t.sighand.action[sig - 1].sa_handler
    if is_global_init(t) and sig in SIG_KERNEL_ONLY:
        return True
    if t.signal.flags & SIGNAL_UNKILLABLE and handler == SIG_DFL and not (force and sig in SIG_KERNEL_ONLY):
        return True
    return sig_handler_ignored(handler, sig)


def sig_ignored(t: Task, sig: int, force: bool = False) -> bool:
    """Whether ``sig`` sent to ``t`` is dropped at once: never while blocked or traced (kernel/signal.c:101-119)."""
    if t.blocked & sigmask(sig):
        return False
    if t.ptrace and sig != SIGKILL:
        return False
    return sig_task_ignored(t, sig, force)


def sig_fatal(t: Task, sig: int) -> bool:
    """The default action of ``sig`` kills and ``t`` has no handler (include/linux/signal.h:428-430)."""
    assert t.sighand is not None
    return (
        sig not in SIG_KERNEL_IGNORE
        and sig not in SIG_KERNEL_STOP
        and t.sighand.action[sig - 1].sa_handler == SIG_DFL
    )


def siginfo_layout(sig: int, si_code: int) -> SIL:
    """Which siginfo union member ``si_code`` selects for ``sig`` (kernel/signal.c:3152-3181)."""
    if SI_USER < si_code < SI_KERNEL:
        limit_layout = SIG_SICODES.get(sig)
        if limit_layout is not None and si_code <= limit_layout[0]:
            return limit_layout[1]
        if si_code <= NSIGPOLL:
            return SIL.SIL_POLL
        return SIL.SIL_KILL
    if si_code == SI_TIMER:
        return SIL.SIL_TIMER
    if si_code == SI_SIGIO:
        return SIL.SIL_POLL
    if si_code < 0:
        return SIL.SIL_RT
    return SIL.SIL_KILL


def has_si_pid_and_uid(info: SigQueue) -> bool:
    """The siginfo carries a sender's pid and uid (kill, child or rt layouts) (kernel/signal.c:1183-1206)."""
    return siginfo_layout(info.si_signo, info.si_code) in (SIL.SIL_KILL, SIL.SIL_CHLD, SIL.SIL_RT)


def si_fromuser(info: KernelSiginfo) -> bool:
    """The send comes from user space: SEND_SIG_NOINFO or a si_code <= 0 (kernel/signal.c:805-809)."""
    if info is SEND_SIG_NOINFO:
        return True
    return isinstance(info, SigQueue) and info.si_code <= SI_USER


def flush_sigqueue_mask(mask: int, s: Sigpending) -> None:
    """Remove the signals in ``mask`` from a pending set and its queue (kernel/signal.c:779-795)."""
    if not mask & s.signal:
        return
    s.signal &= ~mask
    s.list = [q for q in s.list if not mask & sigmask(q.si_signo)]


def flush_signal_handlers(t: Task, force_default: bool) -> None:
    """Reset caught handlers to SIG_DFL, keep SIG_IGN, clear flags and masks (kernel/signal.c:538-552)."""
    assert t.sighand is not None
    t.sighand.action = tuple(SigAction(SIG_DFL if force_default or action.sa_handler != SIG_IGN else SIG_IGN)
                             for action in t.sighand.action)


# --- jobctl ---------------------------------------------------------------------------------------


def task_set_jobctl_pending(task: Task, mask: int) -> bool:
    """Set jobctl bits (a new stop signr replaces the old); False and nothing set for a dying task
    (kernel/signal.c:285-299)."""
    if fatal_signal_pending(task) or task.flags & PF_EXITING:
        return False
    if mask & JOBCTL_STOP_SIGMASK:
        task.jobctl &= ~JOBCTL_STOP_SIGMASK
    task.jobctl |= mask
    return True


def task_clear_jobctl_trapping(task: Task) -> None:
    """Clear JOBCTL_TRAPPING; the model has no ptracer waiting on the bit (kernel/signal.c:313-320)."""
    task.jobctl &= ~JOBCTL_TRAPPING


def task_clear_jobctl_pending(task: Task, mask: int) -> None:
    """Clear pending jobctl bits; clearing STOP_PENDING also clears CONSUME and DEQUEUED (kernel/signal.c:337-348)."""
    if mask & JOBCTL_STOP_PENDING:
        mask |= JOBCTL_STOP_CONSUME | JOBCTL_STOP_DEQUEUED
    task.jobctl &= ~mask
    if not task.jobctl & JOBCTL_PENDING_MASK:
        task_clear_jobctl_trapping(task)


def task_participate_group_stop(task: Task) -> bool:
    """Consume this thread's share of a group stop; True if it completed a fresh stop and the parent must be
    told (kernel/signal.c:366-390)."""
    sig = task.signal
    assert sig is not None
    consume = task.jobctl & JOBCTL_STOP_CONSUME
    if not task.jobctl & JOBCTL_STOP_PENDING:
        raise InternalError(f"task {task.pid} participates in a group stop it was not asked to join")
    task_clear_jobctl_pending(task, JOBCTL_STOP_PENDING)
    if not consume:
        return False
    if sig.group_stop_count == 0:
        raise InternalError(f"task {task.pid}: group_stop_count is already 0 (kernel/signal.c:380)")
    sig.group_stop_count -= 1
    if not sig.group_stop_count and not sig.flags & SIGNAL_STOP_STOPPED:
        signal_set_stop_flags(sig, SIGNAL_STOP_STOPPED)
        return True
    return False


def task_join_group_stop(task: Task, current: Task) -> None:
    """A new thread of ``current``'s group joins a group stop in progress (kernel/signal.c:392-404)."""
    jobctl = current.jobctl
    if jobctl & JOBCTL_STOP_PENDING:
        assert current.signal is not None
        signr = jobctl & JOBCTL_STOP_SIGMASK
        if task_set_jobctl_pending(task, signr | JOBCTL_STOP_PENDING | JOBCTL_STOP_CONSUME):
            current.signal.group_stop_count += 1


def signal_set_stop_flags(sig: SignalStruct, flags: int) -> None:
    """Replace the SIGNAL_STOP_MASK bits of signal->flags, never on a dying group
    (include/linux/sched/signal.h:249-254)."""
    if sig.flags & (SIGNAL_GROUP_EXIT | SIGNAL_GROUP_COREDUMP):
        raise InternalError("stop flags set on a group that is exiting (include/linux/sched/signal.h:252)")
    sig.flags = (sig.flags & ~SIGNAL_STOP_MASK) | flags


# --- waking ---------------------------------------------------------------------------------------


def _threads_from(t: Task) -> list[Task]:
    """``t``, then each thread after it in list order, wrapping: the order of while_each_thread as
    kernel/signal.c walks it (kernel/signal.c:1045-1059, 2346-2361)."""
    assert t.signal is not None
    threads = t.signal.thread_head
    if t not in threads:
        return [t]
    i = threads.index(t)
    return threads[i:] + threads[:i]


def signal_wake_up_state(k: KernelState, t: Task, state: TaskState) -> None:
    """Mark a signal pending for ``t`` and wake it from an interruptible sleep, or one in ``state``
    (kernel/signal.c:759-770).

    A killable vfork wait woken this way is a killed one: the child forgets its vfork_done
    (kernel/fork.c:1266-1270).
    """
    if state & TASK_WAKEKILL and t.waits_on == "vfork_done":
        from forklab.kernel.fork import vfork_wait_killed  # fork.py imports this module

        vfork_wait_killed(k, t)
    wake_up_state(k, t, state | TASK_INTERRUPTIBLE)


def signal_wake_up(k: KernelState, t: Task, fatal: bool) -> None:
    """signal_wake_up_state with TASK_WAKEKILL for a fatal signal (include/linux/sched/signal.h:384-387)."""
    signal_wake_up_state(k, t, TASK_WAKEKILL if fatal else TASK_RUNNING)


def _needs_user_mode_return(t: Task) -> bool:
    """``t`` has work that cannot wait for its next syscall: a stop, a continue to report, or death
    (the model's stand-in for TIF_SIGPENDING work a woken task runs at once, kernel/signal.c:759-770)."""
    sig, sighand = t.signal, t.sighand
    assert sig is not None and sighand is not None
    if t.jobctl & JOBCTL_STOP_PENDING or sig.flags & SIGNAL_CLD_MASK or signal_group_exit(sig):
        return True
    ready = (t.pending.signal | sig.shared_pending.signal) & ~t.blocked
    while ready:  # NOTE: visits only the set bits, lowest first, where the plain test walks all _NSIG signals
        bit = ready & -ready
        s = bit.bit_length()
        if sighand.action[s - 1].sa_handler == SIG_DFL and s not in SIG_KERNEL_IGNORE:
            return True
        ready ^= bit
    return False


def return_to_user_mode_now(k: KernelState, signal: SignalStruct) -> None:
    """Run the return to user mode of each thread of the group that is not in a syscall, runnable and has
    urgent work, as kick_process or the wake-up makes it happen (kernel/signal.c:759-770); see the module
    docstring."""
    if signal_group_exit(signal) and any(th.signal is signal for th in k.in_syscall):
        return  # the thread in the syscall takes the group down at its end
    for th in list(signal.thread_head):
        if th in k.in_syscall or th.state != TASK_RUNNING or th.exit_state \
                or th.flags & PF_EXITING or not _needs_user_mode_return(th):
            continue
        # imported only for a thread with work: a function-level import costs about 0.7 us per call
        from forklab.arch.x86.entry.common import prepare_exit_to_usermode  # the entry code imports this module
        from forklab.arch.x86.kernel.signal import do_signal  # it imports this module

        saved = k.current
        k.current = th
        k.in_syscall.append(th)
        try:
            if signal.flags & SIGNAL_CLD_MASK:
                do_signal(k, th)  # a thread woken from its stop resumes in get_signal, at relock
            prepare_exit_to_usermode(k, th)
        except TaskKilled:
            pass
        finally:
            k.in_syscall.pop()
            k.current = saved


# --- prepare, queue, complete -------------------------------------------------------------------------


def prepare_signal(k: KernelState, sig: int, p: Task, force: bool) -> bool:
    """The generation-time effects of stop and continue signals; False if ``sig`` is to be dropped
    (kernel/signal.c:899-962)."""
    signal = p.signal
    assert signal is not None
    if signal.flags & (SIGNAL_GROUP_EXIT | SIGNAL_GROUP_COREDUMP):
        if not signal.flags & SIGNAL_GROUP_EXIT:
            return sig == SIGKILL  # a core dump in progress takes only SIGKILL (kernel/signal.c:906-907)
    elif sig in SIG_KERNEL_STOP:
        flush = sigmask(SIGCONT)  # a stop signal removes SIGCONT from every queue (kernel/signal.c:915-918)
        flush_sigqueue_mask(flush, signal.shared_pending)
        for t in _threads_from(p):
            flush_sigqueue_mask(flush, t.pending)
    elif sig == SIGCONT:
        _prepare_sigcont(k, p, signal)
    return not sig_ignored(p, sig, force)


def _prepare_sigcont(k: KernelState, p: Task, signal: SignalStruct) -> None:
    """SIGCONT: flush stop signals, cancel the stop, wake the stopped threads, leave the CLD_ report for
    get_signal (kernel/signal.c:919-958)."""
    flush = sum(sigmask(s) for s in SIG_KERNEL_STOP)
    flush_sigqueue_mask(flush, signal.shared_pending)
    for t in _threads_from(p):
        flush_sigqueue_mask(flush, t.pending)
        task_clear_jobctl_pending(t, JOBCTL_STOP_PENDING)
        if t.ptrace & PT_SEIZED:
            raise Unmodelled("SIGCONT to a PTRACE_SEIZEd task (ptrace_trap_notify) is not modelled")
        wake_up_state(k, t, __TASK_STOPPED)
    why = 0
    if signal.flags & SIGNAL_STOP_STOPPED:
        why |= SIGNAL_CLD_CONTINUED
    elif signal.group_stop_count:
        why |= SIGNAL_CLD_STOPPED
    if why:
        signal_set_stop_flags(signal, why | SIGNAL_STOP_CONTINUED)
        signal.group_stop_count = 0
        signal.group_exit_code = 0
    if k.listeners:
        k.trace("prepare_signal", "kernel/signal.c:919", f"SIGCONT to group of {p.pid}, report {why:#x}")


def wants_signal(k: KernelState, sig: int, p: Task) -> bool:
    """``p`` can take ``sig`` now: not blocked, not exiting, not stopped, and running or without another
    pending signal (kernel/signal.c:972-987)."""
    if p.blocked & sigmask(sig):
        return False
    if p.flags & PF_EXITING:
        return False
    if sig == SIGKILL:
        return True
    if p.state & (__TASK_STOPPED | __TASK_TRACED):  # task_is_stopped_or_traced
        return False
    return p in k.in_syscall or not _signal_pending_besides(p, sig)  # task_curr: running tasks are in a syscall


def _signal_pending_besides(t: Task, sig: int) -> bool:
    """TIF_SIGPENDING as it was before ``sig`` was queued: the model computes the flag from the queues, where
    ``sig`` already is when complete_signal asks (kernel/signal.c:986, 154-172)."""
    assert t.signal is not None
    queued = (t.pending.signal | t.signal.shared_pending.signal) & ~sigmask(sig)
    return bool(t.jobctl & (JOBCTL_PENDING_MASK | JOBCTL_TRAP_FREEZE)) or bool(queued & ~t.blocked) \
        or bool(queued & sigmask(SIGKILL))


def complete_signal(k: KernelState, sig: int, p: Task, kind: int) -> None:
    """Pick a thread to take the queued signal and wake it; a fatal one takes the whole group down
    (kernel/signal.c:989-1063)."""
    signal = p.signal
    assert signal is not None
    if wants_signal(k, sig, p):
        t = p
    elif kind == PIDTYPE_PID or thread_group_empty(p):
        return
    else:
        # NOTE: a released curr_target would be a bug in __exit_signal (kernel/exit.c:150-151); start at p then.
        start = signal.curr_target if signal.curr_target in signal.thread_head else p
        assert start is not None
        willing = [th for th in _threads_from(start) if wants_signal(k, sig, th)]
        if not willing:
            return
        t = signal.curr_target = willing[0]
    if sig_fatal(p, sig) and not signal.flags & SIGNAL_GROUP_EXIT and (sig == SIGKILL or not p.ptrace) \
            and sig not in SIG_KERNEL_COREDUMP:
        signal.flags = SIGNAL_GROUP_EXIT  # kernel/signal.c:1043-1059: the whole group dies
        signal.group_exit_code = sig
        signal.group_stop_count = 0
        for th in _threads_from(p):
            task_clear_jobctl_pending(th, JOBCTL_PENDING_MASK)
            th.pending.signal |= sigmask(SIGKILL)
            signal_wake_up(k, th, fatal=True)
        return
    signal_wake_up(k, t, fatal=sig == SIGKILL)


def __send_signal(k: KernelState, sig: int, info: KernelSiginfo, t: Task, kind: int, force: bool) -> None:
    """prepare_signal, then queue and complete; the target's threads not in a syscall act on it now
    (kernel/signal.c:1070-1181)."""
    assert t.signal is not None
    if prepare_signal(k, sig, t, force):
        _queue_signal(k, sig, info, t, kind)
    return_to_user_mode_now(k, t.signal)


def _queue_signal(k: KernelState, sig: int, info: KernelSiginfo, t: Task, kind: int) -> None:
    """Queue ``sig`` once (a legacy signal already pending is not queued again), note it for forks in progress,
    complete it (kernel/signal.c:1083-1181)."""
    assert t.signal is not None
    pending = t.signal.shared_pending if kind != PIDTYPE_PID else t.pending
    if sig < SIGRTMIN and pending.signal & sigmask(sig):  # legacy_queue (kernel/signal.c:1065-1068)
        return
    if sig != SIGKILL:  # no siginfo is queued for SIGKILL (kernel/signal.c:1096-1097)
        pending.list.append(_queued_siginfo(k, sig, info, t))
    pending.signal |= sigmask(sig)
    if kind > PIDTYPE_TGID:
        _delay_for_forks(t.signal, sig)
    if k.listeners:
        k.trace("send_signal", "kernel/signal.c:1070", f"sig {sig} to {t.pid}")
    complete_signal(k, sig, t, kind)


def _queued_siginfo(k: KernelState, sig: int, info: KernelSiginfo, t: Task) -> SigQueue:
    """The siginfo a queued entry records: the sender's ids for SEND_SIG_NOINFO, SI_KERNEL for SEND_SIG_PRIV
    (kernel/signal.c:1116-1143)."""
    if isinstance(info, SigQueue):
        return info
    if info is SEND_SIG_PRIV:
        return SigQueue(sig, SI_KERNEL, 0, 0)
    current = _current(k)
    assert current.cred is not None and t.cred is not None and t.cred.user_ns is not None
    return SigQueue(sig, SI_USER, __task_pid_nr_ns(current, PIDTYPE_TGID, task_active_pid_ns(t)),
                    from_kuid_munged(t.cred.user_ns, current.cred.uid))


def _delay_for_forks(signal: SignalStruct, sig: int) -> None:
    """Let a multiprocess signal appear after on-going forks; never both a stop and SIGCONT (kernel/signal.c:1163-1176)."""
    for delayed in signal.multiprocess:
        if sig == SIGCONT:
            delayed.signal &= ~sum(sigmask(s) for s in SIG_KERNEL_STOP)
        elif sig in SIG_KERNEL_STOP:
            delayed.signal &= ~sigmask(SIGCONT)
        delayed.signal |= sigmask(sig)


def _current(k: KernelState) -> Task:
    """The task a send runs as: ``current`` (kernel/signal.c:1216, 1236 read it)."""
    if k.current is None:
        raise InternalError("a user-space send outside any syscall has no current task")
    return k.current


def send_signal(k: KernelState, sig: int, t: Task, kind: int, sender: Task | None = None,
                info: KernelSiginfo = SEND_SIG_NOINFO) -> None:
    """Decide ``force`` (a namespace init must take SIGKILL/SIGSTOP from the kernel or an ancestor namespace) and
    fix the siginfo's ids for the target, then queue (kernel/signal.c:1208-1242).

    The kernel's ``send_signal(sig, info, t, type)``; ``sender`` is its ``current`` (default ``k.current``).
    """

    saved = k.current
    if sender is not None:
        k.current = sender
    try:
        force = False
        if info is SEND_SIG_NOINFO:
            force = not __task_pid_nr_ns(_current(k), PIDTYPE_PID, task_active_pid_ns(t))
        elif info is SEND_SIG_PRIV:
            force = True
        elif isinstance(info, SigQueue) and has_si_pid_and_uid(info):
            info = _siginfo_for_target(k, info, t)
            force = info.si_code == SI_KERNEL
            if not __task_pid_nr_ns(_current(k), PIDTYPE_PID, task_active_pid_ns(t)):
                info = replace(info, si_pid=0)  # from an ancestor pid namespace (kernel/signal.c:1236-1239)
                force = True
        __send_signal(k, sig, info, t, kind, force)
    finally:
        k.current = saved


def _siginfo_for_target(k: KernelState, info: SigQueue, t: Task) -> SigQueue:
    """si_uid as the target's user namespace sees the sender's uid (kernel/signal.c:1224-1230)."""

    current = _current(k)
    assert current.cred is not None and t.cred is not None and t.cred.user_ns is not None
    if current.cred.user_ns is t.cred.user_ns or current.cred.user_ns is None:
        return info
    kuid = make_kid(current.cred.user_ns, "uid_map", info.si_uid)
    return replace(info, si_uid=DEFAULT_OVERFLOWUID if kuid is None else from_kuid_munged(t.cred.user_ns, kuid))


def do_send_sig_info(k: KernelState, sig: int, info: KernelSiginfo, p: Task, kind: int) -> None:
    """send_signal under the target's siglock; ESRCH once its sighand is gone (kernel/signal.c:1283-1295)."""
    if p.sighand is None:  # lock_task_sighand fails for a released task
        raise kerr(errno.ESRCH, f"task {p.pid} has been released", "kernel/signal.c:1287")
    send_signal(k, sig, p, kind, info=info)


def send_sig_info(k: KernelState, sig: int, info: KernelSiginfo, p: Task) -> None:
    """A kernel send to one task (PIDTYPE_PID); EINVAL for a bad signal number (kernel/signal.c:1600-1610)."""
    if not valid_signal(sig):
        raise kerr(errno.EINVAL, f"signal {sig} is not a valid signal", "kernel/signal.c:1607")
    do_send_sig_info(k, sig, info, p, PIDTYPE_PID)


def send_sig(k: KernelState, sig: int, p: Task, priv: int) -> None:
    """send_sig_info with SEND_SIG_PRIV if ``priv`` else SEND_SIG_NOINFO (kernel/signal.c:1612-1620)."""
    send_sig_info(k, sig, SEND_SIG_PRIV if priv else SEND_SIG_NOINFO, p)


def force_sig_info_to_task(k: KernelState, info: SigQueue, t: Task) -> None:
    """A signal that cannot be blocked or ignored: a blocked or ignored one is unblocked and reset to SIG_DFL; a
    default action clears SIGNAL_UNKILLABLE, so even an init dies of it (kernel/signal.c:1308-1337)."""
    sig = info.si_signo
    assert t.sighand is not None and t.signal is not None
    action = t.sighand.action[sig - 1]
    blocked = bool(t.blocked & sigmask(sig))
    if blocked or action.sa_handler == SIG_IGN:
        t.sighand.set_action(sig - 1, replace(action, sa_handler=SIG_DFL))
        t.blocked &= ~sigmask(sig)  # recalc_sigpending_and_wake: the send below wakes it
    if t.sighand.action[sig - 1].sa_handler == SIG_DFL and not t.ptrace:
        t.signal.flags &= ~SIGNAL_UNKILLABLE
    send_signal(k, sig, t, PIDTYPE_PID, info=info)


def force_sig_fault(k: KernelState, t: Task, sig: int, addr: int) -> None:
    """A synchronous fault signal, SEGV_MAPERR-style code, forced on ``t`` (kernel/signal.c:1679-1686, 1656-1677).

    The model's siginfo has no si_addr: the address rides in ``si_status``.
    """
    force_sig_info_to_task(k, SigQueue(sig, SEGV_MAPERR, 0, 0, addr), t)


def force_sig(k: KernelState, current: Task, sig: int) -> None:
    """Force ``sig`` on ``current`` with an SI_KERNEL siginfo (kernel/signal.c:1623-1634)."""
    force_sig_info_to_task(k, SigQueue(sig, SI_KERNEL, 0, 0), current)


def force_sigsegv(k: KernelState, current: Task, sig: int) -> None:
    """Things went south while handling ``sig``: force SIGSEGV, first resetting a SIGSEGV handler so that it is
    not entered again (kernel/signal.c:1643-1651)."""
    assert current.sighand is not None
    if sig == SIGSEGV:
        action = current.sighand.action[sig - 1]
        current.sighand.set_action(sig - 1, replace(action, sa_handler=SIG_DFL))
    force_sig(k, current, SIGSEGV)


def zap_other_threads(k: KernelState, p: Task) -> int:
    """SIGKILL every other live thread of ``p``'s group and cancel its stop; returns how many threads
    there are besides ``p`` (kernel/signal.c:1347-1366)."""
    assert p.signal is not None
    p.signal.group_stop_count = 0
    count = 0
    for t in _threads_from(p)[1:]:  # while_each_thread(p, t)
        task_clear_jobctl_pending(t, JOBCTL_PENDING_MASK)
        count += 1
        if t.exit_state:
            continue
        t.pending.signal |= sigmask(SIGKILL)
        signal_wake_up(k, t, fatal=True)
    return count


# --- permission and group sends -------------------------------------------------------------------


def kill_ok_by_cred(k: KernelState, t: Task) -> bool:
    """The sender's real or effective uid is the target's real or saved uid, or it has CAP_KILL over
    the target's user namespace (kernel/signal.c:811-822)."""

    current = _current(k)
    cred, tcred = current.cred, t.cred
    assert cred is not None and tcred is not None and tcred.user_ns is not None
    return cred.euid in (tcred.suid, tcred.uid) or cred.uid in (tcred.suid, tcred.uid) \
        or ns_capable(current, tcred.user_ns, CAP_KILL)


def check_kill_permission(k: KernelState, sig: int, info: KernelSiginfo, t: Task) -> None:
    """EINVAL for a bad signal; for a send from user space EPERM unless same group, matching uid, CAP_KILL or
    SIGCONT within the session (kernel/signal.c:827-861)."""
    if not valid_signal(sig):
        raise kerr(errno.EINVAL, f"signal {sig} is not a valid signal", "kernel/signal.c:833")
    if not si_fromuser(info):
        return
    current = _current(k)
    if same_thread_group(current, t) or kill_ok_by_cred(k, t):
        return
    if sig == SIGCONT:
        sid = task_session(t)
        if sid is None or sid is task_session(current):
            return
    raise kerr(errno.EPERM, "the sender has neither a matching uid nor CAP_KILL (nor, for SIGCONT, the same session)",
               "kernel/signal.c:856")


def group_send_sig_info(k: KernelState, sig: int, info: KernelSiginfo, p: Task, kind: int) -> None:
    """Check permission, then send unless ``sig`` is 0, the existence probe (kernel/signal.c:1403-1416)."""
    check_kill_permission(k, sig, info, p)
    if sig:
        do_send_sig_info(k, sig, info, p, kind)


def _kill_pgrp_error(k: KernelState, sig: int, info: KernelSiginfo, pgrp: Pid | None) -> KernelError | None:
    """Send to every process of ``pgrp``: None if any send succeeded, else the last failure, ESRCH for an
    empty group (kernel/signal.c:1423-1436)."""
    retval: KernelError | None = kerr(errno.ESRCH, "no process in the process group", "kernel/signal.c:1429")
    success = False
    for p in list(pgrp.tasks[PIDTYPE_PGID]) if pgrp is not None else []:  # do_each_pid_task
        try:
            group_send_sig_info(k, sig, info, p, PIDTYPE_PGID)
            retval = None
            success = True
        except KernelError as err:
            retval = err
    return None if success else retval


def __kill_pgrp_info(k: KernelState, sig: int, info: KernelSiginfo, pgrp: Pid | None) -> int:
    """Send ``sig`` to a process group: 0 if any process got it, else -errno of the last failure
    (kernel/signal.c:1423-1436)."""
    err = _kill_pgrp_error(k, sig, info, pgrp)
    return 0 if err is None else -(err.errno or errno.ESRCH)


def kill_pgrp(k: KernelState, pid: Pid, sig: int, priv: int) -> int:
    """__kill_pgrp_info with SEND_SIG_PRIV or SEND_SIG_NOINFO (kernel/signal.c:1784-1793)."""
    return __kill_pgrp_info(k, sig, SEND_SIG_PRIV if priv else SEND_SIG_NOINFO, pid)


def kill_pid_info(k: KernelState, sig: int, info: KernelSiginfo, pid: Pid | None) -> None:
    """Signal the process of the task with struct pid ``pid`` (any of its thread ids) as a whole
    (kernel/signal.c:1438-1458)."""
    p = pid_task(pid, PIDTYPE_PID)
    if p is None:
        raise kerr(errno.ESRCH, "no task has that pid", "kernel/signal.c:1440")
    group_send_sig_info(k, sig, info, p, PIDTYPE_TGID)


def prepare_kill_siginfo(k: KernelState, sig: int) -> SigQueue:
    """SI_USER with the caller's tgid and uid as its own namespaces number them (kernel/signal.c:3624-3632)."""
    current = _current(k)
    assert current.cred is not None and current.cred.user_ns is not None
    return SigQueue(sig, SI_USER, pid_vnr(current, task_tgid(current)),
                    from_kuid_munged(current.cred.user_ns, current.cred.uid))


def kill_something_info(k: KernelState, current: Task, sig: int, pid: int) -> int:
    """kill(2): one process (by any thread id), the caller's or another process group, or every process
    (kernel/signal.c:3639-3646, 1556-1594). SYSCALL_DEFINE2(kill)'s prepare_kill_siginfo is done here."""
    from forklab.kernel.exit import INT_MIN  # exit.py imports this module

    info = prepare_kill_siginfo(k, sig)
    if pid > 0:
        kill_pid_info(k, sig, info, find_vpid(current, pid))
        return 0
    if pid == INT_MIN:
        raise kerr(errno.ESRCH, "pid INT_MIN names no process", "kernel/signal.c:1569")
    if pid != -1:
        pgrp = find_vpid(current, -pid) if pid else task_pgrp(current)
        err = _kill_pgrp_error(k, sig, info, pgrp)
    else:
        err = _kill_every_process(k, current, sig, info)
    if err is not None:
        raise err
    return 0


def _kill_every_process(k: KernelState, current: Task, sig: int, info: SigQueue) -> KernelError | None:
    """kill(-1): every process the caller's namespace numbers above 1 except its own; EPERM never decides the
    result, ESRCH if there was no process to try (kernel/signal.c:1576-1589)."""

    retval: KernelError | None = None
    count = 0
    for p in list(k.tasks):  # for_each_process
        if pid_vnr(current, p.thread_pid) > 1 and not same_thread_group(p, current):
            count += 1
            try:
                group_send_sig_info(k, sig, info, p, PIDTYPE_MAX)
                retval = None
            except KernelError as err:
                if err.errno != errno.EPERM:
                    retval = err
    if not count:
        return kerr(errno.ESRCH, "no process other than init and the caller", "kernel/signal.c:1589")
    return retval


# --- tgkill, tkill, pidfd_send_signal -----------------------------------------------------------------


def do_send_specific(k: KernelState, tgid: int, pid: int, sig: int, info: SigQueue) -> int:
    """Signal one thread, of thread group ``tgid`` if it is positive; ESRCH, EINVAL or EPERM
    (kernel/signal.c:3765-3793)."""
    current = _current(k)
    p = find_task_by_vpid(current, pid)
    if p is None or not (tgid <= 0 or pid_vnr(current, task_tgid(p)) == tgid):
        raise kerr(errno.ESRCH, f"no thread {pid}" + (f" in thread group {tgid}" if tgid > 0 else ""),
                   "kernel/signal.c:3769")
    check_kill_permission(k, sig, info, p)
    if sig:
        try:
            do_send_sig_info(k, sig, info, p, PIDTYPE_PID)
        except KernelError as err:
            if err.errno != errno.ESRCH:  # a task dying meanwhile counts as signalled (kernel/signal.c:3786-3787)
                raise
    return 0


def do_tkill(k: KernelState, current: Task, tgid: int, pid: int, sig: int) -> int:
    """SI_TKILL from the caller's tgid and uid, to one thread (kernel/signal.c:3795-3807)."""
    assert current.cred is not None and current.cred.user_ns is not None
    info = SigQueue(sig, SI_TKILL, pid_vnr(current, task_tgid(current)),
                    from_kuid_munged(current.cred.user_ns, current.cred.uid))
    return do_send_specific(k, tgid, pid, sig, info)


def sys_tgkill(k: KernelState, current: Task, tgid: int, pid: int, sig: int) -> int:
    """tgkill(2): EINVAL unless both ids are positive (kernel/signal.c:3819-3826)."""
    if pid <= 0 or tgid <= 0:
        raise kerr(errno.EINVAL, "tgkill needs a positive tgid and tid", "kernel/signal.c:3822")
    return do_tkill(k, current, tgid, pid, sig)


def sys_tkill(k: KernelState, current: Task, pid: int, sig: int) -> int:
    """tkill(2): EINVAL unless the tid is positive (kernel/signal.c:3835-3842)."""
    if pid <= 0:
        raise kerr(errno.EINVAL, "tkill needs a positive tid", "kernel/signal.c:3838")
    return do_tkill(k, current, 0, pid, sig)


def access_pidfd_pidns(current: Task, pid: Pid) -> bool:
    """The pid's namespace is the caller's or a descendant of it (kernel/signal.c:3653-3667)."""
    active = task_active_pid_ns(current)
    p: PidNamespace | None = ns_of_pid(pid)
    while p is not None and p is not active:
        p = p.parent
    return p is not None


def pidfd_to_pid(k: KernelState, file: File) -> Pid:
    """The struct pid a pidfd or a /proc/<pid> directory stands for; EBADF for any other file
    (kernel/signal.c:3684-3693)."""
    from forklab.kernel.fork import pidfd_pid  # fork.py imports this module

    try:
        return pidfd_pid(k, file)
    except KernelError:
        pass  # not a pidfd: tgid_pidfd_to_pid (fs/proc/base.c:3211-3217); the model's /proc has no <pid> dirs
    raise kerr(errno.EBADF, "the file is neither a pidfd nor a /proc/<pid> directory", "kernel/signal.c:3731")


def sys_pidfd_send_signal(k: KernelState, current: Task, pidfd: int, sig: int, info: SigInfo | None,
                          flags: int) -> int:
    """pidfd_send_signal(2): signal the process a pidfd refers to (kernel/signal.c:3713-3763)."""
    if flags:
        raise kerr(errno.EINVAL, f"flags must be 0 (got {flags:#x})", "kernel/signal.c:3722")
    f = fdget(current, pidfd)
    if f is None:
        raise kerr(errno.EBADF, f"fd {pidfd} is not open", "kernel/signal.c:3726")
    pid = pidfd_to_pid(k, f)
    if not access_pidfd_pidns(current, pid):
        raise kerr(errno.EINVAL, "the process is outside the caller's pid namespace and its descendants",
                   "kernel/signal.c:3737")
    kinfo = _pidfd_siginfo(k, current, pid, sig, info)
    kill_pid_info(k, sig, kinfo, pid)
    return 0


def _pidfd_siginfo(k: KernelState, current: Task, pid: Pid, sig: int, info: SigInfo | None) -> SigQueue:
    """The caller's siginfo, which must name ``sig`` and may carry a kernel or tkill si_code only to itself;
    else kill's (kernel/signal.c:3740-3756)."""
    if info is None:
        return prepare_kill_siginfo(k, sig)
    if sig != info.si_signo:
        raise kerr(errno.EINVAL, f"siginfo names signal {info.si_signo}, not {sig}", "kernel/signal.c:3746")
    if current.thread_pid is not pid and (info.si_code >= 0 or info.si_code == SI_TKILL):
        raise kerr(errno.EPERM, f"si_code {info.si_code} may only be sent to the caller itself",
                   "kernel/signal.c:3751")
    return SigQueue(info.si_signo, info.si_code, info.si_pid, info.si_uid, info.si_status)


# --- parent notification --------------------------------------------------------------------------


@traced
def do_notify_pidfd(k: KernelState, task: Task) -> None:
    """Wake every poller of ``task``'s pidfds: wake_up_all(&task_pid(task)->wait_pidfd) (kernel/signal.c:1894-1901)."""
    if not task.exit_state:  # WARN_ON(task->exit_state == 0)
        raise InternalError(f"do_notify_pidfd for task {task.pid}, which has not exited")
    pid = task.thread_pid
    assert pid is not None
    if pid.wait_pidfd:  # imported only when someone polls: a function-level import costs about 0.7 us per call
        from forklab.fs.select import pollwake  # fs/select.py imports this module

        for waiter in list(pid.wait_pidfd):
            pollwake(k, waiter)


@traced
def do_notify_parent(k: KernelState, tsk: Task, sig: int) -> bool:
    """Wake the pidfd pollers, tell the parent a child died: SIGCHLD or exit_signal; True if it must be
    auto-reaped (kernel/signal.c:1910-2002)."""
    from forklab.kernel.exit import __wake_up_parent  # exit.py imports this module

    do_notify_pidfd(k, tsk)  # kernel/signal.c:1927, in every profile (module docstring: pidfd wake-ups)
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
        send_signal(k, sig, parent, PIDTYPE_TGID, tsk, SigQueue(sig, code, si_pid, si_uid, status))  # current: tsk
    if k.listeners:
        k.trace("do_notify_parent", "kernel/signal.c:1910", f"child {tsk.pid} -> parent {parent.pid} sig {sig}"
                + (" (autoreap)" if autoreap else ""))
    __wake_up_parent(k, tsk, parent)
    return autoreap


@traced
def do_notify_parent_cldstop(k: KernelState, tsk: Task, for_ptracer: bool, why: int) -> None:
    """SIGCHLD with CLD_STOPPED/CLD_CONTINUED to the group leader's real parent (or the tracer) unless it ignores
    SIGCHLD or set SA_NOCLDSTOP; its waiters are woken regardless (kernel/signal.c:2017-2073)."""
    from forklab.kernel.exit import __wake_up_parent  # exit.py imports this module

    current = tsk
    if for_ptracer:
        parent = tsk.parent
    else:
        assert tsk.group_leader is not None
        tsk = tsk.group_leader
        parent = tsk.real_parent
    assert parent is not None and parent.sighand is not None and parent.cred is not None
    assert parent.cred.user_ns is not None and tsk.cred is not None and tsk.signal is not None
    status = {CLD_CONTINUED: SIGCONT, CLD_STOPPED: tsk.signal.group_exit_code & 0x7F,
              CLD_TRAPPED: tsk.exit_code & 0x7F}[why]
    info = SigQueue(SIGCHLD, why, pid_nr_ns(tsk.thread_pid, task_active_pid_ns(parent)),
                    from_kuid_munged(parent.cred.user_ns, tsk.cred.uid), status)
    chld = parent.sighand.action[SIGCHLD - 1]
    if chld.sa_handler != SIG_IGN and not chld.sa_flags & SA_NOCLDSTOP:
        send_signal(k, SIGCHLD, parent, PIDTYPE_TGID, current, info)  # __group_send_sig_info
    if k.listeners:
        k.trace("do_notify_parent_cldstop", "kernel/signal.c:2017", f"leader {tsk.pid} -> parent {parent.pid} "
                f"why {why}")
    __wake_up_parent(k, tsk, parent)


# --- the stop -------------------------------------------------------------------------------------


@traced
def do_signal_stop(k: KernelState, current: Task, signr: int) -> bool:
    """Start a group stop with ``signr`` or join the one pending, then stop; False if it was cancelled
    (kernel/signal.c:2304-2420)."""
    sig = current.signal
    assert sig is not None
    if not current.jobctl & JOBCTL_STOP_PENDING:
        if not current.jobctl & JOBCTL_STOP_DEQUEUED or signal_group_exit(sig):
            return False
        _start_group_stop(k, current, sig, signr)
    if current.ptrace:
        raise Unmodelled(f"task {current.pid} is traced: its group stop is a JOBCTL_TRAP_STOP ptrace trap, "
                         "which is not modelled (kernel/signal.c:2410-2418)")
    notify = CLD_STOPPED if task_participate_group_stop(current) else 0
    _set_special_state_stopped(k, current)
    if notify:
        do_notify_parent_cldstop(k, current, False, notify)
    return_to_user_mode_now(k, sig)  # the threads just asked to stop do so now (model)
    return True


def _start_group_stop(k: KernelState, current: Task, sig: SignalStruct, signr: int) -> None:
    """Record ``signr`` and ask every thread not yet stopped to stop, counting them (kernel/signal.c:2338-2361)."""
    gstop = JOBCTL_STOP_PENDING | JOBCTL_STOP_CONSUME
    if not sig.flags & SIGNAL_STOP_STOPPED:
        sig.group_exit_code = signr
    sig.group_stop_count = 0
    if task_set_jobctl_pending(current, signr | gstop):
        sig.group_stop_count += 1
    for t in _threads_from(current)[1:]:  # while_each_thread(current, t)
        if not t.state & __TASK_STOPPED and task_set_jobctl_pending(t, signr | gstop):
            sig.group_stop_count += 1
            if t.ptrace & PT_SEIZED:
                raise Unmodelled("a group stop of a PTRACE_SEIZEd thread (ptrace_trap_notify) is not modelled")
            signal_wake_up(k, t, fatal=False)
    if k.listeners:
        k.trace("do_signal_stop", "kernel/signal.c:2338", f"group stop by {current.pid} with {signr}: "
                f"{sig.group_stop_count} to stop", tid=current.pid)


def _set_special_state_stopped(k: KernelState, current: Task) -> None:
    """set_special_state(TASK_STOPPED) and the schedule away from it (kernel/signal.c:2376, 2396)."""
    set_current_state_sleep(k, current, TASK_STOPPED, "group stop")


@traced
def exit_signals(k: KernelState, tsk: Task) -> None:
    """Set PF_EXITING; hand shared signals this thread can no longer take to others and take part in a pending
    group stop (kernel/signal.c:2815-2865)."""
    sig = tsk.signal
    assert sig is not None
    if thread_group_empty(tsk) or signal_group_exit(sig):
        tsk.flags |= PF_EXITING
        return
    tsk.flags |= PF_EXITING
    if not signal_pending(tsk):
        return
    retarget_shared_pending(k, tsk, ~tsk.blocked & SIGSET_MASK)
    if tsk.jobctl & JOBCTL_STOP_PENDING and task_participate_group_stop(tsk):
        do_notify_parent_cldstop(k, tsk, False, CLD_STOPPED)


def retarget_shared_pending(k: KernelState, tsk: Task, which: int) -> None:
    """Wake other threads to take the shared signals in ``which`` that ``tsk`` will not (kernel/signal.c:2788-2813)."""
    assert tsk.signal is not None
    retarget = tsk.signal.shared_pending.signal & which
    for t in _threads_from(tsk)[1:]:
        if not retarget:
            break
        if t.flags & PF_EXITING or not retarget & ~t.blocked:
            continue
        retarget &= t.blocked
        if not signal_pending(t) or t.state & TASK_INTERRUPTIBLE:  # an interruptible sleeper has no
            signal_wake_up(k, t, fatal=False)  # TIF_SIGPENDING (it would not sleep, kernel/sched/core.c:4037)


# --- dequeue and get_signal -----------------------------------------------------------------------


def next_signal(pending: Sigpending, blocked: int) -> int:
    """The lowest deliverable signal, synchronous (fault) signals first; 0 if none (kernel/signal.c:208-242)."""
    x = pending.signal & ~blocked
    if not x:
        return 0
    if x & SYNCHRONOUS_MASK:  # the first word holds every signal on x86-64
        x &= SYNCHRONOUS_MASK
    return (x & -x).bit_length()


def collect_signal(sig: int, pending: Sigpending) -> SigQueue:
    """Take the first queued siginfo of ``sig``; the bit stays while another is queued (kernel/signal.c:567-606)."""
    first = next((q for q in pending.list if q.si_signo == sig), None)
    if first is None or sum(1 for q in pending.list if q.si_signo == sig) == 1:
        pending.signal &= ~sigmask(sig)
    if first is None:
        return SigQueue(sig, SI_USER, 0, 0)  # no siginfo was queued (SIGKILL, or lost)
    pending.list.remove(first)
    return first


def __dequeue_signal(pending: Sigpending, blocked: int) -> SigQueue | None:
    """Take the next signal off one queue, with its siginfo (kernel/signal.c:612-622)."""
    sig = next_signal(pending, blocked)
    return collect_signal(sig, pending) if sig else None


def dequeue_signal(tsk: Task, blocked: int) -> SigQueue | None:
    """Dequeue from the thread's own queue, then the group's; mark a dequeued stop signal
    (kernel/signal.c:628-700)."""
    assert tsk.signal is not None
    info = __dequeue_signal(tsk.pending, blocked)
    if info is None:
        info = __dequeue_signal(tsk.signal.shared_pending, blocked)
    if info is not None and info.si_signo in SIG_KERNEL_STOP:
        tsk.jobctl |= JOBCTL_STOP_DEQUEUED
    return info


def dequeue_synchronous_signal(tsk: Task) -> SigQueue | None:
    """The first queued fault signal with a kernel si_code, ahead of everything else (kernel/signal.c:706-746)."""
    pending = tsk.pending
    if not pending.signal & ~tsk.blocked & SYNCHRONOUS_MASK:
        return None
    sync = next((q for q in pending.list if q.si_code > SI_USER and sigmask(q.si_signo) & SYNCHRONOUS_MASK), None)
    if sync is None:
        return None
    if sum(1 for q in pending.list if q.si_signo == sync.si_signo) == 1:
        pending.signal &= ~sigmask(sync.si_signo)
    pending.list.remove(sync)
    return sync


class _Relock(enum.Enum):
    """get_signal's ``goto relock`` (kernel/signal.c:2545)."""

    RELOCK = 0


@traced
def get_signal(k: KernelState, task: Task) -> KSignal | None:
    """Report continues, then dequeue signals until one has a handler; ignore, stop or die on the others
    (kernel/signal.c:2526-2746).

    Returns the signal to hand to a user handler, or None when nothing is left or the task
    stopped (it resumes at ``relock`` when it next runs). A fatal signal ends the whole
    group (``do_group_exit``) and raises ``TaskKilled``.
    """
    signal = task.signal
    assert signal is not None
    while True:  # relock:
        if signal.flags & SIGNAL_CLD_MASK:
            _report_cld(k, task, signal)
            continue
        if signal_group_exit(signal):
            task.pending.signal &= ~sigmask(SIGKILL)
            _fatal(k, task, SigQueue(SIGKILL))
        got = _get_signal_loop(k, task)
        if got is not _Relock.RELOCK:
            return got
        if task.state != TASK_RUNNING:
            return None  # stopped: it continues at relock once woken


def _report_cld(k: KernelState, task: Task, signal: SignalStruct) -> None:
    """A woken thread reports the CLD_CONTINUED (or CLD_STOPPED) SIGCONT left in SIGNAL_CLD_MASK
    (kernel/signal.c:2552-2580)."""
    why = CLD_CONTINUED if signal.flags & SIGNAL_CLD_CONTINUED else CLD_STOPPED
    signal.flags &= ~SIGNAL_CLD_MASK
    do_notify_parent_cldstop(k, task, False, why)
    leader = task.group_leader
    assert leader is not None and leader.real_parent is not None and leader.parent is not None
    if leader.real_parent.signal is not leader.parent.signal:  # ptrace_reparented(current->group_leader)
        do_notify_parent_cldstop(k, leader, True, why)


def _get_signal_loop(k: KernelState, task: Task) -> KSignal | _Relock | None:
    """get_signal's for (;;): join a pending stop, dequeue, and apply the action or default action
    (kernel/signal.c:2593-2741)."""
    signal, sighand = task.signal, task.sighand
    assert signal is not None and sighand is not None
    while True:
        if task.jobctl & JOBCTL_STOP_PENDING and do_signal_stop(k, task, 0):
            return _Relock.RELOCK
        if task.jobctl & (JOBCTL_TRAP_MASK | JOBCTL_TRAP_FREEZE):
            raise Unmodelled(f"task {task.pid} has a ptrace or freezer jobctl trap, which is not modelled")
        info = dequeue_synchronous_signal(task) or dequeue_signal(task, task.blocked)
        if info is None:
            return None
        signr = info.si_signo
        if k.listeners:  # where a tracer sees it (ptrace_signal, kernel/signal.c:2635)
            k.decide("kernel/signal.c:2629", f"dequeued signal {signr} (si_code {info.si_code}, si_pid {info.si_pid})",
                     ("si_signo", signr), ("si_code", info.si_code), ("si_pid", info.si_pid), ("si_uid", info.si_uid),
                     ("si_status", info.si_status), tid=task.pid)
        ka = sighand.action[signr - 1]
        if ka.sa_handler == SIG_IGN:  # kernel/signal.c:2645
            _note_delivery(k, task, signr, "ignored")
            continue
        if ka.sa_handler != SIG_DFL:  # kernel/signal.c:2647-2654: SA_ONESHOT resets only the handler
            if ka.sa_flags & SA_RESETHAND:
                sighand.set_action(signr - 1, replace(ka, sa_handler=SIG_DFL))
            return KSignal(ka, info, signr)
        if signr in SIG_KERNEL_IGNORE or (signal.flags & SIGNAL_UNKILLABLE and signr not in SIG_KERNEL_ONLY):
            _note_delivery(k, task, signr, "ignored")  # kernel/signal.c:2660, 2673
            continue
        if signr in SIG_KERNEL_STOP:
            stopped = _default_stop(k, task, info)
            if stopped is None:
                continue
            return stopped
        _fatal(k, task, info)


def _default_stop(k: KernelState, task: Task, info: SigQueue) -> _Relock | None:
    """A stop signal's default action: none in an orphaned pgrp except for SIGSTOP, else the group stop;
    None when the stop was cancelled (kernel/signal.c:2677-2708)."""
    from forklab.kernel.exit import is_current_pgrp_orphaned  # exit.py imports this module

    if info.si_signo != SIGSTOP and is_current_pgrp_orphaned(k, task):
        _note_delivery(k, task, info.si_signo, "discarded (orphaned process group)")
        return _Relock.RELOCK
    if do_signal_stop(k, task, info.si_signo):
        _note_delivery(k, task, info.si_signo, "stopped")
        return _Relock.RELOCK
    return None


def _fatal(k: KernelState, task: Task, info: SigQueue) -> NoReturn:
    """The default action kills the group, dumping core first if the signal asks for it (kernel/signal.c:2711-2740)."""
    from forklab.fs.coredump import do_coredump  # fs/coredump.py calls back into this module
    from forklab.kernel.exit import do_group_exit  # exit.py imports this module

    task.flags |= PF_SIGNALED
    if info.si_signo in SIG_KERNEL_COREDUMP:
        do_coredump(k, task, info)
    do_group_exit(k, task, info.si_signo)
    sig = task.exit_code & 0x7F or SIGKILL
    k.signals_delivered.append((task.pid, sig, "killed"))
    if k.listeners:
        k.trace("get_signal", "kernel/signal.c:2711", f"sig {sig}: kills task {task.pid}", tid=task.pid)
    raise TaskKilled(task.pid, sig)


def _note_delivery(k: KernelState, task: Task, sig: int, how: str) -> None:
    """Record one delivery for ``signals_delivered`` and the trace (kernel/signal.c:2643, trace_signal_deliver)."""
    k.signals_delivered.append((task.pid, sig, how))
    if k.listeners:
        k.trace("get_signal", "kernel/signal.c:2643", f"sig {sig}: {how}", tid=task.pid)


def signal_delivered(k: KernelState, task: Task, ksig: KSignal) -> None:
    """A handler's frame is set up: block ``sa_mask`` and, without SA_NODEFER, the signal until the frame's
    rt_sigreturn; the signal counts as delivered (kernel/signal.c:2758-2773)."""
    blocked = task.blocked | ksig.ka.sa_mask
    if not ksig.ka.sa_flags & SA_NODEFER:
        blocked |= sigmask(ksig.sig)
    set_current_blocked(k, task, blocked)
    _note_delivery(k, task, ksig.sig, f"handler {ksig.ka.sa_handler:#x} ran")


def signal_setup_done(k: KernelState, task: Task, ksig: KSignal) -> None:
    """The handler's frame is in place: mark the signal delivered (kernel/signal.c:2775-2781)."""
    signal_delivered(k, task, ksig)


def __set_task_blocked(k: KernelState, tsk: Task, newset: int) -> None:
    """Hand shared signals the new mask blocks to other threads, then install it (kernel/signal.c:2883-2893)."""
    if signal_pending(tsk) and not thread_group_empty(tsk):
        retarget_shared_pending(k, tsk, newset & ~tsk.blocked)
    tsk.blocked = newset  # recalc_sigpending: the model computes TIF_SIGPENDING


def __set_current_blocked(k: KernelState, current: Task, newset: int) -> None:
    """Change the blocked mask unless it is unchanged (kernel/signal.c:2908-2921)."""
    if current.blocked == newset:
        return
    __set_task_blocked(k, current, newset)


def set_current_blocked(k: KernelState, current: Task, newset: int) -> None:
    """Set the blocked mask, never blocking SIGKILL or SIGSTOP (kernel/signal.c:2902-2906)."""
    __set_current_blocked(k, current, newset & ~(sigmask(SIGKILL) | sigmask(SIGSTOP)) & SIGSET_MASK)


# --- sigaction and sigprocmask --------------------------------------------------------------------


def do_sigaction(k: KernelState, current: Task, sig: int, act: SigAction | None) -> SigAction:
    """Install a handler in the (possibly shared) table; return the old one (kernel/signal.c:3954-3993).

    Setting an action that ignores the signal discards it from every pending set of the group.
    """
    if not valid_signal(sig) or sig < 1 or (act is not None and sig in SIG_KERNEL_ONLY):
        raise kerr(errno.EINVAL, f"signal {sig} cannot take this action", "kernel/signal.c:3960")
    assert current.sighand is not None and current.signal is not None
    old = current.sighand.action[sig - 1]
    if act is not None:
        act = replace(act, sa_mask=act.sa_mask & ~(sigmask(SIGKILL) | sigmask(SIGSTOP)))
        current.sighand.set_action(sig - 1, act)
        if sig_handler_ignored(act.sa_handler, sig):
            flush_sigqueue_mask(sigmask(sig), current.signal.shared_pending)
            for t in _threads_from(current):
                flush_sigqueue_mask(sigmask(sig), t.pending)
    return old


def sigprocmask(current: Task, how: int, newset: int | None) -> int:
    """Change the blocked mask; SIGKILL and SIGSTOP cannot be blocked (kernel/signal.c:2932-2964, 3015-3040)."""
    old = current.blocked
    if newset is None:
        return old
    newset &= ~(sigmask(SIGKILL) | sigmask(SIGSTOP)) & SIGSET_MASK
    if how == SIG_BLOCK:
        current.blocked = old | newset
    elif how == SIG_UNBLOCK:
        current.blocked = old & ~newset
    elif how == SIG_SETMASK:
        current.blocked = newset
    else:
        raise kerr(errno.EINVAL, f"sigprocmask: unknown how {how}", "kernel/signal.c:2955")
    return old


# --- pause and restart_syscall ---------------------------------------------------------------------


def sys_pause(k: KernelState, current: Task) -> int:
    """pause(2): sleep in TASK_INTERRUPTIBLE until a signal is pending, then ERESTARTNOHAND (kernel/signal.c:4426-4433).

    The sleep raises ``Blocked``; the call issued again once a signal woke the task finds it pending.
    """
    if not signal_pending(current):
        set_current_state_sleep(k, current, TASK_INTERRUPTIBLE, "pause")
        raise Blocked(current.pid, "pause")
    raise kerr(ERESTARTNOHAND, "a signal is pending in pause", "kernel/signal.c:4432")


def sys_restart_syscall(k: KernelState, current: Task) -> int:
    """restart_syscall(2): run the restart block's function; do_no_restart_syscall's EINTR when none is armed
    (kernel/signal.c:2872-2881)."""
    restart = current.restart_block
    if restart.fn is None:
        raise kerr(errno.EINTR, "no restart block is armed (do_no_restart_syscall)", "kernel/signal.c:2880")
    return restart.fn(k, current)
