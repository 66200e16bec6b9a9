"""procps-ng's kill and ps and psmisc's pstree, as user programs reading the model through /proc.

``ps`` and ``pstree`` read each process's ``/proc/<pid>/stat`` and ``/proc/<pid>/status``
(a thread's ``/proc/<tgid>/task/<tid>/stat``) with ``os.read_proc``, as the calling task (so
inside a pid namespace they see its numbers); what they print is rendered by
forklab/views/process_list.py, the same code ``forklab ps``/``forklab pstree`` use, as
procps-ng 4 and psmisc 23 print it for the options they have.

The model has no getdents, so a program cannot list /proc (fs/proc/base.py lists it for the
kernel API, proc_listdir). ``scan`` probes ``/proc/<n>/stat`` for every n below pid_max (the
runner boots the default, 32768): a lookup that fails with ENOENT means no task has that
number. This is what readdir would list, plus thread ids, which ``/proc/<tid>`` also resolves
(proc_pid_lookup takes any task); the Tgid line of ``status`` sets them apart. It costs one
call per number, so a ``ps`` is about 32,768 live calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.runner.programs._common import (
    SIGNAL_NAMES,
    complain,
    put,
    say,
    signal_name,
    signal_number,
    strerror,
)
from forklab.uapi import O_RDONLY
from forklab.views.process_list import (
    COLUMNS,
    ProcEntry,
    PsContext,
    PsOptions,
    PstreeOptions,
    parse_entry,
    parse_passwd,
    processes,
    ps_parse,
    ps_render,
    pstree_parse,
    pstree_render,
)

if TYPE_CHECKING:
    from forklab.runner.libc import Libc

PID_MAX = 32768  # PID_MAX_DEFAULT (include/linux/threads.h:28), the pid_max forklab.run boots with
SIGTERM = 15


# --- kill ---------------------------------------------------------------------------------------

KILL_USAGE = ("\nUsage:\n kill [options] <pid> [...]\n\nOptions:\n <pid> [...]            send signal to every <pid> "
              "listed\n -<signal>, -s, --signal <signal>\n                        specify the <signal> to be sent\n"
              " -l, --list=[<signal>]  list all signal names, or convert one to a name\n\n"
              "For more details see kill(1).\n")


def kill_main(os: Libc, argv: list[str]) -> int:
    """kill [-s SIG | -SIG] PID... (a negative PID is a process group), kill -l [SIG]: procps-ng's kill."""
    prog = argv[0] if argv and argv[0] else "kill"  # procps names itself as invoked
    args = argv[1:]
    if args[:1] in (["-l"], ["--list"], ["-L"], ["--table"]):
        return _kill_list(os, prog, args[1:])
    sig, args, error = _kill_signal(args)
    if error:
        say(os, 2, f"{prog}: {error}\n{KILL_USAGE}")
        return 1
    if not args:
        say(os, 2, f"{prog}: not enough arguments\n{KILL_USAGE}")
        return 1
    status = 0
    for arg in args:
        status |= _kill_one(os, prog, arg, sig)
    return status


def _kill_signal(args: list[str]) -> tuple[int, list[str], str]:
    """The signal from -s SIG, --signal SIG, -SIG or -N (default SIGTERM), the remaining operands, or an error."""
    if not args:
        return SIGTERM, args, ""
    first = args[0]
    if first in ("-s", "--signal"):
        if len(args) < 2:
            return 0, [], f"option requires an argument -- '{first.lstrip('-')}'"
        sig = signal_number(args[1])
        return (sig, _after_dashes(args[2:]), "") if sig is not None else (0, [], f"unknown signal name {args[1]}")
    if first == "--":
        return SIGTERM, args[1:], ""
    if first.startswith("-") and len(first) > 1:
        sig = signal_number(first[1:])
        return (sig, _after_dashes(args[1:]), "") if sig is not None else (0, [], f"invalid argument {first[1]}")
    return SIGTERM, args, ""


def _after_dashes(args: list[str]) -> list[str]:
    """The operands, without one leading ``--``."""
    return args[1:] if args[:1] == ["--"] else args


