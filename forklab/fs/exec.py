"""execve(2) (fs/exec.c): the parts of exec that interact with fork, in 5.6's order.

``do_execve`` is ``__do_execve_file`` (fs/exec.c:1719-1863) step for step:

1. ``getname`` (ENOENT for "", ENAMETOOLONG); then the deferred RLIMIT_NPROC check: a task
   flagged PF_NPROC_EXCEEDED by set*uid whose user still has more processes than its limit
   gets **EAGAIN** (1738-1742); otherwise the flag is cleared (1746).
2. ``unshare_files`` (1748): a files_struct shared by CLONE_FILES is replaced by a private
   copy (``dup_fd``: ENOMEM/EMFILE). The shared one is kept as ``displaced``: on success its
   reference is dropped (1839-1840); on *any* failure ``reset_files_struct`` puts it back and
   drops the copy (1857-1859), so a failed exec leaves the fd table exactly as it was.
   (Later kernels moved unshare_files past the point of no return, v5.13 "exec: Move
   unshare_files to fix posix file locking during exec"; 5.6 undoes it as described.)
3. the linux_binprm (``__do_execve_file:kzalloc``, ENOMEM, 1752-1755), ``prepare_bprm_creds``
   (``prepare_creds``, ENOMEM, 1410-1421; the keyrings of the new cred are dropped,
   kernel/cred.c:300-319), ``check_unsafe_exec`` (1485-1515): if the fs_struct has users
   outside the thread group the exec is LSM_UNSAFE_SHARE, else ``fs->in_exec`` is set -- a
   CLONE_FS fork by a sibling thread is EAGAIN until exec clears it (kernel/fork.c:1437),
   on success (1830) or failure (1850).
4. ``do_open_execat`` (842-884): the struct file is allocated before the walk (ENFILE/ENOMEM
   beat ENOENT), the walk (ENOENT, ENOTDIR, ENAMETOOLONG), the MAY_EXEC permission of the
   last component: a non-directory needs at least one execute bit even for root
   (generic_permission, fs/namei.c:366: **EACCES**; the model has no other DAC), then a
   non-regular file (directory, device) is **EACCES** (865-866).
5. ``bprm_mm_init`` (357-380): a new mm from ``mm_alloc`` (ENOMEM) with a one-page stack vma
   ending at STACK_TOP_MAX, flags VM_STACK_FLAGS|VM_STACK_INCOMPLETE_SETUP, inserted with
   ``insert_vm_struct`` (VM_ACCOUNT: charged to the commit limit, ENOMEM; mm/mmap.c:3146-3178).
   Fallible: ``mm_alloc:allocate_mm``, ``mm_init:mm_alloc_pgd``, ``__bprm_mm_init:vm_area_alloc``.
6. ``prepare_arg_pages`` (449-491): the strings may use min(3/4 _STK_LIM, RLIMIT_STACK/4), at
   least ARG_MAX, minus one pointer per string (**E2BIG**); ``prepare_binprm`` (1575-1590):
   creds from the file (cap_bprm_set_creds, see below) and the first BINPRM_BUF_SIZE bytes.
7. ``copy_strings``: the filename, envp, then argv, each copied from its last string to its
   first, downwards from the top of the new stack (498-585): strings longer than
   MAX_ARG_STRLEN or past ``argmin`` are **E2BIG**. The copy goes into the *new* mm before the
   switch, as ``get_arg_page`` does with get_user_pages_remote: growing the stack vma downwards
   when needed (``expand_downwards``: RLIMIT_AS/RLIMIT_STACK/commit charge, ENOMEM) and
   faulting the pages in (anonymous write faults: ``do_anonymous_page`` sites); any failure
   there is **E2BIG** (560). Each fault counts in the caller's ``min_flt`` (faultin_page). A
   fatal signal pending stops the copy (ERESTARTNOHAND, 536-538; the task then dies).
8. ``exec_binprm`` -> ``search_binary_handler`` (1639-1691). The model has no binaries: a
   file whose first bytes are empty (an empty file) is recognised by no binfmt and is
   **ENOEXEC** (1683-1685, as on Linux for an unrecognised header); every non-empty regular
   executable file is a "model binary" whose ``load_binary`` (``load_model_binary``,
   forklab/fs/binfmt_elf.py) does what binfmt_elf does around the point of no return:

   * ``flush_old_exec`` (1261-1310): ``de_thread`` (1064-1230): with other threads, a group
     exit already in progress is **EAGAIN** (1079-1083); else every other thread gets SIGKILL
     (zap_other_threads) and exits -- the model runs their exits at once, with the group
     exit code (do_group_exit sees group_exit_task set, kernel/exit.c:882-883); a non-leader
     exec then takes over the old leader's pid, tgid/pgid/sid links, start_time, process-list
     and sibling slots, and the old leader (a zombie) is released silently (1106-1183);
     exit_signal := SIGCHLD (1190); a sighand shared without CLONE_THREAD (CLONE_SIGHAND
     between processes) is replaced by a private copy (``de_thread:kmem_cache_alloc``,
     **ENOMEM**, 1197-1218). Then ``mm->exe_file`` is set, ``exec_mmap`` (1013-1056) runs
     ``mm_release`` on the old mm -- CLONE_CHILD_CLEARTID's write and, importantly, the
     release of a vfork parent -- switches ``mm``/``active_mm``, hands mm ownership on
     (mm_update_next_owner) and ``mmput``s the old mm. **Point of no return.** PF_RANDOMIZE,
     PF_FORKNOEXEC, PF_KTHREAD, PF_NOFREEZE, PF_NO_SETAFFINITY are cleared (1297-1298) and
     the close-on-exec fds of the (now private) table are closed (1308).
   * ``setup_new_exec`` (1337-1391): the sigaltstack's sp and size are cleared (1363; not its
     flags), dumpability (SUID_DUMP_USER unless uid != euid or gid != egid), ``comm`` :=
     basename of the filename as passed, truncated to 15 bytes (TASK_COMM_LEN), ``self_exec_id++``
     (1389) -- so a child forked earlier with an exit_signal other than SIGCHLD is reported
     with SIGCHLD (kernel/signal.c:1929-1936) -- and ``flush_signal_handlers(current, 0)``
     (1390): caught signals back to SIG_DFL, SIG_IGN kept. The blocked mask and pending
     signals are kept; pdeath_signal is kept (cleared only for a secure exec, never here).
   * ``install_exec_creds`` (1455-1479): ``commit_creds``, which clears pdeath_signal and
     resets dumpability when the euid/egid/fsuid/fsgid changed or the permitted set grew
     (kernel/cred.c:453-467).
   * ``setup_arg_pages`` (689-800): the temporary stack loses VM_STACK_INCOMPLETE_SETUP and
     is expanded by 128 KiB (``expand_stack``; a failure is EFAULT after the point of no
     return); then the System V initial stack (argc, argv pointers, NULL, envp pointers,
     NULL, AT_NULL) is written with ``copy_to_user`` (create_elf_tables, fs/binfmt_elf.c),
     ``regs.sp`` points at argc, ``regs.ip`` is 0 (no entry point), the TLS bases are cleared
     (start_thread_common, arch/x86/kernel/process_64.c).

   A failure after the point of no return forces SIGSEGV (``force_sigsegv``, 1670) and the
   error is returned, so the task dies on its way back to user mode.
9. PTRACE_EVENT_EXEC with the old pid as the tracer sees it, if the tracer asked for it (1709).
   Success: ``in_exec`` cleared, ``rseq`` unregistered (rseq_execve), the file reference of
   the linux_binprm dropped (``mm->exe_file`` keeps its own), ``displaced`` put.

Credentials: ``cap_bprm_set_creds`` (security/commoncap.c:807-900) for files without file
capabilities: permitted := bset|inheritable and effective := permitted when the euid (or only
the real uid, for permitted) is the namespace's root -- an unmapped root (a new user
namespace with no uid_map) gives nothing --, otherwise permitted = effective = ambient; a
privilege gain on an unsafe exec (shared fs_struct, no_new_privs, an incapable tracer) is
limited to the old permitted set; suid/fsuid := euid, sgid/fsgid := egid; SECURE_KEEP_CAPS
cleared. Set-user-ID/set-group-ID files raise ``Unmodelled`` (secure exec is not modelled).

Not modelled: ETXTBSY (deny_write_access), noexec mounts, file capabilities, binfmt_misc and
scripts, ELF mappings and the brk, ASLR (the stack stays at STACK_TOP_MAX), acct_arg_size's
temporary RSS, posix timers, would_dump, legacy PTRACE_ATTACH's SIGTRAP on exec, a de_thread
that must wait for a sibling thread that is itself inside a syscall (``Unmodelled``).
"""

