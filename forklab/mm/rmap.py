"""Reverse mapping of anonymous pages: anon_vma families and per-page rmap counts (mm/rmap.c).

Design essay
------------
An ``anon_vma`` groups the vmas that may map the same anonymous pages. A vma is linked into
every anon_vma of its ancestry through ``anon_vma_chain`` links (struct anon_vma_chain). The
model keeps the chain as ``vma.anon_vma_chain: list[AnonVma]`` in the kernel's list order
(``list_add`` puts new links at the head, index 0) and replaces each anon_vma's interval tree
of links (``rb_root``) by its size ``AnonVma.nr_avc``: the only question the kernel asks of that
tree on the paths modelled here is "is it empty?" (unlink_anon_vmas, mm/rmap.c:405).

Reference counts follow the kernel exactly: ``refcount`` is 1 at allocation and each child
anon_vma pins its root (anon_vma_fork, mm/rmap.c:375); ``degree`` counts the vmas whose
``anon_vma`` it is plus its child anon_vmas (plus one for a root, whose parent is itself).
Live anon_vmas are registered in ``k.mem.anon_vmas`` by their ``serial`` so that
``forklab.mm.debug`` can check those counts and that ``page->mapping`` of every anonymous
page names a live anon_vma.

Page-level rmap calls only move ``_mapcount`` and ``page->mapping``/``index``; the model has no
rmap walks (no reclaim, no migration), so the interval trees themselves are not needed.
``anon_vma_clone`` reproduces the 5.6 reuse rule for a vma whose predecessor shares the
source's anon_vma (mm/rmap.c:275-277) — the caller passes nothing extra: the predecessor is
looked up in the source vma's mm, which is what ``vm_area_dup``'s struct copy makes
``dst->vm_prev`` point at.

Allocation failures return -ENOMEM like the kernel functions, after unwinding what they did.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import InternalError
from forklab.include.linux.mm_types import AnonVma, VmAreaStruct, vma_prev_of
from forklab.include.linux.pagemap import linear_page_index
from forklab.mm.page_alloc import PG_anon, PG_swapbacked

if TYPE_CHECKING:
    from forklab.state import KernelState


def anon_vma_alloc(k: KernelState, site: str) -> AnonVma | None:
    """Allocate an anon_vma: refcount 1, degree 1, its own root and parent (mm/rmap.c:79-96)."""
    if k.fault.should_fail(site):
        return None
    av = AnonVma(refcount=1, degree=1, serial=k.mem.new_anon_vma_serial())
    av.root = av
    av.parent = av
    k.mem.anon_vmas[av.serial] = av
    return av


def anon_vma_free(k: KernelState, anon_vma: AnonVma) -> None:
    """Free an anon_vma whose refcount reached zero (mm/rmap.c:98-126)."""
    if anon_vma.refcount != 0:
        raise InternalError(f"anon_vma {anon_vma.serial} freed with refcount {anon_vma.refcount}")
    k.mem.anon_vmas.pop(anon_vma.serial, None)


def get_anon_vma(anon_vma: AnonVma) -> None:
    """Take a reference (include/linux/rmap.h:108-111)."""
    anon_vma.refcount += 1


def __put_anon_vma(k: KernelState, anon_vma: AnonVma) -> None:
    """Free ``anon_vma`` and drop its pin on the root (mm/rmap.c:1792-1799)."""
    root = anon_vma.root
    anon_vma_free(k, anon_vma)
    if root is not None and root is not anon_vma:
        root.refcount -= 1
        if root.refcount == 0:
            anon_vma_free(k, root)


def put_anon_vma(k: KernelState, anon_vma: AnonVma) -> None:
    """Drop a reference; the last one frees (include/linux/rmap.h:115-119)."""
    anon_vma.refcount -= 1
    if anon_vma.refcount < 0:
        raise InternalError(f"anon_vma {anon_vma.serial} refcount underflow")
    if anon_vma.refcount == 0:
        __put_anon_vma(k, anon_vma)


def anon_vma_chain_link(vma: VmAreaStruct, anon_vma: AnonVma) -> None:
    """Link ``vma`` into ``anon_vma`` (list_add at the head + interval tree insert) (mm/rmap.c:138-146)."""
    vma.anon_vma_chain.insert(0, anon_vma)
    anon_vma.nr_avc += 1


def __anon_vma_prepare(k: KernelState, vma: VmAreaStruct,
                       neighbours: tuple[VmAreaStruct | None, VmAreaStruct | None] | None = None) -> int:
    """Give ``vma`` an anon_vma: reuse a mergeable neighbour's or allocate one (mm/rmap.c:176-230).

    ``neighbours`` overrides (vm_prev, vm_next) for a vma not linked yet: dup_mmap's copy still
    carries the parent's neighbours from vm_area_dup's struct copy.
    """
    from forklab.mm.mmap import (
        find_mergeable_anon_vma,  # import cycle: forklab.fs.file_table is still loading when this module loads
    )

    if k.fault.should_fail("__anon_vma_prepare:anon_vma_chain_alloc"):
        return -errno.ENOMEM
    anon_vma = find_mergeable_anon_vma(vma, neighbours)
    if anon_vma is None:
        anon_vma = anon_vma_alloc(k, "__anon_vma_prepare:anon_vma_alloc")
        if anon_vma is None:
            return -errno.ENOMEM
    vma.anon_vma = anon_vma
    anon_vma_chain_link(vma, anon_vma)
    anon_vma.degree += 1
    return 0


def anon_vma_prepare(k: KernelState, vma: VmAreaStruct,
                     neighbours: tuple[VmAreaStruct | None, VmAreaStruct | None] | None = None) -> int:
    """0 if ``vma`` already has an anon_vma, else __anon_vma_prepare (include/linux/rmap.h:152-158)."""
    if vma.anon_vma is not None:
        return 0
    return __anon_vma_prepare(k, vma, neighbours)


def anon_vma_clone(k: KernelState, dst: VmAreaStruct, src: VmAreaStruct) -> int:
    """Link ``dst`` into every anon_vma ``src`` is linked into, maybe reusing one (mm/rmap.c:268-333)."""
    pprev = vma_prev_of(src.vm_mm, src) if src.vm_mm is not None else None
    if dst.anon_vma is None and src.anon_vma is not None and pprev is not None \
            and pprev.anon_vma is src.anon_vma:
        dst.anon_vma = pprev.anon_vma
    for anon_vma in reversed(list(src.anon_vma_chain)):
        if k.fault.should_fail("anon_vma_clone:anon_vma_chain_alloc"):
            dst.anon_vma = None
            unlink_anon_vmas(k, dst)
            return -errno.ENOMEM
        anon_vma_chain_link(dst, anon_vma)
        if dst.anon_vma is None and src.anon_vma is not None and anon_vma is not src.anon_vma \
                and anon_vma.degree < 2:
            dst.anon_vma = anon_vma
    if dst.anon_vma is not None:
        dst.anon_vma.degree += 1
    return 0


def anon_vma_fork(k: KernelState, vma: VmAreaStruct, pvma: VmAreaStruct) -> int:
    """Attach the child's ``vma`` to the parent's anon_vma family plus a new own anon_vma (mm/rmap.c:335-389)."""
    if pvma.anon_vma is None:
        return 0
    vma.anon_vma = None
    error = anon_vma_clone(k, vma, pvma)
    if error:
        return error
    if vma.anon_vma is not None:
        return 0
    anon_vma = anon_vma_alloc(k, "anon_vma_fork:anon_vma_alloc")
    if anon_vma is None:
        unlink_anon_vmas(k, vma)
        return -errno.ENOMEM
    if k.fault.should_fail("anon_vma_fork:anon_vma_chain_alloc"):
        put_anon_vma(k, anon_vma)
        unlink_anon_vmas(k, vma)
        return -errno.ENOMEM
    parent = pvma.anon_vma
    anon_vma.root = parent.root
    anon_vma.parent = parent
    if anon_vma.root is None:
        raise InternalError("anon_vma without a root")
    get_anon_vma(anon_vma.root)
    vma.anon_vma = anon_vma
    anon_vma_chain_link(vma, anon_vma)
    parent.degree += 1
    return 0


def unlink_anon_vmas(k: KernelState, vma: VmAreaStruct) -> None:
    """Unlink ``vma`` from all its anon_vmas, freeing those left empty (mm/rmap.c:396-441)."""
    emptied: list[AnonVma] = []
    for anon_vma in list(vma.anon_vma_chain):
        anon_vma.nr_avc -= 1
        if anon_vma.nr_avc < 0:
            raise InternalError(f"anon_vma {anon_vma.serial} interval tree underflow")
        if anon_vma.nr_avc == 0:
            if anon_vma.parent is None:
                raise InternalError("anon_vma without a parent")
            anon_vma.parent.degree -= 1
            emptied.append(anon_vma)
    if vma.anon_vma is not None:
        vma.anon_vma.degree -= 1
    for anon_vma in emptied:
        put_anon_vma(k, anon_vma)
    vma.anon_vma_chain = []


def page_add_new_anon_rmap(k: KernelState, pfn: int, vma: VmAreaStruct, address: int) -> None:
    """First mapping of a fresh anonymous page: mapcount 1, mapping = vma's anon_vma (mm/rmap.c:1170-1190)."""
    if vma.anon_vma is None:
        raise InternalError("page_add_new_anon_rmap on a vma without anon_vma")
    if not vma.vm_start <= address < vma.vm_end:
        raise InternalError(f"page_add_new_anon_rmap at {address:#x} outside {vma!r}")
    mem = k.mem
    mem.flags[pfn] |= PG_anon | PG_swapbacked
    mem._mapcount[pfn] = 0
    mem.mapping[pfn] = vma.anon_vma.serial
    mem.index[pfn] = linear_page_index(vma, address)


