"""Built-in scenarios for the pictures: small, deterministic runs of the model whose end state is worth drawing.

Each scenario boots a fresh ``Kernel``, makes its calls, and returns the tasks to draw and, where
a fork made a copy-on-write pair, the PTE baseline taken right after that fork
(``forklab.views.picture_ptes.fork_baseline``), which the copy-on-write map needs.

* ``fork``: init maps 10 private pages, writes 6 and reads one (the zero page), and maps 4
  shared pages and writes 2; then it forks. The child writes private pages 2 and 3 (two copies),
  init writes pages 3 and 4 (page 3 is reused in place, page 4 copied), the child reads page 6
  (its own zero-page mapping), reads the 2 shared pages and writes a third.
* ``thread``: a forked child starts a thread (CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD).
* ``clone``: one child shares init's files and fs (CLONE_FILES|CLONE_FS), another its mm (CLONE_VM).
* ``newns``: a child unshares its uts and ipc namespaces; another is cloned into a new user and
  pid namespace (two pid numbers, a new cred).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from forklab.include.linux.sched import Task
from forklab.syscalls import Kernel
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWIPC,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
)
from forklab.views.picture_ptes import ForkBaseline, fork_baseline

FORK_PAGES = 10  # the fork scenario's mapping, in pages
FORK_PARENT_WRITES_BEFORE = (0, 1, 2, 3, 4, 5)
FORK_PARENT_READS_BEFORE = (7,)
FORK_CHILD_WRITES = (2, 3)
FORK_PARENT_WRITES_AFTER = (3, 4)
FORK_CHILD_READS_AFTER = (6,)
SHARED_PAGES = 4  # and a MAP_SHARED mapping: init writes pages 0-1, the child reads them and writes page 2
SHARED_PARENT_WRITES_BEFORE = (0, 1)
SHARED_CHILD_READS_AFTER = (0, 1)
SHARED_CHILD_WRITES_AFTER = (2,)
SHARING_THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD  # the sharing flags alone (not glibc's THREAD_FLAGS)


@dataclass(slots=True, eq=False)
class PictureScenario:
    """A finished run: its kernel, the tasks to draw, and the copy-on-write pair's fork baseline if it has one."""

    name: str
    summary: str
    kernel: Kernel
    tasks: list[Task]
    cow: ForkBaseline | None = None
    cow_base: int = 0  # the address of the mapping the copy-on-write story happens in, 0 for none


def _private_mapping(k: Kernel, t: Task, pages: int) -> int:
    """Map ``pages`` private anonymous read-write pages in ``t``; returns the address."""
    return k.mmap(t, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)


def _touch(k: Kernel, t: Task, base: int, pages: Sequence[int], write: bool) -> None:
    """Write one byte to (or read one byte from) each listed page of the mapping at ``base``."""
    for page in pages:
        if write:
            k.store(t, base + page * PAGE_SIZE, bytes([t.pid & 0xFF, page]))
        else:
            k.load(t, base + page * PAGE_SIZE, 1)



def picture_scenario_fork() -> PictureScenario:
    """A fork, two copies by the child, a reuse and a copy by the parent."""
    k = Kernel()
    init = k.init_task
    base = _private_mapping(k, init, FORK_PAGES)
    _touch(k, init, base, FORK_PARENT_WRITES_BEFORE, write=True)
    _touch(k, init, base, FORK_PARENT_READS_BEFORE, write=False)
    shm = k.mmap(init, 0, SHARED_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)
    _touch(k, init, shm, SHARED_PARENT_WRITES_BEFORE, write=True)
    child = k.find_task(k.fork(init))
    baseline = fork_baseline(init, child)
    _touch(k, child, base, FORK_CHILD_WRITES, write=True)
    _touch(k, init, base, FORK_PARENT_WRITES_AFTER, write=True)
    _touch(k, child, base, FORK_CHILD_READS_AFTER, write=False)
    _touch(k, child, shm, SHARED_CHILD_READS_AFTER, write=False)
    _touch(k, child, shm, SHARED_CHILD_WRITES_AFTER, write=True)
    return PictureScenario("fork", "fork(), then copy-on-write faults in both", k, [init, child], baseline, base)


def picture_scenario_thread() -> PictureScenario:
    """A forked child and a thread it starts."""
    k = Kernel()
    init = k.init_task
    child = k.find_task(k.fork(init))
    baseline = fork_baseline(init, child)
    thread = k.find_task(k.clone(child, SHARING_THREAD_FLAGS))
    return PictureScenario("thread", "fork(), then a thread of the child", k, [init, child, thread], baseline)


def picture_scenario_clone() -> PictureScenario:
    """One child sharing init's files and fs, another sharing its mm."""
    k = Kernel()
    init = k.init_task
    files_fs = k.find_task(k.clone(init, CLONE_FILES | CLONE_FS | SIGCHLD))
    baseline = fork_baseline(init, files_fs)
    vm = k.find_task(k.clone(init, CLONE_VM | SIGCHLD))
    return PictureScenario("clone", "clone(CLONE_FILES|CLONE_FS) and clone(CLONE_VM)", k, [init, files_fs, vm],
                           baseline)


def picture_scenario_newns() -> PictureScenario:
    """A child that unshares uts and ipc, another in a new user and pid namespace."""
    k = Kernel()
    init = k.init_task
    unshared = k.find_task(k.fork(init))
    baseline = fork_baseline(init, unshared)
    k.unshare(unshared, CLONE_NEWUTS | CLONE_NEWIPC)
    nested = k.find_task(k.clone(init, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD))
    return PictureScenario("newns", "unshare(CLONE_NEWUTS|CLONE_NEWIPC) and clone(CLONE_NEWUSER|CLONE_NEWPID)", k,
                           [init, unshared, nested], baseline)


SCENARIOS: dict[str, Callable[[], PictureScenario]] = {
    "fork": picture_scenario_fork,
    "thread": picture_scenario_thread,
    "clone": picture_scenario_clone,
    "newns": picture_scenario_newns,
}
SCENARIO_NAMES = tuple(SCENARIOS)


def build_picture_scenario(name: str) -> PictureScenario:
    """Run the named built-in scenario on a fresh kernel; ValueError naming the choices for an unknown one."""
    build = SCENARIOS.get(name)
    if build is None:
        raise ValueError(f"unknown scenario {name!r} (choose from {', '.join(SCENARIO_NAMES)})")
    return build()


class _OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def one_line_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The argument parser the picture commands share: one-line usage errors, status 2."""
    return _OneLineParser(prog=prog, description=description)


__all__ = ["SCENARIOS", "SCENARIO_NAMES", "PictureScenario", "build_picture_scenario", "one_line_parser"]
