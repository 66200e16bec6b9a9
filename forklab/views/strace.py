"""The syscalls of a trace as ``strace -f -o FILE`` prints them.

Each syscall root call of the tree (``Recorder.calls``) is one strace record, printed with the
pid column (``%-5d ``) and the return value's ``=`` at column 40. A record another task's
output interrupts is split as strace splits it: ``name(args <unfinished ...>``, then
``<... name resumed>rest) = ret``. Two model facts make such splits: a call that gave way
(``Blocked``, the task asleep) resumes when the task issues it again, and a vfork's parent
resumes when its child releases it (the ``complete_vfork_done`` decision). The lines of exit and
exit_group end at their entry (``= ?``). strace ends them when the task is gone, which in a capture
here came at once for a vfork child, whose parent resumed in between in the model; when another
task's line does come first strace splits them (tests/data/trace/strace_forks_pidns.txt), and the
model does not. Signal deliveries
(the ``dequeued signal`` decision of ``get_signal``) print as ``--- SIG {siginfo} ---`` after the
syscall they ended, and each ``do_exit`` as ``+++ exited with N +++`` or ``+++ killed by SIG +++``.

Decoded as strace 6.1 does: clone (``child_stack=``, ``flags=`` with the exit signal last, then
``parent_tid=``, ``tls=``, ``child_tidptr=`` only when a flag asks for them), clone3 (its struct,
what the kernel wrote back as ``=> {...}``, and the size), fork, vfork, wait4 (the status as
``[{WIFEXITED(s) && WEXITSTATUS(s) == N}]``), kill, exit, exit_group, getpid, rt_sigprocmask
(the model keeps no old-set pointer: NULL), rt_sigreturn (``{mask=[...]}`` restored), open (flags and, with
O_CREAT or O_TMPFILE, the mode), read and write (the buffer quoted as strace's string_quote does, cut
at 32 bytes with ``...``), lseek, mmap, mprotect and munmap (protections, flags, addresses in hex),
pipe2 (the fds it made) and set_tid_address. Other syscalls print their traced arguments generically, strings quoted the same way. Not modelled, so never shown: the status and rusage
pointers of wait4 (NULL where the kernel wrote nothing; a reaping wait4 shows the status and, when the caller
passed a rusage, its two times), the buffer address of a read that failed (the
model's read returns the bytes and has no user buffer: NULL), the siginfo's si_utime/si_stime
(shown as 0: the model does not carry them), and signals a real tracer would see because
being ptraced keeps ignored signals from being dropped (the model's tasks are not ptraced).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from forklab.errors import errno_name
from forklab.trace import Call, Decision, TraceSource, Value, arg_text, struct_get, trace_roots
from forklab.uapi import (
    __WALL,
    __WCLONE,
    __WNOTHREAD,
    CLD_CONTINUED,
    CLD_DUMPED,
    CLD_EXITED,
    CLD_KILLED,
    CLD_STOPPED,
    CLD_TRAPPED,
    CLONE_CHILD_CLEARTID,
    CLONE_CHILD_SETTID,
    CLONE_CLEAR_SIGHAND,
    CLONE_FLAG_NAMES,
    CLONE_INTO_CGROUP,
    CLONE_NEWTIME,
    CLONE_PARENT_SETTID,
    CLONE_PIDFD,
    CLONE_SETTLS,
    CSIGNAL,
    FASYNC,
    MAP_32BIT,
    MAP_ANONYMOUS,
    MAP_DENYWRITE,
    MAP_EXECUTABLE,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_HUGE_SHIFT,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NONBLOCK,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    MAP_STACK,
    MAP_SYNC,
    MAP_TYPE,
    O_ACCMODE,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECT,
    O_DIRECTORY,
    O_DSYNC,
    O_EXCL,
    O_LARGEFILE,
    O_NOATIME,
    O_NOCTTY,
    O_NOFOLLOW,
    O_NONBLOCK,
    O_PATH,
    O_RDONLY,
    O_RDWR,
    O_SYNC,
    O_TMPFILE,
    O_TRUNC,
    O_WRONLY,
    PROT_EXEC,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    SEEK_CUR,
    SEEK_DATA,
    SEEK_END,
    SEEK_HOLE,
    SEEK_SET,
    SI_KERNEL,
    SI_QUEUE,
    SI_TKILL,
    SI_USER,
    SIG_BLOCK,
    SIG_SETMASK,
    SIG_UNBLOCK,
    SIGCHLD,
    SIGKILL,
    SIGNAL_NAMES,
    WCONTINUED,
    WNOHANG,
    WUNTRACED,
)

ALIGN_COLUMN = 40  # strace's -a default: the column of " = "
SIGRTMAX = 64  # _NSIG: the signals a sigset_t holds
SIGSET_BYTES = SIGRTMAX // 8  # the sigsetsize glibc passes
SIGPROCMASK_HOW = {SIG_BLOCK: "SIG_BLOCK", SIG_UNBLOCK: "SIG_UNBLOCK", SIG_SETMASK: "SIG_SETMASK"}
PID_WIDTH = 5  # printleader's "%-5d "
RESTART_TEXT = {"ERESTARTSYS": "To be restarted if SA_RESTART is set", "ERESTARTNOINTR": "To be restarted",
                "ERESTARTNOHAND": "To be restarted if no handler", "ERESTART_RESTARTBLOCK": "Interrupted by signal"}
CLD_NAMES = {CLD_EXITED: "CLD_EXITED", CLD_KILLED: "CLD_KILLED", CLD_DUMPED: "CLD_DUMPED",
             CLD_TRAPPED: "CLD_TRAPPED", CLD_STOPPED: "CLD_STOPPED", CLD_CONTINUED: "CLD_CONTINUED"}
SI_NAMES = {SI_USER: "SI_USER", SI_KERNEL: "SI_KERNEL", SI_QUEUE: "SI_QUEUE", SI_TKILL: "SI_TKILL"}
WAIT_OPTION_NAMES = ((WNOHANG, "WNOHANG"), (WUNTRACED, "WSTOPPED"), (WCONTINUED, "WCONTINUED"),
                     (__WNOTHREAD, "__WNOTHREAD"), (__WALL, "__WALL"), (__WCLONE, "__WCLONE"))
CLONE3_EXTRA = (CLONE_NEWTIME, CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP)  # strace's clone3_flags, after clone_flags
CLONE_CHILDS_PIDS = ("clone", "clone3", "fork", "vfork")
MAX_STRLEN = 32  # strace's -s default
ACCESS_MODES = {O_RDONLY: "O_RDONLY", O_WRONLY: "O_WRONLY", O_RDWR: "O_RDWR", O_ACCMODE: "O_ACCMODE"}
# strace 6.1's order (xlat/open_mode_flags), each entry taking its bits: O_SYNC holds O_DSYNC, O_TMPFILE O_DIRECTORY
OPEN_FLAGS = ((O_CREAT, "O_CREAT"), (O_EXCL, "O_EXCL"), (O_NOCTTY, "O_NOCTTY"), (O_TRUNC, "O_TRUNC"),
              (O_APPEND, "O_APPEND"), (O_NONBLOCK, "O_NONBLOCK"), (O_SYNC, "O_SYNC"), (O_DSYNC, "O_DSYNC"),
              (O_DIRECT, "O_DIRECT"), (O_LARGEFILE, "O_LARGEFILE"), (O_NOFOLLOW, "O_NOFOLLOW"),
              (O_NOATIME, "O_NOATIME"), (O_CLOEXEC, "O_CLOEXEC"), (O_PATH, "O_PATH"), (O_TMPFILE, "O_TMPFILE"),
              (O_DIRECTORY, "O_DIRECTORY"), (FASYNC, "FASYNC"))
MAP_TYPES = {0: "MAP_FILE", MAP_SHARED: "MAP_SHARED", MAP_PRIVATE: "MAP_PRIVATE",
             MAP_SHARED_VALIDATE: "MAP_SHARED_VALIDATE"}
# strace 6.1's order (xlat/mmap_flags), not the bits' order
MAP_FLAGS = ((MAP_FIXED, "MAP_FIXED"), (MAP_ANONYMOUS, "MAP_ANONYMOUS"), (MAP_32BIT, "MAP_32BIT"),
             (MAP_NORESERVE, "MAP_NORESERVE"), (MAP_POPULATE, "MAP_POPULATE"), (MAP_NONBLOCK, "MAP_NONBLOCK"),
             (MAP_GROWSDOWN, "MAP_GROWSDOWN"), (MAP_DENYWRITE, "MAP_DENYWRITE"), (MAP_EXECUTABLE, "MAP_EXECUTABLE"),
             (MAP_LOCKED, "MAP_LOCKED"), (MAP_STACK, "MAP_STACK"), (MAP_HUGETLB, "MAP_HUGETLB"), (MAP_SYNC, "MAP_SYNC"),
             (MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"))
PROT_FLAGS = ((PROT_READ, "PROT_READ"), (PROT_WRITE, "PROT_WRITE"), (PROT_EXEC, "PROT_EXEC"), (PROT_SEM, "PROT_SEM"),
              (PROT_GROWSDOWN, "PROT_GROWSDOWN"), (PROT_GROWSUP, "PROT_GROWSUP"))
SEEK_NAMES = {SEEK_SET: "SEEK_SET", SEEK_CUR: "SEEK_CUR", SEEK_END: "SEEK_END", SEEK_DATA: "SEEK_DATA",
              SEEK_HOLE: "SEEK_HOLE"}
STRING_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("\f"): "\\f", ord("\n"): "\\n", ord("\r"): "\\r",
                  ord("\t"): "\\t", ord("\v"): "\\v"}


def signame(sig: int) -> str:
    """``SIGCHLD``, or the number when it has no name (0 prints as ``0``)."""
    return SIGNAL_NAMES.get(sig, str(sig))


def addr(value: Value) -> str:
    """A user address as strace prints one: ``NULL`` or ``0x7ffd...``."""
    return "NULL" if not value else hex(value) if isinstance(value, int) else str(value)


def clone_flag_names(flags: int, extra: bool) -> list[str]:
    """The names of the set flags in strace's order (ascending bits; clone3's own flags after), then any rest."""
    extras = CLONE3_EXTRA if extra else ()
    names = [n for bit, n in sorted(CLONE_FLAG_NAMES.items()) if bit not in CLONE3_EXTRA and flags & bit]
    names += [CLONE_FLAG_NAMES[bit] for bit in extras if flags & bit]
    known = sum(b for b in CLONE_FLAG_NAMES if b not in CLONE3_EXTRA or extra)
    if flags & ~known:
        names.append(hex(flags & ~known))
    return names


def clone_flags_text(flags: int) -> str:
    """clone's ``flags=`` value: the flags, then ``|`` and the exit signal; just the signal when no flag is set."""
    names = clone_flag_names(flags & ~CSIGNAL & ~CLONE_NEWTIME, extra=False)
    sig = flags & CSIGNAL
    if not names:
        return signame(sig)
    return "|".join(names) + (f"|{signame(sig)}" if sig else "")