from __future__ import annotations

import errno
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forklab.errors import ERESTARTNOHAND, InternalError, Unmodelled, kerr
from forklab.fs.file import do_close_on_exec, put_files_struct, reset_files_struct
from forklab.fs.file_table import alloc_empty_file, fput
from forklab.fs.namei import getname, user_path_at
from forklab.fs.open import vfs_open
from forklab.include.linux.dcache import is_dir, is_reg
from forklab.include.linux.fdtable import S_ISGID, S_ISUID, S_IXGRP, S_IXUGO, File
from forklab.include.linux.fs import get_file
from forklab.include.linux.fs_struct import Path
from forklab.include.linux.mm_types import _PAGE_PRESENT, TASK_SIZE_MAX, VM, MmStruct, VmAreaStruct
from forklab.include.linux.sched import (
    PF_EXEC_CLEARED,
    PF_EXITING,
    PF_NPROC_EXCEEDED,
    PIDTYPE,
    SIGNAL_GROUP_EXIT,
    SighandStruct,
    Task,
    TaskState,
)
from forklab.include.linux.security import LSM_UNSAFE_NO_NEW_PRIVS, LSM_UNSAFE_PTRACE, LSM_UNSAFE_SHARE
from forklab.kernel.cred import abort_creds, commit_creds, prepare_creds
from forklab.kernel.exit import do_exit, exit_state_advance, mm_update_next_owner, release_task
from forklab.kernel.fork import exec_mm_release, mm_alloc, mmdrop, mmput, unshare_files
from forklab.kernel.pid import detach_pid, pid_nr_ns, task_active_pid_ns
from forklab.kernel.ptrace import ptrace_event_enabled, ptrace_event_pid
from forklab.kernel.signal import fatal_signal_pending, flush_signal_handlers, zap_other_threads
from forklab.ladder import CleanupLadder
from forklab.mm.memory import FAULT_FLAG_WRITE, VM_FAULT_ERROR, handle_mm_fault, pte_offset, pte_pfn, pte_write
from forklab.mm.mmap import PAGE_MASK, expand_downwards, vm_get_page_prot, vma_link
from forklab.security.commoncap import cap_bprm_set_creds
from forklab.security.security import security_vm_enough_memory_mm
from forklab.trace import traced
from forklab.uapi import (
    AT_FDCWD,
    O_RDONLY,
    PAGE_SIZE,
    PTRACE_EVENT_EXEC,
    RLIMIT_NPROC,
    RLIMIT_STACK,
    SIGCHLD,
)

