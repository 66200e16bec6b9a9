"""forklab: an executable, faithful model of Linux 5.6.14 process creation.

    from forklab import Kernel, CloneArgs
    k = Kernel()
    child = k.fork(k.init_task)

Every name below is imported on first use, so ``import forklab`` and ``forklab --help`` stay
fast: the kernel model (with numpy) loads when ``Kernel`` is first touched, the runner (with
greenlet) when ``run`` or ``explore`` is.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.errors import Blocked, InternalError, KernelError, KernelPanic, Segfault, TaskKilled, Unmodelled
    from forklab.include.linux.sched import SigAction, Task, TaskState
    from forklab.runner import ReplayDivergence, Run, run
    from forklab.runner.explore import Exploration, Outcome, explore
    from forklab.syscalls import Kernel
    from forklab.trace import Recorder, TraceEvent
    from forklab.uapi import CloneArgs

__version__ = "0.1.0"

# Each public name and the module that defines it.
_EXPORTS = {
    "Blocked": "forklab.errors",
    "InternalError": "forklab.errors",
    "KernelError": "forklab.errors",
    "KernelPanic": "forklab.errors",
    "Segfault": "forklab.errors",
    "TaskKilled": "forklab.errors",
    "Unmodelled": "forklab.errors",
    "SigAction": "forklab.include.linux.sched",
    "Task": "forklab.include.linux.sched",
    "TaskState": "forklab.include.linux.sched",
    "Kernel": "forklab.syscalls",
    "Recorder": "forklab.trace",
    "TraceEvent": "forklab.trace",
    "CloneArgs": "forklab.uapi",
    "ReplayDivergence": "forklab.runner",
    "Run": "forklab.runner",
    "run": "forklab.runner",
    "Exploration": "forklab.runner.explore",
    "Outcome": "forklab.runner.explore",
    "explore": "forklab.runner.explore",
}
__all__ = [
    "Blocked", "CloneArgs", "Exploration", "InternalError", "Kernel", "KernelError", "KernelPanic", "Outcome",
    "Recorder", "ReplayDivergence", "Run", "Segfault", "SigAction", "Task", "TaskKilled", "TaskState", "TraceEvent",
    "Unmodelled", "explore", "run",
]


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use (see the module docstring)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forklab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
