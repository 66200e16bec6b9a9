"""copy_process's eight up-front EINVAL checks, in source order (kernel/fork.c:1841-1899).

Each check allocates nothing, so a failure leaves the whole kernel unchanged (compared
with ``state(k)``). When several checks fail, the first in source order decides (the
error cites its line).
"""

from __future__ import annotations

import errno

import pytest
from conftest import assert_cites, expect_errno, fork_child, state

from forklab import CloneArgs, SigAction
from forklab.uapi import (
    CLONE_DETACHED,
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_PARENT,
    CLONE_PIDFD,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    RLIMIT_NPROC,
    SIGCHLD,
    SIGUSR1,
)

THREAD = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM

CHECK_LINES = {
    1: (1841, 1842),
    2: (1844, 1845),
    3: (1851, 1852),
    4: (1859, 1860),
    5: (1868, 1870),
    6: (1876, 1880),
    7: (1886, 1889),
    8: (1891, 1899),
}


def clone_fails_at(k, t, flags, check, **kw):
    """clone(flags) from ``t`` fails EINVAL citing copy_process check ``check``; nothing changes."""
    before = state(k)
    e = expect_errno(errno.EINVAL, k.clone, t, flags, **kw)
    assert_cites(e, "kernel/fork.c", *CHECK_LINES[check])
    assert state(k) == before
    k.check_invariants()
    return e


# --- each check on its own ----------------------------------------------------------------


def test_check1_newns_with_fs_is_einval(k):
    """CLONE_NEWNS|CLONE_FS -> EINVAL (kernel/fork.c:1841-1842)."""
    t = fork_child(k)
    clone_fails_at(k, t, CLONE_NEWNS | CLONE_FS | SIGCHLD, 1)
    assert k.find_task(k.clone(t, CLONE_NEWNS | SIGCHLD)).nsproxy.mnt_ns is not t.nsproxy.mnt_ns


def test_check2_newuser_with_fs_is_einval(k):
    """CLONE_NEWUSER|CLONE_FS -> EINVAL (kernel/fork.c:1844-1845)."""
    t = fork_child(k)
    clone_fails_at(k, t, CLONE_NEWUSER | CLONE_FS | SIGCHLD, 2)


def test_check3_thread_without_sighand_is_einval(k):
    """CLONE_THREAD without CLONE_SIGHAND -> EINVAL (kernel/fork.c:1851-1852)."""
    t = fork_child(k)
    clone_fails_at(k, t, CLONE_THREAD | CLONE_VM, 3)


def test_check4_sighand_without_vm_is_einval(k):
    """CLONE_SIGHAND without CLONE_VM -> EINVAL (kernel/fork.c:1859-1860)."""
    t = fork_child(k)
    clone_fails_at(k, t, CLONE_SIGHAND | SIGCHLD, 4)


def test_check5_clone_parent_from_global_init_is_einval(k, init):
    """CLONE_PARENT while current->signal has SIGNAL_UNKILLABLE (global init) -> EINVAL (kernel/fork.c:1868-1870)."""
    clone_fails_at(k, init, CLONE_PARENT | SIGCHLD, 5)


def test_check5_clone_parent_from_pid_ns_init_is_einval(k, init):
    """A pid-namespace init also has SIGNAL_UNKILLABLE (kernel/fork.c:2253-2256), so check 5 applies."""
    nsinit = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    clone_fails_at(k, nsinit, CLONE_PARENT | SIGCHLD, 5)


def test_check5_clone_parent_from_ordinary_task_is_allowed(k, init):
    """Without SIGNAL_UNKILLABLE CLONE_PARENT works: the child is a sibling (kernel/fork.c:2206-2209)."""
    t = fork_child(k)
    child = k.find_task(k.clone(t, CLONE_PARENT | SIGCHLD))
    assert child.real_parent is init
    k.check_invariants()


@pytest.mark.parametrize("extra", [CLONE_NEWUSER, CLONE_NEWPID])
def test_check6_thread_into_new_user_or_pid_ns_is_einval(k, extra):
    """CLONE_THREAD with CLONE_NEWUSER or CLONE_NEWPID -> EINVAL (kernel/fork.c:1876-1880)."""
    t = fork_child(k)
    clone_fails_at(k, t, THREAD | extra, 6)


def test_check6_thread_after_unshare_newpid_is_einval(k):
    """CLONE_THREAD when pid_ns_for_children != active pid ns -> EINVAL (kernel/fork.c:1877-1878)."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWPID)
    clone_fails_at(k, t, THREAD, 6)
    # CLONE_VM without CLONE_THREAD is not affected by check 6
    assert k.clone(t, CLONE_VM | SIGCHLD) > 0
    k.check_invariants()


@pytest.mark.parametrize("flags", [THREAD, CLONE_VM | SIGCHLD, CLONE_VM | CLONE_FILES | SIGCHLD])
def test_check7_vm_or_thread_after_unshare_newtime_is_einval(k, flags):
    """CLONE_THREAD|CLONE_VM while time_ns != time_ns_for_children -> EINVAL (kernel/fork.c:1886-1889)."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWTIME)
    clone_fails_at(k, t, flags, 7)


