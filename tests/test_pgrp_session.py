"""Process groups and sessions: setpgid, getpgid/getpgrp, getsid, setsid (kernel/sys.c:1007-1190).

Every rule is shown with the errno and the source line that decided it and a whole-kernel
state unchanged by the failure; where several rules fail at once, the one the kernel checks
first wins. Success paths are checked against the model's own state: the number a call
returns is the struct pid the task is linked on, as the caller's pid namespace numbers it.
"""

from __future__ import annotations

import errno

from conftest import active_ns, assert_cites, expect_errno, fork_child, gone, state
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Kernel, Task
from forklab.include.linux.sched import PIDTYPE
from forklab.kernel.pid import find_pid_ns, pid_nr_ns
from forklab.uapi import CLONE_FILES, CLONE_FS, CLONE_NEWPID, CLONE_SIGHAND, CLONE_THREAD, CLONE_VM, SIGCHLD, WNOHANG

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD


def pgrp(t: Task):
    """task_pgrp(t): the struct pid of t's process group."""
    return t.signal.pids[PIDTYPE.PIDTYPE_PGID]


def session(t: Task):
    """task_session(t)."""
    return t.signal.pids[PIDTYPE.PIDTYPE_SID]


def make_binary(k: Kernel, path: str = "/bin/true") -> None:
    if k.vfs.lookup("/bin") is None:
        k.vfs.mkdir("/bin")
    inode = k.vfs.create(path, mode=0o755)
    inode.data[:] = b"\x7fELF\x02\x01\x01"
    inode.i_size = len(inode.data)


def assert_pid_links(k: Kernel) -> None:
    """Each live leader is linked on its signal's TGID/PGID/SID pids, and the members of a process group share a
    session (the POSIX rule setpgid and setsid keep)."""
    for t in k.tasks:
        if t.exit_state and t.thread_pid is None:
            continue
        for kind in (PIDTYPE.PIDTYPE_TGID, PIDTYPE.PIDTYPE_PGID, PIDTYPE.PIDTYPE_SID):
            pid = t.signal.pids[kind]
            assert pid is not None and t.pid_links[kind] is pid
            assert sum(1 for x in pid.tasks[kind] if x is t) == 1
        for member in pgrp(t).tasks[PIDTYPE.PIDTYPE_PGID]:
            assert session(member) is session(t)


# --- setpgid: each rule, in the kernel's order ---------------------------------------------------


def test_negative_pgid_is_einval_before_the_lookup(k, init):
    """pgid < 0 is EINVAL (kernel/sys.c:1018), even for a pid that does not exist (the lookup comes later)."""
    before = state(k)
    e = expect_errno(errno.EINVAL, k.setpgid, init, 99999, -1)
    assert_cites(e, "kernel/sys.c", 1018)
    assert state(k) == before


def test_no_such_pid_is_esrch(k, init):
    """find_task_by_vpid finds nothing: ESRCH (kernel/sys.c:1029)."""
    before = state(k)
    e = expect_errno(errno.ESRCH, k.setpgid, init, 99999, 0)
    assert_cites(e, "kernel/sys.c", 1029)
    assert state(k) == before


def test_a_thread_is_einval(k, init):
    """A non-leader thread is not a process: EINVAL (kernel/sys.c:1033)."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, THREAD))
    before = state(k)
    e = expect_errno(errno.EINVAL, k.setpgid, p, t.pid, 0)
    assert_cites(e, "kernel/sys.c", 1033)
    assert state(k) == before
    k.check_invariants()


def test_child_in_another_session_is_eperm(k, init):
    """A child that called setsid is out of the caller's session: EPERM (kernel/sys.c:1038)."""
    c = fork_child(k)
    k.setsid(c)
    before = state(k)
    e = expect_errno(errno.EPERM, k.setpgid, init, c.pid, 0)
    assert_cites(e, "kernel/sys.c", 1038)
    assert state(k) == before


def test_child_that_has_execd_is_eacces(k, init):
    """A child that exec'd has PF_FORKNOEXEC clear: EACCES (kernel/sys.c:1041)."""
    make_binary(k)
    p = fork_child(k)
    c = fork_child(k, p)
    k.execve(c, "/bin/true")
    before = state(k)
    e = expect_errno(errno.EACCES, k.setpgid, p, c.pid, 0)
    assert_cites(e, "kernel/sys.c", 1041)
    assert state(k) == before


