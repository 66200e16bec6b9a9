"""ptrace as fork sees it (kernel/ptrace.c, include/linux/ptrace.h).

A tracer that set PTRACE_O_TRACEFORK/VFORK/CLONE is attached to the new child automatically
(``ptrace_init_task``) and gets an event report. Simplification: the model records each
report in the tracee's ``ptrace_events`` list (event, message) instead of stopping the tracee
in TASK_TRACED until the tracer resumes it; PTRACE_ATTACH does not send SIGSTOP.

The tracer's exit. A zombie tracee waits for its tracer's wait (exit_notify does not autoreap
a traced task). When the tracer exits instead, forget_original_parent runs ``exit_ptrace``:
PTRACE_O_EXITKILL tracees get SIGKILL, and ``__ptrace_detach`` untraces each tracee and gives
a zombie what ptrace held back -- a thread other than the leader is released, a leader alone
in its group is reported to its real parent (and released if that parent reaps automatically
or is the tracer's own group ignoring SIGCHLD). The released tasks go on the exit's ``dead``
list, which exit_notify releases (kernel/exit.c:611-612, 680-683).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.sched import (
    PF_KTHREAD,
    PT_EXITKILL,
    PT_OPT_FLAG_SHIFT,
    PT_PTRACED,
    PT_SEIZED,
    SighandStruct,
    Task,
    TaskState,
)
from forklab.kernel.capability import ns_capable
from forklab.kernel.pid import find_task_by_vpid
from forklab.kernel.signal import (
    SEND_SIG_PRIV,
    do_notify_parent,
    same_thread_group,
    send_sig_info,
    thread_group_empty,
)
from forklab.trace import traced
from forklab.uapi import (
    CAP_SYS_PTRACE,
    PTRACE_ATTACH,
    PTRACE_DETACH,
    PTRACE_GETEVENTMSG,
    PTRACE_O_MASK,
    PTRACE_SEIZE,
    PTRACE_SETOPTIONS,
    PTRACE_TRACEME,
    SA_NOCLDWAIT,
    SIG_IGN,
    SIGCHLD,
    SIGKILL,
)

if TYPE_CHECKING:
    from forklab.state import KernelState


def pt_event_flag(event: int) -> int:
    """The ptrace flag bit that enables ``event`` (include/linux/ptrace.h:44)."""
    return 1 << (PT_OPT_FLAG_SHIFT + event)


def ptrace_event_enabled(task: Task, event: int) -> bool:
    """Whether ``task``'s tracer asked for ``event`` (include/linux/ptrace.h:129-132)."""
    return bool(task.ptrace & pt_event_flag(event))


def __ptrace_link(child: Task, new_parent: Task) -> None:
    """Make ``new_parent`` the tracer of ``child`` (kernel/ptrace.c:67-80)."""
    new_parent.ptraced.append(child)
    child.parent = new_parent


def __ptrace_unlink(child: Task) -> None:
    """Detach ``child`` from its tracer (kernel/ptrace.c:105-162)."""
    tracer = child.parent
    if tracer is not None and child in tracer.ptraced:
        tracer.ptraced.remove(child)
    child.parent = child.real_parent
    child.ptrace = 0


def ptrace_init_task(child: Task, current: Task, ptrace: bool) -> None:
    """Start the child untraced, or traced by ``current``'s tracer with its options (include/linux/ptrace.h:205-222)."""
    child.ptraced = []
    child.ptrace = 0
    child.ptrace_events = []
    child.ptrace_message = 0
    child.parent = child.real_parent
    if ptrace and current.ptrace and current.parent is not None:
        child.ptrace = current.ptrace
        __ptrace_link(child, current.parent)


def ptrace_event_pid(k: KernelState, current: Task, event: int, message: int) -> None:
    """Report ``event`` with ``message`` (the new pid, as the tracer sees it) (kernel/ptrace.c:ptrace_event_pid)."""
    current.ptrace_message = message
    current.ptrace_events.append((event, message))
    if k.listeners:
        k.trace("ptrace_event", "include/linux/ptrace.h:146", f"event {event} msg {message}")


