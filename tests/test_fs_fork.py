"""Fork-time files and fs: dup_fd, copy_files, copy_fs, unshare, pidfd files, fail-nth (kernel/fork.c, fs/file.c)."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest
from fs_model_helpers import assert_ok, bare_kernel, fork_like, make_pid, make_task

from forklab.fs import file as F
from forklab.fs.anon_inodes import anon_inode_getfile
from forklab.fs.debug import check_fs_invariants, files_snapshot, fs_snapshot, vfs_snapshot
from forklab.fs.file_table import fput
from forklab.fs.fs_struct import copy_fs_struct, exit_fs, unshare_fs_struct
from forklab.fs.open import do_sys_open, ksys_chdir, ksys_close
from forklab.fs.read_write import ksys_lseek, ksys_read, ksys_write
from forklab.include.linux.fs import get_file
from forklab.kernel.fork import copy_files, copy_fs, unshare_fd, unshare_files, unshare_fs
from forklab.uapi import (
    AT_FDCWD,
    CLONE_FILES,
    CLONE_FS,
    O_CLOEXEC,
    O_CREAT,
    O_RDONLY,
    O_RDWR,
    SEEK_CUR,
    SEEK_SET,
)

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


@pytest.fixture
def k() -> KernelState:
    return bare_kernel()


def _open(k: KernelState, t: Task, path: str = "/etc/hostname", flags: int = O_RDONLY) -> int:
    return do_sys_open(k, t, AT_FDCWD, path, flags, 0o644)


def test_dup_fd_copies_bitmaps_and_shares_files(k: KernelState) -> None:
    """dup_fd copies the open and close-on-exec bits and takes a ref on each file (fs/file.c:333-352)."""
    p = make_task(k)
    a = _open(k, p)
    b = _open(k, p, "/dev/null", O_RDWR | O_CLOEXEC)
    c = _open(k, p)
    ksys_close(k, p, a)
    c_ = fork_like(k, p, 2)
    assert c_.files is not p.files and c_.files is not None and p.files is not None
    assert c_.files.fdt.open_fds == {b, c}
    assert F.get_close_on_exec(c_, b) and not F.get_close_on_exec(c_, c)
    for fd in (b, c):
        assert c_.files.fdt.fd[fd] is p.files.fdt.fd[fd]
        f = p.files.fdt.fd[fd]
        assert f is not None and f.f_count == 2
    assert c_.files.count == 1 and c_.files.next_fd == 0
    assert k.vfs.nr_files == 2  # no new struct file
    assert_ok(k, [p, c_])


def test_child_fd_allocation_starts_at_zero(k: KernelState) -> None:
    """The copy's next_fd is 0, so the child reuses the parent's holes (fs/file.c:289)."""
    p = make_task(k)
    for _ in range(3):
        _open(k, p)
    ksys_close(k, p, 0)
    child = fork_like(k, p, 2)
    assert _open(k, child) == 0
    assert _open(k, p) == 0
    assert_ok(k, [p, child])


def test_fork_shares_file_offset(k: KernelState) -> None:
    """After dup_fd parent and child share one struct file, so one f_pos (fs/file.c:341, fs/read_write.c:576-618)."""
    p = make_task(k)
    fd = _open(k, p, "/tmp/log", O_CREAT | O_RDWR)
    child = fork_like(k, p, 2)
    assert ksys_write(k, p, fd, b"parent ") == 7
    assert ksys_write(k, child, fd, b"child") == 5
    inode = k.vfs.lookup("/tmp/log")
    assert inode is not None and bytes(inode.data) == b"parent child"
    assert ksys_lseek(k, p, fd, 0, SEEK_CUR) == 12
    ksys_lseek(k, child, fd, 0, SEEK_SET)
    assert ksys_read(k, p, fd, 6) == b"parent"
    assert ksys_read(k, child, fd, 100) == b" child"
    assert_ok(k, [p, child])


def test_separate_opens_have_separate_offsets(k: KernelState) -> None:
    """Two open() calls make two struct files with independent offsets (fs/open.c:1144-1153)."""
    t = make_task(k)
    a = _open(k, t)
    b = _open(k, t)
    assert ksys_read(k, t, a, 4) == b"fork"
    assert ksys_read(k, t, b, 4) == b"fork"


def test_reserved_fd_not_inherited(k: KernelState) -> None:
    """A reserved-but-uninstalled fd is free in the copy (fs/file.c:342-350)."""
    p = make_task(k)
    _open(k, p)
    reserved = F.get_unused_fd_flags(k, p, O_CLOEXEC)
    _open(k, p)
    child = fork_like(k, p, 2)
    assert child.files is not None and p.files is not None
    assert reserved in p.files.fdt.open_fds
    assert reserved not in child.files.fdt.open_fds
    assert _open(k, child) == reserved
    F.put_unused_fd(p, reserved)
    assert_ok(k, [p, child])


def test_clone_files_shares_table(k: KernelState) -> None:
    """CLONE_FILES shares the files_struct (count++): opens and closes are seen by both (kernel/fork.c:1461-1464)."""
    p = make_task(k)
    child = fork_like(k, p, 2, CLONE_FILES)
    assert child.files is p.files and p.files is not None and p.files.count == 2
    fd = _open(k, child)
    assert p.files.fdt.fd[fd] is not None
    ksys_close(k, p, fd)
    assert child.files is not None and child.files.fdt.fd[fd] is None
    assert_ok(k, [p, child])
    F.exit_files(k, child)
    assert p.files.count == 1
    assert_ok(k, [p, child])


def test_no_files_gives_no_files(k: KernelState) -> None:
    """A task without a files_struct forks a child without one (kernel/fork.c:1457-1459)."""
    p = make_task(k)
    p.files = None
    child = fork_like(k, p, 2)
    assert child.files is None


def test_dup_fd_large_table(k: KernelState) -> None:
    """dup_fd sizes the copy by the highest open fd's word, allocating a bigger table (fs/file.c:299-331)."""
    p = make_task(k, nofile=10000)
    fd = _open(k, p)
    F.ksys_dup3(k, p, fd, 700, 0)
    ksys_close(k, p, 700)
    F.ksys_dup3(k, p, fd, 200, 0)
    assert p.files is not None and p.files.fdt.max_fds == 1024
    child = fork_like(k, p, 2)
    assert child.files is not None
    assert F.count_open_files(p.files.fdt) == 256
    assert child.files.fdt.max_fds == 256
    assert child.files.fdt.open_fds == {0, 200}
    assert_ok(k, [p, child])


