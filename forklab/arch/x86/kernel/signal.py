"""Signal delivery on x86-64 (arch/x86/kernel/signal.c): ``do_signal`` and ``handle_signal``.

``do_signal`` runs on every return to user mode with a signal pending: ``get_signal``
(kernel/signal.c) picks the signal and applies the default actions -- ignoring, stopping the
group (the task is then TASK_STOPPED and ``do_signal`` returns with it asleep) or killing it
(``TaskKilled``); a signal with a user handler comes back here and ``handle_signal`` sets up
the handler's frame. The model has no
user stack or sigreturn, so the frame is not built: the delivery is recorded
(``KernelState.signals_delivered`` and the trace) as "handler ran". What the handler changes
in user space is the caller's business; the blocked mask a real handler runs under is
restored by its sigreturn, which the model folds into the delivery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.kernel.signal import KSignal, get_signal, signal_setup_done

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


def handle_signal(k: KernelState, task: Task, ksig: KSignal) -> None:
    """Run the user handler for ``ksig`` (set up its frame) and record the delivery (arch/x86/kernel/signal.c:708-766)."""
    signal_setup_done(k, task, ksig)


def do_signal(k: KernelState, task: Task) -> None:
    """Deliver one signal with a handler, after the ignored, stopping and fatal ones before it (arch/x86/kernel/signal.c:809-841)."""
    ksig = get_signal(k, task)
    if ksig is not None:
        handle_signal(k, task, ksig)