def test_other_session_wins_over_exec(k, init):
    """An exec'd child in another session: the session check (kernel/sys.c:1038) comes before PF_FORKNOEXEC."""
    make_binary(k)
    c = fork_child(k)
    k.setsid(c)
    k.execve(c, "/bin/true")
    e = expect_errno(errno.EPERM, k.setpgid, init, c.pid, 0)
    assert_cites(e, "kernel/sys.c", 1038)


def test_neither_caller_nor_child_is_esrch(k, init):
    """A grandchild or a sibling is not the caller's to move: ESRCH (kernel/sys.c:1045)."""
    p = fork_child(k)
    grandchild = fork_child(k, fork_child(k, p))
    sibling = fork_child(k)
    before = state(k)
    for target in (grandchild, sibling, init):
        e = expect_errno(errno.ESRCH, k.setpgid, p, target.pid, 0)
        assert_cites(e, "kernel/sys.c", 1045)
    assert state(k) == before


def test_session_leader_is_eperm(k, init):
    """init leads session 1 (signal->leader): EPERM (kernel/sys.c:1050); so does a process after setsid."""
    c = fork_child(k)
    k.setsid(c)
    before = state(k)
    for caller in (init, c):
        e = expect_errno(errno.EPERM, k.setpgid, caller, 0, 0)
        assert_cites(e, "kernel/sys.c", 1050)
    assert state(k) == before


def test_session_leader_wins_over_a_missing_group(k, init):
    """A session leader naming a group that does not exist: the leader rule (kernel/sys.c:1050) comes first."""
    e = expect_errno(errno.EPERM, k.setpgid, init, 0, 99999)
    assert_cites(e, "kernel/sys.c", 1050)


def test_group_must_exist_in_the_callers_session(k, init):
    """pgid != pid needs a process group of that id in the caller's session: else EPERM (kernel/sys.c:1059) --
    for no such pid, for a process that leads no group, and for a group in another session."""
    p = fork_child(k)
    a = fork_child(k, p)
    b = fork_child(k, p)
    other = fork_child(k)
    k.setsid(other)  # group `other` in session `other`
    before = state(k)
    for pgid in (99999, b.pid, other.pid):
        e = expect_errno(errno.EPERM, k.setpgid, p, a.pid, pgid)
        assert_cites(e, "kernel/sys.c", 1059)
    assert state(k) == before
    k.check_invariants()


# --- setpgid: what it does ----------------------------------------------------------------------


def test_a_process_starts_its_own_group(k, init):
    """setpgid(0, 0): the caller's group becomes its own pid; the old group keeps its other members."""
    c = fork_child(k)
    assert k.setpgid(c, 0, 0) == 0
    assert pgrp(c) is c.thread_pid and k.getpgid(c, 0) == c.pid == k.getpgrp(c)
    assert c in c.thread_pid.tasks[PIDTYPE.PIDTYPE_PGID]
    assert init in pgrp(init).tasks[PIDTYPE.PIDTYPE_PGID] and c not in pgrp(init).tasks[PIDTYPE.PIDTYPE_PGID]
    assert session(c) is session(init)
    assert_pid_links(k)
    k.check_invariants()


def test_parent_moves_children_into_one_group(k, init):
    """The parent puts child b into child a's group: pgid != pid, the group exists in the session."""
    p = fork_child(k)
    a = fork_child(k, p)
    b = fork_child(k, p)
    k.setpgid(p, a.pid, 0)
    k.setpgid(p, b.pid, a.pid)
    assert pgrp(a) is pgrp(b) is a.thread_pid
    assert k.getpgid(p, b.pid) == a.pid
    assert {id(t) for t in a.thread_pid.tasks[PIDTYPE.PIDTYPE_PGID]} == {id(a), id(b)}
    assert_pid_links(k)
    k.check_invariants()


def test_setpgid_to_the_current_group_changes_nothing(k, init):
    """task_pgrp(p) == pgrp: no change_pid (kernel/sys.c:1067), the call still succeeds."""
    c = fork_child(k)
    k.setpgid(c, 0, 0)
    before = state(k)
    assert k.setpgid(c, 0, c.pid) == 0
    assert state(k) == before


