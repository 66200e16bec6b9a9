"""The kernel API of nanosleep, clock_nanosleep, pause, times, getcwd, stat, unlink, mkdir and sched_yield."""

from __future__ import annotations

import errno

import pytest

from forklab import Kernel
from forklab.errors import Blocked, KernelError
from forklab.include.linux.sched import SigAction, TaskState
from forklab.include.linux.time import CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, TIMER_ABSTIME
from forklab.include.linux.time64 import NSEC_PER_SEC
from forklab.kernel.time.time import USER_HZ
from forklab.uapi import MAP_ANONYMOUS, MAP_PRIVATE, O_CREAT, O_WRONLY, PROT_READ, PROT_WRITE, SIGUSR1

HANDLER = 0x401000


def _child(k: Kernel) -> object:
    return k.find_task(k.fork(k.init_task))


def test_nanosleep_sleeps_until_the_interrupt_moves_the_clock() -> None:
    k = Kernel()
    c = _child(k)
    with pytest.raises(Blocked):
        k.nanosleep(c, (2, 5))
    start = k.clock_ns
    assert c.state == TaskState.TASK_INTERRUPTIBLE and c.nanosleep_sleeper is not None
    expires = k.hrtimer_bases[0].timer.expires
    assert expires == start + 2 * NSEC_PER_SEC + 5 + c.timer_slack_ns  # the hard expiry: rqtp plus the slack
    assert k.hrtimer_interrupt()
    assert k.clock_ns == expires
    assert c.state == TaskState.TASK_RUNNING
    assert k.nanosleep(c, (2, 5)) == 0 and c.nanosleep_sleeper is None and not k.hrtimer_bases
    assert not k.hrtimer_interrupt()


def test_sleepers_wake_in_deadline_then_arming_order() -> None:
    k = Kernel()
    a, b, c = _child(k), _child(k), _child(k)
    for t, secs in ((a, 3), (b, 1), (c, 1)):
        with pytest.raises(Blocked):
            k.nanosleep(t, (secs, 0))
    assert [s.task for s in k.hrtimer_bases] == [b, c, a]  # by hard expiry: c was armed 1 µs after b
    b_hard = k.hrtimer_bases[0].timer.expires
    assert k.hrtimer_bases[1].timer._softexpires <= b_hard  # c's soft expiry falls in b's slack
    k.hrtimer_interrupt()
    assert k.clock_ns == b_hard  # one interrupt at b's hard expiry takes c too
    assert b.state == c.state == TaskState.TASK_RUNNING and a.state == TaskState.TASK_INTERRUPTIBLE
    k.hrtimer_interrupt()
    assert a.state == TaskState.TASK_RUNNING


