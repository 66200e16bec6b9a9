"""pipe2(2) and pipes across fork, exec and exit (fs/pipe.c).

The Kernel facade has no ``pipe2`` method yet; ``pipe2`` below goes through ``Kernel._syscall``
as the facade method will.
"""

from __future__ import annotations

import errno

import pytest
from conftest import assert_cites, expect_errno, state

from forklab import Blocked, Kernel, SigAction, Task, TaskKilled, TaskState
from forklab.fs.exec import do_execve
from forklab.fs.pipe import do_pipe2
from forklab.include.linux.fdtable import NR_OPEN_DEFAULT
from forklab.uapi import (
    CLONE_FILES,
    F_GETFD,
    F_GETFL,
    F_SETFL,
    O_CLOEXEC,
    O_DIRECT,
    O_NONBLOCK,
    O_RDONLY,
    O_WRONLY,
    PAGE_SIZE,
    RLIMIT_NOFILE,
    SEEK_CUR,
    SEEK_SET,
    SIG_IGN,
    SIGCHLD,
    SIGPIPE,
)

HANDLER = 0x401000


def pipe2(k: Kernel, t: Task, flags: int = 0) -> tuple[int, int]:
    """pipe2(2) through the syscall layer, as ``Kernel.pipe2`` will do."""
    return k._syscall(t, "pipe2", lambda c: do_pipe2(k, c, flags))


def unchanged_state(k: Kernel) -> object:
    """The kernel snapshot without the inode number counter: get_next_ino never gives a number back
    (fs/inode.c:892-910), so a pipe2 that fails after get_pipe_inode advances it on Linux too."""
    saved = k.vfs.next_ino
    k.vfs.next_ino = 0
    try:
        return state(k)
    finally:
        k.vfs.next_ino = saved


def child_of(k: Kernel, parent: Task, flags: int = SIGCHLD) -> Task:
    return k.find_task(k.clone(parent, flags))


def pipe_of(t: Task, fd: int):
    assert t.files is not None
    f = t.files.fdt.fd[fd]
    assert f is not None and f.f_inode.pipe is not None
    return f, f.f_inode.pipe


def test_pipe2_gives_a_read_and_a_write_end() -> None:
    """Two files on one pipe inode: fd[0] O_RDONLY, fd[1] O_WRONLY, lowest free fds (fs/pipe.c:901-1003)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    assert (r, w) == (0, 1)
    fr, pipe = pipe_of(p, r)
    fw, _ = pipe_of(p, w)
    assert fr.f_inode is fw.f_inode and fr is not fw
    assert (pipe.readers, pipe.writers, pipe.files, pipe.max_usage) == (1, 1, 2, 16)
    assert k.fcntl(p, r, F_GETFL) & 3 == O_RDONLY and k.fcntl(p, w, F_GETFL) & 3 == O_WRONLY
    assert k.write(p, w, b"hello") == 5
    assert k.read(p, r, 3) == b"hel" and k.read(p, r, 100) == b"lo"
    expect_errno(errno.EBADF, k.read, p, w, 1)
    expect_errno(errno.EBADF, k.write, p, r, b"x")
    k.check_invariants()


def test_lseek_on_a_pipe_is_espipe() -> None:
    """stream_open clears FMODE_LSEEK (fs/open.c:1332-1337): lseek is ESPIPE (fs/read_write.c:232)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    for fd in (r, w):
        for whence in (SEEK_SET, SEEK_CUR):
            e = expect_errno(errno.ESPIPE, k.lseek, p, fd, 0, whence)
            assert_cites(e, "fs/read_write.c", 232)
    k.check_invariants()


