"""The file descriptor table (fs/file.c): allocation, dup, close, fork-time copy, exec-time close.

A ``FilesStruct`` (struct files_struct) is what CLONE_FILES shares; ``dup_fd`` is what a fork
without CLONE_FILES (and unshare(CLONE_FILES), and exec's unshare_files) does instead. Its
``Fdtable`` keeps the kernel's two bitmaps as sets of fd numbers:

* ``open_fds``: fds in use, including fds *reserved* by ``get_unused_fd_flags`` but not yet
  given a file by ``fd_install`` (an open(2) in progress, a CLONE_PIDFD fork before the point
  of no return). ``dup_fd`` copies such a reserved fd as free (fs/file.c:343-349), and
  ``dup2`` onto it fails with EBUSY (fs/file.c:891).
* ``close_on_exec``: FD_CLOEXEC. As in the kernel, closing an fd clears its ``open_fds`` bit
  but *not* its ``close_on_exec`` bit (``__put_unused_fd``, fs/file.c:554-560); every path
  that hands the fd out again sets or clears the bit (fs/file.c:520-523, 896-899), so a stale
  bit is never observable. ``forklab.fs.debug`` therefore compares only the bits of open fds.
  It is a frozenset, replaced by ``__set_close_on_exec``/``__clear_close_on_exec`` rather than
  changed, so that the empty one (most processes') is one object shared by every fd table.

``max_fds`` grows by ``expand_files`` in the kernel's steps (``alloc_fdtable``: 1024-byte
multiples of pointers, i.e. 128 fds, rounded up to a power of two), never past
``sysctl_nr_open`` (EMFILE). ``next_fd`` is the kernel's search hint: every fd below it is
open. File references (``f_count``) are taken for every slot that holds a file, so a file
shared by two fds, or by parent and child after fork, has one ``struct file`` and one
``f_pos``.

Syscall-level entry points take ``fd`` as the kernel's ``unsigned int`` (a negative Python int
wraps, so ``close(-1)`` is EBADF as on Linux). ``fdget`` does not take a reference: the model
runs a syscall atomically, which is the kernel's single-user fast path (fs/file.c:790-806).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, kerr
from forklab.fs.file_table import fput
from forklab.include.linux.fdtable import (
    FMODE_PATH,
    NO_FDS,
    Fdtable,
    File,
    FilesStruct,
    fcheck_files,
)
from forklab.include.linux.fs import get_file
from forklab.include.linux.log2 import roundup_pow_of_two
from forklab.include.linux.types import U32
from forklab.trace import traced
from forklab.uapi import O_CLOEXEC, RLIMIT_NOFILE

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

__all__ = [
    "__alloc_fd",
    "__clear_close_on_exec",
    "__close_fd",
    "__put_unused_fd",
    "__set_close_on_exec",
    "alloc_fd",
    "alloc_fdtable",
    "count_open_files",
    "do_close_on_exec",
    "do_dup2",
    "dup_fd",
    "exit_files",
    "expand_files",
    "f_dupfd",
    "fd_install",
    "fdget",
    "fdget_raw",
    "fget",
    "fget_raw",
    "fput",
    "get_close_on_exec",
    "get_files_struct",
    "get_unused_fd_flags",
    "ksys_dup",
    "ksys_dup2",
    "ksys_dup3",
    "put_files_struct",
    "put_unused_fd",
    "reset_files_struct",
    "set_close_on_exec",
]

BITS_PER_LONG = 64


def _files(t: Task) -> FilesStruct:
    """``t->files``, which every fd syscall needs (fs/file.c:540 current->files)."""
    if t.files is None:
        raise InternalError(f"task {t.pid} has no files_struct")
    return t.files


def alloc_fdtable(k: KernelState, nr: int) -> Fdtable:
    """A table for at least ``nr``+1 fds in 128-fd power-of-two steps, capped by nr_open (fs/file.c:85-139)."""
    per_kb = 1024 // 8
    nr //= per_kb
    nr = roundup_pow_of_two(nr + 1)
    nr *= per_kb
    nr_open = k.vfs.nr_open
    if nr > nr_open:
        nr = ((nr_open - 1) | (BITS_PER_LONG - 1)) + 1
    if k.fault.should_fail("alloc_fdtable:kmalloc"):
        raise kerr(errno.ENOMEM, "fdtable allocation failed", "fs/file.c:112")
    if k.fault.should_fail("alloc_fdtable:kvmalloc_array"):
        raise kerr(errno.ENOMEM, "fd array allocation failed", "fs/file.c:116")
    if k.fault.should_fail("alloc_fdtable:kvmalloc"):
        raise kerr(errno.ENOMEM, "fd bitmap allocation failed", "fs/file.c:123")
    return Fdtable(max_fds=nr, fd=[None] * nr)


def expand_fdtable(k: KernelState, files: FilesStruct, nr: int) -> int:
    """Replace the table by a bigger copy holding fd ``nr`` (fs/file.c:148-183)."""
    new_fdt = alloc_fdtable(k, nr)
    if new_fdt.max_fds <= nr:
        raise kerr(errno.EMFILE, "fd table cannot grow past sysctl_nr_open", "fs/file.c:172")
    cur = files.fdt
    if nr < cur.max_fds:
        raise InternalError("expand_fdtable to a smaller size")
    new_fdt.fd[: cur.max_fds] = cur.fd
    new_fdt.open_fds = set(cur.open_fds)
    new_fdt.close_on_exec = cur.close_on_exec
    files.fdt = new_fdt
    return 1


def expand_files(k: KernelState, files: FilesStruct, nr: int) -> int:
    """Make room for fd ``nr``: 0 if it fits, 1 if expanded; EMFILE at nr_open (fs/file.c:193-226)."""
    if nr < files.fdt.max_fds:
        return 0
    if nr >= k.vfs.nr_open:
        raise kerr(errno.EMFILE, "fd number would reach sysctl_nr_open", "fs/file.c:209")
    return expand_fdtable(k, files, nr)


def count_open_files(fdt: Fdtable) -> int:
    """Table size up to the last 64-fd word holding an open fd (at least 64) (fs/file.c:253-265)."""
    words = [fd // BITS_PER_LONG for fd in fdt.open_fds if fd < fdt.max_fds]
    return ((max(words) if words else 0) + 1) * BITS_PER_LONG


@traced
def dup_fd(k: KernelState, oldf: FilesStruct) -> FilesStruct:
    """Copy a files_struct for fork/unshare: open and cloexec bits, a ref per file (fs/file.c:272-366).

    Reserved-but-uninstalled fds are free in the copy; ENOMEM, or EMFILE past sysctl_nr_open.
    """
    if k.fault.should_fail("dup_fd:kmem_cache_alloc"):
        raise kerr(errno.ENOMEM, "files_struct allocation failed", "fs/file.c:281")
    new_fdt = Fdtable()
    old_fdt = oldf.fdt
    open_files = count_open_files(old_fdt)
    while open_files > new_fdt.max_fds:
        new_fdt = alloc_fdtable(k, open_files - 1)
        if new_fdt.max_fds < open_files:
            raise kerr(errno.EMFILE, "the parent's fd table is larger than sysctl_nr_open", "fs/file.c:319")
        old_fdt = oldf.fdt
        open_files = count_open_files(old_fdt)
    # copy_fd_bitmaps (fs/file.c:49-65): the first open_files bits of both maps
    new_fdt.open_fds = {fd for fd in old_fdt.open_fds if fd < open_files}
    new_fdt.close_on_exec = frozenset(fd for fd in old_fdt.close_on_exec if fd < open_files) or NO_FDS
    # NOTE: the per-slot loop of fs/file.c:343-355 as one slice copy, then a visit of the open fds only, lowest
    # first: an installed file's fd is always open (fs/debug.py checks it), so no other slot has work to do
    copied = old_fdt.fd[:min(open_files, old_fdt.max_fds)]
    new_fdt.fd[:len(copied)] = copied
    for fd in sorted(new_fdt.open_fds):
        f = copied[fd] if fd < len(copied) else None
        if f is not None:
            get_file(f)
        else:
            new_fdt.open_fds.discard(fd)  # __clear_open_fd: a sibling thread is mid-open (fs/file.c:349)
    newf = FilesStruct(count=1, fdt=new_fdt, next_fd=0)
    if k.listeners:
        k.trace("dup_fd", "fs/file.c:272", f"{len(new_fdt.open_fds)} fds copied, max_fds {new_fdt.max_fds}")
    return newf


def close_files(k: KernelState, files: FilesStruct) -> Fdtable:
    """Close every installed fd of a dying files_struct, lowest first (fs/file.c:368-398)."""
    fdt = files.fdt
    if not fdt.open_fds:
        return fdt  # nothing to close, and no function-level import (about 0.7 us) to pay for it
    from forklab.fs.open import filp_close  # import cycle: fs/open.py imports this module

    for fd in sorted(fdt.open_fds):
        if fd >= fdt.max_fds:
            continue
        f = fdt.fd[fd]
        fdt.fd[fd] = None
        if f is not None:
            filp_close(k, f, files)
    return fdt


def get_files_struct(task: Task) -> FilesStruct | None:
    """Take a reference on the task's files_struct, if it has one (fs/file.c:400-411)."""
    files = task.files
    if files is not None:
        files.count += 1
    return files


