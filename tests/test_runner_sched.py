"""Scheduling: seed 0 runs like Linux without preemption; other seeds interleave; schedules replay exactly."""

from __future__ import annotations

import json
import os as host_os
import subprocess
import sys
from pathlib import Path

import forklab

ROOT = Path(__file__).resolve().parent.parent


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


def test_seed_0_lets_the_parent_continue_after_fork() -> None:
    def main(os):
        pid = os.fork()
        os.write(1, b"child\n" if pid == 0 else b"parent\n")
        if pid:
            os.wait()

    assert forklab.run(main, seed=0).stdout == b"parent\nchild\n"


def test_seed_0_runs_each_child_to_its_end_in_order() -> None:
    assert forklab.run(two_writers, seed=0).stdout == b"a1 a2 b1 b2 "


def test_other_seeds_interleave() -> None:
    outputs = {forklab.run(two_writers, seed=seed).stdout for seed in range(1, 40)}
    assert len(outputs) > 1
    for out in outputs:  # each child's writes stay in its own order
        words = out.split()
        assert sorted(words) == [b"a1", b"a2", b"b1", b"b2"]
        assert words.index(b"a1") < words.index(b"a2") and words.index(b"b1") < words.index(b"b2")


def test_the_same_seed_gives_the_same_run() -> None:
    first, again = forklab.run(two_writers, seed=11), forklab.run(two_writers, seed=11)
    assert (first.stdout, first.status, first.schedule) == (again.stdout, again.status, again.schedule)


def test_a_schedule_replays_the_run_exactly() -> None:
    for seed in (3, 8, 21):
        run = forklab.run(two_writers, seed=seed)
        again = forklab.run(two_writers, schedule=run.schedule)
        assert (again.stdout, again.status, again.schedule) == (run.stdout, run.status, run.schedule)


def test_a_schedule_prefix_then_the_seeds_policy() -> None:
    run = forklab.run(two_writers, seed=5)
    again = forklab.run(two_writers, schedule=run.schedule[:4], seed=0)
    assert again.schedule[:4] == run.schedule[:4]


SCRIPT = """
import json, sys
import forklab
run = forklab.run(sys.argv[1], seed=int(sys.argv[2]))
print(json.dumps([run.stdout.decode(), run.status, list(run.schedule)]))
"""


def test_runs_are_identical_in_two_interpreters_with_different_hash_seeds() -> None:
    prog = str(ROOT / "examples" / "fork_fork_fork.py")
    results = []
    for hashseed in ("1", "12345"):
        env = {**host_os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", SCRIPT, prog, "7"], capture_output=True, text=True, check=True,
                             env=env)
        results.append(json.loads(out.stdout))
    here = forklab.run(prog, seed=7)
    assert results[0] == results[1] == [here.stdout.decode(), here.status, list(here.schedule)]


class _CountingQueue(list):
    """A runqueue that counts how often a decision walks it."""

    walks = 0

    def __iter__(self):
        _CountingQueue.walks += 1
        return super().__iter__()


def test_a_decision_indexes_the_runqueues_and_never_walks_them() -> None:
    from forklab.include.linux.sched import Task
    from forklab.kernel.sched.core import Rq
    from forklab.runner.sched import Scheduler

    for n in (5, 5000):
        queue = _CountingQueue(Task(pid=i + 1, on_rq=1) for i in range(n))
        rqs = [Rq(0, n, queue), Rq(1, 0, _CountingQueue())]
        _CountingQueue.walks = 0
        for seed in (0, 9):
            sched = Scheduler(rqs, seed, None, lambda tid: None)
            for _ in range(100):
                assert sched.choose(None) in queue
                assert sched.choose(queue[0]) in queue
        assert _CountingQueue.walks == 0
