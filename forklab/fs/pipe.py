"""Anonymous pipes (fs/pipe.c): pipe2, pipe_read, pipe_write, pipe_release.

``do_pipe2`` follows fs/pipe.c:934-1003: flag check (EINVAL), ``create_pipe_files`` (a pipe
inode with a 16-buffer ring, then the write file and its clone, the read file), then two fds
from ``get_unused_fd_flags`` (EMFILE), and ``fd_install`` of both. The two ``struct file``s
share one inode, whose ``pipe`` is the ``pipe_inode_info``; ``readers``/``writers`` count the
struct files of each direction (not the fds: a fork or a dup shares a file, raising its
``f_count`` only), and drop in ``pipe_release`` when the last reference to a file goes
(``fput`` -> ``__fput``, forklab.fs.file_table). That is what makes a forked child's copy of
the write end keep a reader from seeing EOF until both the parent and the child closed it.

The ring (``pipe->bufs``) is a list of page buffers from tail to head, at most ``max_usage``
(16) of them. Writes follow pipe_write exactly in how they fill it: a write whose length is
not a multiple of PAGE_SIZE first merges its tail into the last buffer if that buffer is a
plain one with room (fs/pipe.c:472-490), then every further chunk of up to PAGE_SIZE takes a
new slot; so the capacity in bytes depends on the write sizes (16 one-byte writes fill one
buffer, not 16). O_DIRECT makes packet buffers (PIPE_BUF_FLAG_PACKET): never merged into, and
a read returns at most one packet (fs/pipe.c:344-348).

Sleeping. The model has no scheduler to resume a sleeping syscall, so where pipe_read or
pipe_write would sleep (``wait_event_interruptible_exclusive``), the task is put in
TASK_INTERRUPTIBLE on ``pipe_read``/``pipe_write`` (queued on the pipe's ``rd_wait``/
``wr_wait``) and ``Blocked`` is raised with nothing consumed or written: the caller reissues
the call after the task is woken. A write that makes data available wakes one reader, a read
that frees a full pipe wakes one writer (the kernel's exclusive wake-ups, fs/pipe.c:407-410,
599-612), and releasing the last reader or the last writer wakes every sleeper of both
queues (fs/pipe.c:723-728), which is how a reader asleep on an empty pipe sees EOF.

Errors: EINVAL (pipe2 flags, fs/pipe.c:939), ENFILE (pipe inode or pipe_inode_info
allocation: create_pipe_files returns -ENFILE, fs/pipe.c:907; or files_stat.max_files), ENOMEM
(struct file), EMFILE (RLIMIT_NOFILE); read: EAGAIN on an empty pipe with writers under
O_NONBLOCK (fs/pipe.c:367); write: EPIPE plus SIGPIPE to the caller when no reader is left
(fs/pipe.c:457-458, send_sig: SI_USER from the caller itself), EAGAIN on a full pipe under
O_NONBLOCK (fs/pipe.c:571), ENOMEM when the page allocation fails before anything was written
(fs/pipe.c:516); lseek: ESPIPE (stream_open clears FMODE_LSEEK, fs/open.c:1332-1337).

Deviations: a *blocking* write larger than the free space writes what fits and returns the
short count instead of sleeping for the rest (the model cannot resume a half-done syscall). A
reader or writer that would sleep with an unblocked signal pending fails with -ERESTARTSYS
(fs/pipe.c:401, 576), which the return to user mode turns into EINTR after a handler without
SA_RESTART and into a restart of the call otherwise (arch/x86/kernel/signal.py). Pipe buffer pages are
not ``k.mem`` pages, and the per-user pipe buffer accounting (pipe_user_pages_soft/hard,
fs/pipe.c:757-827), F_SETPIPE_SZ, FIONREAD, poll, splice and named FIFOs are not modelled.
Fallible sites: ``get_pipe_inode:new_inode_pseudo``, ``alloc_pipe_info:kzalloc``,
``alloc_pipe_info:kcalloc`` (all ENFILE), the struct file sites of forklab.fs.file_table
(ENOMEM/ENFILE), ``expand_files``' table allocation, and ``pipe_write:alloc_page`` (ENOMEM).
"""

from __future__ import annotations

import errno
from collections import OrderedDict
from typing import TYPE_CHECKING

