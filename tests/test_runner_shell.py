"""/bin/sh on the model: a fork+exec+wait shell with pipelines, &&, ||, ;, &, wait, redirections and $?."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import forklab
from forklab import Recorder
from forklab.runner.programs import STANDARD_PROGRAMS
from forklab.runner.programs.sh_parse import Part, ShellSyntaxError, parse, tokenize


def sh(script: str, seed: int = 0, stdin: bytes = b"", **programs: Any) -> forklab.Run:
    """Run ``sh -c script`` as the first process's exec, with the standard programs installed."""
    def main(os):
        os.execv("/bin/sh", ["sh", "-c", script])

    return forklab.run(main, seed=seed, stdin=stdin, programs={**STANDARD_PROGRAMS, **programs})


def out(script: str, **kw: Any) -> bytes:
    """What ``sh -c script`` prints on stdout; its stderr must be empty."""
    run = sh(script, **kw)
    assert run.stderr == b"", run.stderr.decode()
    return run.stdout


# --- lists, and-or, status --------------------------------------------------------------------


def test_a_three_stage_pipeline_flows() -> None:
    assert out("echo a | cat | wc -c") == b"2\n"


def test_sequences_and_or_lists_and_status() -> None:
    assert out("false; echo $?; true && echo yes || echo no; false && echo yes || echo no") == b"1\nyes\nno\n"
    assert out("! true; echo $?; ! false; echo $?") == b"1\n0\n"


def test_the_status_of_a_pipeline_is_its_last_stage() -> None:
    assert out("false | true; echo $?; true | false; echo $?") == b"0\n1\n"


def test_the_shell_exits_with_the_last_status_and_exit_ends_it() -> None:
    assert sh("false").status >> 8 == 1
    run = sh("exit 3; echo not reached")
    assert (run.stdout, run.status >> 8) == (b"", 3)


def test_command_not_found_is_127_with_dash_s_message() -> None:
    run = sh("nosuch arg; echo $?")
    assert run.stdout == b"127\n"
    assert run.stderr == b"sh: 1: nosuch: not found\n"


def test_a_signal_death_is_128_plus_the_signal_and_reported() -> None:
    run = sh("sh -c 'kill -9 $$'; echo $?")
    assert run.stdout == b"137\n" and run.stderr == b"Killed\n"


def test_a_crashing_program_is_aborted_and_the_shell_says_so() -> None:
    def crash(os, argv):
        raise RuntimeError("boom")

    run = sh("crash; echo $?", **{"/bin/crash": crash})
    assert run.stdout == b"134\n"
    assert run.stderr.endswith(b"uncaught RuntimeError: abort() (SIGABRT)\nAborted\n")


# --- quoting and parameters -----------------------------------------------------------------------


def test_quotes_escapes_and_parameters() -> None:
    assert out("""echo 'a  b' "c $?" d\\ e '$x' "\\$y" """) == b"a  b c 0 d e $x $y\n"


def test_positional_parameters() -> None:
    def main(os):
        os.execv("/bin/sh", ["sh", "-c", 'echo $0 $# "$1" $2 "[$3]"', "name", "one two", "three"])

    assert forklab.run(main, programs=STANDARD_PROGRAMS).stdout == b"name 2 one two three []\n"


def test_dollar_at_quoted_keeps_each_parameter_one_field() -> None:
    def count(os, argv):
        os.write(1, b"%d:%s\n" % (len(argv) - 1, "|".join(argv[1:]).encode()))
        return 0

    def main(os):
        os.execv("/bin/sh", ["sh", "-c", 'count "$@"; count $@; count "x$1y"', "sh", "a b", "c"])

    run = forklab.run(main, programs={**STANDARD_PROGRAMS, "/bin/count": count})
    assert run.stdout == b"2:a b|c\n3:a|b|c\n1:xa by\n"


