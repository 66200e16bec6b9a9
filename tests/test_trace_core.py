"""The structured trace: a call tree with named arguments, returns and errnos, decisions with their source lines and
the model's values, the task and a virtual time; nothing is built while no one listens."""

from __future__ import annotations

import ast
import errno
import subprocess
import sys
from pathlib import Path

import pytest

import forklab.trace as trace_mod
from forklab import Kernel, Recorder
from forklab.kernel.fork import copy_mm, copy_process
from forklab.kernel_map import first_citation
from forklab.mm.memory import page_mapcount
from forklab.trace import CALL_ENTRY_NS, CALL_EXIT_NS, DECISION_NS, Call, arg_text
from forklab.uapi import (
    CLONE_FILES,
    CLONE_NEWUTS,
    CLONE_SIGHAND,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
    WNOHANG,
)

PACKAGE = Path(__file__).resolve().parent.parent / "forklab"
COPY_STEPS = ["copy_process_checks", "dup_task_struct", "copy_creds", "sched_fork", "copy_files", "copy_fs",
              "copy_sighand", "copy_signal", "copy_mm", "copy_namespaces", "copy_io", "copy_thread_tls", "alloc_pid"]


def recorded(k: Kernel) -> Recorder:
    rec = Recorder()
    k.listeners.append(rec)
    return rec


def nests(call: Call) -> bool:
    """Every child lies strictly inside its parent's interval, after its older sibling, on the same task's stack."""
    assert call.end is not None
    last = call.ts
    for child in call.children:
        start = child.ts
        if start < last:
            return False
        if isinstance(child, Call):
            assert child.end is not None
            if not (call.ts < child.ts and child.end < call.end and child.depth == call.depth + 1 and nests(child)):
                return False
            last = child.end
        else:
            last = start
    return True


def test_a_fork_is_a_syscall_call_with_copy_process_and_its_steps_nested_in_order() -> None:
    k = Kernel()
    rec = recorded(k)
    pid = k.fork(k.init_task)
    [root] = rec.calls
    assert (root.name, root.kind, root.tid, root.ret, root.errno) == ("fork", "syscall", 1, pid, None)
    [sys_fork] = root.calls
    [do_fork] = sys_fork.calls
    assert do_fork.name == "_do_fork" and do_fork.ret == pid
    cp = do_fork.calls[0]
    assert cp.name == "copy_process"
    assert [c.name for c in cp.calls] == COPY_STEPS
    assert nests(root)
    assert all(c.tid == 1 for c in root.walk())  # everything ran as the parent
    assert rec.find("wake_up_new_task")[0].arg("p") == f"init-{pid}"


def test_arguments_are_named_as_in_the_kernel_and_flag_sets_are_symbolic() -> None:
    k = Kernel()
    rec = recorded(k)
    k.clone(k.init_task, CLONE_VM | SIGCHLD)
    [sys_clone] = rec.find("sys_clone")
    assert [n for n, _ in sys_clone.args] == ["current", "clone_flags", "newsp", "parent_tidptr", "child_tidptr", "tls"]
    assert sys_clone.arg("clone_flags") == CLONE_VM | SIGCHLD
    assert arg_text("clone_flags", CLONE_VM | SIGCHLD) == "CLONE_VM|SIGCHLD"
    assert "clone_flags=CLONE_VM|SIGCHLD" in sys_clone.signature()
    assert "newsp=NULL" in sys_clone.signature()
    [cm] = rec.find("copy_mm")
    assert cm.arg("clone_flags") == CLONE_VM  # kernel_clone_args.flags: the exit signal is apart


