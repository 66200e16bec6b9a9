"""fork/vfork/clone/clone3 entry points: how each maps its arguments, and clone3's checks.

Source: kernel/fork.c (5.6.4 line numbers; 5.6.14 differs only in sys_clone's use of
lower_32_bits, catalog §0.3), include/uapi/linux/sched.h.
"""

from __future__ import annotations

import errno

import pytest
from conftest import assert_cites, expect_errno, fork_child, gone, map_page, read_int, state, write_int

from forklab import CloneArgs, SigAction, TaskState
from forklab.include.linux.mm_types import TASK_SIZE_MAX
from forklab.uapi import (
    __WALL,
    __WCLONE,
    CLONE_CLEAR_SIGHAND,
    CLONE_DETACHED,
    CLONE_FILES,
    CLONE_NEWTIME,
    CLONE_PARENT,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    CSIGNAL,
    PAGE_SIZE,
    SA_RESTART,
    SIGCHLD,
    SIGUSR1,
    WNOHANG,
)


def raw_clone_args(**fields: int) -> bytes:
    """struct clone_args as user space lays it out (include/uapi/linux/sched.h:89-100)."""
    order = ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
             "set_tid", "set_tid_size")
    return b"".join((fields.get(n, 0) & (2**64 - 1)).to_bytes(8, "little") for n in order)


# --- fork / vfork -------------------------------------------------------------------------


def test_fork_is_clone_with_no_flags_and_sigchld(k, init):
    """fork(): flags 0, exit_signal SIGCHLD (kernel/fork.c:2520-2534)."""
    pid = k.fork(init)
    child = k.find_task(pid)
    assert child.exit_signal == SIGCHLD
    assert child.pid == child.tgid == pid
    assert child.real_parent is init and child.group_leader is child
    assert child.mm is not init.mm and child.files is not init.files and child.fs is not init.fs
    assert child.sighand is not init.sighand and child.signal is not init.signal
    assert child.vfork_done is None
    k.check_invariants()


def test_vfork_is_clone_vm_vfork_with_sigchld(k):
    """vfork(): CLONE_VFORK|CLONE_VM, SIGCHLD (kernel/fork.c:2536-2546); the parent sleeps (2460)."""
    parent = fork_child(k)
    users = parent.mm.mm_users
    pid = k.vfork(parent)
    child = k.find_task(pid)
    assert child.mm is parent.mm and parent.mm.mm_users == users + 1
    assert child.exit_signal == SIGCHLD
    assert child.files is not parent.files and child.sighand is not parent.sighand
    assert child.vfork_done is not None
    assert parent.state & TaskState.TASK_UNINTERRUPTIBLE
    k.check_invariants()


# --- legacy clone ---------------------------------------------------------------------------


def test_legacy_clone_ignores_bit32_clear_sighand_in_5_6_14(k):
    """5.6.14 sys_clone keeps lower_32_bits(clone_flags) only (kernel/fork.c:2572-2580, stable 3f2c788a1314):
    bit 32 (CLONE_CLEAR_SIGHAND) does not reach copy_sighand (1521), so the handler is inherited."""
    parent = fork_child(k)
    k.rt_sigaction(parent, SIGUSR1, SigAction(0x4000, SA_RESTART))
    pid = k.clone(parent, CLONE_CLEAR_SIGHAND | SIGCHLD)
    child = k.find_task(pid)
    assert child.sighand.action[SIGUSR1 - 1].sa_handler == 0x4000
    assert child.sighand.action[SIGUSR1 - 1].sa_flags == SA_RESTART
    assert child.exit_signal == SIGCHLD
    k.check_invariants()


def test_legacy_clone_ignores_garbage_in_bits_32_to_63(k):
    """Bits 32-63 are discarded before any check (kernel/fork.c:2572-2580 in 5.6.14): even
    CLONE_CLEAR_SIGHAND|CLONE_SIGHAND in the high half, which clone3 rejects (2697), passes."""
    parent = fork_child(k)
    pid = k.clone(parent, (0xFFFFFFFF << 32) | SIGCHLD)
    child = k.find_task(pid)
    assert child.exit_signal == SIGCHLD
    assert child.sighand is not parent.sighand
    k.check_invariants()


