"""``forklab run PROGRAM.py [--seed N] [--all-outcomes] [--max-runs N] [-- ARGS]``: output, status, and bad input."""

from __future__ import annotations

import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from forklab.cli import app, describe_status, shell_status

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ROOT = EXAMPLES.parent


def forklab_run(*args: str) -> Result:
    """``forklab run ARGS`` through typer's CliRunner."""
    return CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "200"})


def program(tmp_path: Path, body: str, name: str = "prog.py") -> str:
    """A program file holding ``body``."""
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed ``forklab run``; it must be status 2, one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.stderr


def test_run_prints_the_output_and_the_status_and_exits_with_it() -> None:
    result = forklab_run(str(EXAMPLES / "fork_basics.py"))
    assert result.exit_code == 0
    assert result.stdout == "child 3\nparent saw 7\n"
    assert result.stderr == "forklab run: fork_basics.py: exit status 0\n"


def test_the_exit_status_is_the_programs(tmp_path: Path) -> None:
    result = forklab_run(program(tmp_path, "def main(os):\n    os.write(1, b'bye\\n')\n    return 3\n"))
    assert (result.exit_code, result.stdout) == (3, "bye\n")
    assert result.stderr == "forklab run: prog.py: exit status 3\n"


def test_a_signal_death_exits_128_plus_the_signal(tmp_path: Path) -> None:
    result = forklab_run(program(tmp_path, "def main(os):\n    raise ValueError('boom')\n"))
    assert result.exit_code == 134
    assert "ValueError: boom" in result.stderr  # the program's own report, on its stderr
    assert result.stderr.endswith("forklab run: prog.py: killed by signal 6 (SIGABRT)\n")


def test_seed_and_program_arguments(tmp_path: Path) -> None:
    path = program(tmp_path, "def main(os):\n    print(os.argv)\n")
    result = forklab_run(path, "--seed", "7", "--", "a", "--seed", "b")
    assert (result.exit_code, result.stdout) == (0, "['prog', 'a', '--seed', 'b']\n")
    seeded = [forklab_run(str(EXAMPLES / "fork_fork_fork.py"), "--seed", str(seed)).stdout for seed in (0, 3)]
    assert seeded[0] != seeded[1] and sorted(seeded[0]) == sorted(seeded[1])


def test_the_standard_programs_are_installed(tmp_path: Path) -> None:
    path = program(tmp_path, "def main(os):\n    return os.WEXITSTATUS(os.system('echo hi | wc -c; exit 5'))\n")
    result = forklab_run(path)
    assert (result.exit_code, result.stdout) == (5, "3\n")


def test_a_program_named_like_a_standard_one_takes_its_path(tmp_path: Path) -> None:
    result = forklab_run(program(tmp_path, "def main(os):\n    os.write(1, b'my own cat\\n')\n", name="cat.py"))
    assert (result.exit_code, result.stdout) == (0, "my own cat\n")


@pytest.mark.parametrize(("args", "message"), [
    (["nosuch.py"], "forklab run: nosuch.py: no such program file\n"),
    (["."], "forklab run: .: not a file\n"),
    ([str(EXAMPLES / "fork_basics.py"), "--seed", "x"], "forklab run: --seed must be an integer, not 'x'\n"),
    ([str(EXAMPLES / "fork_basics.py"), "--seed", "1.5"], "forklab run: --seed must be an integer, not '1.5'\n"),
    ([str(EXAMPLES / "fork_basics.py"), "--max-runs", "0"], "forklab run: --max-runs must be at least 1, not 0\n"),
    ([str(EXAMPLES / "fork_basics.py"), "--max-runs", "many"],
     "forklab run: --max-runs must be an integer, not 'many'\n"),
])
def test_bad_input_is_one_line_and_status_2(args: list[str], message: str) -> None:
    assert one_line_error(forklab_run(*args)) == message


