"""Every program in examples/ prints what its docstring says, under forklab.run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import forklab
from forklab.runner.programs import STANDARD_PROGRAMS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HELLO = str(EXAMPLES / "hello.py")
PROGRAMS = {**STANDARD_PROGRAMS, "/bin/hello": HELLO}

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
    "fork_bomb_nproc.py": b"fork failed with EAGAIN: uid 1000 has reached its RLIMIT_NPROC of 8\n"
                          b"the bomb made 8 processes in all\n",
    "subreaper.py": b"grandchild: orphaned, adopted by the subreaper\nsubreaper: reaped the middle process (status 0)\n"
                    b"subreaper: reaped the adopted grandchild (status 5)\n",
    "shell_pipeline.py": b"3\npipeline done: echo exited 0, cat exited 0, wc exited 0\n3\nsh -c exited 0\n",
    "shared_offsets.py": b"one open, shared by fork: b'child wrote this\\nparent\\n'\n"
                         b"two opens, one each:      b'PARENT\\nrote this\\n'\n",
    "threads_exit_group.py": b"threads: 2 new tids, all with the process's pid: True\n"
                             b"/proc/<pid>/status: Threads:\t3\n"
                             b"parent: the process exited with 3; its two threads, asleep in read, died with it\n",
    "pidfd_wait.py": b"child exited with 5, seen through its pidfd\n"
                     b"the pidfd named the child: True; si_code is CLD_EXITED: True\n"
                     b"after the wait, pidfd_open of its pid fails with ESRCH\n",
    "job_control.py": b"stopped: True, by signal 19 (SIGSTOP)\ncontinued: True\nexited: True, status 0\n",
    "container_init.py": b"container init: getpid() = 1, getppid() = 0\n"
                         b"orphan 3: re-parented to 1, the container's init\n"
                         b"container init: reaped [2, 3], then had no child left\n"
                         b"outside: the container's init is pid 3 here; it exited with 0\n",
    "cow_memory.py": b"child: stored 2 at the private page, reads 2\n"
                     b"parent: reads 1 at the same address: the child wrote to its own copy\n"
                     b"parent: reads 2 from the shared page: MAP_SHARED is not copied on write\n",
    "clear_sighand.py": b"fork child: SIGUSR1 handler kept: True\n"
                        b"clone3 child: SIGUSR1 is SIG_DFL: True, SIGUSR2 still SIG_IGN: True\n"
                        b"SIGUSR1 to the fork child: its handler ran and exited 7\n"
                        b"SIGUSR1 to the clone3 child: killed by signal 10, the default action\n",
}
SEED_INDEPENDENT = ["pipe.py", "zombie_orphan.py", "vfork.py", "sigchld_reaper.py", "fork_bomb_nproc.py", "subreaper.py",
                    "shell_pipeline.py", "shared_offsets.py", "threads_exit_group.py", "pidfd_wait.py",
                    "job_control.py", "container_init.py", "cow_memory.py", "clear_sighand.py"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_output(name: str) -> None:
    run = forklab.run(str(EXAMPLES / name), programs=PROGRAMS)
    assert run.stdout == EXPECTED[name]
    assert (run.stderr, run.status) == (b"", 0)


@pytest.mark.parametrize("name", SEED_INDEPENDENT)
def test_example_output_under_other_seeds_has_the_same_lines(name: str) -> None:
    for seed in (1, 2, 3):
        run = forklab.run(str(EXAMPLES / name), seed=seed, programs=PROGRAMS)
        assert sorted(run.stdout.splitlines()) == sorted(EXPECTED[name].splitlines())
        assert (run.stderr, run.status) == (b"", 0)


def docstring_output(name: str) -> bytes | None:
    """The indented block after ``$ python examples/NAME`` in the example's docstring, if it shows one."""
    doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()), clean=False) or ""
    lines = doc.splitlines()
    marker = f"$ python examples/{name}"
    starts = [i for i, line in enumerate(lines) if line.strip() == marker]
    if not starts:
        return None
    block = []
    for line in lines[starts[0] + 1:]:
        if not line.startswith("    "):
            break
        block.append(line[4:] + "\n")
    return "".join(block).encode()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_docstring_shows_the_output_the_test_expects(name: str) -> None:
    shown = docstring_output(name)
    if shown is None:
        assert name in {"fork_fork_fork.py", "zombie_orphan.py", "pipe.py", "fork_exec_wait.py", "vfork.py",
                        "sigchld_reaper.py"}, f"{name} must show its output after '$ python examples/{name}'"
        return
    assert shown == EXPECTED[name]


def test_there_are_at_least_14_classic_examples() -> None:
    assert len(EXPECTED) + 1 >= 14  # and fork_bomb.py, checked on its own


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
        assert forklab.run(str(EXAMPLES / name), programs=PROGRAMS).stdout == EXPECTED[name]
    assert forklab.run(str(EXAMPLES / "fork_bomb.py"), threads_max=64).status == 6
