"""The process lifecycle as kernel/exit.c runs it: exit states, thread groups, reparenting, rusage,
wait4/waitid rules, stop/continue reports and orphaned process groups.

Sources (Linux 5.6.4): kernel/exit.c __exit_signal 92-174, release_task 191-235,
will_become_orphaned_pgrp 270-287, is_current_pgrp_orphaned 289-298, has_stopped_jobs 300-310,
kill_orphaned_pgrp 317-345, find_new_reaper 539-572, reparent_leader 577-596,
forget_original_parent 606-639, exit_notify 645-685, do_group_exit 876-901, wait_task_zombie
974-1101, wait_task_stopped 1133-1198, wait_task_continued 1205-1248, wait_consider_task
1257-1358, do_wait 1419-1471, pidfd_get_pid 1473-1488, kernel_waitid 1490-1580, kernel_wait4
1582-1623.
"""

from __future__ import annotations

import ast
import errno
from pathlib import Path

import pytest
from conftest import assert_cites, expect_errno, fork_child, gone, map_page, read_int, state, unprivileged
from hypothesis import given, settings
from hypothesis import strategies as st

import forklab.kernel.exit as exit_c
import forklab.kernel.pid as pid_c
from forklab import Blocked, InternalError, SigAction, TaskState
from forklab.include.linux.sched import PIDTYPE, PIDTYPE_MAX, SIGNAL_STOP_CONTINUED, SIGNAL_STOP_STOPPED
from forklab.kernel.exit import (
    EXIT_TRACE,
    WaitOpts,
    exit_state_advance,
    has_stopped_jobs,
    is_current_pgrp_orphaned,
    wait_task_zombie,
    will_become_orphaned_pgrp,
)
from forklab.trace import Recorder
from forklab.uapi import (
    __WNOTHREAD,
    CLD_CONTINUED,
    CLD_EXITED,
    CLD_KILLED,
    CLD_STOPPED,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_PIDFD,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    P_ALL,
    P_PGID,
    P_PID,
    P_PIDFD,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    PROT_READ,
    PROT_WRITE,
    PTRACE_SEIZE,
    SI_USER,
    SIGCHLD,
    SIGCONT,
    SIGHUP,
    SIGKILL,
    SIGSTOP,
    SIGUSR1,
    WCONTINUED,
    WEXITED,
    WNOHANG,
    WNOWAIT,
    WSTOPPED,
    WUNTRACED,
    CloneArgs,
    Rusage,
    SigInfo,
    Timeval,
)

THREAD = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM
HANDLER = 0x4000  # a user handler address: the model records its delivery instead of running it
INT_MIN = -(2**31)


def thread(k, p):
    """A CLONE_THREAD sibling of ``p``."""
    return k.find_task(k.clone(p, THREAD))


