"""The pictures (forklab.views.sharing, forklab.views.cowmap): every number and edge drawn is the model's state.

Sharing diagram: each count shown is the object's field, and where the count counts tasks (or
nsproxies) it equals the number of pointers drawn into the node when every holder is in the
picture. Copy-on-write map: each page's state agrees with what the two page tables say
(``Kernel.translate``, the page's mapcount), and a reuse appears exactly where a task wrote a
page after the other side's copy.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from forklab import Kernel, Task
from forklab.debug import live_tasks
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWIPC,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
)
from forklab.views import cowmap, sharing
from forklab.views.cowmap import LEGEND, PageState, cow_dot, cow_grid_text, cow_map, cowmap_main
from forklab.views.picture_docs import write_doc_pictures
from forklab.views.picture_graphviz import GraphvizMissing, render_dot
from forklab.views.picture_ptes import fork_baseline
from forklab.views.picture_scenarios import SCENARIO_NAMES, build_picture_scenario
from forklab.views.sharing import COUNT_FIELDS, sharing_dot, sharing_graph, sharing_main, sharing_text

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"
THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
# Counts whose holders are the tasks' own pointers (kernel/fork.c's copy_* helpers take one per task), and the
# fields that hold them; cred usage counts both cred pointers. Namespaces are held by nsproxies (below).
TASK_COUNTED = {("mm", "mm_users"): ("mm",), ("files", "count"): ("files",), ("fs", "users"): ("fs",),
                ("sighand", "count"): ("sighand",), ("signal", "nr_threads"): ("signal",),
                ("signal", "sigcnt"): ("signal",), ("cred", "usage"): ("cred", "real_cred"),
                ("nsproxy", "count"): ("nsproxy",)}
NSPROXY_HELD = ("uts_ns", "ipc_ns", "mnt_ns", "net_ns", "time_ns", "cgroup_ns")


def every_holder(k: Kernel) -> list[Task]:
    """Every task that can hold a reference: the live ones and the idle task."""
    return [k.idle_task, *live_tasks(k)]


def assert_counts_are_edges(graph: sharing.SharingGraph) -> None:
    """Each task-counted refcount equals the pointers into its node from tasks; each namespace's, from nsproxies."""
    task_names = {t.name for t in graph.tasks}
    for node in graph.objects:
        for name, value in node.counts:
            assert value == getattr(node.obj, name), (node.name, name)
            fields = TASK_COUNTED.get((node.kind, name))
            if fields is not None:
                into = [e for e in graph.edges_into(node.name) if e.src in task_names and e.field in fields]
                assert value == len(into), f"{node.name}.{name}={value} but {len(into)} task pointers"
        if node.kind in NSPROXY_HELD:
            into = [e for e in graph.edges_into(node.name) if e.src.startswith("nsproxy#")]
            assert node.count("count") == len(into), node.name


def cells_by_row(text: str) -> dict[str, list[str]]:
    """The terminal table's rows, by object name: each cell, stripped (the table is wide enough not to wrap)."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


def dot_labels(dot: str) -> dict[str, str]:
    """Each node's label in DOT text, by node name."""
    found = re.finditer(r'^  "([^"]+)" \[.*?label="((?:[^"\\]|\\.)*)"\];$', dot, re.M)
    return {m.group(1): m.group(2) for m in found}


def svg_of(dot: str) -> ET.Element:
    return ET.fromstring(render_dot(dot, "svg"))


# --- the sharing diagram ----------------------------------------------------------------------------


def test_fork_copies_every_object_and_counts_are_the_pointers() -> None:
    k = Kernel()
    init = k.init_task
    child = k.find_task(k.fork(init))
    graph = sharing_graph(k, every_holder(k))
    assert_counts_are_edges(graph)
    for field_name in ("mm", "files", "fs", "sighand", "signal", "cred"):
        assert graph.node_of(getattr(init, field_name)) is not graph.node_of(getattr(child, field_name))
    shared = graph.node_of(init.nsproxy)
    assert shared is graph.node_of(child.nsproxy)
    assert {e.src for e in graph.edges_into(shared.name)} >= {"task 1", f"task {child.pid}"}


