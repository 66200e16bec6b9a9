"""Random sequences of fd/fs operations over forking tasks keep every refcount and bitmap consistent.

A small reference model tracks, per files_struct, which fds are open and which are
close-on-exec; after every step the model must agree with the kernel code and
``check_fs_invariants`` must find nothing (fs/file.c, kernel/fork.c:1429-1474).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from fs_model_helpers import bare_kernel, fork_like, make_task
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from forklab.fs import file as F
from forklab.fs.debug import check_fs_invariants
from forklab.fs.fcntl import do_fcntl
from forklab.fs.fs_struct import exit_fs
from forklab.fs.open import do_sys_open, ksys_close
from forklab.fs.read_write import ksys_lseek, ksys_read, ksys_write
from forklab.include.linux.sched import Task
from forklab.kernel.fork import unshare_files
from forklab.uapi import (
    AT_FDCWD,
    CLONE_FILES,
    CLONE_FS,
    F_DUPFD,
    F_SETFD,
    FD_CLOEXEC,
    O_CLOEXEC,
    O_CREAT,
    O_RDWR,
    SEEK_SET,
)

if TYPE_CHECKING:
    pass


NOFILE = 12
PATHS = ["/tmp/a", "/tmp/b", "/dev/null", "/etc/hostname", "/tmp", "/missing"]


class FdMachine(RuleBasedStateMachine):
    """Tasks open, dup, close, fork (sharing or copying), exec-close and exit."""

    def __init__(self) -> None:
        super().__init__()
        self.k = bare_kernel()
        first = make_task(self.k, nofile=NOFILE)
        self.tasks: list[Task] = [first]
        self.dead: list[Task] = []
        self.next_pid = 2
        # reference model: id(files_struct) -> {fd: cloexec}
        self.ref: dict[int, dict[int, bool]] = {id(first.files): {}}

    def _t(self, i: int) -> Task:
        return self.tasks[i % len(self.tasks)]

    def _ref(self, t: Task) -> dict[int, bool]:
        return self.ref[id(t.files)]

    @rule(i=st.integers(0, 5), p=st.sampled_from(PATHS), cloexec=st.booleans())
    def open_(self, i: int, p: str, cloexec: bool) -> None:
        t = self._t(i)
        ref = self._ref(t)
        want = min(set(range(NOFILE + 1)) - set(ref))
        try:
            fd = do_sys_open(self.k, t, AT_FDCWD, p, O_CREAT | O_RDWR | (O_CLOEXEC if cloexec else 0), 0o600)
        except OSError as e:
            assert e.errno in (errno.EMFILE, errno.EISDIR, errno.ENOENT)
            if e.errno == errno.EMFILE:
                assert want >= NOFILE
            return
        assert fd == want
        ref[fd] = cloexec

    @rule(i=st.integers(0, 5), fd=st.integers(-1, NOFILE))
    def close(self, i: int, fd: int) -> None:
        t = self._t(i)
        ref = self._ref(t)
        try:
            ksys_close(self.k, t, fd)
        except OSError as e:
            assert e.errno == errno.EBADF and fd not in ref
            return
        del ref[fd]

    @rule(i=st.integers(0, 5), old=st.integers(0, NOFILE), new=st.integers(0, NOFILE + 1))
    def dup2(self, i: int, old: int, new: int) -> None:
        t = self._t(i)
        ref = self._ref(t)
        try:
            r = F.ksys_dup2(self.k, t, old, new)
        except OSError as e:
            assert e.errno == errno.EBADF and (old not in ref or new >= NOFILE)
            return
        assert r == new
        if old != new:
            ref[new] = False

    @rule(i=st.integers(0, 5), fd=st.integers(0, NOFILE), start=st.integers(0, NOFILE))
    def dupfd(self, i: int, fd: int, start: int) -> None:
        t = self._t(i)
        ref = self._ref(t)
        try:
            r = do_fcntl(self.k, t, fd, F_DUPFD, start)
        except OSError as e:
            assert e.errno in (errno.EBADF, errno.EINVAL, errno.EMFILE)
            return
        assert r == min(set(range(start, NOFILE + 1)) - set(ref))
        ref[r] = False

    @rule(i=st.integers(0, 5), fd=st.integers(0, NOFILE), on=st.booleans())
    def setfd(self, i: int, fd: int, on: bool) -> None:
        t = self._t(i)
        ref = self._ref(t)
        try:
            do_fcntl(self.k, t, fd, F_SETFD, FD_CLOEXEC if on else 0)
        except OSError as e:
            assert e.errno == errno.EBADF and fd not in ref
            return
        ref[fd] = on

    @rule(i=st.integers(0, 5), share_files=st.booleans(), share_fs=st.booleans())
    def fork(self, i: int, share_files: bool, share_fs: bool) -> None:
        if len(self.tasks) >= 6:
            return
        parent = self._t(i)
        flags = (CLONE_FILES if share_files else 0) | (CLONE_FS if share_fs else 0)
        child = fork_like(self.k, parent, self.next_pid, flags)
        self.next_pid += 1
        self.tasks.append(child)
        if not share_files:
            self.ref[id(child.files)] = dict(self._ref(parent))

    @rule(i=st.integers(0, 5))
    def exec_close(self, i: int) -> None:
        t = self._t(i)
        displaced = unshare_files(self.k, t)
        if displaced is not None:
            self.ref[id(t.files)] = dict(self.ref[id(displaced)])
        assert t.files is not None
        F.do_close_on_exec(self.k, t.files)
        if displaced is not None:
            F.put_files_struct(self.k, displaced)
        ref = self._ref(t)
        for fd in [fd for fd, c in ref.items() if c]:
            del ref[fd]

    @rule(i=st.integers(0, 5), fd=st.integers(0, NOFILE), data=st.binary(max_size=4), pos=st.integers(0, 6))
    def io(self, i: int, fd: int, data: bytes, pos: int) -> None:
        t = self._t(i)
        try:
            ksys_lseek(self.k, t, fd, pos, SEEK_SET)
            ksys_write(self.k, t, fd, data)
            ksys_read(self.k, t, fd, 3)
        except OSError as e:
            assert e.errno in (errno.EBADF, errno.EISDIR)

    @rule(i=st.integers(0, 5))
    def exit(self, i: int) -> None:
        if len(self.tasks) == 1:
            return
        t = self.tasks.pop(i % len(self.tasks))
        F.exit_files(self.k, t)
        exit_fs(self.k, t)
        self.dead.append(t)

    @invariant()
    def consistent(self) -> None:
        errs = check_fs_invariants(self.k, self.tasks)
        assert errs == [], errs
        for t in self.tasks:
            assert t.files is not None
            fdt = t.files.fdt
            ref = self._ref(t)
            assert fdt.open_fds == set(ref)
            assert {fd for fd in fdt.open_fds if fd in fdt.close_on_exec} == {fd for fd, c in ref.items() if c}


FdMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None, derandomize=True)
TestFdMachine = FdMachine.TestCase
