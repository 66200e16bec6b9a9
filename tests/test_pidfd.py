"""pidfd_open (kernel/pid.c:522-572) and pidfd readiness through poll(2) (kernel/fork.c:1771-1791, fs/select.c).

A pidfd is readable once its whole thread group has exited: a leader that exits before its
threads does not make it readable, as wait(2) does not report such a group either. poll with
a timeout sleeps until do_notify_parent wakes the pid's ``wait_pidfd`` queue. The 6.18 profile
is shown where it differs (the host oracle, tests/test_host_lifecycle.py, checks it against a
real 6.18 kernel).
"""

from __future__ import annotations

import contextlib
import errno

import pytest
from conftest import active_ns, assert_cites, expect_errno, fork_child, kernel_line, state, unprivileged
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Blocked, Kernel, SigAction, Task, TaskState, Unmodelled
from forklab.fs.select import POLLERR, POLLHUP, POLLNVAL, POLLOUT, POLLRDNORM, POLLWRNORM
from forklab.include.linux.sched import PIDTYPE
from forklab.kernel.pid import PIDFD_THREAD
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWPID,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    F_GETFD,
    FD_CLOEXEC,
    O_CREAT,
    O_NONBLOCK,
    O_RDWR,
    PIDFD_NONBLOCK,
    POLLIN,
    RLIMIT_NOFILE,
    SIGCHLD,
    SIGUSR1,
    WNOHANG,
)

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x401000


def thread_of(k: Kernel, leader: Task) -> Task:
    return k.find_task(k.clone(leader, THREAD), active_ns(leader))


def pidfd_file(t: Task, fd: int):
    return t.files.fdt.fd[fd]


def readiness(k: Kernel, t: Task, fd: int, events: int = POLLIN) -> int:
    """The revents of one pidfd, without sleeping."""
    return k.poll(t, [(fd, events)], 0)[0]


# --- pidfd_open: each rule, in the kernel's order ---------------------------------------------------


def test_flags_are_einval_in_5_6(k, init):
    """5.6 pidfd_open takes no flags (kernel/pid.c:555), checked before the pid (a bad pid too is EINVAL at 555)."""
    c = fork_child(k)
    before = state(k)
    for flags, pid in ((1, c.pid), (PIDFD_NONBLOCK, c.pid), (PIDFD_THREAD, c.pid), (1, 0), (1, 99999)):
        assert_cites(expect_errno(errno.EINVAL, k.pidfd_open, init, pid, flags), "kernel/pid.c", 555)
    assert state(k) == before


def test_pid_not_positive_is_einval(k, init):
    """pid <= 0 is EINVAL (kernel/pid.c:558)."""
    before = state(k)
    for pid in (0, -1, -(2**31)):
        assert_cites(expect_errno(errno.EINVAL, k.pidfd_open, init, pid), "kernel/pid.c", 558)
    assert state(k) == before


def test_no_such_pid_is_esrch(k, init):
    """find_get_pid finds nothing in the caller's namespace: ESRCH (kernel/pid.c:562); a global pid outside a
    child namespace is not found there."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    before = state(k)
    assert_cites(expect_errno(errno.ESRCH, k.pidfd_open, init, 99999), "kernel/pid.c", 562)
    assert_cites(expect_errno(errno.ESRCH, k.pidfd_open, c, init.pid + 50), "kernel/pid.c", 562)
    assert state(k) == before
    k.check_invariants()


def test_a_thread_is_einval_in_5_6(k, init):
    """A pidfd of a thread is EINVAL in 5.6: its pid has no PIDTYPE_TGID task (kernel/pid.c:568)."""
    p = fork_child(k)
    t = thread_of(k, p)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.pidfd_open, init, t.pid)
    assert_cites(e, "kernel/pid.c", 568)
    assert state(k) == before
    k.check_invariants()


def test_a_pid_kept_only_as_a_process_group_id_is_einval(k, init):
    """A reaped group leader's pid lives on as its group's id: find_get_pid finds it, it has no TGID task."""
    p = fork_child(k)
    leader, member = fork_child(k, p), fork_child(k, p)
    k.setpgid(p, leader.pid, 0)
    k.setpgid(p, member.pid, leader.pid)
    nr = leader.pid
    k.exit(leader, 0)
    k.wait4(p, nr, WNOHANG)
    before = state(k)
    assert_cites(expect_errno(errno.EINVAL, k.pidfd_open, init, nr), "kernel/pid.c", 568)
    assert state(k) == before


def test_fd_table_full_is_emfile_and_leaves_the_pid_count(k, init):
    """No free fd below RLIMIT_NOFILE: get_unused_fd_flags' EMFILE; pidfd_create drops its pid reference."""
    c = fork_child(k)
    k.setrlimit(c, RLIMIT_NOFILE, (0, 0))
    count = init.thread_pid.count
    before = state(k)
    e = expect_errno(errno.EMFILE, k.pidfd_open, c, init.pid)
    assert kernel_line(e)[0] == "fs/file.c"
    assert state(k) == before and init.thread_pid.count == count


