"""Sleeping tasks park their greenlets until the model wakes them; every process asleep is a deadlock."""

from __future__ import annotations

import pytest

import forklab
from forklab.runner import Deadlock


def pipe_program(os):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        for word in (b"one ", b"two ", b"three"):
            os.write(w, word)
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 3):
        data += chunk
    os.write(1, data + b"\n")
    os.waitpid(pid, 0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 17])
def test_a_pipe_between_parent_and_child_delivers_everything_in_order(seed: int) -> None:
    run = forklab.run(pipe_program, seed=seed)
    assert run.stdout == b"one two three\n"
    assert run.status == 0


def test_a_blocked_read_completes_as_one_call_in_the_history() -> None:
    def main(os):
        r, w = os.pipe()
        if os.fork() == 0:
            os.write(w, b"late")
            os._exit(0)
        data = os.read(r, 10)  # sleeps first: the child has not run yet (seed 0)
        if os.fork() == 0:  # this child replays the read once, with its result
            os.write(1, b"replayed " + data + b"\n")
            os._exit(0)
        os.wait()
        os.wait()

    run = forklab.run(main)
    assert run.stdout == b"replayed late\n"
    assert run.replayed == 4  # pipe, fork, read, then its fork point: wait was never re-recorded


def test_vfork_parent_sleeps_until_the_child_exits() -> None:
    def main(os):
        shared = os.mmap(4096)
        pid = os.vfork()
        if pid == 0:
            os.store_int(shared, 42)
            os.write(1, b"child first\n")
            os._exit(0)
        os.write(1, b"parent reads %d\n" % os.load_int(shared))
        os.waitpid(pid, 0)

    for seed in (0, 1, 2, 3):
        assert forklab.run(main, seed=seed).stdout == b"child first\nparent reads 42\n"


def test_vfork_parent_is_released_by_the_childs_exec() -> None:
    def prog(os, argv):
        os.write(1, b"exec'd child got %s\n" % os.read(3, 10))  # sleeps until the released parent writes
        return 0

    def main(os):
        _r, w = os.pipe()  # fds 3 and 4, inherited over exec
        pid = os.vfork()
        if pid == 0:
            os.execv("/bin/prog", ["prog"])
        os.write(1, b"parent released\n")
        os.write(w, b"go")
        os.waitpid(pid, 0)

    run = forklab.run(main, programs={"/bin/prog": prog})
    assert run.stdout == b"parent released\nexec'd child got go\n"


def test_orphans_are_adopted_by_init_and_their_output_is_captured() -> None:
    def main(os):
        r, w = os.pipe()
        if os.fork() == 0:
            if os.fork() == 0:
                os.close(w)
                os.read(r, 1)  # EOF when its parent, the last writer, is gone
                os.write(1, b"orphan, parent %d\n" % os.getppid())
                os._exit(0)
            os._exit(0)
        os.close(r)
        os.close(w)
        os.wait()
        os.write(1, b"first process done\n")

    for seed in (0, 5):
        run = forklab.run(main, seed=seed)
        assert sorted(run.stdout.splitlines()) == [b"first process done", b"orphan, parent 1"]
        assert [t.pid for t in run.kernel.tasks] == [1]


def test_two_processes_waiting_on_each_other_are_a_deadlock_naming_both() -> None:
    def main(os):
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.read(r1, 1)  # waits for the parent
            os.write(w2, b"x")
            os._exit(0)
        os.read(r2, 1)  # waits for the child
        os.write(w1, b"x")

    with pytest.raises(Deadlock) as info:
        forklab.run(main)
    assert info.value.waits == [(2, "main", "pipe_read"), (3, "main", "pipe_read")]
    assert "pid 2 (main) waits on pipe_read" in str(info.value) and "pid 3 (main)" in str(info.value)


def test_a_parent_waiting_for_a_child_that_never_exits_is_a_deadlock() -> None:
    def main(os):
        r, _w = os.pipe()
        if os.fork() == 0:
            os.read(r, 1)
            os._exit(0)
        os.wait()

    with pytest.raises(Deadlock, match=r"wait_chldexit.*pipe_read"):
        forklab.run(main)


def test_job_control_stop_parks_the_task_until_sigcont() -> None:
    def main(os):
        pid = os.fork()
        if pid == 0:
            os.kill(os.getpid(), os.SIGSTOP)
            os.write(1, b"continued\n")
            os._exit(3)
        _, status = os.waitpid(pid, os.WUNTRACED)
        os.write(1, b"stopped by %d\n" % os.WSTOPSIG(status))
        os.kill(pid, os.SIGCONT)
        _, status = os.waitpid(pid, 0)
        os.write(1, b"exited %d\n" % os.WEXITSTATUS(status))

    assert forklab.run(main).stdout == b"stopped by 19\ncontinued\nexited 3\n"


def test_init_reaps_so_the_run_ends_when_every_process_is_gone() -> None:
    def main(os):
        for _ in range(5):
            if os.fork() == 0:
                os._exit(0)
        # no wait: the children are reparented to init when the first process exits

    run = forklab.run(main)
    assert run.status == 0
    assert [t.pid for t in run.kernel.tasks] == [1]


def test_a_large_deadlock_names_twenty_tasks_and_counts_the_rest() -> None:
    def main(os):
        r, _w = os.pipe()  # every process keeps a write end open: no reader ever sees EOF
        for _ in range(30):
            if os.fork() == 0:
                os.read(r, 1)
        os.read(r, 1)

    with pytest.raises(Deadlock) as info:
        forklab.run(main)
    assert len(info.value.waits) == 31
    assert str(info.value).endswith("; and 11 more (11 on pipe_read)")
