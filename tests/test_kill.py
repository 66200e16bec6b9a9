"""kill(2), tgkill(2), tkill(2) and pidfd_send_signal(2): who gets the signal, and each error with its line.

Sources: kernel/signal.c -- check_kill_permission 827-861, complete_signal 989-1063 (wants_signal
972-987), group_send_sig_info 1403-1416, __kill_pgrp_info 1423-1436, kill_pid_info 1438-1458,
kill_something_info 1556-1594, pidfd_send_signal 3713-3763, do_send_specific 3765-3793, tgkill
3819-3826, tkill 3835-3842.
"""

from __future__ import annotations

import errno

import pytest
from conftest import assert_cites, expect_errno, fork_child, map_page, read_int, state, unprivileged

from forklab import Blocked, Kernel, SigAction, Task, TaskState
from forklab.kernel.signal import sys_tgkill, sys_tkill
from forklab.uapi import (
    CLONE_NEWPID,
    CLONE_PIDFD,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    SI_QUEUE,
    SI_TKILL,
    SI_USER,
    SIG_BLOCK,
    SIGCHLD,
    SIGCONT,
    SIGKILL,
    SIGSTOP,
    SIGTERM,
    SIGUSR1,
    SIGUSR2,
    SigInfo,
)

THREAD = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x4000


def bit(sig: int) -> int:
    return 1 << (sig - 1)


def thread_of(k: Kernel, leader: Task) -> Task:
    return k.find_task(k.clone(leader, THREAD))


def handled(k: Kernel, t: Task, sig: int) -> int:
    return sum(1 for pid, s, how in k.signals_delivered if pid == t.pid and s == sig and how.startswith("handler"))


def pending_of(t: Task) -> int:
    return t.pending.signal | t.signal.shared_pending.signal


def pidfd_of(k: Kernel, parent: Task) -> tuple[Task, int]:
    """A child of ``parent`` made with CLONE_PIDFD, and the pidfd ``parent`` got for it."""
    addr = map_page(k, parent)
    pid = k.clone(parent, CLONE_PIDFD | SIGCHLD, 0, addr)
    return k.find_task(pid), read_int(k, parent, addr)


# --- kill(pid > 0): the process of any of its thread ids ---------------------------------------------


def test_kill_of_a_thread_id_signals_its_whole_process(k, init):
    """kill_pid_info finds the task by PIDTYPE_PID and sends with PIDTYPE_TGID (kernel/signal.c:1445-1447):
    the signal is queued on the process, and the leader, which does not block it, is the thread that
    wants it (complete_signal, kernel/signal.c:1000-1001)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    t = thread_of(k, p)
    k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGUSR1))
    assert k.kill(init, t.pid, SIGUSR1) == 0
    assert p.signal.shared_pending.signal & bit(SIGUSR1)
    assert not (p.pending.signal | t.pending.signal) & bit(SIGUSR1)
    queued = [q for q in p.signal.shared_pending.list if q.si_signo == SIGUSR1]
    assert [(q.si_code, q.si_pid, q.si_uid) for q in queued] == [(SI_USER, init.tgid, 0)]
    k.getpid(t)
    assert handled(k, t, SIGUSR1) == 0  # t blocks it
    k.getpid(p)
    assert handled(k, p, SIGUSR1) == 1
    k.check_invariants()


def test_kill_of_a_process_whose_leader_exited_reaches_a_live_thread(k, init):
    """The zombie leader keeps the tgid; wants_signal refuses it (PF_EXITING, kernel/signal.c:977-978), so
    complete_signal picks the next willing thread from curr_target and wakes it (1011-1022)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    t = thread_of(k, p)
    k.exit(p, 0)
    assert p.exit_state and not t.exit_state
    r, _w = k.pipe(t)
    with pytest.raises(Blocked):
        k.read(t, r, 1)  # t sleeps interruptibly in pipe_read
    assert k.kill(init, p.pid, SIGUSR1) == 0
    assert p.signal.curr_target is t
    assert t.state == 0 and t.waits_on == ""  # woken
    assert p.signal.shared_pending.signal & bit(SIGUSR1)
    k.getpid(t)
    assert handled(k, t, SIGUSR1) == 1 and handled(k, p, SIGUSR1) == 0
    k.check_invariants()


