"""Page copies (include/linux/highmem.h); every page is directly mapped on x86-64."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.state import KernelState


def copy_user_highpage(k: KernelState, dst: int, src: int) -> None:
    """copy_user_highpage(): copy the 4096 bytes of ``src`` into ``dst`` (include/linux/highmem.h:249)."""
    mem = k.mem
    data = mem.contents.get(src)
    if data is None:
        mem.contents.pop(dst, None)
    else:
        mem.contents[dst] = data  # immutable: the two pages share it until one is written
