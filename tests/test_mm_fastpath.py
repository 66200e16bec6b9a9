"""The listener-free fast paths of mm (batched fork copy and zap, the fused copy-on-write fault) against the full
path a listener forces: random mmap/store/fork/exit/munmap/mprotect/madvise sequences, and injected allocation
failures, run on two kernels side by side; after every step their page tables, vmas, counters, struct pages,
page contents, fault counts and fault-injection sites must be identical."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import forklab.mm.memory as memory
import forklab.mm.page_alloc as page_alloc
import forklab.mm.uaccess as uaccess
from forklab import Kernel
from forklab.errors import KernelError
from forklab.include.linux.mm_types import VM
from forklab.include.linux.sched import Task
from forklab.mm.debug import check_mm_invariants, mem_snapshot, mm_snapshot
from forklab.mm.mmap import find_vma
from forklab.trace import TraceEvent
from forklab.uapi import (
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
)

BASE = 0x40000000 - 5 * PAGE_SIZE  # the window straddles a 2 MiB page-table boundary
NPAGES = 10
RW = PROT_READ | PROT_WRITE
PROTS = [PROT_NONE, PROT_READ, RW, RW]
ADVICE = [MADV_DONTFORK, MADV_WIPEONFORK, MADV_DONTNEED]


def _listen(event: TraceEvent) -> None:
    del event


class Pair:
    """The same program on a listener-free kernel (fast paths) and on one with a listener (full paths)."""

    def __init__(self, mode: str = "copy") -> None:
        self.fast = Kernel(fork_page_tables=mode)
        self.full = Kernel(fork_page_tables=mode)
        self.full.listeners.append(_listen)
        root = self.fast.fork(self.fast.init_task)
        assert self.full.fork(self.full.init_task) == root
        self.pids = [root]
        self.parent = {root: 1}

    def both(self, act: Callable[[Kernel], Any]) -> Any:
        """``act`` on each kernel; the results (or the errno raised) must agree."""
        out = []
        for k in (self.fast, self.full):
            try:
                out.append(("ok", act(k)))
            except KernelError as e:
                out.append(("err", e.errno))
        assert out[0] == out[1]
        return out[0]

    def picture(self, k: Kernel) -> tuple[object, ...]:
        tasks = [k.find_task(p) for p in self.pids]
        return (mem_snapshot(k), tuple(mm_snapshot(k, t.mm) for t in tasks if t.mm is not None),
                tuple(t.min_flt for t in tasks), tuple(k.fault.sites))

    def check(self) -> None:
        assert self.picture(self.fast) == self.picture(self.full)

    def populate_and_fork(self, pages: int) -> int:
        """The root maps ``pages`` pages at BASE with MAP_POPULATE and forks; the child's pid."""
        root = self.pids[0]
        flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE
        self.both(lambda k: k.mmap(k.find_task(root), BASE, pages * PAGE_SIZE, RW, flags))
        status, child = self.both(lambda k: k.fork(k.find_task(root)))
        assert status == "ok"
        self.pids.append(child)
        self.parent[child] = root
        mms = [m for m in (self.fast.find_task(p).mm for p in self.pids) if m is not None]
        assert check_mm_invariants(self.fast, mms) == []
        return int(child)


def _vm_flags(k: Kernel, t: Task, addr: int) -> int:
    assert t.mm is not None
    vma = find_vma(t.mm, addr)
    return int(vma.vm_flags) if vma is not None and vma.vm_start <= addr else 0


def _leaf(pair: Pair, i: int) -> int | None:
    """A task of the program other than its root with no live child, chosen by ``i``."""
    leaves = [p for p in pair.pids[1:] if p not in pair.parent.values()]
    return leaves[i % len(leaves)] if leaves else None


