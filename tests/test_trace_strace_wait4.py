"""wait4's rusage in the strace view: the two times when the caller passed a rusage (Kernel.wait4), NULL for
waitpid's NULL pointer, as strace printed them here for tests/data/trace/wait4_rusage.c."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from forklab import Kernel, Recorder
from forklab.views.strace import strace_lines

DATA = Path(__file__).parent / "data" / "trace"


def normalised(lines: list[str]) -> list[str]:
    """The wait4 lines, pids as PID, the times' microseconds as N, alignment to one space."""
    out = []
    for line in lines:
        if not line.startswith("wait4("):
            continue
        line = re.sub(r"^wait4\(\d+", "wait4(PID", line)
        line = re.sub(r"tv_usec=\d+", "tv_usec=N", re.sub(r"= \d+$", "= PID", line))
        out.append(re.sub(r"\) +=", ") =", line))
    return out


def model_run() -> tuple[list[str], list[object]]:
    """wait4_rusage.c's calls on the model: its lines without the pid column, and what each wait returned."""
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    rec = Recorder()
    k.listeners.append(rec)
    results: list[object] = []
    for wait, status in ((Kernel.wait4, 3), (Kernel.waitpid, 0)):
        child = k.find_task(k.fork(t))
        k.exit_group(child, status)
        results.append(wait(k, t, child.pid, 0))
    lines = [line[6:] for line in strace_lines(rec.roots) if line[6:].startswith("wait4(")]
    return lines, results


def test_the_model_prints_wait4s_rusage_as_strace_did() -> None:
    lines, _ = model_run()
    assert normalised(lines) == normalised((DATA / "strace_wait4_rusage.txt").read_text().splitlines())


def test_the_times_shown_are_the_reaped_childs_rusage() -> None:
    lines, (with_ru, _) = model_run()
    ru = with_ru.rusage  # type: ignore[attr-defined]
    assert ru.ru_stime.tv_usec > 0  # the child's syscalls charged it system time
    assert (f"{{ru_utime={{tv_sec={ru.ru_utime.tv_sec}, tv_usec={ru.ru_utime.tv_usec}}}, "
            f"ru_stime={{tv_sec={ru.ru_stime.tv_sec}, tv_usec={ru.ru_stime.tv_usec}}}, ...}}") in lines[0]
    assert ", 0, NULL) = " in lines[1]  # waitpid passed no rusage


@pytest.mark.skipif(shutil.which("strace") is None or shutil.which("cc") is None, reason="needs strace and cc")
def test_a_live_capture_agrees_with_the_stored_one(tmp_path: Path) -> None:
    exe = tmp_path / "wait4_rusage"
    subprocess.run(["cc", "-O0", "-o", str(exe), str(DATA / "wait4_rusage.c")], check=True, capture_output=True)
    out = tmp_path / "strace.txt"
    run = subprocess.run(["strace", "-o", str(out), "-e", "trace=wait4", str(exe)], capture_output=True, timeout=60)
    if run.returncode != 0 or not out.exists():
        pytest.skip(f"strace could not trace here: {run.stderr.decode(errors='replace').strip()[:200]}")
    stored = (DATA / "strace_wait4_rusage.txt").read_text().splitlines()
    assert normalised(out.read_text().splitlines()) == normalised(stored)
