"""poll(2) (fs/select.c): readiness of the model's files, and sleeping until a pidfd is ready.

What is polled. ``do_pollfd`` asks each file's ``f_op->poll`` (vfs_poll, include/linux/poll.h:
86-91). Of the model's files only a pidfd has one (``pidfd_poll``, kernel/fork.py): it reports
POLLIN|POLLRDNORM once the whole thread group has exited. Regular and shmem files, /dev/null,
/dev/zero and directories have none, so they are always ready with DEFAULT_POLLMASK. A pipe
has ``pipe_poll`` (fs/pipe.c), which the model does not have: polling a pipe is Unmodelled.
An fd below 0 is skipped (revents 0); a closed or O_PATH fd gives POLLNVAL. On x86 the user
POLL* bits and the kernel's EPOLL* bits are the same, so mangle_poll/demangle_poll only keep
the bits they know (POLL_MANGLE_MASK).

Sleeping. With nothing ready and a timeout other than 0, the kernel sleeps in
``poll_schedule_timeout`` with the task on the wait queue of every polled pidfd's struct pid
(``pid->wait_pidfd``: ``__pollwait`` put it there during the scan). The model cannot return
from the middle of a syscall, so it leaves the task asleep in TASK_INTERRUPTIBLE on "poll" and
raises ``Blocked``; the entries stay on the wait queues. ``do_notify_parent`` wakes them when
a thread group has exited (do_notify_pidfd, kernel/signal.c:1894-1901, calling ``pollwake``
on each waiter), a signal wakes the task too (signal_wake_up). The caller then issues the same
poll again, which is the kernel's next turn of the do_poll loop: it first drops the entries
the sleeping call left (``poll_slept_freewait``, the deferred half of poll_freewait) and
rescans. A scan that finds nothing with a signal pending ends the call: the kernel returns
-ERESTARTNOHAND, which delivering a handler turns into EINTR (arch/x86/kernel/signal.c:721-724).

Not modelled, and why. Timers: a positive timeout sleeps like an infinite one until a wakeup
(the model has no clock events); a sleep that the kernel would end by the timeout is shown
as still sleeping. The restart of a poll interrupted by a signal that turns out to have no
handler (ERESTART_RESTARTBLOCK -> restart_syscall, arch/x86/kernel/signal.c:823-833): the
model reports EINTR. A poll-table entry holds a file reference in the kernel (``get_file`` in
__pollwait); the model's entry holds only the task. poll_get_entry's page allocation (ENOMEM
through ``wait->error``) is not a fault site.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from forklab.errors import Blocked, Unmodelled, kerr
from forklab.fs.file import fdget
from forklab.include.linux.sched import Task, TaskState, set_current_state_sleep
from forklab.kernel.fork import pidfd_poll
from forklab.kernel.sched.core import wake_up_process
from forklab.kernel.signal import rlimit, signal_pending
from forklab.uapi import POLLIN, RLIMIT_NOFILE

if TYPE_CHECKING:
    from forklab.include.linux.fdtable import File
    from forklab.state import KernelState

# include/uapi/asm-generic/poll.h:6-28 (POLLIN is in forklab.uapi; these belong beside it)
POLLPRI = 0x0002
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010
POLLNVAL = 0x0020
POLLRDNORM = 0x0040
POLLRDBAND = 0x0080
POLLWRNORM = 0x0100
POLLWRBAND = 0x0200
POLLMSG = 0x0400
POLLRDHUP = 0x2000

# the bits mangle_poll/demangle_poll carry over (include/linux/poll.h:128-145); the rest are dropped
POLL_MANGLE_MASK = (POLLIN | POLLOUT | POLLPRI | POLLERR | POLLNVAL | POLLRDNORM | POLLRDBAND | POLLWRNORM
                    | POLLWRBAND | POLLHUP | POLLRDHUP | POLLMSG)
DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM  # include/linux/poll.h:30
N_STACK_PPS = 30  # fs/select.c:957: (POLL_STACK_ALLOC 256 - sizeof(struct poll_list) 16) / sizeof(struct pollfd)
POLLFD_PER_PAGE = 510  # fs/select.c:832: (PAGE_SIZE - sizeof(struct poll_list)) / sizeof(struct pollfd)
POLL_WAIT = "poll"  # what a task asleep in poll(2) waits on (Task.waits_on)


@dataclass(slots=True, eq=False)
class PollTableStruct:
    """poll_table (include/linux/poll.h:38-46): the queueing callback (None: poll will not wait) and the events asked.

    ``wqueues`` stands for container_of(p, struct poll_wqueues, pt): the call this table belongs to.
    """

    _qproc: Callable[[File, list[Task], PollTableStruct], None] | None
    _key: int = 0
    wqueues: PollWqueues | None = None


@dataclass(slots=True, eq=False)
class PollWqueues:
    """struct poll_wqueues (include/linux/poll.h:101-109): one poll(2) call's table and the wait queues it is on.

    ``entries`` holds each poll_table_entry's ``wait_address``.
    """

    pt: PollTableStruct
    polling_task: Task
    triggered: int = 0
    error: int = 0
    entries: list[list[Task]] = field(default_factory=list)


def poll_initwait(current: Task) -> PollWqueues:
    """A fresh table for ``current`` whose poll_wait queues it with __pollwait (fs/select.c:121-129)."""
    pwq = PollWqueues(pt=PollTableStruct(_qproc=__pollwait), polling_task=current)
    pwq.pt.wqueues = pwq
    return pwq


def poll_freewait(pwq: PollWqueues) -> None:
    """Take the polling task off every wait queue this call put it on (fs/select.c:138-157)."""
    for wait_address in pwq.entries:  # free_poll_entry: remove_wait_queue (fs/select.c:132-136)
        wait_address[:] = [t for t in wait_address if t is not pwq.polling_task]
    pwq.entries.clear()


def poll_slept_freewait(k: KernelState, current: Task) -> None:
    """The deferred poll_freewait of an earlier poll by ``current`` that slept (raised Blocked): drop its entries.

    No kernel analogue: the kernel frees them before that poll returns. They are on the wait
    queues of hashed pids and of the pids of the caller's open pidfds.
    """
    pids = [p for p in k.init_pid_ns.idr.values() if p is not None]
    if current.files is not None:
        pids += [f.private_data for f in current.files.fdt.fd if f is not None and f.private_data is not None]
    for pid in pids:
        if any(t is current for t in pid.wait_pidfd):
            pid.wait_pidfd[:] = [t for t in pid.wait_pidfd if t is not current]


def pollwake(k: KernelState, task: Task) -> None:
    """A wait-queue wakeup for a poll(2) entry: wake ``task`` if it is asleep in poll (fs/select.c:210-218, 184-208).

    do_notify_pidfd (kernel/signal.c:1894-1901) calls this for each task on ``pid->wait_pidfd``.
    An entry left by a poll that was since woken by a signal is stale: its task no longer sleeps
    in poll, and nothing is woken.
    """
    if task.waits_on == POLL_WAIT:
        wake_up_process(k, task)


def __pollwait(filp: File, wait_address: list[Task], p: PollTableStruct) -> None:
    """poll_wait's callback: put the polling task on ``wait_address`` (fs/select.c:221-234)."""
    pwq = p.wqueues
    assert pwq is not None
    wait_address.append(pwq.polling_task)  # add_wait_queue
    pwq.entries.append(wait_address)


