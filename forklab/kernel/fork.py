"""Process creation (kernel/fork.c): fork, vfork, clone, clone3 and copy_process.

Design. Every entry point turns its arguments into a ``KernelCloneArgs`` and calls
``_do_fork``, which calls ``copy_process`` and then wakes the child. ``copy_process`` is
the kernel's exact sequence: eight flag checks that allocate nothing, the signal fence, the
task struct, the per-uid and global limits, the scheduler, then one ``copy_*`` per resource
(semundo, files, fs, sighand, signal, mm, namespaces, io, thread), the pid, the pidfd, the
cgroup gate, and publication under the tasklist lock. Because the order is the kernel's,
when several checks would fail the same errno wins as on Linux.

The kernel unwinds a failure with a ladder of ``bad_fork_*`` labels, each undoing one step
and falling through to the ones below. Here the ladder is a ``CleanupLadder`` (an
``ExitStack``): each step, once done, registers its undo under the label it mirrors. An
exception unwinds the stack in reverse; success drops it. So a failure at any step leaves
the kernel exactly as it was -- the fail-nth sweep in the tests proves it with whole-kernel
snapshots.

Each resource follows the same idiom: with its CLONE_* flag the child takes a reference to
the parent's object (``child.files is parent.files``); without it the child gets a copy.

Files and fs. Both follow the CLONE_* idiom: with the flag the child shares the parent's object and its
count (``files_struct.count``, ``fs_struct.users``) goes up; without it the child gets a
private copy (``dup_fd``, ``copy_fs_struct``). The kernel's child starts with the parent's
pointers (dup_task_struct copies the whole task_struct), so the share case only increments
the count; the model assigns the pointer explicitly so the functions do not depend on how the
child was built.

CLONE_FS while the shared fs_struct is marked ``in_exec`` (a thread is in execve) is EAGAIN.
A fork does not check RLIMIT_NOFILE; ``dup_fd`` fails only with ENOMEM or, when the parent's
table is larger than sysctl_nr_open, EMFILE.

The mm. ``copy_mm`` resets the child's fault/switch counters and either shares the caller's mm
(CLONE_VM: ``mm_users`` + 1) or duplicates it with ``dup_mm``. Every failure inside
``dup_mm``/``dup_mmap`` — allocation, overcommit refusal, a fatal signal (EINTR) — comes out as
ENOMEM (kernel/fork.c:1415-1418), and nothing the attempt allocated survives: the partial child
mm is released through ``mmput`` (exit_mmap unmaps what was copied, unlinks anon_vmas, drops
file references, gives back commit charges) and ``mmdrop`` (page tables, user_ns reference).
One side effect is *not* undone, as in the kernel: parent PTEs that ``copy_page_range``
already write-protected stay read-only; their pages are exclusive again, so the parent's next
write reuses them in place (do_wp_page with mapcount 1).

``dup_mmap`` copies the vma list in address order (catalog §4.4): VM_DONTCOPY vmas leave a
hole and their size is taken out of the child's total_vm/data_vm/...; VM_ACCOUNT vmas are
charged again (against the parent mm, "sic"); each vma struct is duplicated (fallible),
linked into the parent's anon_vma family (``anon_vma_fork``) or, for VM_WIPEONFORK, given a
fresh anon_vma of its own; VM_LOCKED/VM_LOCKONFAULT are cleared; the file (shmem) reference is
taken; the vma is linked and ``copy_page_range`` copies the PTEs unless VM_WIPEONFORK.

``mm.user_ns`` holds a reference taken in ``mm_init`` and dropped in ``__mmdrop``.
Fallible sites: ``dup_mm:allocate_mm``, ``mm_alloc:allocate_mm``, ``mm_init:mm_alloc_pgd``,
``dup_mmap:vm_area_dup``, plus those of anon_vma_fork/anon_vma_prepare/copy_pte_range.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING

from forklab.arch.x86.kernel.process import arch_dup_task_struct, copy_thread_tls
from forklab.block.blk_ioc import exit_io_context
from forklab.errors import ERESTARTNOINTR, InternalError, kerr
from forklab.fs.anon_inodes import anon_inode_getfile
from forklab.fs.file import dup_fd, exit_files, fd_install, fput, get_unused_fd_flags, put_files_struct, put_unused_fd
from forklab.fs.fs_struct import copy_fs_struct, exit_fs, free_fs_struct
from forklab.include.linux.list import ListHead, long_list
from forklab.include.linux.mm_types import (
    NR_MM_COUNTERS,
    TASK_SIZE_MAX,
    VM,
    MmStruct,
    VmAreaStruct,
    vma_next_of,
    vma_prev_of,
)
from forklab.include.linux.mman import vm_unacct_memory
from forklab.include.linux.pid import MAX_PID_NS_LEVEL, PIDNS_ADDING, Pid, PidNamespace
from forklab.include.linux.sched import (
    PF_FORK_CLEARED,
    PF_FORKNOEXEC,
    PF_NPROC_EXCEEDED,
    PIDTYPE_PGID,
    PIDTYPE_PID,
    PIDTYPE_SID,
    PIDTYPE_TGID,
    SIGNAL_UNKILLABLE,
    TASK_DEAD,
    TASK_KILLABLE,
    Completion,
    IoContext,
    KernelCloneArgs,
    MultiprocessSignals,
    PtRegs,
    SchedEntity,
    SighandStruct,
    SignalStruct,
    Sigpending,
    Task,
    ThreadStruct,
    set_current_state_sleep,
)
from forklab.ipc.sem import copy_semundo, exit_sem
from forklab.kernel.capability import capable
from forklab.kernel.cgroup.cgroup import cgroup_can_fork, cgroup_cancel_fork, cgroup_post_fork
from forklab.kernel.cred import commit_creds, copy_creds, exit_creds, prepare_creds, put_cred
from forklab.kernel.nsproxy import (
    copy_namespaces,
    exit_task_namespaces,
    switch_task_namespaces,
    unshare_nsproxy_namespaces,
)
from forklab.kernel.pid import (
    alloc_pid,
    attach_pid,
    free_pid,
    get_pid,
    ns_of_pid,
    pid_vnr,
    task_active_pid_ns,
)
from forklab.kernel.ptrace import ptrace_event_enabled, ptrace_event_pid, ptrace_init_task
from forklab.kernel.sched.core import sched_fork, schedule_tail, wake_up_new_task, wake_up_process
from forklab.kernel.signal import fatal_signal_pending, flush_signal_handlers, signal_pending, task_join_group_stop
from forklab.kernel.user_namespace import create_user_ns, get_user_ns, put_user_ns
from forklab.ladder import CleanupLadder
from forklab.mm.memory import copy_page_range, get_mm_rss, vma_pages
from forklab.mm.mmap import exit_mmap, vm_stat_account
from forklab.mm.rmap import anon_vma_fork, anon_vma_prepare
from forklab.mm.uaccess import copy_from_user, copy_struct_from_user, put_user_int
from forklab.security.security import security_vm_enough_memory_mm
from forklab.trace import Value, register_arg_format, register_type_format, traced
from forklab.uapi import (
    CAP_SYS_ADMIN,
    CAP_SYS_RESOURCE,
    CLONE_ARGS_SIZE_VER0,
    CLONE_ARGS_SIZE_VER1,
    CLONE_ARGS_SIZE_VER2,
    CLONE_CHILD_CLEARTID,
    CLONE_CHILD_SETTID,
    CLONE_CLEAR_SIGHAND,
    CLONE_DETACHED,
    CLONE_FILES,
    CLONE_FS,
    CLONE_INTO_CGROUP,
    CLONE_IO,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_PARENT,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_PTRACE,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_UNTRACED,
    CLONE_VFORK,
    CLONE_VM,
    CSIGNAL,
    O_CLOEXEC,
    O_RDWR,
    PAGE_SIZE,
    PTRACE_EVENT_CLONE,
    PTRACE_EVENT_FORK,
    PTRACE_EVENT_VFORK,
    PTRACE_EVENT_VFORK_DONE,
    RLIMIT_NPROC,
    SIGCHLD,
    SIGNAL_NAMES,
    SS_DISABLE,
    CloneArgs,
    clone_flags_str,
)

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File, FilesStruct
    from forklab.include.linux.fs_struct import FsStruct
    from forklab.include.linux.user_namespace import UserNamespace
    from forklab.state import KernelState

CLONE_LEGACY_FLAGS = 0xFFFFFFFF  # include/linux/sched/task.h:18


# --- the syscalls -----------------------------------------------------------------------


@traced
def sys_fork(k: KernelState, current: Task) -> int:
    """fork(2): no flags, SIGCHLD at exit (kernel/fork.c:2520-2534)."""
    return _do_fork(k, current, KernelCloneArgs(exit_signal=SIGCHLD))


@traced
def sys_vfork(k: KernelState, current: Task) -> int:
    """vfork(2): CLONE_VFORK|CLONE_VM, SIGCHLD at exit (kernel/fork.c:2536-2546)."""
    return _do_fork(k, current, KernelCloneArgs(flags=CLONE_VFORK | CLONE_VM, exit_signal=SIGCHLD))


@traced
def sys_clone(k: KernelState, current: Task, clone_flags: int, newsp: int, parent_tidptr: int,
              child_tidptr: int, tls: int) -> int:
    """clone(2) in x86-64 argument order; 5.6.14 keeps only the low 32 flag bits (kernel/fork.c:2566-2587)."""
    if k.has("legacy_clone_low32"):
        clone_flags &= CLONE_LEGACY_FLAGS
    args = KernelCloneArgs(
        flags=clone_flags & ~CSIGNAL,
        pidfd=parent_tidptr,
        child_tid=child_tidptr,
        parent_tid=parent_tidptr,
        exit_signal=clone_flags & CSIGNAL,
        stack=newsp,
        tls=tls,
    )
    if not k.has("pidfd_parent_tid_same_address"):
        legacy_clone_args_valid(args)  # 5.9 folded it into kernel_clone
    return _do_fork(k, current, args)


def legacy_clone_args_valid(kargs: KernelCloneArgs) -> None:
    """CLONE_PIDFD and CLONE_PARENT_SETTID would both write parent_tidptr (kernel/fork.c:2469-2477)."""
    if kargs.flags & CLONE_PIDFD and kargs.flags & CLONE_PARENT_SETTID:
        raise kerr(errno.EINVAL, "legacy clone: CLONE_PIDFD and CLONE_PARENT_SETTID share one pointer",
                   "kernel/fork.c:2474")


@traced
def sys_clone3(k: KernelState, current: Task, uargs: CloneArgs | int, size: int) -> int:
    """clone3(2): copy and validate ``struct clone_args``, then fork (kernel/fork.c:2722-2739)."""
    kargs = copy_clone_args_from_user(k, current, uargs, size)
    clone3_args_valid(k, current, kargs)
    return _do_fork(k, current, kargs)


@traced
def copy_clone_args_from_user(k: KernelState, current: Task, uargs: CloneArgs | int, usize: int) -> KernelCloneArgs:
    """Read ``struct clone_args`` of ``usize`` bytes and check its fields (kernel/fork.c:2600-2654)."""

    if usize > PAGE_SIZE:
        raise kerr(errno.E2BIG, f"clone_args size {usize} exceeds PAGE_SIZE", "kernel/fork.c:2608")
    if usize < CLONE_ARGS_SIZE_VER0:
        raise kerr(errno.EINVAL, f"clone_args size {usize} is below CLONE_ARGS_SIZE_VER0 (64)", "kernel/fork.c:2610")
    ksize = CLONE_ARGS_SIZE_VER2 if k.has("clone_into_cgroup") else CLONE_ARGS_SIZE_VER1
    raw = copy_struct_from_user(k, current, uargs, usize, ksize)
    f = [int.from_bytes(raw[i : i + 8], "little") for i in range(0, ksize, 8)] + [0]
    flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid_ptr, set_tid_size = f[:10]
    cgroup = f[10]
    set_tid_list = uargs.set_tid if isinstance(uargs, CloneArgs) and isinstance(uargs.set_tid, list) else None
    if set_tid_list is not None and usize >= CLONE_ARGS_SIZE_VER1:
        set_tid_ptr = 1 if set_tid_list or set_tid_size else 0  # a Python list stands for a valid pointer
    if set_tid_size > MAX_PID_NS_LEVEL:
        raise kerr(errno.EINVAL, "set_tid_size exceeds MAX_PID_NS_LEVEL (32)", "kernel/fork.c:2617")
    if not set_tid_ptr and set_tid_size > 0:
        raise kerr(errno.EINVAL, "set_tid_size is set but set_tid is NULL", "kernel/fork.c:2620")
    if set_tid_ptr and set_tid_size == 0:
        raise kerr(errno.EINVAL, "set_tid is set but set_tid_size is 0", "kernel/fork.c:2623")
    if exit_signal & ~CSIGNAL or exit_signal > 64:
        raise kerr(errno.EINVAL, f"exit_signal {exit_signal} is not a valid signal", "kernel/fork.c:2630")
    if k.has("clone_into_cgroup") and flags & CLONE_INTO_CGROUP and (cgroup > 2**31 - 1 or usize < CLONE_ARGS_SIZE_VER2):
        raise kerr(errno.EINVAL, "CLONE_INTO_CGROUP needs a cgroup fd <= INT_MAX and an 88-byte struct",
                   "kernel/fork.c:copy_clone_args_from_user (5.7)")
    set_tid = _copy_set_tid(k, current, set_tid_list, set_tid_ptr, set_tid_size)
    return KernelCloneArgs(flags=flags, pidfd=pidfd, child_tid=child_tid, parent_tid=parent_tid,
                           exit_signal=exit_signal, stack=stack, stack_size=stack_size, tls=tls, set_tid=set_tid,
                           cgroup=cgroup)


def _copy_set_tid(k: KernelState, current: Task, as_list: list[int] | None, ptr: int, size: int) -> list[int]:
    """Copy ``size`` pid_t values from the set_tid array (kernel/fork.c:2646-2649)."""

    if not size:
        return []
    if as_list is not None:
        if len(as_list) < size:
            raise kerr(errno.EFAULT, "set_tid_size runs past the end of the set_tid array", "kernel/fork.c:2647")
        return [int(v) for v in as_list[:size]]
    raw = copy_from_user(k, current, ptr, 4 * size)
    if raw is None:
        raise kerr(errno.EFAULT, "set_tid array is not readable", "kernel/fork.c:2647")
    return [int.from_bytes(raw[i : i + 4], "little", signed=True) for i in range(0, 4 * size, 4)]


def clone3_stack_valid(kargs: KernelCloneArgs) -> bool:
    """stack and stack_size come together and lie in user space; sp := top (kernel/fork.c:2664-2682)."""
    if kargs.stack == 0:
        return kargs.stack_size == 0
    if kargs.stack_size == 0:
        return False
    if kargs.stack + kargs.stack_size > TASK_SIZE_MAX:  # access_ok against USER_DS (asm/uaccess.h:43-59)
        return False
    kargs.stack += kargs.stack_size
    return True


@traced
def clone3_args_valid(k: KernelState, current: Task, kargs: KernelCloneArgs) -> None:
    """The clone3-only flag rules, all EINVAL (kernel/fork.c:2684-2709)."""
    known = CLONE_LEGACY_FLAGS | CLONE_CLEAR_SIGHAND | (CLONE_INTO_CGROUP if k.has("clone_into_cgroup") else 0)
    if kargs.flags & ~known:
        raise kerr(errno.EINVAL, "clone3: unknown flag bits", "kernel/fork.c:2687")
    if k.has("clone3_newtime"):
        if kargs.flags & (CLONE_DETACHED | (CSIGNAL & ~CLONE_NEWTIME)):
            raise kerr(errno.EINVAL, "clone3: CLONE_DETACHED and CSIGNAL bits other than CLONE_NEWTIME are rejected",
                       "kernel/fork.c:clone3_args_valid (6.3)")
    elif kargs.flags & (CLONE_DETACHED | CSIGNAL):
        raise kerr(errno.EINVAL, "clone3: CLONE_DETACHED and CSIGNAL bits (incl. CLONE_NEWTIME) are rejected",
                   "kernel/fork.c:2694")
    if kargs.flags & (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND) == CLONE_SIGHAND | CLONE_CLEAR_SIGHAND:
        raise kerr(errno.EINVAL, "clone3: CLONE_SIGHAND with CLONE_CLEAR_SIGHAND", "kernel/fork.c:2697")
    if kargs.flags & (CLONE_THREAD | CLONE_PARENT) and kargs.exit_signal:
        raise kerr(errno.EINVAL, "clone3: CLONE_THREAD/CLONE_PARENT need exit_signal 0", "kernel/fork.c:2701")
    if not clone3_stack_valid(kargs):
        raise kerr(errno.EINVAL, "clone3: stack and stack_size are inconsistent or out of range",
                   "kernel/fork.c:2705")


# --- how the trace shows clone arguments ---------------------------------------------------


def signal_label(sig: int) -> str:
    """A signal number as its name (``SIGCHLD``), 0 as ``0``."""
    return SIGNAL_NAMES.get(sig, str(sig))


def kernel_clone_args_label(args: KernelCloneArgs) -> Value:
    """A struct kernel_clone_args for the trace: flags by name, then each field that is set, in struct order."""
    out: list[tuple[str, Value]] = [("flags", clone_flags_str(args.flags))]
    for name in ("pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls"):
        value = getattr(args, name)
        if value:
            out.append((name, signal_label(value) if name == "exit_signal" else value))
    if args.set_tid:
        out.append(("set_tid", tuple(args.set_tid)))
    return tuple(out)


for _name in ("clone_flags", "unshare_flags"):
    register_arg_format(_name, clone_flags_str)
for _name in ("sig", "exit_signal", "signr"):
    register_arg_format(_name, signal_label)
register_type_format(KernelCloneArgs, kernel_clone_args_label)


# --- _do_fork -----------------------------------------------------------------------------


@traced
def _do_fork(k: KernelState, current: Task, args: KernelCloneArgs) -> int:
    """Create the child, write PARENT_SETTID, wake it, report to a tracer, wait for vfork (kernel/fork.c:2403-2467)."""

    clone_flags = args.flags
    if k.has("pidfd_parent_tid_same_address") and clone_flags & CLONE_PIDFD and clone_flags & CLONE_PARENT_SETTID \
            and args.pidfd == args.parent_tid:
        raise kerr(errno.EINVAL, "CLONE_PIDFD and CLONE_PARENT_SETTID at the same address", "kernel/fork.c:kernel_clone (5.9)")
    trace = 0
    if not clone_flags & CLONE_UNTRACED:
        if clone_flags & CLONE_VFORK:
            trace = PTRACE_EVENT_VFORK
        elif args.exit_signal != SIGCHLD:
            trace = PTRACE_EVENT_CLONE
        else:
            trace = PTRACE_EVENT_FORK
        if not ptrace_event_enabled(current, trace):
            trace = 0
    p = copy_process(k, current, trace, args)
    assert p.thread_pid is not None
    nr = pid_vnr(current, p.thread_pid)
    if clone_flags & CLONE_PARENT_SETTID:
        written = put_user_int(k, current, args.parent_tid, nr)  # errors ignored (kernel/fork.c:2446)
        if k.listeners and written:
            k.decide("kernel/fork.c:2446", f"CLONE_PARENT_SETTID: {nr} written to {args.parent_tid:#x}",
                     ("parent_tid", nr))
    if clone_flags & CLONE_VFORK:

        p.vfork_done = Completion()
        p.usage += 1  # get_task_struct
    wake_up_new_task(k, p)
    schedule_tail(k, p)
    if trace:
        ptrace_event_pid(k, current, trace, nr)
    if clone_flags & CLONE_VFORK:
        wait_for_vfork_done(k, current, p)
    if k.has("kernel_clone_name"):
        if k.listeners:
            k.trace("kernel_clone", "kernel/fork.c:kernel_clone (5.10)", f"returns {nr}")
    else:
        if k.listeners:
            k.trace("_do_fork", "kernel/fork.c:2466", f"returns {nr}")
    return nr


@traced
def wait_for_vfork_done(k: KernelState, current: Task, child: Task) -> None:
    """The vfork parent sleeps killably until the child execs or exits (kernel/fork.c:1255-1274).

    The model has no scheduler loop, so the parent is left visibly asleep (TASK_KILLABLE on
    ``vfork_done``); ``complete_vfork_done`` wakes it.
    """

    assert child.vfork_done is not None
    child.vfork_done.waiters.append(current)
    set_current_state_sleep(k, current, TASK_KILLABLE, "vfork_done")


@traced
def mm_release(k: KernelState, tsk: Task) -> None:
    """Write 0 to clear_child_tid if the mm is shared, then release a vfork parent (kernel/fork.c:1289-1321)."""

    if tsk.clear_child_tid:
        if tsk.mm is not None and tsk.mm.mm_users > 1:
            put_user_int(k, tsk, tsk.clear_child_tid, 0)  # then FUTEX_WAKE; errors ignored
            if k.listeners:
                k.trace("clear_child_tid", "kernel/fork.c:1308", f"wrote 0 at {tsk.clear_child_tid:#x}", tid=tsk.pid)
        tsk.clear_child_tid = 0
    if tsk.vfork_done is not None:
        complete_vfork_done(k, tsk)


@traced
def exit_mm_release(k: KernelState, tsk: Task) -> None:
    """mm_release on the way out of do_exit (kernel/fork.c:1323-1327)."""
    mm_release(k, tsk)


def exec_mm_release(k: KernelState, tsk: Task) -> None:
    """mm_release when execve drops the old mm (kernel/fork.c:1329-1333)."""
    mm_release(k, tsk)


def vfork_wait_killed(k: KernelState, parent: Task) -> None:
    """A fatal signal ends the vfork wait: the child must not complete into the parent's stack (kernel/fork.c:1266-1270)."""
    for child in k.all_threads():
        vfork = child.vfork_done
        if vfork is not None and parent in vfork.waiters:
            child.vfork_done = None
            child.usage -= 1  # put_task_struct
            if k.listeners:
                k.trace("wait_for_vfork_done", "kernel/fork.c:1266", f"killed: child {child.pid} forgets vfork_done",
                        tid=parent.pid)


