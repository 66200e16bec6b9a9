"""open, chdir, fchdir, chroot and the model's tree (fs/open.c, fs/namei.c, forklab.fs.vfs)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from fs_model_helpers import assert_ok, bare_kernel, make_task

from forklab.fs.debug import files_snapshot, vfs_snapshot
from forklab.fs.file import fdget_raw
from forklab.fs.open import (
    O_LARGEFILE,
    O_NOATIME,
    O_PATH,
    do_sys_open,
    ksys_chdir,
    ksys_chroot,
    ksys_fchdir,
    ksys_open,
    sys_openat,
)
from forklab.fs.read_write import ksys_read
from forklab.fs.vfs import PATH_MAX, Vfs
from forklab.include.linux.fdtable import FMODE_PATH, S_IFREG
from forklab.kernel.capability import ns_capable
from forklab.uapi import (
    AT_FDCWD,
    CAP_SYS_CHROOT,
    O_APPEND,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
)

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState


@pytest.fixture
def k() -> KernelState:
    return bare_kernel()


def _open(k: KernelState, t: Task, path: str, flags: int = O_RDONLY, mode: int = 0o666) -> int:
    return do_sys_open(k, t, AT_FDCWD, path, flags, mode)


def _err(fn: Callable[..., object], *args: object) -> int:
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno is not None
    return e.value.errno


def test_boot_tree() -> None:
    """The tree starts with /, /tmp, /dev/null, /dev/zero, /etc/hostname and /proc, numbered deterministically."""
    a, b = Vfs(), Vfs()
    for p in ("/", "/tmp", "/dev/null", "/dev/zero", "/etc/hostname", "/proc"):
        ia, ib = a.lookup(p), b.lookup(p)
        assert ia is not None and ib is not None and ia.i_ino == ib.i_ino
    assert a.lookup("/nope") is None
    assert vfs_snapshot(a) == vfs_snapshot(b)


def test_open_missing_is_enoent(k: KernelState) -> None:
    """Opening a missing name without O_CREAT is ENOENT (fs/namei.c:3175) and releases the fd and file (fs/open.c:1147-1149)."""
    t = make_task(k)
    before = (files_snapshot(t.files), vfs_snapshot(k.vfs))
    assert _err(_open, k, t, "/tmp/none") == errno.ENOENT
    assert _err(_open, k, t, "/none/x", O_CREAT | O_WRONLY) == errno.ENOENT  # intermediate (fs/namei.c:1697)
    assert (files_snapshot(t.files), vfs_snapshot(k.vfs)) == before


def test_empty_and_long_names(k: KernelState) -> None:
    """getname: an empty name is ENOENT (fs/namei.c:191-196), PATH_MAX bytes ENAMETOOLONG (fs/namei.c:182-185); a 256-byte component ENAMETOOLONG (fs/libfs.c:68-69)."""
    t = make_task(k)
    assert _err(_open, k, t, "") == errno.ENOENT
    assert _err(_open, k, t, "/" + "a" * PATH_MAX) == errno.ENAMETOOLONG
    assert _err(_open, k, t, "/tmp/" + "b" * 256, O_CREAT | O_RDWR) == errno.ENAMETOOLONG


def test_o_creat_uses_umask(k: KernelState) -> None:
    """O_CREAT creates a regular file with mode & ~umask (fs/namei.c:3252-3254, 3309)."""
    t = make_task(k, uid=0)
    assert t.fs is not None
    t.fs.umask = 0o027
    _open(k, t, "/tmp/f", O_CREAT | O_WRONLY, 0o666)
    inode = k.vfs.lookup("/tmp/f")
    assert inode is not None and inode.i_mode == S_IFREG | 0o640 and inode.kind == "reg"
    t.fs.umask = 0
    _open(k, t, "/tmp/g", O_CREAT | O_WRONLY, 0o7777 | 0o170000)
    g = k.vfs.lookup("/tmp/g")
    assert g is not None and g.i_mode == S_IFREG | 0o7777  # build_open_how masks S_IALLUGO (fs/open.c:962)
    assert_ok(k, [t])


def test_o_excl_eexist(k: KernelState) -> None:
    """O_CREAT|O_EXCL on an existing name is EEXIST (fs/namei.c:3447-3450); O_EXCL alone is ignored."""
    t = make_task(k)
    assert _err(_open, k, t, "/etc/hostname", O_CREAT | O_EXCL | O_RDWR) == errno.EEXIST
    assert _err(_open, k, t, "/tmp", O_CREAT | O_EXCL | O_RDONLY) == errno.EEXIST
    _open(k, t, "/etc/hostname", O_EXCL)
    _open(k, t, "/etc/hostname", O_CREAT | O_RDWR)  # existing, no O_EXCL: plain open


def test_eisdir_rules(k: KernelState) -> None:
    """EISDIR: writing a directory (fs/namei.c:3033-3035), O_CREAT on a dir (3464-3467), O_CREAT with a trailing slash (3383-3384)."""
    t = make_task(k)
    assert _err(_open, k, t, "/tmp", O_WRONLY) == errno.EISDIR
    assert _err(_open, k, t, "/tmp", O_RDWR) == errno.EISDIR
    assert _err(_open, k, t, "/tmp", O_RDONLY | O_TRUNC) == errno.EISDIR  # O_TRUNC wants MAY_WRITE (fs/open.c:1035-1036)
    assert _err(_open, k, t, "/tmp", O_CREAT | O_RDONLY) == errno.EISDIR
    assert _err(_open, k, t, "/", O_CREAT | O_RDONLY) == errno.EISDIR
    assert _err(_open, k, t, "/tmp/new/", O_CREAT | O_RDWR) == errno.EISDIR
    assert k.vfs.lookup("/tmp/new") is None
    _open(k, t, "/tmp", O_RDONLY)
    _open(k, t, "/", O_RDONLY | O_DIRECTORY)


def test_enotdir_rules(k: KernelState) -> None:
    """ENOTDIR: an intermediate non-directory (fs/namei.c:2261-2266), O_DIRECTORY or a trailing slash on a file (3473-3475)."""
    t = make_task(k)
    assert _err(_open, k, t, "/etc/hostname/x") == errno.ENOTDIR
    assert _err(_open, k, t, "/etc/hostname/x", O_CREAT | O_RDWR) == errno.ENOTDIR
    assert _err(_open, k, t, "/etc/hostname", O_DIRECTORY) == errno.ENOTDIR
    assert _err(_open, k, t, "/etc/hostname/") == errno.ENOTDIR
    assert _err(_open, k, t, "/dev/null/..") == errno.ENOTDIR


def test_o_creat_o_directory_quirk(k: KernelState) -> None:
    """5.6 quirk: O_CREAT|O_DIRECTORY on a missing name creates a regular file and succeeds (fs/namei.c:3419-3425 skips 3473)."""
    t = make_task(k)
    fd = _open(k, t, "/tmp/q", O_CREAT | O_DIRECTORY | O_RDWR)
    assert fd == 0
    inode = k.vfs.lookup("/tmp/q")
    assert inode is not None and inode.kind == "reg"
    assert _err(_open, k, t, "/tmp/q", O_CREAT | O_DIRECTORY | O_RDWR) == errno.ENOTDIR


def test_o_trunc(k: KernelState) -> None:
    """O_TRUNC empties an existing regular file, even opened O_RDONLY (fs/namei.c:3479-3496); not a new one, not /dev/null (fs/namei.c:3044)."""
    t = make_task(k)
    hostname = k.vfs.lookup("/etc/hostname")
    assert hostname is not None and hostname.i_size == 8
    _open(k, t, "/etc/hostname", O_RDONLY | O_TRUNC)
    assert hostname.i_size == 0 and bytes(hostname.data) == b""
    _open(k, t, "/dev/null", O_WRONLY | O_TRUNC)


def test_create_in_proc_is_eacces(k: KernelState) -> None:
    """/proc's root has no ->create: O_CREAT of a new name there is EACCES (fs/namei.c:3305-3307)."""
    t = make_task(k)
    before = vfs_snapshot(k.vfs)
    assert _err(_open, k, t, "/proc/x", O_CREAT | O_RDWR) == errno.EACCES
    assert vfs_snapshot(k.vfs) == before


