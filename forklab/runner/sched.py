"""Choice points: which runnable task runs next, from the model's runqueues, seeded and recorded.

The candidates at every choice point are exactly the tasks on the model's runqueues
(``k.runqueues[cpu].queue``): a sleeping task is not there, and a woken one is put back by
the model's ``wake_up_process``. A decision reads only the queues' lengths and one entry, so
it costs the same with 5 tasks or 5,000.

Policies:

* seed 0, the Linux-like default: no preemption. At a choice point before a syscall the
  task that is running goes on (so the parent continues after fork); when it sleeps or
  exits, the task first in runqueue order (lowest CPU, then queue order) runs. On the
  runner's default single CPU that is the task runnable longest; with several CPUs the
  lowest CPU's queue goes first (the model keeps no global enqueue order), so init may reap
  earlier and a fork bomb can keep refilling the table until the step budget stops it.
* any other seed: every choice picks uniformly among the runnable tasks with a private
  ``random.Random(seed)``, which interleaves processes the ways a real run could.

Each decision is recorded as the chosen task's tid; ``Scheduler.schedule`` is that list. A
run given ``schedule=`` follows it decision by decision and then goes on with its seed's
policy, so a prefix of a schedule is a schedule too.

A *chooser* (``forklab.explore``'s) replaces the policy and the given schedule: at every
choice point it receives the task at the choice point (or None) and every runnable task, in
runqueue order, and returns one of them. Listing them walks the runqueues, so an exploring
run pays per runnable task at each decision; ordinary runs never call it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from forklab.errors import InternalError
from forklab.include.linux.sched import Task
from forklab.kernel.sched.core import Rq
from forklab.runner.errors import ScheduleMismatch

Chooser = Callable[[Task | None, list[Task]], Task | None]


class Scheduler:
    """Picks the next task at each choice point; ``choose(current)`` is the one entry point."""

    __slots__ = ("_chooser", "_forced", "_lookup", "_rng", "_runqueues", "decisions", "seed")

    def __init__(self, runqueues: list[Rq], seed: int, forced: Sequence[int] | None,
                 lookup: Callable[[int], Task | None], chooser: Chooser | None = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        self._runqueues = runqueues
        self.seed = seed
        self._rng = random.Random(seed) if seed else None
        self._forced = tuple(_check_schedule(forced)) if forced is not None else ()
        self._lookup = lookup
        if chooser is not None and (forced is not None or not callable(chooser)):
            raise TypeError("a chooser is a callable (current, runnable) -> task, and it replaces schedule=")
        self._chooser = chooser
        self.decisions: list[int] = []

    def choose(self, current: Task | None) -> Task | None:
        """The task to run now; ``current`` is the task at a choice point before its syscall, None after a block or exit."""
        step = len(self.decisions)
        task: Task | None
        if self._chooser is not None:
            task = self._chosen(current)
        elif step < len(self._forced):
            task = self._follow(step)
        elif self._rng is None:
            task = current if current is not None else self._first()
        else:
            task = self._random()
        if task is not None:
            self.decisions.append(task.pid)
        return task

    def runnable(self) -> list[Task]:
        """Every task on the runqueues, lowest CPU first, then queue order (walks them: choosers only)."""
        return [t for rq in self._runqueues for t in rq.queue]

    def _chosen(self, current: Task | None) -> Task | None:
        """The chooser's pick among the runnable tasks; InternalError if it picks one that cannot run."""
        assert self._chooser is not None
        runnable = self.runnable()
        task = self._chooser(current, runnable)
        if task is not None and not any(t is task for t in runnable):
            raise InternalError(f"the chooser picked task {task.pid}, which is not runnable")
        return task

    def _first(self) -> Task | None:
        """The first runnable task in runqueue order (lowest CPU, then queue order)."""
        for rq in self._runqueues:
            if rq.queue:
                return rq.queue[0]
        return None

    def _random(self) -> Task | None:
        """A runnable task chosen uniformly with the seeded PRNG."""
        assert self._rng is not None
        total = sum(len(rq.queue) for rq in self._runqueues)
        if not total:
            return None
        n = self._rng.randrange(total)
        for rq in self._runqueues:
            if n < len(rq.queue):
                return rq.queue[n]
            n -= len(rq.queue)
        raise AssertionError("unreachable: n < total")

    def _follow(self, step: int) -> Task:
        """The task a given schedule names at ``step``; ScheduleMismatch if it is not runnable."""
        tid = self._forced[step]
        task = self._lookup(tid)
        if task is None or not task.on_rq:
            runnable = sorted(t.pid for rq in self._runqueues for t in rq.queue)
            raise ScheduleMismatch(f"the schedule does not fit this program: decision {step} runs task {tid}, "
                                   f"which is not runnable then (runnable: {runnable or 'none'})")
        return task

    @property
    def schedule(self) -> tuple[int, ...]:
        """The decisions made so far, as tids: pass it as ``schedule=`` to replay the run."""
        return tuple(self.decisions)


def _check_schedule(schedule: Sequence[int]) -> list[int]:
    """The schedule as a list of tids; TypeError/ValueError for anything else."""
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence):
        raise TypeError("schedule must be a sequence of tids, as Run.schedule gives")
    for tid in schedule:
        if isinstance(tid, bool) or not isinstance(tid, int) or tid <= 0:
            raise ValueError(f"schedule entries are positive tids, not {tid!r}")
    return list(schedule)


__all__ = ["Chooser", "Scheduler"]