def test_pipe2_flags() -> None:
    """Only O_CLOEXEC, O_NONBLOCK and O_DIRECT are accepted (fs/pipe.c:939); O_CLOEXEC marks both fds, O_NONBLOCK
    both files, O_DIRECT only the write end's file (fs/pipe.c:911, 920)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    for bad in (O_WRONLY, 0o2000, 1 << 31):
        before = state(k)
        e = expect_errno(errno.EINVAL, pipe2, k, p, bad)
        assert_cites(e, "fs/pipe.c", 939)
        assert state(k) == before
    r, w = pipe2(k, p, O_CLOEXEC | O_NONBLOCK | O_DIRECT)
    assert k.fcntl(p, r, F_GETFD) == 1 and k.fcntl(p, w, F_GETFD) == 1
    assert k.fcntl(p, r, F_GETFL) & O_NONBLOCK and k.fcntl(p, w, F_GETFL) & O_NONBLOCK
    assert not k.fcntl(p, r, F_GETFL) & O_DIRECT and k.fcntl(p, w, F_GETFL) & O_DIRECT
    k.check_invariants()


def test_emfile_and_enfile_leave_nothing_behind() -> None:
    """The files are made first, then the fds (fs/pipe.c:941-960): EMFILE on the first or second fd and ENFILE at
    files_stat.max_files unwind everything (fs/pipe.c:961-965)."""
    k = Kernel()
    for limit in (0, 1):
        p = child_of(k, k.init_task)
        k.setrlimit(p, RLIMIT_NOFILE, (limit, limit))
        before = unchanged_state(k)
        e = expect_errno(errno.EMFILE, pipe2, k, p)
        assert_cites(e, "fs/file.c", 502)
        assert unchanged_state(k) == before
    p = child_of(k, k.init_task)
    k.setresuid(p, 1000, 1000, 1000)  # no CAP_SYS_ADMIN: max_files applies (fs/file_table.c:142-145)
    k.vfs.max_files = k.vfs.nr_files + 1
    before = unchanged_state(k)
    e = expect_errno(errno.ENFILE, pipe2, k, p)
    assert_cites(e, "fs/file_table.c", 163)
    assert unchanged_state(k) == before
    k.check_invariants()


def test_fork_shares_both_ends_and_eof_needs_every_writer_closed() -> None:
    """A forked child shares the pipe's files (f_count 2; readers/writers still 1: they count files). The reader
    sees EOF only once the last write file is released -- in the parent and in the child (fs/pipe.c:379-380,
    715-737)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p, O_NONBLOCK)
    c = child_of(k, p)
    fw, pipe = pipe_of(p, w)
    assert fw.f_count == 2 and (pipe.readers, pipe.writers) == (1, 1)
    k.write(c, w, b"from child")
    assert k.read(p, r, 100) == b"from child"
    k.close(p, w)
    assert fw.f_count == 1 and pipe.writers == 1
    e = expect_errno(errno.EAGAIN, k.read, p, r, 10)  # empty, a writer remains (the child)
    assert_cites(e, "fs/pipe.c", 367)
    k.close(c, w)
    assert pipe.writers == 0
    assert k.read(p, r, 10) == b"" and k.read(c, r, 10) == b""
    k.check_invariants()


def test_writer_exit_gives_eof_and_wakes_a_blocked_reader() -> None:
    """A reader asleep on an empty pipe (TASK_INTERRUPTIBLE on rd_wait) is woken when the last writer's file is
    released by exit_files (fs/pipe.c:723-728) and then reads EOF."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    c = child_of(k, p)
    k.close(p, w)
    with pytest.raises(Blocked):
        k.read(p, r, 10)
    assert p.state == TaskState.TASK_INTERRUPTIBLE and p.waits_on == "pipe_read"
    k.check_invariants()
    k.exit(c, 0)
    assert p.state == TaskState.TASK_RUNNING
    assert k.read(p, r, 10) == b""
    k.check_invariants()


def test_write_wakes_a_blocked_reader() -> None:
    """A write to an empty pipe wakes one reader (fs/pipe.c:607-610)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    c = child_of(k, p)
    with pytest.raises(Blocked):
        k.read(c, r, 10)
    assert c.state == TaskState.TASK_INTERRUPTIBLE
    k.write(p, w, b"data")
    assert c.state == TaskState.TASK_RUNNING
    assert k.read(c, r, 10) == b"data"
    k.check_invariants()