from forklab.errors import ERESTARTSYS, Blocked, InternalError, kerr
from forklab.fs.file import fd_install, get_unused_fd_flags, put_unused_fd
from forklab.fs.file_table import alloc_file_clone, alloc_file_pseudo, fput
from forklab.fs.open import stream_open
from forklab.include.linux.fdtable import (
    FMODE_READ,
    FMODE_WRITE,
    PIPE_BUF_FLAG_PACKET,
    S_IFIFO,
    File,
    Inode,
    PipeBuffer,
    PipeInodeInfo,
)
from forklab.include.linux.sched import Task, TaskState, set_current_state_sleep
from forklab.include.linux.types import U32
from forklab.kernel.sched.core import wake_up_process
from forklab.kernel.signal import send_sig, signal_pending
from forklab.uapi import O_CLOEXEC, O_DIRECT, O_NONBLOCK, O_RDONLY, O_WRONLY, PAGE_SIZE, SIGPIPE

if TYPE_CHECKING:
    from forklab.state import KernelState

__all__ = [
    "O_DIRECT",
    "create_pipe_files",
    "do_pipe2",
    "get_pipe_inode",
    "pipe_read",
    "pipe_release",
    "pipe_write",
]

PIPE_READ_WAIT = "pipe_read"
PIPE_WRITE_WAIT = "pipe_write"


def _pipe(file: File) -> PipeInodeInfo:
    """``file->private_data``: the pipe_inode_info of a pipe file (fs/pipe.c:291)."""
    pipe = file.f_inode.pipe
    if pipe is None:
        raise InternalError(f"{file!r} is not a pipe file")
    return pipe


def is_pipe(file: File) -> bool:
    """The file is one end of a pipe (its inode has i_pipe) (fs/pipe.c:1290-1293 get_pipe_info)."""
    return file.f_inode.pipe is not None


# --- creation --------------------------------------------------------------------------


def alloc_pipe_info(k: KernelState) -> PipeInodeInfo:
    """A pipe_inode_info with a PIPE_DEF_BUFFERS ring; ENFILE (as create_pipe_files reports it) (fs/pipe.c:782-827)."""
    if k.fault.should_fail("alloc_pipe_info:kzalloc"):
        raise kerr(errno.ENFILE, "pipe_inode_info allocation failed (create_pipe_files: -ENFILE)", "fs/pipe.c:907")
    if k.fault.should_fail("alloc_pipe_info:kcalloc"):
        raise kerr(errno.ENFILE, "pipe buffer ring allocation failed (create_pipe_files: -ENFILE)", "fs/pipe.c:907")
    return PipeInodeInfo()


def get_pipe_inode(k: KernelState, t: Task) -> Inode:
    """A pipefs inode with its pipe: files 2, one reader and one writer, S_IFIFO|0600 (fs/pipe.c:861-899)."""
    if k.fault.should_fail("get_pipe_inode:new_inode_pseudo"):
        raise kerr(errno.ENFILE, "pipe inode allocation failed (create_pipe_files: -ENFILE)", "fs/pipe.c:907")
    ino = k.vfs._ino()  # get_next_ino: never given back, like the kernel's per-cpu counter
    pipe = alloc_pipe_info(k)  # on failure iput() frees the inode (fs/pipe.c:895-896)
    pipe.files = 2
    pipe.readers = pipe.writers = 1
    fsuid = t.cred.fsuid if t.cred is not None else 0
    return Inode(ino, f"pipe:[{ino}]", kind="pipe", i_mode=S_IFIFO | 0o600, i_uid=fsuid, pipe=pipe)


def create_pipe_files(k: KernelState, t: Task, flags: int) -> tuple[File, File]:
    """The inode, the write file, then its read clone; (read, write) (fs/pipe.c:901-932)."""
    inode = get_pipe_inode(k, t)
    name = inode.name
    try:
        fw = alloc_file_pseudo(k, inode, name, O_WRONLY | (flags & (O_NONBLOCK | O_DIRECT)),
                               can_read=True, can_write=True)
    except OSError:
        inode.pipe = None  # free_pipe_info + iput (fs/pipe.c:914-917)
        raise
    try:
        fr = alloc_file_clone(k, fw, O_RDONLY | (flags & O_NONBLOCK), can_read=True, can_write=True)
    except OSError:
        pipe = inode.pipe
        assert pipe is not None
        pipe.files -= 1  # put_pipe_info, then fput's pipe_release frees the pipe (fs/pipe.c:922-925)
        fput(k, fw)
        raise
    stream_open(fr)
    stream_open(fw)
    return fr, fw


