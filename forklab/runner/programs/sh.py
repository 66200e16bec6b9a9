"""``sh``: a POSIX shell in the manner of dash, built as a real fork+exec+wait shell on the runner's ``os``.

Invocation: ``sh -c COMMAND [NAME [ARG...]]``, ``sh FILE [ARG...]``, or ``sh`` reading the script
from standard input. The grammar is ``sh_parse``'s (pipelines, ``&&``, ``||``, ``;``, ``&``,
redirections, ``$?`` and the other parameters); the whole script is parsed before it runs.

How commands run, call by call (what the model's trace shows):

* A simple command forks; the child applies the redirections (open, dup2, close), execs the
  command with ``execvp`` (PATH from the variables) and reports ``not found`` (127) or another
  exec error (126) if the exec fails; the shell waits for it.
* A pipeline ``a | b | c`` makes a pipe before each stage but the last and forks one process
  per stage; each child dup2s its ends onto fds 0 and 1 and closes every pipe fd it holds, the
  shell closes its copies as it goes, and waits for every stage. ``$?`` is the last stage's.
* ``cmd &`` forks the pipeline's processes and does not wait (``$!`` is the last one's pid); a
  background and-or list (``a && b &``) runs in a forked subshell. A background job reads
  /dev/null unless it redirects its stdin, as POSIX requires of a shell without job control. ``wait`` waits for every
  background job, ``wait PID`` for one (its status; 127 if it is not a child).
* The shell reaps with ``waitpid(-1, 0)``, as dash's dowait does, keeping the status of every
  child it reaps; a foreground process that a signal killed (other than SIGINT and SIGPIPE) is
  reported on stderr as dash reports it (``Killed``, ``Aborted``), and ``$?`` is 128 + signal.

Built in, as they must be: ``cd``, ``exit``, ``wait``, ``export``, ``:``. ``echo``, ``true``,
``false`` and ``kill``, which dash also builds in, run as the /bin programs, so every command
shows a fork and an exec. A builtin's redirections are applied in the shell and undone after it.
No job control: the shell is non-interactive, as ``sh -c`` is.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from forklab.runner.programs._common import exit_code, is_enoent, read_all, say, signal_text, strerror
from forklab.runner.programs.sh_parse import (
    AndOr,
    Item,
    Pipeline,
    Redirect,
    ShellSyntaxError,
    Simple,
    Word,
    parse,
)
from forklab.uapi import F_DUPFD_CLOEXEC, O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, SIGINT, SIGPIPE

if TYPE_CHECKING:
    from forklab.runner.libc import Libc

SAVED_FD_BASE = 10  # where a builtin's redirected fds are saved, as dash saves them
SYNTAX_STATUS = 2  # dash's status for a syntax error, a bad redirection, a bad builtin use
OPEN_FLAGS = {"<": O_RDONLY, ">": O_WRONLY | O_CREAT | O_TRUNC, ">|": O_WRONLY | O_CREAT | O_TRUNC,
              ">>": O_WRONLY | O_CREAT | O_APPEND, "<>": O_RDWR | O_CREAT}


class ShellExit(Exception):
    """The ``exit`` builtin: unwind to the top of this shell (or subshell) with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class RedirectError(Exception):
    """A redirection failed; the message is dash's (``cannot open x: No such file``)."""


def sh_main(os: Libc, argv: list[str]) -> int:
    """``sh -c COMMAND [NAME [ARG...]]``, ``sh FILE [ARG...]`` or ``sh`` (script on stdin): run it, return ``$?``."""
    args = argv[1:]
    name = argv[0] if argv else "sh"
    if args and args[0].startswith("-") and args[0] not in ("-c", "-", "--"):
        say(os, 2, f"{name}: 0: Illegal option {args[0]}\n")
        return SYNTAX_STATUS
    source, arg0, params, error = _script(os, name, args)
    if error:
        say(os, 2, error)
        return 127 if "Can't open" in error else SYNTAX_STATUS
    try:
        items = parse(source)
    except ShellSyntaxError as e:
        say(os, 2, f"{arg0}: 1: Syntax error: {e}\n")
        return SYNTAX_STATUS
    shell = Shell(os, arg0, params)
    return shell.top(items)


