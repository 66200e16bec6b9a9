"""The LSM hook layer (security/security.c): the one hook the model calls, ``security_vm_enough_memory_mm``.

With commoncap the only security module, the hook is ``cap_vm_enough_memory``
(security/commoncap.c:1300-1309): CAP_SYS_ADMIN of the current task decides whether the admin
reserve counts, then ``__vm_enough_memory`` (mm/util.c) charges the pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.kernel.capability import capable
from forklab.mm.util import __vm_enough_memory
from forklab.uapi import CAP_SYS_ADMIN

if TYPE_CHECKING:
    from forklab.include.linux.mm_types import MmStruct
    from forklab.state import KernelState


def security_vm_enough_memory_mm(k: KernelState, mm: MmStruct | None, pages: int) -> int:
    """cap_vm_enough_memory: CAP_SYS_ADMIN of current decides the admin reserve (security/security.c:778-805, security/commoncap.c:1300-1309)."""
    return __vm_enough_memory(k, mm, pages, k.current is not None and capable(k.current, CAP_SYS_ADMIN))
