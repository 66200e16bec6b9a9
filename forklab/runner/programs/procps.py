"""procps-ng's kill and ps and psmisc's pstree, as user programs reading the model through /proc.

``ps`` and ``pstree`` read each process's ``/proc/<pid>/stat`` and ``/proc/<pid>/status``
with ``os.read_proc``, as the calling task (so inside a pid namespace they see its numbers),
and print what procps-ng 4 and psmisc 23 print for the options they have.

The model's VFS mounts no procfs, and the model has no readdir of ``/proc``
(proc_pid_readdir, fs/proc/base.c:3399), so a program cannot list the pids. Until the
kernel model has that view, ``scan`` probes ``/proc/<n>/stat`` for every n below pid_max
(the runner boots the default, 32768): a lookup that fails with ENOENT means no task has
that number. This is what readdir would list, plus thread ids, which ``/proc/<tid>`` also
resolves (proc_pid_lookup takes any task); the Tgid line of ``status`` sets them apart.
It costs one call per number, so a ``ps`` is about 32,768 live calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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

if TYPE_CHECKING:
    from forklab.runner.libc import Libc

PID_MAX = 32768  # PID_MAX_DEFAULT (include/linux/threads.h:28), the pid_max forklab.run boots with
USER_HZ = 100  # the clock_t unit of /proc/<pid>/stat's times (include/asm-generic/param.h)
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


@dataclass(slots=True)
class ProcEntry:
    """One task as /proc/<tid>/stat and status show it (the fields ps and pstree print)."""

    tid: int
    tgid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int
    tty: int
    tpgid: int
    ticks: int
    nice: int
    threads: int
    uid: int
    locked: bool
    children: list[ProcEntry] = field(default_factory=list)
    lwps: list[ProcEntry] = field(default_factory=list)


def read_entry(os: Libc, tid: int) -> ProcEntry | None:
    """The task numbered ``tid`` in the caller's pid namespace, or None if there is none (ENOENT)."""
    try:
        stat = os.read_proc(f"/proc/{tid}/stat").decode("utf-8", "surrogateescape")
        status = os.read_proc(f"/proc/{tid}/status").decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    return parse_entry(tid, stat, status)


def parse_entry(tid: int, stat: str, status: str) -> ProcEntry:
    """A ProcEntry from the two files' text: comm is between the first ``(`` and the last ``)``, as procps reads it."""
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    f = stat[stat.rindex(")") + 2:].split()  # f[0] is field 3 (state)
    lines = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid_fields = lines.get("Uid", "0 0").split()
    return ProcEntry(tid=tid, tgid=int(lines.get("Tgid", str(tid)).strip()), comm=comm, state=f[0], ppid=int(f[1]),
                     pgrp=int(f[2]), session=int(f[3]), tty=int(f[4]), tpgid=int(f[5]), ticks=int(f[11]) + int(f[12]),
                     nice=int(f[16]), threads=int(f[17]), uid=int(uid_fields[1]),
                     locked=lines.get("VmLck", "0").split()[:1] not in ([], ["0"]))


def scan(os: Libc) -> list[ProcEntry]:
    """Every task the caller's pid namespace numbers, in pid order (the probe stands in for readdir: module doc)."""
    entries = []
    for n in range(1, PID_MAX):
        entry = read_entry(os, n)
        if entry is not None:
            entries.append(entry)
    return entries


def processes(entries: Iterable[ProcEntry]) -> dict[int, ProcEntry]:
    """The thread-group leaders by pid, each with its threads (itself first) in ``lwps``."""
    leaders = {e.tid: e for e in entries if e.tid == e.tgid}
    for e in entries:
        leader = leaders.get(e.tgid)
        if leader is not None:
            leader.lwps.append(e)
    return leaders


# --- ps -----------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Column:
    """A ps output column: its header, width, alignment and value."""

    header: str
    width: int
    left: bool
    value: Callable[[ProcEntry, ProcEntry], str]  # (the process, the thread shown) -> text


def _ps_time(ticks: int) -> str:
    """Cumulative CPU time as [DD-]HH:MM:SS."""
    seconds = ticks // USER_HZ
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _stat_flags(p: ProcEntry) -> str:
    """procps' STAT: the state letter, then <N (nice), L (locked pages), s (session leader), l (threads), + (fg)."""
    text = p.state
    text += "<" if p.nice < 0 else "N" if p.nice > 0 else ""
    text += "L" if p.locked else ""
    text += "s" if p.session == p.tgid else ""
    text += "l" if p.threads > 1 else ""
    text += "+" if p.tpgid == p.pgrp else ""
    return text


