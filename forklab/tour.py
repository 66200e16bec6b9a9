"""``forklab tour``: the seed document's walk through ``_do_fork`` -> ``copy_process``, run live.

Each stage runs real calls on a fresh model kernel with a ``Recorder`` attached and returns a
``Stage``: the traced calls, and ``facts``, sentences that are each computed from the state
after the calls (a pfn compared with another, a refcount read from the object, the rule a
``KernelError`` names), never written for the occasion. ``checks`` holds the same values in a
form the tests compare with the model (tests/test_tour.py). The stages follow the seed:

1. a plain fork; 2. copy_process's EINVAL rules, and which one fired; 3. credentials and a
new user namespace; 4. files and fs; 5. mm: dup_mmap, copy_page_range, a copy-on-write fault
and a reuse; 6. namespaces and pid numbers at two levels; 7. vfork; 8. a thread; 9. an
injected failure unwinding through ``bad_fork_*``.

``render`` prints stages to a terminal (rich), each in about two screens: the facts, the
call tree of the stage's main call to a few levels with its decisions, and a table of what
is shared and what is copied where the stage creates a task. ``html`` writes them all as one
self-contained page (``forklab.views.html``).
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from forklab.errors import KernelError
from forklab.include.linux.sched import Task
from forklab.runner.libc import THREAD_FLAGS
from forklab.scenarios import global_pid
from forklab.syscalls import Kernel
from forklab.trace import Call, Decision, Recorder
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    O_RDONLY,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
    clone_flags_str,
)
from forklab.views.html import ChildWatcher, Section, render_page

# The task_struct pointers copy_process fills in, each with the copy_* step and the flag that decides it.
SHARING = (
    ("mm", "copy_mm", "CLONE_VM"),
    ("files", "copy_files", "CLONE_FILES"),
    ("fs", "copy_fs", "CLONE_FS"),
    ("sighand", "copy_sighand", "CLONE_SIGHAND"),
    ("signal", "copy_signal", "CLONE_THREAD"),
    ("real_cred", "copy_creds", "CLONE_THREAD"),
    ("nsproxy", "copy_namespaces", "CLONE_NEW*"),
)
TREE_DEPTH = 3  # levels of the call tree shown in the terminal
TREE_LINES = 40  # at most this many lines of it


@dataclass(slots=True, eq=False)
class Stage:
    """One stage of the tour: what ran, the facts computed from the state after it, and its trace."""

    number: int
    title: str
    intro: str
    focus: tuple[str, ...] = ()  # the functions whose calls the terminal shows (all calls if empty)
    facts: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    sharing: list[tuple[str, str, str, str]] = field(default_factory=list)  # (label, field, shared|copied, rule)
    checks: dict[str, object] = field(default_factory=dict)
    recorder: Recorder | None = None
    watcher: ChildWatcher | None = None
    kernel: Kernel | None = None  # the stage's kernel, in its final state


def record_calls(k: Kernel, stage: Stage, fn: Callable[[], object]) -> object:
    """Run ``fn`` with a recorder and a ChildWatcher attached; the outermost calls become the stage's calls."""
    rec = stage.recorder or Recorder()
    watcher = stage.watcher or ChildWatcher()
    stage.recorder, stage.watcher, stage.kernel = rec, watcher, k
    k.listeners.extend((rec, watcher))
    try:
        return fn()
    finally:
        k.listeners.remove(rec)
        k.listeners.remove(watcher)
        stage.calls = rec.calls


def add_sharing_rows(stage: Stage, label: str, parent: Task, child: Task) -> None:
    """Add one row per task_struct pointer: shared (the parent's object) or copied, and the step that decided."""
    for name, step, flag in SHARING:
        shared = getattr(child, name) is getattr(parent, name)
        stage.sharing.append((label, name, "shared" if shared else "copied", f"{step} ({flag})"))