@traced
def complete_vfork_done(k: KernelState, tsk: Task) -> None:
    """The vfork child released its parent's mm: wake the parent (kernel/fork.c:1242-1253)."""

    vfork = tsk.vfork_done
    if vfork is None:
        return
    tsk.vfork_done = None
    vfork.done += 1
    tsk.usage -= 1  # the parent's put_task_struct
    for parent in vfork.waiters:
        wake_up_process(k, parent)
        if ptrace_event_enabled(parent, PTRACE_EVENT_VFORK_DONE):
            assert tsk.thread_pid is not None
            ptrace_event_pid(k, parent, PTRACE_EVENT_VFORK_DONE, pid_vnr(parent, tsk.thread_pid))
    if k.listeners:
        k.trace("complete_vfork_done", "kernel/fork.c:1242", f"vfork parent of {tsk.pid} resumes", tid=tsk.pid)


# --- copy_process ---------------------------------------------------------------------------


@traced
def copy_process_checks(k: KernelState, current: Task, clone_flags: int) -> None:
    """The eight up-front EINVAL checks of copy_process, in source order (kernel/fork.c:1841-1899)."""
    assert current.signal is not None and current.nsproxy is not None
    if clone_flags & (CLONE_NEWNS | CLONE_FS) == CLONE_NEWNS | CLONE_FS:
        raise kerr(errno.EINVAL, "CLONE_NEWNS cannot share the fs root (CLONE_FS)", "kernel/fork.c:1841")
    if clone_flags & (CLONE_NEWUSER | CLONE_FS) == CLONE_NEWUSER | CLONE_FS:
        raise kerr(errno.EINVAL, "CLONE_NEWUSER cannot share the fs root (CLONE_FS)", "kernel/fork.c:1844")
    if clone_flags & CLONE_THREAD and not clone_flags & CLONE_SIGHAND:
        raise kerr(errno.EINVAL, "CLONE_THREAD requires CLONE_SIGHAND", "kernel/fork.c:1851")
    if clone_flags & CLONE_SIGHAND and not clone_flags & CLONE_VM:
        raise kerr(errno.EINVAL, "CLONE_SIGHAND requires CLONE_VM", "kernel/fork.c:1859")
    if clone_flags & CLONE_PARENT and current.signal.flags & SIGNAL_UNKILLABLE:
        raise kerr(errno.EINVAL, "an init (SIGNAL_UNKILLABLE) may not create siblings with CLONE_PARENT",
                   "kernel/fork.c:1868")
    if clone_flags & CLONE_THREAD and (
        clone_flags & (CLONE_NEWUSER | CLONE_NEWPID)
        or task_active_pid_ns(current) is not current.nsproxy.pid_ns_for_children
    ):
        raise kerr(errno.EINVAL, "a thread cannot be in another user or pid namespace", "kernel/fork.c:1876")
    if not k.has("timens_vm_allowed") and clone_flags & (CLONE_THREAD | CLONE_VM) \
            and current.nsproxy.time_ns is not current.nsproxy.time_ns_for_children:
        raise kerr(errno.EINVAL, "CLONE_VM/CLONE_THREAD after unshare(CLONE_NEWTIME), before a plain fork",
                   "kernel/fork.c:1886")
    if k.has("pidfd_thread"):
        if clone_flags & CLONE_PIDFD and clone_flags & CLONE_DETACHED:
            raise kerr(errno.EINVAL, "CLONE_PIDFD cannot be combined with CLONE_DETACHED",
                       "kernel/fork.c:copy_process (6.9)")
    elif clone_flags & CLONE_PIDFD and clone_flags & (CLONE_DETACHED | CLONE_THREAD):
        raise kerr(errno.EINVAL, "CLONE_PIDFD cannot be combined with CLONE_DETACHED or CLONE_THREAD",
                   "kernel/fork.c:1896")


