"""The host oracle for the process lifecycle: process groups and sessions, kill, job control,
waitid/wait4 and pidfds, each fact seen on the live kernel and on the model.

Each test runs one case of the C probe tests/host/lifecycle.c (built with cc into a temporary
directory) and the same scenario on the model, and asserts that both report the same facts: a
dict of ``key -> value`` where a value is an errno name (``EPERM``), a wait status (``0x137f``),
a siginfo as ``si_code/si_status`` (``5/19``), ``none`` (a WNOHANG wait that found nothing, a
SIGCHLD that did not come), or 0/1 for a yes/no fact. The host's line is in a comment next to each
test: it is what this machine's 6.18.44 kernel said.

Containment: the probe runs every case in a new pid and mount namespace whose init (the
supervisor: a session leader and child subreaper, bounded by alarm(5)) kills and reaps all of it
at the end; when that init dies for any reason the kernel kills the whole namespace. So the
host tests need root and pid namespaces; they skip where cc, root or namespaces are missing. The
model side skips while the call it needs is not there yet (AttributeError, ImportError,
NotImplementedError or forklab.Unmodelled); any disagreement fails.

Where 5.6 and 6.18 agree the model runs at its default 5.6.14; the facts that changed after 5.6
are compared with ``Kernel(version="6.18")`` in the tests named ``..._6_18``, which also check
that the 5.6.14 model keeps the 5.6 behaviour.
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import active_ns

from forklab import Blocked, Kernel, SigAction, Task, TaskKilled, TaskState
from forklab.include.linux.sched import PF
from forklab.uapi import (
    __WALL,
    CLONE_NEWPID,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    F_GETFD,
    FD_CLOEXEC,
    O_EXCL,
    P_ALL,
    P_PGID,
    P_PID,
    P_PIDFD,
    PIDFD_NONBLOCK,
    POLLIN,
    PR_SET_CHILD_SUBREAPER,
    RLIMIT_CORE,
    SA_NOCLDSTOP,
    SIG_BLOCK,
    SIG_IGN,
    SIG_UNBLOCK,
    SIGCHLD,
    SIGCONT,
    SIGHUP,
    SIGKILL,
    SIGQUIT,
    SIGSTOP,
    SIGTERM,
    SIGUSR1,
    WCONTINUED,
    WEXITED,
    WNOHANG,
    WNOWAIT,
    WSTOPPED,
    WUNTRACED,
    SigInfo,
)

SOURCE = Path(__file__).parent / "host" / "lifecycle.c"
TIMEOUT_S = 10.0
THREAD = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x401000  # a user handler address: the model records its delivery
NO_PID = 30000  # no process has it, in the probe's fresh pid namespace or in a fresh model
PIDFD_THREAD = O_EXCL  # include/uapi/linux/pidfd.h (6.9)
STOPPED_BIT = 0x0004  # __TASK_STOPPED (include/linux/sched.h:79)
Facts = dict[str, str]


# --- the host side ------------------------------------------------------------------------------


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _run(exe: Path, case: str) -> tuple[Facts, str]:
    """Run one case in a fresh probe process (its own session); kill it all on timeout."""
    proc = subprocess.Popen([str(exe), case], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the lifecycle probe timed out in case {case}: {out!r} {err!r}")
    line = next((ln for ln in out.splitlines() if ln.startswith(f"case={case}")), None)
    if proc.returncode != 0 or line is None:
        pytest.fail(f"the lifecycle probe failed in case {case} (status {proc.returncode}): {out!r} {err!r}")
    facts = dict(part.split("=", 1) for part in line.split()[1:])
    return facts, err


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built probe, or a skip saying why the host cannot run it."""
    if platform.system() != "Linux":
        pytest.skip(f"the host is {platform.system()}, not Linux")
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build tests/host/lifecycle.c")
    if os.geteuid() != 0:
        pytest.skip("not root: the lifecycle probe contains each case in a new pid and mount namespace")
    exe = tmp_path_factory.mktemp("lifecycle-probe") / "lifecycle"
    res = subprocess.run([cc, "-O2", "-pthread", "-o", str(exe), str(SOURCE)], capture_output=True, text=True,
                         timeout=120, check=False)
    if res.returncode != 0:
        pytest.skip(f"tests/host/lifecycle.c does not build here: {res.stderr.strip()[-300:]}")
    facts, err = _run(exe, "noop")
    if "error" in facts:
        pytest.skip(f"namespaces unavailable for the lifecycle probe: {facts['error']} {err.strip()}")
    return exe


def host(probe: Path, case: str) -> Facts:
    facts, err = _run(probe, case)
    if facts.get("error", "").startswith("unshare"):
        pytest.skip(f"namespaces unavailable for case {case}: {facts['error']}")
    assert "error" not in facts, f"probe error in case {case}: {facts} {err!r}"
    try:  # nothing of the probe may become this process's child
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pid = 0
    assert pid == 0, f"the probe left child {pid} to the test process"
    return facts


# --- the model side -----------------------------------------------------------------------------


def model(scenario: Callable[[Facts], None]) -> Facts:
    """Run a model scenario that fills in facts; skip while the model lacks a call it makes.

    A scenario that stops early because the model went another way (a wait that sleeps, a task
    that cannot run) keeps the facts so far plus ``model_stopped``, so the comparison shows where.
    """
    facts: Facts = {}
    try:
        scenario(facts)
    except (AttributeError, ImportError, NotImplementedError) as e:  # forklab.Unmodelled is a NotImplementedError
        pytest.skip(f"the model does not do this yet: {type(e).__name__}: {e}")
    except (Blocked, ValueError, TaskKilled) as e:
        facts["model_stopped"] = f"{type(e).__name__}: {e}"
    return facts


def agree(host_facts: Facts, model_facts: Facts, keys: set[str] | None = None) -> None:
    """Both sides report the same facts (only ``keys`` when given)."""
    names = keys if keys is not None else set(host_facts) | set(model_facts)
    diff = {k: (host_facts.get(k, "-"), model_facts.get(k, "-")) for k in sorted(names)
            if host_facts.get(k, "-") != model_facts.get(k, "-")}
    extra = {k: v for k, v in model_facts.items() if k == "model_stopped"}
    assert not diff and not extra, f"host and model disagree (fact: (host, model)): {diff} {extra}"