def do_pollfd(k: KernelState, current: Task, fd: int, events: int, pwait: PollTableStruct) -> int:
    """One pollfd: 0 for fd < 0, POLLNVAL for a closed fd, else the file's ready events among ``events`` | POLLERR | POLLHUP (fs/select.c:841-869)."""
    if fd < 0:
        return 0
    f = fdget(current, fd)
    if f is None:
        return POLLNVAL
    filter_ = (events & POLL_MANGLE_MASK) | POLLERR | POLLHUP  # demangle_poll(pollfd->events)
    pwait._key = filter_
    if f.f_inode.kind == "anon":  # vfs_poll: pidfd_fops.poll
        mask = pidfd_poll(k, f, pwait)
    else:  # vfs_poll: no f_op->poll (shmem, /dev/null, /dev/zero, directories)
        mask = DEFAULT_POLLMASK
    return mask & filter_  # mangle_poll: the same bits on x86


def do_poll(k: KernelState, current: Task, pairs: list[tuple[int, int]], wait: PollWqueues, timeout: int) -> list[int]:
    """Scan every pollfd; sleep (Blocked) if none is ready and ``timeout`` != 0; EINTR on a pending signal (fs/select.c:871-955)."""
    pt = wait.pt
    timed_out = timeout == 0
    if timed_out:  # the no-wait case (fs/select.c:882-885)
        pt._qproc = None
    revents: list[int] = []
    count = 0
    for fd, events in pairs:
        mask = do_pollfd(k, current, fd, events, pt)
        revents.append(mask)
        if mask:
            count += 1
            pt._qproc = None
    pt._qproc = None
    if not count:
        count = wait.error
        if signal_pending(current):
            raise kerr(errno.EINTR, "a signal is pending (-ERESTARTNOHAND, EINTR once its handler runs)",
                       "fs/select.c:925")
    if count or timed_out:
        return revents
    poll_schedule_timeout(k, current)


