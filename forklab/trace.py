"""Tracing: a call tree of the modelled kernel functions, which costs next to nothing when no one listens.

Three kinds of record, all built only while a listener is attached (``k.listeners``):

* ``Call``: one entry into a traced kernel function (``@traced``) or a syscall: its name, its
  citation (read from its own docstring by ``forklab.kernel_map.first_citation``, never typed
  twice), the task it ran as, its arguments by their kernel names, its return value or errno,
  its model timestamps, and its children (nested calls and decisions) in order.
* ``Decision``: a step taken inside the enclosing call, a short sentence with its source line
  and the model's values at that moment (``k.trace``/``k.decide``).
* ``TraceEvent``: what a listener receives, one per call entry (``ph == "B"``), call exit
  (``"E"``) and decision (``"i"``), each with a sequence number, so two runs with the same inputs
  give byte-identical traces. Decisions keep the flat form of the older trace: ``kind``, ``tid``,
  ``source``, ``detail``.

Time. The trace has its own virtual clock (docs/model.md, "Trace time"): each call's entry and
exit cost ``CALL_ENTRY_NS``/``CALL_EXIT_NS`` and each decision ``DECISION_NS``, and a root call
never starts before the model's own clock ``k.clock_ns``. Durations are deterministic and
children nest strictly inside their parents.

Cost. ``@traced`` wraps a function whose first argument is the kernel state ``k``; the wrapper
has the function's own parameters and calls straight through when ``k.listeners`` is empty.
While no live kernel has a listener, forklab's modules bind the original functions instead
(``ListenerList`` rebinds them when a kernel's list becomes non-empty or empty), so an
untraced run pays nothing; decision texts are built only under ``if k.listeners:``. Setting
``FORKLAB_TRACE=0`` before forklab is imported compiles the wrappers out altogether
(``TRACE_COMPILED``), the baseline benchmarks/bench_trace_overhead.py measures against.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ParamSpec, SupportsIndex, TypeVar

from forklab.errors import errno_name
from forklab.kernel_map import first_citation

P = ParamSpec("P")
R = TypeVar("R")

TRACE_COMPILED = os.environ.get("FORKLAB_TRACE", "1") != "0"

CALL_ENTRY_NS = 250  # virtual cost of entering a traced function
CALL_EXIT_NS = 250  # virtual cost of leaving it: a leaf lasts 0.500 us
DECISION_NS = 20  # virtual cost of one decision

Value = int | str | bool | bytes | None | tuple["Value", ...]
Args = tuple[tuple[str, Value], ...]


@dataclass(slots=True, eq=False)
class Call:
    """One traced function entry: filled in on entry, completed on exit (``end``, ``ret``/``errno``)."""

    name: str
    source: str
    tid: int
    depth: int
    ts: int
    args: Args
    kind: str = "function"  # or "syscall"
    parent: Call | None = None
    cpu: int = 0  # the CPU the task was on at entry
    comm: str = ""  # the task's comm at entry
    tgid: int = 0  # its thread group's id
    children: list[Call | Decision] = field(default_factory=list)
    end: int | None = None
    ret: Value = None
    errno: int | None = None
    error: str = ""  # the exception's class and message when the call raised

    @property
    def dur(self) -> int:
        """Duration in virtual ns; a call that has not returned yet lasts 0."""
        return 0 if self.end is None else self.end - self.ts

    @property
    def calls(self) -> list[Call]:
        """The nested calls, in order."""
        return [c for c in self.children if isinstance(c, Call)]

    @property
    def decisions(self) -> list[Decision]:
        """The decisions taken directly inside this call, in order."""
        return [c for c in self.children if isinstance(c, Decision)]

    def arg(self, name: str) -> Value:
        """The value of argument ``name`` as it was on entry; ValueError when the call has none."""
        for n, v in self.args:
            if n == name:
                return v
        raise ValueError(f"{self.name} has no argument {name!r}")

    def walk(self) -> list[Call]:
        """This call and every call below it, in entry order."""
        out = [self]
        for c in self.calls:
            out += c.walk()
        return out

    def all_decisions(self) -> list[Decision]:
        """Every decision in this call's subtree, in order."""
        out: list[Decision] = []
        for c in self.children:
            out += c.all_decisions() if isinstance(c, Call) else [c]
        return out

    def signature(self) -> str:
        """``name(arg=value, ...)`` with each value rendered as ``arg_text`` does."""
        return f"{self.name}({', '.join(f'{n}={arg_text(n, v, self.name)}' for n, v in self.args)})"

    def outcome(self) -> str:
        """``= value``, ``= -EINVAL``, ``raised X`` or ``unfinished``."""
        if self.end is None:
            return "unfinished"
        if self.errno is not None:
            return f"= -{errno_name(self.errno)}"
        if self.error:
            return f"raised {self.error}"
        return "= void" if self.ret is None else f"= {arg_text('', self.ret)}"


