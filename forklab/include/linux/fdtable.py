"""files_struct, struct file and a minimal inode (include/linux/fdtable.h, include/linux/fs.h)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forklab.include.linux.fs_struct import Path
from forklab.include.linux.types import U32

if TYPE_CHECKING:
    from forklab.include.linux.pid import Pid
    from forklab.include.linux.sched import Task

NR_OPEN_DEFAULT = 64  # include/linux/fdtable.h:23
SYSCTL_NR_OPEN = 1024 * 1024  # fs/file.c:22
NR_FILE = 8192  # include/uapi/linux/fs.h:37: the boot default of files_stat.max_files

# f_mode bits (include/linux/fs.h:95-180)
FMODE_READ = 0x1
FMODE_WRITE = 0x2
FMODE_LSEEK = 0x4
FMODE_PREAD = 0x8
FMODE_PWRITE = 0x10
FMODE_EXEC = 0x20
FMODE_ATOMIC_POS = 0x8000
FMODE_PATH = 0x4000
FMODE_CAN_READ = 0x20000
FMODE_CAN_WRITE = 0x40000
FMODE_OPENED = 0x80000
FMODE_CREATED = 0x100000
FMODE_STREAM = 0x200000

# i_mode file types (include/uapi/linux/stat.h:9-20)
S_IFMT = 0o170000
S_IFREG = 0o100000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000
S_ISUID = 0o4000
S_ISGID = 0o2000
S_IXGRP = 0o010
S_IXUGO = 0o111

PIPE_DEF_BUFFERS = 16  # include/linux/pipe_fs_i.h:5
PIPE_BUF_FLAG_PACKET = 0x08  # include/linux/pipe_fs_i.h:10


@dataclass(slots=True, eq=False)
class PipeBuffer:
    """struct pipe_buffer (include/linux/pipe_fs_i.h:21-27): one page of a pipe's ring.

    ``data`` holds the unread bytes ``[offset, offset + len)`` of the page; ``offset`` is kept
    because a write merges into the last buffer only while ``offset + len + n <= PAGE_SIZE``.
    """

    data: bytearray = field(default_factory=bytearray)
    offset: int = 0
    flags: int = 0


@dataclass(slots=True, eq=False)
class PipeInodeInfo:
    """struct pipe_inode_info (include/linux/pipe_fs_i.h:49-66): the ring, the counts, the wait queues.

    ``bufs`` holds the occupied slots from tail to head (``len(bufs)`` is ``head - tail``);
    ``readers``/``writers`` count the open struct files of each direction and ``files`` all of
    them (fs/pipe.c:699-737). ``rd_wait``/``wr_wait`` are the tasks asleep in pipe_read and
    pipe_write, in queueing order (a wait_queue_head_t's list; an OrderedDict used as an ordered
    set, so that queueing, the membership test and waking the first are O(1)). ``tmp_page`` is
    the one spare page a pipe caches between writes (fs/pipe.c:127-141, 509-519).
    """

    bufs: list[PipeBuffer] = field(default_factory=list)
    max_usage: int = PIPE_DEF_BUFFERS
    ring_size: int = PIPE_DEF_BUFFERS
    readers: int = 0
    writers: int = 0
    files: int = 0
    r_counter: int = 1
    w_counter: int = 1
    tmp_page: bool = False
    rd_wait: OrderedDict[Task, None] = field(default_factory=OrderedDict)
    wr_wait: OrderedDict[Task, None] = field(default_factory=OrderedDict)


@dataclass(slots=True, eq=False)
class Inode:
    """struct inode, reduced: a name, a size and, for shmem, its page cache (``i_pages``: pgoff -> pfn)."""

    i_ino: int
    name: str
    i_size: int = 0
    kind: str = "reg"
    i_pages: dict[int, int] = field(default_factory=dict)
    nlink: int = 1
    i_count: int = 1
    # forklab.fs.vfs: mode bits (type | permissions), owner, device number, file contents
    i_mode: int = S_IFREG | 0o644
    i_uid: int = 0
    i_gid: int = 0
    i_rdev: int = 0
    data: bytearray = field(default_factory=bytearray)
    # a pipe's inode->i_pipe (include/linux/fs.h:716); None for every other inode
    pipe: PipeInodeInfo | None = None


@dataclass(slots=True, eq=False)
class File:
    """struct file (include/linux/fs.h:935-980): one open file description, shared by dup and fork."""

    f_inode: Inode
    f_flags: int = 0
    f_mode: int = 0
    f_pos: int = 0
    f_count: int = 1
    private_data: Pid | None = None
    f_path: Path = Path("")  # the open pathname (anon files: "anon_inode:[name]")

    def __repr__(self) -> str:
        return f"<file {self.f_inode.name} pos={self.f_pos} count={self.f_count}>"


NO_FDS: frozenset[int] = frozenset()  # the empty close_on_exec set, one object for every fd table


@dataclass(slots=True, eq=False)
class Fdtable:
    """struct fdtable (include/linux/fdtable.h:27-34): the fd array and its two bitmaps.

    ``open_fds`` holds reserved fds too (get_unused_fd_flags before fd_install), so
    ``fd[n] is None`` with ``n in open_fds`` is a reserved, not yet installed, fd.
    """

    max_fds: int = NR_OPEN_DEFAULT
    fd: list[File | None] = field(default_factory=lambda: [None] * NR_OPEN_DEFAULT)
    close_on_exec: frozenset[int] = NO_FDS  # replaced, never changed (fs/file.py): the empty one is shared
    open_fds: set[int] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class FilesStruct:
    """struct files_struct (include/linux/fdtable.h:48-64): an fd table, shared by CLONE_FILES."""

    count: int = 1
    fdt: Fdtable = field(default_factory=Fdtable)
    next_fd: int = 0


def fcheck_files(files: FilesStruct, fd: int) -> File | None:
    """The file at ``fd``, or None; no reference taken (include/linux/fdtable.h:82-98)."""
    fd &= U32
    fdt = files.fdt
    if fd < fdt.max_fds:
        return fdt.fd[fd]
    return None