def put_files_struct(k: KernelState, files: FilesStruct) -> None:
    """Drop a reference; the last one closes every file (fs/file.c:413-423)."""
    if files.count <= 0:
        raise InternalError(f"put_files_struct with count {files.count}")
    files.count -= 1
    if files.count == 0:
        close_files(k, files)


def reset_files_struct(k: KernelState, t: Task, files: FilesStruct) -> None:
    """Put the displaced table back and drop the private copy (fs/file.c:425-435)."""
    old = t.files
    t.files = files
    if old is not None:
        put_files_struct(k, old)


@traced
def exit_files(k: KernelState, tsk: Task) -> None:
    """Detach the task's files_struct and drop it (fs/file.c:437-447)."""
    files = tsk.files
    if files is not None:
        tsk.files = None
        put_files_struct(k, files)


def find_next_fd(fdt: Fdtable, start: int) -> int:
    """The lowest fd >= ``start`` not in open_fds, or max_fds (fs/file.c:463-475)."""
    fd = start
    while fd < fdt.max_fds and fd in fdt.open_fds:
        fd += 1
    return fd


def __alloc_fd(k: KernelState, files: FilesStruct, start: int, end: int, flags: int) -> int:
    """Reserve the lowest free fd >= max(start, next_fd) below ``end``: EMFILE (fs/file.c:480-536)."""
    end &= U32  # the parameter is an unsigned int: RLIM_INFINITY becomes 2^32-1
    while True:
        fdt = files.fdt
        fd = max(start, files.next_fd)
        if fd < fdt.max_fds:
            fd = find_next_fd(fdt, fd)
        if fd >= end:
            raise kerr(errno.EMFILE, "no free fd below RLIMIT_NOFILE", "fs/file.c:502")
        if expand_files(k, files, fd) == 0:
            break
    if start <= files.next_fd:
        files.next_fd = fd + 1
    fdt.open_fds.add(fd)
    if flags & O_CLOEXEC:
        __set_close_on_exec(fd, fdt)
    else:
        __clear_close_on_exec(fd, fdt)
    if fdt.fd[fd] is not None:  # "alloc_fd: slot %d not NULL!" (fs/file.c:527-530)
        fdt.fd[fd] = None
    return fd