def test_clone_vm_files_fs_and_thread_share_one_node_each() -> None:
    k = Kernel()
    init = k.init_task
    files_fs = k.find_task(k.clone(init, CLONE_FILES | CLONE_FS | SIGCHLD))
    vm = k.find_task(k.clone(init, CLONE_VM | SIGCHLD))
    thread = k.find_task(k.clone(vm, THREAD))
    graph = sharing_graph(k, every_holder(k))
    assert_counts_are_edges(graph)
    files = graph.node_of(init.files)
    assert files is graph.node_of(files_fs.files) and files.count("count") == 2
    assert graph.node_of(init.fs) is graph.node_of(files_fs.fs)
    mm = graph.node_of(init.mm)
    assert mm is graph.node_of(vm.mm) is graph.node_of(thread.mm)
    assert {e.src for e in graph.edges_into(mm.name)} == {"task 1", f"task {vm.pid}", f"task {thread.pid}"}
    assert mm.count("mm_users") == 3
    signal = graph.node_of(thread.signal)
    assert signal is graph.node_of(vm.signal) and signal.count("nr_threads") == 2
    assert graph.node_of(files_fs.mm) is not mm


def test_unshare_and_new_namespaces_are_new_nodes() -> None:
    k = Kernel()
    init = k.init_task
    unshared = k.find_task(k.fork(init))
    k.unshare(unshared, CLONE_NEWUTS | CLONE_NEWIPC)
    nested = k.find_task(k.clone(init, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD))
    graph = sharing_graph(k, every_holder(k))
    assert_counts_are_edges(graph)
    assert unshared.nsproxy is not None and init.nsproxy is not None and nested.nsproxy is not None
    assert graph.node_of(unshared.nsproxy.uts_ns) is not graph.node_of(init.nsproxy.uts_ns)
    assert graph.node_of(unshared.nsproxy.mnt_ns) is graph.node_of(init.nsproxy.mnt_ns)
    pid = graph.node_of(nested.thread_pid)
    assert nested.thread_pid is not None
    levels = [e for e in graph.edges if e.src == pid.name and e.field.startswith("numbers[")]
    assert [graph.node_of(u.ns).name for u in nested.thread_pid.numbers] == [e.dst for e in levels]
    assert len(levels) == 2 and pid.detail == "nr " + "/".join(str(u.nr) for u in nested.thread_pid.numbers)
    assert nested.cred is not None
    user_ns = graph.node_of(nested.cred.user_ns)
    assert user_ns is not graph.node_of(init.cred.user_ns if init.cred else None)
    assert [e.dst for e in graph.edges if e.src == user_ns.name] == [graph.node_of(k.init_user_ns).name]


def test_names_follow_first_appearance_and_dot_is_deterministic() -> None:
    first = build_picture_scenario("thread")
    again = build_picture_scenario("thread")
    g1 = sharing_graph(first.kernel, first.tasks)
    g2 = sharing_graph(again.kernel, again.tasks)
    assert sharing_dot(g1) == sharing_dot(g2) and sharing_text(g1) == sharing_text(g2)
    for kind in COUNT_FIELDS:
        names = [o.name for o in g1.objects if o.kind == kind]
        assert names == [f"{kind}#{i}" for i in range(1, len(names) + 1)]
    assert not re.search(r"0x[0-9a-f]{8,}", sharing_dot(g1)), "an address leaked into the DOT"


