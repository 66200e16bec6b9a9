"""Namespaces created by clone: user, pid, net, ipc, time.

Sources: kernel/user_namespace.c create_user_ns (69-152), set_cred_user_ns (42-59);
kernel/nsproxy.c copy_namespaces (149-189); kernel/pid_namespace.c (76-156);
kernel/cred.c copy_creds (359-363).
"""

from __future__ import annotations

import errno

from conftest import assert_cites, expect_errno, fork_child, state, unprivileged

from forklab.uapi import (
    CAP_FULL_SET,
    CAP_SYS_ADMIN,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_SYSVSEM,
    SIGCHLD,
)

ALL_NEW = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP


# --- user namespaces ------------------------------------------------------------------------------


def test_unprivileged_clone_newuser_gives_full_caps_in_child_ns(k):
    """No capability is needed for CLONE_NEWUSER; set_cred_user_ns gives permitted = effective =
    bounding = full (kernel/user_namespace.c:42-59), uids unchanged (kernel/cred.c:359-363)."""
    t = unprivileged(k)
    c = k.find_task(k.clone(t, CLONE_NEWUSER | SIGCHLD))
    ns = c.cred.user_ns
    assert ns is not t.cred.user_ns and ns.parent is t.cred.user_ns and ns.level == 1
    assert ns.owner == 1000
    assert c.cred.cap_effective == c.cred.cap_permitted == c.cred.cap_bset == CAP_FULL_SET
    assert c.cred.cap_inheritable == 0 and c.cred.cap_ambient == 0
    assert c.cred.uid == c.cred.euid == 1000
    assert c.real_cred.user is t.real_cred.user  # still counted against kuid 1000 (kernel/cred.c:384)
    # the parent is unchanged
    assert t.cred.cap_effective == 0 and t.cred.user_ns is k.init_user_ns
    k.check_invariants()


def test_unprivileged_newuser_with_newnet_works(k):
    """copy_namespaces checks CAP_SYS_ADMIN in the child's new user ns (kernel/nsproxy.c:152,163)."""
    t = unprivileged(k)
    c = k.find_task(k.clone(t, CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD))
    assert c.nsproxy is not t.nsproxy
    assert c.nsproxy.net_ns is not t.nsproxy.net_ns
    assert c.nsproxy.uts_ns is t.nsproxy.uts_ns
    k.check_invariants()


def test_unprivileged_newuser_with_every_other_namespace_works(k):
    """All CLONE_NEW* kinds together with CLONE_NEWUSER (kernel/nsproxy.c:163, create_new_namespaces 65-143)."""
    t = unprivileged(k)
    c = k.find_task(k.clone(t, CLONE_NEWUSER | ALL_NEW | SIGCHLD))
    for kind in ("mnt_ns", "uts_ns", "ipc_ns", "net_ns", "cgroup_ns", "pid_ns_for_children"):
        assert getattr(c.nsproxy, kind) is not getattr(t.nsproxy, kind), kind
    assert k.getpid(c) == 1
    k.check_invariants()


def test_unprivileged_newnet_without_newuser_is_eperm(k):
    """!ns_capable(user_ns, CAP_SYS_ADMIN) -> EPERM (kernel/nsproxy.c:163-164)."""
    t = unprivileged(k)
    before = state(k)
    e = expect_errno(errno.EPERM, k.clone, t, CLONE_NEWNET | SIGCHLD)
    assert_cites(e, "kernel/nsproxy.c", 163, 164)
    assert state(k) == before
    for flag in (CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWCGROUP):
        expect_errno(errno.EPERM, k.clone, t, flag | SIGCHLD)
    k.check_invariants()


def test_newipc_with_sysvsem_einval_only_after_eperm_check(k):
    """CLONE_NEWIPC|CLONE_SYSVSEM -> EINVAL, but checked after the EPERM check (kernel/nsproxy.c:163-175)."""
    t = unprivileged(k)
    expect_errno(errno.EPERM, k.clone, t, CLONE_NEWIPC | CLONE_SYSVSEM | SIGCHLD)
    e = expect_errno(errno.EINVAL, k.clone, k.init_task, CLONE_NEWIPC | CLONE_SYSVSEM | SIGCHLD)
    assert_cites(e, "kernel/nsproxy.c", 173, 175)
    # with CLONE_NEWUSER the caller is privileged in the new ns, so EINVAL again
    expect_errno(errno.EINVAL, k.clone, t, CLONE_NEWUSER | CLONE_NEWIPC | CLONE_SYSVSEM | SIGCHLD)
    k.check_invariants()