def _ran(stage: Stage, name: str) -> bool:
    """Whether the stage's trace has a call of the function ``name``."""
    return stage.recorder is not None and bool(stage.recorder.find(name))


# --- the stages ---------------------------------------------------------------------------------


def stage_fork() -> Stage:
    """1. fork(): the child is a copy, fork returns twice."""
    s = Stage(1, "fork(): a plain fork", "fork() is clone(SIGCHLD): _do_fork -> copy_process, every copy_* helper in "
              "the kernel's order, then wake_up_new_task.")
    k = Kernel()
    init = k.init_task
    pid = record_calls(k, s, lambda: k.fork(init))
    assert isinstance(pid, int)
    child = k.find_task(pid)
    s.facts.append(f"fork() returned {pid} in the parent; the child's saved ax is {child.regs.ax}, so fork returns "
                   f"{child.regs.ax} in the child")
    s.facts.append(f"the child is pid {child.pid}, tgid {child.tgid}, parent {child.real_parent.pid if child.real_parent else 0}"
                   f", exit_signal {child.exit_signal}, state {child.state.name}")
    shared = [name for name, _, _ in SHARING if getattr(child, name) is getattr(init, name)]
    s.facts.append("shared with the parent: " + (", ".join(shared) or "nothing") + "; everything else copied")
    add_sharing_rows(s, "fork()", init, child)
    s.checks = {"pid": pid, "ax": child.regs.ax, "shared": shared}
    return s


EINVAL_CASES = (
    CLONE_SIGHAND | SIGCHLD,
    CLONE_THREAD | CLONE_VM | SIGCHLD,
    CLONE_NEWNS | CLONE_FS | SIGCHLD,
    CLONE_NEWUSER | CLONE_FS | SIGCHLD,
    CLONE_NEWNS | CLONE_FS | CLONE_THREAD | SIGCHLD,  # three rules break: the first in source order decides
)


def stage_einval() -> Stage:
    """2. The up-front EINVAL checks of copy_process: which rule fired, with its line."""
    s = Stage(2, "copy_process's EINVAL rules", "copy_process rejects flag combinations before it allocates "
              "anything; when several rules break, the first in source order decides.")
    k = Kernel()
    init = k.init_task
    results = []
    for flags in EINVAL_CASES:
        try:
            record_calls(k, s, functools.partial(k.clone, init, flags))
        except KernelError as e:
            results.append((flags, e.errno, e.rule, e.source))
            s.facts.append(f"clone({clone_flags_str(flags)}) -> {errno.errorcode[e.errno or 0]}: {e.rule} ({e.source})")
    s.calls = s.recorder.calls if s.recorder else []
    s.checks = {"results": results, "tasks": len(k.all_threads())}
    s.facts.append(f"no task was created: {len(k.all_threads())} task(s) exist, as before")
    return s


def stage_creds() -> Stage:
    """3. copy_creds: new credentials for a process, shared for a thread; a new user namespace."""
    s = Stage(3, "credentials and a new user namespace", "copy_creds shares the parent's cred with a thread and "
              "prepares a new one for a process; CLONE_NEWUSER makes the child the owner of a new user namespace "
              "with every capability in it.")
    k = Kernel()
    init = k.init_task
    user = k.find_task(k.fork(init))
    k.setresuid(user, 1000, 1000, 1000)
    pid = record_calls(k, s, lambda: k.clone(user, CLONE_NEWUSER | SIGCHLD))
    assert isinstance(pid, int)
    child = k.find_task(pid)
    pc, cc = user.real_cred, child.real_cred
    assert pc is not None and cc is not None and pc.user_ns is not None and cc.user_ns is not None
    s.facts.append(f"the parent runs as uid {pc.uid} with capabilities {pc.cap_effective:#x} in user ns level "
                   f"{pc.user_ns.level}")
    s.facts.append(f"the child's cred is {'the parent' + chr(39) + 's' if cc is pc else 'a new one'}: uid {cc.uid}, "
                   f"user ns level {cc.user_ns.level} owned by uid {cc.user_ns.owner}, capabilities "
                   f"{cc.cap_effective:#x}")
    thread = k.find_task(k.clone(user, THREAD_FLAGS))
    s.facts.append(f"a thread of the same parent shares the cred: {thread.real_cred is pc}")
    add_sharing_rows(s, "clone(CLONE_NEWUSER)", user, child)
    s.checks = {"new_cred": cc is not pc, "level": cc.user_ns.level, "owner": cc.user_ns.owner,
                "caps": cc.cap_effective, "thread_shares": thread.real_cred is pc}
    return s