def test_fail_nth_sweep_of_pidfd_open() -> None:
    """Every fallible allocation of pidfd_open fails with ENOMEM and leaves no trace."""
    def setup() -> tuple[Kernel, Task]:
        k = Kernel()
        return k, fork_child(k)

    k, c = setup()
    k.pidfd_open(k.init_task, c.pid)
    sites = list(k.fault.sites)
    assert sites
    for n, site in enumerate(sites, start=1):
        k, c = setup()
        before = state(k)
        k.init_task.fail_nth = n
        expect_errno(errno.ENOMEM, k.pidfd_open, k.init_task, c.pid)
        assert k.fault.failed_site == site and state(k) == before
        k.check_invariants()


# --- pidfd_open: what it makes ----------------------------------------------------------------------------


def test_pidfd_is_a_cloexec_anon_file_holding_the_pid(k, init):
    """O_RDWR|O_CLOEXEC on the anon inode "[pidfd]", the lowest free fd, one more reference on the struct pid."""
    c = fork_child(k)
    count = c.thread_pid.count
    fd = k.pidfd_open(init, c.pid)
    f = pidfd_file(init, fd)
    assert fd == min(set(range(64)) - {i for i, x in enumerate(init.files.fdt.fd) if x is not None and i != fd})
    assert f.private_data is c.thread_pid and c.thread_pid.count == count + 1
    assert f.f_inode is k.vfs.anon_inode and f.f_path.dentry == "anon_inode:[pidfd]"
    assert f.f_flags & 3 == O_RDWR and not f.f_flags & O_NONBLOCK
    assert k.fcntl(init, fd, F_GETFD) & FD_CLOEXEC
    k.check_invariants()
    k.close(init, fd)
    assert c.thread_pid.count == count
    k.check_invariants()


def test_pidfd_of_a_zombie_and_of_the_caller(k, init):
    """A zombie still has its TGID task; any process may open a pidfd of itself."""
    c = fork_child(k)
    k.exit(c, 7)
    assert c.exit_state == TaskState.EXIT_ZOMBIE
    fd = k.pidfd_open(init, c.pid)
    assert pidfd_file(init, fd).private_data is c.thread_pid
    own = k.pidfd_open(init, init.pid)
    assert pidfd_file(init, own).private_data is init.thread_pid
    k.check_invariants()


def test_pidfd_keeps_a_reaped_pid(k, init):
    """After the reap the struct pid outlives its numbers: unhashed, still referenced by the file."""
    c = fork_child(k)
    fd = k.pidfd_open(init, c.pid)
    pid, nr = c.thread_pid, c.pid
    k.exit(c, 0)
    k.wait4(init, nr, 0)
    assert pidfd_file(init, fd).private_data is pid and pid.count == 1 and not any(pid.tasks)
    assert k.init_pid_ns.idr.get(nr) is None
    k.check_invariants()


