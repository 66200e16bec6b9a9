"""The host oracle: run one clone(2) or clone3(2) call on the running Linux kernel.

The call is made by a small C program (``probe.c``, next to this file), built on first use with
the system C compiler into a cache directory and rebuilt when its source changes. Every case runs
in a fresh probe process; inside it a worker process makes the call, so a crash, a CLONE_PARENT
child or a CLONE_THREAD child never reaches the caller. The child of the call runs no C code: it
leaves through the raw exit syscall in the same asm block as the call (see probe.c).

``run(case, mode)`` takes any object with the fields of ``forklab.verify.CloneCase`` and a mode:

* ``"priv"``   as is (root, full capabilities, the initial namespaces);
* ``"unpriv"`` after setgroups/setresgid/setresuid to ``UNPRIV_UID`` (capabilities dropped);
* ``"userns"`` after unshare(CLONE_NEWUSER|CLONE_NEWPID), uid/gid maps ``0 <uid> 1``, and one
  fork, so the caller is pid 1 of a new pid namespace owned by a new user namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

from forklab.uapi import SIGCHLD, SIGKILL, SIGSTOP

__all__ = ["MODES", "UNPRIV_UID", "HostError", "HostOutcome", "available", "probe_path", "run", "unavailable_reason"]

MODES = ("priv", "unpriv", "userns")
UNPRIV_UID = 1000
TIMEOUT_S = 10.0


class HostError(RuntimeError):
    """The probe could not be built or run."""


class CaseLike(Protocol):
    """What ``run`` reads from a case (``forklab.verify.CloneCase`` has these fields)."""

    @property
    def syscall(self) -> str: ...
    @property
    def flags(self) -> int: ...
    @property
    def exit_signal(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def args(self) -> str: ...
    @property
    def stack(self) -> str: ...
    @property
    def stack_size(self) -> int: ...
    @property
    def tls(self) -> str: ...
    @property
    def tls_value(self) -> int: ...
    @property
    def parent_tid(self) -> str: ...
    @property
    def child_tid(self) -> str: ...
    @property
    def pidfd(self) -> str: ...
    @property
    def set_tid(self) -> str: ...
    @property
    def set_tid_vals(self) -> tuple[int | str, ...]: ...
    @property
    def set_tid_size(self) -> int: ...
    @property
    def tail(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class HostOutcome:
    """What the host kernel did: ``pid`` (>0) on success, else ``errno``; ``inferred`` when the
    success is known only because the caller was killed (SIGKILL) or stopped (SIGSTOP) by the
    child's exit signal before it could print; ``error`` when the probe failed (crash, timeout)."""

    pid: int | None = None
    errno: int | None = None
    inferred: bool = False
    error: str | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.pid is not None

    def __str__(self) -> str:
        if self.error is not None:
            return f"probe error: {self.error}"
        if self.pid is not None:
            return "pid ?" + " (caller killed by the exit signal)" if self.inferred else f"pid {self.pid}"
        return f"errno {self.errno}"


def _source() -> bytes:
    return resources.files("forklab.host").joinpath("probe.c").read_bytes()


def _cache_dirs() -> list[Path]:
    dirs: list[Path] = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        dirs.append(Path(xdg) / "forklab")
    home = os.environ.get("HOME")
    if home:
        dirs.append(Path(home) / ".cache" / "forklab")
    dirs.append(Path(tempfile.gettempdir()) / f"forklab-{os.getuid()}")
    return dirs


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@lru_cache(maxsize=1)
def probe_path() -> Path:
    """The built probe, compiled on first use (``cc -O2``) and cached by the hash of probe.c."""
    src = _source()
    digest = hashlib.sha256(src).hexdigest()[:16]
    cc = _compiler()
    errors: list[str] = []
    for d in _cache_dirs():
        exe = d / f"forklab-probe-{digest}"
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
        if cc is None:
            raise HostError("no C compiler (cc, gcc or clang) found")
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=d) as tmp:
                c_file = Path(tmp) / "probe.c"
                c_file.write_bytes(src)
                out = Path(tmp) / "forklab-probe"
                res = subprocess.run([cc, "-O2", "-o", str(out), str(c_file)], capture_output=True, text=True,
                                     timeout=120, check=False)
                if res.returncode != 0:
                    raise HostError(f"building the probe failed:\n{res.stderr}")
                os.replace(out, exe)  # atomic: concurrent builders race harmlessly
            return exe
        except OSError as e:
            errors.append(f"{d}: {e}")
    raise HostError("no writable cache directory for the probe: " + "; ".join(errors))