def status_text(status: int) -> str:
    """A wait status decoded as strace's printstatus: ``[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]``."""
    if status & 0x7F == 0:
        return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {(status >> 8) & 0xFF}}}]"
    if status == 0xFFFF:
        return "[{WIFCONTINUED(s)}]"
    if status & 0xFF == 0x7F:
        return f"[{{WIFSTOPPED(s) && WSTOPSIG(s) == {signame((status >> 8) & 0xFF)}}}]"
    core = " && WCOREDUMP(s)" if status & 0x80 else ""
    return f"[{{WIFSIGNALED(s) && WTERMSIG(s) == {signame(status & 0x7F)}{core}}}]"


def wait_options_text(options: int) -> str:
    """wait4's options by name, ``0`` when none."""
    names = [n for bit, n in WAIT_OPTION_NAMES if options & bit]
    rest = options & ~sum(b for b, _ in WAIT_OPTION_NAMES)
    return "|".join(names + ([hex(rest)] if rest else [])) or "0"


def written_back(call: Call, name: str) -> Value:
    """The value the kernel wrote to user space for ``name`` (``parent_tid``, ``pidfd``) in this call, if any."""
    for d in call.all_decisions():
        for n, v in d.values:
            if n == name:
                return v
    return None


def _int(value: Value) -> int:
    """An argument that must be an integer; 0 for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def clone_parts(call: Call) -> tuple[str, str]:
    """clone's text printed on entry and on exit (strace's clone decoder)."""
    flags = _int(call.arg("clone_flags"))
    entry = f"clone(child_stack={addr(call.arg('newsp'))}, flags={clone_flags_text(flags)}"
    rest = ""
    if flags & (CLONE_PARENT_SETTID | CLONE_PIDFD) and call.end is not None:
        value = written_back(call, "parent_tid" if flags & CLONE_PARENT_SETTID else "pidfd")
        rest += f", parent_tid=[{arg_text('', value)}]" if value is not None else f", parent_tid={addr(call.arg('parent_tidptr'))}"
    if flags & CLONE_SETTLS:
        rest += f", tls={addr(call.arg('tls'))}"
    if flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID):
        rest += f", child_tidptr={addr(call.arg('child_tidptr'))}"
    return entry, rest


def clone3_struct(uargs: Value, size: int) -> str:
    """clone3's struct clone_args as strace prints it on entry, each field only when its flag asks for it."""
    flags = _int(struct_get(uargs, "flags"))
    parts = [f"flags={'|'.join(clone_flag_names(flags, extra=True)) or '0'}"]
    if flags & CLONE_PIDFD:
        parts.append(f"pidfd={addr(struct_get(uargs, 'pidfd'))}")
    if flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID):
        parts.append(f"child_tid={addr(struct_get(uargs, 'child_tid'))}")
    if flags & CLONE_PARENT_SETTID:
        parts.append(f"parent_tid={addr(struct_get(uargs, 'parent_tid'))}")
    parts.append(f"exit_signal={signame(_int(struct_get(uargs, 'exit_signal')))}")
    parts.append(f"stack={addr(struct_get(uargs, 'stack'))}")
    stack_size = _int(struct_get(uargs, "stack_size"))
    parts.append(f"stack_size={hex(stack_size) if stack_size else 0}")
    if flags & CLONE_SETTLS:
        parts.append(f"tls={addr(struct_get(uargs, 'tls'))}")
    set_tid = struct_get(uargs, "set_tid")
    set_tid_size = struct_get(uargs, "set_tid_size")
    if isinstance(set_tid, tuple):
        if set_tid:
            parts.append(f"set_tid=[{', '.join(arg_text('', v) for v in set_tid)}]")
            parts.append(f"set_tid_size={_int(set_tid_size) if set_tid_size is not None else len(set_tid)}")
    elif set_tid or set_tid_size:
        parts += [f"set_tid={addr(set_tid)}", f"set_tid_size={_int(set_tid_size)}"]
    cgroup = _int(struct_get(uargs, "cgroup"))
    if size > 80 and (cgroup or flags & CLONE_INTO_CGROUP):
        parts.append(f"cgroup={cgroup}")
    return "{" + ", ".join(parts) + "}"


