"""The runner's errors: what ``forklab.run`` raises when a run cannot go on, and its internal unwinders.

A run ends with a ``RunError`` when the program cannot be run faithfully: a replayed image
took another path than its parent (``ReplayDivergence``), every process sleeps
(``Deadlock``), a budget ran out (``BudgetExceeded``), or a given schedule does not fit the
program (``ScheduleMismatch``). A Python exception inside one simulated process is *not* a
``RunError``: it kills that process with SIGABRT and the run goes on.

The ``BaseException`` subclasses below unwind a simulated process's Python stack. They are
not ``Exception``s, so a program's ``except Exception`` cannot swallow them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


class RunError(Exception):
    """``forklab.run`` could not finish the run; the message says why and what to change."""


class ReplayDivergence(RunError):
    """A process re-running its image to reach its ``fork`` made a different call than its parent had.

    ``pid`` is the replaying process, ``index`` the position of the call in its history,
    ``recorded`` the call the parent made there and ``made`` the call the replay made.
    """

    def __init__(self, pid: int, index: int, recorded: str, made: str) -> None:
        super().__init__(
            f"process {pid} diverged from its parent's history at call {index}: the parent called {recorded}, "
            f"the re-run called {made}. fork returns twice by re-running the program, so it must make the same "
            "calls with the same arguments each time it runs. Look for: an unseeded random module (use "
            "os.urandom), the host's time (use os.time), id() or hash() of objects, iteration over a set of "
            "strings, or state outside the program (module globals or closures that a function main changes: "
            "run a file instead, whose globals belong to each process)")
        self.pid = pid
        self.index = index
        self.recorded = recorded
        self.made = made


class Deadlock(RunError):
    """Every process of the program sleeps and nothing can wake one; ``waits`` lists (pid, comm, what it waits on)."""

    SHOWN = 20  # the message names this many tasks and counts the rest by what they wait on

    def __init__(self, waits: list[tuple[int, str, str]]) -> None:
        lines = "; ".join(f"pid {pid} ({comm}) waits on {what}" for pid, comm, what in waits[:self.SHOWN])
        rest = waits[self.SHOWN:]
        if rest:
            counts = Counter(what for _, _, what in rest)
            lines += f"; and {len(rest)} more (" + ", ".join(f"{n} on {what}" for what, n in sorted(counts.items())) + ")"
        super().__init__(f"deadlock: every process sleeps and none can wake another: {lines}")
        self.waits = waits


class BudgetExceeded(RunError):
    """The run used up its step budget (live syscalls) or its wall-clock budget."""


class ScheduleMismatch(RunError):
    """A schedule passed to ``forklab.run`` names a task that is not runnable at that step."""


class ProgramError(RunError):
    """A program file or callable cannot be run as a forklab program (e.g. a file without ``main``)."""


@dataclass(slots=True, frozen=True)
class Crash:
    """A Python exception that killed one simulated process with SIGABRT: its pid, comm and traceback text."""

    pid: int
    comm: str
    report: str


class ProcessEnded(BaseException):
    """Unwinds a simulated process whose task has exited (or whose run has ended); its calls raise it again."""


class ExecDone(BaseException):
    """Unwinds the old image after a successful execve; calls from its ``finally`` blocks raise it again."""


class RunAbort(BaseException):
    """Carries a ``RunError`` (or a kernel failure) from inside a simulated process out to ``forklab.run``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


__all__ = [
    "BudgetExceeded",
    "Crash",
    "Deadlock",
    "ExecDone",
    "ProcessEnded",
    "ProgramError",
    "ReplayDivergence",
    "RunAbort",
    "RunError",
    "ScheduleMismatch",
]