def page_add_file_rmap(k: KernelState, pfn: int) -> None:
    """One more PTE maps a page-cache page (mm/rmap.c:1199-1230)."""
    k.mem._mapcount[pfn] += 1


def page_dup_rmap(k: KernelState, pfn: int) -> None:
    """fork copied a PTE: mapcount++ (include/linux/rmap.h:199-202)."""
    k.mem._mapcount[pfn] += 1


def page_remove_rmap(k: KernelState, pfn: int) -> None:
    """A PTE stopped mapping the page: mapcount-- (mm/rmap.c:1327-1366).

    As in the kernel, ``page->mapping`` is left in place; it is cleared when the page is freed.
    """
    mem = k.mem
    mem._mapcount[pfn] -= 1
    if int(mem._mapcount[pfn]) < -1:
        raise InternalError(f"pfn {pfn} mapcount underflow")


def page_move_anon_rmap(k: KernelState, pfn: int, vma: VmAreaStruct) -> None:
    """An exclusively owned page now belongs to ``vma``'s own anon_vma (mm/rmap.c:1021-1037)."""
    if vma.anon_vma is None:
        raise InternalError("page_move_anon_rmap on a vma without anon_vma")
    k.mem.mapping[pfn] = vma.anon_vma.serial


__all__ = [
    "anon_vma_alloc",
    "anon_vma_clone",
    "anon_vma_fork",
    "anon_vma_prepare",
    "get_anon_vma",
    "page_add_file_rmap",
    "page_add_new_anon_rmap",
    "page_dup_rmap",
    "page_move_anon_rmap",
    "page_remove_rmap",
    "put_anon_vma",
    "unlink_anon_vmas",
]
