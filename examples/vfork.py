"""vfork: the child borrows the parent's memory and the parent sleeps until the child exits or execs.

The store the child makes is in the memory the parent sees (the model's memory, through
``os.store``/``os.load``), and the parent cannot run before the child is done with it.
"""


def main(os):
    shared = os.mmap(4096)
    os.store_int(shared, 1)
    pid = os.vfork()
    if pid == 0:
        os.store_int(shared, 42)
        os.write(1, b"child: stored 42, parent is asleep\n")
        os._exit(0)
    os.write(1, b"parent: woke up, reads %d\n" % os.load_int(shared))
    os.waitpid(pid, 0)


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
