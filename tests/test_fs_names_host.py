"""unlink, mkdir, stat and getcwd errors on the model against the running kernel.

Each case names the roles of its path (an existing directory, a missing name, a regular file)
and runs on the model with the model's own such paths and on the host inside a fresh
temporary directory, and the two errnos must be the same. Skips where the host is not Linux.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from forklab import Kernel

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs the Linux kernel as the oracle")

# the roles a path component plays, as the model's boot filesystem has them
MODEL_ROLES = {"dir": "/tmp", "missing": "/nope", "file": "/etc/hostname"}
SYS_getcwd = 79  # arch/x86/entry/syscalls/syscall_64.tbl

CASES = [
    ("unlink", "{dir}"), ("unlink", "{missing}"), ("unlink", "{file}/"), ("unlink", "{missing}/x"),
    ("unlink", "{file}/x"), ("mkdir", "{dir}"), ("mkdir", "{file}"), ("mkdir", "{missing}/x"),
    ("mkdir", "{file}/x"), ("stat", "{missing}"), ("stat", "{file}/"), ("stat", "{file}/x"), ("stat", ""),
]


def _errno_of(call: Callable[[], object]) -> int:
    """The errno ``call`` fails with (the model's KernelError is an OSError), 0 if it succeeds."""
    try:
        call()
    except OSError as e:
        return e.errno or 0
    return 0


@pytest.fixture
def host_roles(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    return {"dir": str(tmp_path / "dir"), "missing": str(tmp_path / "nope"), "file": str(tmp_path / "file")}


@pytest.mark.parametrize(("call", "shape"), CASES)
def test_name_errors_match_the_host(call: str, shape: str, host_roles: dict[str, str]) -> None:
    k = Kernel()
    model = _errno_of(lambda: getattr(k, call)(k.init_task, shape.format(**MODEL_ROLES)))
    host_call = {"unlink": os.unlink, "mkdir": os.mkdir, "stat": os.stat}[call]
    host = _errno_of(lambda: host_call(shape.format(**host_roles)))
    assert host != 0 and model == host, f"{call}({shape!r}): model {errno.errorcode.get(model, model)}, " \
        f"host {errno.errorcode.get(host, host)}"


def _host_getcwd(size: int) -> int:
    """The raw getcwd(2) syscall with a buffer of ``size`` bytes: 0 on success, else the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(max(size, 1))
    ret = libc.syscall(SYS_getcwd, buf, ctypes.c_size_t(size))
    return 0 if ret >= 0 else ctypes.get_errno()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the getcwd syscall number is x86-64's")
def test_getcwd_needs_room_for_the_nul_on_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path's length is ERANGE, one more byte fits (fs/d_path.c:444), on the host and on the model."""
    monkeypatch.chdir(tmp_path)
    host_cwd = os.getcwd()
    k = Kernel()
    t = k.init_task
    k.mkdir(t, "/tmp/dir")
    k.chdir(t, "/tmp/dir")
    model_cwd = "/tmp/dir"
    for extra, want in ((0, errno.ERANGE), (1, 0)):
        host = _host_getcwd(len(host_cwd) + extra)
        model = _errno_of(lambda extra=extra: k.getcwd(t, len(model_cwd) + extra))
        assert host == model == want
