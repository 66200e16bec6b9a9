"""Exit, reparenting, wait4 and the vfork handshake.

Sources: kernel/exit.c (do_exit 711-854, find_new_reaper 539-572, forget_original_parent 606-639,
exit_notify 645-685, release_task 191-235, eligible_child 942-966, do_wait 1419-1471,
kernel_wait4 1582-1623), kernel/signal.c do_notify_parent (1910-2002), kernel/fork.c vfork
(1242-1333, 2448-2463).
"""

from __future__ import annotations

import errno

import pytest
from conftest import expect_errno, fork_child, gone

from forklab import Blocked, SigAction, TaskState
from forklab.uapi import (
    __WALL,
    __WCLONE,
    __WNOTHREAD,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    PR_SET_CHILD_SUBREAPER,
    SA_NOCLDWAIT,
    SIG_IGN,
    SIGCHLD,
    SIGUSR1,
    WNOHANG,
)

THREAD = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM


# --- zombies and wait4 ----------------------------------------------------------------------------


def test_zombie_keeps_pid_until_wait4_reaps_it(k, init):
    """exit_notify leaves an EXIT_ZOMBIE (kernel/exit.c:660); release_task frees the pid (191-235)."""
    c = fork_child(k)
    k.exit(c, 7)
    assert c.exit_state == TaskState.EXIT_ZOMBIE
    assert k.find_task(c.pid) is c and c in init.children
    k.check_invariants()
    assert k.wait4(init, -1, 0) == (c.pid, 7 << 8)
    assert gone(k, c.pid) and c not in init.children
    k.check_invariants()


def test_exit_status_is_low_byte_shifted(k, init):
    """exit(status) -> do_exit((status & 0xff) << 8) (kernel/exit.c:866-869)."""
    c = fork_child(k)
    k.exit(c, 0x1FF)
    assert k.wait4(init, c.pid, 0) == (c.pid, 0xFF << 8)
    k.check_invariants()


def test_wait4_wnohang_with_running_child_returns_zero(k, init):
    """Eligible but nothing ready with WNOHANG -> 0 (kernel/exit.c:1460-1463)."""
    c = fork_child(k)
    assert k.wait4(init, -1, WNOHANG) == (0, 0)
    assert k.wait4(init, c.pid, WNOHANG) == (0, 0)
    k.check_invariants()


def test_wait4_without_children_is_echild(k):
    """No eligible child -> ECHILD (kernel/exit.c:1422, 1468)."""
    c = fork_child(k)
    expect_errno(errno.ECHILD, k.wait4, c, -1, 0)
    expect_errno(errno.ECHILD, k.wait4, c, -1, WNOHANG)
    k.check_invariants()


def test_wait4_for_non_child_pid_is_echild(k, init):
    """A pid that is not our child -> ECHILD (kernel/exit.c:1433-1468)."""
    a = fork_child(k)
    b = fork_child(k)
    expect_errno(errno.ECHILD, k.wait4, a, b.pid, WNOHANG)
    expect_errno(errno.ECHILD, k.wait4, a, 99999, WNOHANG)
    k.check_invariants()


def test_wait4_blocks_then_reaps_after_exit(k):
    """do_wait sleeps in TASK_INTERRUPTIBLE (kernel/exit.c:1460-1466); the child's exit wakes it (1996-1998)."""
    p = fork_child(k)
    c = fork_child(k, p)
    with pytest.raises(Blocked):
        k.wait4(p, -1, 0)
    assert p.state & TaskState.TASK_INTERRUPTIBLE
    k.exit(c, 0)
    assert p.state == TaskState.TASK_RUNNING
    assert k.wait4(p, -1, 0) == (c.pid, 0)
    k.check_invariants()


def test_wait4_invalid_options_is_einval(k, init):
    """Options outside WNOHANG|WUNTRACED|WCONTINUED|__WNOTHREAD|__WCLONE|__WALL -> EINVAL (kernel/exit.c:1590-1592)."""
    from forklab.uapi import WEXITED, WNOWAIT

    fork_child(k)
    expect_errno(errno.EINVAL, k.wait4, init, -1, WNOWAIT)
    expect_errno(errno.EINVAL, k.wait4, init, -1, WEXITED)
    k.check_invariants()


