"""The runner's os: sleep, nanosleep, pause, times, getcwd, stat/fstat, unlink, mkdir, sched_yield."""

from __future__ import annotations

import os as host_os
from typing import Any

import forklab
from forklab.include.linux.time64 import NSEC_PER_SEC
from forklab.uapi import O_CREAT, O_WRONLY, SIGUSR1


def test_sleep_advances_the_clock_and_interleaves_as_sleep_implies() -> None:
    def main(os: Any) -> None:
        t0 = os.time_ns()
        os.system('sh -c "sleep 2; echo b" & echo a; wait')
        os.write(1, b"%d\n" % ((os.time_ns() - t0) // NSEC_PER_SEC))

    run = forklab.run(main)
    assert run.stdout == b"a\nb\n2\n"
    for seed in (1, 2, 3):
        assert forklab.run(main, seed=seed).stdout == b"a\nb\n2\n"


def test_time_sleep_and_nanosleep_sleep_their_interval() -> None:
    def main(os: Any) -> None:
        t0 = os.time_ns()
        os.sleep(1.5)
        t1 = os.time_ns()
        os.nanosleep(0, 250)
        t2 = os.time_ns()
        os.write(1, b"%d %d\n" % (t1 - t0 >= 1.5 * NSEC_PER_SEC, t2 - t1 >= 250))

    assert forklab.run(main).stdout == b"1 1\n"


def test_pause_returns_after_the_handler() -> None:
    def main(os: Any) -> None:
        seen = []
        os.signal(SIGUSR1, lambda sig, frame: seen.append(sig))
        pid = os.fork()
        if pid == 0:
            os.kill(os.getppid(), SIGUSR1)
            os._exit(0)
        os.pause()
        os.write(1, b"handled %r\n" % seen)
        os.waitpid(pid, 0)

    assert forklab.run(main).stdout == b"handled [10]\n"


def test_files_stat_unlink_mkdir_getcwd_and_their_errors() -> None:
    def main(os: Any) -> None:
        os.mkdir("/tmp/d", 0o755)
        os.chdir("/tmp/d")
        fd = os.open("f", O_CREAT | O_WRONLY, 0o600)
        os.write(fd, b"abc")
        st, fst = os.stat("f"), os.fstat(fd)
        out = [os.getcwd(), oct(st.st_mode), str(st.st_size), str(st == fst), str(st.st_nlink)]
        pid = os.fork()
        if pid == 0:  # replay in the child: the same results, then live calls
            os.unlink("f")
            os._exit(0)
        os.waitpid(pid, 0)
        out.append(str(os.fstat(fd).st_nlink))
        for call, arg in (("unlink", "/tmp/d"), ("mkdir", "/tmp/d"), ("stat", "/nope"), ("unlink", "/tmp/d/f")):
            try:
                getattr(os, call)(arg)
            except OSError as e:
                out.append(type(e).__name__)
        os.sched_yield()
        os.write(1, (" ".join(out) + "\n").encode())

    expect = "/tmp/d 0o100600 3 True 1 0 IsADirectoryError FileExistsError FileNotFoundError FileNotFoundError\n"
    assert forklab.run(main).stdout == expect.encode()


def test_times_is_a_times_result_of_the_models_ticks() -> None:
    def main(os: Any) -> None:
        for _ in range(30000):
            os.getpid()
        t = os.times()
        os.write(1, b"%s %r %r\n" % (type(t).__name__.encode(), t.system, t.user))

    run = forklab.run(main)
    assert run.stdout == b"times_result 0.03 0.0\n"
    assert host_os.times_result is not None


def test_explore_with_sleep_and_stat() -> None:
    def main(os: Any) -> None:
        pid = os.fork()
        if pid == 0:
            os.mkdir("/tmp/x")
            os._exit(0)
        try:
            os.stat("/tmp/x")
            os.write(1, b"seen\n")
        except FileNotFoundError:
            os.write(1, b"absent\n")
        os.waitpid(pid, 0)

    ex = forklab.explore(main)
    assert ex.complete and sorted(o.stdout for o in ex.outcomes) == [b"absent\n", b"seen\n"]