def rc(fn: Callable[..., object], *args: object) -> str:
    """A call's result as the probe prints it: the errno name, else the value."""
    try:
        r = fn(*args)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))
    return str(r)


def yes(cond: object) -> str:
    return "1" if cond else "0"


def child(k: Kernel, parent: Task) -> Task:
    return k.find_task(k.fork(parent), active_ns(parent))


def vpid(t: Task) -> int:
    """``t``'s pid in its own pid namespace."""
    assert t.thread_pid is not None
    return int(t.thread_pid.numbers[t.thread_pid.level].nr)


def thread(k: Kernel, leader: Task) -> Task:
    return k.find_task(k.clone(leader, THREAD), active_ns(leader))


def sigmask(sig: int) -> int:
    return 1 << (sig - 1)


def supervisor(k: Kernel) -> Task:
    """The probe's supervisor: a session leader and child subreaper under init."""
    s = child(k, k.init_task)
    k.setsid(s)
    k.prctl(s, PR_SET_CHILD_SUBREAPER, 1)
    return s


def alive(t: Task) -> bool:
    return not t.exit_state and not t.flags & PF.PF_EXITING


def stopped(t: Task) -> bool:
    return alive(t) and bool(t.state & STOPPED_BIT)


def run_tasks(k: Kernel, *tasks: Task) -> None:
    """Let every thread of these processes run to user mode, as the host's would after a signal.

    The model delivers a signal when its target next leaves the kernel; a host process that is
    not stopped runs by itself. A getpid by each runnable thread stands for that.
    """
    for _ in range(3):
        for t in tasks:
            for th in list(t.signal.thread_head) if t.signal is not None else [t]:
                if alive(th) and th.state == TaskState.TASK_RUNNING:
                    with contextlib.suppress(TaskKilled):
                        k.getpid(th)


def wait(k: Kernel, t: Task, pid: int, options: int) -> str:
    """wait4 as the probe prints it: the status word, none (WNOHANG), the errno, or blocked."""
    try:
        r, status = k.wait4(t, pid, options)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))
    except Blocked:
        return "blocked"  # the host's wait returned; a model that sleeps here disagrees
    return "none" if r == 0 else f"{status:#x}"


def waitid(k: Kernel, t: Task, idtype: int, id_: int, options: int) -> tuple[str, SigInfo | None]:
    """waitid as the probe prints it: si_code/si_status, none (WNOHANG), the errno, or blocked."""
    try:
        si = k.waitid(t, idtype, id_, options)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno)), None
    except Blocked:
        return "blocked", None
    return ("none", None) if si is None else (f"{si.si_code}/{si.si_status}", si)


def sigchld(k: Kernel, t: Task) -> str:
    """sigtimedwait({SIGCHLD}) on a blocked SIGCHLD: the queued si_code/si_status, or none."""
    from forklab.kernel.signal import dequeue_signal

    info = dequeue_signal(t, ~sigmask(SIGCHLD) & (2**64 - 1))
    return "none" if info is None else f"{info.si_code}/{info.si_status}"


def handled(k: Kernel, t: Task, sig: int) -> int:
    """How many times ``t``'s handler for ``sig`` ran."""
    return sum(1 for pid, s, how in k.signals_delivered if pid == t.pid and s == sig and how.startswith("handler"))


def make_binary(k: Kernel, path: str = "/bin/true") -> None:
    if k.vfs.lookup("/bin") is None:
        k.vfs.mkdir("/bin")
    inode = k.vfs.create(path, mode=0o755)
    inode.data[:] = b"\x7fELF\x02\x01\x01"
    inode.i_size = 7


# --- process groups and sessions ----------------------------------------------------------------


# host: fork_pgid_is_parents=1 fork_sid_is_parents=1 setpgid_before_exec=0 setpgid_after_exec=EACCES
#       setpgid_after_exec_to_parent_pgrp=EACCES exec_kept_pgid=1 exec_kept_sid=1
def test_setpgid_on_a_child_is_eacces_once_it_has_execed(probe):
    """fork inherits pgrp and session; setpgid on a child needs PF_FORKNOEXEC (kernel/sys.c:1033-1034);
    exec keeps pgrp and session."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        make_binary(k)
        s = supervisor(k)
        pg, sid = k.getpgrp(s), k.getsid(s, 0)
        c = child(k, s)
        f["fork_pgid_is_parents"] = yes(k.getpgid(s, c.pid) == pg)
        f["fork_sid_is_parents"] = yes(k.getsid(s, c.pid) == sid)
        f["setpgid_before_exec"] = rc(k.setpgid, s, c.pid, c.pid)
        k.execve(c, "/bin/true", ["true"], [])
        f["setpgid_after_exec"] = rc(k.setpgid, s, c.pid, c.pid)
        f["setpgid_after_exec_to_parent_pgrp"] = rc(k.setpgid, s, c.pid, pg)
        f["exec_kept_pgid"] = yes(k.getpgid(s, c.pid) == c.pid)
        f["exec_kept_sid"] = yes(k.getsid(s, c.pid) == sid)
        k.check_invariants()

    agree(host(probe, "pgrp_exec"), model(scenario))


# host: leader_setpgid_self=EPERM negative_pgid=EINVAL no_such_pid=ESRCH getsid_no_such_pid=ESRCH
#       getpgid_no_such_pid=ESRCH child_in_other_session=EPERM child_in_other_session_to_parent_pgrp=EPERM
#       getsid_other_session_is_its_pid=1 into_pgrp_of_other_session=EPERM into_missing_pgrp=EPERM
#       sibling=ESRCH parent=ESRCH thread_tid=EINVAL pgid_is_a_thread_tid=EPERM into_own_pgrp=0
#       setsid_as_pgrp_leader=EPERM back_to_parent_pgrp=0 setsid_pgid_in_use=EPERM setsid_returns_pid=1
#       setsid_leads_pgrp=1 setsid_leads_session=1 setsid_twice=EPERM
def test_setpgid_and_setsid_error_rules(probe):
    """setpgid (kernel/sys.c:1003-1071): pgid < 0 EINVAL; no such pid ESRCH; a non-leader thread EINVAL;
    a child in another session EPERM; neither self nor a child ESRCH; a session leader EPERM; a pgid
    naming no pgrp of the caller's session EPERM. setsid (1152-1193): EPERM while a pgrp has the
    caller's pid as its id, even one the caller has left. getsid/getpgid (1073-1142): ESRCH."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        pg = k.getpgrp(s)
        f["leader_setpgid_self"] = rc(k.setpgid, s, 0, 0)
        f["negative_pgid"] = rc(k.setpgid, s, 0, -1)
        f["no_such_pid"] = rc(k.setpgid, s, NO_PID, 0)
        f["getsid_no_such_pid"] = rc(k.getsid, s, NO_PID)
        f["getpgid_no_such_pid"] = rc(k.getpgid, s, NO_PID)
        a = child(k, s)
        k.setsid(a)
        f["child_in_other_session"] = rc(k.setpgid, s, a.pid, a.pid)
        f["child_in_other_session_to_parent_pgrp"] = rc(k.setpgid, s, a.pid, pg)
        f["getsid_other_session_is_its_pid"] = yes(k.getsid(s, a.pid) == a.pid)
        b = child(k, s)
        f["into_pgrp_of_other_session"] = rc(k.setpgid, b, 0, a.pid)
        f["into_missing_pgrp"] = rc(k.setpgid, b, 0, NO_PID)
        f["sibling"] = rc(k.setpgid, b, a.pid, 0)
        f["parent"] = rc(k.setpgid, b, s.pid, 0)
        t = thread(k, b)
        f["thread_tid"] = rc(k.setpgid, b, t.pid, 0)
        f["pgid_is_a_thread_tid"] = rc(k.setpgid, b, 0, t.pid)
        f["into_own_pgrp"] = rc(k.setpgid, b, 0, 0)
        f["setsid_as_pgrp_leader"] = rc(k.setsid, b)
        d = child(k, s)
        k.setpgid(d, 0, 0)
        child(k, d)  # stays in pgrp d
        f["back_to_parent_pgrp"] = rc(k.setpgid, d, 0, pg)
        f["setsid_pgid_in_use"] = rc(k.setsid, d)
        e = child(k, s)
        r = k.setsid(e)
        f["setsid_returns_pid"] = yes(r == e.pid)
        f["setsid_leads_pgrp"] = yes(k.getpgrp(e) == e.pid)
        f["setsid_leads_session"] = yes(k.getsid(e, 0) == e.pid)
        f["setsid_twice"] = rc(k.setsid, e)
        k.check_invariants()

    agree(host(probe, "setpgid_errors"), model(scenario))


