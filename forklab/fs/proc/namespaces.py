"""/proc/<pid>/ns (fs/proc/namespaces.c): one link per namespace type, read as ``type:[inode]``.

``ns_entries`` is 5.6's list for a kernel with every namespace type configured, in its order;
each entry's getter finds the namespace as the kernel's ``*_get`` operation does (the nsproxy's
for most, the credentials' user namespace, the active pid namespace, and for
pid_for_children the nsproxy's only once that namespace has a child reaper); a task without
one (an exited task has no nsproxy) gives ENOENT. The text is ``ns_get_name``'s, with the
real namespace name for the *_for_children entries, and the model's inode numbers (the boot
namespaces have 5.6's fixed PROC_*_INIT_INO numbers).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from forklab.errors import kerr
from forklab.kernel.pid import task_active_pid_ns

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task



class NsCommon(Protocol):
    """What ns_get_name reads of a namespace: its ns_common inode number."""

    inum: int


NsGetter = Callable[["Task"], "NsCommon | None"]


def _nsproxy_ns(field: str) -> NsGetter:
    """A getter of one namespace of the task's nsproxy (netns_get, utsns_get, ipcns_get, mntns_get, ...)."""
    def get(task: Task) -> NsCommon | None:
        return getattr(task.nsproxy, field) if task.nsproxy is not None else None
    return get


def _pidns(task: Task) -> NsCommon | None:
    """pidns_get: the pid namespace the task lives in, none once it has no struct pid."""
    if task.thread_pid is None and task.pid_links[0] is None:
        return None
    return task_active_pid_ns(task)


def _pidns_for_children(task: Task) -> NsCommon | None:
    """pidns_for_children_get: the nsproxy's pid_ns_for_children, none until it has a child reaper."""
    ns = task.nsproxy.pid_ns_for_children if task.nsproxy is not None else None
    return ns if ns is not None and ns.child_reaper is not None else None


def _userns(task: Task) -> NsCommon | None:
    """userns_get: the user namespace of the task's credentials."""
    return task.cred.user_ns if task.cred is not None else None


# ns_entries (fs/proc/namespaces.c:15-39): (entry name, the name ns_get_name prints, the getter)
ns_entries: tuple[tuple[str, str, NsGetter], ...] = (
    ("net", "net", _nsproxy_ns("net_ns")), ("uts", "uts", _nsproxy_ns("uts_ns")),
    ("ipc", "ipc", _nsproxy_ns("ipc_ns")), ("pid", "pid", _pidns),
    ("pid_for_children", "pid", _pidns_for_children), ("user", "user", _userns),
    ("mnt", "mnt", _nsproxy_ns("mnt_ns")), ("cgroup", "cgroup", _nsproxy_ns("cgroup_ns")),
    ("time", "time", _nsproxy_ns("time_ns")), ("time_for_children", "time", _nsproxy_ns("time_ns_for_children")),
)


def proc_ns_dir_readdir() -> list[str]:
    """The names in /proc/<pid>/ns, in ns_entries order (fs/proc/namespaces.c:118-143)."""
    return [name for name, _, _ in ns_entries]


def proc_ns_link_text(task: Task, entry: str) -> str:
    """What readlink of /proc/<pid>/ns/<entry> returns, ns_get_name's ``type:[inum]``; ENOENT without one.

    ENOENT for a name not in ns_entries (proc_ns_dir_lookup) or a task without that namespace
    (the ``*_get`` operation returned NULL).
    """
    for name, real_name, get in ns_entries:
        if name == entry:
            ns = get(task)
            if ns is None:
                raise kerr(errno.ENOENT, f"task {task.pid} has no {entry} namespace", "fs/nsfs.c:221")
            return f"{real_name}:[{ns.inum}]"
    raise kerr(errno.ENOENT, f"/proc/<pid>/ns has no entry {entry!r}", "fs/proc/namespaces.c:157")


__all__ = ["ns_entries", "proc_ns_dir_readdir", "proc_ns_link_text"]