def test_a_group_outlives_its_leader_and_frees_its_pid_when_left(k, init):
    """A reaped group leader's pid stays allocated while its group has members; the last member leaving frees it
    (change_pid -> free_pid, kernel/pid.c:341-358)."""
    p = fork_child(k)
    leader = fork_child(k, p)
    member = fork_child(k, p)
    k.setpgid(p, leader.pid, 0)
    k.setpgid(p, member.pid, leader.pid)
    nr = leader.pid
    k.exit(leader, 0)
    k.wait4(p, nr, WNOHANG)
    assert gone(k, nr)
    assert find_pid_ns(nr, k.init_pid_ns) is pgrp(member)  # still the group's id, not reusable
    assert k.getpgid(member, 0) == nr
    k.setpgid(member, 0, 0)
    assert find_pid_ns(nr, k.init_pid_ns) is None
    assert_pid_links(k)
    k.check_invariants()


def test_fork_inherits_group_and_session(k, init):
    """copy_process links a new process on the parent's group and session (kernel/fork.c:2247-2270)."""
    p = fork_child(k)
    k.setpgid(p, 0, 0)
    c = fork_child(k, p)
    assert pgrp(c) is pgrp(p) is p.thread_pid and session(c) is session(p)
    assert k.getpgid(c, 0) == p.pid and k.getsid(c, 0) == k.getsid(p, 0) == 1
    k.setsid(c)
    g = fork_child(k, c)
    assert k.getpgid(g, 0) == k.getsid(g, 0) == c.pid and not g.signal.leader
    assert_pid_links(k)
    k.check_invariants()


def test_exec_by_a_thread_keeps_group_and_session(k, init):
    """A thread that execs takes over the leader's pid and its group and session links (fs/exec.c de_thread)."""
    make_binary(k)
    p = fork_child(k)
    k.setsid(p)
    q = fork_child(k, p)
    k.setpgid(q, 0, 0)  # q leads group q in session p
    t = k.find_task(k.clone(q, THREAD))
    group, sess = pgrp(q), session(q)
    k.execve(t, "/bin/true")
    assert t.group_leader is t and t.pid == q.pid
    assert pgrp(t) is group and session(t) is sess
    assert group.tasks[PIDTYPE.PIDTYPE_PGID] == [t] and t.pid_links[PIDTYPE.PIDTYPE_PGID] is group
    assert k.getpgid(t, 0) == q.pid and k.getsid(t, 0) == p.pid
    assert k.getpgid(p, t.pid) == q.pid
    assert_pid_links(k)
    k.check_invariants()


# --- getpgid, getpgrp, getsid -----------------------------------------------------------------------


def test_getpgid_and_getsid_of_a_missing_pid_are_esrch(k, init):
    """find_task_by_vpid finds nothing: ESRCH (kernel/sys.c:1090, 1132)."""
    before = state(k)
    assert_cites(expect_errno(errno.ESRCH, k.getpgid, init, 99999), "kernel/sys.c", 1090)
    assert_cites(expect_errno(errno.ESRCH, k.getsid, init, 99999), "kernel/sys.c", 1132)
    assert state(k) == before


def test_getpgid_of_a_thread_is_its_process_group(k, init):
    """getpgid/getsid of a thread id read the thread group's signal_struct."""
    p = fork_child(k)
    k.setpgid(p, 0, 0)
    t = k.find_task(k.clone(p, THREAD))
    assert k.getpgid(init, t.pid) == p.pid and k.getsid(init, t.pid) == 1
    assert k.getpgid(t, 0) == k.getpgrp(t) == p.pid


def test_a_group_outside_the_callers_pid_namespace_reads_as_0(k, init):
    """A child in a new pid namespace stays in its parent's group and session, which it cannot see: pid_vnr is 0.
    After setsid, its own session is visible to it as 1 and to init as its global pid."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    ns = active_ns(c)
    assert pgrp(c) is pgrp(init) and pid_nr_ns(pgrp(c), ns) == 0
    assert k.getpgid(c, 0) == k.getsid(c, 0) == k.getpgrp(c) == 0
    assert k.getpgid(init, c.pid) == 1
    assert k.setsid(c) == 1
    assert k.getsid(c, 0) == k.getpgid(c, 0) == 1
    assert k.getsid(init, c.pid) == c.pid
    g = fork_child(k, c)
    assert k.getsid(g, 0) == 1 and k.getpgid(init, g.pid) == c.pid
    assert_pid_links(k)
    k.check_invariants()


def test_lookups_use_the_callers_namespace(k, init):
    """getpgid(1) inside a new pid namespace names that namespace's init, not the global one."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    early = fork_child(k, c)  # still in init's group, invisible in the namespace
    k.setpgid(c, 0, 0)  # c's group is its own pid, 1 in its namespace
    g = fork_child(k, c)
    assert k.getpgid(g, 1) == 1 == k.getpgid(g, 0)
    assert k.getpgid(early, 0) == 0 and k.getpgid(early, 1) == 1
    assert k.getpgid(init, 1) == 1  # the global init's group, itself
    assert_cites(expect_errno(errno.ESRCH, k.getpgid, g, init.pid + 1000), "kernel/sys.c", 1090)


