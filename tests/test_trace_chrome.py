"""Chrome/Perfetto trace-event JSON: every event has its phase's required fields, complete events nest per thread,
tasks are threads under their processes."""

from __future__ import annotations

import json
from typing import Any

from forklab import Kernel, Recorder
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
)
from forklab.views.chrome import chrome_json

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
REQUIRED = {"X": {"name", "cat", "ph", "ts", "dur", "pid", "tid"}, "i": {"name", "ph", "ts", "pid", "tid", "s"},
            "M": {"name", "ph", "pid", "tid", "args"}}


def ns(us: float) -> int:
    """The format's microseconds back as the trace's integer nanoseconds."""
    return round(us * 1000)


def scenario() -> tuple[Kernel, Recorder, int, int]:
    k = Kernel()
    rec = Recorder()
    k.listeners.append(rec)
    addr = k.mmap(k.init_task, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.store(k.init_task, addr, b"x")
    pid = k.clone(k.init_task, SIGCHLD)
    child = k.find_task(pid)
    tid = k.clone(child, THREAD)
    k.store(child, addr, b"y")
    k.exit_group(child, 0)
    k.wait4(k.init_task, pid, 0)
    return k, rec, pid, tid


def events() -> tuple[list[dict[str, Any]], Recorder, int, int]:
    _, rec, pid, tid = scenario()
    doc = json.loads(chrome_json(rec.roots))
    assert doc["displayTimeUnit"] == "ns"
    return doc["traceEvents"], rec, pid, tid


def test_every_event_has_its_phases_required_fields() -> None:
    evs, _, _, _ = events()
    assert evs
    for e in evs:
        assert e["ph"] in REQUIRED, e
        assert REQUIRED[e["ph"]] <= set(e), e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int) and isinstance(e["name"], str)
        if e["ph"] in ("X", "i"):
            assert isinstance(e["ts"], int | float) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], int | float) and e["dur"] > 0 and e["cat"] in ("syscall", "kernel")
        if e["ph"] == "i":
            assert e["s"] == "t" and {"text", "source"} <= set(e["args"])
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str)


def test_complete_events_nest_properly_on_each_thread() -> None:
    evs, _, _, _ = events()
    by_thread: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for e in evs:
        if e["ph"] == "X":
            by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    assert len(by_thread) >= 3
    for track in by_thread.values():
        stack: list[tuple[int, int]] = []
        for e in sorted(track, key=lambda e: (e["ts"], -e["dur"])):
            start, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
            while stack and stack[-1][1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1][1], f"{e['name']} overlaps its parent without nesting"
            stack.append((start, end))


def test_tasks_are_threads_of_their_processes_and_every_call_is_one_event() -> None:
    evs, rec, pid, tid = events()
    names = {(e["name"], e["pid"], e["tid"]) for e in evs if e["ph"] == "M"}
    assert {("process_name", 1, 1), ("process_name", pid, pid), ("thread_name", pid, pid),
            ("thread_name", pid, tid)} <= names
    assert ("process_name", tid, tid) not in names  # the thread is no process of its own
    calls = [c for root in rec.calls for c in root.walk()]
    xs = [e for e in evs if e["ph"] == "X"]
    assert len(xs) == len(calls)
    assert [(e["name"], e["tid"], ns(e["ts"]), ns(e["dur"])) for e in xs] == [
        (c.name, c.tid, c.ts, c.dur) for c in calls]
    decisions = [d for root in rec.calls for d in root.all_decisions()]
    assert len([e for e in evs if e["ph"] == "i"]) == len(decisions) + len(rec.roots) - len(rec.calls)


def test_the_clone_event_has_its_named_arguments_and_return() -> None:
    evs, _, pid, tid = events()
    clones = [e for e in evs if e["ph"] == "X" and e["name"] == "clone"]
    assert [c["args"]["return"] for c in clones] == [str(pid), str(tid)]
    assert clones[0]["args"]["clone_flags"] == "SIGCHLD"
    assert clones[1]["args"]["clone_flags"] == "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD"


def test_same_run_same_bytes() -> None:
    assert chrome_json(scenario()[1].roots) == chrome_json(scenario()[1].roots)
