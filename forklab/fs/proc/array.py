"""/proc/<pid>/status and /proc/<pid>/stat as the model's tasks would show them (fs/proc/array.c).

These views are how a user compares the model with a real system: the same fields, in the
same order and format as 5.6's ``proc_pid_status`` and ``do_task_stat``, for the state the
model keeps (the Vm* lines and /proc/<pid>/maps are fs/proc/task_mmu.py, the lookup of
/proc/<pid>/... is fs/proc/base.py).

status. ``task_state`` prints the ids as the reader's pid namespace numbers them, and the
NStgid/NSpid/NSpgid/NSsid lines with one number per level of the task's struct pid from the
reader's level down, each the tgid/pid/pgrp/session as *that* level numbers it: 0 where the
process group or session lives outside it (a child in a new pid namespace still in its
parent's group). Fields the model has no state for are left out rather than invented:
Ngid (NUMA balancing) is always 0 on a kernel without it, THP_enabled, Speculation_Store_Bypass
and Mems_allowed depend on the config and the CPU, and the VmLib/VmSwap figures are 0.

stat. All 52 fields of ``do_task_stat`` in 5.6's order: those the model keeps (ids, state,
flags, faults, times in clock ticks of USER_HZ = 100, priority and nice, threads, start time,
vsize, rss, rsslim, signals, exit_signal, CPU, RT priority, policy, exit_code) from its state,
the rest 0, each named in a comment where it is printed. The model keeps no mm layout
(start_code..env_end), so those are 0 for a permitted reader, as is wchan (get_wchan needs a
frame-pointer stack walk) and kstkesp/kstkeip (only for a task dumping core). A reader may
see startcode/endcode as 1 and exit_code as 0 when ptrace_may_access refuses it; the model
decides that only for the reader's own thread group or a reader with CAP_SYS_PTRACE over the
task, and raises Unmodelled otherwise. No tty exists in the model, so tty_nr is 0 and tpgid -1.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import Unmodelled, kerr
from forklab.fs.proc.task_mmu import task_mem
from forklab.include.linux.sched import PF, PIDTYPE, Task, TaskState
from forklab.kernel.capability import ns_capable
from forklab.kernel.pid import __task_pid_nr_ns, pid_nr_ns
from forklab.kernel.sched.core import NICE_0_PRIO
from forklab.kernel.sched.rt import MAX_RT_PRIO
from forklab.kernel.signal import same_thread_group
from forklab.kernel.sys import NSEC_PER_SEC
from forklab.mm.memory import get_mm_rss
from forklab.uapi import CAP_SYS_PTRACE, PAGE_SIZE, RLIMIT_RSS, RLIMIT_SIGPENDING, SIG_DFL, SIG_IGN

if TYPE_CHECKING:
    from forklab.include.linux.pid import Pid, PidNamespace
    from forklab.state import KernelState

USER_HZ = 100  # include/asm-generic/param.h:8: the clock_t unit of /proc and times(2)
TASK_REPORT = 0x007F  # include/linux/sched.h:105-108: RUNNING..PARKED, the states /proc reports
TASK_IDLE = TaskState.TASK_UNINTERRUPTIBLE | TaskState.TASK_NOLOAD  # include/linux/sched.h:99
TASK_REPORT_IDLE = TASK_REPORT + 1  # include/linux/sched.h:1409
TASK_STATE_ARRAY = (  # fs/proc/array.c:130-144, indexed by fls(state)
    "R (running)", "S (sleeping)", "D (disk sleep)", "T (stopped)", "t (tracing stop)", "X (dead)",
    "Z (zombie)", "P (parked)", "I (idle)",
)


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


def task_state(ns: PidNamespace, pid: Pid, p: Task) -> list[str]:
    """status lines Umask..NSsid: ids as ``ns`` numbers them, then one per level of ``pid`` (fs/proc/array.c:152-227)."""
    alive = p.thread_pid is not None  # pid_alive
    ppid = __task_pid_nr_ns(p.real_parent, PIDTYPE.PIDTYPE_TGID, ns) if alive and p.real_parent is not None else 0
    tracer = p.parent if p.ptrace else None  # ptrace_parent
    tpid = __task_pid_nr_ns(tracer, PIDTYPE.PIDTYPE_PID, ns) if tracer is not None else 0
    cred = p.cred
    lines = [f"Umask:\t{p.fs.umask:04o}"] if p.fs is not None else []
    lines += [f"State:\t{get_task_state(p)}", f"Tgid:\t{__task_pid_nr_ns(p, PIDTYPE.PIDTYPE_TGID, ns)}", "Ngid:\t0",
              f"Pid:\t{pid_nr_ns(pid, ns)}", f"PPid:\t{ppid}", f"TracerPid:\t{tpid}"]
    if cred is not None:
        lines.append(f"Uid:\t{cred.uid}\t{cred.euid}\t{cred.suid}\t{cred.fsuid}")
        lines.append(f"Gid:\t{cred.gid}\t{cred.egid}\t{cred.sgid}\t{cred.fsgid}")
    lines.append(f"FDSize:\t{p.files.fdt.max_fds if p.files else 0}")
    lines.append("Groups:\t ")  # no supplementary groups in the model; the kernel's trailing space (:210)
    levels = [u.ns for u in pid.numbers[ns.level:]]  # for (g = ns->level; g <= pid->level; g++) pid->numbers[g].ns
    for label, kind in (("NStgid", PIDTYPE.PIDTYPE_TGID), ("NSpid", PIDTYPE.PIDTYPE_PID),
                        ("NSpgid", PIDTYPE.PIDTYPE_PGID), ("NSsid", PIDTYPE.PIDTYPE_SID)):
        lines.append(label + ":" + "".join(f"\t{__task_pid_nr_ns(p, kind, level)}" for level in levels))
    return lines


def task_context_switch_counts(p: Task) -> list[str]:
    """voluntary_ctxt_switches and nonvoluntary_ctxt_switches (fs/proc/array.c:373-379)."""
    return [f"voluntary_ctxt_switches:\t{p.nvcsw}", f"nonvoluntary_ctxt_switches:\t{p.nivcsw}"]


def proc_pid_status(k: KernelState, t: Task, ns: PidNamespace, pid: Pid | None = None) -> str:
    """The text of /proc/<pid>/status as a reader in pid namespace ``ns`` sees it (fs/proc/array.c:404-428)."""
    pid = pid if pid is not None else t.thread_pid
    if pid is None:
        raise kerr(errno.ESRCH, f"task {t.pid} has no struct pid any more", "fs/proc/base.c:755")
    lines = [f"Name:\t{proc_task_name(t, True)}", *task_state(ns, pid, t)]
    lines += task_mem(t)
    if t.mm is not None:
        lines.append(f"CoreDumping:\t{int(t.mm.core_state is not None)}")  # task_core_dumping (:389-393)
    lines += _task_sig(t)
    cred = t.cred
    if cred is not None:
        for label, value in (("CapInh", cred.cap_inheritable), ("CapPrm", cred.cap_permitted),
                             ("CapEff", cred.cap_effective), ("CapBnd", cred.cap_bset), ("CapAmb", cred.cap_ambient)):
            lines.append(f"{label}:\t{value:016x}")
    lines += [f"NoNewPrivs:\t{int(t.no_new_privs)}", f"Seccomp:\t{t.seccomp_mode}",
              f"Cpus_allowed:\t{_cpu_mask(t, k)}", f"Cpus_allowed_list:\t{_cpu_list(t, k)}"]
    lines += task_context_switch_counts(t)
    return "\n".join(lines) + "\n"


def _task_sig(t: Task) -> list[str]:
    """Threads, SigQ and the signal masks (fs/proc/array.c:266-316)."""
    sig = t.signal
    ignored, caught = collect_sigign_sigcatch(t)
    queued = len(t.pending.list) + (len(sig.shared_pending.list) if sig else 0)
    limit = sig.rlim[RLIMIT_SIGPENDING][0] if sig else 0
    return [f"Threads:\t{sig.nr_threads if sig else 0}", f"SigQ:\t{queued}/{limit}",
            f"SigPnd:\t{t.pending.signal:016x}", f"ShdPnd:\t{sig.shared_pending.signal if sig else 0:016x}",
            f"SigBlk:\t{t.blocked:016x}", f"SigIgn:\t{ignored:016x}", f"SigCgt:\t{caught:016x}"]


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


def _cpu_list(t: Task, k: KernelState) -> str:
    cpus = sorted(t.cpus_mask) if t.cpus_mask else list(range(k.nr_cpus))
    return f"{cpus[0]}-{cpus[-1]}" if len(cpus) > 1 and cpus == list(range(cpus[0], cpus[-1] + 1)) else ",".join(map(str, cpus))


def _cpu_mask(t: Task, k: KernelState) -> str:
    """%*pb of the allowed CPUs: hex in 32-bit chunks, highest first, the first one only as wide as nr_cpu_ids needs."""
    bits = sum(1 << c for c in (t.cpus_mask or range(k.nr_cpus)))
    chunks: list[str] = []
    first = k.nr_cpus % 32 or 32
    for i in range((k.nr_cpus + 31) // 32 * 32 - 32, -1, -32):
        width = (first + 3) // 4 if not chunks else 8
        chunks.append(f"{(bits >> i) & 0xFFFFFFFF:0{width}x}")
    return ",".join(chunks)


def _stat_permitted(viewer: Task, task: Task) -> bool:
    """do_task_stat's ``permitted`` where the model can decide it; Unmodelled otherwise (fs/proc/array.c:452).

    Decided: the reader's own thread group, and a reader with CAP_SYS_PTRACE in the task's user
    namespace and its mm's, which passes every check of __ptrace_may_access (kernel/ptrace.c:281-352).
    """
    if same_thread_group(viewer, task):
        return True
    assert task.cred is not None and task.cred.user_ns is not None
    mm_ns = task.mm.user_ns if task.mm is not None else None
    if ns_capable(viewer, task.cred.user_ns, CAP_SYS_PTRACE) and (mm_ns is None or ns_capable(viewer, mm_ns, CAP_SYS_PTRACE)):
        return True
    raise Unmodelled(f"/proc/{task.pid}/stat read by task {viewer.pid}: ptrace_may_access for a reader without "
                     "CAP_SYS_PTRACE over the task is not modelled")


def _stat_group(task: Task, ns: PidNamespace, whole: bool) -> dict[str, int]:
    """The lock_task_sighand block of do_task_stat: tty, threads, signals, child and group counters, ids (fs/proc/array.c:478-518)."""
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


def do_task_stat(viewer: Task, ns: PidNamespace, pid: Pid, task: Task, whole: bool) -> str:
    """/proc/<pid>/stat (``whole``: the thread group) or /proc/<pid>/task/<tid>/stat: 52 fields (fs/proc/array.c:430-621)."""
    permitted = _stat_permitted(viewer, task)
    mm = task.mm if not task.flags & PF.PF_KTHREAD else None  # get_task_mm
    v = _stat_group(task, ns, whole)
    if not whole:  # task_cputime_adjusted: the raw times in the model (forklab/kernel/sys.py)
        v.update(min_flt=task.min_flt, maj_flt=task.maj_flt, utime=task.utime, stime=task.stime)
    ticks = NSEC_PER_SEC // USER_HZ  # nsec_to_clock_t (kernel/time/time.c:653-667)
    fields: list[int | str] = [
        pid_nr_ns(pid, ns), f"({proc_task_name(task, False)})", get_task_state(task)[0],
        v["ppid"], v["pgid"], v["sid"], v["tty_nr"], v["tty_pgrp"], int(task.flags),
        v["min_flt"], v["cmin_flt"], v["maj_flt"], v["cmaj_flt"],
        v["utime"] // ticks, v["stime"] // ticks, v["cutime"] // ticks, v["cstime"] // ticks,
        task.prio - MAX_RT_PRIO,  # task_prio (kernel/sched/core.c:4522-4525)
        task.static_prio - NICE_0_PRIO,  # task_nice: PRIO_TO_NICE (include/linux/sched/prio.h:28)
        v["num_threads"],
        0,  # itrealvalue: always 0 since 2.6.17
        task.start_time // ticks,  # start_boottime: the model has no suspend, so it is start_time
        mm.total_vm * PAGE_SIZE if mm is not None else 0,  # task_vsize (fs/proc/task_mmu.c:81-84)
        get_mm_rss(mm) if mm is not None else 0,
        v["rsslim"],
        (0 if permitted else 1) if mm is not None else 0,  # startcode: mm->start_code, not modelled
        (0 if permitted else 1) if mm is not None else 0,  # endcode: mm->end_code, not modelled
        0,  # startstack: mm->start_stack, not modelled
        0, 0,  # kstkesp, kstkeip: only for a permitted reader of a task dumping core; no core dumps
        task.pending.signal & 0x7FFFFFFF, task.blocked & 0x7FFFFFFF, v["sigign"] & 0x7FFFFFFF,
        v["sigcatch"] & 0x7FFFFFFF,
        0,  # wchan: get_wchan's frame-pointer stack walk, not modelled
        0, 0,  # nswap, cnswap: always 0
        task.exit_signal, task.cpu, task.rt_priority, task.policy,
        0,  # delayacct_blkio_ticks: no block I/O delay accounting in the model
        0, 0,  # guest_time, cguest_time: no virtual CPUs
        0, 0, 0, 0, 0, 0, 0,  # start_data end_data start_brk arg_start arg_end env_start env_end: not modelled
        task.exit_code if permitted else 0,
    ]
    return " ".join(map(str, fields)) + "\n"


def proc_tid_stat(viewer: Task, ns: PidNamespace, pid: Pid, task: Task) -> str:
    """/proc/<pid>/task/<tid>/stat: the thread's own counters (fs/proc/array.c:623-627)."""
    return do_task_stat(viewer, ns, pid, task, False)


def proc_tgid_stat(viewer: Task, ns: PidNamespace, pid: Pid, task: Task) -> str:
    """/proc/<pid>/stat: the thread group's counters (fs/proc/array.c:629-633)."""
    return do_task_stat(viewer, ns, pid, task, True)
