"""Signal delivery on x86-64 (arch/x86/kernel/signal.c): ``do_signal``, ``handle_signal`` and ``rt_sigreturn``.

``do_signal`` runs on every return to user mode with a signal pending: ``get_signal``
(kernel/signal.c) picks the signal and applies the default actions -- ignoring, stopping the
group (the task is then TASK_STOPPED and ``do_signal`` returns with it asleep) or killing it
(``TaskKilled``); a signal with a user handler comes back here and ``handle_signal`` sets up
the handler's frame.

The interrupted syscall. A syscall body that gives way to a pending signal fails with one of
the kernel's restart codes; the entry code (arch/x86/entry/common.py) hands it to the exit work
as ``error``, the model's ``syscall_get_error(current, regs)``, and each function here returns
the error as it then stands. ``handle_signal`` decides it as the kernel does (718-736):
ERESTARTSYS restarts when the handler has SA_RESTART and becomes EINTR otherwise,
ERESTARTNOHAND and ERESTART_RESTARTBLOCK become EINTR, ERESTARTNOINTR always restarts. With no
handler to run, ``do_signal`` restarts all four (820-835). A restart is the kernel's
``regs->ax = regs->orig_ax; regs->ip -= 2``: the error is gone (0) and the entry code runs the
syscall body again. ERESTART_RESTARTBLOCK's restart is ``restart_syscall`` with the saved
restart_block: ``do_signal`` sets ``regs.ax`` to NR_RESTART_SYSCALL (also when the task stopped,
for the restart once it is continued), and a body that can fail with that code (nanosleep,
clock_nanosleep) then runs ``sys_restart_syscall`` instead (kernel/time/hrtimer.py). Only the first delivery of an exit sees the error: after it, regs->ax holds
EINTR or the syscall number, which no later ``do_signal`` of the same exit takes for a restart
code. A task that stopped in ``get_signal`` leaves the error undecided (the kernel sleeps inside
get_signal and decides once woken); the entry code then leaves the call to be issued again.

The kernel restarts an ERESTARTSYS call after an SA_RESTART handler has run (the handler runs
at the rewound regs->ip). For a task whose handler code a driver runs (``Task.user_handlers``,
every task of the program runner) the entry code leaves that restart to the driver, after the
handler and its rt_sigreturn. A task driven by kernel calls alone has handlers that return at
once, so the entry code restarts its call in the kernel.

The frame. The model has no user stack, so ``setup_rt_frame`` records the frame as an
``RtSigframe`` on ``task.sigframes``: the signal with its siginfo and action, and the blocked
mask to restore (``sigmask_to_save``). ``signal_delivered`` then blocks the handler's
``sa_mask`` and, without SA_NODEFER, the signal itself. Whoever runs the task's user code (the
program runner, forklab/runner) runs the handler of the innermost (last) frame and then calls
``rt_sigreturn``, which pops that frame and restores its mask; a task with several frames runs
their handlers innermost first, each followed by its rt_sigreturn. The delivery is also
recorded in ``KernelState.signals_delivered`` and the trace as "handler 0x... ran".

Not modelled: x86-64 builds a frame only for an action with SA_RESTORER (glibc always sets
it; without it __setup_rt_frame fails and the task gets SIGSEGV, 482-487), which the model does
not require; the saved registers, the alternate signal stack and the FPU state of the frame;
the ia32 and x32 frames.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS
from forklab.include.linux.sched import RtSigframe, TaskState
from forklab.kernel.signal import KSignal, force_sig, get_signal, set_current_blocked, signal_setup_done
from forklab.trace import traced
from forklab.uapi import SA_RESTART, SIGSEGV

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

# The codes a syscall body returns to have the exit work decide between a restart and EINTR
# (include/linux/errno.h:14-18); the entry code passes only these to do_signal.
SYSCALL_RESTART_ERRNOS = frozenset({ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK})
NR_RESTART_SYSCALL = 219  # __NR_restart_syscall (arch/x86/entry/syscalls/syscall_64.tbl:230)


def setup_rt_frame(k: KernelState, task: Task, ksig: KSignal) -> None:
    """Push the handler's frame, saving the blocked mask sigmask_to_save gives (arch/x86/kernel/signal.c:685-706)."""
    task.sigframes = (*task.sigframes, RtSigframe(ksig, task.blocked))


@traced
def handle_signal(k: KernelState, task: Task, ksig: KSignal, error: int = 0) -> int:
    """Decide an interrupted syscall's restart, set up the handler's frame, block its mask; returns the syscall's
    error from here on: EINTR, 0 when it restarts, else ``error`` (arch/x86/kernel/signal.c:708-766)."""
    if error in (ERESTART_RESTARTBLOCK, ERESTARTNOHAND):
        error = errno.EINTR
    elif error == ERESTARTSYS:
        error = 0 if ksig.ka.sa_flags & SA_RESTART else errno.EINTR
    elif error == ERESTARTNOINTR:
        error = 0
    setup_rt_frame(k, task, ksig)
    signal_setup_done(k, task, ksig)
    return error


@traced
def do_signal(k: KernelState, task: Task, error: int = 0) -> int:
    """Deliver one signal with a handler, after the ignored, stopping and fatal ones before it; with no handler to
    run, restart an interrupted syscall; returns its error as it then stands (arch/x86/kernel/signal.c:809-841)."""
    ksig = get_signal(k, task)
    if ksig is not None:
        return handle_signal(k, task, ksig, error)
    if error == ERESTART_RESTARTBLOCK:
        task.regs.ax = NR_RESTART_SYSCALL  # regs->ax = get_nr_restart_syscall(regs) (arch/x86/kernel/signal.c:831)
    if task.state != TaskState.TASK_RUNNING:
        return error  # stopped in get_signal: undecided until it runs again (module docstring)
    if error in SYSCALL_RESTART_ERRNOS:
        return 0  # regs->ax = regs->orig_ax (or __NR_restart_syscall); regs->ip -= 2
    return error  # restore_saved_sigmask: the model has no saved_sigmask


def signal_fault(k: KernelState, current: Task, where: str) -> None:
    """A bad signal frame: SIGSEGV to the task (arch/x86/kernel/signal.c:844-859)."""
    if k.listeners:
        k.trace("signal_fault", "arch/x86/kernel/signal.c:844", f"bad frame in {where}", tid=current.pid)
    force_sig(k, current, SIGSEGV)


def sys_rt_sigreturn(k: KernelState, current: Task) -> int:
    """rt_sigreturn(2): pop the innermost signal frame and restore the blocked mask it saved; SIGSEGV when there is
    no frame (arch/x86/kernel/signal.c:638-664).

    Returns 0: the kernel returns the interrupted context's regs->ax, which the model does not
    keep (the interrupted call's result already went to its caller).
    """
    if not current.sigframes:
        signal_fault(k, current, "rt_sigreturn")  # badframe: no frame at regs->sp
        return 0
    frame = current.sigframes[-1]
    current.sigframes = current.sigframes[:-1]
    set_current_blocked(k, current, frame.uc_sigmask)
    if k.listeners:
        k.decide("arch/x86/kernel/signal.c:638", f"sig {frame.ksig.sig}: mask {frame.uc_sigmask:#x} restored",
                 ("uc_sigmask", frame.uc_sigmask), tid=current.pid, kind="rt_sigreturn")
    return 0
