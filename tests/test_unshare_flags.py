"""unshare(2): check_unshare_flags, implied flags, and the pid/time namespace "for children" rules.

Sources: kernel/fork.c ksys_unshare/check_unshare_flags (2828-3024), kernel/pid_namespace.c
copy_pid_ns (148-156), kernel/nsproxy.c (149-237), kernel/time/namespace.c timens_on_fork (310-331).
"""

from __future__ import annotations

import errno

import pytest
from conftest import assert_cites, expect_errno, fork_child, state, unprivileged

from forklab.uapi import (
    CLONE_CHILD_CLEARTID,
    CLONE_CLEAR_SIGHAND,
    CLONE_DETACHED,
    CLONE_FILES,
    CLONE_FS,
    CLONE_IO,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_PARENT,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_PTRACE,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_UNTRACED,
    CLONE_VFORK,
    CLONE_VM,
    SIGCHLD,
)

THREAD = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM


@pytest.mark.parametrize("flag", [CLONE_PIDFD, CLONE_VFORK, CLONE_PARENT, CLONE_SETTLS, CLONE_IO,
                                  CLONE_PTRACE, CLONE_DETACHED, CLONE_UNTRACED, CLONE_PARENT_SETTID,
                                  CLONE_CHILD_CLEARTID, CLONE_CLEAR_SIGHAND, SIGCHLD, 1 << 40])
def test_unshare_unsupported_flag_is_einval(k, flag):
    """Any flag outside the unshare set -> EINVAL (kernel/fork.c:2830-2835)."""
    t = fork_child(k)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.unshare, t, flag)
    assert_cites(e, "kernel/fork.c", 2830, 2836)
    assert state(k) == before
    k.check_invariants()


@pytest.mark.parametrize("flag", [CLONE_THREAD, CLONE_SIGHAND, CLONE_VM, CLONE_NEWUSER])
def test_unshare_thread_sighand_vm_in_multithreaded_process_is_einval(k, flag):
    """THREAD/SIGHAND/VM (NEWUSER implies THREAD) with other threads -> EINVAL (kernel/fork.c:2842-2845, 2918-2934)."""
    t = fork_child(k)
    k.clone(t, THREAD)
    e = expect_errno(errno.EINVAL, k.unshare, t, flag)
    assert_cites(e, "kernel/fork.c", 2842, 2845)
    k.check_invariants()


@pytest.mark.parametrize("flag", [CLONE_THREAD, CLONE_SIGHAND, CLONE_VM, CLONE_FS, CLONE_FILES])
def test_unshare_of_private_resources_is_a_noop(k, flag):
    """In a single-threaded process these unshares have nothing to do (kernel/fork.c:2828-2856)."""
    t = fork_child(k)
    mm, files, fs, sighand = t.mm, t.files, t.fs, t.sighand
    assert k.unshare(t, flag) == 0
    assert (t.mm, t.files, t.fs, t.sighand) == (mm, files, fs, sighand)
    k.check_invariants()


def test_unshare_sighand_while_shared_is_einval(k):
    """SIGHAND/VM and sighand->count > 1 -> EINVAL (kernel/fork.c:2846-2849)."""
    t = fork_child(k)
    c = k.find_task(k.clone(t, CLONE_SIGHAND | CLONE_VM | SIGCHLD))
    e = expect_errno(errno.EINVAL, k.unshare, c, CLONE_SIGHAND)
    assert_cites(e, "kernel/fork.c", 2846, 2849)
    k.check_invariants()


def test_unshare_vm_while_mm_shared_is_einval(k):
    """VM while the mm is shared (not single threaded) -> EINVAL (kernel/fork.c:2850-2853)."""
    t = fork_child(k)
    c = k.find_task(k.clone(t, CLONE_VM | SIGCHLD))
    e = expect_errno(errno.EINVAL, k.unshare, c, CLONE_VM)
    assert_cites(e, "kernel/fork.c", 2846, 2853)
    k.check_invariants()


