"""exec ends the image: installed programs, argv and environ, CLOEXEC, handler reset, posix_spawn and system."""

from __future__ import annotations

import pytest

import forklab


def hello(os, argv):
    os.write(1, b"hello %s\n" % " ".join(argv[1:]).encode())
    return 4


def test_exec_of_an_installed_program_starts_it_with_its_argv() -> None:
    def main(os):
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/hello", ["hello", "world"])
        _, status = os.waitpid(pid, 0)
        os.write(1, b"status %d\n" % os.WEXITSTATUS(status))

    run = forklab.run(main, programs={"/bin/hello": hello})
    assert run.stdout == b"hello world\nstatus 4\n"


def test_the_new_image_has_an_empty_history_and_forks_from_there() -> None:
    def prog(os, argv):
        if os.fork() == 0:
            os.write(1, b"grandchild\n")
            return 0
        os.wait()
        return 0

    def main(os):
        for _ in range(10):
            os.getpid()
        os.execv("/bin/prog", ["prog"])

    run = forklab.run(main, programs={"/bin/prog": prog})
    assert run.stdout == b"grandchild\n"
    assert run.replayed == 0  # the grandchild replays only the new image, whose fork was its first call


def test_exec_errors_are_pythons_oserror_subclasses_and_the_image_goes_on() -> None:
    def main(os):
        try:
            os.execv("/bin/none", ["none"])
        except FileNotFoundError as e:
            os.write(1, b"ENOENT: %s\n" % str(e).encode())
        with pytest.raises(ValueError, match="must not be empty"):
            os.execv("/bin/none", [])

    run = forklab.run(main)
    assert run.stdout.startswith(b"ENOENT: [Errno 2] ENOENT: ") and b"fs/namei.c" in run.stdout


def test_the_old_images_finally_blocks_cannot_make_calls() -> None:
    def main(os):
        try:
            os.execv("/bin/hello", ["hello", "new"])
        finally:
            os.write(1, b"old image\n")  # raises again: the image is gone

    assert forklab.run(main, programs={"/bin/hello": hello}).stdout == b"hello new\n"


def test_execvp_searches_path_and_execve_passes_the_environment() -> None:
    def show(os, argv):
        os.write(1, b"%s %s\n" % (argv[0].encode(), os.environ.get("GREETING", "-").encode()))
        return 0

    def main(os):
        os.environ["GREETING"] = "hi"
        if os.fork() == 0:
            os.execvp("show", ["show"])
        os.wait()
        os.execve("/usr/bin/show", ["show2"], {"GREETING": "env"})

    run = forklab.run(main, programs={"/usr/bin/show": show}, env={"PATH": "/bin:/usr/bin"})
    assert run.stdout == b"show hi\nshow2 env\n"


def test_close_on_exec_comes_from_the_model() -> None:
    def probe(os, argv):
        for fd in (3, 4):
            try:
                os.get_inheritable(fd)
                os.write(1, b"fd %d open\n" % fd)
            except OSError as e:
                os.write(1, b"fd %d: errno %d\n" % (fd, e.errno))
        return 0

    def main(os):
        _r, w = os.pipe()  # fds 3 and 4, inheritable as in C
        os.set_inheritable(w, False)
        os.execv("/bin/probe", ["probe"])

    assert forklab.run(main, programs={"/bin/probe": probe}).stdout == b"fd 3 open\nfd 4: errno 9\n"


def test_exec_resets_caught_handlers_and_keeps_ignored_ones() -> None:
    def after(os, argv):
        os.write(1, b"USR1 %d USR2 %d\n" % (os.sigaction(os.SIGUSR1)[0], os.sigaction(os.SIGUSR2)[0]))
        return 0

    def main(os):
        os.signal(os.SIGUSR1, lambda sig, frame: None)
        os.signal(os.SIGUSR2, os.SIG_IGN)
        os.execv("/bin/after", ["after"])

    assert forklab.run(main, programs={"/bin/after": after}).stdout == b"USR1 0 USR2 1\n"


def test_exec_of_a_file_nobody_installed_exits_127_with_a_message() -> None:
    def main(os):
        fd = os.open("/tmp/tool", os.O_CREAT | os.O_WRONLY, 0o755)
        os.write(fd, b"#!binary")
        os.close(fd)
        if os.fork() == 0:
            os.execv("/tmp/tool", ["tool"])
        os.write(1, b"%d\n" % os.WEXITSTATUS(os.wait()[1]))

    run = forklab.run(main)
    assert run.stdout == b"127\n" and b"tool: not an installed program" in run.stderr


def test_posix_spawn_replays_nothing_and_reports_exec_errors() -> None:
    def main(os):
        for _ in range(20):
            os.getpid()
        pid = os.posix_spawn("/bin/hello", ["hello", "spawned"], {})
        _, status = os.waitpid(pid, 0)
        os.write(1, b"status %d\n" % os.WEXITSTATUS(status))
        with pytest.raises(FileNotFoundError):
            os.posix_spawn("/bin/none", ["none"], {})
        os.write(1, b"children left: %d\n" % len([c for c in run_children(os)]))

    def run_children(os):
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return []
        return [1]

    run = forklab.run(main, programs={"/bin/hello": hello})
    assert run.stdout == b"hello spawned\nstatus 4\nchildren left: 0\n"
    assert run.replayed == 0


def test_system_spawns_bin_sh_and_waits() -> None:
    def sh(os, argv):
        os.write(1, b"sh %s\n" % " ".join(argv[1:]).encode())
        return 2

    def main(os):
        status = os.system("echo hi")
        os.write(1, b"system %d\n" % os.WEXITSTATUS(status))
        # the caller's SIGINT disposition is back after system()
        os.write(1, b"SIGINT %d\n" % os.sigaction(os.SIGINT)[0])

    assert forklab.run(main, programs={"/bin/sh": sh}).stdout == b"sh -c echo hi\nsystem 2\nSIGINT 0\n"
    assert forklab.run(main, standard_programs=False).stdout.startswith(b"system 127\n")
    assert forklab.run(main).stdout == b"hi\nsystem 0\nSIGINT 0\n"  # the standard /bin/sh and /bin/echo


def test_the_standard_programs_are_installed_by_default_and_programs_replace_them() -> None:
    def main(os):
        os.write(1, b"%d\n" % os.WEXITSTATUS(os.system("echo a | wc -c")))

    def wc(os, argv):
        os.write(1, b"mine\n")
        return 5

    assert forklab.run(main).stdout == b"2\n0\n"
    assert forklab.run(main, programs={"/bin/wc": wc}).stdout == b"mine\n5\n"
    with pytest.raises(TypeError, match="standard_programs"):
        forklab.run(main, standard_programs=1)
