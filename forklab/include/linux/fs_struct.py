"""struct fs_struct and struct path (include/linux/fs_struct.h, include/linux/path.h)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Path:
    """struct path: a location, as the absolute pathname in the model's tree and its mount ns root."""

    dentry: str
    mnt_root: str = "/"


@dataclass(slots=True, eq=False)
class FsStruct:
    """struct fs_struct (include/linux/fs_struct.h:9-16): root, cwd and umask, shared by CLONE_FS."""

    users: int = 1
    umask: int = 0o022
    in_exec: int = 0
    root: Path = Path("/")
    pwd: Path = Path("/")
