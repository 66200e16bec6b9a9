"""``ps`` and ``pstree`` renderings of a process table read from /proc (procps-ng 4's ps, psmisc 23's pstree).

One implementation serves two readers: the runner's ``ps`` and ``pstree`` programs
(forklab/runner/programs/procps.py), which read /proc through the model's syscalls as the
calling task, and ``ps_elf(k)`` / ``pstree_p(k)``, which read it through the kernel's /proc
views (forklab/fs/proc) for the model's end state, as ``forklab ps``/``forklab pstree`` show
it. Both turn each task's ``stat`` and ``status`` text into a ``ProcEntry`` and render those,
so what they print is what the /proc files say.

ps: the columns and widths of procps-ng (PID-like columns 5 wide, as for pid_max 32768), the
default, ``-L``, ``-f`` and ``-Lf`` formats and ``-o``. ``-f``'s UID is the user's name from
the model's /etc/passwd when there is one (procps' uid_hack), else the number; STIME is the
start time on a clock that boots at the epoch, UTC (the model has no wall clock), as
``HH:MM`` within a day; C is procps' CPU percentage; CMD is ``[comm]``: the model has no
/proc/<pid>/cmdline, and procps shows an empty command line that way.

pstree: psmisc's dump_tree. Children (processes and threads) sort by name, then uid, then
pid (by pid with -n); a thread is ``{comm}`` of its *process* (psmisc shows thread names only
with -t), with ``(tid)`` under -p; without -p, equal sibling subtrees merge into ``N*[...]``.
A process whose parent is not in the table goes under pid 1 (psmisc's fix_orphans).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forklab.fs.proc.base import proc_listdir, proc_read

if TYPE_CHECKING:
    from forklab.include.linux.sched import Task
    from forklab.state import KernelState

USER_HZ = 100  # the clock_t unit of /proc/<pid>/stat's times (include/asm-generic/param.h)
NSEC_PER_TICK = 10_000_000  # one USER_HZ tick in ns


# --- the table ------------------------------------------------------------------------------------


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
    start: int = 0  # stat field 22, start time in ticks
    cmdline: str = ""
    children: list[ProcEntry] = field(default_factory=list)
    lwps: list[ProcEntry] = field(default_factory=list)


def parse_entry(tid: int, stat: str, status: str, cmdline: str = "") -> ProcEntry:
    """A ProcEntry from the two files' text: comm is between the first ``(`` and the last ``)``, as procps reads it."""
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    f = stat[stat.rindex(")") + 2:].split()  # f[0] is field 3 (state)
    lines = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid_fields = lines.get("Uid", "0 0").split()
    return ProcEntry(tid=tid, tgid=int(lines.get("Tgid", str(tid)).strip()), comm=comm, state=f[0], ppid=int(f[1]),
                     pgrp=int(f[2]), session=int(f[3]), tty=int(f[4]), tpgid=int(f[5]), ticks=int(f[11]) + int(f[12]),
                     nice=int(f[16]), threads=int(f[17]), uid=int(uid_fields[1]),
                     locked=lines.get("VmLck", "0").split()[:1] not in ([], ["0"]), start=int(f[19]), cmdline=cmdline)


def processes(entries: Iterable[ProcEntry]) -> dict[int, ProcEntry]:
    """The thread-group leaders by pid, each with its threads (itself first) in ``lwps``."""
    entries = list(entries)
    leaders = {e.tid: e for e in entries if e.tid == e.tgid}
    for e in entries:
        leader = leaders.get(e.tgid)
        if leader is not None:
            leader.lwps.append(e)
    return leaders


def parse_passwd(text: str) -> dict[int, str]:
    """uid -> name from /etc/passwd's ``name:x:uid:...`` lines (the first name of a uid wins)."""
    users: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            users.setdefault(int(fields[2]), fields[0])
    return users


@dataclass(slots=True, frozen=True)
class PsContext:
    """What -f's columns need besides /proc/<pid>: the clock (ns since boot) and the user names."""

    now_ns: int = 0
    users: dict[int, str] = field(default_factory=dict)


# --- ps -----------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Column:
    """A ps output column: its header, width, alignment and value."""

    header: str
    width: int
    left: bool
    value: Callable[[ProcEntry, ProcEntry, PsContext], str]  # (the process, the thread shown, context) -> text


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


def _uid_hack(p: ProcEntry, ctx: PsContext) -> str:
    """-f's UID: the user name if it fits in 8 columns, else the number (procps' pr_uid_hack)."""
    name = ctx.users.get(p.uid)
    return name if name is not None and len(name) <= 8 else str(p.uid)


