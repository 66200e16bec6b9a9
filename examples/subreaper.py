"""Orphans adopted by a subreaper: after PR_SET_CHILD_SUBREAPER, orphaned descendants come to this process, not init.

The first process marks itself a child subreaper and forks a middle process, which forks a
grandchild and exits at once. The grandchild waits for its parent's death (EOF on a pipe
whose write end only the middle process held), then looks at its new parent: the subreaper,
which reaps both (kernel/exit.c: find_new_reaper walks up to the nearest subreaper).

    $ python examples/subreaper.py
    grandchild: orphaned, adopted by the subreaper
    subreaper: reaped the middle process (status 0)
    subreaper: reaped the adopted grandchild (status 5)
"""


def main(os):
    os.prctl(os.PR_SET_CHILD_SUBREAPER, 1)
    me = os.getpid()
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            os.close(w)
            os.read(r, 1)  # EOF: the middle process, the last writer, has exited
            adopter = "the subreaper" if os.getppid() == me else f"pid {os.getppid()}"
            print(f"grandchild: orphaned, adopted by {adopter}")
            os._exit(5)
        os._exit(0)
    os.close(r)
    os.close(w)
    _, status = os.waitpid(middle, 0)
    print(f"subreaper: reaped the middle process (status {os.WEXITSTATUS(status)})")
    _, status = os.wait()
    print(f"subreaper: reaped the adopted grandchild (status {os.WEXITSTATUS(status)})")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
