"""The syscall entry and the exit work on the way back to user mode (arch/x86/entry/common.c).

Every ``Kernel`` syscall method runs through ``do_syscall_64``: it checks that the caller can
make a syscall at all (a live, running task), advances the model clock, arms fail-nth for the
caller (``/proc/<pid>/fail-nth``), runs the syscall body as ``current`` and then does what
``syscall_return_slowpath`` does: the exit work, which here is signal delivery
(``exit_to_usermode_loop`` -> ``do_signal``).

Restarts. A body that gives way to a pending signal fails with a restart code (ERESTARTSYS
from a wait or a pipe that would sleep, ERESTARTNOINTR from a fork, ERESTARTNOHAND,
ERESTART_RESTARTBLOCK). The exit work delivers the signals with that code as the syscall's
error, and do_signal/handle_signal (arch/x86/kernel/signal.py) turn it into EINTR, which the
call then fails with, or into a restart: the body runs again, as the kernel rewinds
``regs->ip`` to the syscall instruction, and may complete, fail or sleep (``Blocked``) like a
first run. When the exit work left the task stopped instead, the call has not returned: the
task is asleep and ``Blocked`` is raised, so that its user issues the call again once it is
continued, which is the restart the kernel makes when the stopped task runs again.

Handlers on the way out. The exit work may set up handler frames (``Task.sigframes``). A task
driven by kernel calls alone has no handler code: each handler returns at once, through the
rt_sigreturn this module makes for it (``_handlers_return_at_once``), before the call returns or
restarts. A task whose user code a driver runs (``Task.user_handlers``, the program runner)
keeps its frames: the driver runs the innermost frame's handler and calls rt_sigreturn, for
each frame. Since the kernel restarts an interrupted call only after its handler returned
(the handler runs at the rewound regs->ip), such a task's restart is left to the driver:
``Blocked`` is raised with the task still TASK_RUNNING and the new frames on it, and the driver
runs the handlers, then issues the call again.

Not modelled: a stop in the exit work that is followed, once the task is continued, by a
handler without SA_RESTART (a SIGCONT handler, say): Linux decides the interrupted call then
and makes it EINTR; the model has already left the call to be issued again.

Calls may nest: a trace listener may make another task call into the kernel while a syscall
is in progress (that is how the model shows races, e.g. a signal arriving in the middle of a
fork). The outer call's ``current`` and fail-nth state are restored afterwards.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from forklab.arch.x86.kernel.signal import SYSCALL_RESTART_ERRNOS, do_signal, sys_rt_sigreturn
from forklab.errors import ERESTARTSYS, Blocked, InternalError, KernelError, Segfault, TaskKilled, errno_name, kerr
from forklab.include.linux.sched import PF_EXITING, TASK_RUNNING, Task
from forklab.kernel.signal import signal_pending
from forklab.trace import CallSite, call_site, trace_value, traced

if TYPE_CHECKING:
    from forklab.state import KernelState

T = TypeVar("T")

SYSCALL_NS = 1000  # the model clock advances 1 µs per syscall, charged to the caller as stime


def check_caller(t: object) -> Task:
    """``t`` as a task that can enter the kernel now; TypeError/ValueError for API misuse."""
    if not isinstance(t, Task):
        raise TypeError(f"expected a Task as the calling task, got {type(t).__name__}")
    if t.exit_state or t.flags & PF_EXITING:
        raise ValueError(f"task {t.pid} has exited; it cannot make syscalls")
    if t.state != TASK_RUNNING:
        raise ValueError(f"task {t.pid} is sleeping ({t.waits_on or t.state!r}); it cannot make syscalls until woken")
    return t


# The argument names of each syscall the Kernel passes values for, as the kernel's SYSCALL_DEFINE names them.
SYSCALL_PARAMS: dict[str, tuple[str, ...]] = {}
_SYSCALL_SITES: dict[str, CallSite] = {}


def syscall_site(name: str) -> CallSite:
    """The trace's CallSite for syscall ``name``: do_syscall_64's citation, the syscall's argument names."""
    site = _SYSCALL_SITES.get(name)
    if site is None:
        entry = call_site(do_syscall_64)
        site = _SYSCALL_SITES[name] = CallSite(name, entry.source, SYSCALL_PARAMS.get(name, ()))
    return site


def do_syscall_64(k: KernelState, t: object, name: str, fn: Callable[[Task], T], values: tuple[Any, ...] = ()) -> T:
    """Run one syscall body as ``t``, then the exit work; a restart code is EINTR or a restart, as the signal
    delivery decides (arch/x86/entry/common.c:282-305).

    With a listener attached the call is traced as a "syscall" Call named ``name`` whose arguments are
    ``values``, named by ``SYSCALL_PARAMS``.
    """
    task = check_caller(t)
    k.clock_ns += SYSCALL_NS
    task.stime += SYSCALL_NS  # the model's only CPU time: each syscall is 1 µs of system time
    if not k.listeners:
        return _do_syscall_body(k, task, fn)
    listeners = k.listeners
    site = syscall_site(name)
    call = k.tracer.enter(listeners, site, task, tuple(zip(site.params, map(trace_value, values), strict=False)),
                          "syscall")
    try:
        result = _do_syscall_body(k, task, fn)
    except BaseException as e:
        k.tracer.leave(listeners, call, exc=e)
        raise
    k.tracer.leave(listeners, call, result)
    return result


