"""Consistency checks and snapshots for the files/fs part of the model (no kernel analogue).

``check_fs_invariants`` recounts every reference the model keeps and compares it with the
stored counts, the way a refcount leak detector would:

* each ``struct file``'s ``f_count`` equals the fd-table slots holding it (over the distinct
  files_structs of ``tasks``) plus references held elsewhere (``extra``: e.g. ``vma->vm_file``,
  an in-flight pidfd), keyed by ``id(file)``;
* each files_struct's ``count`` and fs_struct's ``users`` equal the tasks using it (plus
  ``extra`` for get_files_struct-style holders);
* each fd table is well formed: ``len(fd) == max_fds``, every slot holding a file is in
  ``open_fds``, no bit at or past ``max_fds``, and every fd below ``next_fd`` is open
  (the kernel's search-hint invariant, fs/file.c:491-517, 554-560). ``close_on_exec`` is
  *not* required to be a subset of ``open_fds``: the kernel leaves the bit of a closed fd
  set (see forklab.fs.file); only the bits of open fds are meaningful;
* ``vfs.nr_files`` equals the number of live files, every live file has ``f_count > 0`` and
  every file found in a table is live (allocated by ``alloc_empty_file``, not yet freed);
* the anon inode's ``i_count`` is 1 (its own) plus one per live anon file;
* ``mm->exe_file`` holds a file reference (set by exec, copied by dup_mmap): each distinct mm
  of ``tasks`` counts one reference to its exe_file, in addition to ``extra``;
* every pipe's ``readers``/``writers``/``files`` equal the live struct files on it open for
  reading/writing/at all (fs/pipe.c:699-737), its ring holds at most ``max_usage`` non-empty
  buffers that fit in a page, and a pipe with files left is still attached to its inode.

The snapshots are hashable values for "nothing changed" assertions around a failed call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from forklab.include.linux.fdtable import FMODE_OPENED, FMODE_READ, FMODE_WRITE, File, FilesStruct, Inode
from forklab.include.linux.fs_struct import FsStruct
from forklab.uapi import PAGE_SIZE

if TYPE_CHECKING:
    from forklab.fs.vfs import Vfs
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

Snapshot = tuple[object, ...]


def check_fs_invariants(k: KernelState, tasks: Iterable[Task], extra: Mapping[int, int] | None = None) -> list[str]:
    """Every broken files/fs invariant among ``tasks``, as sentences; empty when all hold.

    ``extra`` maps ``id(obj)`` (a File, FilesStruct or FsStruct) to references held outside
    task pointers and fd tables.
    """
    extra = dict(extra or {})
    errors: list[str] = []
    mms = {id(t.mm): t.mm for t in tasks if t.mm is not None}
    for mm in mms.values():
        if mm.exe_file is not None:
            extra[id(mm.exe_file)] = extra.get(id(mm.exe_file), 0) + 1
    files_users: dict[int, tuple[FilesStruct, int]] = {}
    fs_users: dict[int, tuple[FsStruct, int]] = {}
    for t in tasks:
        if t.files is not None:
            fs_obj, n = files_users.get(id(t.files), (t.files, 0))
            files_users[id(t.files)] = (fs_obj, n + 1)
        if t.fs is not None:
            fso, m = fs_users.get(id(t.fs), (t.fs, 0))
            fs_users[id(t.fs)] = (fso, m + 1)
    for key, (files, n) in files_users.items():
        want = n + extra.get(key, 0)
        if files.count != want:
            errors.append(f"files_struct {key:#x}: count {files.count} but {want} users")
    for key, (fs, m) in fs_users.items():
        want = m + extra.get(key, 0)
        if fs.users != want:
            errors.append(f"fs_struct {key:#x}: users {fs.users} but {want} users")
        if fs.in_exec not in (0, 1):
            errors.append(f"fs_struct {key:#x}: in_exec {fs.in_exec}")
    slots: dict[int, tuple[File, int]] = {}
    for key, (files, _) in files_users.items():
        errors.extend(_check_fdtable(key, files))
        for f in files.fdt.fd:
            if f is not None:
                fobj, c = slots.get(id(f), (f, 0))
                slots[id(f)] = (fobj, c + 1)
    vfs: Vfs = k.vfs
    for key, (f, c) in slots.items():
        want = c + extra.get(key, 0)
        if f.f_count != want:
            errors.append(f"{f!r}: f_count {f.f_count} but {c} fd slots + {extra.get(key, 0)} other references")
        if key not in vfs.files:
            errors.append(f"{f!r} is installed in an fd table but is not a live file (freed or never counted)")
    for key, f in vfs.files.items():
        if f.f_count <= 0:
            errors.append(f"{f!r}: live file with f_count {f.f_count}")
        if key not in slots and f.f_count != extra.get(key, 0):
            errors.append(f"{f!r}: f_count {f.f_count} but in no fd table and {extra.get(key, 0)} other references")
    if vfs.nr_files != len(vfs.files):
        errors.append(f"nr_files {vfs.nr_files} but {len(vfs.files)} live files")
    if vfs.nr_files < 0:
        errors.append(f"nr_files is negative: {vfs.nr_files}")
    n_anon = sum(1 for f in vfs.files.values() if f.f_inode is vfs.anon_inode and f.f_mode & FMODE_OPENED)
    if vfs.anon_inode.i_count != 1 + n_anon:
        errors.append(f"anon inode i_count {vfs.anon_inode.i_count} but {n_anon} anon files")
    errors.extend(_check_pipes(vfs))
    return errors


def _check_pipes(vfs: Vfs) -> list[str]:
    """Pipe counts against the live files on each pipe inode, and the ring's shape (fs/pipe.c:699-737)."""

    errors: list[str] = []
    by_inode: dict[int, tuple[Inode, list[File]]] = {}
    for f in vfs.files.values():
        if f.f_inode.kind == "pipe":
            by_inode.setdefault(id(f.f_inode), (f.f_inode, []))[1].append(f)
    for inode, files in by_inode.values():
        pipe = inode.pipe
        if pipe is None:
            errors.append(f"{inode.name}: {len(files)} live files but the pipe was freed")
            continue
        readers = sum(1 for f in files if f.f_mode & FMODE_READ)
        writers = sum(1 for f in files if f.f_mode & FMODE_WRITE)
        if (pipe.readers, pipe.writers, pipe.files) != (readers, writers, len(files)):
            errors.append(f"{inode.name}: readers/writers/files {pipe.readers}/{pipe.writers}/{pipe.files} "
                          f"but {readers}/{writers}/{len(files)} live files")
        if len(pipe.bufs) > pipe.max_usage:
            errors.append(f"{inode.name}: {len(pipe.bufs)} buffers in a ring of {pipe.max_usage}")
        for buf in pipe.bufs:
            if not buf.data or buf.offset + len(buf.data) > PAGE_SIZE:
                errors.append(f"{inode.name}: buffer offset {buf.offset} len {len(buf.data)} is empty or overflows its page")
    return errors


