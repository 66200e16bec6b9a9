"""PID allocation (kernel/pid.c): struct pid, one number per pid-namespace level.

Design. A struct pid carries one ``upid`` per level, from level 0 (the initial namespace)
down to the namespace the task lives in. ``alloc_pid`` walks from the deepest level up:
set_tid[0] names the number at the deepest level, set_tid[1] its parent's, and so on; the
other levels get the next number from the level's cyclic cursor (``idr_alloc_cyclic``). Once
a cursor has passed RESERVED_PIDS (300), allocation restarts at 300 after the wrap, so 1-299
are never reused. ``pid_max`` is global in 5.6 and bounds every level. Numbers are first
reserved with a NULL entry and made visible (``idr_replace``) only once every level succeeded
and the namespace still accepts new pids (PIDNS_ADDING).

A struct pid is freed (numbers removed from every idr) when the last task detaches from it:
zombies hold their pids until they are reaped.

Links. ``pid.tasks[type]`` lists the tasks using a pid as their ``type`` id (the kernel's
hlist of ``task->pid_links[type]``); ``task.pid_links[type]`` says which pid the task is
linked on. For PIDTYPE_PID the pointer is ``task.thread_pid``, for the others the thread
group's ``signal.pids[type]``, and only the group leader is linked for TGID, PGID and SID.
``__change_pid`` unlinks a task, repoints it and frees the old pid once no list holds a task
of any type: a reaped process-group leader's pid lives on while its group has members.

pidfds. ``pidfd_open`` finds the pid in the caller's namespace and hands a reference to a
"[pidfd]" file on the shared anon inode, the same steps copy_process's CLONE_PIDFD takes. The
6.18 profile takes PIDFD_NONBLOCK and PIDFD_THREAD and reports the later ESRCH/ENOENT rules
(pidfd_nonblock, pidfd_thread, pidfd_open_enoent in forklab/version.py); its pidfds are still
anon-inode files, not pidfs ones, which only /proc/<pid>/fd links would show.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, kerr
from forklab.fs.anon_inodes import anon_inode_getfile
from forklab.fs.file import fd_install, get_unused_fd_flags, put_unused_fd
from forklab.include.linux.list import HlistHead, long_list
from forklab.include.linux.pid import PIDNS_ADDING, Pid, PidNamespace, Upid
from forklab.include.linux.sched import PIDTYPE, PIDTYPE_PID, PIDTYPE_TGID, Task
from forklab.kernel.capability import ns_capable
from forklab.lib.idr import idr_alloc_cyclic
from forklab.trace import traced
from forklab.uapi import CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN, O_CLOEXEC, O_EXCL, O_RDWR, PIDFD_NONBLOCK

if TYPE_CHECKING:
    from forklab.state import KernelState

RESERVED_PIDS = 300  # kernel/pid.c:62
PIDFD_THREAD = O_EXCL  # include/uapi/linux/pidfd.h (6.9); its home is forklab/uapi.py, beside PIDFD_NONBLOCK


@traced
def alloc_pid(k: KernelState, ns: PidNamespace, set_tid: list[int]) -> Pid:
    """Allocate a struct pid with a number at every level up from ``ns`` (kernel/pid.c:160-304)."""
    current = k.current
    assert current is not None
    set_tid_size = len(set_tid)
    if set_tid_size > ns.level + 1:
        raise kerr(errno.EINVAL, "set_tid_size exceeds the pid namespace depth", "kernel/pid.c:178")
    if k.fault.should_fail("alloc_pid:kmem_cache_alloc"):
        raise kerr(errno.ENOMEM, "struct pid allocation failed", "kernel/pid.c:181")
    numbers: list[Upid] = []  # deepest level first while allocating
    tmp: PidNamespace | None = ns
    try:
        for i in range(ns.level, -1, -1):
            assert tmp is not None
            requested = ns.level - i < set_tid_size
            nr = _alloc_one_level(k, current, tmp, set_tid[ns.level - i] if requested else None)
            numbers.append(Upid(nr, tmp))
            tmp = tmp.parent
        if numbers[0].nr == 1 and k.fault.should_fail("alloc_pid:pid_ns_prepare_proc"):
            raise kerr(errno.ENOMEM, "mounting the new namespace's /proc failed", "kernel/pid.c:260")
        if not ns.pid_allocated & PIDNS_ADDING:
            raise kerr(errno.ENOMEM, "the pid namespace is dying (its init has exited)", "kernel/pid.c:274")
    except OSError:
        for upid in numbers:
            del upid.ns.idr[upid.nr]
        if ns.pid_allocated == PIDNS_ADDING:
            ns.idr_next = 0  # kernel/pid.c:298: first pid of the ns failed, reset the cursor
        raise
    pid = Pid(count=1, level=ns.level, numbers=list(reversed(numbers)))
    ns.count += 1  # get_pid_ns (kernel/pid.c:265)
    for upid in numbers:
        upid.ns.idr[upid.nr] = pid  # idr_replace: visible to find_pid_ns
        upid.ns.pid_allocated += 1
    if k.listeners:
        k.trace("alloc_pid", "kernel/pid.c:160", f"{pid!r}")
    return pid


def _alloc_one_level(k: KernelState, current: Task, tmp: PidNamespace, tid: int | None) -> int:
    """One iteration of alloc_pid's level loop (kernel/pid.c:188-248): a chosen (``tid``) or a cyclic number.

    A requested tid of 0 is invalid like any other below 1 (kernel/pid.c:194).
    """
    if tid is not None:
        if tid < 1 or tid >= pid_max_of(k, tmp):
            raise kerr(errno.EINVAL, f"set_tid {tid} is outside [1, pid_max)", "kernel/pid.c:194")
        if tid != 1 and tmp.child_reaper is None:
            raise kerr(errno.EINVAL, "set_tid other than 1 in a pid namespace without an init",
                       "kernel/pid.c:201")
        assert tmp.user_ns is not None
        if not (ns_capable(current, tmp.user_ns, CAP_SYS_ADMIN) or (
                k.has("set_tid_checkpoint_restore") and ns_capable(current, tmp.user_ns, CAP_CHECKPOINT_RESTORE))):
            raise kerr(errno.EPERM, "set_tid needs CAP_SYS_ADMIN in the pid namespace's user namespace",
                       "kernel/pid.c:203")
        if k.fault.should_fail("alloc_pid:idr_alloc"):
            raise kerr(errno.ENOMEM, "idr node allocation failed", "kernel/pid.c:212")
        if tid in tmp.idr:
            raise kerr(errno.EEXIST, f"set_tid {tid} is already in use", "kernel/pid.c:219")
        tmp.idr[tid] = None
        return tid
    pid_min = RESERVED_PIDS if tmp.idr_next > RESERVED_PIDS else 1
    if k.fault.should_fail("alloc_pid:idr_alloc_cyclic"):
        raise kerr(errno.ENOMEM, "idr node allocation failed", "kernel/pid.c:233")
    nr = idr_alloc_cyclic(tmp, pid_min, pid_max_of(k, tmp))
    if nr < 0:
        raise kerr(errno.EAGAIN, f"no free pid in level {tmp.level} below pid_max {pid_max_of(k, tmp)}",
                   "kernel/pid.c:241")
    return nr


def pid_max_of(k: KernelState, ns: PidNamespace) -> int:
    """The pid_max bounding ``ns``: global in 5.6 (kernel/pid.c:60), per namespace from 6.14."""
    return ns.pid_max if k.has("pid_max_per_ns") else k.pid_max


def get_pid(pid: Pid) -> Pid:
    """Take a reference on a struct pid (include/linux/pid.h:77-82)."""
    pid.count += 1
    return pid


def put_pid(k: KernelState, pid: Pid | None) -> None:
    """Drop a reference; the last one frees the struct and drops its namespace (kernel/pid.c:103-116)."""
    if pid is None:
        return
    pid.count -= 1
    if pid.count == 0:
        from forklab.kernel.pid_namespace import (
            put_pid_ns,  # import cycle: forklab.kernel.pid is still loading when this module loads
        )

        put_pid_ns(k, pid.numbers[pid.level].ns)


@traced
def free_pid(k: KernelState, pid: Pid) -> None:
    """Remove every number of ``pid`` from its namespaces, then drop the idr's reference (kernel/pid.c:124-158)."""
    for upid in pid.numbers:
        ns = upid.ns
        ns.pid_allocated -= 1
        if ns.pid_allocated == PIDNS_ADDING:
            ns.pid_allocated = 0  # the first fork into this namespace failed
        if ns.pid_allocated in (1, 2) and ns.child_reaper is not None:
            from forklab.kernel.sched.core import (
                wake_up_process,  # import cycle: forklab.kernel.pid is still loading when this module loads
            )

            wake_up_process(k, ns.child_reaper)
        del ns.idr[upid.nr]
    if k.listeners:
        k.trace("free_pid", "kernel/pid.c:124", f"{pid!r}")
    put_pid(k, pid)


