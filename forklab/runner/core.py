"""``forklab.run``: run a program's processes on the model kernel and collect what they printed.

The runner boots a ``Kernel`` (threads-max 1024 by default, so a fork bomb meets the kernel's
own limit), lays out a small disk (``/bin/<program>``, every ``programs=`` executable, and
``/run/forklab/{stdin,stdout,stderr}``), and acts as init's user space: init opens the three
files as fds 0, 1 and 2, forks the first process, which execs the program, and then reaps
every child, the first process and every orphan it adopts, until it has none left
(ECHILD). ``Run.status`` is the first process's wait status as init saw it.

Only user space is the runner's: every rule (who may fork, who is woken, which fd is closed
on exec, which signal kills) is the model kernel's. The hub greenlet (the caller of
``run``) switches between the tasks' greenlets; each decision comes from the model's
runqueues (``forklab.runner.sched``).

Exploring runs. A run made for ``forklab.explore`` has a *chooser* (``Scheduler``) and keeps
each task's pending call: the call a task parked at a choice point is about to make, the one
a task asleep in the kernel re-issues when woken, or the return to user code of a task
parked after its call (a vfork parent, a continued task); ``Runner.pending`` reads it, so
the explorer knows what every runnable task does next before it picks one. The pending call
is read from the parked frame (``Proc.live``'s name and args), only in exploring runs.

Budgets. ``max_steps`` bounds the live calls (choice points) of the whole run; ``timeout``
bounds its wall-clock time. A program that loops without making any call is interrupted by
SIGALRM (``signal.setitimer``), which needs the host's main thread; elsewhere only the step
budget applies. Either ends the run with ``BudgetExceeded``.
"""

from __future__ import annotations

import contextlib
import random
import signal as host_signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from greenlet import getcurrent, greenlet  # type: ignore[import-untyped]

import forklab
from forklab.errors import InternalError
from forklab.include.linux.sched import Task
from forklab.kernel.pid import task_active_pid_ns
from forklab.kernel.time.hrtimer import hrtimer_interrupt, hrtimer_run_expired
from forklab.runner.errors import (
    BudgetExceeded,
    Crash,
    Deadlock,
    ProcessEnded,
    ProgramError,
    ReplayDivergence,
    RunAbort,
    RunError,
)
from forklab.runner.libc import ANON, RW, TID_OFFSET, TLS_SIZE, Libc
from forklab.runner.process import Image, Proc, describe
from forklab.runner.program import Program, load
from forklab.runner.programs import STANDARD_PROGRAMS
from forklab.runner.sched import Chooser, Scheduler
from forklab.runner.stdio import flush_image, redirect
from forklab.syscalls import Kernel
from forklab.trace import Listener
from forklab.uapi import O_RDONLY, O_WRONLY, SIGCHLD

RUN_DIR = "/run/forklab"
STDIO = (f"{RUN_DIR}/stdin", f"{RUN_DIR}/stdout", f"{RUN_DIR}/stderr")
EXECUTABLE = b"\x7fforklab program\n"  # what an installed program's file holds: the model runs any non-empty file
DEFAULT_ENV = (("PATH", "/bin:/usr/bin"), ("HOME", "/"))
ALARM_REPEAT = 0.05  # after the wall-clock budget expires, SIGALRM repeats until it lands in user code


@dataclass(slots=True, frozen=True)
class Run:
    """The result of ``forklab.run``.

    ``stdout``/``stderr``: what the program's processes wrote to fds 1 and 2; ``status``: the
    first process's wait status; ``kernel``: the final model state; ``schedule``: the
    decisions, replayable with ``forklab.run(main, schedule=run.schedule)``; ``replayed``: calls
    answered from histories; ``steps``: live calls; ``crashes``: processes killed by a Python
    exception; ``pid``: the first process's pid.
    """

    stdout: bytes
    stderr: bytes
    status: int
    kernel: Kernel
    schedule: tuple[int, ...]
    replayed: int
    steps: int
    crashes: tuple[Crash, ...]
    pid: int


