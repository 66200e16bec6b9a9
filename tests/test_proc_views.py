"""/proc/<pid>/status and /proc/<pid>/stat (fs/proc/array.c) checked against the model's own state.

Each field is compared with what the syscalls report (getpgid, getsid, getppid, getrusage) or
with the task_struct it comes from, in the reader's pid namespace: the NS* lines of status
hold one number per pid-namespace level, 0 where the group or session is not visible at that
level, and stat has 5.6's 52 fields in order.
"""

from __future__ import annotations

import errno

import pytest
from conftest import active_ns, assert_cites, expect_errno, fork_child, map_page, unprivileged

from forklab import Blocked, Kernel, SigAction, Task
from forklab.include.linux.sched import PF, PIDTYPE
from forklab.kernel.pid import pid_nr_ns
from forklab.mm.memory import get_mm_rss
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWPID,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    PAGE_SIZE,
    POLLIN,
    RLIM_INFINITY,
    RLIMIT_RSS,
    RUSAGE_CHILDREN,
    SCHED_FIFO,
    SIG_BLOCK,
    SIG_IGN,
    SIGCHLD,
    SIGUSR1,
    SIGUSR2,
)

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x401000
TICK_NS = 10_000_000  # one clock tick at USER_HZ = 100


def thread_of(k: Kernel, leader: Task) -> Task:
    return k.find_task(k.clone(leader, THREAD), active_ns(leader))


def status(k: Kernel, nr: int, viewer: Task | None = None, tid: int | None = None) -> dict[str, str]:
    path = f"/proc/{nr}/status" if tid is None else f"/proc/{nr}/task/{tid}/status"
    text = k.proc(path, viewer)
    assert text.endswith("\n")
    return dict(line.split(":", 1) for line in text.splitlines())


def stat(k: Kernel, nr: int, viewer: Task | None = None, tid: int | None = None) -> list[str]:
    """The 52 fields, 1-based as proc(5) numbers them: stat(...)[5] is the pgrp."""
    path = f"/proc/{nr}/stat" if tid is None else f"/proc/{nr}/task/{tid}/stat"
    text = k.proc(path, viewer)
    assert text.endswith("\n") and "\n" not in text[:-1]
    head, _, rest = text[:-1].rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = [pid, f"({comm})", *rest.split(" ")[1:]]
    assert len(fields) == 52, len(fields)
    return ["", *fields]


def ns_values(t: Task, kind: PIDTYPE, viewer_level: int) -> list[int]:
    """What the NS* line must hold: the id's number at each level of t's pid from the reader's level down."""
    pid = t.thread_pid if kind == PIDTYPE.PIDTYPE_PID else t.signal.pids[kind]
    return [pid_nr_ns(pid, u.ns) for u in t.thread_pid.numbers[viewer_level:]]


# --- status ---------------------------------------------------------------------------------------


def test_status_ns_lines_hold_one_number_per_level_and_0_where_invisible(k, init):
    """A child in a new pid namespace keeps init's group and session, invisible at its own level: NSpgid and
    NSsid read "1\\t0"; after its setsid they read its pid at both levels."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    s = status(k, c.pid)
    assert s["NStgid"] == s["NSpid"] == f"\t{c.pid}\t1"
    assert s["NSpgid"] == s["NSsid"] == "\t1\t0"
    assert [int(v) for v in s["NSpgid"].split()] == ns_values(c, PIDTYPE.PIDTYPE_PGID, 0)
    assert int(s["NSpgid"].split()[-1]) == k.getpgid(c, 0)  # the last level is the task's own view
    k.setsid(c)
    s = status(k, c.pid)
    assert s["NSpgid"] == s["NSsid"] == f"\t{c.pid}\t1"
    assert int(s["NSsid"].split()[0]) == k.getsid(init, c.pid) and int(s["NSsid"].split()[1]) == k.getsid(c, 0)
    k.check_invariants()


def test_status_ns_lines_start_at_the_readers_level(k, init):
    """Read from inside the namespace, /proc/1/status shows only the levels from the reader's down."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    k.setsid(c)
    g = fork_child(k, c)
    s = status(k, 1, viewer=g)
    assert s["Pid"] == "\t1" and s["PPid"] == "\t0"  # the parent, init, is outside
    assert s["NStgid"] == s["NSpid"] == s["NSpgid"] == s["NSsid"] == "\t1"
    assert status(k, c.pid)["NSpid"] == f"\t{c.pid}\t1"
    k.check_invariants()


