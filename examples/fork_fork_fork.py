"""fork(); fork(); fork(): each fork doubles the processes, so eight print.

Every process prints its pid and its parent's. The first process waits for its three
children, each child for its own, so the tree is gone when the run ends.

    $ python examples/fork_fork_fork.py | sort | wc -l
    8
"""


def main(os):
    children = 0
    for _ in range(3):
        if os.fork() == 0:
            children = 0  # a new process: the forks before this one made its parent's children, not its own
        else:
            children += 1
    os.write(1, b"pid %d, parent %d\n" % (os.getpid(), os.getppid()))
    for _ in range(children):
        os.wait()


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
