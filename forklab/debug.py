"""Whole-kernel invariants and snapshots: the model checks itself.

``check_invariants`` recomputes every reference count from its holders (cred usage, user
processes, nsproxy and namespace counts, sighand/signal counts, files and fs users, mm users,
page refcounts and mapcounts) and checks the pid maps, the parent/child/thread lists, the
runqueues and the cgroup charges against the tasks. It raises ``InternalError`` listing
every violation.

``snapshot`` walks every object reachable from the KernelState and returns a canonical nested
tuple, with objects numbered in the order they are first reached, so two snapshots are equal
exactly when the two states are the same up to object identity. Excluded: trace listeners,
the clock, namespace inode numbers, mm context ids and pid-allocation cursors, which a failed call advances
on Linux too (a failed fork leaves the next pid one higher, as Linux's idr_alloc_cyclic does),
and close-on-exec bits of free fds, which the kernel leaves stale and nothing can observe.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from forklab.errors import InternalError
from forklab.fs.debug import check_fs_invariants
from forklab.include.linux.fdtable import Fdtable
from forklab.include.linux.pid import PIDNS_ADDING, PidNamespace
from forklab.include.linux.sched import (
    PF_EXITING,
    PIDTYPE,
    Task,
    TaskState,
)
from forklab.mm.debug import check_mm_invariants
from forklab.mm.page_alloc import MemMap

if TYPE_CHECKING:
    from forklab.state import KernelState

# Counters that move on a failed call on Linux too: the clock and the CPU time it charges (stime), the trace
# sequence, cursors (pid, inode, mm context, anon_vma serial), and the per-call fault-injection state; and the
# trace's own machinery (its virtual clock and event numbers), which is not kernel state.
SNAPSHOT_SKIP = frozenset({"listeners", "tracer", "_seq", "fault", "clock_ns", "stime", "_inum", "idr_next", "inum",
                           "current", "last_mm_ctx_id", "context_id", "_anon_vma_serial",
                           "vmacache"})


def live_tasks(k: KernelState) -> list[Task]:
    """Every task not yet released: running, sleeping or zombie (not the idle task)."""
    return [t for t in k.all_threads() if t.exit_state != TaskState.EXIT_DEAD]


def check_invariants(k: KernelState) -> None:
    """Raise InternalError if any invariant of the kernel state is broken."""
    errors: list[str] = []
    tasks = live_tasks(k)
    _check_lists(k, tasks, errors)
    _check_pids(k, tasks, errors)
    _check_refcounts(k, tasks, errors)
    _check_sched_and_cgroups(k, tasks, errors)
    _check_subsystems(k, tasks, errors)
    if errors:
        raise InternalError("broken invariants:\n  " + "\n  ".join(errors))


def _check_lists(k: KernelState, tasks: list[Task], errors: list[str]) -> None:
    leaders = [t for t in tasks if t.group_leader is t]
    if k.nr_threads != len(tasks):
        errors.append(f"nr_threads {k.nr_threads} != {len(tasks)} tasks")
    if k.process_counts != len(leaders) or sorted(id(t) for t in k.tasks) != sorted(id(t) for t in leaders):
        errors.append("process list (init_task.tasks) does not match the thread-group leaders")
    for t in tasks:
        assert t.signal is not None
        if t.group_leader is None or t.group_leader.signal is not t.signal:
            errors.append(f"task {t.pid}: group leader does not share its signal_struct")
        if t.signal.thread_head.count(t) != 1:
            errors.append(f"task {t.pid} is not exactly once in its thread list")
        if t.group_leader is t:
            parent = t.real_parent
            if parent is None or (parent.children.count(t) != 1):
                errors.append(f"leader {t.pid} is not exactly once in its real parent's children")
        elif t.real_parent is not None and t in t.real_parent.children:
            errors.append(f"thread {t.pid} is in a children list")
        if t.tgid != (t.group_leader.pid if t.group_leader else -1):
            errors.append(f"task {t.pid}: tgid {t.tgid} is not its leader's pid")
        for c in t.children:
            if c.real_parent is not t or c.group_leader is not c:
                errors.append(f"task {t.pid} lists {c.pid} as a child, but it is not its leader-child")
    for group in {id(t.signal): t.signal for t in tasks}.values():
        assert group is not None
        n = len(group.thread_head)
        if group.nr_threads != n or group.sigcnt != n:
            errors.append(f"signal_struct: nr_threads {group.nr_threads} / sigcnt {group.sigcnt} != {n} threads")
        live = sum(1 for t in group.thread_head if not t.flags & PF_EXITING)
        if group.live != live:
            errors.append(f"signal_struct: live {group.live} != {live}")


def _check_pids(k: KernelState, tasks: list[Task], errors: list[str]) -> None:
    namespaces: dict[int, PidNamespace] = {}
    for t in tasks:
        pid = t.thread_pid
        if pid is None or t not in pid.tasks[PIDTYPE.PIDTYPE_PID]:
            errors.append(f"task {t.pid}: not attached to its struct pid")
            continue
        if t.pid != pid.numbers[0].nr:
            errors.append(f"task {t.pid}: pid field differs from its level-0 number {pid.numbers[0].nr}")
        for upid in pid.numbers:
            namespaces[id(upid.ns)] = upid.ns
            if upid.ns.idr.get(upid.nr) is not pid:
                errors.append(f"task {t.pid}: number {upid.nr} at level {upid.ns.level} not mapped to its pid")
    _check_pid_links(tasks, errors)
    for ns in namespaces.values():
        for nr, pid in ns.idr.items():
            if pid is None:
                errors.append(f"pid ns level {ns.level}: number {nr} reserved but never published")
            elif not any(pid.tasks):
                errors.append(f"pid ns level {ns.level}: number {nr} has no task")
        visible = len(ns.idr)
        if ns.pid_allocated not in (visible, visible | PIDNS_ADDING):
            errors.append(f"pid ns level {ns.level}: pid_allocated {ns.pid_allocated & ~PIDNS_ADDING} != {visible}")


def _check_pid_links(tasks: list[Task], errors: list[str]) -> None:
    """pid->tasks[type] and task->pid_links[type] point at each other; a live leader is linked once on its group's
    TGID, PGID and SID pids; the members of a process group share its session (kernel/pid.c:attach_pid, kernel/sys.c)."""
    for t in tasks:
        for kind in PIDTYPE:
            pid = t.pid_links[kind]
            if pid is not None and sum(1 for x in pid.tasks[kind] if x is t) != 1:
                errors.append(f"task {t.pid}: pid_links[{kind.name}] does not list it exactly once")
        if t.group_leader is not t or t.exit_state or t.signal is None:
            continue
        for kind in (PIDTYPE.PIDTYPE_TGID, PIDTYPE.PIDTYPE_PGID, PIDTYPE.PIDTYPE_SID):
            if t.signal.pids[kind] is None or t.pid_links[kind] is not t.signal.pids[kind]:
                errors.append(f"leader {t.pid}: not linked on its signal's {kind.name} pid")
        pgrp = t.signal.pids[PIDTYPE.PIDTYPE_PGID]
        sid = t.signal.pids[PIDTYPE.PIDTYPE_SID]
        for member in pgrp.tasks[PIDTYPE.PIDTYPE_PGID] if pgrp is not None else []:
            if member.signal is not None and member.signal.pids[PIDTYPE.PIDTYPE_SID] is not sid:
                errors.append(f"task {member.pid}: in leader {t.pid}'s process group but in another session")
        for link, linked in enumerate(t.pid_links):
            if link != PIDTYPE.PIDTYPE_PID and linked is not None:
                for other in linked.tasks[link]:
                    if other.pid_links[link] is not linked:
                        errors.append(f"task {other.pid}: on a {PIDTYPE(link).name} list its pid_links do not name")


def _count(pairs: list[tuple[Any, int]]) -> dict[int, tuple[Any, int]]:
    out: dict[int, tuple[Any, int]] = {}
    for obj, n in pairs:
        if obj is None:
            continue
        prev = out.get(id(obj), (obj, 0))
        out[id(obj)] = (obj, prev[1] + n)
    return out


def _expect(errors: list[str], what: str, field_name: str, holders: dict[int, tuple[Any, int]], extra: int = 0) -> None:
    for obj, n in holders.values():
        have = getattr(obj, field_name)
        if have != n + extra:
            errors.append(f"{what} {obj!r}: {field_name} {have} != {n + extra} holders")


def _check_refcounts(k: KernelState, tasks: list[Task], errors: list[str]) -> None:
    every = [*tasks, k.idle_task]
    creds = _count([(t.cred, 1) for t in every] + [(t.real_cred, 1) for t in every])
    _expect(errors, "cred", "usage", creds)
    procs = Counter(id(t.real_cred.user) for t in tasks if t.real_cred is not None and t.real_cred.user is not None)
    for user in k.uidhash.values():
        if user.processes != procs.get(id(user), 0):
            errors.append(f"uid {user.uid}: processes {user.processes} != {procs.get(id(user), 0)} tasks")
    users = _count([(c.user, 1) for c, _n in creds.values()])
    for user in k.uidhash.values():
        expected = users.get(id(user), (user, 0))[1] + (1 if user is k.root_user else 0)
        if user.count != expected:
            errors.append(f"uid {user.uid}: __count {user.count} != {expected}")
    alive = [t for t in tasks if not t.flags & PF_EXITING]
    nsproxies = _count([(t.nsproxy, 1) for t in [*alive, k.idle_task]])
    _expect(errors, "nsproxy", "count", nsproxies)
    sighands = _count([(t.sighand, 1) for t in [*tasks, k.idle_task]])
    _expect(errors, "sighand", "count", sighands)
    mms = _count([(t.mm, 1) for t in alive])
    _expect(errors, "mm", "mm_users", mms)
    _check_namespace_counts(k, [ns for ns, _n in nsproxies.values()], list(creds.values()), mms, errors)
    undo = _count([(t.sysvsem_undo_list, 1) for t in alive])
    _expect(errors, "sem_undo_list", "refcnt", undo)
    ioc = _count([(t.io_context, 1) for t in alive])
    _expect(errors, "io_context", "nr_tasks", ioc)


def _check_namespace_counts(k: KernelState, nsproxies: list[Any], creds: list[tuple[Any, int]],
                            mms: dict[int, tuple[Any, int]], errors: list[str]) -> None:
    """Each namespace's count equals the nsproxies, pids, child namespaces, creds and mms that hold it."""
    slots = ("uts_ns", "ipc_ns", "mnt_ns", "net_ns", "time_ns", "time_ns_for_children", "cgroup_ns")
    holders = _count([(getattr(nsp, s), 1) for nsp in nsproxies for s in slots])
    _expect(errors, "namespace", "count", holders)
    pid_holders: list[tuple[Any, int]] = [(nsp.pid_ns_for_children, 1) for nsp in nsproxies]
    pids = {id(p): p for ns in _all_pid_namespaces(k, nsproxies) for p in ns.idr.values() if p is not None}
    distinct_files = {id(f): p for p, f in _pidfd_files(k)}
    pidfd_refs = Counter(id(p) for p in distinct_files.values())
    pids.update({id(p): p for p, _f in _pidfd_files(k)})
    hashed = {id(p) for ns in _all_pid_namespaces(k, nsproxies) for p in ns.idr.values() if p is not None}
    for p in pids.values():
        want = (1 if id(p) in hashed else 0) + pidfd_refs.get(id(p), 0)
        if p.count != want:
            errors.append(f"struct pid {p!r}: count {p.count} != {want} holders")
    pid_holders += [(p.numbers[p.level].ns, 1) for p in pids.values()]
    pid_nss = _all_pid_namespaces(k, nsproxies)
    pid_holders += [(ns.parent, 1) for ns in pid_nss]
    counted = _count(pid_holders)
    for ns in pid_nss:
        if ns.parent is not None and ns.count != counted.get(id(ns), (ns, 0))[1]:
            errors.append(f"pid namespace {ns!r}: count {ns.count} != {counted.get(id(ns), (ns, 0))[1]} holders")
    user_holders: list[tuple[Any, int]] = [(c.user_ns, 1) for c, _n in creds]
    user_holders += [(getattr(nsp, s).user_ns, 0) for nsp in nsproxies for s in slots]
    user_holders += [(mm.user_ns, 1) for mm, _n in mms.values()]
    seen_ns = {id(n): n for nsp in nsproxies for n in (getattr(nsp, s) for s in slots) if n is not None}
    user_holders += [(n.user_ns, 1) for n in seen_ns.values() if n.ucounts_ns is not None]
    user_holders += [(ns.user_ns, 1) for ns in pid_nss if ns.parent is not None]
    users = _count(user_holders)
    todo = [u for u, _n in users.values()]
    user_nss: dict[int, Any] = {}
    while todo:
        u = todo.pop()
        if id(u) not in user_nss:
            user_nss[id(u)] = u
            if u.parent is not None:
                todo.append(u.parent)
    children = Counter(id(u.parent) for u in user_nss.values() if u.parent is not None)
    for u in user_nss.values():
        if u.parent is None:
            continue
        want = users.get(id(u), (u, 0))[1] + children.get(id(u), 0)
        if u.count != want:
            errors.append(f"user namespace level {u.level}: count {u.count} != {want} holders")