def test_pidfd_numbers_are_the_callers_namespace(k, init):
    """Inside a new pid namespace, pidfd_open(1) names that namespace's init."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    g = fork_child(k, c)
    fd = k.pidfd_open(g, 1)
    assert pidfd_file(g, fd).private_data is c.thread_pid
    k.check_invariants()


# --- readiness ------------------------------------------------------------------------------------


def test_a_running_child_is_not_ready_and_poll_0_does_not_sleep(k, init):
    """timeout 0: one scan, revents 0, no sleep and no wait-queue entry left (fs/select.c:882-885)."""
    c = fork_child(k)
    fd = k.pidfd_open(init, c.pid)
    nvcsw = init.nvcsw
    assert k.poll(init, [(fd, POLLIN)], 0) == [0]
    assert init.state == TaskState.TASK_RUNNING and init.nvcsw == nvcsw and c.thread_pid.wait_pidfd == []


def test_ready_once_a_single_threaded_process_exits(k, init):
    """Zombie with an empty thread group: POLLIN|POLLRDNORM, masked by the events asked for; still after the reap."""
    c = fork_child(k)
    fd = k.pidfd_open(init, c.pid)
    k.exit(c, 0)
    assert readiness(k, init, fd) == POLLIN
    assert readiness(k, init, fd, POLLIN | POLLRDNORM) == POLLIN | POLLRDNORM
    assert readiness(k, init, fd, POLLOUT) == 0
    k.wait4(init, c.pid, 0)
    assert readiness(k, init, fd) == POLLIN  # pid_task is NULL: 5.6 has no POLLHUP
    k.check_invariants()


def test_leader_exiting_first_is_not_ready_until_the_last_thread_exits(k, init):
    """task->exit_state && thread_group_empty(task): the zombie leader with a live thread is not ready."""
    p = fork_child(k)
    t = thread_of(k, p)
    fd = k.pidfd_open(init, p.pid)
    k.exit(p, 2)  # the leader thread alone
    assert p.exit_state == TaskState.EXIT_ZOMBIE and not t.exit_state
    assert readiness(k, init, fd) == 0
    k.exit(t, 4)
    assert readiness(k, init, fd) == POLLIN
    k.check_invariants()


def test_exec_by_a_thread_keeps_the_pidfd_on_the_process(k, init):
    """de_thread moves the exec'ing thread onto the leader's pid: the pidfd still follows the live process."""
    inode = (k.vfs.mkdir("/bin"), k.vfs.create("/bin/true", mode=0o755))[1]
    inode.data[:] = b"\x7fELF"
    inode.i_size = 4
    p = fork_child(k)
    t = thread_of(k, p)
    fd = k.pidfd_open(init, p.pid)
    pid = p.thread_pid
    k.execve(t, "/bin/true")
    assert pid.tasks[PIDTYPE.PIDTYPE_PID] == [t] and readiness(k, init, fd) == 0
    k.exit(t, 0)
    assert readiness(k, init, fd) == POLLIN
    k.check_invariants()


def test_poll_reports_bad_and_plain_fds(k, init):
    """fd < 0 is skipped (0), a closed fd is POLLNVAL, a file without f_op->poll is DEFAULT_POLLMASK & events."""
    fd = k.open(init, "/tmp_file", O_CREAT | O_RDWR, 0o644)
    assert k.poll(init, [(-1, POLLIN), (999, POLLIN), (fd, POLLIN | POLLOUT | POLLERR)], 0) == [
        0, POLLNVAL, POLLIN | POLLOUT]
    assert k.poll(init, [(fd, POLLRDNORM | POLLWRNORM | POLLHUP)], 0) == [POLLRDNORM | POLLWRNORM]


def test_poll_more_fds_than_rlimit_nofile_is_einval(k, init):
    """nfds > RLIMIT_NOFILE: EINVAL before anything is copied (fs/select.c:973)."""
    k.setrlimit(init, RLIMIT_NOFILE, (2, 4096))
    before = state(k)
    e = expect_errno(errno.EINVAL, k.poll, init, [(-1, POLLIN)] * 3, 0)
    assert_cites(e, "fs/select.c", 973)
    assert state(k) == before


def test_poll_list_allocation_failure_is_enomem(k, init):
    """Past the 30 pollfds on the stack, each poll_list is kmalloc'd: failing it is ENOMEM (fs/select.c:995)."""
    before = state(k)
    init.fail_nth = 1
    e = expect_errno(errno.ENOMEM, k.poll, init, [(-1, POLLIN)] * 31, 0)
    assert_cites(e, "fs/select.c", 995)
    assert state(k) == before
    assert k.poll(init, [(-1, POLLIN)] * 30, 0) == [0] * 30 and k.fault.sites == []


