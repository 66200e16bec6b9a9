"""``forklab.explore``: every outcome a program can have, by stateless DPOR with sleep sets.

The explorer runs the program again and again on fresh kernels. Each run follows a prefix of
decisions (a path in the tree of choice points), then extends it: at each new choice point
the task at the choice point goes on if it may, else the first runnable task in runqueue
order. After a run, dynamic partial-order reduction (Flanagan and Godefroid, POPL 2005)
finds the steps that race and adds, at the choice point before the earlier one, the task
that must run there for the other order to be tried; sleep sets skip orders already covered.
Two steps are dependent when their footprints conflict (``forklab.runner.footprint``). The
exploration is complete when no choice point has a task left to try: every outcome of every
schedule has then been seen, because schedules that differ only in the order of independent
steps end in the same state.

Happens-before. A step of task p comes after p's previous step, after every earlier step it
depends on, and after the step that made p runnable (its fork, or the write, exit or kill
that woke it). Races are checked for each step over the choice points where its task was
runnable with that step pending, as the recursive algorithm checks next(s, p) at each
state. A step that takes another runnable task off the runqueues (a kill that stops it)
is widened to conflict with everything. A run in which every runnable task is asleep adds
nothing new: it is cut short, after its races are checked.

Preemption bounding. With ``preemption_bound=k`` the explorer tries every schedule with at
most k preemptions (switching away from a task at its choice point; a switch after a block
or an exit is free), without reduction. A bound makes otherwise independent steps dependent
(the cheap order of two independent steps may be the one DPOR never runs), so reducing
within it needs the extra choice points of bounded POR (Coons, Musuvathi and McKinley,
OOPSLA 2013); exhaustive search is the plainly sound choice. It grows polynomially with the
run's length for a fixed k, where an unbounded exploration may grow exponentially.

Outcomes. An outcome is stdout, stderr and the first process's status (or the deadlock a
schedule ends in); each keeps the first schedule that produced it, and
``forklab.run(main, schedule=outcome.schedule)`` reproduces it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from forklab.errors import Unmodelled
from forklab.include.linux.sched import Task
from forklab.runner.core import Runner, Setup, setup
from forklab.runner.errors import Deadlock, RunError, ScheduleMismatch
from forklab.runner.footprint import EVERYTHING, Footprint, Resource, footprint

Clock = dict[int, int]


@dataclass(slots=True, frozen=True)
class Outcome:
    """One distinct result: what fds 1 and 2 received, the first process's wait status, a schedule giving it.

    ``status`` is None and ``error`` names the sleepers when the schedule ends in a deadlock.
    """

    stdout: bytes
    stderr: bytes
    status: int | None
    schedule: tuple[int, ...]
    error: str | None = None


@dataclass(slots=True, frozen=True)
class Exploration:
    """The result of ``forklab.explore``: the distinct outcomes, the runs made, and what they cover.

    ``complete`` says the outcomes are all there are on ``basis``: "all schedules", or "all
    schedules within k preemptions" with a preemption bound; False when ``max_runs`` ran out.
    """

    outcomes: tuple[Outcome, ...]
    runs: int
    complete: bool
    basis: str

    @property
    def stdouts(self) -> list[bytes]:
        """The outcomes' stdout, sorted."""
        return sorted(o.stdout for o in self.outcomes)


class _Pruned(RunError):
    """Every runnable task is asleep: this run can reach no new outcome."""


class _Restart(RunError):
    """A step may read state the relaxed relation hides: the exploration starts over with precise footprints."""


@dataclass(slots=True, eq=False)
class _Node:
    """A choice point on the current path: who could run, who ran, and what is left to try."""

    enabled: tuple[int, ...]
    current: int  # the task at its choice point before a call, 0 after a block or an exit
    chosen: int
    sleep: dict[int, Footprint]
    preemptions: int  # in the decisions before this one
    backtrack: list[int] = field(default_factory=list)
    tried: list[int] = field(default_factory=list)
    fps: dict[int, Footprint] = field(default_factory=dict)  # each tried task's step from here

    def preempts(self, tid: int) -> int:
        """1 if running ``tid`` here switches away from the task at its choice point."""
        return 1 if self.current and tid != self.current else 0


@dataclass(slots=True, eq=False)
class _Step:
    """One step of a run: the task, its footprint, and what the happens-before pass works out."""

    tid: int
    fp: Footprint
    local: int = 0  # this task's steps so far, this one included
    vc: Clock = field(default_factory=dict)  # the step's vector clock
    pre: Clock = field(default_factory=dict)  # its task's clock before the step's own dependencies
    deps: list[int] = field(default_factory=list)  # earlier steps of other tasks it depends on