def timeval(ns: int) -> Timeval:
    """ns_to_kernel_old_timeval, computed independently of the model."""
    return Timeval(ns // 1_000_000_000, ns % 1_000_000_000 // 1000)


def pending_infos(t):
    """The queued siginfos of ``t``'s thread group, in queue order."""
    return list(t.signal.shared_pending.list)


# --- the exit state machine ---------------------------------------------------------------------------


def test_exit_state_is_only_assigned_by_exit_state_advance():
    """Every write of ``exit_state`` in kernel/exit.py is inside exit_state_advance (the model's one door
    for kernel/exit.c:660, 676, 589, 226, 1000, 1081)."""
    tree = ast.parse(Path(exit_c.__file__).read_text(encoding="utf-8"))
    writers = []
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
            if any(isinstance(t, ast.Attribute) and t.attr == "exit_state" for t in targets):
                writers.append(fn.name)
    assert writers == ["exit_state_advance"]


def test_exit_state_steps_other_than_the_kernels_are_internal_errors(k, init):
    """running -> EXIT_DEAD and EXIT_ZOMBIE -> running are no kernel step (only exit_notify's 0 -> EXIT_ZOMBIE,
    kernel/exit.c:660, starts the chain): InternalError, state untouched."""
    c = fork_child(k)
    before = state(k)
    with pytest.raises(InternalError):
        exit_state_advance(k, c, TaskState.EXIT_DEAD, "test")
    assert state(k) == before
    k.exit(c, 0)
    with pytest.raises(InternalError):
        exit_state_advance(k, c, TaskState.TASK_RUNNING, "test")
    assert c.exit_state == TaskState.EXIT_ZOMBIE
    k.check_invariants()


def test_double_reap_is_an_internal_error(k, init):
    """wait_task_zombie's cmpxchg EXIT_ZOMBIE -> EXIT_DEAD (kernel/exit.c:1000) on a task already reaped:
    the model has no concurrent reaper, so a second reap is a bug and raises InternalError."""
    c = fork_child(k)
    k.exit(c, 0)
    assert k.wait4(init, c.pid, 0) == (c.pid, 0)
    assert c.exit_state == TaskState.EXIT_DEAD
    with pytest.raises(InternalError):
        wait_task_zombie(k, init, WaitOpts(wo_type=PIDTYPE_MAX, wo_flags=WEXITED, wo_pid=None), c)
    k.check_invariants()


def test_every_task_passes_through_zombie(k, init):
    """exit_notify sets EXIT_ZOMBIE first even for an autoreaped thread (kernel/exit.c:660, 673-676)."""
    p = fork_child(k)
    t = thread(k, p)
    rec = Recorder()
    k.listeners.append(rec)
    k.exit(t, 0)
    steps = [e.detail for e in rec.events if e.kind == "exit_state"]
    assert len(steps) == 2 and "EXIT_ZOMBIE" in steps[0] and "EXIT_DEAD" in steps[1]
    assert gone(k, t.pid)
    k.check_invariants()


# --- thread groups -----------------------------------------------------------------------------------------


def test_leader_exiting_first_is_reported_once_after_its_last_thread(k):
    """A leader with live threads stays an unreported zombie (exit_notify, kernel/exit.c:669-672;
    delay_group_leader in wait_consider_task, 1301); the last thread's release_task notifies the
    leader's parent (214-233), with the leader's own status."""
    q = fork_child(k)
    k.rt_sigaction(q, SIGCHLD, SigAction(HANDLER))
    p = fork_child(k, q)
    t = thread(k, p)
    c = fork_child(k, p)
    k.exit(p, 5)
    assert p.exit_state == TaskState.EXIT_ZOMBIE and not pending_infos(q)
    assert c.real_parent is t  # find_new_reaper: a live thread first (kernel/exit.c:545-547)
    assert k.wait4(q, p.pid, WNOHANG) == (0, 0)
    assert k.waitid(q, P_PID, p.pid, WEXITED | WNOHANG) is None
    k.exit(t, 9)
    assert gone(k, t.pid) and c.real_parent is k.init_task
    infos = [i for i in pending_infos(q) if i.si_signo == SIGCHLD]
    assert [(i.si_code, i.si_pid, i.si_status) for i in infos] == [(CLD_EXITED, p.pid, 5)]
    assert k.wait4(q, p.pid, 0) == (p.pid, 5 << 8)
    assert gone(k, p.pid)
    k.check_invariants()


def test_delayed_leader_keeps_wstopped_wait_pending_but_a_plain_zombie_does_not(k):
    """A zombie leader with threads clears notask_error even without WEXITED (kernel/exit.c:1324-1325), so
    WNOHANG returns nothing; a reapable zombie without WEXITED is skipped by wait_task_zombie (983-984)
    and leaves ECHILD (1459)."""
    q = fork_child(k)
    p = fork_child(k, q)
    t = thread(k, p)
    k.exit(p, 0)
    assert k.waitid(q, P_PID, p.pid, WSTOPPED | WNOHANG) is None
    k.exit(t, 0)
    before = state(k)
    e = expect_errno(errno.ECHILD, k.waitid, q, P_PID, p.pid, WSTOPPED | WNOHANG)
    assert_cites(e, "kernel/exit.c", 1459)
    assert state(k) == before
    assert k.waitid(q, P_PID, p.pid, WEXITED) == SigInfo(SIGCHLD, CLD_EXITED, p.pid, 0, 0)
    k.check_invariants()


def test_wait_from_a_non_leader_thread_scans_its_own_children_first(k):
    """do_wait starts at current and walks while_each_thread (kernel/exit.c:1443-1456): a thread's own
    children come before the leader's, and the leader's before the thread's when the leader waits."""
    p = fork_child(k)
    t = thread(k, p)
    c_leader = fork_child(k, p)
    c_thread = fork_child(k, t)
    assert c_thread.real_parent is t and c_thread in t.children
    k.exit(c_leader, 1)
    k.exit(c_thread, 2)
    assert k.wait4(t, -1, 0) == (c_thread.pid, 2 << 8)
    assert k.wait4(t, -1, 0) == (c_leader.pid, 1 << 8)
    d_leader, d_thread = fork_child(k, p), fork_child(k, t)
    k.exit(d_thread, 4)
    k.exit(d_leader, 3)
    assert k.wait4(p, -1, 0) == (d_leader.pid, 3 << 8)
    assert k.wait4(p, -1, 0) == (d_thread.pid, 4 << 8)
    k.check_invariants()


def test_wnothread_waits_only_for_the_callers_own_children(k):
    """__WNOTHREAD stops the thread walk after current (kernel/exit.c:1454-1455): ECHILD (1459), nothing changes."""
    p = fork_child(k)
    t = thread(k, p)
    c = fork_child(k, p)
    k.exit(c, 0)
    before = state(k)
    e = expect_errno(errno.ECHILD, k.wait4, t, -1, __WNOTHREAD | WNOHANG)
    assert_cites(e, "kernel/exit.c", 1459)
    assert state(k) == before
    assert k.wait4(t, -1, 0) == (c.pid, 0)
    k.check_invariants()


def test_sleeping_thread_is_woken_by_a_child_of_its_leader(k):
    """A thread sleeps on the group's wait_chldexit (kernel/exit.c:1427, 1464); any child's
    do_notify_parent wakes it (kernel/signal.c:1996-1998) and its next wait4 reaps the child."""
    p = fork_child(k)
    t = thread(k, p)
    c = fork_child(k, p)
    switches = t.nvcsw
    with pytest.raises(Blocked):
        k.wait4(t, -1, 0)
    assert t.state == TaskState.TASK_INTERRUPTIBLE and t.waits_on == "wait_chldexit"
    assert t.nvcsw == switches + 1  # schedule() from a sleeping state is a voluntary switch
    k.check_invariants()
    k.exit(c, 6)
    assert t.state == TaskState.TASK_RUNNING
    assert k.wait4(t, -1, 0) == (c.pid, 6 << 8)
    k.check_invariants()


def test_subreaper_adopts_children_forked_by_other_threads(k):
    """A child of a thread goes to another live thread of that group first (find_alive_thread,
    kernel/exit.c:545-547), and to the subreaper once the whole group is gone (551-567)."""
    s = fork_child(k)
    k.prctl(s, PR_SET_CHILD_SUBREAPER, 1)
    a = fork_child(k, s)
    at = thread(k, a)
    b = fork_child(k, at)
    assert b.real_parent is at and b.signal.has_child_subreaper
    k.exit(at, 0)
    assert b.real_parent is a and b in a.children
    k.exit_group(a, 0)
    assert b.real_parent is s and b.parent is s and b in s.children
    assert k.wait4(s, a.pid, 0) == (a.pid, 0)
    k.exit(b, 8)
    assert k.wait4(s, b.pid, 0) == (b.pid, 8 << 8)
    k.check_invariants()


def test_subreaper_whose_leader_exited_adopts_through_a_live_thread(k):
    """The subreaper walk takes find_alive_thread of the subreaper's group (kernel/exit.c:563-565): with
    the subreaper's leader gone, its live thread adopts the orphans."""
    s = fork_child(k)
    k.prctl(s, PR_SET_CHILD_SUBREAPER, 1)
    st_ = thread(k, s)
    a = fork_child(k, s)
    b = fork_child(k, a)
    k.exit(s, 0)
    assert a.real_parent is st_
    k.exit(a, 0)
    assert b.real_parent is st_ and b in st_.children
    assert k.wait4(st_, a.pid, 0) == (a.pid, 0)
    k.check_invariants()


def test_dead_threads_counters_accumulate_in_the_signal_struct(k):
    """__exit_signal adds the thread's utime, stime, min_flt, maj_flt, nvcsw, nivcsw to signal_struct
    (kernel/exit.c:137-146)."""
    p = fork_child(k)
    addr = map_page(k, p, 2)
    t = thread(k, p)
    for _ in range(3):
        k.getpid(t)
    k.store(t, addr, b"x")
    k.store(t, addr + 4096, b"y")
    c = fork_child(k, t)
    with pytest.raises(Blocked):
        k.wait4(t, c.pid, 0)
    k.exit(c, 0)
    assert k.wait4(t, c.pid, 0)[0] == c.pid
    sig = p.signal
    before = (sig.utime, sig.stime, sig.min_flt, sig.maj_flt, sig.nvcsw, sig.nivcsw)
    k.exit(t, 0)
    assert gone(k, t.pid)
    assert t.min_flt >= 2 and t.nvcsw >= 1 and t.stime > 0
    after = (sig.utime, sig.stime, sig.min_flt, sig.maj_flt, sig.nvcsw, sig.nivcsw)
    assert after == tuple(b + d for b, d in zip(before, (t.utime, t.stime, t.min_flt, t.maj_flt, t.nvcsw, t.nivcsw),
                                                  strict=True))
    k.check_invariants()


def test_exit_group_caller_exits_first_then_the_zapped_threads(k, init):
    """do_group_exit SIGKILLs the other threads (zap_other_threads) and do_exits the caller at once
    (kernel/exit.c:876-901); the others die as they next run (kernel/signal.c:2584-2592). The status
    is group_exit_code (kernel/exit.c:1069-1070)."""
    for caller in ("leader", "thread"):
        p = fork_child(k)
        t = thread(k, p)
        rec = Recorder()
        k.listeners.append(rec)
        first = p if caller == "leader" else t
        k.exit_group(first, 3)
        k.listeners.remove(rec)
        assert [e.tid for e in rec.events if e.kind == "do_exit"] == [first.pid, (t if first is p else p).pid]
        assert k.wait4(init, p.pid, 0) == (p.pid, 3 << 8)
    k.check_invariants()


def test_pdeath_signal_comes_from_the_exiting_parent_thread(k):
    """forget_original_parent sends each child thread's pdeath_signal with SEND_SIG_NOINFO, i.e. SI_USER
    from the exiting task (kernel/exit.c:625-628), when the parent *thread* exits."""
    p = fork_child(k)
    pt = thread(k, p)
    c = fork_child(k, pt)
    k.rt_sigaction(c, SIGUSR1, SigAction(HANDLER))
    k.prctl(c, PR_SET_PDEATHSIG, SIGUSR1)
    k.exit(pt, 0)
    assert c.real_parent is p
    infos = [i for i in pending_infos(c) if i.si_signo == SIGUSR1]
    assert [(i.si_code, i.si_pid) for i in infos] == [(SI_USER, pt.tgid)]
    k.check_invariants()


# --- rusage --------------------------------------------------------------------------------------------------


def child_totals(c):
    """What the reaper will get: RUSAGE_BOTH of the zombie c (kernel/sys.c:1730-1760), from model fields."""
    sig = c.signal
    threads = list(sig.thread_head)
    return {
        "stime": sig.cstime + sig.stime + sum(t.stime for t in threads),
        "utime": sig.cutime + sig.utime + sum(t.utime for t in threads),
        "minflt": sig.cmin_flt + sig.min_flt + sum(t.min_flt for t in threads),
        "majflt": sig.cmaj_flt + sig.maj_flt + sum(t.maj_flt for t in threads),
        "nvcsw": sig.cnvcsw + sig.nvcsw + sum(t.nvcsw for t in threads),
        "nivcsw": sig.cnivcsw + sig.nivcsw + sum(t.nivcsw for t in threads),
        "maxrss": max(sig.maxrss, sig.cmaxrss),
    }


def test_wait4_rusage_and_the_parents_c_fields_take_the_whole_childs_tree(k):
    """wait_task_zombie adds the group's times, faults and switches (leader + dead threads + reaped
    children) to the waiter's c* fields (kernel/exit.c:1020-1060) and returns getrusage(p,
    RUSAGE_BOTH) (1063-1064)."""
    p = fork_child(k)
    c = fork_child(k, p)
    addr = map_page(k, c, 4)
    for i in range(3):
        k.store(c, addr + 4096 * i, b"z")
    ct = thread(k, c)
    k.getpid(ct)
    k.store(ct, addr + 4096 * 3, b"w")
    k.exit(ct, 0)
    g = fork_child(k, c)
    with pytest.raises(Blocked):  # c sleeps once: a voluntary switch
        k.wait4(c, g.pid, 0)
    k.getpid(g)
    k.exit(g, 0)
    assert k.wait4(c, g.pid, 0)[0] == g.pid
    k.exit_group(c, 0)
    assert c.exit_state == TaskState.EXIT_ZOMBIE
    want = child_totals(c)
    psig = p.signal
    before = (psig.cstime, psig.cutime, psig.cmin_flt, psig.cmaj_flt, psig.cnvcsw, psig.cnivcsw)
    assert k.wait4(p, c.pid, 0) == (c.pid, 0)
    k.check_invariants()
    after = (psig.cstime, psig.cutime, psig.cmin_flt, psig.cmaj_flt, psig.cnvcsw, psig.cnivcsw)
    assert after == tuple(b + want[f] for b, f in zip(before, ("stime", "utime", "minflt", "majflt", "nvcsw",
                                                                "nivcsw"), strict=True))
    assert psig.cmaxrss == want["maxrss"] and want["maxrss"] >= 3
    assert want["minflt"] >= 4 and want["stime"] > 0 and want["nvcsw"] >= 1


def test_wait4_returns_the_childs_rusage(k):
    """wait4's rusage is getrusage(child, RUSAGE_BOTH) taken before release_task (kernel/exit.c:1063-1064,
    kernel/sys.c:1708-1780): times as timevals from ns, maxrss in KiB."""
    p = fork_child(k)
    c = fork_child(k, p)
    addr = map_page(k, c, 2)
    k.store(c, addr, b"a")
    k.store(c, addr + 4096, b"b")
    k.exit(c, 0)
    want = child_totals(c)
    res = k.wait4(p, c.pid, 0)
    assert tuple(res) == (c.pid, 0)
    ru = res.rusage
    assert ru.ru_stime == timeval(want["stime"]) and ru.ru_utime == timeval(want["utime"])
    assert (ru.ru_minflt, ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw) == (want["minflt"], want["majflt"], want["nvcsw"],
                                                                      want["nivcsw"])
    assert ru.ru_maxrss == want["maxrss"] * 4
    fork_child(k, p)  # a live child: nothing to report yet
    zero = k.wait4(p, -1, WNOHANG)
    assert tuple(zero) == (0, 0) and zero.rusage == Rusage()
    k.check_invariants()


def test_wnowait_reports_without_reaping_or_accounting(k):
    """WNOWAIT: status p->exit_code, no EXIT_DEAD, no c* accounting (kernel/exit.c:986-995); the whole
    state is as before, and a second waitid reaps."""
    p = fork_child(k)
    c = fork_child(k, p)
    k.exit(c, 7)
    before = state(k)
    info = k.waitid(p, P_PID, c.pid, WEXITED | WNOWAIT)
    assert info == SigInfo(SIGCHLD, CLD_EXITED, c.pid, c.real_cred.uid, 7)
    assert state(k) == before and c.exit_state == TaskState.EXIT_ZOMBIE
    assert k.waitid(p, P_ALL, 0, WEXITED) == info
    assert gone(k, c.pid)
    k.check_invariants()


def test_tracer_reaps_a_traced_zombie_then_the_real_parent_does(k):
    """A ptrace-reparented zombie leader: the tracer's wait moves it to EXIT_TRACE (kernel/exit.c:997-1000),
    unlinks it and notifies the real parent (1073-1082): EXIT_ZOMBIE again. Only the real parent's
    reap accounts it (1006)."""
    parent = fork_child(k)
    tracer = fork_child(k)
    c = fork_child(k, parent)
    k.ptrace(tracer, PTRACE_SEIZE, c.pid, 0, 0)
    k.exit(c, 2)
    assert k.wait4(parent, c.pid, WNOHANG) == (0, 0)  # a zombie tracee is visible only to its tracer (1310-1311)
    cstime = tracer.signal.cstime
    rec = Recorder()
    k.listeners.append(rec)
    assert k.wait4(tracer, c.pid, 0) == (c.pid, 2 << 8)
    steps = [e.detail for e in rec.events if e.kind == "exit_state"]
    assert steps == [f"task {c.pid}: {TaskState.EXIT_ZOMBIE!r} -> {EXIT_TRACE!r}",
                     f"task {c.pid}: {EXIT_TRACE!r} -> {TaskState.EXIT_ZOMBIE!r}"]
    assert c.exit_state == TaskState.EXIT_ZOMBIE and not c.ptrace and c.parent is parent
    assert tracer.signal.cstime == cstime
    want = child_totals(c)["stime"]
    before = parent.signal.cstime
    assert k.wait4(parent, c.pid, 0) == (c.pid, 2 << 8)
    assert parent.signal.cstime == before + want
    k.check_invariants()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["thread", "thread_exit", "syscall", "fault", "grandchild", "reap"]), max_size=12))
