"""Races inside copy_process, made deterministic: a trace listener acts in the middle of a fork.

The model has no concurrency, but a listener on the trace may make *another* task call into
the kernel at a chosen step of a fork in progress. That reproduces, step for step, the
windows the kernel guards: group signals delayed by the fork fence, a fatal signal that turns
the fork into EINTR, and a pid namespace whose init dies during the fork (ENOMEM).
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest

from forklab import Kernel, SigAction, Task, TaskKilled, TraceEvent
from forklab.include.linux.sched import TaskState
from forklab.uapi import CLONE_NEWPID, SIGCHLD, SIGKILL, SIGUSR1


def at_step(k: Kernel, kind: str, action: Callable[[], None]) -> None:
    """Run ``action`` once, when the trace first reports ``kind``."""
    fired = False

    def listener(event: TraceEvent) -> None:
        nonlocal fired
        if event.ph == "i" and event.kind == kind and not fired:  # a decision, not the call entry
            fired = True
            action()

    k.listeners.append(listener)


def two_in_one_group(k: Kernel) -> tuple[Task, Task]:
    """Two processes in init's process group, each with a SIGUSR1 handler."""
    a = k.find_task(k.fork(k.init_task))
    b = k.find_task(k.fork(k.init_task))
    for t in (a, b):
        k.rt_sigaction(t, SIGUSR1, SigAction(0x4000))
    return a, b


def test_group_signal_during_fork_is_delayed_into_the_child() -> None:
    """A signal sent to the process group while a fork is in progress becomes the child's
    shared pending set (kernel/signal.c:1166-1172, kernel/fork.c:2256)."""
    k = Kernel()
    a, b = two_in_one_group(k)
    at_step(k, "dup_mmap", lambda: k.kill(b, 0, SIGUSR1))
    pid = k.fork(a)
    child = k.find_task(pid)
    assert child.signal is not None and child.signal.shared_pending.signal & (1 << (SIGUSR1 - 1))
    assert (a.pid, SIGUSR1, "handler 0x4000 ran") in k.signals_delivered
    k.check_invariants()


def test_signal_to_one_process_during_fork_is_not_delayed() -> None:
    """kill(pid) is PIDTYPE_TGID: not recorded for forks in progress (kernel/signal.c:1166)."""
    k = Kernel()
    a, b = two_in_one_group(k)
    at_step(k, "dup_mmap", lambda: k.kill(b, a.pid, SIGUSR1))
    child = k.find_task(k.fork(a))
    assert child.signal is not None and child.signal.shared_pending.signal == 0
    k.check_invariants()


def test_fatal_signal_during_fork_is_eintr_and_kills_the_caller() -> None:
    """SIGKILL arriving during the fork: copy_process fails at the fatal-signal check with EINTR
    (kernel/fork.c:2233-2236), unwinds, and the caller dies on its way back to user mode."""
    k = Kernel()
    a, b = two_in_one_group(k)
    steps: list[str] = []
    k.listeners.append(lambda e: steps.append(f"{e.kind}:{e.detail}"))
    at_step(k, "alloc_pid", lambda: k.kill(b, a.pid, SIGKILL))
    nr_before = k.nr_threads
    with pytest.raises(TaskKilled):
        k.fork(a)
    assert "cleanup:bad_fork_cancel_cgroup" in steps and "cleanup:bad_fork_free" in steps
    assert a.exit_state == TaskState.EXIT_ZOMBIE
    assert k.nr_threads == nr_before  # the child was never published
    k.check_invariants()


def test_pid_namespace_init_dying_during_fork_is_enomem() -> None:
    """The new pid namespace loses PIDNS_ADDING while the fork runs: ENOMEM at kernel/fork.c:2227."""
    k = Kernel()
    a, b = two_in_one_group(k)
    k.unshare(a, CLONE_NEWPID)
    ns_init = k.find_task(k.fork(a))  # pid 1 of the new namespace
    at_step(k, "alloc_pid", lambda: k.kill(b, ns_init.pid, SIGKILL))
    with pytest.raises(OSError) as info:
        k.clone(a, SIGCHLD)
    assert info.value.errno == errno.ENOMEM and "kernel/fork.c:2227" in str(info.value)
    k.check_invariants()
    with pytest.raises(OSError) as again:
        k.fork(a)  # the dying namespace refuses every later fork in alloc_pid
    assert again.value.errno == errno.ENOMEM and "kernel/pid.c:274" in str(again.value)


def test_namespace_init_exit_kills_and_reaps_the_namespace() -> None:
    """When a pid namespace's init dies, every other member is killed and its children reaped
    (zap_pid_ns_processes, kernel/pid_namespace.c:179-262); their pids are freed."""
    k = Kernel()
    a = k.find_task(k.fork(k.init_task))
    k.unshare(a, CLONE_NEWPID)
    ns_init = k.find_task(k.fork(a))
    assert ns_init.thread_pid is not None
    ns = ns_init.thread_pid.numbers[1].ns
    member = k.find_task(k.fork(ns_init), ns)  # fork returns the pid as the caller's namespace sees it
    zombie = k.find_task(k.fork(ns_init), ns)
    k.exit(zombie, 0)
    grandchild = k.find_task(k.fork(member), ns)
    assert sorted(ns.idr) == [1, 2, 3, 4]
    k.exit(ns_init, 0)
    assert member.exit_state and grandchild.exit_state
    assert sorted(ns.idr) == [1]  # only the dead init's own pid, until its parent reaps it
    assert k.wait4(a, ns_init.pid, 0) == (ns_init.pid, 0)
    k.check_invariants()


def test_a_fault_in_the_global_init_panics() -> None:
    """force_sig_fault clears SIGNAL_UNKILLABLE (kernel/signal.c:1320-1325), so init dies of its own
    SIGSEGV and the kernel panics (kernel/exit.c:770); a namespace init just dies."""
    from forklab import KernelPanic, Segfault

    k = Kernel()
    with pytest.raises(KernelPanic):
        k.store(k.init_task, 0x1000, b"x")
    k = Kernel()
    a = k.find_task(k.fork(k.init_task))
    k.unshare(a, CLONE_NEWPID)
    ns_init = k.find_task(k.fork(a))
    with pytest.raises(Segfault) as info:
        k.store(ns_init, 0x1000, b"x")
    assert info.value.killed and ns_init.exit_state == TaskState.EXIT_ZOMBIE
    assert k.wait4(a, ns_init.pid, 0) == (ns_init.pid, 11)
    k.check_invariants()