@pytest.mark.parametrize("sig", [0, SIGUSR1, 64, 65, 128, 200, 255])
def test_legacy_clone_exit_signal_is_never_validated(k, sig):
    """exit_signal = clone_flags & CSIGNAL, no valid_signal() check in sys_clone (kernel/fork.c:2576)."""
    parent = fork_child(k)
    pid = k.clone(parent, sig)
    assert k.find_task(pid).exit_signal == sig
    k.check_invariants()


def test_legacy_clone_newtime_bit_is_just_part_of_exit_signal(k):
    """In legacy clone 0x80 (CLONE_NEWTIME) lies inside CSIGNAL (include/uapi/linux/sched.h:10,43),
    so it becomes exit_signal bits (kernel/fork.c:2576), not a time namespace."""
    parent = fork_child(k)
    pid = k.clone(parent, CLONE_NEWTIME | SIGCHLD)
    child = k.find_task(pid)
    assert child.exit_signal == CLONE_NEWTIME | SIGCHLD
    assert child.nsproxy is parent.nsproxy
    k.check_invariants()


def test_legacy_clone_pidfd_with_parent_settid_is_einval(k):
    """legacy_clone_args_valid: CLONE_PIDFD|CLONE_PARENT_SETTID share parent_tidptr (kernel/fork.c:2469-2477)."""
    parent = fork_child(k)
    addr = map_page(k, parent)
    before = state(k)
    e = expect_errno(errno.EINVAL, k.clone, parent, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, addr)
    assert_cites(e, "kernel/fork.c", 2469, 2478)
    assert state(k) == before
    k.check_invariants()