def test_unquoted_expansions_split_and_empty_ones_vanish() -> None:
    def count(os, argv):
        os.write(1, b"%d\n" % (len(argv) - 1))
        return 0

    script = 'X="a  b"; count $X; count "$X"; count $EMPTY; count "$EMPTY"'
    assert out(script, **{"/bin/count": count}) == b"2\n1\n0\n1\n"


def test_variables_assignments_and_export() -> None:
    script = "X=5; echo $X; sh -c 'echo in:$X'; export X; sh -c 'echo in:$X'; Y=7 sh -c 'echo once:$Y'; echo after:$Y"
    assert out(script) == b"5\nin:\nin:5\nonce:7\nafter:\n"


def test_dollar_dollar_is_the_shell_pid_in_subshells_too() -> None:
    run = sh("echo $$; echo $$ | cat")
    pid = run.stdout.split()[0]
    assert run.stdout == pid + b"\n" + pid + b"\n"


# --- redirections ---------------------------------------------------------------------------------


def test_output_append_and_input_redirections() -> None:
    script = "echo one > /tmp/f; echo two >> /tmp/f; cat /tmp/f; wc -l < /tmp/f; cat < /tmp/f | wc -c"
    assert out(script) == b"one\ntwo\n2\n8\n"


def test_fd_duplication_and_order() -> None:
    run = sh("echo to-err 1>&2; echo both 2>&1 1>&2; echo closed >&-; echo $?")
    assert run.stderr == b"to-err\necho: write error: Bad file descriptor\n"
    assert run.stdout == b"both\n1\n"  # echo with fd 1 closed fails its write: status 1


def test_stderr_into_a_pipe_with_2_to_1() -> None:
    assert out("cat /none 2>&1 | wc -l") == b"1\n"


def test_redirection_errors_are_dash_s_and_status_2() -> None:
    run = sh("cat </nonexist; echo $?; echo x >/no/dir/f; echo $?")
    assert run.stdout == b"2\n2\n"
    assert run.stderr == (b"sh: 1: cannot open /nonexist: No such file\n"
                          b"sh: 1: cannot create /no/dir/f: Directory nonexistent\n")


def test_a_builtin_s_redirection_is_undone_after_it() -> None:
    run = sh("cd /nonexist 2>/tmp/err; echo $?; cat /tmp/err")
    assert run.stdout == b"2\nsh: 1: cd: can't cd to /nonexist\n"


def test_an_empty_command_with_a_redirection_creates_the_file() -> None:
    assert out(">/tmp/empty; wc -c /tmp/empty") == b"0 /tmp/empty\n"


# --- background jobs and wait ----------------------------------------------------------------------


def test_background_jobs_and_wait() -> None:
    assert out("echo bg & wait; echo done") == b"bg\ndone\n"
    assert out("false & wait $!; echo $?; true & wait $!; echo $?") == b"1\n0\n"


def test_wait_for_a_pid_that_is_not_a_child_is_127() -> None:
    assert out("wait 999; echo $?") == b"127\n"


def test_a_background_and_or_list_runs_in_a_subshell() -> None:
    assert out("false || echo rescued & wait; echo $?") == b"rescued\n0\n"


def test_ampersand_does_not_wait_the_job_outlives_the_shell() -> None:
    """``cat <&3 &`` sleeps reading a pipe the first process writes only after the shell has exited."""
    def main(os):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            os.dup2(r, 3)
            os.execv("/bin/sh", ["sh", "-c", "cat <&3 &"])
        os.close(r)
        _, status = os.waitpid(pid, 0)  # a shell that waited for cat would deadlock here
        os.write(1, b"sh exited %d\n" % os.WEXITSTATUS(status))
        os.write(w, b"late\n")

    assert forklab.run(main, programs=STANDARD_PROGRAMS).stdout == b"sh exited 0\nlate\n"


def test_a_background_job_reads_dev_null() -> None:
    assert out("cat & wait", stdin=b"not for the job\n") == b""
    assert out("cat", stdin=b"for the foreground\n") == b"for the foreground\n"


