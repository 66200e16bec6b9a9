"""Seeded random workloads over the model's syscall surface, for determinism checks and fuzzing.

``random_workload(seed, steps)`` builds a fresh Kernel and runs a reproducible sequence of
fork, clone, clone3, unshare, exit, wait4, kill, mmap, store/load, madvise, mprotect,
setrlimit and setresuid calls on random live tasks, recording every trace event. Its result
(``Workload.fingerprint``) is the trace and the /proc views of every task, as text: two runs
with the same seed must give the same bytes, whatever the interpreter's hash seed.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field

from forklab.errors import Blocked, KernelPanic, Segfault, TaskKilled
from forklab.include.linux.sched import Task, TaskState
from forklab.syscalls import Kernel
from forklab.trace import Recorder
from forklab.uapi import (
    __WALL,
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_PARENT,
    CLONE_PIDFD,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    MADV_DONTFORK,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    RLIM_INFINITY,
    RLIMIT_NPROC,
    SIGCHLD,
    SIGKILL,
    SIGTERM,
    SIGUSR1,
    WNOHANG,
    CloneArgs,
)

FLAG_POOL = (CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND, CLONE_THREAD, CLONE_PARENT, CLONE_VFORK,
             CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS, CLONE_NEWUTS, CLONE_PIDFD, CLONE_SETTLS)
EXPECTED_EXCEPTIONS = (OSError, Segfault, TaskKilled, Blocked)


@dataclass
class Workload:
    """A finished workload: its kernel, trace and the outcome of every step."""

    kernel: Kernel
    recorder: Recorder
    outcomes: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """The trace, the outcomes and every task's /proc status and maps, as one text."""
        k = self.kernel
        views = []
        for t in k.all_threads():
            if t.thread_pid is not None and not t.exit_state:
                views.append(k.proc(f"/proc/{t.pid}/status") + k.proc(f"/proc/{t.pid}/maps"))
        return "\n".join(self.recorder.lines() + self.outcomes + views)


def runnable(k: Kernel) -> list[Task]:
    """Tasks that can make a syscall now."""
    return [t for t in k.all_threads() if t.state == TaskState.TASK_RUNNING and not t.exit_state]


def random_workload(seed: int, steps: int = 60, version: str = "5.6.14") -> Workload:
    """Run ``steps`` random syscalls from ``seed`` on a fresh kernel; every outcome is recorded."""
    rng = random.Random(seed)
    k = Kernel(pid_max=1000, threads_max=200, version=version)
    rec = Recorder()
    k.listeners.append(rec)
    work = Workload(k, rec)
    regions: list[int] = []
    for step in range(steps):
        tasks = runnable(k)
        t = rng.choice(tasks)
        op = rng.choice(("fork", "clone", "clone3", "unshare", "exit", "wait", "kill", "mmap", "touch",
                         "madvise", "setrlimit", "setresuid"))
        outcome = f"{step} {op} by {t.pid}: "
        try:
            outcome += str(_step(k, rng, t, op, regions))
        except EXPECTED_EXCEPTIONS as e:
            outcome += f"{type(e).__name__}: {e}"
        except KernelPanic as e:
            work.outcomes.append(outcome + f"KernelPanic: {e}")
            break
        work.outcomes.append(outcome)
    return work


def _step(k: Kernel, rng: random.Random, t: Task, op: str, regions: list[int]) -> object:
    region = rng.choice(regions) if regions else 0
    if op == "fork":
        return k.fork(t)
    if op == "clone":
        flags = sum({rng.choice(FLAG_POOL) for _ in range(rng.randint(0, 3))})
        return k.clone(t, flags | rng.choice((SIGCHLD, 0, SIGUSR1)), 0, region, region + 8, 0x7000)
    if op == "clone3":
        flags = sum({rng.choice(FLAG_POOL) for _ in range(rng.randint(0, 3))})
        return k.clone3(t, CloneArgs(flags=flags, pidfd=region, exit_signal=rng.choice((SIGCHLD, 0))))
    if op == "unshare":
        return k.unshare(t, rng.choice((CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS, CLONE_FILES, CLONE_FS)))
    if op == "exit":
        if t is k.init_task:
            return "skipped"
        k.exit(t, rng.randint(0, 255))
        return "exited"
    if op == "wait":
        return k.wait4(t, -1, WNOHANG | rng.choice((0, __WALL)))
    if op == "kill":
        victim = rng.choice(runnable(k))
        return k.kill(t, victim.tgid, rng.choice((SIGTERM, SIGKILL, SIGCHLD, 0)))
    if op == "mmap":
        addr = k.mmap(t, 0, rng.randint(1, 4) * PAGE_SIZE, PROT_READ | PROT_WRITE,
                      rng.choice((MAP_PRIVATE, MAP_SHARED)) | MAP_ANONYMOUS)
        regions.append(addr)
        return hex(addr)
    if op == "touch":
        if t is k.init_task:
            return "skipped (a fault in the global init panics the kernel)"
        if rng.random() < 0.5:
            k.store(t, region + rng.randint(0, 2 * PAGE_SIZE - 1), b"z")
            return "stored"
        return k.load(t, region + rng.randint(0, 2 * PAGE_SIZE - 1), 1)
    if op == "madvise":
        return k.madvise(t, region, PAGE_SIZE, rng.choice((MADV_DONTFORK, MADV_WIPEONFORK)))
    if op == "setrlimit":
        return k.setrlimit(t, RLIMIT_NPROC, (rng.randint(1, 40), RLIM_INFINITY))
    with contextlib.suppress(ValueError):
        return k.setresuid(t, *(rng.choice((0, 1000, -1)) for _ in range(3)))
    return None
