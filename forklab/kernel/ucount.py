"""Per-user-namespace counts of namespaces (kernel/ucount.c)."""

from __future__ import annotations

from forklab.include.linux.user_namespace import UCOUNT, UCOUNT_COUNTS, UserNamespace


def _ucount_dec_one(ns: UserNamespace, uid: int, kind: UCOUNT) -> None:
    counts = ns.ucounts[uid]
    counts[kind] -= 1
    if not any(counts):
        del ns.ucounts[uid]


def inc_ucount(ns: UserNamespace, uid: int, kind: UCOUNT) -> bool:
    """Count one more namespace of ``kind`` for ``uid`` at every level up (kernel/ucount.c:189-210).

    At each level the counter must stay at or below that level's ``ucount_max``; the uid
    charged one level up is the owner of the namespace below. On failure nothing stays charged.
    """
    charged: list[tuple[UserNamespace, int]] = []
    iter_ns: UserNamespace | None = ns
    while iter_ns is not None:
        counts = iter_ns.ucounts.setdefault(uid, [0] * UCOUNT_COUNTS)
        if counts[kind] + 1 > iter_ns.ucount_max[kind]:
            for done_ns, done_uid in charged:
                _ucount_dec_one(done_ns, done_uid, kind)
            return False
        counts[kind] += 1
        charged.append((iter_ns, uid))
        uid = iter_ns.owner
        iter_ns = iter_ns.parent
    return True


def dec_ucount(ns: UserNamespace | None, uid: int, kind: UCOUNT) -> None:
    """Undo ``inc_ucount`` at every level (kernel/ucount.c:212-223)."""
    while ns is not None:
        _ucount_dec_one(ns, uid, kind)
        uid = ns.owner
        ns = ns.parent
