"""The HTML page (forklab.views.html): offline, every traced call a folding node with its Elixir link, and the
child's task_struct snapshots computed from the objects -- shared or copied as ``child.X is parent.X`` says.

The last tests open the page in headless Chromium over the DevTools protocol (skipped where no chromium
binary is installed): a node's content is hidden until its <summary> is clicked, the fragment opens the node
it names, "expand all" opens every node, and a screenshot is a real PNG.
"""

from __future__ import annotations

import base64
import errno
import itertools
import json
import shutil
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from forklab import Kernel, Task
from forklab.include.linux.sched import PF
from forklab.trace import Call, Recorder
from forklab.uapi import CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_THREAD, CLONE_VM, SIGCHLD
from forklab.views.html import (
    COPIED,
    ELIXIR_SOURCE,
    NULL,
    SHARED,
    SNAPSHOT_POINTERS,
    ChildSnapshot,
    ChildWatcher,
    Section,
    elixir_link,
    page_listeners,
    render_page,
    trace_to_html,
)

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary installed")


@dataclass
class Traced:
    """One recorded clone: the kernel, parent, child, the trace and the watcher's snapshots."""

    k: Kernel
    parent: Task
    child: Task
    rec: Recorder
    watcher: ChildWatcher

    def fork_call(self) -> Call:
        (call,) = self.rec.find("copy_process")
        return call

    def step(self, name: str) -> ChildSnapshot:
        (snap,) = [s for s in self.watcher.snapshots if s.step.name == name]
        return snap


def traced_clone(flags: int) -> Traced:
    k = Kernel()
    parent = k.init_task
    rec, watcher = page_listeners(k)
    child = k.find_task(k.clone(parent, flags))
    k.listeners.clear()
    return Traced(k, parent, child, rec, watcher)


class PageParser(HTMLParser):
    """Checks nesting and collects what the tests look at: tags with attributes, each <details>' first link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.details: list[tuple[str, str, str]] = []  # (id, href, link text)
        self._want_link: str | None = None
        self._link: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {n: v or "" for n, v in attrs}
        self.tags.append((tag, a))
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "details" and "call" in a.get("class", "").split():
            self._want_link = a["id"]
        if tag == "a" and self._want_link is not None and "fn" in a.get("class", "").split():
            self._link = a
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag == "a" and self._link is not None and self._want_link is not None:
            self.details.append((self._want_link, self._link.get("href", ""), "".join(self._text)))
            self._link = self._want_link = None
        if tag == "summary":
            self._want_link = None

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._text.append(data)


def parse(page: str) -> PageParser:
    p = PageParser()
    p.feed(page)
    p.close()
    assert p.stack == [], f"unclosed tags {p.stack}"
    return p


def snapshot_rows(page: str, ident: str) -> dict[str, tuple[str, str, bool]]:
    """Field -> (relation cell, counts cell, changed) of the full snapshot table of the call ``<details id=ident>``."""

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str | None] = []  # the id of each open <details>, None for a fields table's
            self.cur: dict[str, str] = {}
            self.row: list[str] = []
            self.out: dict[str, tuple[str, str, bool]] = {}

        def owner(self) -> str | None:
            return next((i for i in reversed(self.calls) if i is not None), None)

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {n: v or "" for n, v in attrs}
            if tag == "details":
                self.calls.append(a.get("id"))
            if tag == "tr" and "data-field" in a and self.owner() == ident:
                self.cur, self.row = a, []
            if tag == "td" and self.cur:
                self.row.append("")

        def handle_endtag(self, tag: str) -> None:
            if tag == "details":
                self.calls.pop()
            if tag == "tr" and self.cur:
                self.out[self.cur["data-field"]] = (self.row[3], self.row[2], self.cur.get("class") == "changed")
                self.cur = {}

        def handle_data(self, data: str) -> None:
            if self.cur and self.row:
                self.row[-1] += data

    r = Rows()
    r.feed(page)
    return r.out


def call_ids(rec: Recorder) -> dict[int, str]:
    """The page's id of each call: calls are numbered in entry order, roots first to last."""
    return {id(c): f"call-{n}" for n, c in enumerate((c for root in rec.calls for c in root.walk()), 1)}