class _History:
    """The steps so far, indexed by resource and mode, to find a step's dependencies quickly."""

    __slots__ = ("alls", "by_resource", "tids")

    def __init__(self) -> None:
        self.by_resource: dict[Resource, tuple[list[int], list[int], list[int]]] = {}
        self.alls: list[int] = []
        self.tids: list[int] = []

    def conflicting(self, fp: Footprint, tid: int) -> list[int]:
        """Indices of the recorded steps of other tasks that ``fp`` conflicts with, in order."""
        if fp.touches_all:
            return [i for i, t in enumerate(self.tids) if t != tid]
        found = set(self.alls)
        for resource, mode in fp.accesses:
            lists = self.by_resource.get(resource)
            if lists is None:
                continue
            readers, adders, writers = lists
            found.update(writers)
            if mode != "r":
                found.update(readers)
            if mode != "a":
                found.update(adders)
        return sorted(i for i in found if self.tids[i] != tid)

    def add(self, tid: int, fp: Footprint) -> None:
        """Record the next step."""
        index = len(self.tids)
        self.tids.append(tid)
        if fp.touches_all:
            self.alls.append(index)
            return
        for resource, mode in fp.accesses:
            lists = self.by_resource.setdefault(resource, ([], [], []))
            lists["raw".index(mode)].append(index)


def _join(into: Clock, other: Clock) -> None:
    """``into`` := the pointwise maximum of both clocks."""
    for key, value in other.items():
        if into.get(key, 0) < value:
            into[key] = value