def test_legacy_clone_pidfd_parent_settid_check_precedes_copy_process_checks(k):
    """sys_clone calls legacy_clone_args_valid (2582) before _do_fork, so it wins over copy_process's
    CLONE_THREAD-without-SIGHAND check (1851)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone, parent, CLONE_PIDFD | CLONE_PARENT_SETTID | CLONE_THREAD, 0, 0x1000)
    assert_cites(e, "kernel/fork.c", 2469, 2478)
    k.check_invariants()


def test_legacy_clone_pidfd_pointer_is_parent_tidptr(k):
    """.pidfd = parent_tidptr (kernel/fork.c:2574): the pidfd number lands at parent_tid."""
    parent = fork_child(k)
    addr = map_page(k, parent)
    write_int(k, parent, addr, -7)
    pid = k.clone(parent, CLONE_PIDFD | SIGCHLD, 0, addr)
    fd = read_int(k, parent, addr)
    assert fd >= 0
    f = parent.files.fdt.fd[fd]
    assert f is not None and f.private_data is k.find_task(pid).thread_pid
    k.check_invariants()


def test_legacy_clone_parent_settid_writes_child_pid(k):
    """CLONE_PARENT_SETTID: _do_fork writes pid_vnr(child) to parent_tid (kernel/fork.c:2445-2446)."""
    parent = fork_child(k)
    addr = map_page(k, parent)
    pid = k.clone(parent, CLONE_PARENT_SETTID | SIGCHLD, 0, addr)
    assert read_int(k, parent, addr) == pid
    k.check_invariants()


def test_legacy_clone_parent_settid_write_error_is_ignored(k):
    """The put_user of PARENT_SETTID ignores errors (kernel/fork.c:2445-2446): an unmapped pointer still forks."""
    parent = fork_child(k)
    pid = k.clone(parent, CLONE_PARENT_SETTID | SIGCHLD, 0, 0x10)
    assert k.find_task(pid).real_parent is parent
    k.check_invariants()


def test_legacy_clone_detached_alone_is_ignored(k):
    """CLONE_DETACHED is ignored by legacy clone; rejected only with CLONE_PIDFD (kernel/fork.c:1891-1899)."""
    parent = fork_child(k)
    pid = k.clone(parent, CLONE_DETACHED | SIGCHLD)
    assert k.find_task(pid).exit_signal == SIGCHLD
    k.check_invariants()


# --- clone3: copy_clone_args_from_user ----------------------------------------------------


def test_clone3_size_above_page_size_is_e2big(k):
    """usize > PAGE_SIZE -> E2BIG (kernel/fork.c:2608-2609)."""
    parent = fork_child(k)
    expect_errno(errno.E2BIG, k.clone3, parent, CloneArgs(exit_signal=SIGCHLD), 4097)
    k.check_invariants()


@pytest.mark.parametrize("size", [0, 8, 56, 63])
def test_clone3_size_below_ver0_is_einval(k, size):
    """usize < CLONE_ARGS_SIZE_VER0 (64) -> EINVAL (kernel/fork.c:2610-2611)."""
    parent = fork_child(k)
    expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=SIGCHLD), size)
    k.check_invariants()


@pytest.mark.parametrize("size", [64, 72, 79, 80, 81, 88, PAGE_SIZE])
def test_clone3_accepts_sizes_from_64_to_page_size(k, size):
    """copy_struct_from_user zero-fills short structs and accepts a zero tail (include/linux/uaccess.h:283-302)."""
    parent = fork_child(k)
    pid = k.clone3(parent, CloneArgs(exit_signal=SIGCHLD), size)
    assert k.find_task(pid).exit_signal == SIGCHLD
    k.check_invariants()


def test_clone3_size_64_ignores_set_tid(k):
    """With usize 64 the set_tid fields are zero-filled (kernel/fork.c:2613), so set_tid is not used."""
    parent = fork_child(k)
    pid = k.clone3(parent, CloneArgs(exit_signal=SIGCHLD, set_tid=[5000]), 64)
    assert pid != 5000
    assert gone(k, 5000)
    k.check_invariants()


def test_clone3_raw_struct_size_64_ignores_set_tid_fields(k):
    """Raw struct in memory: bytes past usize are never read (kernel/fork.c:2613-2615)."""
    parent = fork_child(k)
    buf = map_page(k, parent)
    write_int(k, parent, buf + 256, 5000)
    k.store(parent, buf, raw_clone_args(exit_signal=SIGCHLD, set_tid=buf + 256, set_tid_size=1))
    pid = k.clone3(parent, buf, 64)
    assert pid != 5000
    k.check_invariants()


def test_clone3_raw_struct_size_72_sees_set_tid_without_size_einval(k):
    """Size 72 makes set_tid readable but set_tid_size zero-filled: set_tid && !set_tid_size -> EINVAL
    (kernel/fork.c:2623-2624)."""
    parent = fork_child(k)
    buf = map_page(k, parent)
    write_int(k, parent, buf + 256, 5000)
    k.store(parent, buf, raw_clone_args(exit_signal=SIGCHLD, set_tid=buf + 256, set_tid_size=1))
    expect_errno(errno.EINVAL, k.clone3, parent, buf, 72)
    k.check_invariants()


def test_clone3_raw_struct_size_80_uses_set_tid(k):
    """Full VER1 struct: set_tid array copied (kernel/fork.c:2646-2649) and used by alloc_pid (pid.c:194-220)."""
    parent = fork_child(k)
    buf = map_page(k, parent)
    write_int(k, parent, buf + 256, 5000)
    k.store(parent, buf, raw_clone_args(exit_signal=SIGCHLD, set_tid=buf + 256, set_tid_size=1))
    assert k.clone3(parent, buf, 80) == 5000
    k.check_invariants()


def test_clone3_raw_struct_nonzero_tail_is_e2big(k):
    """size > 80 with a non-zero byte past the known struct -> E2BIG (include/linux/uaccess.h:295)."""
    parent = fork_child(k)
    buf = map_page(k, parent)
    k.store(parent, buf, raw_clone_args(exit_signal=SIGCHLD) + bytes(8) + b"\x01")
    expect_errno(errno.E2BIG, k.clone3, parent, buf, 89)
    assert k.clone3(parent, buf, 88) > 0  # the 8 zero bytes after the struct are fine
    k.check_invariants()


def test_clone3_unreadable_struct_is_efault(k):
    """A fault copying clone_args -> EFAULT (kernel/fork.c:2613-2615)."""
    parent = fork_child(k)
    expect_errno(errno.EFAULT, k.clone3, parent, 0x10, 80)
    k.check_invariants()


def test_clone3_set_tid_size_above_32_is_einval(k):
    """set_tid_size > MAX_PID_NS_LEVEL -> EINVAL (kernel/fork.c:2617-2618)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=SIGCHLD, set_tid=[2000] * 33))
    assert_cites(e, "kernel/fork.c", 2617, 2619)
    k.check_invariants()