def _tty(p: ProcEntry) -> str:
    """The controlling terminal's name; the model has no tty, so every process shows ``?``."""
    return "?" if p.tty == 0 else f"{p.tty >> 8}:{p.tty & 0xFF}"


COLUMNS: dict[str, Column] = {
    "pid": Column("PID", 5, False, lambda p, t: str(p.tgid)),
    "ppid": Column("PPID", 5, False, lambda p, t: str(p.ppid)),
    "pgid": Column("PGID", 5, False, lambda p, t: str(p.pgrp)),
    "sid": Column("SID", 5, False, lambda p, t: str(p.session)),
    "tid": Column("TID", 5, False, lambda p, t: str(t.tid)),
    "lwp": Column("LWP", 5, False, lambda p, t: str(t.tid)),
    "nlwp": Column("NLWP", 4, False, lambda p, t: str(p.threads)),
    "stat": Column("STAT", 4, True, lambda p, t: _stat_flags(t)),
    "s": Column("S", 1, True, lambda p, t: t.state),
    "state": Column("S", 1, True, lambda p, t: t.state),
    "ni": Column("NI", 3, False, lambda p, t: str(t.nice)),
    "uid": Column("UID", 5, False, lambda p, t: str(p.uid)),
    "tty": Column("TT", 8, True, lambda p, t: _tty(p)),
    "time": Column("TIME", 8, False, lambda p, t: _ps_time(t.ticks)),
    "comm": Column("COMMAND", 15, True, lambda p, t: t.comm),
    "ucmd": Column("CMD", 15, True, lambda p, t: t.comm),
}
DEFAULT_FORMAT = ("pid", "tty", "time", "ucmd")
THREAD_FORMAT = ("pid", "lwp", "tty", "time", "ucmd")
_DEFAULT_HEADERS = {"tty": "TTY"}  # the default format's header for tty is TTY, -o tty's is TT


@dataclass(slots=True)
class PsOptions:
    """What ps was asked: every process (-e/-A), threads (-L), a pid list (-p), an output format (-o)."""

    every: bool = False
    threads: bool = False
    pids: list[int] = field(default_factory=list)
    fmt: list[str] = field(default_factory=list)


def ps_main(os: Libc, argv: list[str]) -> int:
    """ps [-e|-A] [-L] [-p PID,...] [-o COL,...]: the process table from /proc (procps-ng's columns and STAT flags)."""
    opts = PsOptions()
    error = _ps_parse(argv[1:], opts)
    if error:
        say(os, 2, f"error: {error}\n\nUsage:\n ps [options]\n\n forklab's ps has -e, -A, -L, -p and -o "
                   f"({','.join(COLUMNS)})\n")
        return 1
    table = processes(scan(os))
    me = table.get(os.getpid())
    chosen = [p for p in table.values() if _selected(p, opts, me)]
    columns = _format(opts)
    rows = [_row(columns, p, t) for p in chosen for t in (p.lwps if opts.threads else [p])]
    failed = put(os, "ps", "".join([_header(columns), *rows]))
    return 0 if chosen and not failed else 1


def _ps_parse(args: list[str], opts: PsOptions) -> str:
    """Fill ``opts`` from the arguments (flags may be grouped: ``-eo pid,comm``); the error text, or ""."""
    queue = list(args)
    while queue:
        arg = queue.pop(0)
        if not arg.startswith("-") or arg == "-":
            return f"unsupported option (BSD syntax) {arg!r}"
        for i, flag in enumerate(arg[1:]):
            if flag in "eA":
                opts.every = True
            elif flag == "L":
                opts.threads = True
            elif flag in "op":
                value = arg[i + 2:] or (queue.pop(0) if queue else "")
                return _ps_list(flag, value, opts) or _ps_parse(queue, opts)
            else:
                return f"unsupported option -{flag}"
    return ""