@dataclass(slots=True, eq=False)
class Pidfd:
    """A CLONE_PIDFD reservation: the fd number taken in the caller's table and its file (kernel/fork.c:2111-2129)."""

    fd: int
    file: File


@dataclass(slots=True, eq=False)
class ForkFrame:
    """copy_process's locals, shared by its steps as the kernel shares one stack frame (kernel/fork.c:1824-1838)."""

    k: KernelState
    current: Task
    p: Task
    clone_flags: int
    args: KernelCloneArgs
    trace: int
    delayed: MultiprocessSignals
    ladder: CleanupLadder
    pid: Pid | None = None
    pidfile: Pidfd | None = None


@traced
def copy_process(k: KernelState, current: Task, trace: int, args: KernelCloneArgs) -> Task:
    """Create a new task as a copy of ``current``; nothing is published unless every step succeeds (kernel/fork.c:1824-2362)."""
    clone_flags = args.flags
    copy_process_checks(k, current, clone_flags)
    assert current.signal is not None
    delayed = MultiprocessSignals()
    if not clone_flags & CLONE_THREAD:
        current.signal.multiprocess.insert(0, delayed)
    try:
        if signal_pending(current):
            raise kerr(ERESTARTNOINTR, "a signal is pending: deliver it, then restart the fork", "kernel/fork.c:1916")
        with CleanupLadder(k, "kernel/fork.c:2300-2361") as ladder:
            p = dup_task_struct(k, current)
            ladder.on_failure("bad_fork_free", free_task, k, p)
            f = ForkFrame(k, current, p, clone_flags, args, trace, delayed, ladder)
            _copy_process_creds(f)
            _copy_process_resources(f)
            f.pid = alloc_pid(k, _pid_ns_for_children(p), args.set_tid)
            ladder.on_failure("bad_fork_free_pid", free_pid, k, f.pid)
            _copy_process_pidfd(f)
            _copy_process_identity(f)
            _copy_process_publish(f)
            ladder.succeed()
    finally:
        if delayed in current.signal.multiprocess:
            current.signal.multiprocess.remove(delayed)
    _post_fork(k, p)
    return p


