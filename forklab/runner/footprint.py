"""Footprints: what one step of a task may touch, for ``forklab.explore``'s dependence relation.

A *step* is what a task does between two choice points: the call it is parked before (or
re-issues after a sleep), then user code up to its next call; or, for a task that has not
run yet or is released from a vfork or a stop, only user code. Two steps of different tasks
are *dependent* when their footprints share a resource with conflicting modes:

* ``R`` reads, ``A`` makes an update that commutes with other updates (a child joining a
  process group, a zombie waking its parent's wait queue), ``W`` writes;
* R/R and A/A commute; everything else conflicts. A step that ``touches_all`` conflicts with
  every step (the fallback whenever the model's effects are not spelled out here).

Resources are named stably across the runs of one exploration, never by ``id()``: a process
by its tgid (the model allocates pids deterministically, and an exploring run replays the
same decisions, so the same prefix gives the same numbers), a file by its inode number, a
memory map by its context id, a process group by its pgid. Per-process resources:

=================  ======================================================================
``proc`` tgid      the process's signal state (dispositions, masks, pending signals), ids
                   and image. Every call of the process reads it (the signals it may take
                   on its way back to user mode).
``parent`` tgid    its parent link: reparenting writes it; getppid and the exit (whom to
                   notify) read it.
``life`` tgid      whether it exists, runs, is stopped or is a zombie: what a wait or a
                   kill sees of it.
``wait`` tgid      its children's state changes and its wait queue (wait4, waitid).
``kids`` tgid      who its children are (fork adds, a reap removes, wait(-1) reads).
``pgrp`` pgid      a process group's members (kill(-pgid) signals all of them).
``pgstop`` pgid    whether a group has stopped members (what an exit's orphan check reads).
=================  ======================================================================

and shared ones: ``inode`` (a file's data and offsets, a pipe's buffer), ``pipe-end`` (the
references to one end of a pipe: a close commutes with other closes, and with a fork or dup
of a holder, but not with the other side's read, which sees EOF, or write, which sees EPIPE,
once no reference is left),
``mm`` (memory, and Python objects, of tasks that share a memory map), ``files``/``fs``
(shared descriptor tables and fs_structs, one resource for all), ``pidalloc`` (every fork),
``limits`` (the task counts fork checks), ``inum`` (inode numbers), ``urandom`` (the run's
random stream) and ``clock``.

Conservative rules (soundness first): a task with any signal pending, a handler frame, a
group stop or exit under way, or ptrace, touches everything; so do calls on other threads'
behalf (threads, exec or exit of a multi-threaded process), group and broadcast kills,
namespaces, prctl, pidfds, file creation, shared mappings, /proc and any call not listed here.

Hidden state. Two things are left out of the relation unless the program can see them.
``CLOCK``: every syscall advances the model clock by 1 µs, fork stores it as the child's
start time, ``os.time_ns`` reads it; increments commute. ``REAPS``: init is the runner's,
not the program's, so when its wait takes a zombie changes nothing the program prints,
unless it looks for that zombie (a kill, getpgid or getsid of a process that is not its own
child, a setpgid into an existing group, setsid), counts tasks near a limit, or reads
/proc. Such a step is an *observer* (``Footprint.observes``); on finding one the explorer
starts over with that part ``precise``: every syscall updates ``clock`` and fork and
time_ns read it, or init's waits have their real footprints.

Why that is sound: until the first observer, a run of the program behaves exactly as it
would if observers returned a constant, and in that system the hidden state is never read,
so the relaxed relation is a valid independence relation for it. Exploring it finds a
representative of every trace, so if any schedule reaches an observer, an explored one does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from forklab.include.linux.fdtable import FMODE_WRITE, File
from forklab.include.linux.mm_types import VM
from forklab.include.linux.sched import PIDTYPE, SIGNAL_STOP_MASK, SIGNAL_UNKILLABLE, Task, TaskState
from forklab.kernel.exit import has_stopped_jobs
from forklab.kernel.pid import find_task_by_vpid, find_vpid, pid_max_of, pid_vnr, task_active_pid_ns
from forklab.kernel.signal import same_thread_group, task_pgrp
from forklab.runner.core import Pending
from forklab.syscalls import Kernel
from forklab.uapi import (
    AT_FDCWD,
    CLONE_CHILD_CLEARTID,
    CLONE_CHILD_SETTID,
    CLONE_PARENT_SETTID,
    CLONE_VFORK,
    CLONE_VM,
    CSIGNAL,
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFD,
    F_GETFL,
    F_SETFD,
    F_SETFL,
    MAP_SHARED,
    O_CREAT,
    O_TRUNC,
    P_ALL,
    P_PGID,
    P_PID,
    RLIMIT_NPROC,
    SA_NOCLDWAIT,
    SIG_DFL,
    SIG_IGN,
    SIGCHLD,
)

R, A, W = "r", "a", "w"
CLOCK, REAPS = 1, 2  # hidden state (see the module docstring), as bit flags
Resource = tuple[str, int]
PLAIN_CLONE = CLONE_VM | CLONE_VFORK | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | CLONE_PARENT_SETTID | CSIGNAL
NO_SYSCALL = frozenset({"time_ns", "urandom", "spawn_result", "load", "store"})  # no syscall entry: no clock tick
FD_TABLE_CMDS = frozenset({F_GETFD, F_SETFD, F_DUPFD, F_DUPFD_CLOEXEC})
QUIET_KINDS = frozenset({"reg", "chr", "dir"})  # dropping a reference to these has no visible effect
RW_KINDS = frozenset({"reg", "shmem"})  # data and offsets live in the inode and the open file
STOPPED = (TaskState.TASK_STOPPED | TaskState.TASK_TRACED) & ~TaskState.TASK_WAKEKILL  # __TASK_STOPPED, __TASK_TRACED


@dataclass(slots=True, frozen=True)
class Footprint:
    """The resources one step touches, each with its mode; ``touches_all`` conflicts with every step.

    ``observes`` flags the hidden state (``CLOCK``, ``REAPS``) a step may read: the explorer
    makes that part precise when one is found.
    """

    accesses: tuple[tuple[Resource, str], ...] = ()
    touches_all: bool = False
    observes: int = 0

    def conflicts(self, other: Footprint) -> bool:
        """Whether this step and ``other`` (of another task) may not commute."""
        if self.touches_all or other.touches_all:
            return True
        if len(self.accesses) > len(other.accesses):
            return other.conflicts(self)
        theirs = dict(other.accesses)
        for resource, mode in self.accesses:
            their = theirs.get(resource)
            if their is not None and conflicting(mode, their):
                return True
        return False

    def everything(self) -> Footprint:
        """This step, widened to conflict with every step."""
        return Footprint(self.accesses, True, self.observes)


EVERYTHING = Footprint(touches_all=True)
NOTHING = Footprint()


def conflicting(a: str, b: str) -> bool:
    """Whether two accesses to one resource conflict: unless both read or both commute."""
    return a != b or a == W


class _Builder:
    """Collects accesses; a resource touched in two modes is written."""

    __slots__ = ("all", "hidden", "modes")

    def __init__(self) -> None:
        self.modes: dict[Resource, str] = {}
        self.all = False
        self.hidden = 0

    def add(self, kind: str, key: int, mode: str) -> None:
        """Record ``mode`` access to resource (kind, key)."""
        resource = (kind, key)
        old = self.modes.get(resource)
        self.modes[resource] = mode if old is None or old == mode else W

    def everything(self) -> None:
        """This step conflicts with every step."""
        self.all = True

    def observe(self, what: int) -> None:
        """This step may read the hidden state ``what`` (CLOCK, REAPS; see the module docstring)."""
        self.hidden |= what

    def build(self) -> Footprint:
        """The footprint, its accesses sorted for determinism."""
        return Footprint(tuple(sorted(self.modes.items())), self.all, self.hidden)


def footprint(k: Kernel, task: Task, step: Pending, precise: int) -> Footprint:
    """The footprint of ``task``'s next step ``step`` in the kernel state ``k`` as it is now.

    ``precise`` flags the hidden state (CLOCK, REAPS) to include.
    """
    b = _Builder()
    _shared_memory(b, task)
    if step.kind in ("start", "resume", "end"):
        return b.build()
    if step.kind not in ("call", "reissue"):
        return EVERYTHING
    if _signal_work(task) or task.ptrace or task.ptraced:
        return EVERYTHING
    if not precise & REAPS and task.pid == 1 and step.name in ("wait4", "waitid"):
        return b.build()  # init's reaping is hidden state
    b.add("proc", task.tgid, R)
    if precise & CLOCK and step.name not in NO_SYSCALL:
        b.add("clock", 0, A)
    handler = _CALLS.get(step.name)
    if handler is None:
        b.everything()
        b.observe(CLOCK | REAPS)
    else:
        handler(b, k, task, step.args, precise)
    return b.build()


def _arg(args: tuple[Any, ...], i: int, default: object) -> Any:
    """The call's argument ``i``, or ``default`` if it was not passed."""
    return args[i] if len(args) > i else default


