"""Threads: clone with CLONE_THREAD makes more tasks of one process, and exit_group ends them all.

The process clones two threads with pthread_create's sharing flags (CLONE_VM, CLONE_FS,
CLONE_FILES, CLONE_SIGHAND, CLONE_THREAD, CLONE_SYSVSEM). Each thread stores its tid and its
pid in the memory they share; all report the one pid, and /proc shows three threads. The
threads then sleep in a pipe read that nothing ends; the main thread calls ``_exit``, which
is exit_group(2): it kills every thread of the group (zap_other_threads), and the parent's
wait sees the process's status once its last thread is gone.

    $ python examples/threads_exit_group.py
    threads: 2 new tids, all with the process's pid: True
    /proc/<pid>/status: Threads:	3
    parent: the process exited with 3; its two threads, asleep in read, died with it
"""


def thread(os, slots, n, ready, never):
    """A thread: store (tid, pid) in slot ``n``, say it is ready, then sleep in a read that never ends."""
    os.store_int(slots + 16 * n, os.gettid())
    os.store_int(slots + 16 * n + 8, os.getpid())
    os.write(ready, b"!")
    os.read(never, 1)  # exit_group kills the thread here
    os.write(1, b"not reached\n")


def worker(os):
    """The threaded process: two CLONE_THREAD clones, a look at them, then exit_group(3)."""
    flags = (os.CLONE_VM | os.CLONE_FS | os.CLONE_FILES | os.CLONE_SIGHAND | os.CLONE_THREAD
             | os.CLONE_SYSVSEM)
    slots = os.mmap(4096)
    ready_r, ready_w = os.pipe()
    never, _keep = os.pipe()
    tids = [os.clone(thread, flags, os, slots, n, ready_w, never) for n in range(2)]
    os.read(ready_r, 1)
    os.read(ready_r, 1)
    pid = os.getpid()
    stored = [(os.load_int(slots + 16 * n), os.load_int(slots + 16 * n + 8)) for n in range(2)]
    same = all(tid == tids[n] and their_pid == pid for n, (tid, their_pid) in enumerate(stored))
    print(f"threads: {len(set(tids) - {pid})} new tids, all with the process's pid: {same}")
    status = os.read_proc(f"/proc/{pid}/status").decode()
    print("/proc/<pid>/status: " + next(line for line in status.splitlines() if line.startswith("Threads:")))
    os._exit(3)


def main(os):
    pid = os.fork()
    if pid == 0:
        worker(os)
    _, status = os.waitpid(pid, 0)
    print(f"parent: the process exited with {os.WEXITSTATUS(status)}; its two threads, asleep in read, died with it")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