def test_status_ns_lines_across_three_levels(k, init):
    """A second nested namespace: each level numbers the group of the innermost process in its own way."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    k.setsid(c)
    d = k.find_task(k.clone(c, CLONE_NEWPID | SIGCHLD), active_ns(c))
    s = status(k, d.thread_pid.numbers[0].nr)
    for label, kind in (("NStgid", PIDTYPE.PIDTYPE_TGID), ("NSpid", PIDTYPE.PIDTYPE_PID),
                        ("NSpgid", PIDTYPE.PIDTYPE_PGID), ("NSsid", PIDTYPE.PIDTYPE_SID)):
        assert s[label] == "".join(f"\t{v}" for v in ns_values(d, kind, 0)), label
    assert s["NSpgid"] == f"\t{c.pid}\t1\t0"
    k.check_invariants()


def test_status_of_a_thread_and_its_ids(k, init):
    """/proc/<pid>/task/<tid>/status: Pid and NSpid are the thread's, Tgid and NStgid its process's."""
    p = fork_child(k)
    k.setpgid(p, 0, 0)
    t = thread_of(k, p)
    s = status(k, p.pid, tid=t.pid)
    assert s["Pid"] == f"\t{t.pid}" and s["Tgid"] == f"\t{p.pid}" and s["PPid"] == f"\t{init.pid}"
    assert s["NSpid"] == f"\t{t.pid}" and s["NStgid"] == s["NSpgid"] == f"\t{p.pid}" and s["NSsid"] == "\t1"
    assert s["Threads"] == "\t2"


def test_status_lines_and_their_format(k, init):
    """Name, Umask, State..Groups (with the kernel's trailing space), then the NS lines, in task_state's order;
    context switches last."""
    c = fork_child(k)
    lines = k.proc(f"/proc/{c.pid}/status").splitlines()
    labels = [line.split(":", 1)[0] for line in lines]
    assert labels[:16] == ["Name", "Umask", "State", "Tgid", "Ngid", "Pid", "PPid", "TracerPid", "Uid", "Gid",
                           "FDSize", "Groups", "NStgid", "NSpid", "NSpgid", "NSsid"]
    assert lines[1] == "Umask:\t0022" and lines[11] == "Groups:\t "
    assert labels[-2:] == ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
    assert lines[-2] == f"voluntary_ctxt_switches:\t{c.nvcsw}"


def test_status_state_of_sleeping_and_zombie_tasks(k, init):
    """State follows task_state_index: a poller asleep is S, an exited child Z and without its mm lines."""
    p = fork_child(k)
    c = fork_child(k, p)
    fd = k.pidfd_open(p, c.pid)
    with pytest.raises(Blocked):
        k.poll(p, [(fd, POLLIN)], -1)
    assert status(k, p.pid)["State"] == "\tS (sleeping)" and stat(k, p.pid)[3] == "S"
    k.exit(c, 0)
    s = status(k, c.pid)
    assert s["State"] == "\tZ (zombie)" and "VmRSS" not in s and stat(k, c.pid)[3] == "Z"


# --- stat -----------------------------------------------------------------------------------------------


def test_stat_ids_match_the_syscalls(k, init):
    """Fields 1 pid, 2 (comm), 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty_nr 0 and 8 tpgid -1 (no ttys)."""
    p = fork_child(k)
    k.setsid(p)
    c = fork_child(k, p)
    k.setpgid(p, c.pid, 0)
    f = stat(k, c.pid)
    assert int(f[1]) == c.pid and f[2] == f"({c.comm})" and f[3] == "R"
    assert int(f[4]) == k.getppid(c) == p.pid
    assert int(f[5]) == k.getpgid(init, c.pid) == c.pid
    assert int(f[6]) == k.getsid(init, c.pid) == p.pid
    assert (f[7], f[8]) == ("0", "-1")
    assert int(f[9]) == int(c.flags) and c.flags & PF.PF_FORKNOEXEC


def test_stat_in_a_pid_namespace_uses_the_readers_numbers(k, init):
    """The pid, ppid, pgrp and session fields are the reader's namespace's; invisible ones are 0."""
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    f = stat(k, 1, viewer=c)
    assert (f[1], f[4], f[5], f[6]) == ("1", "0", "0", "0")
    f = stat(k, c.pid)
    assert (int(f[1]), f[4], f[5], f[6]) == (c.pid, "1", "1", "1")


def test_stat_counts_faults_for_the_group_and_for_one_thread(k, init):
    """Field 10 minflt: /proc/<pid>/stat sums the group (live threads and dead ones); task/<tid>/stat is one
    thread's; field 12 majflt is 0 (no I/O)."""
    p = fork_child(k)
    addr = map_page(k, p, 4)
    t = thread_of(k, p)
    k.store(p, addr, b"a")
    for i in (1, 2, 3):
        k.store(t, addr + i * PAGE_SIZE, b"b")
    assert (stat(k, p.pid)[10], stat(k, p.pid)[12]) == ("4", "0")
    assert stat(k, p.pid, tid=p.pid)[10] == "1" and stat(k, p.pid, tid=t.pid)[10] == "3"
    k.exit(t, 0)
    assert stat(k, p.pid)[10] == "4" and stat(k, p.pid)[20] == "1"
    k.check_invariants()


def test_stat_times_are_clock_ticks(k, init):
    """Fields 14-17 utime, stime, cutime, cstime in USER_HZ ticks; 22 starttime from the fork's clock."""
    p = fork_child(k)
    c = fork_child(k, p)
    c.stime += 3 * TICK_NS  # as if the child had spent 30 ms in the kernel
    k.exit(c, 0)
    k.wait4(p, c.pid, 0)
    f = stat(k, p.pid)
    cstime = k.getrusage(p, RUSAGE_CHILDREN).ru_stime
    assert f[14] == "0" and int(f[15]) == p.stime // TICK_NS
    assert int(f[17]) == (cstime.tv_sec * 10**6 + cstime.tv_usec) * 1000 // TICK_NS == 3 and f[16] == "0"
    assert int(f[22]) == p.start_time // TICK_NS


def test_stat_scheduling_fields(k, init):
    """18 priority (prio - 100), 19 nice, 20 num_threads, 38 exit_signal, 39 processor, 40 rt_priority, 41 policy."""
    p = fork_child(k)
    t = thread_of(k, p)
    f = stat(k, p.pid)
    assert (f[18], f[19], f[20], f[38], f[40], f[41]) == ("20", "0", "2", str(SIGCHLD), "0", "0")
    assert int(f[39]) == p.cpu
    assert stat(k, p.pid, tid=t.pid)[38] == "-1"
    k.sched_setscheduler(init, p.pid, SCHED_FIFO, 10)
    f = stat(k, p.pid)
    assert (f[18], f[40], f[41]) == (str(p.prio - 100), "10", str(SCHED_FIFO)) and f[18] == "-11"


def test_stat_memory_fields(k, init):
    """23 vsize in bytes, 24 rss in pages, 25 rsslim; a zombie has no mm: 0s."""
    p = fork_child(k)
    addr = map_page(k, p, 3)
    k.store(p, addr, b"x")
    f = stat(k, p.pid)
    assert int(f[23]) == p.mm.total_vm * PAGE_SIZE and int(f[24]) == get_mm_rss(p.mm) == 1
    assert int(f[25]) == RLIM_INFINITY
    k.setrlimit(p, RLIMIT_RSS, (1 << 20, RLIM_INFINITY))
    assert stat(k, p.pid)[25] == str(1 << 20)
    k.exit(p, 3)
    f = stat(k, p.pid)
    assert (f[23], f[24], f[26], f[27]) == ("0", "0", "0", "0")
    assert int(f[52]) == p.exit_code == 3 << 8


def test_stat_signal_fields(k, init):
    """31 pending (the thread's own), 32 blocked, 33 ignored, 34 caught, each the low 31 bits."""
    p = fork_child(k)
    k.rt_sigprocmask(p, SIG_BLOCK, 1 << (SIGUSR1 - 1))
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER))
    k.rt_sigaction(p, SIGUSR2, SigAction(SIG_IGN))
    k.tgkill(init, p.pid, p.pid, SIGUSR1)
    f = stat(k, p.pid)
    bit = 1 << (SIGUSR1 - 1)
    assert (int(f[31]), int(f[32]), int(f[33]), int(f[34])) == (bit, bit, 1 << (SIGUSR2 - 1), bit)


