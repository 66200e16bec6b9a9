"""The ID allocator (lib/idr.c): ``idr_alloc_cyclic`` on the dict a pid namespace keeps as its idr.

``ns.idr`` maps each allocated number to its struct pid (None while reserved, until
``idr_replace``); ``ns.idr_next`` is the cyclic cursor.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.pid import PidNamespace


def idr_alloc_cyclic(ns: PidNamespace, start: int, end: int) -> int:
    """Reserve the next free number in ``[start, end)`` from the cursor (lib/idr.c:79-97).

    Returns the number, or -ENOSPC when the range is full.
    """
    first = max(ns.idr_next, start)
    for lo, hi in ((first, end), (start, first)):
        for nr in range(lo, hi):
            if nr not in ns.idr:
                ns.idr[nr] = None
                ns.idr_next = nr + 1
                return nr
    return -errno.ENOSPC
