"""Compare the model with the running kernel, case by case (``forklab verify --against-host``).

A ``CloneCase`` is one clone(2) or clone3(2) call with symbolic pointers ("null", "valid",
"bad" = an unmapped user address, "kernel" = 0xffff800000000000). The same case runs on a fresh
``Kernel(version=...)`` and on the host (``forklab.host.run``), in one of three modes:

* ``priv``:   the caller is a root child of init (host: the probe as root, full capabilities);
* ``unpriv``: the caller dropped to uid ``UNPRIV_UID`` with setresuid (no capabilities);
* ``userns``: the caller is pid 1 of a new pid namespace owned by a new user namespace that maps
  uid/gid 0 to the outer uid/gid.

Outcomes are compared by kind: both returned a pid (the numbers differ, of course), both failed
with the same errno, or they disagree. Disagreements that are known differences between the
model's version and the host's (docs: catalog §16) are named by ``known_difference``.
"""

from __future__ import annotations

import errno
import os
import platform
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from typing import TypeVar

from forklab import host
from forklab.errors import KernelError, errno_name
from forklab.host import MODES, UNPRIV_UID
from forklab.include.linux.mm_types import TASK_SIZE_MAX
from forklab.include.linux.sched import Task
from forklab.include.linux.types import U64
from forklab.syscalls import Kernel
from forklab.uapi import (
    _NSIG,
    CLONE_ARGS_SIZE_VER0,
    CLONE_ARGS_SIZE_VER1,
    CLONE_ARGS_SIZE_VER2,
    CLONE_CHILD_CLEARTID,
    CLONE_CHILD_SETTID,
    CLONE_CLEAR_SIGHAND,
    CLONE_DETACHED,
    CLONE_FILES,
    CLONE_FS,
    CLONE_INTO_CGROUP,
    CLONE_IO,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    CLONE_PARENT,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_PTRACE,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_UNTRACED,
    CLONE_VFORK,
    CLONE_VM,
    CSIGNAL,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
    SIGHUP,
    SIGKILL,
    SIGRTMIN,
    SIGSTOP,
    SIGUSR1,
    clone_flags_str,
)
from forklab.version import CHANGES, VERSIONS, changes_in

__all__ = [
    "FLAG_BITS",
    "CaseResult",
    "CloneCase",
    "Outcome",
    "Report",
    "classify",
    "flag_cases",
    "format_report",
    "known_difference",
    "model_version_for_host",
    "random_cases",
    "run_model",
    "verify",
]

T = TypeVar("T")

KINDS = ("null", "valid", "bad", "kernel")
KERNEL_ADDR = 0xFFFF800000000000
STACK_LEN = 64 * 1024

# Every CLONE_* bit of 5.6 and 6.18: CLONE_NEWTIME (inside CSIGNAL), bits 8-31, CLONE_CLEAR_SIGHAND
# (bit 32, clone3 only) and CLONE_INTO_CGROUP (bit 33, 5.7+).
FLAG_BITS: tuple[int, ...] = (
    CLONE_NEWTIME, CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND, CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK,
    CLONE_PARENT, CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS, CLONE_PARENT_SETTID,
    CLONE_CHILD_CLEARTID, CLONE_DETACHED, CLONE_UNTRACED, CLONE_CHILD_SETTID, CLONE_NEWCGROUP, CLONE_NEWUTS,
    CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_IO, CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP,
)


