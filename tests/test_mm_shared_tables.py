"""Kernel(fork_page_tables="shared"): the on-demand fork (Zhao, Gong and Fonseca, EuroSys 2021), beyond Linux 5.6.

Fork shares each last-level table a single private anonymous vma covers, write-protecting the PMD entries above
it; the first fault under a shared table copies it (then the usual copy-on-write applies); exit or munmap of all
of it drops a reference. The memory tests (test_mm_fork, test_mm_syscalls, test_mm_random, test_mm_fastpath,
test_fail_nth's mm sites) run in both modes; these tests check what differs and that the trace and /proc show it.
"""

from __future__ import annotations

import pytest

from forklab import Kernel
from forklab.include.linux.mm_types import _PAGE_RW, PMD_SHIFT
from forklab.include.linux.sched import Task
from forklab.mm.memory import ODF_SOURCE, get_pte, pmd_write_protected, pte_pfn
from forklab.mm.page_alloc import PteShare
from forklab.state import KernelState
from forklab.trace import TraceEvent
from forklab.uapi import MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE

ADDR = 1 << 30  # a table of its own
NPAGES = 8
PMD = ADDR >> PMD_SHIFT


def booted(mode: str = "shared") -> tuple[Kernel, Task, list[TraceEvent]]:
    """A kernel in ``mode`` with a process holding NPAGES populated private pages at ADDR, and a listener."""
    k = Kernel(fork_page_tables=mode)
    t = k.find_task(k.fork(k.init_task))
    k.mmap(t, ADDR, NPAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE)
    for i in range(NPAGES):
        k.store(t, ADDR + i * PAGE_SIZE, bytes([i + 1]))
    events: list[TraceEvent] = []
    k.listeners.append(events.append)
    return k, t, events


def odf_decisions(events: list[TraceEvent]) -> list[str]:
    return [e.detail for e in events if e.ph == "i" and e.source == ODF_SOURCE]


def share_of(k: Kernel, t: Task) -> PteShare | None:
    assert t.mm is not None
    return k.mem.pte_shares.get(t.mm.pgd[PMD])


def pfns_of(t: Task) -> list[int]:
    assert t.mm is not None
    return [pte_pfn(get_pte(t.mm, ADDR + i * PAGE_SIZE)) for i in range(NPAGES)]


