"""The benchmark suite runs: each benchmark's --quick mode, bad arguments, the runner script.

Every benchmark's --quick mode runs in a subprocess (all of them at once, to keep the suite
fast), with its results file redirected to a temporary directory (FORKLAB_BENCH_RESULTS). No
timing is asserted: only that each run succeeds, prints the model/real ratio and records what
it printed. Bad arguments are tried in this process (each benchmark's ``main`` with a patched
argv): one line on stderr and exit status 2, nothing recorded. Where ``cc`` is missing, the
benchmarks skip their real side themselves (tested with an empty PATH).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
NAMES = sorted(p.stem.removeprefix("bench_") for p in BENCH.glob("bench_*.py"))
RATIO = {"runner": "model/C", "trace_overhead": "ratio traced/untraced"}

BAD_ARGS = [
    ("fork_big", ["--sizes", "0"]),
    ("fork_big", ["--rounds", "0"]),
    ("exit_big", ["--mib", "0"]),
    ("cow_storm", ["--sizes", "0"]),
    ("cow_storm", ["--sizes", ","]),
    ("cycle", ["--rounds", "0"]),
    ("vfork_growth", ["--sizes", "64,0"]),
    ("vfork_growth", ["--rounds", "x"]),
    ("task_memory", ["--tasks", "0"]),
    ("million", ["--tasks", "0"]),
    ("million", ["--tasks", "5000000"]),
    ("startup", ["--rounds", "-1"]),
    ("trace_overhead", ["--rounds", "0"]),
    ("runner", ["--spawn", "0"]),
]


@dataclass(frozen=True)
class Run:
    """One finished benchmark process."""

    returncode: int
    stdout: str
    stderr: str
    results: Path


def _start(argv: list[str], results: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Path]:
    env = dict(env if env is not None else os.environ, FORKLAB_BENCH_RESULTS=str(results))
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    return proc, results


def _finish(started: dict[str, tuple[subprocess.Popen[str], Path]]) -> dict[str, Run]:
    runs = {}
    for key, (proc, results) in started.items():
        out, err = proc.communicate(timeout=300)
        runs[key] = Run(proc.returncode, out, err, results)
    return runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every benchmark with --quick, every bad argument, and the cycle without a compiler, run concurrently."""
    tmp = tmp_path_factory.mktemp("bench")
    started = {name: _start([str(BENCH / f"bench_{name}.py"), "--quick"], tmp / f"{name}.md") for name in NAMES}
    no_cc = dict(os.environ, PATH=str(tmp / "empty"))
    started["no_cc"] = _start([str(BENCH / "bench_cycle.py"), "--quick"], tmp / "no_cc.md", no_cc)
    yield _finish(started)


def test_every_row_of_the_table_has_a_benchmark() -> None:
    """Issue 9's benchmarks 1-10 (8 is the runner's, 9 the trace overhead)."""
    assert {"fork_big", "exit_big", "cow_storm", "cycle", "vfork_growth", "task_memory", "million", "runner",
            "trace_overhead", "startup"} <= set(NAMES)
    assert "fork" not in NAMES  # the old benchmark that forked this Python process as the real side


@pytest.mark.parametrize("name", NAMES)
def test_quick_run_prints_and_records_a_ratio(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert run.returncode == 0, run.stderr
    marker = RATIO.get(name, "ratio model/real")
    printed = [line for line in run.stdout.splitlines() if marker in line]
    assert printed, run.stdout
    recorded = run.results.read_text().splitlines()
    assert len(recorded) >= len(printed)
    for line in printed:
        assert any(line in entry for entry in recorded), line  # each printed result is in the results file
    if shutil.which("cc"):  # with a compiler the real side runs (its value may be anything: no timing is checked)
        assert not any("real skipped" in line for line in printed), run.stdout


@pytest.mark.parametrize(("name", "args"), BAD_ARGS)
def test_bad_arguments_exit_2_with_one_line(name: str, args: list[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    module = importlib.import_module(f"bench_{name}")
    harness = importlib.import_module("harness")
    monkeypatch.setattr(harness, "RESULTS", tmp_path / "results.md")
    monkeypatch.setattr(sys, "argv", [f"bench_{name}.py", *args])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], err
    assert not (tmp_path / "results.md").exists()  # nothing recorded


def test_without_a_compiler_the_real_side_is_skipped(runs: dict[str, Run]) -> None:
    run = runs["no_cc"]
    assert run.returncode == 0, run.stderr
    assert "no C compiler" in run.stdout
    assert "ratio model/real n/a" in run.stdout
    assert "real skipped" in run.stdout


def test_bench_script_refuses_an_unknown_name() -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "bench"), "no_such_benchmark"], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert "no benchmark named 'no_such_benchmark'" in proc.stderr
