"""Job control: group stop and continue, their reports to the parent, and the core-dump bit.

Sources: kernel/signal.c -- prepare_signal 899-962, complete_signal 989-1063, do_notify_parent_cldstop
2017-2073, do_signal_stop 2304-2420, get_signal 2526-2746 (the CLD_ report at relock 2552-2580, the
stop branch 2677-2708, the fatal path 2711-2740); fs/coredump.c do_coredump 565-810.
"""

from __future__ import annotations

import contextlib

import pytest
from conftest import fork_child
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forklab import Blocked, Kernel, SigAction, Task, TaskKilled, TaskState
from forklab.include.linux.sched import (
    JOBCTL_PENDING_MASK,
    JOBCTL_STOP_PENDING,
    PF,
    SIGNAL_CLD_MASK,
    SIGNAL_STOP_CONTINUED,
    SIGNAL_STOP_STOPPED,
)
from forklab.kernel.signal import dequeue_signal
from forklab.uapi import (
    CLD_CONTINUED,
    CLD_DUMPED,
    CLD_KILLED,
    CLD_STOPPED,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    RLIM_INFINITY,
    RLIMIT_CORE,
    SA_NOCLDSTOP,
    SA_RESETHAND,
    SIG_BLOCK,
    SIG_DFL,
    SIG_UNBLOCK,
    SIGCHLD,
    SIGCONT,
    SIGKILL,
    SIGQUIT,
    SIGSEGV,
    SIGSTOP,
    SIGTERM,
    SIGTSTP,
    SIGTTIN,
    SIGUSR1,
    WCONTINUED,
    WNOHANG,
    WUNTRACED,
)

THREAD = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x4000


def bit(sig: int) -> int:
    return 1 << (sig - 1)


def thread_of(k: Kernel, leader: Task) -> Task:
    return k.find_task(k.clone(leader, THREAD))


def parent_with_sigchld_blocked(k: Kernel) -> Task:
    """A child of init whose SIGCHLD is blocked, so every SIGCHLD it is sent stays queued."""
    p = fork_child(k)
    k.rt_sigprocmask(p, SIG_BLOCK, bit(SIGCHLD))
    return p


def take_sigchld(parent: Task) -> tuple[int, int, int] | None:
    """Dequeue the parent's pending SIGCHLD (as sigtimedwait would): (si_code, si_status, si_pid), or None."""
    info = dequeue_signal(parent, ~bit(SIGCHLD) & (2**64 - 1))
    return None if info is None else (info.si_code, info.si_status, info.si_pid)


def is_stopped(t: Task) -> bool:
    return t.state == TaskState.TASK_STOPPED


# --- the stop ----------------------------------------------------------------------------------------


def test_sigstop_stops_a_process_and_reports_cld_stopped(k):
    """do_signal_stop: group_exit_code = signr, the only thread consumes the count, SIGNAL_STOP_STOPPED, and
    the parent gets SIGCHLD CLD_STOPPED with si_status SIGSTOP (kernel/signal.c:2338-2344, 366-390, 2045-2067)."""
    parent = parent_with_sigchld_blocked(k)
    c = fork_child(k, parent)
    assert k.kill(parent, c.pid, SIGSTOP) == 0
    assert is_stopped(c) and c.on_rq == 0 and c.waits_on == "group stop"
    sig = c.signal
    assert sig.flags & SIGNAL_STOP_STOPPED and sig.group_exit_code == SIGSTOP and sig.group_stop_count == 0
    assert not c.jobctl & JOBCTL_PENDING_MASK
    queued = [q for q in parent.signal.shared_pending.list if q.si_signo == SIGCHLD]
    assert [(q.si_code, q.si_status, q.si_pid, q.si_uid) for q in queued] == [(CLD_STOPPED, SIGSTOP, c.pid, 0)]
    with pytest.raises(ValueError, match="sleeping"):
        k.getpid(c)  # check_caller: a stopped task makes no syscalls
    k.check_invariants()


