"""The memory views of /proc/<pid> (fs/proc/task_mmu.c): status's Vm* lines, statm, maps, smaps and smaps_rollup.

``task_mem`` prints VmPeak..VmSwap and HugetlbPages from the mm's counters, in kB;
``show_map_vma`` prints one maps line per vma, with the shmem file's inode and name for
shared anonymous memory and ``[stack]`` for the stack. ``show_smap`` adds, per vma, the
counts ``smap_gather_stats`` gathers by walking the vma's page table entries, as
``smaps_pte_entry`` and ``smaps_account`` do: every present PTE of a normal page counts in
Rss; a page whose refcount or mapcount says only this PTE maps it is Private_*, any other
Shared_*; Pss adds PAGE_SIZE / mapcount per page in 5.6's fixed point (PSS_SHIFT 12); a PTE
with the dirty bit is *_Dirty and one with the accessed bit is Referenced. So after a fork the
pages parent and child both map are Shared_* with half their size in each Pss, and a page
copied on a write fault is Private_Dirty in both.

The model has no swap, THP, hugetlb, device numbers for its files, protection keys or soft
dirty bits, and keeps no PG_dirty/PG_referenced page flags (the PTE bits stand for them), see
docs/proc-views.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from forklab.include.linux.kdev_t import MINORBITS, MKDEV
from forklab.include.linux.mm_types import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    MM_ANONPAGES,
    MM_FILEPAGES,
    MM_SHMEMPAGES,
    MM_SWAPENTS,
    PMD_SHIFT,
    PTRS_PER_PTE,
    VM,
)
from forklab.include.linux.page_flags import PageAnon
from forklab.mm.memory import PAGE_ALIGN, page_count, page_mapcount, pte_present, vm_normal_page
from forklab.mm.page_alloc import PG_swapbacked
from forklab.uapi import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct, VmAreaStruct
    from forklab.state import KernelState

PSS_SHIFT = 12  # fs/proc/task_mmu.c:409
SHMEM_DEV = MKDEV(0, 1)  # shm_mnt's anonymous superblock: the first unnamed device, as on a booted kernel
MAPS_NAME_COLUMN = 25 + 8 * 6 - 1  # seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) (fs/proc/task_mmu.c:282)
# show_smap_vma_flags' mnemonics (fs/proc/task_mmu.c:638-690), by vm_flags bit, for the model's
# configuration: no MPX, no soft dirty; the protection-key bits (32..36) print nothing.
VM_MNEMONICS: dict[int, str] = {
    0: "rd", 1: "wr", 2: "ex", 3: "sh", 4: "mr", 5: "mw", 6: "me", 7: "ms", 8: "gd", 9: "um", 10: "pf", 11: "dw",
    12: "uw", 13: "lo", 14: "io", 15: "sr", 16: "rr", 17: "dc", 18: "de", 20: "ac", 21: "nr", 22: "ht", 23: "sf",
    24: "ar", 25: "wf", 26: "dd", 28: "mm", 29: "hg", 30: "nh", 31: "mg", 32: "", 33: "", 34: "", 35: "", 36: "",
}


def _kb(pages: int) -> str:
    """SEQ_PUT_DEC of a page count: kB, at least 8 wide."""
    return f"{pages << (PAGE_SHIFT - 10):8d}"


def task_mem(mm: MmStruct) -> list[str]:
    """VmPeak..VmSwap and HugetlbPages, in kB (fs/proc/task_mmu.c:30-80).

    The model keeps no start_code/end_code, so ``text`` is 0 and all of exec_vm is VmLib, as
    for an mm whose code range is empty.
    """
    rss = mm.rss_stat
    anon, file, shmem = rss[MM_ANONPAGES], rss[MM_FILEPAGES], rss[MM_SHMEMPAGES]
    hiwater_vm = max(mm.total_vm, mm.hiwater_vm)
    total_rss = anon + file + shmem
    hiwater_rss = max(total_rss, mm.hiwater_rss)
    start_code = end_code = 0  # not modelled
    text = min(PAGE_ALIGN(end_code) - start_code, mm.exec_vm << PAGE_SHIFT)
    lib = (mm.exec_vm << PAGE_SHIFT) - text
    return [f"VmPeak:\t{_kb(hiwater_vm)} kB", f"VmSize:\t{_kb(mm.total_vm)} kB", f"VmLck:\t{_kb(mm.locked_vm)} kB",
            f"VmPin:\t{_kb(mm.pinned_vm)} kB", f"VmHWM:\t{_kb(hiwater_rss)} kB", f"VmRSS:\t{_kb(total_rss)} kB",
            f"RssAnon:\t{_kb(anon)} kB", f"RssFile:\t{_kb(file)} kB", f"RssShmem:\t{_kb(shmem)} kB",
            f"VmData:\t{_kb(mm.data_vm)} kB", f"VmStk:\t{_kb(mm.stack_vm)} kB", f"VmExe:\t{text >> 10:8d} kB",
            f"VmLib:\t{lib >> 10:8d} kB", f"VmPTE:\t{mm.pgtables_bytes >> 10:8d} kB",
            f"VmSwap:\t{_kb(rss[MM_SWAPENTS])} kB",
            # hugetlb_report_usage (mm/hugetlb.c:3525-3529): mm->hugetlb_usage; no syscall maps hugetlb pages
            f"HugetlbPages:\t{0:8d} kB"]


def task_vsize(mm: MmStruct) -> int:
    """The virtual size in bytes: PAGE_SIZE * total_vm (fs/proc/task_mmu.c:81-84)."""
    return PAGE_SIZE * mm.total_vm


def task_statm(mm: MmStruct) -> tuple[int, int, int, int, int]:
    """(size, shared, text, data, resident) in pages for /proc/<pid>/statm (fs/proc/task_mmu.c:86-98)."""
    shared = mm.rss_stat[MM_FILEPAGES] + mm.rss_stat[MM_SHMEMPAGES]
    text = 0  # (PAGE_ALIGN(end_code) - (start_code & PAGE_MASK)) >> PAGE_SHIFT: no code range in the model
    data = mm.data_vm + mm.stack_vm
    resident = shared + mm.rss_stat[MM_ANONPAGES]
    return mm.total_vm, shared, text, data, resident


def show_vma_header_prefix(start: int, end: int, flags: int, pgoff: int, dev: int, ino: int) -> str:
    """``start-end perms offset major:minor inode `` (fs/proc/task_mmu.c:277-295)."""
    perms = ("r" if flags & VM.VM_READ else "-") + ("w" if flags & VM.VM_WRITE else "-") + \
            ("x" if flags & VM.VM_EXEC else "-") + ("s" if flags & VM.VM_MAYSHARE else "p")
    return f"{start:08x}-{end:08x} {perms} {pgoff:08x} {dev >> MINORBITS:02x}:{dev & ((1 << MINORBITS) - 1):02x} {ino} "


def _seq_pad(line: str, name: str) -> str:
    """seq_pad(m, ' ') then the name: spaces up to the width seq_setwidth set, one more, the name."""
    return line.ljust(MAPS_NAME_COLUMN) + " " + name


def show_map_vma(vma: VmAreaStruct) -> str:
    """One /proc/<pid>/maps line, newline included (fs/proc/task_mmu.c:297-363).

    A file shows its device, inode, offset and path (the model's files are the shmem objects
    of shared anonymous memory, "/dev/zero (deleted)"); an anonymous vma is named ``[stack]``
    when it is the stack (the model has no mm->start_stack: the VM_GROWSDOWN vma exec builds).
    """
    flags = vma.vm_flags
    file = vma.vm_file
    dev = ino = pgoff = 0
    name = ""
    if file is not None:
        dev, ino, pgoff = SHMEM_DEV, file.f_inode.i_ino, vma.vm_pgoff << PAGE_SHIFT
        name = file.f_inode.name if file.f_inode.kind == "shmem" else file.f_path.dentry
    elif flags & VM.VM_GROWSDOWN:
        name = "[stack]"
    line = show_vma_header_prefix(vma.vm_start, vma.vm_end, flags, pgoff, dev, ino)
    return (_seq_pad(line, name) if name else line) + "\n"


def show_map(mm: MmStruct | None) -> str:
    """/proc/<pid>/maps: one line per vma; empty without an mm (fs/proc/task_mmu.c:365-370)."""
    return "" if mm is None else "".join(show_map_vma(vma) for vma in mm.mmap)


@dataclass(slots=True)
class MemSizeStats:
    """struct mem_size_stats (fs/proc/task_mmu.c:412-434): the byte counts of one vma, or of all of them."""

    resident: int = 0
    shared_clean: int = 0
    shared_dirty: int = 0
    private_clean: int = 0
    private_dirty: int = 0
    referenced: int = 0
    anonymous: int = 0
    lazyfree: int = 0
    anonymous_thp: int = 0
    shmem_thp: int = 0
    file_thp: int = 0
    swap: int = 0
    shared_hugetlb: int = 0
    private_hugetlb: int = 0
    pss: int = 0
    pss_anon: int = 0
    pss_file: int = 0
    pss_shmem: int = 0
    pss_locked: int = 0
    swap_pss: int = 0


def smaps_page_accumulate(k: KernelState, mss: MemSizeStats, pfn: int, size: int, pss: int, dirty: bool,
                          locked: bool, private: bool) -> None:
    """Add one page's Pss (by kind) and its size to Shared/Private Clean/Dirty (fs/proc/task_mmu.c:436-462)."""
    mss.pss += pss
    if PageAnon(k, pfn):
        mss.pss_anon += pss
    elif int(k.mem.flags[pfn]) & PG_swapbacked:
        mss.pss_shmem += pss
    else:
        mss.pss_file += pss
    if locked:
        mss.pss_locked += pss
    if dirty:  # || PageDirty(page): the model keeps no PG_dirty
        if private:
            mss.private_dirty += size
        else:
            mss.shared_dirty += size
    elif private:
        mss.private_clean += size
    else:
        mss.shared_clean += size


