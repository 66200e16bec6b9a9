"""/proc/<pid>/status, stat and statm as the model's tasks would show them (fs/proc/array.c).

These views are how a user compares the model with a real system: the same lines and fields,
in the same order and format as 5.6's ``proc_pid_status``, ``do_task_stat`` and
``proc_pid_statm``, computed from the model's state (the Vm* lines, statm's counts and the
/proc/<pid>/maps and smaps files are fs/proc/task_mmu.py; the lookup of /proc/<pid>/... is
fs/proc/base.py). docs/proc-views.md lists, field by field, what is modelled, what is a
constant of the model's configuration and what is 0 because the model keeps no state for it.

status. ``task_state`` prints the ids as the reader's pid namespace numbers them, the Uid and
Gid lines as the reader's user namespace maps them, and the NStgid/NSpid/NSpgid/NSsid lines
with one number per level of the task's struct pid from the reader's level down, each the
tgid/pid/pgrp/session as *that* level numbers it: 0 where the process group or session lives
outside it. ``SigQ`` is the queued siginfos charged to the task's user (user_struct's
sigpending, counted over every queue of the model) over RLIMIT_SIGPENDING.

stat. All 52 fields of ``do_task_stat`` in 5.6's order. The model keeps no mm layout
(start_code..env_end), so those are 0 for a permitted reader; kstkesp/kstkeip are 0 (only for
a task dumping core); wchan is 1 for a sleeping task read by another, as get_wchan would find
a frame. A reader ptrace_may_access refuses (fs/proc/internal.py) sees startcode/endcode as 1,
wchan 0 and exit_code 0. No tty exists in the model, so tty_nr is 0 and tpgid -1.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.fs.proc.internal import proc_may_access
from forklab.fs.proc.task_mmu import task_mem, task_statm, task_vsize
from forklab.include.linux.sched import (
    PF_KTHREAD,
    PIDTYPE,
    Task,
    TaskState,
)
from forklab.kernel.pid import __task_pid_nr_ns, pid_nr_ns
from forklab.kernel.sched.core import NICE_0_PRIO
from forklab.kernel.sched.rt import MAX_RT_PRIO
from forklab.kernel.sys import NSEC_PER_SEC
from forklab.kernel.user_namespace import DEFAULT_OVERFLOWUID, from_kuid_munged, map_id_up
from forklab.mm.memory import get_mm_rss
from forklab.uapi import _NSIG, RLIMIT_RSS, RLIMIT_SIGPENDING, SIG_DFL, SIG_IGN

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct
    from forklab.include.linux.pid import Pid, PidNamespace
    from forklab.include.linux.user_namespace import UserNamespace
    from forklab.state import KernelState

USER_HZ = 100  # include/asm-generic/param.h:8: the clock_t unit of /proc and times(2)
TASK_REPORT = 0x007F  # include/linux/sched.h:105-108: RUNNING..PARKED, the states /proc reports
TASK_IDLE = TaskState.TASK_UNINTERRUPTIBLE | TaskState.TASK_NOLOAD  # include/linux/sched.h:99
TASK_REPORT_IDLE = TASK_REPORT + 1  # include/linux/sched.h:1409
TASK_STATE_ARRAY = (  # fs/proc/array.c:130-144, indexed by fls(state)
    "R (running)", "S (sleeping)", "D (disk sleep)", "T (stopped)", "t (tracing stop)", "X (dead)",
    "Z (zombie)", "P (parked)", "I (idle)",
)
DEFAULT_OVERFLOWGID = 65534  # include/linux/highuid.h:42
CAP_LAST_U32 = 1  # include/linux/capability.h:30: _KERNEL_CAPABILITY_U32S - 1
# The model's configuration for the lines that depend on it (docs/proc-views.md):
CONFIG_TRANSPARENT_HUGEPAGE = False  # the model has no THP, so THP_enabled is 0 (fs/proc/array.c:395-401)
CONFIG_NODES_SHIFT = 10  # a distribution x86-64 config: MAX_NUMNODES 1024 bits in Mems_allowed
MAX_NUMNODES = 1 << CONFIG_NODES_SHIFT  # include/linux/numa.h:14
MODEL_MEMS_ALLOWED = 1  # one memory node, node 0: the model has no NUMA
SSB_NOT_AFFECTED = "not vulnerable"  # PR_SPEC_NOT_AFFECTED: the model's CPU has no X86_BUG_SPEC_STORE_BYPASS


def get_task_state(t: Task) -> str:
    """The state letter and name /proc shows: the highest reported bit of state | exit_state (fs/proc/array.c:146-150)."""
    tsk_state = int(t.state)
    state = (tsk_state | int(t.exit_state)) & TASK_REPORT  # task_state_index (include/linux/sched.h:1412-1422)
    if tsk_state == TASK_IDLE:
        state = TASK_REPORT_IDLE
    return TASK_STATE_ARRAY[state.bit_length()]


def proc_task_name(p: Task, escape: bool) -> str:
    """The comm, with newline and backslash escaped for status (fs/proc/array.c:99-122)."""
    if not escape:
        return p.comm
    return p.comm.replace("\\", "\\\\").replace("\n", "\\n")  # string_escape_str(ESCAPE_SPACE | ESCAPE_SPECIAL, "\n\\")


def _gid_in(ns: UserNamespace, kgid: int) -> int:
    """from_kgid_munged: the gid ``kgid`` has in ``ns``, or the overflow gid (as from_kuid_munged for uids)."""
    if ns.parent is None:
        return kgid
    mapped = map_id_up(list(ns.gid_map), kgid)
    return DEFAULT_OVERFLOWGID if mapped is None else mapped


def task_state(ns: PidNamespace, pid: Pid, p: Task, user_ns: UserNamespace) -> list[str]:
    """status lines Umask..NSsid: ids as ``ns`` and ``user_ns`` number them, then one per level of ``pid`` (fs/proc/array.c:152-227)."""
    alive = p.thread_pid is not None  # pid_alive
    ppid = __task_pid_nr_ns(p.real_parent, PIDTYPE.PIDTYPE_TGID, ns) if alive and p.real_parent is not None else 0
    tracer = p.parent if p.ptrace else None  # ptrace_parent
    tpid = __task_pid_nr_ns(tracer, PIDTYPE.PIDTYPE_PID, ns) if tracer is not None else 0
    cred = p.cred
    assert cred is not None  # get_task_cred: a task always has credentials
    uids = "\t".join(str(from_kuid_munged(user_ns, u)) for u in (cred.uid, cred.euid, cred.suid, cred.fsuid))
    gids = "\t".join(str(_gid_in(user_ns, g)) for g in (cred.gid, cred.egid, cred.sgid, cred.fsgid))
    lines = [f"Umask:\t{p.fs.umask:04o}"] if p.fs is not None else []  # "%#04o"
    lines += [f"State:\t{get_task_state(p)}", f"Tgid:\t{__task_pid_nr_ns(p, PIDTYPE.PIDTYPE_TGID, ns)}",
              "Ngid:\t0",  # task_numa_group_id: 0 without NUMA balancing
              f"Pid:\t{pid_nr_ns(pid, ns)}", f"PPid:\t{ppid}", f"TracerPid:\t{tpid}", f"Uid:\t{uids}", f"Gid:\t{gids}",
              f"FDSize:\t{p.files.fdt.max_fds if p.files else 0}",
              "Groups:\t ",  # no supplementary groups in the model's creds, then the kernel's trailing space (:210)
              ]
    levels = [u.ns for u in pid.numbers[ns.level:]]  # for (g = ns->level; g <= pid->level; g++) pid->numbers[g].ns
    for label, kind in (("NStgid", PIDTYPE.PIDTYPE_TGID), ("NSpid", PIDTYPE.PIDTYPE_PID),
                        ("NSpgid", PIDTYPE.PIDTYPE_PGID), ("NSsid", PIDTYPE.PIDTYPE_SID)):
        lines.append(label + ":" + "".join(f"\t{__task_pid_nr_ns(p, kind, level)}" for level in levels))
    return lines


def render_sigset_t(header: str, sigset: int) -> str:
    """A sigset as _NSIG/4 hex digits, signal _NSIG first (fs/proc/array.c:229-249)."""
    return f"{header}{sigset & ((1 << _NSIG) - 1):0{_NSIG // 4}x}"


def collect_sigign_sigcatch(p: Task) -> tuple[int, int]:
    """The sets of signals ``p`` ignores (SIG_IGN) and catches (a handler) (fs/proc/array.c:251-264)."""
    ign = catch = 0
    if p.sighand is not None:
        for i, action in enumerate(p.sighand.action):
            if action.sa_handler == SIG_IGN:
                ign |= 1 << i
            elif action.sa_handler != SIG_DFL:
                catch |= 1 << i
    return ign, catch


def user_sigpending(k: KernelState, p: Task) -> int:
    """``__task_cred(p)->user->sigpending``: the queued siginfos charged to ``p``'s user.

    __sigqueue_alloc charges each siginfo to the receiving task's user and __sigqueue_free
    uncharges it; the model keeps no counter, so this counts every queue of every task whose
    user is ``p``'s (a queue is charged to the user the receiver had when it was queued; the
    model assumes it has not changed since, see docs/proc-views.md).
    """
    user = p.cred.user if p.cred is not None else None
    if user is None:
        return 0
    count = 0
    seen: set[int] = set()
    for t in k.all_threads():
        if t.cred is None or t.cred.user is not user:
            continue
        count += len(t.pending.list)
        if t.signal is not None and id(t.signal) not in seen:
            seen.add(id(t.signal))
            count += len(t.signal.shared_pending.list)
    return count


def task_sig(k: KernelState, p: Task) -> list[str]:
    """Threads, SigQ and the five signal masks; all 0 once the sighand is gone (fs/proc/array.c:266-316)."""
    pending = shpending = blocked = ignored = caught = num_threads = qsize = qlim = 0
    sig = p.signal
    if p.sighand is not None and sig is not None:  # lock_task_sighand
        pending, shpending, blocked = p.pending.signal, sig.shared_pending.signal, p.blocked
        ignored, caught = collect_sigign_sigcatch(p)
        num_threads = sig.nr_threads  # get_nr_threads
        qsize = user_sigpending(k, p)
        qlim = sig.rlim[RLIMIT_SIGPENDING][0]  # task_rlimit
    return [f"Threads:\t{num_threads}", f"SigQ:\t{qsize}/{qlim}", render_sigset_t("SigPnd:\t", pending),
            render_sigset_t("ShdPnd:\t", shpending), render_sigset_t("SigBlk:\t", blocked),
            render_sigset_t("SigIgn:\t", ignored), render_sigset_t("SigCgt:\t", caught)]


def render_cap_t(header: str, cap: int) -> str:
    """A capability set as its u32 words, highest first, each %08x (fs/proc/array.c:318-329)."""
    words = [(cap >> (32 * i)) & 0xFFFFFFFF for i in range(CAP_LAST_U32, -1, -1)]
    return header + "".join(f"{w:08x}" for w in words)


def task_cap(p: Task) -> list[str]:
    """CapInh, CapPrm, CapEff, CapBnd and CapAmb of the task's credentials (fs/proc/array.c:331-349)."""
    cred = p.cred
    assert cred is not None
    return [render_cap_t("CapInh:\t", cred.cap_inheritable), render_cap_t("CapPrm:\t", cred.cap_permitted),
            render_cap_t("CapEff:\t", cred.cap_effective), render_cap_t("CapBnd:\t", cred.cap_bset),
            render_cap_t("CapAmb:\t", cred.cap_ambient)]