def test_a_program_without_main_or_that_does_not_compile(tmp_path: Path) -> None:
    no_main = program(tmp_path, "x = 1\n", name="nomain.py")
    assert one_line_error(forklab_run(no_main)) == (f"forklab run: {no_main} defines no main function: a forklab "
                                                    "program file needs def main(os)\n")
    broken = program(tmp_path, "def main(os):\n", name="broken.py")
    assert one_line_error(forklab_run(broken)).startswith(f"forklab run: program file '{broken}' does not compile: ")


def test_a_run_that_cannot_finish_is_one_line(tmp_path: Path) -> None:
    path = program(tmp_path, "def main(os):\n    r, w = os.pipe()\n    os.read(r, 1)\n")
    assert one_line_error(forklab_run(path)).startswith("forklab run: Deadlock: deadlock: every process sleeps")


def test_a_call_the_model_lacks_is_one_line(tmp_path: Path) -> None:
    path = program(tmp_path, "def main(os):\n    os.posix_spawn('/bin/true', ['true'], {}, resetids=True)\n")
    assert one_line_error(forklab_run(path)).startswith("forklab run: Unmodelled: os.getuid: the model kernel has no")


# --- --all-outcomes -------------------------------------------------------------------------------


@dataclass
class FakeOutcome:
    stdout: bytes
    status: int | None
    error: str | None = None


@dataclass
class FakeExploration:
    outcomes: list[FakeOutcome]
    runs: int
    complete: bool
    basis: str


def test_all_outcomes_lists_each_outcome_through_explore(monkeypatch: pytest.MonkeyPatch) -> None:
    """With an explore of the documented shape (outcomes with stdout and status, runs, complete, basis)."""
    calls = []

    def explore(program: str, max_runs: int, argv: list[str]) -> FakeExploration:
        calls.append((program, max_runs, argv))
        outcomes = [FakeOutcome(b"a\nb\n", 0), FakeOutcome(b"b\na\n", 1 << 8), FakeOutcome(b"", None, "deadlock")]
        return FakeExploration(outcomes, 6, True, "all schedules")

    module = types.ModuleType("forklab.runner.explore")
    module.explore = explore  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "forklab.runner.explore", module)
    path = str(EXAMPLES / "pipe.py")
    result = forklab_run(path, "--all-outcomes", "--max-runs", "50")
    assert calls == [(path, 50, ["pipe"])]
    assert result.exit_code == 0
    assert result.stdout == ("--- outcome 1 of 3: exit status 0\na\nb\n--- outcome 2 of 3: exit status 1\nb\na\n"
                             "--- outcome 3 of 3: no status: deadlock\n"
                             "--- 3 outcomes in 6 runs (complete: all schedules)\n")


def test_all_outcomes_with_the_real_explore() -> None:
    result = forklab_run(str(EXAMPLES / "pipe.py"), "--all-outcomes", "--max-runs", "100")
    assert result.exit_code == 0, result.output
    assert "child read: HELLO THROUGH THE PIPE" in result.stdout and "outcome" in result.stdout


# --- helpers and the console script ---------------------------------------------------------------


def test_status_helpers() -> None:
    assert [shell_status(s) for s in (0, 3 << 8, 9, 6)] == [0, 3, 137, 134]
    assert [describe_status(s) for s in (3 << 8, 9, 0x41)] == ["exit status 3", "killed by signal 9 (SIGKILL)",
                                                               "killed by signal 65 (signal 65)"]


def test_the_command_line_as_a_process_keeps_output_and_status_apart(tmp_path: Path) -> None:
    path = program(tmp_path, "import sys\ndef main(os):\n    print('out')\n    print('err', file=sys.stderr)\n"
                             "    return 4\n")
    done = subprocess.run([sys.executable, "-m", "forklab.cli", "run", path], capture_output=True, check=False,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 4
    assert done.stdout == b"out\n"
    assert done.stderr == b"err\nforklab run: prog.py: exit status 4\n"
    bad = subprocess.run([sys.executable, "-m", "forklab.cli", "run", path, "--seed", "zero"], capture_output=True,
                         check=False, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert (bad.returncode, bad.stdout, bad.stderr) == (2, b"", b"forklab run: --seed must be an integer, not 'zero'\n")