if TYPE_CHECKING:
    from forklab.include.linux.cred import Cred
    from forklab.state import KernelState

__all__ = [
    "BINPRM_BUF_SIZE",
    "MAX_ARG_STRLEN",
    "STACK_TOP_MAX",
    "Bprm",
    "de_thread",
    "do_execve",
    "exec_mmap",
    "flush_old_exec",
    "setup_new_exec",
]

STACK_TOP_MAX = TASK_SIZE_MAX  # arch/x86/include/asm/processor.h:901, 919
MAX_ARG_STRLEN = PAGE_SIZE * 32  # include/uapi/linux/binfmts.h:15
MAX_ARG_STRINGS = 0x7FFFFFFF  # include/uapi/linux/binfmts.h:16
BINPRM_BUF_SIZE = 256  # include/uapi/linux/binfmts.h:19
ARG_MAX = 131072  # include/uapi/linux/limits.h:8
_STK_LIM = 8 * 1024 * 1024  # include/uapi/linux/resource.h:66
TASK_COMM_LEN = 16  # include/linux/sched.h:213
STACK_EXPAND = 131072  # fs/exec.c:778
O_LARGEFILE = 0o100000
__FMODE_EXEC = 0x20  # include/linux/fs.h:3539
# VM_STACK_FLAGS on x86-64 (include/linux/mm.h:346-355, arch/x86/include/asm/page_types.h:38-40)
VM_DATA_DEFAULT_FLAGS = VM.VM_READ | VM.VM_WRITE | VM.VM_MAYREAD | VM.VM_MAYWRITE | VM.VM_MAYEXEC
VM_STACK_FLAGS = VM.VM_GROWSDOWN | VM_DATA_DEFAULT_FLAGS | VM.VM_ACCOUNT
VM_STACK_INCOMPLETE_SETUP = VM.VM_RAND_READ | VM.VM_SEQ_READ  # include/linux/mm.h:343
# dumpability (include/linux/sched/coredump.h:7-9, include/linux/binfmts.h)
MMF_DUMPABLE_MASK = 3
SUID_DUMP_USER = 1
SUID_DUMP_ROOT = 2  # include/linux/sched/coredump.h:9
SUID_DUMP_DISABLE = 0
SUID_DUMPABLE = SUID_DUMP_DISABLE  # fs/coredump.c: the sysctl fs.suid_dumpable boot value


@dataclass(slots=True, eq=False)
class Bprm:
    """struct linux_binprm (include/linux/binfmts.h:17-70), the fields the model uses."""

    filename: str = ""
    file: File | None = None
    mm: MmStruct | None = None
    vma: VmAreaStruct | None = None
    p: int = 0
    argmin: int = 0
    exec: int = 0
    argc: int = 0
    envc: int = 0
    cred: Cred | None = None
    unsafe: int = 0
    rlim_stack: tuple[int, int] = (0, 0)
    buf: bytes = b""
    secureexec: bool = False
    marked_in_exec: bool = False
    argv_ptrs: list[int] = field(default_factory=list)
    envp_ptrs: list[int] = field(default_factory=list)