def task_seccomp(p: Task) -> list[str]:
    """NoNewPrivs, Seccomp and Speculation_Store_Bypass (fs/proc/array.c:351-385)."""
    return [f"NoNewPrivs:\t{int(p.no_new_privs)}", f"Seccomp:\t{p.seccomp_mode}",
            f"Speculation_Store_Bypass:\t{SSB_NOT_AFFECTED}"]  # arch_prctl_spec_ctrl_get: PR_SPEC_NOT_AFFECTED


def task_context_switch_counts(p: Task) -> list[str]:
    """voluntary_ctxt_switches and nonvoluntary_ctxt_switches (fs/proc/array.c:373-379)."""
    return [f"voluntary_ctxt_switches:\t{p.nvcsw}", f"nonvoluntary_ctxt_switches:\t{p.nivcsw}"]


def bitmap_hex(bits: int, nbits: int) -> str:
    """``%*pb``: the bitmap in 32-bit hex chunks, highest first, the first only as wide as its bits need.

    bitmap_string (lib/vsprintf.c) for ``nbits`` bits.
    """
    chunks: list[str] = []
    first = nbits % 32 or 32
    for i in range((nbits + 31) // 32 * 32 - 32, -1, -32):
        width = (first + 3) // 4 if not chunks else 8
        chunks.append(f"{(bits >> i) & 0xFFFFFFFF:0{width}x}")
    return ",".join(chunks)


def bitmap_ranges(bits: int) -> str:
    """``%*pbl``: the set bits as ranges, ``0-2,5`` (bitmap_list_string, lib/vsprintf.c)."""
    out: list[str] = []
    i = 0
    while bits >> i:
        if not (bits >> i) & 1:
            i += 1
            continue
        j = i
        while (bits >> (j + 1)) & 1:
            j += 1
        out.append(f"{i}-{j}" if j > i else str(i))
        i = j + 1
    return ",".join(out)


def task_cpus_allowed(k: KernelState, p: Task) -> list[str]:
    """Cpus_allowed and Cpus_allowed_list over nr_cpu_ids CPUs (fs/proc/array.c:381-387)."""
    bits = sum(1 << c for c in (p.cpus_mask or range(k.nr_cpus)))
    return [f"Cpus_allowed:\t{bitmap_hex(bits, k.nr_cpus)}", f"Cpus_allowed_list:\t{bitmap_ranges(bits)}"]


def task_core_dumping(mm: MmStruct) -> list[str]:
    """CoreDumping: whether the mm has a core_state (fs/proc/array.c:389-393)."""
    return [f"CoreDumping:\t{int(mm.core_state is not None)}"]


def task_thp_status(mm: MmStruct) -> list[str]:
    """THP_enabled: 0 on a kernel without CONFIG_TRANSPARENT_HUGEPAGE, the model's (fs/proc/array.c:395-401)."""
    return [f"THP_enabled:\t{int(CONFIG_TRANSPARENT_HUGEPAGE)}"]


def _task_mm(task: Task) -> MmStruct | None:
    """get_task_mm: the task's mm, or None for a kernel thread or a task without one."""
    return None if task.flags & PF_KTHREAD else task.mm


def proc_pid_status(k: KernelState, t: Task, ns: PidNamespace, pid: Pid | None = None,
                    viewer: Task | None = None) -> str:
    """The text of /proc/<pid>/status as ``viewer`` in pid namespace ``ns`` sees it (fs/proc/array.c:404-428).

    Without a viewer the ids are the kernel's (the initial user namespace's).
    """
    pid = pid if pid is not None else t.thread_pid
    if pid is None:
        raise kerr(errno.ESRCH, f"task {t.pid} has no struct pid any more", "fs/proc/base.c:755")
    user_ns = viewer.cred.user_ns if viewer is not None and viewer.cred is not None else None
    lines = [f"Name:\t{proc_task_name(t, True)}", *task_state(ns, pid, t, user_ns or k.init_user_ns)]
    mm = _task_mm(t)
    if mm is not None:
        lines += task_mem(mm) + task_core_dumping(mm) + task_thp_status(mm)
    lines += task_sig(k, t) + task_cap(t) + task_seccomp(t) + task_cpus_allowed(k, t)
    # cpuset_task_status_allowed (kernel/cgroup/cpuset.c:3382-3388): the one node of the model
    lines += [f"Mems_allowed:\t{bitmap_hex(MODEL_MEMS_ALLOWED, MAX_NUMNODES)}",
              f"Mems_allowed_list:\t{bitmap_ranges(MODEL_MEMS_ALLOWED)}"]
    lines += task_context_switch_counts(t)
    return "\n".join(lines) + "\n"


def _stat_group(task: Task, ns: PidNamespace, whole: bool) -> dict[str, int]:
    """The lock_task_sighand block of do_task_stat: tty, threads, signals, child and group counters, ids."""
    v = dict(tty_pgrp=-1, tty_nr=0, ppid=0, pgid=-1, sid=-1, num_threads=0, sigign=0, sigcatch=0, cmin_flt=0,
             cmaj_flt=0, min_flt=0, maj_flt=0, cutime=0, cstime=0, utime=0, stime=0, rsslim=0)
    sig = task.signal
    if task.sighand is None or sig is None:  # lock_task_sighand failed: the task is being released
        return v
    if sig.tty is not None:
        raise Unmodelled("a controlling terminal (tty_nr, tpgid): the model has no ttys")
    v["num_threads"] = sig.nr_threads
    v["sigign"], v["sigcatch"] = collect_sigign_sigcatch(task)
    v.update(cmin_flt=sig.cmin_flt, cmaj_flt=sig.cmaj_flt, cutime=sig.cutime, cstime=sig.cstime,
             rsslim=sig.rlim[RLIMIT_RSS][0])
    if whole:  # live threads, then the dead ones' sums in signal_struct; thread_group_cputime_adjusted
        v["min_flt"] = sum(t.min_flt for t in sig.thread_head) + sig.min_flt
        v["maj_flt"] = sum(t.maj_flt for t in sig.thread_head) + sig.maj_flt
        v["utime"] = sig.utime + sum(t.utime for t in sig.thread_head)
        v["stime"] = sig.stime + sum(t.stime for t in sig.thread_head)
    v["sid"] = __task_pid_nr_ns(task, PIDTYPE.PIDTYPE_SID, ns)
    v["ppid"] = __task_pid_nr_ns(task.real_parent, PIDTYPE.PIDTYPE_TGID, ns) if task.real_parent is not None else 0
    v["pgid"] = __task_pid_nr_ns(task, PIDTYPE.PIDTYPE_PGID, ns)
    return v


def _wchan(viewer: Task | None, p: Task) -> int:
    """get_wchan: nonzero when a frame outside the scheduler is found, for a sleeping task other than the reader.

    The model has no stacks; it reports 1 for a task that sleeps (not TASK_RUNNING) and still
    has its stack (not yet exited), which is when the stack walk finds a frame.
    """
    if p is viewer or p.state == TaskState.TASK_RUNNING or p.exit_state != TaskState.TASK_RUNNING:
        return 0
    return 1


def do_task_stat(viewer: Task | None, ns: PidNamespace, pid: Pid, task: Task, whole: bool) -> str:
    """/proc/<pid>/stat (``whole``: the thread group) or /proc/<pid>/task/<tid>/stat: 52 fields (fs/proc/array.c:430-621).

    ``viewer`` None is a reader every check lets through.
    """
    permitted = viewer is None or proc_may_access(viewer, task)  # PTRACE_MODE_READ_FSCREDS | PTRACE_MODE_NOAUDIT
    mm = _task_mm(task)
    v = _stat_group(task, ns, whole)
    wchan = _wchan(viewer, task) if permitted and (not whole or v["num_threads"] < 2) else 0
    if not whole:  # task_cputime_adjusted: the raw times in the model (forklab/kernel/sys.py)
        v.update(min_flt=task.min_flt, maj_flt=task.maj_flt, utime=task.utime, stime=task.stime)
    ticks = NSEC_PER_SEC // USER_HZ  # nsec_to_clock_t (kernel/time/time.c:653-667)
    fields: list[int | str] = [
        pid_nr_ns(pid, ns), f"({proc_task_name(task, False)})", get_task_state(task)[0],
        v["ppid"], v["pgid"], v["sid"], v["tty_nr"], v["tty_pgrp"], task.flags,
        v["min_flt"], v["cmin_flt"], v["maj_flt"], v["cmaj_flt"],
        v["utime"] // ticks, v["stime"] // ticks, v["cutime"] // ticks, v["cstime"] // ticks,
        task.prio - MAX_RT_PRIO,  # task_prio (kernel/sched/core.c:4522-4525)
        task.static_prio - NICE_0_PRIO,  # task_nice: PRIO_TO_NICE (include/linux/sched/prio.h:28)
        v["num_threads"],
        0,  # itrealvalue: always 0 since 2.6.17
        task.start_time // ticks,  # start_boottime: the model has no suspend, so it is start_time
        task_vsize(mm) if mm is not None else 0,
        get_mm_rss(mm) if mm is not None else 0,
        v["rsslim"],
        (0 if permitted else 1) if mm is not None else 0,  # startcode: mm->start_code, not modelled
        (0 if permitted else 1) if mm is not None else 0,  # endcode: mm->end_code, not modelled
        0,  # startstack: mm->start_stack, not modelled
        0, 0,  # kstkesp, kstkeip: only for a permitted reader of a task dumping core; no core dumps
        task.pending.signal & 0x7FFFFFFF, task.blocked & 0x7FFFFFFF, v["sigign"] & 0x7FFFFFFF,
        v["sigcatch"] & 0x7FFFFFFF,
        1 if wchan else 0,
        0, 0,  # nswap, cnswap: always 0
        task.exit_signal, task.cpu, task.rt_priority, task.policy,
        0,  # delayacct_blkio_ticks: no block I/O delay accounting in the model
        0, 0,  # guest_time, cguest_time: no virtual CPUs
        0, 0, 0, 0, 0, 0, 0,  # start_data end_data start_brk arg_start arg_end env_start env_end: not modelled
        task.exit_code if permitted else 0,
    ]
    return " ".join(map(str, fields)) + "\n"


def proc_tid_stat(viewer: Task | None, ns: PidNamespace, pid: Pid, task: Task) -> str:
    """/proc/<pid>/task/<tid>/stat: the thread's own counters (fs/proc/array.c:623-627)."""
    return do_task_stat(viewer, ns, pid, task, False)


def proc_tgid_stat(viewer: Task | None, ns: PidNamespace, pid: Pid, task: Task) -> str:
    """/proc/<pid>/stat: the thread group's counters (fs/proc/array.c:629-633)."""
    return do_task_stat(viewer, ns, pid, task, True)


def proc_pid_statm(task: Task) -> str:
    """/proc/<pid>/statm: size resident shared text lib(0) data dt(0), in pages (fs/proc/array.c:635-661)."""
    mm = _task_mm(task)
    size = resident = shared = text = data = 0
    if mm is not None:
        size, shared, text, data, resident = task_statm(mm)
    return f"{size} {resident} {shared} {text} 0 {data} 0\n"


__all__ = ["DEFAULT_OVERFLOWUID", "do_task_stat", "get_task_state", "proc_pid_statm", "proc_pid_status",
           "proc_tgid_stat", "proc_tid_stat"]
