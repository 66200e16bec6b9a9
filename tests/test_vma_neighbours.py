"""vm_prev and vm_next (include/linux/mm_types.py's vma_prev_of and vma_next_of), and find_vma_links: the
neighbours in the address-ordered vma list, found by binary search (and by a walk while the list is out of
order), agree with the plain walk of the list."""

from __future__ import annotations

import contextlib
import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Kernel
from forklab.errors import InternalError
from forklab.include.linux.mm_types import VmAreaStruct, vma_next_of, vma_prev_of
from forklab.mm.mmap import find_vma_links
from forklab.uapi import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE

BASE = 0x40000000
RW = PROT_READ | PROT_WRITE

op = st.tuples(st.sampled_from(["mmap", "munmap", "mprotect"]), st.integers(0, 31), st.integers(1, 4))


@settings(max_examples=100, deadline=None)
@given(st.lists(op, max_size=25))
def test_neighbours_are_the_list_neighbours(ops: list[tuple[str, int, int]]) -> None:
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    assert t.mm is not None
    for name, page, n in ops:
        addr, length = BASE + page * PAGE_SIZE, n * PAGE_SIZE
        if name == "mmap":
            k.mmap(t, addr, length, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
        elif name == "munmap":
            k.munmap(t, addr, length)
        else:
            with contextlib.suppress(OSError):  # ENOMEM: a hole in the range
                k.mprotect(t, addr, length, PROT_READ if page % 2 else RW)
        vmas = t.mm.mmap
        for i, vma in enumerate(vmas):
            assert vma_prev_of(t.mm, vma) is (vmas[i - 1] if i else None)
            assert vma_next_of(t.mm, vma) is (vmas[i + 1] if i + 1 < len(vmas) else None)
        assert vma_next_of(t.mm, None) is (vmas[0] if vmas else None)
        for probe in range(0, 34, 3):  # find_vma_links, against the list walked (mm/mmap.c:526-560)
            lo, hi = BASE + probe * PAGE_SIZE, BASE + (probe + n) * PAGE_SIZE
            below = [v for v in vmas if v.vm_end <= lo]
            overlaps = any(v.vm_start < hi and v.vm_end > lo for v in vmas)
            assert find_vma_links(t.mm, lo, hi) == (-errno.ENOMEM if overlaps else 0, below[-1] if below else None)


def test_a_list_out_of_order_is_walked_and_a_stranger_is_an_internal_error() -> None:
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    assert t.mm is not None
    for page in (0, 2, 4):
        k.mmap(t, BASE + page * PAGE_SIZE, PAGE_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    a, b, c = t.mm.mmap
    b.vm_start = a.vm_start  # as __vma_adjust leaves it for a moment: the search lands on a, the walk finds b
    assert vma_prev_of(t.mm, b) is a and vma_next_of(t.mm, b) is c
    stranger = VmAreaStruct(vm_start=BASE + 8 * PAGE_SIZE, vm_end=BASE + 9 * PAGE_SIZE, vm_flags=a.vm_flags)
    with pytest.raises(InternalError, match="is not in"):
        vma_prev_of(t.mm, stranger)
