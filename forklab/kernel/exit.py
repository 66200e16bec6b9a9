"""Exit, reparenting and wait in their basic form (kernel/exit.c).

``do_exit`` releases the task's resources in the kernel's order (mm first, which releases a
vfork parent and honours CLONE_CHILD_CLEARTID), hands its children to a new reaper
(``find_new_reaper``: a live thread of the group, then the nearest child-subreaper ancestor
in the same pid namespace, then the namespace's init), becomes a zombie and notifies its
parent. The zombie keeps its pid and stays counted in ``user->processes`` until
``release_task`` runs from ``wait4`` (or at once when the parent ignores SIGCHLD).
Simplifications: no ptrace-stop states, no job control (WUNTRACED/WCONTINUED report nothing),
no rusage accumulation beyond the counters the model has.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Blocked, InternalError, KernelPanic, kerr
from forklab.include.linux.sched import PF, PIDTYPE, SIGNAL_GROUP_EXIT, SIGNAL_UNKILLABLE, Task, TaskState
from forklab.kernel.pid import detach_pid, pid_nr_ns, task_active_pid_ns
from forklab.uapi import __WALL, __WCLONE, __WNOTHREAD, SIGCHLD, WCONTINUED, WNOHANG, WUNTRACED, WaitResult

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct
    from forklab.state import KernelState


def mm_update_next_owner(k: KernelState, mm: MmStruct, p: Task) -> None:
    """Hand mm->owner to another user of the mm: children, siblings, parent, then anyone (kernel/exit.c:347-430)."""
    if mm.owner is not p:
        return
    if mm.mm_users <= 1:
        mm.owner = None
        return
    parent = p.real_parent
    candidates = [*p.children, *(parent.children if parent is not None else []),
                  *([parent] if parent is not None else []), *k.all_threads()]
    for c in candidates:
        if c is not p and c.mm is mm and not c.exit_state:
            mm.owner = c
            return
    mm.owner = None


def exit_mm(k: KernelState, tsk: Task) -> None:
    """mm_release, then detach and drop the mm (kernel/exit.c:435-488)."""
    from forklab.kernel.fork import exit_mm_release, mmput

    exit_mm_release(k, tsk)
    mm = tsk.mm
    if mm is None:
        return
    tsk.mm = None
    mm_update_next_owner(k, mm, tsk)
    mmput(k, mm)


def find_child_reaper(k: KernelState, father: Task) -> Task:
    """The pid namespace's init, or another thread of it if init itself is exiting (kernel/exit.c:501-530)."""
    from forklab.kernel.pid_namespace import zap_pid_ns_processes

    pid_ns = task_active_pid_ns(father)
    reaper = pid_ns.child_reaper
    if reaper is not father:
        assert reaper is not None
        return reaper
    assert father.signal is not None
    for thread in father.signal.thread_head:
        if not thread.flags & PF.PF_EXITING:
            pid_ns.child_reaper = thread
            return thread
    zap_pid_ns_processes(k, pid_ns, father)
    return father


def find_new_reaper(k: KernelState, father: Task, child_reaper: Task) -> Task:
    """A live thread, else the nearest subreaper ancestor in the same pid ns, else init (kernel/exit.c:539-572)."""
    assert father.signal is not None
    for thread in father.signal.thread_head:
        if not thread.flags & PF.PF_EXITING:
            return thread
    if father.signal.has_child_subreaper:
        assert father.thread_pid is not None
        ns_level = father.thread_pid.level
        reaper = father.real_parent
        while reaper is not None and reaper is not k.idle_task and reaper.thread_pid is not None \
                and reaper.thread_pid.level == ns_level:
            if reaper is child_reaper:
                break
            assert reaper.signal is not None
            if reaper.signal.is_child_subreaper:
                for thread in reaper.signal.thread_head:
                    if not thread.flags & PF.PF_EXITING:
                        return thread
            reaper = reaper.real_parent
    return child_reaper