# --- links --------------------------------------------------------------------------------


def test_elixir_link_from_citation() -> None:
    assert elixir_link("kernel/fork.c:1824-2362") == ELIXIR_SOURCE + "kernel/fork.c#L1824"
    assert elixir_link("mm/memory.c:2804") == ELIXIR_SOURCE + "mm/memory.c#L2804"
    assert elixir_link("arch/x86/kernel/process.c:125-186") == ELIXIR_SOURCE + "arch/x86/kernel/process.c#L125"
    assert elixir_link("kernel/fork.c:copy_process (6.9)") == ELIXIR_SOURCE + "kernel/fork.c"
    assert elixir_link("include/linux/uidgid.h:kuid_has_mapping") == ELIXIR_SOURCE + "include/linux/uidgid.h"
    assert elixir_link("") is None
    assert elixir_link("not a citation") is None
    assert ELIXIR_SOURCE == "https://elixir.bootlin.com/linux/v5.6.14/source/"


# --- the page's structure -----------------------------------------------------------------


def test_page_is_offline_and_well_formed() -> None:
    t = traced_clone(SIGCHLD)
    page = trace_to_html(t.rec, t.watcher, "fork")
    p = parse(page)
    assert page.startswith("<!DOCTYPE html>")
    for tag, attrs in p.tags:
        for name in ("src", "href", "action", "data", "poster"):
            value = attrs.get(name, "")
            if value.lower().startswith(("http:", "https:", "//")):
                assert name == "href" and tag == "a" and value.startswith(ELIXIR_SOURCE), (tag, attrs)
        assert not (tag == "script" and "src" in attrs)
        assert tag not in {"link", "img", "iframe", "object", "embed"}, tag
    assert "@import" not in page and "url(" not in page
    assert sum(1 for tag, _ in p.tags if tag == "script") == 1 and sum(1 for tag, _ in p.tags if tag == "style") == 1


def test_every_traced_call_is_a_details_with_its_link() -> None:
    t = traced_clone(SIGCHLD)
    p = parse(trace_to_html(t.rec, t.watcher, "fork"))
    calls = [c for root in t.rec.calls for c in root.walk()]
    assert "copy_process" in {c.name for c in calls} and len(calls) > 15
    assert [(ident, text) for ident, _href, text in p.details] == [
        (call_ids(t.rec)[id(c)], c.name) for c in calls]
    for (_ident, href, _text), c in zip(p.details, calls, strict=True):
        assert href == (elixir_link(c.source) or ""), c.name
    assert all(href for _i, href, _t in p.details), "every traced function cites its source"
    ids = [a["id"] for tag, a in p.tags if "id" in a]
    assert len(ids) == len(set(ids))


def test_arguments_outcome_task_and_decisions_are_shown() -> None:
    t = traced_clone(CLONE_FILES | SIGCHLD)
    page = trace_to_html(t.rec, t.watcher, "clone")
    fork = t.fork_call()
    assert escape(fork.signature().split("(", 1)[1].rstrip(")")) in page
    assert f"= {t.child.comm}-{t.child.pid}" in page  # copy_process returned the child
    for d in fork.all_decisions():
        assert escape(d.text) in page
        link = elixir_link(d.source)
        assert link is None or f'href="{link}"' in page
    assert f"tid {t.parent.pid}" in page


