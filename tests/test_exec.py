"""execve(2) where it meets fork: vfork release, handlers, fds, exec ids, threads, in_exec (fs/exec.c).

The Kernel facade has no ``execve`` method yet; ``execve`` below calls the syscall the way the
facade does (``Kernel._syscall``), so fail-nth, signal delivery on the way out and the
nesting of listener calls behave exactly as for the other syscalls.
"""

from __future__ import annotations

import errno

import pytest
from conftest import assert_cites, expect_errno, state

from forklab import Kernel, SigAction, Task, TaskKilled, TaskState, TraceEvent, Unmodelled
from forklab.fs.exec import MAX_ARG_STRLEN, STACK_TOP_MAX, do_execve
from forklab.include.linux.sched import PF
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_NEWUSER,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VFORK,
    CLONE_VM,
    F_GETFD,
    F_SETFD,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    O_CLOEXEC,
    O_CREAT,
    O_RDWR,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIG_BLOCK,
    SIG_IGN,
    SIGCHLD,
    SIGSEGV,
    SIGTERM,
    SIGUSR1,
    SIGUSR2,
)

THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
HANDLER = 0x401000


def execve(k: Kernel, t: Task, path: str, argv: tuple[str, ...] | list[str] = (), envp: tuple[str, ...] | list[str] = ()) -> None:
    """execve(2) through the syscall layer, as ``Kernel.execve`` will do."""
    return k._syscall(t, "execve", lambda c: do_execve(k, c, path, list(argv), list(envp)))


def make_binary(k: Kernel, path: str = "/bin/true", mode: int = 0o755, data: bytes = b"\x7fELF\x02\x01\x01") -> None:
    if k.vfs.lookup("/bin") is None:
        k.vfs.mkdir("/bin")
    inode = k.vfs.create(path, mode=mode)
    inode.data[:] = data
    inode.i_size = len(data)


def unchanged_state(k: Kernel) -> object:
    """The kernel snapshot for "a failed exec left nothing behind".

    Two residues are Linux's own: the caller's ``min_flt`` keeps the faults get_arg_page took in
    the new mm before a later failure (faultin_page counts them in current), and a page of
    argument strings that was allocated and freed again sits on the free list (the allocator's
    internal order, not an observable state) -- ``mem_snapshot`` compares the allocator by
    what is in use.
    """
    from forklab.mm.debug import mem_snapshot

    return (state(k, "min_flt", "mem"), mem_snapshot(k))


def child_of(k: Kernel, parent: Task, flags: int = SIGCHLD) -> Task:
    return k.find_task(k.clone(parent, flags))


def u64(k: Kernel, t: Task, addr: int) -> int:
    return int.from_bytes(k.load(t, addr, 8), "little")


def cstring(k: Kernel, t: Task, addr: int) -> bytes:
    out = b""
    while True:
        c = k.load(t, addr + len(out), 1)
        if c == b"\0":
            return out
        out += c


# --- vfork and the mm ----------------------------------------------------------------------


