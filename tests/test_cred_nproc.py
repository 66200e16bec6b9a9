"""RLIMIT_NPROC and threads-max at fork, and cred/user accounting.

Sources: kernel/fork.c:1944-1964 (the two EAGAIN checks), kernel/cred.c:330-393 (copy_creds),
kernel/exit.c:191-235 (release_task decrements user->processes), kernel/sys.c:468-495 (set_user).
"""

from __future__ import annotations

import errno

from conftest import assert_cites, expect_errno, fork_child, state, unprivileged

from forklab import Kernel
from forklab.uapi import (
    CAP_SYS_ADMIN,
    CAP_SYS_RESOURCE,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    RLIMIT_NPROC,
)


def test_rlimit_nproc_eagain_when_uid_has_limit_tasks(k):
    """user->processes >= RLIMIT_NPROC soft and not INIT_USER / CAP_SYS_RESOURCE / CAP_SYS_ADMIN -> EAGAIN
    (kernel/fork.c:1944-1950)."""
    t = unprivileged(k, nproc=(2, 2))
    user = t.real_cred.user
    assert user.uid == 1000 and user.processes == 1
    c = fork_child(k, t)
    assert user.processes == 2 and c.real_cred.user is user
    before = state(k)
    e = expect_errno(errno.EAGAIN, k.fork, t)
    assert_cites(e, "kernel/fork.c", 1944, 1950)
    assert state(k) == before
    k.check_invariants()


def test_rlimit_nproc_counts_zombies_until_reaped(k):
    """processes is decremented only in release_task (kernel/exit.c:199): a zombie still counts;
    reaping it frees the slot."""
    t = unprivileged(k, nproc=(2, 2))
    c = fork_child(k, t)
    k.exit(c, 0)
    assert c.exit_state  # zombie
    assert t.real_cred.user.processes == 2
    expect_errno(errno.EAGAIN, k.fork, t)
    assert k.wait4(t, c.pid, 0) == (c.pid, 0)
    assert t.real_cred.user.processes == 1
    assert k.fork(t) > 0
    k.check_invariants()


