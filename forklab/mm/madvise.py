"""madvise(2), with the fork-related advice in full (mm/madvise.c).

Design essay
------------
``do_madvise`` runs the checks of mm/madvise.c:1053-1140 in order: unknown advice EINVAL,
unaligned start EINVAL, a length that rounds up to 0 EINVAL, a wrapping range EINVAL, len 0
success. The 5.6.8 stable fix "mm: check that mm is still valid in madvise()" adds EINTR for
the write-locked advice while the mm is being core-dumped (``mm.core_state`` set). The vma
walk applies the advice to every mapped part of the range; a hole makes the call end with
ENOMEM *after* the mapped parts were changed; no vma at all is ENOMEM.

Flag advice (``madvise_behavior``): DONTFORK sets VM_DONTCOPY; DOFORK clears it (EINVAL on
VM_IO); WIPEONFORK sets VM_WIPEONFORK on private anonymous vmas only (EINVAL for file-backed or
VM_SHARED); KEEPONFORK clears it; NORMAL/SEQUENTIAL/RANDOM set the readahead hints;
DONTDUMP/DODUMP toggle VM_DONTDUMP (DODUMP EINVAL on VM_SPECIAL); MERGEABLE/UNMERGEABLE
toggle VM_MERGEABLE the way ksm_madvise does (skipped for shared/special vmas; the model has
no KSM daemon, so nothing is ever merged and the mm's MMF_VM_MERGEABLE bit is not kept);
HUGEPAGE/NOHUGEPAGE toggle VM_HUGEPAGE/VM_NOHUGEPAGE (no THP: pages stay 4 KiB). A changed
range is merged with its neighbours or split off; a split refused by vm.max_map_count is
ENOMEM, a split that fails to allocate is converted to EAGAIN (mm/madvise.c:171-177).

Other advice: DONTNEED zaps the range (private anonymous pages are freed and read back as
zeros; shmem pages stay in the page cache); EINVAL on VM_LOCKED/VM_HUGETLB/VM_PFNMAP vmas.
FREE: EINVAL unless anonymous; otherwise accepted and a no-op (without memory pressure the
kernel keeps lazily-freed pages and their data). WILLNEED, COLD and PAGEOUT are accepted and
no-ops (no swap, no LRU); COLD/PAGEOUT still give EINVAL on locked/hugetlb/pfnmap vmas.
REMOVE: the EINVAL/EACCES checks are modelled; a hole punch in shmem raises ``Unmodelled``.
HWPOISON/SOFT_OFFLINE: the model is a kernel built without CONFIG_MEMORY_FAILURE, so both are
unknown advice (EINVAL), as madvise_behavior_valid makes them there (mm/madvise.c:984-987).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError, Unmodelled, kerr
from forklab.include.linux.mm_types import VM, VmAreaStruct, vma_next_of
from forklab.include.linux.types import U64
from forklab.mm.ksm import ksm_madvise
from forklab.mm.memory import PAGE_ALIGN, vma_is_anonymous, zap_page_range
from forklab.mm.mmap import VM_SPECIAL, __split_vma, find_vma, find_vma_prev, vma_merge
from forklab.uapi import (
    MADV_COLD,
    MADV_DODUMP,
    MADV_DOFORK,
    MADV_DONTDUMP,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_KEEPONFORK,
    MADV_MERGEABLE,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_PAGEOUT,
    MADV_RANDOM,
    MADV_REMOVE,
    MADV_SEQUENTIAL,
    MADV_UNMERGEABLE,
    MADV_WILLNEED,
    MADV_WIPEONFORK,
    PAGE_SHIFT,
    PAGE_SIZE,
)

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

_VALID = frozenset({
    MADV_DOFORK, MADV_DONTFORK, MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM, MADV_REMOVE, MADV_WILLNEED,
    MADV_DONTNEED, MADV_FREE, MADV_COLD, MADV_PAGEOUT, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE,
    MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK,
})


def madvise_behavior_valid(behavior: int) -> bool:
    """The advice values 5.6 knows (CONFIG_KSM and CONFIG_TRANSPARENT_HUGEPAGE on, CONFIG_MEMORY_FAILURE off) (mm/madvise.c:955-990)."""
    return behavior in _VALID


def madvise_need_mmap_write(behavior: int) -> bool:
    """Advice that changes vm_flags takes mmap_sem for write (mm/madvise.c:45-59)."""
    return behavior not in (MADV_REMOVE, MADV_WILLNEED, MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT, MADV_FREE)


def can_madv_lru_vma(vma: VmAreaStruct) -> bool:
    """Not locked, hugetlb or pfnmap (mm/internal.h:~60: can_madv_lru_vma)."""
    return not vma.vm_flags & (VM.VM_LOCKED | VM.VM_HUGETLB | VM.VM_PFNMAP)


def madvise_behavior(k: KernelState, vma: VmAreaStruct, prev: VmAreaStruct | None, start: int, end: int,
                     behavior: int) -> tuple[int, VmAreaStruct | None]:
    """Flag-changing advice on ``[start, end)`` of ``vma``, merging or splitting (mm/madvise.c:65-180)."""
    mm = vma.vm_mm
    if mm is None:
        raise InternalError("madvise on a detached vma")
    new_flags = vma.vm_flags
    if behavior == MADV_NORMAL:
        new_flags &= ~(VM.VM_RAND_READ | VM.VM_SEQ_READ)
    elif behavior == MADV_SEQUENTIAL:
        new_flags = (new_flags & ~VM.VM_RAND_READ) | VM.VM_SEQ_READ
    elif behavior == MADV_RANDOM:
        new_flags = (new_flags & ~VM.VM_SEQ_READ) | VM.VM_RAND_READ
    elif behavior == MADV_DONTFORK:
        new_flags |= VM.VM_DONTCOPY
    elif behavior == MADV_DOFORK:
        if vma.vm_flags & VM.VM_IO:
            return -errno.EINVAL, prev
        new_flags &= ~VM.VM_DONTCOPY
    elif behavior == MADV_WIPEONFORK:
        if vma.vm_file is not None or vma.vm_flags & VM.VM_SHARED:
            return -errno.EINVAL, prev
        new_flags |= VM.VM_WIPEONFORK
    elif behavior == MADV_KEEPONFORK:
        new_flags &= ~VM.VM_WIPEONFORK
    elif behavior == MADV_DONTDUMP:
        new_flags |= VM.VM_DONTDUMP
    elif behavior == MADV_DODUMP:
        if not vma.vm_flags & VM.VM_HUGETLB and new_flags & VM_SPECIAL:
            return -errno.EINVAL, prev
        new_flags &= ~VM.VM_DONTDUMP
    elif behavior in (MADV_MERGEABLE, MADV_UNMERGEABLE):
        new_flags = ksm_madvise(vma, behavior, new_flags)
    elif behavior == MADV_HUGEPAGE:
        new_flags = (new_flags & ~VM.VM_NOHUGEPAGE) | VM.VM_HUGEPAGE
    elif behavior == MADV_NOHUGEPAGE:
        new_flags = (new_flags & ~VM.VM_HUGEPAGE) | VM.VM_NOHUGEPAGE
    if new_flags == vma.vm_flags:
        return 0, vma
    pgoff = vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT)
    merged = vma_merge(k, mm, prev, start, end, new_flags, vma.anon_vma, vma.vm_file, pgoff)
    if merged is not None:
        merged.vm_flags = new_flags
        return 0, merged
    if start != vma.vm_start:
        if mm.map_count >= k.mem.sysctl_max_map_count:
            return -errno.ENOMEM, vma
        if __split_vma(k, mm, vma, start, 1):
            return -errno.EAGAIN, vma
    if end != vma.vm_end:
        if mm.map_count >= k.mem.sysctl_max_map_count:
            return -errno.ENOMEM, vma
        if __split_vma(k, mm, vma, end, 0):
            return -errno.EAGAIN, vma
    vma.vm_flags = new_flags
    return 0, vma


def madvise_vma(k: KernelState, t: Task, vma: VmAreaStruct, prev: VmAreaStruct | None, start: int, end: int,
                behavior: int) -> tuple[int, VmAreaStruct | None]:
    """Dispatch one vma's part of the range (mm/madvise.c:933-953)."""
    if behavior == MADV_REMOVE:
        if vma.vm_flags & VM.VM_LOCKED or vma.vm_file is None:
            return -errno.EINVAL, None
        if (vma.vm_flags & (VM.VM_SHARED | VM.VM_WRITE)) != (VM.VM_SHARED | VM.VM_WRITE):
            return -errno.EACCES, None
        raise Unmodelled("MADV_REMOVE hole punch in shmem (unmap_mapping_range across mms) is not modelled")
    if behavior == MADV_WILLNEED:
        return 0, vma
    if behavior in (MADV_COLD, MADV_PAGEOUT):
        return (0 if can_madv_lru_vma(vma) else -errno.EINVAL), vma
    if behavior in (MADV_DONTNEED, MADV_FREE):
        if not can_madv_lru_vma(vma):
            return -errno.EINVAL, vma
        if behavior == MADV_FREE:
            return (0 if vma_is_anonymous(vma) else -errno.EINVAL), vma
        zap_page_range(k, vma, start, end - start)
        return 0, vma
    return madvise_behavior(k, vma, prev, start, end, behavior)


