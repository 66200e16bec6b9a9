"""The boot-time resource limits of the init task (include/asm-generic/resource.h: INIT_RLIMITS)."""

from __future__ import annotations

from forklab.uapi import (
    _STK_LIM,
    INR_OPEN_CUR,
    INR_OPEN_MAX,
    MLOCK_LIMIT,
    MQ_BYTES_MAX,
    RLIM_INFINITY,
    RLIM_NLIMITS,
    RLIMIT_CORE,
    RLIMIT_MEMLOCK,
    RLIMIT_MSGQUEUE,
    RLIMIT_NOFILE,
    RLIMIT_NPROC,
    RLIMIT_SIGPENDING,
    RLIMIT_STACK,
)


def init_rlimits(max_threads: int) -> tuple[tuple[int, int], ...]:
    """INIT_RLIMITS (include/asm-generic/resource.h:11-30) with NPROC from fork_init (kernel/fork.c:829-830)."""
    rlim = [(RLIM_INFINITY, RLIM_INFINITY)] * RLIM_NLIMITS
    rlim[RLIMIT_NPROC] = (max_threads // 2, max_threads // 2)
    rlim[RLIMIT_NOFILE] = (INR_OPEN_CUR, INR_OPEN_MAX)
    rlim[RLIMIT_STACK] = (_STK_LIM, RLIM_INFINITY)
    rlim[RLIMIT_CORE] = (0, RLIM_INFINITY)
    rlim[RLIMIT_MEMLOCK] = (MLOCK_LIMIT, MLOCK_LIMIT)
    rlim[RLIMIT_SIGPENDING] = (max_threads // 2, max_threads // 2)
    rlim[RLIMIT_MSGQUEUE] = (MQ_BYTES_MAX, MQ_BYTES_MAX)
    return tuple(rlim)