def test_vfork_child_exec_releases_the_parent() -> None:
    """exec_mmap's exec_mm_release completes vfork_done (fs/exec.c:1020, kernel/fork.c:1319-1320): the parent
    runs again, the child has a fresh mm, the parent's mm is intact with mm_users back to 1."""
    k = Kernel()
    make_binary(k)
    init = k.init_task
    addr = k.mmap(init, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.store(init, addr, b"parent data")
    old_mm = init.mm
    child = child_of(k, init, CLONE_VM | CLONE_VFORK | SIGCHLD)
    assert init.state == TaskState.TASK_KILLABLE and init.waits_on == "vfork_done"
    assert child.mm is old_mm and old_mm is not None and old_mm.mm_users == 2
    execve(k, child, "/bin/true", ["true"])
    assert init.state == TaskState.TASK_RUNNING and init.waits_on == ""
    assert child.vfork_done is None
    assert child.mm is not None and child.mm is not old_mm and child.active_mm is child.mm
    assert init.mm is old_mm and old_mm.mm_users == 1
    assert k.load(init, addr, 11) == b"parent data"
    assert child.mm.owner is child and old_mm.owner is init
    k.check_invariants()


def test_new_mm_has_only_the_stack_with_the_strings() -> None:
    """bprm_mm_init puts the stack at STACK_TOP_MAX (fs/exec.c:262-266); copy_strings pushes the filename, envp
    and argv downwards (fs/exec.c:1810-1821); setup_arg_pages grows it by 128 KiB (fs/exec.c:778-800)."""
    k = Kernel()
    make_binary(k)
    child = child_of(k, k.init_task)
    k.mmap(child, 0, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    execve(k, child, "/bin/true", ["true", "-x"], ["HOME=/", "A=b"])
    mm = child.mm
    assert mm is not None and len(mm.mmap) == 1
    vma = mm.mmap[0]
    assert vma.vm_end == STACK_TOP_MAX and vma.vm_end - vma.vm_start == 4096 + 131072
    assert mm.stack_vm == mm.total_vm == (vma.vm_end - vma.vm_start) // 4096
    assert mm.exe_file is not None and mm.exe_file.f_path.dentry == "/bin/true" and mm.exe_file.f_count == 1
    sp = child.regs.sp
    assert sp % 16 == 0
    assert u64(k, child, sp) == 2
    argv = [cstring(k, child, u64(k, child, sp + 8 * (1 + i))) for i in range(2)]
    assert argv == [b"true", b"-x"] and u64(k, child, sp + 24) == 0
    envp = [cstring(k, child, u64(k, child, sp + 32 + 8 * i)) for i in range(2)]
    assert envp == [b"HOME=/", b"A=b"] and u64(k, child, sp + 48) == 0
    assert k.load(child, STACK_TOP_MAX - 8 - len(b"/bin/true\0"), 10) == b"/bin/true\0"
    assert child.comm == "true"
    k.check_invariants()


def test_comm_is_the_basename_truncated_to_15_bytes() -> None:
    """__set_task_comm(kbasename(bprm->filename)) into TASK_COMM_LEN (16) bytes (fs/exec.c:1379, 1246-1253)."""
    k = Kernel()
    make_binary(k, "/bin/a-very-long-program-name")
    child = child_of(k, k.init_task)
    k.chdir(child, "/bin")
    execve(k, child, "./a-very-long-program-name")
    assert child.comm == "a-very-long-pro"
    k.check_invariants()


# --- signals ----------------------------------------------------------------------------------


def test_exec_resets_caught_handlers_keeps_ignored_blocked_and_pending() -> None:
    """flush_signal_handlers(current, 0) (fs/exec.c:1390, kernel/signal.c:538-552): a caught signal returns to
    SIG_DFL, SIG_IGN stays; the blocked mask and pending signals survive exec; the sigaltstack's sp/size are
    cleared (fs/exec.c:1363)."""
    k = Kernel()
    make_binary(k)
    init = k.init_task
    k.rt_sigaction(init, SIGUSR1, SigAction(HANDLER, 0x04000000))
    k.rt_sigaction(init, SIGUSR2, SIG_IGN)
    child = child_of(k, init)
    assert child.sighand is not None and child.sighand.action[SIGUSR1 - 1].sa_handler == HANDLER
    k.rt_sigprocmask(child, SIG_BLOCK, 1 << (SIGTERM - 1))
    k.kill(init, child.pid, SIGTERM)
    k.sigaltstack(child, 0x5000, 8192)
    execve(k, child, "/bin/true")
    assert child.sighand.action[SIGUSR1 - 1] == SigAction()
    assert child.sighand.action[SIGUSR2 - 1].sa_handler == SIG_IGN
    assert child.blocked == 1 << (SIGTERM - 1)
    assert child.signal is not None and child.signal.shared_pending.signal & (1 << (SIGTERM - 1))
    assert (child.sas_ss_sp, child.sas_ss_size) == (0, 0)
    assert init.sighand is not None and init.sighand.action[SIGUSR1 - 1].sa_handler == HANDLER
    k.check_invariants()


def test_exec_unshares_a_sighand_shared_between_processes() -> None:
    """CLONE_SIGHAND without CLONE_THREAD: de_thread gives the exec'ing process a private copy before the flush
    (fs/exec.c:1197-1218), so the other process keeps its handler."""
    k = Kernel()
    make_binary(k)
    init = k.init_task
    k.rt_sigaction(init, SIGUSR1, HANDLER)
    child = child_of(k, init, CLONE_VM | CLONE_SIGHAND | SIGCHLD)
    assert child.sighand is init.sighand and init.sighand is not None and init.sighand.count == 2
    execve(k, child, "/bin/true")
    assert child.sighand is not init.sighand and init.sighand.count == 1
    assert init.sighand.action[SIGUSR1 - 1].sa_handler == HANDLER
    assert child.sighand is not None and child.sighand.action[SIGUSR1 - 1] == SigAction()
    k.check_invariants()


def test_child_forked_before_exec_is_reported_with_sigchld() -> None:
    """setup_new_exec bumps self_exec_id (fs/exec.c:1389); a child created before it, whose parent_exec_id no
    longer matches, has its non-SIGCHLD exit_signal replaced by SIGCHLD (kernel/signal.c:1929-1936)."""
    k = Kernel()
    make_binary(k)
    for do_exec in (False, True):
        p = child_of(k, k.init_task)
        c = child_of(k, p, SIGUSR1)
        assert c.exit_signal == SIGUSR1 and c.parent_exec_id == p.self_exec_id
        before = p.self_exec_id
        if do_exec:
            execve(k, p, "/bin/true")
            assert p.self_exec_id == before + 1
        for sig in (SIGUSR1, SIGCHLD):  # caught, so neither is dropped as ignored nor kills p at once
            k.rt_sigaction(p, sig, HANDLER)
        k.exit(c, 0)
        assert p.signal is not None
        pending = p.signal.shared_pending.signal
        if do_exec:
            assert pending & (1 << (SIGCHLD - 1)) and not pending & (1 << (SIGUSR1 - 1))
        else:
            assert pending & (1 << (SIGUSR1 - 1)) and not pending & (1 << (SIGCHLD - 1))
            p.signal.shared_pending.signal = 0  # not delivered: the test only reads what was queued
            p.signal.shared_pending.list.clear()
    k.check_invariants()


def test_exec_sets_exit_signal_to_sigchld() -> None:
    """de_thread: "we have changed execution domain", exit_signal := SIGCHLD (fs/exec.c:1190)."""
    k = Kernel()
    make_binary(k)
    c = child_of(k, k.init_task, SIGUSR2)
    execve(k, c, "/bin/true")
    assert c.exit_signal == SIGCHLD
    k.check_invariants()


# --- flags and files ----------------------------------------------------------------------------


def test_pf_forknoexec_cleared_by_exec() -> None:
    """copy_process sets PF_FORKNOEXEC (kernel/fork.c:1966); flush_old_exec clears it (fs/exec.c:1297-1298)."""
    k = Kernel()
    make_binary(k)
    c = child_of(k, k.init_task)
    assert c.flags & PF.PF_FORKNOEXEC
    execve(k, c, "/bin/true")
    assert not c.flags & PF.PF_FORKNOEXEC
    k.check_invariants()


def test_close_on_exec_fds_are_closed_others_kept() -> None:
    """do_close_on_exec (fs/exec.c:1308, fs/file.c:680-714) closes exactly the FD_CLOEXEC fds."""
    k = Kernel()
    make_binary(k)
    c = child_of(k, k.init_task)
    keep = k.open(c, "/tmp/keep", O_CREAT | O_RDWR)
    gone1 = k.open(c, "/tmp/gone", O_CREAT | O_RDWR | O_CLOEXEC)
    gone2 = k.dup(c, keep)
    k.fcntl(c, gone2, F_SETFD, 1)
    nr_files = k.vfs.nr_files
    execve(k, c, "/bin/true")
    assert k.fcntl(c, keep, F_GETFD) == 0
    for fd in (gone1, gone2):
        expect_errno(errno.EBADF, k.fcntl, c, fd, F_GETFD)
    # /tmp/gone's file is freed, keep's file lost one reference, and mm->exe_file holds the new program
    assert k.vfs.nr_files == nr_files - 1 + 1
    assert sorted(f.f_path.dentry for f in k.vfs.files.values()) == ["/bin/true", "/tmp/keep"]
    assert c.files is not None and c.files.next_fd == gone1
    k.check_invariants()


def test_exec_unshares_a_clone_files_table() -> None:
    """unshare_files (fs/exec.c:1748, kernel/fork.c:3032-3048): exec gets a private copy of a CLONE_FILES table, so
    closing its close-on-exec fds does not touch the other process; the shared table loses one user."""
    k = Kernel()
    make_binary(k)
    p = child_of(k, k.init_task)
    fd = k.open(p, "/tmp/x", O_CREAT | O_RDWR | O_CLOEXEC)
    c = child_of(k, p, CLONE_FILES | SIGCHLD)
    shared = p.files
    assert c.files is shared and shared is not None and shared.count == 2
    execve(k, c, "/bin/true")
    assert c.files is not shared and shared.count == 1 and p.files is shared
    assert k.fcntl(p, fd, F_GETFD) == 1
    expect_errno(errno.EBADF, k.fcntl, c, fd, F_GETFD)
    k.check_invariants()


# --- threads ------------------------------------------------------------------------------------


def test_exec_by_the_leader_kills_the_other_threads() -> None:
    """de_thread: zap_other_threads and wait until they are gone (fs/exec.c:1085-1099); threads are released at
    once (autoreap), the group keeps its pid."""
    k = Kernel()
    make_binary(k)
    p = child_of(k, k.init_task)
    t2 = child_of(k, p, THREAD)
    t3 = child_of(k, p, THREAD)
    nr = k.nr_threads
    execve(k, p, "/bin/true")
    assert t2.exit_state == TaskState.EXIT_DEAD and t3.exit_state == TaskState.EXIT_DEAD
    assert k.nr_threads == nr - 2
    assert p.signal is not None and p.signal.thread_head == [p] and p.signal.live == 1
    assert p.signal.group_exit_task is None and not p.signal.flags
    assert p.sighand is not None and p.sighand.count == 1 and p.files is not None and p.files.count == 1
    k.check_invariants()


def test_exec_by_a_non_leader_takes_over_the_leader_pid() -> None:
    """Non-leader exec: the old leader dies, the exec'ing thread takes its pid, start_time and place in the
    parent's children list; the leader is released without notifying the parent (fs/exec.c:1106-1183)."""
    k = Kernel()
    make_binary(k)
    parent = child_of(k, k.init_task)
    leader = child_of(k, parent)
    leader_pid, start = leader.pid, leader.start_time
    t2 = child_of(k, leader, THREAD)
    t3 = child_of(k, leader, THREAD)
    grandchild = child_of(k, leader)
    old_tid = t2.pid
    execve(k, t2, "/bin/true")
    assert t2.pid == leader_pid and t2.tgid == leader_pid and t2.group_leader is t2
    assert k.find_task(leader_pid) is t2 and k.getpid(t2) == leader_pid and k.gettid(t2) == leader_pid
    assert t2.start_time == start and t2.exit_signal == SIGCHLD
    assert leader.exit_state == TaskState.EXIT_DEAD and t3.exit_state == TaskState.EXIT_DEAD
    assert parent.children.count(t2) == 1 and leader not in parent.children
    assert grandchild.real_parent is t2 and grandchild in t2.children
    with pytest.raises(ValueError):
        k.find_task(old_tid)
    assert parent.signal is not None and parent.signal.shared_pending.signal == 0  # no SIGCHLD for the leader
    k.check_invariants()
    k.exit(t2, 3)
    assert k.wait4(parent, leader_pid) == (leader_pid, 3 << 8)
    k.check_invariants()


def test_exec_during_group_exit_is_eagain() -> None:
    """A fatal signal to the group while exec is past copy_strings: complete_signal starts a group exit
    (SIGNAL_GROUP_EXIT, SIGKILL to every thread), de_thread then returns EAGAIN (fs/exec.c:1079-1083) and the
    caller dies on its way out; the mm it was building is dropped."""
    k = Kernel()
    make_binary(k)
    p = child_of(k, k.init_task)
    t2 = child_of(k, p, THREAD)
    old_mm = p.mm
    fired: list[bool] = []

    def listener(event: TraceEvent) -> None:
        if event.ph == "i" and event.kind == "copy_strings" and not fired:  # past copy_strings
            fired.append(True)
            k.kill(k.init_task, p.pid, SIGTERM)

    k.listeners.append(listener)
    with pytest.raises(TaskKilled) as killed:
        execve(k, p, "/bin/true")
    k.listeners.clear()
    cause = killed.value.__context__
    assert isinstance(cause, OSError) and cause.errno == errno.EAGAIN
    assert_cites(cause, "fs/exec.c", 1083)
    assert p.exit_state == TaskState.EXIT_ZOMBIE and t2.exit_state == TaskState.EXIT_DEAD
    assert p.exit_code == SIGTERM and old_mm is not None and old_mm.mm_users == 0
    assert p.fs is None
    k.check_invariants()


def test_fatal_signal_while_copying_strings_kills_the_caller() -> None:
    """copy_strings stops at a pending SIGKILL with ERESTARTNOHAND (fs/exec.c:536-538)."""
    k = Kernel()
    make_binary(k)
    p = child_of(k, k.init_task)
    k.listeners.append(lambda e: k.kill(k.init_task, p.pid, 9) if e.kind == "bprm_mm_init" else None)
    with pytest.raises(TaskKilled):
        execve(k, p, "/bin/true", ["true"])
    k.listeners.clear()
    assert p.exit_state == TaskState.EXIT_ZOMBIE and p.exit_code == 9
    k.check_invariants()


def test_concurrent_clone_fs_during_exec_is_eagain() -> None:
    """check_unsafe_exec marks fs->in_exec when every user of the fs_struct is in the thread group (fs/exec.c:1513);
    a CLONE_FS fork by a sibling thread meanwhile fails with EAGAIN (kernel/fork.c:1437). in_exec is cleared
    when exec finishes (fs/exec.c:1830)."""
    k = Kernel()
    make_binary(k)
    p = child_of(k, k.init_task)
    t2 = child_of(k, p, THREAD)
    seen: list[OSError] = []

    def listener(event: TraceEvent) -> None:
        if event.ph == "i" and event.kind == "check_unsafe_exec" and not seen:  # its decision: in_exec set
            assert p.fs is not None and p.fs.in_exec == 1
            with pytest.raises(OSError) as info:
                k.clone(t2, CLONE_FS | SIGCHLD)
            seen.append(info.value)

    k.listeners.append(listener)
    execve(k, p, "/bin/true")
    k.listeners.clear()
    assert seen and seen[0].errno == errno.EAGAIN
    assert_cites(seen[0], "kernel/fork.c", 1437)
    assert p.fs is not None and p.fs.in_exec == 0
    k.check_invariants()


def test_fs_shared_with_another_process_is_unsafe_not_in_exec() -> None:
    """An fs_struct shared outside the group is LSM_UNSAFE_SHARE: in_exec stays 0 (fs/exec.c:1510-1513), so the
    other process may still CLONE_FS during the exec."""
    k = Kernel()
    make_binary(k)
    p = child_of(k, k.init_task)
    other = child_of(k, p, CLONE_FS | SIGCHLD)
    pids: list[int] = []

    def listener(event: TraceEvent) -> None:
        if event.ph == "i" and event.kind == "check_unsafe_exec" and not pids:  # its decision
            assert p.fs is not None and p.fs.in_exec == 0
            pids.append(k.clone(other, CLONE_FS | SIGCHLD))

    k.listeners.append(listener)
    execve(k, p, "/bin/true")
    k.listeners.clear()
    assert pids and pids[0] > 0
    k.check_invariants()


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "code", "where"), [
    ("/bin/missing", errno.ENOENT, ("fs/namei.c", 1697)),
    ("", errno.ENOENT, ("fs/namei.c", 196)),
    ("/bin", errno.EACCES, ("fs/exec.c", 865)),
    ("/tmp", errno.EACCES, ("fs/exec.c", 865)),
    ("/dev/null", errno.EACCES, ("fs/namei.c", 366)),
    ("/etc/hostname", errno.EACCES, ("fs/namei.c", 366)),
    ("/bin/empty", errno.ENOEXEC, ("fs/exec.c", 1685)),
    ("/bin/true/x", errno.ENOTDIR, ("fs/namei.c", 2252)),
])
def test_exec_errors_leave_the_kernel_unchanged(path: str, code: int, where: tuple[str, int]) -> None:
    """ENOENT/ENOTDIR from the walk, EACCES for no execute bit (fs/namei.c:366) or a non-regular file
    (fs/exec.c:865-866), ENOEXEC when no binfmt knows the file (fs/exec.c:1683-1685); nothing survives the
    failure -- not even the unshared fd table, which reset_files_struct puts back (fs/exec.c:1857-1859)."""
    k = Kernel()
    make_binary(k)
    make_binary(k, "/bin/empty", data=b"")
    p = child_of(k, k.init_task)
    c = child_of(k, p, CLONE_FILES | CLONE_VM | CLONE_VFORK | SIGCHLD)
    before = unchanged_state(k)
    e = expect_errno(code, execve, k, c, path, ["x"])
    assert_cites(e, *where)
    assert unchanged_state(k) == before
    assert p.state == TaskState.TASK_KILLABLE  # still a vfork parent: the exec failed before exec_mmap
    k.check_invariants()


