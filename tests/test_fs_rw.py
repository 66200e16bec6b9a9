"""lseek, read, write (fs/read_write.c) and fcntl (fs/fcntl.c) on shared open file descriptions."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from fs_model_helpers import assert_ok, bare_kernel, fork_like, make_pid, make_task

from forklab.errors import Unmodelled
from forklab.fs import file as F
from forklab.fs.anon_inodes import anon_inode_getfile
from forklab.fs.fcntl import do_fcntl
from forklab.fs.open import do_sys_open, ksys_close
from forklab.fs.read_write import SEEK_DATA, SEEK_HOLE, ksys_lseek, ksys_read, ksys_write
from forklab.uapi import (
    AT_FDCWD,
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    FD_CLOEXEC,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECT,
    O_LARGEFILE,
    O_NOATIME,
    O_NONBLOCK,
    O_PATH,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
)

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


@pytest.fixture
def k() -> KernelState:
    return bare_kernel()


def _open(k: KernelState, t: Task, path: str, flags: int = O_RDONLY) -> int:
    return do_sys_open(k, t, AT_FDCWD, path, flags, 0o644)


def _err(fn: Callable[..., object], *args: object) -> int:
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno is not None
    return e.value.errno


def test_lseek_whence(k: KernelState) -> None:
    """SEEK_SET/CUR/END on a regular file (fs/read_write.c:85-131)."""
    t = make_task(k)
    fd = _open(k, t, "/etc/hostname")
    assert ksys_lseek(k, t, fd, 3, SEEK_SET) == 3
    assert ksys_lseek(k, t, fd, 2, SEEK_CUR) == 5
    assert ksys_lseek(k, t, fd, 0, SEEK_CUR) == 5
    assert ksys_lseek(k, t, fd, -1, SEEK_END) == 7
    assert ksys_read(k, t, fd, 10) == b"\n"
    assert ksys_lseek(k, t, fd, 100, SEEK_SET) == 100
    assert ksys_read(k, t, fd, 10) == b""


def test_lseek_errors(k: KernelState) -> None:
    """lseek: EBADF (fs/read_write.c:308-309), EINVAL for whence > SEEK_MAX (311-312) and a negative result (56-57); ENXIO for SEEK_DATA/HOLE at EOF (116-125)."""
    t = make_task(k)
    fd = _open(k, t, "/etc/hostname")
    assert _err(ksys_lseek, k, t, 9, 0, SEEK_SET) == errno.EBADF
    assert _err(ksys_lseek, k, t, fd, 0, 5) == errno.EINVAL
    assert _err(ksys_lseek, k, t, fd, -1, SEEK_SET) == errno.EINVAL
    assert _err(ksys_lseek, k, t, fd, -9, SEEK_END) == errno.EINVAL
    ksys_lseek(k, t, fd, 4, SEEK_SET)
    assert _err(ksys_lseek, k, t, fd, -5, SEEK_CUR) == errno.EINVAL
    assert ksys_lseek(k, t, fd, 0, SEEK_CUR) == 4  # unchanged by the failures
    assert ksys_lseek(k, t, fd, 2, SEEK_DATA) == 2
    assert ksys_lseek(k, t, fd, 2, SEEK_HOLE) == 8
    assert _err(ksys_lseek, k, t, fd, 8, SEEK_DATA) == errno.ENXIO
    assert _err(ksys_lseek, k, t, fd, 8, SEEK_HOLE) == errno.ENXIO


def test_lseek_pidfd_espipe(k: KernelState) -> None:
    """An anon-inode file (pidfd) has no llseek: ESPIPE (fs/read_write.c:230-233, 295-300); read/write are EINVAL (452-453, 548-549)."""
    t = make_task(k)
    fd = F.get_unused_fd_flags(k, t, O_RDWR | O_CLOEXEC)
    pid = make_pid(2)
    F.fd_install(t, fd, anon_inode_getfile(k, "[pidfd]", pid, O_RDWR | O_CLOEXEC))
    assert _err(ksys_lseek, k, t, fd, 0, SEEK_SET) == errno.ESPIPE
    assert _err(ksys_read, k, t, fd, 1) == errno.EINVAL
    assert _err(ksys_write, k, t, fd, b"x") == errno.EINVAL
    assert do_fcntl(k, t, fd, F_GETFL, 0) == O_RDWR
    assert do_fcntl(k, t, fd, F_GETFD, 0) == FD_CLOEXEC
    ksys_close(k, t, fd)
    assert pid.count == 1


def test_dev_null_and_zero(k: KernelState) -> None:
    """/dev/null reads EOF and swallows writes; /dev/zero reads zeros; both seek to 0 (drivers/char/mem.c:669-680, 705-722, 769-772)."""
    t = make_task(k)
    n = _open(k, t, "/dev/null", O_RDWR)
    z = _open(k, t, "/dev/zero", O_RDWR)
    assert ksys_read(k, t, n, 10) == b""
    assert ksys_write(k, t, n, b"abc") == 3
    assert ksys_read(k, t, z, 4) == b"\0\0\0\0"
    assert ksys_write(k, t, z, b"abc") == 3
    assert ksys_lseek(k, t, n, 100, SEEK_SET) == 0
    assert ksys_lseek(k, t, z, 5, SEEK_END) == 0


def test_directory_read_and_seek(k: KernelState) -> None:
    """read on a directory is EISDIR (fs/libfs.c:222-225); dir lseek takes SEEK_SET/CUR only (fs/libfs.c:134-170)."""
    t = make_task(k)
    d = _open(k, t, "/tmp")
    assert _err(ksys_read, k, t, d, 1) == errno.EISDIR
    assert ksys_lseek(k, t, d, 2, SEEK_SET) == 2
    assert ksys_lseek(k, t, d, 1, SEEK_CUR) == 3
    assert _err(ksys_lseek, k, t, d, 0, SEEK_END) == errno.EINVAL
    assert _err(ksys_lseek, k, t, d, -9, SEEK_CUR) == errno.EINVAL


def test_access_mode_ebadf(k: KernelState) -> None:
    """read on a write-only fd and write on a read-only fd are EBADF (fs/read_write.c:450-451, 546-547)."""
    t = make_task(k)
    r = _open(k, t, "/etc/hostname", O_RDONLY)
    w = _open(k, t, "/etc/hostname", O_WRONLY)
    assert _err(ksys_write, k, t, r, b"x") == errno.EBADF
    assert _err(ksys_read, k, t, w, 1) == errno.EBADF
    assert _err(ksys_read, k, t, 77, 1) == errno.EBADF
    assert _err(ksys_write, k, t, 77, b"x") == errno.EBADF
    assert _err(ksys_read, k, t, r, -1) == errno.EINVAL  # rw_verify_area (fs/read_write.c:371-372)


def test_write_extends_with_hole_and_append(k: KernelState) -> None:
    """Writing past EOF zero-fills; O_APPEND writes at EOF whatever f_pos is (mm/filemap.c:2930-2931)."""
    t = make_task(k)
    fd = _open(k, t, "/tmp/f", O_CREAT | O_RDWR)
    ksys_lseek(k, t, fd, 3, SEEK_SET)
    ksys_write(k, t, fd, b"ab")
    inode = k.vfs.lookup("/tmp/f")
    assert inode is not None and bytes(inode.data) == b"\0\0\0ab" and inode.i_size == 5
    a = _open(k, t, "/tmp/f", O_WRONLY | O_APPEND)
    ksys_lseek(k, t, a, 0, SEEK_SET)
    ksys_write(k, t, a, b"Z")
    assert bytes(inode.data) == b"\0\0\0abZ"
    assert ksys_lseek(k, t, a, 0, SEEK_CUR) == 6


def test_dup_shares_offset_and_flags(k: KernelState) -> None:
    """dup'ed fds share f_pos and F_SETFL status flags but not FD_CLOEXEC (fs/fcntl.c:336-348)."""
    t = make_task(k)
    fd = _open(k, t, "/etc/hostname")
    d = F.ksys_dup(k, t, fd)
    assert ksys_read(k, t, fd, 4) == b"fork"
    assert ksys_read(k, t, d, 3) == b"lab"
    do_fcntl(k, t, fd, F_SETFL, O_NONBLOCK)
    assert do_fcntl(k, t, d, F_GETFL, 0) & O_NONBLOCK
    do_fcntl(k, t, fd, F_SETFD, FD_CLOEXEC)
    assert do_fcntl(k, t, d, F_GETFD, 0) == 0
    assert do_fcntl(k, t, fd, F_GETFD, 0) == FD_CLOEXEC


