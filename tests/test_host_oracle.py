"""The host oracle: one clone/clone3 call on the running kernel, and the model compared with it.

Every test skips where the host cannot run the probe (not Linux x86-64, no C compiler, the
probe does not build or a plain clone fails), and the unprivileged and user-namespace tests
skip when not root or when user namespaces are not allowed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

import pytest

from forklab import host
from forklab.uapi import (
    CLONE_NEWNET,
    CLONE_PARENT,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    PAGE_SIZE,
    SIGCHLD,
    SIGKILL,
    SIGSTOP,
)
from forklab.verify import (
    CaseResult,
    CloneCase,
    flag_cases,
    format_report,
    model_version_for_host,
    random_cases,
    run_model,
    verify,
)

THREAD = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD


def need(mode: str = "priv") -> None:
    reason = host.unavailable_reason(mode)
    if reason is not None:
        pytest.skip(f"host oracle unavailable in mode {mode}: {reason}")


def no_new_zombie() -> None:
    """A CLONE_PARENT child or an orphan of the probe must never become this process's child."""
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return
    assert pid == 0, f"the probe left child {pid} to the test process"


def run(case: CloneCase, mode: str = "priv") -> host.HostOutcome:
    out = host.run(case, mode)
    assert out.error is None, f"{out} stderr={out.stderr!r}"
    no_new_zombie()
    return out


# --- the probe ------------------------------------------------------------------------------


def test_fork_like_clone_gives_a_pid():
    need()
    out = run(CloneCase("clone", exit_signal=SIGCHLD))
    assert out.ok and out.pid is not None and out.pid > 0 and not out.inferred


def test_sighand_without_vm_is_einval():
    need()
    assert run(CloneCase("clone", flags=CLONE_SIGHAND)).errno == errno.EINVAL


@pytest.mark.parametrize(("flags", "stack"), [
    (CLONE_VM | CLONE_VFORK, "null"),            # vfork: the child runs on the parent's stack
    (CLONE_VM, "null"),                          # shares the stack and runs concurrently
    (CLONE_VM, "valid"),
    (CLONE_VM, "bad"),                           # the child never touches its stack
    (THREAD, "null"),
    (THREAD | CLONE_VFORK, "null"),
    (THREAD | CLONE_SETTLS, "valid"),
    (CLONE_PARENT, "null"),                      # the child goes to the probe's supervisor
    (CLONE_PIDFD, "null"),
])
def test_probe_survives_dangerous_children(flags, stack):
    need()
    for _ in range(5):
        out = run(CloneCase("clone", flags=flags, exit_signal=SIGCHLD, stack=stack, tls="valid"))
        assert out.ok, out


def test_thread_with_pidfd_and_clone3_vm_stack():
    need()
    assert run(CloneCase("clone3", flags=THREAD, exit_signal=0, stack="valid", stack_size=65536)).ok
    assert run(CloneCase("clone3", flags=CLONE_VM | CLONE_VFORK | CLONE_PIDFD, stack="valid",
                         stack_size=65536)).ok


def test_odd_exit_signals():
    """exit_signal 200 sends nothing; SIGKILL/SIGSTOP reach the caller, whose success is then inferred."""
    need()
    assert run(CloneCase("clone", exit_signal=200)).ok
    assert run(CloneCase("clone", flags=CLONE_VM | CLONE_VFORK, exit_signal=200)).ok
    for sig in (SIGKILL, SIGSTOP):
        out = run(CloneCase("clone", flags=CLONE_VM | CLONE_VFORK, exit_signal=sig))
        assert out.ok, out
    assert run(CloneCase("clone3", exit_signal=65)).errno == errno.EINVAL


def test_clone3_struct_size_and_tail():
    need()
    assert run(CloneCase("clone3", size=4097)).errno == errno.E2BIG
    assert run(CloneCase("clone3", size=63)).errno == errno.EINVAL
    assert run(CloneCase("clone3", size=96, tail=bytes(8) + b"\x01")).errno == errno.E2BIG
    assert run(CloneCase("clone3", size=4096, tail=bytes(4015) + b"\x01")).errno == errno.E2BIG
    assert run(CloneCase("clone3", size=PAGE_SIZE)).ok
    assert run(CloneCase("clone3", args="bad")).errno == errno.EFAULT


def test_pointers():
    need()
    assert run(CloneCase("clone3", flags=CLONE_PIDFD, pidfd="bad")).errno == errno.EFAULT
    assert run(CloneCase("clone3", flags=CLONE_PARENT_SETTID, parent_tid="kernel")).ok  # write errors ignored
    assert run(CloneCase("clone", flags=CLONE_SETTLS, tls="kernel")).errno == errno.EPERM
    assert run(CloneCase("clone", flags=CLONE_PIDFD | CLONE_PARENT_SETTID)).errno == errno.EINVAL


