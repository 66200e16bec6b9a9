"""The model's tiny filesystem: a tree of directories, regular files and two char devices.

This module has **no kernel analogue**. Linux resolves names through the dcache, mounts and
per-filesystem inode operations (fs/namei.c, fs/dcache.c, mm/shmem.c, drivers/char/mem.c);
forklab needs only what process creation touches: something to ``open``, ``chdir`` into and
``chroot`` to, and files whose offsets are shared between fds and processes. So the whole
system is one tmpfs-like tree, keyed by absolute normalized pathnames (``"/tmp/a"``), held by
the ``Kernel`` as ``k.vfs``. Pathnames are global: a task's root (``t.fs.root.dentry``) and
cwd (``t.fs.pwd.dentry``) are pathnames in this tree, and a name a task passes is interpreted
under its root, so after ``chroot("/tmp")`` the name ``/a`` is the tree's ``/tmp/a``.

Walking follows fs/namei.c ``link_path_walk`` closely enough that the errno of every failing
lookup is the kernel's: a missing intermediate component is ENOENT, an intermediate that is not
a directory ENOTDIR, a component longer than NAME_MAX ENAMETOOLONG (shmem ``simple_lookup``),
and ``..`` at the task's root stays at the root (``follow_dotdot``), while ``..`` from a cwd
outside the root (chroot without chdir) climbs freely, as on Linux.

It also keeps the two fs sysctls and counters the fd code needs: ``nr_files`` and
``max_files`` (``files_stat``, fs/file_table.c: ENFILE) and ``nr_open`` (``sysctl_nr_open``,
fs/file.c:22: EMFILE), and the single anonymous inode behind every pidfd (fs/anon_inodes.c).
There are no permissions (no DAC checks: see docs), no symlinks, no mounts and no hard links.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.dcache import is_dir
from forklab.include.linux.fdtable import (
    NR_FILE,
    S_IFCHR,
    S_IFDIR,
    S_IFREG,
    SYSCTL_NR_OPEN,
    File,
    Inode,
)
from forklab.include.linux.kdev_t import MKDEV

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task

PATH_MAX = 4096  # include/uapi/linux/limits.h:13
NAME_MAX = 255  # include/uapi/linux/limits.h:12


DEV_NULL = MKDEV(1, 3)  # drivers/char/mem.c:870
DEV_ZERO = MKDEV(1, 5)  # drivers/char/mem.c:873


class Vfs:
    """The model's filesystem tree plus the fs-wide file counters (no kernel analogue)."""

    __slots__ = (
        "anon_inode",
        "children",
        "files",
        "inodes",
        "max_files",
        "next_ino",
        "no_create",
        "nr_files",
        "nr_open",
    )

    def __init__(self, max_files: int = NR_FILE, nr_open: int = SYSCTL_NR_OPEN) -> None:
        """Boot the tree: /, /tmp, /dev/{null,zero}, /etc/hostname, /proc, and the anon inode (no kernel analogue)."""
        self.inodes: dict[str, Inode] = {}
        self.children: dict[str, set[str]] = {}
        self.next_ino = 1
        self.nr_files = 0  # percpu nr_files (fs/file_table.c:43)
        self.max_files = max_files  # files_stat.max_files (fs/file_table.c:36)
        self.nr_open = nr_open  # sysctl_nr_open (fs/file.c:22)
        # every struct file alive, by id (what the nr_files counter counts)
        self.files: dict[int, File] = {}
        # directories whose inode has no ->create (procfs): O_CREAT there is EACCES
        self.no_create: set[str] = set()
        self.inodes["/"] = Inode(self._ino(), "/", kind="dir", i_mode=S_IFDIR | 0o755)
        self.children["/"] = set()
        self.mkdir("/tmp", 0o1777)
        self.mkdir("/dev", 0o755)
        self.mkdir("/etc", 0o755)
        self.mkdir("/proc", 0o555)
        self.no_create.add("/proc")
        self.create("/dev/null", kind="chr", mode=0o666, rdev=DEV_NULL)
        self.create("/dev/zero", kind="chr", mode=0o666, rdev=DEV_ZERO)
        hostname = self.create("/etc/hostname", mode=0o644)
        hostname.data[:] = b"forklab\n"
        hostname.i_size = len(hostname.data)
        # anon_inode_init: the one inode every anon file shares (fs/anon_inodes.c:150-165)
        self.anon_inode = Inode(self._ino(), "anon_inode", kind="anon", i_mode=0o600)

    def snapshot_state(self) -> tuple[object, ...]:
        """The state for whole-kernel snapshots, without the ``id()`` keys of ``files`` (not deterministic)."""
        return (self.inodes, self.children, self.next_ino, self.nr_files, self.max_files, self.nr_open,
                list(self.files.values()), self.anon_inode, self.no_create)

    def _ino(self) -> int:
        """The next inode number, deterministically (no kernel analogue: get_next_ino, fs/inode.c:892)."""
        ino = self.next_ino
        self.next_ino += 1
        return ino

    def lookup(self, path: str) -> Inode | None:
        """The inode at absolute normalized ``path`` in the tree, or None (no kernel analogue: d_lookup)."""
        return self.inodes.get(path)

    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0) -> Inode:
        """Add a directory at absolute normalized ``path`` (parent must exist)."""
        inode = self._add(path, Inode(0, _basename(path), kind="dir", i_mode=S_IFDIR | (mode & 0o7777), i_uid=uid))
        self.children[path] = set()
        return inode

    def create(self, path: str, kind: str = "reg", mode: int = 0o644, uid: int = 0, rdev: int = 0) -> Inode:
        """Add a regular file (or ``kind="chr"`` device) at absolute normalized ``path``."""
        ftype = S_IFCHR if kind == "chr" else S_IFREG
        return self._add(path, Inode(0, _basename(path), kind=kind, i_mode=ftype | (mode & 0o7777),
                                     i_uid=uid, i_rdev=rdev))

    def _add(self, path: str, inode: Inode) -> Inode:
        """Link a new inode under its parent: EEXIST, ENOENT, ENOTDIR (no kernel analogue: d_instantiate)."""
        if path in self.inodes:
            raise kerr(errno.EEXIST, f"{path} already exists", "fs/namei.c:3447")
        parent = dirname(path)
        pinode = self.inodes.get(parent)
        if pinode is None:
            raise kerr(errno.ENOENT, f"parent of {path} does not exist", "fs/namei.c:1690")
        if not is_dir(pinode):
            raise kerr(errno.ENOTDIR, f"parent of {path} is not a directory", "fs/namei.c:2252")
        inode.i_ino = self._ino()
        self.inodes[path] = inode
        self.children[parent].add(path)
        return inode

    def resolve(self, t: Task, path: str) -> str:
        """Lexically turn ``path`` as task ``t`` names it into a tree pathname (no existence check).

        Absolute names start at ``t.fs.root.dentry``, relative ones at ``t.fs.pwd.dentry``;
        ``..`` never climbs above the root (fs/namei.c:1568 follow_dotdot).
        """
        from forklab.fs.namei import dotdot  # import cycle: fs/namei.py imports this module

        if t.fs is None:
            raise kerr(errno.ENOENT, "task has no fs_struct", "fs/namei.c:2288")
        root = t.fs.root.dentry
        start = root if path.startswith("/") else t.fs.pwd.dentry
        cur = start
        for comp in path.split("/"):
            if comp in ("", "."):
                continue
            cur = dotdot(cur, root) if comp == ".." else join(cur, comp)
        return cur

    def walk(self, root: str, start: str, name: str) -> tuple[str, str, bool]:
        """link_path_walk: walk all but the last component of ``name`` (fs/namei.c:2168-2268).

        Returns (directory reached, last component, trailing slash). The last component is
        ``""`` when ``name`` is all slashes (LAST_ROOT), else possibly ``.`` or ``..``.
        Raises ENOENT for a missing and ENOTDIR for a non-directory intermediate component.
        """
        cur = root if name.startswith("/") else start
        comps = [c for c in name.split("/") if c]
        trailing = name.endswith("/") and bool(comps)
        if not comps:
            return cur, "", False
        for comp in comps[:-1]:
            cur = self.step(cur, root, comp)
        last = comps[-1]
        if len(last) > NAME_MAX:
            raise kerr(errno.ENAMETOOLONG, "a path component is longer than NAME_MAX", "mm/shmem.c:2677")
        return cur, last, trailing

    def step(self, cur: str, root: str, comp: str) -> str:
        """walk_component for an intermediate component, then the directory check (fs/namei.c:2245-2253)."""
        from forklab.fs.namei import dotdot  # import cycle: fs/namei.py imports this module

        if comp == ".":
            nxt = cur
        elif comp == "..":
            nxt = dotdot(cur, root)
        else:
            if len(comp) > NAME_MAX:
                raise kerr(errno.ENAMETOOLONG, "a path component is longer than NAME_MAX", "mm/shmem.c:2677")
            nxt = join(cur, comp)
            if nxt not in self.inodes:
                raise kerr(errno.ENOENT, f"no such file or directory: {nxt}", "fs/namei.c:1690")
        inode = self.inodes.get(nxt)
        if inode is None or not is_dir(inode):
            raise kerr(errno.ENOTDIR, f"{nxt} is not a directory", "fs/namei.c:2252")
        return nxt

    def register_file(self, f: File) -> None:
        """Count one struct file (percpu_counter_inc(&nr_files), fs/file_table.c:153)."""
        self.nr_files += 1
        self.files[id(f)] = f

    def unregister_file(self, f: File) -> None:
        """Uncount one struct file (file_free: percpu_counter_dec, fs/file_table.c:57)."""
        if self.files.pop(id(f), None) is not None:
            self.nr_files -= 1


def join(directory: str, comp: str) -> str:
    """Append one component to an absolute normalized pathname (no kernel analogue: d_alloc of a child)."""
    return "/" + comp if directory == "/" else f"{directory}/{comp}"


def dirname(path: str) -> str:
    """The parent pathname (no kernel analogue: d_parent)."""
    head = path.rsplit("/", 1)[0]
    return head or "/"


def _basename(path: str) -> str:
    """The last component (no kernel analogue: d_name)."""
    return path.rsplit("/", 1)[-1] or "/"
