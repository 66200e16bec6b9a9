"""Every program in examples/ prints what its docstring says, under forklab.run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import forklab

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HELLO = str(EXAMPLES / "hello.py")

EXPECTED = {
    "fork_basics.py": b"child 3\nparent saw 7\n",
    "fork_fork_fork.py": b"".join(b"pid %d, parent %d\n" % pair for pair in
                                  [(2, 1), (3, 2), (4, 2), (5, 2), (6, 3), (7, 3), (8, 4), (9, 6)]),
    "zombie_orphan.py": b"zombie 3 exited with 3, still there\nreaped 3 (status 3), now gone\n"
                        b"orphan's parent is now 1\n",
    "pipe.py": b"child read: HELLO THROUGH THE PIPE\nchild exited 0\n",
    "fork_exec_wait.py": b"hello from hello, pid 3: one\n3 exited 0\nhello from hello, pid 4: two\n4 exited 0\n"
                         b"exec failed: 127\n",
    "vfork.py": b"child: stored 42, parent is asleep\nparent: woke up, reads 42\n",
    "sigchld_reaper.py": b"reaped [(3, 0), (4, 1), (5, 2)]\n",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_output(name: str) -> None:
    run = forklab.run(str(EXAMPLES / name), programs={"/bin/hello": HELLO})
    assert run.stdout == EXPECTED[name]
    assert (run.stderr, run.status) == (b"", 0)


@pytest.mark.parametrize("name", ["pipe.py", "zombie_orphan.py", "vfork.py", "sigchld_reaper.py"])
def test_example_output_under_other_seeds_has_the_same_lines(name: str) -> None:
    for seed in (1, 2, 3):
        run = forklab.run(str(EXAMPLES / name), seed=seed)
        assert sorted(run.stdout.splitlines()) == sorted(EXPECTED[name].splitlines())


def test_fork_fork_fork_prints_eight_distinct_processes_under_any_seed() -> None:
    for seed in range(6):
        run = forklab.run(str(EXAMPLES / "fork_fork_fork.py"), seed=seed)
        pids = [line.split(b",")[0] for line in run.stdout.splitlines()]
        assert len(pids) == len(set(pids)) == 8
        assert (run.stderr, run.status) == (b"", 0)


def test_the_fork_bomb_example_stops_with_eagain() -> None:
    run = forklab.run(str(EXAMPLES / "fork_bomb.py"), threads_max=64)
    assert run.status == 6 and len(run.crashes) == 63
    assert b"EAGAIN: threads-max (64) reached" in run.stderr


def test_examples_run_as_scripts() -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / "fork_basics.py")], capture_output=True, check=True,
                         env={"PYTHONPATH": str(EXAMPLES.parent)})
    assert out.stdout == EXPECTED["fork_basics.py"]


def test_every_example_has_a_test() -> None:
    tested = set(EXPECTED) | {"fork_bomb.py", "hello.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_no_example_creates_a_host_process_or_thread(monkeypatch) -> None:
    import os
    import threading

    def no_host(*args, **kwargs):
        raise AssertionError("forklab created a host process or thread")

    for name in ("fork", "vfork", "posix_spawn", "posix_spawnp", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, no_host)
    monkeypatch.setattr(subprocess, "Popen", no_host)
    monkeypatch.setattr(threading.Thread, "start", no_host)
    for name in sorted(EXPECTED):
        assert forklab.run(str(EXAMPLES / name), programs={"/bin/hello": HELLO}).stdout == EXPECTED[name]
    assert forklab.run(str(EXAMPLES / "fork_bomb.py"), threads_max=64).status == 6