def test_unprivileged_newnet_is_eperm():
    need("unpriv")
    assert run(CloneCase("clone", flags=CLONE_NEWNET), "unpriv").errno == errno.EPERM
    assert run(CloneCase("clone3", set_tid="valid", set_tid_vals=("free",), set_tid_size=1),
               "unpriv").errno == errno.EPERM


def test_userns_caller_is_pid_1():
    need("userns")
    out = run(CloneCase("clone"), "userns")
    assert out.pid == 2  # the first child of the namespace's init
    assert run(CloneCase("clone", flags=CLONE_PARENT), "userns").errno == errno.EINVAL
    assert run(CloneCase("clone", flags=CLONE_NEWNET), "userns").ok
    assert run(CloneCase("clone3", set_tid="valid", set_tid_vals=(7,), set_tid_size=1), "userns").pid == 7


# --- the model against the host ---------------------------------------------------------------


# Disagreements that are documented model differences, each a predicate over a CaseResult.
# Empty: the two found while building the oracle (a set_tid entry of 0; a new pid namespace's
# pid_max in 6.18) were fixed in the model.
DOCUMENTED: tuple[Callable[[CaseResult], bool], ...] = ()


def modes_available() -> list[str]:
    need()
    return [m for m in host.MODES if host.available(m)]


def bounded_cases() -> list[CloneCase]:
    return flag_cases(pairs=False) + random_cases(100, seed=1)


def test_verify_against_host_at_the_host_version():
    version = model_version_for_host()
    if version is None:
        pytest.skip("the model has no version matching the host kernel")
    report = verify(version, cases=bounded_cases(), modes=modes_available())
    text = format_report(report)
    assert "both pid" in text and "agree %" in text
    assert not report.known  # no version difference between equal versions
    unexplained = [r for r in report.disagreements if not any(doc(r) for doc in DOCUMENTED)]
    assert not unexplained, format_report(report)


def test_verify_against_host_with_5_6_14_names_every_difference():
    """The 5.6.14 model differs from a newer host only by the catalog §16 changes (or documented bugs)."""
    need()
    report = verify("5.6.14", cases=bounded_cases(), modes=modes_available())
    unexplained = [r for r in report.disagreements if not any(doc(r) for doc in DOCUMENTED)]
    assert not unexplained, format_report(report)
    if model_version_for_host() == "6.18":
        causes = {r.known for r in report.known}
        assert any(c and "CLONE_NEWTIME" in c for c in causes)  # every flag_cases() run has clone3(CLONE_NEWTIME)


@pytest.mark.parametrize("mode", ["priv", "userns"])
def test_pidfd_equal_to_parent_tid_in_clone3(mode):
    """§16.3: clone3 with CLONE_PIDFD|CLONE_PARENT_SETTID and one shared pointer: EINVAL from 5.9."""
    need(mode)
    case = CloneCase("clone3", flags=CLONE_PIDFD | CLONE_PARENT_SETTID, pidfd="same")
    out = run(case, mode)
    assert run_model(case, mode, "5.6.14").pid is not None
    if model_version_for_host() == "6.18":
        assert out.errno == errno.EINVAL
        assert run_model(case, mode, "6.18").errno == errno.EINVAL


def test_set_tid_zero_entry_is_einval_on_host_and_model():
    """A set_tid entry 0 is EINVAL like any tid below 1 (kernel/pid.c:194), on both."""
    need()
    case = CloneCase("clone3", set_tid="valid", set_tid_vals=(0,), set_tid_size=1)
    assert run(case).errno == errno.EINVAL
    assert run_model(case, "priv", "5.6.14").errno == errno.EINVAL


def test_model_runner_modes_without_host():
    """The model side alone: the three callers behave as the probe's."""
    assert run_model(CloneCase("clone"), "priv").pid == 3
    assert run_model(CloneCase("clone", flags=CLONE_NEWNET), "unpriv").errno == errno.EPERM
    assert run_model(CloneCase("clone"), "userns").pid == 2
    assert run_model(CloneCase("clone", flags=CLONE_PARENT), "userns").errno == errno.EINVAL
    assert run_model(CloneCase("clone3", size=4097), "priv").errno == errno.E2BIG
    assert random_cases(5, 3) == random_cases(5, 3)