def test_reaping_conserves_the_childs_accounting(ops):
    """Whatever the child did, the parent's cstime/cmin_flt grow by exactly the child's RUSAGE_BOTH
    (kernel/exit.c:1020-1060), which is what wait4 reports."""
    from forklab import Kernel

    k = Kernel()
    p = fork_child(k)
    c = fork_child(k, p)
    addr = k.mmap(c, 0, 4096 * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    threads, zombies, page = [c], [], 0
    for op in ops:
        actor = threads[-1]
        if op == "thread":
            threads.append(thread(k, actor))
        elif op == "thread_exit" and len(threads) > 1:
            k.exit(threads.pop(), 0)
        elif op == "syscall":
            k.getpid(actor)
        elif op == "fault" and page < 8:
            k.store(actor, addr + 4096 * page, b"f")
            page += 1
        elif op == "grandchild":
            g = fork_child(k, actor)
            k.getppid(g)
            k.exit(g, 0)
            zombies.append(g)
        elif op == "reap" and zombies:
            assert k.wait4(actor, zombies.pop(0).pid, 0)[0] > 0
    k.exit_group(c, 0)
    want = child_totals(c)
    before = (p.signal.cstime, p.signal.cmin_flt, p.signal.cnvcsw)
    res = k.wait4(p, c.pid, 0)
    assert res.rusage.ru_stime == timeval(want["stime"]) and res.rusage.ru_minflt == want["minflt"]
    assert (p.signal.cstime, p.signal.cmin_flt, p.signal.cnvcsw) == (before[0] + want["stime"],
                                                                    before[1] + want["minflt"],
                                                                    before[2] + want["nvcsw"])
    k.check_invariants()


# --- wait4 and waitid: every error with its source line, nothing changed ---------------------------------


@pytest.mark.parametrize("options", [WNOWAIT, WEXITED, 0x100, WNOHANG | 0x10])
def test_wait4_unknown_options_are_einval(k, options):
    """wait4 accepts WNOHANG|WUNTRACED|WCONTINUED|__WNOTHREAD|__WCLONE|__WALL only (kernel/exit.c:1590-1592)."""
    fork_child(k)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.wait4, k.init_task, -1, options)
    assert_cites(e, "kernel/exit.c", 1592)
    assert state(k) == before
    k.check_invariants()