@dataclass(slots=True, frozen=True)
class Pending:
    """What a runnable task does when it is picked: its next step, as an exploring run sees it.

    ``kind`` is "call" (parked at the choice point before ``name(*args)``), "reissue" (asleep
    in ``name(*args)``, woken: the call is made again), "resume" (parked after its call, as a
    vfork parent or a stopped task is: it returns to user code), "start" (a new task that has
    not run), "end" (its user space is gone: picking it ends the run, as for init at the end)
    or "unknown" (parked somewhere else: treat its step as touching everything).
    """

    kind: str
    name: str = ""
    args: tuple[Any, ...] = ()


START = Pending("start")
END = Pending("end")
UNKNOWN = Pending("unknown")


class Runner:
    """One run: the kernel, the hub, the Task -> Proc map, the scheduler, budgets and counters."""

    __slots__ = (
        "_random",
        "abort",
        "alarm",
        "argv",
        "calls",
        "crashes",
        "env",
        "first_pid",
        "hub",
        "in_user",
        "init",
        "kernel",
        "libc",
        "main_path",
        "main_prog",
        "max_steps",
        "procs",
        "programs",
        "replayed",
        "sched",
        "status",
        "steps",
        "timeout",
        "unknown",
        "watching",
    )

    def __init__(self, kernel: Kernel, main_prog: Program, main_path: str, programs: dict[int, Program],
                 argv: tuple[str, ...], env: tuple[tuple[str, str], ...], seed: int, schedule: Sequence[int] | None,
                 max_steps: int, timeout: float | None, chooser: Chooser | None = None) -> None:
        self.kernel = kernel
        self.main_prog = main_prog
        self.main_path = main_path
        self.programs = programs
        self.argv = argv
        self.env = env
        self.max_steps = max_steps
        self.timeout = timeout
        self.libc = Libc(self)
        self.sched = Scheduler(kernel.runqueues, seed, schedule, self._lookup, chooser)
        self.watching = chooser is not None
        self.calls: dict[Task, Pending] = {}
        self._random = random.Random(f"forklab.urandom:{seed}")
        self.procs: dict[Task, Proc] = {}
        self.hub: Any = None
        self.init: Proc = Proc(self, kernel.init_task, Image(_internal("init"), ("init",), ()), self._init_main)
        self.init.record = False
        self.procs[kernel.init_task] = self.init
        self.unknown = _internal("unknown", self._unknown_binary)
        self.crashes: list[Crash] = []
        self.abort: RunAbort | None = None
        self.alarm = False
        self.in_user = False
        self.steps = 0
        self.replayed = 0
        self.first_pid = 0
        self.status = 0

    # --- the hub ------------------------------------------------------------------------------

    def execute(self) -> None:
        """Run every task until init has reaped its last child; raise the run's error if it has one."""
        self.hub = getcurrent()
        self.init.glet = greenlet(lambda: self._task_main(self.init), parent=self.hub)
        try:
            with self._wall_clock(), redirect(self):
                self._loop()
        except RunAbort as e:
            raise e.error from None
        finally:
            self._teardown()
        if self.abort is not None:
            raise self.abort.error

    def _loop(self) -> None:
        """The hub: switch to the task each decision picks until init is gone; no runnable task and no timer to
        wake one is a deadlock."""
        nxt = self._pick()
        while not self.init.glet.dead:
            if self.abort is not None:
                raise self.abort
            if nxt is None:
                raise self.fail(Deadlock(self._waits()))
            proc = self.procs.get(nxt)
            if proc is None:
                raise self.fail(InternalError(f"task {nxt.pid} is runnable but the runner has no process for it"))
            self.libc._p = proc
            request = proc.glet.switch()
            self.in_user = False
            if proc.glet.dead:
                self.procs.pop(proc.task, None)
                self.calls.pop(proc.task, None)
            nxt = request if isinstance(request, Task) else self._pick()

    def _pick(self) -> Task | None:
        """The next task after a block or exit; when every task sleeps, time passes first: the next timer's interrupt
        moves the model's clock to its expiry and wakes its sleepers (hrtimer_interrupt), until one can run."""
        k = self.kernel
        while not any(rq.queue for rq in k.runqueues) and hrtimer_interrupt(k):
            pass
        return self.sched.choose(None)

    def choice_point(self, proc: Proc) -> None:
        """Before a live call: count the step, check the budgets, expire the timers the clock has passed, let the
        scheduler pick who runs now."""
        self.in_user = False
        hrtimer_run_expired(self.kernel)
        self.steps += 1
        if self.steps > self.max_steps:
            raise self.fail(BudgetExceeded(f"the step budget of {self.max_steps} live calls is used up "
                                           f"({proc.describe()} was running): the program may never end; "
                                           "raise max_steps= if it is only long"))
        if self.alarm:
            raise self.fail(self._timeout_error(proc))
        if self.watching:
            self.calls[proc.task] = _live_call(sys._getframe(1))
        try:
            nxt = self.sched.choose(proc.task)
        except RunAbort:
            raise
        except Exception as e:  # a schedule that does not fit, a chooser's error: the run's error, not a crash
            raise self.fail(e) from None
        if nxt is not proc.task:
            self.hub.switch(nxt)

    def park(self, proc: Proc) -> None:
        """``proc``'s task sleeps (off the runqueues): run others until the model wakes it and it is picked."""
        self.in_user = False
        if self.watching:
            self.calls[proc.task] = _parked_call(sys._getframe(1), self.calls.get(proc.task))
        self.hub.switch(None)

    def pending(self, task: Task) -> Pending:
        """What ``task`` does next if it is picked (exploring runs only; see the module docstring)."""
        found = self.calls.get(task)
        if found is not None:
            return found
        proc = self.procs.get(task)
        if proc is None:
            return END
        glet = proc.glet
        return START if glet is not None and not glet and not glet.dead else UNKNOWN

    def fail(self, error: BaseException) -> RunAbort:
        """Record the run's error (the first one wins) and return the unwinder that carries it to ``run``."""
        if self.abort is None:
            self.abort = RunAbort(error)
        return self.abort

    def _lookup(self, tid: int) -> Task | None:
        """The task with thread id ``tid`` in the initial pid namespace, or None (a schedule's tids)."""
        try:
            return self.kernel.find_task(tid)
        except ValueError:
            return None

    def _waits(self) -> list[tuple[int, str, str]]:
        """(pid, comm, what it waits on) of every live task but init, for a Deadlock."""
        waits = []
        for proc in self.procs.values():
            t = proc.task
            if proc is not self.init and not t.exit_state and not proc.dead:
                waits.append((t.pid, t.comm, t.waits_on or repr(t.state)))
        return sorted(waits)

    # --- tasks ----------------------------------------------------------------------------------

    def adopt(self, parent: Proc, pid: int, direct: Callable[[], object] | None = None, tls: int = 0) -> Proc:
        """Register the task ``parent`` just created: it re-runs the image up to this call, or runs ``direct``."""
        task = self.kernel.find_task(pid, task_active_pid_ns(parent.task))
        if direct is None:
            child = Proc(self, task, parent.image.fork_copy(keep_handlers=parent.direct is not None), parent.direct)
            here = (parent.own, len(parent.own))
            child.replay_from([*parent.segs, here], here)
            child.tls = parent.tls
        else:
            child = Proc(self, task, parent.image, direct)
            child.tls = tls
        child.glet = greenlet(lambda: self._task_main(child), parent=self.hub)
        self.procs[task] = child
        return child

    def program_for(self, task: Task) -> Program:
        """The Program an exec just loaded into ``task``: the installed one of that file, or the no-code stand-in."""
        mm = task.mm
        exe = mm.exe_file if mm is not None else None
        if exe is None:
            return self.unknown
        return self.programs.get(exe.f_inode.i_ino, self.unknown)

    def _task_main(self, proc: Proc) -> None:
        """A task's greenlet: run its code; after an exec run the new image, until the task ends."""
        while True:
            self._run_code(proc)
            image = proc.next_image
            if image is None or proc.dead or proc is self.init:
                return
            proc.begin_image(image)
            try:
                self._start_image(proc)
            except ProcessEnded:
                return

    def _run_code(self, proc: Proc) -> None:
        """Run the task's entry; its return or SystemExit is exit_group, an exception kills it with SIGABRT."""
        try:
            self.in_user = True
            status = proc.direct() if proc.direct is not None else self._call_program(proc)
        except ProcessEnded:
            return
        except SystemExit as e:
            status = e.code
        except Exception as e:
            if proc.next_image is None and not proc.dead and proc is not self.init:
                self._crash(proc, e)
            elif proc is self.init:
                raise
            return
        except BaseException:
            if proc.next_image is not None or proc.dead:
                return  # ExecDone, or a program that caught ProcessEnded and raised something else
            raise
        if proc.next_image is None and not proc.dead and proc is not self.init:
            self._exit(proc, status)

    def _call_program(self, proc: Proc) -> object:
        """Start the image's program: a fresh ``main`` (a fresh module for a file), called as main(os[, argv])."""
        image = proc.image
        try:
            main = image.program.entry()
        except ProgramError as e:
            raise self.fail(e) from None
        if image.program.with_argv:
            return main(self.libc, list(image.argv))
        return main(self.libc)

    def _start_image(self, proc: Proc) -> None:
        """glibc's start-up after exec, outside the history: map the TLS block, set_tid_address to its tid field."""
        proc.record = False
        try:
            proc.tls = self.libc.mmap(TLS_SIZE, RW, ANON)
            self.libc._call("set_tid_address", Kernel.set_tid_address, proc.tls + TID_OFFSET)
        finally:
            proc.record = True

    def _exit(self, proc: Proc, status: object) -> None:
        """exit(status) as C's exit from main, with SystemExit's rules for non-int statuses."""
        if self._replay_ended(proc, "returned from main"):
            return
        with contextlib.suppress(ProcessEnded):
            for fd in (1, 2):
                flush_image(self, proc.image, fd)
        code = 0
        if isinstance(status, int) and not isinstance(status, bool):
            code = status
        elif status is not None:
            self.write_all(2, f"{status}\n".encode())
            code = 1
        with contextlib.suppress(ProcessEnded):
            self.libc._exit(code)

    def _crash(self, proc: Proc, e: Exception) -> None:
        """Print the traceback to the process's fd 2 and abort() it: the parent sees WTERMSIG 6."""
        if self._replay_ended(proc, f"raised {type(e).__name__}: {e}"):
            return
        report = format_crash(proc, e)
        self.crashes.append(Crash(proc.task.pid, proc.task.comm, report))
        with contextlib.suppress(ProcessEnded):
            self.write_all(2, report.encode("utf-8", "replace"))
            self.libc.abort()

    def _replay_ended(self, proc: Proc, what: str) -> bool:
        """A re-run image must reach its fork: ending before it is a divergence (raises); False when live."""
        if not proc.replaying:
            return False
        assert proc.fork_at is not None
        records, index = proc.fork_at
        raise self.fail(ReplayDivergence(proc.task.pid, proc.history_index(), _describe(records[index]), what))

    def write_all(self, fd: int, data: bytes) -> None:
        """write(2) ``data`` to ``fd`` of the running process until all of it is written or a write fails."""
        while data:
            try:
                n = self.libc.write(fd, data)
            except OSError:
                return
            data = data[n:] if n > 0 else b""

    def random_bytes(self, n: int) -> bytes:
        """``n`` bytes of the run's seeded stream (os.urandom's source)."""
        return self._random.randbytes(n)

    # --- init, the runner's own user space --------------------------------------------------

    def _init_main(self) -> None:
        """init: open fds 0/1/2, fork the first process (which execs the program), reap until ECHILD."""
        libc = self.libc
        for fd, (path, flags) in enumerate(zip(STDIO, (O_RDONLY, O_WRONLY, O_WRONLY), strict=True)):
            if libc.open(path, flags) != fd:
                raise self.fail(InternalError(f"init's {path} is not fd {fd}"))
        self.first_pid = libc._call("clone", self._spawn_first, SIGCHLD)
        for fd in range(3):
            libc.close(fd)
        while True:
            try:
                pid, status = libc.waitpid(-1, 0)
            except ChildProcessError:
                return
            if pid == self.first_pid:
                self.status = status

    def _spawn_first(self, k: Kernel, t: Task, flags: int) -> int:
        """init's fork of the first process, whose code execs the program with the run's argv and env."""
        pid = k.clone(t, flags)
        image = Image(_internal(self.main_prog.name), self.argv, self.env)
        child = self.adopt(self.init, pid, direct=lambda: self.libc.execve(self.main_path, self.argv,
                                                                            dict(self.env)))
        child.image = image
        return pid

    def _unknown_binary(self, libc: Libc, argv: list[str]) -> int:
        """The code of an executable nobody installed: say so on stderr and exit 127, as a shell would."""
        name = argv[0] if argv else "?"
        self.write_all(2, f"forklab: {name}: not an installed program (pass programs={{path: main}})\n".encode())
        return 127

    # --- budgets and teardown -------------------------------------------------------------------

    @contextlib.contextmanager
    def _wall_clock(self) -> Iterator[None]:
        """Arm SIGALRM for the wall-clock budget while the run lasts (host main thread only)."""
        if self.timeout is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        old_handler = host_signal.signal(host_signal.SIGALRM, self._on_alarm)
        old_timer = host_signal.setitimer(host_signal.ITIMER_REAL, self.timeout, ALARM_REPEAT)
        try:
            yield
        finally:
            host_signal.setitimer(host_signal.ITIMER_REAL, *old_timer)
            host_signal.signal(host_signal.SIGALRM, old_handler)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        """SIGALRM: the wall-clock budget is used up; interrupt user code now, or the next choice point."""
        self.alarm = True
        if self.in_user:
            raise self.fail(self._timeout_error(self.libc._p))

    def _timeout_error(self, proc: Proc | None) -> BudgetExceeded:
        """The wall-clock budget's error, naming the task that was running."""
        where = proc.describe() if proc is not None else "no process"
        return BudgetExceeded(f"the wall-clock budget of {self.timeout} s is used up ({where} was running): the "
                              "program may never end, even without making calls; raise timeout= if it is only slow")

    def _teardown(self) -> None:
        """Unwind every greenlet still suspended (tasks killed while asleep or preempted, or an aborted run)."""
        for proc in list(self.procs.values()):
            glet = proc.glet
            proc.dead = True
            proc.fork_at = None
            proc.end = 0
            if glet is not None and glet:
                self.libc._p = proc
                with contextlib.suppress(Exception, ProcessEnded, RunAbort):
                    glet.throw(ProcessEnded)
        self.procs.clear()

    # --- results --------------------------------------------------------------------------------

    def result(self) -> Run:
        """The Run, with fds 1 and 2 read from the model's files."""
        return Run(stdout=self._file(STDIO[1]), stderr=self._file(STDIO[2]), status=self.status, kernel=self.kernel,
                   schedule=self.sched.schedule, replayed=self.replayed, steps=self.steps,
                   crashes=tuple(self.crashes), pid=self.first_pid)

    def _file(self, path: str) -> bytes:
        """The contents of a file in the model's filesystem (b"" if it is gone)."""
        inode = self.kernel.vfs.lookup(path)
        return bytes(inode.data) if inode is not None else b""


