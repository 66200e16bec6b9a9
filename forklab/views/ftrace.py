"""The call tree as Linux 5.6's function_graph tracer prints it (``cat /sys/kernel/tracing/trace``).

The layout follows kernel/trace/trace_functions_graph.c with the tracer's default options
(funcgraph-cpu, funcgraph-overhead, funcgraph-duration; no proc, abstime or tail): the CPU
column `` 0) ``, the duration column with trace_output.c's overhead marks, two spaces of indent
per depth, ``name() {`` ... ``}`` with the duration on the closing line and ``name();`` for a
leaf. Decisions become trace_printk-style comments (``/* text */``) when ``comments`` is set,
and a change of task on a CPU prints the tracer's context-switch banner. Durations are the
trace's virtual clock (docs/model.md, "Trace time"). A syscall's root call is shown as its
entry symbol ``__x64_sys_<name>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from forklab.trace import Call, Decision, TraceSource, trace_roots

INDENT = 2  # spaces per depth
PROCINFO_LENGTH = 14  # the width of a "comm-pid" cell
COMM_SHOWN = 7  # the tracer cuts comm to 7 characters in that cell
NS_PER_US = 1000
# (threshold in ns, mark): a duration strictly above the threshold takes the mark, largest first.
OVERHEAD_MARKS = ((1_000_000_000, "$"), (100_000_000, "@"), (10_000_000, "*"), (1_000_000, "#"), (100_000, "!"),
                  (10_000, "+"))
HEADER = ("# tracer: function_graph\n"
          "#\n"
          "# CPU  DURATION                  FUNCTION CALLS\n"
          "# |     |   |                     |   |   |   |\n")
FILL_FULL = "              |  "  # the duration column of a line without a duration
BANNER_RULE = " ------------------------------------------\n"


def overhead_mark(dur_ns: int) -> str:
    """The overhead mark of a duration: ``+`` above 10 µs, ``!`` 100 µs, ``#`` 1 ms, ``*`` 10 ms, ``@`` 100 ms,
    ``$`` 1 s, else a space (trace_find_mark)."""
    for threshold, mark in OVERHEAD_MARKS:
        if dur_ns > threshold:
            return mark
    return " "


def duration_text(dur_ns: int) -> str:
    """µs with up to 7 digits in all, then `` us `` and padding to the column (trace_print_graph_duration)."""
    usecs = str(dur_ns // NS_PER_US)
    text = usecs
    if len(usecs) < 7:
        width = min(4, 8 - len(usecs)) - 1  # snprintf's size counts the terminating NUL
        nsecs = f"{dur_ns % NS_PER_US:03d}"[:width]
        text += "." + nsecs
    return text + " us " + " " * max(0, 8 - len(text))


def duration_cell(dur_ns: int) -> str:
    """The whole duration column of a line that has one: mark, duration, ``|  ``."""
    return f"{overhead_mark(dur_ns)} {duration_text(dur_ns)}|  "


def cpu_cell(cpu: int, nr_cpus: int) -> str:
    """`` 0) ``, the CPU number right-aligned to the width of the largest CPU id (print_graph_cpu)."""
    return f" {cpu:>{len(str(max(0, nr_cpus - 1)))}}) "


def proc_cell(comm: str, pid: int) -> str:
    """``comm-pid`` centred in 14 columns, comm cut to 7 characters (print_graph_proc)."""
    text = f"{comm[:COMM_SHOWN]}-{pid}"
    spaces = max(0, PROCINFO_LENGTH - len(text))
    return " " * (spaces // 2) + text + " " * (spaces - spaces // 2)


def symbol(call: Call) -> str:
    """The function's name as the tracer prints it: a syscall's root call is its ``__x64_sys_`` entry."""
    return f"__x64_sys_{call.name}" if call.kind == "syscall" else call.name


@dataclass(slots=True)
class _Printer:
    """The per-CPU state the tracer keeps while printing: the last pid and depth on each CPU."""

    nr_cpus: int
    comments: bool
    base: int = 0
    last_pid: dict[int, tuple[int, str]] = field(default_factory=dict)
    out: list[str] = field(default_factory=list)

    def prologue(self, call: Call) -> str:
        """The context-switch banner when ``call``'s task differs from the CPU's last one, then the CPU cell."""
        last = self.last_pid.get(call.cpu)
        self.last_pid[call.cpu] = (call.tid, call.comm)
        if last is not None and last[0] != call.tid:
            self.out.append(BANNER_RULE + cpu_cell(call.cpu, self.nr_cpus) + proc_cell(last[1], last[0]) + " => "
                            + proc_cell(call.comm, call.tid) + "\n" + BANNER_RULE + "\n")
        return cpu_cell(call.cpu, self.nr_cpus)

    def is_leaf(self, call: Call) -> bool:
        """Printed on one line: no nested call, and no comment to show inside it."""
        return not any(isinstance(c, Call) or self.comments for c in call.children)

    def print_call(self, call: Call) -> None:
        """One call: a leaf line, or its opening line, its children and its closing line."""
        depth = call.depth - self.base
        pad = " " * (depth * INDENT)
        if self.is_leaf(call):
            self.out.append(f"{self.prologue(call)}{duration_cell(call.dur)}{pad}{symbol(call)}();\n")
            return
        self.out.append(f"{self.prologue(call)}{FILL_FULL}{pad}{symbol(call)}() {{\n")
        for child in call.children:
            if isinstance(child, Call):
                self.print_call(child)
            elif self.comments:
                self.print_comment(call, child, depth)
        self.out.append(f"{self.prologue(call)}{duration_cell(call.dur)}{pad}}}\n")

    def print_comment(self, call: Call, d: Decision, depth: int) -> None:
        """A decision as a comment one level in; the tracer indents nothing at depth 0 (print_graph_comment)."""
        pad = " " * ((depth + 1) * INDENT) if depth > 0 else ""
        self.out.append(f"{self.prologue(call)}{FILL_FULL}{pad}/* {d.text} ({d.source}) */\n")


def graph_roots(calls: Iterable[Call], graph_function: str | None) -> Iterator[Call]:
    """The calls to print: all of them, or each outermost call of ``graph_function`` (set_graph_function)."""
    for call in calls:
        if graph_function is None or call.name == graph_function:
            yield call
        else:
            yield from graph_roots(call.calls, graph_function)


def function_graph(source: TraceSource, *, nr_cpus: int = 1, graph_function: str | None = None,
                   comments: bool = False, header: bool = True) -> str:
    """The function_graph text of a Recorder's calls (or of the given calls), each root at depth 0.

    ``graph_function`` keeps only that function's calls, as ``set_graph_function`` does;
    ``nr_cpus`` sets the CPU column's width; ``comments`` shows decisions as ``/* ... */``.
    """
    calls = [c for c in trace_roots(source) if isinstance(c, Call)]
    printer = _Printer(nr_cpus, comments)
    if header:
        printer.out.append(HEADER)
    for root in graph_roots(calls, graph_function):
        printer.base = root.depth
        printer.print_call(root)
    return "".join(printer.out)
