"""What each CLONE_* flag shares, and the child's identity, registers and tid pointers.

Sources: kernel/fork.c copy_* helpers (1382-1639), copy_process identity (2140-2175) and
publication (2206-2284), arch/x86/kernel/process.c copy_thread_tls (125-186),
arch/x86/kernel/process_64.c:649-655, kernel/cred.c copy_creds (330-393).
"""

from __future__ import annotations

import errno

import pytest
from conftest import expect_errno, fork_child, map_page, read_int, state, write_int

from forklab import CloneArgs, SigAction
from forklab.include.linux.mm_types import TASK_SIZE_MAX
from forklab.uapi import (
    CLONE_CHILD_CLEARTID,
    CLONE_CHILD_SETTID,
    CLONE_CLEAR_SIGHAND,
    CLONE_FILES,
    CLONE_FS,
    CLONE_IO,
    CLONE_NEWPID,
    CLONE_PARENT,
    CLONE_PARENT_SETTID,
    CLONE_SETTLS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_VM,
    SA_ONSTACK,
    SA_RESTART,
    SIG_DFL,
    SIG_IGN,
    SIGCHLD,
    SIGINT,
    SIGTERM,
    SIGUSR1,
    SIGUSR2,
    SS_DISABLE,
)

PTHREAD_FLAGS = (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
                 | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)


# --- resources ------------------------------------------------------------------------------


def test_clone_vm_shares_mm_and_counts_a_user(k):
    """CLONE_VM: mmget + share (kernel/fork.c:1409-1413); else dup_mm, a new mm (1415-1418)."""
    p = fork_child(k)
    users = p.mm.mm_users
    c = k.find_task(k.clone(p, CLONE_VM | SIGCHLD))
    assert c.mm is p.mm and p.mm.mm_users == users + 1
    d = fork_child(k, p)
    assert d.mm is not p.mm and d.mm.mm_users == 1 and p.mm.mm_users == users + 1
    k.check_invariants()


def test_clone_files_shares_fd_table(k):
    """CLONE_FILES: share, count++ (kernel/fork.c:1461-1464); else dup_fd (1466)."""
    p = fork_child(k)
    fd = k.open(p, "/dev/null")
    c = k.find_task(k.clone(p, CLONE_FILES | SIGCHLD))
    assert c.files is p.files and p.files.count == 2
    d = fork_child(k, p)
    assert d.files is not p.files and d.files.count == 1
    # the copy holds the same open file description
    assert d.files.fdt.fd[fd] is p.files.fdt.fd[fd]
    k.close(c, fd)  # shared table: the parent's fd is gone too
    assert p.files.fdt.fd[fd] is None and d.files.fdt.fd[fd] is not None
    k.check_invariants()


def test_clone_fs_shares_fs_struct(k):
    """CLONE_FS: users++ (kernel/fork.c:1432-1442); else copy_fs_struct (1443-1446)."""
    p = fork_child(k)
    c = k.find_task(k.clone(p, CLONE_FS | SIGCHLD))
    assert c.fs is p.fs and p.fs.users == 2
    d = fork_child(k, p)
    assert d.fs is not p.fs and d.fs.users == 1
    k.umask(c, 0o077)
    assert k.umask(p, 0o022) == 0o077  # shared umask
    assert d.fs.umask != 0o077
    k.check_invariants()


def test_clone_sighand_shares_handler_table(k):
    """CLONE_SIGHAND: share, count++ (kernel/fork.c:1506-1509); else a copy of the 64 actions (1510-1518)."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGUSR1, SigAction(0x1000))
    c = k.find_task(k.clone(p, CLONE_SIGHAND | CLONE_VM | SIGCHLD))
    d = fork_child(k, p)
    assert c.sighand is p.sighand and p.sighand.count == 2
    assert d.sighand is not p.sighand and d.sighand.count == 1
    assert d.sighand.action[SIGUSR1 - 1].sa_handler == 0x1000
    k.rt_sigaction(c, SIGUSR2, SigAction(0x2000))
    assert p.sighand.action[SIGUSR2 - 1].sa_handler == 0x2000
    assert d.sighand.action[SIGUSR2 - 1].sa_handler == SIG_DFL
    k.check_invariants()


def test_clone_thread_shares_signal_and_creds(k):
    """CLONE_THREAD: share signal_struct (1555-1556), nr_threads++ (2271-2280); copy_creds shares the
    parent's cred with two refs and counts a process (kernel/cred.c:339-353)."""
    p = fork_child(k)
    cred = p.cred
    usage, procs = cred.usage, cred.user.processes
    pid = k.clone(p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)
    t = k.find_task(pid)
    assert t.signal is p.signal and p.signal.nr_threads == 2
    assert t.cred is cred and t.real_cred is cred
    assert cred.usage == usage + 2
    assert cred.user.processes == procs + 1
    assert t.tgid == p.tgid and t.pid == pid != p.pid
    assert t.group_leader is p and t.exit_signal == -1
    assert t not in p.children and t.real_parent is p.real_parent
    assert k.getpid(t) == p.pid and k.gettid(t) == pid
    k.check_invariants()


