"""User programs on the model kernel: ``forklab.run(main)`` runs ``main(os)`` as a process tree where fork returns twice.

See ``forklab.runner.core`` (the run and its result), ``forklab.runner.libc`` (the ``os`` a
program receives), ``forklab.runner.process`` (re-execution: how a fork child gets back to
its fork) and ``forklab.runner.sched`` (choice points and schedules).
"""

from forklab.runner.core import Run, run
from forklab.runner.errors import (
    BudgetExceeded,
    Crash,
    Deadlock,
    ProgramError,
    ReplayDivergence,
    RunError,
    ScheduleMismatch,
)
from forklab.runner.program import SharedStateWarning

__all__ = [
    "BudgetExceeded",
    "Crash",
    "Deadlock",
    "ProgramError",
    "ReplayDivergence",
    "Run",
    "RunError",
    "ScheduleMismatch",
    "SharedStateWarning",
    "run",
]
