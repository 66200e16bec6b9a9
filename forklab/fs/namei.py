"""Pathname lookup and the open path (fs/namei.c): getname, the walk's start and end, and open's last component.

``getname`` copies the name in (ENAMETOOLONG at PATH_MAX, ENOENT when empty); ``path_init``
picks the root and the starting directory (EBADF/ENOTDIR for a bad dirfd); the walk of all but
the last component is ``Vfs.walk`` (``link_path_walk``, forklab/fs/vfs.py), and ``dotdot`` is
``follow_dotdot``: ``..`` at the task's root stays there. ``path_openat`` allocates the struct
file before the walk (so ENFILE/ENOMEM beat ENOENT) and hands the last component to
``do_last`` (or ``do_o_path`` for O_PATH): lookup or create (``lookup_open_create``), the type
checks, ``may_open``, ``vfs_open`` (fs/open.c) and O_TRUNC (``handle_truncate``). The errno
rules are listed in forklab/fs/open.py, which holds the open(2) entry points.

Not modelled: permissions beyond the few checks named, symlinks, mounts, RCU walk.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.fs.file import fdget_raw
from forklab.fs.file_table import alloc_empty_file, fput
from forklab.fs.fs_struct import current_umask
from forklab.fs.inode import inode_owner_or_capable
from forklab.fs.namespace import current_mnt_root
from forklab.fs.proc.root import proc_names_of, proc_openat
from forklab.fs.vfs import PATH_MAX, dirname, join
from forklab.include.linux.dcache import is_dir, is_reg
from forklab.include.linux.fs import MAY_WRITE
from forklab.include.linux.fs_struct import Path
from forklab.uapi import AT_FDCWD, O_CREAT, O_DIRECTORY, O_EXCL, O_NOATIME, O_PATH, O_TRUNC

if TYPE_CHECKING:
    from forklab.fs.vfs import Vfs
    from forklab.include.linux.fdtable import File, Inode
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


def getname(filename: str) -> str:
    """Copy the pathname in: ENAMETOOLONG at PATH_MAX, ENOENT when empty (fs/namei.c:127-240)."""
    filename = filename.split("\0", 1)[0]  # strncpy_from_user stops at the NUL
    if len(filename.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise kerr(errno.ENAMETOOLONG, "pathname is PATH_MAX bytes or longer", "fs/namei.c:185")
    if not filename:
        raise kerr(errno.ENOENT, "empty pathname", "fs/namei.c:196")
    return filename


def dotdot(cur: str, root: str) -> str:
    """``..``: stay at the task's root, else go to the parent (fs/namei.c:1568-1590 follow_dotdot)."""
    if cur == root:
        return cur
    return dirname(cur)


def _last_component(cur: str, root: str, last: str) -> str:
    """The path a last component names: itself, its dir for '.', the parent for '..' (fs/namei.c:1791 handle_dots)."""
    if last in ("", "."):
        return cur
    if last == "..":
        return dotdot(cur, root)
    return join(cur, last)


def path_init(k: KernelState, t: Task, dfd: int, name: str) -> tuple[str, str]:
    """Start of a walk: (root, start dir); a relative name with a dfd needs a directory fd (fs/namei.c:2287-2370)."""
    if t.fs is None:
        raise kerr(errno.ENOENT, "task has no fs_struct", "fs/namei.c:2290")
    root = t.fs.root.dentry
    if name.startswith("/"):
        return root, root
    if dfd == AT_FDCWD:
        return root, t.fs.pwd.dentry
    f = fdget_raw(t, dfd)
    if f is None:
        raise kerr(errno.EBADF, "dirfd is not an open file descriptor", "fs/namei.c:2340")
    if not is_dir(f.f_inode):
        raise kerr(errno.ENOTDIR, "dirfd does not refer to a directory", "fs/namei.c:2346")
    return root, f.f_path.dentry


def user_path_at(k: KernelState, t: Task, dfd: int, filename: str, directory: bool) -> tuple[str, Inode]:
    """Look a name up to its inode: ENOENT, ENOTDIR (fs/namei.c:2743-2748 user_path_at_empty)."""
    name = getname(filename)
    root, start = path_init(k, t, dfd, name)
    vfs: Vfs = k.vfs
    cur, last, trailing = vfs.walk(root, start, name)
    target = _last_component(cur, root, last)
    inode = vfs.lookup(target)
    if inode is None:
        raise kerr(errno.ENOENT, f"no such file or directory: {target}", "fs/namei.c:1697")
    if (directory or trailing) and not is_dir(inode):
        raise kerr(errno.ENOTDIR, f"{target} is not a directory", "fs/namei.c:2261-2266")
    return target, inode


def may_open(t: Task, inode: Inode, acc_mode: int, flag: int) -> int:
    """Type checks of the final inode; returns the flags (O_TRUNC dropped for devices) (fs/namei.c:3021-3067)."""
    if inode.kind == "dir":
        if acc_mode & MAY_WRITE:
            raise kerr(errno.EISDIR, "a directory cannot be opened for writing", "fs/namei.c:3035")
    elif inode.kind == "chr":
        flag &= ~O_TRUNC
    if flag & O_NOATIME and not inode_owner_or_capable(t, inode):
        raise kerr(errno.EPERM, "O_NOATIME on a file the caller does not own", "fs/namei.c:3064")
    return flag


