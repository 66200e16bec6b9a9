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

__all__ = [
    "Blocked",
    "CloneArgs",
    "InternalError",
    "Kernel",
    "KernelError",
    "KernelPanic",
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
    "run",
]
__version__ = "0.1.0"

_RUNNER_EXPORTS = frozenset({"ReplayDivergence", "Run", "run"})


def __getattr__(name: str) -> object:
    """``forklab.run``, ``forklab.Run`` and ``forklab.ReplayDivergence``, imported on first use (the runner needs greenlet)."""
    if name in _RUNNER_EXPORTS:
        import forklab.runner  # lazy: the runner needs greenlet; plain kernel users never load it

        return getattr(forklab.runner, name)
    raise AttributeError(f"module 'forklab' has no attribute {name!r}")
