"""fork returns twice: 0 in the child, the child's pid in the parent, which waits for it.

    $ python examples/fork_basics.py
    child 3
    parent saw 7
"""


def main(os):
    pid = os.fork()
    if pid == 0:
        os.write(1, b"child %d\n" % os.getpid())
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    os.write(1, b"parent saw %d\n" % os.WEXITSTATUS(status))


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