# --- kill ---------------------------------------------------------------------------------------


# host: ns_init_pid=1 ns_init_ppid=0 ns_init_sid=0 ns_init_pgrp=0 other_1=0xf other_2=0xf kill_all=0
#       kill_all_again=ESRCH caller_hit=0 ns_init_hit=0 outside_hit=0
def test_kill_minus_one_in_a_pid_namespace_skips_its_init_and_the_caller(probe):
    """kill(-1) signals every process with task_pid_vnr > 1 in the caller's namespace except the
    caller's group (kernel/signal.c:1577-1590): the namespace's init (which has a handler, so it
    would run it) is skipped, as is everything outside; with no one left it is ESRCH. The init's
    session and pgrp lie outside its namespace: getsid/getpgrp say 0."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        a = child(k, s)
        k.unshare(a, CLONE_NEWPID)
        i = child(k, a)
        k.rt_sigaction(a, SIGTERM, SigAction(HANDLER))
        f["ns_init_pid"] = str(k.getpid(i))
        f["ns_init_ppid"] = str(k.getppid(i))
        f["ns_init_sid"] = rc(k.getsid, i, 0)
        f["ns_init_pgrp"] = rc(k.getpgrp, i)
        b, c, d = child(k, i), child(k, i), child(k, i)
        b_pid, c_pid = vpid(b), vpid(c)
        k.rt_sigaction(d, SIGTERM, SigAction(HANDLER))
        k.rt_sigaction(i, SIGTERM, SigAction(HANDLER))  # after the forks: b and c keep SIG_DFL
        f["kill_all"] = rc(k.kill, d, -1, SIGTERM)
        run_tasks(k, b, c, d)
        f["other_1"] = wait(k, i, b_pid, 0)
        f["other_2"] = wait(k, i, c_pid, 0)
        f["kill_all_again"] = rc(k.kill, d, -1, SIGTERM)
        run_tasks(k, d, i, a)
        f["caller_hit"] = str(handled(k, d, SIGTERM))
        k.exit(d, 0)
        wait(k, i, -1, 0)
        run_tasks(k, i, a)
        f["ns_init_hit"] = str(handled(k, i, SIGTERM))
        f["outside_hit"] = str(handled(k, a, SIGTERM))
        k.check_invariants()

    agree(host(probe, "kill_minus1"), model(scenario))


# host: kill_pgrp=0 leader=0xf member=0xf sender=0xf outside=none kill_emptied_pgrp=ESRCH
#       kill_missing_pgrp=ESRCH
def test_kill_zero_reaches_the_whole_process_group(probe):
    """kill(0, sig) is kill_pgrp of the caller's pgrp, the caller included (kernel/signal.c:1568-1572);
    a pgrp with no member left is ESRCH (1435)."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        lead = child(k, s)
        k.setpgid(s, lead.pid, lead.pid)
        m = child(k, s)
        k.setpgid(s, m.pid, lead.pid)
        snd = child(k, s)
        k.setpgid(s, snd.pid, lead.pid)
        k.rt_sigprocmask(snd, SIG_BLOCK, sigmask(SIGTERM))
        o = child(k, s)
        k.setpgid(s, o.pid, o.pid)
        f["kill_pgrp"] = rc(k.kill, snd, 0, SIGTERM)
        with contextlib.suppress(TaskKilled):
            k.rt_sigprocmask(snd, SIG_UNBLOCK, sigmask(SIGTERM))
        run_tasks(k, lead, m, o)
        f["leader"] = wait(k, s, lead.pid, 0)
        f["member"] = wait(k, s, m.pid, 0)
        f["sender"] = wait(k, s, snd.pid, 0)
        f["outside"] = wait(k, s, o.pid, WNOHANG)
        f["kill_emptied_pgrp"] = rc(k.kill, s, -lead.pid, 0)
        f["kill_missing_pgrp"] = rc(k.kill, s, -NO_PID, SIGTERM)
        k.check_invariants()

    agree(host(probe, "kill_pgrp"), model(scenario))