def test_clone_child_needs_wclone_or_wall(k):
    """exit_signal != SIGCHLD is a "clone child": only __WCLONE or __WALL see it (kernel/exit.c:942-966)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGUSR1, SIG_IGN)  # the child's exit_signal would otherwise kill p
    c = k.find_task(k.clone(p, SIGUSR1))
    f = fork_child(k, p)
    k.exit(c, 1)
    k.exit(f, 2)
    # without __WCLONE only the SIGCHLD child is eligible
    assert k.wait4(p, -1, 0) == (f.pid, 2 << 8)
    expect_errno(errno.ECHILD, k.wait4, p, -1, WNOHANG)
    expect_errno(errno.ECHILD, k.wait4, p, c.pid, WNOHANG)
    assert k.wait4(p, -1, __WCLONE) == (c.pid, 1 << 8)
    k.check_invariants()


def test_wclone_does_not_see_sigchld_children(k):
    """With __WCLONE only clone children are eligible (kernel/exit.c:962-963)."""
    p = fork_child(k)
    f = fork_child(k, p)
    expect_errno(errno.ECHILD, k.wait4, p, -1, __WCLONE | WNOHANG)
    assert k.wait4(p, -1, __WALL | WNOHANG) == (0, 0)
    k.exit(f, 0)
    assert k.wait4(p, -1, __WALL) == (f.pid, 0)
    k.check_invariants()


def test_threads_never_become_waitable_zombies(k):
    """A non-leader thread autoreaps (kernel/exit.c:673-675): its pid goes at once."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, THREAD))
    k.exit(t, 0)
    assert gone(k, t.pid) and p.signal.nr_threads == 1
    k.check_invariants()


def test_leader_zombie_reported_only_when_group_empty(k, init):
    """A leader that exits while threads live is not reported (delay_group_leader, kernel/exit.c:664-672,
    1301); the last thread's release notifies the parent (214-233)."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, THREAD))
    k.exit(p, 5)
    assert p.exit_state == TaskState.EXIT_ZOMBIE
    assert k.wait4(init, p.pid, WNOHANG) == (0, 0)
    k.exit(t, 9)
    assert k.wait4(init, p.pid, 0) == (p.pid, 5 << 8)
    k.check_invariants()


def test_exit_group_kills_all_threads(k, init):
    """exit_group: SIGNAL_GROUP_EXIT, other threads killed, status = group_exit_code (kernel/exit.c:876-901)."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, THREAD))
    k.exit_group(t, 3)
    assert p.exit_state and t.exit_state
    assert k.wait4(init, p.pid, 0) == (p.pid, 3 << 8)
    k.check_invariants()


def test_wait4_reaps_children_of_other_threads(k):
    """do_wait scans the children of every thread in the group unless __WNOTHREAD (kernel/exit.c:1445-1456)."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, THREAD))
    c = fork_child(k, t)
    k.exit(c, 0)
    expect_errno(errno.ECHILD, k.wait4, p, -1, __WNOTHREAD | WNOHANG)
    assert k.wait4(p, -1, 0) == (c.pid, 0)
    k.check_invariants()


# --- reparenting -----------------------------------------------------------------------------------


def test_orphans_are_reparented_to_init(k, init):
    """find_new_reaper falls back to the pid ns child_reaper (kernel/exit.c:539-572)."""
    a = fork_child(k)
    b = fork_child(k, a)
    k.exit(a, 0)
    assert b.real_parent is init and b.parent is init and b in init.children
    assert k.getppid(b) == 1
    k.check_invariants()


def test_orphan_exit_signal_reset_to_sigchld(k, init):
    """reparent_leader sets exit_signal := SIGCHLD when the reaper is another group (kernel/exit.c:583-584)."""
    a = fork_child(k)
    b = k.find_task(k.clone(a, SIGUSR1))
    k.exit(a, 0)
    assert b.exit_signal == SIGCHLD and b.real_parent is init
    k.check_invariants()


def test_orphans_go_to_a_live_thread_first(k):
    """find_new_reaper prefers a live thread of the exiting task's group (kernel/exit.c:545-549)."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, THREAD))
    c = fork_child(k, t)
    k.exit(t, 0)
    assert c.real_parent is p
    k.check_invariants()


def test_orphans_go_to_child_subreaper(k, init):
    """PR_SET_CHILD_SUBREAPER: the nearest subreaper ancestor adopts orphans (kernel/exit.c:551-567,
    kernel/sys.c:2416-2422; has_child_subreaper inherited at fork, kernel/fork.c:2264-2265)."""
    s = fork_child(k)
    k.prctl(s, PR_SET_CHILD_SUBREAPER, 1)
    a = fork_child(k, s)
    b = fork_child(k, a)
    c = fork_child(k, b)
    assert b.signal.has_child_subreaper and c.signal.has_child_subreaper
    k.exit(b, 0)
    assert c.real_parent is s
    k.exit(a, 0)
    assert k.wait4(s, a.pid, 0) == (a.pid, 0)
    k.check_invariants()


def test_subreaper_set_after_fork_propagates_to_descendants(k):
    """PR_SET_CHILD_SUBREAPER marks existing descendants (kernel/sys.c:2259-2275, 2416-2422)."""
    s = fork_child(k)
    a = fork_child(k, s)
    b = fork_child(k, a)
    k.prctl(s, PR_SET_CHILD_SUBREAPER, 1)
    k.exit(a, 0)
    assert b.real_parent is s
    k.check_invariants()


