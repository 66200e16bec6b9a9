"""strace lines of file and memory syscalls: the model's against a real strace capture of files.c, the same calls in C.

The capture (tests/data/trace/strace_files.txt) is ``strace -o`` of files.c on this machine; the model makes
the same calls through the Kernel API with a Recorder attached. Addresses are compared as ADDR, and the
buffer of the read that fails is NULL on the model (it has no user buffer, see forklab/views/strace.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from forklab import Kernel, Recorder
from forklab.include.linux.sched import Task
from forklab.uapi import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_GROWSDOWN,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NOFOLLOW,
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    SEEK_SET,
)
from forklab.views.strace import c_hex, c_octal, mmap_flags_text, open_flags_text, prot_text, quoted, strace_lines

DATA = Path(__file__).parent / "data" / "trace"
PATH = "/tmp/forklab-strace-files"
FIRST = f'unlink("{PATH}")'


def model_calls(k: Kernel, t: Task) -> None:
    """files.c's calls, in its order."""
    def fails(call: object) -> None:
        with pytest.raises(OSError):
            call()  # type: ignore[operator]

    fails(lambda: k.unlink(t, PATH))
    fd = k.open(t, PATH, O_RDWR | O_CREAT | O_TRUNC, 0o644)
    k.write(t, fd, b"hello\n")
    k.write(t, fd, b'tab\there "quoted" back\\slash \001\0027\377 end'[:33])  # files.c passes 33
    k.write(t, fd, b"0123456789abcdefghijklmnopqrstuvwxyzABCDEF")
    k.lseek(t, fd, 0, SEEK_SET)
    k.read(t, fd, 4)
    k.read(t, fd, 100)
    other = k.open(t, PATH, O_RDONLY | O_CLOEXEC)
    k.dup2(t, other, 10)
    k.close(t, other)
    k.close(t, 10)
    k.close(t, fd)
    fails(lambda: k.open(t, "/nonexistent/file", O_RDONLY))
    fails(lambda: k.read(t, 99, 1))
    p = k.mmap(t, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.mprotect(t, p, 4096, PROT_READ)
    k.munmap(t, p, 8192)
    k.unlink(t, PATH)


def normalised(lines: list[str]) -> list[str]:
    """From files.c's first call up to its exit, addresses as ADDR and the result column as one space."""
    start = next(i for i, line in enumerate(lines) if line.startswith(FIRST))
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("exit_group(")), len(lines))
    return [re.sub(r"\) +=", ") =", re.sub(r"0x[0-9a-f]{6,}", "ADDR", line)) for line in lines[start:end]]


def model_lines() -> list[str]:
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    for _ in range(3):  # stdin, stdout and stderr, as files.c's shell gave it
        k.open(t, "/dev/null", O_RDWR)
    rec = Recorder()
    k.listeners.append(rec)
    model_calls(k, t)
    return [line[6:] for line in strace_lines(rec.roots)]  # without the pid column


def test_the_model_prints_what_strace_printed_for_the_same_calls() -> None:
    want = normalised((DATA / "strace_files.txt").read_text().splitlines())
    want = [re.sub(r"^read\(99, ADDR,", "read(99, NULL,", line) for line in want]
    got = normalised(model_lines())
    assert got == want


def test_flags_decode_in_straces_order() -> None:
    """Captured from strace 6.1 on this machine (open and mmap of flag combinations that fail)."""
    assert open_flags_text(O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_CLOEXEC) == \
        "O_WRONLY|O_CREAT|O_EXCL|O_TRUNC|O_APPEND|O_CLOEXEC"
    assert open_flags_text(O_RDONLY | O_DIRECTORY | O_NOFOLLOW) == "O_RDONLY|O_NOFOLLOW|O_DIRECTORY"
    assert open_flags_text(O_RDWR | 0x80000000) == "O_RDWR|0x80000000"
    assert mmap_flags_text(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE | MAP_GROWSDOWN) == \
        "MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS|MAP_POPULATE|MAP_GROWSDOWN"
    assert mmap_flags_text(MAP_SHARED | MAP_ANONYMOUS) == "MAP_SHARED|MAP_ANONYMOUS"
    assert mmap_flags_text(0) == "MAP_FILE" and mmap_flags_text(3) == "MAP_SHARED_VALIDATE"
    assert prot_text(PROT_READ | PROT_WRITE | PROT_EXEC) == "PROT_READ|PROT_WRITE|PROT_EXEC"
    assert prot_text(PROT_NONE) == "PROT_NONE"


def test_pipe2_shows_the_fds_it_made_and_returns_zero() -> None:
    """As strace 6.1 printed pipe2(f, 0), pipe2(f, O_CLOEXEC | O_NONBLOCK) and pipe2(f, 1) here."""
    k = Kernel()
    t = k.find_task(k.fork(k.init_task))
    rec = Recorder()
    k.listeners.append(rec)
    r, w = k.pipe2(t, 0)
    r2, w2 = k.pipe2(t, O_CLOEXEC | O_NONBLOCK)
    with pytest.raises(OSError):
        k.pipe2(t, 1)
    lines = [re.sub(r"\) +=", ") =", line[6:]) for line in strace_lines(rec.roots)]
    assert lines == [f"pipe2([{r}, {w}], 0) = 0", f"pipe2([{r2}, {w2}], O_NONBLOCK|O_CLOEXEC) = 0",
                     "pipe2(NULL, 0x1 /* O_??? */) = -1 EINVAL (Invalid argument)"]


def test_buffers_are_quoted_as_strace_quotes_them() -> None:
    assert quoted(b"") == '""'
    assert quoted(b'a"b\\c\n\t\r\f\v') == '"a\\"b\\\\c\\n\\t\\r\\f\\v"'
    assert quoted(b"\x01\x027\x00") == '"\\1\\0027\\0"'  # three digits only before an octal digit
    assert quoted(b"x" * 40) == '"' + "x" * 32 + '"...'
    assert quoted(b"abc", 10) == '"abc"'  # the bytes the trace kept, the length the call gave
    assert (c_octal(0o644), c_octal(0), c_octal(5), c_hex(0), c_hex(4096)) == ("0644", "000", "005", "0", "0x1000")


@pytest.mark.skipif(shutil.which("strace") is None or shutil.which("cc") is None, reason="needs strace and cc")
def test_a_live_capture_agrees_with_the_stored_one(tmp_path: Path) -> None:
    exe = tmp_path / "files"
    subprocess.run(["cc", "-O0", "-o", str(exe), str(DATA / "files.c")], check=True, capture_output=True)
    out = tmp_path / "strace.txt"
    run = subprocess.run(["strace", "-o", str(out), str(exe)], capture_output=True, timeout=60)
    if run.returncode != 0 or not out.exists():
        pytest.skip(f"strace could not trace here: {run.stderr.decode(errors='replace').strip()[:200]}")
    assert normalised(out.read_text().splitlines()) == normalised((DATA / "strace_files.txt").read_text().splitlines())
