"""files_struct, struct file and a minimal inode (include/linux/fdtable.h, include/linux/fs.h)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forklab.include.linux.fs_struct import Path

if TYPE_CHECKING:
    from forklab.include.linux.pid import Pid

NR_OPEN_DEFAULT = 64  # include/linux/fdtable.h:23
SYSCTL_NR_OPEN = 1024 * 1024  # fs/file.c:22
NR_FILE = 8192  # include/uapi/linux/fs.h:37: the boot default of files_stat.max_files

# f_mode bits (include/linux/fs.h:95-180)
FMODE_READ = 0x1
FMODE_WRITE = 0x2
FMODE_LSEEK = 0x4
FMODE_PREAD = 0x8
FMODE_PWRITE = 0x10
FMODE_ATOMIC_POS = 0x8000
FMODE_PATH = 0x4000
FMODE_CAN_READ = 0x20000
FMODE_CAN_WRITE = 0x40000
FMODE_OPENED = 0x80000
FMODE_CREATED = 0x100000

# i_mode file types (include/uapi/linux/stat.h:9-20)
S_IFMT = 0o170000
S_IFREG = 0o100000
S_IFDIR = 0o040000
S_IFCHR = 0o020000


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
    i_rdev: int = 0
    data: bytearray = field(default_factory=bytearray)


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


@dataclass(slots=True, eq=False)
class Fdtable:
    """struct fdtable (include/linux/fdtable.h:27-34): the fd array and its two bitmaps.

    ``open_fds`` holds reserved fds too (get_unused_fd_flags before fd_install), so
    ``fd[n] is None`` with ``n in open_fds`` is a reserved, not yet installed, fd.
    """

    max_fds: int = NR_OPEN_DEFAULT
    fd: list[File | None] = field(default_factory=lambda: [None] * NR_OPEN_DEFAULT)
    close_on_exec: set[int] = field(default_factory=set)
    open_fds: set[int] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class FilesStruct:
    """struct files_struct (include/linux/fdtable.h:48-64): an fd table, shared by CLONE_FILES."""

    count: int = 1
    fdt: Fdtable = field(default_factory=Fdtable)
    next_fd: int = 0
