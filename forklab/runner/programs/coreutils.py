"""GNU coreutils' true, false, echo, cat, wc and sleep, as user programs ``prog(os, argv) -> status``.

Each reads and writes only through its ``os`` (read(2), write(2), open(2), lseek(2)) and
prints what coreutils 9 prints, messages included, for the options it has (listed in each
docstring); any other option is refused as coreutils refuses an unknown one (status 1).

One stand-in, kept from before the model had fstat(2):

* ``wc`` sizes its inputs with lseek(2) (SEEK_END, then back) where coreutils uses fstat(2),
  which the model has not: a file that seeks to its end counts as regular, so ``/dev/null``
  (a character device, which seeks) gets the width of a regular file, where coreutils gives 7.

``sleep`` sleeps on the model's clock: it adds up its operands as coreutils does and calls
gnulib's xnanosleep, glibc's nanosleep (clock_nanosleep(CLOCK_REALTIME, 0)) again after each
interruption. The model's time passes while it sleeps when every task sleeps (the runner
fires the next timer), so output of other processes interleaves as the interval implies.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forklab.runner.programs._common import CHUNK, complain, put, say, strerror, write_all
from forklab.uapi import O_RDONLY, SEEK_CUR, SEEK_END, SEEK_SET

if TYPE_CHECKING:
    from forklab.runner.libc import Libc


def _name(argv: list[str], default: str) -> str:
    """The name a tool reports itself by: argv[0] as it was invoked (coreutils' program_name)."""
    return argv[0] if argv and argv[0] else default


def true_main(os: Libc, argv: list[str]) -> int:
    """true: exit 0, ignoring the arguments."""
    return 0


def false_main(os: Libc, argv: list[str]) -> int:
    """false: exit 1, ignoring the arguments."""
    return 1


# --- echo ---------------------------------------------------------------------------------------

_ESCAPES = {"\\": "\\", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def echo_main(os: Libc, argv: list[str]) -> int:
    """echo [-neE] [STRING]...: the strings, space separated, and a newline unless -n; -e reads backslash escapes."""
    args = argv[1:]
    newline, escapes = True, False
    while args and len(args[0]) > 1 and args[0][0] == "-" and set(args[0][1:]) <= set("neE"):
        for flag in args.pop(0)[1:]:
            newline = newline and flag != "n"
            escapes = flag == "e" if flag in "eE" else escapes
    text = " ".join(args)
    if escapes:
        text, stop = _unescape(text)
        newline = newline and not stop
    return put(os, _name(argv, "echo"), text + ("\n" if newline else ""))


def _unescape(text: str) -> tuple[str, bool]:
    """echo -e's escapes (\\n, \\t, \\0NNN, \\xHH, ...); True with the text before a \\c, which ends the output."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c != "\\" or not nxt:
            out.append(c)
            i += 1
        elif nxt == "c":
            return "".join(out), True
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "0x":
            char, i = _numeric_escape(text, i + 2, nxt)
            out.append(char)
        else:
            out.append(c + nxt)
            i += 2
    return "".join(out), False


def _numeric_escape(text: str, start: int, kind: str) -> tuple[str, int]:
    """The character of \\0NNN (up to 3 octal digits) or \\xHH (1-2 hex digits) at ``start``, and the next index."""
    digits, base, most = ("01234567", 8, 3) if kind == "0" else ("0123456789abcdefABCDEF", 16, 2)
    end = start
    while end < len(text) and end - start < most and text[end] in digits:
        end += 1
    if kind == "x" and end == start:
        return "\\x", start  # no hex digit: printed as it is
    return chr(int(text[start:end] or "0", base) & 0xFF), end


# --- cat ----------------------------------------------------------------------------------------


def cat_main(os: Libc, argv: list[str]) -> int:
    """cat [-u] [FILE]...: copy each FILE (``-`` or none: standard input) to standard output."""
    prog = _name(argv, "cat")
    names, error = _operands(prog, argv, "u")
    if error:
        say(os, 2, error)
        return 1
    status = 0
    for name in names or ["-"]:
        if not _cat_one(os, prog, name):
            status = 1
    return status


def _operands(prog: str, argv: list[str], flags: str) -> tuple[list[str], str]:
    """The file operands, skipping the options in ``flags``; or coreutils' message for the first unknown one."""
    names: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            names.extend(args)
        elif arg.startswith("-") and arg != "-":
            unknown = [c for c in arg[1:] if c not in flags]
            if unknown:
                return [], f"{prog}: invalid option -- '{unknown[0]}'\nTry '{prog} --help' for more information.\n"
        else:
            names.append(arg)
    return names, ""


def _open_input(os: Libc, prog: str, name: str) -> int | None:
    """fd 0 for ``-``, else the file opened read-only; None after printing why it cannot be opened."""
    try:
        return 0 if name == "-" else os.open(name, O_RDONLY)
    except OSError as e:
        complain(os, prog, f"{name}: {strerror(e)}")
        return None


def _cat_one(os: Libc, prog: str, name: str) -> bool:
    """Copy one input to fd 1; False after printing why it failed."""
    fd = _open_input(os, prog, name)
    if fd is None:
        return False
    try:
        while chunk := os.read(fd, CHUNK):
            if not write_all(os, 1, chunk):
                complain(os, prog, "write error")
                return False
    except OSError as e:
        complain(os, prog, f"{name}: {strerror(e)}")
        return False
    finally:
        if fd != 0:
            os.close(fd)
    return True


# --- wc -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Counts:
    """One input's counts; ``failed``: it did not open; ``read_error``: a read failed (its counts still print);
    ``size``: its size if it is a regular file (None: a pipe, a directory)."""

    lines: int = 0
    words: int = 0
    chars: int = 0
    nbytes: int = 0
    failed: bool = False
    read_error: bool = False
    size: int | None = None

    def add(self, other: _Counts) -> None:
        """Add ``other``'s counts into these (the total line)."""
        self.lines += other.lines
        self.words += other.words
        self.chars += other.chars
        self.nbytes += other.nbytes


_WC_FLAGS = {"l": "lines", "w": "words", "m": "chars", "c": "nbytes"}  # printed in this order
_SPACE = frozenset(b" \t\n\v\f\r")


def wc_main(os: Libc, argv: list[str]) -> int:
    """wc [-clmw] [FILE]...: newline, word, character and byte counts (C locale), with a total for several files."""
    prog = _name(argv, "wc")
    names, error = _operands(prog, argv, "".join(_WC_FLAGS))
    if error:
        say(os, 2, error)
        return 1
    options = "".join(a[1:] for a in argv[1:argv.index("--") if "--" in argv else len(argv)]
                      if a.startswith("-") and a != "-")
    fields = [field for flag, field in _WC_FLAGS.items() if flag in options] or ["lines", "words", "nbytes"]
    inputs = names or ["-"]
    counts = [_wc_one(os, prog, name) for name in inputs]
    width = _number_width(counts, single=len(inputs) == 1 and len(fields) == 1)
    lines = [_wc_line(c, fields, width, name if names else "") for name, c in zip(inputs, counts, strict=True)
             if not c.failed]
    if len(inputs) > 1:
        total = _Counts()
        for c in counts:
            total.add(c)
        lines.append(_wc_line(total, fields, width, "total"))
    failed = put(os, prog, "".join(lines))
    return 1 if failed or any(c.failed or c.read_error for c in counts) else 0


def _wc_one(os: Libc, prog: str, name: str) -> _Counts:
    """Open, size (by lseek, where coreutils uses fstat) and count one input; report its errors.

    A read error (a directory: EISDIR) still prints the counts so far, as coreutils does.
    """
    c = _Counts()
    fd = _open_input(os, prog, name)
    if fd is None:
        c.failed = True
        return c
    try:
        c.size = _size(os, fd)
        _wc_counts(os, fd, c)
    except OSError as e:
        complain(os, prog, f"{name}: {strerror(e)}")
        c.read_error = True
    finally:
        if fd != 0:
            os.close(fd)
    return c


def _size(os: Libc, fd: int) -> int | None:
    """The bytes from the offset to the end, by lseek(SEEK_END) and back; None if it cannot say.

    A pipe cannot seek (ESPIPE) and a directory cannot seek to its end (EINVAL,
    dcache_dir_lseek): neither is a regular file, so coreutils would not count its size either.
    """
    try:
        here = os.lseek(fd, 0, SEEK_CUR)
        end = os.lseek(fd, 0, SEEK_END)
    except OSError as e:
        if e.errno in (errno.ESPIPE, errno.EINVAL):
            return None
        raise
    os.lseek(fd, here, SEEK_SET)
    return end - here


def _wc_counts(os: Libc, fd: int, c: _Counts) -> None:
    """Read ``fd`` to its end, counting newlines, words (runs of non-space bytes), characters and bytes."""
    in_word = False
    while chunk := os.read(fd, CHUNK):
        c.nbytes += len(chunk)
        c.chars += len(chunk)  # the C locale: one byte, one character
        c.lines += chunk.count(b"\n")
        for byte in chunk:
            space = byte in _SPACE
            if not space and not in_word:
                c.words += 1
            in_word = not space


def _number_width(counts: list[_Counts], single: bool) -> int:
    """coreutils' compute_number_width: digits of the regular inputs' total size, at least 7 if one is a pipe."""
    if single or counts[0].failed:
        return 1
    minimum, total = 1, 0
    for c in counts:
        if c.failed:
            continue
        if c.size is None:
            minimum = 7
        else:
            total += c.size
    return max(len(str(total)), minimum)


def _wc_line(c: _Counts, fields: list[str], width: int, name: str) -> str:
    """One output line: the chosen counts right-aligned to ``width``, then the name if there is one."""
    numbers = " ".join(f"{getattr(c, field):>{width}}" for field in fields)
    return f"{numbers} {name}\n" if name else f"{numbers}\n"


# --- sleep --------------------------------------------------------------------------------------

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
TIME_T_MAX = 2**63 - 1  # TYPE_MAXIMUM (time_t) on x86-64
NSEC = 1_000_000_000


def sleep_main(os: Libc, argv: list[str]) -> int:
    """sleep NUMBER[smhd]...: checks its operands, then nanosleep(2) for their sum, again after an interruption."""
    prog = _name(argv, "sleep")
    operands = argv[1:]
    if not operands:
        complain(os, prog, f"missing operand\nTry '{prog} --help' for more information.")
        return 1
    seconds = 0.0
    for arg in operands:
        value = _interval(arg)
        if value is None:
            complain(os, prog, f"invalid time interval '{arg}'\nTry '{prog} --help' for more information.")
            return 1
        seconds += value
    sec, nsec = _timespec(seconds)
    while True:  # xnanosleep (gnulib lib/xnanosleep.c): the whole interval again after EINTR
        try:
            os.nanosleep(sec, nsec)
            return 0
        except InterruptedError:
            continue


def _timespec(seconds: float) -> tuple[int, int]:
    """dtotimespec (gnulib): seconds as (s, ns), rounded up to the next ns and capped at the largest time_t."""
    if seconds >= TIME_T_MAX:
        return TIME_T_MAX, NSEC - 1
    whole = int(seconds)
    nsec = -int(-(seconds - whole) * NSEC // 1)
    return (whole + 1, 0) if nsec >= NSEC else (whole, nsec)


def _interval(arg: str) -> float | None:
    """Seconds for ``1.5``, ``2m``, ``inf``; None for anything coreutils' sleep refuses."""
    number, unit = (arg[:-1], arg[-1]) if arg and arg[-1] in "smhd" else (arg, "")
    try:
        value = float(number)
    except ValueError:
        return None
    if value < 0 or value != value or not number or number.strip() != number:
        return None
    return value * _UNITS[unit]


__all__ = ["cat_main", "echo_main", "false_main", "sleep_main", "true_main", "wc_main"]
