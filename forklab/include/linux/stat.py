"""struct kstat (include/linux/stat.h), what stat(2) copies out as struct stat, with the fields the model has."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Kstat:
    """struct kstat (include/linux/stat.h:19-44), reduced: the model's inodes have no timestamps (0, the epoch), no
    blocks and one block size (tmpfs's PAGE_SIZE); see docs/model.md."""

    dev: int
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    size: int
    blksize: int
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