# --- credentials -----------------------------------------------------------------------------


@traced
def prepare_bprm_creds(k: KernelState, t: Task, bprm: Bprm) -> None:
    """prepare_exec_creds: prepare_creds without the thread and process keyrings; ENOMEM (fs/exec.c:1410-1421)."""

    try:
        new = prepare_creds(k, t)
    except OSError:
        raise kerr(errno.ENOMEM, "exec credentials allocation failed", "fs/exec.c:1420") from None
    new.thread_keyring = 0  # kernel/cred.c:310-315
    new.process_keyring = 0
    bprm.cred = new


@traced
def check_unsafe_exec(k: KernelState, t: Task, bprm: Bprm) -> None:
    """LSM_UNSAFE_* bits; mark fs->in_exec unless the fs_struct is shared outside the group (fs/exec.c:1485-1515)."""
    assert t.fs is not None and t.signal is not None
    if t.ptrace:
        bprm.unsafe |= LSM_UNSAFE_PTRACE
    if t.no_new_privs:
        bprm.unsafe |= LSM_UNSAFE_NO_NEW_PRIVS
    n_fs = 1 + sum(1 for th in t.signal.thread_head if th is not t and th.fs is t.fs)
    if t.fs.users > n_fs:
        bprm.unsafe |= LSM_UNSAFE_SHARE
    else:
        t.fs.in_exec = 1
    bprm.marked_in_exec = True
    if k.listeners:
        k.trace("check_unsafe_exec", "fs/exec.c:1513",
                "fs_struct shared outside the group: LSM_UNSAFE_SHARE" if bprm.unsafe & LSM_UNSAFE_SHARE
                else f"fs->in_exec set (users {t.fs.users})", tid=t.pid)


@traced
def install_exec_creds(k: KernelState, t: Task, bprm: Bprm) -> None:
    """commit_creds(bprm->cred), with its pdeath_signal/dumpable rule (fs/exec.c:1455-1479, kernel/cred.c:453-467)."""

    new = bprm.cred
    assert new is not None
    commit_creds(k, t, new)  # clears pdeath_signal and dumpable when ids or capabilities change
    bprm.cred = None


def set_dumpable(mm: MmStruct, value: int) -> None:
    """The two MMF_DUMPABLE bits of mm->flags (fs/exec.c:1951-1965)."""
    mm.flags = (mm.flags & ~MMF_DUMPABLE_MASK) | value


# --- opening the file ------------------------------------------------------------------------


@traced
def do_open_execat(k: KernelState, t: Task, name: str) -> File:
    """Open for exec: the file first, the walk, MAY_EXEC, then regular files only (fs/exec.c:842-884)."""
    f = alloc_empty_file(k, O_LARGEFILE | O_RDONLY | __FMODE_EXEC)  # path_openat (fs/namei.c:3596)
    try:
        target, inode = user_path_at(k, t, AT_FDCWD, name, False)
        if not is_dir(inode) and not inode.i_mode & S_IXUGO:
            raise kerr(errno.EACCES, f"{target} has no execute permission bit", "fs/namei.c:366")
        vfs_open(t, Path(target, t.fs.root.mnt_root if t.fs is not None else "/"), inode, f)
        if not is_reg(inode):
            raise kerr(errno.EACCES, f"{target} is not a regular file", "fs/exec.c:865")
    except BaseException:
        fput(k, f)
        raise
    return f


# --- the new mm and its stack ----------------------------------------------------------------


@traced
def bprm_mm_init(k: KernelState, t: Task, bprm: Bprm) -> None:
    """mm_alloc and a one-page stack vma at STACK_TOP_MAX (fs/exec.c:242-280, 357-380)."""

    mm = mm_alloc(k)
    if mm is None:
        raise kerr(errno.ENOMEM, "mm_struct allocation for the new program failed", "fs/exec.c:364")
    assert t.signal is not None
    bprm.rlim_stack = t.signal.rlim[RLIMIT_STACK]
    if k.fault.should_fail("__bprm_mm_init:vm_area_alloc"):
        mmdrop(k, mm)
        raise kerr(errno.ENOMEM, "stack vma allocation failed", "fs/exec.c:250")
    flags = VM_STACK_FLAGS | VM_STACK_INCOMPLETE_SETUP
    vma = VmAreaStruct(vm_start=STACK_TOP_MAX - PAGE_SIZE, vm_end=STACK_TOP_MAX, vm_flags=flags, vm_mm=mm,
                       vm_page_prot=vm_get_page_prot(flags))
    # insert_vm_struct: charge VM_ACCOUNT, pgoff of an anonymous vma = its start (mm/mmap.c:3146-3178)
    if security_vm_enough_memory_mm(k, mm, 1):
        mmdrop(k, mm)
        raise kerr(errno.ENOMEM, "the commit limit refuses the new stack page", "mm/mmap.c:3155")
    vma.vm_pgoff = vma.vm_start // PAGE_SIZE
    vma_link(mm, vma)
    mm.stack_vm = mm.total_vm = 1
    bprm.mm, bprm.vma = mm, vma
    bprm.p = vma.vm_end - 8
    if k.listeners:
        k.trace("bprm_mm_init", "fs/exec.c:357", f"new mm, stack {vma.vm_start:#x}-{vma.vm_end:#x}", tid=t.pid)


