"""Scheduler set-up, signal_struct inheritance, mm accounting resets, ucount limits, vfork-done events.

The remaining per-task state rules of copy_process, each against its source line.
"""

from __future__ import annotations

import errno

import pytest

from forklab import Kernel, Recorder, TaskState, TraceEvent
from forklab.include.linux.user_namespace import UCOUNT
from forklab.uapi import (
    CLONE_NEWUSER,
    MAP_ANONYMOUS,
    MAP_LOCKED,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    PTRACE_EVENT_VFORK,
    PTRACE_EVENT_VFORK_DONE,
    PTRACE_O_TRACEVFORK,
    PTRACE_O_TRACEVFORKDONE,
    PTRACE_SEIZE,
    RLIMIT_NOFILE,
    SCHED_DEADLINE,
    SCHED_FIFO,
    SCHED_NORMAL,
    SCHED_RESET_ON_FORK,
    SIGCHLD,
)


def test_sched_deadline_parent_cannot_fork() -> None:
    """sched_fork: a SCHED_DEADLINE parent without reset-on-fork gets EAGAIN (kernel/sched/core.c:2875-2876)."""
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    k.sched_setscheduler(t, 0, SCHED_DEADLINE, 0)
    with pytest.raises(OSError) as info:
        k.fork(t)
    assert info.value.errno == errno.EAGAIN and "kernel/sched/core.c:2875" in str(info.value)
    k.sched_setscheduler(t, 0, SCHED_DEADLINE | SCHED_RESET_ON_FORK, 0)
    child = k.find_task(k.fork(t))  # reset-on-fork: the child is SCHED_NORMAL, nice 0 (2857-2873)
    assert (child.policy, child.static_prio, child.sched_class, child.sched_reset_on_fork) == (SCHED_NORMAL, 120, "fair", False)
    k.check_invariants()


def test_rt_parent_passes_its_class_unless_reset_on_fork() -> None:
    """The child inherits the parent's normal_prio and class; reset-on-fork drops RT (kernel/sched/core.c:2850-2880)."""
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    k.sched_setscheduler(t, 0, SCHED_FIFO, 10)
    rt_child = k.find_task(k.fork(t))
    assert (rt_child.policy, rt_child.prio, rt_child.sched_class) == (SCHED_FIFO, 89, "rt")
    k.sched_setscheduler(t, 0, SCHED_FIFO | SCHED_RESET_ON_FORK, 10)
    plain = k.find_task(k.fork(t))
    assert (plain.policy, plain.rt_priority, plain.prio, plain.sched_class) == (SCHED_NORMAL, 0, 120, "fair")


def test_child_is_task_new_until_wake_up_new_task_then_runs_on_a_runqueue() -> None:
    """sched_fork sets TASK_NEW (kernel/sched/core.c:2845); wake_up_new_task makes it runnable and enqueues it
    on the CPU fork balancing picks (2939-2977)."""
    k = Kernel(nr_cpus=2)
    seen: list[TaskState] = []

    def during(event: TraceEvent) -> None:
        if event.ph == "i" and event.kind == "copy_process":  # the decision: published, not yet woken
            seen.append(k.find_task(2).state)

    k.listeners.append(during)
    child = k.find_task(k.fork(k.init_task))
    assert seen == [TaskState.TASK_NEW]
    assert child.state == TaskState.TASK_RUNNING and child.on_rq == 1
    assert child.cpu == 1  # CPU 0 already runs init: the least loaded CPU is 1
    assert [rq.nr_running for rq in k.runqueues] == [1, 1]
    k.check_invariants()


def test_new_signal_struct_copies_rlimits_and_oom_score_adj() -> None:
    """copy_signal copies rlim[] and oom_score_adj(_min); the rest starts at zero (kernel/fork.c:1584-1594)."""
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    k.setrlimit(t, RLIMIT_NOFILE, (77, 88))
    assert t.signal is not None
    t.signal.oom_score_adj, t.signal.oom_score_adj_min = 500, 100  # as a write to /proc/<pid>/oom_score_adj would
    t.signal.is_child_subreaper = True
    child = k.find_task(k.fork(t))
    assert child.signal is not None and child.signal is not t.signal
    assert child.signal.rlim[RLIMIT_NOFILE] == (77, 88)
    assert (child.signal.oom_score_adj, child.signal.oom_score_adj_min) == (500, 100)
    assert not child.signal.is_child_subreaper and child.signal.has_child_subreaper  # kernel/fork.c:2261-2262


def test_dup_mm_resets_locked_vm_and_sets_hiwater() -> None:
    """mm_init zeroes locked_vm and RSS; dup_mm sets hiwater_rss/hiwater_vm from the copy (kernel/fork.c:1029-1033, 1364-1365)."""
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    addr = k.mmap(t, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED)
    k.store(t, addr, b"x")
    assert t.mm is not None and t.mm.locked_vm == 4
    child = k.find_task(k.fork(t))
    assert child.mm is not None
    assert child.mm.locked_vm == 0
    assert child.mm.hiwater_vm == child.mm.total_vm == t.mm.total_vm
    assert child.mm.hiwater_rss == sum(child.mm.rss_stat)
    k.check_invariants()


def test_max_user_namespaces_is_enospc() -> None:
    """inc_ucount against user.max_user_namespaces (kernel/user_namespace.c:81, kernel/ucount.c:189-210)."""
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    k.init_user_ns.ucount_max[UCOUNT.UCOUNT_USER_NAMESPACES] = 1  # as sysctl user.max_user_namespaces=1
    first = k.clone(t, CLONE_NEWUSER | SIGCHLD)
    with pytest.raises(OSError) as info:
        k.clone(t, CLONE_NEWUSER | SIGCHLD)
    assert info.value.errno == errno.ENOSPC and "kernel/user_namespace.c:81" in str(info.value)
    k.exit(k.find_task(first), 0)
    k.wait4(t, first, 0)  # the namespace dies with its last task: the count drops
    assert k.clone(t, CLONE_NEWUSER | SIGCHLD) > 0
    k.check_invariants()


def test_vfork_events_for_a_tracer() -> None:
    """_do_fork reports PTRACE_EVENT_VFORK after waking the child, then VFORK_DONE when the wait ends
    (kernel/fork.c:2457-2463)."""
    k = Kernel()
    tracer = k.find_task(k.fork(k.init_task))
    tracee = k.find_task(k.fork(k.init_task))
    k.ptrace(tracer, PTRACE_SEIZE, tracee.pid, 0, PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE)
    rec = Recorder()
    k.listeners.append(rec)
    child = k.vfork(tracee)
    assert tracee.ptrace_events == [(PTRACE_EVENT_VFORK, child)]
    k.exit(k.find_task(child), 0)
    assert tracee.ptrace_events == [(PTRACE_EVENT_VFORK, child), (PTRACE_EVENT_VFORK_DONE, child)]
    assert tracee.state == TaskState.TASK_RUNNING
    k.check_invariants()