def test_fatal_signal_to_a_group_with_a_zombie_leader_kills_the_other_threads(k, init):
    """sig_fatal with a willing thread: SIGNAL_GROUP_EXIT and SIGKILL to every thread (kernel/signal.c:1030-1059);
    the group's status is the signal (wait_task_zombie reads group_exit_code)."""
    p = fork_child(k)
    t1, t2 = thread_of(k, p), thread_of(k, p)
    k.exit(p, 0)
    assert k.kill(init, p.pid, SIGTERM) == 0
    assert t1.exit_state and t2.exit_state
    assert k.wait4(init, p.pid, 0) == (p.pid, SIGTERM)
    k.check_invariants()


def test_kill_to_a_missing_pid_is_esrch_before_the_signal_number_is_checked(k, init):
    """kill_pid_info: no task -> ESRCH (kernel/signal.c:1440) before check_kill_permission's EINVAL (833)."""
    c = fork_child(k)
    before = state(k)
    e = expect_errno(errno.ESRCH, k.kill, c, 30000, 65)
    assert_cites(e, "kernel/signal.c", 1440)
    assert state(k) == before
    e = expect_errno(errno.EINVAL, k.kill, c, init.pid, 65)
    assert_cites(e, "kernel/signal.c", 833)
    assert state(k) == before
    k.check_invariants()


def test_kill_without_permission_is_eperm(k, init):
    """An unprivileged sender whose uids match none of the target's: EPERM (kernel/signal.c:843-856)."""
    u = unprivileged(k, 1000)
    victim = fork_child(k)
    before = state(k)
    e = expect_errno(errno.EPERM, k.kill, u, victim.pid, SIGTERM)
    assert_cites(e, "kernel/signal.c", 856)
    e = expect_errno(errno.EPERM, k.kill, u, victim.pid, 0)  # the probe is checked too
    assert_cites(e, "kernel/signal.c", 856)
    assert state(k) == before
    same = unprivileged(k, 1000)
    assert k.kill(u, same.pid, 0) == 0  # matching uid
    k.check_invariants()


def test_sigcont_needs_only_the_same_session(k, init):
    """SIGCONT without a matching uid is allowed within the sender's session (kernel/signal.c:846-853)."""
    u = unprivileged(k, 1000)
    other = unprivileged(k, 2000)
    assert k.kill(u, other.pid, SIGCONT) == 0
    e = expect_errno(errno.EPERM, k.kill, u, other.pid, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 856)
    k.setsid(other)
    before = state(k)
    e = expect_errno(errno.EPERM, k.kill, u, other.pid, SIGCONT)
    assert_cites(e, "kernel/signal.c", 856)
    assert state(k) == before
    k.check_invariants()


def test_kill_pid_int_min_is_esrch(k):
    """-INT_MIN is undefined: ESRCH (kernel/signal.c:1568-1569)."""
    c = fork_child(k)
    before = state(k)
    e = expect_errno(errno.ESRCH, k.kill, c, -(2**31), SIGTERM)
    assert_cites(e, "kernel/signal.c", 1569)
    assert state(k) == before


# --- kill(-1) ------------------------------------------------------------------------------------------


def test_kill_minus_one_skips_init_and_the_callers_own_group(k, init):
    """for_each_process with task_pid_vnr(p) > 1 and !same_thread_group(p, current) (kernel/signal.c:1579-1587)."""
    caller = fork_child(k)
    caller_thread = thread_of(k, caller)
    others = [fork_child(k), fork_child(k), fork_child(k, caller)]
    everyone = [caller, *others]
    for t in everyone:
        k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGUSR2))
    k.rt_sigprocmask(caller_thread, SIG_BLOCK, bit(SIGUSR2))
    assert k.kill(caller, -1, SIGUSR2) == 0
    assert all(t.signal.shared_pending.signal & bit(SIGUSR2) for t in others)
    assert not pending_of(caller) & bit(SIGUSR2) and not caller_thread.pending.signal & bit(SIGUSR2)
    assert not pending_of(init) & bit(SIGUSR2)
    k.check_invariants()


def test_kill_minus_one_in_a_pid_namespace_reaches_only_that_namespace(k, init):
    """task_pid_vnr(p) is 0 outside the caller's namespace and 1 for its init (kernel/signal.c:1580)."""
    a = fork_child(k)
    k.unshare(a, CLONE_NEWPID)
    ns_init = fork_child(k, a)
    inside = fork_child(k, ns_init)
    caller = fork_child(k, ns_init)
    outside = fork_child(k)
    for t in (a, ns_init, inside, caller, outside):
        k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGUSR1))
    assert k.kill(caller, -1, SIGUSR1) == 0
    assert pending_of(inside) & bit(SIGUSR1)
    for t in (a, ns_init, caller, outside):
        assert not pending_of(t) & bit(SIGUSR1), t
    k.check_invariants()