def clone3_parts(call: Call) -> tuple[str, str]:
    """clone3's entry text (the struct) and exit text (what was written back, then the size)."""
    uargs, size = call.arg("uargs"), _int(call.arg("size"))
    if not isinstance(uargs, tuple):
        return f"clone3({addr(uargs)}, {size}", ""
    entry = f"clone3({clone3_struct(uargs, size)}"
    flags = _int(struct_get(uargs, "flags"))
    if not flags & (CLONE_PIDFD | CLONE_PARENT_SETTID):
        return entry + f", {size}", ""
    back = []
    if call.errno is None and call.end is not None:
        if flags & CLONE_PIDFD and (fd := written_back(call, "pidfd")) is not None:
            back.append(f"pidfd=[{arg_text('', fd)}]")
        if flags & CLONE_PARENT_SETTID and (tid := written_back(call, "parent_tid")) is not None:
            back.append(f"parent_tid=[{arg_text('', tid)}]")
    return entry, (f" => {{{', '.join(back)}}}" if back else "") + f", {size}"


def wait4_parts(call: Call) -> tuple[str, str]:
    """wait4's pid on entry; the decoded status, options and rusage on exit (strace prints the rusage's two
    times, then ``...``)."""
    ret = call.ret
    status = ret[1] if isinstance(ret, tuple) and len(ret) >= 2 and isinstance(ret[1], int) else None
    reaped = isinstance(ret, tuple) and ret and ret[0] != 0
    shown = status_text(status) if status is not None and reaped else "NULL"
    rusage = "NULL"
    if reaped and isinstance(ret, tuple) and len(ret) == 6 and any(n == "ru" and v for n, v in call.args):
        us, um, ss, sm = (_int(v) for v in ret[2:])
        rusage = (f"{{ru_utime={{tv_sec={us}, tv_usec={um}}}, ru_stime={{tv_sec={ss}, tv_usec={sm}}}, ...}}")
    options = wait_options_text(_int(call.arg('options')))
    return f"wait4({arg_text('', call.arg('upid'))}, ", f"{shown}, {options}, {rusage}"