def smaps_account(k: KernelState, mss: MemSizeStats, pfn: int, young: bool, dirty: bool, locked: bool) -> None:
    """Count one mapped page: Anonymous, Rss, Referenced, then Pss by its mapcount (fs/proc/task_mmu.c:464-506)."""
    size = PAGE_SIZE
    swapbacked = bool(int(k.mem.flags[pfn]) & PG_swapbacked)
    if PageAnon(k, pfn):
        mss.anonymous += size
        if not swapbacked and not dirty:
            mss.lazyfree += size
    mss.resident += size
    if young:  # || page_is_young || PageReferenced: the PTE's accessed bit only
        mss.referenced += size
    if page_count(k, pfn) == 1:
        smaps_page_accumulate(k, mss, pfn, size, size << PSS_SHIFT, dirty, locked, True)
        return
    mapcount = page_mapcount(k, pfn)
    pss = PAGE_SIZE << PSS_SHIFT
    if mapcount >= 2:
        pss //= mapcount
    smaps_page_accumulate(k, mss, pfn, PAGE_SIZE, pss, dirty, locked, mapcount < 2)


def smaps_pte_entry(k: KernelState, mss: MemSizeStats, vma: VmAreaStruct, addr: int, pte: int) -> None:
    """One PTE: a present normal page is accounted; the model has no swap or migration entries (fs/proc/task_mmu.c:520-570)."""
    if not pte_present(pte):
        return
    pfn = vm_normal_page(k, vma, addr, pte)
    if pfn is None:
        return
    smaps_account(k, mss, pfn, bool(pte & _PAGE_ACCESSED), bool(pte & _PAGE_DIRTY), bool(vma.vm_flags & VM.VM_LOCKED))