def handle_truncate(inode: Inode) -> None:
    """O_TRUNC of an existing regular file: size 0 (fs/namei.c:3069-3089)."""
    inode.data.clear()
    inode.i_size = 0


def lookup_open_create(k: KernelState, t: Task, parent: str, target: str, mode: int) -> Inode:
    """O_CREAT of a missing name: d_alloc, then ->create with mode & ~umask (fs/namei.c:3202-3327)."""
    vfs: Vfs = k.vfs
    if k.fault.should_fail("lookup_open:d_alloc_parallel"):
        raise kerr(errno.ENOMEM, "dentry allocation failed", "fs/namei.c:3222-3224")
    mode &= ~current_umask(t)
    if parent in vfs.no_create:
        raise kerr(errno.EACCES, "the directory has no ->create (procfs)", "fs/namei.c:3305-3307")
    if k.fault.should_fail("shmem_mknod:shmem_get_inode"):
        raise kerr(errno.ENOSPC, "inode allocation failed", "mm/shmem.c:2883-2885")
    uid = t.cred.fsuid if t.cred is not None else 0
    inode = vfs.create(target, mode=mode, uid=uid)
    inode.i_gid = t.cred.fsgid if t.cred is not None else 0
    return inode


def do_last(k: KernelState, t: Task, root: str, cur: str, last: str, trailing: bool,
            f: File, open_flag: int, acc_mode: int, mode: int) -> None:
    """The final component of an open: lookup or create, the type checks, open and truncate (fs/namei.c:3332-3505)."""
    from forklab.fs.open import vfs_open  # import cycle: fs/open.py imports this module

    vfs: Vfs = k.vfs
    will_truncate = bool(open_flag & O_TRUNC)
    directory = bool(open_flag & O_DIRECTORY)
    created = False
    if last in ("", ".", ".."):  # LAST_ROOT/LAST_DOT/LAST_DOTDOT: handle_dots, finish_open
        target = _last_component(cur, root, last)
        inode = vfs.lookup(target)
        if inode is None:
            raise kerr(errno.ENOENT, f"no such directory: {target}", "fs/namei.c:1564")
    else:
        if not open_flag & O_CREAT:
            if trailing:
                directory = True  # LOOKUP_FOLLOW | LOOKUP_DIRECTORY (fs/namei.c:3358-3359)
        elif trailing:
            raise kerr(errno.EISDIR, "O_CREAT with a trailing slash", "fs/namei.c:3384")
        target = join(cur, last)
        found = vfs.lookup(target)
        if found is None:
            if not open_flag & O_CREAT:
                raise kerr(errno.ENOENT, f"no such file or directory: {target}", "fs/namei.c:3175")
            inode = lookup_open_create(k, t, cur, target, mode)
            created = True
        else:
            inode = found
            if open_flag & (O_EXCL | O_CREAT) == (O_EXCL | O_CREAT):
                raise kerr(errno.EEXIST, f"{target} exists and O_CREAT|O_EXCL was given", "fs/namei.c:3449")
    if created:
        open_flag &= ~O_TRUNC
        will_truncate = False
        acc_mode = 0
    else:
        if open_flag & O_CREAT and is_dir(inode):
            raise kerr(errno.EISDIR, "O_CREAT on an existing directory", "fs/namei.c:3465-3467")
        if directory and not is_dir(inode):
            raise kerr(errno.ENOTDIR, f"{target} is not a directory", "fs/namei.c:3474-3475")
        if not is_reg(inode):
            will_truncate = False
    open_flag = may_open(t, inode, acc_mode, open_flag)
    vfs_open(t, Path(target, current_mnt_root(t)), inode, f)
    if will_truncate:
        handle_truncate(inode)


def do_o_path(k: KernelState, t: Task, root: str, cur: str, last: str, trailing: bool, f: File, open_flag: int) -> None:
    """O_PATH: look the name up and open it without access (fs/namei.c:3578-3588)."""
    from forklab.fs.open import vfs_open  # import cycle: fs/open.py imports this module

    target = _last_component(cur, root, last)
    inode = k.vfs.lookup(target)
    if inode is None:
        raise kerr(errno.ENOENT, f"no such file or directory: {target}", "fs/namei.c:1697")
    if (open_flag & O_DIRECTORY or trailing) and not is_dir(inode):
        raise kerr(errno.ENOTDIR, f"{target} is not a directory", "fs/namei.c:2324")
    vfs_open(t, Path(target, current_mnt_root(t)), inode, f)