@pytest.mark.parametrize(("nth", "site", "err"), [
    (1, "__alloc_file:kmem_cache_zalloc", errno.ENOMEM),
    (2, "lookup_open:d_alloc_parallel", errno.ENOMEM),
    (3, "shmem_mknod:shmem_get_inode", errno.ENOSPC),
])
def test_open_create_fail_nth(k: KernelState, nth: int, site: str, err: int) -> None:
    """Each fallible step of open(O_CREAT) fails cleanly: file (fs/file_table.c:101-103), dentry (fs/namei.c:3222-3224), inode (mm/shmem.c:2883-2885)."""
    t = make_task(k)
    before = (files_snapshot(t.files), vfs_snapshot(k.vfs))
    k.fault.arm(nth)
    assert _err(_open, k, t, "/tmp/new", O_CREAT | O_RDWR) == err
    assert k.fault.failed_site == site
    assert (files_snapshot(t.files), vfs_snapshot(k.vfs)) == before
    assert_ok(k, [t])


def test_enfile_beats_enoent(k: KernelState) -> None:
    """path_openat allocates the file before the walk, so ENFILE wins over ENOENT (fs/namei.c:3596-3598)."""
    make_task(k)
    t = make_task(k, pid=2, caps=0, uid=5)
    k.current = t
    k.vfs.max_files = 0
    assert _err(_open, k, t, "/missing") == errno.ENFILE


