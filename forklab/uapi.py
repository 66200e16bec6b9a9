"""User-visible constants: the values of Linux 5.6's uapi headers (x86-64).

Sources: include/uapi/linux/sched.h, include/uapi/asm-generic/signal.h,
include/uapi/asm-generic/mman-common.h, include/uapi/asm-generic/resource.h,
include/uapi/linux/capability.h, include/uapi/linux/prctl.h, include/uapi/linux/ptrace.h,
include/uapi/linux/wait.h, include/uapi/asm-generic/fcntl.h.
"""

from __future__ import annotations

# include/uapi/linux/sched.h:10-43
CSIGNAL = 0x000000FF
CLONE_NEWTIME = 0x00000080
CLONE_VM = 0x00000100
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_SIGHAND = 0x00000800
CLONE_PIDFD = 0x00001000
CLONE_PTRACE = 0x00002000
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000
CLONE_NEWNS = 0x00020000
CLONE_SYSVSEM = 0x00040000
CLONE_SETTLS = 0x00080000
CLONE_PARENT_SETTID = 0x00100000
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_DETACHED = 0x00400000
CLONE_UNTRACED = 0x00800000
CLONE_CHILD_SETTID = 0x01000000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_IO = 0x80000000
CLONE_CLEAR_SIGHAND = 0x100000000

CLONE_INTO_CGROUP = 0x200000000  # 5.7+: not in 5.6 (forklab.version "clone_into_cgroup")

CLONE_ARGS_SIZE_VER0 = 64  # sched.h:103
CLONE_ARGS_SIZE_VER1 = 80  # sched.h:104
CLONE_ARGS_SIZE_VER2 = 88  # 5.7+
SCHED_RESET_ON_FORK = 0x40000000

CLONE_FLAG_NAMES: dict[int, str] = {
    CLONE_NEWTIME: "CLONE_NEWTIME",
    CLONE_VM: "CLONE_VM",
    CLONE_FS: "CLONE_FS",
    CLONE_FILES: "CLONE_FILES",
    CLONE_SIGHAND: "CLONE_SIGHAND",
    CLONE_PIDFD: "CLONE_PIDFD",
    CLONE_PTRACE: "CLONE_PTRACE",
    CLONE_VFORK: "CLONE_VFORK",
    CLONE_PARENT: "CLONE_PARENT",
    CLONE_THREAD: "CLONE_THREAD",
    CLONE_NEWNS: "CLONE_NEWNS",
    CLONE_SYSVSEM: "CLONE_SYSVSEM",
    CLONE_SETTLS: "CLONE_SETTLS",
    CLONE_PARENT_SETTID: "CLONE_PARENT_SETTID",
    CLONE_CHILD_CLEARTID: "CLONE_CHILD_CLEARTID",
    CLONE_DETACHED: "CLONE_DETACHED",
    CLONE_UNTRACED: "CLONE_UNTRACED",
    CLONE_CHILD_SETTID: "CLONE_CHILD_SETTID",
    CLONE_NEWCGROUP: "CLONE_NEWCGROUP",
    CLONE_NEWUTS: "CLONE_NEWUTS",
    CLONE_NEWIPC: "CLONE_NEWIPC",
    CLONE_NEWUSER: "CLONE_NEWUSER",
    CLONE_NEWPID: "CLONE_NEWPID",
    CLONE_NEWNET: "CLONE_NEWNET",
    CLONE_IO: "CLONE_IO",
    CLONE_CLEAR_SIGHAND: "CLONE_CLEAR_SIGHAND",
    CLONE_INTO_CGROUP: "CLONE_INTO_CGROUP",
}