def smap_gather_stats(k: KernelState, vma: VmAreaStruct, mss: MemSizeStats) -> None:
    """walk_page_vma with smaps_pte_range: every non-empty PTE of the vma, in address order (fs/proc/task_mmu.c:750-785)."""
    mm = vma.vm_mm
    if mm is None:
        return
    for pmd in range(vma.vm_start >> PMD_SHIFT, ((vma.vm_end - 1) >> PMD_SHIFT) + 1):
        table = mm.pgd.get(pmd)
        if table is None:
            continue
        base = pmd << PMD_SHIFT
        lo = max(vma.vm_start, base)
        hi = min(vma.vm_end, base + (PTRS_PER_PTE << PAGE_SHIFT))
        first, last = (lo - base) >> PAGE_SHIFT, (hi - base) >> PAGE_SHIFT
        for idx in np.flatnonzero(table[first:last]):
            addr = lo + (int(idx) << PAGE_SHIFT)
            smaps_pte_entry(k, mss, vma, addr, int(table[first + int(idx)]))


def __show_smap(mss: MemSizeStats, rollup_mode: bool) -> list[str]:
    """The counts common to smaps and smaps_rollup, in kB (fs/proc/task_mmu.c:787-823)."""
    def put(label: str, value: int, width: int = 8) -> str:
        return f"{label}{value >> 10:{width}d} kB"

    lines = [put("Rss:            ", mss.resident), put("Pss:            ", mss.pss >> PSS_SHIFT)]
    if rollup_mode:
        lines += [put("Pss_Anon:       ", mss.pss_anon >> PSS_SHIFT), put("Pss_File:       ", mss.pss_file >> PSS_SHIFT),
                  put("Pss_Shmem:      ", mss.pss_shmem >> PSS_SHIFT)]
    return [
        *lines, put("Shared_Clean:   ", mss.shared_clean), put("Shared_Dirty:   ", mss.shared_dirty),
        put("Private_Clean:  ", mss.private_clean), put("Private_Dirty:  ", mss.private_dirty),
        put("Referenced:     ", mss.referenced), put("Anonymous:      ", mss.anonymous),
        put("LazyFree:       ", mss.lazyfree), put("AnonHugePages:  ", mss.anonymous_thp),
        put("ShmemPmdMapped: ", mss.shmem_thp), put("FilePmdMapped: ", mss.file_thp),
        put("Shared_Hugetlb: ", mss.shared_hugetlb), put("Private_Hugetlb: ", mss.private_hugetlb, 7),
        put("Swap:           ", mss.swap), put("SwapPss:        ", mss.swap_pss >> PSS_SHIFT),
        put("Locked:         ", mss.pss_locked >> PSS_SHIFT),
    ]