def test_clone3_set_tid_size_without_pointer_is_einval(k):
    """!set_tid && set_tid_size > 0 -> EINVAL (kernel/fork.c:2620-2621)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=SIGCHLD, set_tid=0, set_tid_size=1))
    assert_cites(e, "kernel/fork.c", 2620, 2622)
    k.check_invariants()


def test_clone3_set_tid_pointer_without_size_is_einval(k):
    """set_tid && set_tid_size == 0 -> EINVAL (kernel/fork.c:2623-2624)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=SIGCHLD, set_tid=[2000], set_tid_size=0))
    assert_cites(e, "kernel/fork.c", 2623, 2625)
    k.check_invariants()


@pytest.mark.parametrize("sig", [65, 255, 0x100 | SIGCHLD, 1 << 32, 2**64 - 1])
def test_clone3_invalid_exit_signal_is_einval(k, sig):
    """exit_signal & ~CSIGNAL or !valid_signal (> 64) -> EINVAL (kernel/fork.c:2630-2632)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=sig))
    assert_cites(e, "kernel/fork.c", 2630, 2633)
    k.check_invariants()


@pytest.mark.parametrize("sig", [0, 1, SIGUSR1, 63, 64])
def test_clone3_exit_signal_up_to_64_is_accepted(k, sig):
    """valid_signal(s) is s <= _NSIG (include/linux/signal.h:260-263)."""
    parent = fork_child(k)
    pid = k.clone3(parent, CloneArgs(exit_signal=sig))
    assert k.find_task(pid).exit_signal == sig
    k.check_invariants()


def test_clone3_set_tid_list_shorter_than_size_is_efault(k):
    """copy_from_user of set_tid_size pid_t fails -> EFAULT (kernel/fork.c:2646-2649)."""
    parent = fork_child(k)
    expect_errno(errno.EFAULT, k.clone3, parent, CloneArgs(exit_signal=SIGCHLD, set_tid=[3000], set_tid_size=2))
    k.check_invariants()


def test_clone3_set_tid_unmapped_pointer_is_efault(k):
    """set_tid pointing at unmapped memory -> EFAULT (kernel/fork.c:2646-2649)."""
    parent = fork_child(k)
    buf = map_page(k, parent)
    k.store(parent, buf, raw_clone_args(exit_signal=SIGCHLD, set_tid=0x10, set_tid_size=1))
    expect_errno(errno.EFAULT, k.clone3, parent, buf, 80)
    k.check_invariants()


# --- clone3: clone3_args_valid, in order ----------------------------------------------------


@pytest.mark.parametrize("flags, lo, hi", [
    (1 << 33, 2687, 2689),
    (1 << 63, 2687, 2689),
    (SIGCHLD, 2694, 2696),
    (CLONE_NEWTIME, 2694, 2696),
    (CLONE_DETACHED, 2694, 2696),
    (CLONE_SIGHAND | CLONE_VM | CLONE_CLEAR_SIGHAND, 2697, 2700),
])
def test_clone3_args_valid_flag_rules_are_einval(k, flags, lo, hi):
    """clone3_args_valid (kernel/fork.c:2684-2709): unknown bits, CSIGNAL/NEWTIME/DETACHED, SIGHAND+CLEAR_SIGHAND."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(flags=flags))
    assert_cites(e, "kernel/fork.c", lo, hi)
    k.check_invariants()


def test_clone3_newtime_is_einval_in_5_6(k):
    """CLONE_NEWTIME (0x80) is a CSIGNAL bit, rejected by clone3 in 5.6 (kernel/fork.c:2694-2695)."""
    expect_errno(errno.EINVAL, k.clone3, k.init_task, CloneArgs(flags=CLONE_NEWTIME))
    k.check_invariants()