def alloc_fd(k: KernelState, t: Task, start: int, flags: int) -> int:
    """__alloc_fd on the task's table, limited by RLIMIT_NOFILE (fs/file.c:538-541)."""
    from forklab.kernel.signal import rlimit  # import cycle: via kernel/pid.py

    return __alloc_fd(k, _files(t), start, rlimit(t, RLIMIT_NOFILE), flags)


def get_unused_fd_flags(k: KernelState, t: Task, flags: int) -> int:
    """Reserve the lowest free fd of ``t``; O_CLOEXEC sets close-on-exec; EMFILE (fs/file.c:548-551)."""
    from forklab.kernel.signal import rlimit  # import cycle: via kernel/pid.py

    return __alloc_fd(k, _files(t), 0, rlimit(t, RLIMIT_NOFILE), flags)


def __put_unused_fd(files: FilesStruct, fd: int) -> None:
    """Clear the open bit and lower next_fd; the cloexec bit is left alone (fs/file.c:554-560)."""
    files.fdt.open_fds.discard(fd)
    if fd < files.next_fd:
        files.next_fd = fd


def put_unused_fd(t: Task, fd: int) -> None:
    """Release a reserved fd that never got a file (fs/file.c:562-568)."""
    __put_unused_fd(_files(t), fd)


