"""Signals around fork: the ERESTARTNOINTR fence, SIGKILL, and what a child inherits.

Sources: kernel/fork.c:1907-1917 (fence), 2256 (delayed group signals), kernel/signal.c
(complete_signal 989-1063, flush_signal_handlers 538-552), arch/x86/kernel/signal.c (restart).
"""

from __future__ import annotations

import errno

from conftest import expect_errno, fork_child

from forklab import SigAction
from forklab.uapi import (
    SIG_BLOCK,
    SIG_IGN,
    SIG_UNBLOCK,
    SIGCHLD,
    SIGKILL,
    SIGTERM,
    SIGUSR1,
    SIGUSR2,
    WNOHANG,
)


def bit(sig: int) -> int:
    return 1 << (sig - 1)


def test_fork_with_pending_caught_signal_delivers_it_then_succeeds(k):
    """signal_pending -> ERESTARTNOINTR (kernel/fork.c:1915-1917): the handler runs, the syscall is
    restarted and the fork succeeds; ERESTARTNOINTR never reaches user space."""
    t = fork_child(k)
    k.rt_sigaction(t, SIGUSR1, SigAction(0x4000))
    k.kill(k.init_task, t.pid, SIGUSR1)
    assert t.pending.signal | t.signal.shared_pending.signal
    n_children = len(t.children)
    pid = k.fork(t)
    assert pid > 0 and len(t.children) == n_children + 1
    assert (t.pid, SIGUSR1, "handler 0x4000 ran") in k.signals_delivered
    assert not (t.pending.signal | t.signal.shared_pending.signal) & bit(SIGUSR1)
    child = k.find_task(pid)
    assert not (child.pending.signal | child.signal.shared_pending.signal)
    k.check_invariants()


def test_restart_works_for_every_entry_point(k):
    """The fence is in copy_process, shared by fork, vfork, clone and clone3 (kernel/fork.c:1915)."""
    from forklab import CloneArgs

    t = fork_child(k)
    k.rt_sigaction(t, SIGUSR1, SigAction(0x4000))
    for call in (lambda: k.clone(t, SIGCHLD), lambda: k.clone3(t, CloneArgs(exit_signal=SIGCHLD))):
        k.kill(k.init_task, t.pid, SIGUSR1)
        before = len(k.signals_delivered)
        assert call() > 0
        assert k.signals_delivered[before:] == [(t.pid, SIGUSR1, "handler 0x4000 ran")]
    k.check_invariants()


def test_blocked_pending_signal_does_not_stop_fork(k):
    """signal_pending ignores blocked signals (include/linux/sched/signal.h:347-353); the child gets an empty
    private pending set (init_sigpending, kernel/fork.c:1985) but inherits the blocked mask."""
    t = fork_child(k)
    k.rt_sigaction(t, SIGUSR1, SigAction(0x4000))
    k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGUSR1))
    k.kill(k.init_task, t.pid, SIGUSR1)
    delivered = list(k.signals_delivered)
    c = fork_child(k, t)
    assert k.signals_delivered == delivered
    assert c.pending.signal == 0 and c.signal.shared_pending.signal == 0
    assert c.blocked & bit(SIGUSR1)
    assert (t.pending.signal | t.signal.shared_pending.signal) & bit(SIGUSR1)
    k.rt_sigprocmask(t, SIG_UNBLOCK, bit(SIGUSR1))
    k.fork(t)  # now pending and unblocked: delivered, then the fork restarts
    assert k.signals_delivered[len(delivered):] == [(t.pid, SIGUSR1, "handler 0x4000 ran")]
    k.check_invariants()


def test_ignored_signal_is_discarded_and_never_restarts_fork(k):
    """A signal whose handler is SIG_IGN is dropped at send time (kernel/signal.c:80-121)."""
    t = fork_child(k)
    k.rt_sigaction(t, SIGUSR2, SIG_IGN)
    k.kill(k.init_task, t.pid, SIGUSR2)
    assert not (t.pending.signal | t.signal.shared_pending.signal)
    n = len(k.signals_delivered)
    assert k.fork(t) > 0 and len(k.signals_delivered) == n
    k.check_invariants()