# --- task state --------------------------------------------------------------------------------


def _shared_memory(b: _Builder, t: Task) -> None:
    """Tasks sharing a memory map share Python objects and memory: each of their steps writes the map."""
    mm = t.mm
    if mm is not None and mm.mm_users > 1:
        b.add("mm", mm.context_id, W)


def _signal_work(t: Task) -> bool:
    """A signal pending (even blocked), a handler frame, a group stop or exit: its delivery may do anything."""
    sig = t.signal
    if sig is None:
        return True
    return bool(t.pending.signal or sig.shared_pending.signal or t.jobctl or t.sigframes
                or sig.flags & ~SIGNAL_UNKILLABLE)


def _single(t: Task) -> bool:
    """The task is its process's only thread, and shares no signal handlers."""
    sig, sighand = t.signal, t.sighand
    return sig is not None and sighand is not None and sig.nr_threads == 1 and len(sig.thread_head) <= 1 \
        and sighand.count == 1


def _pgid(t: Task) -> int:
    """The task's process group id in the initial namespace (0 if it has none)."""
    pgrp = task_pgrp(t)
    return pgrp.numbers[0].nr if pgrp is not None and pgrp.numbers else 0


def _stopped_group(t: Task) -> bool:
    """The task's process group has a stopped member (an exit may then SIGHUP/SIGCONT the group)."""
    pgrp = task_pgrp(t)
    return pgrp is not None and has_stopped_jobs(pgrp)