def _live_call(frame: FrameType | None) -> Pending:
    """The call ``Proc.live`` (the caller of ``choice_point``) is about to make, from its frame."""
    if frame is None or frame.f_code is not Proc.live.__code__:
        return UNKNOWN
    local = frame.f_locals
    return Pending("call", local["name"], local["args"])


def _parked_call(frame: FrameType | None, before: Pending | None) -> Pending:
    """Where ``park``'s caller leaves the task: asleep in its call (re-issued) or after it (resumed)."""
    code = frame.f_code if frame is not None else None
    if code is Proc._enter.__code__ and before is not None and before.kind in ("call", "reissue"):
        return Pending("reissue", before.name, before.args)
    if code is Proc._after_call.__code__:
        return Pending("resume", before.name if before else "", before.args if before else ())
    return UNKNOWN


def _internal(name: str, fn: Callable[..., object] | None = None) -> Program:
    """A Program of the runner's own (init, the stand-in for an executable nobody installed)."""
    return Program(name=name, with_argv=True, fn=fn or (lambda _os, _argv: 0))


def _describe(rec: tuple[Any, ...]) -> str:
    """A history record as ``name(args)``."""
    return describe(rec[0], rec[1])


def format_crash(proc: Proc, e: BaseException) -> str:
    """Python's traceback of ``e`` without the runner's and the kernel's frames, and a line saying what happens."""
    root = str(Path(forklab.__file__).parent)
    te = traceback.TracebackException.from_exception(e)
    _strip(te, root)
    text = "".join(te.format())
    return f"{text}forklab: {proc.describe()}: uncaught {type(e).__name__}: abort() (SIGABRT)\n"