def _check_fdtable(key: int, files: FilesStruct) -> list[str]:
    """Shape and bitmap checks of one fd table (include/linux/fdtable.h:27-34, fs/file.c:491-517)."""
    errors: list[str] = []
    fdt = files.fdt
    where = f"files_struct {key:#x}"
    if len(fdt.fd) != fdt.max_fds:
        errors.append(f"{where}: fd array has {len(fdt.fd)} slots but max_fds {fdt.max_fds}")
    for fd, f in enumerate(fdt.fd):
        if f is not None and fd not in fdt.open_fds:
            errors.append(f"{where}: fd {fd} holds {f!r} but is not in open_fds")
    for name, bits in (("open_fds", fdt.open_fds), ("close_on_exec", fdt.close_on_exec)):
        bad = sorted(fd for fd in bits if fd < 0 or fd >= fdt.max_fds)
        if bad:
            errors.append(f"{where}: {name} has fds {bad} outside [0, {fdt.max_fds})")
    below = [fd for fd in range(min(files.next_fd, fdt.max_fds)) if fd not in fdt.open_fds]
    if below:
        errors.append(f"{where}: next_fd {files.next_fd} but fds {below[:8]} below it are free")
    if files.count <= 0:
        errors.append(f"{where}: count {files.count} while in use")
    return errors


def files_snapshot(files: FilesStruct | None) -> Snapshot:
    """A hashable picture of an fd table: count, size, and per open fd its file, cloexec bit and file state."""
    if files is None:
        return ("no files",)
    fdt = files.fdt
    fds = tuple(
        (fd, id(f) if f is not None else None, fd in fdt.close_on_exec,
         (f.f_count, f.f_pos, f.f_flags, f.f_mode) if f is not None else None)
        for fd in sorted(fdt.open_fds) for f in (fdt.fd[fd] if fd < fdt.max_fds else None,)
    )
    return (files.count, files.next_fd, fdt.max_fds, fds)


def fs_snapshot(fs: FsStruct | None) -> Snapshot:
    """A hashable picture of an fs_struct (include/linux/fs_struct.h:9-16)."""
    if fs is None:
        return ("no fs",)
    return (fs.users, fs.umask, fs.in_exec, fs.root, fs.pwd)


def vfs_snapshot(vfs: Vfs) -> Snapshot:
    """A hashable picture of the tree (paths, inode numbers, modes, contents) and the file counter."""
    tree = tuple((p, i.i_ino, i.i_mode, i.i_uid, bytes(i.data)) for p, i in sorted(vfs.inodes.items()))
    return (vfs.nr_files, vfs.next_ino, vfs.anon_inode.i_count, tree)
