"""The /proc/<pid> directories (fs/proc/base.c): looking names up under /proc, reading, listing, following links.

``proc_lookup`` resolves the names below /proc as ``proc_root_lookup``, ``proc_pid_lookup``,
``proc_task_lookup``, the per-pid ``pid_entry`` lookups, ``proc_lookupfd_common`` and
``proc_ns_dir_lookup`` do, name by name in the reader's pid namespace (ENOENT for a name that
is not a pid, a task the reader cannot see, a thread of another process, an fd that is not
open or a file the model lacks; ENOTDIR below a file). ``self`` and ``thread-self`` are
symlinks to the reader's ``<tgid>`` and ``<tgid>/task/<tid>`` and are followed inside a
path and, unless asked not to, at its end.

The model's /proc holds, per process, the entries of ``TGID_ENTRIES`` (a thread's
``task/<tid>`` directory those of ``TID_ENTRIES``), in the order of 5.6's
``tgid_base_stuff``/``tid_base_stuff``; /proc itself holds ``self``, ``thread-self`` and one
directory per thread group (proc_pid_readdir), and none of procfs' other files. The model
has no getdents, so ``proc_listdir`` returns what getdents would list (without ``.`` and
``..``), for the views and the Kernel API; a program run by forklab.run cannot list a
directory. docs/proc-views.md says what each file shows.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.fs.proc.array import proc_pid_statm, proc_pid_status, proc_task_name, proc_tgid_stat, proc_tid_stat
from forklab.fs.proc.fd import d_path_from, proc_fd_link, proc_readfd_common
from forklab.fs.proc.internal import proc_may_access
from forklab.fs.proc.namespaces import proc_ns_dir_readdir, proc_ns_link_text
from forklab.fs.proc.self import proc_self_get_link
from forklab.fs.proc.task_mmu import show_map, show_smaps, show_smaps_rollup
from forklab.fs.proc.thread_self import proc_thread_self_get_link
from forklab.fs.proc.util import name_to_int
from forklab.include.linux.pid import PidNamespace
from forklab.include.linux.sched import PIDTYPE
from forklab.kernel.pid import find_task_by_pid_ns, pid_nr_ns, task_active_pid_ns
from forklab.kernel.signal import same_thread_group

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

# The model's entries of tgid_base_stuff (fs/proc/base.c:3090-3197) and tid_base_stuff
# (fs/proc/base.c:3497-3590), in 5.6's order: name -> "dir", "reg" or "lnk".
TGID_ENTRIES: dict[str, str] = {
    "task": "dir", "fd": "dir", "ns": "dir", "status": "reg", "comm": "reg", "stat": "reg", "statm": "reg",
    "maps": "reg", "cwd": "lnk", "root": "lnk", "exe": "lnk", "smaps": "reg", "smaps_rollup": "reg",
}
TID_ENTRIES: dict[str, str] = {name: kind for name, kind in TGID_ENTRIES.items() if name != "task"}
PROC_ROOT_LINKS = ("self", "thread-self")  # proc_self_init, proc_thread_self_init
MAGIC_LINKS = ("cwd", "root", "exe")


@dataclass(slots=True, frozen=True)
class ProcNode:
    """Where a name under /proc leads: its kind, its canonical components below /proc and the task it is of.

    ``parts`` never contains ``self``, ``.`` or ``..`` except a final unfollowed
    ``self``/``thread-self``; ``whole`` says the task's files are /proc/<pid>'s (the thread
    group's) rather than task/<tid>'s.
    """

    kind: str
    parts: tuple[str, ...]
    task: Task | None = None
    whole: bool = True

    @property
    def path(self) -> str:
        """The node as an absolute /proc path."""
        return "/proc" + "".join("/" + p for p in self.parts)


def proc_reader_ns(k: KernelState, reader: Task) -> PidNamespace:
    """The pid namespace /proc numbers tasks in for ``reader``: its own (as if /proc were mounted there), or the
    boot namespace for a task that has no struct pid (a bare task of the unit tests)."""
    if reader.thread_pid is None and reader.pid_links[PIDTYPE.PIDTYPE_PID] is None:
        booted: PidNamespace | None = getattr(k, "init_pid_ns", None)
        return booted if booted is not None else PidNamespace()  # an unbooted kernel: no pids to find
    return task_active_pid_ns(reader)


def _find_task(name: str, ns: PidNamespace, path: str, bad_name: str, no_task: str) -> Task:
    """One /proc/<n> or task/<n> lookup: name_to_int, then find_task_by_pid_ns in the reader's namespace."""
    nr = name_to_int(name)
    if nr is None:
        raise kerr(errno.ENOENT, f"{path}: {name!r} is not a pid", bad_name)
    task = find_task_by_pid_ns(nr, ns)
    if task is None:
        raise kerr(errno.ENOENT, f"{path}: no task {nr} in the reader's pid namespace", no_task)
    return task


def _proc_dir_entry(node: ProcNode, name: str, ns: PidNamespace, path: str) -> ProcNode:
    """The entry ``name`` of the directory ``node``: the lookup of that directory's inode operations."""
    parts = (*node.parts, name)
    depth = len(node.parts)
    if depth == 0:
        if name in PROC_ROOT_LINKS:
            return ProcNode("lnk", parts)
        found = _find_task(name, ns, path, "fs/proc/base.c:3347", "fs/proc/base.c:3356")  # proc_pid_lookup
        return ProcNode("dir", parts, found, True)
    task = node.task
    assert task is not None
    sub = node.parts[-1]
    if (node.whole and depth == 1) or (not node.whole and depth == 3):  # a /proc/<pid> or task/<tid> directory
        entries = TGID_ENTRIES if node.whole else TID_ENTRIES
        kind = entries.get(name)
        if kind is None:  # proc_pident_lookup
            raise kerr(errno.ENOENT, f"{path}: the model's /proc/<pid> has no {name!r}", "fs/proc/base.c:2573")
        return ProcNode(kind, parts, task, node.whole)
    if sub == "task":  # proc_task_lookup
        thread = _find_task(name, ns, path, "fs/proc/base.c:3648", "fs/proc/base.c:3657")
        if not same_thread_group(task, thread):
            raise kerr(errno.ENOENT, f"{path}: thread {name} is not in process {node.parts[0]}", "fs/proc/base.c:3659")
        return ProcNode("dir", parts, thread, False)
    if sub == "fd":  # proc_lookupfd_common
        fd = name_to_int(name)
        if fd is None or fd not in proc_readfd_common(task):
            raise kerr(errno.ENOENT, f"{path}: no open fd {name!r}", "fs/proc/fd.c:212")
        return ProcNode("lnk", parts, task, node.whole)
    if sub == "ns":  # proc_ns_dir_lookup
        if name not in proc_ns_dir_readdir():
            raise kerr(errno.ENOENT, f"{path}: /proc/<pid>/ns has no {name!r}", "fs/proc/namespaces.c:157")
        return ProcNode("lnk", parts, task, node.whole)
    raise kerr(errno.ENOTDIR, f"{path}: {node.path} is not a directory", "fs/namei.c:2252")


def _root_link(k: KernelState, node: ProcNode, reader: Task, ns: PidNamespace) -> list[str]:
    """The components ``self`` or ``thread-self`` stand for."""
    text = proc_self_get_link(reader, ns) if node.parts[-1] == "self" else proc_thread_self_get_link(reader, ns)
    return text.split("/")


def proc_lookup(k: KernelState, reader: Task, names: list[str], follow: bool = True, path: str = "") -> ProcNode:
    """Resolve ``names`` (the components after /proc) as ``reader`` would; ``follow`` follows a final self link."""
    ns = proc_reader_ns(k, reader)
    path = path or "/proc/" + "/".join(names)
    node = ProcNode("dir", ())
    queue = list(names)
    while queue:
        name = queue.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            if not node.parts:
                raise Unmodelled(f"{path}: a name that leaves /proc through '..'")
            node = proc_lookup(k, reader, list(node.parts[:-1]), True, path)
            continue
        if node.kind == "lnk" and node.parts[-1] in PROC_ROOT_LINKS:
            queue[:0] = [name]
            node = proc_lookup(k, reader, _root_link(k, node, reader, ns), True, path)
            continue
        if node.kind == "lnk":
            raise Unmodelled(f"{path}: a path through the magic link {node.path}")
        if node.kind != "dir":
            raise kerr(errno.ENOTDIR, f"{path}: {node.path} is not a directory", "fs/namei.c:2252")
        node = _proc_dir_entry(node, name, ns, path)
    if follow and node.kind == "lnk" and node.parts[-1] in PROC_ROOT_LINKS:
        node = proc_lookup(k, reader, _root_link(k, node, reader, ns), True, path)
    return node


def _proc_names(path: str) -> list[str]:
    """The components after /proc of an absolute path; ENOENT for a path outside /proc."""
    parts = path.strip("/").split("/")
    if parts[0] != "proc":
        raise kerr(errno.ENOENT, f"{path}: not a /proc path", "fs/proc/root.c:250")
    return parts[1:]


def proc_file_text(k: KernelState, node: ProcNode, reader: Task, observer: bool = False) -> str:
    """The text a read of the regular file ``node`` returns, as ``reader`` reads it.

    An ``observer`` (Kernel.proc without a viewer) reads with every capability in the initial
    namespaces: every check passes and ids are the kernel's; its pid namespace is ``reader``'s.
    """
    viewer = None if observer else reader
    task = node.task
    assert task is not None and node.kind == "reg"
    ns = proc_reader_ns(k, reader)
    pid = task.thread_pid  # proc_pid_make_inode: get_task_pid(task, PIDTYPE_PID)
    if pid is None:
        raise kerr(errno.ESRCH, f"{node.path}: the task has been released", "fs/proc/base.c:755")
    name = node.parts[-1]
    if name == "status":
        return proc_pid_status(k, task, ns, pid, viewer)
    if name == "stat":
        return (proc_tgid_stat if node.whole else proc_tid_stat)(viewer, ns, pid, task)
    if name == "statm":
        return proc_pid_statm(task)
    if name == "comm":
        return proc_task_name(task, False) + "\n"  # comm_show (fs/proc/base.c:1654-1669)
    if not observer and not proc_may_access(reader, task):  # proc_mem_open: mm_access(task, PTRACE_MODE_READ_FSCREDS)
        raise kerr(errno.EACCES, f"{node.path}: ptrace_may_access refuses the reader", "fs/proc/base.c:783")
    if name == "maps":
        return show_map(task.mm)
    if name == "smaps":
        return show_smaps(k, task.mm)
    if task.mm is None:  # show_smaps_rollup: no mm
        raise kerr(errno.ESRCH, f"{node.path}: the task has no mm", "fs/proc/task_mmu.c:870")
    return show_smaps_rollup(k, task.mm)


def proc_read(k: KernelState, path: str, viewer: Task | None = None) -> str:
    """Read a /proc file as ``viewer`` would, or as a privileged observer in init's pid namespace; a directory is EISDIR.

    ``self`` and ``thread-self`` are followed; reading through an fd, cwd, root, exe or ns
    link is not (``proc_readlink`` shows where they point).
    """
    reader = viewer if viewer is not None else k.init_task
    node = proc_lookup(k, reader, _proc_names(path), True, path)
    if node.kind == "dir":
        raise kerr(errno.EISDIR, f"{path} is a directory", "fs/libfs.c:224")
    if node.kind == "lnk":
        raise Unmodelled(f"{path}: reading through a /proc magic link (readlink it instead)")
    return proc_file_text(k, node, reader, viewer is None)


def proc_link_text(k: KernelState, node: ProcNode, reader: Task, observer: bool = False) -> str:
    """What readlink of the link ``node`` returns, with the access check of its get_link (none for an observer)."""
    name = node.parts[-1]
    ns = proc_reader_ns(k, reader)
    if node.task is None:
        return proc_self_get_link(reader, ns) if name == "self" else proc_thread_self_get_link(reader, ns)
    task = node.task
    if not observer and not proc_may_access(reader, task):  # proc_fd_access_allowed, proc_ns_get_link: PTRACE_MODE_READ_FSCREDS
        raise kerr(errno.EACCES, f"{node.path}: ptrace_may_access refuses the reader", "fs/proc/base.c:1727")
    reader_root = reader.fs.root.dentry if reader.fs is not None else "/"
    if node.parts[-2] == "fd":
        return proc_fd_link(task, int(name), reader_root)
    if node.parts[-2] == "ns":
        return proc_ns_link_text(task, name)
    return d_path_from(reader_root, proc_magic_link_target(task, name, node.path))


def proc_magic_link_target(task: Task, name: str, path: str) -> str:
    """The tree path of a cwd, root or exe link, as proc_cwd_link, proc_root_link and proc_exe_link find it.

    cwd and root are the task's fs_struct's (get_fs_pwd, get_fs_root); exe is its mm's
    exe_file (get_task_exe_file); ENOENT when the task has none (an exited task).
    """
    if name == "exe":
        exe = task.mm.exe_file if task.mm is not None else None
        if exe is None:
            raise kerr(errno.ENOENT, f"{path}: the task has no exe_file", "fs/proc/base.c:1700")
        return exe.f_path.dentry
    if task.fs is None:
        raise kerr(errno.ENOENT, f"{path}: the task has no fs_struct", "fs/proc/base.c:187")
    return (task.fs.pwd if name == "cwd" else task.fs.root).dentry


def proc_readlink(k: KernelState, path: str, viewer: Task | None = None) -> str:
    """readlink(2) of a /proc link as ``viewer`` (or an observer, see proc_file_text): EINVAL for a non-link."""
    reader = viewer if viewer is not None else k.init_task
    node = proc_lookup(k, reader, _proc_names(path), False, path)
    if node.kind != "lnk":
        raise kerr(errno.EINVAL, f"{path} is not a symbolic link", "fs/stat.c:414")
    return proc_link_text(k, node, reader, viewer is None)


def proc_pid_readdir(ns: PidNamespace) -> list[int]:
    """The thread-group ids /proc lists, ascending: each number whose task leads its group (fs/proc/base.c:3411-3457).

    next_tgid walks the namespace's pids upwards and keeps those whose task has a group leader's pid.
    """
    out = []
    for nr in sorted(n for n, p in ns.idr.items() if p is not None):
        task = find_task_by_pid_ns(nr, ns)
        if task is not None and task.group_leader is task:  # has_group_leader_pid
            out.append(nr)
    return out


def proc_task_readdir(leader: Task, ns: PidNamespace) -> list[int]:
    """The thread ids of ``leader``'s group, leader first then thread-list order (fs/proc/base.c:3749-3786, first_tid/next_tid)."""
    group = leader.group_leader if leader.group_leader is not None else leader
    sig = group.signal
    threads = [group] + [t for t in (sig.thread_head if sig is not None else []) if t is not group]
    return [nr for nr in (pid_nr_ns(t.thread_pid, ns) for t in threads) if nr]


def proc_listdir(k: KernelState, path: str, viewer: Task | None = None) -> list[str]:
    """The names getdents(2) would return for a /proc directory (no ``.`` and ``..``); ENOTDIR for a file."""
    reader = viewer if viewer is not None else k.init_task
    node = proc_lookup(k, reader, _proc_names(path), True, path)
    if node.kind != "dir":
        raise kerr(errno.ENOTDIR, f"{path} is not a directory", "fs/readdir.c:58")
    ns = proc_reader_ns(k, reader)
    if not node.parts:
        return [*PROC_ROOT_LINKS, *map(str, proc_pid_readdir(ns))]
    task = node.task
    assert task is not None
    last = node.parts[-1]
    if len(node.parts) == 1 or (len(node.parts) == 3 and node.parts[1] == "task"):
        return list(TGID_ENTRIES if node.whole else TID_ENTRIES)
    if last == "task":
        return [str(nr) for nr in proc_task_readdir(task, ns)]
    if last == "fd":
        return [str(fd) for fd in proc_readfd_common(task)]
    return proc_ns_dir_readdir()


__all__ = ["TGID_ENTRIES", "TID_ENTRIES", "ProcNode", "proc_listdir", "proc_lookup", "proc_pid_readdir", "proc_read",
           "proc_readlink", "proc_task_readdir"]
