"""stat(2), lstat(2), fstat(2) and newfstatat(2) (fs/stat.c) over the model's tree.

``generic_fillattr`` reads what the model's inodes hold: the inode number, mode, link count,
owner, device number and size. The whole tree is one in-memory superblock, whose device is
the model's one anonymous device (``SHMEM_DEV``, 0:1, as /proc/<pid>/maps shows shmem). The
model's inodes keep no timestamps, so the times are 0 (the epoch), and no block counts.
Directory link counts are tmpfs's: 2 plus one per subdirectory (shmem_mkdir's inc_nlink),
computed from the tree. There are no symlinks, so lstat is stat. Names below /proc raise
``Unmodelled``: the model's procfs answers open, not stat.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.fs.file import fdget_raw
from forklab.fs.namei import getname, path_init, user_path_at
from forklab.fs.proc.root import proc_names_of
from forklab.fs.proc.task_mmu import SHMEM_DEV
from forklab.include.linux.dcache import is_dir
from forklab.include.linux.stat import Kstat
from forklab.uapi import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, PAGE_SIZE

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import Inode
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

AT_NO_AUTOMOUNT = 0x800  # include/uapi/linux/fcntl.h:92
KSTAT_QUERY_FLAGS = 0x6000  # AT_STATX_SYNC_TYPE (include/linux/stat.h:45)


def _tree_nlink(k: KernelState, path: str | None, inode: Inode) -> int:
    """The link count: the inode's, and for a directory in the tree tmpfs's 2 + one per subdirectory (no kernel
    analogue: shmem keeps it in i_nlink as mkdir and rmdir go)."""
    if path is None or not is_dir(inode) or k.vfs.lookup(path) is not inode:
        return inode.nlink
    return 2 + sum(1 for c in k.vfs.children.get(path, ()) if is_dir(k.vfs.inodes[c]))


def generic_fillattr(k: KernelState, path: str | None, inode: Inode) -> Kstat:
    """The attributes an inode without ->getattr gives (fs/stat.c:35-54)."""
    return Kstat(dev=SHMEM_DEV, ino=inode.i_ino, mode=inode.i_mode, nlink=_tree_nlink(k, path, inode),
                 uid=inode.i_uid, gid=inode.i_gid, rdev=inode.i_rdev, size=inode.i_size, blksize=PAGE_SIZE)


def vfs_stat_set_lookup_flags(flags: int) -> None:
    """EINVAL for a flag stat does not know (fs/stat.c:155-166)."""
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | KSTAT_QUERY_FLAGS):
        raise kerr(errno.EINVAL, f"unknown stat flags {flags:#x}", "fs/stat.c:159")


def vfs_statx(k: KernelState, t: Task, dfd: int, filename: str, flags: int) -> Kstat:
    """Look the name up (no symlinks to follow or not) and fill its attributes (fs/stat.c:187-207)."""
    vfs_stat_set_lookup_flags(flags)
    if flags & AT_EMPTY_PATH and filename == "":
        return vfs_statx_fd(k, t, dfd)  # LOOKUP_EMPTY: the dirfd itself (fs/namei.c:2312-2318)
    name = getname(filename)
    root, start = path_init(k, t, dfd, name)
    names = proc_names_of(k, root, start, name)
    if names:
        raise Unmodelled(f"stat of {name}: the model's procfs answers open, not stat")
    path, inode = user_path_at(k, t, dfd, filename, False)
    return generic_fillattr(k, path, inode)


def vfs_statx_fd(k: KernelState, t: Task, fd: int) -> Kstat:
    """fstat: EBADF for a closed fd, else the attributes of its file's inode (fs/stat.c:136-151)."""
    f = fdget_raw(t, fd) if fd >= 0 else None
    if f is None:
        raise kerr(errno.EBADF, f"fd {fd} is not open", "fs/stat.c:140")
    return generic_fillattr(k, f.f_path.dentry if f.f_path.dentry.startswith("/") else None, f.f_inode)


def sys_newstat(k: KernelState, t: Task, filename: str) -> Kstat:
    """stat(2) (fs/stat.c:347-356)."""
    return vfs_statx(k, t, AT_FDCWD, filename, 0)


def sys_newlstat(k: KernelState, t: Task, filename: str) -> Kstat:
    """lstat(2): stat without following a last symlink, which the model has not (fs/stat.c:358-368)."""
    return vfs_statx(k, t, AT_FDCWD, filename, AT_SYMLINK_NOFOLLOW)


def sys_newfstatat(k: KernelState, t: Task, dfd: int, filename: str, flag: int) -> Kstat:
    """newfstatat(2) (fs/stat.c:372-383)."""
    return vfs_statx(k, t, dfd, filename, flag)


def sys_newfstat(k: KernelState, t: Task, fd: int) -> Kstat:
    """fstat(2) (fs/stat.c:385-394)."""
    return vfs_statx_fd(k, t, fd)