def _pid_ns_for_children(p: Task) -> PidNamespace:
    """The namespace the child's pid comes from: its nsproxy's pid_ns_for_children (kernel/fork.c:2098)."""
    assert p.nsproxy is not None and p.nsproxy.pid_ns_for_children is not None
    return p.nsproxy.pid_ns_for_children


def _copy_process_creds(f: ForkFrame) -> None:
    """Child tids, RLIMIT_NPROC, copy_creds and threads-max (kernel/fork.c:1930-1964)."""

    k, current, p, clone_flags, args = f.k, f.current, f.p, f.clone_flags, f.args
    p.set_child_tid = args.child_tid if clone_flags & CLONE_CHILD_SETTID else 0
    p.clear_child_tid = args.child_tid if clone_flags & CLONE_CHILD_CLEARTID else 0
    if not k.has("nproc_after_copy_creds"):
        check_rlimit_nproc(k, current, p, counted=0, where="kernel/fork.c:1946")
        if current.flags & PF_NPROC_EXCEEDED:
            current.flags &= ~PF_NPROC_EXCEEDED
    copy_creds(k, p, clone_flags)
    f.ladder.on_failure("bad_fork_cleanup_count", _cleanup_count, k, p)
    if k.has("nproc_after_copy_creds"):  # 5.14: after copy_creds, counting the child (is_rlimit_overlimit)
        check_rlimit_nproc(k, current, p, counted=1, where="kernel/fork.c:copy_process (5.14)")
        current.flags &= ~PF_NPROC_EXCEEDED
    if k.nr_threads >= k.max_threads:
        raise kerr(errno.EAGAIN, f"threads-max ({k.max_threads}) reached", "kernel/fork.c:1963")
    p.flags = (p.flags & ~PF_FORK_CLEARED) | PF_FORKNOEXEC
    p.children = []
    p.vfork_done = None
    p.pending = Sigpending()
    p.utime = p.stime = 0
    p.default_timer_slack_ns = current.timer_slack_ns
    p.io_context = None
    p.cgroups = current.cgroups  # cgroup_fork (kernel/cgroup/cgroup.c:5866)


def check_rlimit_nproc(k: KernelState, current: Task, p: Task, counted: int, where: str) -> None:
    """EAGAIN when the real user already has RLIMIT_NPROC tasks, unless exempt (kernel/fork.c:1944-1950).

    ``counted`` is 1 when the child's own count is already in (the 5.14+ position after copy_creds).
    """
    assert p.real_cred is not None and p.real_cred.user is not None and p.signal is not None
    user = p.real_cred.user
    if user.processes - counted >= p.signal.rlim[RLIMIT_NPROC][0] and user is not k.root_user \
            and not capable(current, CAP_SYS_RESOURCE) and not capable(current, CAP_SYS_ADMIN):
        raise kerr(errno.EAGAIN, f"RLIMIT_NPROC: uid {user.uid} already has {user.processes - counted} tasks", where)


def _cleanup_count(k: KernelState, p: Task) -> None:
    """bad_fork_cleanup_count: uncount the process and drop its creds (kernel/fork.c:2350-2352)."""

    assert p.real_cred is not None and p.real_cred.user is not None
    p.real_cred.user.processes -= 1
    exit_creds(k, p)


def _copy_process_resources(f: ForkFrame) -> None:
    """sched_fork and the copy_* chain, each with its cleanup label (kernel/fork.c:2051-2093)."""

    k, current, p, clone_flags, ladder = f.k, f.current, f.p, f.clone_flags, f.ladder
    sched_fork(k, clone_flags, p, current)
    copy_semundo(k, clone_flags, p, current)
    ladder.on_failure("bad_fork_cleanup_semundo", exit_sem, p)
    copy_files(k, clone_flags, p, current)
    ladder.on_failure("bad_fork_cleanup_files", exit_files, k, p)
    copy_fs(k, clone_flags, p, current)
    ladder.on_failure("bad_fork_cleanup_fs", exit_fs, k, p)
    copy_sighand(k, clone_flags, p, current)
    ladder.on_failure("bad_fork_cleanup_sighand", __cleanup_sighand, p.sighand)
    copy_signal(k, clone_flags, p, current)
    if not clone_flags & CLONE_THREAD:
        ladder.on_failure("bad_fork_cleanup_signal", free_signal_struct, p)
    copy_mm(k, clone_flags, p, current)
    ladder.on_failure("bad_fork_cleanup_mm", _cleanup_mm, k, p)
    copy_namespaces(k, clone_flags, p)
    ladder.on_failure("bad_fork_cleanup_namespaces", exit_task_namespaces, k, p)
    copy_io(k, clone_flags, p, current)
    ladder.on_failure("bad_fork_cleanup_io", _cleanup_io, p)
    copy_thread_tls(k, clone_flags, f.args.stack, f.args.stack_size, p, f.args.tls, current)


def _cleanup_mm(k: KernelState, p: Task) -> None:
    """bad_fork_cleanup_mm: drop the child's mm (kernel/fork.c:2321-2325)."""
    if p.mm is not None:
        mm = p.mm
        p.mm = p.active_mm = None
        if mm.owner is p:  # mm_clear_owner (kernel/fork.c:1000-1004)
            mm.owner = None
        mmput(k, mm)