def stage_files() -> Stage:
    """4. copy_files and copy_fs: a copied descriptor table points at the same open files."""
    s = Stage(4, "files and fs", "Without CLONE_FILES, dup_fd copies the descriptor table, but each entry points "
              "at the same struct file, whose f_count goes up; CLONE_FILES and CLONE_FS share the whole table and "
              "fs_struct.")
    k = Kernel()
    init = k.init_task
    fd = k.open(init, "/", O_RDONLY)
    pid = record_calls(k, s, lambda: k.fork(init))
    assert isinstance(pid, int)
    child = k.find_task(pid)
    assert init.files is not None and child.files is not None and init.fs is not None
    pf, cf = init.files.fdt.fd[fd], child.files.fdt.fd[fd]
    assert pf is not None
    s.facts.append(f"fork: files_struct copied ({child.files is not init.files}); fd {fd} is the same struct file in "
                   f"both ({cf is pf}), f_count {pf.f_count}")
    shared = k.find_task(k.clone(init, CLONE_FILES | CLONE_FS | SIGCHLD))
    s.facts.append(f"clone(CLONE_FILES|CLONE_FS): files_struct shared ({shared.files is init.files}, count "
                   f"{init.files.count}), fs_struct shared ({shared.fs is init.fs}, users {init.fs.users})")
    add_sharing_rows(s, "fork()", init, child)
    add_sharing_rows(s, "clone(CLONE_FILES|CLONE_FS)", init, shared)
    s.checks = {"same_file": cf is pf, "f_count": pf.f_count, "files_count": init.files.count,
                "fs_users": init.fs.users}
    return s