def get_arg_page(k: KernelState, t: Task, bprm: Bprm, pos: int) -> int | None:
    """The page frame for ``pos`` in the new mm, faulted in for writing; None on failure (fs/exec.c:194-228)."""

    vma, mm = bprm.vma, bprm.mm
    assert vma is not None and mm is not None
    if pos < vma.vm_start and expand_downwards(k, t, vma, pos):  # find_extend_vma (mm/mmap.c:2501-2520)
        return None
    for _attempt in range(3):  # __get_user_pages -> faultin_page (mm/gup.c)
        table, idx = pte_offset(mm, pos)
        pte = 0 if table is None else int(table[idx])
        if pte & _PAGE_PRESENT and pte_write(pte):
            return pte_pfn(pte)
        if handle_mm_fault(k, vma, pos, FAULT_FLAG_WRITE) & VM_FAULT_ERROR:
            return None
        t.min_flt += 1  # faultin_page counts the fault in the caller (tsk = current)
    raise InternalError(f"exec: the fault at {pos:#x} did not map the page")


def _cstr(s: str | bytes) -> bytes:
    """strnlen_user's view of a user string: up to its first NUL, plus the NUL (lib/strnlen_user.c)."""
    raw = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)
    return raw.split(b"\0", 1)[0] + b"\0"


@traced
def copy_strings(k: KernelState, t: Task, bprm: Bprm, strings: list[bytes]) -> list[int]:
    """Push NUL-terminated strings, last first, below bprm->p; their addresses in order (fs/exec.c:498-585)."""

    addrs: list[int] = [0] * len(strings)
    for i in range(len(strings) - 1, -1, -1):
        data = strings[i]
        length = len(data)
        if length > MAX_ARG_STRLEN:
            raise kerr(errno.E2BIG, "an argument or environment string is longer than MAX_ARG_STRLEN",
                       "fs/exec.c:521")
        pos = bprm.p
        bprm.p -= length
        if bprm.p < bprm.argmin:
            raise kerr(errno.E2BIG, "argument and environment strings exceed the stack limit", "fs/exec.c:529")
        addrs[i] = bprm.p
        end = pos
        while end > bprm.p:
            if fatal_signal_pending(t):
                raise kerr(ERESTARTNOHAND, "a fatal signal arrived while copying the strings", "fs/exec.c:537")
            start = max(bprm.p, (end - 1) & PAGE_MASK)
            pfn = get_arg_page(k, t, bprm, start)
            if pfn is None:
                raise kerr(errno.E2BIG, "the new stack page could not be provided", "fs/exec.c:560")
            k.mem.write_page(pfn, start & (PAGE_SIZE - 1), data[start - bprm.p:end - bprm.p])
            end = start
    return addrs