def test_dup_fd_emfile_past_nr_open(k: KernelState) -> None:
    """dup_fd fails with EMFILE if the parent's table needs more than sysctl_nr_open (fs/file.c:316-320)."""
    p = make_task(k, nofile=10000)
    fd = _open(k, p)
    F.ksys_dup3(k, p, fd, 900, 0)
    k.vfs.nr_open = 512
    before = (files_snapshot(p.files), vfs_snapshot(k.vfs))
    with pytest.raises(OSError) as e:
        fork_like(k, p, 2)
    assert e.value.errno == errno.EMFILE
    assert (files_snapshot(p.files), vfs_snapshot(k.vfs)) == before
    assert_ok(k, [p])


def test_fork_ignores_rlimit_nofile(k: KernelState) -> None:
    """A fork copies every fd even above the child's RLIMIT_NOFILE: it is not checked (catalog 4.6, fs/file.c:272-366)."""
    p = make_task(k, nofile=100)
    fd = _open(k, p)
    F.ksys_dup3(k, p, fd, 90, 0)
    assert p.signal is not None
    from forklab.uapi import RLIMIT_NOFILE

    p.signal.set_rlim(RLIMIT_NOFILE, (10, 10))
    child = fork_like(k, p, 2)
    assert child.files is not None and 90 in child.files.fdt.open_fds


@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_fail_nth_dup_fd_leaves_state_unchanged(k: KernelState, nth: int) -> None:
    """Failing each allocation of dup_fd (files_cachep, then alloc_fdtable's three) is ENOMEM and changes nothing (fs/file.c:279-313)."""
    p = make_task(k, nofile=10000)
    fd = _open(k, p, flags=O_RDONLY | O_CLOEXEC)
    F.ksys_dup3(k, p, fd, 100, 0)
    reserved = F.get_unused_fd_flags(k, p, 0)
    before = (files_snapshot(p.files), fs_snapshot(p.fs), vfs_snapshot(k.vfs))
    k.fault.arm(nth)
    with pytest.raises(OSError) as e:
        fork_like(k, p, 2)
    assert e.value.errno == errno.ENOMEM
    assert k.fault.sites[:nth][-1] == k.fault.failed_site
    assert (files_snapshot(p.files), fs_snapshot(p.fs), vfs_snapshot(k.vfs)) == before
    F.put_unused_fd(p, reserved)
    assert_ok(k, [p])