def test_emfile_beats_enoent(k: KernelState) -> None:
    """The fd is reserved before the walk, so EMFILE wins over ENOENT (fs/open.c:1144)."""
    t = make_task(k, nofile=0)
    assert _err(_open, k, t, "/missing") == errno.EMFILE


def test_f_flags_after_open(k: KernelState) -> None:
    """f_flags drop O_CREAT/O_EXCL/O_NOCTTY/O_TRUNC (fs/open.c:812); open(2)/openat(2) add O_LARGEFILE (include/linux/syscalls.h:1384-1385, fs/open.c:1174-1175)."""
    t = make_task(k)
    fd = ksys_open(k, t, "/tmp/z", O_CREAT | O_TRUNC | O_RDWR | O_APPEND, 0o600)
    f = fdget_raw(t, fd)
    assert f is not None and f.f_flags == O_RDWR | O_APPEND | O_LARGEFILE
    fd2 = sys_openat(k, t, AT_FDCWD, "/tmp/z", O_RDONLY, 0)
    f2 = fdget_raw(t, fd2)
    assert f2 is not None and f2.f_flags == O_LARGEFILE


def test_openat_dirfd(k: KernelState) -> None:
    """openat with a relative name starts at dirfd: EBADF for a bad fd (fs/namei.c:2338-2340), ENOTDIR for a file (2344-2346)."""
    t = make_task(k)
    dfd = _open(k, t, "/etc", O_RDONLY | O_DIRECTORY)
    ffd = _open(k, t, "/etc/hostname")
    fd = do_sys_open(k, t, dfd, "hostname", O_RDONLY, 0)
    assert ksys_read(k, t, fd, 100) == b"forklab\n"
    assert _err(do_sys_open, k, t, 42, "hostname", O_RDONLY, 0) == errno.EBADF
    assert _err(do_sys_open, k, t, ffd, "hostname", O_RDONLY, 0) == errno.ENOTDIR
    do_sys_open(k, t, 42, "/etc/hostname", O_RDONLY, 0)  # absolute: dirfd ignored
    assert_ok(k, [t])


def test_o_noatime_needs_owner(k: KernelState) -> None:
    """O_NOATIME on another user's file without CAP_FOWNER is EPERM (fs/namei.c:3062-3064)."""
    root = make_task(k)
    _open(k, root, "/tmp/r", O_CREAT | O_RDWR)
    user = make_task(k, pid=2, caps=0, uid=1000)
    assert _err(_open, k, user, "/tmp/r", O_RDONLY | O_NOATIME) == errno.EPERM
    _open(k, user, "/tmp/u", O_CREAT | O_RDWR | O_NOATIME)  # a new file is the caller's
    _open(k, root, "/tmp/u", O_RDONLY | O_NOATIME)