def stage_mm() -> Stage:
    """5. copy_mm: dup_mmap and copy_page_range write-protect; a write fault copies, the last writer reuses."""
    s = Stage(5, "mm: dup_mmap, copy_page_range, copy-on-write", "dup_mmap copies each VMA and copy_page_range "
              "each PTE, write-protected in both. The child's write faults and wp_page_copy gives it a new page; "
              "the parent's next write finds itself the only mapper and reuses its page in place.")
    k = Kernel()
    init = k.init_task
    addr = k.mmap(init, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    for i in range(4):
        k.store(init, addr + i * PAGE_SIZE, b"parent")
    before = k.translate(init, addr)
    pid = record_calls(k, s, lambda: k.fork(init))
    assert isinstance(pid, int) and before is not None
    child = k.find_task(pid)
    shared_pfn = k.translate(child, addr)
    pages = [addr + i * PAGE_SIZE for i in range(4)]
    same = sum(k.translate(child, a) == k.translate(init, a) for a in pages)
    page = k.page(before)
    s.facts.append(f"after fork both map pfn {before} (child: {shared_pfn}): _refcount {page._refcount}, "
                   f"mapcount {page._mapcount + 1}; {same} of {len(pages)} pages map the same pfn in both")
    record_calls(k, s, lambda: k.store(child, addr, b"child!"))
    child_pfn = k.translate(child, addr)
    s.facts.append(f"the child writes page 0: a new pfn {child_pfn} for the child, the parent keeps "
                   f"{k.translate(init, addr)} (wp_page_copy in the trace: {_ran(s, 'wp_page_copy')}); the old "
                   f"page's mapcount is now {k.page(before)._mapcount + 1}")
    record_calls(k, s, lambda: k.store(init, addr, b"PARENT"))
    parent_pfn = k.translate(init, addr)
    s.facts.append(f"the parent writes page 0: pfn {parent_pfn} is "
                   f"{'reused in place' if parent_pfn == before else 'copied'} (mapcount was 1)")
    s.facts.append(f"the parent reads {k.load(init, addr, 6)!r}, the child reads {k.load(child, addr, 6)!r}")
    add_sharing_rows(s, "fork()", init, child)
    s.checks = {"before": before, "shared_pfn": shared_pfn, "child_pfn": child_pfn, "parent_pfn": parent_pfn,
                "same_pages": same, "reuse_traced": _ran(s, "wp_page_reuse"), "copy_traced": _ran(s, "wp_page_copy"),
                "parent_data": k.load(init, addr, 6), "child_data": k.load(child, addr, 6)}
    return s


def stage_namespaces() -> Stage:
    """6. copy_namespaces and alloc_pid: a new pid namespace numbers a task at two levels."""
    s = Stage(6, "namespaces and pid numbers at two levels", "CLONE_NEWPID|CLONE_NEWUTS: create_new_namespaces "
              "makes a new nsproxy; alloc_pid gives the child a number in every namespace from its own up, so it "
              "is 1 inside and an ordinary pid outside.")
    k = Kernel()
    init = k.init_task
    pid = record_calls(k, s, lambda: k.clone(init, CLONE_NEWPID | CLONE_NEWUTS | SIGCHLD))
    assert isinstance(pid, int)
    child = k.find_task(pid)
    grandchild = k.find_task(global_pid(child, k.fork(child)))  # fork returns the number in the child's namespace
    for t in (child, grandchild):
        nspid = next(line for line in k.proc(f"/proc/{t.pid}/status").splitlines() if line.startswith("NSpid:"))
        s.facts.append(f"task {t.pid}: /proc/{t.pid}/status says {nspid.split(None, 1)[1].strip()!r} (NSpid)")
    assert child.nsproxy is not None and init.nsproxy is not None
    s.facts.append(f"the child's nsproxy is new ({child.nsproxy is not init.nsproxy}); its uts namespace is new "
                   f"({child.nsproxy.uts_ns is not init.nsproxy.uts_ns}); its pid namespace's init is itself")
    add_sharing_rows(s, "clone(CLONE_NEWPID|CLONE_NEWUTS)", init, child)
    assert child.thread_pid is not None and grandchild.thread_pid is not None
    s.checks = {"child_numbers": [n.nr for n in child.thread_pid.numbers],
                "grandchild_numbers": [n.nr for n in grandchild.thread_pid.numbers]}
    return s


def stage_vfork() -> Stage:
    """7. vfork: the child borrows the parent's mm and the parent sleeps until the child execs or exits."""
    s = Stage(7, "vfork", "vfork is clone(CLONE_VM|CLONE_VFORK|SIGCHLD): the child runs in the parent's memory "
              "and the parent waits in wait_for_vfork_done until mm_release completes the vfork_done.")
    k = Kernel()
    init = k.find_task(k.fork(k.init_task))  # a process with memory of its own to lend
    k.mmap(init, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    pid = record_calls(k, s, lambda: k.vfork(init))
    assert isinstance(pid, int)
    child = k.find_task(pid)
    s.facts.append(f"the child shares the parent's mm ({child.mm is init.mm}, mm_users "
                   f"{init.mm.mm_users if init.mm else 0}); the parent is {init.state.name}, waiting on "
                   f"{init.waits_on}")
    asleep, shares_mm = init.state.name, child.mm is init.mm
    add_sharing_rows(s, "vfork()", init, child)
    record_calls(k, s, lambda: k.exit(child, 0))
    s.facts.append(f"the child exits: the parent is {init.state.name} again")
    s.checks = {"shares_mm": shares_mm, "asleep": asleep, "after": init.state.name}
    return s


def stage_thread() -> Stage:
    """8. A thread: CLONE_THREAD joins the parent's thread group and shares everything."""
    s = Stage(8, "a thread", "pthread_create's flags share the mm, files, fs and handlers, and CLONE_THREAD puts "
              "the new task in the caller's thread group: same tgid, same signal_struct, exit_signal -1.")
    k = Kernel()
    init = k.init_task
    tid = record_calls(k, s, lambda: k.clone(init, THREAD_FLAGS))
    assert isinstance(tid, int)
    thread = k.find_task(tid)
    assert init.signal is not None
    s.facts.append(f"clone({clone_flags_str(THREAD_FLAGS)}) -> tid {tid}, tgid {thread.tgid} (the caller's "
                   f"{init.tgid}), exit_signal {thread.exit_signal}, nr_threads {init.signal.nr_threads}")
    add_sharing_rows(s, "pthread_create", init, thread)
    s.checks = {"tid": tid, "tgid": thread.tgid, "nr_threads": init.signal.nr_threads,
                "exit_signal": thread.exit_signal}
    return s


def stage_failure() -> Stage:
    """9. An injected failure: copy_process unwinds through its bad_fork_* labels and leaves nothing behind."""
    s = Stage(9, "an injected failure unwinding through bad_fork_*", "fail-nth (as /proc/<pid>/fail-nth) makes the "
              "Nth fallible allocation of the next syscall fail; copy_process then undoes each step it completed, "
              "in reverse, under the kernel's bad_fork_* labels.")
    probe = Kernel()
    probe.fork(probe.init_task)
    sites = list(probe.fault.sites)
    target = next((i for i, site in enumerate(sites, 1) if "mm" in site), len(sites))
    k = Kernel()
    init = k.init_task
    before = (len(k.all_threads()), k.nr_threads)
    init.fail_nth = target
    try:
        record_calls(k, s, lambda: k.fork(init))
        raise AssertionError("the injected failure did not fail the fork")
    except KernelError as e:
        failed = e
    labels = [d.text for root in s.calls for d in root.all_decisions() if d.kind == "cleanup"]
    s.facts.append(f"fail-nth {target} of {len(sites)} fallible sites: site {k.fault.failed_site!r} fails, fork "
                   f"returns {errno.errorcode[failed.errno or 0]}")
    s.facts.append("the unwinding ran: " + (" -> ".join(labels) or "no label"))
    after = (len(k.all_threads()), k.nr_threads)
    k.check_invariants()
    s.facts.append(f"tasks before {before[0]}, after {after[0]}; nr_threads {before[1]} -> {after[1]}; "
                   "check_invariants() holds")
    s.checks = {"errno": failed.errno, "site": k.fault.failed_site, "labels": labels, "before": before, "after": after}
    return s


STAGES: tuple[Callable[[], Stage], ...] = (stage_fork, stage_einval, stage_creds, stage_files, stage_mm,
                                           stage_namespaces, stage_vfork, stage_thread, stage_failure)


# The functions each stage's terminal view opens (two levels each): where the seed looks at that stage.
FOCUS: dict[int, tuple[str, ...]] = {
    1: ("copy_process",),
    2: ("copy_process",),
    3: ("copy_creds", "create_user_ns"),
    4: ("copy_files", "copy_fs"),
    5: ("dup_mmap", "do_wp_page"),
    6: ("copy_namespaces", "alloc_pid"),
    7: ("_do_fork", "mm_release", "exit_mm"),
    8: ("copy_sighand", "copy_signal", "copy_mm", "copy_creds"),
    9: ("copy_process",),
}


def build_stages(numbers: Sequence[int] | None = None) -> list[Stage]:
    """Run the stages (all of them, or the ``numbers`` given, 1-based); ValueError for a stage that does not exist."""
    chosen = list(numbers) if numbers else list(range(1, len(STAGES) + 1))
    for n in chosen:
        if not 1 <= n <= len(STAGES):
            raise ValueError(f"no stage {n}: the tour has stages 1 to {len(STAGES)}")
    stages = [STAGES[n - 1]() for n in chosen]
    for stage in stages:
        stage.focus = FOCUS[stage.number]
    return stages


# --- rendering ---------------------------------------------------------------------------------


def focused_calls(calls: Sequence[Call], focus: Sequence[str]) -> list[Call]:
    """The calls of the functions named in ``focus`` (each call, outermost first), or ``calls`` with no focus."""
    if not focus:
        return list(calls)
    found: list[Call] = []
    for root in calls:
        found.extend(c for c in root.walk() if c.name in focus and not any(a in found for a in _enclosing_calls(c)))
    return found


def _enclosing_calls(call: Call) -> list[Call]:
    """The calls enclosing ``call``, innermost first."""
    out = []
    parent = call.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out


def rich_call_tree(calls: Sequence[Call], depth: int = TREE_DEPTH, lines: int = TREE_LINES) -> Tree:
    """The calls as a rich Tree to ``depth`` levels, each with its outcome, source and decisions, cut at ``lines``."""
    tree = Tree("[bold]trace[/] [dim](forklab trace shows every argument)[/]", guide_style="dim")
    budget = [lines]

    def add(node: Tree, item: Call | Decision, level: int) -> None:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        if isinstance(item, Decision):
            node.add(f"[green]{_esc(item.text)}[/] [dim]{item.source}[/]")
            return
        branch = node.add(f"[cyan]{item.name}()[/] {_esc(item.outcome())} [dim]{item.source}[/]")
        if level < depth:
            for child in item.children:
                add(branch, child, level + 1)
            return
        for child in item.decisions:
            add(branch, child, level + 1)
        nested = len(item.walk()) - 1
        if nested:
            branch.add(f"[dim]… {nested} nested call{'s' if nested > 1 else ''}[/]")

    for call in calls:
        add(tree, call, 1)
    if budget[0] <= 0:
        tree.add("[dim]… (cut: forklab trace shows the whole tree)[/]")
    return tree


def _esc(text: str) -> str:
    """Text safe inside rich markup."""
    return text.replace("[", r"\[")


def render_stages(stages: Sequence[Stage], console: Console) -> None:
    """Print each stage: title, what it shows, the facts, the trace, and what is shared."""
    for s in stages:
        console.rule(f"[bold]{s.number}. {_esc(s.title)}")
        console.print(_esc(s.intro))
        for fact in s.facts:
            console.print(f"  • {_esc(fact)}")
        if s.calls:
            console.print(rich_call_tree(focused_calls(s.calls, s.focus), depth=2))
        if s.sharing:
            console.print(stage_sharing_table(s))


def stage_sharing_table(s: Stage) -> Table:
    """The stage's sharing rows as a table."""
    table = Table(title=f"stage {s.number}: child vs parent" if s.number else "child vs caller")
    for column in ("call", "task_struct field", "child vs parent", "decided by"):
        table.add_column(column)
    for label, name, how, rule in s.sharing:
        table.add_row(_esc(label), name, "[green]shared[/]" if how == "shared" else "[yellow]copied[/]", rule)
    return table


def stages_html(stages: Sequence[Stage]) -> str:
    """The stages as one self-contained page: each stage's facts, its call tree and the child's fields per step."""
    sections = [Section(f"{s.number}. {s.title}", " ".join([s.intro, *s.facts]),
                        s.recorder.roots if s.recorder else (), s.watcher.snapshots if s.watcher else ())
                for s in stages]
    return render_page("forklab tour: how Linux 5.6.14 creates a process", sections)


__all__ = ["STAGES", "Stage", "build_stages", "render_stages", "rich_call_tree", "stage_sharing_table"]
