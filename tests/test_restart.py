"""Syscall restart after a signal: ERESTARTSYS, ERESTARTNOHAND, ERESTARTNOINTR, ERESTART_RESTARTBLOCK.

A body that meets a pending signal fails with a restart code; the return to user mode decides it
(arch/x86/kernel/signal.c:718-736 when a handler is set up, 820-835 when none is): EINTR, or the
call runs again (regs->ip -= 2). do_wait's -ERESTARTSYS (kernel/exit.c:1461) and the pipe's
(fs/pipe.c:401, 576) restart under SA_RESTART or when no handler runs; a task the exit work stops
has not returned from the call (Blocked) and issues it again once continued. After an SA_RESTART
handler the call restarts once the handler has run: a task whose handlers a driver runs
(``user_handlers``) gets Blocked while still runnable, and its driver runs the handler, returns
through rt_sigreturn and issues the call again; a task without one still gets EINTR for now
(arch/x86/kernel/signal.py, "Interim deviation").
"""

from __future__ import annotations

import errno

import pytest
from conftest import assert_cites, expect_errno, fork_child

from forklab import Blocked, Kernel, SigAction, Task, TaskState, TraceEvent
from forklab.arch.x86.entry.common import do_syscall_64
from forklab.arch.x86.kernel.signal import do_signal, handle_signal, sys_rt_sigreturn
from forklab.errors import ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS
from forklab.include.linux.sched import SigQueue
from forklab.kernel.signal import KSignal, sigmask
from forklab.uapi import PAGE_SIZE, SA_RESTART, SIG_IGN, SIGCONT, SIGSTOP, SIGTSTP, SIGUSR1, SIGUSR2, WNOHANG

HANDLER = 0x4000


def make_binary(k: Kernel) -> None:
    """/bin/true: a non-empty executable file, which the model's binfmt runs."""
    if k.vfs.lookup("/bin") is None:
        k.vfs.mkdir("/bin")
    inode = k.vfs.create("/bin/true", mode=0o755)
    inode.data[:] = b"\x7fELF\x02\x01\x01"
    inode.i_size = 7


def handled(k: Kernel, t: Task, sig: int) -> int:
    """How many times a handler of ``t`` was entered for ``sig``."""
    return sum(1 for pid, s, how in k.signals_delivered if pid == t.pid and s == sig and how.startswith("handler"))


def user_task(k: Kernel, parent: Task | None = None) -> Task:
    """A child whose handlers a driver of user code runs (Task.user_handlers)."""
    t = fork_child(k, parent)
    t.user_handlers = True
    return t


def run_handlers(k: Kernel, t: Task) -> list[int]:
    """What the driver does: each frame's handler (nothing to run here), then rt_sigreturn; the signals handled."""
    sigs = []
    while t.sigframes:
        sigs.append(t.sigframes[-1].ksig.sig)
        do_syscall_64(k, t, "rt_sigreturn", lambda c: sys_rt_sigreturn(k, c))
    return sigs


def on_delivery(k: Kernel, t: Task, action) -> None:
    """Run ``action`` once, when a handler of ``t`` is entered."""
    fired = False

    def listener(event: TraceEvent) -> None:
        nonlocal fired
        if not fired and event.kind == "get_signal" and event.tid == t.pid and "handler" in event.detail:
            fired = True
            action()

    k.listeners.append(listener)


def with_stop_pending(k: Kernel, sig: int) -> tuple[Task, Task]:
    """A vfork parent ``p`` that got ``sig`` in its killable vfork wait (which does not wake for it) and was
    released by the child's exec: ``p`` runs with ``sig`` still pending; returns (p, the exec'd child)."""
    make_binary(k)
    p = fork_child(k)
    child = k.find_task(k.vfork(p))
    k.kill(k.init_task, p.pid, sig)
    assert p.state == TaskState.TASK_KILLABLE
    k.execve(child, "/bin/true")
    assert p.state == TaskState.TASK_RUNNING and p.signal.shared_pending.signal & sigmask(sig)
    return p, child


# --- the rules, one code at a time ---------------------------------------------------------------------


@pytest.mark.parametrize(("code", "flags", "after"), [
    (ERESTARTSYS, 0, errno.EINTR),  # arch/x86/kernel/signal.c:726-729
    (ERESTARTSYS, SA_RESTART, 0),  # 726-735: falls through to the restart
    (ERESTARTNOHAND, SA_RESTART, errno.EINTR),  # 722-724: SA_RESTART does not matter
    (ERESTART_RESTARTBLOCK, SA_RESTART, errno.EINTR),  # 721-724
    (ERESTARTNOINTR, 0, 0),  # 732-735: always restarted
    (errno.EAGAIN, SA_RESTART, errno.EAGAIN),  # not a restart code: left as it is
])
def test_handle_signal_decides_the_interrupted_call(k, code, flags, after):
    t = user_task(k)
    ksig = KSignal(SigAction(HANDLER, flags), SigQueue(SIGUSR1), SIGUSR1)
    assert handle_signal(k, t, ksig, code) == after
    assert t.sigframes[-1].ksig is ksig