def __fd_install(files: FilesStruct, fd: int, file: File) -> None:
    """Put ``file`` into reserved slot ``fd``; the slot must be empty (fs/file.c:592-614)."""
    fdt = files.fdt
    if fd >= fdt.max_fds or fdt.fd[fd] is not None:
        raise InternalError(f"fd_install on fd {fd}: slot not reserved or already holds a file")
    fdt.fd[fd] = file


def fd_install(t: Task, fd: int, file: File) -> None:
    """Install ``file`` (whose reference the table takes over) at reserved fd ``fd`` (fs/file.c:616-619)."""
    __fd_install(_files(t), fd, file)


def __close_fd(k: KernelState, files: FilesStruct, fd: int) -> int:
    """Close ``fd``: EBADF if it holds no file; else free the slot and filp_close (fs/file.c:626-646)."""
    from forklab.fs.open import filp_close  # import cycle: fs/open.py imports this module

    fd &= U32
    fdt = files.fdt
    if fd >= fdt.max_fds or fdt.fd[fd] is None:
        raise kerr(errno.EBADF, "fd is not an open file descriptor", "fs/file.c:645")
    file = fdt.fd[fd]
    assert file is not None
    fdt.fd[fd] = None
    __put_unused_fd(files, fd)
    return filp_close(k, file, files)


@traced
def do_close_on_exec(k: KernelState, files: FilesStruct) -> None:
    """At exec, close every fd marked close-on-exec and clear the marks (fs/file.c:680-714)."""
    from forklab.fs.open import filp_close  # import cycle: fs/open.py imports this module

    fdt = files.fdt
    marked = sorted(fd for fd in fdt.close_on_exec if fd < fdt.max_fds)
    fdt.close_on_exec = NO_FDS
    for fd in marked:
        fdt = files.fdt
        file = fdt.fd[fd]
        if file is None:
            continue
        fdt.fd[fd] = None
        __put_unused_fd(files, fd)
        filp_close(k, file, files)
        if k.listeners:
            k.trace("do_close_on_exec", "fs/file.c:704", f"fd {fd} closed")


def fdget(t: Task, fd: int) -> File | None:
    """The file at ``fd`` unless it is an O_PATH file; no reference (fs/file.c:790-811)."""
    f = fcheck_files(_files(t), fd)
    if f is None or f.f_mode & FMODE_PATH:
        return None
    return f


def fdget_raw(t: Task, fd: int) -> File | None:
    """The file at ``fd``, O_PATH files included; no reference (fs/file.c:813-816)."""
    return fcheck_files(_files(t), fd)


def fget(t: Task, fd: int) -> File | None:
    """The file at ``fd`` with a new reference, O_PATH files excluded (fs/file.c:750-753)."""
    f = fdget(t, fd)
    return get_file(f) if f is not None else None


def fget_raw(t: Task, fd: int) -> File | None:
    """The file at ``fd`` with a new reference, O_PATH files included (fs/file.c:756-759)."""
    f = fdget_raw(t, fd)
    return get_file(f) if f is not None else None


def __set_close_on_exec(fd: int, fdt: Fdtable) -> None:
    """Set ``fd``'s close-on-exec bit (fs/file.c:228-231); the set is replaced, as the empty one is shared."""
    if fd not in fdt.close_on_exec:
        fdt.close_on_exec = fdt.close_on_exec | {fd}


def __clear_close_on_exec(fd: int, fdt: Fdtable) -> None:
    """Clear ``fd``'s close-on-exec bit (fs/file.c:233-237)."""
    if fd in fdt.close_on_exec:
        fdt.close_on_exec = fdt.close_on_exec - {fd} or NO_FDS


def set_close_on_exec(t: Task, fd: int, flag: int) -> None:
    """Set or clear FD_CLOEXEC of ``fd`` (fs/file.c:843-854)."""
    fdt = _files(t).fdt
    if flag:
        __set_close_on_exec(fd & U32, fdt)
    else:
        __clear_close_on_exec(fd & U32, fdt)


