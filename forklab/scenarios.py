"""The built-in scenarios of ``forklab trace``, ``forklab ps`` and ``forklab pstree``: short call sequences on a Kernel.

Each scenario is a function ``(k) -> None`` that makes real syscalls on a fresh model kernel
as its tasks would (the caller attaches listeners first); what a trace or a listing shows of it
is the model's own doing. ``SCENARIOS`` maps each name to ``(function, one-line description)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from forklab.errors import InternalError, KernelError
from forklab.include.linux.sched import Task
from forklab.runner.libc import THREAD_FLAGS  # glibc's pthread_create flags: the runner's libc is their home
from forklab.syscalls import Kernel
from forklab.uapi import (
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_PIDFD,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    O_RDWR,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
    CloneArgs,
)

ELF_MAGIC = b"\x7fELF\x02\x01\x01"
Scenario = Callable[[Kernel], None]


def _shell(k: Kernel) -> Task:
    """A task for the scenario to run as: a child of init with fds 0, 1 and 2 open on /dev/null, like a shell."""
    sh = k.find_task(k.fork(k.init_task))
    for _ in range(3):
        k.open(sh, "/dev/null", O_RDWR)
    return sh


def _reap(k: Kernel, parent: Task, pid: int) -> None:
    """The parent waits for its child ``pid``."""
    k.wait4(parent, pid, 0)


def scenario_fork(k: Kernel) -> None:
    """fork, the child exits 0, the parent waits."""
    sh = _shell(k)
    pid = k.fork(sh)
    k.exit(k.find_task(pid), 0)
    _reap(k, sh, pid)


def scenario_vfork(k: Kernel) -> None:
    """vfork: the parent sleeps until the child exits; then it waits for it."""
    sh = _shell(k)
    pid = k.vfork(sh)
    k.exit(k.find_task(pid), 0)
    _reap(k, sh, pid)


def scenario_thread(k: Kernel) -> None:
    """pthread_create's clone, then exit_group from the thread ends both."""
    sh = _shell(k)
    proc = k.find_task(k.fork(sh))
    tid = k.clone(proc, THREAD_FLAGS)
    k.exit_group(k.find_task(tid), 3)
    _reap(k, sh, proc.pid)


def scenario_clone3_pidfd(k: Kernel) -> None:
    """clone3 with CLONE_PIDFD, the child exits, the parent waits."""
    sh = _shell(k)
    where = k.mmap(sh, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)  # the int pidfd
    pid = k.clone3(sh, CloneArgs(flags=CLONE_PIDFD, pidfd=where, exit_signal=SIGCHLD))
    k.exit(k.find_task(pid), 0)
    _reap(k, sh, pid)


def scenario_newpid(k: Kernel) -> None:
    """clone(CLONE_NEWPID): the child is pid 1 of a new namespace and forks a pid 2 there."""
    sh = _shell(k)
    pid = k.clone(sh, CLONE_NEWPID | SIGCHLD)
    ns_init = k.find_task(pid)
    inner = k.fork(ns_init)
    k.exit(k.find_task(global_pid(ns_init, inner)), 0)
    k.wait4(ns_init, inner, 0)
    k.exit(ns_init, 0)
    _reap(k, sh, pid)


def global_pid(parent: Task, vpid: int) -> int:
    """The initial namespace's number of ``parent``'s child whose number in its namespace is ``vpid``."""
    for child in parent.children:
        if child.thread_pid is not None and child.thread_pid.numbers[-1].nr == vpid:
            return child.pid
    raise InternalError(f"task {parent.pid} has no child numbered {vpid} in its namespace")


def scenario_newuser(k: Kernel) -> None:
    """As uid 1000: clone(CLONE_NEWUSER), a child with every capability in its new user namespace."""
    sh = _shell(k)
    k.setresuid(sh, 1000, 1000, 1000)
    pid = k.clone(sh, CLONE_NEWUSER | SIGCHLD)
    k.exit(k.find_task(pid), 0)
    _reap(k, sh, pid)


def scenario_cow(k: Kernel) -> None:
    """Copy-on-write: the parent touches a page, forks; the child writes (a copy), the parent writes (a reuse)."""
    sh = _shell(k)
    addr = k.mmap(sh, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.store(sh, addr, b"parent")
    pid = k.fork(sh)
    child = k.find_task(pid)
    k.store(child, addr, b"child")
    k.store(sh, addr, b"PARENT")
    k.exit(child, 0)
    _reap(k, sh, pid)


def scenario_exec(k: Kernel) -> None:
    """fork, then the child execs /bin/true, exits; the parent waits."""
    if k.vfs.lookup("/bin") is None:
        k.vfs.mkdir("/bin")
    inode = k.vfs.create("/bin/true", mode=0o755)
    inode.data[:] = ELF_MAGIC
    inode.i_size = len(ELF_MAGIC)
    sh = _shell(k)
    pid = k.fork(sh)
    child = k.find_task(pid)
    k.execve(child, "/bin/true", ["true"])
    k.exit(child, 0)
    _reap(k, sh, pid)


def scenario_pipeline(k: Kernel) -> None:
    """``a | b``: a pipe, two children with dup2 onto stdout and stdin, a write, a read to EOF, two waits."""
    sh = _shell(k)
    r, w = k.pipe2(sh, 0)
    a = k.find_task(k.fork(sh))
    b = k.find_task(k.fork(sh))
    k.dup2(a, w, 1)
    k.close(a, r)
    k.close(a, w)
    k.dup2(b, r, 0)
    k.close(b, r)
    k.close(b, w)
    k.close(sh, r)
    k.close(sh, w)
    k.write(a, 1, b"hello\n")
    k.exit(a, 0)
    k.read(b, 0, 64)
    k.read(b, 0, 64)  # EOF: the last writer is gone
    k.exit(b, 0)
    _reap(k, sh, a.pid)
    _reap(k, sh, b.pid)


def scenario_failure(k: Kernel) -> None:
    """fork with fail-nth set so that copy_mm's allocation fails: copy_process unwinds through bad_fork_*."""
    probe = Kernel(version=k.version)
    probe.fork(probe.find_task(probe.fork(probe.init_task)))
    sites = list(probe.fault.sites)
    sh = _shell(k)
    sh.fail_nth = next((i for i, site in enumerate(sites, 1) if "mm" in site), len(sites))
    with contextlib.suppress(KernelError):
        k.fork(sh)


SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "fork": (scenario_fork, "fork, child _exit(0), parent wait4"),
    "vfork": (scenario_vfork, "vfork: the parent sleeps until the child exits"),
    "thread": (scenario_thread, "pthread_create's clone, then exit_group from the thread"),
    "clone3-pidfd": (scenario_clone3_pidfd, "clone3 with CLONE_PIDFD"),
    "newpid": (scenario_newpid, "clone(CLONE_NEWPID): pid numbers at two levels"),
    "newuser": (scenario_newuser, "as uid 1000, clone(CLONE_NEWUSER)"),
    "cow": (scenario_cow, "fork, then a copy-on-write copy and a reuse"),
    "exec": (scenario_exec, "fork, the child execs /bin/true"),
    "pipeline": (scenario_pipeline, "a | b through a pipe"),
    "failure": (scenario_failure, "an injected allocation failure in copy_mm"),
}


def scenario(name: str) -> Scenario:
    """The scenario called ``name``; ValueError naming the known ones."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; the scenarios are {', '.join(SCENARIOS)}")
    return SCENARIOS[name][0]


__all__ = ["SCENARIOS", "scenario"]
