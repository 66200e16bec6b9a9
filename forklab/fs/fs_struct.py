"""struct fs_struct operations (fs/fs_struct.c): root, cwd and umask, shared by CLONE_FS.

``users`` counts the tasks using an fs_struct. A fork without CLONE_FS gets a copy
(``copy_fs_struct``, which can fail with ENOMEM); with CLONE_FS the child shares the parent's
and a later chdir/chroot/umask by either is seen by both. ``in_exec`` is set by execve in a
task whose fs_struct is shared only within its thread group (fs/exec.c:1485-1515); while it
is set, a CLONE_FS fork fails with EAGAIN (kernel/fork.c:1435-1438).

Paths are ``Path`` values (pathnames in the model's tree, see forklab.fs.vfs); the kernel's
``path_get``/``path_put`` dentry and mount references have no counterpart here.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, kerr
from forklab.include.linux.fs_struct import FsStruct, Path
from forklab.trace import traced

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


def set_fs_root(fs: FsStruct, path: Path) -> None:
    """Replace the root with ``path`` (fs/fs_struct.c:15-28)."""
    fs.root = path


def set_fs_pwd(fs: FsStruct, path: Path) -> None:
    """Replace the working directory with ``path`` (fs/fs_struct.c:34-48)."""
    fs.pwd = path


def free_fs_struct(fs: FsStruct) -> None:
    """Drop the root and pwd references and free the struct (fs/fs_struct.c:88-93)."""
    fs.users = 0


@traced
def exit_fs(k: KernelState, tsk: Task) -> None:
    """Detach the task's fs_struct; the last user frees it (fs/fs_struct.c:95-110)."""
    fs = tsk.fs
    if fs is not None:
        tsk.fs = None
        if fs.users <= 0:
            raise InternalError(f"exit_fs on an fs_struct with users {fs.users}")
        fs.users -= 1
        if fs.users == 0:
            free_fs_struct(fs)


@traced
def copy_fs_struct(k: KernelState, old: FsStruct) -> FsStruct:
    """A private copy with users 1, in_exec 0, same umask, root and pwd; ENOMEM (fs/fs_struct.c:112-131)."""
    if k.fault.should_fail("copy_fs_struct:kmem_cache_alloc"):
        raise kerr(errno.ENOMEM, "fs_struct allocation failed", "fs/fs_struct.c:114")
    return FsStruct(users=1, umask=old.umask, in_exec=0, root=old.root, pwd=old.pwd)


def unshare_fs_struct(k: KernelState, current: Task) -> None:
    """Give the caller a private copy of its fs_struct, dropping the shared one (fs/fs_struct.c:133-154)."""
    fs = current.fs
    if fs is None:
        raise InternalError(f"task {current.pid} has no fs_struct")
    new_fs = copy_fs_struct(k, fs)
    fs.users -= 1
    current.fs = new_fs
    if fs.users == 0:
        free_fs_struct(fs)


def current_umask(t: Task) -> int:
    """The umask applied to created files (fs/fs_struct.c:156-159)."""
    if t.fs is None:
        raise InternalError(f"task {t.pid} has no fs_struct")
    return t.fs.umask
