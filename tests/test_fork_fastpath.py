"""The fork/exit/wait fast paths (issue 9) answer as the plain algorithms do.

* ListHead/HlistHead (forklab/include/linux/list.py) walk, index, compare and fail exactly as the
  plain Python lists they stand for, under any sequence of the kernel's adds and unlinks.
* A session and a task list long enough to take the O(1) form keep the kernel's orders: the pid's
  hlist newest first, the task list in fork order, through forks and reaps in any order.
* arch_dup_task_struct copies every field; prepare_creds copies every cred field but usage.
* The shared, immutable handler table: a child's sigaction leaves its parent's table alone.
* dup_fd's slice copy: the child has the parent's files at the same fds, one reference more each.
* CleanupLadder unwinds as contextlib.ExitStack does when an undo itself fails.
"""

from __future__ import annotations

import copy
import random
from contextlib import ExitStack
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import Kernel
from forklab.arch.x86.kernel.process import arch_dup_task_struct
from forklab.include.linux.list import LONG_LIST, HlistHead, ListHead, long_list
from forklab.include.linux.sched import PIDTYPE_SID, SigAction, Task
from forklab.kernel.cred import prepare_creds
from forklab.kernel.pid import pid_task
from forklab.ladder import CleanupLadder
from forklab.uapi import O_RDONLY, SIG_IGN, SIGUSR1

OPS = st.lists(st.tuples(st.sampled_from(["add", "remove", "set", "del", "insert"]), st.integers(0, 200)),
               max_size=120)


@settings(max_examples=60, deadline=None)
@given(OPS, st.booleans())
def test_linked_forms_walk_as_the_plain_list(ops: list[tuple[str, int]], head_first: bool) -> None:
    """Every operation leaves the O(1) form and a plain list with the same walk, first, last and length."""
    plain: list[object] = []
    fast: HlistHead[object] | ListHead[object] = HlistHead() if head_first else ListHead()
    for op, n in ops:
        if op == "add":
            value = object()
            if head_first:
                plain.insert(0, value)
                fast.insert(0, value)
            else:
                plain.append(value)
                fast.append(value)
        elif op == "insert":
            value = object()
            plain.insert(n % (len(plain) + 1), value)
            fast.insert(n % (len(fast) + 1), value)
        elif plain and op == "remove":
            victim = plain[n % len(plain)]
            plain.remove(victim)
            fast.remove(victim)
        elif plain and op == "set":
            value = object()
            plain[n % len(plain)] = value
            fast[n % len(fast)] = value
        elif plain and op == "del":
            del plain[n % len(plain)]
            del fast[n % len(fast)]
        assert list(fast) == plain and fast == plain and len(fast) == len(plain) and bool(fast) == bool(plain)
        assert list(reversed(fast)) == plain[::-1]
        if plain:
            assert fast[0] is plain[0] and fast[-1] is plain[-1]
            assert all(v in fast for v in plain)
    assert object() not in fast
    with pytest.raises(ValueError):
        fast.remove(object())


def test_long_list_keeps_a_short_list_and_converts_a_long_one() -> None:
    short: list[int] = list(range(LONG_LIST - 1))
    assert long_list(short, ListHead) is short
    long = list(range(LONG_LIST))
    converted = long_list(long, HlistHead)
    assert isinstance(converted, HlistHead) and list(converted) == long
    assert long_list(converted, HlistHead) is converted


def _session_members(k: Kernel, leader: Task) -> list[Task]:
    assert leader.thread_pid is not None
    return list(leader.thread_pid.tasks[PIDTYPE_SID])


def test_a_long_session_keeps_the_hlist_order_through_forks_and_reaps() -> None:
    """More than LONG_LIST processes in one session: newest first, as hlist_add_head leaves it, after reaps
    in a random order too; the task list stays in fork order."""
    k = Kernel()
    leader = k.find_task(k.fork(k.init_task))
    k.setsid(leader)
    expected = [leader]
    for _ in range(LONG_LIST + 40):
        expected.insert(0, k.find_task(k.fork(leader)))
    assert isinstance(leader.thread_pid.tasks[PIDTYPE_SID] if leader.thread_pid else None, HlistHead)
    assert _session_members(k, leader) == expected
    assert pid_task(leader.thread_pid, PIDTYPE_SID) is expected[0]
    assert isinstance(k.tasks, ListHead)
    assert [t for t in k.tasks if t in expected] == expected[::-1]
    order = [t for t in expected if t is not leader]
    random.Random(9).shuffle(order)
    for child in order[:60]:
        k.exit_group(child, 0)
        k.wait4(leader, child.pid, 0)
        expected.remove(child)
        assert _session_members(k, leader) == expected
        assert child not in k.tasks
    assert [t for t in k.tasks if t in expected] == expected[::-1]
    for child in order[60:]:
        k.exit_group(child, 0)
        k.wait4(leader, child.pid, 0)
    assert _session_members(k, leader) == [leader]