def _script(os: Libc, name: str, args: list[str]) -> tuple[str, str, list[str], str]:
    """(source, $0, positional parameters, error message) from the arguments."""
    if args[:1] == ["-c"]:
        if len(args) < 2:
            return "", name, [], f"{name}: 0: -c requires an argument\n"
        rest = args[2:]
        return args[1], (rest[0] if rest else name), rest[1:], ""
    if args[:1] in (["-"], ["--"]):
        args = args[1:]
    if not args:
        return read_all(os, 0).decode("utf-8", "surrogateescape"), name, [], ""
    try:
        fd = os.open(args[0], O_RDONLY)
    except OSError:
        return "", name, [], f"{name}: 0: Can't open {args[0]}\n"
    try:
        return read_all(os, fd).decode("utf-8", "surrogateescape"), args[0], args[1:], ""
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Fields:
    """Builds the fields of one word's expansion: text joins the current field, unquoted expansions split it."""

    fields: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    started: bool = False

    def text(self, text: str, quoted: bool) -> None:
        """Append to the current field (quoted text makes the field exist even if empty)."""
        self.current.append(text)
        self.started = self.started or quoted or bool(text)

    def split(self, value: str) -> None:
        """An unquoted expansion: split at blanks (IFS' default) into the current field and new ones."""
        pieces = value.split()
        if not pieces:
            return
        if value[0].isspace():
            self.end()
        for i, piece in enumerate(pieces):
            if i:
                self.end()
            self.text(piece, False)
        if value[-1].isspace():
            self.end()

    def end(self) -> None:
        """Close the current field, if there is one."""
        if self.started:
            self.fields.append("".join(self.current))
        self.current, self.started = [], False

    def done(self) -> list[str]:
        """The fields."""
        self.end()
        return self.fields


