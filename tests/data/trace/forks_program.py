"""forks.c as a forklab program: the same calls in the same order, for tests/test_trace_strace.py."""

from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_VM,
    SIG_BLOCK,
    SIG_UNBLOCK,
    SIGCHLD,
    SIGKILL,
    CloneArgs,
)


def main(os):  # type: ignore[no-untyped-def]
    os.signal(SIGCHLD, lambda sig, *rest: None)

    def reap(pid):  # type: ignore[no-untyped-def]
        os.waitpid(pid, 0)  # wait4(pid, &status, 0, NULL), as forks.c calls it
        os.sigprocmask(SIG_UNBLOCK, {SIGCHLD})

    os.sigprocmask(SIG_BLOCK, {SIGCHLD})
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    reap(pid)

    os.sigprocmask(SIG_BLOCK, {SIGCHLD})
    pid = os.vfork()
    if pid == 0:
        os._exit(1)
    reap(pid)

    os.sigprocmask(SIG_BLOCK, {SIGCHLD})
    pid = os.clone(lambda: 2, CLONE_VM | CLONE_FS | CLONE_FILES | SIGCHLD)
    reap(pid)

    os.sigprocmask(SIG_BLOCK, {SIGCHLD})
    want = os.getpid() + 1000
    area = os.mmap(4096)
    pid = os.clone3(CloneArgs(flags=CLONE_PIDFD | CLONE_PARENT_SETTID, pidfd=area, parent_tid=area + 4,
                              exit_signal=SIGCHLD, set_tid=[want]))
    if pid == 0:
        os.pause()
        os._exit(3)
    os.kill(pid, SIGKILL)
    reap(pid)
    return 0
