"""One self-contained HTML page of a trace: the call tree, and the child's task_struct as copy_process fills it in.

The page works offline: its CSS and its few lines of JS are inline, and the only addresses in
it are the Elixir links of each function's citation (``elixir_link``). The call tree is nested
``<details>``/``<summary>`` elements, so it folds and unfolds without JS; the JS adds "expand
all"/"collapse all" and opens the node named in the URL fragment (``page.html#call-12``).

The child's task_struct. ``ChildWatcher`` is a trace listener, attached to ``k.listeners``
next to a ``Recorder``. On the exit event of copy_process and of each call made directly inside
it (``dup_task_struct``, ``copy_creds``, ``copy_files``, ... the steps of its ladder), it takes a
``ChildSnapshot``: a fixed list of the child's task_struct fields (``SNAPSHOT_SCALARS``,
``SNAPSHOT_TASK_LINKS``, ``SNAPSHOT_POINTERS``), each pointer said to be NULL, the parent's own
object (``shared``: the same object, by identity, as the parent's field) or another one
(``copied``), with the counts the model keeps on it. Objects are named by kind in order of
first appearance (``files#1``, ``files#2``), so the page never shows a memory address.

How the listener finds the child. The trace gives listeners snapshotted values, not objects,
so the watcher reads the tasks the way a debugger reads a stopped program: it walks the Python
stack (``sys._getframe``) out to the trace machinery's frame of the enclosing copy_process call
(``forklab.trace._traced_call`` with ``call`` being that Call), and reads the locals of the
copy_process frame just inside it: ``current`` (the parent) and ``p`` (the child). Before
``p`` is assigned, the child is what ``dup_task_struct`` just returned (its own frame's
``ret``); at copy_process's own exit it is copy_process's return value, or, when copy_process
failed, ``p`` in the frame the exception's traceback still holds, after the ``bad_fork_*``
ladder ran. It only reads (``frame.f_locals``): no kernel state, no local, no trace changes,
and the kernel needs no hook for it.

    rec, watcher = page_listeners(k)        # both appended to k.listeners
    k.clone(t, CLONE_FILES | SIGCHLD)
    page = trace_to_html(rec, watcher, "clone(CLONE_FILES)")
"""

from __future__ import annotations

import enum
import html
import inspect
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType

from forklab.include.linux.sched import Task, pf_str
from forklab.kernel.fork import copy_process
from forklab.kernel_map import CITATION
from forklab.state import KernelState, task_label
from forklab.trace import Call, Decision, Recorder, TraceEvent, _traced_call, arg_text
from forklab.views.sharing import COUNT_FIELDS, TASK_POINTERS

ELIXIR_SOURCE = "https://elixir.bootlin.com/linux/v5.6.14/source/"

# The child's task_struct fields the snapshot shows, under their kernel names, in struct order.
SNAPSHOT_SCALARS = ("pid", "tgid", "comm", "state", "flags", "exit_signal", "pdeath_signal", "prio", "policy",
                    "cpu", "set_child_tid", "clear_child_tid", "ptrace", "start_time", "parent_exec_id")
SNAPSHOT_TASK_LINKS = ("real_parent", "parent", "group_leader")
SNAPSHOT_POINTERS = ("mm", "active_mm", "files", "fs", "sighand", "signal", "cred", "real_cred", "nsproxy",
                     "thread_pid", "io_context", "sysvsem_undo_list", "vfork_done", "cgroups")

# The counts each pointer field's object keeps, under the kernel's field names (the sharing diagram's, plus
# the ones only the child's task_struct shows).
POINTER_COUNTS: dict[str, tuple[str, ...]] = {
    **{name: COUNT_FIELDS[kind] for name, kind in TASK_POINTERS},
    "active_mm": COUNT_FIELDS["mm"], "io_context": ("refcount", "nr_tasks"), "sysvsem_undo_list": ("refcnt",),
    "vfork_done": ("done",),
}
# The kind of object each pointer field reaches, which names it (``pid#2``); a field not listed names its own kind.
POINTER_KINDS: dict[str, str] = {**dict(TASK_POINTERS), "active_mm": "mm"}
# How a pointer of the child relates to the parent's field of the same name.
NULL = "NULL"
SHARED = "shared"  # the very object the parent's field points to
COPIED = "copied"  # another object than the parent's
ITSELF = "itself"  # a task link to the child itself
THE_PARENT = "the parent"  # a task link to the calling task itself
OTHER_TASK = "another task"