def test_fork_gets_private_creds_with_same_ids(k):
    """Without CLONE_THREAD, prepare_creds copies the parent's subjective cred (kernel/cred.c:355-385)."""
    p = fork_child(k)
    c = fork_child(k, p)
    assert c.cred is not p.cred and c.cred is c.real_cred
    assert (c.cred.uid, c.cred.euid, c.cred.cap_effective) == (p.cred.uid, p.cred.euid, p.cred.cap_effective)
    assert c.cred.user is p.cred.user
    k.check_invariants()


def test_nsproxy_shared_without_clone_new_flags(k):
    """No CLONE_NEW*: get_nsproxy and share (kernel/nsproxy.c:156-162)."""
    p = fork_child(k)
    count = p.nsproxy.count
    c = fork_child(k, p)
    assert c.nsproxy is p.nsproxy and p.nsproxy.count == count + 1
    k.check_invariants()


def test_clone_sysvsem_shares_undo_list(k):
    """CLONE_SYSVSEM shares the SEM_UNDO list, else none (ipc/sem.c:2264-2283, kernel/fork.c:2066)."""
    p = fork_child(k)
    c = k.find_task(k.clone(p, CLONE_SYSVSEM | SIGCHLD))
    assert c.sysvsem_undo_list is not None and c.sysvsem_undo_list is p.sysvsem_undo_list
    assert fork_child(k, p).sysvsem_undo_list is None
    k.check_invariants()


def test_failed_clone_sysvsem_keeps_callers_new_undo_list(k):
    """copy_semundo allocates current's undo list (get_undo_list, ipc/sem.c:1807-1826) before later steps can
    fail; bad_fork_cleanup_semundo drops only the child's reference (kernel/fork.c:2335, ipc/sem.c:2297-2310)."""
    p = fork_child(k)
    assert p.sysvsem_undo_list is None
    expect_errno(errno.EPERM, k.clone, p, CLONE_SYSVSEM | CLONE_SETTLS | SIGCHLD, tls=TASK_SIZE_MAX)
    assert p.sysvsem_undo_list is not None and p.sysvsem_undo_list.refcnt == 1
    k.check_invariants()


def test_failed_clone_vm_keeps_mm_owner(k):
    """A CLONE_VM fork that fails after copy_mm: mm_clear_owner(p->mm, p) clears the owner only if it is the
    failed child (kernel/fork.c:983-990, 2321-2325); the shared mm stays owned by the parent."""
    p = fork_child(k)
    assert p.mm.owner is p
    before = state(k)
    expect_errno(errno.EPERM, k.clone, p, CLONE_VM | CLONE_SETTLS | SIGCHLD, tls=TASK_SIZE_MAX)
    assert p.mm.owner is p
    assert state(k) == before
    k.check_invariants()


def test_failed_fork_without_vm_keeps_parent_mm_owner(k):
    """Without CLONE_VM the failed child's own new mm is dropped; the parent's mm is untouched (kernel/fork.c:2321-2325)."""
    p = fork_child(k)
    before = state(k)
    expect_errno(errno.EPERM, k.clone, p, CLONE_SETTLS | SIGCHLD, tls=TASK_SIZE_MAX)
    assert p.mm.owner is p and state(k) == before
    k.check_invariants()


def test_clone_io_shares_io_context(k):
    """CLONE_IO shares the io_context; else a new one with the same ioprio (kernel/fork.c:1476-1500)."""
    p = fork_child(k)
    k.ioprio_set(p, 0x4004)
    c = k.find_task(k.clone(p, CLONE_IO | SIGCHLD))
    d = fork_child(k, p)
    assert c.io_context is p.io_context
    assert d.io_context is not None and d.io_context is not p.io_context and d.io_context.ioprio == 0x4004
    k.check_invariants()