def quoted(data: bytes | str, size: int | None = None) -> str:
    """``data`` as strace's string_quote prints a buffer: C escapes, other unprintables in octal (three digits
    when an octal digit follows), cut at MAX_STRLEN bytes with ``...`` after the quote; ``size`` is the length
    the call gave (defaults to the data's)."""
    raw = data.encode() if isinstance(data, str) else data
    size = len(raw) if size is None else size
    shown = raw[: min(size, MAX_STRLEN)]
    out = []
    for i, c in enumerate(shown):
        if c in STRING_ESCAPES:
            out.append(STRING_ESCAPES[c])
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        elif i + 1 < len(shown) and 0x30 <= shown[i + 1] <= 0x37:
            out.append(f"\\{c:03o}")
        else:
            out.append(f"\\{c:o}")
    return '"' + "".join(out) + '"' + ("..." if size > MAX_STRLEN else "")


def flags_text(value: int, names: tuple[tuple[int, str], ...], base: list[str], zero: str = "0") -> str:
    """``base`` then each of ``names`` whose bits are all set, in that order, each taking its bits; the rest in hex."""
    parts = list(base)
    for bits, name in names:
        if value & bits == bits:
            parts.append(name)
            value &= ~bits
    if value:
        parts.append(hex(value))
    return "|".join(parts) or zero