def _children(t: Task) -> Iterator[Task]:
    """The children of every thread of ``t``'s process, in list order."""
    sig = t.signal
    threads = sig.thread_head if sig is not None and sig.thread_head else [t]
    for th in threads:
        yield from th.children


def _waitable(c: Task) -> bool:
    """A child a wait could consume now: a zombie, stopped or continued, with a code to report."""
    sig = c.signal
    return bool(c.exit_state or c.state & STOPPED or c.exit_code
                or (sig is not None and sig.flags & SIGNAL_STOP_MASK))


def _target(t: Task, pid: int) -> Task | None:
    """The task ``pid`` names in ``t``'s pid namespace."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None
    return find_task_by_vpid(t, pid)


def _in_child_namespace(t: Task) -> bool:
    """The task lives in a pid namespace below the initial one, or is a namespace's init."""
    ns = task_active_pid_ns(t)
    return ns.level > 0 or (ns.child_reaper is t and t.pid != 1)


# --- files -------------------------------------------------------------------------------------


def _fd_file(t: Task, fd: object) -> File | None:
    """The open file at ``fd`` of ``t``'s table, or None."""
    files = t.files
    if files is None or isinstance(fd, bool) or not isinstance(fd, int) or not 0 <= fd < len(files.fdt.fd):
        return None
    return files.fdt.fd[fd]


def _table(b: _Builder, t: Task, mode: str) -> None:
    """A descriptor-table access: only a table shared with other tasks is a resource."""
    files = t.files
    if files is not None and files.count > 1:
        b.add("files", 0, mode)


def _drop(b: _Builder, f: File) -> None:
    """Dropping one reference to ``f``: the last one closes a pipe end, which its other side sees."""
    inode = f.f_inode
    if inode.kind == "pipe":
        b.add("pipe-end", _end(inode.i_ino, bool(f.f_mode & FMODE_WRITE)), A)
    elif inode.kind not in QUIET_KINDS:
        b.add("inode", inode.i_ino, W)


def _end(ino: int, write: bool) -> int:
    """The name of one end of the pipe with inode ``ino`` (a pipe has one open file per end)."""
    return 2 * ino + write


