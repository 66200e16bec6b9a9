"""copy_files and copy_fs, the fd-table and fs_struct steps of copy_process (kernel/fork.c:1429-1474).

Both follow the CLONE_* idiom: with the flag the child shares the parent's object and its
count (``files_struct.count``, ``fs_struct.users``) goes up; without it the child gets a
private copy (``dup_fd``, ``copy_fs_struct``). The kernel's child starts with the parent's
pointers (dup_task_struct copies the whole task_struct), so the share case only increments
the count; the model assigns the pointer explicitly so the functions do not depend on how the
child was built. The lead folds these into forklab/kernel/fork.py.

CLONE_FS while the shared fs_struct is marked ``in_exec`` (a thread is in execve) is EAGAIN.
A fork does not check RLIMIT_NOFILE; ``dup_fd`` fails only with ENOMEM or, when the parent's
table is larger than sysctl_nr_open, EMFILE.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.fs.file import dup_fd
from forklab.fs.fs_struct import copy_fs_struct
from forklab.uapi import CLONE_FILES, CLONE_FS

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.syscalls import Kernel


def copy_fs(k: Kernel, clone_flags: int, p: Task, current: Task) -> None:
    """CLONE_FS: share (EAGAIN if in_exec); else copy_fs_struct, ENOMEM (kernel/fork.c:1429-1447)."""
    fs = current.fs
    if fs is None:
        p.fs = None
        return
    if clone_flags & CLONE_FS:
        if fs.in_exec:
            raise kerr(errno.EAGAIN, "CLONE_FS while the shared fs_struct is in execve", "kernel/fork.c:1437")
        fs.users += 1
        p.fs = fs
        k.trace("copy_fs", "kernel/fork.c:1439", f"shared, users={fs.users}")
        return
    try:
        p.fs = copy_fs_struct(k, fs)
    except OSError:
        p.fs = None
        raise
    k.trace("copy_fs", "kernel/fork.c:1443", "copied")


def copy_files(k: Kernel, clone_flags: int, p: Task, current: Task) -> None:
    """No table: none; CLONE_FILES: share (count++); else dup_fd, ENOMEM/EMFILE (kernel/fork.c:1449-1474)."""
    oldf = current.files
    if oldf is None:
        p.files = None
        return
    if clone_flags & CLONE_FILES:
        oldf.count += 1
        p.files = oldf
        k.trace("copy_files", "kernel/fork.c:1462", f"shared, count={oldf.count}")
        return
    try:
        p.files = dup_fd(k, oldf)
    except OSError:
        p.files = None
        raise
    k.trace("copy_files", "kernel/fork.c:1466", "copied")
