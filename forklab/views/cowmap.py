"""The copy-on-write page map between two tasks: for each page of each VMA, what the two page tables say now.

Input is a ``ForkBaseline`` (``forklab.views.picture_ptes.fork_baseline``), the two tasks' PTEs
taken right after the fork; the map compares the live page tables with it, page by page:

* **shared read-only**: both tasks map the same pfn and neither PTE is writable (the state
  ``copy_one_pte`` leaves a private page in after the fork);
* **zero page**: both map the zero page (read faults before the fork);
* **MAP_SHARED**: a shared mapping's page, the same pfn in both; no copy-on-write applies;
* **private after a copy**: the page was shared at the fork and the tasks now map different
  pfns (``wp_page_copy`` gave the writer a new page; the other side still has the old one);
* **reused in place**: the page was shared at the fork, and one task now maps that same pfn
  *writable* while the other no longer maps it. Only ``do_wp_page``'s reuse path
  (``wp_page_reuse``, taken when the fault found it was the page's last mapping) makes a
  fork-shared private PTE writable without changing its pfn, so this is a fact of the state, not
  a guess;
* **private, not shared at fork**: both tasks map different pfns there, and did not share one
  at the fork (both mapped it later);
* **in one task only**: mapped by one task, and not a reuse;
* **not present** in either.

Renderings: ``cow_grid_text`` (a terminal grid, one cell per page, a legend and per-VMA counts)
and ``cow_dot`` (Graphviz DOT with one HTML table per VMA; ``dot`` makes SVG or PNG of it).

    python -m forklab.views.cowmap --scenario fork -o docs/img/cow.svg
"""

from __future__ import annotations

import argparse
import enum
import io
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from forklab.errors import InternalError
from forklab.include.linux.mm_types import VM, MmStruct, VmAreaStruct
from forklab.include.linux.sched import Task
from forklab.mm.memory import get_pte, is_zero_pfn, pte_pfn, pte_present, pte_write
from forklab.uapi import PAGE_SIZE
from forklab.views.picture_graphviz import dot_quote, html_escape, run_picture_command, write_picture
from forklab.views.picture_ptes import ForkBaseline
from forklab.views.picture_scenarios import SCENARIO_NAMES, build_picture_scenario, one_line_parser

MAX_REGION_PAGES = 4096  # a VMA larger than this is too big to draw one cell per page
GRID_COLUMNS = 32  # pages per row, in the terminal and the image
TEXT_WIDTH = 100


class PageState(enum.Enum):
    """What one page is between the two tasks (see the module docstring for each rule)."""

    SHARED = "shared read-only"
    ZERO = "zero page"
    MAPPED_SHARED = "MAP_SHARED"
    COPIED = "private after a copy"
    REUSED = "reused in place"
    PRIVATE = "private, not shared at fork"
    ONE_SIDE = "in one task only"
    ABSENT = "not present"


# symbol, terminal style, image colour, legend text
LEGEND: dict[PageState, tuple[str, str, str, str]] = {
    PageState.SHARED: ("S", "bold blue", "#9fc5e8", "shared read-only: same pfn, write-protected in both"),
    PageState.ZERO: ("0", "dim", "#d9d9d9", "the zero page in both, read-only"),
    PageState.MAPPED_SHARED: ("M", "magenta", "#b4a7d6", "MAP_SHARED: same pfn, no copy-on-write"),
    PageState.COPIED: ("C", "bold red", "#f6b26b", "private after a copy: shared at fork, now different pfns"),
    PageState.REUSED: ("R", "bold green", "#93c47d",
                       "reused in place: the fork's pfn, now writable, mapped by one task only"),
    PageState.PRIVATE: ("P", "yellow", "#ffe599", "private, not shared at fork: different pfns, both mapped later"),
    PageState.ONE_SIDE: ("1", "cyan", "#d0e0e3", "in one task only (and not a reuse)"),
    PageState.ABSENT: (".", "dim", "#ffffff", "not present in either"),
}


@dataclass(slots=True, frozen=True)
class CowPage:
    """One page: its state, each task's pfn (None: not present) and PTE write bit, the pfn shared at the fork.

    ``by`` names the task(s) that left the shared page (COPIED) or kept it writable (REUSED), by pid.
    """

    addr: int
    state: PageState
    pfns: tuple[int | None, int | None]
    writable: tuple[bool, bool]
    fork_pfn: int | None
    by: tuple[int, ...] = ()


