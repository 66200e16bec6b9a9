"""KernelState: the model's global kernel state, and nothing else.

In Linux these are file-scope globals spread over the tree (``init_task``, ``tasklist``,
``nr_threads`` and ``max_threads`` in kernel/fork.c, ``init_pid_ns`` in kernel/pid.c, the
runqueues in kernel/sched/core.c, ``mem_map``, the uid hash in kernel/user.c). The model keeps
them in one small slotted object, passed explicitly as ``k`` to every in-kernel function, so
no function reads a hidden global and two kernels never share state.

This module imports only leaf modules (structs, the page allocator's ``MemMap``, the VFS's
superblock, the fault injector, the trace records and the version table). ``Kernel`` in
``forklab/syscalls.py`` subclasses it with the syscall table and boots it; in-kernel code is
typed against ``KernelState`` alone. A bare ``KernelState()`` is a valid, unbooted state that
unit tests of one subsystem (mm, fs) build on directly.
"""

from __future__ import annotations

from collections.abc import MutableSequence

from forklab.errors import InternalError
from forklab.fs.vfs import Vfs
from forklab.include.linux.cred import UserStruct
from forklab.include.linux.hrtimer import HrtimerSleeper
from forklab.include.linux.pid import Pid, PidNamespace
from forklab.include.linux.sched import Task
from forklab.include.linux.threads import PID_MAX_DEFAULT, PID_MAX_LIMIT
from forklab.include.linux.user_namespace import UserNamespace
from forklab.kernel.cgroup.pids import Cgroup
from forklab.kernel.sched.core import Rq
from forklab.lib.fault_inject import FaultInjector
from forklab.mm.page_alloc import FORK_PAGE_TABLES_COPY, FORK_PAGE_TABLES_MODES, MemMap
from forklab.trace import Args, ListenerList, Tracer, register_type_format
from forklab.version import CHANGE_NAMES, changes_in

MAX_THREADS_DEFAULT = 191928  # fork_init's value on a 24 GiB machine (kernel/fork.c:799-812)
FUTEX_TID_MASK = 0x3FFFFFFF  # include/uapi/linux/futex.h:150; the threads-max ceiling (kernel/fork.c:118)
MIN_THREADS = 20  # kernel/fork.c:116
NR_CPUS_MAX = 64  # the model's CONFIG_NR_CPUS


def task_label(t: Task) -> str:
    """A task as the trace names it: ``comm-pid``, as ftrace's task column does."""
    return f"{t.comm}-{t.pid}"


register_type_format(Task, task_label)
register_type_format(Pid, repr)  # <pid 2> or <pid 5/1>: its number at each level
register_type_format(PidNamespace, repr)