def _pidfd_files(k: KernelState) -> list[tuple[Any, Any]]:
    """(struct pid, file) for every pidfd file in any fd table: the file holds a pid reference."""
    out = []
    for t in live_tasks(k):
        if t.files is not None:
            for f in t.files.fdt.fd:
                if f is not None and f.private_data is not None:
                    out.append((f.private_data, f))
    return out


def _all_pid_namespaces(k: KernelState, nsproxies: list[Any]) -> list[PidNamespace]:
    found: dict[int, PidNamespace] = {}
    todo: list[PidNamespace | None] = [nsp.pid_ns_for_children for nsp in nsproxies]
    for t in live_tasks(k):
        if t.thread_pid is not None:
            todo.extend(u.ns for u in t.thread_pid.numbers)
    for pid, _file in _pidfd_files(k):  # a pidfd keeps its pid, and so the pid's namespace, alive
        todo.extend(u.ns for u in pid.numbers)
    while todo:
        ns = todo.pop()
        if ns is not None and id(ns) not in found:
            found[id(ns)] = ns
            todo.append(ns.parent)
    return list(found.values())


def _check_sched_and_cgroups(k: KernelState, tasks: list[Task], errors: list[str]) -> None:
    queued = Counter(id(t) for rq in k.runqueues for t in rq.queue)
    for rq in k.runqueues:
        if rq.nr_running != len(rq.queue):
            errors.append(f"rq {rq.cpu}: nr_running {rq.nr_running} != {len(rq.queue)}")
    for t in tasks:
        runnable = t.state == TaskState.TASK_RUNNING and not t.exit_state
        if queued.get(id(t), 0) != (1 if runnable else 0):
            errors.append(f"task {t.pid}: on {queued.get(id(t), 0)} runqueues while {t.state!r}")
    charged = Counter()  # type: Counter[int]
    for t in tasks:
        cg = t.cgroups
        while cg is not None and cg.parent is not None:
            charged[id(cg)] += 1
            cg = cg.parent
    stack = [k.cgroup_root]
    while stack:
        cg = stack.pop()
        stack.extend(cg.children)
        if cg.parent is not None and cg.counter != charged.get(id(cg), 0):
            errors.append(f"cgroup {cg.path()}: pids.current {cg.counter} != {charged.get(id(cg), 0)}")