def test_e2big_for_an_overlong_string() -> None:
    """A string longer than MAX_ARG_STRLEN is E2BIG (fs/exec.c:520-522), before the point of no return."""
    k = Kernel()
    make_binary(k)
    c = child_of(k, k.init_task)
    before = unchanged_state(k)
    e = expect_errno(errno.E2BIG, execve, k, c, "/bin/true", ["x" * MAX_ARG_STRLEN])
    assert_cites(e, "fs/exec.c", 521)
    assert unchanged_state(k) == before
    k.check_invariants()


def test_nproc_exceeded_flag_makes_exec_eagain() -> None:
    """set*uid over RLIMIT_NPROC only flags PF_NPROC_EXCEEDED; execve then fails with EAGAIN while the user is
    still over the limit (fs/exec.c:1738-1742)."""
    from forklab.uapi import RLIMIT_NPROC

    k = Kernel()
    make_binary(k)
    a = child_of(k, k.init_task)
    k.setresuid(a, 1000, 1000, 1000)
    b = child_of(k, k.init_task)
    k.setrlimit(b, RLIMIT_NPROC, (1, 1))
    k.setresuid(b, 1000, 1000, 1000)
    assert b.flags & PF.PF_NPROC_EXCEEDED
    e = expect_errno(errno.EAGAIN, execve, k, b, "/bin/true")
    assert_cites(e, "fs/exec.c", 1740)
    k.exit(a, 0)
    k.wait4(k.init_task, a.pid)
    execve(k, b, "/bin/true")  # back under the limit: the flag is cleared (fs/exec.c:1746)
    assert not b.flags & PF.PF_NPROC_EXCEEDED
    k.check_invariants()


