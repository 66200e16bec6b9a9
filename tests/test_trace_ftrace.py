"""function_graph text: the layout of Linux 5.6's tracer, checked against the examples of its documentation
(tests/data/trace/README.md says why not a live capture), and the model's own fork rendered in it."""

from __future__ import annotations

import re
from pathlib import Path

from forklab import Kernel, Recorder
from forklab.trace import Call
from forklab.views.ftrace import duration_cell, function_graph, overhead_mark, proc_cell

DATA = Path(__file__).parent / "data" / "trace"
LINE = re.compile(r"^ ?(\d+)\) (.) (?:(\d+(?:\.\d+)?) us +|  +)\|  ( *)(.*)$")


def duration_ns(text: str) -> int:
    """The ns a duration cell stands for, to the precision it shows."""
    if "." not in text:
        return int(text) * 1000
    whole, frac = text.split(".")
    return int(whole) * 1000 + int(frac.ljust(3, "0"))


def reference_lines(name: str) -> list[str]:
    return [line for line in (DATA / name).read_text().splitlines() if not line.startswith("#")]


def parse_graph(lines: list[str]) -> list[Call]:
    """Rebuild calls from function_graph lines (leaf, opening and closing lines), as Call objects at depth 0.."""
    roots: list[Call] = []
    stack: list[Call] = []
    for line in lines:
        m = LINE.match(line)
        assert m, line
        cpu, _, dur, pad, text = m.groups()
        depth = len(pad) // 2
        if text.endswith("() {"):
            call = Call(text[:-4], "", 0, depth, 0, (), cpu=int(cpu), parent=stack[-1] if stack else None)
            (stack[-1].children if stack else roots).append(call)
            stack.append(call)
        elif text.endswith("();"):
            assert dur is not None
            leaf = Call(text[:-3], "", 0, depth, 0, (), cpu=int(cpu), end=duration_ns(dur))
            (stack[-1].children if stack else roots).append(leaf)
        else:
            assert text.startswith("}") and dur is not None
            stack.pop().end = duration_ns(dur)
    return roots


def test_the_header_is_the_tracers() -> None:
    header = [line for line in (DATA / "function_graph_example.txt").read_text().splitlines() if line.startswith("#")]
    assert function_graph([]).splitlines() == header


def test_every_duration_cell_of_the_documentation_is_reproduced() -> None:
    """Mark, µs with up to 7 digits, padding and the bar, for all thresholds from none to '$'."""
    cells = []
    for name in ("function_graph_example.txt", "function_graph_overhead.txt"):
        for line in reference_lines(name):
            m = re.match(r"^ ?\d+\) (. \d+(?:\.\d+)? us +\|  )", line)
            if m:
                cells.append(m.group(1))
    marks = {c[0] for c in cells}
    assert marks == {" ", "+", "!", "#", "*", "@", "$"}
    for cell in cells:
        text = cell[2:].split(" us")[0]
        assert duration_cell(duration_ns(text)) == cell, cell


def test_marks_are_strictly_above_their_thresholds() -> None:
    assert [overhead_mark(ns) for ns in (10_000, 10_001, 100_001, 1_000_001, 10_000_001, 100_000_001,
                                         1_000_000_001)] == [" ", "+", "!", "#", "*", "@", "$"]


def test_the_documented_sys_open_graph_is_reproduced_line_for_line() -> None:
    """Parse the example into calls and print them again: same bytes. The example stops inside alloc_fd, so the
    lines the renderer adds after it (the closing braces) are not compared."""
    lines = reference_lines("function_graph_example.txt")
    roots = parse_graph([*lines, " 0)   9.000 us    |      }", " 0)   9.500 us    |    }", " 0)   9.900 us    |  }"])
    for c in roots[0].walk():
        c.end = (c.end or 0) + c.ts
    printed = function_graph(roots, header=False).splitlines()
    assert printed[:len(lines)] == lines


def test_a_model_fork_under_set_graph_function_do_fork() -> None:
    k = Kernel(nr_cpus=2)
    rec = Recorder()
    k.listeners.append(rec)
    pid = k.fork(k.init_task)
    text = function_graph(rec.calls, nr_cpus=2, graph_function="_do_fork")
    body = text.splitlines()[4:]
    assert body[0] == " 0)               |  _do_fork() {"
    assert body[1] == " 0)               |    copy_process() {"
    [do_fork] = rec.find("_do_fork")
    assert body[-1] == " 0) " + duration_cell(do_fork.dur) + "}"
    assert len(body) == sum(1 if not c.calls else 2 for c in do_fork.walk())
    for line in body:
        assert LINE.match(line), line
    leaves = [c for c in do_fork.walk() if not c.calls]
    for leaf in leaves:
        assert f"{duration_cell(leaf.dur)}{' ' * 2 * (leaf.depth - do_fork.depth)}{leaf.name}();" in text
    assert rec.find("wake_up_new_task")[0].arg("p") == f"init-{pid}"


def test_comments_and_the_context_switch_banner() -> None:
    """Decisions are /* comments */ one level in, and a change of task on a CPU prints the tracer's banner."""
    k = Kernel(nr_cpus=1)
    pid = k.fork(k.init_task)
    rec = Recorder()
    k.listeners.append(rec)
    k.exit(k.find_task(pid), 0)
    k.wait4(k.init_task, pid, 0)
    text = function_graph(rec.calls, comments=True)
    banner = (" ------------------------------------------\n 0) " + proc_cell("init", pid) + " => "
              + proc_cell("init", 1) + "\n ------------------------------------------\n\n")
    assert banner in text and text.count("=>") == 1
    [zombie] = rec.find("wait_task_zombie")
    depth = zombie.depth
    for d in zombie.decisions:
        assert f"|  {' ' * 2 * (depth + 1)}/* {d.text} ({d.source}) */\n" in text
    assert proc_cell("bash", 1234) == "  bash-1234   " and proc_cell("kworker/0:1", 7) == "  kworker-7   "


def test_a_plain_fork_crosses_the_plus_mark_as_docs_model_md_says() -> None:
    """docs/model.md, "Trace time": a plain fork's _do_fork lasts just over 10 us of trace time, so it shows '+'."""
    k = Kernel()
    rec = Recorder()
    k.listeners.append(rec)
    k.fork(k.init_task)
    [do_fork] = rec.find("_do_fork")
    assert 10_000 < do_fork.dur < 20_000
    assert function_graph(rec, graph_function="_do_fork").splitlines()[-1].startswith(" 0) + ")