def test_wait4_int_min_is_esrch_after_the_option_check(k, init):
    """upid == INT_MIN -> ESRCH (kernel/exit.c:1595-1596); bad options win (1590-1592 first)."""
    before = state(k)
    assert_cites(expect_errno(errno.ESRCH, k.wait4, init, INT_MIN, 0), "kernel/exit.c", 1596)
    assert_cites(expect_errno(errno.EINVAL, k.wait4, init, INT_MIN, WNOWAIT), "kernel/exit.c", 1592)
    assert state(k) == before
    k.check_invariants()


def test_wait4_echild_rules(k, init):
    """A pid or pgid with no task of that type -> ECHILD before any scan (kernel/exit.c:1437-1439); a scan
    that finds nothing eligible -> ECHILD (1459), with WNOHANG too."""
    a = fork_child(k)
    b = fork_child(k)
    before = state(k)
    assert_cites(expect_errno(errno.ECHILD, k.wait4, a, 99999, 0), "kernel/exit.c", 1437)
    assert_cites(expect_errno(errno.ECHILD, k.wait4, a, -99999, WNOHANG), "kernel/exit.c", 1437)
    assert_cites(expect_errno(errno.ECHILD, k.wait4, a, -a.pid, 0), "kernel/exit.c", 1437)  # a pid, not a pgrp
    assert_cites(expect_errno(errno.ECHILD, k.wait4, a, b.pid, 0), "kernel/exit.c", 1459)
    assert_cites(expect_errno(errno.ECHILD, k.wait4, a, -1, WNOHANG), "kernel/exit.c", 1459)
    assert state(k) == before
    k.check_invariants()