def test_rlimits_are_copied_not_shared(k):
    """copy_signal copies signal->rlim (kernel/fork.c:1584-1586)."""
    from forklab.uapi import RLIMIT_NOFILE

    p = fork_child(k)
    k.setrlimit(p, RLIMIT_NOFILE, (100, 200))
    c = fork_child(k, p)
    assert k.getrlimit(c, RLIMIT_NOFILE) == (100, 200)
    k.setrlimit(c, RLIMIT_NOFILE, (50, 200))
    assert k.getrlimit(p, RLIMIT_NOFILE) == (100, 200)
    k.check_invariants()


# --- CLONE_CLEAR_SIGHAND -----------------------------------------------------------------------


def test_clone3_clear_sighand_resets_handlers_keeps_ignored(k):
    """CLONE_CLEAR_SIGHAND: flush_signal_handlers(p, 0) (kernel/fork.c:1521-1522, signal.c:538-552):
    caught -> SIG_DFL with flags/mask cleared; SIG_IGN stays; the parent is untouched."""
    p = fork_child(k)
    k.rt_sigaction(p, SIGUSR1, SigAction(0x1000, SA_RESTART | SA_ONSTACK, 1 << (SIGINT - 1)))
    k.rt_sigaction(p, SIGUSR2, SigAction(SIG_IGN))
    k.rt_sigaction(p, SIGTERM, SigAction(SIG_IGN, SA_RESTART))
    c = k.find_task(k.clone3(p, CloneArgs(flags=CLONE_CLEAR_SIGHAND, exit_signal=SIGCHLD)))
    assert c.sighand.action[SIGUSR1 - 1] == SigAction(SIG_DFL)
    assert c.sighand.action[SIGUSR2 - 1].sa_handler == SIG_IGN
    assert c.sighand.action[SIGTERM - 1] == SigAction(SIG_IGN)  # flags cleared for all signals
    assert p.sighand.action[SIGUSR1 - 1].sa_handler == 0x1000
    assert p.sighand.action[SIGTERM - 1].sa_flags == SA_RESTART
    k.check_invariants()


def test_clone3_clear_sighand_keeps_blocked_mask(k):
    """copy_sighand does not touch the blocked mask, inherited by the task copy (kernel/fork.c:881, 1521)."""
    from forklab.uapi import SIG_BLOCK

    p = fork_child(k)
    k.rt_sigprocmask(p, SIG_BLOCK, 1 << (SIGUSR1 - 1))
    c = k.find_task(k.clone3(p, CloneArgs(flags=CLONE_CLEAR_SIGHAND, exit_signal=SIGCHLD)))
    assert c.blocked & (1 << (SIGUSR1 - 1))
    k.check_invariants()


# --- registers, TLS, sigaltstack --------------------------------------------------------------------


def test_child_ax_is_zero_and_sp_from_newsp(k):
    """childregs = parent's regs with ax = 0; sp := newsp if nonzero (arch/x86/kernel/process.c:169-172)."""
    p = fork_child(k)
    p.regs.sp, p.regs.ax = 0x7FFF_0000, 57
    c = fork_child(k, p)
    assert c.regs.ax == 0 and c.regs.sp == 0x7FFF_0000
    d = k.find_task(k.clone(p, CLONE_VM | SIGCHLD, newsp=0x1234_5000))
    assert d.regs.ax == 0 and d.regs.sp == 0x1234_5000
    k.check_invariants()


def test_clone_settls_sets_fsbase(k):
    """CLONE_SETTLS on a 64-bit caller: FS base := tls (arch/x86/kernel/process_64.c:649-660)."""
    p = fork_child(k)
    c = k.find_task(k.clone(p, CLONE_SETTLS | SIGCHLD, tls=0x7F00_1000))
    assert c.thread.fsbase == 0x7F00_1000
    d = k.find_task(k.clone(p, CLONE_SETTLS | SIGCHLD, tls=TASK_SIZE_MAX - 1))
    assert d.thread.fsbase == TASK_SIZE_MAX - 1
    k.check_invariants()


