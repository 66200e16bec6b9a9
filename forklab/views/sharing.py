"""The sharing diagram: which kernel objects a set of tasks hold, with each object's refcount as the model stores it.

``sharing_graph(k, tasks)`` walks the tasks' pointers (``mm``, ``files``, ``fs``, ``sighand``,
``signal``, ``real_cred``, ``cred``, ``nsproxy``, ``thread_pid``) and from there the objects'
own pointers (the namespaces of each nsproxy, each cred's user namespace, the signal's
tgid/pgid/sid pids, each pid's namespace per level, the parents of pid and user namespaces).
Objects are told apart by identity and named by kind in order of first appearance (``mm#1``,
``mm#2``), so the output never depends on memory addresses. Each node carries the counts the
model keeps (``mm_users``/``mm_count``, ``files->count``, ``fs->users`` ...), read at the moment
the graph is built; edges are the pointers themselves.

Renderings: ``sharing_dot`` (Graphviz DOT; ``dot`` makes SVG or PNG of it), and
``sharing_table`` / ``sharing_text`` for the terminal (objects x tasks: which pointer of each
task reaches each object, directly or through which other object).

    python -m forklab.views.sharing --scenario fork -o docs/img/sharing.svg
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from forklab.debug import live_tasks
from forklab.include.linux.cred import Cred
from forklab.include.linux.fdtable import FilesStruct
from forklab.include.linux.fs_struct import FsStruct
from forklab.include.linux.mm_types import MmStruct
from forklab.include.linux.nsproxy import Namespace, Nsproxy
from forklab.include.linux.pid import Pid, PidNamespace
from forklab.include.linux.sched import PIDTYPE, SignalStruct, Task
from forklab.include.linux.user_namespace import UserNamespace
from forklab.state import KernelState
from forklab.views.picture_graphviz import dot_quote, run_picture_command, write_picture
from forklab.views.picture_scenarios import SCENARIO_NAMES, build_picture_scenario, one_line_parser

# A task's pointers, in the order the diagram walks them, and the kind of object each reaches.
TASK_POINTERS: tuple[tuple[str, str], ...] = (
    ("mm", "mm"), ("files", "files"), ("fs", "fs"), ("sighand", "sighand"), ("signal", "signal"),
    ("real_cred", "cred"), ("cred", "cred"), ("nsproxy", "nsproxy"), ("thread_pid", "pid"),
)
# The namespaces of an nsproxy, under struct nsproxy's field names, and their kinds.
NSPROXY_POINTERS: tuple[tuple[str, str], ...] = (
    ("uts_ns", "uts_ns"), ("ipc_ns", "ipc_ns"), ("mnt_ns", "mnt_ns"), ("pid_ns_for_children", "pid_ns"),
    ("net_ns", "net_ns"), ("time_ns", "time_ns"), ("time_ns_for_children", "time_ns"), ("cgroup_ns", "cgroup_ns"),
)
# The reference counts each kind of object keeps, under the kernel's field names.
COUNT_FIELDS: dict[str, tuple[str, ...]] = {
    "mm": ("mm_users", "mm_count"), "files": ("count",), "fs": ("users",), "sighand": ("count",),
    "signal": ("nr_threads", "sigcnt"), "cred": ("usage",), "nsproxy": ("count",), "pid": ("count",),
    **{kind: ("count",) for _f, kind in NSPROXY_POINTERS}, "user_ns": ("count",),
}
SIGNAL_PID_TYPES = (PIDTYPE.PIDTYPE_TGID, PIDTYPE.PIDTYPE_PGID, PIDTYPE.PIDTYPE_SID)
# Node colours by kind (the DOT fill); namespaces share one.
KIND_COLOURS: dict[str, str] = {
    "task": "#cfe2f3", "mm": "#f4cccc", "files": "#fce5cd", "fs": "#fff2cc", "sighand": "#d9ead3",
    "signal": "#d0e0e3", "cred": "#ead1dc", "nsproxy": "#d9d2e9", "pid": "#eeeeee",
}
NAMESPACE_COLOUR = "#e6e0f8"
TEXT_WIDTH = 150


@dataclass(slots=True, frozen=True, eq=False)
class SharedObject:
    """One kernel object in the diagram: its stable name, kind, counts as stored, a short detail, the object."""

    name: str
    kind: str
    counts: tuple[tuple[str, int], ...]
    detail: str
    obj: object

    def count(self, field_name: str) -> int:
        """The value of one of this object's stored counts; ValueError for a field it does not have."""
        for name, value in self.counts:
            if name == field_name:
                return value
        raise ValueError(f"{self.name} has no count {field_name!r} (it has {', '.join(n for n, _ in self.counts)})")

    def counts_text(self) -> str:
        """The counts as ``mm_users=2 mm_count=1``."""
        return " ".join(f"{n}={v}" for n, v in self.counts)


