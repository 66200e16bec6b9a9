"""Any argument, however wrong, gives the kernel's errno or a clear Python error -- never a crash.

Hypothesis throws arbitrary integers (negative, huge, 64-bit garbage) and wrong types at
clone, clone3, mmap and madvise. Only OSError (the kernel's answer), TypeError/ValueError
(Python-level misuse) may escape, and ``check_invariants()`` must hold afterwards.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forklab import CloneArgs, Kernel
from forklab.uapi import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE

anyint = st.one_of(st.integers(-(2**64), 2**65), st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63, 2**64 - 1]))
word = st.integers(0, 2**64 - 1)


def kernel_with_memory() -> tuple[Kernel, int]:
    k = Kernel(pid_max=500, threads_max=100)
    addr = k.mmap(k.init_task, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    return k, addr


@settings(max_examples=300, deadline=None)
@given(flags=word, newsp=anyint, ptid=anyint, ctid=anyint, tls=anyint)
def test_clone_any_arguments(flags: int, newsp: int, ptid: int, ctid: int, tls: int) -> None:
    """clone(2) with any 64-bit words: a pid or the kernel's errno (kernel/fork.c:2566-2587)."""
    k, _ = kernel_with_memory()
    try:
        pid = k.clone(k.init_task, flags, newsp, ptid, ctid, tls)
        assert pid > 0
    except OSError:
        pass
    k.check_invariants()


@settings(max_examples=300, deadline=None)
@given(flags=word, pidfd=anyint, exit_signal=anyint, stack=anyint, stack_size=anyint, tls=anyint,
       set_tid=st.one_of(st.lists(anyint, max_size=40), anyint), set_tid_size=st.one_of(st.none(), anyint),
       size=st.one_of(st.none(), st.integers(-10, 5000)))
def test_clone3_any_arguments(flags: int, pidfd: int, exit_signal: int, stack: int, stack_size: int, tls: int,
                              set_tid: list[int] | int, set_tid_size: int | None, size: int | None) -> None:
    """clone3(2) with any struct contents and size (kernel/fork.c:2600-2739)."""
    k, addr = kernel_with_memory()
    args = CloneArgs(flags=flags, pidfd=pidfd, exit_signal=exit_signal, stack=stack, stack_size=stack_size,
                     tls=tls, set_tid=set_tid, set_tid_size=set_tid_size)
    with contextlib.suppress(OSError):
        assert k.clone3(k.init_task, args, size) > 0
    k.check_invariants()
    k, addr = kernel_with_memory()  # a fresh caller: a CLONE_VFORK success above leaves init asleep
    with contextlib.suppress(OSError):
        k.clone3(k.init_task, addr, size)  # the raw struct in memory (zeroes: a plain clone3)
    k.check_invariants()


@settings(max_examples=300, deadline=None)
@given(addr=anyint, length=anyint, prot=anyint, flags=anyint, fd=anyint, offset=anyint, advice=anyint)
def test_mmap_and_madvise_any_arguments(addr: int, length: int, prot: int, flags: int, fd: int, offset: int,
                                        advice: int) -> None:
    """mmap(2) and madvise(2) with any arguments (mm/mmap.c:1591, mm/madvise.c:1053)."""
    k, region = kernel_with_memory()
    with contextlib.suppress(OSError):
        k.mmap(k.init_task, addr, length, prot, flags, fd, offset)
    for start in (addr, region):
        with contextlib.suppress(OSError):
            k.madvise(k.init_task, start, length, advice)
    k.check_invariants()


@pytest.mark.parametrize("call", [
    lambda k: k.clone(k.init_task, "CLONE_VM"),
    lambda k: k.clone(k.init_task, 1.5),
    lambda k: k.clone(k.init_task, True),
    lambda k: k.clone3(k.init_task, {"flags": 0}),
    lambda k: k.clone3(k.init_task, CloneArgs(flags="x")),  # type: ignore[arg-type]
    lambda k: k.mmap(k.init_task, None, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS),
    lambda k: k.madvise("init", 0, PAGE_SIZE, 10),
    lambda k: k.fork(1),
])
def test_python_misuse_is_a_type_error(call: object) -> None:
    """Wrong Python types raise TypeError with a clear message, not a kernel errno."""
    k = Kernel()
    with pytest.raises(TypeError):
        call(k)  # type: ignore[operator]
    k.check_invariants()


def test_exited_task_cannot_call() -> None:
    """A task that has exited is a ValueError, not an AttributeError."""
    k = Kernel()
    child = k.find_task(k.fork(k.init_task))
    k.exit(child, 0)
    with pytest.raises(ValueError, match="exited"):
        k.fork(child)
    with pytest.raises(ValueError, match="no task"):
        k.find_task(9999)