def test_dot_labels_show_each_objects_counts() -> None:
    s = build_picture_scenario("clone")
    graph = sharing_graph(s.kernel, s.tasks)
    labels = dot_labels(sharing_dot(graph))
    for node in graph.objects:
        shown = dict(re.findall(r"(\w+)=(\d+)", labels[node.name].replace("\\n", "\n")))
        assert {n: int(v) for n, v in shown.items()} == {n: getattr(node.obj, n) for n in COUNT_FIELDS[node.kind]}
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)" \[label="([^"]+)"\];$', sharing_dot(graph), re.M)
    assert edges == [(e.src, e.dst, e.field) for e in graph.edges]


def test_terminal_table_shows_the_same_pointers() -> None:
    s = build_picture_scenario("thread")
    graph = sharing_graph(s.kernel, s.tasks)
    rows = cells_by_row(sharing_text(graph, width=400))
    assert set(rows) >= {o.name for o in graph.objects}
    for node in graph.objects:
        cells = rows[node.name]
        assert cells[1] == node.counts_text() and int(cells[3]) == len(graph.edges_into(node.name))
        for column, tn in enumerate(graph.tasks, start=4):
            direct = [e.field for e in graph.edges_into(node.name) if e.src == tn.name]
            if direct:
                assert cells[column] == ", ".join(direct)
            else:
                assert bool(cells[column]) == (node.name in graph.reachable_from(tn.name))
    _init, child, thread = s.tasks
    mm = rows[graph.node_of(child.mm).name]
    assert mm[4:] == ["", "mm", "mm"] and graph.node_of(thread.mm) is graph.node_of(child.mm)


@needs_dot
def test_dot_renders_to_svg_naming_every_object() -> None:
    for name in SCENARIO_NAMES:
        s = build_picture_scenario(name)
        graph = sharing_graph(s.kernel, s.tasks)
        svg = svg_of(sharing_dot(graph, s.summary))
        titles = {el.text for el in svg.iter(f"{SVG}title")}
        assert titles >= {o.name for o in graph.objects} | {t.name for t in graph.tasks}, name


def test_missing_dot_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(GraphvizMissing, match=r"'dot'.*graphviz"):
        render_dot("digraph {}", "svg")
    with pytest.raises(ValueError, match="image format"):
        render_dot("digraph {}", "pdf")


def test_sharing_command_writes_dot_and_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s.dot"
    assert sharing_main(["--scenario", "clone", "-o", str(out)]) == 0
    s = build_picture_scenario("clone")
    assert out.read_text() == sharing_dot(sharing_graph(s.kernel, s.tasks), f"forklab: {s.summary}")
    assert sharing_main(["-o", str(tmp_path / "s.pdf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s.pdf" in err
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert sharing_main(["-o", str(tmp_path / "s.svg")]) == 2
    assert "'dot'" in capsys.readouterr().err and not (tmp_path / "s.svg").exists()
    with pytest.raises(SystemExit) as exc:
        sharing_main(["--scenario", "nope"])
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_bad_arguments() -> None:
    k = Kernel()
    with pytest.raises(TypeError):
        sharing_graph(k, [k.init_task, 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="twice"):
        sharing_graph(k, [k.init_task, k.init_task])
    with pytest.raises(ValueError, match="not held"):
        sharing_graph(k, [k.init_task]).node_of(object())
    with pytest.raises(ValueError, match="unknown scenario"):
        build_picture_scenario("nope")


# --- the copy-on-write map --------------------------------------------------------------------------


def forked(pages: int, written: range | tuple[int, ...]) -> tuple[Kernel, Task, Task, int, cowmap.CowMap]:
    """init maps ``pages`` private pages, writes ``written``, forks; the map right after the fork."""
    k = Kernel()
    init = k.init_task
    base = k.mmap(init, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    for i in written:
        k.store(init, base + i * PAGE_SIZE, b"p")
    child = k.find_task(k.fork(init))
    return k, init, child, base, cow_map(fork_baseline(init, child))


def assert_map_is_the_page_tables(k: Kernel, m: cowmap.CowMap) -> None:
    """Every page's pfns are what Kernel.translate says; equal pfns are shared or zero, and counts add up."""
    a, b = m.tasks
    for region in m.regions:
        for page in region.pages:
            assert page.pfns == (k.translate(a, page.addr), k.translate(b, page.addr))
            same = page.pfns[0] is not None and page.pfns[0] == page.pfns[1]
            assert same == (page.state in (PageState.SHARED, PageState.ZERO, PageState.MAPPED_SHARED))
        assert sum(region.counts().values()) == len(region.pages) == (region.end - region.start) // PAGE_SIZE


def test_after_fork_every_written_page_is_shared_read_only() -> None:
    k, _init, _child, _base, m = forked(8, range(6))
    assert_map_is_the_page_tables(k, m)
    assert m.counts()[PageState.SHARED] == 6 and m.counts()[PageState.ABSENT] == 2
    assert all(not any(p.writable) for p in m.pages_in(PageState.SHARED))
    assert all(k.page(p.pfns[0]).mapcount == 2 for p in m.pages_in(PageState.SHARED) if p.pfns[0] is not None)


def test_child_write_is_a_copy_and_the_parents_later_write_a_reuse() -> None:
    k = Kernel()
    init = k.init_task
    base = k.mmap(init, 0, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    for i in range(8):
        k.store(init, base + i * PAGE_SIZE, b"p")
    child = k.find_task(k.fork(init))
    baseline = fork_baseline(init, child)
    child_wrote, parent_wrote = (3, 5), (3, 6)
    for i in child_wrote:
        k.store(child, base + i * PAGE_SIZE, b"c")
    m = cow_map(baseline)
    page3 = m.page_at(base + 3 * PAGE_SIZE)
    assert page3.state is PageState.COPIED and page3.by == (child.pid,)
    assert page3.pfns[1] != page3.pfns[0] == page3.fork_pfn == k.translate(init, base + 3 * PAGE_SIZE)
    for i in parent_wrote:
        k.store(init, base + i * PAGE_SIZE, b"P")
    m = cow_map(baseline)
    assert_map_is_the_page_tables(k, m)
    reused = {(p.addr - base) // PAGE_SIZE for p in m.pages_in(PageState.REUSED)}
    assert reused == set(child_wrote) & set(parent_wrote)
    for p in m.pages_in(PageState.REUSED):
        assert p.by == (init.pid,) and p.pfns[0] == p.fork_pfn and p.writable[0]
        assert p.pfns[0] is not None and k.page(p.pfns[0]).mapcount == 1
    copied = {(p.addr - base) // PAGE_SIZE: p.by for p in m.pages_in(PageState.COPIED)}
    assert copied == {5: (child.pid,), 6: (init.pid,)}
    assert m.counts()[PageState.SHARED] == 8 - len(set(child_wrote) | set(parent_wrote))


def test_zero_shared_and_one_sided_pages() -> None:
    k = Kernel()
    init = k.init_task
    base = k.mmap(init, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    shm = k.mmap(init, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)
    k.store(init, base, b"a")
    k.load(init, base + PAGE_SIZE, 1)
    k.store(init, shm, b"s")
    child = k.find_task(k.fork(init))
    baseline = fork_baseline(init, child)
    k.load(child, shm, 1)
    k.store(child, base + 2 * PAGE_SIZE, b"n")
    k.store(child, base + PAGE_SIZE, b"z")
    m = cow_map(baseline)
    assert_map_is_the_page_tables(k, m)
    states = [p.state for p in m.regions[1].pages]
    assert states == [PageState.SHARED, PageState.COPIED, PageState.ONE_SIDE, PageState.ABSENT]
    assert [p.state for p in m.regions[0].pages] == [PageState.MAPPED_SHARED, PageState.ABSENT]
    assert m.regions[0].perms == "rw-s" and m.regions[1].perms == "rw-p"
    k.store(init, base + 3 * PAGE_SIZE, b"q")
    k.store(child, base + 3 * PAGE_SIZE, b"r")
    assert cow_map(baseline).page_at(base + 3 * PAGE_SIZE).state is PageState.PRIVATE


def test_write_after_the_child_exits_is_a_reuse() -> None:
    k, init, child, base, _m = forked(2, range(2))
    baseline = fork_baseline(init, child)
    k.exit(child, 0)
    k.wait4(init, child.pid)
    k.store(init, base, b"x")
    m = cow_map(baseline)
    assert [p.state for p in m.regions[0].pages] == [PageState.REUSED, PageState.ONE_SIDE]
    assert m.regions[0].pages[0].pfns == (k.translate(init, base), None) and child.mm is None


def test_shared_mm_has_no_cow_map() -> None:
    k = Kernel()
    thread = k.find_task(k.clone(k.init_task, THREAD))
    with pytest.raises(ValueError, match="share one mm"):
        fork_baseline(k.init_task, thread)
    with pytest.raises(TypeError):
        cow_map(k.init_task)  # type: ignore[arg-type]


def test_grid_text_shows_one_symbol_per_page_and_the_counts() -> None:
    s = build_picture_scenario("fork")
    assert s.cow is not None
    m = cow_map(s.cow)
    text = cow_grid_text(m)
    assert text == cow_grid_text(cow_map(build_picture_scenario("fork").cow or s.cow))
    for region in m.regions:
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{region.start:#x}-{region.end:#x}"))
        counts = dict(re.findall(r"  (\S) (\d+)", lines[at].split("pages", 1)[1]))
        assert counts == {LEGEND[st][0]: str(n) for st, n in region.counts().items() if n}
        grid = lines[at + 1].split()[1:]
        assert grid == [LEGEND[p.state][0] for p in region.pages]
    legend = {line.split()[0]: int(line.split()[1]) for line in text.splitlines()[2:2 + len(LEGEND)]
              if line.split() and line.split()[0] in {v[0] for v in LEGEND.values()}}
    assert legend == {LEGEND[st][0]: n for st, n in m.counts().items()}


@needs_dot
def test_cow_svg_has_one_cell_per_page_with_its_pfns() -> None:
    s = build_picture_scenario("fork")
    assert s.cow is not None
    m = cow_map(s.cow)
    svg = svg_of(cow_dot(m))
    tips = [a.get(XLINK_TITLE) for a in svg.iter(f"{SVG}a") if a.get(XLINK_TITLE)]
    pages = [p for r in m.regions for p in r.pages]
    assert len(tips) == len(pages)
    for page, tip in zip(pages, tips, strict=True):
        assert tip is not None and tip.startswith(f"{page.addr:#x} {page.state.value};")
        for pfn in page.pfns:
            assert (f"pfn {pfn}" in tip) == (pfn is not None)


def test_cowmap_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cow.txt"
    assert cowmap_main(["--scenario", "fork", "-o", str(out), "--pages"]) == 0
    s = build_picture_scenario("fork")
    assert s.cow is not None
    assert out.read_text() == cow_grid_text(cow_map(s.cow), pages=True)
    assert cowmap_main(["-o", str(tmp_path / "cow.jpeg")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@needs_dot
def test_doc_pictures_are_written(tmp_path: Path) -> None:
    written = write_doc_pictures(tmp_path, "fork")
    assert {p.name for p in written} >= {"sharing.svg", "cow.svg", "sharing.txt", "cow.txt"}
    for p in written:
        if p.suffix == ".svg":
            ET.fromstring(p.read_bytes())


def test_a_zombie_points_only_at_what_it_still_holds() -> None:
    k = Kernel()
    init = k.init_task
    child = k.find_task(k.fork(init))
    k.exit(child, 7)
    graph = sharing_graph(k, every_holder(k))
    assert_counts_are_edges(graph)
    for tn in graph.tasks:
        held = [f for f, _kind in sharing.TASK_POINTERS if getattr(tn.task, f) is not None]
        assert [e.field for e in graph.edges if e.src == tn.name] == held
        for e in graph.edges:
            if e.src == tn.name:
                assert graph.node_of(getattr(tn.task, e.field)).name == e.dst
    zombie = [e.field for e in graph.edges if e.src == f"task {child.pid}"]
    assert "mm" not in zombie and "signal" in zombie and child.mm is None


@needs_dot
def test_png_by_suffix(tmp_path: Path) -> None:
    out = tmp_path / "cow.png"
    assert cowmap_main(["-o", str(out)]) == 0 and sharing_main(["-o", str(tmp_path / "s.png")]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" == (tmp_path / "s.png").read_bytes()[:8]