def test_stat_fields_the_model_does_not_keep_are_0(k, init):
    """itrealvalue, startstack, kstkesp/eip, wchan, nswap, cnswap, delayacct, guest times and the mm layout."""
    p = fork_child(k)
    f = stat(k, p.pid)
    for i in (21, 26, 27, 28, 29, 30, 35, 36, 37, 42, 43, 44, *range(45, 52)):
        assert f[i] == "0", i


def test_stat_by_a_reader_ptrace_may_access_refuses(k, init):
    """A reader without CAP_SYS_PTRACE over a task of other uids sees startcode/endcode 1 and exit_code 0; its
    maps are EACCES; its own stat is whole."""
    u = unprivileged(k)
    assert stat(k, u.pid, viewer=u)[1] == str(u.pid)
    fields = stat(k, init.pid, viewer=u)
    assert (fields[26], fields[27], fields[52]) == ("1", "1", "0")
    expect_errno(errno.EACCES, k.proc, f"/proc/{init.pid}/maps", u)
    assert k.proc(f"/proc/{init.pid}/maps") == ""  # init reads its own (empty) map


# --- paths ----------------------------------------------------------------------------------------


def test_proc_paths_that_do_not_exist_are_enoent(k, init):
    """Names resolve as proc_pid_lookup, proc_task_lookup and proc_pident_lookup do: ENOENT for a name that is not
    a pid, a pid with no task in the reader's namespace, a thread of another process or an unknown file; a
    directory is EISDIR."""
    p = fork_child(k)
    other = fork_child(k)
    c = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    cases = [("/proc/01/stat", 3347), ("/proc/-1/stat", 3347),
             ("/proc/99999/stat", 3356), ("/proc/0/status", 3356), ("/proc/99999/environ", 3356),
             ("/proc/1/environ", 2573), (f"/proc/{p.pid}/task/{p.pid}/environ", 2573),
             (f"/proc/{p.pid}/task/x/stat", 3648), (f"/proc/{p.pid}/task/99999/stat", 3657),
             (f"/proc/{p.pid}/task/{other.pid}/stat", 3659)]
    for path, line in cases:
        assert_cites(expect_errno(errno.ENOENT, k.proc, path), "fs/proc/base.c", line)
    assert_cites(expect_errno(errno.ENOENT, k.proc, f"/proc/{p.pid}/stat", c), "fs/proc/base.c", 3356)
    for path in ("/proc/1", f"/proc/{p.pid}/task", f"/proc/{p.pid}/task/{p.pid}"):
        assert_cites(expect_errno(errno.EISDIR, k.proc, path), "fs/libfs.c", 224)