def forget_original_parent(k: KernelState, father: Task) -> list[Task]:
    """Hand every child to the new reaper; returns the children to release now (kernel/exit.c:606-639)."""
    from forklab.kernel.ptrace import exit_ptrace
    from forklab.kernel.signal import send_signal

    if father.ptraced:
        exit_ptrace(k, father)
    child_reaper = find_child_reaper(k, father)  # a dying namespace init zaps its namespace here
    if not father.children:
        return []
    reaper = find_new_reaper(k, father, child_reaper)
    dead: list[Task] = []
    for p in list(father.children):
        for t in _threads(p):
            t.real_parent = reaper
            if not t.ptrace:
                t.parent = reaper
            if t.pdeath_signal:
                send_signal(k, t.pdeath_signal, t, PIDTYPE.PIDTYPE_TGID)
        if reaper.signal is not father.signal:
            p.exit_signal = SIGCHLD  # reparent_leader (kernel/exit.c:577-596)
            if p.exit_state == TaskState.EXIT_ZOMBIE and not p.ptrace and _thread_group_empty(p):
                from forklab.kernel.signal import do_notify_parent

                if do_notify_parent(k, p, p.exit_signal):
                    p.exit_state = TaskState.EXIT_DEAD
                    dead.append(p)
        father.children.remove(p)
        reaper.children.append(p)
        k.trace("reparent", "kernel/exit.c:620", f"child {p.pid} -> reaper {reaper.pid}", tid=father.pid)
    return dead


def _threads(p: Task) -> list[Task]:
    assert p.signal is not None
    return list(p.signal.thread_head)


def _thread_group_empty(p: Task) -> bool:
    assert p.signal is not None
    return len([t for t in p.signal.thread_head if t is not p]) == 0


def exit_notify(k: KernelState, tsk: Task, group_dead: bool) -> None:
    """Reparent the children, become a zombie, tell the parent (kernel/exit.c:645-685)."""
    from forklab.kernel.signal import do_notify_parent

    dead = forget_original_parent(k, tsk)
    tsk.exit_state = TaskState.EXIT_ZOMBIE
    autoreap: bool
    if tsk.ptrace:
        sig = tsk.exit_signal if tsk.group_leader is tsk and _thread_group_empty(tsk) else SIGCHLD
        autoreap = do_notify_parent(k, tsk, sig)
    elif tsk.group_leader is tsk:
        autoreap = False
        if _thread_group_empty(tsk):
            autoreap = do_notify_parent(k, tsk, tsk.exit_signal) if tsk.exit_signal != -1 else True
    else:
        autoreap = True
    if autoreap:
        tsk.exit_state = TaskState.EXIT_DEAD
        dead.append(tsk)
    for p in dead:
        release_task(k, p)


def do_exit(k: KernelState, tsk: Task, code: int) -> None:
    """Tear down a task in the kernel's order and leave a zombie (kernel/exit.c:711-854)."""
    from forklab.fs.file import exit_files
    from forklab.fs.fs_struct import exit_fs
    from forklab.ipc.sem import exit_sem
    from forklab.kernel.fork import exit_io_context
    from forklab.kernel.nsproxy import exit_task_namespaces
    from forklab.kernel.sched.core import deactivate_task

    if tsk.flags & PF.PF_EXITING:
        raise InternalError(f"task {tsk.pid} exits twice")
    assert tsk.signal is not None
    if tsk.signal.live == 1 and is_global_init(tsk):  # the last thread of the global init (kernel/exit.c:763-771)
        raise KernelPanic(f"Attempted to kill init! exitcode={tsk.signal.group_exit_code or code:#010x} "
                          "(kernel/exit.c:770)")
    tsk.flags |= PF.PF_EXITING
    tsk.signal.live -= 1
    group_dead = tsk.signal.live == 0
    tsk.exit_code = code
    exit_mm(k, tsk)
    exit_sem(tsk)
    exit_files(k, tsk)
    exit_fs(k, tsk)
    exit_task_namespaces(k, tsk)
    exit_io_context(tsk)
    k.trace("do_exit", "kernel/exit.c:711", f"task {tsk.pid} exits with {code:#x}", tid=tsk.pid)
    exit_notify(k, tsk, group_dead)
    deactivate_task(k, tsk)
    tsk.state = TaskState.TASK_DEAD