# --- the calls: fork + exec + wait, pipes closed ---------------------------------------------------


def test_each_command_forks_and_execs_and_the_shell_waits() -> None:
    rec = Recorder()

    def main(os):
        os.execv("/bin/sh", ["sh", "-c", "true; false"])

    forklab.run(main, programs=STANDARD_PROGRAMS, trace=rec)
    execs = [(e.tid, e.detail.split()[-1]) for e in rec.events if e.kind == "execve"]
    shell = execs[1][0]
    assert [path for _, path in execs] == ["'/bin/main'", "'/bin/sh'", "'/bin/true'", "'/bin/false'"]
    assert execs[0][0] == shell and len({shell, execs[2][0], execs[3][0]}) == 3  # each command in a new child


def test_a_pipeline_leaves_no_pipe_open_in_the_shell() -> None:
    """After a pipeline the shell holds only fds 0-2: it closed every pipe end it made."""
    def fds(os, argv):
        open_fds = []
        for fd in range(20):
            try:
                os.get_inheritable(fd)
                open_fds.append(fd)
            except OSError:
                pass
        os.write(1, b"%r\n" % open_fds)
        return 0

    assert out("echo a | cat | wc -c; fds", **{"/bin/fds": fds}) == b"2\n[0, 1, 2]\n"


def test_every_stage_of_a_pipeline_is_a_child_of_the_shell() -> None:
    def me(os, argv):
        os.write(2, b"")
        data = os.read(0, 100)
        os.write(1, data + b"%s ppid=%d\n" % (argv[1].encode(), os.getppid()))
        return 0

    run = sh("echo $$ | me a | me b", **{"/bin/me": me})
    lines = run.stdout.splitlines()
    shell = lines[0]
    assert lines[1:] == [b"a ppid=" + shell, b"b ppid=" + shell]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_pipelines_give_the_same_output_under_any_schedule(seed: int) -> None:
    assert out("echo a b c | cat | wc -w; echo x | wc -c", seed=seed) == b"3\n2\n"


def test_os_system_runs_bin_sh_minus_c() -> None:
    def main(os):
        status = os.system("echo hi | wc -c; exit 4")
        os.write(1, b"system %d\n" % os.WEXITSTATUS(status))

    assert forklab.run(main, programs=STANDARD_PROGRAMS).stdout == b"3\nsystem 4\n"


# --- invocation ---------------------------------------------------------------------------------


def test_sh_reads_a_script_from_stdin_or_a_file() -> None:
    def main(os):
        fd = os.open("/tmp/script", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"echo from file $1\n# a comment\necho second\n")
        os.close(fd)
        if os.fork() == 0:
            os.execv("/bin/sh", ["sh", "/tmp/script", "arg"])
        os.wait()
        os.execv("/bin/sh", ["sh"])

    run = forklab.run(main, stdin=b"echo from stdin\n", programs=STANDARD_PROGRAMS)
    assert run.stdout == b"from file arg\nsecond\nfrom stdin\n"


def test_bad_invocations() -> None:
    def main(os):
        for argv in (["sh", "-z"], ["sh", "-c"], ["sh", "/none"]):
            if os.fork() == 0:
                os.execv("/bin/sh", argv)
            os.write(1, b"%d\n" % os.WEXITSTATUS(os.wait()[1]))

    run = forklab.run(main, programs=STANDARD_PROGRAMS)
    assert run.stdout == b"2\n2\n127\n"
    assert run.stderr == (b"sh: 0: Illegal option -z\nsh: 0: -c requires an argument\nsh: 0: Can't open /none\n")