# --- setsid -----------------------------------------------------------------------------------------


def test_setsid_by_a_session_leader_is_eperm(k, init):
    """Already a session leader: EPERM (kernel/sys.c:1168); init leads its session and its group, and the leader
    rule is the one that fires."""
    before = state(k)
    e = expect_errno(errno.EPERM, k.setsid, init)
    assert_cites(e, "kernel/sys.c", 1168)
    assert state(k) == before


def test_setsid_by_a_group_leader_is_eperm(k, init):
    """A process group with the caller's pid exists: EPERM (kernel/sys.c:1174)."""
    c = fork_child(k)
    k.setpgid(c, 0, 0)
    before = state(k)
    e = expect_errno(errno.EPERM, k.setsid, c)
    assert_cites(e, "kernel/sys.c", 1174)
    assert state(k) == before


def test_setsid_is_eperm_while_a_group_has_the_callers_id_even_without_it(k, init):
    """pid_task(sid, PIDTYPE_PGID) finds the child still in group c after c itself moved back to group 1."""
    c = fork_child(k)
    k.setpgid(c, 0, 0)
    g = fork_child(k, c)
    k.setpgid(c, 0, 1)  # c leaves; g keeps group c alive
    assert pgrp(g) is c.thread_pid and pgrp(c) is pgrp(init)
    before = state(k)
    e = expect_errno(errno.EPERM, k.setsid, c)
    assert_cites(e, "kernel/sys.c", 1174)
    assert state(k) == before
    k.check_invariants()


def test_setsid_makes_a_session_and_group_led_by_the_caller(k, init):
    """setsid: signal->leader, session and group are the caller's pid, no controlling tty; returns the sid."""
    c = fork_child(k)
    sid = k.setsid(c)
    assert sid == c.pid == k.getsid(c, 0) == k.getpgid(c, 0)
    assert c.signal.leader == 1 and c.signal.tty is None
    assert session(c) is pgrp(c) is c.thread_pid
    assert c.thread_pid.tasks[PIDTYPE.PIDTYPE_SID] == [c] == c.thread_pid.tasks[PIDTYPE.PIDTYPE_PGID]
    assert c not in session(init).tasks[PIDTYPE.PIDTYPE_SID]
    assert_pid_links(k)
    k.check_invariants()


def test_setsid_by_a_thread_uses_its_group_leader(k, init):
    """current->group_leader's pid is the new session (kernel/sys.c:1161-1163), not the calling thread's."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, THREAD))
    assert k.setsid(t) == p.pid
    assert k.getsid(t, 0) == k.getsid(p, 0) == p.pid and p.signal.leader == 1
    assert_pid_links(k)
    k.check_invariants()


# --- random sequences keep the rules --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("fork", "setpgid", "setsid", "exit", "wait")),
                          st.integers(0, 7), st.integers(0, 7), st.integers(0, 7)), max_size=30))
def test_random_group_and_session_changes_keep_the_links(ops):
    """Whatever mix of fork, setpgid, setsid, exit and wait runs, each failure leaves the state as it was and the
    pid links and the same-session rule hold."""
    k = Kernel()
    procs = [k.init_task]
    for op, a, b, c in ops:
        live = [t for t in procs if not t.exit_state]
        caller = live[a % len(live)]
        before = state(k)
        try:
            if op == "fork":
                procs.append(fork_child(k, caller))
            elif op == "setpgid":
                target, group = procs[b % len(procs)], procs[c % len(procs)]
                k.setpgid(caller, target.pid if b % 3 else 0, group.pid if c % 3 else 0)
            elif op == "setsid":
                k.setsid(caller)
            elif op == "exit" and caller is not k.init_task:
                k.exit(caller, 0)
            elif op == "wait":
                k.wait4(caller, -1, WNOHANG)
        except OSError:
            assert state(k) == before
        assert_pid_links(k)
    k.check_invariants()