def _strip(te: traceback.TracebackException, root: str) -> None:
    """Drop the frames under ``root`` from ``te`` and the exceptions it chains."""
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if not f.filename.startswith(root)])
    for nested in (te.__cause__, te.__context__):
        if nested is not None:
            _strip(nested, root)


# --- forklab.run -------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Setup:
    """A checked ``forklab.run`` request without its seed and schedule: it runs on a fresh kernel each time."""

    main_prog: Program
    main_path: str
    installed: Mapping[str, Program]
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    stdin: bytes
    max_steps: int
    timeout: float | None
    threads_max: int
    nr_cpus: int
    version: str
    trace: Listener | None

    def runner(self, seed: int = 0, schedule: Sequence[int] | None = None, chooser: Chooser | None = None) -> Runner:
        """A Runner on a freshly booted kernel with the disk laid out, ready to ``execute``."""
        kernel = Kernel(threads_max=self.threads_max, nr_cpus=self.nr_cpus, version=self.version)
        if self.trace is not None:
            kernel.listeners.append(self.trace)
        inodes = _lay_out_disk(kernel, {self.main_path: self.main_prog, **self.installed}, self.stdin)
        return Runner(kernel, self.main_prog, self.main_path, inodes, self.argv, self.env, seed, schedule,
                      self.max_steps, self.timeout, chooser)