def test_rlimit_nproc_counts_threads(k):
    """copy_creds counts a CLONE_THREAD child too (kernel/cred.c:351), so threads use up the limit."""
    t = unprivileged(k, nproc=(2, 2))
    k.clone(t, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
    assert t.real_cred.user.processes == 2
    expect_errno(errno.EAGAIN, k.clone, t, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
    expect_errno(errno.EAGAIN, k.fork, t)
    k.check_invariants()


def test_rlimit_nproc_is_per_uid_across_processes(k):
    """The count is per user_struct (global per kuid), not per process tree (kernel/fork.c:1945)."""
    a = unprivileged(k, nproc=(3, 3))
    b = unprivileged(k, nproc=(3, 3))
    assert a.real_cred.user is b.real_cred.user and a.real_cred.user.processes == 2
    fork_child(k, a)
    expect_errno(errno.EAGAIN, k.fork, b)
    k.check_invariants()


def test_rlimit_nproc_root_init_user_is_exempt(k, init):
    """INIT_USER (uid 0) is exempt (kernel/fork.c:1947) even without capabilities."""
    t = fork_child(k)
    k.setrlimit(t, RLIMIT_NPROC, (1, 1))
    k.capset(t, 0, 0, 0)
    assert t.real_cred.user is k.root_user and k.root_user.processes > 1
    assert k.fork(t) > 0
    k.check_invariants()


def test_rlimit_nproc_cap_sys_resource_or_admin_exempts(k):
    """capable(CAP_SYS_RESOURCE) or capable(CAP_SYS_ADMIN) exempts (kernel/fork.c:1948).
    setresuid(1000, 0, 0) keeps root's caps (real uid 1000 -> user_struct 1000)."""
    for cap in (CAP_SYS_RESOURCE, CAP_SYS_ADMIN):
        t = fork_child(k)
        k.setrlimit(t, RLIMIT_NPROC, (1, 1))
        k.setresuid(t, 2000 + cap, 0, 0)
        k.capset(t, 1 << cap, 1 << cap, 0)
        assert t.real_cred.user.uid == 2000 + cap and t.real_cred.user.processes == 1
        assert k.fork(t) > 0
        assert k.fork(t) > 0
        k.capset(t, 0, 1 << cap, 0)  # drop it from the effective set
        expect_errno(errno.EAGAIN, k.fork, t)
    k.check_invariants()


def test_rlimit_nproc_uses_parents_soft_limit(k):
    """task_rlimit(p, RLIMIT_NPROC) reads the (still shared) parent signal->rlim soft value (kernel/fork.c:1945)."""
    t = unprivileged(k, nproc=(2, 10))
    fork_child(k, t)
    expect_errno(errno.EAGAIN, k.fork, t)
    k.setrlimit(t, RLIMIT_NPROC, (3, 10))
    assert k.fork(t) > 0
    k.check_invariants()


def test_setresuid_over_limit_does_not_fail(k):
    """set_user only flags PF_NPROC_EXCEEDED, it does not fail (kernel/sys.c:468-495)."""
    a = unprivileged(k, nproc=(1, 1))
    b = fork_child(k)
    k.setrlimit(b, RLIMIT_NPROC, (1, 1))
    k.setresuid(b, 1000, 1000, 1000)
    assert b.flags & 0x1000  # PF_NPROC_EXCEEDED
    assert a.real_cred.user.processes == 2
    expect_errno(errno.EAGAIN, k.fork, b)
    k.check_invariants()


def test_threads_max_eagain_counts_zombies():
    """nr_threads >= max_threads -> EAGAIN (kernel/fork.c:1962-1964); nr_threads drops only in
    __unhash_process at release (kernel/exit.c:72-90)."""
    k = Kernel(threads_max=20)
    init = k.init_task
    kids = [fork_child(k) for _ in range(19)]
    assert k.nr_threads == 20
    before = state(k)
    e = expect_errno(errno.EAGAIN, k.fork, init)
    assert_cites(e, "kernel/fork.c", 1962, 1964)
    assert state(k) == before
    k.exit(kids[0], 0)
    expect_errno(errno.EAGAIN, k.fork, init)
    assert k.wait4(init, kids[0].pid, 0)[0] == kids[0].pid
    assert k.fork(init) > 0
    expect_errno(errno.EAGAIN, k.fork, init)
    k.check_invariants()


def test_threads_max_applies_to_root_and_threads():
    """threads-max has no exemption, unlike RLIMIT_NPROC (kernel/fork.c:1962-1964)."""
    k = Kernel(threads_max=20)
    p = fork_child(k)
    for _ in range(18):
        k.clone(p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
    expect_errno(errno.EAGAIN, k.clone, p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
    assert p.signal.nr_threads == 19
    k.check_invariants()


def test_rlimit_nproc_precedes_threads_max():
    """RLIMIT_NPROC (1944) is checked before threads-max (1962): both EAGAIN, the first one is reported."""
    k = Kernel(threads_max=20)
    t = unprivileged(k, nproc=(1, 1))
    while k.nr_threads < 20:
        fork_child(k)
    e = expect_errno(errno.EAGAIN, k.fork, t)
    assert_cites(e, "kernel/fork.c", 1944, 1950)
    k.check_invariants()


def test_failed_fork_leaves_process_counts_unchanged(k):
    """bad_fork_cleanup_count undoes copy_creds' processes++ (kernel/fork.c:2350-2352)."""
    from forklab.uapi import CLONE_SETTLS

    t = unprivileged(k, nproc=(5, 5))
    user = t.real_cred.user
    n = user.processes
    expect_errno(errno.EPERM, k.clone, t, CLONE_SETTLS | 17, tls=1 << 60)
    assert user.processes == n
    k.check_invariants()