def is_global_init(tsk: Task) -> bool:
    """The task's thread group is pid 1 of the initial pid namespace (include/linux/sched.h:1434-1437)."""
    return tsk.group_leader is not None and tsk.group_leader.thread_pid is not None \
        and tsk.group_leader.thread_pid.numbers[0].nr == 1


def do_group_exit(k: KernelState, current: Task, exit_code: int) -> None:
    """exit_group(2) and fatal signals: kill the other threads, then exit (kernel/exit.c:876-901)."""
    sig = current.signal
    assert sig is not None
    if sig.flags & SIGNAL_GROUP_EXIT:
        exit_code = sig.group_exit_code
    else:
        sig.group_exit_code = exit_code
        sig.flags |= SIGNAL_GROUP_EXIT
    for t in list(sig.thread_head):
        if t is not current and not t.flags & PF.PF_EXITING:
            do_exit(k, t, exit_code)
    do_exit(k, current, exit_code)


def do_exit_for_signal(k: KernelState, t: Task, sig: int) -> None:
    """A fatal signal ends a task that is not in a syscall: get_signal's do_group_exit, run at once since the
    model has no CPU to let the task run first (kernel/signal.c:2740-2760)."""
    assert t.signal is not None
    if t.signal.flags & SIGNAL_UNKILLABLE and t.pid == 1 and task_active_pid_ns(t).level == 0:
        return
    do_exit(k, t, sig)


def release_task(k: KernelState, p: Task) -> None:
    """Free a dead task: uncount it, unhash its pids, drop its signal and sighand refs (kernel/exit.c:191-235)."""
    from forklab.kernel.cgroup.cgroup import cgroup_release
    from forklab.kernel.cred import exit_creds

    assert p.real_cred is not None and p.real_cred.user is not None and p.signal is not None
    leader = p.group_leader
    p.real_cred.user.processes -= 1
    cgroup_release(p)
    if p.ptrace:
        from forklab.kernel.ptrace import __ptrace_unlink

        __ptrace_unlink(p)
    __exit_signal(k, p)
    exit_creds(k, p)
    p.exit_state = TaskState.EXIT_DEAD
    k.trace("release_task", "kernel/exit.c:191", f"task {p.pid} released", tid=p.pid)
    if leader is not None and leader is not p and leader.exit_state == TaskState.EXIT_ZOMBIE \
            and _thread_group_empty(leader):
        from forklab.kernel.signal import do_notify_parent

        if do_notify_parent(k, leader, leader.exit_signal):
            leader.exit_state = TaskState.EXIT_DEAD
            release_task(k, leader)


def __exit_signal(k: KernelState, tsk: Task) -> None:
    """Unhash the task and drop its shares of signal and sighand (kernel/exit.c:72-189)."""
    sig, sighand = tsk.signal, tsk.sighand
    assert sig is not None and sighand is not None
    group_dead = tsk.group_leader is tsk
    detach_pid(k, tsk, PIDTYPE.PIDTYPE_PID)
    if group_dead:
        detach_pid(k, tsk, PIDTYPE.PIDTYPE_TGID)
        detach_pid(k, tsk, PIDTYPE.PIDTYPE_PGID)
        detach_pid(k, tsk, PIDTYPE.PIDTYPE_SID)
        if tsk in k.tasks:
            k.tasks.remove(tsk)
        if tsk.real_parent is not None and tsk in tsk.real_parent.children:
            tsk.real_parent.children.remove(tsk)
        k.process_counts -= 1
    sig.nr_threads -= 1
    if tsk in sig.thread_head:
        sig.thread_head.remove(tsk)
    k.nr_threads -= 1
    sig.sigcnt -= 1
    sighand.count -= 1
    tsk.sighand = None


