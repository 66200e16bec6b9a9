"""Random sequences of process, memory and credential calls keep every invariant.

A hypothesis state machine drives fork, clone, clone3, unshare, exit, wait4, mmap, store,
load, madvise, setrlimit and setresuid on random tasks, and checks ``check_invariants()``
after every step. Only the documented exceptions may escape: OSError (the kernel's errno),
Segfault, TaskKilled and Blocked.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from forklab import Blocked, CloneArgs, Kernel, Segfault, Task, TaskKilled, TaskState
from forklab.uapi import (
    __WALL,
    CLONE_CHILD_CLEARTID,
    CLONE_CLEAR_SIGHAND,
    CLONE_FILES,
    CLONE_FS,
    CLONE_IO,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_PARENT,
    CLONE_PIDFD,
    CLONE_PTRACE,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_UNTRACED,
    CLONE_VFORK,
    CLONE_VM,
    MADV_DOFORK,
    MADV_DONTFORK,
    MADV_KEEPONFORK,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    RLIMIT_NOFILE,
    RLIMIT_NPROC,
    SIGCHLD,
    WNOHANG,
)

WALL = __WALL  # a module-level alias: names with two leading underscores are mangled in class bodies

FLAG_BITS = [CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND, CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK, CLONE_PARENT,
             CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS, CLONE_CHILD_CLEARTID, CLONE_UNTRACED,
             CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_IO,
             CLONE_NEWTIME, CLONE_CLEAR_SIGHAND]
flags_st = st.lists(st.sampled_from(FLAG_BITS), max_size=5).map(lambda bits: sum(set(bits)))
EXPECTED = (OSError, Segfault, TaskKilled, Blocked)


class ForkMachine(RuleBasedStateMachine):
    """Random syscalls on random live tasks of one kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.k = Kernel(pid_max=400, threads_max=64)
        self.regions: list[int] = []

    def runnable(self) -> list[Task]:
        return [t for t in self.k.all_threads() if t.state == TaskState.TASK_RUNNING and not t.exit_state]

    def call(self, fn: object, *args: object) -> object:
        try:
            return fn(*args)  # type: ignore[operator]
        except EXPECTED:
            return None

    @rule(i=st.integers(0, 1000))
    def fork(self, i: int) -> None:
        ts = self.runnable()
        self.call(self.k.fork, ts[i % len(ts)])

    @rule(i=st.integers(0, 1000), flags=flags_st, sig=st.sampled_from([0, SIGCHLD, 10, 200]))
    def clone(self, i: int, flags: int, sig: int) -> None:
        ts = self.runnable()
        t = ts[i % len(ts)]
        addr = self.regions[i % len(self.regions)] if self.regions else 0
        self.call(self.k.clone, t, flags | sig, 0, addr, addr + 8, 0x1000)

    @rule(i=st.integers(0, 1000), flags=flags_st, sig=st.sampled_from([0, SIGCHLD, 65]),
          set_tid=st.lists(st.integers(-1, 450), max_size=2))
    def clone3(self, i: int, flags: int, sig: int, set_tid: list[int]) -> None:
        ts = self.runnable()
        t = ts[i % len(ts)]
        addr = self.regions[i % len(self.regions)] if self.regions else 0
        self.call(self.k.clone3, t, CloneArgs(flags=flags, exit_signal=sig, pidfd=addr, set_tid=set_tid))

    @rule(i=st.integers(0, 1000), flags=flags_st)
    def unshare(self, i: int, flags: int) -> None:
        ts = self.runnable()
        self.call(self.k.unshare, ts[i % len(ts)], flags)

    @rule(i=st.integers(0, 1000), status=st.integers(0, 255))
    def exit(self, i: int, status: int) -> None:
        ts = [t for t in self.runnable() if t is not self.k.init_task]
        if ts:
            self.call(self.k.exit, ts[i % len(ts)], status)

    @rule(i=st.integers(0, 1000), opts=st.sampled_from([WNOHANG, WNOHANG | WALL]))
    def wait(self, i: int, opts: int) -> None:
        ts = self.runnable()
        self.call(self.k.wait4, ts[i % len(ts)], -1, opts)

    @rule(i=st.integers(0, 1000), pages=st.integers(1, 4), shared=st.booleans())
    def mmap(self, i: int, pages: int, shared: bool) -> None:
        ts = self.runnable()
        flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS
        addr = self.call(self.k.mmap, ts[i % len(ts)], 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, flags)
        if isinstance(addr, int):
            self.regions.append(addr)

    @precondition(lambda self: bool(self.regions))
    @rule(i=st.integers(0, 1000), j=st.integers(0, 1000), off=st.integers(0, 16383), write=st.booleans())
    def touch(self, i: int, j: int, off: int, write: bool) -> None:
        ts = [t for t in self.runnable() if t is not self.k.init_task]  # a fault in the global init panics
        if not ts:
            return
        t = ts[i % len(ts)]
        addr = self.regions[j % len(self.regions)] + off
        if write:
            self.call(self.k.store, t, addr, b"x")
        else:
            self.call(self.k.load, t, addr, 1)

    @precondition(lambda self: bool(self.regions))
    @rule(i=st.integers(0, 1000), j=st.integers(0, 1000),
          advice=st.sampled_from([MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK]))
    def madvise(self, i: int, j: int, advice: int) -> None:
        ts = self.runnable()
        self.call(self.k.madvise, ts[i % len(ts)], self.regions[j % len(self.regions)], PAGE_SIZE, advice)

    @rule(i=st.integers(0, 1000), res=st.sampled_from([RLIMIT_NPROC, RLIMIT_NOFILE]), soft=st.integers(0, 64))
    def setrlimit(self, i: int, res: int, soft: int) -> None:
        ts = self.runnable()
        self.call(self.k.setrlimit, ts[i % len(ts)], res, (soft, 2**64 - 1))

    @rule(i=st.integers(0, 1000), uid=st.sampled_from([-1, 0, 1000, 1001]))
    def setresuid(self, i: int, uid: int) -> None:
        ts = self.runnable()
        self.call(self.k.setresuid, ts[i % len(ts)], uid, uid, -1)

    @invariant()
    def invariants_hold(self) -> None:
        self.k.check_invariants()


ForkMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
test_fork_machine = ForkMachine.TestCase