# --- /proc through open(2): programs run by forklab.run ------------------------------------------


def _slurp(os, path: str) -> str:
    fd = os.open(path, os.O_RDONLY)
    data = os.read(fd, 1 << 20)
    os.close(fd)
    return data.decode()


def test_a_program_opens_and_reads_its_own_proc_files() -> None:
    """open + read of /proc/self/status and stat give the caller's ids; thread-self is the calling thread."""
    import forklab  # the runner, for these tests only

    def main(os):
        status = dict(line.split(":\t", 1) for line in _slurp(os, "/proc/self/status").splitlines())
        stat = _slurp(os, "/proc/self/stat").split()
        seen = []
        r, w = os.pipe()

        def worker():
            seen.append(_slurp(os, "/proc/thread-self/status"))
            os.write(w, b"!")
            return 0

        os.start_thread(worker)
        os.read(r, 1)
        thread = dict(line.split(":\t", 1) for line in seen[0].splitlines())
        os.write(1, b"%d %s %s %s %s %s\n" % (os.getpid(), status["Pid"].encode(), stat[0].encode(),
                                               stat[3].encode(), thread["Tgid"].encode(), thread["Pid"].encode()))

    out = forklab.run(main).stdout.split()
    pid = out[0]
    assert out[1:4] == [pid, pid, b"1"] and out[4] == pid and out[5] != pid


def test_proc_files_are_read_only_and_directories_read_as_eisdir() -> None:
    import forklab  # the runner, for these tests only

    def main(os):
        results = []
        fd = os.open("/proc/self/status", os.O_WRONLY)
        try:
            os.write(fd, b"x")
        except OSError as e:
            results.append(e.errno)
        d = os.open("/proc/self/fd", os.O_RDONLY)
        try:
            os.read(d, 10)
        except OSError as e:
            results.append(e.errno)
        try:
            os.open("/proc/self/environ", os.O_RDONLY)
        except OSError as e:
            results.append(e.errno)
        try:
            os.open("/proc/self/status/x", os.O_RDONLY)
        except OSError as e:
            results.append(e.errno)
        os.write(1, repr(results).encode())

    assert forklab.run(main).stdout == repr([errno.EINVAL, errno.EISDIR, errno.ENOENT, errno.ENOTDIR]).encode()


