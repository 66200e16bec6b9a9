"""Job control: a child stopped by SIGSTOP (seen with WUNTRACED), continued by SIGCONT (seen with WCONTINUED).

The child sleeps in a pipe read. SIGSTOP stops it, and waitpid with WUNTRACED reports the
stop; SIGCONT resumes it (back into its read), and waitpid with WCONTINUED reports that.
Closing the pipe then lets the child finish, and a plain waitpid reaps it.

Uses only Python's real ``os`` (the signal numbers come from the ``signal`` module).

    $ python examples/job_control.py
    stopped: True, by signal 19 (SIGSTOP)
    continued: True
    exited: True, status 0
"""

import signal


def main(os):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # sleeps until the parent closes its end
        os._exit(0)
    os.close(r)
    os.kill(pid, signal.SIGSTOP)
    _, status = os.waitpid(pid, os.WUNTRACED)
    print(f"stopped: {os.WIFSTOPPED(status)}, by signal {os.WSTOPSIG(status)} (SIGSTOP)")
    os.kill(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, os.WCONTINUED)
    print(f"continued: {os.WIFCONTINUED(status)}")
    os.close(w)
    _, status = os.waitpid(pid, 0)
    print(f"exited: {os.WIFEXITED(status)}, status {os.WEXITSTATUS(status)}")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