def step(pair: Pair, op: tuple[Any, ...]) -> None:
    kind, ti = op[0], op[1] % len(pair.pids)
    pid = pair.pids[ti]

    def task(k: Kernel) -> Task:
        return k.find_task(pid)

    if kind == "mmap":
        _, _, idx, n, shared, populate = op
        flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED | (MAP_POPULATE if populate else 0)
        length = min(n, NPAGES - idx) * PAGE_SIZE
        pair.both(lambda k: k.mmap(task(k), BASE + idx * PAGE_SIZE, length, RW, flags))
    elif kind == "munmap":
        pair.both(lambda k: k.munmap(task(k), BASE + op[2] * PAGE_SIZE, op[3] * PAGE_SIZE))
    elif kind == "mprotect":
        pair.both(lambda k: k.mprotect(task(k), BASE + op[2] * PAGE_SIZE, op[3] * PAGE_SIZE, op[4]))
    elif kind == "madvise":
        pair.both(lambda k: k.madvise(task(k), BASE + op[2] * PAGE_SIZE, op[3] * PAGE_SIZE, op[4]))
    elif kind in ("store", "zstore", "load"):
        addr = BASE + op[2] * PAGE_SIZE + op[3]
        need = VM.VM_READ if kind == "load" else VM.VM_WRITE
        if not _vm_flags(pair.fast, task(pair.fast), addr) & need:
            return
        if kind != "load":  # a zstore stores zeros: a page never written keeps no contents
            data = bytes(3) if kind == "zstore" else bytes([op[3] % 251 + 1]) * 3
            pair.both(lambda k: k.store(task(k), addr, data))
        else:
            pair.both(lambda k: k.load(task(k), addr, 5))
    elif kind == "fork":
        if len(pair.pids) >= 5:
            return
        status, child = pair.both(lambda k: k.fork(task(k)))
        if status == "ok":
            pair.pids.append(child)
            pair.parent[child] = pid
    elif kind == "exit":
        leaf = _leaf(pair, op[1])
        if leaf is None:
            return
        parent = pair.parent.pop(leaf)
        pair.pids.remove(leaf)

        def reap(k: Kernel) -> tuple[int, ...]:
            k.exit_group(k.find_task(leaf), 0)
            return tuple(k.wait4(k.find_task(parent), leaf, 0))

        pair.both(reap)
    elif kind == "fail":
        pair.both(lambda k: k.fault.arm(op[2]))


page = st.integers(0, NPAGES - 1)
ops = st.one_of(
    st.tuples(st.just("mmap"), st.integers(0, 4), page, st.integers(1, NPAGES), st.booleans(), st.booleans()),
    st.tuples(st.just("munmap"), st.integers(0, 4), page, st.integers(1, 4)),
    st.tuples(st.just("mprotect"), st.integers(0, 4), page, st.integers(1, 6), st.sampled_from(PROTS)),
    st.tuples(st.just("madvise"), st.integers(0, 4), page, st.integers(1, 4), st.sampled_from(ADVICE)),
    st.tuples(st.just("store"), st.integers(0, 4), page, st.integers(0, PAGE_SIZE - 3)),
    st.tuples(st.just("store"), st.integers(0, 4), page, st.integers(0, 64)),
    st.tuples(st.just("zstore"), st.integers(0, 4), page, st.integers(0, 64)),
    st.tuples(st.just("load"), st.integers(0, 4), page, st.integers(0, PAGE_SIZE - 5)),
    st.tuples(st.just("fork"), st.integers(0, 4)),
    st.tuples(st.just("exit"), st.integers(0, 4)),
    st.tuples(st.just("fail"), st.integers(0, 4), st.integers(1, 6)),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=st.lists(ops, min_size=1, max_size=40))
@example(program=[("mmap", 0, 0, NPAGES, False, True), ("fork", 0), ("store", 1, 2, 7), ("store", 0, 2, 9),
                  ("fail", 0, 2), ("fork", 1), ("exit", 0), ("store", 0, 3, 1), ("munmap", 0, 4, 3)])
@example(program=[("mmap", 0, 0, NPAGES, False, True), ("fork", 0), ("store", 0, 2, 7), ("store", 1, 2, 9)])
@example(program=[("mmap", 0, 0, NPAGES, False, True), ("fork", 0), ("zstore", 1, 2, 0), ("zstore", 0, 3, 9),
                  ("store", 0, 4, 5), ("fork", 0), ("zstore", 2, 4, 1), ("store", 1, 4, 64)])
@pytest.mark.parametrize("mode", ["copy", "shared"])
def test_fast_paths_leave_the_state_the_full_paths_leave(mode: str, program: list[tuple[Any, ...]]) -> None:
    pair = Pair(mode)
    for op in program:
        step(pair, op)
        pair.check()