def setup(program: object, *, programs: Mapping[str, object] | None = None, argv: Sequence[str] | None = None,
          env: Mapping[str, str] | None = None, stdin: bytes = b"", max_steps: int = 1_000_000,
          timeout: float | None = 60.0, threads_max: int = 1024, nr_cpus: int = 1, version: str = "5.6.14",
          trace: Listener | None = None, standard_programs: bool = True) -> Setup:
    """Check ``forklab.run``'s arguments once (TypeError/ValueError) and load the program and the executables.

    With ``standard_programs`` the standard executables (``forklab.runner.programs``) are
    installed under the ``programs=`` ones, except at the program's own path.
    """
    main_prog = load(program, None, with_argv=False)
    installed = _installed(programs)
    main_path = f"/bin/{main_prog.name}"
    if main_path in installed:
        raise ValueError(f"programs installs {main_path}, where forklab.run puts the program itself")
    if not isinstance(standard_programs, bool):
        raise TypeError(f"standard_programs must be a bool, not {type(standard_programs).__name__}")
    if standard_programs:
        installed = {**_installed({p: prog for p, prog in STANDARD_PROGRAMS.items() if p != main_path}), **installed}
    args = tuple(argv) if argv is not None else (main_prog.name,)
    if not args or not all(isinstance(a, str) for a in args):
        raise TypeError("argv must be a non-empty sequence of str")
    environment = _environment(env)
    _check_limits(stdin, max_steps, timeout)
    if trace is not None and not callable(trace):
        raise TypeError("trace must be a listener: a callable taking a TraceEvent")
    return Setup(main_prog, main_path, installed, args, environment, stdin, max_steps, timeout, threads_max, nr_cpus,
                 version, trace)


