"""Wake-up masks, the pidfd wake-ups of an exit, force_sigsegv and the rlimit helpers.

try_to_wake_up wakes only a task whose state is in the mask (kernel/sched/core.c:2512-2654):
wake_up_process's TASK_NORMAL leaves a stopped task alone, SIGCONT wakes it with
wake_up_state(t, __TASK_STOPPED) (kernel/signal.c:936), a fatal signal with TASK_WAKEKILL.
do_notify_parent wakes a process's pidfd pollers (do_notify_pidfd, kernel/signal.c:1894-1901,
1927); from 6.9 an untraced sub-thread's exit wakes the pollers of its own pid as well.
"""

from __future__ import annotations

import pytest
from conftest import fork_child

from forklab import Blocked, Kernel, SigAction, Task, TaskState
from forklab.fs.select import POLLHUP
from forklab.include.linux.sched import __TASK_STOPPED, TASK_NORMAL
from forklab.kernel.pid import PIDFD_THREAD
from forklab.kernel.sched.core import wake_up_process, wake_up_state
from forklab.kernel.signal import force_sigsegv, rlimit, rlimit_max
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    POLLIN,
    RLIM_INFINITY,
    RLIMIT_NOFILE,
    SA_RESTART,
    SIG_DFL,
    SIGCONT,
    SIGSEGV,
    SIGSTOP,
    SIGUSR1,
)

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x4000


def test_wake_up_process_does_not_wake_a_stopped_task(k):
    c = fork_child(k)
    k.kill(k.init_task, c.pid, SIGSTOP)
    assert c.state == TaskState.TASK_STOPPED
    assert not wake_up_process(k, c) and c.state == TaskState.TASK_STOPPED
    assert TASK_NORMAL == TaskState.TASK_INTERRUPTIBLE | TaskState.TASK_UNINTERRUPTIBLE
    assert wake_up_state(k, c, __TASK_STOPPED) and c.state == TaskState.TASK_RUNNING


def test_wake_up_process_wakes_a_killable_sleeper(k):
    """TASK_KILLABLE has TASK_UNINTERRUPTIBLE, which TASK_NORMAL covers: the vfork_done completion wakes the parent."""
    p = fork_child(k)
    child = k.find_task(k.vfork(p))
    assert p.state == TaskState.TASK_KILLABLE
    k.exit(child, 0)
    assert p.state == TaskState.TASK_RUNNING
    k.check_invariants()


def test_sigcont_and_sigkill_wake_a_stopped_task(k):
    a = fork_child(k)
    b = fork_child(k)
    for t in (a, b):
        k.kill(k.init_task, t.pid, SIGSTOP)
    k.kill(k.init_task, a.pid, SIGCONT)
    assert a.state == TaskState.TASK_RUNNING
    k.kill(k.init_task, b.pid, 9)
    assert b.exit_state == TaskState.EXIT_ZOMBIE
    k.check_invariants()


# --- pidfd pollers ----------------------------------------------------------------------------------------


def test_a_sub_thread_exit_wakes_nobody_in_5_6(k):
    """5.6 calls do_notify_pidfd only from do_notify_parent: a leader's pidfd poller sleeps on while a thread exits."""
    p = fork_child(k)
    c = fork_child(k, p)
    t = k.find_task(k.clone(c, THREAD))
    fd = k.pidfd_open(p, c.pid)
    with pytest.raises(Blocked):
        k.poll(p, [(fd, POLLIN)], -1)
    k.exit(t, 0)
    assert p.state == TaskState.TASK_INTERRUPTIBLE
    k.check_invariants()


def test_6_18_an_untraced_sub_thread_exit_wakes_its_pidfd_thread_pollers() -> None:
    """exit_notify's "untraced sub-thread" do_notify_pidfd (6.9: 64bef697d33b, as later cleaned up in 2025): the
    poller of a PIDFD_THREAD pidfd of the thread is woken and finds it ready."""
    k = Kernel(version="6.18")
    p = fork_child(k)
    c = fork_child(k, p)
    t = k.find_task(k.clone(c, THREAD))
    fd = k.pidfd_open(p, t.pid, PIDFD_THREAD)
    with pytest.raises(Blocked):
        k.poll(p, [(fd, POLLIN)], -1)
    k.exit(t, 0)
    assert p.state == TaskState.TASK_RUNNING
    assert k.poll(p, [(fd, POLLIN)], -1) == [POLLIN | POLLHUP]  # reaped at once: 6.9's POLLHUP too
    k.check_invariants()


def test_6_18_a_leader_exiting_before_its_threads_wakes_nobody_until_the_last_one() -> None:
    """The leader's own exit is a delayed group leader's: no wake-up until release_task's do_notify_parent."""
    k = Kernel(version="6.18")
    p = fork_child(k)
    c = fork_child(k, p)
    t = k.find_task(k.clone(c, THREAD))
    fd = k.pidfd_open(p, c.pid)
    with pytest.raises(Blocked):
        k.poll(p, [(fd, POLLIN)], -1)
    k.exit(c, 0)
    assert p.state == TaskState.TASK_INTERRUPTIBLE
    k.exit(t, 0)
    assert p.state == TaskState.TASK_RUNNING
    assert k.poll(p, [(fd, POLLIN)], -1) == [POLLIN]
    k.check_invariants()


# --- force_sigsegv, rlimit -------------------------------------------------------------------------------


def forced_sigsegv(k: Kernel, c: Task, sig: int) -> None:
    """force_sigsegv(sig) with ``c`` as current, as the kernel calls it."""
    saved, k.current = k.current, c
    try:
        force_sigsegv(k, c, sig)
    finally:
        k.current = saved


def test_force_sigsegv_resets_a_sigsegv_handler_and_kills(k):
    """force_sigsegv(SIGSEGV): sa_handler = SIG_DFL, the flags stay; force_sig(SIGSEGV) (kernel/signal.c:1643-1651).
    The task is not in a syscall, so the fatal signal ends it at once."""
    c = fork_child(k)
    k.rt_sigaction(c, SIGSEGV, SigAction(HANDLER, SA_RESTART))
    forced_sigsegv(k, c, SIGSEGV)
    action = c.sighand.action[SIGSEGV - 1]
    assert (action.sa_handler, action.sa_flags) == (SIG_DFL, SA_RESTART)
    assert c.exit_state == TaskState.EXIT_ZOMBIE and c.exit_code & 0x7F == SIGSEGV
    k.check_invariants()


def test_force_sigsegv_for_another_signal_keeps_the_sigsegv_handler(k):
    c = fork_child(k)
    k.rt_sigaction(c, SIGSEGV, SigAction(HANDLER))
    forced_sigsegv(k, c, SIGUSR1)
    k.getpid(c)
    assert (c.pid, SIGSEGV, f"handler {HANDLER:#x} ran") in k.signals_delivered
    k.check_invariants()


def test_rlimit_and_rlimit_max_read_the_signal_struct(k):
    """task_rlimit and task_rlimit_max (include/linux/sched/signal.h:684-694); no signal_struct: no limit."""
    c = fork_child(k)
    k.setrlimit(c, RLIMIT_NOFILE, (10, 20))
    assert (rlimit(c, RLIMIT_NOFILE), rlimit_max(c, RLIMIT_NOFILE)) == (10, 20)
    c.signal, saved = None, c.signal
    assert rlimit(c, RLIMIT_NOFILE) == rlimit_max(c, RLIMIT_NOFILE) == RLIM_INFINITY
    c.signal = saved