@dataclass(slots=True, frozen=True, eq=False)
class TaskNode:
    """A task of the diagram, named ``task <pid>`` by its pid in the initial namespace."""

    name: str
    task: Task

    def label(self) -> str:
        """``task 3`` plus its comm and, for a thread, its thread group."""
        t = self.task
        group = "" if t.tgid == t.pid else f" (thread of {t.tgid})"
        return f"{self.name}{group}\n{t.comm}"


@dataclass(slots=True, frozen=True)
class Edge:
    """A pointer: from a task or object (``src``) to an object (``dst``), through the kernel field ``field``."""

    src: str
    dst: str
    field: str


@dataclass(slots=True, eq=False)
class SharingGraph:
    """The tasks, the objects they reach (in order of first appearance) and the pointers between them."""

    tasks: list[TaskNode] = field(default_factory=list)
    objects: list[SharedObject] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node_of(self, obj: object) -> SharedObject:
        """The diagram's node for ``obj`` (by identity); ValueError when the tasks do not reach it."""
        for node in self.objects:
            if node.obj is obj:
                return node
        raise ValueError(f"this {type(obj).__name__} is not held by any task in this diagram")

    def task_node(self, task: Task) -> TaskNode:
        """The node of ``task``; ValueError when it is not in the diagram."""
        for node in self.tasks:
            if node.task is task:
                return node
        raise ValueError(f"task {getattr(task, 'pid', '?')} is not in this diagram")

    def edges_into(self, name: str) -> list[Edge]:
        """Every pointer to the node called ``name``."""
        return [e for e in self.edges if e.dst == name]

    def reachable_from(self, name: str) -> set[str]:
        """The names of every object reachable from node ``name`` by following pointers."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            src = todo.pop()
            for e in self.edges:
                if e.src == src and e.dst not in seen:
                    seen.add(e.dst)
                    todo.append(e.dst)
        return seen


def _detail(obj: object) -> str:
    """A short, state-derived description of an object: its ids, inode number, level, numbers."""
    if isinstance(obj, MmStruct):
        return f"{len(obj.mmap)} vmas"
    if isinstance(obj, FilesStruct):
        return f"{len(obj.fdt.open_fds)} open fds"
    if isinstance(obj, FsStruct):
        return f"cwd {obj.pwd.dentry}"
    if isinstance(obj, Cred):
        return f"uid {obj.uid} euid {obj.euid}"
    if isinstance(obj, Pid):
        return "nr " + "/".join(str(u.nr) for u in obj.numbers)
    if isinstance(obj, (PidNamespace, UserNamespace)):
        return f"level {obj.level} [{obj.inum}]"
    if isinstance(obj, Namespace):
        return f"[{obj.inum}]"
    return ""


class _Builder:
    """Names objects by kind in order of first appearance and records every pointer once."""

    def __init__(self) -> None:
        """An empty graph, no object named yet."""
        self.graph = SharingGraph()
        self._by_identity: dict[int, SharedObject] = {}  # keyed by id() to test identity; never shown
        self._serial: dict[str, int] = {}
        self._todo: list[SharedObject] = []

    def point(self, src: str, field_name: str, kind: str, obj: object | None) -> None:
        """Record ``src --field--> obj``, naming ``obj`` on first sight; a None pointer is no edge."""
        if obj is None:
            return
        node = self._by_identity.get(id(obj))
        if node is None:
            self._serial[kind] = self._serial.get(kind, 0) + 1
            counts = tuple((f, int(getattr(obj, f))) for f in COUNT_FIELDS[kind])
            node = SharedObject(f"{kind}#{self._serial[kind]}", kind, counts, _detail(obj), obj)
            self._by_identity[id(obj)] = node
            self.graph.objects.append(node)
            self._todo.append(node)
        self.graph.edges.append(Edge(src, node.name, field_name))

    def follow_objects(self) -> None:
        """Walk the pointers of every object named so far, breadth first."""
        while self._todo:
            node = self._todo.pop(0)
            for field_name, kind, target in _object_pointers(node.obj):
                self.point(node.name, field_name, kind, target)


def _object_pointers(obj: object) -> list[tuple[str, str, object | None]]:
    """The pointers the diagram follows out of one object: (field, kind of target, target)."""
    if isinstance(obj, Nsproxy):
        return [(f, kind, getattr(obj, f)) for f, kind in NSPROXY_POINTERS]
    if isinstance(obj, Cred):
        return [("user_ns", "user_ns", obj.user_ns)]
    if isinstance(obj, SignalStruct):
        return [(f"pids[{t.name}]", "pid", obj.pids[t]) for t in SIGNAL_PID_TYPES]
    if isinstance(obj, Pid):
        return [(f"numbers[{i}]", "pid_ns", u.ns) for i, u in enumerate(obj.numbers)]
    if isinstance(obj, PidNamespace):
        return [("parent", "pid_ns", obj.parent)]
    if isinstance(obj, UserNamespace):
        return [("parent", "user_ns", obj.parent)]
    return []


def sharing_graph(k: KernelState, tasks: Sequence[Task] | None = None) -> SharingGraph:
    """The sharing diagram of ``tasks`` (default: every live task, the idle task excluded), from the state now."""
    chosen = live_tasks(k) if tasks is None else list(tasks)
    for t in chosen:
        if not isinstance(t, Task):
            raise TypeError(f"sharing_graph takes Tasks, not {type(t).__name__}")
    if len({id(t) for t in chosen}) != len(chosen):
        raise ValueError("a task is listed twice")
    b = _Builder()
    for t in chosen:
        node = TaskNode(f"task {t.pid}", t)
        if any(n.name == node.name for n in b.graph.tasks):
            raise ValueError(f"two tasks have pid {t.pid}")  # tasks of two kernels mixed up
        b.graph.tasks.append(node)
    for tn in b.graph.tasks:
        for field_name, kind in TASK_POINTERS:
            b.point(tn.name, field_name, kind, getattr(tn.task, field_name))
    b.follow_objects()
    return b.graph


# --- Graphviz ---------------------------------------------------------------------------------------


def _shared_by(graph: SharingGraph, name: str) -> int:
    """How many distinct tasks or objects point at node ``name``."""
    return len({e.src for e in graph.edges_into(name)})


def _object_dot(graph: SharingGraph, node: SharedObject) -> str:
    """One object's DOT node: its name, counts and detail, coloured by kind."""
    colour = KIND_COLOURS.get(node.kind, NAMESPACE_COLOUR)
    label = "\n".join(x for x in (node.name, node.counts_text(), node.detail) if x)
    width = "2" if _shared_by(graph, node.name) > 1 else "1"
    return (f"  {dot_quote(node.name)} [shape=box, style=filled, fillcolor={dot_quote(colour)}, "
            f"penwidth={width}, label={dot_quote(label)}];")