def test_a_decision_carries_the_models_values_at_that_moment() -> None:
    """CLONE_VM: mm_users goes 1 -> 2 at kernel/fork.c:1410, and the decision says so with the mm's real count."""
    k = Kernel()
    rec = recorded(k)
    mm = k.init_task.mm
    assert mm is not None
    before = mm.mm_users
    k.clone(k.init_task, CLONE_VM | CLONE_FILES | SIGCHLD)
    [cm] = rec.find("copy_mm")
    [d] = cm.decisions
    assert d.source == "kernel/fork.c:1410" and d.values == (("mm_users", mm.mm_users),)
    assert mm.mm_users == before + 1 and f"{before}\u2192{mm.mm_users}" in d.text
    files = k.init_task.files
    assert files is not None
    [cf] = rec.find("copy_files")
    assert cf.decisions[0].values == (("count", files.count),) and files.count == 2


def test_an_errno_is_recorded_on_every_call_it_unwinds_through() -> None:
    k = Kernel()
    rec = recorded(k)
    with pytest.raises(OSError) as info:
        k.clone(k.init_task, CLONE_SIGHAND | SIGCHLD)  # CLONE_SIGHAND needs CLONE_VM
    assert info.value.errno == errno.EINVAL
    [root] = rec.calls
    unwound = [c for c in root.walk() if c.errno is not None]
    assert [c.name for c in unwound] == ["clone", "sys_clone", "_do_fork", "copy_process", "copy_process_checks"]
    assert all(c.errno == errno.EINVAL and c.outcome() == "= -EINVAL" for c in unwound)


