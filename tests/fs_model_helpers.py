"""Hand-built kernel stand-in and tasks for the files/fs tests (no KernelState() boot needed)."""

from __future__ import annotations

from forklab.fs.debug import check_fs_invariants
from forklab.include.linux.cred import Cred
from forklab.include.linux.fdtable import FilesStruct
from forklab.include.linux.fs_struct import FsStruct
from forklab.include.linux.pid import Pid
from forklab.include.linux.sched import SignalStruct, Task
from forklab.include.linux.user_namespace import UserNamespace
from forklab.state import KernelState
from forklab.uapi import CAP_FULL_SET, RLIM_INFINITY, RLIMIT_NOFILE


def _user_ns(k: KernelState) -> UserNamespace:
    return k.init_user_ns


def bare_kernel() -> KernelState:
    """A bare, unbooted KernelState with an initial user namespace: all the fs code needs."""
    k = KernelState()
    k.init_user_ns = UserNamespace()
    return k


def make_task(k: KernelState, pid: int = 1, caps: int = CAP_FULL_SET, nofile: int = 1024,
              uid: int = 0) -> Task:
    """A task with its own files, fs and signal structs and a cred in ``k.user_ns``."""
    sig = SignalStruct()
    sig.set_rlim(RLIMIT_NOFILE, (nofile, RLIM_INFINITY))
    cred = Cred(uid=uid, euid=uid, fsuid=uid, cap_effective=caps, cap_permitted=caps, user_ns=_user_ns(k))
    t = Task(pid=pid, tgid=pid, comm=f"t{pid}", signal=sig, files=FilesStruct(), fs=FsStruct(),
             cred=cred, real_cred=cred)
    if k.current is None:
        k.current = t
    return t


def fork_like(k: KernelState, parent: Task, pid: int, clone_flags: int = 0) -> Task:
    """A child built like dup_task_struct + copy_files + copy_fs (kernel/fork.c)."""
    from forklab.kernel.fork import copy_files, copy_fs

    sig = SignalStruct()
    assert parent.signal is not None
    sig.rlim = parent.signal.rlim
    child = Task(pid=pid, tgid=pid, signal=sig, files=parent.files, fs=parent.fs, cred=parent.cred,
                 real_cred=parent.cred)
    copy_files(k, clone_flags, child, parent)
    try:
        copy_fs(k, clone_flags, child, parent)
    except OSError:
        from forklab.fs.file import exit_files

        exit_files(k, child)
        raise
    return child


def assert_ok(k: KernelState, tasks: list[Task], extra: dict[int, int] | None = None) -> None:
    """The files/fs invariants hold."""
    errs = check_fs_invariants(k, tasks, extra)
    assert errs == [], errs


def make_pid(count: int = 1) -> Pid:
    """A bare struct pid (no namespace numbers needed while count stays > 0)."""
    return Pid(count=count)
