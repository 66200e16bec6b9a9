"""Random small programs: fork, exit, wait, pipe, kill, exec, setpgid, stop and continue, run and explored.

A program is a tree of operations that ``run_ops`` interprets in each process. After every
run the kernel's invariants hold and no task is left but init and the zombies it has not yet
reaped. Explored, every outcome a seeded run gives is among the outcomes, and each outcome's
schedule reproduces it.

Programs that may hang on Linux too are not generated: a process that stops a child and is
killed before it continues it leaves the child stopped for ever, so fatal signals and stops
are not mixed in one program.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forklab

SIGKILL, SIGTERM, SIGCONT, SIGSTOP = 9, 15, 18, 19
WUNTRACED = 2
PROGRAMS = {"/bin/sub": lambda os, argv: os.write(1, argv[1].encode()) and 3}
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)

Ops = tuple[tuple[object, ...], ...]


def run_ops(os, ops: Ops) -> None:
    """Run ``ops`` in this process; ``kids`` are the children it forked, the last one is the target."""
    kids: list[int] = []
    for op in ops:
        step(os, op, kids)


def step(os, op: tuple[object, ...], kids: list[int]) -> None:
    """One operation."""
    kind, *args = op
    if kind == "fork":
        pid = os.fork()
        if pid == 0:
            run_ops(os, args[0])
            os._exit(args[1])
        kids.append(pid)
    elif kind == "pipe":
        kids.append(pipe_child(os, args[0]))
    elif kind == "exec":
        os.execv("/bin/sub", ["sub", args[0]])
    elif kind == "exit":
        os._exit(args[0])
    elif kind == "write":
        os.write(1, args[0])
    else:
        signal_or_wait(os, kind, args, kids)


def pipe_child(os, data: bytes) -> int:
    """A child that prints what it reads from a pipe until EOF; the parent writes ``data`` and closes it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        got = b""
        while chunk := os.read(r, 4):
            got += chunk
        os.write(1, b"<" + got + b">")
        os._exit(0)
    os.close(r)
    with contextlib.suppress(OSError):  # the reader was killed: EPIPE (SIGPIPE kills this process first)
        os.write(w, data)
    os.close(w)
    return pid


def signal_or_wait(os, kind: object, args: list[object], kids: list[int]) -> None:
    """Waits, kills, stops and process groups; errors (ECHILD, ESRCH, EPERM) are part of the outcome."""
    try:
        if kind == "wait":
            os.waitpid(-1, 0)
        elif kind == "waitkid" and kids:
            os.write(1, b"w%d " % os.waitpid(kids[-1], 0)[1])
        elif kind == "kill" and kids:
            os.kill(kids[-1], args[0])
        elif kind == "killparent":
            os.kill(os.getppid(), args[0])
        elif kind == "killpg":
            os.killpg(os.getpgrp(), args[0])
        elif kind == "stopcont" and kids:
            stop_and_continue(os, kids[-1], bool(args[0]))
        elif kind == "setpgid":
            os.setpgid(0, 0)
        elif kind == "setpgid_kid" and kids:
            os.setpgid(kids[-1], kids[-1])
    except OSError as e:
        os.write(1, b"e%d " % e.errno)


def stop_and_continue(os, pid: int, wait: bool) -> None:
    """SIGSTOP ``pid``, see it stopped (WUNTRACED) if ``wait``, and always SIGCONT it."""
    try:
        os.kill(pid, SIGSTOP)
        if wait:
            os.waitpid(pid, WUNTRACED)
    finally:
        os.kill(pid, SIGCONT)


def program(ops: Ops):
    """The program's main: ``ops`` in the first process."""
    def main(os):
        run_ops(os, ops)
    return main


def leaves(stops: bool) -> st.SearchStrategy[tuple[object, ...]]:
    """The operations that fork nothing; with ``stops`` every signal sent is SIGCONT."""
    signals = st.just(SIGCONT) if stops else st.sampled_from([SIGKILL, SIGTERM, SIGCONT])
    words = st.sampled_from([b"a", b"b", b"c"])
    ops = [st.tuples(st.just("write"), words), st.tuples(st.just("wait")), st.tuples(st.just("waitkid")),
           st.tuples(st.just("kill"), signals), st.tuples(st.just("killparent"), signals),
           st.tuples(st.just("killpg"), st.just(SIGCONT) if stops else st.sampled_from([SIGCONT, SIGKILL])),
           st.tuples(st.just("pipe"), words), st.tuples(st.just("exec"), st.sampled_from(["x", "y"])),
           st.tuples(st.just("setpgid")), st.tuples(st.just("setpgid_kid")),
           st.tuples(st.just("exit"), st.integers(0, 3))]
    if stops:
        ops.append(st.tuples(st.just("stopcont"), st.booleans()))
    return st.one_of(*ops)


def ops_of(depth: int, stops: bool, size: int) -> st.SearchStrategy[Ops]:
    """A list of operations, forks nesting ``depth`` deep."""
    leaf = leaves(stops)
    if depth == 0:
        return st.lists(leaf, max_size=size).map(tuple)
    fork = st.tuples(st.just("fork"), ops_of(depth - 1, stops, size), st.integers(0, 3))
    return st.lists(st.one_of(leaf, fork, fork), max_size=size).map(tuple)


def programs(depth: int, size: int) -> st.SearchStrategy[Ops]:
    """Programs that start by forking 1 to 3 children, then go on with anything."""
    def of(stops: bool) -> st.SearchStrategy[Ops]:
        fork = st.tuples(st.just("fork"), ops_of(depth, stops, size), st.integers(0, 3))
        return st.tuples(st.lists(fork, min_size=1, max_size=3), ops_of(depth, stops, size)).map(
            lambda parts: tuple(parts[0]) + parts[1])
    return st.booleans().flatmap(of)


def check_final_state(run: forklab.Run) -> None:
    """The model is consistent, and init has reaped every process (a zombie it has not reaped may remain)."""
    run.kernel.check_invariants()
    for t in run.kernel.tasks:
        if t.pid != 1:
            assert t.exit_state and t.real_parent is not None and t.real_parent.pid == 1, t


@settings(SETTINGS, max_examples=60)
@given(programs(2, 4), st.integers(0, 10_000))
def test_random_programs_leave_a_consistent_kernel_and_only_init(ops: Ops, seed: int) -> None:
    run = forklab.run(program(ops), seed=seed, programs=PROGRAMS, max_steps=20_000)
    check_final_state(run)


@settings(SETTINGS, max_examples=8)
@given(programs(1, 2), st.lists(st.integers(1, 10_000), min_size=3, max_size=3))
def test_explored_outcomes_include_every_seeded_run_and_replay(ops: Ops, seeds: list[int]) -> None:
    main = program(ops)
    ex = forklab.explore(main, programs=PROGRAMS, max_runs=150, max_steps=20_000)
    found = {(o.stdout, o.stderr, o.status): o for o in ex.outcomes}
    if ex.complete:
        for seed in seeds:
            run = forklab.run(main, seed=seed, programs=PROGRAMS, max_steps=20_000)
            assert (run.stdout, run.stderr, run.status) in found
    for outcome in ex.outcomes:
        run = forklab.run(main, schedule=outcome.schedule, programs=PROGRAMS, max_steps=20_000)
        assert (run.stdout, run.stderr, run.status) == (outcome.stdout, outcome.stderr, outcome.status)
        check_final_state(run)