WAITID_EINVAL = [
    (P_ALL, 0, 0x100, 1500),
    (99, 0, 0x100, 1500),  # the option check comes before the idtype switch
    (P_ALL, 0, WNOHANG, 1502),
    (99, -1, WNOHANG | WNOWAIT, 1502),
    (P_PID, 0, WEXITED, 1511),
    (P_PID, -5, WEXITED, 1511),
    (P_PGID, -1, WEXITED, 1518),
    (P_PIDFD, -1, WEXITED, 1528),
    (4, 0, WEXITED, 1535),
    (-1, 0, WEXITED, 1535),
]


@pytest.mark.parametrize(("which", "upid", "options", "line"), WAITID_EINVAL)
def test_waitid_einval_rules(k, init, which, upid, options, line):
    """kernel_waitid's EINVAL checks in source order (kernel/exit.c:1498-1536); nothing changes."""
    fork_child(k)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.waitid, init, which, upid, options)
    assert_cites(e, "kernel/exit.c", line)
    assert state(k) == before
    k.check_invariants()


def test_waitid_echild_rules(k, init):
    """P_PID / P_PGID of a pid without such a task -> ECHILD (kernel/exit.c:1437); P_PGID 0 is the caller's
    own group (1520-1523)."""
    a = fork_child(k)
    b = fork_child(k, a)
    before = state(k)
    assert_cites(expect_errno(errno.ECHILD, k.waitid, a, P_PID, 99999, WEXITED), "kernel/exit.c", 1437)
    assert_cites(expect_errno(errno.ECHILD, k.waitid, a, P_PGID, b.pid, WEXITED), "kernel/exit.c", 1437)
    assert_cites(expect_errno(errno.ECHILD, k.waitid, a, P_PID, init.pid, WEXITED | WNOHANG), "kernel/exit.c", 1459)
    assert state(k) == before
    assert k.waitid(a, P_PGID, 0, WEXITED | WNOHANG) is None
    k.exit(b, 1)
    assert k.waitid(a, P_PGID, 0, WEXITED) == SigInfo(SIGCHLD, CLD_EXITED, b.pid, 0, 1)
    k.check_invariants()


