"""The standard programs (coreutils, procps, psmisc) on the model, and the libc calls added for them."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import forklab
from forklab.runner.programs import STANDARD_PROGRAMS
from forklab.runner.programs._common import exit_code, signal_name, signal_number, signal_text
from forklab.runner.programs.procps import COLUMNS, parse_entry


def tool(argv: list[str], stdin: bytes = b"", files: dict[str, bytes] | None = None,
         **programs: Any) -> forklab.Run:
    """exec ``argv`` (from /bin) in the first process, after writing ``files`` into the model's /tmp."""
    def main(os):
        for name, data in (files or {}).items():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.close(fd)
        os.chdir("/tmp")
        os.execv("/bin/" + argv[0], argv)

    return forklab.run(main, stdin=stdin, programs={**STANDARD_PROGRAMS, **programs})


def status(run: forklab.Run) -> int:
    """The first process's exit status."""
    return exit_code(run.status)


def test_the_standard_programs_are_installed_by_path() -> None:
    assert sorted(STANDARD_PROGRAMS) == ["/bin/cat", "/bin/echo", "/bin/false", "/bin/kill", "/bin/ps", "/bin/pstree",
                                         "/bin/sh", "/bin/sleep", "/bin/true", "/bin/wc"]


# --- coreutils --------------------------------------------------------------------------------


def test_true_and_false() -> None:
    assert (status(tool(["true", "--ignored"])), status(tool(["false"]))) == (0, 1)


@pytest.mark.parametrize(("argv", "printed"), [
    (["echo", "a", "b"], b"a b\n"),
    (["echo", "-n", "x"], b"x"),
    (["echo", "-nx"], b"-nx\n"),
    (["echo", "--", "-n"], b"-- -n\n"),
    (["echo", "-e", "x\\0101\\x41\\cy"], b"xAA"),
    (["echo", "-e", "a\\tb\\\\", "-n"], b"a\tb\\ -n\n"),
    (["echo", "-E", "a\\tb"], b"a\\tb\n"),
    (["echo", "-e", "q\\x"], b"q\\x\n"),
    (["echo"], b"\n"),
])
def test_echo(argv: list[str], printed: bytes) -> None:
    assert tool(argv).stdout == printed


def test_cat_copies_files_and_stdin_and_goes_on_after_an_error() -> None:
    run = tool(["cat", "a", "-", "missing", "b"], stdin=b"IN\n", files={"/tmp/a": b"A\n", "/tmp/b": b"B\n"})
    assert run.stdout == b"A\nIN\nB\n"
    assert run.stderr == b"cat: missing: No such file or directory\n" and status(run) == 1


def test_cat_refuses_an_unknown_option_as_coreutils_does() -> None:
    run = tool(["cat", "-z"])
    assert run.stderr == b"cat: invalid option -- 'z'\nTry 'cat --help' for more information.\n"
    assert status(run) == 1


@pytest.mark.parametrize(("argv", "printed"), [
    (["wc"], b" 3  3 11\n"),  # stdin is a regular file here: width from its size, as coreutils' fstat gives
    (["wc", "-c"], b"11\n"),  # one count of one input: width 1
    (["wc", "f"], b" 3  3 11 f\n"),
    (["wc", "-l", "f", "g"], b" 3 f\n 0 g\n 3 total\n"),
    (["wc", "-lwmc", "f"], b" 3  3 11 11 f\n"),
    (["wc", "-w", "--", "f"], b"3 f\n"),
])
def test_wc_counts_and_widths(argv: list[str], printed: bytes) -> None:
    run = tool(argv, stdin=b"one two\n3\n\n", files={"/tmp/f": b"one two\n3\n\n", "/tmp/g": b"no newline"})
    assert run.stdout == printed


def test_wc_on_a_directory_reports_it_and_still_prints_its_counts() -> None:
    run = tool(["wc", "/tmp"])
    assert run.stdout == b"      0       0       0 /tmp\n"
    assert run.stderr == b"wc: /tmp: Is a directory\n" and status(run) == 1


