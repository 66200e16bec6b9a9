"""The per-uid user_struct (kernel/user.c): ``alloc_uid`` finds or creates it, ``free_uid`` drops a reference.

A real cred points at the user_struct of its uid; ``processes`` there counts every task whose
real creds name that uid, which is what RLIMIT_NPROC is checked against.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.cred import UserStruct

if TYPE_CHECKING:
    from forklab.state import KernelState


def free_uid(k: KernelState, user: UserStruct | None) -> None:
    """Drop a user_struct reference; unhash it at zero (kernel/user.c:158-171)."""
    if user is None:
        return
    user.count -= 1
    if user.count == 0:
        del k.uidhash[user.uid]


def alloc_uid(k: KernelState, uid: int) -> UserStruct:
    """Find or create the user_struct for ``uid`` and take a reference (kernel/user.c:173-204)."""
    user = k.uidhash.get(uid)
    if user is not None:
        user.count += 1
        return user
    if k.fault.should_fail("alloc_uid:kmem_cache_zalloc"):
        raise kerr(errno.ENOMEM, "user_struct allocation failed", "kernel/user.c:181")
    user = UserStruct(uid=uid)
    k.uidhash[uid] = user
    return user