def test_polling_a_pipe_is_unmodelled_and_changes_nothing(k, init):
    """pipe_poll (fs/pipe.c) is not in the model."""
    r, _w = k.pipe(init)
    c = fork_child(k)
    fd = k.pidfd_open(init, c.pid)
    before = state(k)
    with pytest.raises(Unmodelled):
        k.poll(init, [(fd, POLLIN), (r, POLLIN)], -1)
    assert state(k) == before


# --- sleeping and waking ----------------------------------------------------------------------------


def test_poll_with_nothing_ready_sleeps_on_the_pids_wait_queue(k, init):
    """timeout != 0 and nothing ready: TASK_INTERRUPTIBLE on "poll", one voluntary switch, queued on wait_pidfd."""
    p = fork_child(k)
    a, b = fork_child(k, p), fork_child(k, p)
    fda, fdb = k.pidfd_open(p, a.pid), k.pidfd_open(p, b.pid)
    nvcsw = p.nvcsw
    with pytest.raises(Blocked):
        k.poll(p, [(fda, POLLIN), (fdb, POLLIN)], -1)
    assert p.state == TaskState.TASK_INTERRUPTIBLE and p.waits_on == "poll" and p.nvcsw == nvcsw + 1
    assert a.thread_pid.wait_pidfd == [p] and b.thread_pid.wait_pidfd == [p]
    k.check_invariants()


def test_a_ready_fd_anywhere_means_no_sleep_and_no_entries_left(k, init):
    """One ready pidfd among several: the call returns at once and poll_freewait empties every queue it joined."""
    a, b = fork_child(k), fork_child(k)
    fda, fdb = k.pidfd_open(init, a.pid), k.pidfd_open(init, b.pid)
    k.exit(b, 0)
    assert k.poll(init, [(fda, POLLIN), (fdb, POLLIN)], -1) == [0, POLLIN]
    assert a.thread_pid.wait_pidfd == [] and b.thread_pid.wait_pidfd == []
    assert init.state == TaskState.TASK_RUNNING


def test_the_group_exit_wakes_the_poller(k, init):
    """do_notify_parent wakes wait_pidfd (kernel/signal.c:1927); the poll called again reports POLLIN and leaves
    no entries behind. A leader exiting first wakes nobody."""
    p = fork_child(k)
    c = fork_child(k, p)
    t = thread_of(k, c)
    fd = k.pidfd_open(p, c.pid)
    with pytest.raises(Blocked):
        k.poll(p, [(fd, POLLIN)], -1)
    k.exit(c, 0)
    assert p.state == TaskState.TASK_INTERRUPTIBLE  # the leader alone: not woken
    k.exit(t, 0)
    assert p.state == TaskState.TASK_RUNNING
    assert k.poll(p, [(fd, POLLIN)], -1) == [POLLIN]
    assert c.thread_pid.wait_pidfd == []
    k.check_invariants()


