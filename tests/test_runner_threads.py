"""Threads and clone(fn): glibc's flag sets, shared Python state under CLONE_VM, exit_group ending every thread."""

from __future__ import annotations

import forklab
from forklab.runner.libc import THREAD_FLAGS
from forklab.uapi import CLONE_SETTLS, CLONE_THREAD, CLONE_VM


def test_pthread_create_uses_glibcs_flag_set() -> None:
    assert THREAD_FLAGS & (CLONE_VM | CLONE_THREAD | CLONE_SETTLS) == CLONE_VM | CLONE_THREAD | CLONE_SETTLS


def test_a_thread_shares_the_pid_and_the_python_objects() -> None:
    def main(os):
        seen = []
        r, w = os.pipe()

        def worker(tag):
            seen.append((tag, os.getpid(), os.gettid()))
            os.write(w, b"!")
            return 0

        tid = os.start_thread(worker, "t")
        os.read(r, 1)  # sleeps until the thread has written
        os.write(1, b"%r tid %d\n" % (seen, tid))

    assert forklab.run(main).stdout == b"[('t', 2, 3)] tid 3\n"


def test_exit_group_ends_a_thread_asleep_in_a_read() -> None:
    def main(os):
        r, _w = os.pipe()
        done_r, done_w = os.pipe()

        def reader():
            os.write(done_w, b"x")
            os.read(r, 1)  # never satisfied
            os.write(1, b"not reached\n")
            return 0

        os.start_thread(reader)
        os.read(done_r, 1)
        os._exit(4)

    run = forklab.run(main)
    assert (run.stdout, run.status) == (b"", 4 << 8)


def test_a_thread_can_fork_and_its_child_re_runs_the_thread_function() -> None:
    def main(os):
        r, w = os.pipe()

        def worker():
            pid = os.fork()
            if pid == 0:
                os.write(1, b"child of the thread\n")
                os._exit(0)
            os.waitpid(pid, 0)
            os.write(w, b"done")
            return 0

        os.start_thread(worker)
        os.write(1, b"main got %s\n" % os.read(r, 4))

    assert forklab.run(main).stdout == b"child of the thread\nmain got done\n"


def test_clone_runs_fn_in_the_child_and_exits_with_its_value() -> None:
    def main(os):
        box = []

        def child(tag):
            box.append(tag)  # with CLONE_VM the parent's list; without it the child's own re-run copy
            return 9

        for flags in (os.SIGCHLD, os.CLONE_VM | os.SIGCHLD):
            pid = os.clone(child, flags, "x")
            _, status = os.waitpid(pid, 0)
            os.write(1, b"status %d box %r\n" % (os.WEXITSTATUS(status), box))

    assert forklab.run(main).stdout == b"status 9 box []\nstatus 9 box ['x']\n"


def test_clone3_without_fn_returns_twice_like_fork() -> None:
    def main(os):
        pid = os.clone3(forklab.CloneArgs(exit_signal=os.SIGCHLD))
        if pid == 0:
            os._exit(6)
        os.write(1, b"%d\n" % os.WEXITSTATUS(os.waitpid(pid, 0)[1]))

    assert forklab.run(main).stdout == b"6\n"