@dataclass(slots=True, frozen=True, eq=False)
class Decision:
    """A step taken inside a call: ``text`` at ``source``, with the values it read (``values``)."""

    kind: str
    source: str
    text: str
    tid: int
    ts: int
    values: Args = ()


@dataclass(slots=True, frozen=True)
class TraceEvent:
    """What a listener receives: a call entry ("B"), exit ("E") or a decision ("i"); see the module docstring."""

    seq: int
    kind: str
    tid: int
    source: str
    detail: str
    ph: str = "i"
    ts: int = 0
    node: Call | Decision | None = field(default=None, compare=False)

    def format(self) -> str:
        """One stable line: ``#seq [tid] kind: detail (source)``, entries marked ``>``, exits ``<``."""
        where = f" ({self.source})" if self.source else ""
        mark = {"B": "> ", "E": "< "}.get(self.ph, "")
        return f"#{self.seq} [{self.tid}] {mark}{self.kind}: {self.detail}{where}"


Listener = Callable[[TraceEvent], None]


# How an argument is rendered, by its kernel name (``clone_flags`` -> CLONE_VM|SIGCHLD); modules register theirs.
ARG_FORMATS: dict[str, Callable[[int], str]] = {}
# How an object argument is snapshotted on entry, by its type (a Task -> ``bash-12``); modules register theirs.
TYPE_FORMATS: dict[type, Callable[[Any], Value]] = {}
# Arguments shown in hex: addresses and pointers.
_HEX_SUFFIXES = ("ptr", "addr", "address", "tls", "newsp", "stack", "start", "end", "_tid")


def register_arg_format(name: str, fmt: Callable[[int], str], function: str = "") -> None:
    """Render integer arguments called ``name`` with ``fmt`` (e.g. a flag set's symbolic names): everywhere, or
    only in ``function``'s calls when the name means different things in different functions (``flags``)."""
    ARG_FORMATS[f"{function}.{name}" if function else name] = fmt


def register_type_format(cls: type, fmt: Callable[[Any], Value]) -> None:
    """Snapshot arguments and return values of type ``cls`` with ``fmt`` on entry/exit."""
    TYPE_FORMATS[cls] = fmt


def trace_value(value: object) -> Value:
    """An immutable copy of ``value`` as it is now: scalars as they are, registered types by their format,
    sequences element by element, a namespace by its inode number, other dataclasses by their scalar fields,
    anything else by its type's name."""
    if value is None or isinstance(value, int | str | bytes):
        return value
    fmt = _type_format(type(value))
    if fmt is not None:  # before the sequences: a tuple type may have its own (wait4's WaitResult)
        return fmt(value)
    if isinstance(value, tuple | list):
        return tuple(_flat_value(v) for v in value)
    inum = getattr(value, "inum", None)
    if isinstance(inum, int):  # a namespace: named by its type and proc inode number, as /proc/<pid>/ns shows it
        return f"<{type(value).__name__} [{inum}]>"
    if is_dataclass(value) and not isinstance(value, type):
        out: list[tuple[str, Value]] = []
        for f in fields(value):
            v = getattr(value, f.name)
            if v is None or isinstance(v, int | str):
                out.append((f.name, v))
            elif isinstance(v, list | tuple) and all(isinstance(x, int) for x in v):
                out.append((f.name, tuple(v)))
        return tuple(out)
    return f"<{type(value).__name__}>"


def _flat_value(value: object) -> Value:
    """One element of a traced sequence: a scalar, or a registered type's format, or its type's name."""
    if value is None or isinstance(value, int | str | bytes):
        return value
    fmt = _type_format(type(value))
    return fmt(value) if fmt is not None else f"<{type(value).__name__}>"


def _type_format(cls: type) -> Callable[[Any], Value] | None:
    """The registered format of ``cls`` or of its nearest base class, if any."""
    for base in cls.__mro__:
        fmt = TYPE_FORMATS.get(base)
        if fmt is not None:
            return fmt
    return None