def _ps_list(flag: str, value: str, opts: PsOptions) -> str:
    """The argument of -o (column names) or -p (pids, comma or blank separated); the error text, or ""."""
    items = [v for v in value.replace(",", " ").split() if v]
    if not items:
        return f"list of {'process IDs' if flag == 'p' else 'format specifiers'} must follow -{flag}"
    if flag == "p":
        if not all(v.isdigit() for v in items):
            return "process ID list syntax error"
        opts.pids.extend(int(v) for v in items)
        return ""
    unknown = [v for v in items if v not in COLUMNS]
    if unknown:
        return f"unknown user-defined format specifier \"{unknown[0]}\""
    opts.fmt.extend(items)
    return ""


def _selected(p: ProcEntry, opts: PsOptions, me: ProcEntry | None) -> bool:
    """procps' selection: -p's pids, or everything with -e, or by default ps's own euid and terminal."""
    if opts.pids:
        return p.tgid in opts.pids
    if opts.every or me is None:
        return True
    return p.uid == me.uid and p.tty == me.tty


def _format(opts: PsOptions) -> list[Column]:
    """The columns: -o's, else the default (with LWP under -L); the default format says TTY."""
    if opts.fmt:
        return [COLUMNS[name] for name in opts.fmt]
    names = THREAD_FORMAT if opts.threads else DEFAULT_FORMAT
    return [_renamed(COLUMNS[n], _DEFAULT_HEADERS.get(n)) for n in names]


def _renamed(col: Column, header: str | None) -> Column:
    """``col`` with another header."""
    return col if header is None else Column(header, col.width, col.left, col.value)


def _cells(columns: list[Column], texts: list[str]) -> str:
    """One line: each text padded to its column (left or right), the last column unpadded on the right."""
    out = []
    for i, (col, text) in enumerate(zip(columns, texts, strict=True)):
        last = i == len(columns) - 1
        out.append((text if last else text.ljust(col.width)) if col.left else text.rjust(col.width))
    return " ".join(out).rstrip() + "\n"


def _header(columns: list[Column]) -> str:
    """The header line."""
    return _cells(columns, [c.header for c in columns])


def _row(columns: list[Column], p: ProcEntry, t: ProcEntry) -> str:
    """The line of process ``p`` (thread ``t`` under -L)."""
    return _cells(columns, [c.value(p, t) for c in columns])


# --- pstree -------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Symbols:
    """pstree's line-drawing pieces: empty, branch, vertical, last (2 wide), single and first (3 wide)."""

    empty: str
    branch: str
    vert: str
    last: str
    single: str
    first: str


ASCII = Symbols("  ", "|-", "| ", "`-", "---", "-+-")
UTF8 = Symbols("  ", "\u251c\u2500", "\u2502 ", "\u2514\u2500", "\u2500\u2500\u2500", "\u2500\u252c\u2500")


@dataclass(slots=True)
class Node:
    """A pstree node: a process or (``thread``) a thread, its label and children in print order."""

    label: str
    thread: bool
    children: list[Node] = field(default_factory=list)

    def same(self, other: Node) -> bool:
        """psmisc's tree_equal: the same names all the way down."""
        return (self.label == other.label and len(self.children) == len(other.children)
                and all(a.same(b) for a, b in zip(self.children, other.children, strict=True)))


@dataclass(slots=True)
class PstreeOptions:
    """-p (pids, no compaction), -n (sort by pid), -A/-U (ASCII, UTF-8 lines), and the root pid."""

    pids: bool = False
    by_pid: bool = False
    symbols: Symbols = ASCII
    root: int = 1


def pstree_main(os: Libc, argv: list[str]) -> int:
    """pstree [-p] [-n] [-A|-U] [PID]: the process tree from /proc as psmisc draws it (ASCII without a UTF-8 locale)."""
    opts = PstreeOptions()
    error = _pstree_parse(argv[1:], opts)
    if error:
        complain(os, "pstree", f"{error}\nUsage: pstree [-p] [-n] [-A|-U] [PID]")
        return 1
    table = processes(scan(os))
    adopt_children(table)
    root = table.get(opts.root)
    if root is None:
        return 0  # psmisc prints nothing for a pid that is not there
    lines: list[str] = []
    draw(build(root, opts), opts.symbols, not opts.pids, lines)
    return put(os, "pstree", "".join(lines))