class _Explorer:
    """The exploration tree's current path, the outcomes so far, and the DPOR bookkeeping of one run."""

    __slots__ = ("asleep", "bound", "disabled", "outcomes", "precise", "prefix", "runner", "setup", "stack", "steps",
                 "wakes")

    def __init__(self, request: Setup, bound: int | None) -> None:
        self.setup = request
        self.bound = bound
        self.precise = 0  # the hidden state made precise (footprint.CLOCK, REAPS)
        self.stack: list[_Node] = []
        self.outcomes: dict[tuple[bytes, bytes, int | None, str | None], Outcome] = {}
        self.prefix = 0
        self.runner: Runner | None = None
        self.steps: list[_Step] = []
        self.wakes: list[list[int]] = []
        self.disabled: list[list[int]] = []
        self.asleep: tuple[tuple[int, ...], dict[int, Footprint]] = ((), {})

    # --- one run --------------------------------------------------------------------------------

    def run_once(self) -> None:
        """Run the program along the current path and on; check its races; keep its outcome."""
        self.prefix = len(self.stack)
        self.steps, self.wakes, self.disabled = [], [], []
        runner = self.setup.runner(0, None, self.choose)
        self.runner = runner
        error: str | None = None
        try:
            runner.execute()
        except _Pruned:
            self._analyse(pruned=True)
            return
        except Deadlock as e:
            error = str(e)
        except _Restart:
            raise
        except Exception as e:
            e.add_note(f"forklab.explore: in the run with schedule {runner.sched.schedule}")
            raise
        finally:
            self.runner = None
        self._analyse(pruned=False)
        result = runner.result()
        status = None if error is not None else result.status
        key = (result.stdout, result.stderr, status, error)
        self.outcomes.setdefault(key, Outcome(result.stdout, result.stderr, status, result.schedule, error))

    def choose(self, current: Task | None, runnable: list[Task]) -> Task | None:
        """The scheduler's chooser: follow the path, then extend it; record each step's footprint."""
        runner = self.runner
        assert runner is not None
        n = len(self.steps)
        enabled = tuple(t.pid for t in runnable)
        if n:
            self._finish_step(n - 1, enabled)
        if not runnable:
            return None
        cur = current.pid if current is not None and any(t is current for t in runnable) else 0
        node = self._node(n, enabled, cur)
        task = runnable[enabled.index(node.chosen)]
        pending = runner.pending(task)
        if pending.kind == "start" and any(s.tid == task.pid for s in self.steps):
            raise Unmodelled(f"forklab.explore: pid {task.pid} was used twice in one run (the pid space wrapped); "
                             "the explorer names tasks by pid")
        if self.bound is not None:
            fp = EVERYTHING  # no reduction within a bound: footprints are not needed
        else:
            fp = footprint(runner.kernel, task, pending, self.precise)
        if fp.observes & ~self.precise:
            self.precise |= fp.observes
            raise runner.fail(_Restart("a step may read hidden state"))
        self.steps.append(_Step(node.chosen, fp))
        self.wakes.append([])
        self.disabled.append([])
        return task

    def _node(self, n: int, enabled: tuple[int, ...], cur: int) -> _Node:
        """The choice point at depth ``n``: the path's (checked against this run) or a new one."""
        if n < len(self.stack):
            node = self.stack[n]
            if node.enabled != enabled or node.current != cur:
                raise ScheduleMismatch(f"forklab.explore: decision {n} has runnable tasks {list(enabled)} where an "
                                       f"earlier run had {list(node.enabled)}: the program is not deterministic")
            return node
        sleep = self._child_sleep(enabled) if n else {}
        awake = [t for t in enabled if t not in sleep]
        if not awake:
            self.asleep = (enabled, sleep)
            assert self.runner is not None
            raise self.runner.fail(_Pruned("every runnable task is asleep"))
        chosen = cur if cur in awake else awake[0]
        before = self.stack[n - 1] if n else None
        preemptions = before.preemptions + before.preempts(before.chosen) if before is not None else 0
        backtrack = list(enabled) if self.bound is not None else [chosen]  # bounded: every task, within the bound
        node = _Node(enabled, cur, chosen, sleep, preemptions, backtrack, [chosen])
        self.stack.append(node)
        return node

    def _child_sleep(self, enabled: tuple[int, ...]) -> dict[int, Footprint]:
        """The sleep set after the last step: the parent's sleepers and tried siblings independent of it."""
        if self.bound is not None:
            return {}
        parent = self.stack[len(self.steps) - 1]
        step = parent.fps[parent.chosen]
        candidates = dict(parent.sleep)
        for tid in parent.tried:
            if tid != parent.chosen:
                candidates[tid] = parent.fps[tid]
        return {tid: fp for tid, fp in sorted(candidates.items())
                if tid != parent.chosen and tid in enabled and not fp.conflicts(step)}

    def _finish_step(self, i: int, after: tuple[int, ...]) -> None:
        """Step ``i`` is over: note whom it woke; one that took a runnable task off the queues touched all."""
        step, node = self.steps[i], self.stack[i]
        actor = step.tid
        self.wakes[i] = [t for t in after if t != actor and t not in node.enabled]
        self.disabled[i] = [t for t in node.enabled if t != actor and t not in after]
        if self.disabled[i]:
            step.fp = EVERYTHING
        node.fps[actor] = step.fp

    # --- races ------------------------------------------------------------------------------------

    def _analyse(self, pruned: bool) -> None:
        """Happens-before over the run's steps, then the races of its new steps (and of the sleepers if cut)."""
        if self.bound is not None:
            return  # every choice is tried already
        history = _History()
        clocks: dict[int, Clock] = {}
        for j, step in enumerate(self.steps):
            if j >= self.prefix - 1:
                for tid in self.disabled[j]:  # its pending step, which never ran, could have run before step j
                    self._races(j, self._pending(tid, EVERYTHING, history, clocks))
                    self._backtrack(j, [tid])
            self._clock(j, step, history, clocks)
            if j >= self.prefix - 1:
                self._races(j, step)
        if pruned:
            enabled, sleep = self.asleep
            for tid in enabled:
                self._races(len(self.steps), self._pending(tid, sleep[tid], history, clocks))

    def _pending(self, tid: int, fp: Footprint, history: _History, clocks: dict[int, Clock]) -> _Step:
        """A step ``tid`` could take next but does not take in this run, placed after the steps so far."""
        pending = _Step(tid, fp)
        pending.pre = clocks.get(tid, {})
        pending.deps = history.conflicting(fp, tid)
        pending.vc = dict(pending.pre)
        for i in pending.deps:
            _join(pending.vc, self.steps[i].vc)
        return pending

    def _clock(self, j: int, step: _Step, history: _History, clocks: dict[int, Clock]) -> None:
        """Give step ``j`` its vector clock and pass it to the tasks it woke."""
        pre = clocks.get(step.tid, {})
        step.pre = pre
        step.deps = history.conflicting(step.fp, step.tid)
        vc = dict(pre)
        for i in step.deps:
            _join(vc, self.steps[i].vc)
        step.local = pre.get(step.tid, 0) + 1
        vc[step.tid] = step.local
        step.vc = vc
        clocks[step.tid] = vc
        for tid in self.wakes[j]:
            woken = dict(clocks.get(tid, {}))
            _join(woken, vc)
            clocks[tid] = woken
        history.add(step.tid, step.fp)

    def _before(self, i: int, clock: Clock) -> bool:
        """Step ``i`` happens before whatever has vector clock ``clock``."""
        step = self.steps[i]
        return step.local <= clock.get(step.tid, 0)

    def _races(self, j: int, step: _Step) -> None:
        """Each step ``step`` (at depth ``j``) races with: it depends on it, with nothing ordering them in between.

        For each race the other order is made possible at the earlier step's choice point by a
        task that can start a schedule reversing it (the race's initials, as in source-DPOR).
        """
        deps = [i for i in step.deps if not self._before(i, step.pre)]
        for i in deps:
            if any(k > i and self._before(i, self.steps[k].vc) for k in deps):
                continue  # ordered through another step it depends on
            self._reverse(i, j, step)

    def _reverse(self, i: int, j: int, step: _Step) -> None:
        """Make the other order of the race (i, j) reachable: one of its initials is tried at depth ``i``."""
        node = self.stack[i]
        later = [k for k in range(i + 1, j) if not self._before(i, self.steps[k].vc)]
        initials: list[int] = []
        seen: list[int] = []
        for k in later:
            tid = self.steps[k].tid
            if tid not in seen:
                seen.append(tid)
                if not any(self._before(m, self.steps[k].vc) for m in later if m < k):
                    initials.append(tid)
        if step.tid not in seen and not any(self._before(m, step.vc) for m in later):
            initials.append(step.tid)
        runnable = [t for t in initials if t in node.enabled]
        if not runnable:
            self._backtrack(i, list(node.enabled))  # no initial can run there: try them all (Flanagan-Godefroid)
        elif not any(t in node.backtrack for t in runnable):
            self._backtrack(i, runnable[:1])

    def _backtrack(self, i: int, tids: list[int]) -> None:
        """Try ``tids`` at depth ``i``."""
        node = self.stack[i]
        for tid in tids:
            if tid not in node.backtrack:
                node.backtrack.append(tid)

    # --- the tree -----------------------------------------------------------------------------

    def advance(self) -> bool:
        """Move to the next branch to try: the deepest choice point with a task left; False if none is."""
        while self.stack:
            node = self.stack[-1]
            for tid in node.backtrack:
                if tid in node.tried or tid in node.sleep:
                    continue
                if self.bound is not None and node.preemptions + node.preempts(tid) > self.bound:
                    continue
                node.chosen = tid
                node.tried.append(tid)
                return True
            self.stack.pop()
        return False

    def restart_precise(self) -> None:
        """Start over with the footprints ``precise`` now asks for (a step may read the clock or init's reaping)."""
        self.stack = []
        self.outcomes = {}


