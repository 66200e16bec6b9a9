"""Traps taken in user mode (arch/x86/kernel/traps.c): what the kernel does for a privileged instruction.

The model has no instructions, so a program's user code reports the trap itself: glibc's
``abort()`` ends with ``ABORT_INSTRUCTION`` (``hlt`` on x86-64), which faults at CPL 3 with a
general protection fault. The kernel answers with ``force_sig(SIGSEGV)``, an SI_KERNEL
siginfo, which also takes away a namespace init's SIGNAL_UNKILLABLE when the action is the
default (``force_sig_info_to_task``); the signal is delivered on the exception's return path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.errors import Segfault
from forklab.include.linux.sched import Task
from forklab.kernel.signal import force_sig
from forklab.uapi import SIGSEGV

if TYPE_CHECKING:
    from forklab.state import KernelState


def do_general_protection(k: KernelState, task: Task) -> None:
    """A #GP in user mode: record the trap and force SIGSEGV; the exit work delivers it
    (arch/x86/kernel/traps.c:493-524)."""
    if k.listeners:
        k.trace("do_general_protection", "arch/x86/kernel/traps.c:517", f"general protection fault in task {task.pid}",
                tid=task.pid)
    force_sig(k, task, SIGSEGV)
    raise Segfault(0, "general protection fault (a privileged instruction in user mode)", task.pid)