def test_a_program_reads_its_smaps_after_a_fork() -> None:
    """The parent's Shared_Dirty counts the page it shares with its child until the child has written it."""
    import forklab  # the runner, for these tests only

    def main(os):
        addr = os.mmap(os.PAGE_SIZE)
        os.store(addr, b"x")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.read(r, 1)
            os.store(addr, b"y")
            os._exit(0)
        def shared_dirty():
            lines = _slurp(os, "/proc/self/smaps").splitlines()
            first = next(i for i, ln in enumerate(lines) if ln.startswith(f"{addr:08x}-"))
            return next(ln for ln in lines[first:] if ln.startswith("Shared_Dirty")).split()[1]

        before = shared_dirty()
        os.write(w, b"!")
        os.waitpid(pid, 0)
        os.write(1, (before + " " + shared_dirty()).encode())

    assert forklab.run(main).stdout.split() == [b"4", b"0"]


def test_fchdir_into_a_proc_directory_resolves_relative_names(k, init) -> None:
    from forklab.fs.open import ksys_fchdir  # the syscall itself: Kernel has no fchdir method
    from forklab.uapi import O_DIRECTORY, O_RDONLY

    fd = k.open(init, "/proc/1", O_RDONLY | O_DIRECTORY)
    ksys_fchdir(k, init, fd)
    sfd = k.open(init, "status", O_RDONLY)
    assert k.read(init, sfd, 1 << 16).decode() == k.proc("/proc/1/status")
    assert k.vfs.nr_files == len(k.vfs.files)


# --- relations: SigQ, ids, links, listings ----------------------------------------------------------


def test_sigq_counts_the_signals_queued_to_tasks_of_the_same_user(k, init):
    """Two blocked signals queued to one child show in SigQ of every task of that user, none of another user's."""
    from forklab.uapi import RLIMIT_SIGPENDING  # this test only

    a, b = fork_child(k), fork_child(k)
    u = unprivileged(k)
    k.rt_sigprocmask(a, SIG_BLOCK, (1 << (SIGUSR1 - 1)) | (1 << (SIGUSR2 - 1)))
    k.kill(init, a.pid, SIGUSR1)
    k.kill(init, a.pid, SIGUSR2)
    queued = len(a.pending.list) + len(a.signal.shared_pending.list)
    assert queued == 2
    limit = a.signal.rlim[RLIMIT_SIGPENDING][0]
    assert status(k, a.pid)["SigQ"].strip() == status(k, b.pid)["SigQ"].strip() == f"{queued}/{limit}"
    assert status(k, u.pid)["SigQ"].strip().startswith("0/")


def test_uid_and_gid_lines_are_mapped_into_the_readers_user_namespace(k, init):
    """A reader in a user namespace mapping uid 0 to 1000 sees a uid-1000 task as 0 and init as 65534."""
    from forklab.uapi import CLONE_NEWUSER  # this test only

    u = unprivileged(k)
    c = k.find_task(k.clone(u, CLONE_NEWUSER | SIGCHLD), active_ns(u))
    k.write_id_map(u, c, [(0, 1000, 1)], [(0, 0, 1)], deny_setgroups=True)
    assert status(k, c.pid, viewer=c)["Uid"].split() == ["0"] * 4
    assert status(k, init.pid, viewer=c)["Uid"].split() == ["65534"] * 4
    assert status(k, c.pid)["Uid"].split() == ["1000"] * 4  # the observer sees kernel ids


def test_ns_links_change_with_the_namespaces_and_pid_for_children_waits_for_a_reaper(k, init):
    from forklab.fs.proc.base import proc_readlink  # this test only
    from forklab.uapi import CLONE_NEWUTS  # this test only

    p = fork_child(k)
    before = {n: proc_readlink(k, f"/proc/{p.pid}/ns/{n}") for n in ("uts", "pid", "pid_for_children")}
    k.unshare(p, CLONE_NEWUTS | CLONE_NEWPID)
    assert proc_readlink(k, f"/proc/{p.pid}/ns/uts") == f"uts:[{p.nsproxy.uts_ns.inum}]" != before["uts"]
    assert proc_readlink(k, f"/proc/{p.pid}/ns/pid") == before["pid"]  # its own pid namespace is unchanged
    expect_errno(errno.ENOENT, proc_readlink, k, f"/proc/{p.pid}/ns/pid_for_children")
    k.fork(p)
    assert proc_readlink(k, f"/proc/{p.pid}/ns/pid_for_children") == f"pid:[{p.nsproxy.pid_ns_for_children.inum}]"


