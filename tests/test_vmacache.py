"""find_vma's vma cache (forklab/mm/vmacache.py): it changes what a lookup costs, never what it returns."""

from __future__ import annotations

import bisect
import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Kernel
from forklab.include.linux.mm_types import MmStruct, VmAreaStruct
from forklab.include.linux.sched import Task
from forklab.mm.mmap import find_vma
from forklab.uapi import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE

BASE = 0x40000000
NPAGES = 16
RW = PROT_READ | PROT_WRITE


def _list_rule(mm: MmStruct, addr: int) -> VmAreaStruct | None:
    """The first vma with vm_end > addr, by the address-ordered list alone (mm/mmap.c:2209-2241)."""
    ends = [v.vm_end for v in mm.mmap]
    i = bisect.bisect_right(ends, addr)
    return mm.mmap[i] if i < len(mm.mmap) else None


def _task() -> tuple[Kernel, Task]:
    k = Kernel()
    return k, k.find_task(k.fork(k.init_task))


op = st.tuples(st.sampled_from(["mmap", "munmap", "mprotect", "lookup"]), st.integers(0, NPAGES - 1),
               st.integers(1, 4), st.integers(0, NPAGES + 1))


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=30))
def test_find_vma_gives_the_list_rule_however_the_cache_was_left(ops: list[tuple[str, int, int, int]]) -> None:
    k, t = _task()
    assert t.mm is not None
    for name, page, n, probe in ops:
        addr, length = BASE + page * PAGE_SIZE, n * PAGE_SIZE
        if name == "mmap":
            k.mmap(t, addr, length, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
        elif name == "munmap":
            k.munmap(t, addr, length)
        elif name == "mprotect" and find_vma(t.mm, addr) is not None:
            with contextlib.suppress(OSError):  # ENOMEM: a hole in the range
                k.mprotect(t, addr, length, PROT_READ if probe % 2 else RW)
        for a in (BASE + probe * PAGE_SIZE, BASE + probe * PAGE_SIZE - 1, addr):
            assert find_vma(t.mm, a) is _list_rule(t.mm, a)
        cached = t.mm.vmacache
        assert cached is None or any(v is cached for v in t.mm.mmap)


def test_a_lookup_fills_the_cache_and_an_unmap_empties_it() -> None:
    k, t = _task()
    assert t.mm is not None
    addr = k.mmap(t, 0, 4 * PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    vma = find_vma(t.mm, addr)
    assert vma is not None and t.mm.vmacache is vma
    k.munmap(t, addr, 4 * PAGE_SIZE)
    assert t.mm.vmacache is None
    assert find_vma(t.mm, addr) is _list_rule(t.mm, addr)


def test_a_forked_mm_starts_with_an_empty_cache() -> None:
    k, t = _task()
    assert t.mm is not None
    addr = k.mmap(t, 0, PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    assert find_vma(t.mm, addr) is t.mm.vmacache
    child = k.find_task(k.fork(t))
    assert child.mm is not None and child.mm.vmacache is None  # mm_init: vmacache_seqnum = 0 (kernel/fork.c:1011)


def test_the_cache_is_not_in_snapshots() -> None:
    k, t = _task()
    assert t.mm is not None
    addr = k.mmap(t, 0, PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    t.mm.vmacache = None
    before = k.snapshot()
    find_vma(t.mm, addr)
    assert t.mm.vmacache is not None
    assert k.snapshot() == before
