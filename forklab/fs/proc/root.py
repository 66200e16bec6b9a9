"""The /proc mount (fs/proc/root.c): opening the files below the model tree's /proc directory.

The model's VFS has a plain /proc directory; the names below it are not in the tree but come
from the model's state. ``proc_names_of`` says whether an open's name reaches below /proc
(walking the components before it as link_path_walk does); ``proc_openat`` then opens the
node ``proc_lookup`` finds: a directory as a directory file (reads are EISDIR; the model has
no getdents), a regular file as a file whose contents are the view's text, and a link by
following it (``self``/``thread-self`` to the reader's directory, ``cwd``, ``root``, ``exe``
and ``fd/N`` of a file in the tree to that path, as nd_jump_link does).

The text is produced when the file is opened (seq_file produces it at the first read), so a
read shows the state at open; the file has no write operation (EINVAL), and O_CREAT of a new
name is EACCES (procfs has no ->create). docs/proc-views.md lists these.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import KernelError, Unmodelled, kerr
from forklab.fs.file_table import fput
from forklab.fs.namespace import current_mnt_root
from forklab.fs.proc.base import PROC_ROOT_LINKS, ProcNode, proc_file_text, proc_lookup, proc_magic_link_target
from forklab.fs.vfs import dirname
from forklab.include.linux.fdtable import FMODE_CAN_WRITE, S_IFDIR, S_IFREG, Inode
from forklab.include.linux.fs_struct import Path
from forklab.uapi import O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

PROC_MOUNT = "/proc"  # where the model's tree has procfs mounted


def _in_proc(path: str) -> list[str] | None:
    """The components below /proc of a tree path under it, or None."""
    if path == PROC_MOUNT:
        return []
    if path.startswith(PROC_MOUNT + "/"):
        return path[len(PROC_MOUNT) + 1:].split("/")
    return None


def proc_names_of(k: KernelState, root: str, start: str, name: str) -> list[str] | None:
    """The components after /proc when the open of ``name`` goes below /proc, else None.

    The components before /proc are walked with the tree's own step (so their ENOENT and
    ENOTDIR are link_path_walk's); a start directory below /proc (an fchdir into one) makes
    every component procfs's.
    """
    cur = root if name.startswith("/") else start
    comps = [c for c in name.split("/") if c]
    below = _in_proc(cur)
    if below is not None and (below or comps):
        return [*below, *comps]
    for i, comp in enumerate(comps[:-1]):
        cur = k.vfs.step(cur, root, comp)
        if cur == PROC_MOUNT:
            return comps[i + 1:]
    return None


def _proc_inode(k: KernelState, node: ProcNode, t: Task) -> Inode:
    """A fresh inode for an opened /proc directory or file (proc_pid_make_inode), the file's text as its data.

    Its size is 0, as procfs reports for its files; owner the task's euid (task_dump_owner for a
    dumpable task; the model does not make a non-dumpable task's files root's).
    """
    uid = node.task.cred.euid if node.task is not None and node.task.cred is not None else 0
    if node.kind == "dir":
        return Inode(0, node.path, kind="dir", i_mode=S_IFDIR | 0o555, i_uid=uid)
    data = proc_file_text(k, node, t).encode("utf-8", "surrogateescape")
    return Inode(0, node.path, i_size=0, kind="reg", i_mode=S_IFREG | 0o444, i_uid=uid, data=bytearray(data))


def _proc_open_lookup(k: KernelState, t: Task, names: list[str], open_flag: int, path: str) -> ProcNode:
    """proc_lookup for an open: a missing last name in an existing directory is EACCES under O_CREAT.

    lookup_open: the dentry is allocated (a fault-injection site), then procfs has no ->create.
    """
    try:
        return proc_lookup(k, t, names, not open_flag & O_NOFOLLOW, path)
    except KernelError as e:
        if e.errno != errno.ENOENT or not open_flag & O_CREAT:
            raise
        parent = proc_lookup(k, t, names[:-1], True, path)  # ENOENT again when the directory itself is missing
        if parent.kind != "dir":
            raise
    if k.fault.should_fail("lookup_open:d_alloc_parallel"):
        raise kerr(errno.ENOMEM, "dentry allocation failed", "fs/namei.c:3222-3224")
    raise kerr(errno.EACCES, "the directory has no ->create (procfs)", "fs/namei.c:3305-3307")


def _jump_target(node: ProcNode, t: Task) -> str:
    """The tree path a cwd, root, exe or fd link of ``node`` leads to (nd_jump_link); Unmodelled for other files."""
    task = node.task
    assert task is not None
    if node.parts[-2] == "fd":
        files = task.files
        fd = int(node.parts[-1])
        f = files.fdt.fd[fd] if files is not None and fd < len(files.fdt.fd) else None
        if f is None or not f.f_path.dentry.startswith("/") or f.f_inode.kind not in ("reg", "dir", "chr"):
            raise Unmodelled(f"{node.path}: opening a pipe, pidfd or shmem object through its /proc fd link")
        return f.f_path.dentry
    if node.parts[-2] == "ns":
        raise Unmodelled(f"{node.path}: opening a namespace file (nsfs)")
    return proc_magic_link_target(task, node.parts[-1], node.path)


def proc_openat(k: KernelState, t: Task, root: str, names: list[str], trailing: bool, f: File, open_flag: int,
                acc_mode: int, mode: int) -> None:
    """Open the /proc node ``names`` leads to into ``f`` as ``t``; the file is put when that is Unmodelled.

    path_openat puts the file on an OSError; Unmodelled is not one, so it is put here.
    """
    try:
        _proc_open_node(k, t, root, names, trailing, f, open_flag, acc_mode, mode)
    except Unmodelled:
        fput(k, f)
        raise


def _proc_open_node(k: KernelState, t: Task, root: str, names: list[str], trailing: bool, f: File, open_flag: int,
                    acc_mode: int, mode: int) -> None:
    """do_last for a /proc node: follow a link, the O_CREAT/O_DIRECTORY checks, may_open, vfs_open (read-only)."""
    from forklab.fs.namei import do_last, may_open  # import cycle: fs/namei.py imports this module
    from forklab.fs.open import vfs_open  # import cycle: fs/open.py imports fs/namei.py, which imports this module

    path = "/proc/" + "/".join(names)
    if open_flag & O_PATH:
        raise Unmodelled(f"{path}: O_PATH below /proc")
    node = _proc_open_lookup(k, t, names, open_flag, path)
    if node.kind == "lnk" and node.parts[-1] in PROC_ROOT_LINKS:
        raise kerr(errno.ELOOP, f"{path} is a symbolic link and O_NOFOLLOW was given", "fs/namei.c:1708")
    if node.kind == "lnk":
        if open_flag & O_NOFOLLOW:
            raise kerr(errno.ELOOP, f"{path} is a symbolic link and O_NOFOLLOW was given", "fs/namei.c:1708")
        target = _jump_target(node, t)
        do_last(k, t, root, dirname(target), target.rsplit("/", 1)[-1] if target != "/" else "", trailing, f,
                open_flag & ~(O_CREAT | O_EXCL), acc_mode, mode)
        return
    if open_flag & (O_EXCL | O_CREAT) == (O_EXCL | O_CREAT):
        raise kerr(errno.EEXIST, f"{path} exists and O_CREAT|O_EXCL was given", "fs/namei.c:3449")
    if open_flag & O_CREAT and node.kind == "dir":
        raise kerr(errno.EISDIR, "O_CREAT on an existing directory", "fs/namei.c:3465-3467")
    if (open_flag & O_DIRECTORY or trailing) and node.kind != "dir":
        raise kerr(errno.ENOTDIR, f"{path} is not a directory", "fs/namei.c:3474-3475")
    inode = _proc_inode(k, node, t)
    may_open(t, inode, acc_mode, open_flag)
    vfs_open(t, Path(node.path, current_mnt_root(t)), inode, f)
    f.f_mode &= ~FMODE_CAN_WRITE  # proc_single_file_operations / seq_file: no ->write


__all__ = ["PROC_MOUNT", "proc_names_of", "proc_openat"]
