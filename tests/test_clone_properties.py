"""Property tests: random clone/clone3 arguments against a small reference of the 5.6.14 checks.

For every random flag word the call either succeeds -- and the child shares exactly what the
flags say -- or fails with an OSError; when the reference predicts one of the up-front EINVAL
checks, the model must report that errno (and, for copy_process's checks, the same line).
A failure must leave the kernel state unchanged, and the invariants must hold either way.
"""

from __future__ import annotations

import errno

from conftest import expect_errno, fork_child, kernel_line, map_page, state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forklab import CloneArgs, Kernel
from forklab.include.linux.mm_types import TASK_SIZE_MAX
from forklab.uapi import (
    CLONE_CLEAR_SIGHAND,
    CLONE_DETACHED,
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_PARENT,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_VM,
    CSIGNAL,
    PAGE_SIZE,
    SIGCHLD,
)

NEW_ANY = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP

COPY_PROCESS_LINES = [(1841, 1842), (1844, 1845), (1851, 1852), (1859, 1860), (1868, 1870), (1876, 1880),
                      (1886, 1889), (1891, 1899)]


def prime_semundo(k: Kernel, caller, flags: int) -> None:
    """copy_semundo's get_undo_list allocates the *caller's* SEM_UNDO list for CLONE_SYSVSEM and a failed
    fork does not free it (ipc/sem.c:1807-1826, 2264-2283), as on Linux. Allocate it up front (with a clone
    that fails later, at copy_thread_tls) so a state comparison sees only the call under test."""
    if flags & CLONE_SYSVSEM:
        expect_errno(errno.EPERM, k.clone, caller, CLONE_SYSVSEM | CLONE_SETTLS | SIGCHLD, tls=TASK_SIZE_MAX)
        assert caller.sysvsem_undo_list is not None and caller.sysvsem_undo_list.refcnt == 1


def copy_process_einval(flags: int) -> int | None:
    """Which copy_process check (1-8) fails first for a caller that is not an init and has not unshared
    pid/time namespaces (kernel/fork.c:1841-1899); None if all pass."""
    def both(a: int, b: int) -> bool:
        return flags & (a | b) == a | b

    if both(CLONE_NEWNS, CLONE_FS):
        return 1
    if both(CLONE_NEWUSER, CLONE_FS):
        return 2
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        return 3
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        return 4
    if flags & CLONE_THREAD and flags & (CLONE_NEWUSER | CLONE_NEWPID):
        return 6
    if flags & CLONE_PIDFD and flags & (CLONE_DETACHED | CLONE_THREAD):
        return 8
    return None


# interesting bits are chosen more often than uniform 32-bit words would
flag_bits = st.lists(st.sampled_from([1 << b for b in range(8, 32)]), max_size=8).map(lambda bs: sum(set(bs)))
legacy_words = st.tuples(flag_bits, st.integers(0, 255), st.sampled_from([0, 1 << 32, 0xDEAD << 40])).map(
    lambda t: t[0] | t[1] | t[2])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(word=legacy_words, bad_tls=st.booleans())
def test_random_legacy_clone_matches_reference(word, bad_tls):
    """sys_clone (kernel/fork.c:2566-2587, 5.6.14 lower 32 bits), legacy_clone_args_valid (2469-2477),
    copy_process (1841-1899) and the sharing rules of the copy_* helpers."""
    k = Kernel()
    caller = fork_child(k)
    buf = map_page(k, caller)
    flags = word & 0xFFFFFFFF & ~CSIGNAL
    exit_signal = word & CSIGNAL
    tls = TASK_SIZE_MAX if bad_tls else 0x7000
    prime_semundo(k, caller, flags)
    before = state(k, "close_on_exec")
    try:
        pid = k.clone(caller, word, newsp=0, parent_tid=buf, child_tid=buf + 64, tls=tls)
    except OSError as e:
        assert e.errno != 513  # ERESTARTNOINTR never escapes
        assert state(k, "close_on_exec") == before
        if flags & CLONE_PIDFD and flags & CLONE_PARENT_SETTID:
            assert e.errno == errno.EINVAL and 2469 <= kernel_line(e)[1] <= 2478
        elif (check := copy_process_einval(flags)) is not None:
            assert e.errno == errno.EINVAL
            lo, hi = COPY_PROCESS_LINES[check - 1]
            assert lo <= kernel_line(e)[1] <= hi, e
        elif flags & (CLONE_NEWIPC | CLONE_SYSVSEM) == CLONE_NEWIPC | CLONE_SYSVSEM:
            assert e.errno == errno.EINVAL and kernel_line(e) == ("kernel/nsproxy.c", kernel_line(e)[1]), e
        elif flags & CLONE_SETTLS and bad_tls:  # copy_thread_tls (2090) after copy_namespaces (2084)
            assert e.errno == errno.EPERM, e
        else:
            raise AssertionError(f"clone({word:#x}) failed unexpectedly: {e}") from e
        k.check_invariants()
        return
    assert not (flags & CLONE_PIDFD and flags & CLONE_PARENT_SETTID)
    assert copy_process_einval(flags) is None
    assert not (flags & CLONE_SETTLS and bad_tls)
    assert flags & (CLONE_NEWIPC | CLONE_SYSVSEM) != CLONE_NEWIPC | CLONE_SYSVSEM
    child = k.find_task(pid)
    assert (child.mm is caller.mm) == bool(flags & CLONE_VM)
    assert (child.files is caller.files) == bool(flags & CLONE_FILES)
    assert (child.fs is caller.fs) == bool(flags & CLONE_FS)
    assert (child.sighand is caller.sighand) == bool(flags & CLONE_SIGHAND)
    assert (child.signal is caller.signal) == bool(flags & CLONE_THREAD)
    assert (child.nsproxy is caller.nsproxy) == (not flags & NEW_ANY)
    assert (child.cred.user_ns is caller.cred.user_ns) == (not flags & CLONE_NEWUSER)
    if flags & CLONE_THREAD:
        assert child.exit_signal == -1 and child.tgid == caller.tgid
    elif flags & CLONE_PARENT:
        assert child.exit_signal == caller.group_leader.exit_signal
    else:
        assert child.exit_signal == exit_signal
    expected_parent = caller.real_parent if flags & (CLONE_PARENT | CLONE_THREAD) else caller
    assert child.real_parent is expected_parent
    assert child.regs.ax == 0
    if flags & CLONE_SETTLS:
        assert child.thread.fsbase == tls
    k.check_invariants()


