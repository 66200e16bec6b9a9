"""/proc/<pid>/status and /proc/<pid>/maps as the model's tasks would show them (fs/proc/array.c, task_mmu.c).

These views are how a user compares the model with a real system: the same fields, in the
same order and format as 5.6's ``proc_pid_status`` and ``show_map``, for the state the model
keeps. Fields the model has no state for (cgroup-v1 lines, NUMA, context-switch counters that
need a CPU) are left out rather than invented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.mm_types import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, VM
from forklab.include.linux.sched import PIDTYPE, Task, TaskState
from forklab.kernel.pid import pid_nr_ns, task_active_pid_ns

if TYPE_CHECKING:
    from forklab.include.linux.pid import PidNamespace
    from forklab.state import KernelState

TASK_STATE_ARRAY = (  # fs/proc/array.c:129-140
    (TaskState.TASK_RUNNING, "R (running)"),
    (TaskState.TASK_INTERRUPTIBLE, "S (sleeping)"),
    (TaskState.TASK_UNINTERRUPTIBLE, "D (disk sleep)"),
    (TaskState.TASK_STOPPED, "T (stopped)"),
)


def get_task_state(t: Task) -> str:
    """The one-letter state and its name (fs/proc/array.c:142-149)."""
    if t.exit_state == TaskState.EXIT_ZOMBIE:
        return "Z (zombie)"
    if t.exit_state == TaskState.EXIT_DEAD:
        return "X (dead)"
    if t.state == TaskState.TASK_NEW:
        return "R (running)"
    for bit, name in TASK_STATE_ARRAY[1:]:
        if t.state & bit:
            return name
    return TASK_STATE_ARRAY[0][1]


def _ids(t: Task, ns: PidNamespace, kind: PIDTYPE) -> list[int]:
    pid = t.thread_pid if kind == PIDTYPE.PIDTYPE_PID else (t.signal.pids[kind] if t.signal else None)
    if pid is None:
        return [0]
    return [u.nr for u in pid.numbers[ns.level:]] or [0]


def proc_pid_status(k: KernelState, t: Task, ns: PidNamespace) -> str:
    """The text of /proc/<pid>/status as a reader in pid namespace ``ns`` sees it (fs/proc/array.c:390-420)."""
    lines = [f"Name:\t{t.comm[:15]}"]
    if t.fs is not None:
        lines.append(f"Umask:\t{t.fs.umask:04o}")
    leader_pid = t.group_leader.thread_pid if t.group_leader else None
    parent = t.real_parent
    ppid = pid_nr_ns(parent.group_leader.thread_pid if parent and parent.group_leader else None, ns) if t.pid else 0
    tracer = pid_nr_ns(t.parent.thread_pid, ns) if t.ptrace and t.parent is not None else 0
    cred = t.cred
    lines += [f"State:\t{get_task_state(t)}", f"Tgid:\t{pid_nr_ns(leader_pid, ns)}", "Ngid:\t0",
              f"Pid:\t{pid_nr_ns(t.thread_pid, ns)}", f"PPid:\t{ppid}", f"TracerPid:\t{tracer}"]
    if cred is not None:
        lines.append(f"Uid:\t{cred.uid}\t{cred.euid}\t{cred.suid}\t{cred.fsuid}")
        lines.append(f"Gid:\t{cred.gid}\t{cred.egid}\t{cred.sgid}\t{cred.fsgid}")
    lines.append(f"FDSize:\t{t.files.fdt.max_fds if t.files else 0}")
    lines.append("Groups:\t")
    for label, kind in (("NStgid", PIDTYPE.PIDTYPE_TGID), ("NSpid", PIDTYPE.PIDTYPE_PID),
                        ("NSpgid", PIDTYPE.PIDTYPE_PGID), ("NSsid", PIDTYPE.PIDTYPE_SID)):
        task = t.group_leader if kind == PIDTYPE.PIDTYPE_TGID and t.group_leader else t
        lines.append(f"{label}:\t" + "\t".join(map(str, _ids(task, ns, kind))))
    lines += _task_mem(t)
    lines += _task_sig(t)
    if cred is not None:
        for label, value in (("CapInh", cred.cap_inheritable), ("CapPrm", cred.cap_permitted),
                             ("CapEff", cred.cap_effective), ("CapBnd", cred.cap_bset), ("CapAmb", cred.cap_ambient)):
            lines.append(f"{label}:\t{value:016x}")
    lines += [f"NoNewPrivs:\t{int(t.no_new_privs)}", f"Seccomp:\t{t.seccomp_mode}",
              f"Cpus_allowed_list:\t{_cpu_list(t, k)}"]
    return "\n".join(lines) + "\n"


def _task_mem(t: Task) -> list[str]:
    """VmSize..VmSwap (fs/proc/task_mmu.c:30-80), in kB."""
    mm = t.mm
    if mm is None:
        return []
    kb = 4  # pages to kB
    rss = mm.rss_stat
    anon, file, shmem = rss[MM_ANONPAGES], rss[MM_FILEPAGES], rss[MM_SHMEMPAGES]
    total_rss = anon + file + shmem
    return [f"VmPeak:\t{max(mm.hiwater_vm, mm.total_vm) * kb:8d} kB", f"VmSize:\t{mm.total_vm * kb:8d} kB",
            f"VmLck:\t{mm.locked_vm * kb:8d} kB", f"VmPin:\t{mm.pinned_vm * kb:8d} kB",
            f"VmHWM:\t{max(mm.hiwater_rss, total_rss) * kb:8d} kB", f"VmRSS:\t{total_rss * kb:8d} kB",
            f"RssAnon:\t{anon * kb:8d} kB", f"RssFile:\t{file * kb:8d} kB", f"RssShmem:\t{shmem * kb:8d} kB",
            f"VmData:\t{mm.data_vm * kb:8d} kB", f"VmStk:\t{mm.stack_vm * kb:8d} kB",
            f"VmExe:\t{mm.exec_vm * kb:8d} kB", "VmLib:\t       0 kB",
            f"VmPTE:\t{mm.pgtables_bytes // 1024:8d} kB", "VmSwap:\t       0 kB"]


def _task_sig(t: Task) -> list[str]:
    """Threads, SigQ and the signal masks (fs/proc/array.c:262-300)."""
    sig, sighand = t.signal, t.sighand
    ignored = caught = 0
    if sighand is not None:
        for i, action in enumerate(sighand.action):
            if action.sa_handler == 1:
                ignored |= 1 << i
            elif action.sa_handler != 0:
                caught |= 1 << i
    queued = len(t.pending.list) + (len(sig.shared_pending.list) if sig else 0)
    limit = sig.rlim[11][0] if sig else 0
    return [f"Threads:\t{sig.nr_threads if sig else 0}", f"SigQ:\t{queued}/{limit}",
            f"SigPnd:\t{t.pending.signal:016x}", f"ShdPnd:\t{sig.shared_pending.signal if sig else 0:016x}",
            f"SigBlk:\t{t.blocked:016x}", f"SigIgn:\t{ignored:016x}", f"SigCgt:\t{caught:016x}"]


def _cpu_list(t: Task, k: KernelState) -> str:
    cpus = sorted(t.cpus_mask) if t.cpus_mask else list(range(k.nr_cpus))
    return f"{cpus[0]}-{cpus[-1]}" if len(cpus) > 1 and cpus == list(range(cpus[0], cpus[-1] + 1)) else ",".join(map(str, cpus))


def show_map(t: Task) -> str:
    """/proc/<pid>/maps: one line per vma (fs/proc/task_mmu.c:279-340)."""
    if t.mm is None:
        return ""
    out = []
    for vma in t.mm.mmap:
        flags = vma.vm_flags
        perms = ("r" if flags & VM.VM_READ else "-") + ("w" if flags & VM.VM_WRITE else "-") + \
                ("x" if flags & VM.VM_EXEC else "-") + ("s" if flags & VM.VM_MAYSHARE else "p")
        inode = vma.vm_file.f_inode.i_ino if vma.vm_file is not None else 0
        offset = vma.vm_pgoff << 12 if vma.vm_file is not None else 0
        name = vma.vm_file.f_inode.name if vma.vm_file is not None else ("[stack]" if flags & VM.VM_GROWSDOWN else "")
        line = f"{vma.vm_start:08x}-{vma.vm_end:08x} {perms} {offset:08x} 00:00 {inode} "
        out.append((line.ljust(73) + name) if name else line)
    return "\n".join(out) + ("\n" if out else "")


def proc_read(k: KernelState, path: str, viewer: Task | None = None) -> str:
    """Read /proc/<pid>/status or /proc/<pid>/maps, the pid as ``viewer``'s namespace numbers it (fs/proc/base.c:3280-3300)."""
    from forklab.errors import kerr
    from forklab.kernel.pid import find_task_by_pid_ns

    ns = task_active_pid_ns(viewer) if viewer is not None else k.init_pid_ns
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "proc" or parts[2] not in ("status", "maps") or not parts[1].isdigit():
        raise kerr(2, f"{path}: the model's /proc has <pid>/status and <pid>/maps", "fs/proc/base.c:3280")
    task = find_task_by_pid_ns(int(parts[1]), ns)
    if task is None:
        raise kerr(2, f"{path}: no such process in the reader's pid namespace", "fs/proc/base.c:3289")
    return proc_pid_status(k, task, ns) if parts[2] == "status" else show_map(task)
