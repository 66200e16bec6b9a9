"""The fail-nth sweep: fail every fallible allocation of a fork in turn (lib/fault-inject.c).

For each flag set, the sweep first runs the call once to list the fallible sites it passes,
then, on a fresh kernel each time, fails the 1st, 2nd, ... site. Each failure must raise the
errno that site gives in the kernel, and the whole kernel state must equal the snapshot taken
before the call -- the cleanup ladder of copy_process (kernel/fork.c:2300-2361) undid
everything. Two residues are Linux's own and are normalised away, with their reasons:

* the pid cursor (``idr_next``) keeps its advance, as idr_alloc_cyclic's does (kernel/pid.c:233);
* copy_page_range write-protects the parent's PTEs of private writable mappings in place and
  a later failure does not restore them (mm/memory.c:775-778): the parent's next write takes
  a COW fault that reuses the page. The snapshot therefore ignores the RW bit of PTEs in
  private mappings.
* likewise under ``Kernel(fork_page_tables="shared")``, the on-demand fork write-protects the
  parent's PMD entries above the tables it shares, and a later failure leaves them so (the
  parent's next write fault finds itself the table's only holder and makes it writable again):
  the snapshot ignores share records with a single holder.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from forklab import CloneArgs, Kernel, Task
from forklab.include.linux.mm_types import _PAGE_RW, VM
from forklab.uapi import (
    CLONE_CHILD_CLEARTID,
    CLONE_FILES,
    CLONE_FS,
    CLONE_IO,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    MADV_DONTFORK,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    O_CREAT,
    O_RDWR,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
    SIGUSR1,
)

# Every fork-path site fails with ENOMEM, except where the allocation happens inside a user
# access: there the fault handler's VM_FAULT_OOM becomes the access's EFAULT (arch/x86/mm/fault.c:
# mm_fault_error -> no_context). The pidfd number is written to a page the fork has just
# write-protected, so that write takes a COW fault whose page allocation can fail (kernel/fork.c:2127).
SITE_ERRNO: dict[tuple[str, str], int] = {("pidfd", "wp_page_copy:alloc_page"): errno.EFAULT}


def setup(fork_page_tables: str = "copy") -> tuple[Kernel, Task, int]:
    """A parent with private, shared, DONTFORK and WIPEONFORK memory touched, files open, a handler set."""
    k = Kernel(fork_page_tables=fork_page_tables)
    init = k.init_task
    k.ioprio_set(init, 4)
    k.clone(init, CLONE_SYSVSEM | SIGCHLD)  # gives init a SEM_UNDO list to share later
    base = k.mmap(init, 0, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    for i in range(8):
        k.store(init, base + i * PAGE_SIZE, bytes([i + 1]) * 8)
    shared = k.mmap(init, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)
    k.store(init, shared, b"shared")
    k.madvise(init, base + 6 * PAGE_SIZE, PAGE_SIZE, MADV_DONTFORK)
    k.madvise(init, base + 7 * PAGE_SIZE, PAGE_SIZE, MADV_WIPEONFORK)
    k.load(init, k.mmap(init, 0, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS), 1)  # zero page
    k.open(init, "/tmp/f", O_CREAT | O_RDWR)
    k.rt_sigaction(init, SIGUSR1, 0x401000)
    scratch = k.mmap(init, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.store(init, scratch, bytes(8))
    if fork_page_tables == "shared":  # a table of its own, which the on-demand fork shares
        alone = k.mmap(init, 1 << 30, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
        k.store(init, alone, b"alone")
    return k, init, scratch


THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
NEWNS_ALL = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP

CALLS: dict[str, Callable[[Kernel, Task, int], int]] = {
    "fork": lambda k, t, s: k.fork(t),
    "vfork": lambda k, t, s: k.clone(t, CLONE_VM | CLONE_VFORK | SIGCHLD),
    "thread": lambda k, t, s: k.clone(t, THREAD | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
                                      0x7000_0000, s, s + 4, 0x1234000),
    "namespaces": lambda k, t, s: k.clone(t, NEWNS_ALL | SIGCHLD),
    "pidfd": lambda k, t, s: k.clone3(t, CloneArgs(flags=CLONE_PIDFD, pidfd=s, exit_signal=SIGCHLD)),
    "set_tid": lambda k, t, s: k.clone3(t, CloneArgs(exit_signal=SIGCHLD, set_tid=[777])),
    "io": lambda k, t, s: k.clone(t, CLONE_IO | SIGCHLD),
    "io_private": lambda k, t, s: k.fork(t),
    "settls": lambda k, t, s: k.clone(t, CLONE_SETTLS | SIGCHLD, 0, 0, 0, 0x7f00_0000_0000),
    **{f"new_{name}": partial(lambda flag, k, t, s: k.clone(t, flag | SIGCHLD), flag)
       for name, flag in (("ns", CLONE_NEWNS), ("uts", CLONE_NEWUTS), ("ipc", CLONE_NEWIPC), ("net", CLONE_NEWNET),
                          ("cgroup", CLONE_NEWCGROUP), ("pid", CLONE_NEWPID), ("user", CLONE_NEWUSER))},
}


def normalised(k: Kernel) -> object:
    """The kernel snapshot, with the RW bit of private-mapping PTEs cleared and the single-holder share records
    hidden (see the module docstring)."""
    shares = k.mem.pte_shares.by_table
    alone = {key: share for key, share in shares.items() if len(share.holders) == 1}
    for key in alone:
        del shares[key]
    saved: list[tuple[np.ndarray, np.ndarray]] = []
    for t in k.all_threads():
        mm = t.mm
        if mm is None:
            continue
        for vma in mm.mmap:
            if vma.vm_flags & VM.VM_SHARED:
                continue
            for addr in range(vma.vm_start, vma.vm_end, 1 << 21):
                table = mm.pgd.get(addr >> 21)
                if table is not None:
                    saved.append((table, table.copy()))
                    table &= ~np.uint64(_PAGE_RW)
    try:
        return k.snapshot()
    finally:
        for table, orig in saved:
            table[:] = orig
        shares.update(alone)


def sites_of(name: str, fork_page_tables: str = "copy") -> list[str]:
    k, init, scratch = setup(fork_page_tables)
    init.fail_nth = 0
    CALLS[name](k, init, scratch)
    return list(k.fault.sites)


@pytest.mark.parametrize(("name", "mode"), [(name, "copy") for name in sorted(CALLS)]
                         + [(name, "shared") for name in ("fork", "pidfd")])  # the mm sites under on-demand fork too
def test_fail_nth_sweep_unwinds_every_site(name: str, mode: str) -> None:
    """Each fallible site of copy_process fails with its errno and leaves no trace (kernel/fork.c:2300-2361)."""
    k0, init0, s0 = setup(mode)
    CALLS[name](k0, init0, s0)
    sites = list(k0.fault.sites)
    assert sites, "the call passed no fallible site"
    assert sites_of(name, mode) == sites, "the site list must be deterministic"
    for n, site in enumerate(sites, start=1):
        k, init, scratch = setup(mode)
        before = normalised(k)
        init.fail_nth = n
        with pytest.raises(OSError) as info:
            CALLS[name](k, init, scratch)
        assert info.value.errno == SITE_ERRNO.get((name, site), errno.ENOMEM), f"site {n} {site}: {info.value}"
        assert k.fault.failed_site == site
        assert normalised(k) == before, f"site {n} ({site}) left state behind"
        k.check_invariants()
        assert init.fail_nth == 0
    # one past the last site: the call succeeds
    k, init, scratch = setup(mode)
    init.fail_nth = len(sites) + 1
    assert CALLS[name](k, init, scratch) > 0
    k.check_invariants()


def test_fail_nth_is_consumed_by_one_syscall() -> None:
    """fail-nth applies to the task's next syscall only (lib/fault-inject.c, fs/proc/base.c:3310)."""
    k, init, _ = setup()
    init.fail_nth = 10_000
    k.getpid(init)
    assert init.fail_nth == 0
    assert k.fork(init) > 0