def test_a_stop_stops_every_thread_of_the_group_and_reports_once(k):
    """The first thread counts every thread not yet stopped (group_stop_count) and wakes them; the last to stop
    reports (kernel/signal.c:2341-2361, 2371-2390)."""
    parent = parent_with_sigchld_blocked(k)
    p = fork_child(k, parent)
    threads = [p, thread_of(k, p), thread_of(k, p)]
    assert k.kill(parent, threads[1].pid, SIGSTOP) == 0
    assert all(is_stopped(t) for t in threads)
    assert p.signal.group_stop_count == 0 and p.signal.flags & SIGNAL_STOP_STOPPED
    assert take_sigchld(parent) == (CLD_STOPPED, SIGSTOP, p.pid)  # reported for the group leader
    assert take_sigchld(parent) is None
    k.check_invariants()


def test_tgkill_of_a_stop_signal_to_one_thread_stops_the_group(k):
    """A stop signal queued for one thread still starts a group stop (kernel/signal.c:2346-2361)."""
    p = fork_child(k)
    t = thread_of(k, p)
    assert k.tgkill(k.init_task, p.pid, t.pid, SIGSTOP) == 0
    assert is_stopped(p) and is_stopped(t)
    k.check_invariants()


def test_sa_nocldstop_suppresses_the_stop_and_continue_reports(k):
    """do_notify_parent_cldstop sends nothing when the parent's SIGCHLD has SA_NOCLDSTOP (kernel/signal.c:2065-2067)."""
    parent = fork_child(k)
    k.rt_sigaction(parent, SIGCHLD, SigAction(HANDLER, SA_NOCLDSTOP))
    k.rt_sigprocmask(parent, SIG_BLOCK, bit(SIGCHLD))
    c = fork_child(k, parent)
    k.kill(parent, c.pid, SIGSTOP)
    k.kill(parent, c.pid, SIGCONT)
    assert not parent.signal.shared_pending.signal & bit(SIGCHLD)
    k.kill(parent, c.pid, SIGKILL)
    assert take_sigchld(parent) == (CLD_KILLED, SIGKILL, c.pid)  # do_notify_parent still reports the death
    k.check_invariants()


def test_a_parent_ignoring_sigchld_gets_no_report_but_its_waiters_wake(k):
    """SIG_IGN: no SIGCHLD; __wake_up_parent runs anyway (kernel/signal.c:2065-2071)."""
    parent = fork_child(k)
    c = fork_child(k, parent)
    waiter = thread_of(k, parent)
    with pytest.raises(Blocked):
        k.wait4(waiter, c.pid, WUNTRACED)
    k.rt_sigaction(parent, SIGCHLD, SigAction(1))  # SIG_IGN
    k.kill(parent, c.pid, SIGSTOP)
    assert is_stopped(c)
    assert waiter.state == TaskState.TASK_RUNNING
    assert not parent.signal.shared_pending.signal & bit(SIGCHLD)
    k.check_invariants()


def test_sigkill_reaches_a_stopped_task(k):
    """SIGKILL: wants_signal takes it before the stopped check, signal_wake_up(t, 1) wakes TASK_WAKEKILL sleepers
    (kernel/signal.c:980-984, 1055); the stopped group dies."""
    parent = parent_with_sigchld_blocked(k)
    p = fork_child(k, parent)
    t = thread_of(k, p)
    k.kill(parent, p.pid, SIGSTOP)
    take_sigchld(parent)
    assert k.kill(parent, t.pid, SIGKILL) == 0
    assert p.exit_state and t.exit_state
    assert k.wait4(parent, p.pid, 0) == (p.pid, SIGKILL)
    assert take_sigchld(parent) == (CLD_KILLED, SIGKILL, p.pid)
    k.check_invariants()