def test_waitid_pidfd_of_a_closed_fd_is_ebadf(k):
    """P_PIDFD: no file at the fd -> EBADF (kernel/exit.c:1479-1480); nothing changes."""
    p = fork_child(k)
    before = state(k)
    e = expect_errno(errno.EBADF, k.waitid, p, P_PIDFD, 57, WEXITED)
    assert_cites(e, "kernel/exit.c", 1480)
    assert state(k) == before
    k.check_invariants()


def test_waitid_pidfd_of_another_file_is_ebadf(k):
    """P_PIDFD on a file that is not a pidfd -> EBADF from pidfd_pid (kernel/exit.c:1482, kernel/fork.c:1689)."""
    p = fork_child(k)
    fd = k.open(p, "/dev/null")
    before = state(k)
    e = expect_errno(errno.EBADF, k.waitid, p, P_PIDFD, fd, WEXITED)
    assert_cites(e, "kernel/fork.c", 1689)
    assert state(k) == before
    k.check_invariants()


def test_waitid_on_a_pidfd(k):
    """P_PIDFD waits for the pidfd's process (kernel/exit.c:1524-1532); once reaped, its pid has no task:
    ECHILD (1437). A pidfd of a process that is not the caller's child: ECHILD (1459)."""
    p = fork_child(k)
    addr = map_page(k, p)
    pid = k.clone3(p, CloneArgs(flags=CLONE_PIDFD, pidfd=addr, exit_signal=SIGCHLD))
    fd = read_int(k, p, addr)
    c = k.find_task(pid)
    other = fork_child(k, p)
    assert k.waitid(p, P_PIDFD, fd, WEXITED | WNOHANG) is None
    k.exit(other, 0)
    k.exit(c, 3)
    assert k.waitid(p, P_PIDFD, fd, WEXITED) == SigInfo(SIGCHLD, CLD_EXITED, pid, 0, 3)
    before = state(k)
    assert_cites(expect_errno(errno.ECHILD, k.waitid, p, P_PIDFD, fd, WEXITED | WNOHANG), "kernel/exit.c", 1437)
    assert state(k) == before
    assert k.wait4(p, other.pid, 0) == (other.pid, 0)
    if hasattr(pid_c, "sys_pidfd_open"):
        nfd = k.pidfd_open(p, k.init_task.pid)
        assert_cites(expect_errno(errno.ECHILD, k.waitid, p, P_PIDFD, nfd, WEXITED | WNOHANG), "kernel/exit.c", 1459)
    k.check_invariants()


# --- process groups ----------------------------------------------------------------------------------------


def test_wait4_zero_and_minus_pgid_filter_by_process_group(k):
    """wait4(0) is the caller's pgrp, wait4(-pgid) that pgrp (kernel/exit.c:1600-1606); eligible_pid
    compares task_pid_type(p, PIDTYPE_PGID) (935-939)."""
    p = fork_child(k)
    c1 = fork_child(k, p)
    c2 = fork_child(k, p)
    c3 = fork_child(k, p)
    k.setpgid(p, c2.pid, c2.pid)
    k.setpgid(p, c3.pid, c2.pid)
    k.exit(c1, 1)
    k.exit(c2, 2)
    assert k.wait4(p, 0, 0) == (c1.pid, 1 << 8)
    e = expect_errno(errno.ECHILD, k.wait4, p, 0, WNOHANG)  # c2 and c3 are in another group
    assert_cites(e, "kernel/exit.c", 1459)
    assert k.wait4(p, -c2.pid, 0) == (c2.pid, 2 << 8)
    assert k.wait4(p, -c2.pid, WNOHANG) == (0, 0)  # the group lives on in c3 after its leader is reaped
    k.exit(c3, 3)
    assert k.waitid(p, P_PGID, c2.pid, WEXITED) == SigInfo(SIGCHLD, CLD_EXITED, c3.pid, 0, 3)
    assert_cites(expect_errno(errno.ECHILD, k.wait4, p, -c2.pid, WNOHANG), "kernel/exit.c", 1437)
    k.check_invariants()


# --- what waitid reports ---------------------------------------------------------------------------------


def test_waitid_si_pid_is_in_the_callers_pid_namespace(k, init):
    """wait_task_zombie reports task_pid_vnr(p) (kernel/exit.c:977): the namespace init sees its child as 2."""
    n = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    ns = n.thread_pid.numbers[n.thread_pid.level].ns
    vpid = k.fork(n)
    c = k.find_task(vpid, ns)
    assert vpid == 2 and c.pid != vpid
    k.exit(c, 0)
    assert k.waitid(n, P_ALL, 0, WEXITED) == SigInfo(SIGCHLD, CLD_EXITED, 2, 0, 0)
    g = k.find_task(k.fork(n), ns)
    k.exit(g, 0)
    assert k.wait4(n, -1, 0) == (3, 0)
    k.check_invariants()