def test_setuid_file_is_unmodelled_and_unwound() -> None:
    """bprm_fill_uid would change the euid (fs/exec.c:1528-1570): secure exec is not modelled."""
    k = Kernel()
    make_binary(k, "/bin/su", mode=0o4755)
    c = child_of(k, k.init_task)
    before = unchanged_state(k)
    with pytest.raises(Unmodelled):
        execve(k, c, "/bin/su")
    assert unchanged_state(k) == before


# --- credentials ------------------------------------------------------------------------------------


def test_root_regains_bset_and_non_root_has_none() -> None:
    """cap_bprm_set_creds: root's permitted = bset | inheritable, effective = permitted; a non-root task without
    ambient capabilities has none (security/commoncap.c:713-745, 807-900)."""
    k = Kernel()
    make_binary(k)
    r = child_of(k, k.init_task)
    k.capset(r, 0, 1 << 21)
    execve(k, r, "/bin/true")
    assert r.cred is not None and r.cred.cap_permitted == r.cred.cap_bset == r.cred.cap_effective
    u = child_of(k, k.init_task)
    k.setresuid(u, 1000, 1000, 1000)
    execve(k, u, "/bin/true")
    assert u.cred is not None and u.cred.cap_permitted == 0 and u.cred.cap_effective == 0
    k.check_invariants()