def test_files_shared_after_clone_files_and_copied_after_fork() -> None:
    for flags in (CLONE_FILES | SIGCHLD, SIGCHLD):
        t = traced_clone(flags)
        shared = t.child.files is t.parent.files
        assert shared == bool(flags & CLONE_FILES)
        snap = t.step("copy_files").field("files")
        assert (snap.relation == SHARED) == shared and (snap.relation == COPIED) == (not shared)
        holders = sum(1 for task in t.k.all_threads() if task.files is t.child.files)
        assert t.child.files is not None and dict(snap.counts)["count"] == t.child.files.count == holders
        page = trace_to_html(t.rec, t.watcher, "clone")
        step = next(c for c in t.fork_call().calls if c.name == "copy_files")
        relation, counts, changed = snapshot_rows(page, call_ids(t.rec)[id(step)])["files"]
        assert relation == snap.relation and counts == f"count={t.child.files.count}" and changed


def test_every_pointer_relation_matches_the_objects() -> None:
    for flags in (SIGCHLD, CLONE_FILES | SIGCHLD, THREAD):
        t = traced_clone(flags)
        final = t.watcher.of_fork(t.fork_call())[-1]
        assert final.step is t.fork_call()
        for name in SNAPSHOT_POINTERS:
            mine, theirs = getattr(t.child, name), getattr(t.parent, name)
            view = final.field(name)
            assert view.relation == (NULL if mine is None else SHARED if mine is theirs else COPIED), (flags, name)
        for a, b in (("mm", "active_mm"), ("cred", "real_cred")):  # one object, one name
            same = getattr(t.child, a) is getattr(t.child, b)
            assert (final.field(a).value == final.field(b).value) == same, (flags, a, b)
        assert final.field("pid").value == str(t.child.pid)
        assert final.field("tgid").value == str(t.child.tgid)
        assert final.field("real_parent").value == f"{t.child.real_parent.comm}-{t.child.real_parent.pid}"


def test_dup_task_struct_copies_every_pointer_then_steps_replace_them() -> None:
    t = traced_clone(SIGCHLD)
    first = t.step("dup_task_struct")
    assert first.field("pid").value == str(t.parent.pid)  # a struct copy: the child still has the parent's pid
    for name in SNAPSHOT_POINTERS:
        assert first.field(name).relation in {SHARED, NULL}, name
        assert (first.field(name).relation == NULL) == (first.field(name).parent_value == NULL)
    assert first.changed == {f.name for f in first.fields}
    for step, name in (("copy_files", "files"), ("copy_fs", "fs"), ("copy_sighand", "sighand"),
                       ("copy_signal", "signal"), ("copy_mm", "mm")):
        snap = t.step(step)
        assert name in snap.changed and snap.field(name).relation == COPIED, step
    assert "files" not in t.step("copy_fs").changed
    sched = t.step("sched_fork")
    assert "state" in sched.changed and "flags" not in t.step("copy_files").changed
    # copy_process sets PF_FORKNOEXEC between copy_creds and sched_fork (kernel/fork.c:1966)
    assert PF.PF_FORKNOEXEC.name not in t.step("copy_creds").field("flags").value.split("|")
    assert PF.PF_FORKNOEXEC.name in sched.field("flags").value.split("|") and t.child.flags & PF.PF_FORKNOEXEC


def test_changed_rows_are_highlighted_in_the_page() -> None:
    t = traced_clone(CLONE_FILES | SIGCHLD)
    page = trace_to_html(t.rec, t.watcher, "clone")
    ids = call_ids(t.rec)
    snaps = t.watcher.of_fork(t.fork_call())
    assert len(snaps) == len([c for c in t.fork_call().calls if c.name != "copy_process_checks"]) + 1
    previous: ChildSnapshot | None = None
    for snap in snaps:
        rows = snapshot_rows(page, ids[id(snap.step)])
        assert {f for f, (_r, _c, changed) in rows.items() if changed} == snap.changed
        if previous is not None:
            assert snap.changed == {f.name for f, g in zip(snap.fields, previous.fields, strict=True) if f != g}
        previous = snap


