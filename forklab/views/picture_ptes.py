"""Page-table snapshots for the copy-on-write map: every non-empty PTE of an mm, by user address.

The copy-on-write map needs one fact the live page tables no longer hold: which pages the two
tasks shared when the child was made. ``fork_baseline`` records both tasks' PTEs right after the
fork (before either writes), and the map compares the live tables with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from forklab.include.linux.mm_types import PMD_SHIFT, MmStruct
from forklab.include.linux.sched import Task
from forklab.uapi import PAGE_SHIFT


def mm_ptes(mm: MmStruct | None) -> dict[int, int]:
    """Every non-empty PTE of ``mm`` as {user address: PTE value}, in address order; {} for no mm."""
    if mm is None:
        return {}
    out: dict[int, int] = {}
    for pmd in sorted(mm.pgd):
        table = mm.pgd[pmd]
        for idx in table.nonzero()[0]:
            out[(pmd << PMD_SHIFT) | (int(idx) << PAGE_SHIFT)] = int(table[idx])
    return out


@dataclass(slots=True, frozen=True, eq=False)
class ForkBaseline:
    """Both tasks' PTEs at the moment after the fork: the history a reuse is recognised by."""

    parent: Task
    child: Task
    parent_ptes: dict[int, int]
    child_ptes: dict[int, int]

    def ptes_of(self, task: Task) -> dict[int, int]:
        """The PTEs ``task`` had at the fork; ValueError for a task this baseline was not taken of."""
        if task is self.parent:
            return self.parent_ptes
        if task is self.child:
            return self.child_ptes
        raise ValueError(f"this fork baseline is of tasks {self.parent.pid} and {self.child.pid}, not {task.pid}")


def fork_baseline(parent: Task, child: Task) -> ForkBaseline:
    """Snapshot the PTEs of ``parent`` and ``child``; take it right after the fork, before either writes."""
    if not isinstance(parent, Task) or not isinstance(child, Task):
        raise TypeError("fork_baseline takes two Tasks (the parent and the child of one fork)")
    if parent.mm is not None and parent.mm is child.mm:
        raise ValueError(f"tasks {parent.pid} and {child.pid} share one mm (CLONE_VM): there is no copy-on-write "
                         "between them")
    return ForkBaseline(parent, child, mm_ptes(parent.mm), mm_ptes(child.mm))


__all__ = ["ForkBaseline", "fork_baseline", "mm_ptes"]
