"""A user process: its Task, its greenlet, its image and its history; how fork returns twice.

CPython cannot copy a running frame, so fork returns twice by *re-execution*, the technique
of stateless model checkers (VeriSoft, CHESS): each simulated task runs in its own greenlet,
and each process image keeps its **history**, the calls it made since the image started,
with their results or errors. A fork child runs the image again from its start; every call
is answered from the parent's history without touching the kernel, until the child reaches
the fork call, where fork returns 0 and the child goes live.

Histories are shared, never copied: a child holds ``segs``, a list of ``(record list,
length)`` prefixes of its ancestors' histories, and appends its own live calls to ``own``.
The replay fast path (``Libc._call``) is one list index and one comparison per call.

A record is ``(name, args, value, raised, deliveries)``: the call made, what it returned (or
the exception, when ``raised``), and the signal handlers that ran on the way back to user
mode, as ``(sig, handler address)`` pairs in the order they ran. A replayed call that differs
from its record in name or arguments is a ``ReplayDivergence``.

Calls made live go through ``Proc.live``: a choice point, the Kernel method (re-issued after
the task slept and was woken, so it completes as one call), the record, then the handlers.

Handlers run from the kernel's signal frames. Every task of the program has
``Task.user_handlers``: the exit work leaves the frames it set up on ``task.sigframes``, and the
runner runs the innermost frame's Python handler, then makes the rt_sigreturn syscall, which
pops the frame, restores the mask and may deliver the next signal; until the frames the call
added are gone. An interrupted call that the kernel restarts (SA_RESTART, ERESTARTNOINTR)
comes back with the task running and new frames: its record holds ``RESTARTED`` as the value,
the handlers run, and the call is issued again, as the rewound ``regs->ip`` makes the task
do. A replay follows the same records: the handlers, their calls and rt_sigreturns, then the
restarted call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forklab.errors import Blocked, InternalError, KernelError, KernelPanic, Segfault, TaskKilled, Unmodelled
from forklab.include.linux.sched import (
    PF_EXITING,
    RtSigframe,
    Task,
    TaskState,
)
from forklab.runner.errors import ExecDone, ProcessEnded, ReplayDivergence
from forklab.runner.program import Program

if TYPE_CHECKING:
    from forklab.runner.core import Runner

Deliveries = tuple[tuple[int, int], ...]
Record = tuple[str, tuple[Any, ...], Any, bool, Deliveries]
Handler = Callable[[int, object], object]
KernelCall = Callable[..., Any]

RESTARTED = object()  # a record's value: the kernel restarts the call after its handlers (module docstring)
HANDLER_BASE = 0x401000  # where the runner "places" Python signal handlers in each image's text
HANDLER_STEP = 0x10
EMPTY: list[Record] = []


@dataclass(slots=True, eq=False)
class Image:
    """One program image of a process: its program, argv, environment and signal-handler table.

    ``handlers`` maps the address the kernel sees (``sa_handler``) to the Python callable, as
    the program's text would; exec starts a new Image, fork gives the child a fresh one that
    its replay fills in again.
    """

    program: Program
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    environ: dict[str, str] = field(default_factory=dict)
    handlers: dict[int, Handler] = field(default_factory=dict)
    registered: list[tuple[Handler, int]] = field(default_factory=list)
    # print()'s line buffers for fds 1 and 2: user-space memory, so a fork child re-creates them by replay
    stdio: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.environ:
            self.environ = dict(self.env)

    def handler_address(self, fn: Handler) -> int:
        """The address of ``fn`` in this image: the same callable always gets the same address."""
        for known, addr in self.registered:
            if known is fn:
                return addr
        addr = HANDLER_BASE + HANDLER_STEP * len(self.registered)
        self.registered.append((fn, addr))
        self.handlers[addr] = fn
        return addr

    def fork_copy(self, keep_handlers: bool) -> Image:
        """The image a fork child starts from; it re-creates the handler table by replay unless ``keep_handlers``."""
        child = Image(self.program, self.argv, self.env)
        if keep_handlers:
            child.handlers = dict(self.handlers)
            child.registered = list(self.registered)
        return child


class Proc:
    """A simulated task of the program: ``task``, its greenlet, its image, its history and replay cursor.

    ``direct`` is None for a task running its image's program from the start; otherwise the
    function a CLONE_VM child (a thread, a posix_spawn helper) runs instead.
    """

    __slots__ = (
        "dead",
        "direct",
        "end",
        "entry",
        "fork_at",
        "glet",
        "image",
        "next_image",
        "own",
        "pos",
        "record",
        "runner",
        "seg",
        "seg_next",
        "segs",
        "task",
        "tls",
    )

    def __init__(self, runner: Runner, task: Task, image: Image, direct: Callable[[], object] | None) -> None:
        self.runner = runner
        self.task = task
        task.user_handlers = True  # the runner runs its handlers and their rt_sigreturn (module docstring)
        self.image = image
        self.direct = direct
        self.glet: Any = None
        self.own: list[Record] = []
        self.segs: list[tuple[list[Record], int]] = []
        self.seg: list[Record] = EMPTY
        self.pos = 0
        self.end = 0
        self.seg_next = 0
        self.fork_at: tuple[list[Record], int] | None = None
        self.next_image: Image | None = None
        self.dead = False
        self.record = True
        self.tls = 0
        # what the child of this task's clone in progress runs (CLONE_VM with a function): read by the live
        # call only, never recorded, since a callable is a different object in a re-run image
        self.entry: Callable[[], object] | None = None

    # --- replay -----------------------------------------------------------------------------

    def replay_from(self, segs: list[tuple[list[Record], int]], fork_at: tuple[list[Record], int]) -> None:
        """Start this (new) task by re-running its image over ``segs`` up to the call at ``fork_at``."""
        self.segs = segs
        self.fork_at = fork_at
        self.seg_next = 0
        self._next_segment()

    def _next_segment(self) -> None:
        """Move the replay cursor to the next non-empty segment, or past the last one."""
        while self.seg_next < len(self.segs):
            self.seg, self.end = self.segs[self.seg_next]
            self.seg_next += 1
            self.pos = 0
            if self.end:
                return
        self.seg, self.end, self.pos = EMPTY, 0, 0

    @property
    def replaying(self) -> bool:
        """Whether this task is still re-running its parent's history."""
        return self.fork_at is not None

    def history_index(self) -> int:
        """The index, in this task's whole history, of the call it is making (replay) or will make (live)."""
        if self.fork_at is None or self.seg is EMPTY:
            return sum(end for _, end in self.segs) + len(self.own)
        return sum(end for _, end in self.segs[:self.seg_next - 1]) + self.pos

    def call(self, name: str, args: tuple[Any, ...], fn: KernelCall) -> Any:
        """The slow path of every call: segment boundaries, the fork point, the end of an image, or a live call."""
        if self.pos >= self.end and self.seg_next < len(self.segs):
            self._next_segment()
        if self.pos < self.end:
            return self.replay_one(name, args)
        if self.fork_at is not None:
            return self._fork_point(name, args)
        if self.next_image is not None:
            raise ExecDone
        if self.dead:
            raise ProcessEnded
        return self.live(name, args, fn)

    def replay_one(self, name: str, args: tuple[Any, ...]) -> Any:
        """Answer one call from the history (the same steps as the fast path in ``Libc._call``)."""
        rec = self.seg[self.pos]
        if rec[0] != name or rec[1] != args:
            self.diverge(rec, name, args)
        self.pos += 1
        if rec[4]:
            self.run_handlers(rec[4])
        if rec[3]:
            raise copy.copy(rec[2])
        return rec[2]  # RESTARTED: Libc._call issues the call again

    def _fork_point(self, name: str, args: tuple[Any, ...]) -> Any:
        """The call that created this task: it must be the parent's; here fork returns 0 and the task goes live."""
        assert self.fork_at is not None
        records, index = self.fork_at
        rec = records[index]
        if rec[0] != name or rec[1] != args:
            self.diverge(rec, name, args)
        self.runner.replayed += sum(end for _, end in self.segs)
        self.fork_at = None
        self.seg, self.end, self.pos = EMPTY, 0, 0
        self.own.append((name, args, 0, False, ()))
        return 0

    def diverge(self, rec: Record | None, name: str, args: tuple[Any, ...]) -> None:
        """Stop the run: this task's re-run made ``name(args)`` where its history has ``rec``."""
        recorded = describe(rec[0], rec[1]) if rec is not None else "nothing more (its history ends here)"
        error = ReplayDivergence(self.task.pid, self.history_index(), recorded, describe(name, args))
        raise self.runner.fail(error)

    # --- live calls ---------------------------------------------------------------------------

    def live(self, name: str, args: tuple[Any, ...], fn: KernelCall) -> Any:
        """Make one call for real: choice point, the kernel (re-issued after sleeping), record, handlers."""
        runner = self.runner
        runner.choice_point(self)
        value, raised, deliveries = self._enter(fn, args)
        if self.record:
            self.own.append((name, args, value, raised, deliveries))
        self._after_call()
        if deliveries:
            self.run_handlers(deliveries)
        runner.in_user = True
        if raised:
            raise value
        return value  # RESTARTED: Libc._call issues the call again

    def _enter(self, fn: KernelCall, args: tuple[Any, ...]) -> tuple[Any, bool, Deliveries]:
        """Run ``fn(kernel, task, *args)``; park while it sleeps; return (value or error, raised, deliveries).

        The value is ``RESTARTED`` when the kernel restarts the call after the handlers it set up.
        """
        k = self.runner.kernel
        before = self.task.sigframes
        while True:
            try:
                value, raised = fn(k, self.task, *args), False
                break
            except Blocked:
                if self.task.state == TaskState.TASK_RUNNING and _new_frames(before, self.task.sigframes):
                    value, raised = RESTARTED, False
                    break
                self.runner.park(self)
            except TaskKilled:
                self.die()
            except KernelError as e:
                value, raised = user_error(e), True
                break
            except Segfault as e:
                if e.killed:
                    self.die()
                value, raised = e, True
                break
            except (OSError, TypeError, ValueError) as e:
                value, raised = e, True
                break
            except (Unmodelled, KernelPanic, InternalError) as e:
                raise self.runner.fail(e) from None
            except (ImportError, AttributeError) as e:
                raise self.runner.fail(Unmodelled(f"{getattr(fn, '__name__', fn)}: the model kernel cannot run "
                                                  f"this call yet ({type(e).__name__}: {e})")) from None
        added = _new_frames(before, self.task.sigframes)
        deliveries = tuple((f.ksig.sig, f.ksig.ka.sa_handler) for f in reversed(added)) if added else ()
        return value, raised, deliveries

    def _after_call(self) -> None:
        """After the kernel returned: end this task if it exited, wait if it sleeps (vfork parent) or is stopped."""
        t = self.task
        if t.state != TaskState.TASK_RUNNING:
            if t.exit_state or t.flags & PF_EXITING:
                self.die()
            self.runner.park(self)

    def run_handlers(self, deliveries: Deliveries) -> None:
        """Run the Python handlers of ``deliveries``, innermost frame first, as ``handler(signum, None)`` like Python's
        signal module; each returns through the rt_sigreturn syscall, as glibc's restorer makes it."""
        for sig, addr in deliveries:
            self.runner.in_user = True
            handler = self.image.handlers.get(addr)
            if handler is None:
                raise self.runner.fail(InternalError(f"task {self.task.pid}: no Python handler at {addr:#x} for "
                                                     f"signal {sig}"))
            handler(sig, None)
            self.runner.libc.rt_sigreturn()

    def die(self) -> None:
        """This task has exited: unwind its Python stack; every later call raises ProcessEnded again."""
        self.dead = True
        self.fork_at = None
        self.seg, self.end, self.pos = EMPTY, 0, 0
        raise ProcessEnded

    def begin_image(self, image: Image) -> None:
        """Make ``image`` this task's image after a successful exec: an empty history, no replay."""
        self.image = image
        self.direct = None
        self.own = []
        self.segs = []
        self.seg, self.end, self.pos, self.seg_next = EMPTY, 0, 0, 0
        self.fork_at = None
        self.next_image = None

    def describe(self) -> str:
        """``pid N (comm)`` for messages."""
        return f"pid {self.task.pid} ({self.task.comm})"


def _new_frames(before: tuple[RtSigframe, ...], after: tuple[RtSigframe, ...]) -> tuple[RtSigframe, ...]:
    """The signal frames a call set up: ``after`` past what it shares with ``before`` (rt_sigreturn pops one)."""
    n = 0
    for old, new in zip(before, after, strict=False):
        if old is not new:
            break
        n += 1
    return after[n:]


def user_error(e: KernelError) -> OSError:
    """The OSError Python would raise for the kernel's errno (ChildProcessError for ECHILD, ...), with its rule."""
    return OSError(e.errno, str(e.strerror))


def describe(name: str, args: tuple[Any, ...]) -> str:
    """``name(arg, ...)`` for messages, with long arguments shortened."""
    parts = []
    for a in args:
        text = repr(a)
        parts.append(text if len(text) <= 60 else text[:57] + "...")
    return f"{name}({', '.join(parts)})"


__all__ = ["Deliveries", "Handler", "Image", "Proc", "Record", "describe", "user_error"]
