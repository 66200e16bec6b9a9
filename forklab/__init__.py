"""forklab: an executable, faithful model of Linux 5.6.14 process creation.

    from forklab import Kernel, CloneArgs
    k = Kernel()
    child = k.fork(k.init_task)
"""

from forklab.errors import Blocked, InternalError, KernelError, KernelPanic, Segfault, TaskKilled, Unmodelled
from forklab.include.linux.sched import SigAction, Task, TaskState
from forklab.syscalls import Kernel
from forklab.trace import Recorder, TraceEvent
from forklab.uapi import CloneArgs

__all__ = [
    "Blocked",
    "CloneArgs",
    "InternalError",
    "Kernel",
    "KernelError",
    "KernelPanic",
    "Recorder",
    "Segfault",
    "SigAction",
    "Task",
    "TaskKilled",
    "TaskState",
    "TraceEvent",
    "Unmodelled",
]
__version__ = "0.1.0"
