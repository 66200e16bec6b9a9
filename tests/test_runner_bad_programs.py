"""Bad programs: an exception kills only its process with SIGABRT; budgets stop endless runs; fork bombs hit EAGAIN."""

from __future__ import annotations

import os as host_os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import forklab
from forklab.runner import BudgetExceeded, ProgramError, ScheduleMismatch

ROOT = Path(__file__).resolve().parent.parent


def test_an_exception_kills_only_its_process_with_sigabrt_and_a_report() -> None:
    def main(os):
        pid = os.fork()
        if pid == 0:
            {}["missing"]
        _, status = os.waitpid(pid, 0)
        os.write(1, b"signaled %d sig %d\n" % (os.WIFSIGNALED(status), os.WTERMSIG(status)))

    run = forklab.run(main)
    assert run.stdout == b"signaled 1 sig 6\n"
    assert run.status == 0
    report = run.stderr.decode()
    assert report.startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in report and "test_runner_bad_programs.py" in report
    assert "forklab/runner" not in report  # the runner's frames are left out
    assert "pid 3 (main): uncaught KeyError: abort() (SIGABRT)" in report
    assert [(c.pid, c.comm) for c in run.crashes] == [(3, "main")]


def test_the_first_process_dying_of_an_exception_is_the_runs_status() -> None:
    def main(os):
        raise RuntimeError("boom")

    run = forklab.run(main)
    assert run.status == 6 and b"RuntimeError: boom" in run.stderr


def test_a_sigabrt_handler_runs_and_abort_still_kills() -> None:
    def main(os):
        os.signal(os.SIGABRT, lambda sig, frame: os.write(1, b"abort handler\n"))
        raise ValueError("x")

    run = forklab.run(main)
    assert run.stdout == b"abort handler\n" and run.status == 6


def test_the_step_budget_stops_a_program_that_never_ends() -> None:
    def main(os):
        while True:
            os.getpid()

    with pytest.raises(BudgetExceeded, match="step budget of 500 live calls"):
        forklab.run(main, max_steps=500)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGALRM needs the main thread")
def test_the_wall_clock_budget_stops_a_program_that_makes_no_calls() -> None:
    def main(os):
        while True:
            pass

    with pytest.raises(BudgetExceeded, match=r"wall-clock budget of 0.2 s .*pid 2 \(main\)"):
        forklab.run(main, timeout=0.2)


def bomb(os):
    while True:
        os.fork()


def test_a_fork_bomb_ends_with_eagain_at_the_kernels_threads_max(monkeypatch) -> None:
    def no_host(*args, **kwargs):
        raise AssertionError("forklab created a host process or thread")

    monkeypatch.setattr(host_os, "fork", no_host)
    monkeypatch.setattr(host_os, "posix_spawn", no_host)
    monkeypatch.setattr(threading.Thread, "start", no_host)
    run = forklab.run(bomb, threads_max=128)
    assert run.status == 6
    assert b"BlockingIOError: [Errno 11] EAGAIN: threads-max (128) reached" in run.stderr
    assert len(run.crashes) == 127  # every process but init died of its EAGAIN
    assert [t.pid for t in run.kernel.tasks] == [1]


def test_the_default_fork_bomb_fits_in_200_mib() -> None:
    code = ("import resource, forklab\n"
            "r = forklab.run('examples/fork_bomb.py')\n"
            "print(len(r.crashes), r.status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**host_os.environ, "PYTHONPATH": str(ROOT)})
    crashes, status, maxrss_kib = map(int, out.stdout.split())
    assert crashes == 1023 and status == 6
    assert maxrss_kib < 200 * 1024


def test_misuse_is_a_type_or_value_error() -> None:
    with pytest.raises(TypeError, match="callable or a path"):
        forklab.run(42)
    with pytest.raises(ValueError, match="absolute"):
        forklab.run(lambda os: 0, programs={"hello": lambda os, argv: 0})
    with pytest.raises(TypeError, match="schedule"):
        forklab.run(lambda os: 0, schedule="1,2")
    with pytest.raises(ValueError, match="max_steps"):
        forklab.run(lambda os: 0, max_steps=0)
    with pytest.raises(TypeError, match="stdin"):
        forklab.run(lambda os: 0, stdin="text")
    with pytest.raises(ValueError, match="cannot read"):
        forklab.run("/nonexistent/prog.py")


def test_a_program_file_without_main_is_a_program_error(tmp_path) -> None:
    prog = tmp_path / "nomain.py"
    prog.write_text("x = 1\n")
    with pytest.raises(ProgramError, match="defines no main"):
        forklab.run(str(prog))


def test_a_syscall_misuse_inside_a_program_is_pythons_type_error() -> None:
    def main(os):
        try:
            os.write(1, "text")
        except TypeError as e:
            os.write(1, b"TypeError: %s\n" % str(e).encode())

    assert forklab.run(main).stdout == b"TypeError: data must be bytes\n"


def test_a_schedule_that_does_not_fit_is_a_schedule_mismatch() -> None:
    with pytest.raises(ScheduleMismatch, match="decision 0 runs task 7"):
        forklab.run(lambda os: 0, schedule=[7])


def test_a_call_the_model_lacks_ends_the_run_with_unmodelled() -> None:
    def main(os):
        os.posix_spawn("/bin/true", ["true"], {}, resetids=True)  # POSIX_SPAWN_RESETIDS needs getuid

    with pytest.raises(forklab.Unmodelled, match="getuid"):
        forklab.run(main)


def test_abort_in_a_namespace_init_dies_of_the_hlt_sigsegv_as_glibcs_does() -> None:
    """A pid namespace's init ignores its own SIGABRT (SIGNAL_UNKILLABLE); glibc's abort then executes hlt, whose
    general protection fault the kernel answers with force_sig(SIGSEGV), which kills even an init
    (arch/x86/kernel/traps.c:517, kernel/signal.c force_sig_info_to_task)."""

    def main(os):
        os.unshare(os.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            os.abort()
        _, status = os.waitpid(pid, 0)
        os.write(1, b"%d %d\n" % (os.WIFSIGNALED(status), os.WTERMSIG(status)))

    rec = forklab.Recorder()
    run = forklab.run(main, trace=rec)
    assert run.stdout == b"1 11\n"
    assert "do_general_protection" in rec.kinds()


def test_abort_elsewhere_dies_of_sigabrt_before_the_hlt() -> None:
    def main(os):
        pid = os.fork()
        if pid == 0:
            os.abort()
        _, status = os.waitpid(pid, 0)
        os.write(1, b"%d\n" % os.WTERMSIG(status))

    rec = forklab.Recorder()
    assert forklab.run(main, trace=rec).stdout == b"6\n"
    assert "do_general_protection" not in rec.kinds()