FORK_FUNCTION = "copy_process"
_COPY_PROCESS_CODE = inspect.unwrap(copy_process).__code__
_TRACED_CALL_CODE = _traced_call.__code__


def elixir_link(citation: str) -> str | None:
    """The Elixir address of a citation ``FILE:LINE`` or ``FILE:FIRST-LAST``: the file at its (first) line; a
    citation that names no line (``FILE:function (6.9)``) links to the file; None when it names no file."""
    m = CITATION.match(citation)
    if m is None:
        return None
    first = m.group(2).split("-", 1)[0]
    url = ELIXIR_SOURCE + m.group(1)
    return f"{url}#L{first}" if first.isdigit() else url


# --- the child's task_struct ----------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class FieldView:
    """One task_struct field of the child: its text, the parent's, how they relate, the counts of its object."""

    name: str
    value: str
    parent_value: str
    relation: str = ""  # "" for a plain value; NULL, SHARED, COPIED, ITSELF, THE_PARENT or OTHER_TASK otherwise
    counts: tuple[tuple[str, int], ...] = ()

    def counts_text(self) -> str:
        """The counts as ``count=2 users=1``, empty when the field keeps none."""
        return " ".join(f"{n}={v}" for n, v in self.counts)


@dataclass(slots=True, frozen=True, eq=False)
class ChildSnapshot:
    """The child's fields when ``step`` returned (a call inside copy_process, or copy_process itself); ``changed``
    names the fields that differ from the previous snapshot of the same fork (every field for the first)."""

    step: Call
    fork: Call
    child: str
    parent: str
    fields: tuple[FieldView, ...]
    changed: frozenset[str]

    def field(self, name: str) -> FieldView:
        """The view of field ``name``; ValueError for a field the snapshot does not show."""
        for f in self.fields:
            if f.name == name:
                return f
        raise ValueError(f"the snapshot shows no field {name!r}")


@dataclass(slots=True, eq=False)
class ObjectNames:
    """Stable names of kernel objects, by identity and kind in order of first appearance (``mm#1``); it keeps
    each named object alive so that no identity is reused while the names are in use."""

    names: dict[int, str] = field(default_factory=dict)
    held: list[object] = field(default_factory=list)
    per_kind: dict[str, int] = field(default_factory=dict)

    def name(self, obj: object, kind: str) -> str:
        """The name of ``obj``, giving it the next number of ``kind`` the first time it is seen."""
        known = self.names.get(id(obj))
        if known is not None:
            return known
        n = self.per_kind.get(kind, 0) + 1
        self.per_kind[kind] = n
        self.names[id(obj)] = f"{kind}#{n}"
        self.held.append(obj)
        return self.names[id(obj)]


def snapshot_scalar_text(name: str, value: object) -> str:
    """A scalar task_struct field as the page shows it: flags and flag enums by their names, others as the trace shows
    that argument name (signals by name, tid pointers in hex)."""
    if name == "flags" and type(value) is int:  # task->flags, a plain int of PF bits
        return pf_str(value)
    if isinstance(value, enum.Flag):
        return value.name or "0"
    if isinstance(value, bool | int | str | bytes) or value is None:
        return arg_text(name, value)
    return type(value).__name__


def task_link_view(name: str, child: Task, parent: Task) -> FieldView:
    """A task pointer of the child (real_parent, parent, group_leader) and how it relates to the parent."""
    mine, theirs = getattr(child, name), getattr(parent, name)
    text = NULL if mine is None else task_label(mine)
    if mine is None:
        relation = NULL
    elif mine is child:
        relation = ITSELF
    elif mine is theirs:
        relation = SHARED
    elif mine is parent:
        relation = THE_PARENT
    else:
        relation = OTHER_TASK
    return FieldView(name, text, NULL if theirs is None else task_label(theirs), relation)


def pointer_view(names: ObjectNames, name: str, child: Task, parent: Task) -> FieldView:
    """An object pointer of the child: its object's name and counts, NULL, shared or copied against the parent's."""
    theirs, mine = getattr(parent, name), getattr(child, name)
    kind = POINTER_KINDS.get(name, name)
    parent_text = NULL if theirs is None else names.name(theirs, kind)
    if mine is None:
        return FieldView(name, NULL, parent_text, NULL)
    counts = tuple((c, int(getattr(mine, c))) for c in POINTER_COUNTS.get(name, ()) if hasattr(mine, c))
    return FieldView(name, names.name(mine, kind), parent_text, SHARED if mine is theirs else COPIED, counts)