@dataclass(frozen=True, slots=True)
class CloneCase:
    """One clone/clone3 call with symbolic pointers.

    For ``clone`` the first argument is ``flags | (exit_signal & 0xff)`` and only ``stack``,
    ``tls``, ``parent_tid`` and ``child_tid`` are used (CLONE_PIDFD writes through parent_tid).
    For ``clone3`` the struct of ``size`` bytes lives at ``args`` (a symbolic pointer), its
    pointer fields come from the kinds, ``stack_size`` is the field itself, ``set_tid_vals``
    is the pid_t array (``"free"`` = a pid no task uses at that level), and ``tail`` holds the
    bytes from offset 80 of the struct on (the kernel sees those below ``size``). ``pidfd`` may
    also be ``"same"``: the parent_tid address.
    """

    syscall: str
    flags: int = 0
    exit_signal: int = SIGCHLD
    size: int = CLONE_ARGS_SIZE_VER1
    args: str = "valid"
    stack: str = "null"
    stack_size: int = 0
    tls: str = "null"
    tls_value: int = 0
    parent_tid: str = "valid"
    child_tid: str = "valid"
    pidfd: str = "valid"
    set_tid: str = "null"
    set_tid_vals: tuple[int | str, ...] = ()
    set_tid_size: int = 0
    tail: bytes = b""

    def describe(self) -> str:
        """A one-line description naming the fields that matter for this syscall."""
        if self.syscall == "clone":
            raw = (self.flags | (self.exit_signal & 0xFF)) & U64
            parts = [f"clone({clone_flags_str(raw & ~0xFF)}|sig {raw & 0xFF}"]
            if raw >> 32:
                parts.append(f"high {raw >> 32:#x}")
        else:
            parts = [f"clone3({clone_flags_str(self.flags)}", f"exit_signal={self.exit_signal:#x}", f"size={self.size}"]
            if self.args != "valid":
                parts.append(f"args={self.args}")
            if self.stack != "null" or self.stack_size:
                parts.append(f"stack_size={self.stack_size:#x}")
            parts.append(f"pidfd={self.pidfd}")
            if self.set_tid != "null" or self.set_tid_size or self.set_tid_vals:
                parts.append(f"set_tid={self.set_tid}{list(self.set_tid_vals)} set_tid_size={self.set_tid_size}")
            if self.tail.strip(b"\0"):
                parts.append(f"tail={self.tail.hex()}")
        parts += [f"stack={self.stack}", f"ptid={self.parent_tid}", f"ctid={self.child_tid}"]
        if self.tls == "value":
            parts.append(f"tls={self.tls_value:#x}")
        elif self.tls != "null":
            parts.append(f"tls={self.tls}")
        return ", ".join(parts) + ")"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A result on either side: a pid, an errno, or an error (probe failure, model exception)."""

    pid: int | None = None
    errno: int | None = None
    rule: str = ""
    error: str | None = None

    @property
    def kind(self) -> str:
        if self.error is not None:
            return "error"
        return "pid" if self.pid is not None else errno_name(self.errno or 0)

    def __str__(self) -> str:
        if self.error is not None:
            return f"error: {self.error}"
        if self.pid is not None:
            return f"pid {self.pid}" if self.pid else "pid ? (caller killed/stopped by the exit signal)"
        return f"{errno_name(self.errno or 0)}" + (f" [{self.rule}]" if self.rule else "")


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: CloneCase
    mode: str
    host: Outcome
    model: Outcome
    category: str  # "pid", "errno", "known", "disagree", "error"
    known: str | None = None


@dataclass
class Report:
    version: str
    host_release: str
    seed: int | None
    results: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for r in self.results:
            out.setdefault(r.mode, Counter())[r.category] += 1
        return out

    @property
    def disagreements(self) -> list[CaseResult]:
        return [r for r in self.results if r.category in ("disagree", "error")]

    @property
    def known(self) -> list[CaseResult]:
        return [r for r in self.results if r.category == "known"]


# --- case generators ------------------------------------------------------------------------


def _exit_signal_for(syscall: str, flags: int) -> int:
    if syscall == "clone3" and flags & (CLONE_THREAD | CLONE_PARENT):
        return 0
    return SIGCHLD


def flag_cases(pairs: bool = True, syscalls: Sequence[str] = ("clone", "clone3")) -> list[CloneCase]:
    """No flag, every single CLONE_* bit and (``pairs``) every pair, for each syscall.

    The exit signal is SIGCHLD, or 0 for clone3 with CLONE_THREAD/CLONE_PARENT (which need 0);
    every pointer is valid, the stack is NULL (clone3: stack and stack_size 0)."""
    sets: list[int] = [0, *FLAG_BITS]
    if pairs:
        sets += [a | b for a, b in combinations(FLAG_BITS, 2)]
    return [CloneCase(sc, flags=f, exit_signal=_exit_signal_for(sc, f)) for sc in syscalls for f in sets]


def _pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    values = [v for v, _ in weighted]
    weights = [w for _, w in weighted]
    return rng.choices(values, weights)[0]


def _kind(rng: random.Random, valid: int = 60, null: int = 20, bad: int = 10, kernel: int = 10) -> str:
    return _pick(rng, [("valid", valid), ("null", null), ("bad", bad), ("kernel", kernel)])


def random_case(rng: random.Random) -> CloneCase:
    """One random case: flags (biased towards the thread/vfork/sighand combinations), exit signal,
    struct size and tail bytes, stack and stack_size, tls, pointers and set_tid arrays."""
    syscall = _pick(rng, [("clone", 2), ("clone3", 3)])
    flags = 0
    for _ in range(_pick(rng, [(0, 1), (1, 3), (2, 3), (3, 3), (4, 2), (6, 1)])):
        flags |= rng.choice(FLAG_BITS)
    r = rng.random()
    if r < 0.15:
        flags |= CLONE_VM | CLONE_SIGHAND | CLONE_THREAD
    elif r < 0.25:
        flags |= CLONE_VM | CLONE_VFORK
    elif r < 0.33:
        flags |= CLONE_VM | CLONE_SIGHAND
    elif r < 0.38:
        flags &= ~(CLONE_FS | CLONE_SIGHAND | CLONE_THREAD | CLONE_PIDFD | CLONE_PARENT_SETTID)
    if rng.random() < 0.04:
        flags |= rng.getrandbits(64) & ~((1 << 34) - 1)  # undefined high bits

    if syscall == "clone":
        exit_signal = _pick(rng, [(SIGCHLD, 12), (0, 2), (SIGHUP, 1), (SIGKILL, 1), (SIGUSR1, 1), (SIGSTOP, 1),
                                  (SIGRTMIN, 1), (SIGRTMIN + 1, 1), (_NSIG, 1), (_NSIG + 1, 1), (128, 1), (200, 1),
                                  (CSIGNAL, 1)])
        return CloneCase("clone", flags=flags, exit_signal=exit_signal, stack=_kind(rng, 30, 60, 5, 5),
                         tls=_tls_kind(rng), tls_value=_tls_value(rng), parent_tid=_kind(rng),
                         child_tid=_kind(rng), pidfd="null", args="valid", size=CLONE_ARGS_SIZE_VER1)

    if flags & (CLONE_THREAD | CLONE_PARENT) and rng.random() < 0.8:
        exit_signal = 0
    else:
        exit_signal = _pick(rng, [(SIGCHLD, 10), (0, 6), (SIGHUP, 1), (SIGKILL, 1), (SIGSTOP, 1), (SIGRTMIN + 1, 1),
                                  (_NSIG, 1), (_NSIG + 1, 1), (CSIGNAL, 1), (CSIGNAL + 1, 1), (2**32 + SIGCHLD, 1),
                                  (2**63, 1), (U64, 1)])
    v0, v1, v2 = CLONE_ARGS_SIZE_VER0, CLONE_ARGS_SIZE_VER1, CLONE_ARGS_SIZE_VER2
    size = _pick(rng, [(v1, 14), (v0, 3), (v0 + 8, 2), (v2, 3), (v2 + 8, 2), (v2 + 16, 1), (v0 - 1, 1), (0, 1),
                       (PAGE_SIZE, 1), (PAGE_SIZE + 1, 1), (2 * PAGE_SIZE, 1), (rng.randint(v0 + 1, 200), 2)])
    tail = b""
    if v1 < size <= PAGE_SIZE and rng.random() < 0.5:
        j = rng.randrange(0, 8) if rng.random() < 0.5 else rng.randrange(0, size - v1)
        tail = bytes(j) + bytes([rng.randint(1, 255)])
    stack = _kind(rng, 35, 55, 5, 5)
    if stack == "valid":
        stack_size = _pick(rng, [(STACK_LEN, 6), (PAGE_SIZE, 1), (1, 1), (0, 1), (1 << 20, 1), (2**63, 1), (U64, 1)])
    elif stack == "null":
        stack_size = _pick(rng, [(0, 10), (PAGE_SIZE, 1), (1, 1)])
    else:
        stack_size = _pick(rng, [(PAGE_SIZE, 2), (0, 1), (STACK_LEN, 1)])
    set_tid, vals, set_tid_size = "null", tuple[int | str, ...](), 0
    if rng.random() < 0.3:
        set_tid = _pick(rng, [("valid", 8), ("null", 1), ("bad", 1)])
        pool: list[int | str] = [1, 2, "free", "free", "free", 0, -1, 32768, 5_000_000, 2**31 - 1]
        vals = tuple(rng.choice(pool) for _ in range(_pick(rng, [(0, 1), (1, 6), (2, 3), (3, 1)])))
        set_tid_size = len(vals) if rng.random() < 0.75 else _pick(rng, [(0, 2), (1, 2), (2, 1), (32, 1), (33, 1)])
    return CloneCase("clone3", flags=flags, exit_signal=exit_signal, size=size,
                     args=_pick(rng, [("valid", 93), ("null", 2), ("bad", 3), ("kernel", 2)]),
                     stack=stack, stack_size=stack_size, tls=_tls_kind(rng), tls_value=_tls_value(rng),
                     parent_tid=_kind(rng), child_tid=_kind(rng),
                     pidfd=_pick(rng, [("valid", 55), ("null", 20), ("bad", 8), ("kernel", 7), ("same", 10)]),
                     set_tid=set_tid, set_tid_vals=vals, set_tid_size=set_tid_size, tail=tail)


def _tls_kind(rng: random.Random) -> str:
    return _pick(rng, [("null", 45), ("valid", 25), ("bad", 8), ("kernel", 8), ("value", 14)])


def _tls_value(rng: random.Random) -> int:
    return _pick(rng, [(TASK_SIZE_MAX - 1, 1), (TASK_SIZE_MAX, 1), (1 << 47, 1), (U64, 1), (0x1000, 1)])


def random_cases(n: int, seed: int) -> list[CloneCase]:
    """``n`` random cases from ``random.Random(seed)``: the same seed gives the same cases."""
    rng = random.Random(seed)
    return [random_case(rng) for _ in range(n)]


# --- the model side -------------------------------------------------------------------------


def _model_caller(k: object, mode: str) -> tuple[object, bool]:
    """The task that makes the call in ``mode``, and whether it is in a new pid namespace."""

    assert isinstance(k, Kernel)
    init = k.init_task
    t = k.find_task(k.fork(init))
    if mode == "priv":
        return t, False
    if mode == "unpriv":
        k.setresuid(t, UNPRIV_UID, UNPRIV_UID, UNPRIV_UID)
        return t, False
    if mode == "userns":
        k.unshare(t, CLONE_NEWUSER | CLONE_NEWPID)
        # As the probe does: map its own uid and, after setgroups=deny, its own gid.
        k.write_id_map(t, t, [(0, 0, 1)], [(0, 0, 1)], deny_setgroups=True)
        g = k.find_task(k.fork(t))  # fork returns the pid t sees, in the initial namespace
        return g, True
    raise ValueError(f"unknown mode {mode!r}")


def run_model(case: CloneCase, mode: str = "priv", version: str = "5.6.14", pid_max: int | None = None) -> Outcome:
    """Run ``case`` on a fresh ``Kernel(version=version)`` as the caller of ``mode``."""

    try:
        k = Kernel(version=version) if pid_max is None else Kernel(version=version, pid_max=pid_max)
        t, in_new_ns = _model_caller(k, mode)
    except (KernelError, ValueError) as e:  # pragma: no cover - the setup is plain
        return Outcome(error=f"model setup failed: {e}")
    try:
        return _call_model(k, t, case, in_new_ns)
    except KernelError as e:
        return Outcome(errno=e.errno, rule=str(e))
    except Exception as e:  # Unmodelled, TaskKilled, a model bug: all reported, none hidden
        return Outcome(error=f"{type(e).__name__}: {e}")


def _call_model(k: object, t: object, case: CloneCase, in_new_ns: bool) -> Outcome:

    assert isinstance(k, Kernel) and isinstance(t, Task)
    rw, anon = PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS

    def page(n: int = 1) -> int:
        return k.mmap(t, 0, PAGE_SIZE * n, rw, anon)

    args_buf = page(2)
    stack_area = k.mmap(t, 0, STACK_LEN, rw, anon)
    buffers = {name: page() for name in ("parent_tid", "child_tid", "pidfd", "tls", "set_tid")}
    bad = page()
    k.munmap(t, bad, PAGE_SIZE)

    def ptr(kind: str, name: str) -> int:
        return {"null": 0, "valid": buffers.get(name, 0), "bad": bad, "kernel": KERNEL_ADDR}[kind]

    stack = {"null": 0, "valid": stack_area, "bad": bad, "kernel": KERNEL_ADDR}[case.stack]
    tls = case.tls_value if case.tls == "value" else ptr(case.tls, "tls")
    ptid, ctid = ptr(case.parent_tid, "parent_tid"), ptr(case.child_tid, "child_tid")
    if case.syscall == "clone":
        if case.stack == "valid":
            stack += STACK_LEN
        raw = (case.flags | (case.exit_signal & 0xFF)) & U64
        return Outcome(pid=k.clone(t, raw, stack, ptid, ctid, tls))
    if case.syscall != "clone3":
        raise ValueError(f"unknown syscall {case.syscall!r}")
    pidfd = ptid if case.pidfd == "same" else ptr(case.pidfd, "pidfd")
    set_tid = ptr(case.set_tid, "set_tid")
    tids = b"".join((_free_pid(i, in_new_ns) if v == "free" else int(v)).to_bytes(4, "little", signed=True)
                    for i, v in enumerate(case.set_tid_vals))
    if tids:
        k.store(t, buffers["set_tid"], tids)
    fields = (case.flags, pidfd, ctid, ptid, case.exit_signal, stack, case.stack_size, tls, set_tid,
              case.set_tid_size)
    struct = bytearray(b"".join((v & U64).to_bytes(8, "little") for v in fields))
    struct += case.tail
    struct = struct[: min(case.size, 2 * PAGE_SIZE)]
    k.store(t, args_buf, bytes(struct))
    args = {"null": 0, "valid": args_buf, "bad": bad, "kernel": KERNEL_ADDR}[case.args]
    return Outcome(pid=k.clone3(t, args, case.size))


def _free_pid(level_index: int, in_new_ns: bool) -> int:
    """A pid no task uses at that set_tid level (the host probe picks its own, also unused)."""
    if level_index == 0 and in_new_ns:
        return 100
    return 20000 + level_index


# --- comparison -----------------------------------------------------------------------------


def _vtuple(v: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in v.split("-")[0].split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def model_version_for_host(release: str | None = None) -> str | None:
    """The model version whose major.minor matches the host kernel (``platform.release()``), if any."""

    host = _vtuple(release or platform.release())[:2]
    for v in VERSIONS:
        if _vtuple(v)[:2] == host:
            return v
    return None


def known_difference(case: CloneCase, mode: str, host: Outcome, model: Outcome, version: str,
                     host_release: str) -> str | None:
    """Name the change (forklab/version.py, catalog §16) that explains a host/model disagreement,
    when the model's version lacks it and the host's release has it; None when none does."""

    model_has = changes_in(version) if version in VERSIONS else frozenset()
    since = {c.name: c.since for c in CHANGES}
    hv = _vtuple(host_release)

    def changed(name: str) -> bool:
        return name not in model_has and since[name] <= hv

    c3 = case.syscall == "clone3"
    f = case.flags
    einval_model = model.errno == errno.EINVAL
    if c3 and f & CLONE_INTO_CGROUP and changed("clone_into_cgroup"):
        return "§16.2 CLONE_INTO_CGROUP (bit 33) exists from 5.7: cgroup fd checks instead of the unknown-flag EINVAL"
    if c3 and case.size > CLONE_ARGS_SIZE_VER1 and any(case.tail[:8]) and model.errno == errno.E2BIG and changed("clone_into_cgroup"):
        return "§16.2 bytes 80-87 of struct clone_args are the 5.7 cgroup field, no longer a must-be-zero tail"
    if c3 and f & CLONE_NEWTIME and einval_model and changed("clone3_newtime"):
        return "§16.9 clone3 accepts CLONE_NEWTIME from 6.3 (5.6 rejects it with the CSIGNAL bits)"
    if f & CLONE_PIDFD and f & CLONE_THREAD and einval_model and changed("pidfd_thread"):
        return "§16.10 CLONE_PIDFD|CLONE_THREAD allowed from 6.9 (a thread pidfd)"
    if (c3 and f & CLONE_PIDFD and f & CLONE_PARENT_SETTID and case.pidfd == "same" and host.errno == errno.EINVAL
            and changed("pidfd_parent_tid_same_address")):
        return "§16.3 from 5.9 clone3 also rejects CLONE_PIDFD|CLONE_PARENT_SETTID when pidfd == parent_tid"
    if (mode == "userns" and c3 and host.pid is not None and model.errno == errno.EINVAL and "pid_max" in model.rule
            and changed("pid_max_per_ns")):
        return ("§16.11 from 6.14 each pid namespace has its own pid_max; on 6.18 a new one starts at "
                "PID_MAX_LIMIT (4194304, observed), not at its parent's value, so set_tid may name pids above that")
    return None


def classify(case: CloneCase, mode: str, host: Outcome, model: Outcome, version: str,
             host_release: str) -> CaseResult:
    """Compare one case's two outcomes."""
    if host.error is not None or model.error is not None:
        category, known = "error", None
    elif host.pid is not None and model.pid is not None:
        category, known = "pid", None
    elif host.errno is not None and host.errno == model.errno:
        category, known = "errno", None
    else:
        known = known_difference(case, mode, host, model, version, host_release)
        category = "known" if known else "disagree"
    return CaseResult(case, mode, host, model, category, known)