@pytest.mark.parametrize("flags", [CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, CLONE_PARENT])
def test_clone3_thread_or_parent_with_exit_signal_is_einval(k, flags):
    """(CLONE_THREAD|CLONE_PARENT) && exit_signal -> EINVAL (kernel/fork.c:2701-2703)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(flags=flags, exit_signal=SIGCHLD))
    assert_cites(e, "kernel/fork.c", 2701, 2704)
    k.check_invariants()


def test_clone3_parent_with_zero_exit_signal_uses_leaders_exit_signal(k):
    """clone3 CLONE_PARENT with exit_signal 0 passes (2701) and copy_process then uses the group
    leader's exit_signal (kernel/fork.c:2160-2163)."""
    parent = k.find_task(k.clone(k.init_task, SIGUSR1))
    pid = k.clone3(parent, CloneArgs(flags=CLONE_PARENT))
    child = k.find_task(pid)
    assert child.real_parent is k.init_task
    assert child.exit_signal == SIGUSR1
    k.check_invariants()


@pytest.mark.parametrize("stack, size", [
    (0, PAGE_SIZE),
    (0x10000, 0),
    (1 << 47, PAGE_SIZE),
    (2**64 - 4096, 8192),
])
def test_clone3_bad_stack_is_einval(k, stack, size):
    """clone3_stack_valid (kernel/fork.c:2664-2682): both or neither, and access_ok(stack, size)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=SIGCHLD, stack=stack, stack_size=size))
    assert_cites(e, "kernel/fork.c", 2705, 2707)
    k.check_invariants()


def test_clone3_stack_ending_exactly_at_task_size_max_is_valid(k):
    """access_ok's limit is USER_DS = TASK_SIZE_MAX (arch/x86/include/asm/uaccess.h:26,43-59): a range
    ending exactly there is valid, and sp := stack + stack_size (kernel/fork.c:2677-2678)."""
    parent = fork_child(k)
    pid = k.clone3(parent, CloneArgs(exit_signal=SIGCHLD, stack=TASK_SIZE_MAX - 8192, stack_size=8192))
    assert k.find_task(pid).regs.sp == TASK_SIZE_MAX
    k.check_invariants()


def test_clone3_stack_one_byte_past_task_size_max_is_einval(k):
    """__chk_range_not_ok: addr + size > limit (TASK_SIZE_MAX = 2^47 - 4096) -> not ok
    (arch/x86/include/asm/uaccess.h:56-59, processor.h:901) -> EINVAL (kernel/fork.c:2674-2675, 2705)."""
    parent = fork_child(k)
    expect_errno(errno.EINVAL, k.clone3, parent,
                 CloneArgs(exit_signal=SIGCHLD, stack=TASK_SIZE_MAX - 4096, stack_size=4097))
    expect_errno(errno.EINVAL, k.clone3, parent,
                 CloneArgs(exit_signal=SIGCHLD, stack=TASK_SIZE_MAX, stack_size=PAGE_SIZE))
    k.check_invariants()


def test_clone3_stack_sets_child_sp_to_top(k):
    """x86 stacks grow down: kargs.stack += stack_size (kernel/fork.c:2677-2678), then childregs->sp = sp
    (arch/x86/kernel/process.c:171-172)."""
    parent = fork_child(k)
    pid = k.clone3(parent, CloneArgs(exit_signal=SIGCHLD, stack=0x7000_0000, stack_size=0x2000))
    child = k.find_task(pid)
    assert child.regs.sp == 0x7000_2000
    assert child.regs.ax == 0
    k.check_invariants()


def test_clone3_flags_zero_exit_signal_zero_makes_a_clone_child(k):
    """clone3 with flags 0 and exit_signal 0 is legal (kernel/fork.c:2722-2739); a child with
    exit_signal != SIGCHLD is only eligible with __WCLONE/__WALL (kernel/exit.c:942-966)."""
    parent = fork_child(k)
    pid = k.clone3(parent, CloneArgs())
    child = k.find_task(pid)
    assert child.exit_signal == 0
    expect_errno(errno.ECHILD, k.wait4, parent, -1, WNOHANG)
    assert k.wait4(parent, -1, WNOHANG | __WCLONE) == (0, 0)
    k.exit(child, 3)
    expect_errno(errno.ECHILD, k.wait4, parent, -1, WNOHANG)
    assert k.wait4(parent, -1, __WALL) == (pid, 3 << 8)
    k.check_invariants()


def test_clone3_pidfd_and_parent_settid_same_pointer_is_accepted_in_5_6(k):
    """clone3 does not call legacy_clone_args_valid (kernel/fork.c:2722-2739): pidfd is written
    first (2127), then overwritten by PARENT_SETTID's pid (2445-2446)."""
    parent = fork_child(k)
    addr = map_page(k, parent)
    pid = k.clone3(parent, CloneArgs(flags=CLONE_PIDFD | CLONE_PARENT_SETTID, pidfd=addr, parent_tid=addr,
                                     exit_signal=SIGCHLD))
    assert read_int(k, parent, addr) == pid
    pidfds = [f for f in parent.files.fdt.fd if f is not None and f.private_data is k.find_task(pid).thread_pid]
    assert len(pidfds) == 1
    k.check_invariants()