def thread_process(k: Kernel, s: Task) -> tuple[Task, Task]:
    """The probe's kill_tid process: a SIGUSR1 handler, and a second thread that blocks SIGUSR1."""
    p = child(k, s)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    t = thread(k, p)
    k.rt_sigprocmask(t, SIG_BLOCK, sigmask(SIGUSR1))
    return p, t


KILL_TID = {"thread_is_not_leader", "kill_tid", "kill_tid_handled_by", "kill_tid_sigkill", "status"}


# host: thread_is_not_leader=1 kill_tid=0 kill_tid_handled_by=leader ... kill_tid_sigkill=0 status=0x9
def test_kill_of_a_thread_id_signals_its_process(probe):
    """kill(tid) of a non-leader thread: kill_proc_info -> kill_pid_info finds the task by PIDTYPE_PID
    and sends to its whole group (kernel/signal.c:1405-1437, group_send_sig_info(..., PIDTYPE_TGID)),
    so the leader, which does not block the signal, runs the handler; SIGKILL by tid ends the process."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        p, t = thread_process(k, s)
        f["thread_is_not_leader"] = yes(t.pid != p.pid)
        f["kill_tid"] = rc(k.kill, s, t.pid, SIGUSR1)
        run_tasks(k, p)
        f["kill_tid_handled_by"] = ("leader" if handled(k, p, SIGUSR1) else
                                    "thread" if handled(k, t, SIGUSR1) else "nobody")
        f["kill_tid_sigkill"] = rc(k.kill, s, t.pid, SIGKILL)
        run_tasks(k, p)
        f["status"] = wait(k, s, p.pid, 0)
        k.check_invariants()

    agree(host(probe, "kill_tid"), model(scenario), KILL_TID)


# host: ... tgkill=0 tgkill_pending_thread=1 tgkill_pending_process=0 tgkill_wrong_tgid=ESRCH
#       tgkill_zero_tgid=EINVAL tgkill_zero_tid=EINVAL tkill_probe=0 tkill_zero=EINVAL tkill_missing=ESRCH
def test_tgkill_and_tkill_queue_on_the_thread(probe):
    """tgkill/tkill (kernel/signal.c:3769-3855, do_send_specific) queue on the thread itself (its
    SigPnd, not the process's ShdPnd); tgid or tid <= 0 is EINVAL; a tid outside tgid, or none, ESRCH."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        p, t = thread_process(k, s)
        f["tgkill"] = rc(k.tgkill, s, p.pid, t.pid, SIGUSR1)
        run_tasks(k, p)
        f["tgkill_pending_thread"] = yes(t.pending.signal & sigmask(SIGUSR1))
        assert p.signal is not None
        f["tgkill_pending_process"] = yes(p.signal.shared_pending.signal & sigmask(SIGUSR1))
        f["tgkill_wrong_tgid"] = rc(k.tgkill, s, s.pid, t.pid, 0)
        f["tgkill_zero_tgid"] = rc(k.tgkill, s, 0, t.pid, 0)
        f["tgkill_zero_tid"] = rc(k.tgkill, s, p.pid, 0, 0)
        f["tkill_probe"] = rc(k.tkill, s, t.pid, 0)
        f["tkill_zero"] = rc(k.tkill, s, 0, 0)
        f["tkill_missing"] = rc(k.tkill, s, NO_PID, 0)
        k.check_invariants()

    host_facts = host(probe, "kill_tid")
    agree(host_facts, model(scenario), set(host_facts) - KILL_TID)


# --- job control --------------------------------------------------------------------------------


# host: stopped=0x137f sigchld_stop=5/19 stopped_again=none continued=0xffff sigchld_cont=6/18
#       continued_again=none stopped_2=0x137f sigchld_stop_2=5/19 killed_while_stopped=0x9 sigchld_kill=2/9
def test_stop_and_continue_are_each_reported_once(probe):
    """WUNTRACED reports a stop as sig << 8 | 0x7f once (wait_task_stopped clears the code,
    kernel/exit.c:1182-1236); WCONTINUED reports 0xffff once (1244-1280); the parent gets SIGCHLD
    with CLD_STOPPED/CLD_CONTINUED (do_notify_parent_cldstop, kernel/signal.c:2004-2054); SIGKILL
    ends a stopped child."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        k.rt_sigprocmask(s, SIG_BLOCK, sigmask(SIGCHLD))
        c = child(k, s)
        k.kill(s, c.pid, SIGSTOP)
        run_tasks(k, c)
        f["stopped"] = wait(k, s, c.pid, WUNTRACED)
        f["sigchld_stop"] = sigchld(k, s)
        f["stopped_again"] = wait(k, s, c.pid, WUNTRACED | WNOHANG)
        k.kill(s, c.pid, SIGCONT)
        run_tasks(k, c)
        f["continued"] = wait(k, s, c.pid, WCONTINUED)
        f["sigchld_cont"] = sigchld(k, s)
        f["continued_again"] = wait(k, s, c.pid, WCONTINUED | WNOHANG)
        k.kill(s, c.pid, SIGSTOP)
        run_tasks(k, c)
        f["stopped_2"] = wait(k, s, c.pid, WUNTRACED)
        f["sigchld_stop_2"] = sigchld(k, s)
        k.kill(s, c.pid, SIGKILL)
        run_tasks(k, c)
        f["killed_while_stopped"] = wait(k, s, c.pid, 0)
        f["sigchld_kill"] = sigchld(k, s)
        k.check_invariants()

    agree(host(probe, "stop_cont"), model(scenario))


# host: stopped=0x137f leader_stopped=1 thread_stopped=1 sigchld_stop=5/19 cont_by_tid=0 continued=0xffff
#       sigchld_cont=6/18 leader_running=1 thread_running=1 tgkill_stop=0 stopped_by_tgkill=0x137f
#       leader_stopped_2=1 thread_stopped_2=1 killed=0x9
def test_a_stop_stops_every_thread_of_the_group(probe):
    """A stop signal starts a group stop (do_signal_stop, kernel/signal.c:2234-2343) even when sent
    with tgkill to one thread; SIGCONT to a thread id continues them all (prepare_signal, 893-953)."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        k.rt_sigprocmask(s, SIG_BLOCK, sigmask(SIGCHLD))
        p = child(k, s)
        t = thread(k, p)
        k.kill(s, p.pid, SIGSTOP)
        run_tasks(k, p)
        f["stopped"] = wait(k, s, p.pid, WUNTRACED)
        f["leader_stopped"] = yes(stopped(p))
        f["thread_stopped"] = yes(stopped(t))
        f["sigchld_stop"] = sigchld(k, s)
        f["cont_by_tid"] = rc(k.kill, s, t.pid, SIGCONT)
        run_tasks(k, p)
        f["continued"] = wait(k, s, p.pid, WCONTINUED)
        f["sigchld_cont"] = sigchld(k, s)
        f["leader_running"] = yes(alive(p) and not stopped(p))
        f["thread_running"] = yes(alive(t) and not stopped(t))
        f["tgkill_stop"] = rc(k.tgkill, s, p.pid, t.pid, SIGSTOP)
        run_tasks(k, p)
        f["stopped_by_tgkill"] = wait(k, s, p.pid, WUNTRACED)
        f["leader_stopped_2"] = yes(stopped(p))
        f["thread_stopped_2"] = yes(stopped(t))
        k.kill(s, p.pid, SIGKILL)
        run_tasks(k, p)
        f["killed"] = wait(k, s, p.pid, 0)
        k.check_invariants()

    agree(host(probe, "group_stop"), model(scenario))


# host: stopped=0x137f continued=0xffff stopped_2=0x137f sigchld_stop_cont=none killed=0x9 sigchld_kill=2/9
def test_sa_nocldstop_silences_stop_and_continue_but_not_exit(probe):
    """SA_NOCLDSTOP on the parent's SIGCHLD: no signal for CLD_STOPPED/CLD_CONTINUED
    (kernel/signal.c:2042-2044), the exit one still comes (do_notify_parent)."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        k.rt_sigaction(s, SIGCHLD, SigAction(HANDLER, SA_NOCLDSTOP))
        k.rt_sigprocmask(s, SIG_BLOCK, sigmask(SIGCHLD))
        c = child(k, s)
        k.kill(s, c.pid, SIGSTOP)
        run_tasks(k, c)
        f["stopped"] = wait(k, s, c.pid, WUNTRACED)
        k.kill(s, c.pid, SIGCONT)
        run_tasks(k, c)
        f["continued"] = wait(k, s, c.pid, WCONTINUED)
        k.kill(s, c.pid, SIGSTOP)
        run_tasks(k, c)
        f["stopped_2"] = wait(k, s, c.pid, WUNTRACED)
        f["sigchld_stop_cont"] = sigchld(k, s)
        k.kill(s, c.pid, SIGKILL)
        run_tasks(k, c)
        f["killed"] = wait(k, s, c.pid, 0)
        f["sigchld_kill"] = sigchld(k, s)
        k.check_invariants()

    agree(host(probe, "nocldstop"), model(scenario))


# --- waitid ---------------------------------------------------------------------------------------


# host: nowait_1=5/19 nowait_signo=17 nowait_pid_is_child=1 nowait_uid=0 nowait_2=5/19 exited_only=none
#       wait4_after_nowait=0x137f stopped_consumed=none cont_nowait=6/18 cont=6/18 cont_consumed=none
#       killed=2/9
def test_waitid_wnowait_leaves_a_stop_or_continue_reportable(probe):
    """waitid(WSTOPPED|WNOWAIT) reports CLD_STOPPED/SIGSTOP and leaves it (kernel/exit.c:1207-1214);
    a plain report consumes it; WCONTINUED likewise with CLD_CONTINUED/SIGCONT."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        c = child(k, s)
        k.kill(s, c.pid, SIGSTOP)
        run_tasks(k, c)
        f["nowait_1"], si = waitid(k, s, P_PID, c.pid, WSTOPPED | WNOWAIT)
        if si is not None:
            f["nowait_signo"] = str(si.si_signo)
            f["nowait_pid_is_child"] = yes(si.si_pid == c.pid)
            f["nowait_uid"] = str(si.si_uid)
        f["nowait_2"], _ = waitid(k, s, P_PID, c.pid, WSTOPPED | WNOWAIT)
        f["exited_only"], _ = waitid(k, s, P_PID, c.pid, WEXITED | WNOHANG)
        f["wait4_after_nowait"] = wait(k, s, c.pid, WUNTRACED)
        f["stopped_consumed"], _ = waitid(k, s, P_PID, c.pid, WSTOPPED | WNOHANG)
        k.kill(s, c.pid, SIGCONT)
        run_tasks(k, c)
        f["cont_nowait"], _ = waitid(k, s, P_PID, c.pid, WCONTINUED | WNOWAIT)
        f["cont"], _ = waitid(k, s, P_PID, c.pid, WCONTINUED)
        f["cont_consumed"], _ = waitid(k, s, P_PID, c.pid, WCONTINUED | WNOHANG)
        k.kill(s, c.pid, SIGKILL)
        run_tasks(k, c)
        f["killed"], _ = waitid(k, s, P_PID, c.pid, WEXITED)
        k.check_invariants()

    agree(host(probe, "waitid_stop"), model(scenario))


# host: exit_nowait=1/3 exit_signo=17 exit_pid_is_child=1 exit_uid=0 exit=1/3 exit_reaped=ECHILD killed=2/15
#       quit_nowait=2/3 quit_status=0x3 pidfd_exit=1/5 pgid0_exit=1/6 all_exit=1/7
def test_waitid_siginfo_for_exits_and_deaths_and_no_core_under_rlimit_core_0(probe):
    """waitid's siginfo (kernel/exit.c:1065-1086): CLD_EXITED with the exit status, CLD_KILLED with the
    signal. SIGQUIT under RLIMIT_CORE 0 dumps nothing: CLD_KILLED, and no 0x80 (WCOREDUMP) bit in the
    wait status (fs/coredump.c skips the dump below the limit). P_PGID 0 (the caller's pgrp, 5.4+)
    and P_ALL."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        c = child(k, s)
        k.exit(c, 3)
        f["exit_nowait"], si = waitid(k, s, P_PID, c.pid, WEXITED | WNOWAIT)
        if si is not None:
            f["exit_signo"] = str(si.si_signo)
            f["exit_pid_is_child"] = yes(si.si_pid == c.pid)
            f["exit_uid"] = str(si.si_uid)
        f["exit"], _ = waitid(k, s, P_PID, c.pid, WEXITED)
        f["exit_reaped"], _ = waitid(k, s, P_PID, c.pid, WEXITED | WNOHANG)
        c = child(k, s)
        k.kill(s, c.pid, SIGTERM)
        run_tasks(k, c)
        f["killed"], _ = waitid(k, s, P_PID, c.pid, WEXITED)
        c = child(k, s)
        k.setrlimit(c, RLIMIT_CORE, (0, 0))
        with contextlib.suppress(TaskKilled):
            k.kill(c, c.pid, SIGQUIT)
        f["quit_nowait"], _ = waitid(k, s, P_PID, c.pid, WEXITED | WNOWAIT)
        f["quit_status"] = wait(k, s, c.pid, 0)
        c = child(k, s)
        k.exit(c, 6)
        f["pgid0_exit"], _ = waitid(k, s, P_PGID, 0, WEXITED)
        c = child(k, s)
        k.exit(c, 7)
        f["all_exit"], _ = waitid(k, s, P_ALL, 0, WEXITED)
        k.check_invariants()

    host_facts = host(probe, "waitid_exit")
    keys = set(host_facts) - {"pidfd_exit"}  # pidfd_exit: with the P_PIDFD test
    if Path("/proc/sys/kernel/core_pattern").read_text().startswith("|"):
        keys -= {"quit_nowait", "quit_status"}  # a pipe helper takes the dump whatever RLIMIT_CORE says
    agree(host_facts, model(scenario), keys)


# host: no_state_flag=EINVAL no_flags=EINVAL unknown_option=EINVAL pid_0=EINVAL pid_negative=EINVAL
#       pgid_negative=EINVAL pgid_0_no_child=ECHILD idtype_4=EINVAL idtype_negative=EINVAL
#       (pidfd_negative=EINVAL pidfd_not_a_pidfd=EBADF pidfd_closed_fd=EBADF: below) all_no_child=ECHILD
#       wait4_wnowait=EINVAL wait4_wexited=EINVAL wait4_no_child=ECHILD wait4_int_min=ESRCH
#       wnohang_running=none wait4_wnohang_running=none wait4_wnowait_with_child=EINVAL
def test_waitid_and_wait4_argument_rules(probe):
    """kernel_waitid (kernel/exit.c:1490-1547): unknown option bits or none of WEXITED|WSTOPPED|
    WCONTINUED EINVAL; P_PID id <= 0, P_PGID id < 0 and unknown idtypes EINVAL (P_PIDFD: below).
    kernel_wait4 (1582-1623): WNOWAIT/WEXITED are not wait4 options (EINVAL);
    INT_MIN ESRCH."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        for key, idtype, id_, options in (
                ("no_state_flag", P_ALL, 0, WNOHANG), ("no_flags", P_ALL, 0, 0),
                ("unknown_option", P_ALL, 0, WEXITED | 0x10), ("pid_0", P_PID, 0, WEXITED),
                ("pid_negative", P_PID, -1, WEXITED), ("pgid_negative", P_PGID, -1, WEXITED),
                ("pgid_0_no_child", P_PGID, 0, WEXITED | WNOHANG), ("idtype_4", 4, 0, WEXITED),
                ("idtype_negative", -1, 0, WEXITED), ("all_no_child", P_ALL, 0, WEXITED)):
            f[key], _ = waitid(k, s, idtype, id_, options)
        f["wait4_wnowait"] = wait(k, s, -1, WNOWAIT)
        f["wait4_wexited"] = wait(k, s, -1, WEXITED)
        f["wait4_no_child"] = wait(k, s, -1, 0)
        f["wait4_int_min"] = wait(k, s, -(2**31), 0)
        c = child(k, s)
        f["wnohang_running"], _ = waitid(k, s, P_ALL, 0, WEXITED | WNOHANG)
        f["wait4_wnohang_running"] = wait(k, s, c.pid, WNOHANG)
        f["wait4_wnowait_with_child"] = wait(k, s, c.pid, WNOWAIT | WNOHANG)
        k.check_invariants()

    host_facts = host(probe, "wait_einval")
    agree(host_facts, model(scenario), set(host_facts) - WAITID_PIDFD)


