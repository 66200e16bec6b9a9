"""struct file allocation and release (fs/file_table.c).

``alloc_empty_file`` is where ENFILE comes from: the system-wide count of open file
descriptions (``nr_files``, kept by ``k.vfs``) may not reach ``files_stat.max_files``
unless the caller has CAP_SYS_ADMIN in the initial user namespace. The count rises when a
file is allocated and falls when its last reference goes (``fput`` -> ``__fput`` ->
``file_free``).

Deviation: the kernel defers the final ``__fput`` to task work run on return to user space
(fs/file_table.c:334-353). The model runs a syscall atomically, so ``fput`` releases the file
at once; nothing user-visible can happen in between.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, kerr
from forklab.include.linux.fdtable import (
    FMODE_CAN_READ,
    FMODE_CAN_WRITE,
    FMODE_OPENED,
    FMODE_READ,
    FMODE_WRITE,
    File,
    Inode,
)
from forklab.include.linux.fs import OPEN_FMODE
from forklab.include.linux.fs_struct import Path
from forklab.kernel.capability import capable
from forklab.mm.shmem import shmem_evict_inode
from forklab.uapi import CAP_SYS_ADMIN

if TYPE_CHECKING:
    from forklab.state import KernelState


def __alloc_file(k: KernelState, flags: int) -> File:
    """kmem_cache_zalloc a file with f_count 1, f_flags and f_mode from ``flags`` (fs/file_table.c:96-122)."""
    if k.fault.should_fail("__alloc_file:kmem_cache_zalloc"):
        raise kerr(errno.ENOMEM, "struct file allocation failed", "fs/file_table.c:103")
    return File(f_inode=k.vfs.anon_inode, f_flags=flags, f_mode=OPEN_FMODE(flags), f_count=1)


def alloc_empty_file(k: KernelState, flags: int) -> File:
    """A new struct file; ENFILE at max_files unless CAP_SYS_ADMIN (fs/file_table.c:134-164)."""
    vfs = k.vfs
    if vfs.nr_files >= vfs.max_files and not (k.current is not None and capable(k.current, CAP_SYS_ADMIN)):
        raise kerr(errno.ENFILE, "the system-wide limit files_stat.max_files is reached", "fs/file_table.c:163")
    f = __alloc_file(k, flags)
    vfs.register_file(f)
    return f


def alloc_file(k: KernelState, path: Path, inode: Inode, flags: int, can_read: bool, can_write: bool) -> File:
    """alloc_empty_file plus path, inode and the CAN_READ/CAN_WRITE bits the fops allow (fs/file_table.c:188-212)."""
    f = alloc_empty_file(k, flags)
    f.f_path = path
    f.f_inode = inode
    if f.f_mode & FMODE_READ and can_read:
        f.f_mode |= FMODE_CAN_READ
    if f.f_mode & FMODE_WRITE and can_write:
        f.f_mode |= FMODE_CAN_WRITE
    f.f_mode |= FMODE_OPENED
    return f


def alloc_file_pseudo(k: KernelState, inode: Inode, name: str, flags: int,
                      can_read: bool = False, can_write: bool = False) -> File:
    """A file on an internal inode (anon inodes, shmem): d_alloc_pseudo then alloc_file (fs/file_table.c:214-238)."""
    if k.fault.should_fail("alloc_file_pseudo:d_alloc_pseudo"):
        raise kerr(errno.ENOMEM, "pseudo dentry allocation failed", "fs/file_table.c:227")
    return alloc_file(k, Path(name), inode, flags, can_read, can_write)


def alloc_file_clone(k: KernelState, base: File, flags: int, can_read: bool = False, can_write: bool = False) -> File:
    """A second file on ``base``'s path and inode (a pipe's read end) (fs/file_table.c:241-250)."""
    return alloc_file(k, base.f_path, base.f_inode, flags, can_read, can_write)


def __fput(k: KernelState, file: File) -> None:
    """Release the last reference: f_op->release, drop the inode, file_free (fs/file_table.c:254-299)."""
    if file.f_mode & FMODE_OPENED:
        inode = file.f_inode
        if inode.kind == "anon":
            if file.private_data is not None:  # pidfd_release: put_pid(file->private_data) (kernel/pid.c)
                from forklab.kernel.pid import (
                    put_pid,  # import cycle: forklab.fs.file_table is still loading when this module loads
                )

                pid = file.private_data
                file.private_data = None
                put_pid(k, pid)
            inode.i_count -= 1  # dput -> iput of the anon inode held by ihold() in anon_inode_getfile
        elif inode.kind == "pipe":  # f_op->release = pipe_release (fs/pipe.c:715-737)
            from forklab.fs.pipe import (
                pipe_release,  # import cycle: forklab.fs.file is still loading when this module loads
            )

            pipe_release(k, inode, file)
    k.vfs.unregister_file(file)
    if k.listeners:
        k.trace("fput", "fs/file_table.c:254", f"last reference to {file.f_path.dentry or file.f_inode.name} dropped")


def fput(k: KernelState, file: File) -> None:
    """Drop one reference; the last one releases the file (fs/file_table.c:334-358)."""
    if file.f_count <= 0:
        raise InternalError(f"fput on a file with f_count {file.f_count}: {file!r}")
    file.f_count -= 1
    if file.f_count == 0:
        __fput(k, file)


def get_nr_files(k: KernelState) -> int:
    """The number of struct files alive (fs/file_table.c:64-67)."""
    return k.vfs.nr_files


def vma_fput(k: KernelState, file: File) -> None:
    """fput() of a vma's file (fs/file_table.c:334-358) as far as the mm needs it.

    Shmem files made by ``shmem_zero_setup`` are private to the mm code (never in an fd table):
    the last reference releases the inode and so its page cache (iput -> shmem_evict_inode).
    """
    if file.f_count <= 0:
        raise InternalError(f"fput on a file with f_count {file.f_count}")
    file.f_count -= 1
    if file.f_count:
        return
    inode = file.f_inode
    inode.i_count -= 1
    if inode.i_count == 0 and inode.kind == "shmem":
        shmem_evict_inode(k, inode)
