"""Random sequences of mmap/munmap/mprotect/madvise/store/load/fork/exit against a content oracle.

The oracle knows only the semantics (private memory is copied at fork, shared memory is one
object, DONTFORK leaves a hole, WIPEONFORK gives zeros, DONTNEED zeroes private pages); the
model must agree on every load and keep check_mm_invariants clean after every step.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mm_fixture import PAGE, assert_consistent, fake_force_sig_fault, make_task

from forklab.errors import KernelError, Segfault
from forklab.include.linux.mm_types import VM
from forklab.include.linux.sched import SighandStruct, SignalStruct, Task
from forklab.kernel.fork import copy_mm, mmput
from forklab.mm.madvise import do_madvise
from forklab.mm.mmap import find_vma, sys_mmap, vm_munmap
from forklab.mm.mprotect import do_mprotect_pkey
from forklab.mm.uaccess import user_load, user_store
from forklab.state import KernelState
from forklab.uapi import (
    MADV_DOFORK,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_KEEPONFORK,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
)

BASE = 0x40000000 - 5 * PAGE  # the window straddles a 2 MiB page-table boundary
NPAGES = 6
PROTS = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_WRITE]
ADVICE = [MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTNEED]


@dataclass(eq=False)
class Cell:
    data: int = 0


op = st.one_of(
    st.tuples(st.just("store"), st.integers(0, 2), st.integers(0, NPAGES - 1), st.integers(1, 255)),
    st.tuples(st.just("load"), st.integers(0, 2), st.integers(0, NPAGES - 1)),
    st.tuples(st.just("fork"), st.integers(0, 2)),
    st.tuples(st.just("mmap"), st.integers(0, 2), st.integers(0, NPAGES - 1), st.integers(1, 4), st.booleans(),
              st.sampled_from(PROTS)),
    st.tuples(st.just("munmap"), st.integers(0, 2), st.integers(0, NPAGES - 1), st.integers(1, 4)),
    st.tuples(st.just("mprotect"), st.integers(0, 2), st.integers(0, NPAGES - 1), st.integers(1, 4),
              st.sampled_from(PROTS)),
    st.tuples(st.just("madvise"), st.integers(0, 2), st.integers(0, NPAGES - 1), st.integers(1, 4),
              st.sampled_from(ADVICE)),
    st.tuples(st.just("store"), st.integers(0, 2), st.integers(0, NPAGES - 1), st.integers(1, 255)),
    st.tuples(st.just("load"), st.integers(0, 2), st.integers(0, NPAGES - 1)),
    st.tuples(st.just("fork"), st.integers(0, 2)),
    st.tuples(st.just("exit"), st.integers(0, 2)),
)


def _flags_at(t: Task, addr: int) -> int | None:
    assert t.mm is not None
    v = find_vma(t.mm, addr)
    return int(v.vm_flags) if v is not None and v.vm_start <= addr else None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=60))
@example(ops=[("mmap", 0, 0, 2, False, PROT_READ | PROT_WRITE), ("store", 0, 0, 5), ("fork", 0), ("store", 1, 0, 7),
              ("load", 0, 0), ("mprotect", 0, 0, 1, PROT_READ), ("mprotect", 0, 0, 1, PROT_READ | PROT_WRITE),
              ("store", 0, 0, 9), ("load", 1, 0), ("mmap", 1, 2, 3, True, PROT_READ | PROT_WRITE),
              ("store", 1, 3, 4), ("fork", 1), ("mprotect", 2, 3, 1, PROT_READ), ("mprotect", 2, 3, 1, 3),
              ("exit", 2), ("load", 1, 3), ("exit", 1)])
@pytest.mark.parametrize("mode", ["copy", "shared"])  # Linux's fork, and the on-demand fork
def test_random_operations_match_oracle(mode: str, ops: list[tuple[object, ...]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("forklab.mm.uaccess.force_sig_fault", fake_force_sig_fault)
    k = KernelState(fork_page_tables=mode)
    tasks: list[Task] = [make_task(k, 1)]
    oracle: list[dict[int, Cell]] = [{}]
    next_pid = 2
    for step in ops:
        kind = step[0]
        ti = int(step[1]) % len(tasks) if len(step) > 1 else 0  # type: ignore[call-overload]
        t = tasks[ti]
        cells = oracle[ti]
        k.current = t
        if kind == "mmap":
            _, _, idx, n, shared, prot = step
            addr, length = BASE + int(idx) * PAGE, min(int(n), NPAGES - int(idx)) * PAGE  # type: ignore[call-overload]
            flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED
            assert sys_mmap(k, t, addr, length, int(prot), flags, -1, 0) == addr  # type: ignore[call-overload]
            for a in range(addr, addr + length, PAGE):
                cells[a] = Cell()
        elif kind == "munmap":
            _, _, idx, n = step
            addr, length = BASE + int(idx) * PAGE, int(n) * PAGE  # type: ignore[call-overload]
            vm_munmap(k, t, addr, length)
            for a in range(addr, addr + length, PAGE):
                cells.pop(a, None)
        elif kind == "mprotect":
            _, _, idx, n, prot = step
            try:
                do_mprotect_pkey(k, t, BASE + int(idx) * PAGE, int(n) * PAGE, int(prot))  # type: ignore[call-overload]
            except KernelError as e:
                assert e.errno == errno.ENOMEM
        elif kind == "madvise":
            _, _, idx, n, adv = step
            addr, length = BASE + int(idx) * PAGE, int(n) * PAGE  # type: ignore[call-overload]
            before = {a: _flags_at(t, a) for a in range(addr, addr + length, PAGE)}
            try:
                do_madvise(k, t, addr, length, int(adv))  # type: ignore[call-overload]
            except KernelError as e:
                assert e.errno in (12, 22)
            if adv == MADV_DONTNEED:
                for a, fl in before.items():
                    if fl is not None and not fl & VM.VM_SHARED:
                        cells[a] = Cell()
        elif kind == "store":
            _, _, idx, byte = step
            addr = BASE + int(idx) * PAGE  # type: ignore[call-overload]
            fl = _flags_at(t, addr)
            if fl is not None and fl & VM.VM_WRITE:
                user_store(k, t, addr, bytes([int(byte)]))  # type: ignore[call-overload]
                cells[addr].data = int(byte)  # type: ignore[call-overload]
            else:
                with pytest.raises(Segfault):
                    user_store(k, t, addr, bytes([int(byte)]))  # type: ignore[call-overload]
        elif kind == "load":
            addr = BASE + int(step[2]) * PAGE  # type: ignore[call-overload]
            fl = _flags_at(t, addr)
            if fl is not None and fl & (VM.VM_READ | VM.VM_WRITE | VM.VM_EXEC):
                assert user_load(k, t, addr, 1) == bytes([cells[addr].data]), f"{step} in {ops}"
            else:
                with pytest.raises(Segfault):
                    user_load(k, t, addr, 1)
        elif kind == "fork":
            if len(tasks) >= 4:
                continue
            child = Task(pid=next_pid, tgid=next_pid)
            child.signal, child.sighand, child.group_leader = SignalStruct(), SighandStruct(), child
            next_pid += 1
            copy_mm(k, 0, child, t)
            new: dict[int, Cell] = {}
            for a, cell in cells.items():
                fl = _flags_at(t, a)
                assert fl is not None
                if fl & VM.VM_DONTCOPY:
                    continue
                if fl & VM.VM_WIPEONFORK:
                    new[a] = Cell()
                elif fl & VM.VM_SHARED:
                    new[a] = cell
                else:
                    new[a] = Cell(cell.data)
            tasks.append(child)
            oracle.append(new)
        elif kind == "exit":
            if len(tasks) == 1:
                continue
            assert t.mm is not None
            mmput(k, t.mm)
            t.mm = None
            tasks.pop(ti)
            oracle.pop(ti)
        assert_consistent(k, tasks)
    for t in tasks:
        assert t.mm is not None
        mmput(k, t.mm)
        t.mm = None
    assert k.mem.nr_used() == 0 and k.mem.vm_committed_as == 0 and k.mem.anon_vmas == {}
    assert_consistent(k, [])