WAITID_PIDFD = {"pidfd_negative", "pidfd_not_a_pidfd", "pidfd_closed_fd"}


# host: pidfd_negative=EINVAL pidfd_not_a_pidfd=EBADF pidfd_closed_fd=EBADF (and pidfd_exit=1/5 in waitid_exit)
def test_waitid_p_pidfd_argument_rules(probe):
    """P_PIDFD (kernel/exit.c:1523-1530): id < 0 EINVAL; a closed fd or one that is not a pidfd
    EBADF (pidfd_get_pid -> pidfd_pid, kernel/pid.c); a pidfd of an exited child reaps it."""
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        rfd, _wfd = k.pipe(s)
        f["pidfd_negative"], _ = waitid(k, s, P_PIDFD, -1, WEXITED)
        f["pidfd_not_a_pidfd"], _ = waitid(k, s, P_PIDFD, rfd, WEXITED)
        f["pidfd_closed_fd"], _ = waitid(k, s, P_PIDFD, 1000, WEXITED)
        c = child(k, s)
        k.exit(c, 5)
        fd = k.pidfd_open(s, c.pid, 0)
        f["pidfd_exit"], _ = waitid(k, s, P_PIDFD, fd, WEXITED)
        k.check_invariants()

    host_facts = {k: v for k, v in host(probe, "wait_einval").items() if k in WAITID_PIDFD}
    host_facts["pidfd_exit"] = host(probe, "waitid_exit")["pidfd_exit"]
    agree(host_facts, model(scenario))


