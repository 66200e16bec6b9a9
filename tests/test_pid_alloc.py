"""PID allocation, set_tid, pidfds and the pids cgroup.

Sources: kernel/pid.c alloc_pid (160-304), free_pid (124-158), lib/idr.c idr_alloc_cyclic,
kernel/fork.c:2097-2129 (alloc_pid and CLONE_PIDFD in copy_process), kernel/cgroup/pids.c:143-253.
"""

from __future__ import annotations

import errno

import pytest
from conftest import (
    assert_cites,
    expect_errno,
    fork_child,
    gone,
    map_page,
    read_int,
    state,
    unprivileged,
)

from forklab import CloneArgs, Kernel
from forklab.uapi import (
    CLONE_FILES,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_PIDFD,
    CLONE_SETTLS,
    SIGCHLD,
)


def reap(k, parent, child):
    k.exit(child, 0)
    assert k.wait4(parent, child.pid, 0)[0] == child.pid


# --- automatic numbers ----------------------------------------------------------------------------


def test_pids_are_allocated_cyclically_not_lowest_free(k, init):
    """idr_alloc_cyclic starts at the cursor (last + 1), not at the lowest free number (kernel/pid.c:221-235)."""
    a = fork_child(k)
    b = fork_child(k)
    assert (a.pid, b.pid) == (2, 3)
    reap(k, init, a)
    assert k.fork(init) == 4  # 2 is free but the cursor is past it
    k.check_invariants()


def test_zombie_keeps_its_pid_until_reaped(k, init):
    """free_pid runs from release_task, so a zombie's number stays in the idr (kernel/pid.c:124-158)."""
    a = fork_child(k)
    k.exit(a, 0)
    assert k.find_task(a.pid) is a
    k.wait4(init, a.pid, 0)
    assert gone(k, a.pid)
    k.check_invariants()


def test_pid_wraps_to_reserved_pids_300():
    """After the cursor passes RESERVED_PIDS (300), pid_min = 300: numbering wraps to 300, never 2..299
    (kernel/pid.c:62, 223-231)."""
    k = Kernel(pid_max=400)
    init = k.init_task
    last = 0
    while last < 399:
        c = fork_child(k)
        last = c.pid
        reap(k, init, c)
    assert last == 399
    assert k.fork(init) == 300
    assert k.fork(init) == 301
    k.check_invariants()


def test_pid_exhaustion_is_eagain_and_changes_nothing():
    """No free number at some level: idr ENOSPC -> EAGAIN (kernel/pid.c:240-243)."""
    k = Kernel(pid_max=301)
    init = k.init_task
    kids = [fork_child(k) for _ in range(299)]
    assert kids[-1].pid == 300
    before = state(k)
    e = expect_errno(errno.EAGAIN, k.fork, init)
    assert_cites(e, "kernel/pid.c", 233, 243)
    assert state(k) == before
    # freeing a number below 300 does not help: after the wrap pid_min is 300 (kernel/pid.c:228-229)
    reap(k, init, kids[10])
    expect_errno(errno.EAGAIN, k.fork, init)
    reap(k, init, kids[-1])
    assert k.fork(init) == 300
    k.check_invariants()


def test_failed_fork_still_advances_the_pid_cursor(k, init):
    """A fork that fails after alloc_pid frees the number, but the idr cursor has moved on
    (kernel/pid.c:289-303 only resets it for a namespace's first pid)."""
    a = fork_child(k)
    expect_errno(errno.EFAULT, k.clone, init, CLONE_PIDFD | SIGCHLD, parent_tid=0x10)
    b = fork_child(k)
    assert b.pid == a.pid + 2
    k.check_invariants()


# --- set_tid --------------------------------------------------------------------------------------


def test_set_tid_selects_the_pid(k, init):
    """A requested tid is allocated exactly (kernel/pid.c:194-220)."""
    assert k.clone3(init, CloneArgs(exit_signal=SIGCHLD, set_tid=[4242])) == 4242
    assert k.find_task(4242).real_parent is init
    k.check_invariants()


