"""ptrace auto-attach at fork (kernel/fork.c:2418-2428, 2243-2244, 2457-2458; include/linux/ptrace.h:205-222)."""

from __future__ import annotations

from conftest import fork_child

from forklab.uapi import (
    CLONE_PTRACE,
    CLONE_UNTRACED,
    PTRACE_EVENT_CLONE,
    PTRACE_EVENT_FORK,
    PTRACE_EVENT_VFORK,
    PTRACE_O_TRACECLONE,
    PTRACE_O_TRACEFORK,
    PTRACE_O_TRACEVFORK,
    PTRACE_SEIZE,
    SIG_IGN,
    SIGCHLD,
    SIGUSR1,
)


def seized(k, options):
    tracer = fork_child(k)
    tracee = fork_child(k)
    k.ptrace(tracer, PTRACE_SEIZE, tracee.pid, 0, options)
    assert tracee.ptrace and tracee.parent is tracer and tracee.real_parent is k.init_task
    return tracer, tracee


def test_tracefork_auto_attaches_child_and_reports_event(k):
    """_do_fork picks PTRACE_EVENT_FORK for exit_signal SIGCHLD (2418-2428); ptrace_init_task links the child
    to the tracer (include/linux/ptrace.h:213-216); ptrace_event_pid reports the pid (2457-2458)."""
    tracer, tracee = seized(k, PTRACE_O_TRACEFORK)
    pid = k.fork(tracee)
    c = k.find_task(pid)
    assert c.ptrace == tracee.ptrace
    assert c.parent is tracer and c.real_parent is tracee
    assert c in tracer.ptraced and c in tracee.children
    assert (PTRACE_EVENT_FORK, pid) in tracee.ptrace_events
    k.check_invariants()


def test_clone_untraced_suppresses_auto_attach(k):
    """CLONE_UNTRACED: no event is chosen (kernel/fork.c:2418), the child is not traced."""
    tracer, tracee = seized(k, PTRACE_O_TRACEFORK)
    pid = k.clone(tracee, CLONE_UNTRACED | SIGCHLD)
    c = k.find_task(pid)
    assert c.ptrace == 0 and c.parent is tracee and c not in tracer.ptraced
    assert all(ev[1] != pid for ev in tracee.ptrace_events)
    k.check_invariants()


def test_untraced_beats_clone_ptrace(k):
    """ptrace_init_task(p, CLONE_PTRACE || trace) — with CLONE_UNTRACED trace is 0, but CLONE_PTRACE still
    attaches (kernel/fork.c:2243-2244); no event is reported."""
    tracer, tracee = seized(k, 0)
    pid = k.clone(tracee, CLONE_PTRACE | CLONE_UNTRACED | SIGCHLD)
    c = k.find_task(pid)
    assert c.parent is tracer and c.ptrace
    assert tracee.ptrace_events == []
    k.check_invariants()


def test_event_choice_depends_on_exit_signal_and_vfork(k):
    """VFORK event if CLONE_VFORK, else CLONE event if exit_signal != SIGCHLD, else FORK (kernel/fork.c:2419-2424);
    an event the tracer did not enable means no auto-attach (2426-2427)."""
    _tracer, tracee = seized(k, PTRACE_O_TRACEFORK)
    k.rt_sigaction(tracee, SIGUSR1, SIG_IGN)
    pid = k.clone(tracee, SIGUSR1)  # a CLONE event, not enabled
    assert k.find_task(pid).ptrace == 0
    assert all(ev[1] != pid for ev in tracee.ptrace_events)
    k.check_invariants()


def test_traceclone_attaches_non_sigchld_children(k):
    """PTRACE_O_TRACECLONE enables PTRACE_EVENT_CLONE (kernel/fork.c:2421-2422)."""
    tracer, tracee = seized(k, PTRACE_O_TRACECLONE)
    k.rt_sigaction(tracee, SIGUSR1, SIG_IGN)
    pid = k.clone(tracee, SIGUSR1)
    assert k.find_task(pid).parent is tracer
    assert (PTRACE_EVENT_CLONE, pid) in tracee.ptrace_events
    assert k.find_task(k.fork(tracee)).ptrace == 0  # FORK event not enabled
    k.check_invariants()


def test_tracevfork_reports_vfork_event(k):
    """PTRACE_EVENT_VFORK for CLONE_VFORK (kernel/fork.c:2419-2420)."""
    tracer, tracee = seized(k, PTRACE_O_TRACEVFORK | PTRACE_O_TRACEFORK)
    pid = k.vfork(tracee)
    c = k.find_task(pid)
    assert c.parent is tracer
    assert (PTRACE_EVENT_VFORK, pid) in tracee.ptrace_events
    assert (PTRACE_EVENT_FORK, pid) not in tracee.ptrace_events
    k.exit(c, 0)
    k.check_invariants()