def do_pipe2(k: KernelState, t: Task, flags: int) -> tuple[int, int]:
    """pipe2(2): (read fd, write fd); EINVAL, ENFILE, ENOMEM, EMFILE (fs/pipe.c:934-1003)."""
    flags &= U32  # int flags
    if flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT):
        raise kerr(errno.EINVAL, "pipe2 flags other than O_CLOEXEC, O_NONBLOCK, O_DIRECT", "fs/pipe.c:939")
    fr, fw = create_pipe_files(k, t, flags)
    try:
        fdr = get_unused_fd_flags(k, t, flags)
    except OSError:
        fput(k, fr)  # err_read_pipe (fs/pipe.c:963-965)
        fput(k, fw)
        raise
    try:
        fdw = get_unused_fd_flags(k, t, flags)
    except OSError:
        put_unused_fd(t, fdr)  # err_fdr (fs/pipe.c:961-962)
        fput(k, fr)
        fput(k, fw)
        raise
    fd_install(t, fdr, fr)
    fd_install(t, fdw, fw)
    if k.listeners:
        k.trace("pipe2", "fs/pipe.c:984", f"{fr.f_inode.name}: read fd {fdr}, write fd {fdw}")
    return fdr, fdw


# --- wait queues ------------------------------------------------------------------------------


def _sleep(k: KernelState, t: Task, queue: OrderedDict[Task, None], waits_on: str) -> Blocked:
    """pipe_read's and pipe_write's wait_event_interruptible_exclusive (fs/pipe.c:400, 591): queue ``t``, sleep."""
    queue.setdefault(t, None)  # at the tail, once
    set_current_state_sleep(k, t, TaskState.TASK_INTERRUPTIBLE, waits_on)
    return Blocked(t.pid, waits_on)


def _still_waiting(t: Task, waits_on: str) -> bool:
    return t.waits_on == waits_on and bool(t.state & TaskState.TASK_INTERRUPTIBLE) and not t.exit_state


def _wake(k: KernelState, queue: OrderedDict[Task, None], waits_on: str, nr_exclusive: int) -> None:
    """The pipe's wake-ups (fs/pipe.c:390, 412, 416, 611, 727-728): wake up to ``nr_exclusive`` sleepers of one
    queue (0 = all), dropping stale entries, as __wake_up does (kernel/sched/wait.c:68-120)."""
    woken = 0
    while queue and (nr_exclusive == 0 or woken < nr_exclusive):
        t, _ = queue.popitem(last=False)
        if _still_waiting(t, waits_on):
            wake_up_process(k, t)
            woken += 1


def _interrupted(source: str) -> OSError:
    """-ERESTARTSYS: a signal is pending where the pipe would sleep (fs/pipe.c:401, 576)."""
    return kerr(ERESTARTSYS, "a signal is pending while the pipe would sleep", source)


# --- read and write ---------------------------------------------------------------------------


def _release_buf(pipe: PipeInodeInfo) -> None:
    """anon_pipe_buf_release: keep the page as the one-deep tmp_page cache (fs/pipe.c:127-141)."""
    pipe.bufs.pop(0)
    if not pipe.tmp_page:
        pipe.tmp_page = True


def pipe_read(k: KernelState, t: Task, filp: File, count: int) -> bytes:
    """Take up to ``count`` bytes from the ring; b"" at EOF (no writers); EAGAIN; sleep (fs/pipe.c:287-420)."""
    if count == 0:
        return b""
    pipe = _pipe(filp)
    total_len = count
    was_full = len(pipe.bufs) >= pipe.max_usage
    out = bytearray()
    while True:
        if pipe.bufs:
            buf = pipe.bufs[0]
            chars = min(len(buf.data), total_len)
            out += buf.data[:chars]
            del buf.data[:chars]
            buf.offset += chars
            if buf.flags & PIPE_BUF_FLAG_PACKET:  # a packet is read whole or truncated (fs/pipe.c:344-348)
                total_len = chars
                buf.data.clear()
            if not buf.data:
                _release_buf(pipe)
            total_len -= chars
            if not total_len:
                break
            if pipe.bufs:
                continue
        if not pipe.writers:
            break  # EOF, or what was read
        if out:
            break
        if filp.f_flags & O_NONBLOCK:
            raise kerr(errno.EAGAIN, "the pipe is empty and O_NONBLOCK is set", "fs/pipe.c:367")
        if was_full:
            _wake(k, pipe.wr_wait, PIPE_WRITE_WAIT, 1)
        if signal_pending(t):
            raise _interrupted("fs/pipe.c:401")
        raise _sleep(k, t, pipe.rd_wait, PIPE_READ_WAIT)
    if was_full:
        _wake(k, pipe.wr_wait, PIPE_WRITE_WAIT, 1)  # fs/pipe.c:411-414
    if pipe.bufs:
        _wake(k, pipe.rd_wait, PIPE_READ_WAIT, 1)  # wake_next_reader (fs/pipe.c:415-416)
    if k.listeners:
        k.trace("pipe_read", "fs/pipe.c:287", f"{filp.f_inode.name}: {len(out)} bytes")
    return bytes(out)