def test_unmapped_root_in_a_new_user_namespace_loses_its_capabilities() -> None:
    """make_kuid(user_ns, 0) is invalid without a uid_map, so handle_privileged_root grants nothing
    (security/commoncap.c:823-825)."""
    k = Kernel()
    make_binary(k)
    c = child_of(k, k.init_task, CLONE_NEWUSER | SIGCHLD)
    assert c.cred is not None and c.cred.cap_effective != 0
    execve(k, c, "/bin/true")
    assert c.cred.cap_effective == 0 and c.cred.cap_permitted == 0
    k.check_invariants()


# --- fail-nth ---------------------------------------------------------------------------------------


def sweep_setup() -> tuple[Kernel, Task, Task]:
    """A parent vfork-waiting on a CLONE_FILES|CLONE_SIGHAND child that has a caught handler and two fds."""
    k = Kernel()
    make_binary(k)
    p = child_of(k, k.init_task)
    k.rt_sigaction(p, SIGUSR1, HANDLER)
    k.open(p, "/tmp/a", O_CREAT | O_RDWR)
    k.open(p, "/tmp/b", O_CREAT | O_RDWR | O_CLOEXEC)
    c = child_of(k, p, CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_SIGHAND | SIGCHLD)
    return k, p, c


def test_fail_nth_sweep_of_execve() -> None:
    """Every fallible site of execve in turn. Before the point of no return (exec_mmap) the failure leaves the
    whole kernel as it was (fs/exec.c:1843-1859: mmput of the new mm, in_exec cleared, creds aborted, the file
    put, reset_files_struct); after it, force_sigsegv kills the task (fs/exec.c:1668-1671). The caller's min_flt
    may keep the faults get_arg_page counted before a later failure (faultin_page), as on Linux."""
    k, p, c = sweep_setup()
    mark: list[int] = []
    k.listeners.append(lambda e: mark.append(len(k.fault.sites)) if e.kind == "exec_mmap" else None)
    execve(k, c, "/bin/true", ["true", "x"], ["E=1"])
    sites = list(k.fault.sites)
    ponr = mark[0]
    assert "__do_execve_file:kzalloc" in sites and "de_thread:kmem_cache_alloc" in sites
    assert "dup_fd:kmem_cache_alloc" in sites and "__bprm_mm_init:vm_area_alloc" in sites
    for n, site in enumerate(sites, start=1):
        k, p, c = sweep_setup()
        before = unchanged_state(k)
        c.fail_nth = n
        if n <= ponr:
            with pytest.raises(OSError) as info:
                execve(k, c, "/bin/true", ["true", "x"], ["E=1"])
            assert info.value.errno in (errno.ENOMEM, errno.E2BIG, errno.ENFILE), f"{n} {site}: {info.value}"
            assert k.fault.failed_site == site
            assert unchanged_state(k) == before, f"site {n} ({site}) left state behind"
            assert p.state == TaskState.TASK_KILLABLE
        else:
            with pytest.raises(TaskKilled) as killed:
                execve(k, c, "/bin/true", ["true", "x"], ["E=1"])
            assert killed.value.sig == SIGSEGV and p.state == TaskState.TASK_RUNNING
        k.check_invariants()
