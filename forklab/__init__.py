"""forklab: an executable, faithful model of Linux 5.6.14 process creation.

    from forklab import Kernel, CloneArgs
    k = Kernel()
    child = k.fork(k.init_task)
"""

from typing import TYPE_CHECKING

from forklab.errors import Blocked, InternalError, KernelError, KernelPanic, Segfault, TaskKilled, Unmodelled
from forklab.include.linux.sched import SigAction, Task, TaskState
from forklab.syscalls import Kernel
from forklab.trace import Recorder, TraceEvent
from forklab.uapi import CloneArgs

if TYPE_CHECKING:
    from forklab.runner import ReplayDivergence, Run, run
    from forklab.runner.explore import Exploration, Outcome, explore

__all__ = [
    "Blocked",
    "CloneArgs",
    "Exploration",
    "InternalError",
    "Kernel",
    "KernelError",
    "KernelPanic",
    "Outcome",
    "Recorder",
    "ReplayDivergence",
    "Run",
    "Segfault",
    "SigAction",
    "Task",
    "TaskKilled",
    "TaskState",
    "TraceEvent",
    "Unmodelled",
    "explore",
    "run",
]
__version__ = "0.1.0"

_RUNNER_EXPORTS = frozenset({"ReplayDivergence", "Run", "run"})
_EXPLORE_EXPORTS = frozenset({"Exploration", "Outcome", "explore"})


def __getattr__(name: str) -> object:
    """The runner's names (``forklab.run``, ``forklab.explore``, ...), imported on first use (it needs greenlet)."""
    if name in _RUNNER_EXPORTS:
        import forklab.runner  # lazy: the runner needs greenlet; plain kernel users never load it

        return getattr(forklab.runner, name)
    if name in _EXPLORE_EXPORTS:
        import forklab.runner.explore  # lazy, as above

        return getattr(forklab.runner.explore, name)
    raise AttributeError(f"module 'forklab' has no attribute {name!r}")