def test_waitid_si_uid_is_mapped_into_the_callers_user_namespace(k):
    """si_uid = from_kuid_munged(current_user_ns(), task_uid(p)) (kernel/exit.c:978): unmapped -> 65534."""
    p = unprivileged(k, 1000)
    c = k.find_task(k.clone(p, CLONE_NEWUSER | SIGCHLD))
    g = fork_child(k, c)
    k.exit(g, 0)
    assert k.waitid(c, P_ALL, 0, WEXITED).si_uid == 65534
    k.write_id_map(k.init_task, c, uid_map=[(0, 1000, 1)], gid_map=[(0, 0, 1)])
    g = fork_child(k, c)
    k.exit(g, 0)
    assert k.waitid(c, P_ALL, 0, WEXITED).si_uid == 0
    k.exit(c, 0)
    assert k.waitid(p, P_ALL, 0, WEXITED).si_uid == 1000
    k.check_invariants()


def test_waitid_reports_a_killed_child_as_cld_killed(k, init):
    """(status & 0x7f) != 0 -> CLD_KILLED with the signal (kernel/exit.c:1091-1093); wait4 gets the raw status."""
    p = fork_child(k)
    c = fork_child(k, p)
    d = fork_child(k, p)
    k.kill(init, c.pid, SIGKILL)
    k.kill(init, d.pid, SIGKILL)
    assert k.waitid(p, P_PID, c.pid, WEXITED) == SigInfo(SIGCHLD, CLD_KILLED, c.pid, 0, SIGKILL)
    assert k.wait4(p, d.pid, 0) == (d.pid, SIGKILL)
    k.check_invariants()


# --- stopped and continued children ----------------------------------------------------------------------


def group_stop(c, sig=SIGSTOP):
    """The fields a completed group stop leaves (kernel/signal.c do_signal_stop): the model's job-control
    code sets these; set here to test wait_task_stopped alone."""
    c.signal.flags |= SIGNAL_STOP_STOPPED
    c.signal.group_exit_code = sig


def test_wait_task_stopped_needs_wuntraced_and_reports_once(k):
    """WUNTRACED/WSTOPPED required (kernel/exit.c:1143-1144); task_stopped_code is signal->group_exit_code
    under SIGNAL_STOP_STOPPED (1109-1110); consumed unless WNOWAIT (1160-1161); wstatus
    (exit_code << 8) | 0x7f (1185)."""
    p = fork_child(k)
    c = fork_child(k, p)
    k.getpid(c)
    group_stop(c)
    assert k.wait4(p, c.pid, WNOHANG) == (0, 0)
    assert k.waitid(p, P_PID, c.pid, WSTOPPED | WNOWAIT) == SigInfo(SIGCHLD, CLD_STOPPED, c.pid, 0, SIGSTOP)
    assert c.signal.group_exit_code == SIGSTOP
    res = k.wait4(p, c.pid, WUNTRACED)
    assert tuple(res) == (c.pid, (SIGSTOP << 8) | 0x7F) and res.rusage.ru_stime == timeval(child_totals(c)["stime"])
    assert c.stime > 0
    assert c.signal.group_exit_code == 0
    assert k.wait4(p, c.pid, WUNTRACED | WNOHANG) == (0, 0)
    group_stop(c)
    assert k.waitid(p, P_ALL, 0, WSTOPPED) == SigInfo(SIGCHLD, CLD_STOPPED, c.pid, 0, SIGSTOP)
    assert k.waitid(p, P_ALL, 0, WSTOPPED | WNOHANG) is None
    k.check_invariants()


def test_wait_task_continued_needs_wcontinued_and_reports_once(k):
    """WCONTINUED and SIGNAL_STOP_CONTINUED (kernel/exit.c:1211-1215), cleared unless WNOWAIT (1224-1225);
    wait4 gets 0xffff, waitid CLD_CONTINUED with SIGCONT (1238-1246)."""
    p = fork_child(k)
    c = fork_child(k, p)
    c.signal.flags |= SIGNAL_STOP_CONTINUED
    assert k.wait4(p, c.pid, WNOHANG) == (0, 0)
    assert k.waitid(p, P_PID, c.pid, WCONTINUED | WNOWAIT) == SigInfo(SIGCHLD, CLD_CONTINUED, c.pid, 0, SIGCONT)
    assert c.signal.flags & SIGNAL_STOP_CONTINUED
    assert k.wait4(p, c.pid, WCONTINUED) == (c.pid, 0xFFFF)
    assert not c.signal.flags & SIGNAL_STOP_CONTINUED
    assert k.wait4(p, c.pid, WCONTINUED | WNOHANG) == (0, 0)
    k.check_invariants()


def test_sigstop_and_sigcont_are_reported_to_the_parent(k):
    """End to end: a stopped child is reported with WUNTRACED as (SIGSTOP << 8) | 0x7f, a continued one with
    WCONTINUED as 0xffff (kernel/exit.c:1185, 1240)."""
    p = fork_child(k)
    c = fork_child(k, p)
    k.kill(p, c.pid, SIGSTOP)
    if c.state == TaskState.TASK_RUNNING:
        k.getpid(c)  # the stop happens on c's way back to user mode
    assert k.wait4(p, c.pid, WUNTRACED) == (c.pid, (SIGSTOP << 8) | 0x7F)
    k.kill(p, c.pid, SIGCONT)
    assert k.wait4(p, c.pid, WCONTINUED) == (c.pid, 0xFFFF)
    k.check_invariants()


# --- orphaned process groups -------------------------------------------------------------------------------


