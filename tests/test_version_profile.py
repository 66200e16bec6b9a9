"""The 6.18 profile: each change since 5.6.14 is one named switch, shown on both versions.

Every test runs the same call on ``Kernel(version="5.6.14")`` and ``Kernel(version="6.18")`` and
checks the documented difference (forklab/version.py, catalog §16).
"""

from __future__ import annotations

import errno

import pytest

from forklab import CloneArgs, Kernel, Recorder
from forklab.uapi import (
    CAP_CHECKPOINT_RESTORE,
    CAP_SYS_ADMIN,
    CLONE_FS,
    CLONE_INTO_CGROUP,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    RLIMIT_NPROC,
    SIGCHLD,
)
from forklab.version import CHANGES, changes_in, diff_versions

OLD, NEW = "5.6.14", "6.18"
THREAD = CLONE_VM | CLONE_FS | CLONE_SIGHAND | CLONE_THREAD


def errno_of(fn: object, *args: object) -> int:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError as e:
        assert e.errno is not None
        return e.errno
    return 0


def scratch(k: Kernel) -> int:
    return k.mmap(k.init_task, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)


def test_every_change_has_a_version_and_diff_lists_them_in_order() -> None:
    """diff-versions: the 6.18 profile has every listed change after 5.6.14, oldest first."""
    changes = diff_versions(OLD, NEW)
    assert [c.name for c in changes] == [c.name for c in CHANGES if c.since > (5, 6, 14)]
    assert "legacy_clone_low32" in changes_in(OLD) and "legacy_clone_low32" in changes_in(NEW)
    with pytest.raises(ValueError):
        Kernel(version="4.19")


def test_clone3_newtime_is_einval_in_5_6_and_creates_a_time_ns_in_6_18() -> None:
    """clone3_args_valid rejects the CSIGNAL bit 0x80 in 5.6 (kernel/fork.c:2694); 6.3 allows CLONE_NEWTIME."""
    old, new = Kernel(version=OLD), Kernel(version=NEW)
    args = CloneArgs(flags=CLONE_NEWTIME, exit_signal=SIGCHLD)
    assert errno_of(old.clone3, old.init_task, args) == errno.EINVAL
    child = new.find_task(new.clone3(new.init_task, args))
    assert child.nsproxy is not None and new.init_task.nsproxy is not None
    assert child.nsproxy.time_ns is not new.init_task.nsproxy.time_ns
    new.check_invariants()


def test_pidfd_with_thread_is_einval_in_5_6_and_allowed_in_6_18() -> None:
    """copy_process refuses CLONE_PIDFD|CLONE_THREAD in 5.6 (kernel/fork.c:1896); 6.9 allows it."""
    for version, want in ((OLD, errno.EINVAL), (NEW, 0)):
        k = Kernel(version=version)
        buf = scratch(k)
        assert errno_of(k.clone3, k.init_task, CloneArgs(flags=THREAD | CLONE_PIDFD, pidfd=buf)) == want
        k.check_invariants()


def test_pidfd_and_parent_tid_at_one_address_in_clone3() -> None:
    """Accepted by 5.6's clone3 (no legacy check, kernel/fork.c:2722); EINVAL from 5.9 (kernel_clone)."""
    for version, want in ((OLD, 0), (NEW, errno.EINVAL)):
        k = Kernel(version=version)
        buf = scratch(k)
        args = CloneArgs(flags=CLONE_PIDFD | CLONE_PARENT_SETTID, pidfd=buf, parent_tid=buf, exit_signal=SIGCHLD)
        assert errno_of(k.clone3, k.init_task, args) == want
    k = Kernel(version=NEW)
    buf = scratch(k)
    distinct = CloneArgs(flags=CLONE_PIDFD | CLONE_PARENT_SETTID, pidfd=buf, parent_tid=buf + 8, exit_signal=SIGCHLD)
    assert k.clone3(k.init_task, distinct) > 0