def test_a_failed_fork_shows_the_unwinding() -> None:
    probe = Kernel()
    probe.fork(probe.init_task)
    nth = probe.fault.sites.index("dup_mm:allocate_mm") + 1
    k = Kernel()
    rec, watcher = page_listeners(k)
    k.init_task.fail_nth = nth
    with pytest.raises(OSError) as info:
        k.fork(k.init_task)
    assert info.value.errno == errno.ENOMEM
    (fork,) = rec.find("copy_process")
    snaps = watcher.of_fork(fork)
    assert snaps[-1].step is fork and fork.errno == errno.ENOMEM
    steps = [s.step.name for s in snaps]
    assert steps.index("copy_files") < steps.index("copy_mm") < steps.index("free_task")
    assert watcher.of(next(c for c in fork.calls if c.name == "copy_files")).field("files").relation == COPIED
    assert snaps[-1].field("files").relation == NULL  # bad_fork_cleanup_files dropped it
    page = trace_to_html(rec, watcher, "failure")
    assert "= -ENOMEM" in page


def test_the_watcher_only_reads() -> None:
    def run(watch: bool) -> object:
        k = Kernel()
        rec = Recorder()
        k.listeners.append(rec)
        if watch:
            k.listeners.append(ChildWatcher())
        k.clone(k.init_task, CLONE_FILES | SIGCHLD)
        k.vfork(k.init_task)
        k.listeners.clear()
        return k.snapshot()

    assert run(True) == run(False)


def test_a_rejected_fork_has_no_child_to_show() -> None:
    k = Kernel()
    rec, watcher = page_listeners(k)
    with pytest.raises(OSError) as info:
        k.clone(k.init_task, CLONE_THREAD)
    assert info.value.errno == errno.EINVAL
    (fork,) = rec.find("copy_process")
    assert watcher.of_fork(fork) == [] and fork.errno == errno.EINVAL
    page = trace_to_html(rec, watcher, "EINVAL")
    parse(page)
    assert "= -EINVAL" in page and 'class="fields"' not in page and 'class="changes"' not in page


def test_render_page_escapes_and_is_deterministic() -> None:
    def build() -> str:
        t = traced_clone(CLONE_FILES | SIGCHLD)
        return render_page("<tour> & \"more\"", [
            Section("one <b>", "narrative <script>alert(1)</script> & 'x'", t.rec.roots, t.watcher.snapshots),
            Section("two", "", t.rec.roots[:1], ()),
        ])

    page = build()
    assert page == build()
    parse(page)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#x27;x&#x27;" in page
    assert "<title>&lt;tour&gt; &amp; &quot;more&quot;</title>" in page
    assert 'id="section-1"' in page and 'id="section-2"' in page


