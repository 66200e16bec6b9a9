"""Core dumps (fs/coredump.c): whether a core-dumping signal dumps, and the 0x80 bit it leaves.

``get_signal`` calls ``do_coredump`` for the SIG_KERNEL_COREDUMP signals (SIGQUIT, SIGILL,
SIGTRAP, SIGABRT, SIGFPE, SIGSEGV, SIGBUS, SIGSYS, SIGXCPU, SIGXFSZ) before ``do_group_exit``,
as kernel/signal.c:2721-2739 does. The model follows do_coredump's decisions in their order:

1. The binfmt. Every model mm runs the model's one binfmt, which dumps like binfmt_elf
   (``min_coredump`` = ELF_EXEC_PAGESIZE, one page), so the ``!binfmt->core_dump`` check
   never fires.
2. Dumpability: ``mm->flags``' two MMF_DUMPABLE bits. exec sets SUID_DUMP_USER (or
   fs.suid_dumpable, 0, after a credential change). The boot init never exec'd, and
   mm_alloc gives its mm no dumpable bits, so init and a child that has not exec'd since
   are not dumpable in the model (on Linux init has exec'd and is).
3. ``coredump_wait`` -> ``zap_threads``: unless the group is already exiting, the dumper
   becomes ``group_exit_task``, its group gets SIGNAL_GROUP_COREDUMP (prepare_signal then
   drops all but SIGKILL) and every other thread, and every other process using the same mm
   (a vfork parent, a CLONE_VM child), gets SIGKILL. The kernel waits for them to reach
   exit_mm; the model does not wait: the zapped processes that are not in a syscall die as
   soon as the dump is decided, and the dumper's other threads die in its do_group_exit.
4. core_pattern is the boot default ``core``, a file name, never a ``|pipe``; a pattern
   with ``|`` would be Unmodelled. RLIMIT_CORE below ``min_coredump`` writes nothing, and
   a SUID_DUMP_ROOT dump needs an absolute pattern (fs/coredump.c:699-708).
5. The file. The model writes no file and assumes the kernel could create ``core`` in the
   dumper's cwd (no O_EXCL clash, a writable directory, the fsuid owning it, unshare_files
   succeeding). A dump that began counts as dumped even when RLIMIT_CORE truncates it:
   elf_core_dump sets ``has_dumped`` before it writes (fs/binfmt_elf.c:2240).
6. ``coredump_finish`` ORs 0x80 into ``signal->group_exit_code`` when the dump was written
   and no SIGKILL arrived, and turns the coredump state into SIGNAL_GROUP_EXIT. The wait
   status and CLD_DUMPED follow from that code.

With RLIMIT_CORE 0, as the model boots (init/init_task.py), no dump is ever written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.errors import Unmodelled
from forklab.fs.exec import MMF_DUMPABLE_MASK, SUID_DUMP_ROOT
from forklab.include.linux.sched import (
    JOBCTL_PENDING_MASK,
    PF_DUMPCORE,
    PF_KTHREAD,
    SIGNAL_GROUP_COREDUMP,
    SIGNAL_GROUP_EXIT,
    SigQueue,
    Task,
)
from forklab.kernel.signal import (
    fatal_signal_pending,
    return_to_user_mode_now,
    rlimit,
    sigmask,
    signal_group_exit,
    signal_wake_up,
    task_clear_jobctl_pending,
)
from forklab.uapi import PAGE_SIZE, RLIMIT_CORE, SIGKILL

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct
    from forklab.state import KernelState

CORE_PATTERN = "core"  # fs/coredump.c:57, the boot value of kernel.core_pattern
ELF_EXEC_PAGESIZE = PAGE_SIZE  # binfmt_elf's min_coredump (fs/binfmt_elf.c:97)


def zap_process(k: KernelState, current: Task, start: Task, exit_code: int, flags: int) -> int:
    """Mark ``start``'s group as dumping core and SIGKILL its threads other than the dumper that still have an
    mm; returns how many (fs/coredump.c:338-358)."""
    sig = start.signal
    assert sig is not None
    sig.flags = SIGNAL_GROUP_COREDUMP | flags
    sig.group_exit_code = exit_code
    sig.group_stop_count = 0
    nr = 0
    for t in list(sig.thread_head):  # for_each_thread(start, t)
        task_clear_jobctl_pending(t, JOBCTL_PENDING_MASK)
        if t is not current and t.mm is not None:
            t.pending.signal |= sigmask(SIGKILL)
            signal_wake_up(k, t, fatal=True)
            nr += 1
    return nr


def zap_threads(k: KernelState, tsk: Task, mm: MmStruct, exit_code: int) -> list[Task]:
    """Zap the dumper's group, then every other process using ``mm``; returns the other processes zapped
    (fs/coredump.c:360-433). The caller has checked that the group is not already exiting (368)."""
    assert tsk.signal is not None and tsk.group_leader is not None
    tsk.signal.group_exit_task = tsk
    nr = zap_process(k, tsk, tsk, exit_code, 0)
    tsk.flags |= PF_DUMPCORE
    others: list[Task] = []
    if mm.mm_users == nr + 1:
        return others
    for g in list(k.tasks):  # for_each_process(g)
        if g is tsk.group_leader or g.flags & PF_KTHREAD or g.signal is None:
            continue
        for p in list(g.signal.thread_head):  # for_each_thread(g, p): the first thread with an mm decides
            if p.mm is None:
                continue
            if p.mm is mm:
                zap_process(k, tsk, p, exit_code, SIGNAL_GROUP_EXIT)
                others.append(g)
            break
    return others


def coredump_wait(k: KernelState, tsk: Task, exit_code: int) -> list[Task] | None:
    """Kill every other user of the mm unless the group is already exiting (then None); the model does not
    wait for them (fs/coredump.c:436-472)."""
    assert tsk.signal is not None and tsk.mm is not None
    if signal_group_exit(tsk.signal):
        return None  # zap_threads' -EAGAIN (fs/coredump.c:368, 375-376)
    return zap_threads(k, tsk, tsk.mm, exit_code)


def coredump_finish(tsk: Task, core_dumped: bool) -> None:
    """0x80 in group_exit_code if the dump was written and no SIGKILL came; the group now just exits
    (fs/coredump.c:474-500)."""
    sig = tsk.signal
    assert sig is not None
    if core_dumped and not fatal_signal_pending(tsk):
        sig.group_exit_code |= 0x80
    sig.group_exit_task = None
    sig.flags = SIGNAL_GROUP_EXIT


def do_coredump(k: KernelState, current: Task, siginfo: SigQueue) -> None:
    """Decide whether ``current`` dumps core for ``siginfo``, set the 0x80 bit if it does; the model writes
    no file (fs/coredump.c:565-810)."""
    mm = current.mm
    if mm is None:
        return  # a kernel thread or an exited mm: no binfmt to dump with (fs/coredump.c:597-598)
    dumpable = mm.flags & MMF_DUMPABLE_MASK
    if not dumpable:
        return  # fs/coredump.c:599-600
    need_suid_safe = dumpable == SUID_DUMP_ROOT  # fs/coredump.c:611-615
    others = coredump_wait(k, current, siginfo.si_signo)
    if others is None:
        return  # fs/coredump.c:617-619
    core_dumped = _core_would_be_written(current, need_suid_safe)
    coredump_finish(current, core_dumped)
    if k.listeners:
        k.trace("do_coredump", "fs/coredump.c:565", f"task {current.pid} sig {siginfo.si_signo}: "
                + ("core dumped" if core_dumped else "no core"), tid=current.pid)
    for g in others:  # the other users of the mm, no longer held in exit_mm, die now (model)
        assert g.signal is not None
        return_to_user_mode_now(k, g.signal)


def _core_would_be_written(current: Task, need_suid_safe: bool) -> bool:
    """The file branch of do_coredump: the pattern, RLIMIT_CORE against min_coredump, the SUID rule and
    dump_interrupted (fs/coredump.c:623-792)."""
    assert current.signal is not None
    if CORE_PATTERN.startswith("|"):
        raise Unmodelled("a core_pattern pipe (call_usermodehelper) is not modelled")
    limit = rlimit(current, RLIMIT_CORE)  # cprm.limit (fs/coredump.c:585)
    if limit < ELF_EXEC_PAGESIZE:
        return False  # fs/coredump.c:699-700
    if need_suid_safe and not CORE_PATTERN.startswith("/"):
        return False  # fs/coredump.c:702-708
    # dump_interrupted (fs/coredump.c:502-511): zap_threads cleared TIF_SIGPENDING (372) and only SIGKILL
    # can set it again while the group dumps (prepare_signal, kernel/signal.c:905-907)
    return not fatal_signal_pending(current)
