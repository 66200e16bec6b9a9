"""The fd table (fs/file.c): allocation, dup/dup2/dup3, close, close-on-exec, expansion, EMFILE."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest
from fs_model_helpers import assert_ok, bare_kernel, make_task

from forklab.fs import file as F
from forklab.fs.debug import files_snapshot
from forklab.fs.open import do_sys_open, ksys_close
from forklab.include.linux.fdtable import NR_OPEN_DEFAULT
from forklab.uapi import AT_FDCWD, O_CLOEXEC, O_CREAT, O_RDONLY, O_RDWR, RLIMIT_NOFILE

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


@pytest.fixture
def k() -> KernelState:
    return bare_kernel()


def _open(k: KernelState, t: Task, path: str = "/etc/hostname", flags: int = O_RDONLY) -> int:
    return do_sys_open(k, t, AT_FDCWD, path, flags, 0o644)


def test_lowest_fd_first_and_reuse(k: KernelState) -> None:
    """__alloc_fd hands out the lowest free fd and close frees it for reuse (fs/file.c:480-536, 626-646)."""
    t = make_task(k)
    fds = [_open(k, t) for _ in range(4)]
    assert fds == [0, 1, 2, 3]
    ksys_close(k, t, 1)
    assert t.files is not None and t.files.next_fd == 1
    assert _open(k, t) == 1
    assert _open(k, t) == 4
    assert_ok(k, [t])


def test_close_bad_fd_is_ebadf(k: KernelState) -> None:
    """close of an fd holding no file is EBADF, including negative and huge fds (fs/file.c:633-645)."""
    t = make_task(k)
    for fd in (0, 5, -1, 10**6):
        with pytest.raises(OSError) as e:
            ksys_close(k, t, fd)
        assert e.value.errno == errno.EBADF
    fd = _open(k, t)
    ksys_close(k, t, fd)
    with pytest.raises(OSError) as e:
        ksys_close(k, t, fd)
    assert e.value.errno == errno.EBADF
    assert k.vfs.nr_files == 0
    assert_ok(k, [t])


def test_emfile_at_rlimit_nofile(k: KernelState) -> None:
    """get_unused_fd_flags fails with EMFILE when no fd is below RLIMIT_NOFILE (fs/file.c:501-503)."""
    t = make_task(k, nofile=3)
    assert [_open(k, t) for _ in range(3)] == [0, 1, 2]
    before = files_snapshot(t.files)
    with pytest.raises(OSError) as e:
        _open(k, t)
    assert e.value.errno == errno.EMFILE
    assert files_snapshot(t.files) == before
    assert k.vfs.nr_files == 3
    with pytest.raises(OSError) as e:
        F.ksys_dup(k, t, 0)
    assert e.value.errno == errno.EMFILE
    assert t.files is not None and t.files.fdt.fd[0] is not None and t.files.fdt.fd[0].f_count == 1
    assert_ok(k, [t])


def test_table_grows_in_kernel_steps(k: KernelState) -> None:
    """expand_files/alloc_fdtable grow the table from 64 to 128-fd power-of-two steps (fs/file.c:85-139, 193-226)."""
    t = make_task(k, nofile=4096)
    assert t.files is not None
    assert t.files.fdt.max_fds == NR_OPEN_DEFAULT
    fd = F.ksys_dup3(k, t, _open(k, t), 64, 0)
    assert fd == 64
    assert t.files.fdt.max_fds == 128
    F.ksys_dup3(k, t, 0, 300, 0)
    assert t.files.fdt.max_fds == 512
    assert_ok(k, [t])


def test_expand_files_emfile_at_nr_open(k: KernelState) -> None:
    """expand_files refuses an fd >= sysctl_nr_open with EMFILE (fs/file.c:208-209)."""
    t = make_task(k, nofile=10**9)
    k.vfs.nr_open = 128
    assert t.files is not None
    with pytest.raises(OSError) as e:
        F.expand_files(k, t.files, 128)
    assert e.value.errno == errno.EMFILE
    assert F.expand_files(k, t.files, 100) == 1


def test_expand_enomem_fails_open(k: KernelState) -> None:
    """A failed fdtable allocation during expansion is ENOMEM and leaves the table (fs/file.c:111-117, 164-165)."""
    t = make_task(k, nofile=4096)
    fd = _open(k, t)
    for site in ("alloc_fdtable:kmalloc", "alloc_fdtable:kvmalloc_array", "alloc_fdtable:kvmalloc"):
        before = files_snapshot(t.files)
        k.fault.arm(1 + ["alloc_fdtable:kmalloc", "alloc_fdtable:kvmalloc_array", "alloc_fdtable:kvmalloc"].index(site))
        with pytest.raises(OSError) as e:
            F.ksys_dup3(k, t, fd, 100, 0)
        assert e.value.errno == errno.ENOMEM
        assert k.fault.failed_site == site
        assert files_snapshot(t.files) == before
    k.fault.arm(0)
    assert_ok(k, [t])


def test_dup_shares_file_and_offset_but_not_cloexec(k: KernelState) -> None:
    """dup installs the same struct file (f_count 2) with close-on-exec clear (fs/file.c:988-1001)."""
    t = make_task(k)
    fd = _open(k, t, flags=O_RDONLY | O_CLOEXEC)
    nfd = F.ksys_dup(k, t, fd)
    assert t.files is not None
    a, b = t.files.fdt.fd[fd], t.files.fdt.fd[nfd]
    assert a is b and a is not None and a.f_count == 2
    assert F.get_close_on_exec(t, fd) and not F.get_close_on_exec(t, nfd)
    assert_ok(k, [t])


def test_dup_bad_fd(k: KernelState) -> None:
    """dup of a closed fd is EBADF (fs/file.c:990-999)."""
    t = make_task(k)
    with pytest.raises(OSError) as e:
        F.ksys_dup(k, t, 7)
    assert e.value.errno == errno.EBADF


def test_dup3_rules(k: KernelState) -> None:
    """dup3: EINVAL for bad flags (fs/file.c:940-941) and oldfd == newfd (943-944); EBADF for newfd >= RLIMIT_NOFILE (946-947) and a closed oldfd (951-953)."""
    t = make_task(k, nofile=16)
    fd = _open(k, t)
    cases = [((fd, 5, 1), errno.EINVAL), ((fd, fd, 0), errno.EINVAL), ((fd, 16, 0), errno.EBADF),
             ((fd, -1, 0), errno.EBADF), ((9, 5, 0), errno.EBADF)]
    for (o, n, fl), err in cases:
        with pytest.raises(OSError) as e:
            F.ksys_dup3(k, t, o, n, fl)
        assert e.value.errno == err, (o, n, fl)
    assert F.ksys_dup3(k, t, fd, 5, O_CLOEXEC) == 5
    assert F.get_close_on_exec(t, 5)
    assert_ok(k, [t])


def test_dup3_emfile_from_nr_open_becomes_ebadf(k: KernelState) -> None:
    """dup3 turns expand_files' EMFILE (newfd >= sysctl_nr_open) into EBADF (fs/file.c:954-956)."""
    t = make_task(k, nofile=10**9)
    fd = _open(k, t)
    k.vfs.nr_open = 1024
    with pytest.raises(OSError) as e:
        F.ksys_dup3(k, t, fd, 5000, 0)
    assert e.value.errno == errno.EBADF