def test_fatal_pending_signal_kills_instead_of_forking(k):
    """A pending default-action SIGTERM makes the fork restart via get_signal, which kills the task
    (kernel/signal.c:2524-2760): no child is created."""
    from forklab import TaskKilled

    t = fork_child(k)
    k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGTERM))
    k.kill(k.init_task, t.pid, SIGTERM)
    total = k.total_forks
    try:
        k.rt_sigprocmask(t, SIG_UNBLOCK, bit(SIGTERM))  # a kernel delivers it on return from here ...
        k.fork(t)  # ... or, at the latest, the fork's ERESTARTNOINTR restart does
    except TaskKilled:
        pass
    else:
        raise AssertionError("fork returned although a fatal signal was pending")
    assert t.exit_state and k.total_forks == total
    assert k.wait4(k.init_task, t.pid, 0) == (t.pid, SIGTERM)
    k.check_invariants()


def test_sigkill_to_child_kills_it_at_once(k, init):
    """SIGKILL: complete_signal makes the whole group exit (kernel/signal.c:1030-1061); the zombie's
    status is the signal number (wait_task_zombie, kernel/exit.c:1003)."""
    c = fork_child(k)
    k.kill(init, c.pid, SIGKILL)
    assert c.exit_state
    assert k.find_task(c.pid) is c  # zombie keeps its pid
    assert k.wait4(init, c.pid, 0) == (c.pid, SIGKILL)
    k.check_invariants()


def test_sigkill_kills_every_thread_of_the_group(k, init):
    """A fatal signal takes the whole thread group down (kernel/signal.c:1043-1059)."""
    from forklab.uapi import CLONE_SIGHAND, CLONE_THREAD, CLONE_VM

    c = fork_child(k)
    t = k.find_task(k.clone(c, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM))
    k.kill(init, c.pid, SIGKILL)
    assert c.exit_state and t.exit_state
    assert k.wait4(init, -1, 0) == (c.pid, SIGKILL)
    k.check_invariants()


def test_sigkill_cannot_be_caught_or_ignored(k):
    """rt_sigaction on SIGKILL -> EINVAL (kernel/signal.c:3963)."""
    c = fork_child(k)
    expect_errno(errno.EINVAL, k.rt_sigaction, c, SIGKILL, SigAction(SIG_IGN))
    k.check_invariants()


def test_child_exit_signal_is_sent_to_parent(k):
    """do_notify_parent sends exit_signal to the parent's group if 1..64 (kernel/signal.c:1996-1998)."""
    p = fork_child(k)
    k.rt_sigprocmask(p, SIG_BLOCK, bit(SIGUSR1) | bit(SIGCHLD))
    c = k.find_task(k.clone(p, SIGUSR1))
    k.exit(c, 0)
    assert p.signal.shared_pending.signal & bit(SIGUSR1)
    assert not p.signal.shared_pending.signal & bit(SIGCHLD)
    k.check_invariants()


def test_exit_signal_above_64_sends_nothing(k):
    """exit_signal 200 (legacy clone) is not a valid signal, so nothing is sent (kernel/signal.c:1996);
    the child is still a zombie to reap with __WCLONE (kernel/exit.c:942-966)."""
    from forklab.uapi import __WCLONE

    p = fork_child(k)
    c = k.find_task(k.clone(p, 200))
    k.exit(c, 0)
    assert p.signal.shared_pending.signal == 0 and p.pending.signal == 0
    expect_errno(errno.ECHILD, k.wait4, p, -1, WNOHANG)
    assert k.wait4(p, -1, __WCLONE) == (c.pid, 0)
    k.check_invariants()


def test_handlers_are_copied_pending_is_not(k):
    """copy_sighand copies the handlers (kernel/fork.c:1510-1518); shared_pending of a new signal_struct is
    empty (1558-1582) and the private pending set is emptied (1985)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGUSR1, SigAction(0x1111))
    k.rt_sigprocmask(p, SIG_BLOCK, bit(SIGUSR2))
    k.kill(k.init_task, p.pid, SIGUSR2)
    c = fork_child(k, p)
    assert c.sighand.action[SIGUSR1 - 1].sa_handler == 0x1111
    assert c.pending.signal == 0 and c.signal.shared_pending.signal == 0
    k.check_invariants()
