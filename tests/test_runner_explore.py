"""forklab.explore: every outcome over every schedule, by DPOR with sleep sets; each outcome replays exactly."""

from __future__ import annotations

import itertools

import pytest

import forklab
from forklab.runner import Deadlock, ScheduleMismatch
from forklab.runner.core import setup
from forklab.runner.footprint import EVERYTHING, Footprint, conflicting


def two_writers(os):
    pids = []
    for name in (b"a", b"b"):
        pid = os.fork()
        if pid == 0:
            os.write(1, name + b"1 ")
            os.write(1, name + b"2 ")
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)


def fork_fork(os):
    a = os.fork()
    b = os.fork()
    os.write(1, b"%d %d\n" % (a, b))


def assert_reproducible(main, exploration: forklab.Exploration, **options) -> None:
    """Every outcome's schedule gives exactly that outcome under forklab.run."""
    for outcome in exploration.outcomes:
        if outcome.error is not None:
            with pytest.raises(Deadlock):
                forklab.run(main, schedule=outcome.schedule, **options)
            continue
        run = forklab.run(main, schedule=outcome.schedule, **options)
        assert (run.stdout, run.stderr, run.status) == (outcome.stdout, outcome.stderr, outcome.status)
        assert run.schedule == outcome.schedule


def interleavings(a: list[bytes], b: list[bytes]) -> set[bytes]:
    """Every merge of two sequences that keeps each one's order."""
    out = set()
    for slots in itertools.combinations(range(len(a) + len(b)), len(a)):
        ia, ib, words = iter(a), iter(b), []
        for i in range(len(a) + len(b)):
            words.append(next(ia) if i in slots else next(ib))
        out.add(b"".join(words))
    return out


# --- the targets ----------------------------------------------------------------------


def test_two_children_with_two_writes_each_give_all_6_outcomes_in_at_most_100_runs() -> None:
    ex = forklab.explore(two_writers)
    assert ex.complete and ex.basis == "all schedules"
    assert set(ex.stdouts) == interleavings([b"a1 ", b"a2 "], [b"b1 ", b"b2 "])
    assert len(ex.outcomes) == 6
    assert ex.runs <= 100
    assert all(o.status == 0 and o.stderr == b"" and o.error is None for o in ex.outcomes)
    assert_reproducible(two_writers, ex)


def test_fork_fork_printing_both_results_gives_all_48_outcomes_in_at_most_2000_runs() -> None:
    ex = forklab.explore(fork_fork)
    assert ex.complete and ex.basis == "all schedules"
    assert len(ex.outcomes) == 48
    assert ex.runs <= 2000
    lines = {frozenset(o.stdout.splitlines()) for o in ex.outcomes}
    # the second forks of the parent (pid 2) and of its first child (pid 3) take pids 4 and 5 in either order
    assert lines == {frozenset({b"3 4", b"0 5", b"3 0", b"0 0"}), frozenset({b"3 5", b"0 4", b"3 0", b"0 0"})}
    assert_reproducible(fork_fork, ex)


# --- bounds and budgets -----------------------------------------------------------------------


def test_a_preemption_bound_covers_fewer_schedules_in_fewer_runs() -> None:
    full = forklab.explore(fork_fork)
    none = forklab.explore(fork_fork, preemption_bound=0)
    assert none.basis == "all schedules within 0 preemptions" and none.complete
    assert none.runs < full.runs
    assert {o.stdout for o in none.outcomes} < {o.stdout for o in full.outcomes}
    assert_reproducible(fork_fork, none)
    # without preemption a child runs from its start to its exit once it is picked
    assert set(forklab.explore(two_writers, preemption_bound=0).stdouts) == {b"a1 a2 b1 b2 ", b"b1 b2 a1 a2 "}


def test_a_preemption_bound_is_every_schedule_within_it() -> None:
    for bound in (0, 1):
        ex = forklab.explore(two_writers, preemption_bound=bound)
        assert ex.complete and ex.basis == f"all schedules within {bound} preemptions"
        assert {(o.stdout, o.status) for o in ex.outcomes} == exhaustive(two_writers, bound)
    one = forklab.explore(two_writers, preemption_bound=1)
    assert len(one.outcomes) == 4  # a1 a2 b1 b2, b1 b2 a1 a2, and one preemption: a1 b1 b2 a2, b1 a1 a2 b2
    assert_reproducible(two_writers, one)


def test_max_runs_reached_is_not_complete() -> None:
    ex = forklab.explore(fork_fork, max_runs=5)
    assert ex.runs == 5 and not ex.complete
    assert 1 <= len(ex.outcomes) <= 5
    assert_reproducible(fork_fork, ex)


