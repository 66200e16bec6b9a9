"""A fork bomb: every process forks forever, until the kernel's threads-max refuses with EAGAIN.

forklab.run boots the model with threads-max 1024; each fork that finds the table full
fails with BlockingIOError (EAGAIN) and that process dies of it (SIGABRT); init reaps
them all. No host process or thread is created.
"""


def main(os):
    while True:
        os.fork()


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__)
    print(f"{len(run.crashes)} processes died of EAGAIN; first process: signal {run.status & 0x7f}")
    sys.stdout.buffer.write(run.stderr.splitlines(keepends=True)[3])