def open_flags_text(flags: int) -> str:
    """open's flags as strace prints them: the access mode, then the other flags in strace's order."""
    return flags_text(flags & ~O_ACCMODE, OPEN_FLAGS, [ACCESS_MODES[flags & O_ACCMODE]])


def mmap_flags_text(flags: int) -> str:
    """mmap's flags: the mapping type, the flags in strace's order, a huge page size as ``N<<MAP_HUGE_SHIFT``."""
    kind = flags & MAP_TYPE
    base = [MAP_TYPES.get(kind, hex(kind))]
    huge = (flags >> MAP_HUGE_SHIFT) & 0x3F
    text = flags_text(flags & ~MAP_TYPE & ~(0x3F << MAP_HUGE_SHIFT), MAP_FLAGS, base)
    return text + (f"|{huge}<<MAP_HUGE_SHIFT" if huge else "")


def prot_text(prot: int) -> str:
    """mmap's and mprotect's protection: ``PROT_READ|PROT_WRITE``, ``PROT_NONE`` for 0."""
    return flags_text(prot, PROT_FLAGS, [], "PROT_NONE")


def c_octal(value: int) -> str:
    """``value`` as C's ``%#03o``: ``0644``, ``000`` for 0."""
    return (f"0{value:o}" if value else "0").rjust(3, "0")


def c_hex(value: int) -> str:
    """``value`` as C's ``%#x``: ``0x1000``, ``0`` for 0."""
    return hex(value) if value else "0"


def open_parts(call: Call) -> tuple[str, str]:
    """``open("/path", O_RDWR|O_CREAT, 0644``: the mode only when the flags create a file."""
    filename, flags = call.arg("filename"), _int(call.arg("flags"))
    mode = f", {c_octal(_int(call.arg('mode')))}" if flags & O_CREAT or flags & O_TMPFILE == O_TMPFILE else ""
    path = quoted(filename) if isinstance(filename, str) else addr(filename)
    return f"open({path}, {open_flags_text(flags)}{mode}", ""


def read_parts(call: Call) -> tuple[str, str]:
    """``read(3, `` on entry; the bytes read (or NULL, see the module docstring) and the count on exit."""
    data = call.ret if isinstance(call.ret, bytes) else None
    shown = quoted(data) if data is not None and call.errno is None else "NULL"
    return f"read({arg_text('fd', call.arg('fd'))}, ", f"{shown}, {_int(call.arg('count'))}"


def write_parts(call: Call) -> tuple[str, str]:
    """``write(1, "hello\\n", 6``: the buffer as the kernel read it on entry."""
    buf, count = call.arg("buf"), _int(call.arg("count"))
    shown = quoted(buf, count) if isinstance(buf, bytes) else addr(buf)
    return f"write({arg_text('fd', call.arg('fd'))}, {shown}, {count}", ""


def lseek_parts(call: Call) -> tuple[str, str]:
    """``lseek(3, 0, SEEK_SET``; an unknown whence as strace prints it."""
    whence = _int(call.arg("whence"))
    name = SEEK_NAMES.get(whence, f"{whence:#x} /* SEEK_??? */")
    return f"lseek({arg_text('fd', call.arg('fd'))}, {_int(call.arg('offset'))}, {name}", ""


