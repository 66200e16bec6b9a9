"""What every namespace kind shares: a ucount charge, an inode number and a refcount.

No single kernel file holds this; each ``copy_*`` (copy_utsname, copy_ipcs, copy_net_ns,
copy_cgroup_ns, copy_time_ns, copy_mnt_ns) repeats the pattern: share the old namespace
unless its CLONE_NEW* flag is set, else charge the creator's ucount in ``user_ns``
(ENOSPC past the ``max_*_namespaces`` limit), allocate (ENOMEM), and copy the state.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.errors import kerr
from forklab.include.linux.nsproxy import Namespace
from forklab.include.linux.user_namespace import UCOUNT, UserNamespace
from forklab.kernel.ucount import dec_ucount, inc_ucount
from forklab.kernel.user_namespace import get_user_ns, put_user_ns

if TYPE_CHECKING:
    from forklab.state import KernelState


def copy_ns(k: KernelState, flags: int, flag: int, user_ns: UserNamespace, old: Namespace,
            ucount: UCOUNT, where: tuple[str, str]) -> Namespace:
    """Share ``old`` or create a copy owned by ``user_ns``, as copy_utsname does (kernel/utsname.c:89-103);
    ``where`` = (ucount line, alloc line) of the kind's own file."""
    if not flags & flag:
        old.count += 1
        return old
    assert k.current is not None and k.current.cred is not None
    euid = k.current.cred.euid
    if not inc_ucount(user_ns, euid, ucount):
        raise kerr(errno.ENOSPC, f"max_{old.kind}_namespaces reached for this uid", where[0])
    if k.fault.should_fail(f"copy_{old.kind}_ns:alloc"):
        dec_ucount(user_ns, euid, ucount)
        raise kerr(errno.ENOMEM, f"{old.kind} namespace allocation failed", where[1])
    new = Namespace(kind=old.kind, user_ns=get_user_ns(user_ns), inum=k.new_inum(), ucounts_uid=euid,
                    ucounts_ns=user_ns, name=dict(old.name))
    if k.listeners:
        k.trace(f"copy_{old.kind}_ns", where[1], f"new {old.kind} namespace [{new.inum}]")
    return new


def put_ns(k: KernelState, ns: Namespace | None, ucount: UCOUNT) -> None:
    """Drop a reference; the last one uncharges the ucount and drops the owner (e.g. kernel/utsname.c:156-164)."""
    if ns is None:
        return
    ns.count -= 1
    if ns.count > 0 or ns.ucounts_ns is None:
        return
    assert ns.ucounts_uid is not None
    dec_ucount(ns.ucounts_ns, ns.ucounts_uid, ucount)
    put_user_ns(k, ns.user_ns)