def test_o_path(k: KernelState) -> None:
    """O_PATH opens without access: FMODE_PATH, invisible to read (fdget EBADF) but usable by fchdir (fs/open.c:750-754, fs/file.c:747)."""
    t = make_task(k)
    fd = _open(k, t, "/tmp", O_PATH | O_RDWR | O_CREAT | O_TRUNC)
    f = fdget_raw(t, fd)
    assert f is not None and f.f_mode & FMODE_PATH
    assert _err(ksys_read, k, t, fd, 1) == errno.EBADF
    ksys_fchdir(k, t, fd)
    assert t.fs is not None and t.fs.pwd.dentry == "/tmp"
    assert _err(_open, k, t, "/nope", O_PATH) == errno.ENOENT
    assert _err(_open, k, t, "/etc/hostname", O_PATH | O_DIRECTORY) == errno.ENOTDIR


def test_chdir(k: KernelState) -> None:
    """chdir: ENOENT (fs/namei.c:1697), ENOTDIR (fs/namei.c:2261-2266); relative names then start at the cwd (fs/open.c:453-477)."""
    t = make_task(k)
    assert _err(ksys_chdir, k, t, "/nope") == errno.ENOENT
    assert _err(ksys_chdir, k, t, "/etc/hostname") == errno.ENOTDIR
    assert _err(ksys_chdir, k, t, "") == errno.ENOENT
    ksys_chdir(k, t, "/etc")
    fd = _open(k, t, "hostname")
    assert ksys_read(k, t, fd, 7) == b"forklab"
    ksys_chdir(k, t, "..")
    assert t.fs is not None and t.fs.pwd.dentry == "/"
    ksys_chdir(k, t, "tmp/./../dev")
    assert t.fs.pwd.dentry == "/dev"


def test_fchdir(k: KernelState) -> None:
    """fchdir: EBADF for a closed fd (fs/open.c:489-491), ENOTDIR for a file (493-495)."""
    t = make_task(k)
    ffd = _open(k, t, "/etc/hostname")
    assert _err(ksys_fchdir, k, t, 9) == errno.EBADF
    assert _err(ksys_fchdir, k, t, ffd) == errno.ENOTDIR
    dfd = _open(k, t, "/dev")
    ksys_fchdir(k, t, dfd)
    assert t.fs is not None and t.fs.pwd.dentry == "/dev"


def test_chroot(k: KernelState) -> None:
    """chroot: lookup errors first, then EPERM without CAP_SYS_CHROOT (fs/open.c:512-522); names resolve under the new root."""
    k.vfs.mkdir("/jail")
    k.vfs.mkdir("/jail/etc")
    k.vfs.create("/jail/etc/hostname").data[:] = b"jail"
    user = make_task(k, pid=2, caps=0, uid=1000)
    assert _err(ksys_chroot, k, user, "/nope") == errno.ENOENT
    assert _err(ksys_chroot, k, user, "/etc/hostname") == errno.ENOTDIR
    assert _err(ksys_chroot, k, user, "/jail") == errno.EPERM
    assert user.fs is not None and user.fs.root.dentry == "/"
    t = make_task(k)
    assert t.cred is not None and t.cred.user_ns is not None
    assert ns_capable(t, t.cred.user_ns, CAP_SYS_CHROOT)
    ksys_chroot(k, t, "/jail")
    assert t.fs is not None and t.fs.root.dentry == "/jail" and t.fs.pwd.dentry == "/"
    # the cwd is still outside: a relative open escapes, as on Linux
    assert ksys_read(k, t, _open(k, t, "etc/hostname"), 100) == b"forklab\n"
    assert ksys_read(k, t, _open(k, t, "/etc/hostname"), 100) == b"jail"
    assert ksys_read(k, t, _open(k, t, "/../../etc/hostname"), 100) == b"jail"
    ksys_chdir(k, t, "/")
    assert t.fs.pwd.dentry == "/jail"
    assert k.vfs.resolve(t, "../../etc") == "/jail/etc"
    assert _err(_open, k, t, "/tmp") == errno.ENOENT


def test_resolve_lexical(k: KernelState) -> None:
    """Vfs.resolve interprets a name under the task's root and cwd, clamping '..' at the root (fs/namei.c:1568)."""
    t = make_task(k)
    assert k.vfs.resolve(t, "/a//b/./c/..") == "/a/b"
    assert k.vfs.resolve(t, "../..") == "/"
    ksys_chdir(k, t, "/tmp")
    assert k.vfs.resolve(t, "x") == "/tmp/x"