def test_full_pipe_blocks_or_eagain_and_a_read_wakes_the_writer() -> None:
    """16 page buffers (PIPE_DEF_BUFFERS): a full pipe is EAGAIN with O_NONBLOCK (fs/pipe.c:571), else the writer
    sleeps on wr_wait; a read from the full pipe wakes it (fs/pipe.c:411-414)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    assert k.write(p, w, b"a" * 65536) == 65536
    _, pipe = pipe_of(p, w)
    assert len(pipe.bufs) == 16
    k.fcntl(p, w, F_SETFL, O_NONBLOCK)
    e = expect_errno(errno.EAGAIN, k.write, p, w, b"b")
    assert_cites(e, "fs/pipe.c", 571)
    k.fcntl(p, w, F_SETFL, 0)
    c = child_of(k, p)
    with pytest.raises(Blocked):
        k.write(c, w, b"b")
    assert c.state == TaskState.TASK_INTERRUPTIBLE and c.waits_on == "pipe_write"
    assert k.read(p, r, PAGE_SIZE) == b"a" * PAGE_SIZE
    assert c.state == TaskState.TASK_RUNNING
    assert k.write(c, w, b"b") == 1
    k.check_invariants()


def test_small_writes_merge_into_one_buffer() -> None:
    """A write shorter than a page merges into the last buffer while it has room (fs/pipe.c:472-490): 100 one-byte
    writes use one slot, and a 4097-byte write into an empty pipe takes two."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    for _ in range(100):
        k.write(p, w, b"x")
    _, pipe = pipe_of(p, w)
    assert len(pipe.bufs) == 1 and len(pipe.bufs[0].data) == 100
    assert k.read(p, r, 1000) == b"x" * 100
    k.write(p, w, b"y" * 4097)
    assert [len(b.data) for b in pipe.bufs] == [4096, 1]
    k.check_invariants()


def test_packet_mode_reads_one_write_at_a_time() -> None:
    """O_DIRECT makes packet buffers: no merging, and a read returns at most one packet (fs/pipe.c:344-348)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p, O_DIRECT)
    k.write(p, w, b"one")
    k.write(p, w, b"two!")
    assert k.read(p, r, 100) == b"one"
    assert k.read(p, r, 2) == b"tw"  # the rest of a packet is discarded
    k.write(p, w, b"3")
    assert k.read(p, r, 100) == b"3"
    k.check_invariants()


def test_epipe_and_sigpipe_without_readers() -> None:
    """Writing with no reader left: send_sig(SIGPIPE, current, 0) and EPIPE (fs/pipe.c:456-459). Ignored: just
    EPIPE; caught: the handler runs and write returns EPIPE; default: the writer dies of SIGPIPE."""
    k = Kernel()
    for disposition in ("ignored", "caught", "default"):
        p = child_of(k, k.init_task)
        r, w = pipe2(k, p)
        k.close(p, r)
        if disposition == "ignored":
            k.rt_sigaction(p, SIGPIPE, SIG_IGN)
        elif disposition == "caught":
            k.rt_sigaction(p, SIGPIPE, SigAction(HANDLER))
        if disposition == "default":
            with pytest.raises(TaskKilled) as killed:
                k.write(p, w, b"x")
            assert killed.value.sig == SIGPIPE
            assert (p.pid, SIGPIPE, "killed") in k.signals_delivered
            assert p.exit_state == TaskState.EXIT_ZOMBIE and p.exit_code == SIGPIPE
        else:
            e = expect_errno(errno.EPIPE, k.write, p, w, b"x")
            assert_cites(e, "fs/pipe.c", 458)
            how = "ignored" if disposition == "ignored" else f"handler {HANDLER:#x} ran"
            assert (p.pid, SIGPIPE, how) in k.signals_delivered or disposition == "ignored"
        k.check_invariants()


def test_cloexec_pipe_is_closed_by_exec_in_the_child() -> None:
    """O_CLOEXEC on both ends: an exec'ing child drops its references (fs/exec.c:1308), the pipe stays open in the
    parent, and the parent's reader sees EOF once its own write end is closed."""
    k = Kernel()
    if k.vfs.lookup("/bin") is None:
        k.vfs.mkdir("/bin")
    k.vfs.create("/bin/true", mode=0o755).data[:] = b"\x7fELF"
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p, O_CLOEXEC)
    c = child_of(k, p)
    fr, pipe = pipe_of(p, r)
    assert fr.f_count == 2
    k._syscall(c, "execve", lambda t: do_execve(k, t, "/bin/true", ["true"], []))
    assert fr.f_count == 1 and (pipe.readers, pipe.writers) == (1, 1)
    expect_errno(errno.EBADF, k.read, c, r, 1)
    k.close(p, w)
    assert k.read(p, r, 1) == b""
    k.check_invariants()


