"""The fail-nth sweep over the lifecycle syscalls: process groups, sessions, waitid, stops, pidfds, rusage, poll.

As in tests/test_fail_nth.py: each call first runs once to list the fallible sites it passes;
then, on a fresh kernel each time, the 1st, 2nd, ... site fails, the call must fail with that
site's errno and the whole kernel state must equal the snapshot taken before the call. Calls
whose 5.6 code allocates nothing the model counts (setpgid, setsid, the waits, kill and the
stops: ``__sigqueue_alloc`` failures are not modelled, docs/model.md) pass no site, and the
sweep checks exactly that, so an allocation added later is swept at once.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from conftest import state

from forklab import CloneArgs, Kernel, Task
from forklab.uapi import (
    CLONE_PIDFD,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    P_PIDFD,
    PAGE_SIZE,
    POLLIN,
    PROT_READ,
    PROT_WRITE,
    RUSAGE_CHILDREN,
    SIGCHLD,
    SIGCONT,
    SIGSTOP,
    SIGUSR1,
    WEXITED,
    WNOHANG,
    WSTOPPED,
    WUNTRACED,
)


@dataclass
class Scene:
    """A parent (init), a live child, a zombie child, and a pidfd of each in the parent's table."""

    k: Kernel
    init: Task
    child: Task
    zombie_pid: int
    child_pidfd: int
    zombie_pidfd: int


def scene() -> Scene:
    k = Kernel()
    init = k.init_task
    buf = k.mmap(init, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.store(init, buf, bytes(8))
    child = k.find_task(k.clone3(init, CloneArgs(flags=CLONE_PIDFD, pidfd=buf, exit_signal=SIGCHLD)))
    child_pidfd = int.from_bytes(k.load(init, buf, 4), "little")
    zombie = k.find_task(k.clone3(init, CloneArgs(flags=CLONE_PIDFD, pidfd=buf + 4, exit_signal=SIGCHLD)))
    zombie_pidfd = int.from_bytes(k.load(init, buf + 4, 4), "little")
    zombie_pid = zombie.pid
    k.exit(zombie, 3)
    return Scene(k, init, child, zombie_pid, child_pidfd, zombie_pidfd)


def stopped(s: Scene) -> Scene:
    s.k.kill(s.init, s.child.pid, SIGSTOP)
    return s


CALLS: dict[str, tuple[Callable[[], Scene], Callable[[Scene], object]]] = {
    "pidfd_open": (scene, lambda s: s.k.pidfd_open(s.init, s.child.pid)),
    "setpgid": (scene, lambda s: s.k.setpgid(s.init, s.child.pid, 0)),
    "setsid": (scene, lambda s: s.k.setsid(s.child)),
    "getpgid": (scene, lambda s: s.k.getpgid(s.init, s.child.pid)),
    "getsid": (scene, lambda s: s.k.getsid(s.init, s.child.pid)),
    "waitid_pidfd": (scene, lambda s: s.k.waitid(s.init, P_PIDFD, s.zombie_pidfd, WEXITED)),
    "wait4_zombie": (scene, lambda s: s.k.wait4(s.init, s.zombie_pid, 0)),
    "kill_stop": (scene, lambda s: s.k.kill(s.init, s.child.pid, SIGSTOP)),
    "wait4_stopped": (lambda: stopped(scene()), lambda s: s.k.wait4(s.init, s.child.pid, WUNTRACED | WNOHANG)),
    "waitid_stopped": (lambda: stopped(scene()), lambda s: s.k.waitid(s.init, P_PIDFD, s.child_pidfd, WSTOPPED)),
    "kill_cont": (lambda: stopped(scene()), lambda s: s.k.kill(s.init, s.child.pid, SIGCONT)),
    "tgkill": (scene, lambda s: s.k.tgkill(s.init, s.child.pid, s.child.pid, SIGUSR1)),
    "tkill": (scene, lambda s: s.k.tkill(s.init, s.child.pid, SIGUSR1)),
    "pidfd_send_signal": (scene, lambda s: s.k.pidfd_send_signal(s.init, s.child_pidfd, SIGUSR1)),
    "getrusage": (scene, lambda s: s.k.getrusage(s.init, RUSAGE_CHILDREN)),
    "poll": (scene, lambda s: s.k.poll(s.init, [(s.zombie_pidfd, POLLIN), (s.child_pidfd, POLLIN)], 0)),
}

# The calls whose model code passes fallible sites, and the errno each site gives.
ALLOCATES = {"pidfd_open"}


def sites_of(name: str) -> list[str]:
    make, call = CALLS[name]
    s = make()
    s.init.fail_nth = 0
    call(s)
    return list(s.k.fault.sites)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_lifecycle_calls_pass_the_sites_the_kernel_allocates_at(name: str) -> None:
    sites = sites_of(name)
    assert sites == sites_of(name), "the site list must be deterministic"
    assert bool(sites) == (name in ALLOCATES), f"{name} passes {sites}"


@pytest.mark.parametrize("name", sorted(ALLOCATES))
def test_fail_nth_sweep_unwinds_every_lifecycle_site(name: str) -> None:
    """Each fallible site fails with ENOMEM (or EMFILE/ENFILE where the fd table says so) and leaves no trace."""
    make, call = CALLS[name]
    sites = sites_of(name)
    for n, site in enumerate(sites, start=1):
        s = make()
        before = state(s.k)
        s.init.fail_nth = n
        with pytest.raises(OSError) as info:
            call(s)
        assert info.value.errno in (errno.ENOMEM, errno.EMFILE, errno.ENFILE), f"site {n} {site}: {info.value}"
        assert s.k.fault.failed_site == site
        assert state(s.k) == before, f"site {n} ({site}) left state behind"
        s.k.check_invariants()
    s = make()
    s.init.fail_nth = len(sites) + 1
    call(s)
    s.k.check_invariants()