def _stime(t: ProcEntry, ctx: PsContext) -> str:
    """STIME: HH:MM within a day of now, else MonDD within a year, else the year, on a UTC clock booted at the epoch."""
    started = t.start // USER_HZ
    now = ctx.now_ns // 1_000_000_000
    tm = time.gmtime(started)
    if now - started < 24 * 3600:
        return time.strftime("%H:%M", tm)
    return time.strftime("%b%d" if now - started < 365 * 24 * 3600 else "%Y", tm)


def _pcpu(t: ProcEntry, ctx: PsContext) -> str:
    """C: CPU time over elapsed time, in percent, at most 99 (procps' pr_c)."""
    seconds = ctx.now_ns // 1_000_000_000 - t.start // USER_HZ
    pcpu = t.ticks * 1000 // USER_HZ // seconds if seconds > 0 else 0
    return str(min(pcpu // 10, 99))


def _args(t: ProcEntry) -> str:
    """CMD of -f: the command line, or ``[comm]`` when it is empty, `` <defunct>`` after a zombie's."""
    text = t.cmdline or f"[{t.comm}]"
    return text + (" <defunct>" if t.state == "Z" else "")


COLUMNS: dict[str, Column] = {
    "pid": Column("PID", 5, False, lambda p, t, c: str(p.tgid)),
    "ppid": Column("PPID", 5, False, lambda p, t, c: str(p.ppid)),
    "pgid": Column("PGID", 5, False, lambda p, t, c: str(p.pgrp)),
    "sid": Column("SID", 5, False, lambda p, t, c: str(p.session)),
    "tid": Column("TID", 5, False, lambda p, t, c: str(t.tid)),
    "lwp": Column("LWP", 5, False, lambda p, t, c: str(t.tid)),
    "nlwp": Column("NLWP", 4, False, lambda p, t, c: str(p.threads)),
    "stat": Column("STAT", 4, True, lambda p, t, c: _stat_flags(t)),
    "s": Column("S", 1, True, lambda p, t, c: t.state),
    "state": Column("S", 1, True, lambda p, t, c: t.state),
    "ni": Column("NI", 3, False, lambda p, t, c: str(t.nice)),
    "uid": Column("UID", 5, False, lambda p, t, c: str(p.uid)),
    "tty": Column("TT", 8, True, lambda p, t, c: _tty(p)),
    "time": Column("TIME", 8, False, lambda p, t, c: _ps_time(t.ticks)),
    "comm": Column("COMMAND", 15, True, lambda p, t, c: t.comm),
    "ucmd": Column("CMD", 15, True, lambda p, t, c: t.comm),
    "c": Column("C", 2, False, lambda p, t, c: _pcpu(t, c)),
    "stime": Column("STIME", 5, True, lambda p, t, c: _stime(t, c)),
    "args": Column("COMMAND", 27, True, lambda p, t, c: _args(t)),
}
# -f's own columns: uid_hack (UID, 8 wide, left), tname (TTY), args (CMD)
_FULL_COLUMNS = {"uid_hack": Column("UID", 8, True, lambda p, t, c: _uid_hack(p, c)),
                 "tname": Column("TTY", 8, True, lambda p, t, c: _tty(p)),
                 "cmd": Column("CMD", 27, True, lambda p, t, c: _args(t))}
DEFAULT_FORMAT = ("pid", "tty", "time", "ucmd")
THREAD_FORMAT = ("pid", "lwp", "tty", "time", "ucmd")
FULL_FORMAT = ("uid_hack", "pid", "ppid", "c", "stime", "tname", "time", "cmd")
FULL_THREAD_FORMAT = ("uid_hack", "pid", "ppid", "lwp", "c", "nlwp", "stime", "tname", "time", "cmd")
_DEFAULT_HEADERS = {"tty": "TTY"}  # the default format's header for tty is TTY, -o tty's is TT


@dataclass(slots=True)
class PsOptions:
    """What ps was asked: every process (-e/-A), threads (-L), full format (-f), a pid list (-p), -o's columns."""

    every: bool = False
    threads: bool = False
    full: bool = False
    pids: list[int] = field(default_factory=list)
    fmt: list[str] = field(default_factory=list)


def ps_parse(args: list[str], opts: PsOptions) -> str:
    """Fill ``opts`` from the arguments (flags may be grouped: ``-eLf``, ``-eo pid,comm``); the error text, or ""."""
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
            elif flag == "f":
                opts.full = True
            elif flag in "op":
                value = arg[i + 2:] or (queue.pop(0) if queue else "")
                return _ps_list(flag, value, opts) or ps_parse(queue, opts)
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
    """The columns: -o's, else -f's (with LWP and NLWP under -L), else the default (LWP under -L)."""
    if opts.fmt:
        return [COLUMNS[name] for name in opts.fmt]
    if opts.full:
        return [_FULL_COLUMNS.get(n) or COLUMNS[n] for n in (FULL_THREAD_FORMAT if opts.threads else FULL_FORMAT)]
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


def ps_render(table: dict[int, ProcEntry], opts: PsOptions, me: ProcEntry | None,
              ctx: PsContext | None = None) -> tuple[str, int]:
    """The ps output for the process table and how many processes it shows (ps exits 1 for none)."""
    ctx = ctx if ctx is not None else PsContext()
    chosen = [p for p in table.values() if _selected(p, opts, me)]
    columns = _format(opts)
    rows = [_cells(columns, [c.value(p, t, ctx) for c in columns])
            for p in chosen for t in (p.lwps if opts.threads else [p])]
    return "".join([_cells(columns, [c.header for c in columns]), *rows]), len(chosen)


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
    """-p (pids, no compaction), -n (sort by pid), -t (thread names), -A/-U (ASCII, UTF-8 lines), the root pid."""

    pids: bool = False
    by_pid: bool = False
    thread_names: bool = False
    symbols: Symbols = ASCII
    root: int = 1


def pstree_parse(args: list[str], opts: PstreeOptions) -> str:
    """Fill ``opts``; the error text, or ""."""
    for arg in args:
        if arg.isdigit():
            opts.root = int(arg)
        elif arg.startswith("-") and len(arg) > 1 and set(arg[1:]) <= set("pntAU"):
            opts.pids = opts.pids or "p" in arg
            opts.by_pid = opts.by_pid or "n" in arg
            opts.thread_names = opts.thread_names or "t" in arg
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
        name = "{" + (t.comm if opts.thread_names else p.comm) + "}"  # THREAD_FORMAT: the process's name without -t
        kids.append((name, p.uid, t.tid, Node(name + (f"({t.tid})" if opts.pids else ""), True)))
    # add_child: by name then uid (or by pid with -n); ties keep readdir's pid order
    kids.sort(key=lambda k: (k[2],) if opts.by_pid else (k[0], k[1], k[2]))
    label = p.comm + (f"({p.tgid})" if opts.pids else "")
    return Node(label, False, [node for *_, node in kids])


def draw(root: Node, sym: Symbols, compact: bool) -> str:
    """psmisc's dump_tree: the root, then each subtree; equal siblings merge into ``N*[...]`` when compacting."""
    out: list[str] = []
    _draw(root, sym, compact, out, _Layout([], []), level=0, rep=1, leaf=True, last=True, closing=0)
    return "".join(out)


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


def pstree_render(table: dict[int, ProcEntry], opts: PstreeOptions) -> str:
    """The pstree output for the process table (links the tree first); empty when the root pid is absent."""
    adopt_children(table)
    root = table.get(opts.root)
    return "" if root is None else draw(build(root, opts), opts.symbols, not opts.pids)


# --- the model's table, through the kernel's /proc views --------------------------------------------


def proc_entries(k: KernelState, viewer: Task | None = None) -> list[ProcEntry]:
    """Every task ``viewer`` (default init) sees, from /proc/<pid>/stat, status and task/<tid>/{stat,status}."""
    entries = []
    for name in proc_listdir(k, "/proc", viewer):
        if not name.isdigit():
            continue
        for tid in proc_listdir(k, f"/proc/{name}/task", viewer):
            base = f"/proc/{name}" if tid == name else f"/proc/{name}/task/{tid}"
            entries.append(parse_entry(int(tid), proc_read(k, f"{base}/stat", viewer),
                                       proc_read(k, f"{base}/status", viewer)))
    return entries


def model_context(k: KernelState) -> PsContext:
    """The model's clock and the user names of its /etc/passwd, if it has one."""
    passwd = k.vfs.lookup("/etc/passwd")
    users = parse_passwd(bytes(passwd.data).decode("utf-8", "replace")) if passwd is not None else {}
    return PsContext(now_ns=k.clock_ns, users=users)


def ps_elf(k: KernelState, viewer: Task | None = None) -> str:
    """``ps -eLf`` of the model's tasks as ``viewer`` (default init) sees them."""
    text, _ = ps_render(processes(proc_entries(k, viewer)), PsOptions(every=True, threads=True, full=True), None,
                        model_context(k))
    return text


def pstree_p(k: KernelState, pid: int = 1, viewer: Task | None = None) -> str:
    """``pstree -p PID`` of the model's tasks as ``viewer`` (default init) sees them; empty if there is no such pid."""
    return pstree_render(processes(proc_entries(k, viewer)), PstreeOptions(pids=True, root=pid))


__all__ = [
    "COLUMNS",
    "ProcEntry",
    "PsContext",
    "PsOptions",
    "PstreeOptions",
    "parse_entry",
    "parse_passwd",
    "proc_entries",
    "processes",
    "ps_elf",
    "ps_parse",
    "ps_render",
    "pstree_p",
    "pstree_parse",
    "pstree_render",
]