def test_fail_nth_sweep_over_fork(k: KernelState) -> None:
    """Every fallible site of copy_files+copy_fs, failed in turn, leaves parent state equal (kernel/fork.c:1429-1474)."""
    p = make_task(k, nofile=10000)
    _open(k, p)
    F.ksys_dup3(k, p, 0, 150, O_CLOEXEC)
    k.fault.arm(0)
    probe = fork_like(k, p, 99)
    sites = list(k.fault.sites)
    F.exit_files(k, probe)
    exit_fs(k, probe)
    assert sites == ["dup_fd:kmem_cache_alloc", "alloc_fdtable:kmalloc", "alloc_fdtable:kvmalloc_array",
                     "alloc_fdtable:kvmalloc", "copy_fs_struct:kmem_cache_alloc"]
    before = (files_snapshot(p.files), fs_snapshot(p.fs), vfs_snapshot(k.vfs))
    for nth in range(1, len(sites) + 1):
        k.fault.arm(nth)
        with pytest.raises(OSError) as e:
            fork_like(k, p, 2)
        assert e.value.errno == errno.ENOMEM
        assert k.fault.failed_site == sites[nth - 1]
        assert (files_snapshot(p.files), fs_snapshot(p.fs), vfs_snapshot(k.vfs)) == before
        assert_ok(k, [p])


def test_copy_fs_copy_and_share(k: KernelState) -> None:
    """Without CLONE_FS the child gets a copy (users 1, same umask/root/pwd); with it, users++ (kernel/fork.c:1429-1447)."""
    p = make_task(k)
    assert p.fs is not None
    p.fs.umask = 0o077
    ksys_chdir(k, p, "/tmp")
    c1 = fork_like(k, p, 2)
    assert c1.fs is not p.fs and c1.fs is not None
    assert (c1.fs.users, c1.fs.umask, c1.fs.pwd, c1.fs.root, c1.fs.in_exec) == (1, 0o077, p.fs.pwd, p.fs.root, 0)
    ksys_chdir(k, c1, "/dev")
    assert p.fs.pwd.dentry == "/tmp"
    c2 = fork_like(k, p, 3, CLONE_FS)
    assert c2.fs is p.fs and p.fs.users == 2
    ksys_chdir(k, c2, "/etc")
    assert p.fs.pwd.dentry == "/etc"
    assert_ok(k, [p, c1, c2])
    exit_fs(k, c2)
    assert p.fs.users == 1 and c2.fs is None
    assert_ok(k, [p, c1, c2])


def test_clone_fs_in_exec_is_eagain(k: KernelState) -> None:
    """CLONE_FS while the fs_struct is marked in_exec fails with EAGAIN (kernel/fork.c:1435-1438)."""
    p = make_task(k)
    assert p.fs is not None
    p.fs.in_exec = 1
    child = make_task(k, pid=2)
    child.fs = p.fs
    with pytest.raises(OSError) as e:
        copy_fs(k, CLONE_FS, child, p)
    assert e.value.errno == errno.EAGAIN
    assert p.fs.users == 1
    copy_fs(k, 0, child, p)  # a copy is still allowed
    assert child.fs is not p.fs


def test_copy_fs_struct_enomem(k: KernelState) -> None:
    """copy_fs_struct's kmem_cache_alloc failing is ENOMEM (fs/fs_struct.c:114, kernel/fork.c:1443-1445)."""
    p = make_task(k)
    child = make_task(k, pid=2)
    k.fault.arm(1)
    with pytest.raises(OSError) as e:
        copy_fs(k, 0, child, p)
    assert e.value.errno == errno.ENOMEM and child.fs is None
    assert k.fault.failed_site == "copy_fs_struct:kmem_cache_alloc"


def test_copy_files_dup_fd_enomem(k: KernelState) -> None:
    """copy_files reports dup_fd's ENOMEM (fs/file.c:279-282, kernel/fork.c:1466-1468)."""
    p = make_task(k)
    child = make_task(k, pid=2)
    k.fault.arm(1)
    with pytest.raises(OSError) as e:
        copy_files(k, 0, child, p)
    assert e.value.errno == errno.ENOMEM
    assert p.files is not None and p.files.count == 1


def test_unshare_fd_and_fs(k: KernelState) -> None:
    """unshare copies the files/fs only when shared (kernel/fork.c:2861-2895)."""
    p = make_task(k)
    _open(k, p)
    assert unshare_fd(k, CLONE_FILES, p) is None
    assert unshare_fs(k, CLONE_FS, p) is None
    child = fork_like(k, p, 2, CLONE_FILES | CLONE_FS)
    new_files = unshare_fd(k, CLONE_FILES, child)
    assert new_files is not None and new_files is not p.files
    old = child.files
    child.files = new_files
    assert old is not None
    F.put_files_struct(k, old)
    unshare_fs_struct(k, child)
    assert child.fs is not p.fs and p.fs is not None and p.fs.users == 1
    assert_ok(k, [p, child])


