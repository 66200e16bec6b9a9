"""The Kernel: a booted KernelState plus the syscall table (arch/x86/entry/syscalls/syscall_64.tbl).

Each public method is one Linux syscall, named after it, with the calling task first and the
other arguments in x86-64 order. It returns what the syscall returns to user space, or raises
``OSError`` with the kernel's errno. A method checks its arguments' Python types (TypeError
for API misuse) and hands the syscall body to ``do_syscall_64`` (arch/x86/entry/common.py),
which does what the kernel's entry code does around every call: fail-nth, the restart after
ERESTARTNOINTR, and signal delivery on the way back to user mode. The global state itself
lives in ``KernelState`` (forklab/state.py); in-kernel functions take it as ``k``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, TypeVar

from forklab.arch.x86.entry.common import SYSCALL_PARAMS, check_caller, do_syscall_64, user_mode_access
from forklab.arch.x86.kernel.signal import NR_RESTART_SYSCALL, sys_rt_sigreturn
from forklab.arch.x86.kernel.traps import do_general_protection
from forklab.debug import check_invariants, snapshot
from forklab.errors import Unmodelled, kerr
from forklab.fs.d_path import sys_getcwd
from forklab.fs.exec import do_execve
from forklab.fs.fcntl import do_fcntl
from forklab.fs.file import ksys_dup, ksys_dup2
from forklab.fs.namei import do_mkdirat, do_unlinkat
from forklab.fs.open import ksys_chdir, ksys_chroot, ksys_close, ksys_open
from forklab.fs.pipe import do_pipe2
from forklab.fs.proc.base import proc_read
from forklab.fs.read_write import ksys_lseek, ksys_read, ksys_write
from forklab.fs.select import do_sys_poll
from forklab.fs.stat import sys_newfstat, sys_newfstatat, sys_newlstat, sys_newstat
from forklab.include.linux.pid import PidNamespace
from forklab.include.linux.sched import PF_EXITING, TASK_RUNNING, IoContext, SigAction, Task
from forklab.include.linux.stat import Kstat
from forklab.include.linux.time import Tms
from forklab.kernel.capability import sys_capset
from forklab.kernel.cgroup.pids import PIDS_MAX, Cgroup, pids_charge, pids_uncharge
from forklab.kernel.exit import do_exit, do_group_exit, kernel_wait4, kernel_waitid
from forklab.kernel.fork import ksys_unshare, set_tid_address, sys_clone, sys_clone3, sys_fork, sys_vfork
from forklab.kernel.pid import find_task_by_pid_ns, find_task_by_vpid, pid_vnr, sys_pidfd_open
from forklab.kernel.ptrace import sys_ptrace
from forklab.kernel.sched.core import do_sched_yield, sched_setscheduler
from forklab.kernel.signal import (
    do_sigaction,
    kill_something_info,
    sigprocmask,
    sys_pause,
    sys_pidfd_send_signal,
    sys_restart_syscall,
    sys_tgkill,
    sys_tkill,
)
from forklab.kernel.sys import (
    do_getpgid,
    do_prlimit,
    ksys_setsid,
    prctl,
    sys_getrusage,
    sys_getsid,
    sys_setpgid,
    sys_setresgid,
    sys_setresuid,
    sys_times,
    sys_umask,
)
from forklab.kernel.time.hrtimer import hrtimer_interrupt, sys_nanosleep
from forklab.kernel.time.posix_timers import sys_clock_nanosleep
from forklab.kernel.user_namespace import proc_write_id_map
from forklab.mm.madvise import do_madvise
from forklab.mm.memory import follow_pte_pfn
from forklab.mm.mmap import sys_mmap, vm_munmap
from forklab.mm.mprotect import do_mprotect_pkey
from forklab.mm.page_alloc import FORK_PAGE_TABLES_COPY
from forklab.mm.uaccess import user_load, user_store, user_store_fastpath
from forklab.state import KernelState
from forklab.state import check_int as _check_int
from forklab.uapi import (
    AT_FDCWD,
    AT_REMOVEDIR,
    CLONE_ARGS_SIZE_VER1,
    CLONE_ARGS_SIZE_VER2,
    SCHED_RESET_ON_FORK,
    CloneArgs,
    Rusage,
    SigInfo,
    WaitResult,
)

T = TypeVar("T")

U64_MASK = 2**64 - 1  # a register's width: user values are truncated to it

# The traced syscalls' argument names, as their SYSCALL_DEFINEs name them (kernel/fork.c, kernel/exit.c, ...).
SYSCALL_PARAMS.update({
    "clone": ("clone_flags", "newsp", "parent_tidptr", "child_tidptr", "tls"),
    "clone3": ("uargs", "size"),
    "unshare": ("unshare_flags",),
    "execve": ("filename", "argv", "envp"),
    "pipe2": ("flags",),
    "exit": ("error_code",),
    "exit_group": ("error_code",),
    "wait4": ("upid", "options", "ru"),  # ru: 1 for a rusage pointer, 0 for NULL
    "waitid": ("which", "upid", "options"),
    "kill": ("pid", "sig"),
    "tgkill": ("tgid", "pid", "sig"),
    "tkill": ("pid", "sig"),
    "rt_sigprocmask": ("how", "nset"),
    "open": ("filename", "flags", "mode"),
    "close": ("fd",),
    "dup": ("fildes",),
    "dup2": ("oldfd", "newfd"),
    "lseek": ("fd", "offset", "whence"),
    "read": ("fd", "count"),  # the buffer is what the call returns
    "write": ("fd", "buf", "count"),  # buf: the first WRITE_BUF_TRACED bytes
    "mmap": ("addr", "len", "prot", "flags", "fd", "off"),
    "mprotect": ("start", "len", "prot"),
    "munmap": ("addr", "len"),
    "set_tid_address": ("tidptr",),
    "getcwd": ("size",),
    "stat": ("filename",),
    "lstat": ("filename",),
    "fstat": ("fd",),
    "newfstatat": ("dfd", "filename", "flag"),
    "unlink": ("pathname",),
    "unlinkat": ("dfd", "pathname", "flag"),
    "mkdir": ("pathname", "mode"),
    "mkdirat": ("dfd", "pathname", "mode"),
})
WRITE_BUF_TRACED = 64  # bytes of a write's buffer kept in its trace (strace shows 32)


def _check_timespec(req: object) -> tuple[int, int]:
    """``req`` as a (seconds, nanoseconds) pair of ints; TypeError otherwise (the values are the kernel's to check)."""
    if not isinstance(req, tuple) or len(req) != 2:
        raise TypeError("req must be a (seconds, nanoseconds) tuple")
    return _check_int("req[0]", req[0]), _check_int("req[1]", req[1])


def _check_str(name: str, value: object) -> str:
    """``value`` if it is a str, else TypeError naming the argument."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


class Kernel(KernelState):
    """A booted Linux 5.6.14 model: ``Kernel(pid_max=32768, threads_max=..., nr_cpus=2, version="5.6.14")``.

    The tunables are named after their sysctls (kernel.pid_max, kernel.threads-max); the
    state is ``KernelState``'s, the methods are the syscalls. ``fork_page_tables="shared"``
    (default "copy", as Linux) makes fork share last-level page tables on demand (on-demand fork,
    EuroSys 2021), beyond 5.6; any other value is a ValueError.
    """

    __slots__ = ()

    def __init__(self, pid_max: int = 32768, threads_max: int | None = None, nr_cpus: int = 2,
                 version: str = "5.6.14", fork_page_tables: str = FORK_PAGE_TABLES_COPY) -> None:
        from forklab.init.main import start_kernel  # init/ builds on every subsystem

        super().__init__(pid_max, threads_max, nr_cpus, version, fork_page_tables)
        self.init_task = start_kernel(self)

    def _syscall(self, t: object, name: str, fn: Callable[[Task], T], values: tuple[Any, ...] = ()) -> T:
        """Enter the kernel as ``t`` and run ``fn`` as the syscall body; ``values`` are its arguments for the
        trace (arch/x86/entry/common.c:282)."""
        return do_syscall_64(self, t, name, fn, values)

    def _check_task(self, t: object) -> Task:
        return check_caller(t)

    # --- process creation -----------------------------------------------------------------

    def fork(self, t: Task) -> int:
        """fork(2) (kernel/fork.c:2520)."""

        return self._syscall(t, "fork", lambda c: sys_fork(self, c))

    def vfork(self, t: Task) -> int:
        """vfork(2): returns the child's pid; ``t`` sleeps on vfork_done until the child execs or exits (kernel/fork.c:2536)."""

        return self._syscall(t, "vfork", lambda c: sys_vfork(self, c))

    def clone(self, t: Task, flags: int, newsp: int = 0, parent_tid: int = 0, child_tid: int = 0, tls: int = 0) -> int:
        """clone(2), x86-64 argument order (kernel/fork.c:2566)."""

        for name, v in (("flags", flags), ("newsp", newsp), ("parent_tid", parent_tid), ("child_tid", child_tid),
                        ("tls", tls)):
            _check_int(name, v)
        return self._syscall(t, "clone", lambda c: sys_clone(self, c, flags & U64_MASK, newsp & U64_MASK,
                                                              parent_tid & U64_MASK, child_tid & U64_MASK,
                                                              tls & U64_MASK),
                             (flags & U64_MASK, newsp & U64_MASK, parent_tid & U64_MASK, child_tid & U64_MASK,
                              tls & U64_MASK))

    def clone3(self, t: Task, args: CloneArgs | int, size: int | None = None) -> int:
        """clone3(2) with a CloneArgs or the address of a raw struct in ``t``'s memory (kernel/fork.c:2722)."""

        if not isinstance(args, CloneArgs):
            _check_int("args", args)
        else:
            for name in ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
                         "cgroup"):
                _check_int(f"args.{name}", getattr(args, name))
            if isinstance(args.set_tid, list):
                for v in args.set_tid:
                    _check_int("args.set_tid[i]", v)
            else:
                _check_int("args.set_tid", args.set_tid)
            if args.set_tid_size is not None:
                _check_int("args.set_tid_size", args.set_tid_size)
        default = CLONE_ARGS_SIZE_VER2 if self.has("clone_into_cgroup") else CLONE_ARGS_SIZE_VER1
        usize = default if size is None else _check_int("size", size)
        if usize < 0:  # size_t: a negative size is a huge one
            raise kerr(errno.E2BIG, f"clone_args size {usize} exceeds PAGE_SIZE", "kernel/fork.c:2608")
        return self._syscall(t, "clone3", lambda c: sys_clone3(self, c, args, usize), (args, usize))

    def unshare(self, t: Task, flags: int) -> int:
        """unshare(2) (kernel/fork.c:2905)."""

        _check_int("flags", flags)
        self._syscall(t, "unshare", lambda c: ksys_unshare(self, c, flags & U64_MASK), (flags & U64_MASK,))
        return 0

    # --- exec and pipes ----------------------------------------------------------------------

    def execve(self, t: Task, path: str, argv: list[str] | tuple[str, ...] | None = None,
               envp: list[str] | tuple[str, ...] | None = None) -> None:
        """execve(2): run the file at ``path`` in ``t`` (fs/exec.c:1959-1965, 1719-1863).

        None for ``argv``/``envp`` is the kernel's NULL array (5.6 accepts argc 0). The model has
        no binaries: a non-empty regular file with an execute bit runs; an empty one is ENOEXEC.
        Returns nothing on success; a failure after the point of no return kills ``t`` with SIGSEGV.
        """

        if not isinstance(path, str):
            raise TypeError("path must be a str")
        args: list[str | bytes] = [] if argv is None else list(argv)
        env: list[str | bytes] = [] if envp is None else list(envp)
        for name, seq in (("argv", args), ("envp", env)):
            if not all(isinstance(s, (str, bytes)) for s in seq):
                raise TypeError(f"{name} must be a list of str")
        self._syscall(t, "execve", lambda c: do_execve(self, c, path, args, env), (path, args, env))

    def pipe2(self, t: Task, flags: int = 0) -> tuple[int, int]:
        """pipe2(2) -> (read fd, write fd) (fs/pipe.c:1006-1009, 984-1003)."""

        _check_int("flags", flags)
        return self._syscall(t, "pipe2", lambda c: do_pipe2(self, c, flags & 0xFFFFFFFF), (flags & 0xFFFFFFFF,))

    def pipe(self, t: Task) -> tuple[int, int]:
        """pipe(2): pipe2 without flags (fs/pipe.c:1011-1014)."""
        return self.pipe2(t, 0)

    # --- exit and wait ----------------------------------------------------------------------

    def exit(self, t: Task, status: int) -> None:
        """exit(2): ends only the calling thread (kernel/exit.c:866-869)."""

        _check_int("status", status)
        self._syscall(t, "exit", lambda c: do_exit(self, c, (status & 0xFF) << 8), (status,))

    def exit_group(self, t: Task, status: int) -> None:
        """exit_group(2): ends every thread of the group (kernel/exit.c:876-909)."""

        _check_int("status", status)
        self._syscall(t, "exit_group", lambda c: do_group_exit(self, c, (status & 0xFF) << 8), (status,))

    def wait4(self, t: Task, pid: int, options: int = 0) -> WaitResult:
        """wait4(2) -> (pid, wstatus) with ``.rusage`` of the reaped child; (0, 0) with WNOHANG; raises ``Blocked``
        when it must sleep (kernel/exit.c:1582-1623)."""

        return self._wait4(t, pid, options, True)

    def waitpid(self, t: Task, pid: int, options: int = 0) -> WaitResult:
        """waitpid(2) as glibc makes it, wait4 with a NULL rusage: -> (pid, wstatus), no rusage taken (``.rusage``
        all zeros); (0, 0) with WNOHANG; raises ``Blocked`` when it must sleep (kernel/exit.c:1582-1623)."""

        return self._wait4(t, pid, options, False)

    def _wait4(self, t: Task, pid: int, options: int, ru: bool) -> WaitResult:
        """The wait4 syscall, with a rusage pointer (``ru``) or NULL."""
        _check_int("pid", pid)
        _check_int("options", options)
        return self._syscall(t, "wait4", lambda c: kernel_wait4(self, c, pid, options, ru), (pid, options, int(ru)))

    def kill(self, t: Task, pid: int, sig: int) -> int:
        """kill(2) (kernel/signal.c:3710)."""

        _check_int("pid", pid)
        _check_int("sig", sig)
        self._syscall(t, "kill", lambda c: kill_something_info(self, c, sig, pid), (pid, sig))
        return 0

    def waitid(self, t: Task, idtype: int, id: int, options: int) -> SigInfo | None:
        """waitid(2): P_ALL, P_PID, P_PGID or P_PIDFD; None when WNOHANG finds nothing; ``Blocked`` when it sleeps
        (kernel/exit.c:1492-1580)."""

        for name, v in (("idtype", idtype), ("id", id), ("options", options)):
            _check_int(name, v)
        return self._syscall(t, "waitid", lambda c: kernel_waitid(self, c, idtype, id, options), (idtype, id, options))

    def getrusage(self, t: Task, who: int) -> Rusage:
        """getrusage(2) for RUSAGE_SELF, RUSAGE_CHILDREN or RUSAGE_THREAD (kernel/sys.c:1783-1793)."""

        _check_int("who", who)
        return self._syscall(t, "getrusage", lambda c: sys_getrusage(self, c, who))

    def tgkill(self, t: Task, tgid: int, tid: int, sig: int) -> int:
        """tgkill(2): ``sig`` to thread ``tid`` of thread group ``tgid`` (kernel/signal.c:3820-3838)."""

        for name, v in (("tgid", tgid), ("tid", tid), ("sig", sig)):
            _check_int(name, v)
        return self._syscall(t, "tgkill", lambda c: sys_tgkill(self, c, tgid, tid, sig), (tgid, tid, sig))

    def tkill(self, t: Task, tid: int, sig: int) -> int:
        """tkill(2): ``sig`` to thread ``tid`` (kernel/signal.c:3840-3855)."""

        _check_int("tid", tid)
        _check_int("sig", sig)
        return self._syscall(t, "tkill", lambda c: sys_tkill(self, c, tid, sig), (tid, sig))

    def pidfd_open(self, t: Task, pid: int, flags: int = 0) -> int:
        """pidfd_open(2): a pidfd for process ``pid``, O_CLOEXEC (kernel/pid.c:550-572)."""

        _check_int("pid", pid)
        _check_int("flags", flags)
        return self._syscall(t, "pidfd_open", lambda c: sys_pidfd_open(self, c, pid, flags))

    def pidfd_send_signal(self, t: Task, pidfd: int, sig: int, info: SigInfo | None = None, flags: int = 0) -> int:
        """pidfd_send_signal(2): ``sig`` to the process the pidfd refers to (kernel/signal.c:3651-3714)."""

        for name, v in (("pidfd", pidfd), ("sig", sig), ("flags", flags)):
            _check_int(name, v)
        if info is not None and not isinstance(info, SigInfo):
            raise TypeError("info must be a forklab.uapi.SigInfo or None")
        return self._syscall(t, "pidfd_send_signal", lambda c: sys_pidfd_send_signal(self, c, pidfd, sig, info, flags))

    def poll(self, t: Task, fds: list[tuple[int, int]], timeout: int = 0) -> list[int]:
        """poll(2) over ``(fd, events)`` pairs -> each fd's revents; ``Blocked`` when ``timeout`` != 0 and none is ready
        (fs/select.c:1047-1079)."""

        if not isinstance(fds, list) or not all(isinstance(p, tuple) and len(p) == 2 for p in fds):
            raise TypeError("fds must be a list of (fd, events) tuples")
        pairs = [(_check_int("fd", fd), _check_int("events", ev)) for fd, ev in fds]
        _check_int("timeout", timeout)
        return self._syscall(t, "poll", lambda c: do_sys_poll(self, c, pairs, timeout))

    # --- process groups and sessions -------------------------------------------------------

    def setpgid(self, t: Task, pid: int, pgid: int) -> int:
        """setpgid(2); 0 means the caller / the pid itself (kernel/sys.c:1007-1076)."""

        _check_int("pid", pid)
        _check_int("pgid", pgid)
        return self._syscall(t, "setpgid", lambda c: sys_setpgid(self, c, pid, pgid))

    def getpgid(self, t: Task, pid: int) -> int:
        """getpgid(2) (kernel/sys.c:1078-1109)."""

        _check_int("pid", pid)
        return self._syscall(t, "getpgid", lambda c: do_getpgid(self, c, pid))

    def getpgrp(self, t: Task) -> int:
        """getpgrp(2): getpgid(0) (kernel/sys.c:1113-1116)."""

        return self._syscall(t, "getpgrp", lambda c: do_getpgid(self, c, 0))

    def getsid(self, t: Task, pid: int) -> int:
        """getsid(2) (kernel/sys.c:1120-1146)."""

        _check_int("pid", pid)
        return self._syscall(t, "getsid", lambda c: sys_getsid(self, c, pid))

    def setsid(self, t: Task) -> int:
        """setsid(2): a new session and process group led by the caller; returns the sid (kernel/sys.c:1159-1195)."""

        return self._syscall(t, "setsid", lambda c: ksys_setsid(self, c))

    # --- lookups ---------------------------------------------------------------------------

    def find_task(self, pid: int, ns: PidNamespace | None = None) -> Task:
        """The task with thread id ``pid`` in ``ns`` (default: the initial pid namespace)."""

        _check_int("pid", pid)
        task = find_task_by_pid_ns(pid, ns if ns is not None else self.init_pid_ns)
        if task is None:
            raise ValueError(f"no task {pid} in that pid namespace")
        return task

    def getpid(self, t: Task) -> int:
        """getpid(2): the thread group id in the caller's pid namespace (kernel/sys.c:893)."""

        return self._syscall(t, "getpid", lambda c: pid_vnr(c, c.group_leader.thread_pid if c.group_leader else None))

    def gettid(self, t: Task) -> int:
        """gettid(2) (kernel/sys.c:899)."""

        return self._syscall(t, "gettid", lambda c: pid_vnr(c, c.thread_pid))

    def getppid(self, t: Task) -> int:
        """getppid(2): the real parent's tgid, 0 if it is outside the caller's namespace (kernel/sys.c:910)."""

        def run(c: Task) -> int:
            assert c.real_parent is not None
            return pid_vnr(c, c.real_parent.group_leader.thread_pid if c.real_parent.group_leader else None)

        return self._syscall(t, "getppid", run)

    def set_tid_address(self, t: Task, tidptr: int) -> int:
        """set_tid_address(2) (kernel/fork.c:1634)."""

        _check_int("tidptr", tidptr)
        return self._syscall(t, "set_tid_address", lambda c: set_tid_address(c, tidptr), (tidptr,))

    # --- memory ---------------------------------------------------------------------------

    def mmap(self, t: Task, addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
        """mmap(2) (arch/x86/kernel/sys_x86_64.c:89, mm/mmap.c:1591)."""

        for name, v in (("addr", addr), ("length", length), ("prot", prot), ("flags", flags), ("fd", fd),
                        ("offset", offset)):
            _check_int(name, v)
        return self._syscall(t, "mmap", lambda c: sys_mmap(self, c, addr & U64_MASK, length & U64_MASK,
                                                           prot, flags, fd, offset & U64_MASK),
                             (addr & U64_MASK, length & U64_MASK, prot, flags, fd, offset & U64_MASK))

    def munmap(self, t: Task, addr: int, length: int) -> int:
        """munmap(2) (mm/mmap.c:2843)."""

        _check_int("addr", addr)
        _check_int("length", length)
        self._syscall(t, "munmap", lambda c: vm_munmap(self, c, addr & U64_MASK, length & U64_MASK),
                      (addr & U64_MASK, length & U64_MASK))
        return 0

    def mprotect(self, t: Task, addr: int, length: int, prot: int) -> int:
        """mprotect(2) (mm/mprotect.c:605)."""

        for name, v in (("addr", addr), ("length", length), ("prot", prot)):
            _check_int(name, v)
        self._syscall(t, "mprotect", lambda c: do_mprotect_pkey(self, c, addr & U64_MASK, length & U64_MASK, prot),
                      (addr & U64_MASK, length & U64_MASK, prot))
        return 0

    def madvise(self, t: Task, addr: int, length: int, advice: int) -> int:
        """madvise(2) (mm/madvise.c:1053)."""

        for name, v in (("addr", addr), ("length", length), ("advice", advice)):
            _check_int(name, v)
        self._syscall(t, "madvise", lambda c: do_madvise(self, c, addr & U64_MASK, length & U64_MASK, advice))
        return 0

    def store(self, t: Task, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr`` as ``t``'s own user code would, taking page faults (raises Segfault)."""

        if type(addr) is not int:  # the checks below, without a call for the common case
            _check_int("addr", addr)
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError("data must be bytes")
            data = bytes(data)
        # NOTE: check_caller's test of a running task in place, as the fast path's first step; any other caller
        # takes check_caller's own checks and messages
        if type(t) is not Task or t.exit_state or t.flags & PF_EXITING or t.state != TASK_RUNNING:
            t = check_caller(t)
        if not user_store_fastpath(self, t, addr, data):
            user_mode_access(self, t, user_store, addr, data)

    def general_protection(self, t: Task) -> None:
        """``t``'s user code executed a privileged instruction (glibc abort()'s hlt): the #GP trap, SIGSEGV
        (arch/x86/kernel/traps.c:493-524); raises Segfault."""

        user_mode_access(self, check_caller(t), do_general_protection)

    def load(self, t: Task, addr: int, n: int) -> bytes:
        """Read ``n`` bytes at ``addr`` as ``t``'s own user code would (raises Segfault)."""

        _check_int("addr", addr)
        _check_int("n", n)
        if n < 0:
            raise ValueError("n must be non-negative")
        return user_mode_access(self, check_caller(t), user_load, addr, n)

    def page(self, pfn: int) -> Any:
        """A read-only view of physical page ``pfn`` (``_refcount``, ``_mapcount``)."""
        _check_int("pfn", pfn)
        return self.mem.page(pfn)

    def translate(self, t: Task, addr: int) -> int | None:
        """The page frame ``addr`` maps to in ``t``'s page table, or None if not present."""

        _check_int("addr", addr)
        if not isinstance(t, Task) or t.mm is None:
            return None
        return follow_pte_pfn(t.mm, addr)

    # --- files and fs ------------------------------------------------------------------------

    def open(self, t: Task, path: str, flags: int = 0, mode: int = 0o666) -> int:
        """open(2) (fs/open.c:1097)."""

        if not isinstance(path, str):
            raise TypeError("path must be a str")
        _check_int("flags", flags)
        _check_int("mode", mode)
        return self._syscall(t, "open", lambda c: ksys_open(self, c, path, flags, mode), (path, flags, mode))

    def close(self, t: Task, fd: int) -> int:
        """close(2) (fs/open.c:1189)."""

        _check_int("fd", fd)
        self._syscall(t, "close", lambda c: ksys_close(self, c, fd), (fd,))
        return 0

    def dup(self, t: Task, fd: int) -> int:
        """dup(2) (fs/file.c:960)."""

        _check_int("fd", fd)
        return self._syscall(t, "dup", lambda c: ksys_dup(self, c, fd), (fd,))

    def dup2(self, t: Task, oldfd: int, newfd: int) -> int:
        """dup2(2) (fs/file.c:944)."""

        _check_int("oldfd", oldfd)
        _check_int("newfd", newfd)
        return self._syscall(t, "dup2", lambda c: ksys_dup2(self, c, oldfd, newfd), (oldfd, newfd))

    def lseek(self, t: Task, fd: int, offset: int, whence: int) -> int:
        """lseek(2) (fs/read_write.c:296)."""

        for name, v in (("fd", fd), ("offset", offset), ("whence", whence)):
            _check_int(name, v)
        return self._syscall(t, "lseek", lambda c: ksys_lseek(self, c, fd, offset, whence), (fd, offset, whence))

    def read(self, t: Task, fd: int, count: int) -> bytes:
        """read(2), returning the bytes read (fs/read_write.c:583)."""

        _check_int("fd", fd)
        _check_int("count", count)
        if not 0 <= count <= 1 << 24:
            raise ValueError("count must be between 0 and 16 MiB (the model returns the bytes read)")
        return self._syscall(t, "read", lambda c: ksys_read(self, c, fd, count), (fd, count))

    def write(self, t: Task, fd: int, data: bytes) -> int:
        """write(2) (fs/read_write.c:607)."""

        _check_int("fd", fd)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("data must be bytes")
        data = bytes(data)
        return self._syscall(t, "write", lambda c: ksys_write(self, c, fd, data),
                             (fd, data[:WRITE_BUF_TRACED], len(data)))

    def fcntl(self, t: Task, fd: int, cmd: int, arg: int = 0) -> int:
        """fcntl(2) (fs/fcntl.c:448)."""

        for name, v in (("fd", fd), ("cmd", cmd), ("arg", arg)):
            _check_int(name, v)
        return self._syscall(t, "fcntl", lambda c: do_fcntl(self, c, fd, cmd, arg))

    def chdir(self, t: Task, path: str) -> int:
        """chdir(2) (fs/open.c:482)."""

        if not isinstance(path, str):
            raise TypeError("path must be a str")
        self._syscall(t, "chdir", lambda c: ksys_chdir(self, c, path))
        return 0

    def chroot(self, t: Task, path: str) -> int:
        """chroot(2) (fs/open.c:529)."""

        if not isinstance(path, str):
            raise TypeError("path must be a str")
        self._syscall(t, "chroot", lambda c: ksys_chroot(self, c, path))
        return 0

    def umask(self, t: Task, mask: int) -> int:
        """umask(2) (kernel/sys.c:1758)."""

        _check_int("mask", mask)
        return self._syscall(t, "umask", lambda c: sys_umask(c, mask))

    # --- credentials, limits, scheduling ---------------------------------------------------

    def setresuid(self, t: Task, ruid: int, euid: int, suid: int) -> int:
        """setresuid(2); -1 keeps an id (kernel/sys.c:622)."""

        for name, v in (("ruid", ruid), ("euid", euid), ("suid", suid)):
            _check_int(name, v)
        self._syscall(t, "setresuid", lambda c: sys_setresuid(self, c, ruid, euid, suid))
        return 0

    def setresgid(self, t: Task, rgid: int, egid: int, sgid: int) -> int:
        """setresgid(2); -1 keeps an id (kernel/sys.c:704)."""

        for name, v in (("rgid", rgid), ("egid", egid), ("sgid", sgid)):
            _check_int(name, v)
        self._syscall(t, "setresgid", lambda c: sys_setresgid(self, c, rgid, egid, sgid))
        return 0

    def capset(self, t: Task, effective: int, permitted: int, inheritable: int = 0) -> int:
        """capset(2) on the caller, with the three sets as bit masks (kernel/capability.c:220)."""

        for name, v in (("effective", effective), ("permitted", permitted), ("inheritable", inheritable)):
            _check_int(name, v)
        self._syscall(t, "capset", lambda c: sys_capset(self, c, effective, permitted, inheritable))
        return 0

    def setrlimit(self, t: Task, resource: int, limits: tuple[int, int]) -> int:
        """setrlimit(2) with (soft, hard) (kernel/sys.c:1656)."""

        _check_int("resource", resource)
        if not (isinstance(limits, tuple) and len(limits) == 2):
            raise TypeError("limits must be a (soft, hard) tuple")
        soft, hard = (_check_int("soft", limits[0]), _check_int("hard", limits[1]))
        self._syscall(t, "setrlimit", lambda c: do_prlimit(self, c, resource, (soft, hard)))
        return 0

    def getrlimit(self, t: Task, resource: int) -> tuple[int, int]:
        """getrlimit(2) -> (soft, hard) (kernel/sys.c:1401)."""

        _check_int("resource", resource)
        return self._syscall(t, "getrlimit", lambda c: do_prlimit(self, c, resource, None))

    def prctl(self, t: Task, option: int, arg2: int = 0) -> int:
        """prctl(2) for PR_SET/GET_CHILD_SUBREAPER, PDEATHSIG, NO_NEW_PRIVS (kernel/sys.c:2282)."""

        _check_int("option", option)
        _check_int("arg2", arg2)
        return self._syscall(t, "prctl", lambda c: prctl(self, c, option, arg2))

    def sched_setscheduler(self, t: Task, pid: int, policy: int, priority: int = 0) -> int:
        """sched_setscheduler(2); SCHED_RESET_ON_FORK may be or-ed into ``policy`` (kernel/sched/core.c:5170)."""

        for name, v in (("pid", pid), ("policy", policy), ("priority", priority)):
            _check_int(name, v)

        def run(c: Task) -> int:
            target = c if pid == 0 else find_task_by_vpid(c, pid)
            if pid < 0:
                raise kerr(errno.EINVAL, "negative pid", "kernel/sched/core.c:5111")
            if target is None:
                raise kerr(errno.ESRCH, f"no task {pid}", "kernel/sched/core.c:5118")
            sched_setscheduler(self, target, policy & ~SCHED_RESET_ON_FORK, priority, bool(policy & SCHED_RESET_ON_FORK))
            return 0

        return self._syscall(t, "sched_setscheduler", run)

    def ioprio_set(self, t: Task, ioprio: int) -> int:
        """ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio) on the caller: creates its io_context (block/ioprio.c:69)."""

        _check_int("ioprio", ioprio)

        def run(c: Task) -> int:
            if c.io_context is None:
                c.io_context = IoContext()
            c.io_context.ioprio = ioprio
            c.ioprio_set = True
            return 0

        return self._syscall(t, "ioprio_set", run)

    # --- signals ---------------------------------------------------------------------------

    def rt_sigaction(self, t: Task, sig: int, act: SigAction | int | None = None) -> SigAction:
        """rt_sigaction(2): install ``act`` (a SigAction or a bare handler) and return the old action (kernel/signal.c:3955)."""

        _check_int("sig", sig)
        if act is not None and not isinstance(act, SigAction):
            act = SigAction(_check_int("act", act))
        new = act
        return self._syscall(t, "rt_sigaction", lambda c: do_sigaction(self, c, sig, new))

    def rt_sigreturn(self, t: Task) -> int:
        """rt_sigreturn(2): return from a handler, restoring the mask its frame saved (arch/x86/kernel/signal.c:638-664)."""

        return self._syscall(t, "rt_sigreturn", lambda c: sys_rt_sigreturn(self, c))

    def rt_sigprocmask(self, t: Task, how: int, set: int | None = None) -> int:
        """rt_sigprocmask(2): change the blocked mask, return the old one (kernel/signal.c:2998)."""

        _check_int("how", how)
        if set is not None:
            _check_int("set", set)
        return self._syscall(t, "rt_sigprocmask", lambda c: sigprocmask(c, how, set), (how, set))

    def sigaltstack(self, t: Task, sp: int, size: int, flags: int = 0) -> int:
        """sigaltstack(2) (kernel/signal.c:3915), setting the alternate stack."""
        _check_int("sp", sp)
        _check_int("size", size)
        _check_int("flags", flags)

        def run(c: Task) -> int:
            c.sas_ss_sp, c.sas_ss_size, c.sas_ss_flags = sp, size, flags
            return 0

        return self._syscall(t, "sigaltstack", run)

    def ptrace(self, t: Task, request: int, pid: int, addr: int = 0, data: int = 0) -> int:
        """ptrace(2): PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_SETOPTIONS, PTRACE_GETEVENTMSG, PTRACE_DETACH (kernel/ptrace.c:1238)."""

        for name, v in (("request", request), ("pid", pid), ("addr", addr), ("data", data)):
            _check_int(name, v)
        return self._syscall(t, "ptrace", lambda c: sys_ptrace(self, c, request, pid, addr, data))

    # --- cgroups and user namespaces (the model's stand-ins for writing their files) -----

    def cgroup_mkdir(self, parent: Cgroup, name: str, pids_max: int | None = None) -> Cgroup:
        """Create a child cgroup (mkdir in cgroupfs) with an optional ``pids.max``."""

        if not isinstance(parent, Cgroup) or not isinstance(name, str):
            raise TypeError("cgroup_mkdir(parent: Cgroup, name: str)")
        child = Cgroup(name=name, parent=parent, limit=PIDS_MAX if pids_max is None else pids_max)
        parent.children.append(child)
        return child

    def cgroup_attach(self, t: Task, cgroup: Cgroup) -> None:
        """Move ``t``'s whole thread group into ``cgroup`` (writing cgroup.procs), moving its pids charge."""

        task = self._check_task(t)
        if not isinstance(cgroup, Cgroup):
            raise TypeError("cgroup must be a Cgroup")
        assert task.signal is not None
        for thread in task.signal.thread_head:
            assert thread.cgroups is not None
            pids_uncharge(thread.cgroups, 1)
            thread.cgroups.nr_tasks -= 1
            thread.cgroups = cgroup
            pids_charge(cgroup, 1)
            cgroup.nr_tasks += 1

    def write_id_map(self, t: Task, target: Task, uid_map: list[tuple[int, int, int]] | None,
                     gid_map: list[tuple[int, int, int]] | None = None, deny_setgroups: bool = False) -> None:
        """Write /proc/<target>/uid_map and gid_map as ``t``: (first, lower_first, count) extents, lower ids as
        ``t``'s parent namespace numbers them; ``deny_setgroups`` writes "deny" to /proc/<target>/setgroups first
        (kernel/user_namespace.c:844)."""

        task = self._check_task(t)
        if not isinstance(target, Task):
            raise TypeError("target must be a Task")
        self._syscall(task, "write", lambda c: proc_write_id_map(self, c, target, uid_map or None, gid_map,
                                                                  deny_setgroups))

    def proc(self, path: str, viewer: Task | None = None) -> str:
        """The text of ``/proc/<pid>/status`` or ``/proc/<pid>/maps`` as ``viewer`` (default: init) reads it."""

        if not isinstance(path, str):
            raise TypeError("path must be a str such as '/proc/1/status'")
        return proc_read(self, path, viewer)

    # --- time, pause and yield -------------------------------------------------------------

    def _restartable(self, c: Task, body: Callable[[Task], int]) -> int:
        """Run ``body``, or restart_syscall when the signal delivery rewound the call to it (``regs.ax`` is
        NR_RESTART_SYSCALL: arch/x86/kernel/signal.c:830-833)."""
        if c.regs.ax == NR_RESTART_SYSCALL:
            c.regs.ax = 0
            return sys_restart_syscall(self, c)
        return body(c)

    def nanosleep(self, t: Task, req: tuple[int, int], rmtp: int = 0) -> int:
        """nanosleep(2) for ``req`` = (seconds, nanoseconds) on the model clock; ``Blocked`` while it sleeps; the
        remaining time goes to user address ``rmtp`` (0: NULL) when a signal ends it (kernel/time/hrtimer.c:1948)."""

        ts = _check_timespec(req)
        _check_int("rmtp", rmtp)
        return self._syscall(t, "nanosleep", lambda c: self._restartable(c, lambda c2: sys_nanosleep(
            self, c2, ts, rmtp & U64_MASK)), (ts, rmtp & U64_MASK))

    def clock_nanosleep(self, t: Task, clockid: int, flags: int, req: tuple[int, int], rmtp: int = 0) -> int:
        """clock_nanosleep(2); TIMER_ABSTIME in ``flags`` makes ``req`` a deadline (kernel/time/posix-timers.c:1244)."""

        _check_int("clockid", clockid)
        _check_int("flags", flags)
        ts = _check_timespec(req)
        _check_int("rmtp", rmtp)
        return self._syscall(t, "clock_nanosleep", lambda c: self._restartable(c, lambda c2: sys_clock_nanosleep(
            self, c2, clockid, flags, ts, rmtp & U64_MASK)), (clockid, flags, ts, rmtp & U64_MASK))

    def hrtimer_interrupt(self) -> bool:
        """The next timer's interrupt (not a syscall): the clock jumps to the earliest hard expiry and due sleepers
        wake; False when no timer is queued (kernel/time/hrtimer.c:1611)."""

        return hrtimer_interrupt(self)

    def pause(self, t: Task) -> int:
        """pause(2): ``Blocked`` until a signal arrives; then EINTR once a handler ran (kernel/signal.c:4426)."""

        return self._syscall(t, "pause", lambda c: sys_pause(self, c))

    def sched_yield(self, t: Task) -> int:
        """sched_yield(2) (kernel/sched/core.c:5610)."""

        return self._syscall(t, "sched_yield", lambda c: do_sched_yield(self, c))

    def times(self, t: Task) -> tuple[int, Tms]:
        """times(2) -> (clock ticks since boot, struct tms in USER_HZ ticks) (kernel/sys.c:957)."""

        return self._syscall(t, "times", lambda c: sys_times(self, c))

    # --- names: getcwd, stat, unlink, mkdir --------------------------------------------------

    def getcwd(self, t: Task, size: int) -> str:
        """getcwd(2) with a buffer of ``size`` bytes -> the path (ERANGE if it does not fit) (fs/d_path.c:425)."""

        _check_int("size", size)
        return self._syscall(t, "getcwd", lambda c: sys_getcwd(self, c, size & U64_MASK), (size & U64_MASK,))

    def stat(self, t: Task, path: str) -> Kstat:
        """stat(2) (fs/stat.c:347)."""

        _check_str("path", path)
        return self._syscall(t, "stat", lambda c: sys_newstat(self, c, path), (path,))

    def lstat(self, t: Task, path: str) -> Kstat:
        """lstat(2) (fs/stat.c:358)."""

        _check_str("path", path)
        return self._syscall(t, "lstat", lambda c: sys_newlstat(self, c, path), (path,))

    def fstat(self, t: Task, fd: int) -> Kstat:
        """fstat(2) (fs/stat.c:385)."""

        _check_int("fd", fd)
        return self._syscall(t, "fstat", lambda c: sys_newfstat(self, c, fd), (fd,))

    def fstatat(self, t: Task, dfd: int, path: str, flags: int = 0) -> Kstat:
        """newfstatat(2) (fs/stat.c:372)."""

        _check_int("dfd", dfd)
        _check_str("path", path)
        _check_int("flags", flags)
        return self._syscall(t, "newfstatat", lambda c: sys_newfstatat(self, c, dfd, path, flags), (dfd, path, flags))

    def unlink(self, t: Task, path: str) -> int:
        """unlink(2) (fs/namei.c:4182)."""

        _check_str("path", path)
        return self._syscall(t, "unlink", lambda c: do_unlinkat(self, c, AT_FDCWD, path), (path,))

    def unlinkat(self, t: Task, dfd: int, path: str, flags: int = 0) -> int:
        """unlinkat(2): EINVAL for flags other than AT_REMOVEDIR, which (rmdir) the model has not
        (fs/namei.c:4171-4180)."""

        _check_int("dfd", dfd)
        _check_str("path", path)
        _check_int("flags", flags)

        def run(c: Task) -> int:
            if flags & ~AT_REMOVEDIR:
                raise kerr(errno.EINVAL, f"unlinkat flags {flags:#x}", "fs/namei.c:4174")
            if flags & AT_REMOVEDIR:
                raise Unmodelled("unlinkat(AT_REMOVEDIR): rmdir is not modelled")
            return do_unlinkat(self, c, dfd, path)

        return self._syscall(t, "unlinkat", run, (dfd, path, flags))

    def mkdir(self, t: Task, path: str, mode: int = 0o777) -> int:
        """mkdir(2) (fs/namei.c:3926)."""

        _check_str("path", path)
        _check_int("mode", mode)
        return self._syscall(t, "mkdir", lambda c: do_mkdirat(self, c, AT_FDCWD, path, mode & 0xFFFF), (path, mode))

    def mkdirat(self, t: Task, dfd: int, path: str, mode: int = 0o777) -> int:
        """mkdirat(2) (fs/namei.c:3921)."""

        _check_int("dfd", dfd)
        _check_str("path", path)
        _check_int("mode", mode)
        return self._syscall(t, "mkdirat", lambda c: do_mkdirat(self, c, dfd, path, mode & 0xFFFF), (dfd, path, mode))

    # --- invariants ---------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Raise ``InternalError`` listing every broken invariant of the whole kernel state."""

        check_invariants(self)

    def snapshot(self) -> Any:
        """A hashable, comparable snapshot of the whole kernel state."""

        return snapshot(self)
