"""x86-64 process set-up (arch/x86/kernel/process_64.c): the fresh user registers of an exec'd program."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def start_thread(tsk: Task, sp: int) -> None:
    """Fresh user registers: ip 0 (no entry point), sp, TLS bases 0 (arch/x86/kernel/process_64.c:375-404)."""
    tsk.regs.ip = 0
    tsk.regs.sp = sp
    tsk.regs.ax = 0
    tsk.thread.fsbase = tsk.thread.gsbase = 0
