"""A zombie and an orphan.

The zombie: a child that has exited stays in the process table until its parent waits for
it. WNOWAIT peeks at it without reaping; kill(pid, 0) still finds it. After waitpid it is
gone (ESRCH).

The orphan: a child whose parent exits is adopted by init (pid 1), which reaps it. The
grandchild waits for its parent's death by reading a pipe whose other end only the parent
held: EOF means the parent is gone.
"""


def zombie(os):
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    os.kill(pid, 0)
    print(f"zombie {pid} exited with {info.si_status}, still there")
    _, status = os.waitpid(pid, 0)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print(f"reaped {pid} (status {os.WEXITSTATUS(status)}), now gone")


def orphan(os):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            os.close(w)
            os.read(r, 1)  # EOF once the parent, the last writer, has exited
            print(f"orphan's parent is now {os.getppid()}")
            os._exit(0)
        os._exit(0)
    os.close(r)
    os.close(w)
    os.waitpid(pid, 0)


def main(os):
    zombie(os)
    orphan(os)


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__)
    sys.stdout.buffer.write(run.stdout)