def mmap_parts(call: Call) -> tuple[str, str]:
    """``mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0``."""
    off = _int(call.arg("off"))
    return (f"mmap({addr(call.arg('addr'))}, {_int(call.arg('len'))}, {prot_text(_int(call.arg('prot')))}, "
            f"{mmap_flags_text(_int(call.arg('flags')))}, {_int(call.arg('fd'))}, {c_hex(off)}"), ""


def mprotect_parts(call: Call) -> tuple[str, str]:
    """``mprotect(0x7f..., 4096, PROT_READ``."""
    return f"mprotect({addr(call.arg('start'))}, {_int(call.arg('len'))}, {prot_text(_int(call.arg('prot')))}", ""


def munmap_parts(call: Call) -> tuple[str, str]:
    """``munmap(0x7f..., 8192``."""
    return f"munmap({addr(call.arg('addr'))}, {_int(call.arg('len'))}", ""


PIPE_FLAGS = ((O_NONBLOCK, "O_NONBLOCK"), (O_CLOEXEC, "O_CLOEXEC"))  # strace's pipe_flags order


def pipe2_parts(call: Call) -> tuple[str, str]:
    """``pipe2([3, 4], O_CLOEXEC`` on exit; a failed call shows NULL for the model's absent fd array."""
    flags = _int(call.arg("flags"))
    names = [name for bits, name in PIPE_FLAGS if flags & bits]
    rest = flags & ~(O_NONBLOCK | O_CLOEXEC)
    shown = "|".join(names) if not rest else "|".join([*names, f"{rest:#x} /* O_??? */"])
    ret = call.ret
    fds = f"[{_int(ret[0])}, {_int(ret[1])}]" if isinstance(ret, tuple) and len(ret) == 2 and call.errno is None else "NULL"
    return "pipe2(", f"{fds}, {shown or '0'}"


def set_tid_address_parts(call: Call) -> tuple[str, str]:
    """``set_tid_address(0x7f...``."""
    return f"set_tid_address({addr(call.arg('tidptr'))}", ""


def generic_parts(call: Call) -> tuple[str, str]:
    """Any other syscall: its traced arguments in order, strings quoted, signals by name."""
    shown = []
    for name, value in call.args:
        if isinstance(value, str):
            shown.append(quoted(value))
        elif name == "sig" and isinstance(value, int):
            shown.append(signame(value))
        else:
            shown.append(arg_text(name, value))
    return f"{call.name}({', '.join(shown)}", ""


def sigset_text(mask: int) -> str:
    """A signal set as strace prints one: ``[CHLD]``, ``[INT QUIT]``, ``[]``; a set of more than half the
    signals as ``~[...]`` of the others."""
    def names(m: int) -> str:
        return " ".join(signame(sig).removeprefix("SIG") for sig in range(1, SIGRTMAX + 1) if m & (1 << (sig - 1)))

    if bin(mask).count("1") > SIGRTMAX // 2:
        return f"~[{names(~mask & ((1 << SIGRTMAX) - 1))}]"
    return f"[{names(mask)}]"


def rt_sigprocmask_parts(call: Call) -> tuple[str, str]:
    """``rt_sigprocmask(SIG_BLOCK, [CHLD], NULL, 8``: the model keeps no old-set pointer, so it is NULL."""
    how = _int(call.arg("how"))
    nset = call.arg("nset")
    shown = "NULL" if nset is None else sigset_text(_int(nset))
    return f"rt_sigprocmask({SIGPROCMASK_HOW.get(how, str(how))}, {shown}, NULL, {SIGSET_BYTES}", ""


def rt_sigreturn_parts(call: Call) -> tuple[str, str]:
    """``rt_sigreturn({mask=[...]}``: the mask the frame restored, from the call's decision."""
    mask = written_back(call, "uc_sigmask")
    return "rt_sigreturn(" + ("" if mask is None else f"{{mask={sigset_text(_int(mask))}}}"), ""


PARTS = {"clone": clone_parts, "clone3": clone3_parts, "wait4": wait4_parts, "rt_sigprocmask": rt_sigprocmask_parts,
         "rt_sigreturn": rt_sigreturn_parts, "open": open_parts, "read": read_parts, "write": write_parts,
         "lseek": lseek_parts, "mmap": mmap_parts, "mprotect": mprotect_parts, "munmap": munmap_parts,
         "set_tid_address": set_tid_address_parts, "pipe2": pipe2_parts}