def test_dup2_same_fd(k: KernelState) -> None:
    """dup2(fd, fd) returns fd if open, else EBADF, without touching the table (fs/file.c:975-984)."""
    t = make_task(k)
    fd = _open(k, t)
    assert F.ksys_dup2(k, t, fd, fd) == fd
    with pytest.raises(OSError) as e:
        F.ksys_dup2(k, t, 3, 3)
    assert e.value.errno == errno.EBADF
    assert t.files is not None
    f = t.files.fdt.fd[fd]
    assert f is not None and f.f_count == 1


def test_dup2_closes_target_and_clears_cloexec(k: KernelState) -> None:
    """do_dup2 replaces newfd's file (closing it) and clears close-on-exec (fs/file.c:889-905)."""
    t = make_task(k)
    a = _open(k, t)
    b = _open(k, t, "/dev/null", O_RDWR | O_CLOEXEC)
    assert k.vfs.nr_files == 2
    assert F.ksys_dup2(k, t, a, b) == b
    assert k.vfs.nr_files == 1
    assert not F.get_close_on_exec(t, b)
    assert_ok(k, [t])


def test_dup2_onto_reserved_fd_is_ebusy(k: KernelState) -> None:
    """dup2 onto an fd reserved by an open in progress is EBUSY (fs/file.c:891-892, 907-909)."""
    t = make_task(k)
    fd = _open(k, t)
    reserved = F.get_unused_fd_flags(k, t, 0)
    before = files_snapshot(t.files)
    with pytest.raises(OSError) as e:
        F.ksys_dup2(k, t, fd, reserved)
    assert e.value.errno == errno.EBUSY
    assert files_snapshot(t.files) == before
    F.put_unused_fd(t, reserved)
    assert_ok(k, [t])


