"""The ``os`` a program receives: glibc's layer over the model kernel's syscalls, with Python's ``os`` names.

Every method acts for the simulated task that is running (``Libc._p``, set by the runner at
each switch), the way a real libc's calls are made by whichever thread runs them. Where
Python's ``os`` has a function, the method has its name and signature and raises the same
``OSError`` subclasses (``ChildProcessError`` for ECHILD, ``FileNotFoundError``, ...), with
the kernel's rule and source line in the message. File descriptors are inheritable, as in C:
Python's PEP 446 close-on-exec default does not apply.

The libc layer is glibc's, visible in the kernel's trace: ``fork`` is
``clone(CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD, 0, 0, &self->tid, 0)``;
``posix_spawn`` is ``clone(CLONE_VM|CLONE_VFORK|SIGCHLD)`` on a fresh stack, then execve in
the child; ``start_thread`` uses pthread_create's flag set; ``signal`` installs the handler
with SA_RESTART, as glibc's BSD ``signal()`` does; ``system`` spawns ``/bin/sh -c`` with
SIGCHLD blocked and SIGINT/SIGQUIT ignored in the caller.

Sleeping is glibc's and CPython's: ``nanosleep`` is glibc's, clock_nanosleep(CLOCK_REALTIME, 0)
since glibc 2.31; ``sleep`` is ``time.sleep``, clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
to a deadline read from the clock, again after each interruption. ``stat``, ``lstat`` and
``fstat`` are glibc 2.33's newfstatat (``fstat`` with AT_EMPTY_PATH); ``getcwd`` is CPython's
loop over buffers of 1024, 2048, ... bytes until the path fits; ``pause`` returns after a handler
ran, as ``signal.pause`` does. Calls the model kernel does not have end the run with
``forklab.Unmodelled`` instead of being faked in user space.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os as _host_os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from forklab import uapi
from forklab.errors import Segfault, Unmodelled
from forklab.include.linux.sched import SigAction, Task
from forklab.include.linux.stat import Kstat
from forklab.include.linux.time import CLOCK_MONOTONIC, CLOCK_REALTIME, TIMER_ABSTIME
from forklab.include.linux.time64 import NSEC_PER_SEC
from forklab.kernel.time.time import USER_HZ
from forklab.runner.errors import ExecDone
from forklab.runner.process import RESTARTED, Handler, Image, Proc
from forklab.syscalls import Kernel
from forklab.uapi import (
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_SYMLINK_NOFOLLOW,
    CLONE_CHILD_CLEARTID,
    CLONE_CHILD_SETTID,
    CLONE_FILES,
    CLONE_FS,
    CLONE_PARENT_SETTID,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_STACK,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SA_RESTART,
    SA_RESTORER,
    SIG_BLOCK,
    SIG_DFL,
    SIG_IGN,
    SIG_SETMASK,
    SIG_UNBLOCK,
    SIGABRT,
    SIGCHLD,
    SIGINT,
    SIGQUIT,
    CloneArgs,
)

if TYPE_CHECKING:
    from forklab.runner.core import Runner

T = TypeVar("T")

FORK_FLAGS = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD  # glibc's arch_fork (sysdeps/nptl/fork.c)
THREAD_FLAGS = (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS
                | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)  # glibc's create_thread (nptl/createthread.c)
SPAWN_FLAGS = CLONE_VM | CLONE_VFORK | SIGCHLD  # glibc's __spawnix (sysdeps/unix/sysv/linux/spawni.c)
TID_OFFSET = 0x2D0  # offsetof(struct pthread, tid) on x86-64 glibc
TLS_SIZE = 2 * PAGE_SIZE  # the main thread's struct pthread, mapped at each image's start
STACK_SIZE = 16 * PAGE_SIZE  # a thread's or a spawn helper's stack; its struct pthread is the top page
RESTORER = 0x400F00  # __restore_rt, the sa_restorer glibc's sigaction passes on x86-64
SPAWN_ERROR = 127  # the child's exit status when its exec fails (spawni.c SPAWN_ERROR)
DEFAULT_PATH = "/bin:/usr/bin"
NSIG = 64  # _NSIG (include/uapi/asm-generic/signal.h)
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
GETCWD_CHUNK = 1024  # CPython's posix_getcwd grows its buffer by this much after each ERANGE


@dataclass(slots=True)
class _SpawnBox:
    """What a posix_spawn child leaves in the memory it shares with its parent: its exec errno, 0 if none."""

    err: int = 0


def _sigmask(sigs: Iterable[int] | None) -> int | None:
    """A sigset from an iterable of signal numbers (None stays None); ValueError for a bad number."""
    if sigs is None:
        return None
    mask = 0
    for sig in sigs:
        if isinstance(sig, bool) or not isinstance(sig, int) or not 1 <= sig <= NSIG:
            raise ValueError(f"signal number out of range: {sig!r}")
        mask |= 1 << (sig - 1)
    return mask


def _sigset(mask: int) -> set[int]:
    """The signal numbers in a sigset."""
    return {sig for sig in range(1, NSIG + 1) if mask & (1 << (sig - 1))}


def _fspath(path: object) -> str:
    """A str path from str, bytes or os.PathLike, as Python's os functions accept."""
    p = _host_os.fspath(path)  # type: ignore[call-overload]  # TypeError for anything else, as Python's
    return p.decode("utf-8", "surrogateescape") if isinstance(p, bytes) else str(p)