def arg_text(name: str, value: Value, function: str = "") -> str:
    """One argument's text: symbolic where its name has a format, hex for addresses, ``NULL`` for 0 pointers."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        fmt = ARG_FORMATS.get(f"{function}.{name}") or ARG_FORMATS.get(name)
        if fmt is not None:
            return fmt(value)
        if name.endswith(_HEX_SUFFIXES):
            return "NULL" if value == 0 else hex(value)
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) for v in value):
            pairs = [(str(p[0]), p[1]) for p in value if isinstance(p, tuple)]
            return "{" + ", ".join(f"{n}={arg_text(n, v)}" for n, v in pairs) + "}"
        return "[" + ", ".join(arg_text(name, v) for v in value) + "]"
    if isinstance(value, bytes):
        return repr(value)
    return value


def struct_get(value: Value, name: str) -> Value:
    """Field ``name`` of a snapshotted struct (a tuple of (name, value) pairs); ValueError when absent."""
    if isinstance(value, tuple):
        for pair in value:
            if isinstance(pair, tuple) and len(pair) == 2 and pair[0] == name:
                return pair[1]
    raise ValueError(f"no field {name!r} in {value!r}")


@dataclass(slots=True, frozen=True)
class CallSite:
    """A traced function's fixed facts, read once when it is decorated: name, citation, parameter names."""

    name: str
    source: str
    params: tuple[str, ...]


def call_site(fn: Callable[..., Any], name: str | None = None) -> CallSite:
    """The CallSite of ``fn``: its citation from its docstring, its positional parameter names after ``k``."""
    cite = first_citation(fn.__doc__)
    code = fn.__code__
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    return CallSite(name or fn.__name__, "" if cite is None else str(cite), tuple(params[1:]))


class Tracer:
    """The per-kernel trace machinery: the open-call stack, the sequence number and the virtual clock."""

    __slots__ = ("clock", "now", "seq", "stack")

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock  # the model's own clock, in ns
        self.now = 0
        self.seq = 0
        self.stack: list[Call] = []

    def tick(self, cost: int) -> int:
        """The current virtual time, then advance it by ``cost``; a root call starts no earlier than the model clock."""
        if not self.stack:
            self.now = max(self.now, self.clock())
        ts = self.now
        self.now += cost
        return ts

    def emit(self, listeners: list[Listener], event_args: tuple[str, int, str, str, str, int],
             node: Call | Decision) -> None:
        """Number one event and hand it to every listener."""
        self.seq += 1
        kind, tid, source, detail, ph, ts = event_args
        event = TraceEvent(self.seq, kind, tid, source, detail, ph, ts, node)
        for listener in list(listeners):
            listener(event)

    def enter(self, listeners: list[Listener], site: CallSite, task: Any, args: Args, kind: str = "function") -> Call:
        """Open a call by ``task`` (a Task, or None outside any) under the innermost open one; tell the listeners."""
        parent = self.stack[-1] if self.stack else None
        tid, cpu, comm, tgid = (0, 0, "", 0) if task is None else (task.pid, task.cpu, task.comm, task.tgid)
        call = Call(site.name, site.source, tid, len(self.stack), self.tick(CALL_ENTRY_NS), args, kind, parent, cpu,
                    comm, tgid)
        if parent is not None:
            parent.children.append(call)
        self.stack.append(call)
        try:
            self.emit(listeners, (site.name, tid, site.source, call.signature(), "B", call.ts), call)
        except BaseException as e:  # a listener raised: the call never ran, so close it with that exception
            self.leave(listeners[:0], call, exc=e)
            raise
        return call

    def leave(self, listeners: list[Listener], call: Call, ret: object = None, exc: BaseException | None = None) -> None:
        """Close ``call`` (and any call left open inside it) with its return value or exception."""
        while self.stack and self.stack[-1] is not call:
            self.stack.pop().end = self.now
        if self.stack:
            self.stack.pop()
        self.now += CALL_EXIT_NS
        call.end = self.now
        if exc is None:
            call.ret = trace_value(ret)
        elif isinstance(exc, OSError) and exc.errno is not None:
            call.errno = exc.errno
            call.error = f"{type(exc).__name__}: {exc}"
        else:
            call.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self.emit(listeners, (call.name, call.tid, call.source, call.outcome(), "E", call.end), call)

    def decide(self, listeners: list[Listener], kind: str, source: str, text: str, tid: int,
               values: Args = ()) -> None:
        """Record a decision inside the innermost open call and tell the listeners."""
        d = Decision(kind, source, text, tid, self.tick(DECISION_NS), values)
        if self.stack:
            self.stack[-1].children.append(d)
        self.emit(listeners, (kind, tid, source, text, "i", d.ts), d)


