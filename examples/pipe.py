"""A pipe from parent to child: the parent writes, the child reads until EOF.

The child must close its copy of the write end, or it would never see EOF: a pipe reports
EOF only when every write end, in every process, is closed.
"""


def main(os):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        data = b""
        while chunk := os.read(r, 4):
            data += chunk
        os.write(1, b"child read: " + data.upper() + b"\n")
        os._exit(0)
    os.close(r)
    os.write(w, b"hello through the pipe")
    os.close(w)
    _, status = os.waitpid(pid, 0)
    os.write(1, b"child exited %d\n" % os.WEXITSTATUS(status))


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