def test_fork_then_fcntl_setfl_shared(k: KernelState) -> None:
    """Status flags live in the shared struct file: F_SETFL O_APPEND in the child affects the parent's writes (fs/fcntl.c:80)."""
    p = make_task(k)
    fd = _open(k, p, "/tmp/f", O_CREAT | O_WRONLY)
    child = fork_like(k, p, 2)
    ksys_write(k, p, fd, b"12345")
    ksys_lseek(k, child, fd, 0, SEEK_SET)
    do_fcntl(k, child, fd, F_SETFL, O_APPEND)
    ksys_write(k, p, fd, b"6")
    inode = k.vfs.lookup("/tmp/f")
    assert inode is not None and bytes(inode.data) == b"123456"
    assert_ok(k, [p, child])


def test_fcntl_setfl_mask(k: KernelState) -> None:
    """F_SETFL changes only SETFL_MASK bits: access mode kept (fs/fcntl.c:33, 80); O_DIRECT EINVAL (58-61); O_NOATIME EPERM (47-50)."""
    t = make_task(k)
    fd = _open(k, t, "/etc/hostname", O_RDWR)
    assert do_fcntl(k, t, fd, F_SETFL, O_WRONLY | O_APPEND | O_CREAT) == 0
    assert do_fcntl(k, t, fd, F_GETFL, 0) == O_RDWR | O_APPEND
    assert do_fcntl(k, t, fd, F_SETFL, 0) == 0
    assert do_fcntl(k, t, fd, F_GETFL, 0) == O_RDWR
    assert _err(do_fcntl, k, t, fd, F_SETFL, O_DIRECT) == errno.EINVAL
    user = make_task(k, pid=2, caps=0, uid=1000)
    ufd = _open(k, user, "/etc/hostname")
    assert _err(do_fcntl, k, user, ufd, F_SETFL, O_NOATIME) == errno.EPERM
    do_fcntl(k, t, fd, F_SETFL, O_NOATIME)
    assert do_fcntl(k, t, fd, F_GETFL, 0) & O_NOATIME