class Libc:
    """The ``os`` object of a forklab program: Python's ``os`` names over the model kernel (see the module doc)."""

    __slots__ = ("_fork_live", "_k", "_p", "_r")

    def __init__(self, runner: Runner) -> None:
        self._r = runner
        self._k: Kernel = runner.kernel
        self._fork_live = self._do_fork  # bound once: fork is the call a replay repeats most
        self._p: Proc = None  # type: ignore[assignment]  # set by the runner before any program runs

    def _call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """One call: answered from the history while replaying (one index, one compare), else made live."""
        p = self._p
        i = p.pos
        if i < p.end:
            rec = p.seg[i]
            if rec[0] != name or rec[1] != args:
                p.diverge(rec, name, args)
            p.pos = i + 1
            if rec[4]:
                p.run_handlers(rec[4])
            if rec[3]:
                raise copy.copy(rec[2])
            value: T = rec[2]
        else:
            value = p.call(name, args, fn)
        if value is RESTARTED:  # the kernel restarts the call after its handlers ran: the task issues it again
            return self._call(name, fn, *args)
        return value

    def _input(self, name: str, fn: Callable[[], T], *args: Any) -> T:
        """A value from outside the program (a clock, random bytes), recorded so that replays see it again."""
        return self._call(name, lambda _k, _t, *_a: fn(), *args)

    def _missing(self, name: str) -> NoReturn:
        """End the run: the model kernel has no such syscall, and faking it would add a kernel rule."""
        raise self._r.fail(Unmodelled(f"os.{name}: the model kernel has no {name}(2) syscall yet, and the runner "
                                      "does not fake it in user space"))

    # --- the program's image ----------------------------------------------------------------

    @property
    def argv(self) -> list[str]:
        """The argument vector of the running image (``sys.argv`` of a C program)."""
        return list(self._p.image.argv)

    @property
    def environ(self) -> dict[str, str]:
        """The running image's environment, a dict the program may change; exec passes it on."""
        return self._p.image.environ

    def getenv(self, key: str, default: str | None = None) -> str | None:
        """``os.getenv``: the image's environment value for ``key``."""
        return self._p.image.environ.get(key, default)

    # --- process creation ---------------------------------------------------------------------

    def fork(self) -> int:
        """glibc fork(): clone(CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD); the child's pid, or 0 in the child."""
        return self._call("fork", self._fork_live)

    def _do_fork(self, k: Kernel, t: Task) -> int:
        """The live part of fork: the clone, then the child re-runs this image up to here."""
        p = self._p
        pid = k.clone(t, FORK_FLAGS, 0, 0, p.tls + TID_OFFSET, 0)
        self._r.adopt(p, pid)
        return pid

    def vfork(self) -> int:
        """vfork(2): the child shares memory and the parent sleeps until the child execs or exits."""
        return self._call("vfork", self._do_vfork)

    def _do_vfork(self, k: Kernel, t: Task) -> int:
        """The live part of vfork: the parent is left asleep by the model until the child execs or exits."""
        pid = k.vfork(t)
        self._r.adopt(self._p, pid)
        return pid

    def clone(self, fn: Callable[..., object], flags: int, *args: object, parent_tid: int = 0, child_tid: int = 0,
              tls: int = 0) -> int:
        """glibc clone(fn, stack, flags, arg, ...): the child runs ``fn(*args)`` and exits with its return value.

        With CLONE_VM the child runs ``fn`` on a fresh stack in the parent's (shared) Python
        objects; without it the child re-runs the image up to this call, as fork's child does.
        """
        if not callable(fn):
            raise TypeError("clone: fn must be callable")
        stack = self.mmap(STACK_SIZE, RW, ANON | MAP_STACK) + STACK_SIZE if flags & CLONE_VM else 0
        self._p.entry = (lambda: self._thread_exit(fn(*args))) if flags & CLONE_VM else None
        pid = self._call("clone", self._do_clone, flags, stack, parent_tid, child_tid, tls)
        if pid == 0:
            self._thread_exit(fn(*args))
        return pid

    def _do_clone(self, k: Kernel, t: Task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int) -> int:
        """The live part of clone, then the child's registration (``_adopt``)."""
        pid = k.clone(t, flags, stack, parent_tid, child_tid, tls)
        self._adopt(pid, tls)
        return pid

    def _adopt(self, pid: int, tls: int) -> None:
        """Register the new task: it runs the caller's ``entry`` (CLONE_VM with a function) or re-runs the image."""
        p = self._p
        entry, p.entry = p.entry, None
        self._r.adopt(p, pid, direct=entry, tls=tls if entry is not None else p.tls)

    def clone3(self, args: CloneArgs, fn: Callable[..., object] | None = None, *fnargs: object) -> int:
        """clone3(2) with a ``CloneArgs``: returns twice like fork when ``fn`` is None, else the child runs ``fn``."""
        if not isinstance(args, CloneArgs):
            raise TypeError("clone3: args must be a forklab.CloneArgs")
        if args.flags & CLONE_VM and fn is None:
            raise ValueError("clone3 with CLONE_VM needs fn: a child sharing the memory cannot return into the "
                             "parent's frames")
        frozen = copy.deepcopy(args)  # the record must not change if the caller reuses its CloneArgs
        run = fn
        vm = bool(args.flags & CLONE_VM)
        self._p.entry = (lambda: self._thread_exit(run(*fnargs))) if run is not None and vm else None
        pid = self._call("clone3", self._do_clone3, frozen)
        if pid == 0 and fn is not None:
            self._thread_exit(fn(*fnargs))
        return pid

    def _do_clone3(self, k: Kernel, t: Task, args: CloneArgs) -> int:
        """The live part of clone3, then the child's registration (``_adopt``)."""
        pid = k.clone3(t, args)
        self._adopt(pid, args.tls)
        return pid

    def start_thread(self, fn: Callable[..., object], *args: object) -> int:
        """pthread_create: a thread (glibc's clone flag set) running ``fn(*args)``; returns its tid."""
        if not callable(fn):
            raise TypeError("start_thread: fn must be callable")
        area = self.mmap(STACK_SIZE, RW, ANON | MAP_STACK)
        pd = area + STACK_SIZE - PAGE_SIZE
        self._p.entry = lambda: self._thread_exit(fn(*args))
        return self._call("clone", self._do_clone, THREAD_FLAGS, pd, pd + TID_OFFSET, pd + TID_OFFSET, pd)

    def exit_thread(self, status: int = 0) -> NoReturn:
        """exit(2): end only the calling thread (pthread_exit's last step)."""
        self._call("exit", Kernel.exit, status)
        raise AssertionError("exit returned")

    def _thread_exit(self, result: object) -> NoReturn:
        """glibc's clone child: exit(2) with fn's return value (0 if it is not an int)."""
        self.exit_thread(result if isinstance(result, int) and not isinstance(result, bool) else 0)

    def posix_spawn(self, path: str, argv: Sequence[str], env: Mapping[str, str] | None, *,
                    file_actions: Sequence[tuple[Any, ...]] = (), setpgroup: int | None = None,
                    setsid: bool = False, setsigmask: Iterable[int] | None = None, setsigdef: Iterable[int] = (),
                    resetids: bool = False) -> int:
        """``os.posix_spawn``: clone(CLONE_VM|CLONE_VFORK) on a fresh stack, the child applies the actions and
        execs; the exec error is the parent's OSError. The child replays nothing."""
        if resetids:
            self._missing("getuid")  # POSIX_SPAWN_RESETIDS needs getuid/getgid, which the model lacks
        return self._spawn(path, argv, env, False, file_actions, setpgroup, setsid, setsigmask, setsigdef)

    def posix_spawnp(self, path: str, argv: Sequence[str], env: Mapping[str, str] | None, *,
                     file_actions: Sequence[tuple[Any, ...]] = (), setpgroup: int | None = None,
                     setsid: bool = False, setsigmask: Iterable[int] | None = None,
                     setsigdef: Iterable[int] = ()) -> int:
        """``os.posix_spawnp``: posix_spawn searching PATH, as execvp does."""
        return self._spawn(path, argv, env, True, file_actions, setpgroup, setsid, setsigmask, setsigdef)

    def _spawn(self, path: str, argv: Sequence[str], env: Mapping[str, str] | None, search: bool,
               actions: Sequence[tuple[Any, ...]], pgroup: int | None, new_session: bool,
               sigmask: Iterable[int] | None, sigdef: Iterable[int]) -> int:
        path = _fspath(path)
        args, envp = self._exec_args("posix_spawn", argv, env)
        box = _SpawnBox()
        mask, defaults = _sigmask(sigmask), sorted(_sigset(_sigmask(sigdef) or 0))

        def child() -> object:
            try:
                self._spawn_child_setup(actions, pgroup, new_session, mask, defaults)
                if search:
                    self.execvpe(path, args, env or {})
                self._execve(path, args, envp)
            except OSError as e:
                box.err = e.errno or errno.ENOEXEC
            except (TypeError, ValueError):
                box.err = errno.EINVAL
            self._exit(SPAWN_ERROR)

        stack = self.mmap(STACK_SIZE, RW, ANON | MAP_STACK)
        self._p.entry = child
        pid = self._call("clone", self._do_clone, SPAWN_FLAGS, stack + STACK_SIZE, 0, 0, 0)
        self.munmap(stack, STACK_SIZE)
        err = self._input("spawn_result", lambda: box.err, pid)
        if err:
            self.waitpid(pid, 0)
            raise OSError(err, f"{_host_os.strerror(err)}: posix_spawn {path!r}")
        return pid

    def _spawn_child_setup(self, actions: Sequence[tuple[Any, ...]], pgroup: int | None, new_session: bool,
                           mask: int | None, defaults: list[int]) -> None:
        """What __spawni_child does before exec: signal defaults and mask, session, group, file actions."""
        for sig in defaults:
            self.sigaction(sig, SIG_DFL)
        if new_session:
            self.setsid()
        if pgroup is not None:
            self.setpgid(0, pgroup)
        for action in actions:
            self._file_action(action)
        if mask is not None:
            self._call("rt_sigprocmask", Kernel.rt_sigprocmask, SIG_SETMASK, mask)

    def _file_action(self, action: tuple[Any, ...]) -> None:
        """One of Python's POSIX_SPAWN_OPEN/CLOSE/DUP2 tuples."""
        kind, *rest = action
        if kind == _host_os.POSIX_SPAWN_OPEN:
            fd, path, flags, mode = rest
            new = self.open(path, flags, mode)
            if new != fd:
                self.dup2(new, fd)
                self.close(new)
        elif kind == _host_os.POSIX_SPAWN_CLOSE:
            self.close(rest[0])
        elif kind == _host_os.POSIX_SPAWN_DUP2:
            self.dup2(rest[0], rest[1])
        else:
            raise TypeError(f"unknown posix_spawn file action {action!r}")

    def system(self, command: str) -> int:
        """glibc system(): posix_spawn of ``/bin/sh -c command`` and a wait, SIGCHLD blocked, SIGINT/SIGQUIT ignored."""
        old_int = self.sigaction(SIGINT, SIG_IGN)
        old_quit = self.sigaction(SIGQUIT, SIG_IGN)
        old_mask = self._call("rt_sigprocmask", Kernel.rt_sigprocmask, SIG_BLOCK, 1 << (SIGCHLD - 1))
        sigdef = [sig for sig, old in ((SIGINT, old_int), (SIGQUIT, old_quit)) if old[0] != SIG_IGN]
        try:
            pid = self.posix_spawn("/bin/sh", ["sh", "-c", command], self.environ, setsigmask=_sigset(old_mask),
                                   setsigdef=sigdef)
        except OSError:
            status = SPAWN_ERROR << 8
        else:
            status = self.waitpid(pid, 0)[1]
        finally:
            self.sigaction(SIGINT, old_int[0], old_int[1], old_int[2])
            self.sigaction(SIGQUIT, old_quit[0], old_quit[1], old_quit[2])
            self._call("rt_sigprocmask", Kernel.rt_sigprocmask, SIG_SETMASK, old_mask)
        return status

    # --- exec -----------------------------------------------------------------------------------

    def execv(self, path: str, args: Sequence[str]) -> NoReturn:
        """``os.execv``: execve with the image's environment."""
        self.execve(path, args, self.environ)

    def execve(self, path: str, args: Sequence[str], env: Mapping[str, str]) -> NoReturn:
        """``os.execve``: replace the image; an installed program starts with an empty history."""
        argv, envp = self._exec_args("execve", args, env)
        self._execve(_fspath(path), argv, envp)

    def _execve(self, path: str, argv: tuple[str, ...], envp: tuple[str, ...]) -> NoReturn:
        """execve(2); on success the old image unwinds (ExecDone) and the task starts the new one."""
        self._call("execve", self._do_execve, path, argv, envp)
        raise ExecDone

    def _do_execve(self, k: Kernel, t: Task, path: str, argv: tuple[str, ...], envp: tuple[str, ...]) -> None:
        """The live part of execve: after success the next image is the program of the file the model loaded."""
        k.execve(t, path, list(argv), list(envp))
        self._p.next_image = Image(self._r.program_for(t), argv, _env_pairs(envp))

    def execvp(self, file: str, args: Sequence[str]) -> NoReturn:
        """``os.execvp``: execv, searching PATH when ``file`` has no slash."""
        self.execvpe(file, args, self.environ)

    def execvpe(self, file: str, args: Sequence[str], env: Mapping[str, str]) -> NoReturn:
        """``os.execvpe``: glibc's search: ENOENT/ENOTDIR try the next directory, EACCES is kept for the end."""
        file = _fspath(file)
        if "/" in file:
            self.execve(file, args, env)
        saved: OSError | None = None
        for directory in (env.get("PATH") or DEFAULT_PATH).split(":"):
            try:
                self.execve(f"{directory or '.'}/{file}", args, env)
            except OSError as e:
                if e.errno == errno.EACCES:
                    saved = e
                elif e.errno not in (errno.ENOENT, errno.ENOTDIR):
                    raise
        raise saved or OSError(errno.ENOENT, f"No such file or directory: {file!r} in PATH")

    @staticmethod
    def _exec_args(what: str, args: Sequence[str], env: Mapping[str, str] | None) -> tuple[tuple[str, ...],
                                                                                           tuple[str, ...]]:
        """argv and envp as Python's os checks them: a non-empty argv of str, env a str mapping."""
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
            raise TypeError(f"{what}() arg 2 must be a tuple or list")
        argv = tuple(_fspath(a) for a in args)
        if not argv:
            raise ValueError(f"{what}() arg 2 must not be empty")
        if not argv[0]:
            raise ValueError(f"{what}() arg 2 first element cannot be empty")
        if env is None:
            return argv, ()
        if not isinstance(env, Mapping):
            raise TypeError(f"{what}(): env must be a mapping object")
        return argv, tuple(f"{_fspath(key)}={_fspath(value)}" for key, value in env.items())

    # --- exit and wait ------------------------------------------------------------------------

    def _exit(self, n: int) -> NoReturn:
        """``os._exit``: exit_group(2), ending every thread of the process."""
        self._call("_exit", Kernel.exit_group, n)
        raise AssertionError("exit_group returned")

    def abort(self) -> NoReturn:
        """glibc abort(): unblock SIGABRT and raise it; after a handler returns, reset it to SIG_DFL and raise again;
        then hlt, whose #GP the kernel answers with SIGSEGV (a namespace init survives the SIGABRTs)."""
        self._call("rt_sigprocmask", Kernel.rt_sigprocmask, SIG_UNBLOCK, 1 << (SIGABRT - 1))
        with contextlib.suppress(Exception):  # a handler's exception does not stop abort
            self.raise_signal(SIGABRT)
        self.sigaction(SIGABRT, SIG_DFL)
        self.raise_signal(SIGABRT)
        with contextlib.suppress(Segfault):  # ABORT_INSTRUCTION: hlt faults, and the kernel's SIGSEGV kills
            self._call("hlt", Kernel.general_protection)
        self._exit(127)

    def raise_signal(self, sig: int) -> None:
        """glibc raise(): tgkill(getpid(), gettid(), sig)."""
        self.tgkill(self.getpid(), self.gettid(), sig)

    def wait(self) -> tuple[int, int]:
        """``os.wait``: wait4(-1, 0)."""
        return self.waitpid(-1, 0)

    def waitpid(self, pid: int, options: int) -> tuple[int, int]:
        """``os.waitpid`` -> (pid, status); (0, 0) with WNOHANG and no child ready."""
        return self._call("wait4", Kernel.waitpid, pid, options)  # a WaitResult is the (pid, status) tuple

    def wait3(self, options: int) -> tuple[int, int, uapi.Rusage]:
        """``os.wait3`` -> (pid, status, rusage)."""
        return self.wait4(-1, options)

    def wait4(self, pid: int, options: int) -> tuple[int, int, uapi.Rusage]:
        """``os.wait4`` -> (pid, status, rusage) with the model's Rusage."""
        r = self._call("wait4", Kernel.wait4, pid, options)
        return (r[0], r[1], r.rusage)

    def waitid(self, idtype: int, id: int, options: int) -> uapi.SigInfo | None:
        """``os.waitid`` -> the child's SigInfo, or None under WNOHANG when none is ready."""
        return self._call("waitid", Kernel.waitid, idtype, id, options)

    # --- ids, groups, sessions ----------------------------------------------------------------

    def getpid(self) -> int:
        """getpid(2)."""
        return self._call("getpid", Kernel.getpid)

    def getppid(self) -> int:
        """getppid(2)."""
        return self._call("getppid", Kernel.getppid)

    def gettid(self) -> int:
        """gettid(2)."""
        return self._call("gettid", Kernel.gettid)

    def getpgid(self, pid: int) -> int:
        """getpgid(2)."""
        return self._call("getpgid", Kernel.getpgid, pid)

    def getpgrp(self) -> int:
        """getpgrp(2)."""
        return self._call("getpgrp", Kernel.getpgrp)

    def setpgid(self, pid: int, pgrp: int) -> None:
        """setpgid(2)."""
        self._call("setpgid", Kernel.setpgid, pid, pgrp)

    def setpgrp(self) -> None:
        """setpgid(0, 0)."""
        self.setpgid(0, 0)

    def getsid(self, pid: int) -> int:
        """getsid(2)."""
        return self._call("getsid", Kernel.getsid, pid)

    def setsid(self) -> int:
        """setsid(2) -> the new session id."""
        return self._call("setsid", Kernel.setsid)

    # --- signals --------------------------------------------------------------------------------

    def kill(self, pid: int, sig: int) -> None:
        """kill(2)."""
        self._call("kill", Kernel.kill, pid, sig)

    def killpg(self, pgrp: int, sig: int) -> None:
        """glibc killpg: kill(-pgrp, sig); EINVAL for a negative group."""
        if pgrp < 0:
            raise OSError(errno.EINVAL, "Invalid argument: killpg with a negative process group")
        self.kill(-pgrp, sig)

    def tgkill(self, tgid: int, tid: int, sig: int) -> None:
        """tgkill(2)."""
        self._call("tgkill", Kernel.tgkill, tgid, tid, sig)

    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        """``os.pidfd_open``: a pidfd for ``pid``."""
        return self._call("pidfd_open", Kernel.pidfd_open, pid, flags)

    def pidfd_send_signal(self, pidfd: int, sig: int, siginfo: uapi.SigInfo | None = None, flags: int = 0) -> None:
        """``signal.pidfd_send_signal``."""
        self._call("pidfd_send_signal", Kernel.pidfd_send_signal, pidfd, sig, siginfo, flags)

    def rt_sigreturn(self) -> None:
        """rt_sigreturn(2), as glibc's __restore_rt makes it when a handler returns: pop the innermost frame."""
        self._call("rt_sigreturn", Kernel.rt_sigreturn)

    def signal(self, sig: int, handler: Handler | int) -> Handler | int:
        """``signal.signal``: install ``handler`` (a callable ``handler(signum, frame)``, SIG_DFL or SIG_IGN) with
        SA_RESTART, as glibc's signal() does; returns the previous handler."""
        return self.sigaction(sig, handler, SA_RESTART, {sig})[0]

    def sigaction(self, sig: int, handler: Handler | int | None = None, flags: int = 0,
                  mask: Iterable[int] = ()) -> tuple[Handler | int, int, set[int]]:
        """rt_sigaction(2): install ``handler`` with ``flags`` (SA_*) and ``mask``; None only reads.

        Returns the previous action as (handler, flags, mask). The kernel sees the handler's
        address in this image; the runner calls it where the model delivers the signal.
        """
        image = self._p.image
        act: SigAction | None = None
        if handler is not None:
            addr = self._handler_address(image, handler)
            act = SigAction(addr, flags | SA_RESTORER, _sigmask(mask) or 0, RESTORER)
        old = self._call("rt_sigaction", Kernel.rt_sigaction, sig, act)
        previous: Handler | int = image.handlers.get(old.sa_handler, old.sa_handler)
        return previous, old.sa_flags & ~SA_RESTORER, _sigset(old.sa_mask)

    @staticmethod
    def _handler_address(image: Image, handler: Handler | int) -> int:
        """The sa_handler for ``handler``: SIG_DFL/SIG_IGN as they are, a callable's address in ``image``."""
        if isinstance(handler, int) and not isinstance(handler, bool):
            if handler not in (SIG_DFL, SIG_IGN):
                raise ValueError("a handler must be a callable, SIG_DFL or SIG_IGN (the runner has no code at "
                                 f"address {handler:#x})")
            return handler
        if not callable(handler):
            raise TypeError("signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a callable object")
        return image.handler_address(handler)

    def sigprocmask(self, how: int, mask: Iterable[int] | None = None) -> set[int]:
        """rt_sigprocmask(2) with a set of signal numbers (``signal.pthread_sigmask``); returns the old set."""
        return _sigset(self._call("rt_sigprocmask", Kernel.rt_sigprocmask, how, _sigmask(mask)))

    pthread_sigmask = sigprocmask

    def pause(self) -> None:
        """``signal.pause``: pause(2) until a signal's handler ran (its InterruptedError is swallowed, as CPython's)."""
        with contextlib.suppress(InterruptedError):
            self._call("pause", Kernel.pause)

    # --- time -----------------------------------------------------------------------------------

    def nanosleep(self, seconds: int, nanoseconds: int = 0, rmtp: int = 0) -> None:
        """glibc's nanosleep: clock_nanosleep(CLOCK_REALTIME, 0, req, rmtp); InterruptedError when a handler ran, the
        remaining time then at ``rmtp`` (an address in this process's memory, 0 for NULL)."""
        self._call("clock_nanosleep", Kernel.clock_nanosleep, CLOCK_REALTIME, 0, (seconds, nanoseconds), rmtp)

    def sleep(self, secs: float) -> None:
        """``time.sleep``: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to now + ``secs``, again after a handler."""
        if isinstance(secs, bool) or not isinstance(secs, (int, float)):
            raise TypeError(f"'{type(secs).__name__}' object cannot be interpreted as an integer or float")
        if secs < 0:
            raise ValueError("sleep length must be non-negative")
        timeout = -int(-secs * NSEC_PER_SEC // 1)  # _PyTime_ROUND_TIMEOUT: round up
        deadline = self.time_ns() + timeout
        while True:
            try:
                self._call("clock_nanosleep", Kernel.clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME,
                           divmod(deadline, NSEC_PER_SEC), 0)
                return
            except InterruptedError:
                continue  # PEP 475: the handlers ran; sleep on to the same deadline

    # --- files and pipes ------------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o777) -> int:
        """``os.open`` (no implicit O_CLOEXEC: descriptors are inheritable as in C)."""
        return self._call("open", Kernel.open, _fspath(path), flags, mode)

    def close(self, fd: int) -> None:
        """close(2)."""
        self._call("close", Kernel.close, fd)

    def closerange(self, fd_low: int, fd_high: int) -> None:
        """``os.closerange``: close each fd in [low, high), ignoring errors."""
        for fd in range(fd_low, fd_high):
            with contextlib.suppress(OSError):
                self.close(fd)

    def dup(self, fd: int) -> int:
        """dup(2)."""
        return self._call("dup", Kernel.dup, fd)

    def dup2(self, fd: int, fd2: int, inheritable: bool = True) -> int:
        """``os.dup2`` -> fd2; ``inheritable=False`` sets FD_CLOEXEC on the copy."""
        new = self._call("dup2", Kernel.dup2, fd, fd2)
        if not inheritable:
            self.set_inheritable(new, False)
        return new

    def get_inheritable(self, fd: int) -> bool:
        """``os.get_inheritable``: FD_CLOEXEC is clear."""
        return not self._call("fcntl", Kernel.fcntl, fd, uapi.F_GETFD, 0) & uapi.FD_CLOEXEC

    def set_inheritable(self, fd: int, inheritable: bool) -> None:
        """``os.set_inheritable``: clear or set FD_CLOEXEC."""
        self._call("fcntl", Kernel.fcntl, fd, uapi.F_SETFD, 0 if inheritable else uapi.FD_CLOEXEC)

    def fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        """fcntl(2) with an int argument."""
        return self._call("fcntl", Kernel.fcntl, fd, cmd, arg)

    def read(self, fd: int, n: int) -> bytes:
        """read(2) -> the bytes read (b"" at end of file)."""
        return self._call("read", Kernel.read, fd, n)

    def write(self, fd: int, data: bytes) -> int:
        """write(2) -> the count written."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        return self._call("write", Kernel.write, fd, data)

    def pipe(self) -> tuple[int, int]:
        """pipe(2) -> (read fd, write fd)."""
        return self._call("pipe", Kernel.pipe2, 0)

    def pipe2(self, flags: int) -> tuple[int, int]:
        """pipe2(2)."""
        return self._call("pipe2", Kernel.pipe2, flags)

    def lseek(self, fd: int, pos: int, how: int) -> int:
        """lseek(2) -> the new offset."""
        return self._call("lseek", Kernel.lseek, fd, pos, how)

    def chdir(self, path: str) -> None:
        """chdir(2)."""
        self._call("chdir", Kernel.chdir, _fspath(path))

    def chroot(self, path: str) -> None:
        """chroot(2)."""
        self._call("chroot", Kernel.chroot, _fspath(path))

    def umask(self, mask: int) -> int:
        """umask(2) -> the previous mask."""
        return self._call("umask", Kernel.umask, mask)

    def unlink(self, path: str) -> None:
        """``os.unlink``: unlink(2)."""
        self._call("unlink", Kernel.unlink, _fspath(path))

    remove = unlink

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """``os.mkdir``: mkdir(2), the mode under the umask."""
        self._call("mkdir", Kernel.mkdir, _fspath(path), mode)

    def stat(self, path: str, *, follow_symlinks: bool = True) -> _host_os.stat_result:
        """``os.stat``: newfstatat(AT_FDCWD, path, 0), or AT_SYMLINK_NOFOLLOW for ``lstat`` (glibc 2.33)."""
        flags = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
        return _stat_result(self._call("newfstatat", Kernel.fstatat, AT_FDCWD, _fspath(path), flags))

    def lstat(self, path: str) -> _host_os.stat_result:
        """``os.lstat``: stat without following a last symlink (the model has none)."""
        return self.stat(path, follow_symlinks=False)

    def fstat(self, fd: int) -> _host_os.stat_result:
        """``os.fstat``: newfstatat(fd, "", AT_EMPTY_PATH), as glibc 2.33 makes fstat."""
        return _stat_result(self._call("newfstatat", Kernel.fstatat, fd, "", AT_EMPTY_PATH))

    def getcwd(self) -> str:
        """``os.getcwd``: getcwd(2) with 1024, 2048, ... bytes until the path fits; a path that is not absolute
        ("(unreachable)/...") is ENOENT, as glibc makes it."""
        size = GETCWD_CHUNK
        while True:
            try:
                path = self._call("getcwd", Kernel.getcwd, size)
                break
            except OSError as e:
                if e.errno != errno.ERANGE:
                    raise
                size += GETCWD_CHUNK
        if not path.startswith("/"):
            raise FileNotFoundError(errno.ENOENT, _host_os.strerror(errno.ENOENT))
        return path

    def times(self) -> _host_os.times_result:
        """``os.times``: times(2), every count in seconds of sysconf(_SC_CLK_TCK) = USER_HZ ticks."""
        ticks, tms = self._call("times", Kernel.times)
        return _host_os.times_result((tms.tms_utime / USER_HZ, tms.tms_stime / USER_HZ, tms.tms_cutime / USER_HZ,
                                      tms.tms_cstime / USER_HZ, ticks / USER_HZ))

    def sched_yield(self) -> None:
        """``os.sched_yield``: sched_yield(2), after the choice point every live call has."""
        self._call("sched_yield", Kernel.sched_yield)

    # --- memory ---------------------------------------------------------------------------------

    def mmap(self, length: int, prot: int = RW, flags: int = ANON, fd: int = -1, offset: int = 0,
             addr: int = 0) -> int:
        """mmap(2) -> the address of the new mapping in the model's memory."""
        return self._call("mmap", Kernel.mmap, addr, length, prot, flags, fd, offset)

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2)."""
        self._call("munmap", Kernel.munmap, addr, length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2)."""
        self._call("mprotect", Kernel.mprotect, addr, length, prot)

    def madvise(self, addr: int, length: int, advice: int) -> None:
        """madvise(2)."""
        self._call("madvise", Kernel.madvise, addr, length, advice)

    def load(self, addr: int, n: int) -> bytes:
        """Read ``n`` bytes of the model's memory at ``addr`` as user code (a fault may raise SIGSEGV)."""
        return self._call("load", Kernel.load, addr, n)

    def store(self, addr: int, data: bytes) -> None:
        """Write ``data`` to the model's memory at ``addr`` as user code (a fault may raise SIGSEGV)."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        self._call("store", Kernel.store, addr, data)

    def load_int(self, addr: int) -> int:
        """The signed 64-bit little-endian integer at ``addr``."""
        return int.from_bytes(self.load(addr, 8), "little", signed=True)

    def store_int(self, addr: int, value: int) -> None:
        """Store ``value`` as a signed 64-bit little-endian integer at ``addr``."""
        self.store(addr, value.to_bytes(8, "little", signed=True))

    # --- limits, namespaces, the rest ---------------------------------------------------------

    def unshare(self, flags: int) -> None:
        """``os.unshare``."""
        self._call("unshare", Kernel.unshare, flags)

    def prctl(self, option: int, arg2: int = 0) -> int:
        """prctl(2) for the options the model has (subreaper, pdeathsig, no_new_privs)."""
        return self._call("prctl", Kernel.prctl, option, arg2)

    def setrlimit(self, resource: int, limits: tuple[int, int]) -> None:
        """``resource.setrlimit``."""
        self._call("setrlimit", Kernel.setrlimit, resource, tuple(limits))

    def getrlimit(self, resource: int) -> tuple[int, int]:
        """``resource.getrlimit`` -> (soft, hard)."""
        return self._call("getrlimit", Kernel.getrlimit, resource)

    def getrusage(self, who: int) -> uapi.Rusage:
        """``resource.getrusage`` with the model's Rusage."""
        return self._call("getrusage", Kernel.getrusage, who)

    def urandom(self, n: int) -> bytes:
        """``os.urandom``: bytes from the run's seeded stream (the model has no getrandom(2) yet), replayed exactly."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError("negative argument not allowed" if isinstance(n, int) else "n must be an int")
        return self._input("urandom", lambda: self._r.random_bytes(n), n)

    def time_ns(self) -> int:
        """The model's clock in ns (read as the vDSO reads it, without a syscall), replayed exactly."""
        return self._input("time_ns", lambda: self._k.clock_ns)

    def time(self) -> float:
        """The model's clock in seconds."""
        return self.time_ns() / 1e9

    def monotonic(self) -> float:
        """The model's monotonic clock in seconds (the same clock: the model does not set time)."""
        return self.time_ns() / 1e9

    # --- wait status macros ---------------------------------------------------------------------

    @staticmethod
    def WIFEXITED(status: int) -> bool:
        """The child exited normally."""
        return status & 0x7F == 0

    @staticmethod
    def WEXITSTATUS(status: int) -> int:
        """The child's exit status."""
        return (status >> 8) & 0xFF

    @staticmethod
    def WIFSIGNALED(status: int) -> bool:
        """A signal killed the child."""
        return status & 0x7F not in (0, 0x7F)

    @staticmethod
    def WTERMSIG(status: int) -> int:
        """The signal that killed the child."""
        return status & 0x7F

    @staticmethod
    def WCOREDUMP(status: int) -> bool:
        """The child dumped core (never in the model)."""
        return bool(status & 0x80)

    @staticmethod
    def WIFSTOPPED(status: int) -> bool:
        """The child is stopped (WUNTRACED)."""
        return status & 0xFF == 0x7F

    @staticmethod
    def WSTOPSIG(status: int) -> int:
        """The signal that stopped the child."""
        return (status >> 8) & 0xFF

    @staticmethod
    def WIFCONTINUED(status: int) -> bool:
        """The child was continued (WCONTINUED)."""
        return status == 0xFFFF

    @staticmethod
    def waitstatus_to_exitcode(status: int) -> int:
        """``os.waitstatus_to_exitcode``: the exit code, or minus the killing signal."""
        if status & 0x7F == 0:
            return (status >> 8) & 0xFF
        if status & 0x7F != 0x7F:
            return -(status & 0x7F)
        raise ValueError(f"invalid wait status: {status}")

    # --- for the standard programs and examples/: thin wrappers of existing Kernel methods ------------
    # (one recorded call each; this section is additive, kept together at the end of the class)

    def read_proc(self, path: str) -> bytes:
        """The text of ``/proc/<pid>/{stat,status,maps}`` (or ``.../task/<tid>/...``) as this task reads it.

        ``Kernel.proc`` with the caller as the reader, so ids are its pid namespace's. The
        model's VFS mounts no procfs, so open(2) cannot reach /proc: this one call stands for
        open, read to the end and close. ENOENT and EISDIR come from the model's lookups.
        """
        return self._call("read_proc", Libc._proc_as_caller, _fspath(path))

    @staticmethod
    def _proc_as_caller(k: Kernel, t: Task, path: str) -> bytes:
        """``Kernel.proc(path, viewer=t)`` as bytes."""
        return k.proc(path, t).encode("utf-8", "surrogateescape")

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        """``os.setresuid``: setresuid(2); -1 keeps an id."""
        self._call("setresuid", Kernel.setresuid, ruid, euid, suid)

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        """``os.setresgid``: setresgid(2); -1 keeps an id."""
        self._call("setresgid", Kernel.setresgid, rgid, egid, sgid)