# --- pidfds ----------------------------------------------------------------------------------------

PIDFD_CHANGED = {  # fact -> what the 5.6 source says; the host (6.18) differs
    "open_thread": "EINVAL",  # pid.c:567 "not a thread-group leader"; 6.18 host: ENOENT
    "waitid_pidfd": "1/2",    # the leader's exit code (exit.c:1001); 6.18 host: the last thread's, 1/4
    "poll_reaped": "0x1",     # fork.c:1771-1790 POLLIN only; 6.18 host: POLLIN|POLLHUP once reaped
}
PIDFD_FLAGS = {  # pidfd_open's flags: 5.6 takes none (pid.c:556)
    "open_thread_pidfd_thread": "EINVAL",  # 6.9 PIDFD_THREAD: ok
    "open_nonblock": "EINVAL",             # 5.10 PIDFD_NONBLOCK: ok (and waitid on it EAGAIN while the child runs)
}


def pidfd_scenario(version: str, with_flags: bool = False) -> Callable[[Facts], None]:
    """The probe's pidfd case; ``with_flags``: also pidfd_open with PIDFD_THREAD and PIDFD_NONBLOCK."""
    def scenario(f: Facts) -> None:
        k = Kernel(version=version)
        s = supervisor(k)
        p = child(k, s)
        t = thread(k, p)
        fd = k.pidfd_open(s, p.pid, 0)
        f["open_process"] = "ok"

        def pidfd_open(pid: int, flags: int) -> str:
            r = rc(k.pidfd_open, s, pid, flags)
            return "ok" if r.isdigit() else r

        f["open_thread"] = pidfd_open(t.pid, 0)
        if with_flags:
            f["open_bad_flags"] = pidfd_open(p.pid, 1)
            f["open_thread_pidfd_thread"] = pidfd_open(t.pid, PIDFD_THREAD)
            f["open_nonblock"] = pidfd_open(p.pid, PIDFD_NONBLOCK)
            if f["open_nonblock"] == "ok":
                nb = k.pidfd_open(s, p.pid, PIDFD_NONBLOCK)
                f["waitid_nonblock_running"], _ = waitid(k, s, P_PIDFD, nb, WEXITED)
        for key, pid in (("open_missing", NO_PID), ("open_0", 0), ("open_negative", -1)):
            f[key] = pidfd_open(pid, 0)
        f["cloexec"] = yes(k.fcntl(s, fd, F_GETFD) & FD_CLOEXEC)
        f["poll_running"] = f"{k.poll(s, [(fd, POLLIN)], 0)[0]:#x}"
        k.exit(p, 2)  # the leader thread only
        f["leader_zombie"] = yes(p.exit_state)
        f["poll_leader_exited"] = f"{k.poll(s, [(fd, POLLIN)], 0)[0]:#x}"
        f["send_leader_exited"] = rc(k.pidfd_send_signal, s, fd, 0)
        k.exit(t, 4)
        f["poll_group_exited"] = f"{k.poll(s, [(fd, POLLIN)], 0)[0]:#x}"
        f["send_zombie"] = rc(k.pidfd_send_signal, s, fd, 0)
        f["waitid_pidfd"], _ = waitid(k, s, P_PIDFD, fd, WEXITED)
        f["send_reaped"] = rc(k.pidfd_send_signal, s, fd, 0)
        f["poll_reaped"] = f"{k.poll(s, [(fd, POLLIN)], 0)[0]:#x}"
        k.check_invariants()

    return scenario


