"""The vma cache (mm/vmacache.c): ``find_vma`` remembers the vma it found last.

Design essay
------------
5.6 keeps VMACACHE_SIZE (4) vmas per task, in ``current->vmacache``, hashed by page number. A
task's entries are valid while its seqnum equals ``mm->vmacache_seqnum``, and any unlink of a
vma from the list bumps that seqnum (``vmacache_invalidate``). fork and exec flush the new
task's entries and zero the new mm's seqnum (kernel/fork.c:1011, 1407; fs/exec.c:1043-1044).

The model keeps one entry per mm, ``mm.vmacache``, and clears it where the kernel bumps the
seqnum (``vmacache_invalidate``, forklab/include/linux/vmacache.py) or flushes. The cache is not
observable: ``vmacache_find`` returns a vma only when it contains the address, and that vma is
then the one ``find_vma``'s tree walk would give (vmas do not overlap). So it changes what a
lookup costs, never what it returns, and snapshots leave it out (``forklab.debug.SNAPSHOT_SKIP``).
docs/model.md lists the simplification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct, VmAreaStruct


def vmacache_find(mm: MmStruct, addr: int) -> VmAreaStruct | None:
    """The cached vma of ``mm`` when it contains ``addr``, else None (mm/vmacache.c:62-91)."""
    vma = mm.vmacache
    if vma is not None and vma.vm_start <= addr < vma.vm_end:
        return vma
    return None


def vmacache_update(addr: int, newvma: VmAreaStruct) -> None:
    """Remember ``newvma``, which find_vma found for ``addr``, in its mm's cache (mm/vmacache.c:36-40)."""
    del addr  # the kernel's hash of the address picks one of four slots; the model has one
    mm = newvma.vm_mm
    if mm is not None:
        mm.vmacache = newvma


__all__ = ["vmacache_find", "vmacache_update"]