clone3_flags = st.tuples(flag_bits, st.sampled_from([0, 0, CLONE_CLEAR_SIGHAND, 1 << 33]),
                         st.sampled_from([0, 0, 0, 0x80, 0x11])).map(lambda t: t[0] | t[1] | t[2])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flags=clone3_flags,
       exit_signal=st.sampled_from([0, 17, 64, 65, 0x111]),
       stack=st.sampled_from([(0, 0), (0x10000, 0x1000), (0, 0x1000), (0x10000, 0)]),
       set_tid=st.sampled_from([None, [], [4000], [4000, 1], [0] * 33]),
       size=st.sampled_from([64, 80, 96, PAGE_SIZE, 4097, 63]))
def test_random_clone3_matches_reference(flags, exit_signal, stack, set_tid, size):
    """copy_clone_args_from_user (kernel/fork.c:2600-2654) and clone3_args_valid (2684-2709) in order, then
    copy_process (1841-1899)."""
    k = Kernel()
    caller = fork_child(k)
    buf = map_page(k, caller)
    args = CloneArgs(flags=flags, pidfd=buf, parent_tid=buf + 8, child_tid=buf + 16, exit_signal=exit_signal,
                     stack=stack[0], stack_size=stack[1], tls=0x7000, set_tid=set_tid if set_tid is not None else 0)
    if size > 4096:
        expected: int | None = errno.E2BIG
    elif size < 64:
        expected = errno.EINVAL
    else:
        tid = set_tid if size >= 80 and set_tid else []
        sig = exit_signal
        if len(tid) > 32 or sig & ~CSIGNAL or sig > 64 or flags & ~(0xFFFFFFFF | CLONE_CLEAR_SIGHAND) or flags & (CLONE_DETACHED | CSIGNAL) or flags & (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND) == CLONE_SIGHAND | CLONE_CLEAR_SIGHAND or (flags & (CLONE_THREAD | CLONE_PARENT) and sig) or (stack[0] == 0) != (stack[1] == 0) or copy_process_einval(flags) is not None:
            expected = errno.EINVAL
        else:
            expected = None  # may still succeed or fail later (set_tid, namespaces, ...)
    if expected is not None:
        before = state(k)
        expect_errno(expected, k.clone3, caller, args, size)
        assert state(k) == before
        k.check_invariants()
        return
    prime_semundo(k, caller, flags)
    before = state(k, "close_on_exec")
    try:
        pid = k.clone3(caller, args, size)
    except OSError as e:
        assert e.errno in (errno.EINVAL, errno.EPERM, errno.EEXIST, errno.ENOSPC), e
        assert state(k, "close_on_exec") == before
        k.check_invariants()
        return
    child = k.find_task(pid)  # the caller is in the initial pid ns: pid is the level-0 number
    assert (child.mm is caller.mm) == bool(flags & CLONE_VM)
    assert (child.sighand is caller.sighand) == bool(flags & CLONE_SIGHAND)
    assert child.exit_signal == (-1 if flags & CLONE_THREAD else SIGCHLD if flags & CLONE_PARENT else exit_signal)
    if stack[0]:
        assert child.regs.sp == stack[0] + stack[1]
    if size >= 80 and set_tid:
        assert child.thread_pid.numbers[child.thread_pid.level].nr == set_tid[0]
    k.check_invariants()


def test_reference_predicts_precedence_examples():
    """Sanity check of the reference itself against the catalog's order (kernel/fork.c:1841-1899)."""
    assert copy_process_einval(CLONE_NEWNS | CLONE_NEWUSER | CLONE_FS) == 1
    assert copy_process_einval(CLONE_THREAD) == 3
    assert copy_process_einval(CLONE_SIGHAND) == 4
    assert copy_process_einval(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWPID | CLONE_PIDFD) == 6
    assert copy_process_einval(CLONE_PIDFD | CLONE_DETACHED) == 8
    assert copy_process_einval(CLONE_VM | CLONE_FILES) is None