def test_a_non_fatal_signal_to_a_stopped_task_stays_pending(k):
    """wants_signal refuses stopped threads (kernel/signal.c:983-984): a caught signal waits for SIGCONT."""
    c = fork_child(k)
    k.rt_sigaction(c, SIGUSR1, SigAction(HANDLER))
    k.kill(k.init_task, c.pid, SIGSTOP)
    k.kill(k.init_task, c.pid, SIGUSR1)
    assert is_stopped(c) and c.signal.shared_pending.signal & bit(SIGUSR1)
    k.kill(k.init_task, c.pid, SIGCONT)  # it resumes in get_signal and runs the handler on its way out
    assert c.state == TaskState.TASK_RUNNING
    assert (c.pid, SIGUSR1, f"handler {HANDLER:#x} ran") in k.signals_delivered
    k.check_invariants()


# --- continue ------------------------------------------------------------------------------------------


def test_sigcont_resumes_every_thread_and_reports_cld_continued(k):
    """prepare_signal(SIGCONT) wakes the stopped threads, sets SIGNAL_STOP_CONTINUED|SIGNAL_CLD_CONTINUED and clears
    group_exit_code; the first thread back at relock reports CLD_CONTINUED (kernel/signal.c:919-958, 2552-2580)."""
    parent = parent_with_sigchld_blocked(k)
    p = fork_child(k, parent)
    threads = [p, thread_of(k, p)]
    k.kill(parent, p.pid, SIGSTOP)
    assert take_sigchld(parent) == (CLD_STOPPED, SIGSTOP, p.pid)
    assert k.kill(parent, threads[1].pid, SIGCONT) == 0
    assert all(t.state == TaskState.TASK_RUNNING and t.on_rq for t in threads)
    sig = p.signal
    assert sig.flags & SIGNAL_STOP_CONTINUED and not sig.flags & (SIGNAL_STOP_STOPPED | SIGNAL_CLD_MASK)
    assert sig.group_exit_code == 0
    assert take_sigchld(parent) == (CLD_CONTINUED, SIGCONT, p.pid)
    assert take_sigchld(parent) is None
    assert k.getpid(p) == p.pid  # it runs again
    k.check_invariants()


def test_sigcont_to_a_running_process_reports_nothing(k):
    """why stays 0 when the group was neither stopped nor stopping (kernel/signal.c:943-948)."""
    parent = parent_with_sigchld_blocked(k)
    c = fork_child(k, parent)
    k.kill(parent, c.pid, SIGCONT)
    assert not c.signal.flags & (SIGNAL_STOP_CONTINUED | SIGNAL_CLD_MASK)
    assert take_sigchld(parent) is None
    k.check_invariants()


def test_a_stop_signal_flushes_pending_sigcont_and_sigcont_flushes_pending_stops(k):
    """prepare_signal: a stop signal removes SIGCONT from every queue, SIGCONT removes every stop signal
    (kernel/signal.c:911-918, 924-927), blocked or not."""
    c = fork_child(k)
    t = thread_of(k, c)
    for th in (c, t):
        k.rt_sigprocmask(th, SIG_BLOCK, bit(SIGCONT) | bit(SIGTSTP) | bit(SIGTTIN))
    k.tkill(k.init_task, t.pid, SIGCONT)
    k.kill(k.init_task, c.pid, SIGCONT)
    assert t.pending.signal & bit(SIGCONT) and c.signal.shared_pending.signal & bit(SIGCONT)
    k.kill(k.init_task, c.pid, SIGTSTP)
    assert not (t.pending.signal | c.signal.shared_pending.signal) & bit(SIGCONT)
    k.tkill(k.init_task, t.pid, SIGTTIN)
    assert c.signal.shared_pending.signal & bit(SIGTSTP) and t.pending.signal & bit(SIGTTIN)
    k.kill(k.init_task, c.pid, SIGCONT)
    assert not (t.pending.signal | c.signal.shared_pending.signal) & (bit(SIGTSTP) | bit(SIGTTIN))
    assert all(q.si_signo not in (SIGTSTP, SIGTTIN) for q in c.signal.shared_pending.list + t.pending.list)
    k.check_invariants()