def do_madvise(k: KernelState, t: Task, start: int, len_in: int, behavior: int) -> None:
    """madvise(2) (mm/madvise.c:1053-1145, with the 5.6.8 mmget_still_valid check)."""
    mm = t.mm
    if mm is None:
        raise InternalError("madvise without an mm")
    start &= U64
    len_in &= U64
    if not madvise_behavior_valid(behavior):
        raise kerr(errno.EINVAL, f"unknown advice {behavior}", "mm/madvise.c:1066")
    if start & (PAGE_SIZE - 1):
        raise kerr(errno.EINVAL, "start is not page aligned", "mm/madvise.c:1069")
    length = PAGE_ALIGN(len_in)
    if len_in and not length:
        raise kerr(errno.EINVAL, "length rounds up to 0", "mm/madvise.c:1074")
    end = start + length
    if end > U64:
        raise kerr(errno.EINVAL, "the range wraps around the address space", "mm/madvise.c:1078")
    if end == start:
        return
    if madvise_need_mmap_write(behavior) and mm.core_state is not None:
        raise kerr(errno.EINTR, "the mm is being core-dumped (mmget_still_valid)", "mm/madvise.c:1092 (5.6.8)")
    vma, prev = find_vma_prev(mm, start)
    if vma is not None and start > vma.vm_start:
        prev = vma
    unmapped_error = 0
    while True:
        if vma is None:
            raise kerr(errno.ENOMEM, "no mapping in the rest of the range", "mm/madvise.c:1111")
        if start < vma.vm_start:
            unmapped_error = errno.ENOMEM
            start = vma.vm_start
            if start >= end:
                raise kerr(errno.ENOMEM, "the range ends in an unmapped hole", "mm/madvise.c:1118")
        tmp = min(vma.vm_end, end)
        error, prev = madvise_vma(k, t, vma, prev, start, tmp, behavior)
        if error:
            rule = {errno.EINVAL: "advice not allowed on this mapping",
                    errno.EACCES: "MADV_REMOVE needs a shared writable mapping",
                    errno.EAGAIN: "vma split failed to allocate (ENOMEM converted to EAGAIN)",
                    errno.ENOMEM: "splitting the vma would exceed vm.max_map_count"}.get(-error, "madvise failed")
            line = {errno.EAGAIN: "mm/madvise.c:177", errno.ENOMEM: "mm/madvise.c:147"}.get(-error, "mm/madvise.c:1129")
            raise kerr(-error, rule, line)
        start = tmp
        if prev is not None and start < prev.vm_end:
            start = prev.vm_end
        if start >= end:
            break
        vma = vma_next_of(mm, prev) if prev is not None else find_vma(mm, start)
    if unmapped_error:
        raise kerr(unmapped_error, "part of the range is not mapped (advice applied to the rest)", "mm/madvise.c:1115")
    if k.listeners:
        k.trace("madvise", "mm/madvise.c:1053", f"{start:#x} behavior={behavior}")


__all__ = ["do_madvise", "madvise_behavior", "madvise_behavior_valid", "madvise_need_mmap_write"]