def _stat_result(st: Kstat) -> _host_os.stat_result:
    """An ``os.stat_result`` of a kstat, as CPython's _pystat_fromstructstat fills it (st_blocks: the model has none)."""
    times = (st.atime_ns, st.mtime_ns, st.ctime_ns)
    fields: tuple[object, ...] = (st.mode, st.ino, st.dev, st.nlink, st.uid, st.gid, st.size,
                                 *(ns // NSEC_PER_SEC for ns in times), *(ns / NSEC_PER_SEC for ns in times),
                                 *times, st.blksize, None, st.rdev)
    return _host_os.stat_result(fields)  # type: ignore[arg-type]  # st_blocks is None: typeshed wants floats


def _env_pairs(envp: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """("K=V", ...) as ((K, V), ...); a string without "=" is a name with an empty value."""
    pairs = []
    for entry in envp:
        key, _, value = entry.partition("=")
        pairs.append((key, value))
    return tuple(pairs)


_CONSTANT_PREFIXES = ("W", "O_", "SIG", "SA_", "CLONE_", "SEEK_", "P_", "PROT_", "MAP_", "MADV_", "RLIMIT_", "RLIM_",
                      "PR_", "F_", "FD_", "RUSAGE_", "CLD_", "SCHED_", "PIDFD_", "POLL", "CSIGNAL", "PAGE_SIZE")
for _name in dir(uapi):
    _value = getattr(uapi, _name)
    if _name.startswith(_CONSTANT_PREFIXES) and isinstance(_value, int) and not hasattr(Libc, _name):
        setattr(Libc, _name, _value)
for _name in ("POSIX_SPAWN_OPEN", "POSIX_SPAWN_CLOSE", "POSIX_SPAWN_DUP2"):
    setattr(Libc, _name, getattr(_host_os, _name))

__all__ = ["FORK_FLAGS", "SPAWN_FLAGS", "THREAD_FLAGS", "TID_OFFSET", "Libc"]
