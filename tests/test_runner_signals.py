"""Python signal handlers run where the model delivers the signal: on the way back to user mode."""

from __future__ import annotations

import forklab


def test_a_handler_runs_on_return_from_the_syscall_that_delivered_it() -> None:
    def main(os):
        seen = []
        os.signal(os.SIGUSR1, lambda sig, frame: seen.append(sig))
        os.kill(os.getpid(), os.SIGUSR1)
        os.write(1, b"after kill: %r\n" % seen)

    run = forklab.run(main)
    assert run.stdout == b"after kill: [10]\n"
    assert any(how.startswith("handler") for _, _, how in run.kernel.signals_delivered)


def test_a_handler_that_makes_calls_is_replayed_by_a_fork_child() -> None:
    def main(os):
        seen = []

        def handler(sig, frame):
            seen.append(os.getpid())

        os.signal(os.SIGUSR1, handler)
        os.kill(os.getpid(), os.SIGUSR1)
        pid = os.fork()
        os.write(1, b"%s saw %r\n" % (b"child" if pid == 0 else b"parent", seen))
        if pid:
            os.wait()

    run = forklab.run(main)
    assert run.stdout == b"parent saw [2]\nchild saw [2]\n"
    assert run.replayed == 5  # rt_sigaction, getpid, kill, the handler's getpid, its rt_sigreturn


def test_signal_returns_the_previous_handler() -> None:
    def main(os):
        def h(sig, frame):
            pass

        assert os.signal(os.SIGUSR1, h) == os.SIG_DFL
        assert os.signal(os.SIGUSR1, os.SIG_IGN) is h
        assert os.signal(os.SIGUSR1, os.SIG_DFL) == os.SIG_IGN

    assert forklab.run(main).status == 0


def test_sa_resethand_comes_from_the_model() -> None:
    def main(os):
        os.sigaction(os.SIGUSR1, lambda sig, frame: os.write(1, b"handled\n"), os.SA_RESETHAND)
        os.kill(os.getpid(), os.SIGUSR1)
        os.kill(os.getpid(), os.SIGUSR1)  # the default action now: terminate
        os.write(1, b"not reached\n")

    run = forklab.run(main)
    assert run.stdout == b"handled\n"
    assert run.status == 10  # killed by SIGUSR1


def test_a_sleeping_read_interrupted_by_a_handler_without_sa_restart_fails_with_eintr() -> None:
    def main(os):
        os.sigaction(os.SIGUSR1, lambda sig, frame: os.write(1, b"handler\n"))  # flags 0: no SA_RESTART
        r, _w = os.pipe()
        if os.fork() == 0:
            os.kill(os.getppid(), os.SIGUSR1)
            os._exit(0)
        try:
            os.read(r, 1)  # sleeps; the child's signal wakes it
        except InterruptedError:
            os.write(1, b"read: EINTR\n")  # -ERESTARTSYS without SA_RESTART (arch/x86/kernel/signal.c:726-729)
        os.wait()

    assert forklab.run(main).stdout == b"handler\nread: EINTR\n"


def test_a_read_interrupted_by_an_sa_restart_handler_restarts_after_the_handler_ran() -> None:
    def main(os):
        r, w = os.pipe()

        def handler(sig, frame):
            os.write(1, b"handler\n")
            os.write(w, b"x")  # the restarted read finds this byte

        os.signal(os.SIGUSR1, handler)  # glibc's signal(): SA_RESTART
        if os.fork() == 0:
            os.kill(os.getppid(), os.SIGUSR1)
            os._exit(0)
        os.write(1, b"read %r\n" % os.read(r, 1))  # sleeps; the signal interrupts it; the handler runs first
        os.wait()

    rec = forklab.Recorder()
    run = forklab.run(main, trace=rec)
    assert run.stdout == b"handler\nread b'x'\n"
    kinds = rec.kinds()
    # the read slept once, the handler returned through rt_sigreturn, then the read ran again and found the byte
    assert kinds.count("rt_sigreturn") == 1
    assert kinds.index("rt_sigreturn") < max(i for i, kind in enumerate(kinds) if kind == "pipe_read")


def test_a_restarted_call_replays_in_a_fork_child_with_its_handler() -> None:
    def main(os):
        r, w = os.pipe()
        os.signal(os.SIGUSR1, lambda sig, frame: os.write(w, b"y"))
        if os.fork() == 0:
            os.kill(os.getppid(), os.SIGUSR1)
            os._exit(0)
        got = os.read(r, 1)  # interrupted, the handler writes, restarted
        os.wait()
        if os.fork() == 0:  # this child replays the read, the handler, its rt_sigreturn and the restart
            os.write(1, b"child got %r\n" % got)
            os._exit(0)
        os.wait()

    run = forklab.run(main)
    assert run.stdout == b"child got b'y'\n"
    assert run.replayed > 0


def test_ignored_sigchld_makes_children_reap_themselves() -> None:
    def main(os):
        os.signal(os.SIGCHLD, os.SIG_IGN)
        if os.fork() == 0:
            os._exit(0)
        try:
            os.wait()
        except ChildProcessError:
            os.write(1, b"no child to wait for\n")

    assert forklab.run(main).stdout == b"no child to wait for\n"


def test_a_sigchld_handler_reaps_the_child() -> None:
    def main(os):
        reaped = []

        def on_child(sig, frame):
            reaped.append(os.waitpid(-1, os.WNOHANG)[1])

        os.signal(os.SIGCHLD, on_child)
        r, w = os.pipe()
        if os.fork() == 0:
            os._exit(5)
        os.close(w)
        os.read(r, 1)  # sleeps until the child's exit closes its write end; SIGCHLD is pending by then
        os.getpid()  # delivered at the end of this call at the latest
        os.write(1, b"reaped with status %d\n" % os.WEXITSTATUS(reaped[0]))

    assert forklab.run(main).stdout == b"reaped with status 5\n"