def _do_syscall_body(k: KernelState, task: Task, fn: Callable[[Task], T]) -> T:
    """do_syscall_64's body: fail-nth, the call, its restarts and the exit work, restoring an outer call's state
    afterwards (arch/x86/entry/common.c:282-305)."""
    outer = (k.current, k.fault.countdown, k.fault.sites, k.fault.failed_site)
    k.in_syscall.append(task)
    try:
        while True:
            k.fault.arm(task.fail_nth)
            task.fail_nth = 0
            k.current = task
            try:
                result = fn(task)
            except KernelError as e:
                k.fault.countdown = 0
                if e.errno not in SYSCALL_RESTART_ERRNOS:
                    syscall_return_slowpath(k, task)
                    raise
                frames = len(task.sigframes)
                _restart_or_eintr(k, task, e, syscall_return_slowpath(k, task, e.errno))
                if task.user_handlers and len(task.sigframes) > frames:
                    raise Blocked(task.pid, "its signal handlers, then the restarted call") from None
                continue
            k.fault.countdown = 0
            syscall_return_slowpath(k, task)
            return result
    finally:
        k.in_syscall.pop()
        k.current = outer[0]
        if outer[0] is not None:
            k.fault.countdown, k.fault.sites, k.fault.failed_site = outer[1:]


def _restart_or_eintr(k: KernelState, task: Task, e: KernelError, error: int) -> None:
    """do_syscall_64 after a body's restart code ``e`` and the exit work: EINTR, Blocked for a task the exit work
    stopped, or return to run the body again, as the rewound regs->ip does (arch/x86/entry/common.c:282-305;
    arch/x86/kernel/signal.c:718-736, 820-835)."""
    if error == errno.EINTR:
        line = 728 if e.errno == ERESTARTSYS else 723  # handle_signal's regs->ax = -EINTR
        raise kerr(errno.EINTR, f"{e.rule} ({e.source}); {errno_name(e.errno or 0)} after a signal handler ran",
                   f"arch/x86/kernel/signal.c:{line}") from None
    if task.state != TASK_RUNNING:
        raise Blocked(task.pid, task.waits_on)  # stopped: issued again once continued
    if error:
        raise InternalError(f"task {task.pid}: {errno_name(error)} survived the exit work with no signal to "
                            "deliver (a restart code needs signal_pending, include/linux/errno.h:8-13)")


def syscall_return_slowpath(k: KernelState, task: Task, error: int = 0) -> int:
    """The one-time exit work of a syscall, then prepare_exit_to_usermode; returns the syscall's error as the
    signal delivery leaves it (arch/x86/entry/common.c:257-279)."""
    return prepare_exit_to_usermode(k, task, error)


def prepare_exit_to_usermode(k: KernelState, task: Task, error: int = 0) -> int:
    """Run the exit loop if there is work (a pending signal) for a task still running; returns ``error`` as the
    loop leaves it (arch/x86/entry/common.c:182-213).

    Signals other tasks sent while ``task`` was between syscalls are still pending at its
    next syscall (the model does not run it in between), which is where a fork meets them.
    """
    if task.exit_state or task.flags & PF_EXITING or task.state != TASK_RUNNING:
        return error
    if signal_pending(task):
        error = exit_to_usermode_loop(k, task, error)
    if task.sigframes and not task.user_handlers:
        _handlers_return_at_once(k, task)
    return error


@traced
def exit_to_usermode_loop(k: KernelState, task: Task, error: int = 0) -> int:
    """Deliver signals until none is pending, or the task stops or dies; the first delivery decides a syscall's
    restart code (arch/x86/entry/common.c:136-179)."""
    while task.state == TASK_RUNNING and not task.flags & PF_EXITING and signal_pending(task):
        error = do_signal(k, task, error)  # regs->ax: once decided, no later delivery takes it for a restart code
    return error


def _handlers_return_at_once(k: KernelState, task: Task) -> None:
    """The handlers of a task without user code return at once: its rt_sigreturn for each frame, innermost first,
    each with its own exit work (arch/x86/entry/common.c:182-213; arch/x86/kernel/signal.c:638-664).

    The model makes these calls for the task (no clock or stime is charged): a task driven by
    kernel calls alone has no handler code to run (``Task.user_handlers``).
    """
    while task.sigframes and task.state == TASK_RUNNING and not task.flags & PF_EXITING:
        sys_rt_sigreturn(k, task)
        if signal_pending(task):
            exit_to_usermode_loop(k, task)


def user_mode_access(k: KernelState, task: Task, handler: Callable[..., T], *args: Any) -> T:
    """An access by ``task``'s user code, ``handler(k, task, *args)``, with the exceptions it may take (a page
    fault, a #GP); a fault's signal is delivered on the way back (arch/x86/entry/common.c:182).

    The fault handler (arch/x86/mm/fault.c) queues SIGSEGV; the exception return path then
    runs the same exit work as a syscall, which may kill the task (``Segfault.killed``).
    """
    outer = k.current
    k.current = task
    k.in_syscall.append(task)
    try:
        return handler(k, task, *args)
    except Segfault as fault:
        try:
            prepare_exit_to_usermode(k, task)
        except TaskKilled:
            fault.killed = True
        raise
    finally:
        k.in_syscall.pop()
        k.current = outer