def _check_subsystems(k: KernelState, tasks: list[Task], errors: list[str]) -> None:

    mms = list({id(t.mm): t.mm for t in tasks if t.mm is not None}.values())
    errors.extend(check_mm_invariants(k, mms))
    vm_files = Counter(id(vma.vm_file) for mm in mms for vma in mm.mmap if vma.vm_file is not None)
    errors.extend(check_fs_invariants(k, tasks, dict(vm_files)))


def _visible(obj: Any, name: str) -> Any:
    """A field as far as it is observable: close-on-exec bits of free fds are stale (fs/file.c:554-560), and
    the free list is a set however its two parts hold it (forklab/mm/page_alloc.py)."""
    value: Any = getattr(obj, name, None)
    if name == "close_on_exec" and isinstance(obj, Fdtable):
        return obj.close_on_exec & obj.open_fds
    if isinstance(obj, MemMap) and name in ("_free", "_freed"):
        return obj.free_pfns() if name == "_free" else []
    return value


def snapshot(k: KernelState) -> tuple[Any, ...]:
    """A canonical, comparable picture of everything reachable from ``k``."""
    ids: dict[int, int] = {}
    out = _snap(k, ids, 0)
    assert isinstance(out, tuple)
    return out


def _snap(obj: Any, ids: dict[int, int], depth: int) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, enum.Enum)):
        return obj
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, (list, tuple)):
        return tuple(_snap(v, ids, depth) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return ("set", tuple(sorted(repr(_snap(v, ids, depth)) for v in obj)))
    if isinstance(obj, dict):
        return ("dict", tuple(sorted(((repr(_snap(a, ids, depth)), _snap(b, ids, depth)) for a, b in obj.items()),
                                     key=lambda kv: kv[0])))
    key = id(obj)
    if key in ids:
        return ("ref", ids[key])
    ids[key] = len(ids)
    custom = getattr(obj, "snapshot_state", None)
    if callable(custom):
        return ("obj", type(obj).__name__, ids[key], _snap(custom(), ids, depth + 1))
    if is_dataclass(obj):
        names = [f.name for f in fields(obj)]
    elif hasattr(obj, "__dict__"):
        names = sorted(vars(obj))
    else:
        names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    items = tuple((n, _snap(_visible(obj, n), ids, depth + 1)) for n in names if n not in SNAPSHOT_SKIP)
    return ("obj", type(obj).__name__, ids[key], items)
