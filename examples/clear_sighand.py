"""CLONE_CLEAR_SIGHAND (Linux 5.5): clone3 resets the child's caught signals to SIG_DFL; ignored ones stay ignored.

The parent catches SIGUSR1 and ignores SIGUSR2, then makes two children: one by fork, which
inherits the handler, and one by clone3 with CLONE_CLEAR_SIGHAND, whose handlers
copy_sighand resets (flush_signal_handlers(p, 0) keeps SIG_IGN). Each child reports its
dispositions, says it is ready and sleeps in a pipe read. SIGUSR1 then runs the fork child's
handler, which exits 7, and kills the clone3 child by the default action.

    $ python examples/clear_sighand.py
    fork child: SIGUSR1 handler kept: True
    clone3 child: SIGUSR1 is SIG_DFL: True, SIGUSR2 still SIG_IGN: True
    SIGUSR1 to the fork child: its handler ran and exited 7
    SIGUSR1 to the clone3 child: killed by signal 10, the default action
"""

import forklab


def child(os, name, r, w, ready, on_usr1):
    """Report the dispositions, say ready, sleep in a read; exit 1 if the read ever ends."""
    os.close(w)
    usr1, usr2 = os.sigaction(os.SIGUSR1)[0], os.sigaction(os.SIGUSR2)[0]
    if name == "fork":
        print(f"fork child: SIGUSR1 handler kept: {usr1 is on_usr1}")
    else:
        print(f"clone3 child: SIGUSR1 is SIG_DFL: {usr1 == os.SIG_DFL}, SIGUSR2 still SIG_IGN: {usr2 == os.SIG_IGN}")
    os.write(ready, b"!")
    os.read(r, 1)
    os._exit(1)


def main(os):
    def on_usr1(signum, frame):
        os._exit(7)

    os.signal(os.SIGUSR1, on_usr1)
    os.signal(os.SIGUSR2, os.SIG_IGN)
    r, w = os.pipe()
    ready_r, ready_w = os.pipe()
    forked = os.fork()
    if forked == 0:
        child(os, "fork", r, w, ready_w, on_usr1)
    cloned = os.clone3(forklab.CloneArgs(flags=os.CLONE_CLEAR_SIGHAND, exit_signal=os.SIGCHLD))
    if cloned == 0:
        child(os, "clone3", r, w, ready_w, on_usr1)
    os.read(ready_r, 1)
    os.read(ready_r, 1)
    for pid in (forked, cloned):
        os.kill(pid, os.SIGUSR1)
    _, status = os.waitpid(forked, 0)
    print(f"SIGUSR1 to the fork child: its handler ran and exited {os.WEXITSTATUS(status)}")
    _, status = os.waitpid(cloned, 0)
    print(f"SIGUSR1 to the clone3 child: killed by signal {os.WTERMSIG(status)}, the default action")
    os.close(w)


if __name__ == "__main__":
    import sys

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