def test_kill_minus_one_with_nobody_else_is_esrch(k):
    """No process besides init and the caller: count 0 -> ESRCH (kernel/signal.c:1589)."""
    c = fork_child(k)
    before = state(k)
    e = expect_errno(errno.ESRCH, k.kill, c, -1, SIGTERM)
    assert_cites(e, "kernel/signal.c", 1589)
    assert state(k) == before
    k.check_invariants()


def test_kill_minus_one_never_reports_eperm(k):
    """EPERM does not become kill(-1)'s result (kernel/signal.c:1585-1586): every target refusing is still 0."""
    u = unprivileged(k, 1000)
    victims = [fork_child(k), fork_child(k)]
    before = state(k)
    assert k.kill(u, -1, SIGTERM) == 0
    assert state(k) == before  # nothing was sent
    assert all(not v.exit_state and not pending_of(v) for v in victims)
    k.check_invariants()


def test_kill_minus_one_reports_the_last_error_other_than_eperm(k):
    """A bad signal number fails every send with EINVAL (kernel/signal.c:833), which kill(-1) returns."""
    c = fork_child(k)
    fork_child(k)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.kill, c, -1, 65)
    assert_cites(e, "kernel/signal.c", 833)
    assert state(k) == before


# --- kill(0) and kill(-pgid) -----------------------------------------------------------------------------


def pgrp_of(k: Kernel) -> tuple[Task, Task, Task, Task]:
    """A session leader s; a pgrp led by ``lead`` with member ``m``, and ``o`` in its own pgrp, all children of s."""
    s = fork_child(k)
    k.setsid(s)
    lead, m, o = fork_child(k, s), fork_child(k, s), fork_child(k, s)
    k.setpgid(s, lead.pid, lead.pid)
    k.setpgid(s, m.pid, lead.pid)
    k.setpgid(s, o.pid, o.pid)
    for t in (s, lead, m, o):
        k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGUSR1))
    return s, lead, m, o


def test_kill_zero_signals_the_callers_process_group_including_itself(k):
    """kill(0) is __kill_pgrp_info on task_pgrp(current) (kernel/signal.c:1572-1574)."""
    s, lead, m, o = pgrp_of(k)
    assert k.kill(m, 0, SIGUSR1) == 0
    assert pending_of(lead) & bit(SIGUSR1) and pending_of(m) & bit(SIGUSR1)
    assert not pending_of(o) & bit(SIGUSR1) and not pending_of(s) & bit(SIGUSR1)
    k.check_invariants()


def test_kill_minus_pgid_signals_every_member(k):
    """kill(-pgid): find_vpid(pgid) and PIDTYPE_PGID sends (kernel/signal.c:1573-1574, 1430-1434)."""
    s, lead, m, o = pgrp_of(k)
    assert k.kill(s, -lead.pid, SIGUSR1) == 0
    assert pending_of(lead) & bit(SIGUSR1) and pending_of(m) & bit(SIGUSR1)
    assert not pending_of(o) & bit(SIGUSR1)
    k.check_invariants()


def test_kill_of_a_missing_process_group_is_esrch(k):
    """No task in the pgrp: retval stays -ESRCH (kernel/signal.c:1429)."""
    s, _lead, _m, _o = pgrp_of(k)
    before = state(k)
    e = expect_errno(errno.ESRCH, k.kill, s, -30000, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 1429)
    assert state(k) == before
    k.check_invariants()


def test_kill_of_a_process_group_that_refuses_every_send_is_eperm(k):
    """Success from none of the members: the last error, here EPERM (kernel/signal.c:1431-1435)."""
    _s, lead, _m, _o = pgrp_of(k)
    u = unprivileged(k, 1000)
    before = state(k)
    e = expect_errno(errno.EPERM, k.kill, u, -lead.pid, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 856)
    assert state(k) == before
    k.check_invariants()