def prepare_arg_pages(bprm: Bprm, argv: list[bytes], envp: list[bytes]) -> None:
    """Count the strings and set the lowest address they may use; E2BIG (fs/exec.c:449-491)."""
    bprm.argc = len(argv)
    bprm.envc = len(envp)
    if bprm.argc > MAX_ARG_STRINGS or bprm.envc > MAX_ARG_STRINGS:
        raise kerr(errno.E2BIG, "more than MAX_ARG_STRINGS strings", "fs/exec.c:438")
    limit = min(_STK_LIM // 4 * 3, bprm.rlim_stack[0] // 4)
    limit = max(limit, ARG_MAX)
    ptr_size = (bprm.argc + bprm.envc) * 8
    if limit <= ptr_size:
        raise kerr(errno.E2BIG, "the argv and envp pointers alone exceed the stack limit", "fs/exec.c:486")
    bprm.argmin = bprm.p - (limit - ptr_size)


@traced
def prepare_binprm(k: KernelState, t: Task, bprm: Bprm) -> None:
    """bprm_fill_uid, cap_bprm_set_creds, then read the first BINPRM_BUF_SIZE bytes (fs/exec.c:1575-1590)."""
    assert bprm.file is not None
    inode = bprm.file.f_inode
    if not t.no_new_privs and (inode.i_mode & S_ISUID or inode.i_mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP):
        raise Unmodelled("exec of a set-user-ID or set-group-ID file (bprm_fill_uid, secure exec) is not modelled")
    cap_bprm_set_creds(t, bprm)
    bprm.buf = bytes(inode.data[:BINPRM_BUF_SIZE])


# --- the point of no return -----------------------------------------------------------------------


def _zap_and_reap_other_threads(k: KernelState, tsk: Task) -> None:
    """de_thread's kill and wait: zap_other_threads, then each killed thread exits as it would on its next return to
    user mode, where the kernel sleeps until sig->notify_count drains (fs/exec.c:1087-1098)."""

    sig = tsk.signal
    assert sig is not None
    victims = [th for th in sig.thread_head if th is not tsk and not th.exit_state]
    busy = [th.pid for th in victims if th in k.in_syscall]
    if busy:
        raise Unmodelled(f"exec must wait for threads {busy}, which are inside a syscall (de_thread)")
    zap_other_threads(k, tsk)  # fs/exec.c:1087
    for th in victims:
        if not th.flags & PF_EXITING:
            if k.listeners:
                k.trace("de_thread", "fs/exec.c:1087", f"thread {th.pid} killed by exec", tid=tsk.pid)
            do_exit(k, th, sig.group_exit_code)  # do_group_exit sees group_exit_task (kernel/exit.c:882-883)


def _replace(lst: MutableSequence[Task], old: Task, new: Task) -> None:
    i = next(i for i, x in enumerate(lst) if x is old)
    lst[i] = new


def _take_over_leader(k: KernelState, tsk: Task) -> None:
    """A non-leader exec becomes the leader: pid, tgid/pgid/sid links, lists; the old leader is released (fs/exec.c:1106-1183)."""

    leader = tsk.group_leader
    sig = tsk.signal
    assert leader is not None and sig is not None
    if not leader.exit_state:
        raise InternalError(f"de_thread: leader {leader.pid} is still alive after the other threads exited")
    tsk.start_time = leader.start_time
    # change_pid(tsk, PIDTYPE_PID, task_pid(leader)): drop tsk's own pid, link to the leader's
    detach_pid(k, tsk, PIDTYPE.PIDTYPE_PID)
    tsk.pid = leader.pid
    lpid = leader.thread_pid
    assert lpid is not None
    tsk.thread_pid = lpid
    lpid.tasks[PIDTYPE.PIDTYPE_PID].insert(0, tsk)
    tsk.pid_links[PIDTYPE.PIDTYPE_PID] = lpid
    for kind in (PIDTYPE.PIDTYPE_TGID, PIDTYPE.PIDTYPE_PGID, PIDTYPE.PIDTYPE_SID):  # transfer_pid
        pid = leader.pid_links[kind]
        if pid is not None:
            _replace(pid.tasks[kind], leader, tsk)
        tsk.pid_links[kind] = pid
        leader.pid_links[kind] = None
    _replace(k.tasks, leader, tsk)  # list_replace_rcu(&leader->tasks, &tsk->tasks)
    if leader.real_parent is not None:  # list_replace_init(&leader->sibling, &tsk->sibling)
        _replace(leader.real_parent.children, leader, tsk)
    tsk.real_parent = leader.real_parent
    if not tsk.ptrace:
        tsk.parent = leader.real_parent
    tsk.group_leader = tsk
    leader.group_leader = tsk
    for th in sig.thread_head:
        th.group_leader = tsk
    tsk.exit_signal = SIGCHLD
    leader.exit_signal = -1
    exit_state_advance(k, leader, TaskState.EXIT_DEAD, "fs/exec.c:1170")  # the old leader must be a zombie
    if k.listeners:
        k.trace("de_thread", "fs/exec.c:1155", f"thread {tsk.pid} takes over pid {leader.pid}", tid=tsk.pid)
    release_task(k, leader)


@traced
def de_thread(k: KernelState, tsk: Task) -> None:
    """Become the only thread and the leader, with a private sighand; EAGAIN, ENOMEM (fs/exec.c:1064-1230)."""
    sig, oldsighand = tsk.signal, tsk.sighand
    assert sig is not None and oldsighand is not None
    if any(th is not tsk for th in sig.thread_head):
        if sig.flags & SIGNAL_GROUP_EXIT or sig.group_exit_task is not None:
            raise kerr(errno.EAGAIN, "a group exit (or another exec) is already in progress", "fs/exec.c:1083")
        sig.group_exit_task = tsk
        try:
            _zap_and_reap_other_threads(k, tsk)
            if tsk.group_leader is not tsk:
                _take_over_leader(k, tsk)
        finally:
            sig.group_exit_task = None
    tsk.exit_signal = SIGCHLD  # fs/exec.c:1190
    if oldsighand.count != 1:
        if k.fault.should_fail("de_thread:kmem_cache_alloc"):
            raise kerr(errno.ENOMEM, "a private sighand_struct for exec could not be allocated", "fs/exec.c:1205")
        tsk.sighand = SighandStruct(count=1, action=list(oldsighand.action))
        oldsighand.count -= 1  # __cleanup_sighand
        if k.listeners:
            k.trace("de_thread", "fs/exec.c:1212", "private copy of the shared signal handlers", tid=tsk.pid)
    if tsk.group_leader is not tsk:
        raise InternalError("de_thread: not the group leader at the end")


@traced
def exec_mmap(k: KernelState, tsk: Task, mm: MmStruct) -> None:
    """mm_release (vfork parent, clear_child_tid), then switch to the new mm and drop the old (fs/exec.c:1013-1056)."""

    old_mm = tsk.mm
    exec_mm_release(k, tsk)
    if old_mm is not None and old_mm.core_state is not None:
        raise kerr(errno.EINTR, "a core dump of the old mm is in progress", "fs/exec.c:1034")
    active_mm = tsk.active_mm
    tsk.mm = tsk.active_mm = mm
    if k.listeners:
        k.trace("exec_mmap", "fs/exec.c:1040", f"task {tsk.pid} switches to the new mm", tid=tsk.pid)
    if old_mm is not None:

        mm_update_next_owner(k, old_mm, tsk)
        mmput(k, old_mm)
    elif active_mm is not None:
        mmdrop(k, active_mm)


@traced
def flush_old_exec(k: KernelState, tsk: Task, bprm: Bprm) -> None:
    """de_thread, exe_file, exec_mmap -- the point of no return -- then the PF flags and close-on-exec (fs/exec.c:1261-1310)."""
    de_thread(k, tsk)
    assert bprm.mm is not None and bprm.file is not None
    bprm.mm.exe_file = get_file(bprm.file)  # set_mm_exe_file (fs/exec.c:1278)
    exec_mmap(k, tsk, bprm.mm)
    bprm.mm = None  # the point of no return (fs/exec.c:1294)
    tsk.flags &= ~PF_EXEC_CLEARED
    assert tsk.files is not None
    do_close_on_exec(k, tsk.files)


@traced
def setup_new_exec(k: KernelState, tsk: Task, bprm: Bprm) -> None:
    """sigaltstack, dumpability, comm, self_exec_id++, handlers to SIG_DFL (fs/exec.c:1337-1391)."""

    assert tsk.cred is not None and tsk.mm is not None
    if bprm.secureexec:
        tsk.pdeath_signal = 0  # fs/exec.c:1349 (never reached: set-id files are Unmodelled)
    tsk.sas_ss_sp = tsk.sas_ss_size = 0  # fs/exec.c:1363
    if tsk.cred.euid == tsk.cred.uid and tsk.cred.egid == tsk.cred.gid:
        set_dumpable(tsk.mm, SUID_DUMP_USER)
    else:
        set_dumpable(tsk.mm, SUID_DUMPABLE)
    base = bprm.filename.rsplit("/", 1)[-1]  # kbasename
    tsk.comm = base.encode("utf-8", "surrogateescape")[:TASK_COMM_LEN - 1].decode("utf-8", "surrogateescape")
    tsk.self_exec_id += 1  # fs/exec.c:1389
    flush_signal_handlers(tsk, False)  # fs/exec.c:1390
    if k.listeners:
        k.trace("setup_new_exec", "fs/exec.c:1337", f"comm {tsk.comm!r}, self_exec_id {tsk.self_exec_id}", tid=tsk.pid)


@traced
def setup_arg_pages(k: KernelState, tsk: Task, bprm: Bprm) -> None:
    """Finish the stack vma and grow it by 128 KiB; EFAULT (fs/exec.c:689-800)."""
    vma = bprm.vma
    assert vma is not None and tsk.mm is not None
    vma.vm_flags = (vma.vm_flags | tsk.mm.def_flags) & ~VM_STACK_INCOMPLETE_SETUP
    vma.vm_page_prot = vm_get_page_prot(vma.vm_flags)
    stack_size = vma.vm_end - vma.vm_start
    rlim_stack = bprm.rlim_stack[0] & PAGE_MASK
    if stack_size + STACK_EXPAND > rlim_stack:
        stack_base = vma.vm_end - rlim_stack
    else:
        stack_base = vma.vm_start - STACK_EXPAND
    if expand_downwards(k, tsk, vma, stack_base):
        raise kerr(errno.EFAULT, "the new stack could not be expanded", "fs/exec.c:800")


@traced
def search_binary_handler(k: KernelState, tsk: Task, bprm: Bprm) -> None:
    """The one model binfmt takes every non-empty file; an empty header is ENOEXEC (fs/exec.c:1639-1691)."""
    from forklab.fs.binfmt_elf import load_model_binary  # import cycle: fs/binfmt_elf.py imports this module

    if not bprm.buf:
        raise kerr(errno.ENOEXEC, "no binary format recognises an empty file", "fs/exec.c:1685")
    load_model_binary(k, tsk, bprm)


@traced
def exec_binprm(k: KernelState, tsk: Task, bprm: Bprm) -> None:
    """search_binary_handler, then PTRACE_EVENT_EXEC with the old pid (fs/exec.c:1694-1715)."""

    assert tsk.parent is not None
    old_vpid = pid_nr_ns(tsk.thread_pid, task_active_pid_ns(tsk.parent))
    search_binary_handler(k, tsk, bprm)
    if ptrace_event_enabled(tsk, PTRACE_EVENT_EXEC):
        ptrace_event_pid(k, tsk, PTRACE_EVENT_EXEC, old_vpid)


# --- execve ------------------------------------------------------------------------------------------


@traced
def free_bprm(k: KernelState, bprm: Bprm) -> None:
    """Abort uncommitted creds, drop the file (fs/exec.c:1423-1439)."""

    if bprm.cred is not None:
        abort_creds(k, bprm.cred)
        bprm.cred = None
    if bprm.file is not None:
        fput(k, bprm.file)
        bprm.file = None


def _exec_out_mm(k: KernelState, bprm: Bprm) -> None:
    """out: drop the new mm if exec_mmap has not taken it yet (fs/exec.c:1843-1847)."""

    if bprm.mm is not None:
        mm = bprm.mm
        bprm.mm = None
        mmput(k, mm)


def _exec_out_unmark(current: Task, bprm: Bprm) -> None:
    """out_unmark: clear fs->in_exec if check_unsafe_exec set it (fs/exec.c:1849-1851)."""
    if bprm.marked_in_exec:
        assert current.fs is not None
        current.fs.in_exec = 0


@traced
def do_execve(k: KernelState, current: Task, filename: str, argv: Sequence[str | bytes],
              envp: Sequence[str | bytes]) -> None:
    """execve(2): replace the program of ``current`` (fs/exec.c:1719-1863, 1902-1910, 1959-1965).

    ``argv``/``envp`` are the strings (str, encoded as UTF-8 with surrogateescape, or bytes);
    each is cut at its first NUL as strnlen_user would. An empty ``argv`` is the kernel's NULL
    array: 5.6 accepts argc 0.
    """
    name = getname(filename)
    assert current.cred is not None and current.cred.user is not None and current.signal is not None
    if current.flags & PF_NPROC_EXCEEDED \
            and current.cred.user.processes > current.signal.rlim[RLIMIT_NPROC][0]:
        raise kerr(errno.EAGAIN, "RLIMIT_NPROC was exceeded by set*uid and still is", "fs/exec.c:1740")
    current.flags &= ~PF_NPROC_EXCEEDED
    with CleanupLadder(k, "fs/exec.c:1843-1863") as ladder:
        displaced = unshare_files(k, current)
        if displaced is not None:
            ladder.on_failure("out_files", reset_files_struct, k, current, displaced)
        if k.fault.should_fail("__do_execve_file:kzalloc"):
            raise kerr(errno.ENOMEM, "linux_binprm allocation failed", "fs/exec.c:1754")
        bprm = Bprm(filename=name)
        ladder.on_failure("out_free", free_bprm, k, bprm)
        prepare_bprm_creds(k, current, bprm)
        ladder.on_failure("out_unmark", _exec_out_unmark, current, bprm)
        check_unsafe_exec(k, current, bprm)
        bprm.file = do_open_execat(k, current, name)
        ladder.on_failure("out", _exec_out_mm, k, bprm)
        bprm_mm_init(k, current, bprm)
        argv_b = [_cstr(s) for s in argv]
        envp_b = [_cstr(s) for s in envp]
        prepare_arg_pages(bprm, argv_b, envp_b)
        prepare_binprm(k, current, bprm)
        copy_strings(k, current, bprm, [_cstr(name)])
        bprm.exec = bprm.p
        bprm.envp_ptrs = copy_strings(k, current, bprm, envp_b)
        bprm.argv_ptrs = copy_strings(k, current, bprm, argv_b)
        if k.listeners:
            k.trace("copy_strings", "fs/exec.c:1819", f"argc {bprm.argc} envc {bprm.envc}, p {bprm.p:#x}",
                    tid=current.pid)
        exec_binprm(k, current, bprm)
        ladder.succeed()
    assert current.fs is not None
    current.fs.in_exec = 0  # fs/exec.c:1830
    current.rseq = 0  # rseq_execve (include/linux/sched.h:1947-1952)
    free_bprm(k, bprm)
    if displaced is not None:
        put_files_struct(k, displaced)
    if k.listeners:
        k.trace("execve", "fs/exec.c:1719", f"task {current.pid} runs {name!r}", tid=current.pid)