@pytest.mark.parametrize("tid", [32768, 40000, -5])
def test_set_tid_out_of_range_is_einval(k, init, tid):
    """tid < 1 or tid >= pid_max -> EINVAL (kernel/pid.c:194-196)."""
    e = expect_errno(errno.EINVAL, k.clone3, init, CloneArgs(exit_signal=SIGCHLD, set_tid=[tid]))
    assert_cites(e, "kernel/pid.c", 194, 196)
    k.check_invariants()


def test_set_tid_uses_global_pid_max():
    """pid_max is global in 5.6 and bounds set_tid at every level (kernel/pid.c:194)."""
    k = Kernel(pid_max=1000)
    expect_errno(errno.EINVAL, k.clone3, k.init_task, CloneArgs(exit_signal=SIGCHLD, set_tid=[1000]))
    assert k.clone3(k.init_task, CloneArgs(exit_signal=SIGCHLD, set_tid=[999])) == 999
    k.check_invariants()


def test_set_tid_not_1_in_ns_without_init_is_einval(k, init):
    """tid != 1 while the level's ns has no child_reaper -> EINVAL (kernel/pid.c:201-202)."""
    e = expect_errno(errno.EINVAL, k.clone3, init, CloneArgs(flags=CLONE_NEWPID, exit_signal=SIGCHLD, set_tid=[5]))
    assert_cites(e, "kernel/pid.c", 201, 202)
    k.check_invariants()


def test_set_tid_both_levels_of_new_pid_ns(k, init):
    """set_tid[0] is the deepest level, set_tid[1] its parent (kernel/pid.c:188-248)."""
    outer = k.clone3(init, CloneArgs(flags=CLONE_NEWPID, exit_signal=SIGCHLD, set_tid=[1, 7000]))
    assert outer == 7000
    c = k.find_task(7000)
    assert k.getpid(c) == 1
    k.check_invariants()


def test_set_tid_size_larger_than_ns_depth_is_einval(k, init):
    """set_tid_size > ns->level + 1 -> EINVAL (kernel/pid.c:178-179)."""
    e = expect_errno(errno.EINVAL, k.clone3, init, CloneArgs(exit_signal=SIGCHLD, set_tid=[5000, 6000]))
    assert_cites(e, "kernel/pid.c", 178, 179)
    k.check_invariants()


def test_set_tid_unprivileged_is_eperm(k):
    """!ns_capable(level ns->user_ns, CAP_SYS_ADMIN) -> EPERM (kernel/pid.c:203-205)."""
    t = unprivileged(k)
    e = expect_errno(errno.EPERM, k.clone3, t, CloneArgs(exit_signal=SIGCHLD, set_tid=[5000]))
    assert_cites(e, "kernel/pid.c", 203, 205)
    k.check_invariants()


def test_set_tid_in_use_is_eexist(k, init):
    """idr_alloc of [tid, tid+1) fails ENOSPC -> EEXIST (kernel/pid.c:212-220)."""
    a = fork_child(k)
    before = state(k)
    e = expect_errno(errno.EEXIST, k.clone3, init, CloneArgs(exit_signal=SIGCHLD, set_tid=[a.pid]))
    assert_cites(e, "kernel/pid.c", 212, 220)
    assert state(k) == before
    expect_errno(errno.EEXIST, k.clone3, init, CloneArgs(exit_signal=SIGCHLD, set_tid=[1]))
    k.check_invariants()


def test_set_tid_rules_order_einval_range_before_eperm(k):
    """Range (194) before the capability check (203): an unprivileged out-of-range tid is EINVAL."""
    t = unprivileged(k)
    expect_errno(errno.EINVAL, k.clone3, t, CloneArgs(exit_signal=SIGCHLD, set_tid=[99999]))
    k.check_invariants()


