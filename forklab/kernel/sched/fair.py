"""CFS placement and fork balancing (kernel/sched/fair.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.sched import Task

if TYPE_CHECKING:
    from forklab.state import KernelState


SCHED_SLICE_NS = 3_000_000  # sysctl_sched_min_granularity * nr_latency, kernel/sched/fair.c:38-75 (default 3 ms)


def task_fork_fair(k: KernelState, p: Task, current: Task) -> None:
    """Place the child's vruntime after the parent's (kernel/sched/fair.c:10339-10368)."""
    rq = k.runqueues[p.cpu]
    p.se.vruntime = max(current.se.vruntime, rq.min_vruntime) + SCHED_SLICE_NS


def select_task_rq_fair(k: KernelState, p: Task) -> int:
    """Fork balancing: the least loaded allowed CPU (kernel/sched/fair.c:select_task_rq_fair, simplified)."""
    allowed = sorted(p.cpus_mask) if p.cpus_mask else list(range(len(k.runqueues)))
    return min(allowed, key=lambda cpu: (k.runqueues[cpu].nr_running, cpu))