def test_clone_files_child_closing_affects_the_parent() -> None:
    """With CLONE_FILES there is one fd table: the child's close is the parent's (kernel/fork.c:1462)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    c = child_of(k, p, CLONE_FILES | SIGCHLD)
    k.close(c, w)
    assert k.read(p, r, 1) == b""
    k.check_invariants()


def test_pipe_is_freed_with_its_last_file() -> None:
    """put_pipe_info frees the pipe when its last file goes (fs/pipe.c:699-712); nr_files drops by two."""
    k = Kernel()
    p = child_of(k, k.init_task)
    n = k.vfs.nr_files
    r, w = pipe2(k, p)
    fr, _ = pipe_of(p, r)
    assert k.vfs.nr_files == n + 2
    k.close(p, r)
    k.close(p, w)
    assert fr.f_inode.pipe is None and k.vfs.nr_files == n
    k.check_invariants()


def test_fail_nth_sweep_of_pipe2() -> None:
    """Each fallible site of pipe2 in turn: ENFILE for the pipe inode and pipe_inode_info (fs/pipe.c:907), ENOMEM
    for a struct file or the fd table; nothing survives but the inode number counter (get_next_ino, which Linux
    never gives back either)."""
    def setup() -> tuple[Kernel, Task]:
        k = Kernel()
        p = child_of(k, k.init_task)
        for _ in range(NR_OPEN_DEFAULT):  # the pipe's fds need a bigger fd table: expand_files' allocations are in the sweep
            k.open(p, "/dev/null")
        return k, p

    k, p = setup()
    pipe2(k, p)
    sites = list(k.fault.sites)
    assert "get_pipe_inode:new_inode_pseudo" in sites and "alloc_fdtable:kmalloc" in sites
    for n, site in enumerate(sites, start=1):
        k, p = setup()
        before = unchanged_state(k)
        p.fail_nth = n
        with pytest.raises(OSError) as info:
            pipe2(k, p)
        want = errno.ENFILE if site.startswith(("get_pipe_inode", "alloc_pipe_info")) else errno.ENOMEM
        assert info.value.errno == want, f"{n} {site}: {info.value}"
        assert unchanged_state(k) == before, f"site {n} ({site}) left state behind"
        k.check_invariants()


def test_pipe_write_page_allocation_failure_is_enomem() -> None:
    """pipe_write's alloc_page failing before anything was written is ENOMEM (fs/pipe.c:514-517); the pipe keeps
    one freed page as tmp_page, so a write after a read needs no allocation (fs/pipe.c:127-141)."""
    k = Kernel()
    p = child_of(k, k.init_task)
    r, w = pipe2(k, p)
    p.fail_nth = 1
    e = expect_errno(errno.ENOMEM, k.write, p, w, b"x")
    assert_cites(e, "fs/pipe.c", 516)
    assert k.write(p, w, b"x") == 1 and k.read(p, r, 1) == b"x"
    k.write(p, w, b"y")
    assert "pipe_write:alloc_page" not in k.fault.sites
    k.check_invariants()
