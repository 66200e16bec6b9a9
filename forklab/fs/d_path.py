"""getcwd(2) (fs/d_path.c): the path of the task's cwd as its root sees it.

The model's cwd and root are tree pathnames (``fs->pwd``, ``fs->root``), so ``prepend_path``
is a prefix test: a cwd below the root (or the root itself) is its path from there; a cwd
outside the root (a chroot without chdir) walks up to the tree's root without meeting it and
is "(unreachable)" followed by its path from the tree's root. The model cannot remove a
directory (no rmdir), so ``d_unlinked`` is never true of a cwd that was reached.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.fs.vfs import PATH_MAX

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

UNREACHABLE = "(unreachable)"  # fs/d_path.c:229


def prepend_path(pwd: str, root: str) -> tuple[str, bool]:
    """(the path of ``pwd`` from ``root``, whether ``root`` was met on the way up) (fs/d_path.c:82-150)."""
    if pwd == root:
        return "/", True
    prefix = root.rstrip("/") + "/"
    if root == "/" or pwd.startswith(prefix):
        return "/" + pwd[len(prefix):] if root != "/" else pwd, True
    return pwd, False


def sys_getcwd(k: KernelState, current: Task, size: int) -> str:
    """getcwd(2) -> the cwd's path; its length with the NUL is the return value; ERANGE when it does not fit
    ``size``, ENAMETOOLONG past PATH_MAX (fs/d_path.c:425-468)."""
    fs = current.fs
    if fs is None:
        raise kerr(errno.ENOENT, "task has no fs_struct", "fs/d_path.c:437")
    path, reachable = prepend_path(fs.pwd.dentry, fs.root.dentry)
    if not reachable:
        path = UNREACHABLE + path  # prepend_unreachable (fs/d_path.c:227-230)
    length = len(path.encode("utf-8", "surrogateescape")) + 1
    if length > PATH_MAX:
        raise kerr(errno.ENAMETOOLONG, "the path is longer than PATH_MAX", "fs/d_path.c:15")
    if length > size:
        raise kerr(errno.ERANGE, f"the path needs {length} bytes, the buffer has {size}", "fs/d_path.c:457")
    return path