def test_fsbase_inherited_without_settls(k):
    """Without CLONE_SETTLS the fs base is copied from the parent (arch/x86/kernel/process.c:147-148)."""
    p = fork_child(k)
    c = k.find_task(k.clone(p, CLONE_SETTLS | SIGCHLD, tls=0x5000))
    d = fork_child(k, c)
    assert d.thread.fsbase == 0x5000
    k.check_invariants()


@pytest.mark.parametrize("tls", [TASK_SIZE_MAX, TASK_SIZE_MAX + 1, 2**64 - 1])
def test_clone_settls_at_or_above_task_size_max_is_eperm(k, tls):
    """tls >= TASK_SIZE_MAX -> EPERM (arch/x86/kernel/process_64.c:652-653); nothing changes."""
    p = fork_child(k)
    before = state(k)
    expect_errno(errno.EPERM, k.clone, p, CLONE_SETTLS | SIGCHLD, tls=tls)
    assert state(k) == before
    k.check_invariants()


def test_sigaltstack_reset_only_for_clone_vm_without_vfork(k):
    """CLONE_VM without CLONE_VFORK: sas_ss_sp = size = 0, SS_DISABLE (kernel/fork.c:2140-2141)."""
    p = fork_child(k)
    k.sigaltstack(p, 0x9000, 0x4000)
    c = k.find_task(k.clone(p, CLONE_VM | SIGCHLD))
    assert (c.sas_ss_sp, c.sas_ss_size, c.sas_ss_flags) == (0, 0, SS_DISABLE)
    d = fork_child(k, p)
    assert (d.sas_ss_sp, d.sas_ss_size) == (0x9000, 0x4000)
    v = k.find_task(k.vfork(p))
    assert (v.sas_ss_sp, v.sas_ss_size) == (0x9000, 0x4000)
    k.exit(v, 0)
    k.check_invariants()


# --- tid pointers -------------------------------------------------------------------------------------


def test_child_settid_and_cleartid_pointers(k):
    """set_child_tid / clear_child_tid := child_tid only with their flags (kernel/fork.c:1930-1934)."""
    p = fork_child(k)
    a = k.find_task(k.clone(p, CLONE_CHILD_SETTID | SIGCHLD, child_tid=0x5550))
    assert (a.set_child_tid, a.clear_child_tid) == (0x5550, 0)
    b = k.find_task(k.clone(p, CLONE_CHILD_CLEARTID | SIGCHLD, child_tid=0x6660))
    assert (b.set_child_tid, b.clear_child_tid) == (0, 0x6660)
    c = k.find_task(k.clone(p, SIGCHLD, child_tid=0x7770))
    assert (c.set_child_tid, c.clear_child_tid) == (0, 0)
    d = k.find_task(k.clone3(p, CloneArgs(flags=CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID, child_tid=0x8880,
                                          exit_signal=SIGCHLD)))
    assert (d.set_child_tid, d.clear_child_tid) == (0x8880, 0x8880)
    k.check_invariants()


def test_child_cleartid_zeroed_at_exit_when_mm_shared(k):
    """mm_release: if clear_child_tid and mm_users > 1, write 0 there (kernel/fork.c:1301-1313)."""
    p = fork_child(k)
    addr = map_page(k, p)
    pid = k.clone(p, PTHREAD_FLAGS, newsp=0x10000, parent_tid=addr, child_tid=addr, tls=0x1000)
    assert read_int(k, p, addr) == pid  # PARENT_SETTID wrote the tid
    t = k.find_task(pid)
    k.exit(t, 0)
    assert read_int(k, p, addr) == 0
    assert p.signal.nr_threads == 1
    k.check_invariants()


def test_child_cleartid_not_written_when_mm_not_shared(k):
    """mm_users == 1 (private mm): no write (kernel/fork.c:1306-1307); the parent's word is untouched."""
    p = fork_child(k)
    addr = map_page(k, p)
    write_int(k, p, addr, 1234)
    c = k.find_task(k.clone(p, CLONE_CHILD_CLEARTID | SIGCHLD, child_tid=addr))
    k.exit(c, 0)
    assert read_int(k, p, addr) == 1234
    k.check_invariants()


def test_set_tid_address_returns_tid_and_sets_clear_child_tid(k):
    """set_tid_address (kernel/fork.c:1634-1639)."""
    p = fork_child(k)
    assert k.set_tid_address(p, 0xABC0) == p.pid
    assert p.clear_child_tid == 0xABC0
    k.check_invariants()