def sharing_dot(graph: SharingGraph, title: str = "") -> str:
    """The diagram as Graphviz DOT text: tasks on the left, one box per object with its counts, one arrow per pointer.

    An object pointed at from more than one place has a thick border. Deterministic: the same graph gives the
    same bytes.
    """
    lines = ["digraph sharing {",
             '  graph [rankdir=LR, fontname="Helvetica", fontsize=12, nodesep=0.2, ranksep=0.9'
             + (f", labelloc=t, label={dot_quote(title)}" if title else "") + "];",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8, color="#555555"];']
    for tn in graph.tasks:
        lines.append(f"  {dot_quote(tn.name)} [shape=box, style=\"rounded,filled\", "
                     f"fillcolor={dot_quote(KIND_COLOURS['task'])}, label={dot_quote(tn.label())}];")
    if graph.tasks:
        lines.append("  { rank=source; " + " ".join(dot_quote(t.name) + ";" for t in graph.tasks) + " }")
    lines.extend(_object_dot(graph, node) for node in graph.objects)
    lines.extend(f"  {dot_quote(e.src)} -> {dot_quote(e.dst)} [label={dot_quote(e.field)}];" for e in graph.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- terminal ---------------------------------------------------------------------------------------


def _cell(graph: SharingGraph, task: TaskNode, obj: SharedObject, reach: set[str]) -> str:
    """How ``task`` reaches ``obj``: its own pointer fields, or ``<object>.<field>`` it reaches it through; empty if not."""
    direct = [e.field for e in graph.edges_into(obj.name) if e.src == task.name]
    if direct:
        return ", ".join(direct)
    return ", ".join(f"{e.src}.{e.field}" for e in graph.edges_into(obj.name) if e.src in reach)


def sharing_table(graph: SharingGraph, title: str = "") -> Table:
    """A rich table of objects x tasks: each object's counts, the pointers into it, and how each task reaches it."""
    table = Table(title=title or None, show_lines=False, expand=False,
                  caption="a cell is the task's own pointer (mm) or the pointer it reaches the object through "
                          "(nsproxy#1.uts_ns); in: pointers into the object")
    table.add_column("object", no_wrap=True)
    table.add_column("counts", no_wrap=True)
    table.add_column("detail")
    table.add_column("in", justify="right")
    for tn in graph.tasks:
        table.add_column(tn.name.replace("task ", "pid "), overflow="fold")
    reach = {tn.name: graph.reachable_from(tn.name) for tn in graph.tasks}
    for obj in graph.objects:
        cells = [_cell(graph, tn, obj, reach[tn.name]) for tn in graph.tasks]
        table.add_row(obj.name, obj.counts_text(), obj.detail, str(len(graph.edges_into(obj.name))), *cells)
    return table


def sharing_text(graph: SharingGraph, title: str = "", width: int = TEXT_WIDTH) -> str:
    """The terminal rendering as plain text (no colour codes): the same table, captured."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(sharing_table(graph, title))
    return out.getvalue()


# --- command line -----------------------------------------------------------------------------------


def sharing_main(argv: Sequence[str] | None = None) -> int:
    """``python -m forklab.views.sharing --scenario NAME [-o FILE]``: print or write a built-in scenario's diagram."""
    parser = one_line_parser("python -m forklab.views.sharing",
                             "Draw the sharing diagram of a built-in scenario's tasks.")
    parser.add_argument("--scenario", default="fork", choices=SCENARIO_NAMES, help="which scenario (default fork)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="write FILE.svg / .png (needs Graphviz's dot), .dot or .txt; default: print the table")
    args = parser.parse_args(argv)
    return run_picture_command(parser.prog, lambda: _sharing_run(args))


def _sharing_run(args: argparse.Namespace) -> int:
    """Build the scenario's diagram and print it or write it to ``args.output``."""
    scenario = build_picture_scenario(args.scenario)
    graph = sharing_graph(scenario.kernel, scenario.tasks)
    title = f"forklab: {scenario.summary}"
    if args.output is None:
        Console().print(sharing_table(graph, title))
        return 0
    write_picture(args.output, sharing_dot(graph, title), sharing_text(graph, title))
    return 0


__all__ = ["Edge", "SharedObject", "SharingGraph", "TaskNode", "sharing_dot", "sharing_graph",
           "sharing_main", "sharing_table", "sharing_text"]

if __name__ == "__main__":
    sys.exit(sharing_main())