def test_stop_and_continue_are_reported_once_to_wait(k):
    """WUNTRACED reports sig << 8 | 0x7f once, WCONTINUED 0xffff once, from group_exit_code and
    SIGNAL_STOP_CONTINUED as prepare_signal and do_signal_stop leave them (kernel/exit.c:1133-1248)."""
    parent = fork_child(k)
    c = fork_child(k, parent)
    k.kill(parent, c.pid, SIGSTOP)
    assert k.wait4(parent, c.pid, WUNTRACED) == (c.pid, SIGSTOP << 8 | 0x7F)
    assert k.wait4(parent, c.pid, WUNTRACED | WNOHANG) == (0, 0)
    k.kill(parent, c.pid, SIGCONT)
    assert k.wait4(parent, c.pid, WCONTINUED) == (c.pid, 0xFFFF)
    assert k.wait4(parent, c.pid, WCONTINUED | WNOHANG) == (0, 0)
    k.check_invariants()


# --- when the stop happens: the model's delivery points ---------------------------------------------------


def test_a_stop_arriving_during_a_syscall_stops_the_task_at_its_end(k):
    """The signal is acted on in get_signal on the way back to user mode: the syscall completes (its value is
    returned) and the task is stopped after it (arch/x86/entry/common.c exit work, kernel/signal.c:2677-2708)."""
    c = fork_child(k)
    fired: list[bool] = []

    def listener(event) -> None:
        if event.kind == "wake_up_new_task" and not fired:
            fired.append(True)
            k.kill(k.init_task, c.pid, SIGSTOP)
            assert c.state == TaskState.TASK_RUNNING  # still in its fork

    k.listeners.append(listener)
    pid = k.fork(c)
    k.listeners.clear()
    assert fired and pid > 0 and k.find_task(pid).real_parent is c
    assert is_stopped(c) and c.signal.flags & SIGNAL_STOP_STOPPED
    k.check_invariants()


def test_a_task_asleep_in_wait4_is_stopped_at_once_and_reissues_the_call_after_sigcont(k):
    """TASK_INTERRUPTIBLE: signal_wake_up wakes it (kernel/signal.c:767), it stops; after SIGCONT it is runnable and
    its user calls again (the model's Blocked convention)."""
    p = fork_child(k)
    c = fork_child(k, p)
    with pytest.raises(Blocked):
        k.wait4(p, c.pid, 0)
    k.kill(k.init_task, p.pid, SIGSTOP)
    assert is_stopped(p)
    k.kill(k.init_task, p.pid, SIGCONT)
    assert p.state == TaskState.TASK_RUNNING
    k.exit(c, 7)
    assert k.wait4(p, c.pid, 0) == (c.pid, 7 << 8)
    k.check_invariants()


def test_a_vfork_parent_is_not_stopped_while_it_waits(k):
    """The vfork wait is TASK_KILLABLE: signal_wake_up(t, 0) does not wake it (kernel/signal.c:767), so it keeps
    sleeping with the stop pending and the group stop is not complete (kernel/fork.c:1255-1274)."""
    parent = parent_with_sigchld_blocked(k)
    p = fork_child(k, parent)
    child_pid = k.vfork(p)
    assert p.state == TaskState.TASK_KILLABLE
    k.kill(parent, p.pid, SIGSTOP)
    assert p.state == TaskState.TASK_KILLABLE and p.waits_on == "vfork_done"
    assert p.signal.shared_pending.signal & bit(SIGSTOP)
    assert not p.signal.flags & SIGNAL_STOP_STOPPED and take_sigchld(parent) is None
    make_binary(k)
    k.execve(k.find_task(child_pid), "/bin/true")  # exec_mm_release releases the parent
    assert p.state == TaskState.TASK_RUNNING and not p.signal.flags & SIGNAL_STOP_STOPPED
    k.getpid(p)  # the model runs its return to user mode at its next syscall: there it stops
    assert is_stopped(p)
    assert take_sigchld(parent) == (CLD_STOPPED, SIGSTOP, p.pid)
    k.check_invariants()