def test_set_tid_in_own_user_and_pid_ns_needs_no_init_privilege(k):
    """An unprivileged CLONE_NEWUSER|CLONE_NEWPID child may choose pid 1 in its new ns: CAP_SYS_ADMIN is
    checked against the new pid ns's user ns, which the child's creds own (kernel/pid.c:203)."""
    t = unprivileged(k)
    pid = k.clone3(t, CloneArgs(flags=CLONE_NEWUSER | CLONE_NEWPID, exit_signal=SIGCHLD, set_tid=[1]))
    assert k.getpid(k.find_task(pid)) == 1
    k.check_invariants()


def test_settls_eperm_precedes_alloc_pid_errors(k, init):
    """copy_thread_tls (2090) runs before alloc_pid (2097): EPERM wins over a set_tid EEXIST."""
    expect_errno(errno.EPERM, k.clone3, init,
                 CloneArgs(flags=CLONE_SETTLS, tls=1 << 60, exit_signal=SIGCHLD, set_tid=[1]))
    k.check_invariants()


# --- pidfd -------------------------------------------------------------------------------------------


def test_clone_pidfd_installed_in_callers_table_close_on_exec(k):
    """get_unused_fd_flags(O_RDWR|O_CLOEXEC) in current->files; fd written to args->pidfd (kernel/fork.c:2111-2129),
    fd_install at 2239-2240. The child (no CLONE_FILES) does not get it (dup_fd ran earlier, 2069)."""
    p = fork_child(k)
    addr = map_page(k, p)
    pid = k.clone3(p, CloneArgs(flags=CLONE_PIDFD, pidfd=addr, exit_signal=SIGCHLD))
    fd = read_int(k, p, addr)
    f = p.files.fdt.fd[fd]
    c = k.find_task(pid)
    assert f is not None and f.private_data is c.thread_pid
    assert fd in p.files.fdt.close_on_exec
    assert fd >= len(c.files.fdt.fd) or c.files.fdt.fd[fd] is None
    k.check_invariants()


def test_clone_pidfd_with_clone_files_is_visible_to_child(k):
    """With CLONE_FILES the shared table holds the pidfd (kernel/fork.c:2111-2116, 2239-2240)."""
    p = fork_child(k)
    addr = map_page(k, p)
    pid = k.clone(p, CLONE_PIDFD | CLONE_FILES | SIGCHLD, parent_tid=addr)
    fd = read_int(k, p, addr)
    c = k.find_task(pid)
    assert c.files is p.files and p.files.fdt.fd[fd].private_data is c.thread_pid
    k.check_invariants()


def test_clone_pidfd_bad_pointer_is_efault_and_changes_nothing(k):
    """put_user(pidfd, args->pidfd) fails -> EFAULT; the ladder frees the fd, file and pid
    (kernel/fork.c:2127-2129, 2306-2312). put_unused_fd clears only the open bit (fs/file.c:554-560),
    so the reserved fd's close-on-exec bit stays behind exactly as on Linux; it is compared
    separately: only for open fds must it be unchanged."""
    p = fork_child(k)
    fd0 = k.open(p, "/dev/null")
    k.close(p, fd0)
    fdt = p.files.fdt
    before = state(k, "close_on_exec")
    open_before, cloexec_before = set(fdt.open_fds), set(fdt.close_on_exec) & set(fdt.open_fds)
    e = expect_errno(errno.EFAULT, k.clone3, p, CloneArgs(flags=CLONE_PIDFD, pidfd=0x10, exit_signal=SIGCHLD))
    assert_cites(e, "kernel/fork.c", 2127, 2129)
    assert state(k, "close_on_exec") == before
    assert set(fdt.open_fds) == open_before and set(fdt.close_on_exec) & set(fdt.open_fds) == cloexec_before
    assert all(f is None for f in fdt.fd)
    assert k.open(p, "/dev/null") == fd0  # the reserved fd was released
    k.check_invariants()