# --- parent, exit_signal, tgid ------------------------------------------------------------------


def test_clone_parent_takes_callers_parent_and_leaders_exit_signal(k, init):
    """CLONE_PARENT: real_parent := current->real_parent (2206-2209); exit_signal := the group leader's,
    ignoring the requested one (kernel/fork.c:2160-2163)."""
    p = k.find_task(k.clone(init, SIGUSR2))
    assert p.exit_signal == SIGUSR2
    c = k.find_task(k.clone(p, CLONE_PARENT | SIGUSR1))
    assert c.real_parent is init and c in init.children and c not in p.children
    assert c.exit_signal == SIGUSR2
    assert k.getppid(c) == 1
    k.check_invariants()


def test_clone_parent_from_a_thread_uses_group_leaders_exit_signal(k, init):
    """exit_signal comes from current->group_leader, not current (kernel/fork.c:2161)."""
    p = k.find_task(k.clone(init, SIGUSR2))
    t = k.find_task(k.clone(p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM))
    assert t.exit_signal == -1
    c = k.find_task(k.clone(t, CLONE_PARENT | SIGCHLD))
    assert c.exit_signal == SIGUSR2 and c.real_parent is init
    k.check_invariants()


def test_thread_of_thread_has_leaders_tgid_and_parent(k, init):
    """CLONE_THREAD: group_leader = current->group_leader, tgid = current->tgid (2156-2159), real_parent =
    current->real_parent (2206-2209)."""
    p = fork_child(k)
    t1 = k.find_task(k.clone(p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM))
    t2 = k.find_task(k.clone(t1, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM))
    assert t2.group_leader is p and t2.tgid == p.pid and t2.real_parent is init
    assert p.signal.nr_threads == 3
    k.check_invariants()


def test_fork_from_thread_child_parent_is_the_thread(k):
    """A fork from a non-leader thread: real_parent := current (the thread) (kernel/fork.c:2210-2212)."""
    p = fork_child(k)
    t = k.find_task(k.clone(p, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM))
    c = fork_child(k, t)
    assert c.real_parent is t and c in t.children
    assert k.getppid(c) == p.pid  # getppid reports the tgid
    k.check_invariants()


def test_pdeath_signal_not_inherited(k):
    """p->pdeath_signal = 0 (kernel/fork.c:2172)."""
    from forklab.uapi import PR_SET_PDEATHSIG

    p = fork_child(k)
    k.prctl(p, PR_SET_PDEATHSIG, SIGTERM)
    assert fork_child(k, p).pdeath_signal == 0
    k.check_invariants()


# --- pid numbers in nested pid namespaces -------------------------------------------------------


def test_child_in_new_pid_ns_is_pid_1_there_outer_number_outside(k, init):
    """alloc_pid gives one number per level (kernel/pid.c:188-248); _do_fork returns pid_vnr in the caller's
    ns (kernel/fork.c:2442-2443); getpid in the child's ns is 1."""
    outer = k.clone(init, CLONE_NEWPID | SIGCHLD)
    c = k.find_task(outer)
    assert outer > 1 and k.getpid(c) == 1 and k.gettid(c) == 1
    assert k.getppid(c) == 0  # parent is outside the namespace
    ns = c.nsproxy.pid_ns_for_children
    assert ns.level == 1 and k.find_task(1, ns) is c
    assert c.pid == outer  # task->pid is the level-0 number
    # a grandchild: numbered in both namespaces
    g_pid = k.fork(c)
    g = k.find_task(g_pid, ns)
    assert g_pid == 2 and k.getpid(g) == 2 and k.getppid(g) == 1
    assert k.find_task(g.pid) is g and g.pid not in (1, 2)
    k.check_invariants()


def test_two_level_pid_ns_numbers(k, init):
    """Each level has its own numbering (kernel/pid.c:188-248)."""
    a = k.find_task(k.clone(init, CLONE_NEWPID | SIGCHLD))
    b_vpid = k.clone(a, CLONE_NEWPID | SIGCHLD)
    b = k.find_task(b_vpid, a.nsproxy.pid_ns_for_children)
    assert b_vpid == 2  # as a (level 1) sees it
    assert k.getpid(b) == 1
    assert b.thread_pid.level == 2
    assert [u.nr for u in b.thread_pid.numbers][1:] == [2, 1]
    k.check_invariants()
