"""Anonymous inode files (fs/anon_inodes.c): the single inode behind every pidfd.

``anon_inode_getfile`` makes a new ``struct file`` on the one shared anonymous inode created
at boot (``Vfs.anon_inode``, fs/anon_inodes.c:151-164), named ``anon_inode:[pidfd]`` etc. The
file's ``private_data`` is the object it stands for; for a pidfd, the caller (copy_process,
kernel/fork.c:2118-2125) takes the ``struct pid`` reference that the file then owns and that
``pidfd_release`` drops at the last ``fput``. The file has no read, write or llseek
operations, so read/write give EINVAL and lseek ESPIPE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.fs.file_table import alloc_file_pseudo
from forklab.include.linux.fdtable import File
from forklab.uapi import O_ACCMODE, O_NONBLOCK

if TYPE_CHECKING:
    from forklab.include.linux.pid import Pid
    from forklab.state import KernelState


def anon_inode_getfile(k: KernelState, name: str, private_data: Pid | None, flags: int) -> File:
    """A file on the shared anon inode with ``private_data``; ENOMEM/ENFILE (fs/anon_inodes.c:74-105)."""
    inode = k.vfs.anon_inode
    inode.i_count += 1  # ihold (fs/anon_inodes.c:90)
    try:
        file = alloc_file_pseudo(k, inode, f"anon_inode:{name}", flags & (O_ACCMODE | O_NONBLOCK))
    except OSError:
        inode.i_count -= 1  # iput on the error path (fs/anon_inodes.c:102-104)
        raise
    file.private_data = private_data
    if k.listeners:
        k.trace("anon_inode_getfile", "fs/anon_inodes.c:74", f"anon_inode:{name}")
    return file