def test_arch_dup_task_struct_copies_every_field() -> None:
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    dup = arch_dup_task_struct(t)
    reference = copy.copy(t)
    assert dup is not t
    for f in fields(Task):
        assert getattr(dup, f.name) is getattr(reference, f.name), f.name


def test_prepare_creds_copies_every_field_but_usage() -> None:
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    assert t.cred is not None
    new = prepare_creds(k, t)
    assert new is not t.cred and new.usage == 1
    for f in fields(new):
        if f.name != "usage":
            assert getattr(new, f.name) == getattr(t.cred, f.name), f.name


def test_a_childs_sigaction_leaves_its_parents_handlers() -> None:
    k = Kernel()
    parent = k.find_task(k.fork(k.init_task))
    k.rt_sigaction(parent, SIGUSR1, SigAction(SIG_IGN))
    child = k.find_task(k.fork(parent))
    assert parent.sighand is not None and child.sighand is not None and child.sighand is not parent.sighand
    assert list(child.sighand.action) == list(parent.sighand.action)
    k.rt_sigaction(child, SIGUSR1, SigAction(0))
    assert parent.sighand.action[SIGUSR1 - 1].sa_handler == SIG_IGN
    assert child.sighand.action[SIGUSR1 - 1].sa_handler == 0
    assert len(parent.sighand.action) == len(child.sighand.action) == 64


def test_dup_fd_gives_the_child_the_same_files_one_reference_more() -> None:
    k = Kernel()
    parent = k.find_task(k.fork(k.init_task))
    fds = [k.open(parent, "/", O_RDONLY) for _ in range(3)]
    high = k.dup2(parent, fds[0], 100)  # past the first 64-fd word: dup_fd's table is expanded
    assert parent.files is not None
    files = {fd: parent.files.fdt.fd[fd] for fd in [*fds, high]}
    before = {id(f): f.f_count for f in files.values() if f is not None}
    child = k.find_task(k.fork(parent))
    assert child.files is not None and child.files is not parent.files
    assert child.files.fdt.open_fds == parent.files.fdt.open_fds
    for fd, f in files.items():
        assert f is not None and child.files.fdt.fd[fd] is f
        assert f.f_count == before[id(f)] + sum(1 for g in files.values() if g is f)  # one per fd copied
    assert all(child.files.fdt.fd[fd] is None for fd in range(child.files.fdt.max_fds) if fd not in files)


def _unwind(stack_kind: str) -> tuple[list[str], BaseException]:
    """Run three undos, the middle one failing, under ``stack_kind``; what ran and what propagated."""
    ran: list[str] = []

    def fail() -> None:
        ran.append("middle")
        raise ValueError("undo failed")

    try:
        if stack_kind == "ladder":
            with CleanupLadder() as ladder:
                ladder.on_failure("first", ran.append, "first")
                ladder.on_failure("middle", fail)
                ladder.on_failure("last", ran.append, "last")
                raise OSError(12, "ENOMEM")
        with ExitStack() as stack:
            stack.callback(ran.append, "first")
            stack.callback(fail)
            stack.callback(ran.append, "last")
            raise OSError(12, "ENOMEM")
    except BaseException as e:  # the test compares what propagates
        return ran, e
    raise AssertionError("nothing propagated")


def test_a_failing_undo_unwinds_as_exit_stack_does() -> None:
    ladder_ran, ladder_exc = _unwind("ladder")
    stack_ran, stack_exc = _unwind("exit_stack")
    assert ladder_ran == stack_ran == ["last", "middle", "first"]
    assert type(ladder_exc) is type(stack_exc) is ValueError
    assert isinstance(ladder_exc.__context__, OSError) and isinstance(stack_exc.__context__, OSError)