def run_program(program: object, *, seed: int = 0, schedule: Sequence[int] | None = None,
        programs: Mapping[str, object] | None = None, argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None, stdin: bytes = b"", max_steps: int = 1_000_000,
        timeout: float | None = 60.0, threads_max: int = 1024, nr_cpus: int = 1, version: str = "5.6.14",
        trace: Listener | None = None, standard_programs: bool = True) -> Run:
    """Run ``program`` (a callable ``main(os)`` or a path to a file defining it) on a fresh model kernel.

    The standard executables (sh, true, false, echo, cat, wc, sleep, kill, ps, pstree) are in
    /bin unless ``standard_programs=False``; ``programs=`` adds or replaces executables.
    Returns when every process of the program has exited. Raises ``RunError`` (ReplayDivergence,
    Deadlock, BudgetExceeded, ScheduleMismatch, ProgramError) when the run cannot go on, and
    TypeError/ValueError for bad arguments.
    """
    request = setup(program, programs=programs, argv=argv, env=env, stdin=stdin, max_steps=max_steps,
                    timeout=timeout, threads_max=threads_max, nr_cpus=nr_cpus, version=version, trace=trace,
                    standard_programs=standard_programs)
    runner = request.runner(seed, schedule)
    runner.execute()
    return runner.result()


