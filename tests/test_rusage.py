"""getrusage(2) (kernel/sys.c:1698-1793): the group's, its waited-for children's, or one thread's usage.

The model's only CPU time is the 1 µs of system time each syscall charges its caller (utime
stays 0), a sleep is a voluntary context switch and a page fault a minor fault, so the
expected numbers are counted from the calls each test makes.
"""

from __future__ import annotations

import errno

import pytest
from conftest import active_ns, assert_cites, expect_errno, fork_child, map_page, state

from forklab import Blocked, Kernel, SigAction, Task
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    PAGE_SIZE,
    POLLIN,
    RUSAGE_BOTH,
    RUSAGE_CHILDREN,
    RUSAGE_SELF,
    RUSAGE_THREAD,
    SIG_IGN,
    SIGCHLD,
    SIGUSR1,
    Rusage,
    Timeval,
)

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x401000


def us(n: int) -> Timeval:
    return Timeval(n // 1_000_000, n % 1_000_000)


def thread_of(k: Kernel, leader: Task) -> Task:
    return k.find_task(k.clone(leader, THREAD), active_ns(leader))


def calls(k: Kernel, t: Task, n: int) -> None:
    """``n`` syscalls by ``t``: n µs of system time."""
    for _ in range(n):
        k.getpid(t)


def test_unknown_who_is_einval(k, init):
    """Only RUSAGE_SELF, RUSAGE_CHILDREN and RUSAGE_THREAD: RUSAGE_BOTH (wait4's) and the rest are EINVAL
    (kernel/sys.c:1787)."""
    before = state(k)
    for who in (RUSAGE_BOTH, 2, -3, 1 << 31):
        assert_cites(expect_errno(errno.EINVAL, k.getrusage, init, who), "kernel/sys.c", 1787)
    assert state(k) == before


def test_rusage_self_sums_live_threads_and_keeps_dead_ones(k, init):
    """RUSAGE_SELF: the signal_struct's totals of dead threads plus every live thread; a thread's exit moves its
    time, faults and switches into the group's totals instead of losing them."""
    p = fork_child(k)  # a fresh process: stime 0 (copy_process, kernel/fork.c:1977)
    calls(k, p, 3)
    t = thread_of(k, p)  # p: 4 calls
    calls(k, t, 2)  # t: 2
    r = k.getrusage(p, RUSAGE_SELF)  # p: 5
    assert r.ru_stime == us(7) and r.ru_utime == Timeval()
    assert k.getrusage(t, RUSAGE_THREAD).ru_stime == us(3)  # t: 3
    assert k.getrusage(p, RUSAGE_THREAD).ru_stime == us(6)  # p: 6
    k.exit(t, 0)  # t: 4, now in signal->stime
    assert p.signal.stime == 4000
    assert k.getrusage(p, RUSAGE_SELF).ru_stime == us(7 + 4)  # p: 7 + the dead thread's 4
    assert k.getrusage(p, RUSAGE_THREAD).ru_stime == us(8)
    k.check_invariants()


def test_rusage_counts_faults_switches_and_maxrss(k, init):
    """Faults are minor faults, a sleep a voluntary switch; ru_maxrss is the mm's high-water RSS in KiB."""
    p = fork_child(k)
    c = fork_child(k, p)
    addr = map_page(k, p, 3)
    t = thread_of(k, p)
    for i in range(3):
        k.store(t, addr + i * PAGE_SIZE, b"x")  # three faults by the thread
    fd = k.pidfd_open(t, c.pid)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    with pytest.raises(Blocked):
        k.poll(t, [(fd, POLLIN)], -1)  # sleeps: one voluntary switch
    k.tgkill(init, p.pid, t.pid, SIGUSR1)  # wakes it; its next poll returns EINTR
    expect_errno(errno.EINTR, k.poll, t, [(fd, POLLIN)], -1)
    r = k.getrusage(p, RUSAGE_SELF)
    assert (r.ru_minflt, r.ru_majflt, r.ru_nvcsw, r.ru_nivcsw) == (3, 0, 1, 0)
    assert r.ru_maxrss == max(p.mm.hiwater_rss, 3) * PAGE_SIZE // 1024 >= 12
    assert k.getrusage(p, RUSAGE_THREAD).ru_minflt == 0 and k.getrusage(t, RUSAGE_THREAD).ru_minflt == 3
    k.exit(t, 0)
    r = k.getrusage(p, RUSAGE_SELF)
    assert (r.ru_minflt, r.ru_nvcsw) == (3, 1)  # the dead thread's counts live on in signal_struct
    k.check_invariants()


def test_rusage_children_counts_only_waited_for_children(k, init):
    """RUSAGE_CHILDREN is what wait_task_zombie added (kernel/exit.c): nothing for a running child or an unreaped
    zombie; after the wait, the child's whole-group time, faults and maxrss."""
    p = fork_child(k)
    c = fork_child(k, p)
    addr = map_page(k, c, 2)
    k.store(c, addr, b"x")
    k.store(c, addr + PAGE_SIZE, b"y")
    calls(k, c, 4)
    assert k.getrusage(p, RUSAGE_CHILDREN) == Rusage()
    k.exit(c, 0)  # c: 4 + mmap + exit = 6 µs
    assert k.getrusage(p, RUSAGE_CHILDREN) == Rusage()  # a zombie: not yet waited for
    k.wait4(p, c.pid, 0)
    r = k.getrusage(p, RUSAGE_CHILDREN)
    assert r.ru_stime == us(6) and r.ru_utime == Timeval() and r.ru_minflt == 2
    assert r.ru_maxrss == 2 * PAGE_SIZE // 1024
    k.check_invariants()


def test_rusage_children_includes_grandchildren_their_child_waited_for(k, init):
    """The child's own c* counters go up with it: cutime += the child's group time + its cutime."""
    p = fork_child(k)
    c = fork_child(k, p)  # c: 1 call so far (the fork below)
    g = fork_child(k, c)
    calls(k, g, 2)
    k.exit(g, 0)  # g: 3
    k.wait4(c, g.pid, 0)  # c: 2
    k.exit(c, 0)  # c: 3
    k.wait4(p, c.pid, 0)
    assert k.getrusage(p, RUSAGE_CHILDREN).ru_stime == us(3 + 3)
    k.check_invariants()


def test_autoreaped_children_are_not_counted(k, init):
    """With SIGCHLD ignored the child is released at exit without wait_task_zombie: nothing is added."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGCHLD, SigAction(SIG_IGN))
    c = fork_child(k, p)
    calls(k, c, 5)
    k.exit(c, 0)
    assert k.getrusage(p, RUSAGE_CHILDREN) == Rusage()
    k.check_invariants()


def test_times_convert_to_seconds_and_microseconds(k, init):
    """ns_to_kernel_old_timeval: whole seconds and the microseconds left, truncated."""
    p = fork_child(k)
    p.signal.stime = 2_500_000_999  # as if dead threads had run 2.5 s
    r = k.getrusage(p, RUSAGE_SELF)
    assert r.ru_stime == Timeval(2, 500_000 + 1)  # + the getrusage call itself


def test_waitpid_reaps_as_wait4_without_taking_the_rusage(monkeypatch):
    """waitpid is wait4 with a NULL rusage (glibc): the same (pid, status) and the same state after, the
    waiter's c* counters included, but getrusage never runs and ``.rusage`` is all zeros."""
    import forklab.kernel.exit as kexit

    taken: list[int] = []
    real = kexit.getrusage
    monkeypatch.setattr(kexit, "getrusage", lambda *a: taken.append(1) or real(*a))
    results, states = [], []
    for wait in (Kernel.wait4, Kernel.waitpid):
        k = Kernel()
        p = fork_child(k)
        c = fork_child(k, p)
        calls(k, c, 3)
        k.exit_group(c, 7)
        results.append(wait(k, p, c.pid, 0))
        states.append(state(k))
    assert taken == [1]  # wait4's reap took the rusage, waitpid's did not
    assert tuple(results[0]) == tuple(results[1]) == (c.pid, 7 << 8)
    assert results[0].rusage.ru_stime == us(4) and results[1].rusage == Rusage()  # 3 getpid + exit_group
    assert states[0] == states[1]