def clone_flags_str(flags: int) -> str:
    """Render a clone flags word as ``CLONE_A|CLONE_B|sig``, as strace does."""
    parts = [name for bit, name in CLONE_FLAG_NAMES.items() if bit != CLONE_NEWTIME and flags & bit]
    rest = flags & ~sum(b for b in CLONE_FLAG_NAMES if b != CLONE_NEWTIME) & ~CSIGNAL
    if flags & CSIGNAL:
        parts.append(SIGNAL_NAMES.get(flags & CSIGNAL, str(flags & CSIGNAL)))
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "0"


# include/uapi/asm-generic/signal.h (x86-64 numbering)
SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU = 16, 17, 18, 19, 20, 21, 22
SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO = 23, 24, 25, 26, 27, 28, 29
SIGPWR, SIGSYS = 30, 31
SIGRTMIN = 32
SIGRTMAX = 64
_NSIG = 64
SIGNAL_NAMES: dict[int, str] = {
    value: name
    for name, value in dict(globals()).items()
    if name.startswith("SIG") and not name.startswith(("SIG_", "SIGRT", "SIGNAL")) and isinstance(value, int)
}
SIGPOLL = SIGIO  # include/uapi/asm-generic/signal.h:41, after SIGNAL_NAMES so that 29 keeps the name SIGIO
SIG_DFL = 0
SIG_IGN = 1
SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000
SA_RESTORER = 0x04000000
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
SS_DISABLE = 2

# include/uapi/asm-generic/mman-common.h, mman.h
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM = 0x0, 0x1, 0x2, 0x4, 0x8
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_32BIT = 0x40  # arch/x86/include/uapi/asm/mman.h
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_HUGE_SHIFT = 26  # include/uapi/asm-generic/hugetlb_encode.h
MAP_FAILED = -1
MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED = 0, 1, 2, 3, 4
MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK = 8, 9, 10, 11
MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 12, 13, 14, 15
MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK = 16, 17, 18, 19
MADV_COLD, MADV_PAGEOUT = 20, 21
MADV_HWPOISON, MADV_SOFT_OFFLINE = 100, 101
PAGE_SHIFT = 12  # arch/x86/include/asm/page_types.h:10
PAGE_SIZE = 1 << PAGE_SHIFT

# include/uapi/asm-generic/resource.h (x86-64 order)
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_RSS = 0, 1, 2, 3, 4, 5
RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_LOCKS = 6, 7, 8, 9, 10
RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_RTPRIO, RLIMIT_RTTIME = 11, 12, 13, 14, 15
RLIM_NLIMITS = 16
RLIM_INFINITY = 2**64 - 1
_STK_LIM = 8 * 1024 * 1024  # include/uapi/linux/resource.h:66
MLOCK_LIMIT = max(PAGE_SIZE, 64 * 1024)  # include/uapi/linux/resource.h:72
INR_OPEN_CUR, INR_OPEN_MAX = 1024, 4096  # include/uapi/linux/fs.h:37-38
MQ_BYTES_MAX = 819200  # include/uapi/linux/mqueue.h:26

# include/uapi/linux/capability.h
CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_LINUX_IMMUTABLE = 5, 6, 7, 8, 9
CAP_NET_BIND_SERVICE, CAP_NET_BROADCAST, CAP_NET_ADMIN, CAP_NET_RAW = 10, 11, 12, 13
CAP_IPC_LOCK, CAP_IPC_OWNER, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_CHROOT = 14, 15, 16, 17, 18
CAP_SYS_PTRACE, CAP_SYS_PACCT, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_NICE = 19, 20, 21, 22, 23
CAP_SYS_RESOURCE, CAP_SYS_TIME, CAP_SYS_TTY_CONFIG, CAP_MKNOD, CAP_LEASE = 24, 25, 26, 27, 28
CAP_AUDIT_WRITE, CAP_AUDIT_CONTROL, CAP_SETFCAP, CAP_MAC_OVERRIDE, CAP_MAC_ADMIN = 29, 30, 31, 32, 33
CAP_SYSLOG, CAP_WAKE_ALARM, CAP_BLOCK_SUSPEND, CAP_AUDIT_READ = 34, 35, 36, 37
CAP_LAST_CAP = CAP_AUDIT_READ
CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE = 38, 39, 40  # 5.8 and 5.9; the 6.18 profile only
CAP_FULL_SET = (1 << (CAP_LAST_CAP + 1)) - 1