def test_fd_links_show_paths_from_the_readers_root_and_pseudo_names(k, init):
    from forklab.fs.proc.base import proc_listdir, proc_readlink  # this test only
    from forklab.uapi import O_CREAT, O_RDWR  # this test only

    p = fork_child(k)
    fd = k.open(p, "/tmp/a", O_CREAT | O_RDWR)
    pidfd = k.pidfd_open(p, init.pid)
    r, w = k.pipe2(p)
    assert proc_listdir(k, f"/proc/{p.pid}/fd") == [str(n) for n in sorted((fd, pidfd, r, w))]
    assert proc_readlink(k, f"/proc/{p.pid}/fd/{fd}") == "/tmp/a"
    assert proc_readlink(k, f"/proc/{p.pid}/fd/{pidfd}") == "anon_inode:[pidfd]"
    assert proc_readlink(k, f"/proc/{p.pid}/fd/{r}") == f"pipe:[{p.files.fdt.fd[r].f_inode.i_ino}]"
    k.chroot(p, "/tmp")
    assert proc_readlink(k, f"/proc/{p.pid}/fd/{fd}", p) == "/a"  # d_path from the reader's root
    assert proc_readlink(k, f"/proc/{p.pid}/root") == "/tmp"
    expect_errno(errno.ENOENT, proc_readlink, k, f"/proc/{p.pid}/fd/99")


def test_task_listing_self_links_and_wchan(k, init):
    """task/ lists the group's threads leader first; thread-self names the reader's thread; stat's wchan is 1
    for a sleeping task read by another."""
    from forklab.fs.proc.base import proc_listdir, proc_readlink  # this test only

    p = fork_child(k)
    t1, t2 = thread_of(k, p), thread_of(k, p)
    assert proc_listdir(k, f"/proc/{p.pid}/task") == [str(p.pid), str(t1.pid), str(t2.pid)]
    assert proc_readlink(k, "/proc/thread-self", t2) == f"{p.pid}/task/{t2.pid}"
    assert proc_readlink(k, "/proc/self", t2) == str(p.pid)
    assert [n for n in proc_listdir(k, "/proc") if n.isdigit()] == [str(init.pid), str(p.pid)]
    c = fork_child(k, p)
    with pytest.raises(Blocked):
        k.wait4(p, c.pid)
    assert stat(k, p.pid, tid=p.pid)[35] == "1" and stat(k, c.pid)[35] == "0"
    assert stat(k, p.pid, viewer=p, tid=p.pid)[35] == "0"  # get_wchan of current is 0


def test_shared_anonymous_memory_is_a_deleted_dev_zero_and_stays_shared_after_a_write(k, init):
    """A MAP_SHARED|MAP_ANONYMOUS page is shmem: maps names its file, and after fork a write keeps it shared."""
    from forklab.uapi import MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE  # this test only

    p = fork_child(k)
    addr = k.mmap(p, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)
    k.store(p, addr, b"x")
    c = fork_child(k, p)
    k.store(c, addr, b"y")
    ino = next(v for v in p.mm.mmap if v.vm_start == addr).vm_file.f_inode.i_ino
    for t in (p, c):
        lines = k.proc(f"/proc/{t.pid}/smaps").splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith(f"{addr:08x}-"))
        assert lines[first].split()[1:] == ["rw-s", "00000000", "00:01", str(ino), "/dev/zero", "(deleted)"]
        counts = {line.split(":")[0]: line.split()[1] for line in lines[first + 1:first + 20]}
        assert (counts["Rss"], counts["Pss"], counts["Shared_Dirty"], counts["Anonymous"]) == ("4", "2", "4", "0")
        rollup = dict(line.split(":", 1) for line in k.proc(f"/proc/{t.pid}/smaps_rollup").splitlines()[1:])
        assert rollup["Pss_Shmem"].split()[0] == "2"