def _drop_all(b: _Builder, t: Task) -> None:
    """Closing every descriptor (exit, and a superset of exec's close-on-exec)."""
    files = t.files
    if files is None:
        return
    if files.count > 1:
        b.add("files", 0, W)
        return
    for f in files.fdt.fd:
        if f is not None:
            _drop(b, f)


def _proc_file(f: File) -> bool:
    """The file was opened under /proc (its contents come from the model's state)."""
    path = str(getattr(f.f_path, "dentry", f.f_path))
    return path == "/proc" or path.startswith("/proc/")


def _on_rw(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """read/write/lseek: the file's inode; a write to a pipe without readers (SIGPIPE) touches everything."""
    _table(b, t, R)
    f = _fd_file(t, args[0] if args else None)
    if f is None:
        return
    inode = f.f_inode
    if _proc_file(f):
        b.everything()
        b.observe(CLOCK | REAPS)
    elif inode.kind == "pipe":
        b.add("inode", inode.i_ino, W)
        writing = bool(f.f_mode & FMODE_WRITE)
        b.add("pipe-end", _end(inode.i_ino, not writing), R)  # EOF for a read, EPIPE for a write
        if writing and (inode.pipe is None or not inode.pipe.readers):
            b.everything()  # SIGPIPE
    elif inode.kind in RW_KINDS:
        b.add("inode", inode.i_ino, W)
    elif inode.kind not in ("chr", "dir"):
        b.everything()


def _on_open(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """open: a new descriptor; creating or truncating, or anything under /proc, touches everything."""
    path, flags = _arg(args, 0, ""), _arg(args, 1, 0)
    if not isinstance(path, str) or not isinstance(flags, int) or flags & (O_CREAT | O_TRUNC):
        b.everything()
        return
    fs = t.fs
    cwd = fs.pwd.dentry if fs is not None else "/"
    if fs is None or fs.root.dentry != "/" or "proc" in posixpath.normpath(posixpath.join(cwd, path)).split("/"):
        b.everything()
        b.observe(CLOCK | REAPS)
        return
    if fs.users > 1:
        b.add("fs", 0, R)
    _table(b, t, W)


def _on_close(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """close: the table, and the file's last reference."""
    _table(b, t, W)
    f = _fd_file(t, args[0] if args else None)
    if f is not None:
        _drop(b, f)


def _on_dup(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """dup/dup2: the table, and for dup2 the file it replaces."""
    _table(b, t, W)
    if len(args) >= 2 and args[0] != args[1]:
        f = _fd_file(t, args[1])
        if f is not None:
            _drop(b, f)


def _on_fcntl(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """fcntl: descriptor flags are the table's; status flags belong to the open file, shared across forks."""
    cmd = args[1] if len(args) >= 2 else None
    _table(b, t, W)
    if cmd in FD_TABLE_CMDS:
        return
    f = _fd_file(t, args[0] if args else None)
    if cmd in (F_GETFL, F_SETFL) and f is not None:
        b.add("inode", f.f_inode.i_ino, W)
    elif cmd not in (F_GETFL, F_SETFL):
        b.everything()


def _on_pipe(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """pipe/pipe2: a new inode number and two descriptors."""
    b.add("inum", 0, W)
    _table(b, t, W)


def _on_fs(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """chdir/chroot/umask: the fs_struct, a resource only when shared (CLONE_FS)."""
    fs = t.fs
    if fs is not None and fs.users > 1:
        b.add("fs", 0, W)


# --- memory ------------------------------------------------------------------------------------


def _on_memory(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """mmap, munmap, mprotect, madvise, load, store: private memory is the task's own; shared mappings touch all."""
    mm = t.mm
    if mm is None:
        return
    for vma in mm.mmap:
        if vma.vm_flags & VM.VM_SHARED:
            b.everything()
            return
        if vma.vm_file is not None:  # a private file mapping faults the file's pages in
            b.add("inode", vma.vm_file.f_inode.i_ino, R)


def _on_mmap(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """mmap: a shared or file mapping touches everything; else like the other memory calls."""
    flags, fd = (args[3], args[4]) if len(args) >= 5 else (MAP_SHARED, 0)
    if not isinstance(flags, int) or flags & MAP_SHARED or fd != -1:
        b.everything()
        return
    _on_memory(b, k, t, args, precise)


# --- processes ---------------------------------------------------------------------------------


def _on_fork(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """fork/vfork/plain clone: a pid, a child in the parent's list and group, the task counts, the start time."""
    b.add("pidalloc", 0, W)
    b.add("kids", t.tgid, A)
    b.add("pgrp", _pgid(t), A)
    if _fork_fits(k, t):
        b.add("limits", 0, A)
    else:
        b.add("limits", 0, W)
        b.observe(REAPS)  # near a limit, init's reaping decides
    _table(b, t, R)
    if t.fs is not None and t.fs.users > 1:
        b.add("fs", 0, R)
    if precise & CLOCK:
        b.add("clock", 0, R)


def _on_clone(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """clone: a fork when its flags are fork's, vfork's or posix_spawn's; any other sharing touches everything."""
    flags = args[0] if args else -1
    if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~PLAIN_CLONE or flags & CSIGNAL != SIGCHLD:
        b.everything()
        return
    _on_fork(b, k, t, args, precise)


def _fork_fits(k: Kernel, t: Task) -> bool:
    """A fork now is far from every limit it checks, so releases elsewhere cannot change its result."""
    if _in_child_namespace(t) or k.nr_threads + 2 >= k.max_threads:
        return False
    cred = t.real_cred
    user = cred.user if cred is not None else None
    sig = t.signal
    if user is None or sig is None or user.processes + 2 >= sig.rlim[RLIMIT_NPROC][0]:
        return False
    group = t.cgroups
    while group is not None:
        if group.parent is not None and group.counter + 2 >= group.limit:
            return False
        group = group.parent
    ns = task_active_pid_ns(t)
    first = max(ns.idr_next, 1)
    return first + 2 < pid_max_of(k, ns) and first not in ns.idr


def _on_exit(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """_exit/exit of a single-threaded process: its own end (see ``_exit_effects``); threads touch everything."""
    if not _single(t):
        b.everything()
        return
    _exit_effects(b, k, t)


def _exit_effects(b: _Builder, k: Kernel, t: Task) -> None:
    """What a single-threaded process's exit does to others: its parent, its children, its groups, its files."""
    if _in_child_namespace(t) and task_active_pid_ns(t).child_reaper is t:
        b.everything()  # a namespace's init takes the whole namespace down
        return
    b.add("proc", t.tgid, W)
    b.add("life", t.tgid, W)
    b.add("parent", t.tgid, R)
    _notify_parent(b, t)
    _orphan_check(b, t)
    children = list(_children(t))
    for child in children:
        b.add("parent", child.tgid, W)
        if child.pdeath_signal:
            b.add("proc", child.tgid, W)
        _orphan_check(b, child)
    if children:
        _reapers(b, t, any(child.exit_state for child in children))
    _drop_all(b, t)


def _notify_parent(b: _Builder, t: Task) -> None:
    """The exit signal and wake-up for the parent; an auto-reaped child is released at once."""
    parent = t.real_parent
    if parent is None:
        b.everything()
        return
    _notify(b, parent, t.exit_signal)
    if _autoreaps(parent):
        b.add("pgrp", _pgid(t), A)


def _notify(b: _Builder, parent: Task, exit_signal: int) -> None:
    """A child's death told to ``parent``: its wait queue, its SIGCHLD (if queued), an auto-reap's counts."""
    sighand = parent.sighand
    if sighand is None:
        b.everything()
        return
    b.add("wait", parent.tgid, A)
    action = sighand.action[SIGCHLD - 1]
    queued = exit_signal != SIGCHLD or action.sa_handler not in (SIG_DFL, SIG_IGN) or _blocks_sigchld(parent)
    b.add("proc", parent.tgid, W if queued else R)
    if _autoreaps(parent):
        b.add("kids", parent.tgid, A)
        b.add("limits", 0, A)


def _autoreaps(parent: Task) -> bool:
    """The parent ignores SIGCHLD or set SA_NOCLDWAIT: its children are released when they die."""
    sighand = parent.sighand
    if sighand is None:
        return True
    action = sighand.action[SIGCHLD - 1]
    return action.sa_handler == SIG_IGN or bool(action.sa_flags & SA_NOCLDWAIT)


def _blocks_sigchld(p: Task) -> bool:
    """Some thread of ``p``'s process blocks SIGCHLD (a blocked signal is queued even when ignored)."""
    sig = p.signal
    threads = sig.thread_head if sig is not None and sig.thread_head else [p]
    return any(th.blocked & (1 << (SIGCHLD - 1)) for th in threads)


def _orphan_check(b: _Builder, t: Task) -> None:
    """An exit may orphan ``t``'s group: with stopped members that is SIGHUP and SIGCONT to all of them."""
    if _stopped_group(t):
        b.everything()
    else:
        b.add("pgstop", _pgid(t), R)


def _reapers(b: _Builder, t: Task, zombies: bool) -> None:
    """Children are reparented to the namespace's init, or to a subreaper ancestor if one may exist.

    The new parent gains children (``kids``); a zombie among them is reported to it at once.
    """
    sig = t.signal
    reapers = list(_ancestors(t)) if sig is None or sig.has_child_subreaper else []
    init = task_active_pid_ns(t).child_reaper
    if init is not None:
        reapers.append(init)
    for r in reapers:
        b.add("kids", r.tgid, A)
        if zombies:
            _notify(b, r, SIGCHLD)


def _ancestors(t: Task) -> Iterator[Task]:
    """``t``'s parent, grandparent, ... up to the first init."""
    p = t.real_parent
    for _ in range(1 << 16):
        if p is None:
            return
        yield p
        if p.pid == 1 or p.real_parent is p:
            return
        p = p.real_parent


def _on_execve(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """execve of a single-threaded process: its own image and ids, close-on-exec files, a vfork parent's release."""
    if not _single(t):
        b.everything()
        return
    b.add("proc", t.tgid, W)
    _drop_all(b, t)


def _on_wait(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """wait4(pid, options): the wait queue, the child list and each child it may consume."""
    pid = args[0] if args else -1
    only = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    _wait_effects(b, t, only)


def _on_waitid(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """waitid(idtype, id, options): as wait4; a pidfd wait touches everything."""
    idtype, ident = _arg(args, 0, -1), _arg(args, 1, -1)
    if idtype == P_PID and isinstance(ident, int):
        _wait_effects(b, t, ident)
    elif idtype in (P_ALL, P_PGID):
        _wait_effects(b, t, None)
    else:
        b.everything()


def _wait_effects(b: _Builder, t: Task, only: int | None) -> None:
    """Consuming a child's state writes it (and, for a reap, its group and the counts); looking only reads it."""
    b.add("wait", t.tgid, W)
    b.add("kids", t.tgid, W)
    if only is not None and _in_child_namespace(t):
        only = None  # the pid is a number in another namespace: every child may be the one
    for child in _children(t):
        if only is not None and child.pid != only:
            continue
        if _waitable(child):
            b.add("life", child.tgid, W)
            b.add("pgrp", _pgid(child), A)
            b.add("limits", 0, A)
        else:
            b.add("life", child.tgid, R)


def _on_kill(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """kill(pid, sig): a signal to one process; groups and broadcasts touch everything."""
    pid, sig = _arg(args, 0, 0), _arg(args, 1, 0)
    if isinstance(pid, bool) or not isinstance(pid, int) or _in_child_namespace(t):
        b.everything()
        b.observe(CLOCK | REAPS)
    elif pid > 0:
        _signal_effects(b, k, t, _target(t, pid), sig)
    elif pid == -1:
        b.add("pidalloc", 0, R)  # every process but init and the caller: a fork adds one
        for target in _every_process(k, t):
            _signal_effects(b, k, t, target, sig)
    else:
        pgrp = task_pgrp(t) if pid == 0 else find_vpid(t, -pid)
        b.add("pgrp", _pgid(t) if pid == 0 else -pid, R)
        b.observe(REAPS)  # whether the group still exists
        for target in list(pgrp.tasks[PIDTYPE.PIDTYPE_PGID]) if pgrp is not None else []:
            _signal_effects(b, k, t, target, sig)


def _every_process(k: Kernel, t: Task) -> list[Task]:
    """kill(-1)'s targets, chosen as ``forklab.kernel.signal._kill_every_process`` chooses them."""
    return [p for p in k.tasks if pid_vnr(t, p.thread_pid) > 1 and not same_thread_group(p, t)]


def _on_tgkill(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """tgkill(tgid, tid, sig): a signal to one thread, whose process it may stop or kill."""
    tid, sig = _arg(args, 1, 0), _arg(args, 2, 0)
    _signal_effects(b, k, t, _target(t, tid) if isinstance(tid, int) else None, sig)


def _signal_effects(b: _Builder, k: Kernel, t: Task, target: Task | None, sig: object) -> None:
    """Sending ``sig`` to ``target``: its state; a stop or continue reported to its parent; or its death."""
    _look_up(b, t, target)
    if target is None:
        return
    if sig == 0:
        b.add("life", target.tgid, R)
        return
    if not _single(target) or target.ptrace or target.ptraced:
        b.everything()
        return
    b.add("proc", target.tgid, W)
    b.add("life", target.tgid, W)
    b.add("pgstop", _pgid(target), W)
    parent = target.real_parent
    if parent is not None:
        b.add("wait", parent.tgid, A)
        b.add("proc", parent.tgid, W)
    if not target.exit_state:
        _exit_effects(b, k, target)  # a fatal signal takes the target down in this step


def _on_setpgid(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """setpgid(pid, pgid): the target's group changes; both groups' members and stopped state."""
    pid, pgid = _arg(args, 0, 0), _arg(args, 1, 0)
    if _in_child_namespace(t) or not isinstance(pid, int) or not isinstance(pgid, int):
        b.everything()  # numbers of another namespace
        return
    b.add("proc", t.tgid, W)
    target = t if pid == 0 else _target(t, pid)
    _look_up(b, t, target)
    if pgid > 0:
        b.observe(REAPS)  # the group must exist: its only member may be a zombie init has not reaped
    if target is None:
        return
    b.add("proc", target.tgid, W)
    b.add("life", target.tgid, R)
    b.add("parent", target.tgid, R)  # the caller's child, or itself
    for group in (_pgid(target), pgid if pgid > 0 else target.pid):
        b.add("pgrp", group, W)
        b.add("pgstop", group, W)


def _on_setsid(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """setsid: a new session and group named by the caller's pid (EPERM while such a group exists)."""
    b.observe(REAPS)
    b.add("proc", t.tgid, W)
    for group in (_pgid(t), t.pid):
        b.add("pgrp", group, W)
        b.add("pgstop", group, W)


def _on_ids_of(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """getpgid/getsid(pid): the target's ids."""
    pid = args[0] if args else 0
    if pid == 0:
        return
    target = _target(t, pid) if isinstance(pid, int) else None
    _look_up(b, t, target)
    if target is not None:
        b.add("proc", target.tgid, R)
        b.add("life", target.tgid, R)


def _look_up(b: _Builder, t: Task, target: Task | None) -> None:
    """Naming a process by pid: ESRCH until a fork makes it; anyone but itself or its child may be init's to reap."""
    if target is None:
        b.add("pidalloc", 0, R)
        b.observe(REAPS)
    elif target.tgid != t.tgid and (target.real_parent is None or target.real_parent.tgid != t.tgid):
        b.observe(REAPS)


def _on_getppid(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """getppid: the parent link, which the parent's exit rewrites."""
    b.add("parent", t.tgid, R)


def _on_own(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """A call that reads or changes only the caller's process (the ``proc`` read every call makes)."""


def _on_own_write(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """A change to the caller's signal state or limits, which its children's exits and others' kills read."""
    b.add("proc", t.tgid, W)


def _on_sigaction(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """rt_sigaction: the process's dispositions; handlers shared with other processes touch everything."""
    if t.sighand is None or t.sighand.count > 1:
        b.everything()
    b.add("proc", t.tgid, W)


def _on_rusage(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """getrusage: its own counts; other threads' counts move with their every call."""
    if not _single(t):
        b.everything()


def _on_time(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """time_ns: reads the model clock (an observer: precise footprints are needed)."""
    b.add("clock", 0, R)
    b.observe(CLOCK)


def _on_urandom(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """urandom: the run's one random stream."""
    b.add("urandom", 0, W)


def _on_sleep(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """nanosleep/clock_nanosleep: only the caller, but when it wakes depends on the clock (an observer)."""
    b.add("clock", 0, R)
    b.observe(CLOCK)


def _tree_path(t: Task, path: object) -> str | None:
    """The tree pathname a name leads to (lexically), or None where the footprint cannot tell (/proc, chroot)."""
    fs = t.fs
    if not isinstance(path, str) or fs is None or fs.root.dentry != "/":
        return None
    full = posixpath.normpath(posixpath.join(fs.pwd.dentry, path))
    return None if "proc" in full.split("/") else full


def _inode_key(k: Kernel, path: str) -> int:
    """The inode number a tree path names now, -1 for a missing name (a stable key: the name's absence)."""
    inode = k.vfs.lookup(path)
    return inode.i_ino if inode is not None else -1


def _on_stat(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """newfstatat: reads the directory it looks in and the inode it finds; fstat (AT_EMPTY_PATH) the fd's inode."""
    dfd, path = _arg(args, 0, None), _arg(args, 1, None)
    if path == "":
        f = _fd_file(t, dfd)
        _table(b, t, R)
        if f is not None:
            b.add("inode", f.f_inode.i_ino, R)
        return
    full = _tree_path(t, path) if dfd == AT_FDCWD else None
    if full is None:
        b.everything()
        return
    b.add("inode", _inode_key(k, posixpath.dirname(full)), R)
    b.add("inode", _inode_key(k, full), R)


def _on_name_change(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """unlink/mkdir: write the directory and the name's inode; mkdir takes a new inode number."""
    full = _tree_path(t, _arg(args, 0, None))
    if full is None:
        b.everything()
        return
    b.add("inode", _inode_key(k, posixpath.dirname(full)), W)
    b.add("inode", _inode_key(k, full), W)
    b.add("inum", 0, W)


def _on_getcwd(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """getcwd: reads the fs_struct, a resource only when shared (CLONE_FS)."""
    fs = t.fs
    if fs is not None and fs.users > 1:
        b.add("fs", 0, R)


def _on_everything(b: _Builder, k: Kernel, t: Task, args: tuple[Any, ...], precise: int) -> None:
    """Namespaces, prctl, pidfds, clone3: not spelled out, so conflicting with every step (and observers)."""
    b.everything()
    b.observe(CLOCK | REAPS)


_CALLS = {
    "getpid": _on_own, "gettid": _on_own, "getppid": _on_getppid, "getpgrp": _on_own, "getrlimit": _on_own,
    "set_tid_address": _on_own, "spawn_result": _on_own,
    "rt_sigprocmask": _on_own_write, "setrlimit": _on_own_write, "rt_sigaction": _on_sigaction, "getrusage": _on_rusage,
    "getpgid": _on_ids_of, "getsid": _on_ids_of, "setpgid": _on_setpgid, "setsid": _on_setsid,
    "fork": _on_fork, "vfork": _on_fork, "clone": _on_clone, "execve": _on_execve, "_exit": _on_exit, "exit": _on_exit,
    "wait4": _on_wait, "waitid": _on_waitid, "kill": _on_kill, "tgkill": _on_tgkill,
    "open": _on_open, "close": _on_close, "dup": _on_dup, "dup2": _on_dup, "fcntl": _on_fcntl,
    "read": _on_rw, "write": _on_rw, "lseek": _on_rw, "pipe": _on_pipe, "pipe2": _on_pipe,
    "chdir": _on_fs, "chroot": _on_fs, "umask": _on_fs,
    "mmap": _on_mmap, "munmap": _on_memory, "mprotect": _on_memory, "madvise": _on_memory, "load": _on_memory, "store": _on_memory,
    "time_ns": _on_time, "urandom": _on_urandom,
    "clock_nanosleep": _on_sleep, "nanosleep": _on_sleep, "pause": _on_own, "sched_yield": _on_own,
    "times": _on_rusage, "getcwd": _on_getcwd, "newfstatat": _on_stat, "unlink": _on_name_change,
    "mkdir": _on_name_change,
    "unshare": _on_everything, "prctl": _on_everything, "pidfd_open": _on_everything, "pidfd_send_signal": _on_everything,
    "clone3": _on_everything,
}

__all__ = ["CLOCK", "EVERYTHING", "NOTHING", "REAPS", "Footprint", "conflicting", "footprint"]