def show_smap_vma_flags(vma: VmAreaStruct) -> str:
    """``VmFlags:`` and two letters per set flag, each followed by a space (fs/proc/task_mmu.c:633-698)."""
    flags = vma.vm_flags
    out = "VmFlags: "
    for bit in range(64):
        mnemonic = VM_MNEMONICS.get(bit, "??")
        if mnemonic and flags >> bit & 1:
            out += mnemonic + " "
    return out


def show_smap(k: KernelState, vma: VmAreaStruct) -> str:
    """One vma of /proc/<pid>/smaps: its maps line, sizes, counts, THPeligible and VmFlags (fs/proc/task_mmu.c:825-853)."""
    mss = MemSizeStats()
    smap_gather_stats(k, vma, mss)
    lines = [show_map_vma(vma)[:-1], f"Size:           {(vma.vm_end - vma.vm_start) >> 10:8d} kB",
             f"KernelPageSize: {PAGE_SIZE >> 10:8d} kB", f"MMUPageSize:    {PAGE_SIZE >> 10:8d} kB",
             *__show_smap(mss, False),
             "THPeligible:\t\t0",  # transparent_hugepage_enabled: no THP in the model; no protection keys
             show_smap_vma_flags(vma)]
    return "\n".join(lines) + "\n"


def show_smaps(k: KernelState, mm: MmStruct | None) -> str:
    """/proc/<pid>/smaps: show_smap for each vma; empty without an mm (fs/proc/task_mmu.c:907-912)."""
    return "" if mm is None else "".join(show_smap(k, vma) for vma in mm.mmap)


def show_smaps_rollup(k: KernelState, mm: MmStruct) -> str:
    """/proc/<pid>/smaps_rollup: every vma's counts summed under one ``[rollup]`` header (fs/proc/task_mmu.c:855-900).

    5.6 dereferences mm->mmap for an mm without vmas; the model prints the empty range there,
    as later kernels do (docs/proc-views.md).
    """
    mss = MemSizeStats()
    for vma in mm.mmap:
        smap_gather_stats(k, vma, mss)
    start, end = (mm.mmap[0].vm_start, mm.mmap[-1].vm_end) if mm.mmap else (0, 0)
    header = _seq_pad(show_vma_header_prefix(start, end, 0, 0, 0, 0), "[rollup]")
    return "\n".join([header, *__show_smap(mss, True)]) + "\n"


__all__ = ["MemSizeStats", "show_map", "show_map_vma", "show_smap", "show_smaps", "show_smaps_rollup",
           "smap_gather_stats", "task_mem", "task_statm", "task_vsize"]