# host: open_process=ok open_thread=ENOENT open_thread_pidfd_thread=ok open_nonblock=ok
#       waitid_nonblock_running=EAGAIN open_bad_flags=EINVAL open_missing=ESRCH open_0=EINVAL
#       open_negative=EINVAL cloexec=1 poll_running=0x0 leader_zombie=1 poll_leader_exited=0x0
#       send_leader_exited=0 poll_group_exited=0x1 send_zombie=0 waitid_pidfd=1/4 send_reaped=ESRCH
#       poll_reaped=0x11
def test_pidfd_polls_readable_only_when_the_whole_group_has_exited(probe):
    """pidfd_open (kernel/pid.c:550-572): a bad flag or pid <= 0 EINVAL, no such pid ESRCH, the fd is
    O_CLOEXEC; pidfd_poll (kernel/fork.c:1771-1790) is readable once the leader is a zombie *and* its
    thread group is empty, not when only the leader has exited; pidfd_send_signal reaches a zombie and
    is ESRCH once it is reaped. The facts that changed after 5.6 are in the _6_18 test below."""
    host_facts = host(probe, "pidfd")
    common = set(host_facts) - set(PIDFD_CHANGED) - set(PIDFD_FLAGS) - {"waitid_nonblock_running"}
    agree(host_facts, model(pidfd_scenario("5.6.14", with_flags=True)), common)


def pidfd_change_scenario(version: str, fact: str) -> Callable[[Facts], None]:
    """One PIDFD_CHANGED fact alone, so that each version difference shows on its own."""
    def scenario(f: Facts) -> None:
        k = Kernel(version=version)
        s = supervisor(k)
        p = child(k, s)
        t = thread(k, p)
        if fact == "open_thread":
            r = rc(k.pidfd_open, s, t.pid, 0)
            f[fact] = "ok" if r.isdigit() else r
            return
        fd = k.pidfd_open(s, p.pid, 0)
        k.exit(p, 2)  # the leader thread first
        k.exit(t, 4)
        f["waitid_pidfd"], _ = waitid(k, s, P_PIDFD, fd, WEXITED)
        if fact == "poll_reaped":
            f[fact] = f"{k.poll(s, [(fd, POLLIN)], 0)[0]:#x}"
        k.check_invariants()

    return scenario


@pytest.mark.parametrize("fact", sorted(PIDFD_CHANGED))
def test_pidfd_changes_after_5_6_6_18(probe, fact):
    """pidfd_open of a non-leader thread (5.6 EINVAL; this host ENOENT), the exit status a pidfd's
    waitid reports for a group whose leader exited first (5.6: the leader's; this host: the last
    thread's) and POLLHUP on a reaped pidfd: the 6.18 model must say what the host says, the
    5.6.14 model what 5.6 does."""
    host_facts = host(probe, "pidfd")
    agree(PIDFD_CHANGED, model(pidfd_change_scenario("5.6.14", fact)), {fact})
    agree(host_facts, model(pidfd_change_scenario("6.18", fact)), {fact})


