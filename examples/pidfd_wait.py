"""Waiting through a pidfd: pidfd_open(2) gives a file descriptor for a process, waitid(P_PIDFD) waits on it.

A pidfd names one process, without the pid-reuse race of waiting by number. Once the child
is reaped its pid is free, so a second pidfd_open of it fails with ESRCH.

Uses only Python's real ``os``.

    $ python examples/pidfd_wait.py
    child exited with 5, seen through its pidfd
    the pidfd named the child: True; si_code is CLD_EXITED: True
    after the wait, pidfd_open of its pid fails with ESRCH
"""


def main(os):
    pid = os.fork()
    if pid == 0:
        os._exit(5)
    fd = os.pidfd_open(pid)
    info = os.waitid(os.P_PIDFD, fd, os.WEXITED)
    os.close(fd)
    print(f"child exited with {info.si_status}, seen through its pidfd")
    print(f"the pidfd named the child: {info.si_pid == pid}; si_code is CLD_EXITED: {info.si_code == os.CLD_EXITED}")
    try:
        os.pidfd_open(pid)
    except ProcessLookupError:
        print("after the wait, pidfd_open of its pid fails with ESRCH")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__)
    sys.stdout.buffer.write(run.stdout)
