"""Mapping flag translation and VM accounting (include/linux/mman.h)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.errors import InternalError
from forklab.include.linux.mm_types import VM
from forklab.uapi import MAP_DENYWRITE, MAP_GROWSDOWN, MAP_LOCKED, PROT_EXEC, PROT_READ, PROT_SEM, PROT_WRITE

if TYPE_CHECKING:
    from forklab.state import KernelState


def vm_acct_memory(k: KernelState, pages: int) -> None:
    """vm_committed_as += pages (include/linux/mman.h:76-79)."""
    k.mem.vm_committed_as += pages


def vm_unacct_memory(k: KernelState, pages: int) -> None:
    """vm_committed_as -= pages (include/linux/mman.h:81-84)."""
    k.mem.vm_committed_as -= pages
    if k.mem.vm_committed_as < 0:
        raise InternalError("vm_committed_as went negative")


def calc_vm_prot_bits(prot: int) -> int:
    """PROT_* to VM_READ/WRITE/EXEC (include/linux/mman.h:117-125)."""
    return (VM.VM_READ if prot & PROT_READ else 0) | (VM.VM_WRITE if prot & PROT_WRITE else 0) \
        | (VM.VM_EXEC if prot & PROT_EXEC else 0)


def calc_vm_flag_bits(flags: int) -> int:
    """MAP_GROWSDOWN/DENYWRITE/LOCKED to vm_flags (include/linux/mman.h:130-137)."""
    return (VM.VM_GROWSDOWN if flags & MAP_GROWSDOWN else 0) | (VM.VM_DENYWRITE if flags & MAP_DENYWRITE else 0) \
        | (VM.VM_LOCKED if flags & MAP_LOCKED else 0)


def arch_validate_prot(prot: int) -> bool:
    """Only READ, WRITE, EXEC and SEM are valid (include/linux/mman.h:93-97)."""
    return not prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)
