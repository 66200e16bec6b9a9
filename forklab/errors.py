"""Errors: kernel failures (OSError with the kernel's errno), faults, and broken invariants.

Every failure the kernel reports to user space is an ``OSError`` whose ``errno`` is the
kernel's and whose message names the rule that fired and its place in the 5.6 source, e.g.
``EINVAL: CLONE_SIGHAND requires CLONE_VM (kernel/fork.c:1859)``.
"""

from __future__ import annotations

import errno as _errno

from forklab.uapi import SIGSEGV

# Kernel-internal errnos that never reach user space (include/linux/errno.h:14-18).
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516

_INTERNAL_NAMES = {ERESTARTSYS: "ERESTARTSYS", ERESTARTNOINTR: "ERESTARTNOINTR", ERESTARTNOHAND: "ERESTARTNOHAND",
                   ERESTART_RESTARTBLOCK: "ERESTART_RESTARTBLOCK"}


def errno_name(code: int) -> str:
    """Return the symbolic name of an errno value (``EINVAL``)."""
    return _INTERNAL_NAMES.get(code) or _errno.errorcode.get(code, f"E{code}")


class KernelError(OSError):
    """A syscall failure: ``errno`` is the kernel's, ``rule`` and ``source`` say which check fired."""

    rule: str
    source: str

    def __init__(self, code: int, rule: str, source: str) -> None:
        text = f"{errno_name(code)}: {rule} ({source})"
        super().__init__(code, text)
        self.rule = rule
        self.source = source

    def __str__(self) -> str:
        return str(self.strerror)


def kerr(code: int, rule: str, source: str) -> KernelError:
    """Build the OSError for a kernel failure; callers ``raise kerr(...)``."""
    return KernelError(code, rule, source)


class Segfault(Exception):
    """A user access the mapping does not allow: the task was sent SIGSEGV (arch/x86/mm/fault.c).

    ``killed`` says whether delivering the signal ended the task (no handler installed);
    ``Kernel.signals_delivered`` records the delivery either way.
    """

    def __init__(self, addr: int, reason: str, tid: int, sig: int = SIGSEGV) -> None:
        super().__init__(f"SIGSEGV at {addr:#x} in task {tid}: {reason}")
        self.addr = addr
        self.reason = reason
        self.tid = tid
        self.sig = sig
        self.killed = False


class Blocked(Exception):
    """The syscall must sleep: the task is left sleeping and the call has not returned a value."""

    def __init__(self, tid: int, waits_on: str) -> None:
        super().__init__(f"task {tid} sleeps: {waits_on}")
        self.tid = tid
        self.waits_on = waits_on


class TaskKilled(Exception):
    """Delivering a pending signal killed the calling task, so the syscall never returns."""

    def __init__(self, tid: int, sig: int) -> None:
        super().__init__(f"task {tid} was killed by signal {sig}")
        self.tid = tid
        self.sig = sig


class KernelPanic(Exception):
    """The kernel would panic here (e.g. the global init died: "Attempted to kill init!", kernel/exit.c:770).

    The model stops where Linux stops; the Kernel object should not be used afterwards.
    """


class Unmodelled(NotImplementedError):
    """The call reached kernel behaviour this model does not implement (documented in docs/model.md)."""


class InternalError(AssertionError):
    """A broken internal invariant of the model (a bug in forklab, never a user error)."""


__all__ = [
    "ERESTARTNOHAND",
    "ERESTARTNOINTR",
    "ERESTARTSYS",
    "ERESTART_RESTARTBLOCK",
    "Blocked",
    "InternalError",
    "KernelError",
    "KernelPanic",
    "Segfault",
    "TaskKilled",
    "Unmodelled",
    "errno_name",
    "kerr",
]