def test_a_pending_signal_ends_the_poll_with_eintr_after_its_handler(k, init):
    """Nothing ready and a signal pending: -ERESTARTNOHAND, EINTR once the handler is set up (fs/select.c:925);
    even with timeout 0. A signal also wakes a sleeping poller, whose next call drops its stale entries."""
    p = fork_child(k)
    c = fork_child(k, p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    fd = k.pidfd_open(p, c.pid)
    k.kill(init, p.pid, SIGUSR1)
    delivered = len(k.signals_delivered)
    assert_cites(expect_errno(errno.EINTR, k.poll, p, [(fd, POLLIN)], 0), "fs/select.c", 925)
    assert k.signals_delivered[delivered:] == [(p.pid, SIGUSR1, f"handler {HANDLER:#x} ran")]
    with pytest.raises(Blocked):
        k.poll(p, [(fd, POLLIN)], -1)
    k.kill(init, p.pid, SIGUSR1)
    assert p.state == TaskState.TASK_RUNNING and c.thread_pid.wait_pidfd == [p]  # woken; the entry is stale
    expect_errno(errno.EINTR, k.poll, p, [(fd, POLLIN)], -1)
    assert c.thread_pid.wait_pidfd == []
    k.check_invariants()


# --- the 6.18 profile ------------------------------------------------------------------------------


def test_6_18_pidfd_open_flags_and_threads() -> None:
    """6.18: PIDFD_NONBLOCK and PIDFD_THREAD accepted, other bits EINVAL; a thread without PIDFD_THREAD is ENOENT,
    a pid with no task ESRCH (pidfd_prepare); a PIDFD_THREAD pidfd refers to the thread."""
    k = Kernel(version="6.18")
    init = k.init_task
    p = fork_child(k)
    t = thread_of(k, p)
    expect_errno(errno.EINVAL, k.pidfd_open, init, p.pid, 1)
    expect_errno(errno.ENOENT, k.pidfd_open, init, t.pid, 0)
    nb = k.pidfd_open(init, p.pid, PIDFD_NONBLOCK)
    assert pidfd_file(init, nb).f_flags & O_NONBLOCK and k.fcntl(init, nb, F_GETFD) & FD_CLOEXEC
    th = k.pidfd_open(init, t.pid, PIDFD_THREAD)
    assert pidfd_file(init, th).private_data is t.thread_pid and pidfd_file(init, th).f_flags & PIDFD_THREAD
    leader, member = fork_child(k, p), fork_child(k, p)
    k.setpgid(p, leader.pid, 0)
    k.setpgid(p, member.pid, leader.pid)
    nr = leader.pid
    k.exit(leader, 0)
    k.wait4(p, nr, WNOHANG)
    expect_errno(errno.ESRCH, k.pidfd_open, init, nr, 0)
    k.check_invariants()


def test_6_18_reaped_pidfd_reports_pollhup_and_the_reap_wakes_pollers() -> None:
    """6.9's pidfd_poll: POLLIN|POLLHUP once pid_task is NULL; __change_pid wakes wait_pidfd at the reap."""
    k = Kernel(version="6.18")
    init = k.init_task
    watcher = fork_child(k)
    c = fork_child(k)
    fd = k.pidfd_open(watcher, c.pid)
    with pytest.raises(Blocked):
        k.poll(watcher, [(fd, POLLIN)], -1)
    k.exit(c, 0)
    k.wait4(init, c.pid, 0)
    assert watcher.state == TaskState.TASK_RUNNING
    assert k.poll(watcher, [(fd, POLLIN)], -1) == [POLLIN | POLLHUP]
    k.check_invariants()


def test_6_18_poll_by_an_unprivileged_stranger_is_unmodelled() -> None:
    """Later releases answer EPOLLERR to a poller that may not ptrace-read the task: not in the model."""
    k = Kernel(version="6.18")
    c = fork_child(k)
    u = unprivileged(k)
    fd = k.pidfd_open(u, c.pid)
    with pytest.raises(Unmodelled):
        k.poll(u, [(fd, POLLIN)], 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("fork", "thread", "exit", "exit_group", "wait")), st.integers(0, 9)),
                max_size=25))
def test_readiness_is_exactly_the_whole_group_having_exited(ops):
    """After any mix of forks, threads, exits and waits, a pidfd polls POLLIN exactly when no thread of its
    process is still alive (or the process is reaped), and a poll with timeout 0 never sleeps."""
    k = Kernel()
    init = k.init_task
    opened: list[tuple[int, object]] = []  # (fd in init's table, the process's signal_struct)
    for op, n in ops:
        live = [t for t in k.all_threads() if t.state == TaskState.TASK_RUNNING and not t.exit_state]
        t = live[n % len(live)]
        if op == "fork":
            c = fork_child(k, t)
            opened.append((k.pidfd_open(init, c.pid), c.signal))
        elif op == "thread":
            thread_of(k, t)
        elif op in ("exit", "exit_group") and t.signal is not init.signal:
            (k.exit if op == "exit" else k.exit_group)(t, 0)
        elif op == "wait":
            with contextlib.suppress(OSError):
                k.wait4(t, -1, WNOHANG)
    for fd, sig in opened:
        alive = any(not th.exit_state for th in sig.thread_head)
        assert k.poll(init, [(fd, POLLIN)], 0) == [0 if alive else POLLIN]
    assert init.state == TaskState.TASK_RUNNING
    k.check_invariants()