def _cleanup_io(p: Task) -> None:
    """bad_fork_cleanup_io: drop the io_context (kernel/fork.c:2316-2318)."""
    if p.io_context is not None:
        exit_io_context(p)


def _copy_process_pidfd(f: ForkFrame) -> None:
    """CLONE_PIDFD: reserve an fd in the caller's table, make the file, write the fd number (kernel/fork.c:2111-2129)."""

    k, current, pid = f.k, f.current, f.pid
    assert pid is not None
    if not f.clone_flags & CLONE_PIDFD:
        return
    pidfd = get_unused_fd_flags(k, current, O_RDWR | O_CLOEXEC)
    try:
        pidfile = anon_inode_getfile(k, "[pidfd]", pid, O_RDWR | O_CLOEXEC)
    except OSError:
        put_unused_fd(current, pidfd)
        raise
    get_pid(pid)  # held by the pidfd file
    f.pidfile = Pidfd(pidfd, pidfile)
    f.ladder.on_failure("bad_fork_put_pidfd", _put_pidfd, k, current, f.pidfile)
    if not put_user_int(k, current, f.args.pidfd, pidfd):
        raise kerr(errno.EFAULT, "cannot write the pidfd number to args->pidfd", "kernel/fork.c:2128")
    if k.listeners:
        k.decide("kernel/fork.c:2127", f"CLONE_PIDFD: fd {pidfd} written to {f.args.pidfd:#x}", ("pidfd", pidfd))


def _put_pidfd(k: KernelState, current: Task, pidfile: Pidfd) -> None:
    """bad_fork_put_pidfd: drop the file (and with it its pid reference) and the fd (kernel/fork.c:2306-2310)."""

    fput(k, pidfile.file)
    put_unused_fd(current, pidfile.fd)


def pidfd_pid(k: KernelState, file: File) -> Pid:
    """The struct pid a pidfd holds; EBADF for any other file (kernel/fork.c:1684-1690).

    The model's ``f_op == &pidfd_fops`` test: the file is on the anon inode under the name
    ``anon_inode:[pidfd]`` (copy_process and pidfd_create make it so).
    """
    if file.f_inode is k.vfs.anon_inode and file.f_path.dentry == "anon_inode:[pidfd]" \
            and file.private_data is not None:
        return file.private_data
    raise kerr(errno.EBADF, "the file is not a pidfd", "kernel/fork.c:1689")


def _copy_process_identity(f: ForkFrame) -> None:
    """sigaltstack, pid, tgid, group leader, exit_signal, pdeath_signal (kernel/fork.c:2140-2175)."""
    current, p, clone_flags, pid = f.current, f.p, f.clone_flags, f.pid
    assert pid is not None
    if clone_flags & (CLONE_VM | CLONE_VFORK) == CLONE_VM:
        p.sas_ss_sp = p.sas_ss_size = 0
        p.sas_ss_flags = SS_DISABLE
    p.pid = pid.numbers[0].nr
    if clone_flags & CLONE_THREAD:
        p.exit_signal = -1
        p.group_leader = current.group_leader
        p.tgid = current.tgid
    else:
        assert current.group_leader is not None
        p.exit_signal = current.group_leader.exit_signal if clone_flags & CLONE_PARENT else f.args.exit_signal
        p.group_leader = p
        p.tgid = p.pid
    p.pdeath_signal = 0


def _copy_process_publish(f: ForkFrame) -> None:
    """The cgroup gate, the last checks under tasklist_lock, then make the child visible (kernel/fork.c:2177-2288)."""

    k, current, p, clone_flags, pid = f.k, f.current, f.p, f.clone_flags, f.pid
    assert pid is not None
    cgroup_can_fork(k, current, f.args if clone_flags & CLONE_INTO_CGROUP else None)
    f.ladder.on_failure("bad_fork_cancel_cgroup", cgroup_cancel_fork, current)
    p.start_time = k.clock_ns
    if clone_flags & (CLONE_PARENT | CLONE_THREAD):
        p.real_parent = current.real_parent
        p.parent_exec_id = current.parent_exec_id
    else:
        p.real_parent = current
        p.parent_exec_id = current.self_exec_id
    copy_seccomp(p, current)
    if clone_flags & CLONE_VM:
        p.rseq = 0  # rseq_fork (include/linux/sched.h:1934-1945)
    if not ns_of_pid(pid).pid_allocated & PIDNS_ADDING:
        raise kerr(errno.ENOMEM, "the child's pid namespace is dying (its init has exited)", "kernel/fork.c:2227")
    if fatal_signal_pending(current):
        raise kerr(errno.EINTR, "a fatal signal arrived during the fork", "kernel/fork.c:2233")
    if f.pidfile is not None:
        fd_install(current, f.pidfile.fd, f.pidfile.file)
    _attach_child(k, current, p, pid, clone_flags, f.trace, f.delayed)


def _attach_child(k: KernelState, current: Task, p: Task, pid: Pid, clone_flags: int, trace: int,
                  delayed: MultiprocessSignals) -> None:
    """Past the last point of failure: link the child into every list (kernel/fork.c:2243-2284)."""

    assert p.signal is not None and current.signal is not None and p.real_parent is not None
    ptrace_init_task(p, current, bool(clone_flags & CLONE_PTRACE) or bool(trace))
    p.pid_links = [None] * 4
    p.thread_pid = pid
    if p.group_leader is p:
        p.signal.pids[PIDTYPE_TGID] = pid
        p.signal.pids[PIDTYPE_PGID] = current.signal.pids[PIDTYPE_PGID]
        p.signal.pids[PIDTYPE_SID] = current.signal.pids[PIDTYPE_SID]
        if pid.numbers[pid.level].nr == 1:
            ns_of_pid(pid).child_reaper = p
            p.signal.flags |= SIGNAL_UNKILLABLE
        p.signal.shared_pending.signal = delayed.signal
        p.signal.tty = current.signal.tty
        assert p.real_parent.signal is not None
        p.signal.has_child_subreaper = p.real_parent.signal.has_child_subreaper or p.real_parent.signal.is_child_subreaper
        p.real_parent.children.append(p)
        k.tasks = long_list(k.tasks, ListHead)  # NOTE: O(1) once long (include/linux/list.py)
        k.tasks.append(p)  # list_add_tail_rcu(&p->tasks, &init_task.tasks)
        attach_pid(p, PIDTYPE_TGID)
        attach_pid(p, PIDTYPE_PGID)
        attach_pid(p, PIDTYPE_SID)
        k.process_counts += 1
    else:
        current.signal.nr_threads += 1
        current.signal.live += 1
        current.signal.sigcnt += 1
        task_join_group_stop(p, current)
        current.signal.thread_head.append(p)
    attach_pid(p, PIDTYPE_PID)
    k.nr_threads += 1
    k.total_forks += 1


def _post_fork(k: KernelState, p: Task) -> None:
    """After the tasklist lock: cgroup_post_fork and the tracepoint (kernel/fork.c:2290-2296)."""

    cgroup_post_fork(p)
    if k.listeners:
        k.trace("copy_process", "kernel/fork.c:2296", f"task {p.pid} created (tgid {p.tgid}, parent {p.real_parent.pid if p.real_parent else 0})")


# --- the helpers --------------------------------------------------------------------------


@traced
def dup_task_struct(k: KernelState, orig: Task) -> Task:
    """Allocate a task and stack and copy the parent's task_struct wholesale (kernel/fork.c:859-957)."""
    if k.fault.should_fail("dup_task_struct:alloc_task_struct_node"):
        raise kerr(errno.ENOMEM, "task_struct allocation failed", "kernel/fork.c:867")
    if k.fault.should_fail("dup_task_struct:alloc_thread_stack_node"):
        raise kerr(errno.ENOMEM, "kernel stack allocation failed", "kernel/fork.c:872")
    tsk = arch_dup_task_struct(orig)  # a struct copy (kernel/fork.c:881)
    tsk.pending = Sigpending(orig.pending.signal, list(orig.pending.list))
    tsk.regs = PtRegs(orig.regs.ax, orig.regs.sp, orig.regs.ip)
    tsk.thread = ThreadStruct(orig.thread.fsbase, orig.thread.gsbase)
    se = orig.se
    tsk.se = SchedEntity(se.vruntime, se.sum_exec_runtime, se.exec_start, se.nr_migrations)
    tsk.children = []
    tsk.ptraced = []
    tsk.ptrace_events = []
    tsk.pid_links = [None] * 4
    tsk.usage = 1
    tsk.rcu_users = 2
    tsk.fail_nth = 0
    tsk.waits_on = ""
    tsk.on_rq = 0
    if k.listeners:
        k.trace("dup_task_struct", "kernel/fork.c:859", f"copy of task {orig.pid}")
    return tsk