def test_a_handled_signal_ends_the_sleep_with_eintr_and_the_remaining_time() -> None:
    k = Kernel()
    c = _child(k)
    k.rt_sigaction(c, SIGUSR1, SigAction(HANDLER))
    buf = k.mmap(c, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    with pytest.raises(Blocked):
        k.nanosleep(c, (10, 0), buf)
    deadline = k.hrtimer_bases[0].timer.expires
    k.kill(k.init_task, c.pid, SIGUSR1)
    assert c.state == TaskState.TASK_RUNNING
    with pytest.raises(KernelError) as e:
        k.nanosleep(c, (10, 0), buf)
    assert e.value.errno == errno.EINTR
    raw = k.load(c, buf, 16)
    rem = int.from_bytes(raw[:8], "little") * NSEC_PER_SEC + int.from_bytes(raw[8:], "little")
    assert rem == deadline - k.clock_ns
    assert c.restart_block.expires == deadline and not k.hrtimer_bases


def test_clock_nanosleep_errors_and_absolute_deadline() -> None:
    k = Kernel()
    c = _child(k)
    for args, code in (((99, 0, (1, 0)), errno.EINVAL), ((CLOCK_MONOTONIC_RAW, 0, (1, 0)), errno.EOPNOTSUPP),
                       ((CLOCK_MONOTONIC, 0, (0, NSEC_PER_SEC)), errno.EINVAL),
                       ((CLOCK_MONOTONIC, 0, (-1, 0)), errno.EINVAL)):
        with pytest.raises(KernelError) as e:
            k.clock_nanosleep(c, *args)
        assert e.value.errno == code
    while k.clock_ns <= c.timer_slack_ns:
        k.getpid(c)
    assert k.clock_nanosleep(c, CLOCK_MONOTONIC, TIMER_ABSTIME, (0, 0)) == 0  # hard expiry past: no sleep
    with pytest.raises(TypeError):
        k.nanosleep(c, 1)  # type: ignore[arg-type]


def test_pause_sleeps_until_a_signal() -> None:
    k = Kernel()
    c = _child(k)
    k.rt_sigaction(c, SIGUSR1, SigAction(HANDLER))
    with pytest.raises(Blocked):
        k.pause(c)
    assert c.waits_on == "pause"
    k.kill(k.init_task, c.pid, SIGUSR1)
    with pytest.raises(KernelError) as e:
        k.pause(c)
    assert e.value.errno == errno.EINTR


def test_times_counts_the_groups_and_the_reaped_childrens_ticks() -> None:
    k = Kernel()
    init = k.init_task
    pid = k.fork(init)
    c = k.find_task(pid)
    for _ in range(20000):
        k.getpid(c)
    k.exit(c, 0)
    k.wait4(init, pid)
    ticks, tms = k.times(init)
    sig = init.signal
    assert tms.tms_cstime == sig.cstime * USER_HZ // NSEC_PER_SEC and tms.tms_cstime == 2
    assert tms.tms_stime == init.stime * USER_HZ // NSEC_PER_SEC
    assert ticks == ((-300 * 250) % 2**32 + k.clock_ns // 4_000_000) * 4_000_000 // 10_000_000


def test_getcwd_erange_and_unreachable() -> None:
    k = Kernel()
    t = k.init_task
    k.mkdir(t, "/tmp/dir")
    k.chdir(t, "/tmp/dir")
    assert k.getcwd(t, 9) == "/tmp/dir"
    with pytest.raises(KernelError) as e:
        k.getcwd(t, 8)
    assert e.value.errno == errno.ERANGE
    k.chroot(t, "/etc")
    assert k.getcwd(t, 100) == "(unreachable)/tmp/dir"


def test_stat_reports_the_inode() -> None:
    k = Kernel()
    t = k.init_task
    fd = k.open(t, "/tmp/f", O_CREAT | O_WRONLY, 0o640)
    k.write(t, fd, b"hello")
    st = k.stat(t, "/tmp/f")
    inode = k.vfs.lookup("/tmp/f")
    assert (st.ino, st.mode, st.size, st.nlink, st.uid) == (inode.i_ino, inode.i_mode, 5, 1, 0)
    assert k.fstat(t, fd) == st
    k.unlink(t, "/tmp/f")
    assert k.fstat(t, fd).nlink == 0 and k.vfs.lookup("/tmp/f") is None
    before = k.stat(t, "/tmp").nlink
    k.mkdir(t, "/tmp/sub", 0o777)
    assert k.stat(t, "/tmp").nlink == before + 1
    assert k.stat(t, "/tmp/sub").mode & 0o7777 == 0o777 & ~t.fs.umask


@pytest.mark.parametrize(("call", "path", "code"), [
    ("unlink", "/tmp", errno.EISDIR), ("unlink", "/nope", errno.ENOENT), ("unlink", "/etc/hostname/", errno.ENOTDIR),
    ("unlink", "/", errno.EISDIR), ("mkdir", "/tmp", errno.EEXIST), ("mkdir", "/nope/x", errno.ENOENT),
    ("mkdir", "/etc/hostname/x", errno.ENOTDIR), ("stat", "/nope", errno.ENOENT), ("stat", "", errno.ENOENT),
    ("stat", "/etc/hostname/", errno.ENOTDIR),
])
def test_name_errors(call: str, path: str, code: int) -> None:
    k = Kernel()
    with pytest.raises(KernelError) as e:
        getattr(k, call)(k.init_task, path)
    assert e.value.errno == code


def test_sched_yield_is_zero_and_keeps_the_task_runnable() -> None:
    k = Kernel()
    assert k.sched_yield(k.init_task) == 0 and k.init_task.on_rq
