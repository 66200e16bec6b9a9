"""A fork+exec+wait shell: the pipeline ``echo forked and execed | cat | wc -w`` by hand, then by /bin/sh.

For each stage but the last the shell makes a pipe, then forks one child per stage. Each
child dup2s the previous pipe's read end onto fd 0 and its own pipe's write end onto fd 1,
closes every pipe fd it still holds, and execs the command. The shell closes its copies as
it goes (a pipe reports EOF only when every write end is closed, so one left open would hang
``wc``) and waits for every stage. ``os.system`` then runs the same line with ``/bin/sh -c``,
which does the same calls.

Uses only Python's real ``os``, so it also runs on the host (with its /bin/echo, cat, wc, sh).

    $ python examples/shell_pipeline.py
    3
    pipeline done: echo exited 0, cat exited 0, wc exited 0
    3
    sh -c exited 0
"""

PIPELINE = [["echo", "forked", "and", "execed"], ["cat"], ["wc", "-w"]]


def stage(os, argv, prev, pipe):
    """A child: read from ``prev``, write to ``pipe``'s write end, close the pipe fds, exec ``argv``."""
    if prev != -1:
        os.dup2(prev, 0)
        os.close(prev)
    if pipe is not None:
        r, w = pipe
        os.dup2(w, 1)
        os.close(w)
        os.close(r)
    try:
        os.execvp(argv[0], argv)
    except OSError:
        os._exit(127)


def run_pipeline(os, stages):
    """Fork one child per stage, joined by pipes; wait for all; their wait statuses."""
    pids = []
    prev = -1
    for i, argv in enumerate(stages):
        pipe = os.pipe() if i < len(stages) - 1 else None
        pid = os.fork()
        if pid == 0:
            stage(os, argv, prev, pipe)
        if prev != -1:
            os.close(prev)
        if pipe is not None:
            os.close(pipe[1])
            prev = pipe[0]
        pids.append(pid)
    return [os.waitpid(pid, 0)[1] for pid in pids]


def main(os):
    statuses = run_pipeline(os, PIPELINE)
    report = ", ".join(f"{argv[0]} exited {os.WEXITSTATUS(s)}" for argv, s in zip(PIPELINE, statuses, strict=True))
    os.write(1, f"pipeline done: {report}\n".encode())
    status = os.system("echo forked and execed | cat | wc -w")
    os.write(1, f"sh -c exited {os.WEXITSTATUS(status)}\n".encode())


if __name__ == "__main__":
    import sys

    import forklab
    from forklab.runner.programs import STANDARD_PROGRAMS

    run = forklab.run(__file__, programs=STANDARD_PROGRAMS)
    sys.stdout.buffer.write(run.stdout)
