"""Physical memory: the page frame array, the page allocator and the mm sysctls (mm/page_alloc.c).

Design essay
------------
The kernel describes every physical page with a ``struct page`` in the ``mem_map`` array. The
model keeps the handful of ``struct page`` fields that fork and copy-on-write depend on as
numpy arrays indexed by pfn, never one Python object per page:

* ``_refcount`` (int32): references held by page tables, the page cache and transient users.
* ``_mapcount`` (int32), with the kernel's bias: -1 means "mapped by no PTE", so
  ``page_mapcount(pfn) == _mapcount + 1`` (include/linux/mm.h:768).
* ``flags`` (uint32): ``PG_anon`` (the PAGE_MAPPING_ANON bit of ``page->mapping``) and
  ``PG_swapbacked`` (anon and shmem pages).
* ``mapping`` (int64): for an anonymous page the ``serial`` of the anon_vma that
  ``page->mapping`` points at; for a shmem page the inode number; 0 when free.
* ``index`` (int64): ``page->index`` (the linear page index in its anon_vma or file).

The arrays double their capacity when the allocator runs past the end. ``PageViews`` holds a
memoryview of each, over the same memory, for the fast paths' single-page reads and writes: a
memoryview item costs about a third of a numpy one (no scalar object is built). Page contents are
stored lazily: ``contents[pfn]`` is an immutable ``bytes`` that exists only once a page has been
written with non-zero data, and holds the page's bytes up to the highest one written (at most
4096); an absent entry or the bytes past its end read as zeros (a freshly zeroed page costs
nothing, a page with one byte written costs one byte). A store replaces the entry with a new
one, so ``copy_user_highpage`` shares its source's entry: a copy costs no bytes until one of the
two pages is written.

The allocator is deterministic: the lowest free pfn is reused first; otherwise the next
never-used pfn is taken. The free set is kept in two parts whose union it is: ``_free``, a list
sorted high to low (the lowest pfn is popped off its end in O(1)), and ``_freed``, a min-heap of
the pfns freed one at a time since the two were last merged. A take pops the lower of the two
ends; a large free (an exit, a munmap) or a heap grown past an eighth of the list merges them.
A heap alone costs a cache miss per level on every take once a 1 GiB process has exited
(about 1.2 us per page at 10^6 free pages), the list pop about 0.1 us. pfn 0 is the ZERO_PAGE
(``empty_zero_page``): it is reserved at boot with ``_refcount`` 1 and is never freed. A PTE
that maps it carries ``_PAGE_SPECIAL`` and is not counted in the page's refcount or mapcount
(mm/memory.c:598-605, vm_normal_page returns NULL for it).

Fault injection: ``alloc_page(k, site)`` asks ``k.fault.should_fail(site)`` first and returns
``None`` when told to fail, exactly where ``alloc_pages`` would return NULL. Callers turn
``None`` into -ENOMEM (syscalls) or VM_FAULT_OOM (page faults). A page allocation also fails
naturally when ``totalram_pages`` pages are in use (the model has no reclaim and no swap).

The mm sysctls (``vm.max_map_count``, ``vm.overcommit_memory``, ``vm.overcommit_ratio``) and the
commit counter ``vm_committed_as`` (mm/util.c:765) live here because they are mm-global;
``Kernel`` holds one ``MemMap`` as ``k.mem``. The model has no swap: ``total_swap_pages`` is 0.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from forklab.errors import InternalError
from forklab.uapi import PAGE_SIZE

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import AnonVma, MmStruct
    from forklab.state import KernelState

ZERO_PFN = 0

# page flags the model keeps (include/linux/page-flags.h; PG_anon stands for PAGE_MAPPING_ANON)
PG_anon = 1 << 0
PG_swapbacked = 1 << 1

# sysctl defaults (mm/util.c:637-640, include/linux/mm.h:188 DEFAULT_MAX_MAP_COUNT)
DEFAULT_MAX_MAP_COUNT = 65530
OVERCOMMIT_GUESS = 0
OVERCOMMIT_ALWAYS = 1
OVERCOMMIT_NEVER = 2
DEFAULT_TOTALRAM_PAGES = 1 << 20  # a 4 GiB machine
MERGE_MIN = 512  # the free list's heap may hold this many pfns before it is merged, however short the list
SMALL_RUN = 64  # pfn_run checks at most this many pfns in plain Python, more with numpy

# Kernel(fork_page_tables=...): "copy" is Linux 5.6; "shared" is the on-demand fork (see forklab/mm/memory.py)
FORK_PAGE_TABLES_COPY = "copy"
FORK_PAGE_TABLES_SHARED = "shared"
FORK_PAGE_TABLES_MODES = (FORK_PAGE_TABLES_COPY, FORK_PAGE_TABLES_SHARED)


@dataclass(slots=True, eq=False)
class PteShare:
    """A last-level page table held by several mms after an on-demand fork (the count kept in its page).

    ``holders`` are the mms whose PMD entry points at ``table``; ``wrprotected`` those of them whose
    PMD entry still has its write bit clear (a write through it faults).
    """

    table: npt.NDArray[np.uint64]
    pmd: int
    holders: list[MmStruct]
    wrprotected: list[MmStruct]


class PteShares:
    """The share records of an on-demand fork's tables, found by the table (its page, in the kernel)."""

    __slots__ = ("by_table",)

    def __init__(self) -> None:
        self.by_table: dict[int, PteShare] = {}

    def __bool__(self) -> bool:
        return bool(self.by_table)

    def __len__(self) -> int:
        return len(self.by_table)

    def get(self, table: npt.NDArray[np.uint64]) -> PteShare | None:
        """The record of ``table``, if it has one."""
        return self.by_table.get(id(table))

    def add(self, share: PteShare) -> None:
        """File ``share`` under its table."""
        self.by_table[id(share.table)] = share

    def remove(self, share: PteShare) -> None:
        """Forget ``share``: its table is no longer shared and no PMD entry above it is write-protected."""
        del self.by_table[id(share.table)]

    def snapshot_state(self) -> tuple[PteShare, ...]:
        """The records in a deterministic order, for forklab.debug.snapshot (table ids are not deterministic)."""
        return tuple(sorted(self.by_table.values(), key=lambda s: (s.pmd, [m.context_id for m in s.holders])))