def _traced_call(k: Any, site: CallSite, fn: Callable[..., Any], args: tuple[Any, ...],
                 kw: dict[str, Any]) -> Any:
    """Run ``fn`` inside a Call: named arguments on entry, the return value or exception on exit."""
    named = tuple(zip(site.params, (trace_value(a) for a in args[1:]), strict=False))
    named += tuple((n, trace_value(v)) for n, v in kw.items())
    listeners = k.listeners
    tracer: Tracer = k.tracer
    call = tracer.enter(listeners, site, k.current, named)
    try:
        ret = fn(*args, **kw)
    except BaseException as e:
        tracer.leave(listeners, call, exc=e)
        raise
    tracer.leave(listeners, call, ret)
    return ret


def _generic_wrapper(fn: Callable[..., Any], site: CallSite) -> Callable[..., Any]:
    """A wrapper taking ``*args, **kw``: for functions whose parameters the exact wrapper cannot copy."""
    def wrapper(*args: Any, **kw: Any) -> Any:
        if not args[0].listeners:
            return fn(*args, **kw)
        return _traced_call(args[0], site, fn, args, kw)

    return wrapper


def _exact_wrapper(fn: Callable[..., Any], site: CallSite) -> Callable[..., Any] | None:
    """A wrapper with ``fn``'s own parameter list, so that a call with no listener packs no ``*args``/``**kw``;
    None when ``fn`` has variadic or positional-only parameters."""
    params = list(inspect.signature(fn).parameters.values())
    namespace: dict[str, Any] = {"_fl_fn": fn, "_fl_site": site, "_fl_traced": _traced_call}
    decl: list[str] = []
    positional: list[str] = []
    keywords: list[str] = []
    for p in params:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name.startswith("_fl_"):
            return None
        if p.kind is p.KEYWORD_ONLY and not keywords:
            decl.append("*")
        text = p.name
        if p.default is not p.empty:
            namespace[f"_fl_default_{p.name}"] = p.default
            text += f"=_fl_default_{p.name}"
        decl.append(text)
        (keywords if p.kind is p.KEYWORD_ONLY else positional).append(p.name)
    if not positional:
        return None
    first = positional[0]
    call = ", ".join(positional + [f"{n}={n}" for n in keywords])
    packed = "(" + "".join(f"{n}, " for n in positional) + ")"
    kw = "{" + ", ".join(f"{n!r}: {n}" for n in keywords) + "}"
    source = (f"def {fn.__name__}({', '.join(decl)}):\n"
              f"    if not {first}.listeners:\n"
              f"        return _fl_fn({call})\n"
              f"    return _fl_traced({first}, _fl_site, _fl_fn, {packed}, {kw})\n")
    exec(compile(source, f"<traced {fn.__qualname__}>", "exec"), namespace)  # our own generated code
    wrapper: Callable[..., Any] = namespace[fn.__name__]
    return wrapper


class _Wrappers:
    """Every traced function's wrapper and original, and which of the two forklab's modules bind now."""

    __slots__ = ("installed", "listening", "to_original", "to_wrapper")

    def __init__(self) -> None:
        self.to_original: dict[int, Callable[..., Any]] = {}  # id(wrapper) -> original
        self.to_wrapper: dict[int, Callable[..., Any]] = {}  # id(original) -> wrapper
        self.installed = True  # a decorated module binds the wrapper
        # the live kernels' non-empty listener lists, by id: a kernel dropped while listening leaves by itself
        self.listening: dict[int, weakref.ref[ListenerList]] = {}

    def add(self, original: Callable[..., Any], wrapper: Callable[..., Any]) -> None:
        """Remember a pair; both stay alive in the tables, so their ids stay theirs."""
        self.to_original[id(wrapper)] = original
        self.to_wrapper[id(original)] = wrapper

    def rebind(self, install: bool) -> None:
        """Bind every forklab module global that names a traced function to its wrapper (``install``) or to the
        original function."""
        if install == self.installed:
            return
        table = self.to_wrapper if install else self.to_original
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "forklab" or name.startswith("forklab.")):
                continue
            namespace = vars(module)
            for attr, value in list(namespace.items()):
                replacement = table.get(id(value))
                if replacement is not None and (value is self.to_original.get(id(replacement)) or
                                                value is self.to_wrapper.get(id(replacement))):
                    namespace[attr] = replacement
        self.installed = install

    def changed(self, listeners: ListenerList) -> None:
        """A kernel's listener list became non-empty or empty: install the wrappers while any kernel listens."""
        key = id(listeners)
        if listeners:
            self.listening[key] = weakref.ref(listeners, lambda _: self.listening.pop(key, None))
        else:
            self.listening.pop(key, None)
        self.refresh()

    def refresh(self) -> None:
        """Bind the wrappers if a live kernel listens, else the originals."""
        self.rebind(len(self.listening) > 0)


