"""open, chdir, fchdir, chroot and close (fs/open.c); the name lookup and the last step of an open are in fs/namei.py.

``do_sys_open`` keeps the kernel's order, which decides which errno wins when several apply:
flag checks (``build_open_flags``), the pathname (``getname``: empty is ENOENT, PATH_MAX is
ENAMETOOLONG), the fd reservation (EMFILE), then ``path_openat``: the ``struct file`` is
allocated *before* the name is looked up (ENFILE/ENOMEM beat ENOENT), the walk
(ENOENT/ENOTDIR), and ``do_last`` on the final component:

* without O_CREAT: missing is ENOENT; a trailing slash or O_DIRECTORY on a non-directory is
  ENOTDIR;
* with O_CREAT: a trailing slash is EISDIR; a missing name is created with
  ``mode & ~umask`` (fs/namei.c:3253-3254), and then neither truncated nor checked for
  O_DIRECTORY -- so on 5.6 ``open(new, O_CREAT|O_DIRECTORY)`` creates a regular file and
  succeeds, a quirk later kernels removed; an existing name is EEXIST under O_EXCL and
  EISDIR if it is a directory;
* ``may_open``: writing (or O_TRUNC on) a directory is EISDIR;
* O_TRUNC of an existing regular file empties it, even when opened O_RDONLY.

``f_flags`` keep the open flags minus O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC and O_CLOEXEC
(O_CLOEXEC lives in the fd table). ``ksys_open``/``sys_openat`` add O_LARGEFILE as x86-64's
open(2) and openat(2) do (fs/open.c:1174-1175), so F_GETFL of an fd from them shows it.

Not modelled: permissions (DAC, so no EACCES except creating in /proc, which has no
->create), symlinks, O_TMPFILE (Unmodelled), read-only mounts, leases and locks.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.fs.file import __close_fd, _files, fd_install, fdget_raw, get_unused_fd_flags, put_unused_fd
from forklab.fs.file_table import fput
from forklab.fs.fs_struct import set_fs_pwd, set_fs_root
from forklab.fs.namei import getname, path_openat, user_path_at
from forklab.fs.namespace import current_mnt_root
from forklab.include.linux.dcache import is_dir, is_reg
from forklab.include.linux.fdtable import (
    FMODE_ATOMIC_POS,
    FMODE_CAN_READ,
    FMODE_CAN_WRITE,
    FMODE_LSEEK,
    FMODE_OPENED,
    FMODE_PATH,
    FMODE_PREAD,
    FMODE_PWRITE,
    FMODE_READ,
    FMODE_STREAM,
    FMODE_WRITE,
    File,
    FilesStruct,
    Inode,
)
from forklab.include.linux.fs import ACC_MODE, MAY_WRITE
from forklab.include.linux.fs_struct import Path
from forklab.kernel.capability import ns_capable
from forklab.uapi import (
    __O_SYNC,
    __O_TMPFILE,
    AT_FDCWD,
    CAP_SYS_CHROOT,
    FASYNC,
    O_ACCMODE,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECT,
    O_DIRECTORY,
    O_DSYNC,
    O_EXCL,
    O_LARGEFILE,
    O_NDELAY,
    O_NOATIME,
    O_NOCTTY,
    O_NOFOLLOW,
    O_PATH,
    O_TRUNC,
)

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

VALID_OPEN_FLAGS = (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NDELAY | O_DSYNC | FASYNC
                    | O_DIRECT | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | __O_SYNC | O_PATH
                    | __O_TMPFILE)  # include/linux/fcntl.h:10-13
O_PATH_FLAGS = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC  # fs/open.c:956
S_IALLUGO = 0o7777


def build_open_how(flags: int, mode: int) -> tuple[int, int]:
    """Valid flags only; O_PATH keeps only O_PATH_FLAGS; mode only for O_CREAT (fs/open.c:958-972)."""
    flags &= VALID_OPEN_FLAGS
    mode &= S_IALLUGO
    if flags & O_PATH:
        flags &= O_PATH_FLAGS
    if not flags & (O_CREAT | __O_TMPFILE):
        mode = 0
    return flags, mode


def build_open_flags(flags: int, mode: int) -> tuple[int, int]:
    """The flags do_last sees (O_CLOEXEC removed) and the access wanted; EINVAL (fs/open.c:974-1071)."""
    acc_mode = ACC_MODE(flags)
    flags &= ~O_CLOEXEC
    if flags & __O_TMPFILE:
        raise Unmodelled("O_TMPFILE is not modelled (fs/open.c:1010)")
    if flags & O_PATH:
        acc_mode = 0
    if flags & __O_SYNC:
        flags |= O_DSYNC
    if flags & O_TRUNC:
        acc_mode |= MAY_WRITE
    return flags, acc_mode


def _fops(inode: Inode) -> tuple[bool, bool, bool]:
    """Which of read, write and llseek the inode's file_operations provide, as do_dentry_open tests (fs/open.c:793-809; fs/libfs.c:228, mm/shmem.c:3783, drivers/char/mem.c:843-868)."""
    if inode.kind == "dir":
        return True, False, True  # simple_dir_operations: generic_read_dir, dcache_dir_lseek
    if inode.kind == "anon":
        return False, False, False  # pidfd_fops: poll and show_fdinfo only
    return True, True, True  # shmem_file_operations; null_fops/zero_fops (drivers/char/mem.c:843-868)