@dataclass(slots=True, frozen=True)
class Page:
    """A read-only view of one ``struct page`` (include/linux/mm_types.h:68-200)."""

    pfn: int
    _refcount: int
    _mapcount: int
    anon: bool
    swapbacked: bool
    mapping: int
    index: int

    @property
    def mapcount(self) -> int:
        """page_mapcount(): the number of PTEs mapping the page (include/linux/mm.h:768)."""
        return self._mapcount + 1


class PageViews:
    """Memoryviews of the ``struct page`` arrays of one ``MemMap``, indexed by pfn (same memory)."""

    __slots__ = ("_mapcount", "_refcount", "flags", "index", "mapping")

    def __init__(self, mem: MemMap) -> None:
        self._refcount = mem._refcount.data
        self._mapcount = mem._mapcount.data
        self.flags = mem.flags.data
        self.mapping = mem.mapping.data
        self.index = mem.index.data

    def snapshot_state(self) -> tuple[()]:
        """Nothing of its own: the arrays it views are in the MemMap's snapshot."""
        return ()


class WorkArrays:
    """The batched page-table passes' temporaries, one reusable array per purpose (not kernel state).

    A fork or an exit of a big process works on arrays of one entry per PTE (2 MiB at 1 GiB).
    Taken fresh each time, each would cost the host 512 page faults, as much again as the
    arithmetic; kept here, they are faulted in once. An array is valid until the next ``take``
    of its purpose, and grows to the largest size asked for.
    """

    __slots__ = ("_arrays",)

    def __init__(self) -> None:
        self._arrays: dict[str, npt.NDArray[Any]] = {}

    def take(self, purpose: str, n: int, dtype: type[np.generic]) -> npt.NDArray[Any]:
        """An uninitialised array of ``n`` elements of ``dtype`` for ``purpose``."""
        array = self._arrays.get(purpose)
        if array is None or array.shape[0] < n or array.dtype != dtype:
            array = np.empty(n, dtype=dtype)
            self._arrays[purpose] = array
        return array[:n]

    def concatenate(self, purpose: str, arrays: list[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
        """np.concatenate of the PTE ``arrays`` into the array for ``purpose``."""
        out = self.take(purpose, sum(a.shape[0] for a in arrays), np.uint64)
        return np.concatenate(arrays, out=out)

    def snapshot_state(self) -> tuple[()]:
        """Nothing observable: scratch memory."""
        return ()


class MemMap:
    """mem_map plus the buddy allocator's free list and the mm sysctls: all mm-global state."""

    __slots__ = (
        "_anon_vma_serial",
        "_free",
        "_freed",
        "_mapcount",
        "_next_ino",
        "_next_pfn",
        "_nr_used",
        "_refcount",
        "anon_vmas",
        "contents",
        "flags",
        "index",
        "last_mm_ctx_id",
        "mapping",
        "pte_shares",
        "pv",
        "shmem_acct",
        "sysctl_max_map_count",
        "sysctl_overcommit_kbytes",
        "sysctl_overcommit_memory",
        "sysctl_overcommit_ratio",
        "total_swap_pages",
        "totalram_pages",
        "vm_committed_as",
        "work",
    )

    def __init__(self, capacity: int = 1024, totalram_pages: int = DEFAULT_TOTALRAM_PAGES) -> None:
        capacity = max(capacity, 2)
        self._refcount: npt.NDArray[np.int32] = np.zeros(capacity, dtype=np.int32)
        self._mapcount: npt.NDArray[np.int32] = np.full(capacity, -1, dtype=np.int32)
        self.flags: npt.NDArray[np.uint32] = np.zeros(capacity, dtype=np.uint32)
        self.mapping: npt.NDArray[np.int64] = np.zeros(capacity, dtype=np.int64)
        self.index: npt.NDArray[np.int64] = np.zeros(capacity, dtype=np.int64)
        self.contents: dict[int, bytes] = {}
        self._free: list[int] = []  # free pfns, high to low (see the essay)
        self._freed: list[int] = []  # a min-heap of pfns freed one at a time since the last merge
        self._next_pfn = ZERO_PFN + 1
        self._nr_used = 0
        self._refcount[ZERO_PFN] = 1  # reserved at boot, never freed
        self.pv = PageViews(self)
        self.work = WorkArrays()
        self.sysctl_max_map_count = DEFAULT_MAX_MAP_COUNT
        self.sysctl_overcommit_memory = OVERCOMMIT_GUESS
        self.sysctl_overcommit_ratio = 50
        self.sysctl_overcommit_kbytes = 0
        self.totalram_pages = totalram_pages
        self.total_swap_pages = 0
        self.vm_committed_as = 0
        self.anon_vmas: dict[int, AnonVma] = {}
        self._anon_vma_serial = 0
        self._next_ino = 0
        # pages charged to vm_committed_as by each live shmem inode (mm/shmem.c:169-179)
        self.shmem_acct: dict[int, int] = {}
        self.pte_shares = PteShares()  # on-demand fork only
        self.last_mm_ctx_id = 1  # arch/x86/kernel/cpu/common.c / mmu_context.h: last_mm_ctx_id (init_mm has 1)

    # --- views ---------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Number of pfns the arrays currently describe."""
        return int(self._refcount.shape[0])

    @property
    def max_pfn(self) -> int:
        """One past the highest pfn ever handed out (``highest_memmap_pfn + 1``)."""
        return self._next_pfn

    def page(self, pfn: int) -> Page:
        """A read-only snapshot of ``struct page`` for ``pfn``; unknown pfns raise ValueError."""
        if not 0 <= pfn < self._next_pfn:
            raise ValueError(f"pfn {pfn} is outside mem_map (0..{self._next_pfn - 1})")
        fl = int(self.flags[pfn])
        return Page(pfn, int(self._refcount[pfn]), int(self._mapcount[pfn]), bool(fl & PG_anon),
                    bool(fl & PG_swapbacked), int(self.mapping[pfn]), int(self.index[pfn]))

    def is_allocated(self, pfn: int) -> bool:
        """Whether ``pfn`` is a page in use (the zero page counts as in use)."""
        return 0 <= pfn < self._next_pfn and int(self._refcount[pfn]) > 0

    def allocated_pfns(self) -> list[int]:
        """All in-use pfns except the zero page, ascending."""
        used = np.nonzero(self._refcount[: self._next_pfn] > 0)[0]
        return [int(p) for p in used if p != ZERO_PFN]

    def nr_used(self) -> int:
        """Pages handed out by the allocator and not yet freed (the zero page excluded)."""
        return self._nr_used

    def nr_free(self) -> int:
        """Pages still available before the model's memory is exhausted."""
        return self.totalram_pages - self._nr_used

    def read_page(self, pfn: int) -> bytes:
        """The 4096 bytes of page ``pfn`` (zeros when never written)."""
        data = self.contents.get(pfn, b"")
        return data + bytes(PAGE_SIZE - len(data))

    def read_bytes(self, pfn: int, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset`` inside page ``pfn`` (zeros when never written); the range must fit the page."""
        data = self.contents.get(pfn)
        if data is None:
            return bytes(n)
        chunk = data[offset : offset + n]
        return chunk + bytes(n - len(chunk))

    def write_page(self, pfn: int, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset`` inside page ``pfn`` (a user or kernel store)."""
        if pfn == ZERO_PFN or offset < 0 or offset + len(data) > PAGE_SIZE:
            raise InternalError(f"write of {len(data)} bytes at offset {offset} of pfn {pfn}: the zero page, or across a page")
        after = page_after_store(self.contents.get(pfn), offset, data)
        if after is not None:
            self.contents[pfn] = after

    def new_ino(self) -> int:
        """get_next_ino() for shmem inodes (fs/inode.c:880-900), deterministic."""
        self._next_ino += 1
        return self._next_ino

    def new_anon_vma_serial(self) -> int:
        """A fresh anon_vma serial (1, 2, ...); 0 means "no anon_vma" in ``mapping``."""
        self._anon_vma_serial += 1
        return self._anon_vma_serial

    # --- allocator internals ------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = self.capacity
        while cap <= need:
            cap *= 2
        extra = cap - self.capacity
        self._refcount = np.concatenate([self._refcount, np.zeros(extra, dtype=np.int32)])
        self._mapcount = np.concatenate([self._mapcount, np.full(extra, -1, dtype=np.int32)])
        self.flags = np.concatenate([self.flags, np.zeros(extra, dtype=np.uint32)])
        self.mapping = np.concatenate([self.mapping, np.zeros(extra, dtype=np.int64)])
        self.index = np.concatenate([self.index, np.zeros(extra, dtype=np.int64)])
        self.pv = PageViews(self)

    def free_pfns(self) -> list[int]:
        """The free list: every freed pfn not handed out again, ascending."""
        return sorted(self._free + self._freed)

    def _take_pfn(self) -> int:
        """The lowest free pfn, or the next never-used one (growing mem_map), taken off the free set."""
        free, freed = self._free, self._freed
        if freed and (not free or freed[0] < free[-1]):
            return heapq.heappop(freed)
        if free:
            return free.pop()
        pfn = self._next_pfn
        if pfn >= len(self._refcount):
            self._grow(pfn)
        self._next_pfn += 1
        return pfn

    def _free_pfn(self, pfn: int) -> None:
        if int(self._mapcount[pfn]) != -1:
            raise InternalError(f"freeing pfn {pfn} that is still mapped ({self._mapcount[pfn] + 1} PTEs)")
        self.flags[pfn] = 0
        self.mapping[pfn] = 0
        self.index[pfn] = 0
        self.contents.pop(pfn, None)
        self._release([pfn])
        self._nr_used -= 1

    def _free_pfns(self, pfns: npt.NDArray[np.int64]) -> None:
        """_free_pfn for each of the distinct ``pfns`` at once."""
        # NOTE: stands for free_unref_page_list's page-by-page frees (mm/page_alloc.c); the free
        # list is a set taken lowest first, so one merge gives the same takes as one free per page.
        if (self._mapcount[pfns] != -1).any():
            raise InternalError(f"freeing pages that are still mapped: {pfns[self._mapcount[pfns] != -1][:8]}")
        self.flags[pfns] = 0
        self.mapping[pfns] = 0
        self.index[pfns] = 0
        self._drop_contents(pfns)
        self._release(pfns.tolist())
        self._nr_used -= int(pfns.size)

    def _release(self, pfns: list[int]) -> None:
        """Put the distinct, newly free ``pfns`` on the free list (see the essay for its two parts)."""
        freed = self._freed
        if 8 * (len(pfns) + len(freed)) <= max(len(self._free), 8 * MERGE_MIN):
            for pfn in pfns:
                heapq.heappush(freed, pfn)
            return
        merged = self._free + freed + pfns
        merged.sort(reverse=True)
        self._free = merged
        self._freed = []

    def _drop_contents(self, pfns: npt.NDArray[np.int64]) -> None:
        """Forget the data of the freed ``pfns`` (refcount 0 now): walk the shorter of the two collections."""
        contents = self.contents
        if pfns.size <= len(contents):
            for pfn in pfns.tolist():
                contents.pop(pfn, None)
            return
        refcount = self._refcount
        for pfn in [p for p in contents if refcount[p] == 0]:
            del contents[pfn]

    def add_page_counts(self, pfns: npt.NDArray[np.int64], delta: int, run: tuple[int, int] | None = None) -> bool:
        """Add ``delta`` to ``_refcount`` and ``_mapcount`` of every entry of ``pfns`` (a pfn listed twice counts twice).

        ``run`` is pfn_run(pfns) when the caller has it (None: not known to be a run). Returns whether the
        pfns were distinct.
        """
        # NOTE: stands for the kernel's per-PTE get_page + page_dup_rmap (fork) or page_remove_rmap +
        # put_page (zap): by slice over a contiguous ascending run, by fancy indexing where the pfns
        # are unique (checked), and by np.add.at only when a pfn repeats.
        if pfns.size == 0:
            return True
        if run is None:
            run = pfn_run(pfns, self.work)
        if run is not None:
            self._refcount[run[0] : run[1] + 1] += delta
            self._mapcount[run[0] : run[1] + 1] += delta
            return True
        if bool((np.diff(pfns) > 0).all()) or _all_distinct(pfns):
            self._refcount[pfns] += delta
            self._mapcount[pfns] += delta
            return True
        np.add.at(self._refcount, pfns, delta)
        np.add.at(self._mapcount, pfns, delta)
        return False


def pfn_run(pfns: npt.NDArray[np.int64], work: WorkArrays) -> tuple[int, int] | None:
    """(first, last) when ``pfns`` is exactly the ascending run first, first+1, ..., last; else None.

    ``n`` strictly ascending pfns from first to first + n - 1 are that run: one comparison pass.
    """
    n = int(pfns.size)
    if n == 0:
        return None
    lo, hi = int(pfns[0]), int(pfns[-1])
    if hi - lo + 1 != n:
        return None
    if n <= SMALL_RUN:
        return (lo, hi) if pfns.tolist() == list(range(lo, hi + 1)) else None
    ascending = np.less(pfns[:-1], pfns[1:], out=work.take("pfn_run", n - 1, np.bool_))
    return (lo, hi) if ascending.all() else None


def of_pfns(field: npt.NDArray[Any], pfns: npt.NDArray[np.int64], run: tuple[int, int] | None) -> npt.NDArray[Any]:
    """A struct page field for each of ``pfns``: a slice (a view) for a run, else a gathered copy."""
    return field[run[0] : run[1] + 1] if run is not None else field[pfns]


def _all_distinct(pfns: npt.NDArray[np.int64]) -> bool:
    """No pfn repeats: each writes its position into a scratch array and must read its own back (O(n), no sort)."""
    order = np.arange(pfns.size, dtype=np.int64)
    scratch = np.empty(int(pfns.max()) + 1, dtype=np.int64)
    scratch[pfns] = order
    return bool((scratch[pfns] == order).all())


def page_after_store(old: bytes | None, offset: int, data: bytes) -> bytes | None:
    """The contents of a page holding ``old`` (None: never written, all zeros) after ``data`` is stored at
    ``offset``; None when it stays never written, as zeros stored into it leave it (the store fits the page)."""
    if old is None:
        if not any(data):
            return None
        return bytes(offset) + data if offset else bytes(data)
    if len(old) <= offset:
        return old + bytes(offset - len(old)) + data
    return old[:offset] + data + old[offset + len(data):]


def alloc_page(k: KernelState, site: str, zeroed: bool = True) -> int | None:
    """alloc_pages(GFP_HIGHUSER_MOVABLE [| __GFP_ZERO], 0) (mm/page_alloc.c:4784); None = NULL.

    Every page the model hands out starts zeroed (contents are lazy); ``zeroed`` is kept for
    the call sites' documentation value (``alloc_zeroed_user_highpage_movable`` vs a page that
    is about to be overwritten by ``copy_user_highpage``).
    """
    del zeroed
    mem = k.mem
    fault = k.fault
    if fault.countdown > 0:
        if fault.should_fail(site):
            return None
    else:
        fault.sites.append(site)  # NOTE: should_fail of a disarmed injector, in place: it only records the site
    if mem._nr_used >= mem.totalram_pages:
        return None
    free = mem._free
    # NOTE: _take_pfn's common case in place: the free list's lowest pfn when no single free is lower
    pfn = free.pop() if free and not mem._freed else mem._take_pfn()
    mem.pv._refcount[pfn] = 1  # set_page_refcounted; _mapcount is already -1, reset when the page was freed
    mem._nr_used += 1
    return pfn


__all__ = [
    "DEFAULT_MAX_MAP_COUNT",
    "FORK_PAGE_TABLES_COPY",
    "FORK_PAGE_TABLES_MODES",
    "FORK_PAGE_TABLES_SHARED",
    "OVERCOMMIT_ALWAYS",
    "OVERCOMMIT_GUESS",
    "OVERCOMMIT_NEVER",
    "ZERO_PFN",
    "MemMap",
    "PG_anon",
    "PG_swapbacked",
    "Page",
    "PteShare",
    "PteShares",
    "WorkArrays",
    "alloc_page",
    "page_after_store",
]