# include/uapi/linux/prctl.h
PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2
PR_SET_NAME, PR_GET_NAME = 15, 16
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39

# include/uapi/linux/ptrace.h
PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_DETACH = 0, 16, 17
PTRACE_SETOPTIONS, PTRACE_GETEVENTMSG = 0x4200, 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK, PTRACE_EVENT_CLONE = 1, 2, 3
PTRACE_EVENT_EXEC, PTRACE_EVENT_VFORK_DONE, PTRACE_EVENT_EXIT = 4, 5, 6
PTRACE_O_TRACESYSGOOD = 1
PTRACE_O_TRACEFORK = 1 << PTRACE_EVENT_FORK
PTRACE_O_TRACEVFORK = 1 << PTRACE_EVENT_VFORK
PTRACE_O_TRACECLONE = 1 << PTRACE_EVENT_CLONE
PTRACE_O_TRACEEXEC = 1 << PTRACE_EVENT_EXEC
PTRACE_O_TRACEVFORKDONE = 1 << PTRACE_EVENT_VFORK_DONE
PTRACE_O_TRACEEXIT = 1 << PTRACE_EVENT_EXIT
PTRACE_O_EXITKILL = 1 << 20
PTRACE_O_MASK = 0x000000FF | PTRACE_O_EXITKILL | (1 << 21)

# include/uapi/linux/wait.h
WNOHANG, WUNTRACED, WSTOPPED, WEXITED, WCONTINUED, WNOWAIT = 1, 2, 2, 4, 8, 0x01000000
__WNOTHREAD, __WALL, __WCLONE = 0x20000000, 0x40000000, 0x80000000
P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3

# include/uapi/asm-generic/siginfo.h: si_code values
SI_USER, SI_KERNEL, SI_QUEUE, SI_TIMER, SI_SIGIO, SI_TKILL = 0, 0x80, -1, -2, -5, -6
SEGV_MAPERR = 1  # siginfo.h:221
# how many si_codes each fault-like signal has (siginfo.h:196-287); x86 has no SIGEMT
NSIGILL, NSIGFPE, NSIGSEGV, NSIGBUS, NSIGTRAP, NSIGCHLD, NSIGPOLL, NSIGSYS = 11, 15, 7, 5, 5, 6, 6, 1
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6

# include/uapi/linux/resource.h
RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_BOTH, RUSAGE_THREAD = 0, -1, -2, 1

# include/uapi/linux/pidfd.h and poll
PIDFD_NONBLOCK = 0o4000  # 5.10; in 5.6 pidfd_open takes no flags
POLLIN = 0x0001

# include/uapi/asm-generic/fcntl.h
O_RDONLY, O_WRONLY, O_RDWR, O_ACCMODE = 0, 1, 2, 3
O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND, O_NONBLOCK = 0o100, 0o200, 0o400, 0o1000, 0o2000, 0o4000
O_DIRECTORY, O_CLOEXEC = 0o200000, 0o2000000
O_DSYNC, FASYNC, O_DIRECT, O_LARGEFILE = 0o10000, 0o20000, 0o40000, 0o100000
O_NOFOLLOW, O_NOATIME, O_PATH = 0o400000, 0o1000000, 0o10000000
__O_SYNC, __O_TMPFILE = 0o4000000, 0o20000000
O_SYNC, O_TMPFILE = __O_SYNC | O_DSYNC, __O_TMPFILE | O_DIRECTORY
O_NDELAY = O_NONBLOCK
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_DUPFD_CLOEXEC = 1030
FD_CLOEXEC = 1
SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4  # include/uapi/linux/fs.h:42-47
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100  # include/uapi/linux/fcntl.h:90
AT_REMOVEDIR = 0x200  # include/uapi/linux/fcntl.h:91
AT_EMPTY_PATH = 0x1000  # include/uapi/linux/fcntl.h:96

