"""mm's private inline helpers (mm/internal.h): which kind of mapping a vma is."""

from __future__ import annotations

from forklab.include.linux.mm_types import VM, VM_STACK


def is_cow_mapping(flags: int) -> bool:
    """Private and may be written: VM_MAYWRITE without VM_SHARED (mm/internal.h:258-261)."""
    return (flags & (VM.VM_SHARED | VM.VM_MAYWRITE)) == VM.VM_MAYWRITE


def is_exec_mapping(flags: int) -> bool:
    """Executable, not writable, not stack (mm/internal.h:270-273)."""
    return (flags & (VM.VM_EXEC | VM.VM_WRITE | VM_STACK)) == VM.VM_EXEC


def is_stack_mapping(flags: int) -> bool:
    """Grows down (mm/internal.h:281-284)."""
    return (flags & VM_STACK) == VM_STACK


def is_data_mapping(flags: int) -> bool:
    """Private, writable, not stack (mm/internal.h:289-292)."""
    return (flags & (VM.VM_WRITE | VM.VM_SHARED | VM_STACK)) == VM.VM_WRITE
