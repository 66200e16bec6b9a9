"""struct cred and struct user_struct (include/linux/cred.h, include/linux/sched/user.h)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.user_namespace import UserNamespace


@dataclass(slots=True, eq=False)
class UserStruct:
    """struct user_struct (include/linux/sched/user.h:13-47): per-kuid process accounting."""

    uid: int
    count: int = 1  # the kernel's __count
    processes: int = 0


@dataclass(slots=True, eq=False)
class Cred:
    """struct cred (include/linux/cred.h:111-155): ids, capabilities, user and user namespace."""

    usage: int = 1
    uid: int = 0
    gid: int = 0
    suid: int = 0
    sgid: int = 0
    euid: int = 0
    egid: int = 0
    fsuid: int = 0
    fsgid: int = 0
    securebits: int = 0
    cap_inheritable: int = 0
    cap_permitted: int = 0
    cap_effective: int = 0
    cap_bset: int = 0
    cap_ambient: int = 0
    thread_keyring: int = 0
    process_keyring: int = 0
    user: UserStruct | None = None
    user_ns: UserNamespace | None = None