@dataclass(slots=True, eq=False)
class CowRegion:
    """An address range covered by the same VMA (or none) in each task, with one CowPage per page."""

    start: int
    end: int
    perms: str
    pages: list[CowPage] = field(default_factory=list)

    def counts(self) -> dict[PageState, int]:
        """How many pages of this region are in each state (every state present, 0 where none)."""
        out = dict.fromkeys(PageState, 0)
        for page in self.pages:
            out[page.state] += 1
        return out


@dataclass(slots=True, eq=False)
class CowMap:
    """The map between ``tasks[0]`` (the fork's parent) and ``tasks[1]`` (its child), region by region."""

    tasks: tuple[Task, Task]
    regions: list[CowRegion]

    def counts(self) -> dict[PageState, int]:
        """How many pages are in each state over all regions."""
        out = dict.fromkeys(PageState, 0)
        for region in self.regions:
            for state, n in region.counts().items():
                out[state] += n
        return out

    def page_at(self, addr: int) -> CowPage:
        """The page containing ``addr``; ValueError when neither task has a VMA there."""
        for region in self.regions:
            if region.start <= addr < region.end:
                return region.pages[(addr - region.start) // PAGE_SIZE]
        raise ValueError(f"no VMA of either task covers {addr:#x}")

    def pages_in(self, state: PageState) -> list[CowPage]:
        """Every page in ``state``, in address order."""
        return [p for r in self.regions for p in r.pages if p.state is state]


def _vma_at(mm: MmStruct | None, addr: int) -> VmAreaStruct | None:
    """The VMA of ``mm`` containing ``addr``, or None."""
    if mm is None:
        return None
    for vma in mm.mmap:
        if vma.vm_start <= addr < vma.vm_end:
            return vma
    return None


def vma_perms(vma: VmAreaStruct | None) -> str:
    """``rw-p`` style permissions of a VMA, as /proc/<pid>/maps spells them; ``----`` for no VMA."""
    if vma is None:
        return "----"
    flags = vma.vm_flags
    return "".join((
        "r" if flags & VM.VM_READ else "-", "w" if flags & VM.VM_WRITE else "-",
        "x" if flags & VM.VM_EXEC else "-", "s" if flags & VM.VM_MAYSHARE else "p",
    ))


def _region_bounds(mms: tuple[MmStruct | None, MmStruct | None]) -> list[tuple[int, int, str, bool]]:
    """The ranges where the VMAs of both mms are constant: (start, end, perms, shared mapping), address order."""
    cuts = sorted({b for mm in mms if mm is not None for v in mm.mmap for b in (v.vm_start, v.vm_end)})
    out: list[tuple[int, int, str, bool]] = []
    for lo, hi in itertools.pairwise(cuts):
        vmas = (_vma_at(mms[0], lo), _vma_at(mms[1], lo))
        if vmas == (None, None):
            continue
        perms = [vma_perms(v) for v in vmas]
        text = perms[0] if perms[0] == perms[1] else f"{perms[0]}|{perms[1]}"
        shared = any(v is not None and v.vm_flags & VM.VM_SHARED for v in vmas)
        out.append((lo, hi, text, shared))
    return out


def _fork_shared_pfn(then: tuple[int, int]) -> int | None:
    """The pfn both tasks mapped, write-protected, at the fork; None when they did not share one."""
    if not all(pte_present(p) for p in then):
        return None
    pfns = {pte_pfn(p) for p in then}
    if len(pfns) != 1 or any(pte_write(p) for p in then):
        return None
    return pfns.pop()


def classify_page(addr: int, now: tuple[int, int], then: tuple[int, int], shared_mapping: bool,
                  pids: tuple[int, int]) -> CowPage:
    """One page's state from the two PTEs now and at the fork (the rules are in the module docstring)."""
    present = (pte_present(now[0]), pte_present(now[1]))
    pfns = (pte_pfn(now[0]) if present[0] else None, pte_pfn(now[1]) if present[1] else None)
    writable = (present[0] and pte_write(now[0]), present[1] and pte_write(now[1]))
    fork_pfn = _fork_shared_pfn(then)
    state, by = _page_state(addr, present, pfns, writable, fork_pfn, shared_mapping, pids)
    return CowPage(addr, state, pfns, writable, fork_pfn, by)


def _page_state(addr: int, present: tuple[bool, bool], pfns: tuple[int | None, int | None],
                writable: tuple[bool, bool], fork_pfn: int | None, shared_mapping: bool,
                pids: tuple[int, int]) -> tuple[PageState, tuple[int, ...]]:
    """The state of a page and the pids that acted, from the facts ``classify_page`` read."""
    if not any(present):
        return PageState.ABSENT, ()
    if all(present) and pfns[0] == pfns[1]:
        if shared_mapping:
            return PageState.MAPPED_SHARED, ()
        if any(writable):
            raise InternalError(f"{addr:#x}: pfn {pfns[0]} is writable in a private mapping of two mms")
        return (PageState.ZERO if is_zero_pfn(pfns[0] or 0) else PageState.SHARED), ()
    if fork_pfn is None or shared_mapping:
        return (PageState.PRIVATE if all(present) else PageState.ONE_SIDE), ()
    reusers = tuple(pid for pid, pfn, w in zip(pids, pfns, writable, strict=True) if pfn == fork_pfn and w)
    if reusers and not is_zero_pfn(fork_pfn):
        return PageState.REUSED, reusers
    if all(present):
        return PageState.COPIED, tuple(pid for pid, pfn in zip(pids, pfns, strict=True) if pfn != fork_pfn)
    return PageState.ONE_SIDE, ()


def cow_map(baseline: ForkBaseline, max_region_pages: int = MAX_REGION_PAGES) -> CowMap:
    """The copy-on-write map of the baseline's parent and child, from their page tables now and at the fork."""
    if not isinstance(baseline, ForkBaseline):
        raise TypeError("cow_map takes the ForkBaseline taken after the fork (forklab.views.picture_ptes)")
    tasks = (baseline.parent, baseline.child)
    mms = (tasks[0].mm, tasks[1].mm)
    if mms[0] is not None and mms[0] is mms[1]:
        raise ValueError(f"tasks {tasks[0].pid} and {tasks[1].pid} now share one mm: there is no copy-on-write "
                         "between them")
    pids = (tasks[0].pid, tasks[1].pid)
    then = (baseline.parent_ptes, baseline.child_ptes)
    regions: list[CowRegion] = []
    for start, end, perms, shared in _region_bounds(mms):
        if (end - start) // PAGE_SIZE > max_region_pages:
            raise ValueError(f"the VMA range {start:#x}-{end:#x} has {(end - start) // PAGE_SIZE} pages, more than "
                             f"{max_region_pages} to draw one by one")
        region = CowRegion(start, end, perms)
        for addr in range(start, end, PAGE_SIZE):
            now = (0 if mms[0] is None else get_pte(mms[0], addr), 0 if mms[1] is None else get_pte(mms[1], addr))
            region.pages.append(classify_page(addr, now, (then[0].get(addr, 0), then[1].get(addr, 0)), shared, pids))
        regions.append(region)
    return CowMap(tasks, regions)


# --- terminal ---------------------------------------------------------------------------------------


def _counts_line(counts: dict[PageState, int]) -> Text:
    """The counts of the states present, as styled ``  S 3  C 1`` text."""
    line = Text()
    for state, n in counts.items():
        if n:
            symbol, style, _colour, _text = LEGEND[state]
            line.append(f"  {symbol} ", style=style)
            line.append(str(n))
    return line


def _region_title(region: CowRegion) -> str:
    """``start-end perms  N pages`` for a region."""
    return f"{region.start:#x}-{region.end:#x} {region.perms}  {len(region.pages)} pages"


def cow_legend(m: CowMap) -> Table:
    """The legend: each state's symbol, meaning and number of pages in the whole map."""
    counts = m.counts()
    table = Table(show_header=True, box=None, padding=(0, 1))
    table.add_column("")
    table.add_column("pages", justify="right")
    table.add_column("meaning")
    for state, (symbol, style, _colour, text) in LEGEND.items():
        table.add_row(Text(symbol, style=style), str(counts[state]), text)
    return table


def cow_region_grid(region: CowRegion) -> Text:
    """One region: its range, permissions and counts, then one symbol per page, GRID_COLUMNS to a row."""
    out = Text(_region_title(region), style="bold")
    out.append_text(_counts_line(region.counts()))
    for row in range(0, len(region.pages), GRID_COLUMNS):
        out.append(f"\n  {row:>4} ")
        for page in region.pages[row:row + GRID_COLUMNS]:
            symbol, style, _colour, _text = LEGEND[page.state]
            out.append(f" {symbol}", style=style)
    return out


def cow_grid(m: CowMap) -> Group:
    """The whole terminal rendering: title, legend, then each region's grid."""
    parent, child = m.tasks
    title = Text(f"copy-on-write map: pid {parent.pid} (parent) and pid {child.pid} (child)", style="bold underline")
    return Group(title, cow_legend(m), *[cow_region_grid(r) for r in m.regions])


def cow_pages_table(m: CowMap) -> Table:
    """Every present page: address, state, each task's pfn (w: writable), the pfn shared at fork, who acted."""
    parent, child = m.tasks
    table = Table(show_header=True)
    table.add_column("page", no_wrap=True)
    for name in ("state", f"pid {parent.pid} pfn", f"pid {child.pid} pfn", "pfn at fork", "by"):
        table.add_column(name)
    for region in m.regions:
        for page in region.pages:
            if page.state is PageState.ABSENT:
                continue
            cells = [f"{pfn}{' w' if w else ''}" if pfn is not None else "-"
                     for pfn, w in zip(page.pfns, page.writable, strict=True)]
            table.add_row(f"{page.addr:#x}", f"{LEGEND[page.state][0]} {page.state.value}", *cells,
                          "-" if page.fork_pfn is None else str(page.fork_pfn),
                          ", ".join(f"pid {p}" for p in page.by))
    return table


def cow_grid_text(m: CowMap, pages: bool = False, width: int = TEXT_WIDTH) -> str:
    """The terminal rendering as plain text (no colour codes); ``pages`` adds the per-page pfn table."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(cow_grid(m))
    if pages:
        console.print(cow_pages_table(m))
    return out.getvalue()


# --- Graphviz ---------------------------------------------------------------------------------------


def _cell_tooltip(page: CowPage, pids: tuple[int, int]) -> str:
    """A page cell's tooltip: its address, state and each task's pfn and write bit."""
    sides = ", ".join(f"pid {pid}: " + ("-" if pfn is None else f"pfn {pfn}{' (writable)' if w else ''}")
                      for pid, pfn, w in zip(pids, page.pfns, page.writable, strict=True))
    return f"{page.addr:#x} {page.state.value}; {sides}"


def _pfn_cell(pfn: int | None, writable: bool) -> str:
    """A small cell with one task's pfn for a page, bold when its PTE is writable, ``-`` when not present."""
    text = "-" if pfn is None else str(pfn)
    inner = f"<B>{text}</B>" if writable else text
    return f'<TD BORDER="0"><FONT POINT-SIZE="7">{inner}</FONT></TD>'


def _region_html(region: CowRegion, pids: tuple[int, int]) -> str:
    """A region's grid as an HTML-like label: per GRID_COLUMNS pages, a row of states and a row of pfns per task."""
    width = min(GRID_COLUMNS, len(region.pages))
    rows = []
    for row in range(0, len(region.pages), GRID_COLUMNS):
        chunk = region.pages[row:row + GRID_COLUMNS]
        pad = width - len(chunk)
        # Graphviz keeps a cell's TOOLTIP only with an HREF: each cell links to itself (its ID is its address).
        cells = [f'<TD BGCOLOR="{LEGEND[p.state][2]}" WIDTH="18" HEIGHT="18" FIXEDSIZE="TRUE" ID="page{p.addr:x}" '
                 f'HREF="#page{p.addr:x}" TOOLTIP="{html_escape(_cell_tooltip(p, pids))}">'
                 f"{html_escape(LEGEND[p.state][0])}</TD>" for p in chunk]
        rows.append(f'<TR><TD BORDER="0"><FONT POINT-SIZE="7">{row}</FONT></TD>' + "".join(cells)
                    + '<TD BORDER="0"></TD>' * pad + "</TR>")
        for side, pid in enumerate(pids):
            pfns = "".join(_pfn_cell(p.pfns[side], p.writable[side]) for p in chunk)
            rows.append(f'<TR><TD BORDER="0" ALIGN="RIGHT"><FONT POINT-SIZE="7">pid {pid}</FONT></TD>{pfns}'
                        + '<TD BORDER="0"></TD>' * pad + "</TR>")
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"


def _region_caption(region: CowRegion) -> str:
    """The region's title line: range, permissions, page count and the count of each state present."""
    counts = "  ".join(f"{LEGEND[s][0]} {n}" for s, n in region.counts().items() if n)
    return f"{_region_title(region)}   {counts}"


def _legend_html(m: CowMap) -> str:
    """The legend as an HTML-like label: symbol, page count and meaning of each state."""
    counts = m.counts()
    rows = [f'<TR><TD BGCOLOR="{colour}" WIDTH="18">{html_escape(symbol)}</TD>'
            f'<TD ALIGN="RIGHT">{counts[state]}</TD><TD ALIGN="LEFT">{html_escape(text)}</TD></TR>'
            for state, (symbol, _style, colour, text) in LEGEND.items()]
    rows.append('<TR><TD BORDER="0" COLSPAN="3" ALIGN="LEFT"><FONT POINT-SIZE="8">under each page: the pfn each '
                "task maps, <B>bold</B> where its PTE is writable</FONT></TD></TR>")
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">' + "".join(rows) + "</TABLE>>"


def cow_dot(m: CowMap) -> str:
    """The map as Graphviz DOT: a legend with the page counts, then one grid per region, top to bottom."""
    pids = (m.tasks[0].pid, m.tasks[1].pid)
    title = f"copy-on-write map: pid {pids[0]} (parent) and pid {pids[1]} (child)"
    lines = ["digraph cowmap {",
             f'  graph [rankdir=TB, fontname="Helvetica", fontsize=12, labelloc=t, label={dot_quote(title)}];',
             '  node [shape=plaintext, fontname="Helvetica", fontsize=10];',
             '  edge [style=invis];',
             f"  legend [label={_legend_html(m)}];"]
    names = ["legend"]
    for i, region in enumerate(m.regions):
        lines.append(f"  subgraph cluster_region{i} {{ label={dot_quote(_region_caption(region))}; labeljust=l; "
                     f'pencolor="#bbbbbb"; region{i} [label={_region_html(region, pids)}]; }}')
        names.append(f"region{i}")
    lines.extend(f"  {a} -> {b};" for a, b in itertools.pairwise(names))
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- command line -----------------------------------------------------------------------------------


def cowmap_main(argv: Sequence[str] | None = None) -> int:
    """``python -m forklab.views.cowmap --scenario NAME [-o FILE] [--pages]``: a built-in scenario's map."""
    parser = one_line_parser("python -m forklab.views.cowmap",
                             "Draw the copy-on-write page map of a built-in scenario's fork.")
    parser.add_argument("--scenario", default="fork", choices=SCENARIO_NAMES, help="which scenario (default fork)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="write FILE.svg / .png (needs Graphviz's dot), .dot or .txt; default: print the grid")
    parser.add_argument("--pages", action="store_true", help="also list each present page's pfns")
    args = parser.parse_args(argv)
    return run_picture_command(parser.prog, lambda: _cowmap_main(args))


def _cowmap_main(args: argparse.Namespace) -> int:
    """Build the scenario's map and print it or write it to ``args.output``."""
    scenario = build_picture_scenario(args.scenario)
    if scenario.cow is None:
        raise ValueError(f"scenario {args.scenario!r} has no fork to map")
    m = cow_map(scenario.cow)
    if args.output is None:
        console = Console()
        console.print(cow_grid(m))
        if args.pages:
            console.print(cow_pages_table(m))
        return 0
    write_picture(args.output, cow_dot(m), cow_grid_text(m, pages=args.pages))
    return 0


__all__ = ["LEGEND", "CowMap", "CowPage", "CowRegion", "PageState", "classify_page", "cow_dot", "cow_grid",
           "cow_grid_text", "cow_legend", "cow_map", "cow_pages_table", "cow_region_grid", "cowmap_main", "vma_perms"]

if __name__ == "__main__":
    sys.exit(cowmap_main())