def cow_setup(k: Kernel) -> tuple[int, int]:
    addr = k.mmap(k.init_task, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.store(k.init_task, addr, b"x")
    return addr, k.fork(k.init_task)


def test_copy_on_write_copy_then_reuse_with_the_real_mapcounts() -> None:
    k = Kernel()
    addr, pid = cow_setup(k)
    rec = recorded(k)
    child = k.find_task(pid)
    k.store(child, addr, b"c")  # shared: mapcount 2 -> copy
    [wp] = rec.find("do_wp_page")
    [d] = wp.decisions
    assert d.source == "mm/memory.c:2828" and dict(d.values)["mapcount"] == 2
    assert [c.name for c in wp.calls] == ["wp_page_copy"]
    old = dict(d.values)["pfn"]
    assert isinstance(old, int) and page_mapcount(k, old) == 1  # the parent alone maps it now
    k.store(k.init_task, addr, b"p")  # the parent is the last mapper: reuse in place
    wp2 = rec.find("do_wp_page")[1]
    [d2] = wp2.decisions
    assert d2.source == "mm/memory.c:2804" and d2.text.startswith("reuse page") and dict(d2.values)["mapcount"] == 1
    assert [c.name for c in wp2.calls] == ["wp_page_reuse"]


def test_a_traced_functions_source_is_its_docstring_citation() -> None:
    k = Kernel()
    rec = recorded(k)
    k.fork(k.init_task)
    [cp] = rec.find("copy_process")
    [cm] = rec.find("copy_mm")
    assert cp.source == str(first_citation(copy_process.__doc__)) == "kernel/fork.c:1824-2362"
    assert cm.source == str(first_citation(copy_mm.__doc__))


def test_exit_and_wait_run_as_their_tasks() -> None:
    k = Kernel()
    pid = k.fork(k.init_task)
    rec = recorded(k)
    k.exit(k.find_task(pid), 3)
    res = k.wait4(k.init_task, pid, 0)
    exit_call, wait_call = rec.calls
    assert exit_call.tid == pid and [c.name for c in exit_call.calls] == ["do_exit"]
    assert {c.tid for c in exit_call.walk()} == {pid}
    ru = res.rusage
    assert wait_call.tid == 1 and wait_call.ret == (pid, res[1], ru.ru_utime.tv_sec, ru.ru_utime.tv_usec,
                                                    ru.ru_stime.tv_sec, ru.ru_stime.tv_usec) and res[1] == 3 << 8
    assert [c.name for c in rec.find("wait_task_zombie")[0].calls] == ["release_task"]


def test_virtual_time_is_deterministic_and_a_leaf_costs_entry_plus_exit() -> None:
    def run() -> list[str]:
        k = Kernel()
        rec = recorded(k)
        k.fork(k.init_task)
        return [f"{c.name} {c.ts} {c.dur}" for c in rec.calls[0].walk()]

    first = run()
    assert first == run()
    k = Kernel()
    rec = recorded(k)
    k.fork(k.init_task)
    for c in rec.calls[0].walk():
        if not c.calls:
            assert c.dur == CALL_ENTRY_NS + CALL_EXIT_NS + DECISION_NS * len(c.decisions)
    assert rec.calls[0].ts >= k.clock_ns - 1000  # a root starts no earlier than the model clock at its entry


def test_no_listener_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no listener, no call, decision, argument snapshot or event is made: each of them would raise here."""
    def boom(*_: object, **__: object) -> None:
        raise AssertionError("trace record built with no listener")

    for name in ("enter", "leave", "decide", "emit"):
        monkeypatch.setattr(trace_mod.Tracer, name, boom)
    monkeypatch.setattr(trace_mod, "trace_value", boom)
    k = Kernel()
    addr, pid = cow_setup(k)
    k.store(k.find_task(pid), addr, b"y")
    k.exit(k.find_task(pid), 0)
    k.wait4(k.init_task, pid, 0)
    assert k.tracer.seq == 0 and not k.tracer.stack


def _unguarded_trace_calls(path: Path) -> list[int]:
    """Lines of ``k.trace``/``k.decide`` calls not directly under ``if k.listeners:`` (or ``if k.listeners and ...:``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        test = node.test.values[0] if isinstance(node, ast.If) and isinstance(node.test, ast.BoolOp) \
            and isinstance(node.test.op, ast.And) else getattr(node, "test", None)
        if isinstance(node, ast.If) and test is not None and ast.unparse(test) in ("k.listeners", "self.k.listeners"):
            for stmt in node.body:
                guarded.add(stmt.lineno)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            f = node.value.func
            if isinstance(f, ast.Attribute) and f.attr in ("trace", "decide") and ast.unparse(f.value) == "k":
                if node.lineno not in guarded:
                    bad.append(node.lineno)
    return bad


@pytest.mark.parametrize("area", ["kernel", "mm", "arch", "ipc", "security", "lib"])
def test_every_decision_text_is_built_only_under_a_listener_guard(area: str) -> None:
    files = sorted((PACKAGE / area).rglob("*.py"))
    bad = {str(p.relative_to(PACKAGE)): lines for p in files if (lines := _unguarded_trace_calls(p))}
    assert not bad


def test_fs_decisions_are_guarded_too() -> None:
    others = {"open.py", "namei.py", "read_write.py"}  # another engineer's files
    files = [p for p in sorted((PACKAGE / "fs").glob("*.py")) if p.name not in others]
    bad = {p.name: lines for p in files if (lines := _unguarded_trace_calls(p))}
    assert not bad


def test_a_listener_attached_mid_call_sees_a_consistent_tree() -> None:
    """A listener added while calls are open roots the first calls it sees; exits still close them."""
    k = Kernel()
    late = Recorder()

    def attach(event: trace_mod.TraceEvent) -> None:
        if event.ph == "B" and event.kind == "copy_mm" and late not in k.listeners:
            k.listeners.append(late)

    k.listeners.append(attach)
    pid = k.fork(k.init_task)
    # copy_mm's own entry came before the listener: its callee dup_mm is a root, then copy_process's later steps
    assert [c.name for c in late.calls][:3] == ["dup_mm", "copy_namespaces", "copy_io"]
    assert all(c.end is not None for c in late.calls)
    assert late.find("alloc_pid")[0].ret == f"<pid {pid}>"


def test_recorder_keeps_the_flat_decision_list() -> None:
    k = Kernel()
    rec = recorded(k)
    k.fork(k.init_task)
    assert "copy_process" in rec.kinds() and all(e.ph == "i" for e in rec.events)
    assert len(rec.stream) == len(rec.events) + 2 * len(rec.calls[0].walk())
    assert rec.lines()[0].startswith("#1 [1] > fork: fork()")


def test_flag_arguments_are_named_per_function_and_namespaces_by_inode() -> None:
    """``flags`` is the clone flags in the namespace copies; a wait's options and an exit's code read as the kernel's
    names and status word; a namespace is its /proc inode number."""
    k = Kernel()
    rec = recorded(k)
    pid = k.clone(k.init_task, CLONE_NEWUTS | SIGCHLD)
    child = k.find_task(pid)
    assert child.nsproxy is not None and k.init_task.nsproxy is not None
    new, old = child.nsproxy.uts_ns, k.init_task.nsproxy.uts_ns
    assert new is not None and old is not None and new is not old
    [uts] = rec.find("copy_utsname")
    assert uts.ret == f"<Namespace [{new.inum}]>"
    assert f"old_ns=<Namespace [{old.inum}]>" in uts.signature()
    assert "flags=CLONE_NEWUTS," in uts.signature()
    assert "flags=CLONE_NEWUTS," in rec.find("copy_namespaces")[0].signature()
    k.exit(child, 3)
    k.wait4(k.init_task, pid, WNOHANG)
    assert "code=0x300" in rec.find("do_exit")[0].signature()
    assert "options=WNOHANG" in rec.find("kernel_wait4")[0].signature()


def test_a_listener_that_raises_at_an_entry_leaves_the_stack_clean() -> None:
    k = Kernel()
    rec = recorded(k)

    def fail(event: trace_mod.TraceEvent) -> None:
        if event.ph == "B" and event.kind == "copy_files":
            raise RuntimeError("listener")

    k.listeners.append(fail)
    with pytest.raises(RuntimeError):
        k.fork(k.init_task)
    assert not k.tracer.stack
    [cf] = rec.find("copy_files")
    assert cf.end is not None and cf.error == "RuntimeError: listener"
    k.listeners.remove(fail)
    k.getpid(k.init_task)
    assert rec.calls[-1].name == "getpid" and rec.calls[-1].depth == 0


SWAP_SCRIPT = """
import gc
import forklab.kernel.fork as fork
from forklab import Kernel, Recorder

def bound():
    return hasattr(fork.copy_process, "__forklab_traced__")

k = Kernel()
out = [bound()]
rec = Recorder()
k.listeners.append(rec)
out.append(bound())
other = Kernel()  # a second kernel while the first listens: the wrappers stay, and trace nothing for it
other.fork(other.init_task)
out.append(len(rec.calls))
k.fork(k.init_task)
out.append(len(rec.calls))
k.listeners[:] = []
out.append(bound())
k.listeners.extend([rec])
out.append(bound())
del k, rec
gc.collect()
Kernel()
out.append(bound())
print(out)
"""


def test_the_originals_run_while_no_kernel_listens() -> None:
    """In a fresh interpreter: no listener anywhere binds the original functions; a listener on any kernel binds
    the wrappers, which trace only that kernel; a kernel dropped while listening stops counting."""
    out = subprocess.run([sys.executable, "-c", SWAP_SCRIPT], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[False, True, 0, 1, False, True, False]"


def test_a_failed_fork_leaves_the_same_snapshot_with_a_recorder_attached() -> None:
    """The trace's virtual clock and event numbers move with every call; they are not kernel state."""
    k = Kernel()
    rec = recorded(k)
    t = k.init_task
    before = k.snapshot()
    t.fail_nth = 5  # a copy_process allocation fails and the ladder unwinds
    with pytest.raises(OSError):
        k.fork(t)
    assert rec.find("copy_process") and k.tracer.seq > 0
    assert k.snapshot() == before