def test_do_close_on_exec(k: KernelState) -> None:
    """do_close_on_exec closes exactly the close-on-exec fds and clears the marks (fs/file.c:680-714)."""
    t = make_task(k)
    keep = _open(k, t)
    gone = _open(k, t, flags=O_RDONLY | O_CLOEXEC)
    shared = F.ksys_dup(k, t, keep)
    F.set_close_on_exec(t, shared, 1)
    assert t.files is not None
    kept_file = t.files.fdt.fd[keep]
    assert kept_file is not None
    F.do_close_on_exec(k, t.files)
    assert t.files.fdt.fd[gone] is None and t.files.fdt.fd[shared] is None
    assert t.files.fdt.fd[keep] is kept_file and kept_file.f_count == 1
    assert t.files.fdt.close_on_exec == set()
    assert t.files.next_fd == 1
    assert k.vfs.nr_files == 1
    assert_ok(k, [t])


def test_f_dupfd_rules(k: KernelState) -> None:
    """f_dupfd: EINVAL if from >= RLIMIT_NOFILE (fs/file.c:1011-1012), else the lowest free fd >= from."""
    t = make_task(k, nofile=20)
    fd = _open(k, t)
    assert t.files is not None
    f = t.files.fdt.fd[fd]
    assert f is not None
    assert F.f_dupfd(k, t, 10, f, 0) == 10
    assert F.f_dupfd(k, t, 10, f, 0) == 11
    with pytest.raises(OSError) as e:
        F.f_dupfd(k, t, 20, f, 0)
    assert e.value.errno == errno.EINVAL
    # f_dupfd does not lower next_fd's meaning: fd 1 is still the next plain allocation
    assert _open(k, t) == 1
    assert_ok(k, [t])


def test_rlimit_change_does_not_close(k: KernelState) -> None:
    """Lowering RLIMIT_NOFILE does not touch open fds; only new allocations see it (fs/file.c:502)."""
    t = make_task(k, nofile=10)
    for _ in range(5):
        _open(k, t)
    assert t.signal is not None
    t.signal.set_rlim(RLIMIT_NOFILE, (2, 2))
    with pytest.raises(OSError) as e:
        _open(k, t)
    assert e.value.errno == errno.EMFILE
    assert k.vfs.nr_files == 5
    assert_ok(k, [t])


def test_put_files_struct_closes_all(k: KernelState) -> None:
    """exit_files drops the table; the last reference closes every file (fs/file.c:368-447)."""
    t = make_task(k)
    for _ in range(3):
        _open(k, t)
    F.exit_files(k, t)
    assert t.files is None
    assert k.vfs.nr_files == 0
    assert_ok(k, [t])


def test_create_helper_errors(k: KernelState) -> None:
    """Vfs.create refuses an existing name (EEXIST) and a missing parent (ENOENT) (fs/namei.c:3447-3449)."""
    with pytest.raises(OSError) as e:
        k.vfs.create("/tmp")
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        k.vfs.create("/nope/x")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        k.vfs.create("/etc/hostname/x")
    assert e.value.errno == errno.ENOTDIR


def test_enfile_and_cap_sys_admin(k: KernelState) -> None:
    """alloc_empty_file: ENFILE at files_stat.max_files unless capable(CAP_SYS_ADMIN) (fs/file_table.c:142-163)."""
    root = make_task(k)
    user = make_task(k, pid=2, caps=0, uid=1000)
    k.vfs.max_files = 2
    _open(k, root)
    _open(k, root)
    k.current = user
    before = files_snapshot(user.files)
    with pytest.raises(OSError) as e:
        _open(k, user)
    assert e.value.errno == errno.ENFILE
    assert files_snapshot(user.files) == before
    k.current = root
    _open(k, root)
    assert k.vfs.nr_files == 3
    assert_ok(k, [root, user])


def test_create_o_creat_fd_flags(k: KernelState) -> None:
    """O_CLOEXEC goes to the fd table, not f_flags (fs/open.c:981, fs/file.c:520-523)."""
    t = make_task(k)
    fd = _open(k, t, "/tmp/x", O_CREAT | O_RDWR | O_CLOEXEC)
    assert t.files is not None
    f = t.files.fdt.fd[fd]
    assert f is not None and not f.f_flags & O_CLOEXEC and f.f_flags & O_RDWR
    assert F.get_close_on_exec(t, fd)