def test_vfork_after_unshare_newtime() -> None:
    """EINVAL in 5.6 (kernel/fork.c:1886); allowed in 6.2+, the child stays in the old time namespace."""
    for version, want in ((OLD, errno.EINVAL), (NEW, 0)):
        k = Kernel(version=version)
        t = k.find_task(k.fork(k.init_task))
        k.unshare(t, CLONE_NEWTIME)
        assert errno_of(k.clone, t, CLONE_VM | CLONE_VFORK | SIGCHLD) == want
        if version == NEW:
            assert t.nsproxy is not None
            child = t.children[0]
            assert child.nsproxy is t.nsproxy  # shared: no switch until exec
        k.check_invariants()


def test_clone_into_cgroup_is_unknown_in_5_6() -> None:
    """Bit 33 is an unknown flag in 5.6 (kernel/fork.c:2687); in 6.18 the 88-byte rule, then the fd."""
    old, new = Kernel(version=OLD), Kernel(version=NEW)
    args = CloneArgs(flags=CLONE_INTO_CGROUP, exit_signal=SIGCHLD, cgroup=5)
    assert errno_of(old.clone3, old.init_task, args) == errno.EINVAL
    assert errno_of(new.clone3, new.init_task, args, 80) == errno.EINVAL  # size below VER2
    assert errno_of(new.clone3, new.init_task, CloneArgs(flags=CLONE_INTO_CGROUP, cgroup=2**31)) == errno.EINVAL
    assert errno_of(new.clone3, new.init_task, args) == errno.EBADF  # fd 5 is not open
    new.check_invariants()


def test_clone3_struct_sizes() -> None:
    """5.6 knows 80 bytes, so byte 80 of an 88-byte struct must be zero (E2BIG); 6.18 knows 88."""
    old, new = Kernel(version=OLD), Kernel(version=NEW)
    args = CloneArgs(exit_signal=SIGCHLD, cgroup=3)
    assert errno_of(old.clone3, old.init_task, args, 88) == 0  # a CloneArgs has no tail bytes in 5.6's view
    assert new.clone3(new.init_task, CloneArgs(exit_signal=SIGCHLD), 88) > 0
    addr = scratch(old)
    old.store(old.init_task, addr, CloneArgs(exit_signal=SIGCHLD, cgroup=3).to_bytes())
    assert errno_of(old.clone3, old.init_task, addr, 88) == errno.E2BIG
    addr = scratch(new)
    new.store(new.init_task, addr, CloneArgs(exit_signal=SIGCHLD).to_bytes() + b"\x01" + bytes(7))
    assert errno_of(new.clone3, new.init_task, addr, 96) == errno.E2BIG


def test_set_tid_with_checkpoint_restore_only() -> None:
    """set_tid needs CAP_SYS_ADMIN in 5.6 (kernel/pid.c:203); CAP_CHECKPOINT_RESTORE suffices from 5.9."""
    for version, want in ((OLD, errno.EPERM), (NEW, 0)):
        k = Kernel(version=version)
        t = k.find_task(k.fork(k.init_task))
        caps = k.cap_full_set & ~(1 << CAP_SYS_ADMIN)
        if version == OLD:
            assert not caps & (1 << CAP_CHECKPOINT_RESTORE)
        k.capset(t, caps, caps, 0)
        assert errno_of(k.clone3, t, CloneArgs(exit_signal=SIGCHLD, set_tid=[700])) == want


def test_rlimit_nproc_and_user_ns_errors_change_order() -> None:
    """5.6 checks RLIMIT_NPROC before copy_creds (EAGAIN first); 5.14+ after it (copy_creds' EPERM first)."""
    for version, want in ((OLD, errno.EAGAIN), (NEW, errno.EPERM)):
        k = Kernel(version=version)
        t = k.find_task(k.fork(k.init_task))
        k.setrlimit(t, RLIMIT_NPROC, (1, 1))
        k.chroot(t, "/tmp")  # create_user_ns refuses a chrooted caller with EPERM
        k.setresuid(t, 1000, 1000, 1000)
        assert errno_of(k.clone, t, CLONE_NEWUSER | SIGCHLD) == want
        k.check_invariants()


def test_trace_names_kernel_clone_in_6_18() -> None:
    """_do_fork was renamed kernel_clone in 5.10; only traces show it."""
    for version, kind in ((OLD, "_do_fork"), (NEW, "kernel_clone")):
        k = Kernel(version=version)
        rec = Recorder()
        k.listeners.append(rec)
        k.fork(k.init_task)
        assert kind in rec.kinds()
