"""The shell's loop: fork, exec a program in the child, wait in the parent.

Run with the installed program: ``forklab.run(__file__, programs={"/bin/hello": "examples/hello.py"})``.
exec replaces the child's image, so nothing after execv runs in it unless exec fails.
"""


def main(os):
    for word in ("one", "two"):
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/hello", ["hello", word])
        _, status = os.waitpid(pid, 0)
        print(f"{pid} exited {os.WEXITSTATUS(status)}")
    pid = os.fork()
    if pid == 0:
        try:
            os.execv("/bin/missing", ["missing"])
        except FileNotFoundError:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    print(f"exec failed: {os.WEXITSTATUS(status)}")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    import forklab

    hello = str(Path(__file__).with_name("hello.py"))
    run = forklab.run(__file__, programs={"/bin/hello": hello})
    sys.stdout.buffer.write(run.stdout)