def get_close_on_exec(t: Task, fd: int) -> bool:
    """Whether ``fd`` is close-on-exec (fs/file.c:856-866)."""
    return (fd & U32) in _files(t).fdt.close_on_exec


def do_dup2(k: KernelState, files: FilesStruct, file: File, fd: int, flags: int) -> int:
    """Point ``fd`` at ``file``, closing what it held; EBUSY on a reserved fd (fs/file.c:868-910)."""
    from forklab.fs.open import filp_close  # import cycle: fs/open.py imports this module

    fdt = files.fdt
    tofree = fdt.fd[fd]
    if tofree is None and fd in fdt.open_fds:
        raise kerr(errno.EBUSY, "newfd is reserved by an open() in progress", "fs/file.c:892")
    get_file(file)
    fdt.fd[fd] = file
    fdt.open_fds.add(fd)
    if flags & O_CLOEXEC:
        __set_close_on_exec(fd, fdt)
    else:
        __clear_close_on_exec(fd, fdt)
    if tofree is not None:
        filp_close(k, tofree, files)
    return fd


def ksys_dup3(k: KernelState, t: Task, oldfd: int, newfd: int, flags: int) -> int:
    """dup3(2): EINVAL for flags other than O_CLOEXEC or oldfd == newfd, EBADF (fs/file.c:934-966)."""
    from forklab.kernel.signal import rlimit  # import cycle: via kernel/pid.py

    oldfd &= U32
    newfd &= U32
    files = _files(t)
    if flags & ~O_CLOEXEC:
        raise kerr(errno.EINVAL, "dup3 flags other than O_CLOEXEC", "fs/file.c:941")
    if oldfd == newfd:
        raise kerr(errno.EINVAL, "dup3 with oldfd == newfd", "fs/file.c:944")
    if newfd >= rlimit(t, RLIMIT_NOFILE):
        raise kerr(errno.EBADF, "newfd is not below RLIMIT_NOFILE", "fs/file.c:947")
    err: OSError | None = None
    try:
        expand_files(k, files, newfd)
    except OSError as e:
        err = e
    file = fcheck_files(files, oldfd)
    if file is None:
        raise kerr(errno.EBADF, "oldfd is not an open file descriptor", "fs/file.c:953")
    if err is not None:
        if err.errno == errno.EMFILE:
            raise kerr(errno.EBADF, "newfd is not below sysctl_nr_open", "fs/file.c:956")
        raise err
    return do_dup2(k, files, file, newfd, flags)


def ksys_dup2(k: KernelState, t: Task, oldfd: int, newfd: int) -> int:
    """dup2(2): oldfd == newfd returns it if open (else EBADF); otherwise dup3 with no flags (fs/file.c:973-986)."""
    if (oldfd & U32) == (newfd & U32):
        if fcheck_files(_files(t), oldfd) is None:
            raise kerr(errno.EBADF, "oldfd is not an open file descriptor", "fs/file.c:981")
        return oldfd & U32
    return ksys_dup3(k, t, oldfd, newfd, 0)


def ksys_dup(k: KernelState, t: Task, fildes: int) -> int:
    """dup(2): the lowest free fd for the same file; EBADF, EMFILE (fs/file.c:988-1001)."""
    file = fget_raw(t, fildes)
    if file is None:
        raise kerr(errno.EBADF, "oldfd is not an open file descriptor", "fs/file.c:990")
    try:
        ret = get_unused_fd_flags(k, t, 0)
    except OSError:
        fput(k, file)
        raise
    fd_install(t, ret, file)
    return ret


def f_dupfd(k: KernelState, t: Task, from_: int, file: File, flags: int) -> int:
    """F_DUPFD: lowest free fd >= ``from_``; EINVAL if from_ >= RLIMIT_NOFILE (fs/file.c:1008-1019)."""
    from forklab.kernel.signal import rlimit  # import cycle: via kernel/pid.py

    from_ &= U32
    if from_ >= rlimit(t, RLIMIT_NOFILE):
        raise kerr(errno.EINVAL, "F_DUPFD start is not below RLIMIT_NOFILE", "fs/file.c:1012")
    fd = alloc_fd(k, t, from_, flags)
    get_file(file)
    fd_install(t, fd, file)
    return fd