def pipe_write(k: KernelState, t: Task, filp: File, data: bytes) -> int:
    """Append ``data`` to the ring; EPIPE+SIGPIPE without readers; EAGAIN; ENOMEM; sleep (fs/pipe.c:439-623)."""
    total_len = len(data)
    if total_len == 0:
        return 0
    pipe = _pipe(filp)
    if not pipe.readers:
        send_sig(k, SIGPIPE, t, 0)
        raise kerr(errno.EPIPE, "no process has the pipe open for reading (SIGPIPE sent)", "fs/pipe.c:458")
    was_empty = not pipe.bufs
    ret = 0
    chars = total_len & (PAGE_SIZE - 1)
    if chars and not was_empty:  # merge the tail into the last buffer (fs/pipe.c:472-490)
        buf = pipe.bufs[-1]
        if not buf.flags & PIPE_BUF_FLAG_PACKET and buf.offset + len(buf.data) + chars <= PAGE_SIZE:
            buf.data += data[:chars]
            ret = chars
    while ret < total_len:
        if len(pipe.bufs) < pipe.max_usage:
            if not pipe.tmp_page:
                if k.fault.should_fail("pipe_write:alloc_page"):
                    if not ret:
                        raise kerr(errno.ENOMEM, "pipe page allocation failed", "fs/pipe.c:516")
                    break
                pipe.tmp_page = True
            pipe.tmp_page = False
            n = min(PAGE_SIZE, total_len - ret)
            packet = PIPE_BUF_FLAG_PACKET if filp.f_flags & O_DIRECT else 0  # is_packetized (fs/pipe.c:540-543)
            pipe.bufs.append(PipeBuffer(bytearray(data[ret:ret + n]), 0, packet))
            ret += n
            continue
        if filp.f_flags & O_NONBLOCK:
            if not ret:
                raise kerr(errno.EAGAIN, "the pipe is full and O_NONBLOCK is set", "fs/pipe.c:571")
            break
        if signal_pending(t):
            if not ret:
                raise _interrupted("fs/pipe.c:576")
            break
        if ret:
            break  # model deviation: a short write instead of sleeping for the rest
        raise _sleep(k, t, pipe.wr_wait, PIPE_WRITE_WAIT)
    if was_empty:
        _wake(k, pipe.rd_wait, PIPE_READ_WAIT, 1)  # fs/pipe.c:607-610
    if k.listeners:
        k.trace("pipe_write", "fs/pipe.c:439", f"{filp.f_inode.name}: {ret} bytes")
    return ret


def pipe_release(k: KernelState, inode: Inode, file: File) -> None:
    """Last reference to one end: drop readers/writers, wake both sides, free the pipe with its last file (fs/pipe.c:699-737)."""
    pipe = inode.pipe
    if pipe is None:
        return
    if file.f_mode & FMODE_READ:
        pipe.readers -= 1
    if file.f_mode & FMODE_WRITE:
        pipe.writers -= 1
    if (not pipe.readers) != (not pipe.writers):
        _wake(k, pipe.rd_wait, PIPE_READ_WAIT, 0)
        _wake(k, pipe.wr_wait, PIPE_WRITE_WAIT, 0)
    pipe.files -= 1  # put_pipe_info
    if not pipe.files:
        inode.pipe = None  # free_pipe_info: the buffers and tmp_page go with it
        if k.listeners:
            k.trace("free_pipe_info", "fs/pipe.c:829", f"{inode.name} freed")