@traced
def free_task(k: KernelState, p: Task) -> None:
    """bad_fork_free: the half-built task dies unpublished (kernel/fork.c:2353-2356)."""
    p.state = TASK_DEAD


@traced
def copy_sighand(k: KernelState, clone_flags: int, tsk: Task, current: Task) -> None:
    """Share the handler table with CLONE_SIGHAND, else copy it; CLONE_CLEAR_SIGHAND resets it (kernel/fork.c:1502-1525)."""
    assert current.sighand is not None
    if clone_flags & CLONE_SIGHAND:
        current.sighand.count += 1
        tsk.sighand = current.sighand
        if k.listeners:
            k.decide("kernel/fork.c:1506", f"CLONE_SIGHAND set: share the handlers (count {current.sighand.count - 1}"
                     f"→{current.sighand.count})", ("count", current.sighand.count))
        return
    if k.fault.should_fail("copy_sighand:kmem_cache_alloc"):
        raise kerr(errno.ENOMEM, "sighand_struct allocation failed", "kernel/fork.c:1511")
    # NOTE: memcpy of the handlers (kernel/fork.c:1517): the table is an immutable tuple, so sharing it copies it
    tsk.sighand = SighandStruct(count=1, action=tuple(current.sighand.action))
    if clone_flags & CLONE_CLEAR_SIGHAND:
        flush_signal_handlers(tsk, False)
    if k.listeners:
        k.decide("kernel/fork.c:1515", "CLONE_SIGHAND clear: copy the 64 handlers"
                 + (", then clear them (CLONE_CLEAR_SIGHAND)" if clone_flags & CLONE_CLEAR_SIGHAND else ""))


def __cleanup_sighand(sighand: SighandStruct | None) -> None:
    """Drop a reference to a handler table (kernel/fork.c:1527-1536)."""
    if sighand is not None:
        sighand.count -= 1


@traced
def copy_signal(k: KernelState, clone_flags: int, tsk: Task, current: Task) -> None:
    """A thread shares signal_struct; a new process gets one with the parent's rlimits (kernel/fork.c:1551-1599)."""
    if clone_flags & CLONE_THREAD:
        return
    assert current.signal is not None
    if k.fault.should_fail("copy_signal:kmem_cache_zalloc"):
        raise kerr(errno.ENOMEM, "signal_struct allocation failed", "kernel/fork.c:1559")
    sig = SignalStruct(thread_head=[tsk], curr_target=tsk)
    sig.rlim = current.signal.rlim  # the memcpy: an immutable tuple, shared until set_rlim replaces it
    sig.autogroup = current.signal.autogroup
    sig.oom_score_adj = current.signal.oom_score_adj
    sig.oom_score_adj_min = current.signal.oom_score_adj_min
    tsk.signal = sig
    if k.listeners:
        k.decide("kernel/fork.c:1558", "CLONE_THREAD clear: a new signal_struct with the parent's rlimits")


def free_signal_struct(p: Task) -> None:
    """bad_fork_cleanup_signal: the child's own signal_struct goes; nothing else holds it (kernel/fork.c:2326-2328)."""
    if p.signal is not None:
        p.signal.thread_head.clear()


def copy_seccomp(p: Task, current: Task) -> None:
    """Inherit the seccomp mode and no_new_privs under the siglock (kernel/fork.c:1601-1632)."""
    p.seccomp_mode = current.seccomp_mode
    p.no_new_privs = current.no_new_privs


@traced
def copy_io(k: KernelState, clone_flags: int, tsk: Task, current: Task) -> None:
    """Share the io_context with CLONE_IO, else a new one only if an I/O priority was set (kernel/fork.c:1476-1500)."""
    ioc = current.io_context
    if ioc is None:
        return
    if clone_flags & CLONE_IO:
        ioc.refcount += 1
        ioc.active_ref += 1
        ioc.nr_tasks += 1
        tsk.io_context = ioc
    elif current.ioprio_set:
        if k.fault.should_fail("copy_io:get_task_io_context"):
            raise kerr(errno.ENOMEM, "io_context allocation failed", "kernel/fork.c:1492")
        tsk.io_context = IoContext(ioprio=ioc.ioprio)


def set_tid_address(current: Task, tidptr: int) -> int:
    """set_tid_address(2): the clear_child_tid address; returns the caller's tid (kernel/fork.c:1634-1639)."""
    current.clear_child_tid = tidptr
    assert current.thread_pid is not None
    return pid_vnr(current, current.thread_pid)


# --- unshare ----------------------------------------------------------------------------


def check_unshare_flags(current: Task, unshare_flags: int) -> None:
    """Only known flags; THREAD/SIGHAND/VM only when already private (kernel/fork.c:2828-2856)."""

    allowed = (CLONE_THREAD | CLONE_FS | CLONE_NEWNS | CLONE_SIGHAND | CLONE_VM | CLONE_FILES | CLONE_SYSVSEM
               | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWCGROUP
               | CLONE_NEWTIME)
    assert current.signal is not None and current.sighand is not None
    if unshare_flags & ~allowed:
        raise kerr(errno.EINVAL, "unshare: flag not supported by unshare", "kernel/fork.c:2830")
    if unshare_flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) and current.signal.nr_threads > 1:
        raise kerr(errno.EINVAL, "unshare: CLONE_THREAD/SIGHAND/VM in a multi-threaded process", "kernel/fork.c:2843")
    if unshare_flags & (CLONE_SIGHAND | CLONE_VM) and current.sighand.count > 1:
        raise kerr(errno.EINVAL, "unshare: CLONE_SIGHAND/VM while the handler table is shared", "kernel/fork.c:2847")
    if unshare_flags & CLONE_VM and current.mm is not None and current.mm.mm_users > 1:
        raise kerr(errno.EINVAL, "unshare: CLONE_VM while the mm is shared", "kernel/fork.c:2851")


def unshare_fs(k: KernelState, unshare_flags: int, current: Task) -> FsStruct | None:
    """unshare(CLONE_FS): a copy if the fs_struct is shared, else None; ENOMEM (kernel/fork.c:2861-2877)."""

    fs = current.fs
    if not unshare_flags & CLONE_FS or fs is None:
        return None
    if fs.users == 1:
        return None
    return copy_fs_struct(k, fs)


def unshare_fd(k: KernelState, unshare_flags: int, current: Task) -> FilesStruct | None:
    """unshare(CLONE_FILES): a private copy if the table is shared, else None (kernel/fork.c:2882-2895)."""

    fd = current.files
    if unshare_flags & CLONE_FILES and fd is not None and fd.count > 1:
        return dup_fd(k, fd)
    return None


@traced
def ksys_unshare(k: KernelState, current: Task, unshare_flags: int) -> None:
    """unshare(2): give the caller private copies or new namespaces (kernel/fork.c:2905-3024)."""

    if unshare_flags & CLONE_NEWUSER:
        unshare_flags |= CLONE_THREAD | CLONE_FS
    if unshare_flags & CLONE_VM:
        unshare_flags |= CLONE_SIGHAND
    if unshare_flags & CLONE_SIGHAND:
        unshare_flags |= CLONE_THREAD
    if unshare_flags & CLONE_NEWNS:
        unshare_flags |= CLONE_FS
    check_unshare_flags(current, unshare_flags)
    assert current.fs is not None and current.files is not None
    with CleanupLadder(k, "kernel/fork.c:3010-3023") as ladder:
        new_fs = None
        if unshare_flags & CLONE_FS and current.fs.users > 1:  # unshare_fs (kernel/fork.c:2861-2877)
            new_fs = copy_fs_struct(k, current.fs)
            ladder.on_failure("bad_unshare_cleanup_fs", free_fs_struct, new_fs)
        new_fd = None
        if unshare_flags & CLONE_FILES and current.files.count > 1:  # unshare_fd (kernel/fork.c:2882-2895)
            new_fd = dup_fd(k, current.files)
            ladder.on_failure("bad_unshare_cleanup_fd", put_files_struct, k, new_fd)
        new_cred = None
        if unshare_flags & CLONE_NEWUSER:  # unshare_userns (kernel/user_namespace.c:154-172)
            new_cred = prepare_creds(k, current)
            ladder.on_failure("bad_unshare_cleanup_cred", put_cred, k, new_cred)
            create_user_ns(k, new_cred)
        new_nsproxy = unshare_nsproxy_namespaces(k, unshare_flags, current,
                                                 new_cred.user_ns if new_cred is not None else None)
        ladder.succeed()
    if unshare_flags & (CLONE_NEWIPC | CLONE_SYSVSEM):
        exit_sem(current)
    if new_nsproxy is not None:
        switch_task_namespaces(k, current, new_nsproxy)
    if new_fs is not None:
        current.fs.users -= 1
        current.fs = new_fs
    if new_fd is not None:
        old_files = current.files
        current.files = new_fd
        put_files_struct(k, old_files)
    if new_cred is not None:
        commit_creds(k, current, new_cred)
    if k.listeners:
        k.trace("unshare", "kernel/fork.c:2905", clone_flags_str(unshare_flags & ~CSIGNAL))