def test_reparented_zombie_is_reported_to_new_parent(k, init):
    """reparent_leader notifies the new parent about an already-zombie child (kernel/exit.c:586-592)."""
    a = fork_child(k)
    b = fork_child(k, a)
    k.exit(b, 4)
    k.exit(a, 0)
    assert b.real_parent is init
    assert k.wait4(init, b.pid, 0) == (b.pid, 4 << 8)
    k.check_invariants()


# --- automatic reaping ----------------------------------------------------------------------------


def test_parent_ignoring_sigchld_autoreaps_children(k):
    """SIGCHLD handler SIG_IGN -> autoreap, no zombie, no signal (kernel/signal.c:1974-1995)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGCHLD, SIG_IGN)
    c = fork_child(k, p)
    user = c.real_cred.user
    procs = user.processes
    k.exit(c, 0)
    assert c.exit_state == TaskState.EXIT_DEAD and gone(k, c.pid)
    assert user.processes == procs - 1
    expect_errno(errno.ECHILD, k.wait4, p, -1, 0)
    k.check_invariants()


def test_sa_nocldwait_autoreaps_children(k):
    """SA_NOCLDWAIT also autoreaps (kernel/signal.c:1974-1984)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGCHLD, SigAction(0x1000, SA_NOCLDWAIT))
    c = fork_child(k, p)
    k.exit(c, 0)
    assert gone(k, c.pid)
    k.check_invariants()


def test_ignoring_sigchld_does_not_autoreap_clone_children(k):
    """Autoreap needs sig == SIGCHLD: a non-SIGCHLD exit_signal child stays a zombie (kernel/signal.c:1974)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGCHLD, SIG_IGN)
    k.rt_sigaction(p, SIGUSR1, SIG_IGN)  # the child's exit_signal would otherwise kill p
    c = k.find_task(k.clone(p, SIGUSR1))
    k.exit(c, 0)
    assert c.exit_state == TaskState.EXIT_ZOMBIE
    assert k.wait4(p, -1, __WALL) == (c.pid, 0)
    k.check_invariants()


# --- vfork ----------------------------------------------------------------------------------------------


def test_vfork_parent_sleeps_until_child_exits(k):
    """_do_fork: wait_for_vfork_done, killable (kernel/fork.c:2460-2463, 1255-1274); the child's exit_mm ->
    mm_release -> complete_vfork_done wakes it (1319-1320, 1242-1253)."""
    p = fork_child(k)
    pid = k.vfork(p)
    c = k.find_task(pid)
    assert p.state & TaskState.TASK_UNINTERRUPTIBLE and p.waits_on == "vfork_done"
    assert c.mm is p.mm and c.vfork_done is not None
    with pytest.raises(ValueError):
        k.getpid(p)  # a sleeping task makes no syscalls
    k.check_invariants()
    k.exit(c, 0)
    assert p.state == TaskState.TASK_RUNNING and p.waits_on == ""
    assert c.vfork_done is None
    assert k.getpid(p) == p.pid
    assert k.wait4(p, pid, 0) == (pid, 0)
    k.check_invariants()


def test_vfork_parent_released_when_child_killed(k, init):
    """A SIGKILLed vfork child still goes through exit_mm, releasing the parent (kernel/exit.c:435-488)."""
    from forklab.uapi import SIGKILL

    p = fork_child(k)
    c = k.find_task(k.vfork(p))
    k.kill(init, c.pid, SIGKILL)
    assert p.state == TaskState.TASK_RUNNING
    assert k.wait4(p, c.pid, 0) == (c.pid, SIGKILL)
    k.check_invariants()


def test_vfork_parent_killed_while_waiting(k, init):
    """The vfork wait is killable (kernel/fork.c:1261): when killed, the parent clears child->vfork_done
    (1266-1270) so the child will not complete into the dead parent's stack; the child lives on."""
    from forklab.uapi import SIGKILL

    p = fork_child(k)
    c = k.find_task(k.vfork(p))
    k.kill(init, p.pid, SIGKILL)
    assert p.exit_state
    assert not c.exit_state and c.real_parent is init
    assert c.vfork_done is None
    k.check_invariants()
    k.exit(c, 0)
    k.check_invariants()


def test_exit_drops_mm_user(k):
    """exit_mm -> mmput (kernel/exit.c:435-488): a CLONE_VM sibling's exit drops one mm user."""
    p = fork_child(k)
    users = p.mm.mm_users
    c = k.find_task(k.clone(p, CLONE_VM | SIGCHLD))
    assert p.mm.mm_users == users + 1
    k.exit(c, 0)
    assert p.mm.mm_users == users and c.mm is None
    k.check_invariants()
