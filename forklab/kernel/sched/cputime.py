"""Process CPU time (kernel/sched/cputime.c), as the model keeps it.

The model's only CPU time is the 1 µs of system time each syscall charges; the scheduler's
runtime is exactly utime + stime, so ``cputime_adjust`` is the identity (docs/model.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task


def thread_group_cputime_adjusted(p: Task) -> tuple[int, int]:
    """The group's (utime, stime) in ns: the dead threads' times in signal_struct plus each live thread's
    (kernel/sched/cputime.c:669-678, 293-338)."""
    sig = p.signal
    assert sig is not None
    return (sig.utime + sum(t.utime for t in sig.thread_head), sig.stime + sum(t.stime for t in sig.thread_head))