def test_check7_applies_to_vfork(k):
    """vfork is CLONE_VM|CLONE_VFORK (kernel/fork.c:2536-2546), so check 7 rejects it too (1886-1889)."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWTIME)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.vfork, t)
    assert_cites(e, "kernel/fork.c", *CHECK_LINES[7])
    assert state(k) == before
    k.check_invariants()


@pytest.mark.parametrize("flags", [CLONE_PIDFD | CLONE_DETACHED | SIGCHLD, CLONE_PIDFD | THREAD])
def test_check8_pidfd_with_detached_or_thread_is_einval(k, flags):
    """CLONE_PIDFD with CLONE_DETACHED or CLONE_THREAD -> EINVAL (kernel/fork.c:1891-1899)."""
    t = fork_child(k)
    clone_fails_at(k, t, flags, 8, parent_tid=0x1000)


def test_check8_via_clone3_pidfd_thread(k):
    """clone3 reaches the same copy_process check (kernel/fork.c:1891-1899)."""
    t = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, t, CloneArgs(flags=CLONE_PIDFD | THREAD, pidfd=0x1000))
    assert_cites(e, "kernel/fork.c", *CHECK_LINES[8])
    k.check_invariants()


# --- precedence when several checks fail --------------------------------------------------------


def test_check1_precedes_check2(k):
    """NEWNS|NEWUSER|FS: check 1 (1841) fires before check 2 (1844)."""
    clone_fails_at(k, fork_child(k), CLONE_NEWNS | CLONE_NEWUSER | CLONE_FS | SIGCHLD, 1)


def test_check2_precedes_check3(k):
    """NEWUSER|FS|THREAD without SIGHAND: check 2 (1844) before check 3 (1851)."""
    clone_fails_at(k, fork_child(k), CLONE_NEWUSER | CLONE_FS | CLONE_THREAD, 2)


def test_check3_precedes_check5(k, init):
    """Checks 3 and 4 exclude each other, so pair 3 with 5: from init, CLONE_THREAD|CLONE_PARENT
    without SIGHAND is reported as check 3 (1851), not 5 (1868)."""
    clone_fails_at(k, init, CLONE_THREAD | CLONE_VM | CLONE_PARENT, 3)


def test_check4_precedes_check5(k, init):
    """SIGHAND without VM from init with CLONE_PARENT: check 4 (1859) before 5 (1868)."""
    clone_fails_at(k, init, CLONE_SIGHAND | CLONE_PARENT | SIGCHLD, 4)


def test_check5_precedes_check6(k, init):
    """From init, CLONE_PARENT|THREAD|NEWPID: check 5 (1868) before 6 (1876)."""
    clone_fails_at(k, init, CLONE_PARENT | THREAD | CLONE_NEWPID, 5)


def test_check6_precedes_check7(k):
    """After unshare(NEWTIME), THREAD|NEWPID violates 6 and 7: 6 (1876) wins."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWTIME)
    clone_fails_at(k, t, THREAD | CLONE_NEWPID, 6)


def test_check7_precedes_check8(k):
    """After unshare(NEWTIME), VM|PIDFD|DETACHED violates 7 and 8: 7 (1886) wins."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWTIME)
    clone_fails_at(k, t, CLONE_VM | CLONE_PIDFD | CLONE_DETACHED | SIGCHLD, 7, parent_tid=0x1000)


def test_flag_checks_precede_the_signal_fence(k):
    """The EINVAL checks return before the ERESTARTNOINTR fence (kernel/fork.c:1907-1917): a fork that
    fails a flag check is not restarted; the pending signal is delivered once, on the way back to
    user mode after the EINVAL (arch/x86/entry/common.c:exit_to_usermode_loop)."""
    t = fork_child(k)
    k.rt_sigaction(t, SIGUSR1, SigAction(0x1000))
    k.kill(k.init_task, t.pid, SIGUSR1)
    delivered = list(k.signals_delivered)
    assert t.pending.signal | t.signal.shared_pending.signal
    forks = k.total_forks
    expect_errno(errno.EINVAL, k.clone, t, CLONE_SIGHAND | SIGCHLD)
    assert k.signals_delivered == [*delivered, (t.pid, SIGUSR1, "handler 0x1000 ran")]
    assert k.total_forks == forks
    assert not (t.pending.signal | t.signal.shared_pending.signal)
    k.check_invariants()


def test_flag_checks_precede_rlimit_nproc(k):
    """Check 1 (1841) comes before the RLIMIT_NPROC EAGAIN (1944-1950)."""
    from conftest import unprivileged

    t = unprivileged(k, nproc=(1, 1))
    expect_errno(errno.EAGAIN, k.fork, t)
    e = expect_errno(errno.EINVAL, k.clone, t, CLONE_NEWNS | CLONE_FS | SIGCHLD)
    assert_cites(e, "kernel/fork.c", *CHECK_LINES[1])
    assert k.getrlimit(t, RLIMIT_NPROC) == (1, 1)
    k.check_invariants()
