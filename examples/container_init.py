"""A container-like init: clone(CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS) starts pid 1 of a new pid namespace.

Inside, the new process's getpid() is 1 and getppid() is 0 (its parent lives outside the
namespace). It acts as init: a process of the namespace whose parent exits is re-parented
to it (find_child_reaper), not to the system's init, and it reaps every child until none is
left. Outside, its parent knows it by another pid. (The new mount and UTS namespaces are
made too; the model has no mount(2), sethostname(2) or uname(2) yet to show them.)

    $ python examples/container_init.py
    container init: getpid() = 1, getppid() = 0
    orphan 3: re-parented to 1, the container's init
    container init: reaped [2, 3], then had no child left
    outside: the container's init is pid 3 here; it exited with 0
"""


def container(os):
    """The container's init: fork a child that leaves an orphan behind, then reap until ECHILD."""
    print(f"container init: getpid() = {os.getpid()}, getppid() = {os.getppid()}")
    r, w = os.pipe()
    if os.fork() == 0:
        if os.fork() == 0:
            os.close(w)
            os.read(r, 1)  # EOF once its parent, the last other writer, has exited
            print(f"orphan {os.getpid()}: re-parented to {os.getppid()}, the container's init")
            os._exit(0)
        os._exit(0)
    os.close(r)
    os.close(w)
    reaped = []
    while True:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            break
        reaped.append(pid)
    print(f"container init: reaped {sorted(reaped)}, then had no child left")
    return 0


def main(os):
    flags = os.CLONE_NEWPID | os.CLONE_NEWNS | os.CLONE_NEWUTS | os.SIGCHLD
    pid = os.clone(container, flags, os)
    _, status = os.waitpid(pid, 0)
    print(f"outside: the container's init is pid {pid} here; it exited with {os.WEXITSTATUS(status)}")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