def test_kill_pgrp_info_returns_zero_or_minus_errno(k):
    """__kill_pgrp_info's int contract, as kill_orphaned_pgrp calls it with SEND_SIG_PRIV (kernel/signal.c:1423-1436)."""
    from forklab.kernel.signal import SEND_SIG_PRIV, __kill_pgrp_info

    _s, lead, m, _o = pgrp_of(k)
    assert __kill_pgrp_info(k, SIGUSR1, SEND_SIG_PRIV, lead.thread_pid) == 0
    queued = [q for q in m.signal.shared_pending.list if q.si_signo == SIGUSR1]
    assert [(q.si_code, q.si_pid) for q in queued] == [(0x80, 0)]  # SI_KERNEL (kernel/signal.c:1131-1137)
    assert __kill_pgrp_info(k, SIGUSR1, SEND_SIG_PRIV, None) == -errno.ESRCH


# --- tgkill and tkill ------------------------------------------------------------------------------------


def test_tgkill_queues_on_the_thread_with_si_tkill(k, init):
    """do_send_specific sends PIDTYPE_PID: the thread's own queue; do_tkill's siginfo is SI_TKILL with the
    caller's tgid (kernel/signal.c:3795-3806, 3780)."""
    p = fork_child(k)
    t = thread_of(k, p)
    k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGUSR1))
    sender = fork_child(k)
    sender_thread = thread_of(k, sender)
    assert k.tgkill(sender_thread, p.pid, t.pid, SIGUSR1) == 0
    assert t.pending.signal & bit(SIGUSR1) and not p.signal.shared_pending.signal & bit(SIGUSR1)
    assert [(q.si_code, q.si_pid) for q in t.pending.list] == [(SI_TKILL, sender.tgid)]
    assert k.tkill(sender, t.pid, 0) == 0  # the probe
    k.check_invariants()


def test_tgkill_of_a_thread_outside_the_tgid_is_esrch(k, init):
    """task_tgid_vnr(p) != tgid: ESRCH (kernel/signal.c:3769, 3773)."""
    p = fork_child(k)
    t = thread_of(k, p)
    other = fork_child(k)
    before = state(k)
    e = expect_errno(errno.ESRCH, k.tgkill, init, other.pid, t.pid, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 3769)
    e = expect_errno(errno.ESRCH, k.tkill, init, 30000, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 3769)
    assert state(k) == before
    k.check_invariants()


def test_tgkill_permission_and_signal_number(k):
    """check_kill_permission decides after the lookup: EINVAL for 65 (833), EPERM across uids (856)."""
    u = unprivileged(k, 1000)
    p = fork_child(k)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.tgkill, u, u.pid, u.pid, 65)
    assert_cites(e, "kernel/signal.c", 833)
    e = expect_errno(errno.EPERM, k.tkill, u, p.pid, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 856)
    assert state(k) == before
    k.check_invariants()


@pytest.mark.parametrize(("tgid", "tid"), [(0, 2), (2, 0), (-1, 2), (2, -5)])
def test_tgkill_needs_positive_ids(k, tgid, tid):
    """sys_tgkill: pid <= 0 || tgid <= 0 -> EINVAL (kernel/signal.c:3822)."""
    c = fork_child(k)
    before = state(k)
    e = expect_errno(errno.EINVAL, k._syscall, c, "tgkill", lambda cur: sys_tgkill(k, cur, tgid, tid, SIGUSR1))
    assert_cites(e, "kernel/signal.c", 3822)
    assert state(k) == before


@pytest.mark.parametrize("tid", [0, -1])
def test_tkill_needs_a_positive_tid(k, tid):
    """sys_tkill: pid <= 0 -> EINVAL (kernel/signal.c:3838)."""
    c = fork_child(k)
    before = state(k)
    e = expect_errno(errno.EINVAL, k._syscall, c, "tkill", lambda cur: sys_tkill(k, cur, tid, SIGUSR1))
    assert_cites(e, "kernel/signal.c", 3838)
    assert state(k) == before


def test_public_tgkill_and_tkill_reject_non_positive_ids(k):
    """The same rules through Kernel.tgkill/Kernel.tkill (kernel/signal.c:3822, 3838)."""
    c = fork_child(k)
    assert_cites(expect_errno(errno.EINVAL, k.tgkill, c, 0, c.pid, 0), "kernel/signal.c", 3822)
    assert_cites(expect_errno(errno.EINVAL, k.tkill, c, 0, 0), "kernel/signal.c", 3838)


# --- pidfd_send_signal -----------------------------------------------------------------------------------


