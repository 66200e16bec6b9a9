"""forklab.run: fork returns twice by re-execution, replay touches no kernel state, divergence is caught."""

from __future__ import annotations

import random
import textwrap

import pytest

import forklab
from forklab.runner import SharedStateWarning


def test_the_issue_example_child_exits_7_and_the_parent_prints_it() -> None:
    def main(os):
        pid = os.fork()
        if pid == 0:
            os.write(1, b"child %d\n" % os.getpid())
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        os.write(1, b"parent saw %d\n" % os.WEXITSTATUS(status))

    run = forklab.run(main, seed=0)
    assert run.stdout == b"child 3\nparent saw 7\n"
    assert run.stderr == b""
    assert run.status == 0
    assert run.pid == 2
    assert isinstance(run.kernel, forklab.Kernel)
    assert [t.pid for t in run.kernel.tasks] == [1]  # init reaped everyone


def test_output_written_before_a_fork_appears_once() -> None:
    def main(os):
        os.write(1, b"before\n")
        pid = os.fork()
        os.write(1, b"child\n" if pid == 0 else b"parent\n")
        if pid:
            os.wait()

    assert forklab.run(main).stdout == b"before\nparent\nchild\n"


def _prefix_then_fork(n: int):
    def main(os):
        r, w = os.pipe()
        for _ in range(n):
            os.write(w, b"x")
            os.read(r, 1)
        if os.fork() == 0:
            os._exit(0)
        os.wait()

    return main


def test_replay_makes_no_kernel_calls() -> None:
    # each syscall advances the model clock by 1 us: 100 more calls before the fork cost the
    # parent 100 us and the replaying child nothing
    short, long = forklab.run(_prefix_then_fork(0)), forklab.run(_prefix_then_fork(50))
    assert long.kernel.clock_ns - short.kernel.clock_ns == 100 * 1000
    assert long.replayed - short.replayed == 100


def test_the_trace_shows_nothing_from_a_child_before_its_fork_returns_0() -> None:
    rec = forklab.Recorder()
    run = forklab.run(_prefix_then_fork(20), trace=rec)
    child = run.pid + 1
    kinds = [e.kind for e in rec.events if e.tid == child]
    # the parent's clone wakes the child and writes CLONE_CHILD_SETTID for it; then only its exit
    assert kinds[:2] == ["wake_up_new_task", "schedule_tail"]
    assert "pipe_write" not in kinds and "pipe_read" not in kinds
    assert "do_exit" in kinds


def test_fork_is_glibcs_clone_with_child_settid_and_cleartid() -> None:
    rec = forklab.Recorder()
    forklab.run(lambda os: 0 if os.fork() == 0 else os.wait(), trace=rec)
    details = " ".join(e.detail for e in rec.events)
    assert "child wrote its tid" in details  # CLONE_CHILD_SETTID, written at the child's first schedule


def test_a_loop_of_n_forks_replays_n_times_n_minus_1_calls() -> None:
    def main(os):
        for _ in range(30):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)

    run = forklab.run(main)
    assert run.replayed == 30 * 29
    assert run.status == 0


def test_fork_fork_fork_gives_eight_processes() -> None:
    def main(os):
        os.fork()
        os.fork()
        os.fork()
        os.write(1, b"x")

    run = forklab.run(main)
    assert run.stdout == b"x" * 8
    assert run.kernel.total_forks == 1 + 7  # init's fork of the first process, then seven


def test_a_function_main_writing_a_global_diverges_with_pid_and_index() -> None:
    state = {"runs": 0}

    def main(os):
        state["runs"] += 1  # shared by every process: the child's re-run sees 2
        os.getpid()
        os.write(1, b"run %d\n" % state["runs"])
        os.fork()

    with pytest.raises(forklab.ReplayDivergence) as info:
        forklab.run(main)
    e = info.value
    assert (e.pid, e.index) == (3, 1)
    assert e.recorded == "write(1, b'run 1\\n')" and e.made == "write(1, b'run 2\\n')"
    assert "unseeded random" in str(e) and "id()" in str(e) and "state outside the program" in str(e)


COUNTER = 0


def test_a_global_counter_is_warned_about_and_diverges() -> None:
    def main(os):
        global COUNTER
        COUNTER += 1
        os.write(1, b"%d" % COUNTER)
        os.fork()

    with pytest.warns(SharedStateWarning, match="COUNTER"), pytest.raises(forklab.ReplayDivergence) as info:
        forklab.run(main)
    assert info.value.pid == 3 and info.value.index == 0


def test_unseeded_random_diverges() -> None:
    rng = random.Random()

    def main(os):
        os.write(1, b"%r" % rng.random())
        os.fork()

    with pytest.raises(forklab.ReplayDivergence, match=r"process 3 diverged .* at call 0"):
        forklab.run(main)


def test_os_urandom_and_the_clock_come_from_the_model_and_replay() -> None:
    def main(os):
        token, now = os.urandom(8), os.time_ns()
        pid = os.fork()
        os.write(1, b"%s %s %d\n" % (b"child" if pid == 0 else b"parent", token.hex().encode(), now))
        if pid:
            os.wait()

    run = forklab.run(main, seed=4)
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and lines[0].split()[1:] == lines[1].split()[1:]
    assert forklab.run(main, seed=4).stdout == run.stdout


def test_a_program_file_has_per_process_globals(tmp_path) -> None:
    prog = tmp_path / "counter.py"
    prog.write_text(textwrap.dedent("""
        counter = 0

        def bump():
            global counter
            counter += 1
            return counter

        def main(os):
            os.write(1, b"start %d\\n" % bump())
            pid = os.fork()
            os.write(1, b"%s %d\\n" % (b"child" if pid == 0 else b"parent", bump()))
            if pid:
                os.wait()
    """))
    run = forklab.run(str(prog))
    assert run.stdout == b"start 1\nparent 2\nchild 2\n"


def test_print_goes_to_fd_1_line_buffered_like_stdio() -> None:
    def main(os):
        print("hello", end="")  # a partial line in the buffer, copied by fork as stdio's is
        pid = os.fork()
        print(" from", "child" if pid == 0 else "parent")
        if pid:
            os.wait()

    assert forklab.run(main).stdout == b"hello from parent\nhello from child\n"


def test_os_exit_does_not_flush_print_but_returning_does() -> None:
    def main(os):
        print("lost", end="")
        if os.fork() == 0:
            os._exit(0)
        os.wait()
        print(" kept")

    assert forklab.run(main).stdout == b"lost kept\n"


def test_main_return_value_is_the_exit_status() -> None:
    assert forklab.run(lambda os: 5).status == 5 << 8
    assert forklab.run(lambda os: None).status == 0

    def exits(os):
        raise SystemExit(9)

    assert forklab.run(exits).status == 9 << 8