def test_a_program_with_one_schedule_is_complete_in_one_run() -> None:
    ex = forklab.explore(lambda os: os.write(1, b"hi\n") and 0)
    assert (ex.runs, ex.complete, [o.stdout for o in ex.outcomes]) == (1, True, [b"hi\n"])


# --- what is explored -------------------------------------------------------------------------


def test_a_pipe_reader_sees_each_writer_order() -> None:
    def main(os):
        r, w = os.pipe()
        for word in (b"x", b"y"):
            if os.fork() == 0:
                os.close(r)
                os.write(w, word)
                os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 1):
            data += chunk
        os.write(1, data)
        os.wait()
        os.wait()

    ex = forklab.explore(main)
    assert ex.complete and set(ex.stdouts) == {b"xy", b"yx"}
    assert_reproducible(main, ex)


def test_a_kill_races_with_the_childs_write() -> None:
    def main(os):
        pid = os.fork()
        if pid == 0:
            os.write(1, b"child ")
            os._exit(0)
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        os.write(1, b"killed" if os.WIFSIGNALED(status) else b"exited")

    ex = forklab.explore(main)
    assert ex.complete
    assert set(ex.stdouts) == {b"killed", b"child killed", b"child exited"}
    assert_reproducible(main, ex)


def test_the_clock_is_explored_precisely_when_a_program_reads_it() -> None:
    def main(os):
        if os.fork() == 0:
            os.getpid()
            os._exit(0)
        os.write(1, b"%d" % os.time_ns())
        os.wait()

    ex = forklab.explore(main)
    assert ex.complete
    assert len(ex.outcomes) >= 2  # the child's getpid and exit may come before the clock is read, or not
    assert_reproducible(main, ex)


def test_inits_reaping_is_explored_when_a_program_looks_for_an_orphan() -> None:
    def main(os):
        pid_r, pid_w = os.pipe()
        eof_r, eof_w = os.pipe()
        if os.fork() == 0:
            grandchild = os.fork()
            if grandchild == 0:
                os._exit(0)  # its end of the second pipe closes: the first process sees EOF
            os.write(pid_w, b"%d" % grandchild)
            os._exit(0)  # the grandchild is init's now
        os.close(eof_w)
        grandchild = int(os.read(pid_r, 16))
        while os.read(eof_r, 1):
            pass
        try:
            os.kill(grandchild, 0)  # it has exited: a zombie until init reaps it
            os.write(1, b"a zombie")
        except ProcessLookupError:
            os.write(1, b"reaped by init")

    ex = forklab.explore(main)
    assert ex.complete
    assert set(ex.stdouts) == {b"a zombie", b"reaped by init"}
    assert_reproducible(main, ex)


def test_a_deadlock_is_an_outcome_that_its_schedule_reproduces() -> None:
    def main(os):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            os.write(1, b"child got %r\n" % os.read(r, 1))
            os._exit(0)
        os.write(w, b"x")
        os.write(1, b"parent got %r\n" % os.read(r, 1))  # if the child took the byte, this sleeps for ever
        os.close(w)
        os.waitpid(pid, 0)

    ex = forklab.explore(main)
    assert ex.complete
    finished = [o for o in ex.outcomes if o.error is None]
    stuck = [o for o in ex.outcomes if o.error is not None]
    assert [o.stdout for o in finished] == [b"parent got b'x'\nchild got b''\n"]
    assert [(o.stdout, o.status) for o in stuck] == [(b"child got b'x'\n", None)]
    assert "pid 2 (main) waits on pipe_read" in (stuck[0].error or "")
    assert_reproducible(main, ex)


@pytest.mark.parametrize(("name", "bound"), [("pipe", 2), ("kill", 2), ("writers", 1)])
def test_dpor_finds_every_outcome_of_the_schedules_with_few_preemptions(name: str, bound: int) -> None:
    main = {"pipe": pipe_pair, "kill": kill_race, "writers": two_writers}[name]
    ex = forklab.explore(main)
    assert ex.complete
    assert exhaustive(main, bound) <= {(o.stdout, o.status) for o in ex.outcomes}
    assert_reproducible(main, ex)


def pipe_pair(os):
    r, w = os.pipe()
    if os.fork() == 0:
        os.write(w, b"c")
        os._exit(0)
    os.write(w, b"p")
    os.close(w)
    os.write(1, os.read(r, 2))
    os.wait()


def kill_race(os):
    pid = os.fork()
    if pid == 0:
        os.write(1, b"c")
        os._exit(1)
    os.kill(pid, 15)
    os.write(1, b"%d" % os.waitpid(pid, 0)[1])