def test_pidfd_send_signal_signals_the_process(k):
    """No siginfo: prepare_kill_siginfo (SI_USER, the caller's tgid), then kill_pid_info (kernel/signal.c:3755-3758)."""
    parent = fork_child(k)
    c, fd = pidfd_of(k, parent)
    k.rt_sigprocmask(c, SIG_BLOCK, bit(SIGUSR1))
    assert k.pidfd_send_signal(parent, fd, SIGUSR1) == 0
    assert [(q.si_code, q.si_pid) for q in c.signal.shared_pending.list] == [(SI_USER, parent.tgid)]
    k.check_invariants()


def test_pidfd_send_signal_reaches_the_threads_of_a_process_whose_leader_exited(k):
    """The pidfd names the leader's pid, still attached to the zombie leader: the group is signalled and a live
    thread takes it (kernel/signal.c:3758, 1445-1447)."""
    parent = fork_child(k)
    c, fd = pidfd_of(k, parent)
    t = thread_of(k, c)
    k.exit(c, 0)
    assert k.pidfd_send_signal(parent, fd, SIGKILL) == 0
    assert t.exit_state
    assert k.wait4(parent, c.pid, 0) == (c.pid, SIGKILL)
    k.check_invariants()


def test_pidfd_send_signal_errors_in_order(k):
    """flags EINVAL (3722) before EBADF for a bad fd (3726) and for a file that is no pidfd (3731)."""
    parent = fork_child(k)
    _c, fd = pidfd_of(k, parent)
    devnull = k.open(parent, "/dev/null")
    before = state(k)
    assert_cites(expect_errno(errno.EINVAL, k.pidfd_send_signal, parent, 999, SIGUSR1, None, 1),
                 "kernel/signal.c", 3722)
    assert_cites(expect_errno(errno.EBADF, k.pidfd_send_signal, parent, 999, SIGUSR1), "kernel/signal.c", 3726)
    assert_cites(expect_errno(errno.EBADF, k.pidfd_send_signal, parent, -1, SIGUSR1), "kernel/signal.c", 3726)
    assert_cites(expect_errno(errno.EBADF, k.pidfd_send_signal, parent, devnull, SIGUSR1), "kernel/signal.c", 3731)
    assert_cites(expect_errno(errno.EINVAL, k.pidfd_send_signal, parent, fd, 65), "kernel/signal.c", 833)
    assert state(k) == before
    k.check_invariants()


def test_pidfd_send_signal_siginfo_rules(k):
    """The siginfo must name the signal (EINVAL, 3746); si_code >= 0 or SI_TKILL only to the caller itself
    (EPERM, 3751); SI_QUEUE may go anywhere the caller may signal."""
    parent = fork_child(k)
    c, fd = pidfd_of(k, parent)
    k.rt_sigprocmask(c, SIG_BLOCK, bit(SIGUSR1))
    before = state(k)
    e = expect_errno(errno.EINVAL, k.pidfd_send_signal, parent, fd, SIGUSR1, SigInfo(SIGUSR2, SI_QUEUE, 1, 2, 3))
    assert_cites(e, "kernel/signal.c", 3746)
    for code in (SI_USER, 0x80, SI_TKILL):
        e = expect_errno(errno.EPERM, k.pidfd_send_signal, parent, fd, SIGUSR1, SigInfo(SIGUSR1, code, 1, 2, 3))
        assert_cites(e, "kernel/signal.c", 3751)
    assert state(k) == before
    assert k.pidfd_send_signal(parent, fd, SIGUSR1, SigInfo(SIGUSR1, SI_QUEUE, 4242, 7, 99)) == 0
    q = c.signal.shared_pending.list[-1]
    assert (q.si_signo, q.si_code, q.si_pid, q.si_uid, q.si_status) == (SIGUSR1, SI_QUEUE, 4242, 7, 99)
    k.check_invariants()


def test_pidfd_of_the_callers_own_process_allows_any_si_code_only_to_the_leader_thread(k):
    """task_pid(current) != pid compares the calling thread's own pid (kernel/signal.c:3751): the leader may
    send a kernel si_code through its own pidfd, another thread of the process may not."""
    p = fork_child(k)
    fd = k.pidfd_open(p, p.pid)
    t = thread_of(k, p)
    k.rt_sigprocmask(p, SIG_BLOCK, bit(SIGUSR1))
    k.rt_sigprocmask(t, SIG_BLOCK, bit(SIGUSR1))
    before = state(k)
    e = expect_errno(errno.EPERM, k.pidfd_send_signal, t, fd, SIGUSR1, SigInfo(SIGUSR1, SI_USER, 0, 0, 0))
    assert_cites(e, "kernel/signal.c", 3751)
    assert state(k) == before
    assert k.pidfd_send_signal(p, fd, SIGUSR1, SigInfo(SIGUSR1, SI_USER, 0, 0, 0)) == 0
    assert p.signal.shared_pending.signal & bit(SIGUSR1)
    k.check_invariants()