class Shell:
    """One shell's state: its parameters, variables, ``$?``, ``$!`` and the children it has forked."""

    __slots__ = ("arg0", "exported", "jobs", "last_bg", "os", "params", "pid", "status", "vars")

    def __init__(self, os: Libc, arg0: str, params: list[str]) -> None:
        self.os = os
        self.arg0 = arg0
        self.params = params
        self.vars = dict(os.environ)
        self.exported = set(os.environ)
        self.status = 0
        self.last_bg: int | None = None
        self.jobs: dict[int, int | None] = {}  # pid -> wait status once reaped (None while it runs)
        self.pid = os.getpid()  # $$: the shell's pid, also in its subshells

    # --- the script ---------------------------------------------------------------------------

    def top(self, items: tuple[Item, ...]) -> int:
        """Run the script; ``exit`` ends it early. Returns the status the shell exits with."""
        try:
            for item in items:
                self.item(item)
        except ShellExit as e:
            return e.status
        return self.status

    def item(self, item: Item) -> None:
        """One and-or list, in the foreground or (``&``) in the background."""
        if not item.background:
            self.and_or(item.body)
        elif not item.body.rest:
            self.pipeline(item.body.first, background=True)
        else:
            self.subshell(item.body)
        if item.background:
            self.status = 0

    def and_or(self, body: AndOr) -> int:
        """``a && b || c``: each pipeline after the first runs if the status so far allows it."""
        status = self.pipeline(body.first)
        for op, pipeline in body.rest:
            if (op == "&&") == (status == 0):
                status = self.pipeline(pipeline)
        return status

    def subshell(self, body: AndOr) -> None:
        """``a && b &``: fork a copy of the shell that runs the list and exits with its status."""
        pid = self.os.fork()
        if pid == 0:
            self.jobs.clear()
            self.null_stdin()
            try:
                status = self.and_or(body)
            except ShellExit as e:
                status = e.status
            self.os._exit(status)
        self.jobs[pid] = None
        self.last_bg = pid

    def pipeline(self, pipeline: Pipeline, background: bool = False) -> int:
        """Run a pipeline (a lone builtin in the shell itself); sets and returns ``$?``."""
        commands = pipeline.commands
        argv = self.expand_words(commands[0].words) if len(commands) == 1 else None
        if argv is not None and not background and (not argv or argv[0] in BUILTINS):
            status = self.here(commands[0], argv)
        else:
            pids = self.spawn(commands, background)
            if background:
                self.last_bg = pids[-1]
                return 0
            status = self.wait_for(pids)
        if pipeline.negate:
            status = int(status == 0)
        self.status = status
        return status

    # --- forking --------------------------------------------------------------------------------

    def spawn(self, commands: tuple[Simple, ...], background: bool = False) -> list[int]:
        """Fork one process per stage, joined by pipes; the shell keeps no pipe fd open afterwards."""
        pids: list[int] = []
        prev = -1  # the read end of the previous stage's pipe
        for i, cmd in enumerate(commands):
            last = i == len(commands) - 1
            r, w = (-1, -1) if last else self.os.pipe()
            pid = self.os.fork()
            if pid == 0:
                if background and i == 0:
                    self.null_stdin()
                self.stage(cmd, prev, r, w)
            if prev >= 0:
                self.os.close(prev)
            if not last:
                self.os.close(w)
                prev = r
            self.jobs[pid] = None
            pids.append(pid)
        return pids

    def null_stdin(self) -> None:
        """A background job's stdin is /dev/null, as POSIX requires without job control (dash's forkchild)."""
        self.os.close(0)
        self.os.open("/dev/null", O_RDONLY)

    def stage(self, cmd: Simple, prev: int, r: int, w: int) -> NoReturn:
        """A forked child: stdin from the previous pipe, stdout to the next, then the command; never returns."""
        os = self.os
        if prev >= 0 and prev != 0:
            os.dup2(prev, 0)
            os.close(prev)
        if w >= 0:
            os.close(r)
            if w != 1:
                os.dup2(w, 1)
                os.close(w)
        self.jobs.clear()
        try:
            status = self.child(cmd)
        except ShellExit as e:
            status = e.status
        os._exit(status)

    def child(self, cmd: Simple) -> int:
        """In a forked child: redirections, then a builtin's status, or exec (which returns only on failure)."""
        argv = self.expand_words(cmd.words)
        try:
            self.redirect(cmd.redirects)
        except RedirectError as e:
            self.error(str(e))
            return SYNTAX_STATUS
        if not argv:
            return 0
        builtin = BUILTINS.get(argv[0])
        if builtin is not None:
            return builtin(self, argv)
        env = {k: v for k, v in self.vars.items() if k in self.exported}
        env.update((name, self.expand_single(value)) for name, value in cmd.assigns)
        try:
            self.os.execvpe(argv[0], argv, env)
        except OSError as e:
            self.error(f"{argv[0]}: {'not found' if is_enoent(e) else strerror(e)}")
            return 127 if is_enoent(e) else 126
        raise AssertionError("execvpe returned")

    # --- waiting --------------------------------------------------------------------------------

    def reap(self) -> tuple[int, int] | None:
        """waitpid(-1, 0) once, keeping the status of a child this shell forked; None when it has no child."""
        try:
            pid, status = self.os.waitpid(-1, 0)
        except ChildProcessError:
            for pid in self.jobs:
                if self.jobs[pid] is None:
                    self.jobs[pid] = 127 << 8  # reaped elsewhere: nothing more to learn
            return None
        except InterruptedError:
            return None
        if pid in self.jobs:
            self.jobs[pid] = status
        return pid, status

    def wait_for(self, pids: list[int]) -> int:
        """Wait until every process of a foreground pipeline has been reaped; ``$?`` from the last one."""
        while any(self.jobs.get(pid) is None for pid in pids):
            reaped = self.reap()
            if reaped is not None and reaped[0] in pids:
                self.report(reaped[1])
        statuses = [self.jobs.pop(pid) or 0 for pid in pids]
        return exit_code(statuses[-1])

    def report(self, status: int) -> None:
        """dash's message for a foreground process a signal killed (none for SIGINT and SIGPIPE)."""
        sig = status & 0x7F
        if sig and status & 0xFF != 0x7F and sig not in (SIGINT, SIGPIPE):
            say(self.os, 2, signal_text(sig) + (" (core dumped)" if status & 0x80 else "") + "\n")

    # --- builtins run in the shell ------------------------------------------------------------

    def here(self, cmd: Simple, argv: list[str]) -> int:
        """A builtin (or a command with no words) in the shell: its redirections are undone afterwards."""
        saved: list[tuple[int, int]] = []
        try:
            self.redirect(cmd.redirects, saved)
        except RedirectError as e:
            self.restore(saved)
            self.error(str(e))
            return SYNTAX_STATUS
        try:
            if not argv:
                for name, value in cmd.assigns:
                    self.vars[name] = self.expand_single(value)
                return 0
            return BUILTINS[argv[0]](self, argv)
        finally:
            self.restore(saved)

    def restore(self, saved: list[tuple[int, int]]) -> None:
        """Put back the fds a builtin's redirections replaced (-1: it was closed before)."""
        for fd, copy in reversed(saved):
            if copy < 0:
                self.os.close(fd)
            else:
                self.os.dup2(copy, fd)
                self.os.close(copy)
        saved.clear()

    # --- redirections ---------------------------------------------------------------------------

    def redirect(self, redirects: tuple[Redirect, ...], saved: list[tuple[int, int]] | None = None) -> None:
        """Apply each redirection in order (saving the old fds into ``saved`` when given); RedirectError."""
        for r in redirects:
            if saved is not None:
                saved.append((r.fd, self.save(r.fd)))
            target = self.expand_single(r.target)
            if r.op in (">&", "<&"):
                self.duplicate(r.fd, target)
            else:
                self.open_onto(r.fd, r.op, target)

    def save(self, fd: int) -> int:
        """A close-on-exec copy of ``fd`` at 10 or above, or -1 if ``fd`` is not open."""
        try:
            return self.os.fcntl(fd, F_DUPFD_CLOEXEC, SAVED_FD_BASE)
        except OSError as e:
            if e.errno == errno.EBADF:
                return -1
            raise

    def open_onto(self, fd: int, op: str, path: str) -> None:
        """``fd< path``, ``fd> path``, ...: open, then move the new fd onto ``fd``."""
        try:
            new = self.os.open(path, OPEN_FLAGS[op], 0o666)
        except OSError as e:
            verb, missing = ("open", "No such file") if op == "<" else ("create", "Directory nonexistent")
            raise RedirectError(f"cannot {verb} {path}: {missing if is_enoent(e) else strerror(e)}") from None
        if new != fd:
            self.os.dup2(new, fd)
            self.os.close(new)

    def duplicate(self, fd: int, target: str) -> None:
        """``fd>&N`` (dup2), ``fd>&-`` (close)."""
        if target == "-":
            with contextlib.suppress(OSError):
                self.os.close(fd)
            return
        if not (target.isascii() and target.isdigit()):
            raise RedirectError(f"Syntax error: Bad fd number {target}")
        try:
            self.os.dup2(int(target), fd)
        except OSError:
            raise RedirectError(f"{target}: Bad file descriptor") from None

    # --- expansion ------------------------------------------------------------------------------

    def expand_words(self, words: tuple[Word, ...]) -> list[str]:
        """The fields of a command's words after parameter expansion and field splitting."""
        out: list[str] = []
        for word in words:
            out.extend(self.expand(word))
        return out

    def expand(self, word: Word) -> list[str]:
        """One word's fields: ``"$@"`` makes one per parameter, unquoted expansions split at blanks."""
        f = _Fields()
        for part in word:
            if not part.param:
                f.text(part.text, part.quoted)
            elif part.text == "@" and part.quoted:
                for i, value in enumerate(self.params):
                    if i:
                        f.end()
                    f.text(value, True)
            elif part.quoted:
                f.text(self.param(part.text), True)
            else:
                f.split(self.param(part.text))
        return f.done()

    def expand_single(self, word: Word) -> str:
        """A word expanded without field splitting (assignments, redirection targets)."""
        return "".join(self.param(p.text) if p.param else p.text for p in word)

    def param(self, name: str) -> str:
        """The value of ``$name``: a special parameter, a positional one, or a variable ("" if unset)."""
        special: dict[str, Callable[[], str]] = {
            "?": lambda: str(self.status),
            "$": lambda: str(self.pid),
            "!": lambda: "" if self.last_bg is None else str(self.last_bg),
            "#": lambda: str(len(self.params)),
            "0": lambda: self.arg0,
            "@": lambda: " ".join(self.params),
            "*": lambda: " ".join(self.params),
            "-": lambda: "",
        }
        if name in special:
            return special[name]()
        if name.isdigit():
            n = int(name)
            return self.params[n - 1] if n <= len(self.params) else ""
        return self.vars.get(name, "")

    def error(self, message: str) -> None:
        """dash's error line: ``$0: 1: message``."""
        say(self.os, 2, f"{self.arg0}: 1: {message}\n")


