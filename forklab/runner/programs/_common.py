"""What the standard programs share: whole writes and reads, error lines, and the signal tables.

These are user-space helpers (libc's stdio and strsignal, procps' signal table), built only
on the ``os`` a program receives: they make calls, never kernel rules.
"""

from __future__ import annotations

import errno as _errno
import os as _host_os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forklab.runner.libc import Libc

CHUNK = 128 * 1024  # coreutils' IO_BUFSIZE: the read size of cat and wc

# the kernel's signal numbers and procps' names for them (kill -l), x86-64
SIGNAL_NAMES = ("HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
                "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
                "VTALRM", "PROF", "WINCH", "POLL", "PWR", "SYS")
SIGNAL_ALIASES = {"IO": 29, "IOT": 6, "CLD": 17}
# glibc's strsignal() texts (string/siglist.h), which dash prints for a job a signal killed
SIGNAL_TEXTS = ("Hangup", "Interrupt", "Quit", "Illegal instruction", "Trace/breakpoint trap", "Aborted",
                "Bus error", "Floating point exception", "Killed", "User defined signal 1", "Segmentation fault",
                "User defined signal 2", "Broken pipe", "Alarm clock", "Terminated", "Stack fault", "Child exited",
                "Continued", "Stopped (signal)", "Stopped", "Stopped (tty input)", "Stopped (tty output)",
                "Urgent I/O condition", "CPU time limit exceeded", "File size limit exceeded",
                "Virtual timer expired", "Profiling timer expired", "Window changed", "I/O possible",
                "Power failure", "Bad system call")
SIGRTMIN, SIGRTMAX = 34, 64  # glibc's user-visible real-time range (two are kept for NPTL)


def write_all(os: Libc, fd: int, data: bytes) -> bool:
    """write(2) until all of ``data`` is written; False if a write fails (EPIPE, EBADF, ...)."""
    view = data
    while view:
        try:
            n = os.write(fd, view)
        except OSError:
            return False
        if n <= 0:
            return False
        view = view[n:]
    return True


def put(os: Libc, prog: str, text: str) -> int:
    """Write ``text`` to standard output in full: 0, or 1 after coreutils' ``prog: write error: ...``."""
    data = text.encode("utf-8", "surrogateescape")
    while data:
        try:
            n = os.write(1, data)
        except OSError as e:
            complain(os, prog, f"write error: {strerror(e)}")
            return 1
        data = data[n:]
    return 0


def read_all(os: Libc, fd: int) -> bytes:
    """read(2) ``fd`` until end of file; OSError as read raises it."""
    chunks = []
    while chunk := os.read(fd, CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def say(os: Libc, fd: int, text: str) -> bool:
    """Write ``text`` (UTF-8, surrogates kept as bytes) to ``fd`` in full."""
    return write_all(os, fd, text.encode("utf-8", "surrogateescape"))


def complain(os: Libc, prog: str, message: str) -> None:
    """``prog: message`` on standard error, as every tool reports a failure."""
    say(os, 2, f"{prog}: {message}\n")


def strerror(e: OSError) -> str:
    """The C library's text for ``e``'s errno (``No such file or directory``), not the model's rule."""
    return _host_os.strerror(e.errno) if e.errno else str(e)


def is_enoent(e: OSError) -> bool:
    """ENOENT or ENOTDIR: the name is not there."""
    return e.errno in (_errno.ENOENT, _errno.ENOTDIR)


def signal_number(name: str) -> int | None:
    """A signal from ``9``, ``KILL``, ``SIGKILL``, ``kill`` or ``RTMIN+1``; None if it names none."""
    if name.isascii() and name.isdigit():
        number = int(name)
        return number if 0 <= number <= SIGRTMAX else None
    upper = name.upper()
    upper = upper[3:] if upper.startswith("SIG") else upper
    if upper in SIGNAL_NAMES:
        return SIGNAL_NAMES.index(upper) + 1
    if upper in SIGNAL_ALIASES:
        return SIGNAL_ALIASES[upper]
    return _realtime(upper)


def _realtime(name: str) -> int | None:
    """RTMIN, RTMIN+n, RTMAX, RTMAX-n as glibc numbers them; None otherwise."""
    for base, sign, number in (("RTMIN", "+", SIGRTMIN), ("RTMAX", "-", SIGRTMAX)):
        if name == base:
            return number
        if name.startswith(base + sign) and name[len(base) + 1:].isdigit():
            value = number + int(name[len(base) + 1:]) * (1 if sign == "+" else -1)
            return value if SIGRTMIN <= value <= SIGRTMAX else None
    return None


def signal_name(number: int) -> str:
    """procps' name of a signal: ``KILL``, ``RTMIN+2``, or the number itself."""
    if 1 <= number <= len(SIGNAL_NAMES):
        return SIGNAL_NAMES[number - 1]
    if SIGRTMIN <= number <= SIGRTMAX:
        return "RTMIN" if number == SIGRTMIN else f"RTMIN+{number - SIGRTMIN}"
    return str(number)


def signal_text(number: int) -> str:
    """strsignal(number): ``Killed``, ``Real-time signal 2``, ``Unknown signal 99``."""
    if 1 <= number <= len(SIGNAL_TEXTS):
        return SIGNAL_TEXTS[number - 1]
    if SIGRTMIN <= number <= SIGRTMAX:
        return f"Real-time signal {number - SIGRTMIN}"
    return f"Unknown signal {number}"


def exit_code(status: int) -> int:
    """A wait status as a shell's ``$?``: the exit status, or 128 plus the killing signal."""
    if status & 0x7F == 0:
        return (status >> 8) & 0xFF
    if status & 0xFF == 0x7F:
        return 128 + ((status >> 8) & 0xFF)  # stopped: as dash reports a stopped job
    return 128 + (status & 0x7F)


__all__ = ["CHUNK", "SIGNAL_NAMES", "complain", "exit_code", "is_enoent", "put", "read_all", "say", "signal_name",
           "signal_number", "signal_text", "strerror", "write_all"]