def task_pid_ptr(task: Task, kind: int) -> Pid | None:
    """The struct pid of ``task`` for ``kind`` (kernel/pid.c:325-330)."""
    if kind == PIDTYPE_PID:
        return task.thread_pid
    assert task.signal is not None
    return task.signal.pids[kind]


def attach_pid(task: Task, kind: PIDTYPE) -> None:
    """Link ``task`` into its struct pid's task list for ``kind`` (kernel/pid.c:335-339)."""
    pid = task_pid_ptr(task, kind)
    if pid is None:
        raise InternalError(f"attach_pid: task {task.pid} has no struct pid of type {kind.name}")
    tasks = pid.tasks[kind] = long_list(pid.tasks[kind], HlistHead)  # NOTE: O(1) once long (include/linux/list.py)
    tasks.insert(0, task)  # hlist_add_head_rcu(&task->pid_links[type], &pid->tasks[type])
    task.pid_links[kind] = pid


def __change_pid(k: KernelState, task: Task, kind: PIDTYPE, new: Pid | None) -> None:
    """Unlink ``task`` from its ``kind`` pid and point it at ``new``; free the old pid once unused (kernel/pid.c:341-358)."""
    pid = task_pid_ptr(task, kind)
    if pid is None or task not in pid.tasks[kind]:
        raise InternalError(f"__change_pid: task {task.pid} is not linked on its {kind.name} pid {pid!r}")
    pid.tasks[kind].remove(task)  # hlist_del_rcu(&task->pid_links[type])
    task.pid_links[kind] = None
    if kind == PIDTYPE_PID:  # *pid_ptr = new
        task.thread_pid = new
    else:
        assert task.signal is not None
        task.signal.pids[kind] = new
    if kind == PIDTYPE_PID and k.has("pidfd_poll_hup"):  # 6.9: the reaped task's pidfd pollers get POLLHUP
        from forklab.fs.select import pollwake  # import cycle: fs/select.py imports kernel/fork.py, which imports this

        for waiter in list(pid.wait_pidfd):  # wake_up_all(&pid->wait_pidfd)
            pollwake(k, waiter)
    if any(pid.tasks):  # NOTE: pid_has_task of every type (kernel/pid.c:353-355), as one test of the four lists
        return
    free_pid(k, pid)


