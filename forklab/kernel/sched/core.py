"""The scheduler's part in fork (kernel/sched/core.c, kernel/sched/fair.c).

The model has no CPU time: it keeps each task's scheduling class, priority and runqueue
membership, which is what fork decides. ``sched_fork`` puts the child in TASK_NEW so nothing
can wake it before it is complete; ``wake_up_new_task`` makes it TASK_RUNNING and enqueues it
on the CPU chosen by fork balancing. Simplification: fork balancing picks the allowed CPU
with the fewest runnable tasks (lowest number on ties), where the kernel walks its sched
domains (find_idlest_cpu); CFS placement gives the child the parent's vruntime plus one
slice (START_DEBIT) without modelling min_vruntime's motion over time.
"""

from __future__ import annotations

import errno
from collections.abc import MutableSequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.list import ListHead, long_list
from forklab.include.linux.sched import TASK_NEW, TASK_NORMAL, TASK_RUNNING, Task, TaskState
from forklab.kernel.pid import pid_vnr
from forklab.kernel.sched.deadline import MAX_DL_PRIO, dl_prio
from forklab.kernel.sched.fair import select_task_rq_fair, task_fork_fair
from forklab.kernel.sched.rt import MAX_RT_PRIO, MAX_USER_RT_PRIO, rt_prio
from forklab.trace import traced
from forklab.uapi import SCHED_BATCH, SCHED_DEADLINE, SCHED_FIFO, SCHED_IDLE, SCHED_NORMAL, SCHED_RR

if TYPE_CHECKING:
    from forklab.state import KernelState

NICE_0_PRIO = 120
SCHED_CAPACITY_SCALE = 1024  # include/linux/sched.h:386; uclamp_none(UCLAMP_MAX)


@dataclass(slots=True, eq=False)
class Rq:
    """struct rq (kernel/sched/sched.h:886-1020): one CPU's runnable tasks."""

    cpu: int
    nr_running: int = 0
    queue: MutableSequence[Task] = field(default_factory=list)  # a list, or its ListHead form once long
    min_vruntime: int = 0


def __normal_prio(p: Task) -> int:
    """The priority the policy gives, ignoring PI boosts (kernel/sched/core.c:1486-1497)."""
    if p.policy == SCHED_DEADLINE:
        return MAX_DL_PRIO - 1
    if p.policy in (SCHED_FIFO, SCHED_RR):
        return MAX_RT_PRIO - 1 - p.rt_priority
    return p.static_prio


@traced
def sched_fork(k: KernelState, clone_flags: int, p: Task, current: Task) -> None:
    """Scheduler set-up of the child: TASK_NEW, priority, reset-on-fork, class, CPU (kernel/sched/core.c:2835-2914)."""
    p.on_rq = 0
    p.se.exec_start = p.se.sum_exec_runtime = p.se.nr_migrations = 0
    p.state = TASK_NEW
    p.prio = current.normal_prio
    p.uclamp_req = (0, SCHED_CAPACITY_SCALE) if p.sched_reset_on_fork else p.uclamp_req
    if p.sched_reset_on_fork:
        if p.policy in (SCHED_DEADLINE, SCHED_FIFO, SCHED_RR):
            p.policy = SCHED_NORMAL
            p.static_prio = NICE_0_PRIO
            p.rt_priority = 0
        elif p.static_prio < NICE_0_PRIO:
            p.static_prio = NICE_0_PRIO
        p.prio = p.normal_prio = __normal_prio(p)
        p.sched_reset_on_fork = False
    if dl_prio(p.prio):
        raise kerr(errno.EAGAIN, "a SCHED_DEADLINE task may not fork without SCHED_RESET_ON_FORK",
                   "kernel/sched/core.c:2875")
    p.sched_class = "rt" if rt_prio(p.prio) else "fair"
    p.cpu = current.cpu
    if p.sched_class == "fair":
        task_fork_fair(k, p, current)
    if k.listeners:
        k.trace("sched_fork", "kernel/sched/core.c:2835", f"TASK_NEW, class {p.sched_class}, prio {p.prio}")


def activate_task(k: KernelState, p: Task) -> None:
    """Enqueue ``p`` on its CPU's runqueue (kernel/sched/core.c:1533-1542)."""
    if p.on_rq:
        return
    rq = k.runqueues[p.cpu]
    rq.queue = long_list(rq.queue, ListHead)  # NOTE: O(1) once long (include/linux/list.py)
    rq.queue.append(p)
    rq.nr_running += 1
    p.on_rq = 1