def path_openat(k: KernelState, t: Task, dfd: int, name: str, open_flag: int, acc_mode: int, mode: int) -> File:
    """Allocate the file first, then walk and open; on error the file is put (fs/namei.c:3590-3627)."""
    f = alloc_empty_file(k, open_flag)
    try:
        root, start = path_init(k, t, dfd, name)
        proc_names = proc_names_of(k, root, start, name)
        if proc_names is not None:  # below /proc: procfs's lookups, on the model's state (fs/proc/root.py)
            proc_openat(k, t, root, proc_names, name.endswith("/"), f, open_flag, acc_mode, mode)
            return f
        cur, last, trailing = k.vfs.walk(root, start, name)
        if open_flag & O_PATH:
            do_o_path(k, t, root, cur, last, trailing, f, open_flag)
        else:
            do_last(k, t, root, cur, last, trailing, f, open_flag, acc_mode, mode)
    except OSError:
        fput(k, f)
        raise
    return f


# --- unlink and mkdir ----------------------------------------------------------------------------------


def filename_parentat(k: KernelState, t: Task, dfd: int, filename: str) -> tuple[str, str, str, bool]:
    """Walk to the parent of the last component: (root, parent directory, last, trailing slash); names below /proc
    are procfs's, which the model's unlink and mkdir do not reach (fs/namei.c:2383-2407)."""
    name = getname(filename)
    root, start = path_init(k, t, dfd, name)
    if proc_names_of(k, root, start, name):
        raise Unmodelled(f"{name}: unlink and mkdir below /proc are not modelled")
    cur, last, trailing = k.vfs.walk(root, start, name)
    return root, cur, last, trailing


def do_unlinkat(k: KernelState, t: Task, dfd: int, filename: str) -> int:
    """unlink: EISDIR for '.', '..' or '/', ENOENT, EISDIR or ENOTDIR with a trailing slash, then vfs_unlink
    (fs/namei.c:4100-4169)."""
    _root, cur, last, trailing = filename_parentat(k, t, dfd, filename)
    if last in ("", ".", ".."):
        raise kerr(errno.EISDIR, f"{filename!r} does not name a file to unlink", "fs/namei.c:4116")
    target = join(cur, last)
    inode = k.vfs.lookup(target)
    if trailing or inode is None:  # slashes:
        if inode is None:
            raise kerr(errno.ENOENT, f"no such file or directory: {target}", "fs/namei.c:4163")
        if is_dir(inode):
            raise kerr(errno.EISDIR, f"{target} is a directory", "fs/namei.c:4165")
        raise kerr(errno.ENOTDIR, f"{target} is not a directory", "fs/namei.c:4167")
    vfs_unlink(k, cur, target, inode)
    return 0


def vfs_unlink(k: KernelState, parent: str, target: str, inode: Inode) -> None:
    """may_delete's EISDIR for a directory, EPERM where the directory has no ->unlink, then shmem_unlink: the name
    goes, the inode lives on in its open files with one link less (fs/namei.c:4053-4092, 2865-2904)."""
    if is_dir(inode):
        raise kerr(errno.EISDIR, f"{target} is a directory: unlink removes files", "fs/namei.c:2896")
    if parent in k.vfs.no_create:
        raise kerr(errno.EPERM, "the directory has no ->unlink (procfs)", "fs/namei.c:4062")
    del k.vfs.inodes[target]  # shmem_unlink: drop_nlink, dput (mm/shmem.c:2979-2991)
    k.vfs.children[parent].discard(target)
    inode.nlink -= 1
    if k.listeners:
        k.trace("unlink", "mm/shmem.c:2979", f"{target} unlinked, inode {inode.i_ino} has {inode.nlink} links")


def do_mkdirat(k: KernelState, t: Task, dfd: int, filename: str, mode: int) -> int:
    """mkdir: filename_create's EEXIST (an existing name, or '.', '..', '/'), mode & ~umask, then vfs_mkdir
    (fs/namei.c:3896-3919, 3675-3737)."""
    _root, cur, last, _trailing = filename_parentat(k, t, dfd, filename)
    if last in ("", ".", ".."):
        raise kerr(errno.EEXIST, f"{filename!r} names an existing directory", "fs/namei.c:3700")
    target = join(cur, last)
    if k.vfs.lookup(target) is not None:
        raise kerr(errno.EEXIST, f"{target} already exists", "fs/namei.c:3716")
    vfs_mkdir(k, t, cur, target, mode & ~current_umask(t))
    return 0


def vfs_mkdir(k: KernelState, t: Task, parent: str, target: str, mode: int) -> None:
    """EPERM where the directory has no ->mkdir, mode & (S_IRWXUGO|S_ISVTX), then shmem_mkdir (fs/namei.c:3870-3894;
    mm/shmem.c:2932-2941)."""
    if parent in k.vfs.no_create:
        raise kerr(errno.EPERM, "the directory has no ->mkdir (procfs)", "fs/namei.c:3879")
    if k.fault.should_fail("shmem_mknod:shmem_get_inode"):
        raise kerr(errno.ENOSPC, "inode allocation failed", "mm/shmem.c:2883-2885")
    cred = t.cred
    inode = k.vfs.mkdir(target, mode & 0o1777, uid=cred.fsuid if cred is not None else 0)
    inode.i_gid = cred.fsgid if cred is not None else 0