def test_unshare_files_for_exec(k: KernelState) -> None:
    """exec's unshare_files gives a private copy only if shared and returns the displaced table (kernel/fork.c:3032-3048)."""
    p = make_task(k)
    _open(k, p, flags=O_RDONLY | O_CLOEXEC)
    assert unshare_files(k, p) is None
    thread = fork_like(k, p, 2, CLONE_FILES)
    displaced = unshare_files(k, thread)
    assert displaced is p.files and thread.files is not p.files and thread.files is not None
    assert displaced is not None
    F.do_close_on_exec(k, thread.files)
    F.put_files_struct(k, displaced)
    assert p.files is not None and p.files.fdt.fd[0] is not None  # the sibling keeps its fd
    assert thread.files.fdt.fd[0] is None
    assert_ok(k, [p, thread])


def test_pidfd_file_lifecycle(k: KernelState) -> None:
    """CLONE_PIDFD's file: reserved O_CLOEXEC fd, shared anon inode, pid ref dropped at last fput (kernel/fork.c:2111-2125)."""
    p = make_task(k)
    pid = make_pid(count=1)
    fd = F.get_unused_fd_flags(k, p, O_RDWR | O_CLOEXEC)
    f = anon_inode_getfile(k, "[pidfd]", pid, O_RDWR | O_CLOEXEC)
    pid.count += 1  # get_pid in copy_process
    assert f.f_flags == O_RDWR and f.f_inode is k.vfs.anon_inode
    assert f.f_path.dentry == "anon_inode:[pidfd]"
    assert k.vfs.anon_inode.i_count == 2
    F.fd_install(p, fd, f)
    assert F.get_close_on_exec(p, fd)
    f2 = anon_inode_getfile(k, "[pidfd]", None, O_RDWR)
    assert f2.f_inode is f.f_inode
    fput(k, f2)
    assert_ok(k, [p])
    child = fork_like(k, p, 2)
    assert f.f_count == 2
    ksys_close(k, p, fd)
    assert pid.count == 2 and f.private_data is pid
    F.exit_files(k, child)
    assert pid.count == 1 and k.vfs.anon_inode.i_count == 1 and k.vfs.nr_files == 0
    assert_ok(k, [p, child])


@pytest.mark.parametrize(("nth", "site"), [(1, "alloc_file_pseudo:d_alloc_pseudo"),
                                           (2, "__alloc_file:kmem_cache_zalloc")])
def test_anon_inode_getfile_enomem(k: KernelState, nth: int, site: str) -> None:
    """anon_inode_getfile fails with ENOMEM from d_alloc_pseudo or the filp cache, undoing ihold (fs/anon_inodes.c:90-104, fs/file_table.c:101-103, 225-227)."""
    make_task(k)
    before = vfs_snapshot(k.vfs)
    k.fault.arm(nth)
    with pytest.raises(OSError) as e:
        anon_inode_getfile(k, "[pidfd]", None, O_RDWR)
    assert e.value.errno == errno.ENOMEM and k.fault.failed_site == site
    assert vfs_snapshot(k.vfs) == before


def test_anon_inode_getfile_enfile(k: KernelState) -> None:
    """anon_inode_getfile is subject to files_stat.max_files: ENFILE (fs/file_table.c:142-163)."""
    make_task(k, caps=0)
    k.vfs.max_files = 0
    with pytest.raises(OSError) as e:
        anon_inode_getfile(k, "[pidfd]", None, O_RDWR)
    assert e.value.errno == errno.ENFILE
    assert k.vfs.anon_inode.i_count == 1


def test_invariants_detect_leaks(k: KernelState) -> None:
    """The checker reports a stray f_count, a files_struct count mismatch and a bad next_fd; extra references balance it."""
    p = make_task(k)
    fd = _open(k, p)
    assert p.files is not None and p.fs is not None
    f = p.files.fdt.fd[fd]
    assert f is not None
    get_file(f)
    errs = check_fs_invariants(k, [p])
    assert any("f_count 2" in e for e in errs)
    assert check_fs_invariants(k, [p], {id(f): 1}) == []
    p.files.count = 3
    p.fs.users = 2
    p.files.next_fd = 5
    errs = check_fs_invariants(k, [p], {id(f): 1})
    assert len(errs) == 3, errs
    copy = copy_fs_struct(k, p.fs)
    assert copy.users == 1 and copy.root == p.fs.root