def detach_pid(k: KernelState, task: Task, kind: PIDTYPE) -> None:
    """Unlink ``task``; free the pid once no task of any kind uses it (kernel/pid.c:360-363)."""
    __change_pid(k, task, kind, None)


def change_pid(k: KernelState, task: Task, kind: PIDTYPE, pid: Pid) -> None:
    """Move ``task``'s ``kind`` link to ``pid``, freeing the old pid if that was its last use (kernel/pid.c:365-370)."""
    __change_pid(k, task, kind, pid)
    attach_pid(task, kind)


def pid_has_task(pid: Pid, kind: int) -> bool:
    """Some task uses ``pid`` as its ``kind`` id (include/linux/pid.h:88-91)."""
    return bool(pid.tasks[kind])


def pid_task(pid: Pid | None, kind: PIDTYPE) -> Task | None:
    """The first task linked to ``pid`` for ``kind`` (kernel/pid.c:381-393)."""
    if pid is None or not pid.tasks[kind]:
        return None
    return pid.tasks[kind][0]


def find_pid_ns(nr: int, ns: PidNamespace) -> Pid | None:
    """The visible struct pid with number ``nr`` in ``ns`` (kernel/pid.c:313-316)."""
    return ns.idr.get(nr)


def find_vpid(current: Task, nr: int) -> Pid | None:
    """The visible struct pid with number ``nr`` in ``current``'s pid namespace (kernel/pid.c:319-322)."""
    return find_pid_ns(nr, task_active_pid_ns(current))


