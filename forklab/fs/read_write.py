"""lseek, read and write (fs/read_write.c) on the model's files.

The offset lives in the ``struct file`` (``f_pos``), not in the fd: two fds made by dup, or
the same fd in a parent and a child after fork, share one open file description and so move
one offset. ``ksys_read``/``ksys_write`` work on a copy of ``f_pos`` and store it back only on
success (fs/read_write.c:576-618). With O_APPEND every write first moves to the end of the
file (generic_write_checks, mm/filemap.c:2930-2931).

Access: an fd not opened for reading (writing) gives EBADF; a file whose operations lack
read (write) -- a pidfd -- gives EINVAL (fs/read_write.c:450-453, 546-549); reading a
directory is EISDIR (generic_read_dir, fs/libfs.c). lseek on a file without llseek (a pidfd)
is ESPIPE; /dev/null and /dev/zero always seek to 0 (null_lseek); directories accept only
SEEK_SET and SEEK_CUR (dcache_dir_lseek). Regular files use generic_file_llseek_size,
including SEEK_DATA and SEEK_HOLE (the model's files have no holes).

Pipes are stream files (FMODE_STREAM, set by ``stream_open``): ``file_ppos`` is NULL for
them, so read and write neither use nor move ``f_pos`` and ``rw_verify_area`` checks only the
count (fs/read_write.c:365-401, 570-574); the data moves through ``forklab.fs.pipe``'s
``pipe_read``/``pipe_write``, which may also block (``Blocked``) or fail with EAGAIN/EPIPE.

Not modelled: RLIMIT_FSIZE (SIGXFSZ/EFBIG), s_maxbytes, mandatory locks.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.fs.file import fdget
from forklab.fs.libfs import dcache_dir_lseek
from forklab.fs.pipe import pipe_read, pipe_write
from forklab.fs.vfs import DEV_ZERO
from forklab.include.linux.fdtable import (
    FMODE_CAN_READ,
    FMODE_CAN_WRITE,
    FMODE_LSEEK,
    FMODE_READ,
    FMODE_STREAM,
    FMODE_WRITE,
    File,
)
from forklab.include.linux.types import _s64
from forklab.uapi import O_APPEND, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

SEEK_MAX = SEEK_HOLE  # include/uapi/linux/fs.h:44-47
MAX_LFS_FILESIZE = (1 << 63) - 1  # include/linux/fs.h:1001 (64-bit)
MAX_RW_COUNT = 0x7FFFFFFF & ~0xFFF  # include/linux/fs.h:2351: INT_MAX & PAGE_MASK


def vfs_setpos(file: File, offset: int, maxsize: int) -> int:
    """Set f_pos; EINVAL if negative or past maxsize (fs/read_write.c:54-66)."""
    if offset < 0:
        raise kerr(errno.EINVAL, "the resulting file offset would be negative", "fs/read_write.c:57")
    if offset > maxsize:
        raise kerr(errno.EINVAL, "the resulting file offset is too large", "fs/read_write.c:59")
    file.f_pos = offset
    return offset


def generic_file_llseek_size(file: File, offset: int, whence: int, maxsize: int, eof: int) -> int:
    """SEEK_SET/CUR/END/DATA/HOLE on a sized file (fs/read_write.c:85-131)."""
    if whence == SEEK_END:
        offset = _s64(offset + eof)
    elif whence == SEEK_CUR:
        if offset == 0:
            return file.f_pos
        return vfs_setpos(file, _s64(file.f_pos + offset), maxsize)
    elif whence == SEEK_DATA:
        if offset & ((1 << 64) - 1) >= eof:
            raise kerr(errno.ENXIO, "SEEK_DATA at or past the end of the file", "fs/read_write.c:117")
    elif whence == SEEK_HOLE:
        if offset & ((1 << 64) - 1) >= eof:
            raise kerr(errno.ENXIO, "SEEK_HOLE at or past the end of the file", "fs/read_write.c:125")
        offset = eof
    return vfs_setpos(file, offset, maxsize)


def vfs_llseek(file: File, offset: int, whence: int) -> int:
    """Dispatch to the file's llseek; ESPIPE without one (fs/read_write.c:291-301)."""
    if not file.f_mode & FMODE_LSEEK:
        raise kerr(errno.ESPIPE, "the file cannot seek (no ->llseek)", "fs/read_write.c:232")
    inode = file.f_inode
    if inode.kind == "chr":
        file.f_pos = 0  # null_lseek / zero_lseek (drivers/char/mem.c:769-772)
        return 0
    if inode.kind == "dir":
        return dcache_dir_lseek(file, offset, whence)
    return generic_file_llseek_size(file, offset, whence, MAX_LFS_FILESIZE, inode.i_size)


def ksys_lseek(k: KernelState, t: Task, fd: int, offset: int, whence: int) -> int:
    """lseek(2): EBADF, EINVAL for whence > SEEK_MAX, else vfs_llseek (fs/read_write.c:304-320)."""
    f = fdget(t, fd)
    if f is None:
        raise kerr(errno.EBADF, "fd is not an open file descriptor", "fs/read_write.c:309")
    whence &= 0xFFFFFFFF
    if whence > SEEK_MAX:
        raise kerr(errno.EINVAL, "whence is not a SEEK_* value", "fs/read_write.c:312")
    return vfs_llseek(f, _s64(offset), whence)