# --- builtins -----------------------------------------------------------------------------------


def _colon(shell: Shell, argv: list[str]) -> int:
    """``:``: nothing, status 0."""
    return 0


def _cd(shell: Shell, argv: list[str]) -> int:
    """``cd [DIR]``: chdir(2) to DIR or $HOME."""
    target = argv[1] if len(argv) > 1 else shell.vars.get("HOME", "/")
    try:
        shell.os.chdir(target)
    except OSError:
        shell.error(f"cd: can't cd to {target}")
        return SYNTAX_STATUS
    return 0


def _builtin_exit(shell: Shell, argv: list[str]) -> int:
    """``exit [N]``: end the shell with N (default ``$?``)."""
    if len(argv) > 1:
        if not (argv[1].isascii() and argv[1].isdigit()):
            shell.error(f"exit: Illegal number: {argv[1]}")
            raise ShellExit(SYNTAX_STATUS)
        raise ShellExit(int(argv[1]) & 0xFF)
    raise ShellExit(shell.status)


def _builtin_wait(shell: Shell, argv: list[str]) -> int:
    """``wait``: every background job (status 0); ``wait PID...``: each one's status (127 if not a child)."""
    if len(argv) == 1:
        while any(status is None for status in shell.jobs.values()):
            if shell.reap() is None:
                break
        shell.jobs.clear()
        return 0
    status = 0
    for arg in argv[1:]:
        if not (arg.isascii() and arg.isdigit()):
            shell.error(f"wait: Illegal number: {arg}")
            return SYNTAX_STATUS
        status = _wait_one(shell, int(arg))
    return status


def _wait_one(shell: Shell, pid: int) -> int:
    """Wait for one child of the shell; its ``$?``, or 127 if the shell has no such child."""
    if pid not in shell.jobs:
        return 127
    while shell.jobs[pid] is None:
        if shell.reap() is None:
            break
    return exit_code(shell.jobs.pop(pid) or 0)


def _export(shell: Shell, argv: list[str]) -> int:
    """``export NAME[=VALUE]...``: pass NAME to the commands' environments."""
    for arg in argv[1:]:
        name, eq, value = arg.partition("=")
        if eq:
            shell.vars[name] = value
        shell.exported.add(name)
    return 0


BUILTINS: dict[str, Callable[[Shell, list[str]], int]] = {
    ":": _colon, "cd": _cd, "exit": _builtin_exit, "wait": _builtin_wait, "export": _export,
}


__all__ = ["BUILTINS", "Shell", "sh_main"]