# --- headless Chromium ---------------------------------------------------------------------


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, websocket: Any, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == n:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result

    def js(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        for _ in range(500):  # the page is local: it loads in a few ms
            if self.js("document.readyState") == "complete" and self.js("location.href") == url:
                return
            time.sleep(0.01)
        raise AssertionError(f"{url} did not load")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    assert CHROMIUM is not None
    websocket = pytest.importorskip("websocket")  # websocket-client, from the test extra
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={profile}", "--no-sandbox",
         "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--remote-allow-origins=*",
         "--window-size=1200,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(6000):  # chromium starts in about a second; allow a slow machine a minute
            if port_file.exists() and port_file.read_text().count("\n") >= 1:
                break
            assert proc.poll() is None, "chromium exited"
            time.sleep(0.01)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(websocket, page["webSocketDebuggerUrl"])
        tools.send("Page.enable")
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def shown(tools: DevTools, ident: str, selector: str) -> bool:
    """Whether the element ``selector`` directly inside ``<details id=ident>`` is rendered."""
    return bool(tools.js(f"document.querySelector('#{ident} > {selector}').checkVisibility()"))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_chromium
def test_chromium_expands_a_node_and_takes_a_screenshot(browser: DevTools, tmp_path: Path) -> None:
    t = traced_clone(CLONE_FILES | SIGCHLD)
    ids = call_ids(t.rec)
    fork = t.fork_call()
    path = tmp_path / "trace.html"
    path.write_text(trace_to_html(t.rec, t.watcher, "clone(CLONE_FILES|SIGCHLD)"), encoding="utf-8")
    browser.goto(path.as_uri())
    cp = ids[id(fork)]
    copy_files = next(c for c in fork.calls if c.name == "copy_files")
    # Nothing under the root syscall's children is open yet: copy_process's table and steps are hidden.
    assert not browser.js(f"document.getElementById('{cp}').open")
    assert "copy_files" not in browser.js("document.body.innerText")
    # The fragment opens the node it names and every node around it.
    browser.goto(f"{path.as_uri()}#{cp}")
    assert browser.js(f"document.getElementById('{cp}').open")
    assert "copy_files" in browser.js("document.body.innerText")
    step = ids[id(copy_files)]
    assert not shown(browser, step, "table.changes")
    # Click copy_files' summary: the fields it changed appear, files shared (the model says so).
    browser.js(f"document.querySelector('#{step} > summary').click()")
    assert shown(browser, step, "table.changes") and not shown(browser, step, "details.fields > table")
    row = browser.js(f"document.querySelector('#{step} > table.changes tr[data-change=files]').innerText")
    assert (SHARED in row) == (t.child.files is t.parent.files) and t.child.files is t.parent.files
    assert browser.js(f"document.querySelectorAll('#{step} > table.changes tr[data-change]').length") == len(
        t.watcher.of(copy_files).changed)
    # Unfold every field: the full table appears, fs among them.
    browser.js(f"document.querySelector('#{step} > details.fields > summary').click()")
    assert shown(browser, step, "details.fields > table")
    assert "fs#1" in browser.js(f"document.querySelector('#{step} > details.fields tr[data-field=fs]').innerText")
    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "trace.png").write_bytes(shot)
    width, height = png_size(shot)
    assert width >= 400 and height >= 300 and len(shot) > 10_000
    # Click it again: the rows are hidden again.
    browser.js(f"document.querySelector('#{ids[id(copy_files)]} > summary').click()")
    assert not shown(browser, step, "table.changes")


@needs_chromium
def test_chromium_expand_all_and_collapse_all(browser: DevTools, tmp_path: Path) -> None:
    t = traced_clone(SIGCHLD)
    path = tmp_path / "fork.html"
    path.write_text(trace_to_html(t.rec, t.watcher, "fork"), encoding="utf-8")
    browser.goto(path.as_uri())
    total = len([c for root in t.rec.calls for c in root.walk()])
    count_open = "document.querySelectorAll('details.call[open]').length"
    assert browser.js("document.getElementById('controls').hidden") is False
    assert browser.js(count_open) == len(t.rec.calls)
    browser.js("document.getElementById('expand-all').click()")
    assert browser.js(count_open) == total
    assert browser.js("document.querySelectorAll('details:not([open])').length") == 0
    assert "dup_mmap" in browser.js("document.body.innerText")
    browser.js("document.getElementById('collapse-all').click()")
    assert browser.js(count_open) == 0 and browser.js("document.querySelectorAll('details[open]').length") == 0
    assert "sys_fork" not in browser.js("document.body.innerText")
    # A fresh load with a fragment opens the named node and its ancestors, nothing else.
    (dup_mmap,) = t.rec.find("dup_mmap")
    ids = call_ids(t.rec)
    browser.goto("about:blank")
    browser.goto(f"{path.as_uri()}#{ids[id(dup_mmap)]}")
    chain: list[Call] = []
    node: Call | None = dup_mmap
    while node is not None:
        chain.append(node)
        node = node.parent
    opened = browser.js("Array.from(document.querySelectorAll('details.call[open]')).map(d => d.id)")
    assert sorted(opened) == sorted(ids[id(c)] for c in chain)
