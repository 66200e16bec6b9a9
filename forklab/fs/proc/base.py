"""The /proc/<pid> directories (fs/proc/base.c): looking up /proc/<pid>/... and reading its files.

``proc_read`` resolves a path as ``proc_pid_lookup``, ``proc_task_lookup`` and the per-pid
directory lookup do, name by name in the reader's pid namespace (ENOENT for a name that is not
a pid, a task the reader cannot see, a thread of another process, or a file the model lacks;
EISDIR for a directory), then reads status, stat or maps.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.fs.proc.array import proc_pid_status, proc_tgid_stat, proc_tid_stat
from forklab.fs.proc.task_mmu import show_map
from forklab.kernel.pid import find_task_by_pid_ns, task_active_pid_ns
from forklab.kernel.signal import same_thread_group

if TYPE_CHECKING:
    from forklab.include.linux.pid import PidNamespace
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

PROC_PID_FILES = ("status", "stat", "maps")


def proc_read(k: KernelState, path: str, viewer: Task | None = None) -> str:
    """Read /proc/<pid>/{status,stat,maps} or /proc/<pid>/task/<tid>/{status,stat,maps} as ``viewer`` (default init) would.

    The path is resolved as the kernel's lookups do, name by name in the reader's pid
    namespace, with their ENOENT (fs/proc/base.c:3339-3361, 3636-3668, 2567-2593); a
    directory reads as EISDIR (generic_read_dir, fs/libfs.c:222-225).
    """
    reader = viewer if viewer is not None else k.init_task
    ns = task_active_pid_ns(reader)
    parts = path.strip("/").split("/")
    if parts[0] != "proc" or len(parts) < 2:
        raise kerr(errno.ENOENT, f"{path}: the model's /proc has only <pid> directories", "fs/proc/base.c:3347")
    task = _proc_lookup(parts[1], ns, path, "fs/proc/base.c:3347", "fs/proc/base.c:3356")
    rest = parts[2:]
    if rest[:1] == ["task"] and len(rest) >= 2:
        leader = task
        task = _proc_lookup(rest[1], ns, path, "fs/proc/base.c:3648", "fs/proc/base.c:3657")
        if not same_thread_group(leader, task):
            raise kerr(errno.ENOENT, f"{path}: thread {rest[1]} is not in process {parts[1]}", "fs/proc/base.c:3659")
        rest = rest[2:]
    if not rest or rest == ["task"]:
        raise kerr(errno.EISDIR, f"{path} is a directory", "fs/libfs.c:224")
    if len(rest) != 1 or rest[0] not in PROC_PID_FILES:
        raise kerr(errno.ENOENT, f"{path}: the model's /proc/<pid> has {', '.join(PROC_PID_FILES)} and task/",
                   "fs/proc/base.c:2573")
    pid = task.thread_pid  # proc_pid_make_inode: get_task_pid(task, PIDTYPE_PID)
    assert pid is not None
    if rest[0] == "status":
        return proc_pid_status(k, task, ns, pid)
    if rest[0] == "stat":
        return (proc_tid_stat if len(parts) > 3 else proc_tgid_stat)(reader, ns, pid, task)
    return show_map(task)


def _proc_lookup(name: str, ns: PidNamespace, path: str, bad_name: str, no_task: str) -> Task:
    """One /proc/<n> or task/<n> lookup: name_to_int, then find_task_by_pid_ns in the reader's namespace."""
    # name_to_int: decimal digits, no leading zero, below ~0U (fs/proc/util.c)
    valid = name.isascii() and name.isdigit() and not (len(name) > 1 and name[0] == "0")
    nr = int(name) if valid and int(name) < 0xFFFFFFFF else None
    if nr is None:
        raise kerr(errno.ENOENT, f"{path}: {name!r} is not a pid", bad_name)
    task = find_task_by_pid_ns(nr, ns)
    if task is None:
        raise kerr(errno.ENOENT, f"{path}: no task {nr} in the reader's pid namespace", no_task)
    return task
