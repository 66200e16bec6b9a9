"""The page allocator's free list (forklab/mm/page_alloc.py): lowest pfn first, whatever mix of single and bulk
frees built it, and the same snapshot for the same free set however its two parts hold it; and page contents,
immutable bytes that a store replaces."""

from __future__ import annotations

import heapq
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Kernel
from forklab.mm.page_alloc import MERGE_MIN, alloc_page
from forklab.state import KernelState
from forklab.uapi import PAGE_SIZE


def _take(k: KernelState) -> int:
    pfn = alloc_page(k, "test")
    assert pfn is not None
    return pfn


def _free(k: KernelState, pfns: list[int]) -> None:
    """Free ``pfns`` as exit does (in bulk) when there are several, else one at a time."""
    for pfn in pfns:
        k.mem._refcount[pfn] = 0
    if len(pfns) == 1:
        k.mem._free_pfn(pfns[0])
    else:
        k.mem._free_pfns(np.array(pfns, dtype=np.int64))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3 * MERGE_MIN)), min_size=1, max_size=30), st.randoms())
def test_takes_return_the_lowest_free_pfn_as_one_min_heap_would(ops: list[tuple[bool, int]], rnd: random.Random) -> None:
    k = KernelState()
    live: list[int] = []
    model: list[int] = []  # the free list as one min-heap, the allocator's order before the split
    top = k.mem.max_pfn
    for take, n in ops:
        if take:
            for _ in range(n):
                want = heapq.heappop(model) if model else top
                top = max(top, want + 1)
                got = _take(k)
                assert got == want
                live.append(got)
        elif live:
            rnd.shuffle(live)
            freed, live = live[:n], live[n:]
            _free(k, freed)
            for pfn in freed:
                heapq.heappush(model, pfn)
        assert k.mem.free_pfns() == sorted(model)


def test_the_snapshot_sees_the_free_set_not_how_it_is_held() -> None:
    """Two kernels with the same pages free, one holding a pfn in the heap part and one in the sorted part."""
    a, b = Kernel(), Kernel()
    for k in (a, b):
        pfns = [_take(k) for _ in range(3 * MERGE_MIN)]
        _free(k, pfns)  # a bulk free: the sorted part
    p = _take(b)
    _free(b, [p])  # one page out and back: now in the heap part
    assert b.mem._freed and not a.mem._freed
    assert a.mem.free_pfns() == b.mem.free_pfns()
    assert a.snapshot() == b.snapshot()
    a.check_invariants()
    b.check_invariants()


stores = st.lists(st.tuples(st.integers(0, PAGE_SIZE - 1), st.binary(min_size=1, max_size=40)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(stores)
def test_page_contents_read_back_as_a_bytearray_written_in_place(writes: list[tuple[int, bytes]]) -> None:
    """Stores into a page read back as the same stores into a zeroed 4096-byte bytearray; a page has no entry
    until non-zero data is stored into it, and a copy's bytes stay when the original is written after the copy."""
    from forklab.include.linux.highmem import copy_user_highpage

    k = Kernel()
    pfn, copy = _take(k), _take(k)
    expect, snap, written = bytearray(PAGE_SIZE), b"", False
    for i, (off, data) in enumerate(writes):
        data = data[:PAGE_SIZE - off]
        k.mem.write_page(pfn, off, data)
        expect[off:off + len(data)] = data
        written = written or any(data)
        assert k.mem.read_page(pfn) == bytes(expect)
        assert (pfn in k.mem.contents) == written
        if i == len(writes) // 2:
            copy_user_highpage(k, copy, pfn)
            snap = bytes(expect)
    if writes:
        assert k.mem.read_page(copy) == snap