def test_a_vfork_parent_dies_of_sigkill(k):
    """A fatal signal does end the killable vfork wait (kernel/fork.c:1266-1270)."""
    p = fork_child(k)
    k.vfork(p)
    k.kill(k.init_task, p.pid, SIGKILL)
    assert p.exit_state
    k.check_invariants()


def test_a_thread_in_vfork_wait_holds_up_the_group_stop(k):
    """group_stop_count counts the vfork-waiting thread (task_set_jobctl_pending succeeds on it) until it stops
    itself (kernel/signal.c:2353-2355)."""
    parent = parent_with_sigchld_blocked(k)
    p = fork_child(k, parent)
    t = thread_of(k, p)
    child_pid = k.vfork(t)
    k.kill(parent, p.pid, SIGSTOP)
    assert is_stopped(p) and t.state == TaskState.TASK_KILLABLE
    assert t.jobctl & JOBCTL_STOP_PENDING and p.signal.group_stop_count == 1
    assert not p.signal.flags & SIGNAL_STOP_STOPPED and take_sigchld(parent) is None
    k.exit(k.find_task(child_pid), 0)  # releases t; the SIGCHLD of this exit runs t's return to user mode now
    assert is_stopped(t) and p.signal.flags & SIGNAL_STOP_STOPPED
    assert take_sigchld(parent) == (CLD_STOPPED, SIGSTOP, p.pid)
    k.check_invariants()


# --- which signals stop ----------------------------------------------------------------------------------


def test_sigtstp_in_an_orphaned_process_group_is_discarded(k):
    """Only SIGSTOP stops an orphaned pgrp; the others are dropped (kernel/signal.c:2688-2694). A child of init
    in init's pgrp is orphaned: its parent is the global init (kernel/exit.c:will_become_orphaned_pgrp)."""
    c = fork_child(k)
    k.kill(k.init_task, c.pid, SIGTSTP)
    assert c.state == TaskState.TASK_RUNNING and not c.signal.flags & SIGNAL_STOP_STOPPED
    assert not (c.pending.signal | c.signal.shared_pending.signal)
    assert (c.pid, SIGTSTP, "discarded (orphaned process group)") in k.signals_delivered
    k.kill(k.init_task, c.pid, SIGSTOP)
    assert is_stopped(c)
    k.check_invariants()


def test_sigtstp_stops_a_process_group_with_a_parent_in_another_group_of_the_session(k):
    """Not orphaned: the parent s is in another pgrp of the same session, so SIGTSTP stops (kernel/signal.c:2699)."""
    s = fork_child(k)
    k.setsid(s)
    k.rt_sigprocmask(s, SIG_BLOCK, bit(SIGCHLD))
    c = fork_child(k, s)
    k.setpgid(s, c.pid, c.pid)
    assert k.kill(s, -c.pid, SIGTSTP) == 0
    assert is_stopped(c) and c.signal.group_exit_code == SIGTSTP
    assert take_sigchld(s) == (CLD_STOPPED, SIGTSTP, c.pid)
    k.check_invariants()


def test_a_caught_or_blocked_stop_signal_does_not_stop(k):
    """A handler runs instead of the default stop (kernel/signal.c:2647-2654); a blocked one waits, and stops the
    task at the end of the sigprocmask that unblocks it."""
    s = fork_child(k)
    k.setsid(s)
    c = fork_child(k, s)
    k.setpgid(s, c.pid, c.pid)
    k.rt_sigaction(c, SIGTSTP, SigAction(HANDLER))
    k.kill(s, c.pid, SIGTSTP)
    assert c.state == TaskState.TASK_RUNNING
    k.getpid(c)
    assert (c.pid, SIGTSTP, f"handler {HANDLER:#x} ran") in k.signals_delivered
    k.rt_sigaction(c, SIGTSTP, SigAction(SIG_DFL))
    k.rt_sigprocmask(c, SIG_BLOCK, bit(SIGTSTP))
    k.kill(s, c.pid, SIGTSTP)
    assert c.state == TaskState.TASK_RUNNING and c.signal.shared_pending.signal & bit(SIGTSTP)
    k.rt_sigprocmask(c, SIG_UNBLOCK, bit(SIGTSTP))
    assert is_stopped(c) and c.signal.group_exit_code == SIGTSTP
    k.check_invariants()