def check_int(name: str, value: object) -> int:
    """``value`` if it is an int (not a bool), else TypeError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


class KernelState:
    """The globals of one booted (or, bare, unbooted) kernel; see the module docstring.

    ``fork_page_tables`` is "copy" (Linux 5.6: fork copies every PTE) or "shared" (beyond 5.6, the
    on-demand fork of Zhao, Gong and Fonseca, EuroSys 2021: fork shares the last-level tables; see
    forklab/mm/memory.py and docs/model.md).
    """

    __slots__ = (
        "_inum",
        "cgroup_root",
        "changes",
        "clock_ns",
        "current",
        "fault",
        "fork_page_tables",
        "hrtimer_bases",
        "idle_task",
        "in_syscall",
        "init_pid_ns",
        "init_task",
        "init_user_ns",
        "listeners",
        "max_threads",
        "mem",
        "nr_cpus",
        "nr_threads",
        "pid_max",
        "process_counts",
        "root_user",
        "runqueues",
        "signals_delivered",
        "tasks",
        "total_forks",
        "tracer",
        "uidhash",
        "version",
        "vfs",
    )

    def __init__(self, pid_max: int = PID_MAX_DEFAULT, threads_max: int | None = None, nr_cpus: int = 2,
                 version: str = "5.6.14", fork_page_tables: str = FORK_PAGE_TABLES_COPY) -> None:
        if not isinstance(version, str):
            raise TypeError("version must be a str such as '5.6.14' or '6.18'")
        if fork_page_tables not in FORK_PAGE_TABLES_MODES:
            raise ValueError(f"fork_page_tables must be one of {', '.join(map(repr, FORK_PAGE_TABLES_MODES))}, "
                             f"got {fork_page_tables!r}")
        self.fork_page_tables: str = fork_page_tables
        check_int("pid_max", pid_max)
        check_int("nr_cpus", nr_cpus)
        if not max(301, 8 * nr_cpus) <= pid_max <= PID_MAX_LIMIT:
            raise ValueError(f"pid_max must be in [{max(301, 8 * nr_cpus)}, {PID_MAX_LIMIT}] (kernel/pid.c:579-583)")
        if not 1 <= nr_cpus <= NR_CPUS_MAX:
            raise ValueError(f"nr_cpus must be between 1 and {NR_CPUS_MAX}")
        if threads_max is not None:
            check_int("threads_max", threads_max)
            if not MIN_THREADS <= threads_max <= FUTEX_TID_MASK:
                raise ValueError("threads_max must be in [20, FUTEX_TID_MASK] (kernel/fork.c:113-118)")
        self.changes: frozenset[str] = changes_in(version)
        self.version = version
        self.pid_max = pid_max
        self.nr_cpus = nr_cpus
        self.max_threads = threads_max if threads_max is not None else MAX_THREADS_DEFAULT
        self.fault = FaultInjector()
        self.current: Task | None = None
        self.in_syscall: list[Task] = []
        self.listeners: ListenerList = ListenerList()
        self.tracer = Tracer(lambda: self.clock_ns)
        self._inum = 0xF0000100
        self.clock_ns = 0
        # the queued hrtimers, in timerqueue order: hard expiry, then arming order (kernel/time/hrtimer.py)
        self.hrtimer_bases: list[HrtimerSleeper] = []
        self.nr_threads = 0
        self.process_counts = 0
        self.total_forks = 0
        self.tasks: MutableSequence[Task] = []  # a list, or its ListHead form once long (include/linux/list.py)
        self.uidhash: dict[int, UserStruct] = {}
        self.runqueues = [Rq(cpu) for cpu in range(nr_cpus)]
        self.signals_delivered: list[tuple[int, int, str]] = []
        self.mem = MemMap()
        self.vfs = Vfs()
        self.init_user_ns: UserNamespace
        self.init_pid_ns: PidNamespace
        self.root_user: UserStruct
        self.cgroup_root: Cgroup
        self.idle_task: Task
        self.init_task: Task

    def has(self, change: str) -> bool:
        """Whether this kernel version has the named change; an unknown name is a bug (forklab/version.py)."""
        if change not in CHANGE_NAMES:
            raise InternalError(f"no version change is named {change!r} (forklab/version.py)")
        return change in self.changes

    @property
    def cap_full_set(self) -> int:
        """Every capability this version knows: CAP_LAST_CAP is 37 in 5.6, 40 from 5.9."""
        return (1 << (41 if self.has("set_tid_checkpoint_restore") else 38)) - 1

    def trace(self, kind: str, source: str, detail: str = "", tid: int | None = None) -> None:
        """Record a decision ``detail`` at ``source`` inside the current call; callers guard with ``if
        k.listeners:`` so that no detail string is built when no one listens (forklab/trace.py)."""
        if not self.listeners:
            return
        if tid is None:
            tid = self.current.pid if self.current is not None else 0
        self.tracer.decide(self.listeners, kind, source, detail, tid)

    def decide(self, source: str, text: str, *values: tuple[str, int | str], tid: int | None = None,
               kind: str | None = None) -> None:
        """A decision of the innermost traced call (its ``kind`` is that call's name unless given), with the model
        values it read (``("mm_users", 2)``); callers guard with ``if k.listeners:``."""
        if not self.listeners:
            return
        stack = self.tracer.stack
        if kind is None:
            kind = stack[-1].name if stack else "kernel"
        if tid is None:
            tid = self.current.pid if self.current is not None else 0
        vals: Args = values
        self.tracer.decide(self.listeners, kind, source, text, tid, vals)

    def new_inum(self) -> int:
        """A fresh namespace inode number (fs/proc/generic.c:proc_alloc_inum), deterministic."""
        self._inum += 1
        return self._inum

    def all_threads(self) -> list[Task]:
        """Every live or zombie task: each thread group in process-list order, its threads in list order."""
        out: list[Task] = []
        seen: set[int] = set()
        for leader in self.tasks:
            assert leader.signal is not None
            for t in (*leader.signal.thread_head, leader):
                if id(t) not in seen:
                    seen.add(id(t))
                    out.append(t)
        return out


__all__ = ["KernelState", "check_int"]