def child_fields(names: ObjectNames, child: Task, parent: Task) -> tuple[FieldView, ...]:
    """Every field the snapshot shows, read from the two task objects now."""
    scalars = tuple(FieldView(n, snapshot_scalar_text(n, getattr(child, n)), snapshot_scalar_text(n, getattr(parent, n)))
                    for n in SNAPSHOT_SCALARS)
    links = tuple(task_link_view(n, child, parent) for n in SNAPSHOT_TASK_LINKS)
    return scalars + links + tuple(pointer_view(names, n, child, parent) for n in SNAPSHOT_POINTERS)


def outward_frames(start: FrameType | None) -> Iterator[tuple[FrameType, FrameType | None]]:
    """Each frame from ``start`` outwards, with the frame it called (None for ``start``)."""
    inner: FrameType | None = None
    frame = start
    while frame is not None:
        yield frame, inner
        inner, frame = frame, frame.f_back


def traced_frames(call: Call, start: FrameType | None) -> tuple[FrameType, FrameType | None] | None:
    """The trace machinery's frame running ``call`` and the frame of the function it called, if still live."""
    for frame, inner in outward_frames(start):
        if frame.f_code is _TRACED_CALL_CODE and frame.f_locals.get("call") is call:
            return frame, inner
    return None


def failed_fork_frame(exc: BaseException) -> FrameType | None:
    """The copy_process frame a failed fork's traceback still holds, after its ladder unwound."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is _COPY_PROCESS_CODE:
            return tb.tb_frame
        tb = tb.tb_next
    return None


def fork_exit_tasks(running: FrameType) -> tuple[Task, Task] | None:
    """(child, parent) at copy_process's own exit, from the trace frame that ran it: its return value, or the
    failed frame's ``p``."""
    local = running.f_locals
    args = local.get("args")
    parent = args[1] if isinstance(args, tuple) and len(args) > 1 else None
    child = local.get("ret")
    exc = local.get("e")
    if not isinstance(child, Task) and isinstance(exc, BaseException):
        frame = failed_fork_frame(exc)
        child = None if frame is None else frame.f_locals.get("p")
    return (child, parent) if isinstance(child, Task) and isinstance(parent, Task) else None


def step_exit_tasks(step: Call, fork: Call, start: FrameType | None) -> tuple[Task, Task] | None:
    """(child, parent) when a step inside copy_process returns: copy_process's locals ``p`` and ``current``, or,
    before ``p`` is assigned, the task the step (dup_task_struct) returned."""
    found = traced_frames(fork, start)
    if found is None or found[1] is None or found[1].f_code is not _COPY_PROCESS_CODE:
        return None
    local = found[1].f_locals
    child = local.get("p")
    if not isinstance(child, Task):
        own = traced_frames(step, start)
        child = None if own is None else own[0].f_locals.get("ret")
    parent = local.get("current")
    return (child, parent) if isinstance(child, Task) and isinstance(parent, Task) else None


class ChildWatcher:
    """A trace listener: at the exit of copy_process and of each call directly inside it, a ChildSnapshot of the
    child against the parent (see the module docstring for how it finds them). ``snapshots`` are in order."""

    def __init__(self) -> None:
        self.snapshots: list[ChildSnapshot] = []
        self.names = ObjectNames()
        self._last: dict[int, ChildSnapshot] = {}

    def __call__(self, event: TraceEvent) -> None:
        call = event.node
        if event.ph != "E" or not isinstance(call, Call):
            return
        if call.name == FORK_FUNCTION:
            found = traced_frames(call, sys._getframe(1))
            tasks = None if found is None else fork_exit_tasks(found[0])
            fork = call
        elif call.parent is not None and call.parent.name == FORK_FUNCTION:
            fork = call.parent
            tasks = step_exit_tasks(call, fork, sys._getframe(1))
        else:
            return
        if tasks is not None:
            self.take(call, fork, *tasks)

    def take(self, step: Call, fork: Call, child: Task, parent: Task) -> ChildSnapshot:
        """Record the child's fields now, marking those that differ from this fork's previous snapshot."""
        fields = child_fields(self.names, child, parent)
        last = self._last.get(id(fork))
        before = {} if last is None else {f.name: f for f in last.fields}
        changed = frozenset(f.name for f in fields if before.get(f.name) != f)
        snap = ChildSnapshot(step, fork, task_label(child), task_label(parent), fields, changed)
        self._last[id(fork)] = snap
        self.snapshots.append(snap)
        return snap

    def of(self, step: Call) -> ChildSnapshot | None:
        """The snapshot taken when ``step`` returned, if any."""
        for snap in self.snapshots:
            if snap.step is step:
                return snap
        return None

    def of_fork(self, fork: Call) -> list[ChildSnapshot]:
        """Every snapshot of one copy_process call, in order (its own exit last)."""
        return [s for s in self.snapshots if s.fork is fork]


