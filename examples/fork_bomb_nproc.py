"""A fork bomb held by RLIMIT_NPROC: every process forks until fork fails with EAGAIN.

Root is exempt from RLIMIT_NPROC (kernel/fork.c:1944-1950), so the bomb first becomes uid
1000 and limits that user to 8 processes. Every process forks until fork fails with EAGAIN
(BlockingIOError), then waits on a pipe that only the first process still holds open. Once
the first process has seen EAGAIN it closes its end; every process then reaps its children
and exits with the size of its subtree, so the first process can count the whole bomb.

    $ python examples/fork_bomb_nproc.py
    fork failed with EAGAIN: uid 1000 has reached its RLIMIT_NPROC of 8
    the bomb made 8 processes in all
"""

import errno

LIMIT = 8


def bomb(os, w):
    """Fork until EAGAIN; True in the first process, which still holds the pipe's write end ``w``."""
    first = True
    children = 0
    while True:
        try:
            pid = os.fork()
        except BlockingIOError as e:
            if first:
                print(f"fork failed with {errno.errorcode[e.errno]}: uid 1000 has reached its RLIMIT_NPROC of {LIMIT}")
            return first, children
        if pid == 0:
            if first:
                os.close(w)  # only the first process keeps the write end
            first, children = False, 0
        else:
            children += 1


def main(os):
    os.setresuid(1000, 1000, 1000)
    os.setrlimit(os.RLIMIT_NPROC, (LIMIT, LIMIT))
    r, w = os.pipe()
    first, children = bomb(os, w)
    if first:
        os.close(w)
    else:
        os.read(r, 1)  # EOF once the first process has closed the last write end
    total = 1
    for _ in range(children):
        _, status = os.wait()
        total += os.WEXITSTATUS(status)
    if not first:
        os._exit(total)
    print(f"the bomb made {total} processes in all")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
