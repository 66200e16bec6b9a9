"""The capability rules of the commoncap LSM (security/commoncap.c), the only security module the model has.

``cap_capable`` decides every capability check: the effective set in the cred's own user
namespace, and every capability in a namespace the cred's euid owns from its parent.
``cap_bprm_set_creds`` gives an exec'd program its capability sets (files without file
capabilities only: root in the namespace gets the bounding and inheritable sets, others their
ambient set; an unsafe exec keeps no gain), and ``cap_emulate_setxuid`` drops capabilities
when set*uid leaves uid 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.linux.security import LSM_UNSAFE_NO_NEW_PRIVS, LSM_UNSAFE_PTRACE
from forklab.kernel.user_namespace import make_kid
from forklab.uapi import CAP_SETUID

if TYPE_CHECKING:
    from forklab.fs.exec import Bprm
    from forklab.include.linux.cred import Cred
    from forklab.include.linux.sched import Task
    from forklab.include.linux.user_namespace import UserNamespace

# securebits (include/uapi/linux/securebits.h:19, 41)
SECURE_NOROOT = 0
SECURE_KEEP_CAPS = 4


def cap_capable(cred: Cred, targ_ns: UserNamespace, cap: int) -> bool:
    """Whether ``cred`` has ``cap`` in ``targ_ns`` (security/commoncap.c:67-105).

    Walk up from ``targ_ns``: in the cred's own namespace the effective set decides; a cred
    that owns an ancestor's child namespace (is its creator, in the parent) has every capability
    in it.
    """
    ns: UserNamespace | None = targ_ns
    while ns is not None:
        if ns is cred.user_ns:
            return bool(cred.cap_effective & (1 << cap))
        if ns.level <= (cred.user_ns.level if cred.user_ns else 0):
            return False
        if ns.parent is cred.user_ns and ns.owner == cred.euid:
            return True
        ns = ns.parent
    return False


def _root_kuid(cred: Cred) -> int | None:
    """make_kuid(new->user_ns, 0): the namespace root as a kernel uid, None if unmapped (security/commoncap.c:823)."""
    if cred.user_ns is None:
        return 0
    return make_kid(cred.user_ns, "uid_map", 0)


def cap_bprm_set_creds(t: Task, bprm: Bprm) -> None:
    """The capability sets after exec of a file without file capabilities (security/commoncap.c:807-900)."""
    from forklab.kernel.capability import ptracer_capable  # import cycle: kernel/capability.py imports this module

    old, new = t.cred, bprm.cred
    assert old is not None and new is not None
    effective = False
    new.cap_permitted = 0  # get_file_caps: cap_clear(bprm->cred->cap_permitted) (commoncap.c:655)
    root_uid = _root_kuid(new)
    if not new.securebits & (1 << SECURE_NOROOT) and root_uid is not None:  # handle_privileged_root
        if new.euid == root_uid or new.uid == root_uid:
            new.cap_permitted = old.cap_bset | old.cap_inheritable
        if new.euid == root_uid:
            effective = True
    is_setid = new.euid != old.uid or new.egid != old.gid
    gained = bool(new.cap_permitted & ~old.cap_permitted)
    if (is_setid or gained) and (bprm.unsafe & ~LSM_UNSAFE_PTRACE or not ptracer_capable(t, new)):
        if new.user_ns is None or not cap_capable(new, new.user_ns, CAP_SETUID) \
                or bprm.unsafe & LSM_UNSAFE_NO_NEW_PRIVS:
            new.euid = new.uid
            new.egid = new.gid
        new.cap_permitted &= old.cap_permitted  # commoncap.c:846-847
    new.suid = new.fsuid = new.euid
    new.sgid = new.fsgid = new.egid
    if is_setid:
        new.cap_ambient = 0
    new.cap_permitted |= new.cap_ambient
    new.cap_effective = new.cap_permitted if effective else new.cap_ambient
    new.securebits &= ~(1 << SECURE_KEEP_CAPS)
    bprm.secureexec = is_setid or (root_uid != new.uid and (effective or bool(new.cap_permitted & ~new.cap_ambient)))


def cap_emulate_setxuid(new: Cred, old: Cred) -> None:
    """Drop capabilities as a uid-0 process becomes non-root (security/commoncap.c:938-966)."""
    root = make_kid(old.user_ns, "uid_map", 0) if old.user_ns is not None else 0
    if root in (old.uid, old.euid, old.suid) and root not in (new.uid, new.euid, new.suid):
        new.cap_permitted = 0
        new.cap_effective = 0
        new.cap_ambient = 0
    if old.euid == root and new.euid != root:
        new.cap_effective = 0
    if old.euid != root and new.euid == root:
        new.cap_effective = new.cap_permitted