def test_init_cannot_be_stopped(k):
    """SIGSTOP is never sent to the global init (sig_task_ignored, kernel/signal.c:84-86)."""
    init = k.init_task
    c = fork_child(k)
    k.kill(c, init.pid, SIGSTOP)
    assert init.state == TaskState.TASK_RUNNING and not init.signal.shared_pending.signal
    k.check_invariants()


def test_sa_resethand_resets_only_the_handler(k):
    """SA_ONESHOT sets sa_handler = SIG_DFL and keeps the flags (kernel/signal.c:2651-2652); the next one kills."""
    c = fork_child(k)
    k.rt_sigaction(c, SIGUSR1, SigAction(HANDLER, SA_RESETHAND, bit(SIGTERM)))
    k.kill(k.init_task, c.pid, SIGUSR1)
    k.getpid(c)
    action = c.sighand.action[SIGUSR1 - 1]
    assert (action.sa_handler, action.sa_flags, action.sa_mask) == (SIG_DFL, SA_RESETHAND, bit(SIGTERM))
    k.kill(k.init_task, c.pid, SIGUSR1)
    assert c.exit_state
    assert k.wait4(k.init_task, c.pid, 0) == (c.pid, SIGUSR1)
    k.check_invariants()


# --- core dumps -------------------------------------------------------------------------------------------


def make_binary(k: Kernel) -> None:
    """/bin/true: a non-empty executable file, which the model's binfmt runs."""
    if k.vfs.lookup("/bin/true") is not None:
        return
    if k.vfs.lookup("/bin") is None:
        k.vfs.mkdir("/bin")
    inode = k.vfs.create("/bin/true", mode=0o755)
    inode.data[:] = b"\x7fELF\x02\x01\x01"
    inode.i_size = 7


def exec_child(k: Kernel, parent: Task | None = None) -> Task:
    """A child that exec'd /bin/true, so its mm is dumpable (SUID_DUMP_USER, fs/exec.c:setup_new_exec)."""
    make_binary(k)
    c = fork_child(k, parent)
    k.execve(c, "/bin/true")
    return c


def test_no_core_dump_at_boot_rlimit_core_0(k):
    """RLIMIT_CORE 0 is below min_coredump (fs/coredump.c:699-700): no 0x80 bit, CLD_KILLED."""
    parent = parent_with_sigchld_blocked(k)
    c = exec_child(k, parent)
    k.kill(parent, c.pid, SIGQUIT)
    assert take_sigchld(parent) == (CLD_KILLED, SIGQUIT, c.pid)
    assert k.wait4(parent, c.pid, 0) == (c.pid, SIGQUIT)
    k.check_invariants()


def test_core_dump_sets_0x80_when_the_limit_allows_one_page(k):
    """A dumpable mm and RLIMIT_CORE >= ELF_EXEC_PAGESIZE: coredump_finish ORs 0x80 into group_exit_code
    (fs/coredump.c:480-481); the parent sees CLD_DUMPED and the wait status WCOREDUMP."""
    c = exec_child(k)
    k.setrlimit(c, RLIMIT_CORE, (4096, RLIM_INFINITY))
    k.kill(k.init_task, c.pid, SIGQUIT)
    assert c.exit_state and c.flags & PF.PF_DUMPCORE and c.flags & PF.PF_SIGNALED
    assert k.wait4(k.init_task, c.pid, 0) == (c.pid, 0x80 | SIGQUIT)
    k.check_invariants()


def test_core_dump_reports_cld_dumped_to_the_parent(k):
    """do_notify_parent: exit_code & 0x80 -> CLD_DUMPED (kernel/signal.c:1966-1967)."""
    parent = parent_with_sigchld_blocked(k)
    c = exec_child(k, parent)
    k.setrlimit(c, RLIMIT_CORE, (RLIM_INFINITY, RLIM_INFINITY))
    k.kill(parent, c.pid, SIGSEGV)
    assert take_sigchld(parent) == (CLD_DUMPED, SIGSEGV, c.pid)
    k.check_invariants()