def test_without_a_driver_an_sa_restart_handler_restarts_the_call_as_with_one(k):
    """handle_signal's decision does not depend on who runs the handler (arch/x86/kernel/signal.c:726-729)."""
    t = fork_child(k)
    assert not t.user_handlers
    ksig = KSignal(SigAction(HANDLER, SA_RESTART), SigQueue(SIGUSR1), SIGUSR1)
    assert handle_signal(k, t, ksig, ERESTARTSYS) == 0
    assert handle_signal(k, t, ksig, ERESTARTNOINTR) == 0


@pytest.mark.parametrize("code", [ERESTARTSYS, ERESTARTNOHAND, ERESTARTNOINTR, ERESTART_RESTARTBLOCK])
def test_with_no_handler_to_run_every_restart_code_restarts(k, code):
    """do_signal without a handler (arch/x86/kernel/signal.c:820-835); ERESTART_RESTARTBLOCK's restart_syscall
    is the call itself in the model, which keeps no restart_block. An ignored signal is no handler."""
    t = fork_child(k)
    k.rt_sigaction(t, SIGUSR1, SigAction(SIG_IGN))
    t.pending.signal |= sigmask(SIGUSR1)  # queued while traced or blocked: sig_ignored lets it through
    t.pending.list.append(SigQueue(SIGUSR1))
    assert do_signal(k, t, code) == 0
    assert (t.pid, SIGUSR1, "ignored") in k.signals_delivered
    assert do_signal(k, t, errno.EINTR) == errno.EINTR  # a decided error stays as it is


# --- wait4 ---------------------------------------------------------------------------------------------


def test_wait_interrupted_by_an_sa_restart_handler_restarts_after_it_and_sleeps(k):
    """The handler's frame is set up and the call is left to restart after it (Blocked, still runnable); issued
    again it finds nothing ready and sleeps (kernel/exit.c:1461-1466); the child's exit wakes it and it reaps."""
    p = user_task(k)
    c = fork_child(k, p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER, SA_RESTART))
    k.kill(k.init_task, p.pid, SIGUSR1)  # a caught signal waits for p's next syscall
    with pytest.raises(Blocked):
        k.wait4(p, -1, 0)
    assert p.state == TaskState.TASK_RUNNING and run_handlers(k, p) == [SIGUSR1]
    assert not p.blocked
    with pytest.raises(Blocked):
        k.wait4(p, -1, 0)
    assert p.state == TaskState.TASK_INTERRUPTIBLE and p.waits_on == "wait_chldexit"
    k.exit(c, 3)
    assert p.state == TaskState.TASK_RUNNING
    assert k.wait4(p, -1, 0) == (c.pid, 3 << 8)
    k.check_invariants()


def test_the_restarted_wait_reaps_a_child_that_exited_while_the_handler_ran(k):
    """What the handler's time allows: a child that exits meanwhile is reaped by the restarted wait."""
    p = user_task(k)
    c = fork_child(k, p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER, SA_RESTART))
    k.kill(k.init_task, p.pid, SIGUSR1)
    on_delivery(k, p, lambda: k.exit(c, 5))
    with pytest.raises(Blocked):
        k.wait4(p, -1, 0)
    run_handlers(k, p)
    assert k.wait4(p, -1, 0) == (c.pid, 5 << 8)
    assert handled(k, p, SIGUSR1) == 1
    k.check_invariants()


def test_without_a_driver_the_wait_restarts_in_the_kernel_after_the_handler_returned(k):
    """Once no driver runs handlers late, a task without one restarts in the kernel: its handlers return at once."""
    p = fork_child(k)
    c = fork_child(k, p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER, SA_RESTART))
    k.kill(k.init_task, p.pid, SIGUSR1)
    on_delivery(k, p, lambda: k.exit(c, 5))
    assert k.wait4(p, -1, 0) == (c.pid, 5 << 8)