def test_host_allows_vfork_after_unshare_newtime_as_the_6_18_profile_does():
    """§16.8 (6.2): after unshare(CLONE_NEWTIME), a CLONE_VM|CLONE_VFORK child (glibc's posix_spawn)
    is allowed; 5.6 said EINVAL (kernel/fork.c:1886). Checked in a throw-away process on the host."""
    import subprocess
    import sys

    need()
    script = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True)\n"
              "assert libc.unshare(0x80) == 0, ctypes.get_errno()\n"
              "pid = os.posix_spawn('/bin/true', ['true'], {}); print(os.waitpid(pid, 0)[1])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        pytest.skip(f"unshare(CLONE_NEWTIME) not allowed here: {out.stderr.strip()[-200:]}")
    assert out.stdout.strip() == "0"
    if model_version_for_host() == "6.18":
        from forklab import Kernel
        from forklab.uapi import CLONE_NEWTIME, CLONE_VFORK, CLONE_VM

        k = Kernel(version="6.18")
        t = k.find_task(k.fork(k.init_task))
        k.unshare(t, CLONE_NEWTIME)
        assert k.clone(t, CLONE_VM | CLONE_VFORK | SIGCHLD) > 0


NPROC_SCRIPT = r'''
import ctypes, os, resource, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
if sys.argv[1] == "chroot":
    os.chroot("/tmp")
os.setresgid(1000, 1000, 1000)
os.setresuid(1000, 1000, 1000)
r = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)  # clone(CLONE_NEWUSER|SIGCHLD): fork-like, no shared VM
if r == 0:
    os._exit(0)
print(errno.errorcode.get(ctypes.get_errno(), "ok") if r < 0 else "ok")
'''


def test_host_checks_rlimit_nproc_after_copy_creds_as_the_6_18_profile_does():
    """§16.6 (5.14): over RLIMIT_NPROC, clone(CLONE_NEWUSER) from a chrooted uid-1000 task is EPERM
    (create_user_ns, kernel/user_namespace.c:91) on 6.18, where 5.6 said EAGAIN (kernel/fork.c:1946)."""
    import subprocess
    import sys

    need("unpriv")
    results = {}
    for variant in ("plain", "chroot"):
        out = subprocess.run([sys.executable, "-c", NPROC_SCRIPT, variant], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            pytest.skip(f"cannot set up the uid-1000 caller here: {out.stderr.strip()[-200:]}")
        results[variant] = out.stdout.strip()
    assert results["plain"] == "EAGAIN"  # the limit does bite
    if model_version_for_host() == "6.18":
        assert results["chroot"] == "EPERM"


CKPT_SCRIPT = r'''
import ctypes, os, errno, sys, struct
libc = ctypes.CDLL(None, use_errno=True)
drop = [21] + ([40] if sys.argv[1] == "both" else [])
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
data = (ctypes.c_uint32 * 6)()
assert libc.syscall(125, hdr, data) == 0  # capget
for cap in drop:
    for i in (0, 1):  # effective, permitted of word cap//32
        data[(cap // 32) * 3 + i] &= ~(1 << (cap % 32))
assert libc.syscall(126, hdr, data) == 0, ctypes.get_errno()  # capset
tid = next(n for n in range(32000, 30000, -1) if not os.path.exists(f"/proc/{n}"))
tids = (ctypes.c_int * 1)(tid)
args = struct.pack("<10Q", 0, 0, 0, 0, 17, 0, 0, 0, ctypes.addressof(tids), 1)
buf = ctypes.create_string_buffer(args, 80)
r = libc.syscall(435, buf, 80)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
print("ok" if r == tid else errno.errorcode.get(ctypes.get_errno(), str(r)))
'''


def test_host_allows_set_tid_with_checkpoint_restore_as_the_6_18_profile_does():
    """§16 (5.9): set_tid needs CAP_SYS_ADMIN *or* CAP_CHECKPOINT_RESTORE in the pid namespace's user
    namespace (5.6: CAP_SYS_ADMIN only, kernel/pid.c:203). Root without CAP_SYS_ADMIN, on the host."""
    import subprocess
    import sys

    need()
    if os.geteuid() != 0:
        pytest.skip("needs root to drop single capabilities")
    out = {}
    for variant in ("sysadmin", "both"):
        run_ = subprocess.run([sys.executable, "-c", CKPT_SCRIPT, variant], capture_output=True, text=True, timeout=30)
        if run_.returncode != 0:
            pytest.skip(f"cannot run the capability probe here: {run_.stderr.strip()[-200:]}")
        out[variant] = run_.stdout.strip()
    assert out["both"] == "EPERM"
    if model_version_for_host() == "6.18":
        assert out["sysadmin"] == "ok"
