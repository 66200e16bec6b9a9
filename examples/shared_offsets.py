"""Shared file offsets: a forked child shares its parent's open file description, offset and all.

One open before fork: both processes write through the same description, so the child's
write moves the offset they share and the parent's write lands after it. Two opens after
fork: each process has its own description with its own offset, and the parent's write
overwrites the start of the child's.

Uses only Python's real ``os`` (the files are created in the working directory).

    $ python examples/shared_offsets.py
    one open, shared by fork: b'child wrote this\\nparent\\n'
    two opens, one each:      b'PARENT\\nrote this\\n'
"""


def shared(os, path):
    """Open, fork, both write; what the file holds."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:
        os.write(fd, b"child wrote this\n")
        os._exit(0)
    os.waitpid(pid, 0)
    os.write(fd, b"parent\n")
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 100)
    os.close(fd)
    return data


def separate(os, path):
    """Fork, each opens the file for itself and writes; what the file holds."""
    pid = os.fork()
    if pid == 0:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"child wrote this\n")
        os._exit(0)
    os.waitpid(pid, 0)
    fd = os.open(path, os.O_RDWR)
    os.write(fd, b"PARENT\n")
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 100)
    os.close(fd)
    return data


def main(os):
    os.write(1, b"one open, shared by fork: %r\n" % shared(os, "shared_offsets.one"))
    os.write(1, b"two opens, one each:      %r\n" % separate(os, "shared_offsets.two"))


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__)
    sys.stdout.buffer.write(run.stdout)