run = run_program  # forklab.run; the def has another name because forklab.host defines a run() (kernel_map)


def _installed(programs: Mapping[str, object] | None) -> dict[str, Program]:
    """The ``programs=`` mapping as path -> Program; ValueError/TypeError for bad paths or values."""
    if programs is None:
        return {}
    if not isinstance(programs, Mapping):
        raise TypeError("programs must be a mapping of absolute paths to callables (os, argv) or program files")
    out = {}
    for path, prog in programs.items():
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/") or "//" in path:
            raise ValueError(f"program paths must be absolute file paths such as '/bin/hello', not {path!r}")
        out[path] = load(prog, path.rsplit("/", 1)[1], with_argv=True)
    return out


def _environment(env: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The first process's environment as (name, value) pairs; TypeError unless str to str."""
    if env is None:
        return DEFAULT_ENV
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise TypeError("env must be a mapping of str to str")
    return tuple(env.items())


def _check_limits(stdin: bytes, max_steps: int, timeout: float | None) -> None:
    """TypeError/ValueError for a bad stdin, step budget or timeout."""
    if not isinstance(stdin, bytes):
        raise TypeError("stdin must be bytes")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps <= 0:
        raise ValueError("max_steps must be a positive int")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError("timeout must be a positive number of seconds, or None")


def _lay_out_disk(k: Kernel, executables: dict[str, Program], stdin: bytes) -> dict[int, Program]:
    """The disk image before boot: the executables (inode number -> Program) and the stdio files."""
    inodes = {}
    for path, prog in executables.items():
        inode = _create(k, path, 0o755, EXECUTABLE)
        inodes[inode.i_ino] = prog
    _create(k, STDIO[0], 0o644, stdin)
    for path in STDIO[1:]:
        _create(k, path, 0o644, b"")
    return inodes


def _create(k: Kernel, path: str, mode: int, data: bytes) -> Any:
    """Create a file holding ``data`` at ``path`` in the disk image, with its missing directories."""
    parts = path.split("/")[1:-1]
    for i in range(len(parts)):
        directory = "/" + "/".join(parts[:i + 1])
        node = k.vfs.lookup(directory)
        if node is None:
            k.vfs.mkdir(directory, 0o755)
        elif node.kind != "dir":
            raise ValueError(f"cannot install {path}: {directory} is not a directory")
    if k.vfs.lookup(path) is not None:
        raise ValueError(f"cannot install {path}: the model's filesystem already has it")
    inode = k.vfs.create(path, mode=mode)
    inode.data[:] = data
    inode.i_size = len(data)
    return inode


__all__ = ["Pending", "Run", "RunError", "Runner", "Setup", "format_crash", "run", "run_program", "setup"]