def session_with_job(k):
    """S leads a session; A (S's child) leads pgrp G in it; B is A's child in G."""
    s = fork_child(k)
    k.setsid(s)
    a = fork_child(k, s)
    k.setpgid(a, 0, 0)
    b = fork_child(k, a)
    return s, a, b, a.signal.pids[PIDTYPE.PIDTYPE_PGID]


def test_orphaned_pgrp_predicates(k):
    """A pgrp is orphaned when no member's parent is in another pgrp of the same session (kernel/exit.c:
    270-287); init as a parent does not count (276), nor a zombie with no threads (275)."""
    s, a, b, g = session_with_job(k)
    assert not is_current_pgrp_orphaned(k, a) and not is_current_pgrp_orphaned(k, b)  # S links G
    assert will_become_orphaned_pgrp(g, a)  # a's exit would orphan G
    assert is_current_pgrp_orphaned(k, s)  # S's own group: its parent is init
    assert not has_stopped_jobs(g)
    group_stop(b)
    assert has_stopped_jobs(g)
    b.signal.flags &= ~SIGNAL_STOP_STOPPED
    k.exit(s, 0)
    assert a.real_parent is k.init_task and is_current_pgrp_orphaned(k, b)
    k.check_invariants()


def catch(k, t, *sigs):
    for sig in sigs:
        k.rt_sigaction(t, sig, SigAction(HANDLER))


def got(k, t, *sigs):
    """The signals among ``sigs`` that ``t``'s handlers took or that are still queued for it, in order."""
    ran = [sig for pid, sig, how in k.signals_delivered if pid == t.pid and how.startswith("handler")]
    return [sig for sig in ran + [i.si_signo for i in pending_infos(t)] if sig in sigs]


def test_exit_orphaning_a_stopped_group_sends_sighup_then_sigcont(k):
    """exit_notify -> kill_orphaned_pgrp(tsk->group_leader, NULL) (kernel/exit.c:652-653, 326-343):
    A's parent S is outside G in the same session, A was G's only link, B is stopped."""
    _s, a, b, g = session_with_job(k)
    catch(k, b, SIGHUP, SIGCONT)
    group_stop(b)
    assert will_become_orphaned_pgrp(g, a) and has_stopped_jobs(g)
    k.exit(a, 0)
    assert got(k, b, SIGHUP, SIGCONT) == [SIGHUP, SIGCONT]
    k.check_invariants()


def test_reparenting_orphans_a_stopped_group(k):
    """reparent_leader -> kill_orphaned_pgrp(p, father) (kernel/exit.c:595, 330-333): S's exit leaves G
    without an outside parent in the session."""
    s, a, b, g = session_with_job(k)
    catch(k, a, SIGHUP, SIGCONT)
    catch(k, b, SIGHUP, SIGCONT)
    group_stop(a)
    assert not will_become_orphaned_pgrp(g, None)  # S still links G
    k.exit(s, 0)
    for t in (a, b):
        assert got(k, t, SIGHUP, SIGCONT) == [SIGHUP, SIGCONT]
    k.check_invariants()


def test_no_sighup_without_stopped_jobs(k):
    """has_stopped_jobs false -> kill_orphaned_pgrp sends nothing (kernel/exit.c:339)."""
    _s, a, b, g = session_with_job(k)
    catch(k, b, SIGHUP)
    assert will_become_orphaned_pgrp(g, a) and not has_stopped_jobs(g)
    k.exit(a, 0)
    assert got(k, b, SIGHUP) == []
    assert not b.exit_state
    k.check_invariants()


# --- sleeping --------------------------------------------------------------------------------------------------


def test_waitid_sleeps_when_nothing_is_ready(k):
    """do_wait: eligible but not ready and no WNOHANG -> sleep in TASK_INTERRUPTIBLE (kernel/exit.c:1441,
    1460-1466); the child's exit wakes the waiter, which then gets its report."""
    p = fork_child(k)
    c = fork_child(k, p)
    with pytest.raises(Blocked):
        k.waitid(p, P_PID, c.pid, WEXITED)
    assert p.state == TaskState.TASK_INTERRUPTIBLE
    k.check_invariants()
    k.exit(c, 0)
    assert p.state == TaskState.TASK_RUNNING
    assert k.waitid(p, P_PID, c.pid, WEXITED) == SigInfo(SIGCHLD, CLD_EXITED, c.pid, 0, 0)
    k.check_invariants()


def test_a_pending_signal_ends_the_wait_instead_of_a_sleep(k, init):
    """do_wait returns -ERESTARTSYS when it would sleep with a signal pending (kernel/exit.c:1460-1463); the model
    reports EINTR and runs the handler on the way out (SA_RESTART's restart is not modelled). WNOHANG is
    checked first, so it still returns 0."""
    p = fork_child(k)
    c = fork_child(k, p)
    catch(k, p, SIGUSR1)
    k.kill(init, p.pid, SIGUSR1)
    assert k.wait4(p, -1, WNOHANG) == (0, 0)  # ends with the handler run
    k.kill(init, p.pid, SIGUSR1)
    e = expect_errno(errno.EINTR, k.wait4, p, -1, 0)
    assert_cites(e, "kernel/exit.c", 1461)
    assert p.state == TaskState.TASK_RUNNING
    assert got(k, p, SIGUSR1) == [SIGUSR1, SIGUSR1]
    with pytest.raises(Blocked):
        k.waitid(p, P_PID, c.pid, WEXITED)
    k.check_invariants()
