"""A state machine over the whole syscall surface, with the kernel's global properties checked.

Random sequences of fork/vfork/clone/clone3, threads that exit in any order, exit/wait/waitid,
exec, unshare, mmap/munmap/mprotect/madvise, store/load, setrlimit, setresuid, rt_sigaction,
kill/tgkill with stop and continue signals, setpgid/setsid, pidfd_open/pidfd_send_signal, prctl
and pipes run on random tasks. After every step: ``check_invariants()`` holds, pids are unique
in each namespace, every task is in exactly one thread group, the per-uid process counts add up
to the number of tasks, and a stopped group is stopped as a whole. Only OSError, Segfault,
TaskKilled and Blocked may escape: any other exception (InternalError above all) fails the test.
"""

from __future__ import annotations

import contextlib
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from forklab import Blocked, CloneArgs, Kernel, Segfault, SigAction, Task, TaskKilled, TaskState
from forklab.include.linux.sched import PIDTYPE, SIGNAL_GROUP_EXIT, SIGNAL_STOP_STOPPED, is_global_init
from forklab.testing import FLAG_POOL
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    MADV_DOFORK,
    MADV_DONTFORK,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    P_ALL,
    P_PGID,
    P_PID,
    PAGE_SIZE,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    RLIMIT_NPROC,
    SIG_IGN,
    SIGCHLD,
    SIGCONT,
    SIGKILL,
    SIGSTOP,
    SIGTERM,
    SIGTSTP,
    SIGUSR1,
    WCONTINUED,
    WEXITED,
    WNOHANG,
    WNOWAIT,
    WSTOPPED,
    WUNTRACED,
)

ALLOWED = (OSError, Segfault, TaskKilled, Blocked)
flags_st = st.lists(st.sampled_from(FLAG_POOL), max_size=4).map(lambda xs: sum(set(xs)))
pick = st.integers(0, 10_000)