def _pstree_parse(args: list[str], opts: PstreeOptions) -> str:
    """Fill ``opts``; the error text, or ""."""
    for arg in args:
        if arg.isdigit():
            opts.root = int(arg)
        elif arg.startswith("-") and len(arg) > 1 and set(arg[1:]) <= set("pnAU"):
            opts.pids = opts.pids or "p" in arg
            opts.by_pid = opts.by_pid or "n" in arg
            opts.symbols = UTF8 if "U" in arg else ASCII if "A" in arg else opts.symbols
        else:
            return f"invalid option or argument {arg!r}"
    return ""


def adopt_children(table: dict[int, ProcEntry]) -> None:
    """Link each process to its parent; one whose parent is not shown goes under pid 1 (psmisc's fix_orphans)."""
    root = table.get(1)
    for p in table.values():
        parent = table.get(p.ppid)
        if parent is None and p.tgid > 1:
            parent = root
        if parent is not None and parent is not p:
            parent.children.append(p)


def build(p: ProcEntry, opts: PstreeOptions) -> Node:
    """The Node tree under process ``p``: child processes and threads (``{comm}``), sorted as psmisc sorts them."""
    kids: list[tuple[str, int, int, Node]] = []
    for c in p.children:
        kids.append((c.comm, c.uid, c.tgid, build(c, opts)))
    for t in p.lwps[1:]:
        name = "{" + t.comm + "}"  # THREAD_FORMAT
        kids.append((name, p.uid, t.tid, Node(name + (f"({t.tid})" if opts.pids else ""), True)))
    # add_child: by name then uid (or by pid with -n); ties keep readdir's pid order
    kids.sort(key=lambda k: (k[2],) if opts.by_pid else (k[0], k[1], k[2]))
    label = p.comm + (f"({p.tgid})" if opts.pids else "")
    return Node(label, False, [node for *_, node in kids])


def draw(root: Node, sym: Symbols, compact: bool, out: list[str]) -> None:
    """psmisc's dump_tree: the root, then each subtree; equal siblings merge into ``N*[...]`` when compacting."""
    _draw(root, sym, compact, out, _Layout([], []), level=0, rep=1, leaf=True, last=True, closing=0)


@dataclass(slots=True)
class _Layout:
    """dump_tree's per-level state: the width of each level's label and whether more siblings follow."""

    width: list[int]
    more: list[bool]


def _draw(node: Node, sym: Symbols, compact: bool, out: list[str], lay: _Layout, level: int, rep: int, leaf: bool,
          last: bool, closing: int) -> None:
    """One node: indentation (unless it continues its parent's line), ``N*[``, the label, then its children."""
    line: list[str] = []
    if not leaf:
        out.append(_indent(sym, lay, level, last))
    prefix = f"{rep}*[" if rep > 1 else ""
    line.append(prefix + node.label)
    if not node.children:
        line.append("]" * closing + "\n")
    out.append("".join(line))
    del lay.width[level:], lay.more[level:]
    lay.width.append(len(prefix) + len(node.label))
    lay.more.append(not last)
    children = _merged(node.children) if compact else [(c, 1) for c in node.children]
    for i, (child, count) in enumerate(children):
        if i == 0:
            out.append(sym.first if len(children) > 1 else sym.single)
        _draw(child, sym, compact, out, lay, level + 1, count, i == 0, i == len(children) - 1,
              closing + (1 if count > 1 else 0))


def _indent(sym: Symbols, lay: _Layout, level: int, last: bool) -> str:
    """The start of a continuation line: each level's width plus one, then its vertical bar or the branch."""
    parts = []
    for lvl in range(level):
        parts.append(" " * (lay.width[lvl] + 1))
        if lvl == level - 1:
            parts.append(sym.last if last else sym.branch)
        else:
            parts.append(sym.vert if lay.more[lvl + 1] else sym.empty)
    return "".join(parts)


def _merged(children: list[Node]) -> list[tuple[Node, int]]:
    """Siblings with equal subtrees as (first of them, how many), in the order of each first one."""
    groups: list[tuple[Node, int]] = []
    for child in children:
        for i, (node, count) in enumerate(groups):
            if node.same(child):
                groups[i] = (node, count + 1)
                break
        else:
            groups.append((child, 1))
    return groups


__all__ = ["COLUMNS", "PID_MAX", "ProcEntry", "kill_main", "parse_entry", "ps_main", "pstree_main", "read_entry",
           "scan"]