def rw_verify_area(file: File, pos: int, count: int) -> None:
    """EINVAL for a negative count, position, or position+count (fs/read_write.c:365-401)."""
    if _s64(count) < 0:
        raise kerr(errno.EINVAL, "count does not fit in ssize_t", "fs/read_write.c:372")
    if pos < 0 or _s64(pos + count) < 0:
        raise kerr(errno.EINVAL, "the file position would be negative", "fs/read_write.c:383")


def __vfs_read(file: File, count: int, pos: int) -> tuple[bytes, int]:
    """The file's f_op->read (fs/read_write.c:421-430): shmem_file_read_iter, read_null, read_iter_zero (mm/shmem.c, drivers/char/mem.c:669, 705)."""
    inode = file.f_inode
    if inode.kind == "dir":
        raise kerr(errno.EISDIR, "read on a directory", "fs/libfs.c:222-225")
    if inode.kind == "chr":
        return (bytes(count) if inode.i_rdev == DEV_ZERO else b""), pos
    data = bytes(inode.data[pos:pos + count]) if pos < len(inode.data) else b""
    return data, pos + len(data)


def vfs_read(file: File, count: int, pos: int) -> tuple[bytes, int]:
    """Access checks, then the file's read; returns (data, new position) (fs/read_write.c:446-470)."""
    if not file.f_mode & FMODE_READ:
        raise kerr(errno.EBADF, "fd is not open for reading", "fs/read_write.c:451")
    if not file.f_mode & FMODE_CAN_READ:
        raise kerr(errno.EINVAL, "the file has no read operation", "fs/read_write.c:453")
    rw_verify_area(file, pos, count)
    return __vfs_read(file, min(count, MAX_RW_COUNT), pos)


def __vfs_write(file: File, data: bytes, pos: int) -> int:
    """The file's f_op->write (fs/read_write.c:490-499): generic_file_write_iter, write_null/write_zero (mm/filemap.c:3439, drivers/char/mem.c:675)."""
    inode = file.f_inode
    if inode.kind == "chr":
        return pos  # write_null / write_zero swallow everything
    if file.f_flags & O_APPEND:
        pos = len(inode.data)  # generic_write_checks: IOCB_APPEND (mm/filemap.c:2930-2931)
    if pos > len(inode.data):
        inode.data.extend(bytes(pos - len(inode.data)))
    inode.data[pos:pos + len(data)] = data
    inode.i_size = len(inode.data)
    return pos + len(data)


def vfs_write(file: File, data: bytes, pos: int) -> tuple[int, int]:
    """Access checks, then the file's write; returns (bytes written, new position) (fs/read_write.c:542-568)."""
    if not file.f_mode & FMODE_WRITE:
        raise kerr(errno.EBADF, "fd is not open for writing", "fs/read_write.c:547")
    if not file.f_mode & FMODE_CAN_WRITE:
        raise kerr(errno.EINVAL, "the file has no write operation", "fs/read_write.c:549")
    rw_verify_area(file, pos, len(data))
    data = data[:MAX_RW_COUNT]
    return len(data), __vfs_write(file, data, pos)


def _stream_checks(file: File, count: int, write: bool) -> int:
    """vfs_read/vfs_write's access checks with a NULL ppos; returns the clamped count (fs/read_write.c:446-457, 542-553)."""
    if write:
        if not file.f_mode & FMODE_WRITE:
            raise kerr(errno.EBADF, "fd is not open for writing", "fs/read_write.c:547")
        if not file.f_mode & FMODE_CAN_WRITE:
            raise kerr(errno.EINVAL, "the file has no write operation", "fs/read_write.c:549")
    else:
        if not file.f_mode & FMODE_READ:
            raise kerr(errno.EBADF, "fd is not open for reading", "fs/read_write.c:451")
        if not file.f_mode & FMODE_CAN_READ:
            raise kerr(errno.EINVAL, "the file has no read operation", "fs/read_write.c:453")
    if _s64(count) < 0:
        raise kerr(errno.EINVAL, "count does not fit in ssize_t", "fs/read_write.c:372")
    return min(count, MAX_RW_COUNT)


def ksys_read(k: KernelState, t: Task, fd: int, count: int) -> bytes:
    """read(2): read at the shared f_pos and advance it; a stream (pipe) has no position (fs/read_write.c:576-593)."""
    f = fdget(t, fd)
    if f is None:
        raise kerr(errno.EBADF, "fd is not an open file descriptor", "fs/read_write.c:579")
    if f.f_mode & FMODE_STREAM:  # file_ppos() is NULL (fs/read_write.c:571-574)

        return pipe_read(k, t, f, _stream_checks(f, count, write=False))
    data, pos = vfs_read(f, count, f.f_pos)
    f.f_pos = pos
    return data


def ksys_write(k: KernelState, t: Task, fd: int, data: bytes) -> int:
    """write(2): write at the shared f_pos (at EOF with O_APPEND) and advance it; pipes are streams (fs/read_write.c:600-618)."""
    f = fdget(t, fd)
    if f is None:
        raise kerr(errno.EBADF, "fd is not an open file descriptor", "fs/read_write.c:603")
    if f.f_mode & FMODE_STREAM:  # file_ppos() is NULL (fs/read_write.c:571-574)

        n = _stream_checks(f, len(data), write=True)
        return pipe_write(k, t, f, bytes(data[:n]))
    written, pos = vfs_write(f, bytes(data), f.f_pos)
    f.f_pos = pos
    return written
