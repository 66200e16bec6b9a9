"""task_struct and its per-task satellites (include/linux/sched.h, sched/signal.h, signal_types.h).

Objects here are identity objects: ``eq=False`` so that ``a is b`` is the only sharing test,
exactly as two pointers to one struct in the kernel. Reference counts keep the kernel's field
names (``usage``, ``count``, ``sigcnt``) and are checked by ``check_invariants``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forklab.include.linux.restart_block import RestartBlock
from forklab.uapi import _NSIG, PTRACE_O_EXITKILL, RLIM_INFINITY, RLIM_NLIMITS

if TYPE_CHECKING:
    from forklab.include.linux.cred import Cred
    from forklab.include.linux.fdtable import FilesStruct
    from forklab.include.linux.fs_struct import FsStruct
    from forklab.include.linux.hrtimer import HrtimerSleeper
    from forklab.include.linux.mm_types import MmStruct
    from forklab.include.linux.nsproxy import Nsproxy
    from forklab.include.linux.pid import Pid
    from forklab.kernel.cgroup.pids import Cgroup
    from forklab.kernel.signal import KSignal
    from forklab.state import KernelState


class TaskState(enum.IntFlag):
    """``task->state`` values (include/linux/sched.h:76-107)."""

    TASK_RUNNING = 0x0000
    TASK_INTERRUPTIBLE = 0x0001
    TASK_UNINTERRUPTIBLE = 0x0002
    __TASK_STOPPED = 0x0004
    __TASK_TRACED = 0x0008
    EXIT_DEAD = 0x0010
    EXIT_ZOMBIE = 0x0020
    TASK_PARKED = 0x0040
    TASK_DEAD = 0x0080
    TASK_WAKEKILL = 0x0100
    TASK_WAKING = 0x0200
    TASK_NOLOAD = 0x0400
    TASK_NEW = 0x0800
    TASK_KILLABLE = TASK_WAKEKILL | TASK_UNINTERRUPTIBLE
    TASK_STOPPED = TASK_WAKEKILL | __TASK_STOPPED
    TASK_TRACED = TASK_WAKEKILL | __TASK_TRACED


# The bare state bits, wake_up()'s mask and EXIT_TRACE under their kernel names (include/linux/sched.h:79-80, 84,
# 99); inside TaskState a ``__`` name is mangled, so these are the names to use.
__TASK_STOPPED = TaskState.TASK_STOPPED & ~TaskState.TASK_WAKEKILL
__TASK_TRACED = TaskState.TASK_TRACED & ~TaskState.TASK_WAKEKILL
TASK_NORMAL = TaskState.TASK_INTERRUPTIBLE | TaskState.TASK_UNINTERRUPTIBLE
EXIT_TRACE = TaskState.EXIT_ZOMBIE | TaskState.EXIT_DEAD  # include/linux/sched.h:84


class PF(enum.IntFlag):
    """``task->flags`` per-process flags (include/linux/sched.h:1468-1500)."""

    PF_IDLE = 0x00000002
    PF_EXITING = 0x00000004
    PF_VCPU = 0x00000010
    PF_WQ_WORKER = 0x00000020
    PF_FORKNOEXEC = 0x00000040
    PF_MCE_PROCESS = 0x00000080
    PF_SUPERPRIV = 0x00000100
    PF_DUMPCORE = 0x00000200
    PF_SIGNALED = 0x00000400
    PF_MEMALLOC = 0x00000800
    PF_NPROC_EXCEEDED = 0x00001000
    PF_USED_MATH = 0x00002000
    PF_NOFREEZE = 0x00008000
    PF_FROZEN = 0x00010000
    PF_KSWAPD = 0x00020000
    PF_KTHREAD = 0x00200000
    PF_RANDOMIZE = 0x00400000
    PF_NO_SETAFFINITY = 0x04000000


# NOTE: task->flags is a plain int, as the kernel's ``unsigned int``, and these are its bits under their kernel
# names: PF's own & and | run enum's Python code (about 0.8 us each), and every syscall tests PF_EXITING. PF
# names the bits for display (``pf_str``).
PF_EXITING = int(PF.PF_EXITING)
PF_FORKNOEXEC = int(PF.PF_FORKNOEXEC)
PF_SUPERPRIV = int(PF.PF_SUPERPRIV)
PF_DUMPCORE = int(PF.PF_DUMPCORE)
PF_SIGNALED = int(PF.PF_SIGNALED)
PF_NPROC_EXCEEDED = int(PF.PF_NPROC_EXCEEDED)
PF_NOFREEZE = int(PF.PF_NOFREEZE)
PF_KTHREAD = int(PF.PF_KTHREAD)
PF_RANDOMIZE = int(PF.PF_RANDOMIZE)
PF_NO_SETAFFINITY = int(PF.PF_NO_SETAFFINITY)
PF_FORK_CLEARED = int(PF.PF_SUPERPRIV | PF.PF_WQ_WORKER | PF.PF_IDLE)  # what copy_process clears (kernel/fork.c:1967)
PF_EXEC_CLEARED = PF_RANDOMIZE | PF_FORKNOEXEC | PF_KTHREAD | PF_NOFREEZE | PF_NO_SETAFFINITY  # fs/exec.c:1297-1298


def pf_str(flags: int) -> str:
    """``flags`` as ``PF_A|PF_B`` in bit order, unknown bits in hex, ``0`` for none."""
    parts = [bit.name or "" for bit in PF if flags & bit]
    rest = flags & ~sum(int(bit) for bit in PF)
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "0"


# signal->flags (include/linux/sched/signal.h:230-250)
SIGNAL_STOP_STOPPED = 0x00000001
SIGNAL_STOP_CONTINUED = 0x00000002
SIGNAL_GROUP_EXIT = 0x00000004
SIGNAL_GROUP_COREDUMP = 0x00000008
SIGNAL_CLD_STOPPED = 0x00000010
SIGNAL_CLD_CONTINUED = 0x00000020
SIGNAL_CLD_MASK = SIGNAL_CLD_STOPPED | SIGNAL_CLD_CONTINUED
SIGNAL_UNKILLABLE = 0x00000040
SIGNAL_STOP_MASK = SIGNAL_CLD_MASK | SIGNAL_STOP_STOPPED | SIGNAL_STOP_CONTINUED

# task->jobctl (include/linux/sched/jobctl.h:11-41)
JOBCTL_STOP_SIGMASK = 0xFFFF
JOBCTL_STOP_DEQUEUED_BIT = 16
JOBCTL_STOP_PENDING_BIT = 17
JOBCTL_STOP_CONSUME_BIT = 18
JOBCTL_TRAP_STOP_BIT = 19
JOBCTL_TRAP_NOTIFY_BIT = 20
JOBCTL_TRAPPING_BIT = 21
JOBCTL_LISTENING_BIT = 22
JOBCTL_TRAP_FREEZE_BIT = 23
JOBCTL_STOP_DEQUEUED = 1 << JOBCTL_STOP_DEQUEUED_BIT
JOBCTL_STOP_PENDING = 1 << JOBCTL_STOP_PENDING_BIT
JOBCTL_STOP_CONSUME = 1 << JOBCTL_STOP_CONSUME_BIT
JOBCTL_TRAP_STOP = 1 << JOBCTL_TRAP_STOP_BIT
JOBCTL_TRAP_NOTIFY = 1 << JOBCTL_TRAP_NOTIFY_BIT
JOBCTL_TRAPPING = 1 << JOBCTL_TRAPPING_BIT
JOBCTL_LISTENING = 1 << JOBCTL_LISTENING_BIT
JOBCTL_TRAP_FREEZE = 1 << JOBCTL_TRAP_FREEZE_BIT
JOBCTL_TRAP_MASK = JOBCTL_TRAP_STOP | JOBCTL_TRAP_NOTIFY
JOBCTL_PENDING_MASK = JOBCTL_STOP_PENDING | JOBCTL_TRAP_MASK

# ptrace flags (include/linux/ptrace.h:29-45)
PT_PTRACED = 0x00000001
PT_DTRACE = 0x00000002
PT_SEIZED = 0x00010000
PT_OPT_FLAG_SHIFT = 3
PT_TRACESYSGOOD = 1 << PT_OPT_FLAG_SHIFT
PT_EXITKILL = PTRACE_O_EXITKILL << PT_OPT_FLAG_SHIFT  # include/linux/ptrace.h:47


class PIDTYPE(enum.IntEnum):
    """enum pid_type (include/linux/pid.h:7-14)."""

    PIDTYPE_PID = 0
    PIDTYPE_TGID = 1
    PIDTYPE_PGID = 2
    PIDTYPE_SID = 3


PIDTYPE_MAX = 4

# NOTE: the enum members under their kernel names as module globals, for the hot paths: in Python 3.11 an enum
# class attribute (PIDTYPE.PIDTYPE_PID) is a descriptor call of about 0.1 us; these are the same members.
PIDTYPE_PID = PIDTYPE.PIDTYPE_PID
PIDTYPE_TGID = PIDTYPE.PIDTYPE_TGID
PIDTYPE_PGID = PIDTYPE.PIDTYPE_PGID
PIDTYPE_SID = PIDTYPE.PIDTYPE_SID
TASK_RUNNING = TaskState.TASK_RUNNING
TASK_INTERRUPTIBLE = TaskState.TASK_INTERRUPTIBLE
TASK_UNINTERRUPTIBLE = TaskState.TASK_UNINTERRUPTIBLE
TASK_NEW = TaskState.TASK_NEW
TASK_DEAD = TaskState.TASK_DEAD
TASK_WAKEKILL = TaskState.TASK_WAKEKILL
TASK_KILLABLE = TaskState.TASK_KILLABLE
TASK_STOPPED = TaskState.TASK_STOPPED
TASK_TRACED = TaskState.TASK_TRACED
EXIT_ZOMBIE = TaskState.EXIT_ZOMBIE
EXIT_DEAD = TaskState.EXIT_DEAD


@dataclass(slots=True, frozen=True)
class SigAction:
    """struct k_sigaction / sigaction (include/linux/signal_types.h:49-62): immutable, shared freely."""

    sa_handler: int = 0
    sa_flags: int = 0
    sa_mask: int = 0
    sa_restorer: int = 0


@dataclass(slots=True, frozen=True)
class SigQueue:
    """A queued siginfo (struct sigqueue, include/linux/signal_types.h:22-28), reduced to its fields."""

    si_signo: int
    si_code: int = 0
    si_pid: int = 0
    si_uid: int = 0
    si_status: int = 0


@dataclass(slots=True, eq=False)
class Sigpending:
    """struct sigpending (include/linux/signal_types.h:30-33): a bitmask and the queued siginfos."""

    signal: int = 0
    list: list[SigQueue] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class SighandStruct:
    """struct sighand_struct (include/linux/sched/signal.h:19-24): the _NSIG handlers, refcounted.

    NOTE: ``action`` is an immutable tuple, so copy_sighand's memcpy of the table is a shared reference
    and a write (``set_action``) replaces the tuple: a forked child costs no 64-slot copy.
    """

    count: int = 1
    action: Sequence[SigAction] = field(default_factory=lambda: tuple(SigAction() for _ in range(_NSIG)))

    def set_action(self, index: int, act: SigAction) -> None:
        """``action[index] = act``."""
        actions = tuple(self.action)
        self.action = (*actions[:index], act, *actions[index + 1:])


@dataclass(slots=True, eq=False)
class MultiprocessSignals:
    """struct multiprocess_signals (sched/signal.h:71-74): group signals held back during a fork."""

    signal: int = 0


@dataclass(slots=True, eq=False)
class SignalStruct:
    """struct signal_struct (include/linux/sched/signal.h:82-237): state shared by a thread group."""

    sigcnt: int = 1
    live: int = 1
    nr_threads: int = 1
    thread_head: list[Task] = field(default_factory=list)
    curr_target: Task | None = None
    shared_pending: Sigpending = field(default_factory=Sigpending)
    multiprocess: list[MultiprocessSignals] = field(default_factory=list)
    group_exit_code: int = 0
    group_exit_task: Task | None = None
    notify_count: int = 0
    group_stop_count: int = 0
    flags: int = 0
    is_child_subreaper: bool = False
    has_child_subreaper: bool = False
    pids: list[Pid | None] = field(default_factory=lambda: [None] * PIDTYPE_MAX)
    leader: int = 0
    tty: object | None = None
    # rlim: a tuple, so that copy_signal's memcpy shares it until set_rlim replaces it
    rlim: tuple[tuple[int, int], ...] = ((RLIM_INFINITY, RLIM_INFINITY),) * RLIM_NLIMITS
    oom_score_adj: int = 0
    oom_score_adj_min: int = 0
    # resource usage of dead threads, and of waited-for children (sched/signal.h:170-190)
    utime: int = 0
    stime: int = 0
    cutime: int = 0
    cstime: int = 0
    nvcsw: int = 0
    nivcsw: int = 0
    cnvcsw: int = 0
    cnivcsw: int = 0
    min_flt: int = 0
    maj_flt: int = 0
    cmin_flt: int = 0
    cmaj_flt: int = 0
    maxrss: int = 0
    cmaxrss: int = 0
    autogroup: object | None = None

    def set_rlim(self, resource: int, value: tuple[int, int]) -> None:
        """``rlim[resource] = value``: a new tuple, as the old one may be shared with the processes forked from this one."""
        self.rlim = (*self.rlim[:resource], value, *self.rlim[resource + 1 :])


@dataclass(slots=True, eq=False)
class Completion:
    """struct completion (include/linux/completion.h:26-29): ``done`` count and its sleepers."""

    done: int = 0
    waiters: list[Task] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class IoContext:
    """struct io_context (include/linux/iocontext.h:100-125): block I/O priority, CLONE_IO shares it."""

    refcount: int = 1
    active_ref: int = 1
    nr_tasks: int = 1
    ioprio: int = 0


@dataclass(slots=True, eq=False)
class SemUndoList:
    """struct sem_undo_list (ipc/sem.c:151-155): SEM_UNDO records, shared by CLONE_SYSVSEM."""

    refcnt: int = 1


@dataclass(slots=True, eq=False)
class PtRegs:
    """The user registers of struct pt_regs (arch/x86/include/asm/ptrace.h) the model needs."""

    ax: int = 0
    sp: int = 0
    ip: int = 0


@dataclass(slots=True, frozen=True)
class RtSigframe:
    """struct rt_sigframe (arch/x86/include/asm/sigframe.h:60-65): what setup_rt_frame pushes on the user stack.

    ``ksig`` is the signal, its siginfo and the action whose handler the frame enters;
    ``uc_sigmask`` the blocked mask before the delivery (uc.uc_sigmask), which rt_sigreturn restores.
    """

    ksig: KSignal
    uc_sigmask: int


@dataclass(slots=True, eq=False)
class ThreadStruct:
    """struct thread_struct (arch/x86/include/asm/processor.h:470-520): the TLS bases."""

    fsbase: int = 0
    gsbase: int = 0


@dataclass(slots=True, eq=False)
class SchedEntity:
    """struct sched_entity (include/linux/sched.h:447-480): CFS bookkeeping."""

    vruntime: int = 0
    sum_exec_runtime: int = 0
    exec_start: int = 0
    nr_migrations: int = 0


@dataclass(slots=True, eq=False)
class Task:
    """struct task_struct (include/linux/sched.h:629-1290), the fields forklab models.

    ``waits_on`` has no kernel field of that name: it names the wait queue or completion a
    sleeping task is on (the kernel finds it from the stack), so users can see why it sleeps.
    ``sigframes`` stands for the signal frames on the task's user stack (the model has no user
    memory for them): handle_signal pushes one per handler it sets up, the innermost last, and
    rt_sigreturn pops the innermost. It is a tuple, so a task copy (fork: the child's stack is
    a copy of the parent's) has the same frames without sharing a list. ``user_handlers`` (no kernel field) says who returns
    through them: True while a driver of user code (the program runner) runs the handlers and
    calls rt_sigreturn itself; False for a task driven by kernel calls alone, which has no
    handler code, so each handler returns at once (arch/x86/entry/common.py makes its
    rt_sigreturn on the way to user mode).
    """

    pid: int = 0
    tgid: int = 0
    comm: str = ""
    state: TaskState = TaskState.TASK_RUNNING
    exit_state: TaskState = TaskState.TASK_RUNNING
    exit_code: int = 0
    exit_signal: int = 0
    pdeath_signal: int = 0
    flags: int = 0  # PF_* bits
    jobctl: int = 0
    usage: int = 1
    rcu_users: int = 2
    real_parent: Task | None = None
    parent: Task | None = None
    group_leader: Task | None = None
    children: list[Task] = field(default_factory=list)
    ptraced: list[Task] = field(default_factory=list)
    ptrace: int = 0
    ptrace_message: int = 0
    ptrace_events: list[tuple[int, int]] = field(default_factory=list)
    mm: MmStruct | None = None
    active_mm: MmStruct | None = None
    files: FilesStruct | None = None
    fs: FsStruct | None = None
    sighand: SighandStruct | None = None
    signal: SignalStruct | None = None
    cred: Cred | None = None
    real_cred: Cred | None = None
    nsproxy: Nsproxy | None = None
    thread_pid: Pid | None = None
    pid_links: list[Pid | None] = field(default_factory=lambda: [None] * PIDTYPE_MAX)
    vfork_done: Completion | None = None
    set_child_tid: int = 0
    clear_child_tid: int = 0
    blocked: int = 0
    pending: Sigpending = field(default_factory=Sigpending)
    sas_ss_sp: int = 0
    sas_ss_size: int = 0
    sas_ss_flags: int = 0
    io_context: IoContext | None = None
    sysvsem_undo_list: SemUndoList | None = None
    seccomp_mode: int = 0
    no_new_privs: bool = False
    self_exec_id: int = 0
    parent_exec_id: int = 0
    start_time: int = 0
    utime: int = 0
    stime: int = 0
    min_flt: int = 0
    maj_flt: int = 0
    nvcsw: int = 0
    nivcsw: int = 0
    fail_nth: int = 0
    timer_slack_ns: int = 50000
    default_timer_slack_ns: int = 50000
    personality: int = 0
    # scheduler (include/linux/sched.h:660-700)
    on_rq: int = 0
    prio: int = 120
    static_prio: int = 120
    normal_prio: int = 120
    rt_priority: int = 0
    policy: int = 0
    sched_reset_on_fork: bool = False
    sched_class: str = "fair"
    se: SchedEntity = field(default_factory=SchedEntity)
    cpu: int = 0
    recent_used_cpu: int = 0
    cpus_mask: frozenset[int] = frozenset()
    uclamp_req: tuple[int, int] = (0, 1024)
    # registers and arch state
    regs: PtRegs = field(default_factory=PtRegs)
    thread: ThreadStruct = field(default_factory=ThreadStruct)
    rseq: int = 0
    cgroups: Cgroup | None = None
    ioprio_set: bool = False
    waits_on: str = ""
    sigframes: tuple[RtSigframe, ...] = ()
    user_handlers: bool = False
    restart_block: RestartBlock = RestartBlock()
    # the hrtimer_sleeper on the task's kernel stack while it sleeps in do_nanosleep (no kernel field)
    nanosleep_sleeper: HrtimerSleeper | None = None

    def __repr__(self) -> str:
        return f"<Task pid={self.pid} tgid={self.tgid} comm={self.comm!r} state={self.state!r}>"


def set_current_state_sleep(k: KernelState, t: Task, state: TaskState, waits_on: str) -> None:
    """Put ``t`` to sleep in ``state`` on ``waits_on``, then __schedule takes it off its runqueue
    (include/linux/sched.h:193-200; kernel/sched/core.c:4036-4047)."""
    from forklab.kernel.sched.core import deactivate_task  # kernel/sched/core.py imports this module

    t.state = state
    t.waits_on = waits_on
    t.nvcsw += 1  # __schedule counts a switch away from a sleeping task as voluntary (kernel/sched/core.c:4047, 4075)
    deactivate_task(k, t)
    if k.listeners:
        k.trace("sleep", "kernel/sched/core.c:4047", f"task {t.pid} sleeps ({state!r}) on {waits_on}", tid=t.pid)


def is_global_init(tsk: Task) -> bool:
    """The task's thread group is pid 1 of the initial pid namespace (include/linux/sched.h:1448-1451)."""
    return tsk.group_leader is not None and tsk.group_leader.thread_pid is not None \
        and tsk.group_leader.thread_pid.numbers[0].nr == 1


@dataclass(slots=True)
class KernelCloneArgs:
    """struct kernel_clone_args (include/linux/sched/task.h:20-32): clone arguments after parsing.

    Pointers are user addresses in the caller's memory (0 = NULL). ``set_tid`` is the kernel
    copy of the array.
    """

    flags: int = 0
    pidfd: int = 0
    child_tid: int = 0
    parent_tid: int = 0
    exit_signal: int = 0
    stack: int = 0
    stack_size: int = 0
    tls: int = 0
    set_tid: list[int] = field(default_factory=list)
    cgroup: int = 0  # 5.7+