# --- syntax ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "message"), [
    ("echo 'open", "Unterminated quoted string"),
    ('echo "open', "Unterminated quoted string"),
    ("| cat", '"|" unexpected'),
    ("echo a |", "end of file unexpected"),
    ("echo a && ; b", '";" unexpected'),
    ("echo >", "end of file unexpected"),
    ("if true; then echo; fi", "'if' (compound commands) is not supported by forklab's sh"),
    ("(echo a)", "subshells '( ... )' are not supported by forklab's sh"),
    ("echo $(ls)", "command substitution '$(...)' is not supported by forklab's sh"),
    ("echo `ls`", "command substitution '`...`' is not supported by forklab's sh"),
    ("cat <<EOF", "here-documents '<<' are not supported by forklab's sh"),
    ("echo ${X:-y}", "${X:-y}: only ${NAME} is supported by forklab's sh"),
])
def test_syntax_errors_name_the_problem_and_run_nothing(script: str, message: str) -> None:
    with pytest.raises(ShellSyntaxError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace("$", r"\$").replace("|", r"\|").replace("{", r"\{").replace("}", r"\}")
                       .replace("*", r"\*").replace(".", r"\.") + "$"):
        parse(script)
    run = sh("echo first; " + script)
    assert run.stdout == b"" and run.stderr == f"sh: 1: Syntax error: {message}\n".encode()
    assert run.status >> 8 == 2


def test_the_lexer_reads_fd_numbers_only_right_before_a_redirection() -> None:
    kinds = [(t.kind, t.text, t.fd) for t in tokenize("echo 2 2>&1 x2>y")]
    assert kinds == [("word", "echo", None), ("word", "2", None), ("op", ">&", 2), ("word", "1", None),
                     ("word", "x2", None), ("op", ">", None), ("word", "y", None), ("eof", "", None)]


def test_a_quoted_empty_string_is_a_word() -> None:
    (item,) = parse('echo ""')
    assert item.body.first.commands[0].words[1] == (Part("", quoted=True),)


# --- against the host's dash --------------------------------------------------------------------

HOST_SCRIPTS = [
    "echo a | cat | wc -c",
    "false; echo $?; true && echo yes || echo no; false && echo yes || echo no",
    "false | true; echo $?; true | false; echo $?",
    "! true; echo $?",
    "nosuch; echo $?",
    "nosuch 2>&1; echo $?",
    """echo 'a  b' "c $?" d\\ e '$x' "\\$y" """,
    'X="a  b"; echo $X; echo "$X"; echo $EMPTY end',
    "X=5; echo $X; sh -c 'echo in:$X'; export X; sh -c 'echo in:$X'; Y=7 sh -c 'echo once:$Y'; echo after:$Y",
    "echo one > f; echo two >> f; cat f; wc -l < f; cat < f | wc -c",
    "echo to-err 1>&2; echo both 2>&1 1>&2",
    "cat </nonexist; echo $?; echo x >/no/dir/f; echo $?",
    "cat /none 2>&1 | wc -l",
    "cd /nonexist; echo $?",
    "sh -c 'kill -9 $$'; echo $?",
    "echo bg & wait; echo done",
    "false & wait $!; echo $?; true & wait $!; echo $?",
    "wait 999; echo $?",
    "false || echo rescued & wait; echo $?",
    "echo a; echo b | cat & wait; echo c",
    "exit 3; echo not reached",
    "echo $0 $# $1",
    "echo 'open",
    "echo a |",
    "| cat",
    "echo a && ; b",
    "echo >",
    "echo a ;; b",
    "echo a )",
    ";",
]


def _host_is_dash() -> bool:
    """Whether the host's ``sh`` is dash (the shell forklab's sh follows)."""
    path = shutil.which("sh")
    return path is not None and Path(path).resolve().name == "dash"


@pytest.mark.skipif(not _host_is_dash(), reason="the host's sh is not dash")
@pytest.mark.parametrize("script", HOST_SCRIPTS)
def test_sh_prints_what_the_hosts_dash_prints(script: str, tmp_path: Path) -> None:
    host = subprocess.run(["sh", "-c", script], capture_output=True, cwd=tmp_path, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    model = sh(script)
    assert (model.stdout, model.stderr, model.status >> 8) == (host.stdout, host.stderr, host.returncode)