def test_wc_on_a_pipe_uses_width_7_and_reports_missing_files() -> None:
    run = tool(["sh", "-c", "echo a | wc; wc missing; echo $?"])
    assert run.stdout == b"      1       1       2\n1\n"
    assert run.stderr == b"wc: missing: No such file or directory\n"


@pytest.mark.skipif(shutil.which("wc") is None or shutil.which("echo") is None, reason="no host coreutils")
@pytest.mark.parametrize("argv", [["wc", "f"], ["wc", "-l", "f", "g"], ["wc", "-c", "g"], ["wc", "-w", "f", "g"],
                                  ["echo", "-e", "a\\tb\\0102\\x43\\c", "d"], ["echo", "-n", "-e", "x\\n"],
                                  ["cat", "f", "g"]])
def test_the_tools_print_what_the_hosts_coreutils_print(argv: list[str], tmp_path: Path) -> None:
    files = {"f": b"one two\n3\n\n", "g": b"no newline  at end"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    host = subprocess.run(argv, cwd=tmp_path, capture_output=True, check=False)
    if argv[0] != "echo" and b"GNU" not in subprocess.run([argv[0], "--version"], capture_output=True,
                                                          check=False).stdout:
        pytest.skip("the host's tools are not GNU coreutils")
    model = tool(argv, files={f"/tmp/{name}": data for name, data in files.items()})
    assert model.stdout == host.stdout


def test_sleep_checks_its_operands() -> None:
    assert status(tool(["sleep", "1", "0.5s", "2m", "1h", "1d", "inf"])) == 0
    missing = tool(["sleep"])
    assert missing.stderr == b"sleep: missing operand\nTry 'sleep --help' for more information.\n"
    bad = tool(["sleep", "1x"])
    assert bad.stderr == b"sleep: invalid time interval '1x'\nTry 'sleep --help' for more information.\n"
    assert (status(missing), status(bad)) == (1, 1)


def test_sleep_makes_one_call() -> None:
    def steps(argv: list[str]) -> int:
        return tool(argv).steps

    assert steps(["sleep", "5"]) - steps(["true"]) == 1  # one nanosleep on the model's clock (test_runner_syscalls)


# --- kill -----------------------------------------------------------------------------------------


def test_kill_lists_and_translates_signals() -> None:
    assert tool(["kill", "-l"]).stdout == (b"HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM "
                                           b"STKFLT\nCHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH "
                                           b"POLL PWR SYS\n")
    assert tool(["kill", "-l", "9"]).stdout == b"KILL\n"
    assert tool(["kill", "-l", "SIGTERM"]).stdout == b"15\n"


@pytest.mark.parametrize("how", [["-9"], ["-KILL"], ["-SIGKILL"], ["-s", "KILL"], ["-s", "9"], ["--signal", "kill"]])
def test_kill_sends_the_named_signal(how: list[str]) -> None:
    def main(os):
        r, _w = os.pipe()  # the child sleeps in a read that never ends: the signal ends it
        pid = os.fork()
        if pid == 0:
            os.read(r, 1)
            os._exit(0)
        os.system("kill " + " ".join(how) + f" {pid}")
        _, st = os.waitpid(pid, 0)
        os.write(1, b"signal %d\n" % os.WTERMSIG(st))

    assert forklab.run(main, programs=STANDARD_PROGRAMS).stdout == b"signal 9\n"


def test_kill_defaults_to_sigterm_and_signals_a_process_group() -> None:
    def main(os):
        r, _w = os.pipe()
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                os.setpgid(0, 0) if not pids else os.setpgid(0, pids[0])
                os.read(r, 1)
                os._exit(0)
            os.setpgid(pid, pids[0] if pids else pid)
            pids.append(pid)
        os.system(f"kill -- -{pids[0]}")
        for pid in pids:
            os.write(1, b"signal %d\n" % os.WTERMSIG(os.waitpid(pid, 0)[1]))

    assert forklab.run(main, programs=STANDARD_PROGRAMS).stdout == b"signal 15\nsignal 15\n"


def test_kill_errors_are_procps_messages() -> None:
    run = tool(["sh", "-c", "kill 999; echo $?; kill abc 2>/dev/null; echo $?; kill -FOO 1 2>/dev/null; echo $?"])
    assert run.stdout == b"1\n1\n1\n"
    assert run.stderr == b"kill: (999): No such process\n"
    usage = tool(["kill"])
    assert usage.stderr.startswith(b"kill: not enough arguments\n\nUsage:\n kill [options] <pid> [...]\n")


def test_signal_tables() -> None:
    assert [signal_number(n) for n in ("9", "kill", "SIGKILL", "IO", "RTMIN", "RTMIN+2", "RTMAX-1", "NOPE", "99")] == \
        [9, 9, 9, 29, 34, 36, 63, None, None]
    assert [signal_name(n) for n in (1, 31, 34, 40, 99)] == ["HUP", "SYS", "RTMIN", "RTMIN+6", "99"]
    assert [signal_text(n) for n in (9, 6, 35, 99)] == ["Killed", "Aborted", "Real-time signal 1", "Unknown signal 99"]
    assert [exit_code(s) for s in (3 << 8, 9, 0x137F)] == [3, 137, 147]


# --- ps and pstree ------------------------------------------------------------------------------


def with_sleepers(script: str, threads: int = 0) -> forklab.Run:
    """Three children asleep in a pipe read (the last with ``threads`` more threads), while sh runs ``script``."""
    def main(os):
        r, w = os.pipe()
        for i in range(3):
            if os.fork() == 0:
                os.close(w)
                for _ in range(threads if i == 2 else 0):
                    os.start_thread(lambda: os.read(r, 1))
                os.read(r, 1)
                os._exit(0)
        os.close(r)
        if os.fork() == 0:
            os.execv("/bin/sh", ["sh", "-c", script])
        os.wait()
        os.close(w)
        for _ in range(3):
            os.wait()

    return forklab.run(main, programs=STANDARD_PROGRAMS)


def test_ps_default_output_is_procps_columns_from_proc() -> None:
    run = with_sleepers("ps")
    assert run.stdout == (b"  PID TTY          TIME CMD\n"
                          b"    1 ?        00:00:00 init\n"
                          b"    2 ?        00:00:00 main\n"
                          b"    3 ?        00:00:00 main\n"
                          b"    4 ?        00:00:00 main\n"
                          b"    5 ?        00:00:00 main\n"
                          b"    6 ?        00:00:00 sh\n"
                          b"    7 ?        00:00:00 ps\n")


def test_ps_output_format_pid_list_and_threads() -> None:
    run = with_sleepers("ps -o pid,ppid,pgid,sid,nlwp,stat,s,comm -p 1,5,6; ps -L -p 5; ps -eo pid=x", threads=2)
    assert run.stdout == (b"  PID  PPID  PGID   SID NLWP STAT S COMMAND\n"
                          b"    1     0     1     1    1 Ss   S init\n"
                          b"    5     2     1     1    3 Sl   S main\n"
                          b"    6     2     1     1    1 S    S sh\n"
                          b"  PID   LWP TTY          TIME CMD\n"
                          b"    5     5 ?        00:00:00 main\n"
                          b"    5     7 ?        00:00:00 main\n"
                          b"    5     8 ?        00:00:00 main\n")
    assert run.stderr.startswith(b"error: unknown user-defined format specifier \"pid=x\"\n")


def test_ps_refuses_what_it_lacks_and_fails_for_an_absent_pid() -> None:
    run = tool(["sh", "-c", "ps x; echo $?; ps -p 999; echo $?"])
    assert run.stdout == b"1\n  PID TTY          TIME CMD\n1\n"
    assert run.stderr.startswith(b"error: unsupported option (BSD syntax) 'x'\n")


def _host_procps() -> bool:
    """Whether the host has procps-ng's ps and the default pid_max (which sets the PID columns' width)."""
    if shutil.which("ps") is None or not Path("/proc/sys/kernel/pid_max").exists():
        return False
    version = subprocess.run(["ps", "--version"], capture_output=True, check=False).stdout
    return b"procps-ng" in version and Path("/proc/sys/kernel/pid_max").read_text().strip() == "32768"


@pytest.mark.skipif(not _host_procps(), reason="needs procps-ng's ps and pid_max 32768 on the host")
def test_ps_headers_are_the_hosts_procps_headers() -> None:
    fmt = ",".join(COLUMNS)
    host = subprocess.run(["ps", "-o", fmt, "-p", "1"], capture_output=True, check=True).stdout.splitlines()[0]
    assert tool(["ps", "-o", fmt, "-p", "1"]).stdout.splitlines()[0] == host


def test_pstree_compacts_equal_subtrees_and_shows_threads() -> None:
    run = with_sleepers("pstree; pstree -p; pstree -U 2", threads=2)
    assert run.stdout.decode() == (
        "init---main-+-2*[main]\n"
        "            |-main---2*[{main}]\n"
        "            `-sh---pstree\n"
        "init(1)---main(2)-+-main(3)\n"
        "                  |-main(4)\n"
        "                  |-main(5)-+-{main}(7)\n"
        "                  |         `-{main}(8)\n"
        "                  `-sh(6)---pstree(10)\n"
        "main\u2500\u252c\u25002*[main]\n"
        "     \u251c\u2500main\u2500\u2500\u25002*[{main}]\n"
        "     \u2514\u2500sh\u2500\u2500\u2500pstree\n")


def test_ps_elf_is_procps_full_format_with_threads() -> None:
    """ps -eLf: procps' -Lf header, one row per thread with its LWP and the group's NLWP, UID named from
    /etc/passwd when the model has one, CMD [comm] (the model has no cmdline)."""
    run = with_sleepers("echo 'root:x:0:0::/:/bin/sh' > /etc/passwd; ps -eLf", threads=2)
    lines = run.stdout.decode().splitlines()
    assert lines[0] == "UID        PID  PPID   LWP  C NLWP STIME TTY          TIME CMD"
    rows = [line.split() for line in lines[1:]]
    assert [(r[1], r[3], r[5]) for r in rows if r[1] == "5"] == [("5", "5", "3"), ("5", "7", "3"), ("5", "8", "3")]
    assert {r[0] for r in rows} == {"root"} and {r[6] for r in rows} == {"00:00"} and rows[-1][-1] == "[ps]"
    assert len(rows) == len(lines) - 1 == sum(1 for r in rows if r[1] != "5") + 3


def test_pstree_p_of_the_runner_is_the_views_rendering() -> None:
    """The runner's pstree and forklab.views.process_list.pstree_p are one implementation: the same tree for
    the same tasks (the model's end state, where only init and the reaped-for shell's parent remain)."""
    from forklab.views.process_list import pstree_p  # the kernel-side rendering, for this test only

    run = tool(["pstree", "-p"])
    assert run.stdout.decode() == "init(1)---pstree(2)\n"
    assert pstree_p(run.kernel) == "init(1)\n"


def test_pstree_of_an_absent_pid_prints_nothing() -> None:
    run = tool(["pstree", "999"])
    assert (run.stdout, status(run)) == (b"", 0)


def test_ps_in_a_pid_namespace_sees_its_own_numbers() -> None:
    def container(os):
        if os.fork() == 0:
            os.execv("/bin/ps", ["ps", "-o", "pid,ppid,comm"])
        os.wait()
        return 0

    def main(os):
        pid = os.clone(container, os.CLONE_NEWPID | os.SIGCHLD, os)
        os.waitpid(pid, 0)

    run = forklab.run(main, programs=STANDARD_PROGRAMS)
    assert run.stdout == b"  PID  PPID COMMAND\n    1     0 main\n    2     1 ps\n"


def test_proc_stat_parsing_takes_comm_up_to_the_last_paren() -> None:
    stat = "7 (a) b (c)) S 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 5 2 0 0 0 0"
    entry = parse_entry(7, stat, "Tgid:\t7\nUid:\t0\t1000\t0\t0\nVmLck:\t       4 kB\n")
    assert (entry.comm, entry.state, entry.ppid, entry.ticks, entry.nice, entry.threads, entry.uid, entry.locked) == \
        ("a) b (c)", "S", 1, 7, 5, 2, 1000, True)


# --- the libc calls added for the programs ----------------------------------------------------


def test_read_proc_reads_as_the_caller_with_the_kernel_s_errors() -> None:
    def main(os):
        pid = os.getpid()
        text = os.read_proc(f"/proc/{pid}/status").decode()
        os.write(1, b"%s\n" % next(line for line in text.splitlines() if line.startswith("Pid:")).encode())
        for path in ("/proc/999/stat", f"/proc/{pid}", "/proc/x"):
            try:
                os.read_proc(path)
            except OSError as e:
                os.write(1, b"%s %d\n" % (type(e).__name__.encode(), e.errno))

    run = forklab.run(main)
    assert run.stdout == b"Pid:\t2\nFileNotFoundError 2\nIsADirectoryError 21\nFileNotFoundError 2\n"


def test_read_proc_is_recorded_so_a_fork_child_replays_it() -> None:
    def main(os):
        before = os.read_proc(f"/proc/{os.getpid()}/stat")
        if os.fork() == 0:
            os.write(1, b"child %d replayed the parent's read: pid %s\n" % (os.getpid(), before.split()[0]))
            os._exit(0)
        os.wait()

    run = forklab.run(main)
    assert run.stdout == b"child 3 replayed the parent's read: pid 2\n"


def test_setresuid_and_setresgid_change_the_ids_proc_shows() -> None:
    def main(os):
        os.setresgid(100, 100, 100)
        os.setresuid(1000, 1000, -1)
        lines = os.read_proc(f"/proc/{os.getpid()}/status").decode().splitlines()
        os.write(1, ("\n".join(line for line in lines if line.startswith(("Uid:", "Gid:"))) + "\n").encode())
        os.setresuid(0, 0, 0)  # the saved uid is still 0: allowed
        os.setresuid(1000, 1000, 1000)
        try:
            os.setresuid(0, 0, 0)
        except PermissionError:
            os.write(1, b"uid 1000 cannot become root again: EPERM\n")

    run = forklab.run(main)
    assert run.stdout == b"Uid:\t1000\t1000\t0\t1000\nGid:\t100\t100\t100\t100\nuid 1000 cannot become root again: EPERM\n"


# --- random small programs ------------------------------------------------------------------------
# A program is a tuple of steps that one interpreter runs in every process (so a fork child re-runs
# the same steps up to its fork): fork a child running a body, exec /bin/prog with a body, exit,
# non-blocking waits, a non-blocking pipe, kill (SIGSTOP included), stop-and-continue, setpgid.
# As a job-control shell does, every child gets a process group of its own (setpgid in both), and
# setpgid steps only ever make a process the leader of its own group: so when a process dies with a
# stopped child, the child's group is orphaned with a stopped job, and the kernel sends it SIGHUP
# and SIGCONT (kill_orphaned_pgrp, kernel/exit.c:320-345). No step blocks, so every run ends, and
# init reaps what is left. After each run the model's invariants hold and only init remains.

SIGNALS = (0, 9, 15, 18, 19)  # 0 probes, SIGKILL, SIGTERM, SIGCONT, SIGSTOP


def _steps(depth: int) -> Any:
    """A strategy for a tuple of steps, with bodies nested at most ``depth`` deep."""
    from hypothesis import strategies as st

    leaf = st.one_of(
        st.tuples(st.just("exit"), st.integers(0, 3)),
        st.tuples(st.just("wait"), st.sampled_from([0, 2, 8])),  # WNOHANG plus none, WUNTRACED, WCONTINUED
        st.tuples(st.just("pipe")),
        st.tuples(st.just("write")),
        st.tuples(st.just("read")),
        st.tuples(st.just("kill"), st.integers(0, 3), st.sampled_from(SIGNALS)),
        st.tuples(st.just("stopcont"), st.integers(0, 3)),
        st.tuples(st.just("setpgid"), st.integers(-1, 3)),
    )
    if depth == 0:
        return st.lists(leaf, max_size=4).map(tuple)
    body = _steps(depth - 1)
    fork = st.tuples(st.just("fork"), body)
    step = st.one_of(fork, leaf, fork, st.tuples(st.just("exec"), body))  # fork twice as likely as the others
    return st.lists(step, min_size=1, max_size=6).map(tuple)


def _interpret(os: Any, steps: tuple[Any, ...]) -> None:
    """Run ``steps`` in this process; then continue the stopped children and exit 0."""
    children: list[int] = []
    pipe: tuple[int, int] | None = None
    for step in steps:
        pipe = _step(os, step, children, pipe)
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, 18)  # SIGCONT: leave no stopped child behind
    os._exit(0)