def _host_pid_max() -> int | None:
    """The host's kernel.pid_max, so the model's set_tid bounds are the host's."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _host_outcome(case: CloneCase, mode: str) -> Outcome:

    out = host.run(case, mode)
    if out.error is not None:
        return Outcome(error=f"{out.error}; stderr: {out.stderr.strip()}")
    return Outcome(pid=out.pid, errno=out.errno)


def verify(version: str, n_random: int = 2000, seed: int = 0, modes: Iterable[str] = MODES,
           cases: Sequence[CloneCase] | None = None, jobs: int | None = None,
           progress: Callable[[int, int], None] | None = None) -> Report:
    """Run every case (default: ``flag_cases()`` then ``random_cases(n_random, seed)``) on the model
    at ``version`` and on the host, in each of ``modes``; host probes run ``jobs`` at a time."""

    start = time.monotonic()
    seeded = cases is None
    if cases is None:
        cases = flag_cases() + random_cases(n_random, seed)
    modes = list(modes)
    for m in modes:
        reason = host.unavailable_reason(m)
        if reason is not None:
            raise host.HostError(f"the host oracle is not available in mode {m!r}: {reason}")
    release = platform.release()
    pid_max = _host_pid_max()
    report = Report(version=version, host_release=release, seed=seed if seeded else None)
    work = [(c, m) for m in modes for c in cases]
    jobs = jobs or max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures: list[Future[Outcome]] = [pool.submit(_host_outcome, c, m) for c, m in work]
        for i, ((c, m), fut) in enumerate(zip(work, futures, strict=True)):
            model = run_model(c, m, version, pid_max)
            report.results.append(classify(c, m, fut.result(), model, version, release))
            if progress is not None:
                progress(i + 1, len(work))
    report.seconds = time.monotonic() - start
    return report


def format_report(report: Report, limit: int | None = None) -> str:
    """The agreement table (per mode and category), then every disagreement with both results and
    the model's rule, then the known version differences grouped by cause."""
    cats = ("pid", "errno", "known", "disagree", "error")
    heads = ("mode", "cases", "both pid", "same errno", "known diff", "disagree", "error", "agree %")
    rows: list[tuple[str, ...]] = []
    total: Counter[str] = Counter()
    for mode, cnt in report.counts().items():
        total.update(cnt)
        n = sum(cnt.values())
        rows.append((mode, str(n), *(str(cnt[c]) for c in cats), f"{100.0 * (cnt['pid'] + cnt['errno']) / n:.1f}"))
    n = sum(total.values())
    if n:
        rows.append(("all", str(n), *(str(total[c]) for c in cats),
                     f"{100.0 * (total['pid'] + total['errno']) / n:.1f}"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    lines = [f"model {report.version} vs host kernel {report.host_release}"
             + (f", seed {report.seed}" if report.seed is not None else "") + f" ({report.seconds:.1f} s)", ""]
    lines.append("  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    dis = report.disagreements
    lines += ["", f"disagreements: {len(dis)}"]
    for r in dis[:limit] if limit is not None else dis:
        lines.append(f"- [{r.mode}] {r.case.describe()}")
        lines.append(f"    host:  {r.host}")
        lines.append(f"    model: {r.model}")
    if limit is not None and len(dis) > limit:
        lines.append(f"  ... and {len(dis) - limit} more")
    groups: dict[str, list[CaseResult]] = {}
    for r in report.known:
        groups.setdefault(r.known or "", []).append(r)
    lines += ["", f"known version differences: {len(report.known)}"]
    for cause, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"- {len(rs)} x {cause}")
        for r in rs[: 3 if limit is not None else len(rs)]:
            lines.append(f"    [{r.mode}] {r.case.describe()}: host {r.host}; model {r.model}")
    return "\n".join(lines)