def test_fcntl_dupfd(k: KernelState) -> None:
    """F_DUPFD/F_DUPFD_CLOEXEC: lowest fd >= arg, EINVAL at RLIMIT_NOFILE (fs/file.c:1011-1012), EMFILE when full (fs/file.c:502)."""
    t = make_task(k, nofile=8)
    fd = _open(k, t, "/etc/hostname")
    assert do_fcntl(k, t, fd, F_DUPFD, 5) == 5
    assert do_fcntl(k, t, fd, F_DUPFD_CLOEXEC, 5) == 6
    assert do_fcntl(k, t, 6, F_GETFD, 0) == FD_CLOEXEC
    assert do_fcntl(k, t, 5, F_GETFD, 0) == 0
    assert _err(do_fcntl, k, t, fd, F_DUPFD, 8) == errno.EINVAL
    assert _err(do_fcntl, k, t, fd, F_DUPFD_CLOEXEC, -1) == errno.EINVAL
    assert do_fcntl(k, t, fd, F_DUPFD, 7) == 7
    assert _err(do_fcntl, k, t, fd, F_DUPFD, 7) == errno.EMFILE
    f = F.fdget(t, fd)
    assert f is not None and f.f_count == 4
    assert_ok(k, [t])


def test_fcntl_errors(k: KernelState) -> None:
    """fcntl: EBADF for a bad fd (fs/fcntl.c:450-454), EINVAL for an unknown cmd (327), EBADF for F_SETFL on O_PATH (456-458)."""
    t = make_task(k)
    assert _err(do_fcntl, k, t, 3, F_GETFD, 0) == errno.EBADF
    fd = _open(k, t, "/etc/hostname")
    assert _err(do_fcntl, k, t, fd, 999, 0) == errno.EINVAL
    assert _err(do_fcntl, k, t, fd, -1, 0) == errno.EINVAL
    with pytest.raises(Unmodelled):
        do_fcntl(k, t, fd, 5, 0)  # F_GETLK
    p = _open(k, t, "/tmp", O_PATH)
    assert _err(do_fcntl, k, t, p, F_SETFL, 0) == errno.EBADF
    assert do_fcntl(k, t, p, F_GETFL, 0) == O_PATH
    lf = do_sys_open(k, t, AT_FDCWD, "/tmp", O_RDONLY | O_LARGEFILE, 0)
    assert do_fcntl(k, t, lf, F_GETFL, 0) == O_LARGEFILE
