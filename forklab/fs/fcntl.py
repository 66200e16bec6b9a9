"""fcntl(2) for the fd-level commands (fs/fcntl.c): F_DUPFD[_CLOEXEC], F_GETFD/F_SETFD, F_GETFL/F_SETFL.

F_GETFD/F_SETFD act on the fd table (FD_CLOEXEC is per fd, so a dup does not share it);
F_GETFL/F_SETFL act on the ``struct file`` (so status flags *are* shared by dup'ed fds and
by parent and child after fork). F_SETFL changes only the bits of SETFL_MASK
(fs/fcntl.c:33): O_APPEND and O_NONBLOCK take effect; O_DIRECT is EINVAL because no file
of the model has ->direct_IO (fs/fcntl.c:58-61); O_NOATIME needs ownership or CAP_FOWNER
(EPERM); the access mode and the other bits are silently kept.

Commands the kernel knows but the model does not implement (locks, owners, leases, notify,
pipe sizes, seals, hints) raise ``Unmodelled``; unknown commands are EINVAL as on Linux.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.fs.file import f_dupfd, fdget_raw, get_close_on_exec, set_close_on_exec
from forklab.fs.inode import inode_owner_or_capable
from forklab.include.linux.fdtable import FMODE_PATH, File
from forklab.uapi import (
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    FD_CLOEXEC,
    O_APPEND,
    O_CLOEXEC,
    O_DIRECT,
    O_NDELAY,
    O_NOATIME,
    O_NONBLOCK,
)

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

SETFL_MASK = O_APPEND | O_NONBLOCK | O_NDELAY | O_DIRECT | O_NOATIME  # fs/fcntl.c:33

# Commands handled by the kernel's do_fcntl that the model leaves out (include/uapi/asm-generic/fcntl.h,
# include/uapi/linux/fcntl.h).
_UNMODELLED = {5: "F_GETLK", 6: "F_SETLK", 7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN", 10: "F_SETSIG",
               11: "F_GETSIG", 15: "F_SETOWN_EX", 16: "F_GETOWN_EX", 17: "F_GETOWNER_UIDS", 36: "F_OFD_GETLK",
               37: "F_OFD_SETLK", 38: "F_OFD_SETLKW", 1024: "F_SETLEASE", 1025: "F_GETLEASE", 1026: "F_NOTIFY",
               1031: "F_SETPIPE_SZ", 1032: "F_GETPIPE_SZ", 1033: "F_ADD_SEALS", 1034: "F_GET_SEALS",
               1035: "F_GET_RW_HINT", 1036: "F_SET_RW_HINT", 1037: "F_GET_FILE_RW_HINT", 1038: "F_SET_FILE_RW_HINT"}


def setfl(t: Task, fd: int, filp: File, arg: int) -> int:
    """F_SETFL: replace the SETFL_MASK bits of f_flags; EINVAL for O_DIRECT, EPERM for O_NOATIME (fs/fcntl.c:35-83)."""
    if arg & O_NOATIME and not filp.f_flags & O_NOATIME and not inode_owner_or_capable(t, filp.f_inode):
        raise kerr(errno.EPERM, "O_NOATIME on a file the caller does not own", "fs/fcntl.c:50")
    if O_NONBLOCK != O_NDELAY and arg & O_NDELAY:
        arg |= O_NONBLOCK
    if arg & O_DIRECT:
        raise kerr(errno.EINVAL, "O_DIRECT on a file without ->direct_IO", "fs/fcntl.c:61")
    filp.f_flags = (arg & SETFL_MASK) | (filp.f_flags & ~SETFL_MASK)
    return 0


def check_fcntl_cmd(cmd: int) -> bool:
    """The commands allowed on an O_PATH fd (fs/fcntl.c:435-446)."""
    return cmd in (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL)


def do_fcntl(k: KernelState, t: Task, fd: int, cmd: int, arg: int) -> int:
    """fcntl(2): EBADF for a bad fd (or a cmd not allowed on O_PATH), then the command (fs/fcntl.c:448-469, 322-433)."""
    filp = fdget_raw(t, fd)
    if filp is None:
        raise kerr(errno.EBADF, "fd is not an open file descriptor", "fs/fcntl.c:453")
    cmd &= 0xFFFFFFFF
    if filp.f_mode & FMODE_PATH and not check_fcntl_cmd(cmd):
        raise kerr(errno.EBADF, "command not allowed on an O_PATH fd", "fs/fcntl.c:457")
    arg &= 0xFFFFFFFFFFFFFFFF  # unsigned long
    if cmd == F_DUPFD:
        return f_dupfd(k, t, arg, filp, 0)
    if cmd == F_DUPFD_CLOEXEC:
        return f_dupfd(k, t, arg, filp, O_CLOEXEC)
    if cmd == F_GETFD:
        return FD_CLOEXEC if get_close_on_exec(t, fd) else 0
    if cmd == F_SETFD:
        set_close_on_exec(t, fd, arg & FD_CLOEXEC)
        return 0
    if cmd == F_GETFL:
        return filp.f_flags
    if cmd == F_SETFL:
        return setfl(t, fd, filp, arg)
    if cmd in _UNMODELLED:
        raise Unmodelled(f"fcntl {_UNMODELLED[cmd]} is not modelled (fs/fcntl.c:322-433)")
    raise kerr(errno.EINVAL, "unknown fcntl command", "fs/fcntl.c:327")