def deactivate_task(k: KernelState, p: Task) -> None:
    """Dequeue ``p`` from its runqueue (kernel/sched/core.c:1544-1552)."""
    if not p.on_rq:
        return
    rq = k.runqueues[p.cpu]
    rq.queue.remove(p)
    rq.nr_running -= 1
    p.on_rq = 0


@traced
def wake_up_new_task(k: KernelState, p: Task) -> None:
    """Make the new child runnable on the CPU fork balancing picks (kernel/sched/core.c:2939-2977)."""
    p.state = TASK_RUNNING
    p.recent_used_cpu = p.cpu
    p.cpu = select_task_rq_fair(k, p)
    activate_task(k, p)
    if k.listeners:
        k.trace("wake_up_new_task", "kernel/sched/core.c:2939", f"task {p.pid} runnable on CPU {p.cpu}", tid=p.pid)


def try_to_wake_up(k: KernelState, p: Task, state: TaskState) -> bool:
    """Wake ``p`` if its state is one of ``state``: TASK_RUNNING and enqueued; False otherwise
    (kernel/sched/core.c:2512-2654)."""
    if not p.state & state:
        return False
    p.state = TASK_RUNNING
    p.waits_on = ""
    activate_task(k, p)
    if k.listeners:
        k.trace("wake_up_process", "kernel/sched/core.c:2661", f"task {p.pid} runs again", tid=p.pid)
    return True


def wake_up_process(k: KernelState, p: Task) -> bool:
    """Wake ``p`` from an interruptible or uninterruptible sleep, not from a stop (kernel/sched/core.c:2661-2664)."""
    return try_to_wake_up(k, p, TASK_NORMAL)


def wake_up_state(k: KernelState, p: Task, state: TaskState) -> bool:
    """Wake ``p`` if it sleeps in one of the states of ``state`` (kernel/sched/core.c:2667-2670)."""
    return try_to_wake_up(k, p, state)


@traced
def schedule_tail(k: KernelState, p: Task) -> None:
    """The child's first schedule writes CLONE_CHILD_SETTID (kernel/sched/core.c:3301-3323).

    The model lets a new child take its first schedule at once, right after wake_up_new_task;
    on Linux it happens whenever the child first runs. The write goes to the child's memory,
    as the child sees its own pid; errors are ignored. calculate_sigpending has nothing to set:
    the model computes TIF_SIGPENDING from the queues.
    """
    if not p.set_child_tid:
        return
    from forklab.mm.uaccess import put_user_int  # import cycle: mm/uaccess.py's imports lead back to this module

    saved = k.current
    k.current = p
    try:
        assert p.thread_pid is not None
        put_user_int(k, p, p.set_child_tid, pid_vnr(p, p.thread_pid))
    finally:
        k.current = saved
    if k.listeners:
        k.trace("schedule_tail", "kernel/sched/core.c:3320", f"child wrote its tid at {p.set_child_tid:#x}", tid=p.pid)


def sched_setscheduler(k: KernelState, p: Task, policy: int, priority: int, reset_on_fork: bool) -> None:
    """Set policy and RT priority (kernel/sched/core.c:4794-5010, the checks fork cares about)."""
    if policy not in (SCHED_NORMAL, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR, SCHED_DEADLINE):
        raise kerr(errno.EINVAL, f"unknown scheduling policy {policy}", "kernel/sched/core.c:4817")
    rt = policy in (SCHED_FIFO, SCHED_RR)
    if (rt and not 1 <= priority <= MAX_USER_RT_PRIO - 1) or (not rt and priority != 0):
        raise kerr(errno.EINVAL, "priority out of range for the policy", "kernel/sched/core.c:4829")
    p.policy = policy
    p.rt_priority = priority if rt else 0
    p.sched_reset_on_fork = reset_on_fork
    p.normal_prio = __normal_prio(p)
    p.prio = p.normal_prio
    p.sched_class = "dl" if dl_prio(p.prio) else "rt" if rt_prio(p.prio) else "fair"


def do_sched_yield(k: KernelState, current: Task) -> int:
    """sched_yield(2): the class's yield_task, then schedule(); returns 0 (kernel/sched/core.c:5589-5614).

    The model's runqueues keep no pick order that a yield changes: CFS's skip buddy and rt's
    requeue order only the next pick, which the program runner makes at its own choice point
    before every call, so the task stays runnable where it is and no switch is counted.
    """
    if k.listeners:
        k.trace("sched_yield", "kernel/sched/core.c:5589", f"task {current.pid} yields", tid=current.pid)
    return 0