WRAPPERS = _Wrappers()


def traced(fn: Callable[P, R]) -> Callable[P, R]:
    """Trace ``fn`` (whose first argument is the kernel state) as a Call whenever a listener is attached.

    The wrapper has ``fn``'s own parameters and tests ``k.listeners`` first. While no kernel has
    a listener, forklab's modules bind the original function instead (``ListenerList`` swaps
    them), so a call costs nothing at all; ``FORKLAB_TRACE=0`` compiles the wrappers out.
    """
    if not TRACE_COMPILED:
        return fn
    site = call_site(fn)
    wrapper = _exact_wrapper(fn, site) or _generic_wrapper(fn, site)
    wrapper.__forklab_traced__ = site  # type: ignore[attr-defined]  # marks the wrapper; __wrapped__ is fn
    WRAPPERS.add(fn, wrapper)
    return functools.update_wrapper(wrapper, fn)


class ListenerList(list[Listener]):
    """A kernel's listeners (``k.listeners``): a list that tells the trace when it becomes non-empty or empty, so
    that the traced functions' wrappers are bound only while some kernel listens. Mutate it in place (append,
    remove, clear, ...); a new list assigned to ``k.listeners`` would not be seen."""

    def __init__(self) -> None:
        super().__init__()
        WRAPPERS.refresh()  # a fresh kernel: with no listener anywhere, the originals run

    def _after(self, before: bool) -> None:
        if bool(self) != before:
            WRAPPERS.changed(self)

    def append(self, listener: Listener) -> None:
        before = bool(self)
        super().append(listener)
        self._after(before)

    def insert(self, index: SupportsIndex, listener: Listener) -> None:
        before = bool(self)
        super().insert(index, listener)
        self._after(before)

    def extend(self, listeners: Iterable[Listener]) -> None:
        before = bool(self)
        super().extend(listeners)
        self._after(before)

    def __iadd__(self, listeners: Iterable[Listener]) -> ListenerList:  # type: ignore[override,misc]
        self.extend(listeners)
        return self

    def remove(self, listener: Listener) -> None:
        before = bool(self)
        super().remove(listener)
        self._after(before)

    def pop(self, index: SupportsIndex = -1) -> Listener:
        before = bool(self)
        out = super().pop(index)
        self._after(before)
        return out

    def clear(self) -> None:
        before = bool(self)
        super().clear()
        self._after(before)

    def __setitem__(self, index: Any, value: Any) -> None:
        before = bool(self)
        super().__setitem__(index, value)
        self._after(before)

    def __delitem__(self, index: Any) -> None:
        before = bool(self)
        super().__delitem__(index)
        self._after(before)


class Recorder:
    """A listener that keeps everything: ``events`` (the decisions, in order), ``stream`` (every event) and
    ``roots`` (the call tree: each outermost call, and each decision taken outside any call)."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self.stream: list[TraceEvent] = []
        self.roots: list[Call | Decision] = []
        self._open: set[int] = set()

    def __call__(self, event: TraceEvent) -> None:
        self.stream.append(event)
        node = event.node
        if event.ph == "i":
            self.events.append(event)
            if isinstance(node, Decision) and not self._open:
                self.roots.append(node)
        elif event.ph == "B" and isinstance(node, Call):
            if node.parent is None or id(node.parent) not in self._open:
                self.roots.append(node)
            self._open.add(id(node))
        elif event.ph == "E" and node is not None:
            self._open.discard(id(node))

    @property
    def calls(self) -> list[Call]:
        """The outermost calls, in order."""
        return [c for c in self.roots if isinstance(c, Call)]

    def lines(self) -> list[str]:
        """The recorded trace, one formatted line per event (entries, exits and decisions)."""
        return [e.format() for e in self.stream]

    def kinds(self) -> list[str]:
        """The kinds of the recorded decisions, in order."""
        return [e.kind for e in self.events]

    def find(self, name: str) -> list[Call]:
        """Every recorded call of the function ``name``, in entry order."""
        return [c for root in self.calls for c in root.walk() if c.name == name]


TraceSource = Recorder | Iterable[Call | Decision]


def trace_roots(source: TraceSource) -> list[Call | Decision]:
    """What a renderer walks: a Recorder's roots, or the given calls and decisions."""
    if isinstance(source, Recorder):
        return list(source.roots)
    if isinstance(source, Call | Decision):
        return [source]
    return list(source)
