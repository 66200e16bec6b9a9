"""Shared fixtures and helpers for the forklab behavioural tests.

Every helper here is a thin wrapper over the public API (``Kernel`` methods); none of them
reach into forklab internals except to read task_struct fields, which the API exposes.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from typing import Any

import pytest

from forklab import Kernel
from forklab.uapi import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, RLIMIT_NPROC

__all__ = [
    "active_ns",
    "assert_cites",
    "errno",
    "expect_errno",
    "fork_child",
    "gone",
    "kernel_line",
    "map_page",
    "read_int",
    "state",
    "unprivileged",
    "write_int",
]


@pytest.fixture
def k() -> Kernel:
    """A freshly booted kernel (each test calls ``k.check_invariants()`` itself)."""
    return Kernel()


@pytest.fixture
def init(k: Kernel):
    return k.init_task


def _normalize(node: Any, blank: frozenset[str]) -> Any:
    if isinstance(node, tuple):
        if len(node) == 2 and isinstance(node[0], str) and node[0] in blank:
            return (node[0], "*")
        return tuple(_normalize(x, blank) for x in node)
    return node


def state(k: Kernel, *ignore: str) -> Any:
    """``k.snapshot()`` minus the x86 mm context-id counter.

    init_new_context takes ``atomic64_inc_return(&last_mm_ctx_id)`` for every dup_mm and never
    gives it back (arch/x86/include/asm/mmu_context.h:131-147), so a fork that fails after
    copy_mm advances it on Linux too, exactly like the pid cursor that ``snapshot`` already
    leaves out. Everything else must be identical after a failed call. ``ignore`` names more
    fields to leave out.
    """
    import sys

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))
    return _normalize(k.snapshot(), frozenset(("last_mm_ctx_id", *ignore)))


def gone(k: Kernel, pid: int, ns: Any = None) -> bool:
    """No task has thread id ``pid`` (in ``ns``, default the initial pid namespace)."""
    try:
        k.find_task(pid, ns)
    except (LookupError, ValueError):
        return True
    return False


def expect_errno(code: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> OSError:
    """Call ``fn`` and require an OSError with exactly ``code``; return the exception."""
    with pytest.raises(OSError) as ei:
        fn(*args, **kwargs)
    got = ei.value.errno
    assert got == code, f"expected {errno.errorcode.get(code, code)}, got {errno.errorcode.get(got, got)}: {ei.value}"
    return ei.value


_LINE = re.compile(r"\(([\w/.-]+\.[ch]):(\d+)")


def kernel_line(e: BaseException) -> tuple[str, int]:
    """The (file, line) a model error cites, e.g. ('kernel/fork.c', 1859)."""
    m = _LINE.search(str(e))
    assert m, f"error message cites no kernel source line: {e}"
    return m.group(1), int(m.group(2))


def assert_cites(e: BaseException, path: str, lo: int, hi: int | None = None) -> None:
    """The error cites ``path`` at a line in [lo, hi] (hi defaults to lo)."""
    f, line = kernel_line(e)
    hi = lo if hi is None else hi
    assert f == path and lo <= line <= hi, f"expected {path}:{lo}-{hi}, error says {f}:{line}: {e}"


def fork_child(k: Kernel, parent=None):
    """fork() from ``parent`` (default init) and return the child Task."""
    parent = k.init_task if parent is None else parent
    pid = k.fork(parent)
    return k.find_task(pid, active_ns(parent))


def active_ns(t):
    """The pid namespace ``t`` lives in (task_active_pid_ns): its deepest pid number's namespace."""
    return t.thread_pid.numbers[t.thread_pid.level].ns


def unprivileged(k: Kernel, uid: int = 1000, nproc: tuple[int, int] | None = None):
    """A child of init that dropped to uid ``uid`` with setresuid (so it has no capabilities).

    ``nproc`` sets RLIMIT_NPROC before the uid change.
    """
    t = fork_child(k)
    if nproc is not None:
        k.setrlimit(t, RLIMIT_NPROC, nproc)
    k.setresuid(t, uid, uid, uid)
    assert t.cred.uid == uid and t.cred.euid == uid
    assert t.cred.cap_effective == 0
    return t


def map_page(k: Kernel, t, n: int = 1) -> int:
    """mmap ``n`` private anonymous read-write pages in ``t`` and return the address."""
    return k.mmap(t, 0, PAGE_SIZE * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)


def read_int(k: Kernel, t, addr: int) -> int:
    """The 32-bit little-endian int at ``addr`` in ``t``'s memory."""
    return int.from_bytes(k.load(t, addr, 4), "little", signed=True)


def write_int(k: Kernel, t, addr: int, v: int) -> None:
    k.store(t, addr, (v & 0xFFFFFFFF).to_bytes(4, "little"))