def test_legacy_clone_pidfd_bad_pointer_is_efault_and_changes_nothing(k):
    """Same for legacy clone, where the pidfd pointer is parent_tidptr (kernel/fork.c:2574, 2127-2129)."""
    p = fork_child(k)
    fd = k.open(p, "/dev/null")
    before = state(k, "close_on_exec")
    expect_errno(errno.EFAULT, k.clone, p, CLONE_PIDFD | SIGCHLD, parent_tid=0x10)
    assert state(k, "close_on_exec") == before
    assert p.files.fdt.fd[fd] is not None and p.files.fdt.fd[fd + 1] is None
    k.check_invariants()


def test_clone_pidfd_emfile_at_rlimit_nofile(k):
    """get_unused_fd_flags honours RLIMIT_NOFILE -> EMFILE (kernel/fork.c:2111-2116)."""
    from forklab.uapi import RLIMIT_NOFILE

    p = fork_child(k)
    addr = map_page(k, p)
    k.setrlimit(p, RLIMIT_NOFILE, (3, 3))
    assert [k.open(p, "/dev/null") for _ in range(3)] == [0, 1, 2]
    before = state(k)
    expect_errno(errno.EMFILE, k.clone3, p, CloneArgs(flags=CLONE_PIDFD, pidfd=addr, exit_signal=SIGCHLD))
    assert state(k) == before
    k.check_invariants()


# --- pids cgroup ------------------------------------------------------------------------------------


def test_pids_cgroup_limit_eagain_with_hierarchy_charging(k):
    """pids_try_charge charges the caller's cgroup and every ancestor below root; any level over
    pids.max -> undo all, EAGAIN (kernel/cgroup/pids.c:143-168, 217-236)."""
    parent_cg = k.cgroup_mkdir(k.cgroup_root, "jobs", pids_max=3)
    leaf = k.cgroup_mkdir(parent_cg, "a")  # unlimited itself
    p = fork_child(k)
    k.cgroup_attach(p, leaf)
    assert (leaf.counter, parent_cg.counter) == (1, 1)
    c1 = fork_child(k, p)
    fork_child(k, p)
    assert (leaf.counter, parent_cg.counter) == (3, 3)
    e = expect_errno(errno.EAGAIN, k.fork, p)
    assert_cites(e, "kernel/cgroup/pids.c", 217, 236)
    assert (leaf.counter, parent_cg.counter) == (3, 3)
    assert leaf.events_max == 1  # counted on the caller's cgroup (pids.c:226)
    k.check_invariants()
    # zombies stay charged until released (pids.c:248-253)
    k.exit(c1, 0)
    expect_errno(errno.EAGAIN, k.fork, p)
    k.wait4(p, c1.pid, 0)
    assert parent_cg.counter == 2
    assert k.fork(p) > 0
    k.check_invariants()


def test_pids_cgroup_counts_threads(k):
    """Tasks, not processes, are charged (kernel/cgroup/pids.c:217-236)."""
    from forklab.uapi import CLONE_SIGHAND, CLONE_THREAD, CLONE_VM

    cg = k.cgroup_mkdir(k.cgroup_root, "t", pids_max=2)
    p = fork_child(k)
    k.cgroup_attach(p, cg)
    k.clone(p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
    expect_errno(errno.EAGAIN, k.clone, p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
    k.check_invariants()


def test_pids_cgroup_check_comes_after_pid_allocation(k):
    """cgroup_can_fork (2184) runs after alloc_pid (2097): the failed fork consumed a cursor slot."""
    cg = k.cgroup_mkdir(k.cgroup_root, "c", pids_max=1)
    p = fork_child(k)
    k.cgroup_attach(p, cg)
    expect_errno(errno.EAGAIN, k.fork, p)
    nxt = fork_child(k)
    assert nxt.pid == p.pid + 2
    k.check_invariants()