def page_listeners(k: KernelState) -> tuple[Recorder, ChildWatcher]:
    """A Recorder and a ChildWatcher, both appended to ``k.listeners`` (the caller removes them)."""
    rec, watcher = Recorder(), ChildWatcher()
    k.listeners.append(rec)
    k.listeners.append(watcher)
    return rec, watcher


# --- the page ---------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Section:
    """One part of a page: a title, a short narrative (plain text), the recorded root calls and their snapshots."""

    title: str
    narrative: str
    roots: Sequence[Call | Decision]
    snapshots: Sequence[ChildSnapshot] = ()


PAGE_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.2em; margin: 0; }
ul.tree { padding-left: 0; }
summary { cursor: pointer; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
p.legend { color: #555; max-width: 60em; }
p.child { margin: 0.2em 0 0.2em 1.2em; font-style: italic; color: #555; }
details.fields { margin-left: 1.2em; } details.fields > summary { font-family: inherit; color: #555; }
a.fn { font-weight: bold; color: #0645ad; } .syscall > summary a.fn { color: #8b0000; }
.args { color: #555; } .ret { color: #060; } .err { color: #b00; } .task { color: #888; }
.src, .anchor { color: #999; font-size: 0.85em; margin-left: 0.5em; }
li.decision { font-family: ui-monospace, monospace; color: #444; }
li.decision::before { content: "\\2022 "; color: #c60; }
.values { color: #777; }
table.snapshot, table.changes { border-collapse: collapse; margin: 0.3em 0 0.6em 1.2em; font-size: 0.9em; }
table.snapshot td, table.snapshot th, table.changes td, table.changes th { border: 1px solid #ddd; padding: 1px 6px; font-family: ui-monospace, monospace; }
tr.changed { background: #fff3b0; }
td.shared { color: #060; } td.copied { color: #a50; } td.NULL { color: #999; }
:target > summary { background: #dde8ff; }
"""

PAGE_LEGEND = (f"Each function links to its source line in Linux 5.6.14. Under each step of copy_process, the child's "
               f"task_struct fields as that step left them, the fields it changed first; a pointer is {SHARED} when it is "
               f"the parent's own object, {COPIED} when it is another object, {NULL} when it is not set.")

PAGE_SCRIPT = """
(function () {
  function setAll(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var node = id ? document.getElementById(id) : null;
    if (!node) { return; }
    for (var n = node; n; n = n.parentElement) {
      if (n.tagName === "DETAILS") { n.open = true; }
    }
    node.scrollIntoView();
  }
  document.getElementById("expand-all").addEventListener("click", function () { setAll(true); });
  document.getElementById("collapse-all").addEventListener("click", function () { setAll(false); });
  document.getElementById("controls").hidden = false;
  window.addEventListener("hashchange", reveal);
  reveal();
})();
"""


def esc(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def source_anchor(citation: str, text: str, cls: str) -> str:
    """``text`` as a link to the citation's Elixir address, or plain when the citation names no file."""
    url = elixir_link(citation)
    if url is None:
        return f'<span class="{cls}">{esc(text)}</span>'
    return f'<a class="{cls}" href="{esc(url)}" title="{esc(citation)}">{esc(text)}</a>'


@dataclass(slots=True, eq=False)
class PageWriter:
    """Writes one page: numbers the calls ``call-1``, ``call-2``, ... in order, so the same trace gives the same ids."""

    out: list[str] = field(default_factory=list)
    count: int = 0
    snapshots: dict[int, ChildSnapshot] = field(default_factory=dict)

    def section(self, number: int, section: Section) -> None:
        """A section's heading, narrative and call tree."""
        self.snapshots = {id(s.step): s for s in section.snapshots}
        self.out.append(f'<section id="section-{number}">')
        if section.title:
            self.out.append(f"<h2>{esc(section.title)}</h2>")
        if section.narrative:
            self.out.append(f'<p class="narrative">{esc(section.narrative)}</p>')
        self.out.append('<ul class="tree">')
        for node in section.roots:
            self.node(node, root=True)
        self.out.append("</ul></section>")

    def node(self, node: Call | Decision, root: bool = False) -> None:
        """A call as a folding list item, or a decision as a plain one."""
        if isinstance(node, Decision):
            self.decision(node)
        else:
            self.call(node, root)

    def decision(self, d: Decision) -> None:
        """A decision: its sentence, the values it read and its source link."""
        values = " ".join(f"{n}={arg_text(n, v)}" for n, v in d.values)
        shown = f' <span class="values">[{esc(values)}]</span>' if values else ""
        self.out.append(f'<li class="decision">{esc(d.text)}{shown}{source_anchor(d.source, d.source, "src")}</li>')

    def call(self, c: Call, root: bool) -> None:
        """A call: name (linked), arguments, outcome and task in the summary; children and snapshot inside."""
        self.count += 1
        ident = f"call-{self.count}"
        args = ", ".join(f"{n}={arg_text(n, v)}" for n, v in c.args)
        bad = c.errno is not None or bool(c.error)
        self.out.append(
            f'<li><details id="{ident}" class="call {esc(c.kind)}"{" open" if root else ""}><summary>'
            f'{source_anchor(c.source, c.name, "fn")}<span class="args">({esc(args)})</span> '
            f'<span class="{"err" if bad else "ret"}">{esc(c.outcome())}</span> '
            f'<span class="task">tid {c.tid}</span><span class="src">{esc(c.source)}</span>'
            f'<a class="anchor" href="#{ident}">#</a></summary>')
        if c.children:
            self.out.append("<ul>")
            for child in c.children:
                self.node(child)
            self.out.append("</ul>")
        snap = self.snapshots.get(id(c))
        if snap is not None:
            self.snapshot(snap)
        self.out.append("</details></li>")

    def snapshot(self, s: ChildSnapshot) -> None:
        """The child's fields after a step: the changed ones in view, every field in a folded table below."""
        changed = [f for f in s.fields if f.name in s.changed]
        self.out.append(f'<p class="child">the child {esc(s.child)} after {esc(s.step.name)} returned '
                        f'(parent {esc(s.parent)}): {len(changed)} field(s) changed</p>')
        if changed:
            self.out.append('<table class="changes">' + SNAPSHOT_HEADER)
            self.out.extend(snapshot_row(f, "changed", "data-change") for f in changed)
            self.out.append("</table>")
        self.out.append(f'<details class="fields"><summary>all {len(s.fields)} task_struct fields</summary>'
                        f'<table class="snapshot">{SNAPSHOT_HEADER}')
        self.out.extend(snapshot_row(f, "changed" if f.name in s.changed else "", "data-field") for f in s.fields)
        self.out.append("</table></details>")


SNAPSHOT_HEADER = "<tr><th>field</th><th>child</th><th>counts</th><th>vs parent</th><th>parent</th></tr>"


def snapshot_row(f: FieldView, cls: str, key: str) -> str:
    """One field's table row: name, child's value, counts, relation, parent's value; ``key`` names the field."""
    mark = f' class="{cls}"' if cls else ""
    return (f'<tr{mark} {key}="{esc(f.name)}"><td>{esc(f.name)}</td><td>{esc(f.value)}</td>'
            f'<td>{esc(f.counts_text())}</td><td class="{esc(f.relation)}">{esc(f.relation)}</td>'
            f'<td>{esc(f.parent_value)}</td></tr>')


def render_page(title: str, sections: Sequence[Section]) -> str:
    """The whole page: inline style, the sections in order, the inline script; same inputs, same bytes."""
    w = PageWriter()
    w.out.append(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
                 f"<style>{PAGE_STYLE}</style></head><body><h1>{esc(title)}</h1>"
                 '<p id="controls" hidden><button type="button" id="expand-all">expand all</button> '
                 '<button type="button" id="collapse-all">collapse all</button></p>'
                 f'<p class="legend">{esc(PAGE_LEGEND)}</p>')
    for number, section in enumerate(sections, 1):
        w.section(number, section)
    w.out.append(f"<script>{PAGE_SCRIPT}</script></body></html>\n")
    return "\n".join(w.out)


def trace_to_html(rec: Recorder, watcher: ChildWatcher | None = None, title: str = "forklab trace",
                  narrative: str = "") -> str:
    """A page of one recorded trace: the Recorder's call tree, with the watcher's snapshots under their steps."""
    snaps: Sequence[ChildSnapshot] = () if watcher is None else watcher.snapshots
    return render_page(title, [Section("", narrative, rec.roots, snaps)])