def vfs_open(t: Task, path: Path, inode: Inode, f: File) -> None:
    """do_dentry_open: f_inode, f_mode bits from the fops, f_flags cleaned (fs/open.c:733-830)."""
    f.f_path = path
    f.f_inode = inode
    if f.f_flags & O_PATH:
        f.f_mode = FMODE_PATH | FMODE_OPENED
        return
    if is_reg(inode) or is_dir(inode):
        f.f_mode |= FMODE_ATOMIC_POS
    can_read, can_write, can_seek = _fops(inode)
    f.f_mode |= FMODE_PREAD | FMODE_PWRITE | (FMODE_LSEEK if can_seek else 0)
    f.f_mode |= FMODE_OPENED
    if f.f_mode & FMODE_READ and can_read:
        f.f_mode |= FMODE_CAN_READ
    if f.f_mode & FMODE_WRITE and can_write:
        f.f_mode |= FMODE_CAN_WRITE
    f.f_flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC)
    if f.f_flags & O_DIRECT:
        raise kerr(errno.EINVAL, "O_DIRECT on a file without ->direct_IO", "fs/open.c:819")


def do_sys_open(k: KernelState, t: Task, dfd: int, filename: str, flags: int, mode: int) -> int:
    """open/openat: reserve an fd, open the file, install it (fs/open.c:1130-1163)."""
    how_flags, how_mode = build_open_how(flags, mode)
    open_flag, acc_mode = build_open_flags(how_flags, how_mode)
    name = getname(filename)
    fd = get_unused_fd_flags(k, t, how_flags)
    try:
        f = path_openat(k, t, dfd, name, open_flag, acc_mode, how_mode)
    except OSError:
        put_unused_fd(t, fd)
        raise
    fd_install(t, fd, f)
    if k.listeners:
        k.trace("open", "fs/open.c:1152", f"{f.f_path.dentry} -> fd {fd}")
    return fd


def ksys_open(k: KernelState, t: Task, filename: str, flags: int, mode: int) -> int:
    """open(2) on x86-64: O_LARGEFILE forced, relative to the cwd (fs/open.c:1166-1169, include/linux/syscalls.h:1381-1388)."""
    return do_sys_open(k, t, AT_FDCWD, filename, flags | O_LARGEFILE, mode)


def sys_openat(k: KernelState, t: Task, dfd: int, filename: str, flags: int, mode: int) -> int:
    """openat(2) on x86-64: O_LARGEFILE forced (fs/open.c:1171-1177)."""
    return do_sys_open(k, t, dfd, filename, flags | O_LARGEFILE, mode)


def ksys_chdir(k: KernelState, t: Task, filename: str) -> int:
    """chdir(2): look up a directory and make it the cwd; ENOENT, ENOTDIR (fs/open.c:453-477)."""
    target, _ = user_path_at(k, t, AT_FDCWD, filename, directory=True)
    if t.fs is None:
        raise kerr(errno.ENOENT, "task has no fs_struct", "fs/open.c:459")
    set_fs_pwd(t.fs, Path(target, current_mnt_root(t)))
    return 0


def ksys_fchdir(k: KernelState, t: Task, fd: int) -> int:
    """fchdir(2): the directory open at ``fd`` becomes the cwd; EBADF, ENOTDIR (fs/open.c:484-504)."""
    f = fdget_raw(t, fd)
    if f is None:
        raise kerr(errno.EBADF, "fd is not an open file descriptor", "fs/open.c:490")
    if not is_dir(f.f_inode):
        raise kerr(errno.ENOTDIR, "fd does not refer to a directory", "fs/open.c:494")
    if t.fs is None:
        raise kerr(errno.ENOENT, "task has no fs_struct", "fs/open.c:499")
    set_fs_pwd(t.fs, f.f_path)
    return 0


def ksys_chroot(k: KernelState, t: Task, filename: str) -> int:
    """chroot(2): lookup (ENOENT/ENOTDIR) first, then CAP_SYS_CHROOT in the caller's user ns (EPERM) (fs/open.c:506-537)."""
    target, _ = user_path_at(k, t, AT_FDCWD, filename, directory=True)
    cred = t.cred
    if cred is None or cred.user_ns is None or not ns_capable(t, cred.user_ns, CAP_SYS_CHROOT):
        raise kerr(errno.EPERM, "chroot needs CAP_SYS_CHROOT in the caller's user namespace", "fs/open.c:521")
    if t.fs is None:
        raise kerr(errno.ENOENT, "task has no fs_struct", "fs/open.c:527")
    set_fs_root(t.fs, Path(target, current_mnt_root(t)))
    return 0


def filp_close(k: KernelState, filp: File, files: FilesStruct | None) -> int:
    """Flush, drop POSIX locks, then fput (fs/open.c:1239-1257)."""
    if filp.f_count == 0:
        return 0  # "VFS: Close: file count is 0" (fs/open.c:1243-1246)
    fput(k, filp)
    return 0


def ksys_close(k: KernelState, t: Task, fd: int) -> int:
    """close(2): __close_fd on the caller's table (fs/open.c:1266-1279, include/linux/syscalls.h:1373-1376).

    The ERESTART* to EINTR mapping of fs/open.c:1271-1275 has nothing to map: the model's
    __close_fd has no ->flush that could be interrupted.
    """
    return __close_fd(k, _files(t), fd)


__all__ = [
    "build_open_flags",
    "build_open_how",
    "do_sys_open",
    "filp_close",
    "ksys_chdir",
    "ksys_chroot",
    "ksys_close",
    "ksys_fchdir",
    "ksys_open",
    "sys_openat",
    "vfs_open",
]


def stream_open(file: File) -> None:
    """No positions: clear LSEEK/PREAD/PWRITE/ATOMIC_POS, set FMODE_STREAM (fs/open.c:1332-1337)."""
    file.f_mode &= ~(FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE | FMODE_ATOMIC_POS)
    file.f_mode |= FMODE_STREAM