def _case_argv(case: CaseLike, mode: str) -> list[str]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    if case.syscall == "clone":
        argv = [mode, "clone", f"flags={(case.flags | (case.exit_signal & 0xFF)) & (2**64 - 1):#x}"]
    elif case.syscall == "clone3":
        argv = [mode, "clone3", f"flags={case.flags & (2**64 - 1):#x}",
                f"exit_signal={case.exit_signal & (2**64 - 1):#x}", f"size={case.size & (2**64 - 1)}",
                f"args={case.args}", f"stack_size={case.stack_size & (2**64 - 1):#x}", f"pidfd={case.pidfd}",
                f"set_tid={case.set_tid}", f"set_tid_size={case.set_tid_size & (2**64 - 1):#x}"]
        if case.set_tid_vals:
            argv.append("set_tid_vals=" + ",".join(str(v) for v in case.set_tid_vals))
        if case.tail:
            argv.append(f"tail={case.tail.hex()}")
    else:
        raise ValueError(f"unknown syscall {case.syscall!r}")
    argv += [f"stack={case.stack}", f"tls={case.tls}", f"tls_value={case.tls_value & (2**64 - 1):#x}",
             f"parent_tid={case.parent_tid}", f"child_tid={case.child_tid}", f"uid={UNPRIV_UID}"]
    return argv


def _parse(case: CaseLike, stdout: str, stderr: str) -> HostOutcome:
    pid: int | None = None
    err: int | None = None
    worker: list[tuple[str, int]] = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "pid":
            pid = int(parts[1])
        elif len(parts) == 2 and parts[0] == "errno":
            err = int(parts[1])
        elif len(parts) == 3 and parts[0] == "worker":
            worker.append((parts[1], int(parts[2])))
    if pid is not None:
        return HostOutcome(pid=pid, stdout=stdout, stderr=stderr)
    if err is not None:
        return HostOutcome(errno=err, stdout=stdout, stderr=stderr)
    # No line from the caller: a child's exit signal SIGKILL/SIGSTOP can reach the caller before it
    # returns to user space (always so with CLONE_VFORK); that needs a child, so the call succeeded.
    exit_signal = (case.flags | case.exit_signal) & 0xFF if case.syscall == "clone" else case.exit_signal
    if (exit_signal == SIGKILL and ("signal", SIGKILL) in worker) or (
            exit_signal == SIGSTOP and ("stopped", SIGSTOP) in worker):
        return HostOutcome(pid=0, inferred=True, stdout=stdout, stderr=stderr)
    return HostOutcome(error=f"no result (worker {', '.join(f'{a} {b}' for a, b in worker) or 'silent'})", stdout=stdout, stderr=stderr)


def run(case: CaseLike, mode: str = "priv", timeout: float = TIMEOUT_S) -> HostOutcome:
    """Run ``case`` once on the host kernel in a fresh probe process and report its outcome."""
    argv = [str(probe_path()), *_case_argv(case, mode)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, SIGKILL)
        stdout, stderr = proc.communicate()
        return HostOutcome(error=f"timeout after {timeout} s", stdout=stdout, stderr=stderr)
    if proc.returncode != 0:
        return HostOutcome(error=f"probe exited with status {proc.returncode}", stdout=stdout, stderr=stderr)
    return _parse(case, stdout, stderr)


def unavailable_reason(mode: str = "priv") -> str | None:
    """None when the host oracle works in ``mode``; otherwise why not."""
    return _unavailable_reason(mode)


@cache
def _unavailable_reason(mode: str) -> str | None:
    if platform.system() != "Linux":
        return f"the host is {platform.system()}, not Linux"
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the probe is x86-64 only (host is {platform.machine()})"
    if mode not in MODES:
        return f"unknown mode {mode!r}"
    if mode in ("unpriv",) and os.geteuid() != 0:
        return "the unprivileged mode drops from root to a plain uid: run as root"
    try:
        probe_path()
    except (HostError, OSError, subprocess.SubprocessError) as e:
        return str(e)
    from forklab.verify import CloneCase  # import cycle: forklab.host is still loading when this module loads

    out = run(CloneCase("clone", exit_signal=SIGCHLD), mode)
    if not out.ok:
        return f"a trivial clone in mode {mode!r} did not succeed: {out} {out.stderr.strip()}"
    return None


def available(mode: str = "priv") -> bool:
    """True on Linux x86-64 with a C compiler, when the probe builds and a plain clone works in ``mode``."""
    return _unavailable_reason(mode) is None