def find_get_pid(current: Task, nr: int) -> Pid | None:
    """find_vpid with a reference taken, which the caller drops with put_pid (kernel/pid.c:445-454)."""
    pid = find_vpid(current, nr)
    return get_pid(pid) if pid is not None else None  # get_pid(NULL) is NULL (include/linux/pid.h:79-84)


def pid_nr_ns(pid: Pid | None, ns: PidNamespace) -> int:
    """The number ``pid`` has in ``ns``, or 0 if it is not visible there (kernel/pid.c:457-469)."""
    if pid is not None and ns.level <= pid.level:
        upid = pid.numbers[ns.level]
        if upid.ns is ns:
            return upid.nr
    return 0


def __task_pid_nr_ns(task: Task, kind: PIDTYPE, ns: PidNamespace) -> int:
    """``task``'s ``kind`` id (pid, tgid, pgrp, session) as numbered in ``ns``; 0 once it is unhashed (kernel/pid.c:477-490)."""
    if task.thread_pid is None:  # pid_alive (include/linux/sched.h:1350-1353)
        return 0
    return pid_nr_ns(task_pid_ptr(task, kind), ns)


def ns_of_pid(pid: Pid) -> PidNamespace:
    """The namespace a pid was allocated in (include/linux/pid.h:141-148)."""
    return pid.numbers[pid.level].ns


def task_active_pid_ns(task: Task) -> PidNamespace:
    """The pid namespace ``task`` lives in (kernel/pid.c:493-496)."""
    pid = task.thread_pid if task.thread_pid is not None else task.pid_links[PIDTYPE_PID]
    if pid is None:
        raise InternalError(f"task {task.comm} has no struct pid")
    return ns_of_pid(pid)


def pid_vnr(current: Task, pid: Pid | None) -> int:
    """``pid``'s number as seen from ``current``'s pid namespace (kernel/pid.c:471-475)."""
    return pid_nr_ns(pid, task_active_pid_ns(current))


def find_task_by_pid_ns(nr: int, ns: PidNamespace) -> Task | None:
    """The task with thread id ``nr`` in ``ns`` (kernel/pid.c:398-403)."""
    return pid_task(find_pid_ns(nr, ns), PIDTYPE_PID)


def find_task_by_vpid(current: Task, vnr: int) -> Task | None:
    """The task with thread id ``vnr`` in ``current``'s namespace (kernel/pid.c:405-408)."""
    return find_task_by_pid_ns(vnr, task_active_pid_ns(current))