def unshare_files(k: KernelState, task: Task) -> FilesStruct | None:
    """exec: take a private fd table if shared; returns the old one to put after exec (kernel/fork.c:3032-3048)."""

    old = task.files
    copy = unshare_fd(k, CLONE_FILES, task)
    if copy is None:
        return None
    task.files = copy
    return old


# --- copy_files and copy_fs (kernel/fork.c:1429-1474) ---------------------------------


@traced
def copy_fs(k: KernelState, clone_flags: int, p: Task, current: Task) -> None:
    """CLONE_FS: share (EAGAIN if in_exec); else copy_fs_struct, ENOMEM (kernel/fork.c:1429-1447)."""
    fs = current.fs
    if fs is None:
        p.fs = None
        return
    if clone_flags & CLONE_FS:
        if fs.in_exec:
            raise kerr(errno.EAGAIN, "CLONE_FS while the shared fs_struct is in execve", "kernel/fork.c:1437")
        fs.users += 1
        p.fs = fs
        if k.listeners:
            k.decide("kernel/fork.c:1439", f"CLONE_FS set: share fs (users {fs.users - 1}→{fs.users})", ("users", fs.users))
        return
    try:
        p.fs = copy_fs_struct(k, fs)
    except OSError:
        p.fs = None
        raise
    if k.listeners:
        k.decide("kernel/fork.c:1443", "CLONE_FS clear: copy the fs_struct (users 1)")


@traced
def copy_files(k: KernelState, clone_flags: int, p: Task, current: Task) -> None:
    """No table: none; CLONE_FILES: share (count++); else dup_fd, ENOMEM/EMFILE (kernel/fork.c:1449-1474)."""
    oldf = current.files
    if oldf is None:
        p.files = None
        return
    if clone_flags & CLONE_FILES:
        oldf.count += 1
        p.files = oldf
        if k.listeners:
            k.decide("kernel/fork.c:1462", f"CLONE_FILES set: share files (count {oldf.count - 1}→{oldf.count})",
                     ("count", oldf.count))
        return
    try:
        p.files = dup_fd(k, oldf)
    except OSError:
        p.files = None
        raise
    if k.listeners:
        k.decide("kernel/fork.c:1466", "CLONE_FILES clear: dup_fd copies the fd table (count 1)")


# --- the mm: copy_mm, dup_mm, dup_mmap, mmput (kernel/fork.c:481-1427) ---------------------


# include/linux/sched/coredump.h:9-78
MMF_DUMPABLE_MASK = (1 << 2) - 1
MMF_DUMP_FILTER_MASK = ((1 << 9) - 1) << 2
MMF_DISABLE_THP_MASK = 1 << 24
MMF_INIT_MASK = MMF_DUMPABLE_MASK | MMF_DUMP_FILTER_MASK | MMF_DISABLE_THP_MASK
MMF_DUMP_FILTER_DEFAULT = (1 << 2) | (1 << 3) | (1 << 7)  # anon private, anon shared, hugetlb private
VM_INIT_DEF_MASK = VM.VM_NOHUGEPAGE  # include/linux/mm.h:336


def _fatal_signal_pending(t: Task | None) -> bool:
    if t is None:
        return False

    return fatal_signal_pending(t)


def allocate_mm(k: KernelState, site: str) -> MmStruct | None:
    """kmem_cache_alloc(mm_cachep) (kernel/fork.c:680): an mm_struct with no field set, which the caller fills by
    memset or memcpy."""
    if k.fault.should_fail(site):
        return None
    return MmStruct.__new__(MmStruct)


def mm_init_owner(mm: MmStruct, p: Task | None) -> None:
    """mm->owner = p (kernel/fork.c:992-997)."""
    mm.owner = p


def mm_init(k: KernelState, mm: MmStruct, p: Task | None, user_ns: UserNamespace | None) -> MmStruct | None:
    """Reset the per-mm state, allocate the pgd, take the user_ns reference (kernel/fork.c:1006-1057)."""
    mm.mmap = []
    mm.vmacache = None  # mm->vmacache_seqnum = 0
    mm.mm_users = 1
    mm.mm_count = 1
    mm.core_state = None
    mm.pgtables_bytes = 0
    mm.map_count = 0
    mm.locked_vm = 0
    mm.pinned_vm = 0
    mm.rss_stat = [0] * NR_MM_COUNTERS
    mm_init_owner(mm, p)
    mm.exe_file = None
    current = k.current
    if current is not None and current.mm is not None:
        mm.flags = current.mm.flags & MMF_INIT_MASK
        mm.def_flags = current.mm.def_flags & VM_INIT_DEF_MASK
    else:
        mm.flags = MMF_DUMP_FILTER_DEFAULT
        mm.def_flags = 0
    if k.fault.should_fail("mm_init:mm_alloc_pgd"):
        return None  # free_mm
    mm.pgd = {}
    k.mem.last_mm_ctx_id += 1  # init_new_context (arch/x86/include/asm/mmu_context.h:131-147)
    mm.context_id = k.mem.last_mm_ctx_id
    mm.user_ns = get_user_ns(user_ns) if user_ns is not None else None
    return mm


def mm_alloc(k: KernelState) -> MmStruct | None:
    """A fresh empty mm for exec or boot, in the current task's user namespace (kernel/fork.c:1062-1072)."""
    mm = allocate_mm(k, "mm_alloc:allocate_mm")
    if mm is None:
        return None
    MmStruct.__init__(mm)  # memset(mm, 0, sizeof(*mm)) (kernel/fork.c:1070)
    current = k.current
    user_ns = current.cred.user_ns if current is not None and current.cred is not None else None
    return mm_init(k, mm, current, user_ns)


def mmget(mm: MmStruct) -> None:
    """mm_users++ (include/linux/sched/mm.h:93-96)."""
    mm.mm_users += 1


def check_mm(mm: MmStruct) -> None:
    """The RSS counters and page-table bytes of a freed mm must be zero (kernel/fork.c:652-674)."""
    if any(mm.rss_stat) or mm.pgtables_bytes or mm.pgd:
        raise InternalError(f"bad mm state on free: rss={mm.rss_stat} pgtables_bytes={mm.pgtables_bytes}")


@traced
def __mmdrop(k: KernelState, mm: MmStruct) -> None:
    """Free the pgd and the mm, drop its user_ns reference (kernel/fork.c:688-700)."""
    check_mm(mm)
    ns = mm.user_ns
    mm.user_ns = None
    if ns is not None:
        put_user_ns(k, ns)
    if k.listeners:
        k.trace("__mmdrop", "kernel/fork.c:688", f"mm ctx {mm.context_id} freed")


def mmdrop(k: KernelState, mm: MmStruct) -> None:
    """mm_count--; the last reference frees the struct (include/linux/sched/mm.h:41-49)."""
    mm.mm_count -= 1
    if mm.mm_count < 0:
        raise InternalError("mm_count underflow")
    if mm.mm_count == 0:
        __mmdrop(k, mm)


def set_mm_exe_file(k: KernelState, mm: MmStruct, new_exe_file: object | None) -> None:
    """Replace mm->exe_file, dropping the old reference (kernel/fork.c:1136-1150)."""
    old = mm.exe_file
    mm.exe_file = None
    if new_exe_file is not None:
        raise InternalError("set_mm_exe_file with a new file is exec's business")
    if old is not None:

        fput(k, old)


def __mmput(k: KernelState, mm: MmStruct) -> None:
    """Last user gone: unmap everything, drop exe_file, then mmdrop (kernel/fork.c:1075-1093)."""
    if mm.mm_users != 0:
        raise InternalError("__mmput with users left")
    exit_mmap(k, mm)
    set_mm_exe_file(k, mm, None)
    mmdrop(k, mm)


