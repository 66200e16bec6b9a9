"""The model's binary format (fs/binfmt_elf.c): what ``load_elf_binary`` does around exec's point of no return.

The model has no ELF files: every non-empty executable regular file is a "model binary"
(``search_binary_handler``, forklab/fs/exec.py). ``load_model_binary`` runs the steps of
``load_elf_binary`` that fork, exit and signals can see -- ``flush_old_exec`` (the point of no
return), ``setup_new_exec``, ``install_exec_creds``, ``setup_arg_pages`` -- then writes the
initial stack (``create_tables``: argc, the argv and envp pointers, AT_NULL) and starts the
thread with no entry point. No program headers, mappings, brk, interpreter or auxv entries
beyond AT_NULL are modelled.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from forklab.arch.x86.kernel.process_64 import start_thread
from forklab.errors import kerr
from forklab.fs.exec import flush_old_exec, install_exec_creds, setup_arg_pages, setup_new_exec
from forklab.kernel.signal import force_sigsegv
from forklab.mm.uaccess import copy_to_user
from forklab.trace import traced
from forklab.uapi import RLIMIT_STACK, SIGSEGV

if TYPE_CHECKING:
    from forklab.fs.exec import Bprm
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

AT_NULL = 0  # include/uapi/linux/auxvec.h:9


@traced
def create_tables(k: KernelState, tsk: Task, bprm: Bprm) -> None:
    """The initial stack: argc, argv[], NULL, envp[], NULL, AT_NULL; sp at argc (fs/binfmt_elf.c:164-346, reduced)."""

    words = [bprm.argc, *bprm.argv_ptrs, 0, *bprm.envp_ptrs, 0, AT_NULL, 0]
    sp = ((bprm.p - 8 * len(words)) & ~15)
    raw = b"".join(w.to_bytes(8, "little") for w in words)
    if not copy_to_user(k, tsk, sp, raw):
        raise kerr(errno.EFAULT, "the initial stack could not be written", "fs/binfmt_elf.c:307")
    bprm.p = sp


@traced
def load_model_binary(k: KernelState, tsk: Task, bprm: Bprm) -> None:
    """The model's binfmt: what load_elf_binary does around the point of no return (fs/binfmt_elf.c:684-1190)."""
    flush_old_exec(k, tsk, bprm)
    try:
        setup_new_exec(k, tsk, bprm)
        install_exec_creds(k, tsk, bprm)
        setup_arg_pages(k, tsk, bprm)
        create_tables(k, tsk, bprm)
    except OSError:
        force_sigsegv(k, tsk, SIGSEGV)
        raise
    assert tsk.signal is not None
    tsk.signal.set_rlim(RLIMIT_STACK, bprm.rlim_stack)  # finalize_exec (fs/exec.c:1395-1402)
    start_thread(tsk, bprm.p)