def _counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(module, name)

    def wrapper(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_the_fast_paths_run_only_without_a_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    fused = _counting(monkeypatch, uaccess, "alloc_page")  # only user_store_fastpath's copy-on-write calls it
    batched = _counting(monkeypatch, memory, "copy_vma_ptes_batched")
    pair = Pair()
    for op in [("mmap", 0, 0, NPAGES, False, True), ("fork", 0)] + [("store", 1, i, 0) for i in range(NPAGES)]:
        step(pair, op)
        pair.check()
    assert len(fused) == NPAGES and len(batched) == 1  # only the fast kernel's calls are counted


def test_a_failed_copy_fault_fails_at_the_same_site_with_the_same_state() -> None:
    pair = Pair()
    for op in [("mmap", 0, 0, 4, False, True), ("fork", 0)]:
        step(pair, op)

    def fail_store(k: Kernel) -> None:
        k.fault.arm(1)
        k.store(k.find_task(pair.pids[1]), BASE, b"z")

    status = pair.both(fail_store)
    assert status == ("err", errno.ENOMEM)
    pair.check()
    assert pair.fast.fault.failed_site == pair.full.fault.failed_site == "wp_page_copy:alloc_page"


@pytest.mark.parametrize("mode", ["copy", "shared"])
def test_large_batches_take_the_numpy_paths_with_the_same_effects(mode: str) -> None:
    """Tables of hundreds of entries (past memory.SMALL_BATCH), pfns made non-contiguous by COW in a scattered order."""
    pair = Pair(mode)
    root = pair.pids[0]
    big = 700  # pages: two tables and a part of a third
    assert big > memory.SMALL_BATCH
    child = pair.populate_and_fork(big)
    pair.check()
    def scatter(k: Kernel) -> None:
        for i in [*range(big - 1, 0, -7), *range(3, big, 11)]:  # COW copies in a scattered order
            k.store(k.find_task(root), BASE + i * PAGE_SIZE, b"s")

    pair.both(scatter)
    pair.check()
    status, second = pair.both(lambda k: k.fork(k.find_task(root)))  # the parent's pfns are scattered now
    assert status == "ok"
    pair.pids.append(second)
    pair.parent[second] = root
    pair.check()
    pair.both(lambda k: k.munmap(k.find_task(child), BASE + 100 * PAGE_SIZE, 400 * PAGE_SIZE))
    pair.check()
    step(pair, ("exit", 0))
    pair.check()
    step(pair, ("exit", 0))
    pair.check()


def test_a_copy_fault_that_grows_mem_map_writes_the_grown_arrays() -> None:
    """mem_map doubles while the fused fault allocates its copy (the arrays and their views are replaced)."""
    pair = Pair()
    pages = 600
    child = pair.populate_and_fork(pages)
    before = pair.fast.mem.capacity

    def storm(k: Kernel) -> None:
        for i in range(pages):
            k.store(k.find_task(child), BASE + i * PAGE_SIZE, bytes([i % 251 + 1]))

    pair.both(storm)
    assert pair.fast.mem.capacity > before  # the storm ran past the end of mem_map
    pair.check()
    assert [pair.fast.load(pair.fast.find_task(child), BASE + i * PAGE_SIZE, 1)[0] for i in range(pages)] == \
        [i % 251 + 1 for i in range(pages)]
    pair.fast.check_invariants()


def test_a_copy_fault_takes_the_lowest_page_off_a_merged_free_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a free of more than MERGE_MIN pages at once the free list is one sorted list and its heap is empty:
    the fused fault then takes its copy in place, without alloc_page, with the state alloc_page leaves."""
    pair = Pair()
    root = pair.pids[0]
    pages = 700
    assert pages > page_alloc.MERGE_MIN
    flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE
    pair.both(lambda k: k.mmap(k.find_task(root), BASE, pages * PAGE_SIZE, RW, flags))
    pair.both(lambda k: k.munmap(k.find_task(root), BASE, pages * PAGE_SIZE))  # one free of 700 pages
    assert pair.fast.mem._free and not pair.fast.mem._freed
    pair.both(lambda k: k.mmap(k.find_task(root), BASE, NPAGES * PAGE_SIZE, RW, flags))
    pair.both(lambda k: k.store(k.find_task(root), BASE + 3 * PAGE_SIZE, b"written"))  # a page with contents
    status, child = pair.both(lambda k: k.fork(k.find_task(root)))
    assert status == "ok"
    pair.pids.append(child)
    pair.parent[child] = root
    pair.check()
    allocs = _counting(monkeypatch, uaccess, "alloc_page")
    stores = [(0, b"x"), (5, b"yz"), (0, b"\0"), (2, b"AB"), (9, b"\0\0")] * 2  # page 3: into "written"

    def storm(k: Kernel) -> None:
        t = k.find_task(child)
        for i, (offset, data) in enumerate(stores):
            k.store(t, BASE + i * PAGE_SIZE + offset, data)

    pair.both(storm)
    assert allocs == []  # every copy came off the free list in place
    pair.check()
    fast = pair.fast
    assert fast.load(fast.find_task(child), BASE + 3 * PAGE_SIZE, 7) == b"wrABten"
    assert fast.load(fast.find_task(root), BASE + 3 * PAGE_SIZE, 7) == b"written"
    assert fast.load(fast.find_task(child), BASE + 6 * PAGE_SIZE + 4, 4) == b"\0yz\0"
    assert fast.mem.contents.get(fast.translate(fast.find_task(child), BASE + 2 * PAGE_SIZE) or 0) is None  # zeros
    fast.check_invariants()
