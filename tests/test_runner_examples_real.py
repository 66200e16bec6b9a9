"""Programs against the real kernel: every example that uses only Python's real ``os`` prints the same on the host.

Each such example runs twice: under ``forklab.run`` and as a real process tree here, with
the real ``os`` module passed as ``main``'s ``os``. The host run happens in a fresh pid
namespace whose pid 1 plays the runner's init (it forks the first process, pid 2, and reaps
every child until ECHILD), so pids, orphan adoption and the process tree match the model's
exactly, and the outputs are compared byte for byte (the only normalisation is for
``fork_fork_fork.py``, whose eight processes print in the host scheduler's order: there the
tree's shape is compared). stdout is line buffered on both sides, as the runner's print is.

An example qualifies when every ``os.X`` it names exists in the host's ``os`` module;
``HOST_UNFIT`` lists the ones that qualify but cannot run here, with the reason. The test
skips cleanly where the host has no fork or no new pid namespace (unshare(CLONE_NEWPID)
needs root or an unprivileged user namespace).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import forklab
from forklab.runner.programs import STANDARD_PROGRAMS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SKIP_STATUS = 77  # the harness could not make the pid namespace

HOST_UNFIT = {
    "fork_bomb.py": "a real fork bomb would exhaust this machine's process table",
    "fork_exec_wait.py": "it execs /bin/hello, which is installed only in the model",
    "hello.py": "an installed program (main(os, argv)), not a program of its own",
}

HARNESS = r"""
import ctypes, importlib.util, os, sys

CLONE_NEWPID = 0x20000000
path = sys.argv[1]
sys.stdout.reconfigure(line_buffering=True)
sys.stderr.reconfigure(line_buffering=True)
spec = importlib.util.spec_from_file_location("example", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(CLONE_NEWPID) != 0:
    sys.exit(77)


def first_process():
    code = 0
    try:
        result = module.main(os)
        code = result if isinstance(result, int) else 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def init():
    first = os.fork()
    if first == 0:
        first_process()
    status = 0
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        if pid == first:
            status = st
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


pid = os.fork()
if pid == 0:
    init()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def os_names(path: Path) -> set[str]:
    """Every attribute the example reads from a name ``os``."""
    tree = ast.parse(path.read_text())
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"}


def host_runnable() -> list[str]:
    """The examples that use only the host os module's names, less HOST_UNFIT."""
    names = []
    for path in sorted(EXAMPLES.glob("*.py")):
        if path.name not in HOST_UNFIT and all(hasattr(os, name) for name in os_names(path)):
            names.append(path.name)
    return names


def tree_shape(out: bytes) -> list[int]:
    """fork_fork_fork's lines ``pid P, parent Q`` as the sorted numbers of children of each printed process."""
    pairs = [tuple(int(x) for x in line.replace(b"pid ", b"").replace(b"parent ", b"").split(b", "))
             for line in out.splitlines()]
    pids = {pid for pid, _ in pairs}
    return sorted(sum(1 for _, parent in pairs if parent == pid) for pid in pids)


NORMALISE: dict[str, Callable[[bytes], object]] = {"fork_fork_fork.py": tree_shape}


def run_on_host(path: Path, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The example as a real process tree under a pid-namespace init; skips if the host cannot make one."""
    if not hasattr(os, "fork"):
        pytest.skip("the host has no fork")
    done = subprocess.run([sys.executable, "-c", HARNESS, str(path)], capture_output=True, cwd=cwd, timeout=120,
                          check=False)
    if done.returncode == SKIP_STATUS:
        pytest.skip("the host cannot make a new pid namespace (unshare(CLONE_NEWPID) failed)")
    return done


def test_the_host_runnable_examples_are_the_ones_expected() -> None:
    assert host_runnable() == ["fork_basics.py", "fork_fork_fork.py", "job_control.py", "pidfd_wait.py", "pipe.py",
                               "shared_offsets.py", "shell_pipeline.py", "zombie_orphan.py"]


def test_the_unfit_list_names_only_examples_that_exist() -> None:
    assert set(HOST_UNFIT) <= {p.name for p in EXAMPLES.glob("*.py")}


@pytest.mark.parametrize("name", host_runnable())
def test_example_prints_the_same_on_the_model_and_on_the_host(name: str, tmp_path: Path) -> None:
    path = EXAMPLES / name
    model = forklab.run(str(path), programs=STANDARD_PROGRAMS)
    host = run_on_host(path, tmp_path)
    assert host.returncode == 0 and host.stderr == b"", host.stderr.decode(errors="replace")
    assert (model.stderr, model.status) == (b"", 0)
    normalise = NORMALISE.get(name, lambda out: out)
    assert normalise(model.stdout) == normalise(host.stdout)
