"""The batched page-table passes' reusable temporaries (forklab/mm/page_alloc.py, WorkArrays): the helpers that
write into them give the plain rule's answers however the arrays were used before, a fork and an exit of a big
process reuse them instead of taking fresh memory, and they are not part of the kernel's state."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Kernel
from forklab.include.linux.mm_types import _PAGE_PRESENT, _PAGE_SPECIAL, PTE_PFN_SHIFT
from forklab.mm.memory import normal_pfn_list, normal_pfns
from forklab.mm.page_alloc import ZERO_PFN, WorkArrays, pfn_run
from forklab.uapi import MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE

_runs = st.integers(1, 300).flatmap(
    lambda n: st.tuples(st.integers(1, 10_000), st.just(n), st.lists(st.integers(0, n - 1), max_size=2)))


def _pfns(lo: int, n: int, moved: list[int]) -> np.ndarray:
    """The run lo .. lo + n - 1 with the entries at ``moved`` shifted down by one (which may break it)."""
    pfns = np.arange(lo, lo + n, dtype=np.int64)
    for i in moved:
        pfns[i] -= 1
    return pfns


@settings(max_examples=150, deadline=None)
@given(st.lists(_runs, min_size=1, max_size=8))
def test_pfn_run_is_the_plain_rule_whatever_its_work_array_held(cases: list[tuple[int, int, list[int]]]) -> None:
    work = WorkArrays()  # one for every case, as the kernel's is: sizes grow and shrink
    for lo, n, moved in cases:
        pfns = _pfns(lo, n, moved)
        plain = pfns.tolist() == list(range(int(pfns[0]), int(pfns[0]) + n))
        assert pfn_run(pfns, work) == ((int(pfns[0]), int(pfns[-1])) if plain else None)


_ptes = st.lists(st.one_of(
    st.just(0),  # pte_none
    st.integers(1, 1 << 20).map(lambda pfn: (pfn << PTE_PFN_SHIFT) | _PAGE_PRESENT),
    st.integers(1, 1 << 20).map(lambda pfn: (pfn << PTE_PFN_SHIFT) | _PAGE_PRESENT | _PAGE_SPECIAL),
    st.just((ZERO_PFN << PTE_PFN_SHIFT) | _PAGE_PRESENT | _PAGE_SPECIAL),
), min_size=0, max_size=400)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ptes, min_size=1, max_size=6))
def test_normal_pfns_is_the_plain_rule_whatever_its_work_array_held(tables: list[list[int]]) -> None:
    work = WorkArrays()
    for entries in tables:
        ptes = np.array(entries, dtype=np.uint64)
        assert normal_pfns(work, ptes).tolist() == normal_pfn_list(ptes)


def test_a_big_fork_and_exit_reuse_the_work_arrays_and_the_snapshot_ignores_them() -> None:
    k = Kernel(threads_max=64)
    parent = k.find_task(k.fork(k.init_task))
    k.mmap(parent, 0, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE)
    work = k.mem.work

    def fork_and_exit() -> dict[str, int]:
        pid = k.fork(parent)
        k.exit_group(k.find_task(pid), 0)
        k.waitpid(parent, pid, 0)
        return {purpose: id(array) for purpose, array in work._arrays.items()}

    first = fork_and_exit()
    assert {"normal_pfns", "pfn_run", "add_rss_of", "zap_vma_ptes_batched"} <= set(first)
    assert fork_and_exit() == first  # the same arrays: nothing taken fresh
    before = k.snapshot()
    for array in work._arrays.values():
        array.fill(1)
    assert k.snapshot() == before  # scratch contents are not state
