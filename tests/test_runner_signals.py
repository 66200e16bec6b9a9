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
    assert run.replayed == 4  # rt_sigaction, getpid, kill, the handler's getpid


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


def test_a_sleeping_read_interrupted_by_a_handled_signal_fails_with_eintr() -> None:
    def main(os):
        os.signal(os.SIGUSR1, lambda sig, frame: os.write(1, b"handler\n"))
        r, _w = os.pipe()
        if os.fork() == 0:
            os.kill(os.getppid(), os.SIGUSR1)
            os._exit(0)
        try:
            os.read(r, 1)  # sleeps; the child's signal wakes it
        except InterruptedError:
            os.write(1, b"read: EINTR\n")  # the model does not restart pipe reads (SA_RESTART not modelled)
        os.wait()

    assert forklab.run(main).stdout == b"handler\nread: EINTR\n"


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