# --- errno precedence across clone3's stages ----------------------------------------------------


def test_clone3_e2big_size_wins_over_everything(k):
    """The size check is first (kernel/fork.c:2608)."""
    parent = fork_child(k)
    args = CloneArgs(flags=CLONE_NEWTIME | (1 << 40), exit_signal=999, set_tid=[1] * 40)
    expect_errno(errno.E2BIG, k.clone3, parent, args, 8192)
    k.check_invariants()


def test_clone3_set_tid_size_rule_precedes_exit_signal_rule(k):
    """set_tid_size > 32 (2617) is checked before exit_signal (2630)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=999, set_tid=[2000] * 33))
    assert_cites(e, "kernel/fork.c", 2617, 2619)
    k.check_invariants()


def test_clone3_bad_exit_signal_einval_precedes_set_tid_efault(k):
    """exit_signal (2630) is checked before the set_tid copy (2646): EINVAL, not EFAULT."""
    parent = fork_child(k)
    expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(exit_signal=65, set_tid=[2000], set_tid_size=3))
    k.check_invariants()


def test_clone3_set_tid_efault_precedes_clone3_args_valid(k):
    """copy_clone_args_from_user (incl. the set_tid copy, 2646) runs before clone3_args_valid (2731)."""
    parent = fork_child(k)
    expect_errno(errno.EFAULT, k.clone3, parent,
                 CloneArgs(flags=CLONE_NEWTIME, exit_signal=SIGCHLD, set_tid=[2000], set_tid_size=3))
    k.check_invariants()


@pytest.mark.parametrize("flags, exit_signal, stack, stack_size, lo, hi", [
    ((1 << 33) | CSIGNAL, 0, 0, 0, 2687, 2689),
    (CLONE_NEWTIME | CLONE_SIGHAND | CLONE_VM | CLONE_CLEAR_SIGHAND, 0, 0, 0, 2694, 2696),
    (CLONE_SIGHAND | CLONE_VM | CLONE_CLEAR_SIGHAND | CLONE_THREAD, SIGCHLD, 0, 0, 2697, 2700),
    (CLONE_PARENT, SIGCHLD, 0, PAGE_SIZE, 2701, 2704),
])
def test_clone3_args_valid_first_failing_rule_wins(k, flags, exit_signal, stack, stack_size, lo, hi):
    """clone3_args_valid's rules are checked in source order (kernel/fork.c:2684-2709)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent,
                     CloneArgs(flags=flags, exit_signal=exit_signal, stack=stack, stack_size=stack_size))
    assert_cites(e, "kernel/fork.c", lo, hi)
    k.check_invariants()


def test_clone3_args_valid_precedes_copy_process_checks(k):
    """clone3_args_valid (2731) runs before copy_process: CSIGNAL in flags beats THREAD-without-SIGHAND (1851)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(flags=CLONE_THREAD | SIGCHLD))
    assert_cites(e, "kernel/fork.c", 2694, 2696)
    k.check_invariants()


def test_clone3_copy_process_check_after_valid_args(k):
    """A clone3 that passes its own checks reaches copy_process's (kernel/fork.c:1851-1852)."""
    parent = fork_child(k)
    e = expect_errno(errno.EINVAL, k.clone3, parent, CloneArgs(flags=CLONE_THREAD | CLONE_FILES))
    assert_cites(e, "kernel/fork.c", 1851, 1852)
    k.check_invariants()
