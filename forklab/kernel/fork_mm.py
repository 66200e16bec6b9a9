"""The mm half of fork: copy_mm, dup_mm, mm_init, dup_mmap, mmget/mmput/mmdrop (kernel/fork.c).

Design essay
------------
These functions are written to be folded into forklab/kernel/fork.py; they keep the kernel's
names and cite kernel/fork.c lines of 5.6.4.

``copy_mm`` resets the child's fault/switch counters and either shares the caller's mm
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
from dataclasses import fields
from typing import TYPE_CHECKING, cast

from forklab.errors import InternalError, kerr
from forklab.include.linux.mm_types import NR_MM_COUNTERS, VM, MmStruct
from forklab.kernel.user_namespace import get_user_ns, put_user_ns
from forklab.mm.memory import copy_page_range, get_mm_rss, vma_pages
from forklab.mm.mmap import (
    exit_mmap,
    security_vm_enough_memory_mm,
    vm_area_dup,
    vm_stat_account,
    vm_unacct_memory,
    vma_next_of,
    vma_prev_of,
)
from forklab.mm.page_alloc import MmKernel
from forklab.mm.rmap import anon_vma_fork, anon_vma_prepare
from forklab.uapi import CLONE_VM

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.include.linux.user_namespace import UserNamespace
    from forklab.syscalls import Kernel

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
    from forklab.kernel.signal import fatal_signal_pending

    return fatal_signal_pending(t)


def allocate_mm(k: MmKernel, site: str) -> MmStruct | None:
    """kmem_cache_alloc(mm_cachep) (kernel/fork.c:679)."""
    if k.fault.should_fail(site):
        return None
    return MmStruct()


def mm_init_owner(mm: MmStruct, p: Task | None) -> None:
    """mm->owner = p (kernel/fork.c:992-997)."""
    mm.owner = p


def mm_init(k: MmKernel, mm: MmStruct, p: Task | None, user_ns: UserNamespace | None) -> MmStruct | None:
    """Reset the per-mm state, allocate the pgd, take the user_ns reference (kernel/fork.c:1006-1057)."""
    mm.mmap = []
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


def mm_alloc(k: MmKernel) -> MmStruct | None:
    """A fresh empty mm for exec or boot, in the current task's user namespace (kernel/fork.c:1062-1072)."""
    mm = allocate_mm(k, "mm_alloc:allocate_mm")
    if mm is None:
        return None
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


def __mmdrop(k: MmKernel, mm: MmStruct) -> None:
    """Free the pgd and the mm, drop its user_ns reference (kernel/fork.c:688-700)."""
    check_mm(mm)
    ns = mm.user_ns
    mm.user_ns = None
    if ns is not None:
        put_user_ns(cast("Kernel", k), ns)
    k.trace("__mmdrop", "kernel/fork.c:688", f"mm ctx {mm.context_id} freed")


def mmdrop(k: MmKernel, mm: MmStruct) -> None:
    """mm_count--; the last reference frees the struct (include/linux/sched/mm.h:41-49)."""
    mm.mm_count -= 1
    if mm.mm_count < 0:
        raise InternalError("mm_count underflow")
    if mm.mm_count == 0:
        __mmdrop(k, mm)


def set_mm_exe_file(k: MmKernel, mm: MmStruct, new_exe_file: object | None) -> None:
    """Replace mm->exe_file, dropping the old reference (kernel/fork.c:1136-1150)."""
    old = mm.exe_file
    mm.exe_file = None
    if new_exe_file is not None:
        raise InternalError("set_mm_exe_file with a new file is exec's business")
    if old is not None:
        from forklab.fs.file_table import fput

        fput(cast("Kernel", k), old)


def __mmput(k: MmKernel, mm: MmStruct) -> None:
    """Last user gone: unmap everything, drop exe_file, then mmdrop (kernel/fork.c:1075-1093)."""
    if mm.mm_users != 0:
        raise InternalError("__mmput with users left")
    exit_mmap(k, mm)
    set_mm_exe_file(k, mm, None)
    mmdrop(k, mm)


def mmput(k: MmKernel, mm: MmStruct) -> None:
    """mm_users--; the last user tears the address space down (kernel/fork.c:1098-1104)."""
    mm.mm_users -= 1
    if mm.mm_users < 0:
        raise InternalError("mm_users underflow")
    if mm.mm_users == 0:
        __mmput(k, mm)


def dup_mmap(k: MmKernel, mm: MmStruct, oldmm: MmStruct) -> int:
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
        tmp.vm_flags = VM(int(tmp.vm_flags) & ~(VM.VM_LOCKED | VM.VM_LOCKONFAULT))
        if tmp.vm_file is not None:
            tmp.vm_file.f_count += 1  # get_file
        mm.mmap.append(tmp)  # *pprev = tmp: parent order is address order
        mm.map_count += 1
        if not tmp.vm_flags & VM.VM_WIPEONFORK:
            retval = copy_page_range(k, mm, oldmm, mpnt)
        if retval:
            break
    k.trace("dup_mmap", "kernel/fork.c:481", f"{len(mm.mmap)} of {len(oldmm.mmap)} vmas, rss {get_mm_rss(mm)}")
    return retval


def _memcpy_mm(oldmm: MmStruct) -> MmStruct:
    mm = MmStruct()
    for f in fields(MmStruct):
        setattr(mm, f.name, getattr(oldmm, f.name))
    mm.rss_stat = list(oldmm.rss_stat)
    return mm


def dup_mm(k: MmKernel, tsk: Task, oldmm: MmStruct) -> MmStruct | None:
    """Allocate a copy of ``oldmm`` for ``tsk``; None on any failure (kernel/fork.c:1345-1380)."""
    if allocate_mm(k, "dup_mm:allocate_mm") is None:
        return None
    mm = _memcpy_mm(oldmm)
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


def copy_mm(k: MmKernel, clone_flags: int, p: Task, current: Task) -> None:
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
    else:
        dup = dup_mm(k, p, oldmm)
        if dup is None:
            raise kerr(errno.ENOMEM, "dup_mm failed (allocation, overcommit or fatal signal)", "kernel/fork.c:1416")
        mm = dup
    p.mm = p.active_mm = mm


__all__ = [
    "copy_mm",
    "dup_mm",
    "dup_mmap",
    "mm_alloc",
    "mm_init",
    "mmdrop",
    "mmget",
    "mmput",
    "set_mm_exe_file",
]