# include/uapi/linux/sched.h scheduling policies
SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE = 0, 1, 2, 3, 5, 6


# struct clone_args (include/uapi/linux/sched.h:89-100)
from dataclasses import dataclass as _dataclass  # noqa: E402


@_dataclass(slots=True, frozen=True)
class SigInfo:
    """The siginfo_t waitid(2) fills in for a child (include/uapi/asm-generic/siginfo.h, kernel/exit.c:1550-1580).

    ``si_signo`` is SIGCHLD; ``si_code`` a CLD_* code; ``si_status`` the exit status or the signal.
    """

    si_signo: int
    si_code: int
    si_pid: int
    si_uid: int
    si_status: int


class WaitResult(tuple[int, int]):
    """What wait4(2) returns, ``(pid, wstatus)``, with the reaped child's ``rusage`` as an attribute (all zeros
    when none was reaped, or the caller passed no rusage)."""

    rusage: Rusage

    def __new__(cls, pid: int, status: int, rusage: Rusage | None = None) -> WaitResult:
        self = super().__new__(cls, (pid, status))
        self.rusage = rusage if rusage is not None else NO_RUSAGE
        return self


@_dataclass(slots=True, frozen=True)
class Timeval:
    """struct timeval (include/uapi/linux/time.h:16-19)."""

    tv_sec: int = 0
    tv_usec: int = 0


@_dataclass(slots=True, frozen=True)
class Rusage:
    """struct rusage (include/uapi/linux/resource.h:24-43); fields the kernel does not maintain stay 0."""

    ru_utime: Timeval = Timeval()
    ru_stime: Timeval = Timeval()
    ru_maxrss: int = 0
    ru_ixrss: int = 0
    ru_idrss: int = 0
    ru_isrss: int = 0
    ru_minflt: int = 0
    ru_majflt: int = 0
    ru_nswap: int = 0
    ru_inblock: int = 0
    ru_oublock: int = 0
    ru_msgsnd: int = 0
    ru_msgrcv: int = 0
    ru_nsignals: int = 0
    ru_nvcsw: int = 0
    ru_nivcsw: int = 0


NO_RUSAGE = Rusage()  # a WaitResult's rusage when there is none to report; frozen, so one serves every result


@_dataclass(slots=True)
class CloneArgs:
    """struct clone_args for clone3(2): every field as in the kernel (all ``__aligned_u64``).

    ``set_tid`` is either the address of an int array in the caller's memory, or a Python list
    of pids (then ``set_tid_size`` defaults to its length).
    """

    flags: int = 0
    pidfd: int = 0
    child_tid: int = 0
    parent_tid: int = 0
    exit_signal: int = 0
    stack: int = 0
    stack_size: int = 0
    tls: int = 0
    set_tid: int | list[int] = 0
    set_tid_size: int | None = None
    cgroup: int = 0  # 5.7+ (CLONE_ARGS_SIZE_VER2); ignored by the 5.6 profile, whose struct ends at 80

    def to_bytes(self) -> bytes:
        """The 88-byte little-endian struct as user space lays it out; a list ``set_tid`` counts as address 0."""
        set_tid = self.set_tid if isinstance(self.set_tid, int) else 0
        size = self.set_tid_size if self.set_tid_size is not None else (
            len(self.set_tid) if isinstance(self.set_tid, list) else 0)
        fields = (self.flags, self.pidfd, self.child_tid, self.parent_tid, self.exit_signal,
                  self.stack, self.stack_size, self.tls, set_tid, size, self.cgroup)
        return b"".join((v & (2**64 - 1)).to_bytes(8, "little") for v in fields)
