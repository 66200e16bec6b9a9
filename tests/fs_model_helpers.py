"""Hand-built kernel stand-in and tasks for the files/fs tests (no Kernel() boot needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from forklab.fs.debug import check_fs_invariants
from forklab.fs.vfs import Vfs
from forklab.include.linux.cred import Cred
from forklab.include.linux.fdtable import FilesStruct
from forklab.include.linux.fs_struct import FsStruct
from forklab.include.linux.pid import Pid
from forklab.include.linux.sched import SignalStruct, Task
from forklab.include.linux.user_namespace import UserNamespace
from forklab.lib.fault_inject import FaultInjector
from forklab.uapi import CAP_FULL_SET, RLIM_INFINITY, RLIMIT_NOFILE

if TYPE_CHECKING:
    from forklab.syscalls import Kernel


class FakeKernel:
    """What the fs code uses of the Kernel: fault injector, vfs, trace, current."""

    def __init__(self) -> None:
        self.fault = FaultInjector()
        self.vfs = Vfs()
        self.events: list[tuple[Any, ...]] = []
        self.current: Task | None = None
        self.user_ns = UserNamespace()

    def trace(self, *a: Any, **kw: Any) -> None:
        self.events.append(a)


def _user_ns(k: Kernel) -> UserNamespace:
    ns = getattr(k, "user_ns", None)
    assert isinstance(ns, UserNamespace)
    return ns


def fake_kernel() -> Kernel:
    """A FakeKernel, typed as the Kernel the fs code expects."""
    return cast("Kernel", FakeKernel())


def make_task(k: Kernel, pid: int = 1, caps: int = CAP_FULL_SET, nofile: int = 1024,
              uid: int = 0) -> Task:
    """A task with its own files, fs and signal structs and a cred in ``k.user_ns``."""
    sig = SignalStruct()
    sig.rlim[RLIMIT_NOFILE] = (nofile, RLIM_INFINITY)
    cred = Cred(uid=uid, euid=uid, fsuid=uid, cap_effective=caps, cap_permitted=caps, user_ns=_user_ns(k))
    t = Task(pid=pid, tgid=pid, comm=f"t{pid}", signal=sig, files=FilesStruct(), fs=FsStruct(),
             cred=cred, real_cred=cred)
    if k.current is None:
        k.current = t
    return t


def fork_like(k: Kernel, parent: Task, pid: int, clone_flags: int = 0) -> Task:
    """A child built like dup_task_struct + copy_files + copy_fs (kernel/fork.c)."""
    from forklab.kernel.fork import copy_files, copy_fs

    sig = SignalStruct()
    assert parent.signal is not None
    sig.rlim = list(parent.signal.rlim)
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


def assert_ok(k: Kernel, tasks: list[Task], extra: dict[int, int] | None = None) -> None:
    """The files/fs invariants hold."""
    errs = check_fs_invariants(k, tasks, extra)
    assert errs == [], errs


def make_pid(count: int = 1) -> Pid:
    """A bare struct pid (no namespace numbers needed while count stays > 0)."""
    return Pid(count=count)