def poll_schedule_timeout(k: KernelState, current: Task) -> NoReturn:
    """Sleep interruptibly until a wait queue entry's wakeup or a signal; the model raises Blocked (fs/select.c:236-260)."""
    set_current_state_sleep(k, current, TaskState.TASK_INTERRUPTIBLE, POLL_WAIT)
    raise Blocked(current.pid, POLL_WAIT)


def do_sys_poll(k: KernelState, current: Task, pairs: list[tuple[int, int]], timeout: int) -> list[int]:
    """poll(2) over ``(fd, events)`` pairs: each fd's revents, or Blocked while none is ready (fs/select.c:960-1023)."""
    nfds = len(pairs)
    if nfds > rlimit(current, RLIMIT_NOFILE):
        raise kerr(errno.EINVAL, f"nfds {nfds} exceeds RLIMIT_NOFILE {rlimit(current, RLIMIT_NOFILE)}", "fs/select.c:973")
    pollfds = [(_s32(fd), events & 0xFFFF) for fd, events in pairs]  # struct pollfd: int fd; short events
    for todo in range(nfds - N_STACK_PPS, 0, -POLLFD_PER_PAGE):  # a kmalloc'd poll_list past the stack's entries
        if k.fault.should_fail("do_sys_poll:kmalloc"):
            raise kerr(errno.ENOMEM, f"no memory for a poll_list of {min(todo, POLLFD_PER_PAGE)} entries",
                       "fs/select.c:995")
    _refuse_pipes(current, pollfds)
    poll_slept_freewait(k, current)
    table = poll_initwait(current)
    try:
        revents = do_poll(k, current, pollfds, table, timeout)
    except Blocked:
        raise  # asleep with its entries queued; the wakeup is pollwake's
    except BaseException:
        poll_freewait(table)
        raise
    poll_freewait(table)
    return revents


def _refuse_pipes(current: Task, pollfds: list[tuple[int, int]]) -> None:
    """Polling a pipe needs pipe_poll (fs/pipe.c), which the model lacks: Unmodelled before anything changes."""
    for fd, _events in pollfds:
        f = fdget(current, fd) if fd >= 0 else None
        if f is not None and f.f_inode.kind == "pipe":
            raise Unmodelled(f"poll on pipe fd {fd}: pipe_poll (fs/pipe.c) is not modelled")


def _s32(v: int) -> int:
    """The value as a C int (struct pollfd's fd)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v