def test_outcomes_and_runs_are_the_same_every_time() -> None:
    first, again = forklab.explore(two_writers), forklab.explore(two_writers)
    assert first == again


# --- errors -----------------------------------------------------------------------------------


def test_bad_arguments_are_type_and_value_errors() -> None:
    with pytest.raises(TypeError, match="max_runs"):
        forklab.explore(two_writers, max_runs="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_runs"):
        forklab.explore(two_writers, max_runs=0)
    with pytest.raises(TypeError, match="preemption_bound"):
        forklab.explore(two_writers, preemption_bound=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="preemption_bound"):
        forklab.explore(two_writers, preemption_bound=-1)
    with pytest.raises(TypeError):
        forklab.explore(42)


def test_a_run_error_carries_its_schedule() -> None:
    state = {"n": 0}

    def main(os):
        state["n"] += 1
        os.write(1, b"%d" % state["n"])
        os.fork()

    with pytest.raises(forklab.ReplayDivergence) as info:
        forklab.explore(main)
    assert any("schedule" in note for note in info.value.__notes__)


def test_a_nondeterministic_program_is_caught() -> None:
    outside = iter(range(1000))

    def main(os):
        if next(outside) % 2 == 0:  # state outside the program: each run forks or not
            if os.fork() == 0:
                os._exit(0)
            os.wait()
        os.write(1, b"x")
        if os.fork() == 0:
            os._exit(0)
        os.wait()

    with pytest.raises((ScheduleMismatch, forklab.ReplayDivergence)):
        forklab.explore(main)


# --- the pieces -------------------------------------------------------------------------------


def test_footprints_conflict_unless_both_read_or_both_commute() -> None:
    assert not conflicting("r", "r") and not conflicting("a", "a")
    assert conflicting("r", "a") and conflicting("r", "w") and conflicting("a", "w") and conflicting("w", "w")
    write = Footprint(((("inode", 7), "w"),))
    read_other = Footprint(((("inode", 8), "r"),))
    assert write.conflicts(write) and not write.conflicts(read_other)
    assert EVERYTHING.conflicts(read_other) and read_other.conflicts(EVERYTHING)


def test_the_runner_exposes_each_runnable_tasks_pending_call() -> None:
    seen = []

    def chooser(current, runnable):
        for task in runnable:
            pending = runner.pending(task)
            seen.append((task.pid, pending.kind, pending.name))
        return current if current is not None else (runnable[0] if runnable else None)

    runner = setup(two_writers).runner(0, None, chooser)
    runner.execute()
    assert runner.result().stdout == b"a1 a2 b1 b2 "
    kinds = {kind for _, kind, _ in seen}
    assert {"start", "call", "reissue", "end"} <= kinds
    assert (3, "call", "write") in seen and (2, "reissue", "wait4") in seen


def test_a_chooser_replaces_a_schedule() -> None:
    with pytest.raises(TypeError, match="chooser"):
        setup(two_writers).runner(0, [1], lambda current, runnable: None)


# --- a reference: every schedule, without reduction --------------------------------------------


def exhaustive(main, bound: int | None) -> set[tuple[bytes, int]]:
    """The (stdout, status) of every schedule with at most ``bound`` preemptions, by trying them all."""
    request = setup(main)
    path: list[list] = []  # per choice point: [runnable tids, current, chosen, preemptions before, tried]
    found = set()
    while True:
        runner = request.runner(0, None, _follow_then_first(path))
        runner.execute()
        found.add((runner.result().stdout, runner.result().status))
        while path:
            tids, cur, _, before, tried = path[-1]
            rest = [t for t in tids if t not in tried and (bound is None or before + (cur != 0 and t != cur) <= bound)]
            if rest:
                path[-1][2] = rest[0]
                tried.append(rest[0])
                break
            path.pop()
        if not path:
            return found


def _follow_then_first(path: list[list]):
    """A chooser that follows ``path``, then lets the current task go on (else the first), extending ``path``."""
    depth = itertools.count()

    def chooser(current, runnable):
        n = next(depth)
        if not runnable:
            return None
        tids = [t.pid for t in runnable]
        if n < len(path):
            return runnable[tids.index(path[n][2])]
        cur = current.pid if current is not None else 0
        before = path[-1][3] + (1 if path[-1][1] and path[-1][2] != path[-1][1] else 0) if path else 0
        pick = cur or tids[0]
        path.append([tids, cur, pick, before, [pick]])
        return runnable[tids.index(pick)]

    return chooser
