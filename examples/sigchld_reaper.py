"""A SIGCHLD handler that reaps children as they exit, with waitpid(-1, WNOHANG) until none is left.

The parent sleeps in a pipe read whose write ends only the children hold. Each child's exit
sends SIGCHLD; the signal wakes the read, the handler runs, and where the pipe still has
writers the read restarts (signal() sets SA_RESTART; real Python retries the read after
the handler, PEP 475). When the last child is gone the read sees EOF, and a last SIGCHLD is
handled on the way back from that read.
"""


def main(os):
    reaped = []

    def on_sigchld(signum, frame):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            reaped.append((pid, os.WEXITSTATUS(status)))

    os.signal(os.SIGCHLD, on_sigchld)
    r, w = os.pipe()
    for n in range(3):
        if os.fork() == 0:
            os.close(r)
            os._exit(n)  # the exit closes the child's write end
    os.close(w)
    while os.read(r, 1) != b"":
        pass
    print(f"reaped {sorted(reaped)}")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