@pytest.mark.parametrize("limit", [0, 1, 4095])
def test_no_core_dump_below_one_page(k, limit):
    """cprm.limit < binfmt->min_coredump writes nothing (fs/coredump.c:699-700)."""
    c = exec_child(k)
    k.setrlimit(c, RLIMIT_CORE, (limit, RLIM_INFINITY))
    k.kill(k.init_task, c.pid, SIGQUIT)
    assert k.wait4(k.init_task, c.pid, 0) == (c.pid, SIGQUIT)
    k.check_invariants()


def test_a_task_that_never_execd_is_not_dumpable(k):
    """The boot init's mm has no dumpable bits and fork copies them (fs/coredump.c:599-600)."""
    c = fork_child(k)
    k.setrlimit(c, RLIMIT_CORE, (RLIM_INFINITY, RLIM_INFINITY))
    k.kill(k.init_task, c.pid, SIGQUIT)
    assert not c.flags & PF.PF_DUMPCORE
    assert k.wait4(k.init_task, c.pid, 0) == (c.pid, SIGQUIT)
    k.check_invariants()


def test_signals_that_do_not_dump_core_never_set_0x80(k):
    """SIGTERM is not in SIG_KERNEL_COREDUMP_MASK (include/linux/signal.h:413-418)."""
    c = exec_child(k)
    k.setrlimit(c, RLIMIT_CORE, (RLIM_INFINITY, RLIM_INFINITY))
    k.kill(k.init_task, c.pid, SIGTERM)
    assert k.wait4(k.init_task, c.pid, 0) == (c.pid, SIGTERM)
    k.check_invariants()


def test_a_core_dump_kills_every_thread_with_the_dump_status(k):
    """zap_threads kills the dumper's other threads (fs/coredump.c:338-358); the group status keeps 0x80."""
    c = exec_child(k)
    t = thread_of(k, c)
    k.setrlimit(c, RLIMIT_CORE, (RLIM_INFINITY, RLIM_INFINITY))
    k.tkill(k.init_task, t.pid, SIGQUIT)
    assert c.exit_state and t.exit_state
    assert k.wait4(k.init_task, c.pid, 0) == (c.pid, 0x80 | SIGQUIT)
    k.check_invariants()


def test_a_dumping_vfork_child_takes_its_parent_down(k):
    """zap_threads zaps every other process using the dumper's mm (fs/coredump.c:411-428): the vfork parent
    sharing it gets SIGKILL and dies with the dumper's signal as its group_exit_code."""
    p = exec_child(k)
    k.setrlimit(p, RLIMIT_CORE, (RLIM_INFINITY, RLIM_INFINITY))
    child_pid = k.vfork(p)
    v = k.find_task(child_pid)
    assert v.mm is p.mm
    k.kill(k.init_task, v.pid, SIGQUIT)
    assert v.exit_state and p.exit_state
    assert v.real_parent is k.init_task  # reparented when p died
    assert k.wait4(k.init_task, p.pid, 0) == (p.pid, SIGQUIT)  # zapped: the dumper's signal, no dump of its own
    assert k.wait4(k.init_task, v.pid, 0) == (v.pid, 0x80 | SIGQUIT)
    k.check_invariants()


def test_a_stopped_task_can_be_killed_into_a_core_dump_only_after_sigcont(k):
    """A core-dumping signal is not fatal at send time (complete_signal skips sig_kernel_coredump,
    kernel/signal.c:1036): a stopped task keeps it pending until it runs again."""
    c = exec_child(k)
    k.setrlimit(c, RLIMIT_CORE, (RLIM_INFINITY, RLIM_INFINITY))
    k.kill(k.init_task, c.pid, SIGSTOP)
    k.kill(k.init_task, c.pid, SIGQUIT)
    assert is_stopped(c) and c.signal.shared_pending.signal & bit(SIGQUIT)
    with contextlib.suppress(TaskKilled):
        k.kill(k.init_task, c.pid, SIGCONT)
    assert c.exit_state
    assert k.wait4(k.init_task, c.pid, 0) == (c.pid, 0x80 | SIGQUIT)
    k.check_invariants()