ARGLESS_DECODERS = ("rt_sigreturn",)  # decoders that read no argument (rt_sigreturn: the frame's decision)
NO_RETURN = ("exit", "exit_group")
ZERO_ON_SUCCESS = ("rt_sigprocmask", "rt_sigaction", "pipe2")  # the Kernel methods return the old mask or action,
# or the fds
# At one instant: a call that ends prints before the next one starts, its signal and exits in between.
FINISH, SIGNAL, EXIT, START = 0, 1, 2, 3


def return_text(call: Call) -> str:
    """What follows ``= ``: the value, ``?`` for a call that never returns, or ``-1 ENOENT (No such ...)``."""
    if call.name in NO_RETURN or call.error.startswith("TaskKilled"):
        return "?"
    if call.errno is not None:
        name = errno_name(call.errno)
        if name in RESTART_TEXT:
            return f"? {name} ({RESTART_TEXT[name]})"
        return f"-1 {name} ({os.strerror(call.errno)})"
    ret = call.ret
    if call.name in ZERO_ON_SUCCESS:
        return "0"
    if call.name == "mmap" and isinstance(ret, int):
        return hex(ret)
    if isinstance(ret, bytes):
        return str(len(ret))  # read: the count of the bytes it returns
    if isinstance(ret, tuple) and ret and isinstance(ret[0], int):
        return str(ret[0])  # wait4's (pid, status)
    if ret is None:
        return "0"
    return arg_text("", ret) if not isinstance(ret, int) else str(ret)


@dataclass(slots=True)
class Record:
    """One strace record: the call that started it, the one that finished it, and when it did."""

    start: Call
    final: Call
    done_ts: int
    entry: str = ""
    rest: str = ""
    split: bool = False


@dataclass(order=True, slots=True)
class Event:
    """A point in the output's order: (time, rank, sequence) and what to print there."""

    ts: int
    rank: int
    seq: int
    what: str = field(compare=False)
    tid: int = field(compare=False)
    record: Record | None = field(default=None, compare=False)
    text: str = field(default="", compare=False)


def is_blocked(call: Call) -> bool:
    """The call gave way: its task sleeps and will issue it again (``Blocked``)."""
    return call.error.startswith("Blocked")


def vfork_resumed(call: Call, roots: list[Call]) -> int | None:
    """When the vfork parent was released: the child's complete_vfork_done decision, if the trace has it."""
    child = call.ret
    for root in roots:
        for d in root.all_decisions():
            if d.kind == "complete_vfork_done" and d.tid == child and d.ts > call.ts:
                return d.ts
    return None


def records(roots: list[Call]) -> list[Record]:
    """The syscall records: a Blocked call joined with its reissue by the same task."""
    out: list[Record] = []
    pending: dict[int, Record] = {}
    for call in roots:
        if call.kind != "syscall":
            continue
        rec = pending.pop(call.tid, None)
        if rec is not None and rec.start.name == call.name:
            rec.final, rec.done_ts = call, call.end or call.ts
        else:
            rec = Record(call, call, call.end or call.ts)
            out.append(rec)
        if call.name in NO_RETURN:  # strace ends its line at the entry: exit and exit_group never return
            rec.done_ts = call.ts + 1
        elif is_blocked(call):
            pending[call.tid] = rec
        elif call.name == "vfork" and call.errno is None:
            rec.done_ts = vfork_resumed(call, roots) or rec.done_ts
    for rec in pending.values():  # never reissued: it stays unfinished
        rec.done_ts = -1
    return out


def siginfo_line(d: Decision) -> str:
    """``--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, ...} ---`` from a dequeued signal's values."""
    v = dict(d.values)
    signo, code = _int(v.get("si_signo")), _int(v.get("si_code"))
    fields = [f"si_signo={signame(signo)}"]
    if signo == SIGCHLD and code in CLD_NAMES:
        status = _int(v.get("si_status"))
        fields += [f"si_code={CLD_NAMES[code]}", f"si_pid={arg_text('', v.get('si_pid'))}", f"si_uid={arg_text('', v.get('si_uid'))}",
                   f"si_status={status if code == CLD_EXITED else signame(status)}", "si_utime=0", "si_stime=0"]
    elif code in (SI_USER, SI_TKILL, SI_QUEUE):
        fields += [f"si_code={SI_NAMES[code]}", f"si_pid={arg_text('', v.get('si_pid'))}", f"si_uid={arg_text('', v.get('si_uid'))}"]
    else:
        fields.append(f"si_code={SI_NAMES.get(code, code)}")
    return f"--- {signame(signo)} {{{', '.join(fields)}}} ---"


