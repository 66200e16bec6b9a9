"""x86-64 thread set-up for a new task (arch/x86/kernel/process.c, process_64.c)."""

from __future__ import annotations

import errno
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.mm_types import TASK_SIZE_MAX
from forklab.include.linux.sched import PtRegs, Task, ThreadStruct
from forklab.trace import traced
from forklab.uapi import CLONE_SETTLS

if TYPE_CHECKING:
    from forklab.state import KernelState

# NOTE: every field of struct task_struct, read in one C call; Task(*...) is the model's memcpy of
# arch_dup_task_struct (arch/x86/kernel/process.c:91), without copy.copy's generic reduce/reconstruct.
_TASK_STRUCT = attrgetter(*(f.name for f in fields(Task)))


def arch_dup_task_struct(src: Task) -> Task:
    """A new task_struct whose every field is ``src``'s (arch/x86/kernel/process.c:89-97)."""
    return Task(*_TASK_STRUCT(src))


@traced
def copy_thread_tls(k: KernelState, clone_flags: int, sp: int, arg: int, p: Task, tls: int, current: Task) -> None:
    """The child's registers: the parent's, with ax = 0 and the new stack and TLS (arch/x86/kernel/process.c:125-186).

    ``arg`` (stack_size) is ignored on x86. A 64-bit caller's TLS is a new FS base, and a
    base at or above TASK_SIZE_MAX is EPERM (arch/x86/kernel/process_64.c:649-655).
    """
    p.thread = ThreadStruct(fsbase=current.thread.fsbase, gsbase=current.thread.gsbase)
    p.regs = PtRegs(ax=0, sp=sp if sp else current.regs.sp, ip=current.regs.ip)
    if clone_flags & CLONE_SETTLS:
        if tls >= TASK_SIZE_MAX:
            raise kerr(errno.EPERM, f"CLONE_SETTLS base {tls:#x} is not below TASK_SIZE_MAX",
                       "arch/x86/kernel/process_64.c:652")
        p.thread.fsbase = tls
    if k.listeners:
        k.trace("copy_thread_tls", "arch/x86/kernel/process.c:125",
                f"child ax=0 sp={p.regs.sp:#x}" + (f" fsbase={tls:#x}" if clone_flags & CLONE_SETTLS else ""))