def test_user_ns_nesting_limit_33_levels(k, init):
    """parent_ns->level > 32 -> ENOSPC (kernel/user_namespace.c:77-79): levels 1..33 can be created,
    the 34th nested create fails."""
    t = init
    for level in range(1, 34):
        c = k.find_task(k.clone(t, CLONE_NEWUSER | SIGCHLD))
        assert c.cred.user_ns.level == level
        k.write_id_map(t, c, uid_map=[(0, 0, 1)], gid_map=[(0, 0, 1)])
        t = c
    before = state(k)
    e = expect_errno(errno.ENOSPC, k.clone, t, CLONE_NEWUSER | SIGCHLD)
    assert_cites(e, "kernel/user_namespace.c", 77, 79)
    assert state(k) == before
    k.check_invariants()


def test_unmapped_creator_cannot_create_nested_user_ns(k):
    """The creator's euid/egid must be mapped in the parent user ns (kernel/user_namespace.c:99-102)."""
    t = unprivileged(k)
    c = k.find_task(k.clone(t, CLONE_NEWUSER | SIGCHLD))
    e = expect_errno(errno.EPERM, k.clone, c, CLONE_NEWUSER | SIGCHLD)
    assert_cites(e, "kernel/user_namespace.c", 99, 102)
    # once a privileged writer in the parent ns maps uid 1000 and gid 0, the nested create works
    k.write_id_map(k.init_task, c, uid_map=[(0, 1000, 1)], gid_map=[(0, 0, 1)])
    g = k.find_task(k.clone(c, CLONE_NEWUSER | SIGCHLD))
    assert g.cred.user_ns.level == 2
    k.check_invariants()


def test_chrooted_task_cannot_create_user_ns(k):
    """current_chrooted() -> EPERM (kernel/user_namespace.c:91-93)."""
    t = fork_child(k)
    k.chroot(t, "/tmp")
    before = state(k)
    e = expect_errno(errno.EPERM, k.clone, t, CLONE_NEWUSER | SIGCHLD)
    assert_cites(e, "kernel/user_namespace.c", 91, 93)
    assert state(k) == before
    k.check_invariants()


def test_chroot_check_precedes_mapping_check(k):
    """Chroot (91) comes before the mapping check (99): a chrooted unmapped creator gets EPERM from line 91."""
    t = unprivileged(k)
    c = k.find_task(k.clone(t, CLONE_NEWUSER | SIGCHLD))
    k.chroot(c, "/tmp")
    e = expect_errno(errno.EPERM, k.clone, c, CLONE_NEWUSER | SIGCHLD)
    assert_cites(e, "kernel/user_namespace.c", 91, 93)
    k.check_invariants()


def test_newuser_child_owner_is_capable_in_child_ns_only(k):
    """The new creds hold caps in the new ns, none in its parent (security/commoncap.c cap_capable)."""
    from forklab.kernel.capability import ns_capable

    t = unprivileged(k)
    c = k.find_task(k.clone(t, CLONE_NEWUSER | SIGCHLD))
    assert ns_capable(c, c.cred.user_ns, CAP_SYS_ADMIN)
    assert not ns_capable(c, k.init_user_ns, CAP_SYS_ADMIN)
    k.check_invariants()


# --- pid namespaces -------------------------------------------------------------------------------


def test_pid_ns_nesting_limit_32_levels(k, init):
    """level = parent level + 1 > MAX_PID_NS_LEVEL (32) -> ENOSPC (kernel/pid_namespace.c:88-90)."""
    t = init
    for level in range(1, 33):
        vpid = k.clone(t, CLONE_NEWPID | SIGCHLD)
        ns = t.nsproxy.pid_ns_for_children
        c = next(ch for ch in t.children if ch.thread_pid.level == level)
        assert vpid == c.thread_pid.numbers[t.thread_pid.level].nr
        assert k.getpid(c) == 1 and ns.level == level - 1
        t = c
    assert t.thread_pid.level == 32
    before = state(k)
    e = expect_errno(errno.ENOSPC, k.clone, t, CLONE_NEWPID | SIGCHLD)
    assert_cites(e, "kernel/pid_namespace.c", 88, 90)
    assert state(k) == before
    assert k.fork(t) == 2  # a plain fork at level 32 is fine
    k.check_invariants()


def test_pid_ns_init_is_child_reaper_and_unkillable(k, init):
    """The child numbered 1 in its ns becomes child_reaper with SIGNAL_UNKILLABLE (kernel/fork.c:2253-2256)."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    ns = c.thread_pid.numbers[1].ns
    assert ns.child_reaper is c
    assert c.signal.flags & 0x40
    k.check_invariants()


def test_clone_newpid_child_pid_ns_for_children_is_new_ns(k, init):
    """copy_pid_ns creates the ns as the child's pid_ns_for_children (kernel/pid_namespace.c:148-156)."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    ns = c.nsproxy.pid_ns_for_children
    assert ns.parent is init.nsproxy.pid_ns_for_children
    assert ns.user_ns is init.cred.user_ns
    assert init.nsproxy.pid_ns_for_children.level == 0
    k.check_invariants()
