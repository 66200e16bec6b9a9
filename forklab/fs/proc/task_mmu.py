"""The memory views of /proc/<pid> (fs/proc/task_mmu.c): status's Vm* lines and /proc/<pid>/maps.

``task_mem`` prints VmPeak..VmSwap from the mm's counters, in kB (VmLib and VmSwap are 0: no
shared libraries, no swap); ``show_map`` prints one line per vma, with the shmem file's inode
and name for shared anonymous memory and ``[stack]`` for a VM_GROWSDOWN vma. The model has no
devices, so the device field is always 00:00.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.mm_types import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, VM

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def task_mem(t: Task) -> list[str]:
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