class WholeSurface(RuleBasedStateMachine):
    """Every syscall the model has, on random live tasks."""

    def __init__(self) -> None:
        super().__init__()
        self.k = Kernel(pid_max=500, threads_max=80)
        self.regions: list[int] = []
        self.k.vfs.mkdir("/bin")
        prog = self.k.vfs.create("/bin/prog", mode=0o755)
        prog.data[:] = b"\x7fELF\x02\x01\x01"
        prog.i_size = len(prog.data)

    def live(self, i: int, not_init: bool = False) -> Task | None:
        ts = [t for t in self.k.all_threads() if t.state == TaskState.TASK_RUNNING and not t.exit_state
              and not (not_init and is_global_init(t))]
        return ts[i % len(ts)] if ts else None

    def run(self, fn: object, *args: object) -> None:
        with contextlib.suppress(*ALLOWED):
            fn(*args)  # type: ignore[operator]

    def region(self, i: int) -> int:
        return self.regions[i % len(self.regions)] if self.regions else 0x1000

    @rule(i=pick, kind=st.sampled_from(["fork", "vfork"]))
    def fork(self, i: int, kind: str) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(getattr(self.k, kind), t)

    @rule(i=pick, flags=flags_st, sig=st.sampled_from([0, SIGCHLD, SIGUSR1]))
    def clone(self, i: int, flags: int, sig: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        r = self.region(i)
        self.run(self.k.clone, t, flags | sig, 0, r, r + 4, 0x7000)

    @rule(i=pick, flags=flags_st, tids=st.lists(st.integers(1, 520), max_size=2))
    def clone3(self, i: int, flags: int, tids: list[int]) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.clone3, t, CloneArgs(flags=flags, pidfd=self.region(i), set_tid=tids, exit_signal=SIGCHLD))

    @rule(i=pick, flags=flags_st)
    def unshare(self, i: int, flags: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.unshare, t, flags)

    @rule(i=pick, status=st.integers(0, 255), group=st.booleans())
    def exit(self, i: int, status: int, group: bool) -> None:
        t = self.live(i, not_init=True)
        if t is not None:
            self.run(self.k.exit_group if group else self.k.exit, t, status)

    @rule(i=pick, opts=st.sampled_from([WNOHANG, WNOHANG | 0x40000000, 0x40000000]))
    def wait(self, i: int, opts: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.wait4, t, -1, opts)

    @rule(i=pick, j=pick, sig=st.sampled_from([0, SIGTERM, SIGKILL, SIGUSR1, SIGCHLD]))
    def kill(self, i: int, j: int, sig: int) -> None:
        t, victim = self.live(i), self.live(j, not_init=True)
        if t is not None and victim is not None:
            self.run(self.k.kill, t, victim.tgid, sig)

    def any_task(self, j: int) -> Task | None:
        """Any task that is not the global init's and not yet reaped: running, sleeping, stopped or zombie."""
        ts = [t for t in self.k.all_threads() if not is_global_init(t) and t.exit_state != TaskState.EXIT_DEAD]
        return ts[j % len(ts)] if ts else None

    @rule(i=pick)
    def thread(self, i: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        r = self.region(i)
        self.run(self.k.clone, t, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD, 0, r, r, 0)

    @rule(i=pick, j=pick, sig=st.sampled_from([SIGSTOP, SIGTSTP, SIGCONT, SIGKILL, SIGUSR1]), how=st.sampled_from(
        ["kill", "tgkill", "tkill", "pgrp"]))
    def signal(self, i: int, j: int, sig: int, how: str) -> None:
        t, victim = self.live(i), self.any_task(j)
        if t is None or victim is None:
            return
        assert victim.signal is not None and victim.signal.pids[PIDTYPE.PIDTYPE_PGID] is not None
        if how == "kill":
            self.run(self.k.kill, t, victim.tgid, sig)
        elif how == "tgkill":
            self.run(self.k.tgkill, t, victim.tgid, victim.pid, sig)
        elif how == "tkill":
            self.run(self.k.tkill, t, victim.pid, sig)
        else:
            pgrp = victim.signal.pids[PIDTYPE.PIDTYPE_PGID]
            assert pgrp is not None
            self.run(self.k.kill, t, -pgrp.numbers[0].nr, sig)

    @rule(i=pick, j=pick, own=st.booleans())
    def setpgid(self, i: int, j: int, own: bool) -> None:
        t, other = self.live(i), self.any_task(j)
        if t is None:
            return
        target = 0 if own or other is None else other.tgid
        self.run(self.k.setpgid, t, target, 0 if own or other is None else t.tgid)

    @rule(i=pick)
    def setsid(self, i: int) -> None:
        t = self.live(i)
        if t is not None:
            self.run(self.k.setsid, t)

    @rule(i=pick, idtype=st.sampled_from([P_ALL, P_PID, P_PGID]), options=st.sampled_from(
        [WEXITED | WNOHANG, WSTOPPED | WNOHANG, WCONTINUED | WNOHANG, WEXITED | WSTOPPED | WCONTINUED | WNOHANG,
         WEXITED | WNOWAIT | WNOHANG, WEXITED, 0]))
    def waitid(self, i: int, idtype: int, options: int) -> None:
        t = self.live(i)
        if t is not None:
            self.run(self.k.waitid, t, idtype, 0 if idtype != P_PID else t.tgid + 1, options)

    @rule(i=pick, opts=st.sampled_from([WNOHANG | WUNTRACED, WNOHANG | WCONTINUED, WUNTRACED | WCONTINUED]))
    def wait_job(self, i: int, opts: int) -> None:
        t = self.live(i)
        if t is not None:
            self.run(self.k.wait4, t, -1, opts)

    @rule(i=pick, j=pick, sig=st.sampled_from([0, SIGUSR1, SIGSTOP, SIGCONT, SIGKILL]))
    def pidfd(self, i: int, j: int, sig: int) -> None:
        t, victim = self.live(i), self.any_task(j)
        if t is None or victim is None:
            return
        with contextlib.suppress(*ALLOWED):
            fd = self.k.pidfd_open(t, victim.tgid, 0)
            if t.state == TaskState.TASK_RUNNING and not t.exit_state:
                self.run(self.k.pidfd_send_signal, t, fd, sig)
            if t.state == TaskState.TASK_RUNNING and not t.exit_state:
                self.run(self.k.close, t, fd)

    @rule(i=pick, sig=st.sampled_from([SIGUSR1, SIGCHLD, SIGTERM]), handler=st.sampled_from([0, SIG_IGN, 0x4000]))
    def sigaction(self, i: int, sig: int, handler: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.rt_sigaction, t, sig, SigAction(handler))

    @rule(i=pick, opt=st.sampled_from([PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG]), arg=st.sampled_from([0, 1, 9]))
    def prctl(self, i: int, opt: int, arg: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.prctl, t, opt, arg)

    @rule(i=pick, pages=st.integers(1, 3), shared=st.booleans())
    def mmap(self, i: int, pages: int, shared: bool) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        with contextlib.suppress(*ALLOWED):
            self.regions.append(self.k.mmap(t, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                                            (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS))

    @precondition(lambda self: bool(self.regions))
    @rule(i=pick, what=st.sampled_from(["munmap", "protnone", "protrw", "dontfork", "dofork", "wipe"]))
    def memctl(self, i: int, what: str) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        r = self.region(i)
        calls = {"munmap": (self.k.munmap, t, r, PAGE_SIZE), "protnone": (self.k.mprotect, t, r, PAGE_SIZE, PROT_NONE),
                 "protrw": (self.k.mprotect, t, r, PAGE_SIZE, PROT_READ | PROT_WRITE),
                 "dontfork": (self.k.madvise, t, r, PAGE_SIZE, MADV_DONTFORK),
                 "dofork": (self.k.madvise, t, r, PAGE_SIZE, MADV_DOFORK),
                 "wipe": (self.k.madvise, t, r, PAGE_SIZE, MADV_WIPEONFORK)}
        self.run(*calls[what])

    @precondition(lambda self: bool(self.regions))
    @rule(i=pick, off=st.integers(0, 12287), write=st.booleans())
    def touch(self, i: int, off: int, write: bool) -> None:
        t = self.live(i, not_init=True)  # a fault in the global init panics the kernel
        if t is not None:
            addr = self.region(i) + off
            self.run(self.k.store, t, addr, b"w") if write else self.run(self.k.load, t, addr, 1)

    @rule(i=pick, path=st.sampled_from(["/bin/prog", "/bin", "/nonexistent"]))
    def execve(self, i: int, path: str) -> None:
        t = self.live(i, not_init=True)  # an exec'ing init that fails late would panic
        if t is not None:
            self.run(self.k.execve, t, path, ["prog", "-x"], ["A=1"])

    @rule(i=pick, cloexec=st.booleans())
    def pipe(self, i: int, cloexec: bool) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.pipe2, t, 0o2000000 | 0o4000 if cloexec else 0o4000)

    @rule(i=pick, fd=st.integers(0, 12), write=st.booleans(), close=st.booleans())
    def fdio(self, i: int, fd: int, write: bool, close: bool) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        if close:
            self.run(self.k.close, t, fd)
        elif write:
            self.run(self.k.write, t, fd, b"data")
        else:
            self.run(self.k.read, t, fd, 8)

    @rule(i=pick, soft=st.integers(1, 30))
    def setrlimit(self, i: int, soft: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.setrlimit, t, RLIMIT_NPROC, (soft, 2**64 - 1))

    @rule(i=pick, uid=st.sampled_from([-1, 0, 1000]))
    def setresuid(self, i: int, uid: int) -> None:
        t = self.live(i)
        if t is None:  # every task may be asleep or stopped
            return
        self.run(self.k.setresuid, t, uid, uid, uid)

    @invariant()
    def kernel_invariants(self) -> None:
        self.k.check_invariants()

    @invariant()
    def pids_unique_per_namespace(self) -> None:
        seen: Counter[tuple[int, int]] = Counter()
        for t in self.k.all_threads():
            assert t.thread_pid is not None
            for upid in t.thread_pid.numbers:
                seen[(id(upid.ns), upid.nr)] += 1
        assert all(n == 1 for n in seen.values())

    @invariant()
    def one_thread_group_each(self) -> None:
        groups = Counter(id(t) for leader in self.k.tasks if leader.signal for t in leader.signal.thread_head)
        assert set(groups.values()) <= {1}
        assert sum(groups.values()) == len(self.k.all_threads())

    @invariant()
    def group_stops_are_whole(self) -> None:
        """A thread group marked stopped (SIGNAL_STOP_STOPPED) has no thread still running outside a syscall."""
        for leader in self.k.tasks:
            assert leader.signal is not None
            if leader.signal.flags & SIGNAL_STOP_STOPPED and not leader.signal.flags & SIGNAL_GROUP_EXIT:
                for t in leader.signal.thread_head:
                    assert t.exit_state or t.state != TaskState.TASK_RUNNING, f"task {t.pid} runs in a stopped group"

    @invariant()
    def process_counts_add_up(self) -> None:
        assert sum(u.processes for u in self.k.uidhash.values()) == len(self.k.all_threads())


WholeSurface.TestCase.settings = settings(max_examples=80, stateful_step_count=30, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_whole_surface = WholeSurface.TestCase