@traced
def mmput(k: KernelState, mm: MmStruct) -> None:
    """mm_users--; the last user tears the address space down (kernel/fork.c:1098-1104)."""
    mm.mm_users -= 1
    if mm.mm_users < 0:
        raise InternalError("mm_users underflow")
    if mm.mm_users == 0:
        __mmput(k, mm)


def vm_area_dup(k: KernelState, orig: VmAreaStruct, site: str) -> VmAreaStruct | None:
    """Copy a vma struct with an empty anon_vma_chain (kernel/fork.c:359-370)."""
    if k.fault.should_fail(site):
        return None
    return VmAreaStruct(vm_start=orig.vm_start, vm_end=orig.vm_end, vm_flags=orig.vm_flags, vm_mm=orig.vm_mm,
                        vm_pgoff=orig.vm_pgoff, vm_file=orig.vm_file, anon_vma=orig.anon_vma,
                        anon_vma_chain=[], vm_page_prot=orig.vm_page_prot)


@traced
def dup_mmap(k: KernelState, mm: MmStruct, oldmm: MmStruct) -> int:
    """Copy the parent's vmas and page tables into the new mm; 0 or -errno (kernel/fork.c:481-630)."""
    current = k.current
    if oldmm.exe_file is not None:
        oldmm.exe_file.f_count += 1  # get_mm_exe_file
        mm.exe_file = oldmm.exe_file
    mm.total_vm = oldmm.total_vm
    mm.data_vm = oldmm.data_vm
    mm.exec_vm = oldmm.exec_vm
    mm.stack_vm = oldmm.stack_vm
    retval = 0
    for mpnt in list(oldmm.mmap):
        if mpnt.vm_flags & VM.VM_DONTCOPY:
            vm_stat_account(mm, mpnt.vm_flags, -vma_pages(mpnt))
            continue
        charge = 0
        if _fatal_signal_pending(current):
            retval = -errno.EINTR
            break
        if mpnt.vm_flags & VM.VM_ACCOUNT:
            length = vma_pages(mpnt)
            if security_vm_enough_memory_mm(k, oldmm, length):  # sic: the parent mm
                return -errno.ENOMEM
            charge = length
        tmp = vm_area_dup(k, mpnt, "dup_mmap:vm_area_dup")
        if tmp is None:
            vm_unacct_memory(k, charge)
            return -errno.ENOMEM
        tmp.vm_mm = mm
        if tmp.vm_flags & VM.VM_WIPEONFORK:
            tmp.anon_vma = None
            # find_mergeable_anon_vma sees the parent's neighbours: vm_area_dup copied vm_prev/vm_next
            err = anon_vma_prepare(k, tmp, (vma_prev_of(oldmm, mpnt), vma_next_of(oldmm, mpnt)))
        else:
            err = anon_vma_fork(k, tmp, mpnt)
        if err:
            vm_unacct_memory(k, charge)
            return -errno.ENOMEM
        if tmp.vm_flags & (VM.VM_LOCKED | VM.VM_LOCKONFAULT):  # the same flags, without a new int per vma
            tmp.vm_flags &= ~(VM.VM_LOCKED | VM.VM_LOCKONFAULT)
        if tmp.vm_file is not None:
            tmp.vm_file.f_count += 1  # get_file
        mm.mmap.append(tmp)  # *pprev = tmp: parent order is address order
        mm.map_count += 1
        if not tmp.vm_flags & VM.VM_WIPEONFORK:
            retval = copy_page_range(k, mm, oldmm, mpnt)
        if retval:
            break
    if k.listeners:
        k.trace("dup_mmap", "kernel/fork.c:481", f"{len(mm.mmap)} of {len(oldmm.mmap)} vmas, rss {get_mm_rss(mm)}")
    return retval


# NOTE: every field of struct mm_struct, read in one C call: MmStruct.__init__(mm, *...) is dup_mm's memcpy
# (kernel/fork.c:1355).
_MM_STRUCT = attrgetter(*(f.name for f in fields(MmStruct)))


def _memcpy_mm(mm: MmStruct, oldmm: MmStruct) -> None:
    MmStruct.__init__(mm, *_MM_STRUCT(oldmm))
    mm.rss_stat = list(oldmm.rss_stat)


@traced
def dup_mm(k: KernelState, tsk: Task, oldmm: MmStruct) -> MmStruct | None:
    """Allocate a copy of ``oldmm`` for ``tsk``; None on any failure (kernel/fork.c:1345-1380)."""
    mm = allocate_mm(k, "dup_mm:allocate_mm")
    if mm is None:
        return None
    _memcpy_mm(mm, oldmm)
    if mm_init(k, mm, tsk, mm.user_ns) is None:
        return None
    err = dup_mmap(k, mm, oldmm)
    if err:
        mm_init_owner(mm, None)  # free_pt
        mmput(k, mm)
        return None
    mm.hiwater_rss = get_mm_rss(mm)
    mm.hiwater_vm = mm.total_vm
    return mm


@traced
def copy_mm(k: KernelState, clone_flags: int, p: Task, current: Task) -> None:
    """Share (CLONE_VM) or duplicate the caller's mm for the child ``p`` (kernel/fork.c:1382-1427)."""
    p.min_flt = p.maj_flt = 0
    p.nvcsw = p.nivcsw = 0
    p.mm = p.active_mm = None
    oldmm = current.mm
    if oldmm is None:
        return
    if clone_flags & CLONE_VM:
        mmget(oldmm)
        mm = oldmm
        if k.listeners:
            k.decide("kernel/fork.c:1410", f"CLONE_VM set: share mm (mm_users {oldmm.mm_users - 1}→{oldmm.mm_users})",
                     ("mm_users", oldmm.mm_users))
    else:
        if k.listeners:
            k.decide("kernel/fork.c:1415", f"CLONE_VM clear: dup_mm copies {len(oldmm.mmap)} vmas")
        dup = dup_mm(k, p, oldmm)
        if dup is None:
            raise kerr(errno.ENOMEM, "dup_mm failed (allocation, overcommit or fatal signal)", "kernel/fork.c:1416")
        mm = dup
    p.mm = p.active_mm = mm


def pidfd_poll(k: KernelState, file: File, pts: object) -> int:
    """POLLIN|POLLRDNORM once the pidfd's whole thread group has exited, not when only its leader has (kernel/fork.c:1771-1791).

    ``pts`` is the caller's poll table (forklab.fs.select.PollTableStruct) or None. With 6.9's
    pidfd_poll_hup: POLLHUP as well once the task is reaped, and a PIDFD_THREAD pidfd is ready
    when its own thread has exited; the rules later releases added are Unmodelled.
    """
    from forklab.errors import Unmodelled  # local: this function is appended below fork.py's import block
    from forklab.fs.select import POLLHUP, POLLRDNORM, PollTableStruct  # import cycle: fs/select.py imports this module
    from forklab.uapi import CAP_SYS_PTRACE, O_EXCL, POLLIN  # local, like the first line

    pid = file.private_data
    if pid is None:
        raise InternalError(f"pidfd_poll on {file!r}, which holds no struct pid")
    if isinstance(pts, PollTableStruct) and pts._qproc is not None:  # poll_wait (include/linux/poll.h:48-52)
        pts._qproc(file, pid.wait_pidfd, pts)
    links = pid.tasks[PIDTYPE_PID]
    task = links[0] if links else None  # pid_task(pid, PIDTYPE_PID)
    later = k.has("pidfd_poll_hup")
    if task is None:
        return POLLIN | POLLRDNORM | (POLLHUP if later else 0)
    assert task.signal is not None
    group_empty = all(t is task for t in task.signal.thread_head)  # thread_group_empty(task)
    thread = later and bool(file.f_flags & O_EXCL)  # PIDFD_THREAD
    if later and k.current is not None and k.current.signal is not task.signal and not capable(k.current, CAP_SYS_PTRACE):
        raise Unmodelled("pidfd poll by a task that may not ptrace-read the target: later releases answer EPOLLERR")
    if thread and task.exit_state and task.group_leader is task and not group_empty:
        raise Unmodelled("a PIDFD_THREAD pidfd of a leader that exited before its threads (delay_group_leader)")
    if task.exit_state and (thread or group_empty):
        return POLLIN | POLLRDNORM
    return 0