def test_a_thread_created_while_its_group_is_stopping_joins_the_stop(k):
    """copy_process: task_join_group_stop gives the new thread the pending stop and one more count, after the early
    signal_pending check (kernel/fork.c:2275, kernel/signal.c:392-404)."""
    p = fork_child(k)
    t = thread_of(k, p)
    fired: list[bool] = []

    def listener(event) -> None:
        if event.kind == "sched_fork" and not fired:
            fired.append(True)
            k.kill(k.init_task, p.pid, SIGSTOP)  # t, not in a syscall, starts the group stop at once
            assert is_stopped(t) and p.jobctl & JOBCTL_STOP_PENDING

    k.listeners.append(listener)
    n = k.find_task(k.clone(p, THREAD))
    k.listeners.clear()
    assert fired and all(is_stopped(th) for th in (p, t, n))
    assert p.signal.flags & SIGNAL_STOP_STOPPED and p.signal.group_stop_count == 0
    k.check_invariants()


# --- random job control: the relations the group-stop fields keep ---------------------------------------


JOB_SIGNALS = [SIGSTOP, SIGTSTP, SIGCONT, SIGKILL, SIGUSR1, SIGTERM, SIGQUIT]


def check_job_control(k: Kernel) -> None:
    """What do_signal_stop, task_participate_group_stop and prepare_signal keep true once no task is in a
    syscall: nothing is left pending to stop, a stopped thread belongs to a stopped group, a stopped group
    has no thread running, and the counters agree (kernel/signal.c:2304-2420, 366-390, 919-958)."""
    for leader in k.tasks:
        sig = leader.signal
        live = [t for t in sig.thread_head if not t.exit_state and not t.flags & PF.PF_EXITING]
        if not live:
            continue
        assert not any(t.jobctl & JOBCTL_PENDING_MASK for t in live), "a thread not in a syscall kept a stop pending"
        assert sig.group_stop_count == 0
        stopped = [t for t in live if is_stopped(t)]
        if sig.flags & SIGNAL_STOP_STOPPED:
            assert stopped == live and sig.group_exit_code in (0, SIGSTOP, SIGTSTP)
        else:
            assert not stopped
        assert not sig.flags & SIGNAL_CLD_MASK, "a continue was left unreported"
        for t in stopped:
            assert t.on_rq == 0 and t.waits_on == "group stop"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(JOB_SIGNALS), st.booleans()), max_size=25))
def test_random_stops_continues_and_kills_keep_the_group_stop_consistent(ops):
    """Random kills of stop, continue, caught and fatal signals to processes and to single threads of one
    session's process group, with waits by their parent in between."""
    k = Kernel()
    s = fork_child(k)
    k.setsid(s)
    k.rt_sigprocmask(s, SIG_BLOCK, bit(SIGCHLD))
    procs = [fork_child(k, s), fork_child(k, s)]
    for p in procs:
        k.setpgid(s, p.pid, procs[0].pid)
        k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    threads = [thread_of(k, procs[0]), thread_of(k, procs[1])]
    targets = [*procs, *threads]
    for which, sig, by_tid in ops:
        t = targets[which]
        if t.exit_state or t.flags & PF.PF_EXITING:
            continue
        if by_tid:
            k.tgkill(s, t.tgid, t.pid, sig)
        else:
            k.kill(s, t.pid, sig)
        for p in procs:
            with contextlib.suppress(OSError):
                k.wait4(s, p.pid, WNOHANG | WUNTRACED | WCONTINUED)
        for th in targets:
            if th.state == TaskState.TASK_RUNNING and not th.exit_state and not th.flags & PF.PF_EXITING:
                with contextlib.suppress(TaskKilled):
                    k.getpid(th)
        check_job_control(k)
        k.check_invariants()