def test_pidfd_open_flags_6_18(probe):
    """PIDFD_NONBLOCK (5.10; waitid(P_PIDFD) on it is EAGAIN while the child runs) and PIDFD_THREAD
    (6.9, a pidfd for a thread): the 6.18 model as the host, the 5.6.14 model EINVAL for any flag."""
    host_facts = host(probe, "pidfd")
    old = model(pidfd_scenario("5.6.14", with_flags=True))
    agree(PIDFD_FLAGS, old, set(PIDFD_FLAGS))
    assert "waitid_nonblock_running" not in old
    agree(host_facts, model(pidfd_scenario("6.18", with_flags=True)), {*PIDFD_FLAGS, "waitid_nonblock_running"})


def thread_exit_scenario(version: str) -> Callable[[Facts], None]:
    def two_exits(k: Kernel, s: Task, leader_first: bool) -> Task:
        p = child(k, s)
        t = thread(k, p)
        order = ((p, 2), (t, 4)) if leader_first else ((t, 4), (p, 2))
        for task, code in order:
            k.exit(task, code)
        return p

    def scenario(f: Facts) -> None:
        k = Kernel(version=version)
        s = supervisor(k)
        f["leader_first"] = wait(k, s, two_exits(k, s, True).pid, 0)
        f["thread_first"] = wait(k, s, two_exits(k, s, False).pid, 0)
        f["leader_first_waitid"], _ = waitid(k, s, P_PID, two_exits(k, s, True).pid, WEXITED)
        k.check_invariants()

    return scenario


# host: leader_first=0x400 thread_first=0x200 leader_first_waitid=1/4
def test_exit_code_of_a_group_whose_leader_exits_first_6_18(probe):
    """Leader exit(2), then the last thread exit(4): 5.6 reports the leader's exit_code (wait_task_zombie,
    kernel/exit.c:1000-1001: status = p->exit_code of the leader), 0x200; this 6.18 host reports the last
    thread's, 0x400. In the other order both say 0x200."""
    host_facts = host(probe, "thread_exit_code")
    agree({"leader_first": "0x200", "thread_first": "0x200", "leader_first_waitid": "1/2"},
          model(thread_exit_scenario("5.6.14")))
    agree(host_facts, model(thread_exit_scenario("6.18")))


# --- orphaned process groups --------------------------------------------------------------------


def orphan_scenario(how: str) -> Callable[[Facts], None]:
    """The probe's orphan cases: c alone in its own pgrp, stopped (unless "running"), loses its parent.

    The supervisor blocks SIGCHLD and m is a clone child with exit signal 0, so the one SIGCHLD
    that can be pending comes from c: what c did first (SIGCHLD does not queue).
    """
    def scenario(f: Facts) -> None:
        k = Kernel()
        s = supervisor(k)
        k.rt_sigprocmask(s, SIG_BLOCK, sigmask(SIGCHLD))
        m = k.find_task(k.clone(s, 0), active_ns(s))
        if how != "same_session":
            k.setsid(m)
        if how == "exit_path":
            p = child(k, m)  # p and c share a pgrp whose only link outside is p's parent m
            k.setpgid(p, 0, 0)
            c = child(k, p)
            k.kill(p, c.pid, SIGSTOP)
            run_tasks(k, c)
            wait(k, p, c.pid, WUNTRACED)
            k.exit(p, 0)
            wait(k, m, p.pid, 0)
        else:
            c = child(k, m)
            k.setpgid(c, 0, 0)
            if how == "hup_ignored":
                k.rt_sigaction(c, SIGHUP, SigAction(SIG_IGN))
            if how != "running":
                k.kill(m, c.pid, SIGSTOP)
                run_tasks(k, c)
                wait(k, m, c.pid, WUNTRACED)
            k.exit(m, 0)
            wait(k, s, m.pid, __WALL)
        run_tasks(k, c)
        if how in ("reparent", "exit_path"):
            f["orphan"] = wait(k, s, c.pid, WUNTRACED)
        elif how == "hup_ignored":
            f["orphan"] = wait(k, s, c.pid, WUNTRACED | WCONTINUED)
        else:
            assert c.signal is not None
            f["stopped"] = yes(stopped(c))
            f["sighup_pending"] = yes((c.pending.signal | c.signal.shared_pending.signal) & sigmask(SIGHUP))
            f["orphan"] = wait(k, s, c.pid, WNOHANG | WUNTRACED | WCONTINUED)
        f["sigchld"] = sigchld(k, s)
        k.check_invariants()

    return scenario


# host, per case (the same in 30 runs each):
#   orphan_reparent     orphan=0x1 sigchld=6/18                              (continued, then killed by SIGHUP)
#   orphan_hup_ignored  orphan=0xffff sigchld=6/18                           (SIGHUP ignored; the SIGCONT continues it)
#   orphan_exit_path    orphan=0x1 sigchld=6/18
#   orphan_running      stopped=0 sighup_pending=0 orphan=none sigchld=none  (no stopped member: nothing sent)
#   orphan_same_session stopped=1 sighup_pending=0 orphan=none sigchld=none  (the new parent keeps the pgrp linked)
@pytest.mark.parametrize("how", ["reparent", "hup_ignored", "exit_path", "running", "same_session"])
def test_a_newly_orphaned_pgrp_with_a_stopped_member_gets_sighup_then_sigcont(probe, how):
    """kill_orphaned_pgrp (kernel/exit.c:352-376): when a pgrp loses its last parent in another pgrp
    of the same session (will_become_orphaned_pgrp, 307-327) and has a stopped member
    (has_stopped_jobs), every member gets SIGHUP then SIGCONT. "reparent": the exiting parent m was
    the link (reparent_leader, 577-596); "exit_path": the exiting p was the pgrp's own member whose
    parent was the link (exit_notify, 659-660); the new parent (the subreaper) is in another session.
    With "same_session" the subreaper is a parent in another pgrp of the same session, so the pgrp
    is not orphaned. SIGHUP finds the stopped c not wanting signals (wants_signal, kernel/signal.c:
    967-981), so SIGCONT wakes it first: it reports CLD_CONTINUED (get_signal's relock), then dies."""
    agree(host(probe, f"orphan_{how}"), model(orphan_scenario(how)))
