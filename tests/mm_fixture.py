"""mm unit-test helpers on a bare, unbooted KernelState: tasks with an mm, anonymous mappings, consistency."""

from __future__ import annotations

from forklab.include.linux.mm_types import MmStruct
from forklab.include.linux.sched import SighandStruct, SignalStruct, Task
from forklab.include.linux.user_namespace import UserNamespace
from forklab.kernel.fork import mm_alloc
from forklab.mm.debug import check_mm_invariants
from forklab.mm.mmap import ksys_mmap_pgoff
from forklab.state import KernelState
from forklab.uapi import MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE

PAGE = 4096


def make_task(k: KernelState, pid: int = 1, mm: MmStruct | None = None) -> Task:
    t = Task(pid=pid, tgid=pid, comm=f"t{pid}")
    t.signal = SignalStruct()
    t.sighand = SighandStruct()
    t.group_leader = t
    t.signal.thread_head.append(t)
    if mm is None:
        k.current = None
        mm = mm_alloc(k)
        assert mm is not None
        mm.user_ns = UserNamespace()
    t.mm = t.active_mm = mm
    return t


def mmap_anon(k: KernelState, t: Task, npages: int, shared: bool = False, prot: int = PROT_READ | PROT_WRITE,
              flags: int = 0, addr: int = 0) -> int:
    kind = MAP_SHARED if shared else MAP_PRIVATE
    k.current = t
    return ksys_mmap_pgoff(k, t, addr, npages * PAGE, prot, kind | MAP_ANONYMOUS | flags, -1, 0)


def assert_consistent(k: KernelState, tasks: list[Task]) -> None:
    mms: list[MmStruct] = []
    for t in tasks:
        if t.mm is not None and not any(m is t.mm for m in mms):
            mms.append(t.mm)
    errs = check_mm_invariants(k, mms)
    assert errs == [], "\n".join(errs)


def fake_force_sig_fault(k: object, t: Task, sig: int, addr: int) -> None:
    """Stand-in for forklab.kernel.signal.force_sig_fault: mark the signal pending, deliver nothing.

    The real one delivers SIGSEGV at once (the task exits), which needs a whole process tree.
    """
    t.pending.signal |= 1 << (sig - 1)
