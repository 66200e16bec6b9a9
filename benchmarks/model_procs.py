"""The model-side processes the benchmarks share, built through the Kernel API only.

* ``populated``: a private anonymous read-write mapping faulted in with MAP_POPULATE, as the C
  helpers map theirs.
* ``scatter``: half of a mapping's pages COW-copied in a random (seeded) order, so its pfns are
  no longer contiguous: a holder child keeps the pages shared while the parent writes them,
  then exits.
* ``realistic_process``: a minimal process with 6 VMAs -- text, data, heap, stack and two
  libraries, a few pages touched in each -- and 3 open fds. The model has no mmappable files
  (mmap of a file is ENODEV), so text and libraries are private anonymous mappings with their
  protections (r-x), their pages written before the mprotect that makes them read-only.
"""

from __future__ import annotations

import random

from forklab import Kernel
from forklab.include.linux.sched import Task
from forklab.uapi import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_GROWSDOWN,
    MAP_POPULATE,
    MAP_PRIVATE,
    O_RDWR,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)

RW = PROT_READ | PROT_WRITE
RX = PROT_READ | PROT_EXEC
ANON = MAP_PRIVATE | MAP_ANONYMOUS

# name, address, pages, final protection, extra flags, pages touched: laid out as a small ELF process is,
# each vma away from the others so none merge
LAYOUT = (
    ("text", 0x400000, 4, RX, 0, 3),
    ("data", 0x600000, 2, RW, 0, 2),
    ("heap", 0x800000, 33, RW, 0, 3),
    ("libc", 0x7F0000000000, 400, RX, 0, 3),
    ("ld.so", 0x7F0000400000, 40, RX, 0, 3),
    ("stack", 0x7FFFFFF00000, 33, RW, MAP_GROWSDOWN, 3),
)
NR_FDS = 3


def populated(k: Kernel, t: Task, nbytes: int) -> int:
    """Map ``nbytes`` of private anonymous read-write memory in ``t`` with MAP_POPULATE; its address."""
    return k.mmap(t, 0, nbytes, RW, ANON | MAP_POPULATE)


def exit_and_reap(k: Kernel, parent: Task, pid: int) -> None:
    """The child ``pid`` calls exit_group(0) and ``parent`` reaps it with waitpid(pid, NULL, 0), as the C side does."""
    k.exit_group(k.find_task(pid), 0)
    k.waitpid(parent, pid, 0)


def scatter(k: Kernel, t: Task, addr: int, npages: int, seed: int = 1) -> None:
    """COW-copy half of the ``npages`` pages at ``addr`` in ``t``, in a random order fixed by ``seed``."""
    holder = k.fork(t)
    order = list(range(npages))
    random.Random(seed).shuffle(order)
    for i in order[: npages // 2]:
        k.store(t, addr + i * PAGE_SIZE, b"s")
    exit_and_reap(k, t, holder)


def realistic_process(k: Kernel) -> Task:
    """A process forked from init with the 6 VMAs of LAYOUT, a few pages touched in each, and 3 open fds."""
    t = k.find_task(k.fork(k.init_task))
    for _name, addr, pages, prot, flags, touched in LAYOUT:
        k.mmap(t, addr, pages * PAGE_SIZE, RW, ANON | MAP_FIXED | flags)
        top = addr + (pages - touched) * PAGE_SIZE if flags & MAP_GROWSDOWN else addr
        for i in range(touched):
            k.store(t, top + i * PAGE_SIZE, b"x")
        if prot != RW:
            k.mprotect(t, addr, pages * PAGE_SIZE, prot)
    for _ in range(NR_FDS):
        k.open(t, "/dev/null", O_RDWR)
    return t


def nr_vmas(k: Kernel, t: Task) -> int:
    """The number of lines of ``t``'s /proc/<pid>/maps."""
    return len(k.proc(f"/proc/{t.pid}/maps").splitlines())
