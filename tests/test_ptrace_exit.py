"""A tracer's exit: exit_ptrace -> __ptrace_detach (kernel/ptrace.c:524-548, 580-591; kernel/exit.c:611-612).

A zombie tracee waits for its tracer's wait. When the tracer exits instead, __ptrace_detach gives
the zombie what ptrace held back: a non-leader thread is released (EXIT_DEAD and release_task via
forget_original_parent's dead list), a leader alone in its group is reported to its real parent
(and released if that parent reaps automatically).
"""

from __future__ import annotations

from conftest import fork_child

from forklab import Kernel, SigAction, Task, TaskState
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    PTRACE_O_EXITKILL,
    PTRACE_SEIZE,
    SIG_IGN,
    SIGCHLD,
    SIGKILL,
    WNOHANG,
)

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD


def seize(k: Kernel, tracer: Task, t: Task, options: int = 0) -> None:
    k.ptrace(tracer, PTRACE_SEIZE, t.pid, 0, options)
    assert t.parent is tracer and t in tracer.ptraced


def test_a_traced_thread_left_a_zombie_is_released_when_its_tracer_exits(k):
    """The reported bug: the thread stayed a zombie for ever, so its leader was never reported or reaped."""
    parent = fork_child(k)
    p = fork_child(k, parent)
    t = k.find_task(k.clone(p, THREAD))
    tracer = fork_child(k)
    seize(k, tracer, t)
    k.exit(t, 0)
    assert t.exit_state == TaskState.EXIT_ZOMBIE  # a traced thread waits for its tracer (kernel/exit.c:667-671)
    k.exit(tracer, 0)
    assert t.exit_state == TaskState.EXIT_DEAD and t not in p.signal.thread_head  # released
    k.exit(p, 4)  # the leader is now alone: its parent is told at once
    assert k.wait4(parent, p.pid, 0) == (p.pid, 4 << 8)
    k.check_invariants()


def test_a_traced_zombie_leader_is_reported_to_its_real_parent_when_the_tracer_exits(k):
    """dead = do_notify_parent(p, p->exit_signal) for a leader whose real parent is another group (kernel/ptrace.c:
    533-535): the parent gets SIGCHLD and can reap it; it is not released before."""
    parent = fork_child(k)
    p = fork_child(k, parent)
    tracer = fork_child(k)
    seize(k, tracer, p)
    k.exit(p, 2)
    assert p.exit_state == TaskState.EXIT_ZOMBIE
    assert k.wait4(parent, p.pid, WNOHANG) == (0, 0)  # the zombie tracee is its tracer's to report
    k.exit(tracer, 0)
    assert p.exit_state == TaskState.EXIT_ZOMBIE and p.parent is parent and not p.ptrace
    assert k.wait4(parent, p.pid, 0) == (p.pid, 2 << 8)
    k.check_invariants()


def test_a_zombie_whose_real_parent_ignores_sigchld_is_reaped_by_the_detach(k):
    """The real parent ignores SIGCHLD: do_notify_parent says autoreap, so the detach releases it."""
    parent = fork_child(k)
    k.rt_sigaction(parent, SIGCHLD, SigAction(SIG_IGN))
    p = fork_child(k, parent)
    tracer = fork_child(k)
    seize(k, tracer, p)
    k.exit(p, 0)
    assert p.exit_state == TaskState.EXIT_ZOMBIE
    k.exit(tracer, 0)
    assert p.exit_state == TaskState.EXIT_DEAD and p not in parent.children
    k.check_invariants()


def test_a_tracer_in_the_real_parents_group_that_ignores_children_reaps_it(k):
    """Tracer and real parent share a thread group and SIGCHLD is SIG_IGN: __wake_up_parent and dead
    (kernel/ptrace.c:536-539)."""
    parent = fork_child(k)
    p = fork_child(k, parent)
    tracer = k.find_task(k.clone(parent, THREAD))
    seize(k, tracer, p)
    k.exit(p, 0)
    k.rt_sigaction(parent, SIGCHLD, SigAction(SIG_IGN))
    k.exit(tracer, 0)
    assert p.exit_state == TaskState.EXIT_DEAD and p not in parent.children
    k.check_invariants()


def test_ptrace_o_exitkill_kills_the_tracees_of_an_exiting_tracer(k):
    """PT_EXITKILL: send_sig_info(SIGKILL, SEND_SIG_PRIV) to each such tracee (kernel/ptrace.c:585-586)."""
    parent = fork_child(k)
    p = fork_child(k, parent)
    tracer = fork_child(k)
    seize(k, tracer, p, PTRACE_O_EXITKILL)
    k.exit(tracer, 0)
    assert p.exit_state == TaskState.EXIT_ZOMBIE and not p.ptrace
    assert k.wait4(parent, p.pid, 0) == (p.pid, SIGKILL)
    k.check_invariants()
