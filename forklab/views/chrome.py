"""The call tree as Chrome/Perfetto trace-event JSON (the "Trace Event Format" that chrome://tracing and
ui.perfetto.dev open).

Each task is a thread (``tid``) of its process (``pid`` = its tgid), named by ``process_name`` and
``thread_name`` metadata events (``"ph": "M"``). Every call is a complete event (``"ph": "X"``)
with ``ts`` and ``dur`` in microseconds of the trace's virtual clock (docs/model.md, "Trace
time"), its arguments, and its return value or errno in ``args``; syscalls are in category
``syscall``, kernel functions in ``kernel``. Every decision is a thread-scoped instant event
(``"ph": "i"``, ``"s": "t"``) with its text, source line and values in ``args``.
"""

from __future__ import annotations

import json
from typing import Any

from forklab.trace import Call, Decision, TraceSource, arg_text, trace_roots

NS_PER_US = 1000


def us(ns: int) -> float:
    """Nanoseconds as the format's microseconds."""
    return ns / NS_PER_US


def call_event(call: Call) -> dict[str, Any]:
    """One call as a complete ("X") event."""
    args: dict[str, Any] = {name: arg_text(name, value, call.name) for name, value in call.args}
    args["source"] = call.source
    if call.errno is not None or call.error:
        args["error"] = call.outcome()
    elif call.end is not None:
        args["return"] = arg_text("", call.ret) if call.ret is not None else "void"
    return {"name": call.name, "cat": "syscall" if call.kind == "syscall" else "kernel", "ph": "X",
            "ts": us(call.ts), "dur": us(call.dur), "pid": call.tgid, "tid": call.tid, "args": args}


def decision_event(d: Decision, tgid: int) -> dict[str, Any]:
    """One decision as a thread-scoped instant ("i") event."""
    args: dict[str, Any] = {"text": d.text, "source": d.source}
    args.update({name: arg_text(name, value) for name, value in d.values})
    return {"name": d.kind, "cat": "decision", "ph": "i", "s": "t", "ts": us(d.ts), "pid": tgid, "tid": d.tid,
            "args": args}


def _walk(node: Call | Decision, groups: dict[int, int], out: list[Call | Decision]) -> None:
    """Every call and decision under ``node``, in order, noting each task's thread group."""
    out.append(node)
    if isinstance(node, Call):
        groups.setdefault(node.tid, node.tgid)
        for child in node.children:
            _walk(child, groups, out)


def metadata_events(calls: list[Call]) -> list[dict[str, Any]]:
    """``process_name`` once per thread group and ``thread_name`` once per task, with the last comm seen."""
    names: dict[tuple[int, int], str] = {}
    for call in calls:
        names[(call.tgid, call.tid)] = call.comm
    out: list[dict[str, Any]] = []
    for tgid in sorted({g for g, _ in names}):
        leader = names.get((tgid, tgid)) or next(c for (g, _), c in sorted(names.items()) if g == tgid)
        out.append({"name": "process_name", "ph": "M", "pid": tgid, "tid": tgid, "args": {"name": leader}})
    for (tgid, tid), comm in sorted(names.items()):
        out.append({"name": "thread_name", "ph": "M", "pid": tgid, "tid": tid, "args": {"name": comm}})
    return out


def trace_events(source: TraceSource) -> list[dict[str, Any]]:
    """The metadata events, then every call and decision of a Recorder (or of the given roots) in order."""
    groups: dict[int, int] = {}
    nodes: list[Call | Decision] = []
    for root in trace_roots(source):
        _walk(root, groups, nodes)
    calls = [n for n in nodes if isinstance(n, Call)]
    events = metadata_events(calls)
    for n in nodes:
        events.append(call_event(n) if isinstance(n, Call) else decision_event(n, groups.get(n.tid, n.tid)))
    return events


def chrome_json(source: TraceSource) -> str:
    """The JSON object format: ``{"traceEvents": [...], "displayTimeUnit": "ns"}``, one event per line."""
    events = trace_events(source)
    body = ",\n".join(json.dumps(e, ensure_ascii=False, sort_keys=True) for e in events)
    return '{"displayTimeUnit": "ns", "traceEvents": [\n' + body + "\n]}\n"