def eligible_child(p: Task, pid_filter: tuple[int, object], options: int, ptrace: bool) -> bool:
    """The wait filter and the __WCLONE rule (kernel/exit.c:942-966)."""
    kind, target = pid_filter
    if kind == PIDTYPE.PIDTYPE_PID and p.thread_pid is not target:
        return False
    if kind == PIDTYPE.PIDTYPE_PGID and (p.signal is None or p.signal.pids[PIDTYPE.PIDTYPE_PGID] is not target):
        return False
    if ptrace or options & __WALL:
        return True
    return (p.exit_signal != SIGCHLD) == bool(options & __WCLONE)


def kernel_wait4(k: KernelState, current: Task, upid: int, options: int) -> WaitResult:
    """wait4(2) for exited children: reap one, or 0 with WNOHANG, or sleep (kernel/exit.c:1582-1623, 1419-1471)."""
    from forklab.kernel.pid import find_pid_ns
    from forklab.kernel.sched.core import set_current_state_sleep

    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL):
        raise kerr(errno.EINVAL, "wait4: unknown option bits", "kernel/exit.c:1590")
    if upid == -(2**31):
        raise kerr(errno.ESRCH, "wait4: pid INT_MIN", "kernel/exit.c:1595")
    ns = task_active_pid_ns(current)
    assert current.signal is not None
    if upid == -1:
        pid_filter: tuple[int, object] = (-1, None)
    elif upid < 0:
        pid_filter = (PIDTYPE.PIDTYPE_PGID, find_pid_ns(-upid, ns))
    elif upid == 0:
        pid_filter = (PIDTYPE.PIDTYPE_PGID, current.signal.pids[PIDTYPE.PIDTYPE_PGID])
    else:
        pid_filter = (PIDTYPE.PIDTYPE_PID, find_pid_ns(upid, ns))
    if pid_filter[0] != -1 and (pid_filter[1] is None):
        raise kerr(errno.ECHILD, "wait4: no such pid or process group", "kernel/exit.c:1433")
    parents = [current] if options & __WNOTHREAD else list(current.signal.thread_head)
    found = False
    for parent in parents:
        for p, traced in [(c, False) for c in parent.children] + [(c, True) for c in parent.ptraced]:
            if not eligible_child(p, pid_filter, options, traced):
                continue
            found = True
            if p.exit_state == TaskState.EXIT_ZOMBIE and _thread_group_empty(p) and (traced or not p.ptrace):
                return wait_task_zombie(k, current, p)
    if not found:
        raise kerr(errno.ECHILD, "wait4: no child matches", "kernel/exit.c:1468")
    if options & WNOHANG:
        return WaitResult(0, 0)
    set_current_state_sleep(k, current, TaskState.TASK_INTERRUPTIBLE, "wait_chldexit")
    raise Blocked(current.pid, "wait_chldexit")


def wait_task_zombie(k: KernelState, current: Task, p: Task) -> WaitResult:
    """Collect a zombie's status and release it (kernel/exit.c:974-1101)."""
    assert p.signal is not None and current.signal is not None
    pid = pid_nr_ns(p.thread_pid, task_active_pid_ns(current))
    status = p.signal.group_exit_code if p.signal.flags & SIGNAL_GROUP_EXIT else p.exit_code
    current.signal.cmin_flt += p.min_flt + p.signal.cmin_flt
    current.signal.cmaj_flt += p.maj_flt + p.signal.cmaj_flt
    p.exit_state = TaskState.EXIT_DEAD
    release_task(k, p)
    k.trace("wait_task_zombie", "kernel/exit.c:974", f"reaped {pid} status {status:#x}")
    return WaitResult(pid, status)