def test_unshare_files_and_fs_copy_shared_tables(k):
    """unshare_fd / unshare_fs copy only when shared (kernel/fork.c:2861-2895)."""
    t = fork_child(k)
    c = k.find_task(k.clone(t, CLONE_FILES | CLONE_FS | SIGCHLD))
    assert c.files is t.files and c.fs is t.fs
    k.unshare(c, CLONE_FILES | CLONE_FS)
    assert c.files is not t.files and c.fs is not t.fs
    assert t.files.count == 1 and t.fs.users == 1
    k.check_invariants()


def test_unshare_newns_implies_fs(k):
    """NEWNS => +FS (kernel/fork.c:2933-2934): a shared fs_struct is copied."""
    t = fork_child(k)
    c = k.find_task(k.clone(t, CLONE_FS | SIGCHLD))
    k.unshare(c, CLONE_NEWNS)
    assert c.fs is not t.fs and c.nsproxy.mnt_ns is not t.nsproxy.mnt_ns
    k.check_invariants()


def test_unshare_newuser_unprivileged_and_full_caps(k):
    """unshare_userns (kernel/user_namespace.c:154-172): no privilege needed, full caps in the new ns."""
    from forklab.uapi import CAP_FULL_SET

    t = unprivileged(k)
    old_ns = t.cred.user_ns
    k.unshare(t, CLONE_NEWUSER)
    assert t.cred.user_ns.parent is old_ns and t.cred.cap_effective == CAP_FULL_SET
    k.check_invariants()


def test_unshare_newuser_with_newuts_unprivileged(k):
    """unshare_nsproxy_namespaces checks CAP_SYS_ADMIN in the new cred's ns (kernel/nsproxy.c:214-237)."""
    t = unprivileged(k)
    uts = t.nsproxy.uts_ns
    k.unshare(t, CLONE_NEWUSER | CLONE_NEWUTS)
    assert t.nsproxy.uts_ns is not uts
    k.check_invariants()


def test_unshare_newnet_unprivileged_is_eperm(k):
    """Without CLONE_NEWUSER the caller's own ns is checked -> EPERM (kernel/nsproxy.c:225-226)."""
    t = unprivileged(k)
    before = state(k)
    expect_errno(errno.EPERM, k.unshare, t, CLONE_NEWNET)
    assert state(k) == before
    k.check_invariants()


def test_unshare_newuser_when_chrooted_is_eperm(k):
    """create_user_ns: chrooted -> EPERM (kernel/user_namespace.c:91-93)."""
    t = fork_child(k)
    k.chroot(t, "/tmp")
    expect_errno(errno.EPERM, k.unshare, t, CLONE_NEWUSER)
    k.check_invariants()


# --- unshare(CLONE_NEWPID) ------------------------------------------------------------------------------


def test_unshare_newpid_affects_only_children(k):
    """unshare(CLONE_NEWPID) only sets pid_ns_for_children (kernel/fork.c:2955, pid_namespace.c:148-156)."""
    t = fork_child(k)
    active = t.thread_pid.numbers[-1].ns
    k.unshare(t, CLONE_NEWPID)
    assert t.thread_pid.numbers[-1].ns is active and k.getpid(t) == t.pid
    assert t.nsproxy.pid_ns_for_children.parent is active
    k.check_invariants()


def test_second_unshare_newpid_before_fork_is_einval(k):
    """copy_pid_ns: active pid ns != pid_ns_for_children -> EINVAL (kernel/pid_namespace.c:152-153)."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWPID)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.unshare, t, CLONE_NEWPID)
    assert_cites(e, "kernel/pid_namespace.c", 148, 156)
    assert state(k) == before
    k.check_invariants()


def test_clone_newpid_after_unshare_newpid_is_einval(k):
    """The same copy_pid_ns rule applies to clone(CLONE_NEWPID) (kernel/pid_namespace.c:152-153)."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWPID)
    e = expect_errno(errno.EINVAL, k.clone, t, CLONE_NEWPID | SIGCHLD)
    assert_cites(e, "kernel/pid_namespace.c", 148, 156)
    k.check_invariants()


