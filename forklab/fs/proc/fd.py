"""/proc/<pid>/fd (fs/proc/fd.c): the open descriptors of a task and where each link points.

``proc_readfd_common`` lists the installed descriptors in numeric order; ``proc_fd_link``
gives the text readlink returns: the file's path as the reader's root sees it (d_path), or the
name a pseudo file's dentry operations give it: ``pipe:[ino]``, ``anon_inode:[pidfd]``, and
``/dev/zero (deleted)`` for a shmem object. The model has no unlink, so no path has
`` (deleted)`` appended, and no mounts, so a path outside the reader's root is shown from the
tree's root (prepend_path's global root).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File
    from forklab.include.linux.sched import Task


def proc_readfd_common(task: Task) -> list[int]:
    """The fds of ``task``'s table with a file installed, ascending; none once the table is gone (fs/proc/fd.c:228-266)."""
    files = task.files
    if files is None:
        return []
    return [fd for fd, f in enumerate(files.fdt.fd) if f is not None]


def d_path_from(root: str, path: str) -> str:
    """d_path, reduced: ``path`` relative to the reader's root ``root``, or from the tree's root when outside it."""
    if root == "/" or not (path == root or path.startswith(root + "/")):
        return path
    return path[len(root):] or "/"


def proc_fd_link(task: Task, fd: int, reader_root: str) -> str:
    """The target of /proc/<pid>/fd/<fd>: the file's path, or its pseudo name; ENOENT if not open (fs/proc/fd.c:147-175)."""
    files = task.files
    file: File | None = None
    if files is not None and 0 <= fd < len(files.fdt.fd):
        file = files.fdt.fd[fd]
    if file is None:
        raise kerr(errno.ENOENT, f"fd {fd} is not open in task {task.pid}", "fs/proc/fd.c:151")
    if file.f_inode.kind == "shmem":
        return file.f_inode.name
    name = file.f_path.dentry
    return d_path_from(reader_root, name) if name.startswith("/") else name  # d_dname for pseudo files


__all__ = ["d_path_from", "proc_fd_link", "proc_readfd_common"]