def test_wait_interrupted_by_a_handler_without_sa_restart_is_eintr(k):
    """-ERESTARTSYS (kernel/exit.c:1461) becomes EINTR once a handler without SA_RESTART is set up
    (arch/x86/kernel/signal.c:726-729); the child is still there."""
    p = fork_child(k)
    c = fork_child(k, p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    k.kill(k.init_task, p.pid, SIGUSR1)
    e = expect_errno(errno.EINTR, k.wait4, p, -1, 0)
    assert_cites(e, "kernel/exit.c", 1461)
    assert "arch/x86/kernel/signal.c:728" in str(e)
    assert p.state == TaskState.TASK_RUNNING and c in p.children
    assert k.wait4(p, -1, WNOHANG) == (0, 0)
    k.check_invariants()


def test_wait_with_a_discarded_stop_signal_pending_restarts_and_sleeps(k):
    """SIGTSTP in an orphaned process group is dropped by get_signal (kernel/signal.c:2688-2694): no handler ran,
    so the interrupted wait restarts (arch/x86/kernel/signal.c:824-828) and sleeps."""
    p, child = with_stop_pending(k, SIGTSTP)  # p is a child of init: its process group is orphaned
    with pytest.raises(Blocked):
        k.wait4(p, child.pid, 0)
    assert (p.pid, SIGTSTP, "discarded (orphaned process group)") in k.signals_delivered
    assert p.state == TaskState.TASK_INTERRUPTIBLE and p.waits_on == "wait_chldexit"
    k.exit(child, 0)
    assert k.wait4(p, child.pid, 0) == (child.pid, 0)
    k.check_invariants()


def test_wait_with_a_stop_pending_stops_and_is_issued_again_after_sigcont(k):
    """The exit work stops the task (do_signal_stop): the wait has not returned; after SIGCONT the call made
    again sleeps, and reaps once the child exits."""
    p, child = with_stop_pending(k, SIGSTOP)
    with pytest.raises(Blocked):
        k.wait4(p, child.pid, 0)
    assert p.state == TaskState.TASK_STOPPED
    k.kill(k.init_task, p.pid, SIGCONT)
    assert p.state == TaskState.TASK_RUNNING
    with pytest.raises(Blocked):
        k.wait4(p, child.pid, 0)
    k.exit(child, 0)
    assert k.wait4(p, child.pid, 0) == (child.pid, 0)
    k.check_invariants()


# --- fork (ERESTARTNOINTR) ----------------------------------------------------------------------------------


def test_a_fork_that_meets_a_stop_does_not_run_while_stopped(k):
    """copy_process's -ERESTARTNOINTR (kernel/fork.c:1916), then the exit work stops the task: the fork is not
    run again while it is stopped (no child), and is issued again after SIGCONT."""
    p, _child = with_stop_pending(k, SIGSTOP)
    children = list(p.children)
    with pytest.raises(Blocked):
        k.fork(p)
    assert p.state == TaskState.TASK_STOPPED and p.children == children
    k.kill(k.init_task, p.pid, SIGCONT)
    pid = k.fork(p)
    assert k.find_task(pid).real_parent is p
    k.check_invariants()


def test_a_fork_that_meets_a_discarded_stop_restarts_at_once(k):
    """No handler: ERESTARTNOINTR restarts (arch/x86/kernel/signal.c:825-828) and the fork completes."""
    p, _child = with_stop_pending(k, SIGTSTP)
    pid = k.fork(p)
    assert pid > 0 and k.find_task(pid).real_parent is p
    assert (p.pid, SIGTSTP, "discarded (orphaned process group)") in k.signals_delivered
    k.check_invariants()


# --- pipes -------------------------------------------------------------------------------------------------


def test_a_pipe_read_restarts_under_sa_restart_and_is_eintr_without(k):
    """pipe_read's -ERESTARTSYS (fs/pipe.c:400-401): restarted under SA_RESTART (it sleeps again), EINTR without."""
    p = user_task(k)
    r, _w = k.pipe(p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER, SA_RESTART))
    k.rt_sigaction(p, SIGUSR2, SigAction(HANDLER))
    k.kill(k.init_task, p.pid, SIGUSR1)
    with pytest.raises(Blocked):
        k.read(p, r, 1)
    assert p.state == TaskState.TASK_RUNNING and run_handlers(k, p) == [SIGUSR1]
    with pytest.raises(Blocked):
        k.read(p, r, 1)  # the restart sleeps
    assert p.waits_on == "pipe_read"
    k.kill(k.init_task, p.pid, SIGUSR2)  # wakes the reader; the read issued again is interrupted for good
    assert p.state == TaskState.TASK_RUNNING
    e = expect_errno(errno.EINTR, k.read, p, r, 1)
    assert_cites(e, "fs/pipe.c", 401)
    assert run_handlers(k, p) == [SIGUSR2]
    k.check_invariants()


def test_a_pipe_write_to_a_full_pipe_restarts_under_sa_restart(k):
    """pipe_write's -ERESTARTSYS with nothing written (fs/pipe.c:575-578) restarts under SA_RESTART and sleeps."""
    p = user_task(k)
    _r, w = k.pipe(p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER, SA_RESTART))
    with pytest.raises(Blocked):
        while True:
            k.write(p, w, b"x" * PAGE_SIZE)
    k.kill(k.init_task, p.pid, SIGUSR1)  # wakes the writer; the write issued again is interrupted
    assert p.state == TaskState.TASK_RUNNING
    with pytest.raises(Blocked):
        k.write(p, w, b"y")
    assert run_handlers(k, p) == [SIGUSR1]
    with pytest.raises(Blocked):
        k.write(p, w, b"y")
    assert p.waits_on == "pipe_write"
    k.check_invariants()