def ptrace_attach(k: KernelState, tracer: Task, task: Task, request: int, flags: int) -> None:
    """PTRACE_ATTACH / PTRACE_SEIZE (kernel/ptrace.c:360-455)."""

    if request == PTRACE_SEIZE and flags & ~PTRACE_O_MASK:
        raise kerr(errno.EINVAL, "unknown PTRACE_O_* option", "kernel/ptrace.c:372")
    if task.flags & PF_KTHREAD or task.signal is tracer.signal:
        raise kerr(errno.EPERM, "cannot trace a kernel thread or a task of one's own thread group",
                   "kernel/ptrace.c:383")
    assert tracer.cred is not None and task.cred is not None and task.cred.user_ns is not None
    same_ids = tracer.cred.uid == task.cred.euid == task.cred.suid == task.cred.uid
    if not same_ids and not ns_capable(tracer, task.cred.user_ns, CAP_SYS_PTRACE):
        raise kerr(errno.EPERM, "ptrace_may_access refused (uids differ, no CAP_SYS_PTRACE)", "kernel/ptrace.c:392")
    if task.exit_state:
        raise kerr(errno.EPERM, "the task is exiting", "kernel/ptrace.c:405")
    if task.ptrace:
        raise kerr(errno.EPERM, "the task is already traced", "kernel/ptrace.c:407")
    task.ptrace = PT_PTRACED | (PT_SEIZED if request == PTRACE_SEIZE else 0) | (flags << PT_OPT_FLAG_SHIFT)
    __ptrace_link(task, tracer)
    if k.listeners:
        k.trace("ptrace_attach", "kernel/ptrace.c:360", f"{tracer.pid} traces {task.pid}")


def ptrace_setoptions(task: Task, data: int) -> None:
    """Replace the PTRACE_O_* options of a tracee (kernel/ptrace.c:581-612)."""
    if data & ~PTRACE_O_MASK:
        raise kerr(errno.EINVAL, "unknown PTRACE_O_* option", "kernel/ptrace.c:587")
    keep = task.ptrace & ((1 << PT_OPT_FLAG_SHIFT) - 1) | (task.ptrace & PT_SEIZED)
    task.ptrace = keep | (data << PT_OPT_FLAG_SHIFT)


def ignoring_children(sigh: SighandStruct) -> bool:
    """The tracer's children reap themselves: SIGCHLD is SIG_IGN or has SA_NOCLDWAIT (kernel/ptrace.c:499-507)."""
    chld = sigh.action[SIGCHLD - 1]
    return chld.sa_handler == SIG_IGN or bool(chld.sa_flags & SA_NOCLDWAIT)


def __ptrace_detach(k: KernelState, tracer: Task, p: Task) -> bool:
    """Untrace ``p``; a zombie tracee gets the parent notification ptrace held back, and True says it must be
    released (kernel/ptrace.c:524-548)."""
    from forklab.kernel.exit import __wake_up_parent, exit_state_advance  # exit.py imports this module

    __ptrace_unlink(p)
    if p.exit_state != TaskState.EXIT_ZOMBIE:
        return False
    dead = p.exit_signal < 0  # !thread_group_leader(p)
    if not dead and thread_group_empty(p):
        assert p.real_parent is not None and tracer.sighand is not None
        if not same_thread_group(p.real_parent, tracer):
            dead = do_notify_parent(k, p, p.exit_signal)
        elif ignoring_children(tracer.sighand):
            __wake_up_parent(k, p, tracer)
            dead = True
    if dead:
        exit_state_advance(k, p, TaskState.EXIT_DEAD, "kernel/ptrace.c:545")
    return dead


@traced
def exit_ptrace(k: KernelState, tracer: Task, dead: list[Task]) -> None:
    """The tracer exits: SIGKILL the PTRACE_O_EXITKILL tracees, detach every tracee and collect the zombies to
    release on ``dead`` (kernel/ptrace.c:580-591)."""
    for p in list(tracer.ptraced):
        if p.ptrace & PT_EXITKILL:
            send_sig_info(k, SIGKILL, SEND_SIG_PRIV, p)
        if __ptrace_detach(k, tracer, p):
            dead.insert(0, p)  # list_add(&p->ptrace_entry, dead)


def sys_ptrace(k: KernelState, current: Task, request: int, pid: int, addr: int, data: int) -> int:
    """ptrace(2) for the requests the fork path needs (kernel/ptrace.c:1238-1285)."""

    if request == PTRACE_TRACEME:
        raise kerr(errno.EINVAL, "PTRACE_TRACEME is not modelled; use PTRACE_SEIZE from the tracer",
                   "kernel/ptrace.c:1247")
    child = find_task_by_vpid(current, pid)
    if child is None:
        raise kerr(errno.ESRCH, f"no task {pid}", "kernel/ptrace.c:1255")
    if request in (PTRACE_ATTACH, PTRACE_SEIZE):
        ptrace_attach(k, current, child, request, data if request == PTRACE_SEIZE else 0)
        return 0
    if not child.ptrace or child.parent is not current:
        raise kerr(errno.ESRCH, f"task {pid} is not traced by the caller", "kernel/ptrace.c:1270")
    if request == PTRACE_SETOPTIONS:
        ptrace_setoptions(child, data)
        return 0
    if request == PTRACE_GETEVENTMSG:
        return child.ptrace_message
    if request == PTRACE_DETACH:
        __ptrace_unlink(child)
        return 0
    raise kerr(errno.EIO, f"ptrace request {request} is not modelled", "kernel/ptrace.c:1131")