def test_pidfd_of_a_process_outside_the_callers_pid_namespace_is_einval(k):
    """access_pidfd_pidns: the pid's namespace must be the caller's or below it (kernel/signal.c:3653-3667, 3737)."""
    a = fork_child(k)
    target = fork_child(k)
    fd = k.pidfd_open(a, target.pid)
    k.unshare(a, CLONE_NEWPID)
    inner = fork_child(k, a)  # its fd table is a copy: the pidfd of target comes along
    k.close(a, fd)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.pidfd_send_signal, inner, fd, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 3737)
    assert state(k) == before
    k.check_invariants()


def test_pidfd_of_a_reaped_process_is_esrch(k):
    """The struct pid outlives its task: pid_task is NULL -> ESRCH (kernel/signal.c:1440)."""
    parent = fork_child(k)
    c, fd = pidfd_of(k, parent)
    k.exit(c, 0)
    k.wait4(parent, c.pid, 0)
    before = state(k)
    e = expect_errno(errno.ESRCH, k.pidfd_send_signal, parent, fd, SIGUSR1)
    assert_cites(e, "kernel/signal.c", 1440)
    assert state(k) == before
    k.check_invariants()


def test_pidfd_send_signal_permission(k):
    """kill_pid_info -> check_kill_permission: EPERM for another uid (kernel/signal.c:856)."""
    victim = fork_child(k)
    u = unprivileged(k, 1000)
    fd = k.pidfd_open(u, victim.pid)
    before = state(k)
    e = expect_errno(errno.EPERM, k.pidfd_send_signal, u, fd, SIGTERM)
    assert_cites(e, "kernel/signal.c", 856)
    assert state(k) == before
    k.check_invariants()


# --- namespace inits ----------------------------------------------------------------------------------


def ns_with_init(k: Kernel) -> tuple[Task, Task, Task]:
    """``a`` in the initial namespace, the init ``i`` of the pid namespace it unshared, and ``m`` inside it."""
    a = fork_child(k)
    k.unshare(a, CLONE_NEWPID)
    i = fork_child(k, a)
    m = fork_child(k, i)
    return a, i, m


def test_a_namespace_init_ignores_default_signals_from_its_own_namespace(k):
    """SIGNAL_UNKILLABLE with SIG_DFL drops the signal unless forced (kernel/signal.c:88-90): from inside the
    namespace even SIGKILL and SIGSTOP are not forced (the sender is visible there, 1214-1216)."""
    _a, _i, m = ns_with_init(k)
    before = state(k)
    for sig in (SIGTERM, SIGKILL, SIGSTOP):
        assert k.kill(m, 1, sig) == 0
    assert state(k) == before  # each was dropped at once
    k.check_invariants()


def test_a_namespace_init_takes_sigkill_and_sigstop_from_an_ancestor_namespace(k):
    """From the parent namespace task_pid_nr_ns(current, ns) is 0, so send_signal forces the kernel-only
    signals through (kernel/signal.c:1214-1216, 88-90) while other default signals are still dropped."""
    a, i, m = ns_with_init(k)
    k.kill(a, i.pid, SIGTERM)
    assert not (i.pending.signal | i.signal.shared_pending.signal)
    k.kill(a, i.pid, SIGSTOP)
    assert i.state == TaskState.TASK_STOPPED
    k.kill(a, i.pid, SIGKILL)
    assert i.exit_state and m.exit_state  # the namespace dies with its init
    k.check_invariants()


def test_the_global_init_never_takes_sigkill_even_from_the_kernel(k, init):
    """sig_task_ignored: is_global_init and sig_kernel_only -> dropped, forced or not (kernel/signal.c:84-86)."""
    from forklab.kernel.signal import SEND_SIG_PRIV, group_send_sig_info

    before = state(k)
    k._syscall(init, "kill", lambda c: group_send_sig_info(k, SIGKILL, SEND_SIG_PRIV, init, 1))
    assert state(k) == before
    assert not init.exit_state