def _kill_one(os: Libc, prog: str, arg: str, sig: int) -> int:
    """kill(2) one operand; 0, or 1 after printing procps' message."""
    try:
        pid = int(arg)
    except ValueError:
        say(os, 2, f"{prog}: failed to parse argument: '{arg}'\n{KILL_USAGE}")
        return 1
    try:
        os.kill(pid, sig)
    except OSError as e:
        complain(os, prog, f"({pid}): {strerror(e)}")
        return 1
    return 0


def _kill_list(os: Libc, prog: str, args: list[str]) -> int:
    """kill -l: every name, 16 to a line; kill -l SIG: the name of a number or the number of a name."""
    if not args:
        names = list(SIGNAL_NAMES)
        lines = [" ".join(names[i:i + 16]) for i in range(0, len(names), 16)]
        return put(os, prog, "\n".join(lines) + "\n")
    number = signal_number(args[0])
    if number is None:
        complain(os, prog, f"unknown signal name {args[0]}")
        return 1
    return put(os, prog, (signal_name(number) if args[0].isdigit() else str(number)) + "\n")


# --- reading /proc ------------------------------------------------------------------------------


def read_entry(os: Libc, tid: int) -> ProcEntry | None:
    """The task numbered ``tid`` in the caller's pid namespace, or None if there is none (ENOENT).

    A thread's counters come from its own ``/proc/<tgid>/task/<tid>/stat``, as procps reads them.
    """
    try:
        stat = os.read_proc(f"/proc/{tid}/stat").decode("utf-8", "surrogateescape")
        status = os.read_proc(f"/proc/{tid}/status").decode("utf-8", "surrogateescape")
        entry = parse_entry(tid, stat, status)
        if entry.tgid != tid:
            stat = os.read_proc(f"/proc/{entry.tgid}/task/{tid}/stat").decode("utf-8", "surrogateescape")
            entry = parse_entry(tid, stat, status)
    except FileNotFoundError:
        return None
    return entry


def scan(os: Libc) -> list[ProcEntry]:
    """Every task the caller's pid namespace numbers, in pid order (the probe stands in for readdir: module doc)."""
    entries = []
    for n in range(1, PID_MAX):
        entry = read_entry(os, n)
        if entry is not None:
            entries.append(entry)
    return entries


def _context(os: Libc) -> PsContext:
    """The clock and the user names of /etc/passwd (none when it cannot be read), for ps -f."""
    try:
        fd = os.open("/etc/passwd", O_RDONLY)
    except OSError:
        return PsContext(now_ns=os.time_ns())
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return PsContext(now_ns=os.time_ns(), users=parse_passwd(b"".join(chunks).decode("utf-8", "replace")))


# --- ps and pstree: the renderings are forklab/views/process_list.py's ---------------------------------------


def ps_main(os: Libc, argv: list[str]) -> int:
    """ps [-e|-A] [-L] [-f] [-p PID,...] [-o COL,...]: the process table from /proc (procps-ng's columns and STAT flags)."""
    opts = PsOptions()
    error = ps_parse(argv[1:], opts)
    if error:
        say(os, 2, f"error: {error}\n\nUsage:\n ps [options]\n\n forklab's ps has -e, -A, -L, -f, -p and -o "
                   f"({','.join(COLUMNS)})\n")
        return 1
    table = processes(scan(os))
    text, shown = ps_render(table, opts, table.get(os.getpid()), _context(os) if opts.full else None)
    failed = put(os, "ps", text)
    return 0 if shown and not failed else 1


def pstree_main(os: Libc, argv: list[str]) -> int:
    """pstree [-p] [-n] [-t] [-A|-U] [PID]: the process tree from /proc as psmisc draws it (ASCII without a UTF-8 locale)."""
    opts = PstreeOptions()
    error = pstree_parse(argv[1:], opts)
    if error:
        complain(os, "pstree", f"{error}\nUsage: pstree [-p] [-n] [-t] [-A|-U] [PID]")
        return 1
    return put(os, "pstree", pstree_render(processes(scan(os)), opts))


__all__ = ["COLUMNS", "PID_MAX", "ProcEntry", "kill_main", "parse_entry", "ps_main", "pstree_main", "read_entry",
           "scan"]
