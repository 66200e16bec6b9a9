"""Kernel versions as data: every observable change of the clone path since 5.6.14 is one switch.

``Kernel(version="5.6.14")`` (the default) runs the 5.6.14 rules; ``Kernel(version="6.18")``
turns on each change below that 6.18 has. Code asks ``k.has("clone3_newtime")`` at the one
place the rule lives, so a reader finds every version difference by its name. Each change
names the release that brought it, what a user sees, and where it is documented
(catalog §16; evidence ids refer to the stored mailing-list and source copies it cites).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Change:
    """One observable change of the clone/clone3/fork/vfork/unshare/pidfd/exit path."""

    name: str
    since: tuple[int, ...]
    title: str
    effect: str
    source: str


CHANGES: tuple[Change, ...] = (
    Change("legacy_clone_low32", (5, 6, 14), "fork: prevent accidental access to clone3 features",
           "legacy clone() keeps only the low 32 flag bits: CLONE_CLEAR_SIGHAND (bit 32) is unreachable",
           "kernel/fork.c:2572 (5.6.14; upstream 3f2c788a1314)"),
    Change("clone_into_cgroup", (5, 7), "clone3: CLONE_INTO_CGROUP and clone_args.cgroup",
           "flag 0x200000000 and an 88-byte struct (CLONE_ARGS_SIZE_VER2); the flag with cgroup > INT_MAX or "
           "a size below 88 is EINVAL; the child starts in the cgroup the fd names",
           "kernel/fork.c:copy_clone_args_from_user, clone3_args_valid (5.7)"),
    Change("pidfd_parent_tid_same_address", (5, 9), "fork: fold legacy_clone_args_valid() into _do_fork()",
           "CLONE_PIDFD|CLONE_PARENT_SETTID with pidfd == parent_tid is EINVAL for clone3 too",
           "kernel/fork.c:kernel_clone (5.9)"),
    Change("set_tid_checkpoint_restore", (5, 9), "pid: use checkpoint_restore_ns_capable() for set_tid",
           "set_tid is allowed with CAP_CHECKPOINT_RESTORE as well as CAP_SYS_ADMIN",
           "kernel/pid.c:alloc_pid (5.9)"),
    Change("cow_reuse_page_count", (5, 9), "mm: do_wp_page() simplification",
           "an anonymous write fault reuses the page only if page_count == 1 (5.6: mapcount + swapcount <= 1); "
           "the same on the model, where nothing pins pages",
           "mm/memory.c:do_wp_page (09854ba94c6a)"),
    Change("kernel_clone_name", (5, 10), "fork: introduce kernel_clone()",
           "_do_fork is called kernel_clone (visible in traces only)", "kernel/fork.c (cad6967ac108)"),
    Change("pidfd_nonblock", (5, 10), "pidfd: support PIDFD_NONBLOCK in pidfd_open()",
           "pidfd_open accepts PIDFD_NONBLOCK: the file is O_NONBLOCK, and waitid(P_PIDFD) on it gives EAGAIN "
           "while the process runs (5.6: any flag is EINVAL)",
           "kernel/pid.c:pidfd_open (5.10); pidfd_open(2); host oracle: open_nonblock=ok"),
    Change("nproc_after_copy_creds", (5, 14), "ucounts: count RLIMIT_NPROC in the user namespace",
           "the RLIMIT_NPROC check runs after copy_creds, so copy_creds' errors win over its EAGAIN",
           "kernel/fork.c:copy_process (21d1c5e386bc)"),
    Change("group_exit_on_last_thread", (6, 0), "signal: Guarantee that SIGNAL_GROUP_EXIT is set on process exit",
           "the last thread to start exiting marks the group exiting with its own code, so wait reports the last "
           "thread's status for a group whose leader exited first (5.6: the leader's)",
           "kernel/exit.c:synchronize_group_exit (d80f7d7b2c75, 6.0); host oracle: leader exit(2), last thread "
           "exit(4) gives 0x400"),
    Change("timens_vm_allowed", (6, 2), "fs/exec: switch timens when a task gets a new mm",
           "CLONE_VM/CLONE_THREAD after unshare(CLONE_NEWTIME) is allowed; the child stays in the old time "
           "namespace until exec", "kernel/fork.c:copy_process, kernel/nsproxy.c:copy_namespaces (2b5f9dad32ed)"),
    Change("clone3_newtime", (6, 3), "fork: allow CLONE_NEWTIME in clone3 flags",
           "clone3 accepts CLONE_NEWTIME (5.6: EINVAL as a CSIGNAL bit)", "kernel/fork.c:clone3_args_valid"),
    Change("pidfd_thread", (6, 9), "pidfd: clone: allow CLONE_THREAD | CLONE_PIDFD together",
           "CLONE_PIDFD|CLONE_THREAD is allowed and pidfd_open takes PIDFD_THREAD (O_EXCL): the pidfd refers to "
           "the thread, and polls readable when that thread exits",
           "kernel/fork.c:copy_process, kernel/pid.c:pidfd_open; host oracle: open_thread_pidfd_thread=ok"),
    Change("pidfd_poll_hup", (6, 9), "pidfd_poll: report POLLHUP when pid_task() == NULL",
           "a pidfd whose task was reaped polls POLLIN|POLLRDNORM|POLLHUP (5.6: POLLIN|POLLRDNORM) and the reap "
           "wakes its pollers (__change_pid). Later releases also answer EPOLLERR to a poller that may not "
           "ptrace-read the task and delay a PIDFD_THREAD pidfd of a leader that exited before its threads: "
           "the model raises Unmodelled in those two cases",
           "kernel/fork.c:pidfd_poll, kernel/pid.c:__change_pid (Oleg Nesterov, 2024-02-02, the PIDFD_THREAD "
           "series); host oracle: poll_reaped=0x11"),
    Change("pid_max_per_ns", (6, 14), "pid: allow pid_max to be set per pid namespace",
           "each pid namespace has its own pid_max; a new one starts at PID_MAX_LIMIT (4194304), not the "
           "parent's value (seen on the 6.18 host: set_tid 32768 succeeds in a new namespace)",
           "kernel/pid.c:alloc_pid (7863dcc72d0f); host oracle"),
    Change("pidfd_open_enoent", (6, 15), "pidfd: report ESRCH and ENOENT from pidfd_prepare",
           "pidfd_open of a pid that has no task (a reaped leader whose pid lives on as a process-group id) is "
           "ESRCH, and of a thread's pid without PIDFD_THREAD ENOENT (5.6 and 6.9: EINVAL for both)",
           "kernel/fork.c:pidfd_prepare (linux-fsdevel, 2025-04, the pidfd fixes after 6.15-rc1); "
           "host oracle: open_thread=ENOENT"),
)

CHANGE_NAMES: frozenset[str] = frozenset(c.name for c in CHANGES)

VERSIONS: dict[str, tuple[int, ...]] = {"5.6.14": (5, 6, 14), "6.18": (6, 18)}


def changes_in(version: str) -> frozenset[str]:
    """The names of the changes a version has."""
    if version not in VERSIONS:
        raise ValueError(f"unknown kernel version {version!r}; forklab knows {', '.join(VERSIONS)}")
    v = VERSIONS[version]
    return frozenset(c.name for c in CHANGES if c.since <= v)


def diff_versions(old: str, new: str) -> list[Change]:
    """The changes ``new`` has and ``old`` lacks, oldest first."""
    have_old, have_new = changes_in(old), changes_in(new)
    return [c for c in CHANGES if c.name in have_new and c.name not in have_old]