def pidfd_create(k: KernelState, current: Task, pid: Pid, flags: int = 0) -> int:
    """A new O_RDWR|O_CLOEXEC "[pidfd]" anon-inode fd holding a reference on ``pid`` (kernel/pid.c:522-532).

    The fd, file and install steps are anon_inode_getfd's (fs/anon_inodes.c:122-140). ``flags``
    (6.18 profile) add PIDFD_NONBLOCK to the file's flags, and PIDFD_THREAD by hand, as
    __pidfd_prepare does (anon_inode_getfile keeps only O_ACCMODE | O_NONBLOCK).
    """
    get_pid(pid)
    try:
        fd = get_unused_fd_flags(k, current, O_RDWR | O_CLOEXEC)
    except OSError:
        put_pid(k, pid)
        raise
    try:
        file = anon_inode_getfile(k, "[pidfd]", pid, O_RDWR | O_CLOEXEC | (flags & PIDFD_NONBLOCK))
    except OSError:
        put_unused_fd(current, fd)
        put_pid(k, pid)
        raise
    file.f_flags |= flags & PIDFD_THREAD
    fd_install(current, fd, file)
    if k.listeners:
        k.trace("pidfd_create", "kernel/pid.c:526", f"fd {fd} -> {pid!r}")
    return fd


def _pidfd_open_flags(k: KernelState) -> int:
    """The flags pidfd_open takes: none in 5.6 (kernel/pid.c:555); PIDFD_NONBLOCK from 5.10, PIDFD_THREAD from 6.9."""
    return (PIDFD_NONBLOCK if k.has("pidfd_nonblock") else 0) | (PIDFD_THREAD if k.has("pidfd_thread") else 0)


def _pidfd_open_target(k: KernelState, p: Pid, flags: int) -> None:
    """Which pids get a pidfd: a thread-group leader's, EINVAL otherwise (kernel/pid.c:565-568); later versions below.

    6.9 (pidfd_thread): with PIDFD_THREAD any thread's pid. 6.15 (pidfd_open_enoent): a pid
    with no task is ESRCH and a thread's pid without PIDFD_THREAD ENOENT (pidfd_prepare).
    """
    if k.has("pidfd_open_enoent"):
        if not pid_has_task(p, PIDTYPE_PID):
            raise kerr(errno.ESRCH, f"{p!r} has no task: it was reaped", "kernel/fork.c:pidfd_prepare")
        if not flags & PIDFD_THREAD and not pid_has_task(p, PIDTYPE_TGID):
            raise kerr(errno.ENOENT, f"{p!r} is not a thread-group leader's and PIDFD_THREAD is not set",
                       "kernel/fork.c:pidfd_prepare")
        return
    kind = PIDTYPE_PID if flags & PIDFD_THREAD else PIDTYPE_TGID
    if not pid_has_task(p, kind):
        raise kerr(errno.EINVAL, f"{p!r} is not a thread-group leader's: a pidfd of a thread is EINVAL in 5.6",
                   "kernel/pid.c:568")


def sys_pidfd_open(k: KernelState, current: Task, pid: int, flags: int) -> int:
    """pidfd_open(2): a pidfd for thread-group leader ``pid`` of the caller's namespace (kernel/pid.c:550-572)."""
    if flags & ~_pidfd_open_flags(k):
        raise kerr(errno.EINVAL, f"pidfd_open flags {flags:#x} are not valid (5.6 takes none)", "kernel/pid.c:555")
    if pid <= 0:
        raise kerr(errno.EINVAL, f"pid {pid} is not positive", "kernel/pid.c:558")
    p = find_get_pid(current, pid)
    if p is None:
        raise kerr(errno.ESRCH, f"no pid {pid} in the caller's pid namespace", "kernel/pid.c:562")
    try:
        _pidfd_open_target(k, p, flags)
        return pidfd_create(k, current, p, flags)
    finally:
        put_pid(k, p)


def disable_pid_allocation(ns: PidNamespace) -> None:
    """Stop new pids in ``ns`` (kernel/pid.c:306-311)."""
    ns.pid_allocated &= ~PIDNS_ADDING