def test_first_child_after_unshare_newpid_is_init_of_the_new_ns(k):
    """The first child gets number 1 in the new ns: child_reaper and SIGNAL_UNKILLABLE (kernel/fork.c:2253-2256);
    the parent still sees its outer number (kernel/fork.c:2442-2443)."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWPID)
    ns = t.nsproxy.pid_ns_for_children
    outer = k.fork(t)
    c = k.find_task(outer)
    assert outer == c.pid != 1
    assert k.getpid(c) == 1 and k.find_task(1, ns) is c
    assert ns.child_reaper is c and c.signal.flags & 0x40
    assert k.getppid(c) == 0
    # the second child is pid 2 there
    d = k.find_task(k.fork(t))
    assert k.getpid(d) == 2 and not d.signal.flags & 0x40
    # still EINVAL after forking: the caller's own active ns never changes
    expect_errno(errno.EINVAL, k.unshare, t, CLONE_NEWPID)
    k.check_invariants()


def test_after_unshare_newpid_orphans_go_to_the_new_init(k):
    """find_child_reaper uses the pid ns's child_reaper (kernel/exit.c:501-530)."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWPID)
    nsinit = k.find_task(k.fork(t))
    mid = fork_child(k, nsinit)
    leaf = fork_child(k, mid)
    assert mid.real_parent is nsinit and k.getpid(mid) == 2 and k.getpid(leaf) == 3
    k.exit(mid, 0)
    assert leaf.real_parent is nsinit and k.getppid(leaf) == 1
    k.check_invariants()


# --- unshare(CLONE_NEWTIME) ----------------------------------------------------------------------------


def test_unshare_newtime_then_vfork_einval_then_fork_enters_new_time_ns(k):
    """After unshare(CLONE_NEWTIME) only time_ns_for_children changes (kernel/time/namespace.c:132+);
    vfork (CLONE_VM) is EINVAL (kernel/fork.c:1886-1889); a plain fork builds a new nsproxy without a
    capability check and the child joins the new time ns (kernel/nsproxy.c:156-162,181-185)."""
    t = fork_child(k)
    old_time = t.nsproxy.time_ns
    k.unshare(t, CLONE_NEWTIME)
    new_time = t.nsproxy.time_ns_for_children
    assert t.nsproxy.time_ns is old_time and new_time is not old_time
    e = expect_errno(errno.EINVAL, k.vfork, t)
    assert_cites(e, "kernel/fork.c", 1886, 1889)
    c = fork_child(k, t)
    assert c.nsproxy is not t.nsproxy
    assert c.nsproxy.time_ns is new_time and c.nsproxy.time_ns_for_children is new_time
    assert t.nsproxy.time_ns is old_time
    # the parent itself never moves, so CLONE_VM stays refused; the child may vfork
    expect_errno(errno.EINVAL, k.vfork, t)
    v = k.find_task(k.vfork(c))
    assert v.mm is c.mm
    k.exit(v, 0)
    k.check_invariants()


def test_unshare_newtime_plain_fork_needs_no_privilege(k):
    """The nsproxy rebuild for a pending time ns has no capability check (kernel/nsproxy.c:156-162): a task
    that unshared NEWTIME and then dropped privileges still forks."""
    t = fork_child(k)
    k.unshare(t, CLONE_NEWTIME)
    k.setresuid(t, 1000, 1000, 1000)
    c = fork_child(k, t)
    assert c.nsproxy.time_ns is t.nsproxy.time_ns_for_children
    k.check_invariants()


def test_unshare_newtime_unprivileged_is_eperm(k):
    """unshare(CLONE_NEWTIME) needs CAP_SYS_ADMIN (kernel/nsproxy.c:225-226)."""
    t = unprivileged(k)
    expect_errno(errno.EPERM, k.unshare, t, CLONE_NEWTIME)
    k.check_invariants()