def _step(os: Any, step: tuple[Any, ...], children: list[int], pipe: tuple[int, int] | None) -> Any:
    """One step; returns the process's pipe (a step may make one)."""
    kind = step[0]
    child = children[step[1] % len(children)] if kind in ("kill", "stopcont") and children else None
    try:
        if kind == "fork":
            pid = os.fork()
            if pid == 0:
                os.setpgid(0, 0)
                _interpret(os, step[1])
            children.append(pid)
            _own_group(os, pid)
        elif kind == "exec":
            os.execv("/bin/prog", ["prog", repr(step[1])])
        elif kind == "exit":
            os._exit(step[1])
        elif kind == "wait":
            os.waitpid(-1, os.WNOHANG | step[1])
        elif kind == "pipe" and pipe is None:
            return os.pipe2(os.O_NONBLOCK)
        elif kind == "write" and pipe is not None:
            os.write(pipe[1], b"x")
        elif kind == "read" and pipe is not None:
            os.read(pipe[0], 1)
        elif kind == "kill" and child is not None:
            os.kill(child, step[2])
        elif kind == "stopcont" and child is not None:
            os.kill(child, 19)
            os.kill(child, 18)
        elif kind == "setpgid":
            target = 0 if step[1] < 0 or not children else children[step[1] % len(children)]
            os.setpgid(target, 0)
    except OSError:
        pass  # ECHILD, ESRCH, EAGAIN, EPERM, EPIPE...: part of the program's life
    return pipe


def _own_group(os: Any, pid: int) -> None:
    """setpgid(pid, pid) from the parent too, as a shell does (EACCES once the child has exec'd)."""
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)


def _prog(os: Any, argv: list[str]) -> int:
    """/bin/prog: interpret the steps in argv[1]."""
    import ast as _ast

    _interpret(os, _ast.literal_eval(argv[1]))
    return 0


def test_random_small_programs_keep_the_invariants_and_leave_only_init() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=_steps(2), seed=st.integers(0, 4))
    def check(steps: tuple[Any, ...], seed: int) -> None:
        def main(os):
            _interpret(os, steps)

        run = forklab.run(main, seed=seed, programs={"/bin/prog": _prog})
        k = run.kernel
        k.check_invariants()
        init = k.init_task
        left = [t for t in k.all_threads() if t is not init]
        assert all(t.exit_state and t.real_parent is init for t in left), [(t.pid, t.exit_state) for t in left]
        assert run.crashes == ()

    check()
