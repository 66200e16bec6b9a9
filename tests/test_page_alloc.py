"""The page allocator's free list (forklab/mm/page_alloc.py): lowest pfn first, whatever mix of single and bulk
frees built it, and the same snapshot for the same free set however its two parts hold it."""

from __future__ import annotations

import heapq
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Kernel
from forklab.mm.page_alloc import MERGE_MIN, alloc_page
from forklab.state import KernelState


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