@pytest.mark.parametrize("bad", ["lazy", "", "COPY", None, 1])
def test_a_bad_mode_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="fork_page_tables"):
        Kernel(fork_page_tables=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fork_page_tables"):
        KernelState(fork_page_tables=bad)  # type: ignore[arg-type]


def test_the_default_is_linux_copy() -> None:
    assert Kernel().fork_page_tables == KernelState().fork_page_tables == "copy"


def test_fork_shares_the_table_and_the_first_write_copies_it() -> None:
    k, p, events = booted()
    pfns = pfns_of(p)
    c = k.find_task(k.fork(p))
    assert p.mm is not None and c.mm is not None
    share = share_of(k, p)
    assert share is not None and c.mm.pgd[PMD] is p.mm.pgd[PMD] is share.table
    assert share.holders == [p.mm, c.mm] and pmd_write_protected(k, p.mm, ADDR) and pmd_write_protected(k, c.mm, ADDR)
    assert odf_decisions(events) == [f"share PTE table {PMD:#x} (refcount 2)"]
    for pfn in pfns:  # one table maps each page once: no page counts moved at fork
        assert (k.page(pfn)._refcount, k.page(pfn).mapcount) == (1, 1)
    assert get_pte(p.mm, ADDR) & _PAGE_RW  # the PTEs keep their write bit: the PMD entry's is clear
    assert c.mm.rss_stat == p.mm.rss_stat and c.mm.pgtables_bytes == p.mm.pgtables_bytes == PAGE_SIZE
    k.check_invariants()
    del events[:]
    k.store(c, ADDR, b"c")
    assert odf_decisions(events) == [f"copy shared PTE table {PMD:#x} (refcount 2)"]
    assert c.mm.pgd[PMD] is not p.mm.pgd[PMD] and not pmd_write_protected(k, c.mm, ADDR)
    assert pfns_of(c)[1:] == pfns[1:] and pfns_of(c)[0] != pfns[0]
    for pfn in pfns[1:]:  # now two tables map them, as after Linux's fork
        assert (k.page(pfn)._refcount, k.page(pfn).mapcount) == (2, 2)
    assert not any(get_pte(p.mm, ADDR + i * PAGE_SIZE) & _PAGE_RW for i in range(NPAGES))
    assert k.load(c, ADDR, 1) == b"c" and k.load(p, ADDR, 1) == b"\x01"
    del events[:]
    k.store(p, ADDR, b"p")  # the parent is the table's only holder now: its PMD entry becomes writable
    assert odf_decisions(events) == [f"reuse PTE table {PMD:#x} (refcount 1)"]
    assert share_of(k, p) is None and pfns_of(p)[0] == pfns[0]
    assert k.load(p, ADDR, 1) == b"p" and k.load(c, ADDR, 1) == b"c"
    k.check_invariants()


def test_exit_drops_the_reference_and_the_table_stays_with_its_other_holder() -> None:
    k, p, events = booted()
    pid = k.fork(p)
    k.exit_group(k.find_task(pid), 0)
    k.wait4(p, pid, 0)
    assert f"drop shared PTE table {PMD:#x} (refcount 1)" in odf_decisions(events)
    share = share_of(k, p)
    assert share is not None and share.holders == [share.holders[0]] and pmd_write_protected(k, share.holders[0], ADDR)
    assert [k.load(p, ADDR + i * PAGE_SIZE, 1) for i in range(NPAGES)] == [bytes([i + 1]) for i in range(NPAGES)]
    k.check_invariants()


@pytest.mark.parametrize("change", ["munmap", "mprotect", "madvise"])
def test_changing_part_of_a_shared_table_copies_it_first(change: str) -> None:
    k, p, events = booted()
    c = k.find_task(k.fork(p))
    part = (ADDR + PAGE_SIZE, 2 * PAGE_SIZE)
    if change == "munmap":
        k.munmap(c, *part)
    elif change == "mprotect":
        k.mprotect(c, *part, PROT_READ)
    else:
        k.madvise(c, *part, 4)  # MADV_DONTNEED
    assert f"copy shared PTE table {PMD:#x} (refcount 2)" in odf_decisions(events)
    assert p.mm is not None and c.mm is not None and c.mm.pgd[PMD] is not p.mm.pgd[PMD]
    assert [k.load(p, ADDR + i * PAGE_SIZE, 1) for i in range(NPAGES)] == [bytes([i + 1]) for i in range(NPAGES)]
    k.check_invariants()


def test_proc_shows_one_table_mapping_each_page() -> None:
    """smaps counts a page by its mapcount: after an on-demand fork both processes see it as private."""
    lines = {}
    for mode in ("copy", "shared"):
        k, p, _events = booted(mode)
        pid = k.fork(p)
        smaps = dict(line.split(":", 1) for line in k.proc(f"/proc/{pid}/smaps").splitlines() if ":" in line)
        status = dict(line.split(":", 1) for line in k.proc(f"/proc/{pid}/status").splitlines())
        mapcount = k.page(pfns_of(p)[0]).mapcount
        lines[mode] = (mapcount, smaps["Shared_Dirty"].split()[0], smaps["Private_Dirty"].split()[0],
                       status["VmRSS"].split()[0], status["VmPTE"].split()[0])
    kib = str(NPAGES * PAGE_SIZE >> 10)
    assert lines["copy"] == (2, kib, "0", kib, "4")
    assert lines["shared"] == (1, "0", kib, kib, "4")


def test_vmas_that_share_a_table_are_copied_as_linux_does() -> None:
    """A table under two vmas (or a shared, DONTFORK or WIPEONFORK one) is not shared: copied entry by entry."""
    k, p, events = booted()
    k.mmap(p, ADDR + NPAGES * PAGE_SIZE, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    k.load(p, ADDR + NPAGES * PAGE_SIZE, 1)
    c = k.find_task(k.fork(p))
    assert p.mm is not None and c.mm is not None and c.mm.pgd[PMD] is not p.mm.pgd[PMD]
    assert odf_decisions(events) == [] and share_of(k, p) is None
    assert all(k.page(pfn).mapcount == 2 for pfn in pfns_of(p))