def exit_text(code: int) -> str:
    """``+++ exited with N +++`` or ``+++ killed by SIG (core dumped) +++`` for do_exit's code."""
    if code & 0x7F:
        core = " (core dumped)" if code & 0x80 else ""
        return f"+++ killed by {signame(code & 0x7F)}{core} +++"
    return f"+++ exited with {(code >> 8) & 0xFF} +++"


def decoder(call: Call) -> Callable[[Call], tuple[str, str]]:
    """The decoder of ``call``'s syscall; the generic one for a call traced without the arguments its decoder
    reads (the model's write to a uid_map file is a write(2) with no fd or buffer of its own)."""
    parts = PARTS.get(call.name, generic_parts)
    return parts if call.args or call.name in ARGLESS_DECODERS else generic_parts


def _events(roots: list[Call]) -> list[Event]:
    """Every start, finish, signal and exit to print, in output order."""
    evs: list[Event] = []
    for rec in records(roots):
        parts = decoder(rec.start)
        rec.entry, _ = parts(rec.start)
        _, rec.rest = parts(rec.final)
        evs.append(Event(rec.start.ts, START, len(evs), "start", rec.start.tid, rec))
        if rec.done_ts >= 0:
            evs.append(Event(rec.done_ts, FINISH, len(evs), "finish", rec.final.tid, rec))
    for root in roots:
        for d in root.all_decisions():
            if d.kind == "get_signal" and d.source == "kernel/signal.c:2629" and dict(d.values).get("si_signo") != SIGKILL:
                at = root.end if root.tid == d.tid and root.end is not None else d.ts
                evs.append(Event(at, SIGNAL, len(evs), "text", d.tid, text=siginfo_line(d)))
        for c in root.walk():
            if c.name == "do_exit" and c.errno is None:
                evs.append(Event(root.end or c.ts, EXIT, len(evs), "text", c.tid, text=exit_text(_int(c.arg("code")))))
    return sorted(evs)


def aligned(prefix: str, text: str, ret: str) -> str:
    """``text) `` padded to the alignment column, then ``= ret``."""
    line = prefix + text + ") "
    return line + " " * max(0, ALIGN_COLUMN - len(line)) + "= " + ret


def strace_lines(source: TraceSource, *, tids: Iterable[int] | None = None) -> list[str]:
    """The strace -f lines of a Recorder's syscalls (or of the given roots), optionally only ``tids``'."""
    calls = [c for c in trace_roots(source) if isinstance(c, Call)]
    evs = _events(calls)
    keep = None if tids is None else set(tids)
    evs = [e for e in evs if keep is None or e.tid in keep]
    out: list[str] = []
    for i, e in enumerate(evs):
        prefix = f"{e.tid:<{PID_WIDTH}} "
        rec = e.record
        if e.what == "text":
            out.append(prefix + e.text)
        elif rec is not None and e.what == "start":
            nxt = evs[i + 1] if i + 1 < len(evs) else None
            if nxt is not None and nxt.record is rec:
                continue  # printed whole at its finish
            rec.split = True
            out.append(f"{prefix}{rec.entry} <unfinished ...>")
        elif rec is not None:
            text = f"<... {rec.start.name} resumed>{rec.rest}" if rec.split else rec.entry + rec.rest
            out.append(aligned(prefix, text, return_text(rec.final)))
    return out


def descendants(source: TraceSource, pid: int) -> set[int]:
    """``pid`` and every task it or its descendants created in the trace (the tasks ``strace -f`` follows)."""
    seen = {pid}
    for root in trace_roots(source):
        if isinstance(root, Call) and root.kind == "syscall" and root.tid in seen and root.name in CLONE_CHILDS_PIDS \
                and isinstance(root.ret, int) and root.ret > 0:
            seen.add(root.ret)
    return seen


def strace_text(source: TraceSource, pid: int | None = None) -> str:
    """The whole strace output, one line each: every task's lines, or those of ``pid`` and its descendants."""
    items = trace_roots(source)
    tids = None if pid is None else descendants(items, pid)
    return "".join(line + "\n" for line in strace_lines(items, tids=tids))
