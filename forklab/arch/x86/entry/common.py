"""The syscall entry and the exit work on the way back to user mode (arch/x86/entry/common.c).

Every ``Kernel`` syscall method runs through ``do_syscall_64``: it checks that the caller can
make a syscall at all (a live, running task), advances the model clock, arms fail-nth for the
caller (``/proc/<pid>/fail-nth``), runs the syscall body as ``current`` and then does what
``syscall_return_slowpath`` does: the exit work, which here is signal delivery
(``exit_to_usermode_loop`` -> ``do_signal``). A body that fails with ERESTARTNOINTR (a fork
that met a pending signal) has the signal delivered and is run again, as the kernel rewinds
``regs->ip`` to the syscall instruction.

Calls may nest: a trace listener may make another task call into the kernel while a syscall
is in progress (that is how the model shows races, e.g. a signal arriving in the middle of a
fork). The outer call's ``current`` and fail-nth state are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from forklab.arch.x86.kernel.signal import do_signal
from forklab.errors import ERESTARTNOINTR, KernelError, Segfault, TaskKilled
from forklab.include.linux.sched import PF, Task, TaskState
from forklab.kernel.signal import signal_pending

if TYPE_CHECKING:
    from forklab.state import KernelState

T = TypeVar("T")

SYSCALL_NS = 1000  # the model clock advances 1 µs per syscall, charged to the caller as stime


def check_caller(t: object) -> Task:
    """``t`` as a task that can enter the kernel now; TypeError/ValueError for API misuse."""
    if not isinstance(t, Task):
        raise TypeError(f"expected a Task as the calling task, got {type(t).__name__}")
    if t.exit_state or t.flags & PF.PF_EXITING:
        raise ValueError(f"task {t.pid} has exited; it cannot make syscalls")
    if t.state != TaskState.TASK_RUNNING:
        raise ValueError(f"task {t.pid} is sleeping ({t.waits_on or t.state!r}); it cannot make syscalls until woken")
    return t


def do_syscall_64(k: KernelState, t: object, name: str, fn: Callable[[Task], T]) -> T:
    """Run one syscall body as ``t``, then the exit work; restart it after ERESTARTNOINTR (arch/x86/entry/common.c:282-305)."""
    task = check_caller(t)
    k.clock_ns += SYSCALL_NS
    task.stime += SYSCALL_NS  # the model's only CPU time: each syscall is 1 µs of system time
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
                if e.errno != ERESTARTNOINTR:
                    syscall_return_slowpath(k, task)
                    raise
                do_signal(k, task)
                continue
            k.fault.countdown = 0
            syscall_return_slowpath(k, task)
            return result
    finally:
        k.in_syscall.pop()
        k.current = outer[0]
        if outer[0] is not None:
            k.fault.countdown, k.fault.sites, k.fault.failed_site = outer[1:]


def syscall_return_slowpath(k: KernelState, task: Task) -> None:
    """The one-time exit work of a syscall, then prepare_exit_to_usermode (arch/x86/entry/common.c:257-279)."""
    prepare_exit_to_usermode(k, task)


def prepare_exit_to_usermode(k: KernelState, task: Task) -> None:
    """Run the exit loop if there is work (a pending signal) for a task still running (arch/x86/entry/common.c:182-213).

    Signals other tasks sent while ``task`` was between syscalls are still pending at its
    next syscall (the model does not run it in between), which is where a fork meets them.
    """
    if task.exit_state or task.flags & PF.PF_EXITING or task.state != TaskState.TASK_RUNNING:
        return
    if signal_pending(task):
        exit_to_usermode_loop(k, task)


def exit_to_usermode_loop(k: KernelState, task: Task) -> None:
    """Deliver signals until none is pending, or the task stops or dies (arch/x86/entry/common.c:136-179)."""
    while task.state == TaskState.TASK_RUNNING and not task.flags & PF.PF_EXITING and signal_pending(task):
        do_signal(k, task)


def user_mode_access(k: KernelState, t: object, access: Callable[[Task], T]) -> T:
    """Run an access by ``t``'s user code; a fault's signal is delivered on the way back (arch/x86/entry/common.c:182).

    The fault handler (arch/x86/mm/fault.c) queues SIGSEGV; the exception return path then
    runs the same exit work as a syscall, which may kill the task (``Segfault.killed``).
    """
    task = check_caller(t)
    outer = k.current
    k.current = task
    k.in_syscall.append(task)
    try:
        return access(task)
    except Segfault as fault:
        try:
            prepare_exit_to_usermode(k, task)
        except TaskKilled:
            fault.killed = True
        raise
    finally:
        k.in_syscall.pop()
        k.current = outer
