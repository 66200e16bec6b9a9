"""forklab explain's new output, forklab trace, ps, pstree and run's views: computed from the model, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forklab import Kernel
from forklab.cli import app
from forklab.scenarios import SCENARIOS
from forklab.views.process_list import ps_elf, pstree_p

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_explain_takes_hex_flags_and_shows_the_child() -> None:
    code, out = invoke("explain", "clone", "0x111")  # CLONE_VM | SIGCHLD
    assert code == 0, out
    k = Kernel()
    caller = k.find_task(k.fork(k.init_task))
    pid = k.clone(caller, 0x111)
    child = k.find_task(pid)
    assert f"-> {pid}" in out
    assert f"child: pid {child.pid}, tgid {child.tgid}, parent {caller.pid}, exit_signal {child.exit_signal}" in out
    rows = [line for line in out.splitlines() if "child vs caller" in line and "│" in line]
    shared = {line.split("│")[2].strip(): line.split("│")[3].strip() for line in rows}
    assert shared["mm"] == "shared" and shared["files"] == "copied"
    assert (child.mm is caller.mm) and (child.files is not caller.files)


@pytest.mark.parametrize("fmt", ["graph", "strace", "json"])
def test_explain_trace_formats(fmt: str) -> None:
    code, out = invoke("explain", "fork", "--trace", fmt)
    assert code == 0, out
    assert "clone" in out or "fork" in out
    code, out = invoke("explain", "fork", "--trace", "nope")
    assert code == 2 and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_traces_in_every_format(name: str, tmp_path: Path) -> None:
    for fmt in ("graph", "strace", "json", "html"):
        out_file = tmp_path / f"{name}.{fmt}"
        code, out = invoke("trace", name, "--format", fmt, "-o", str(out_file))
        assert code == 0, out
        text = out_file.read_text()
        assert text
        if fmt == "json":
            events = json.loads(text)
            events = events["traceEvents"] if isinstance(events, dict) else events
            assert any(e.get("ph") == "X" for e in events)


def test_trace_bad_input_is_one_line() -> None:
    for args in (["trace", "nosuch"], ["trace", "fork", "--format", "svg"], ["trace", "missing.py"]):
        code, out = invoke(*args)
        assert code == 2 and len(out.strip().splitlines()) == 1, out


def test_trace_of_a_program_file_shows_its_fork_as_glibcs_clone() -> None:
    code, out = invoke("trace", str(EXAMPLES / "fork_basics.py"), "--format", "strace")
    assert code == 0, out
    assert "clone(" in out and "CLONE_CHILD_SETTID" in out


def test_ps_and_pstree_are_the_views_of_the_final_state() -> None:
    k = Kernel()
    SCENARIOS["thread"][0](k)
    code, out = invoke("ps", "thread")
    assert code == 0 and out == ps_elf(k)
    code, out = invoke("pstree", "thread")
    assert code == 0 and out == pstree_p(k)
    code, out = invoke("ps", "nosuch")
    assert code == 2


def test_run_pstree_and_proc_views(tmp_path: Path) -> None:
    code, out = invoke("run", str(EXAMPLES / "fork_fork_fork.py"), "--pstree")
    assert code == 0, out
    tree = out.split("at its fullest (", 1)[1]
    count = int(tree.split(" ", 1)[0])
    assert count >= 9  # init, the program and its 7 descendants were alive at once
    assert tree.count("(") >= count - 1
    code, out = invoke("run", str(EXAMPLES / "fork_basics.py"), "--proc", "3")
    assert "/proc/3/status at exit" in out and "Pid:\t3" in out
    trace_file = tmp_path / "run.json"
    code, out = invoke("run", str(EXAMPLES / "fork_basics.py"), "--trace", str(trace_file), "--strace")
    assert json.loads(trace_file.read_text())
    assert "+++ exited with" in out


def test_help_loads_no_kernel() -> None:
    """``forklab --help`` imports neither the kernel model nor numpy (what keeps it fast)."""
    code = ("import sys\nfrom forklab.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy', 'forklab.syscalls', 'greenlet') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_ps_and_pstree_at_the_fullest_moment() -> None:
    from forklab.cli import AtFullest

    k = Kernel()
    fullest = AtFullest(k, ps_elf)
    k.listeners.append(fullest)
    SCENARIOS["thread"][0](k)
    code, out = invoke("ps", "thread", "--when", "fullest")
    assert code == 0 and out == fullest.text
    rows = [line.split() for line in out.splitlines()[1:]]
    assert fullest.most == len(rows) and any(row[5] == "2" for row in rows)  # the thread group's NLWP was 2
    code, out = invoke("pstree", "newpid", "--when", "fullest")
    assert code == 0 and out.count("(") == 4  # init, the shell, the namespace's init and its child
    code, out = invoke("ps", "thread", "--when", "later")
    assert code == 2 and len(out.strip().splitlines()) == 1