def explore(program: object, *, max_runs: int = 10_000, preemption_bound: int | None = None,
            programs: Mapping[str, object] | None = None, argv: Sequence[str] | None = None,
            env: Mapping[str, str] | None = None, stdin: bytes = b"", max_steps: int = 1_000_000,
            timeout: float | None = 60.0, threads_max: int = 1024, nr_cpus: int = 1,
            version: str = "5.6.14", standard_programs: bool = True) -> Exploration:
    """Every distinct outcome of ``program`` over its schedules (see the module docstring).

    ``max_runs`` bounds the runs; ``preemption_bound`` limits the schedules to those with at
    most that many preemptions. The other arguments are ``forklab.run``'s. Raises what a run
    raises (RunError but Deadlock, which is an outcome), with the schedule in a note.
    """
    _check(max_runs, preemption_bound)
    request = setup(program, programs=programs, argv=argv, env=env, stdin=stdin, max_steps=max_steps,
                    timeout=timeout, threads_max=threads_max, nr_cpus=nr_cpus, version=version,
                    standard_programs=standard_programs)
    explorer = _Explorer(request, preemption_bound)
    runs, complete = 0, False
    while runs < max_runs:
        runs += 1
        try:
            explorer.run_once()
        except _Restart:
            explorer.restart_precise()
            continue
        if not explorer.advance():
            complete = True
            break
    basis = "all schedules" if preemption_bound is None else f"all schedules within {preemption_bound} preemptions"
    return Exploration(tuple(explorer.outcomes.values()), runs, complete, basis)


def _check(max_runs: int, preemption_bound: int | None) -> None:
    """TypeError/ValueError for a bad run budget or bound."""
    if isinstance(max_runs, bool) or not isinstance(max_runs, int):
        raise TypeError(f"max_runs must be an int, not {type(max_runs).__name__}")
    if max_runs <= 0:
        raise ValueError(f"max_runs must be positive, not {max_runs}")
    if preemption_bound is None:
        return
    if isinstance(preemption_bound, bool) or not isinstance(preemption_bound, int):
        raise TypeError(f"preemption_bound must be an int or None, not {type(preemption_bound).__name__}")
    if preemption_bound < 0:
        raise ValueError(f"preemption_bound must be 0 or more, not {preemption_bound}")


__all__ = ["Exploration", "Outcome", "explore"]
