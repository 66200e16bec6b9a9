"""The ``forklab`` command line. ``forklab tour`` runs a short live demonstration of the model."""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer._click import Context as ClickContext
from typer._click.exceptions import UsageError
from typer.core import TyperCommand

from forklab.errors import InternalError, KernelPanic, Unmodelled

if TYPE_CHECKING:
    from forklab.syscalls import Kernel
    from forklab.trace import Recorder
    from forklab.views.html import ChildWatcher

app = typer.Typer(add_completion=False, help="forklab: Linux 5.6.14 process creation, executable and visible.")
TRACE_FORMATS = ("graph", "strace", "json", "html")


@app.callback()
def _root() -> None:
    """forklab: Linux 5.6.14 process creation, executable and visible."""


@app.command()
def tour(
    stage: str = typer.Option("", "--stage", metavar="N", help="show only stage N (1-9)"),
    html: str = typer.Option("", "--html", metavar="FILE", help="write the whole tour as one HTML page"),
) -> None:
    """A live walk through _do_fork and copy_process, stage by stage, as the seed document tells it."""
    from forklab import tour as tour_mod  # lazy: --help must not load the kernel

    numbers = [_parse_count("--stage", stage, 1, "tour")] if stage else None
    try:
        stages = tour_mod.build_stages(numbers)
    except ValueError as e:
        _fail(str(e), "tour")
    if html:
        _write_file(html, tour_mod.stages_html(stages), "tour")
        typer.echo(f"forklab tour: wrote {html}", err=True)
        return
    tour_mod.render_stages(stages, Console())


def parse_flags(text: str) -> int:
    """``CLONE_VM|CLONE_FS|SIGCHLD`` or a number (0x..., decimal) to a flags word."""
    import forklab.uapi as uapi  # lazy: --help must not load the kernel

    value = 0
    names = [n for n in vars(uapi) if n.startswith(("CLONE_", "SIG")) and isinstance(getattr(uapi, n), int)]
    for part in filter(None, (p.strip() for p in text.replace(",", "|").split("|"))):
        if part.lstrip("-").isdigit() or part.lower().startswith("0x"):
            try:
                value |= int(part, 0)
            except ValueError:
                raise typer.BadParameter(f"{part!r} is not a number") from None
        elif part in names:
            value |= int(getattr(uapi, part))
        else:
            near = difflib.get_close_matches(part, names, n=1)
            raise typer.BadParameter(f"unknown flag {part!r}" + (f" (did you mean {near[0]}?)" if near else ""))
    return value


EXPLAIN_CALLS = ("clone", "clone3", "fork", "vfork", "unshare")


@app.command()
def explain(
    call: str = typer.Argument(..., help="clone, clone3, fork, vfork or unshare"),
    flags: str = typer.Argument("0", help="e.g. 'CLONE_VM|CLONE_SIGHAND|SIGCHLD' or 0x10100 (clone: exit signal in "
                                          "the low byte)"),
    kernel: str = typer.Option("5.6.14", "--kernel", help="kernel version profile: 5.6.14 or 6.18"),
    exit_signal: str = typer.Option("SIGCHLD", help="clone3's exit_signal"),
    uid: int = typer.Option(0, help="run the call as a task of this uid (setresuid drops capabilities)"),
    set_tid: str = typer.Option("", help="clone3 set_tid, comma separated"),
    trace: str = typer.Option("", "--trace", metavar="FORMAT", help="show the call's whole trace: graph, strace, json"),
) -> None:
    """Run one call on a fresh model and say what it returned, which rule decided, and what is shared."""
    from forklab import CloneArgs, Kernel  # lazy: --help must not load the kernel
    from forklab.version import VERSIONS  # lazy: as above

    console = Console()
    if kernel not in VERSIONS:
        _fail(f"unknown kernel version {kernel!r}; forklab knows {', '.join(VERSIONS)}", "explain")
    if call not in EXPLAIN_CALLS:
        _fail(f"unknown call {call!r}; explain knows {', '.join(EXPLAIN_CALLS)}", "explain")
    if trace and trace not in TRACE_FORMATS[:3]:
        _fail(f"--trace must be one of {', '.join(TRACE_FORMATS[:3])}, not {trace!r}", "explain")
    try:
        tids = [int(x) for x in set_tid.split(",") if x.strip()]
    except ValueError:
        _fail(f"--set-tid must be comma-separated pids, not {set_tid!r}", "explain")
    k = Kernel(version=kernel)
    task = k.find_task(k.fork(k.init_task))
    if uid:
        k.setresuid(task, uid, uid, uid)
    try:
        word, signal_word = parse_flags(flags), parse_flags(exit_signal)
    except typer.BadParameter as e:
        _fail(e.message, "explain")
    rec, watcher = _listeners(k)
    shown = "" if call in ("fork", "vfork") else flags
    label = f"{call}({shown})" + (f" as uid {uid}" if uid else "") + f" on Linux {kernel}"
    try:
        result = _explain_call(k, task, call, word, CloneArgs(flags=word, exit_signal=signal_word, set_tid=tids))
    except OSError as e:
        console.print(f"{_markup(label)} -> [red]{_markup(str(e))}[/]")
        _show_trace(console, rec, watcher, trace)
        raise typer.Exit(1) from None
    finally:
        k.listeners.clear()
    console.print(f"{_markup(label)} -> [green]{result}[/]")
    if call != "unshare" and isinstance(result, int) and result > 0:
        _explain_child(console, k, task, result)
    _show_trace(console, rec, watcher, trace)


def _explain_call(k: Kernel, task: Any, call: str, word: int, args: Any) -> object:
    """Make the ``explain`` call as ``task``."""
    if call == "clone":
        return k.clone(task, word)
    if call == "clone3":
        return k.clone3(task, args)
    if call == "fork":
        return k.fork(task)
    if call == "vfork":
        return k.vfork(task)
    return k.unshare(task, word)


def _explain_child(console: Console, k: Kernel, caller: Any, pid: int) -> None:
    """The new task's ids, parent and exit signal, and what it shares with its caller."""
    from forklab.tour import Stage, add_sharing_rows, stage_sharing_table  # lazy: as above

    child = k.find_task(pid)
    parent = child.real_parent.pid if child.real_parent is not None else 0
    console.print(f"child: pid {child.pid}, tgid {child.tgid}, parent {parent}, exit_signal {child.exit_signal}, "
                  f"state {child.state.name}")
    stage = Stage(0, "explain", "")
    add_sharing_rows(stage, "child vs caller", caller, child)
    console.print(stage_sharing_table(stage))


def _listeners(k: Kernel) -> tuple[Recorder, ChildWatcher]:
    """A Recorder and a ChildWatcher attached to ``k``."""
    from forklab.views.html import page_listeners  # lazy: as above

    return page_listeners(k)


def _show_trace(console: Console, rec: Recorder, watcher: ChildWatcher, fmt: str) -> None:
    """The decisions of the call (no format), or its whole trace in ``fmt``."""
    if not fmt:
        for e in rec.events:
            console.print(f"  [cyan]{e.kind}[/] {_markup(e.detail)} [dim]({e.source})[/]")
        return
    sys.stdout.write(render_trace(fmt, rec, watcher, "forklab explain"))
    sys.stdout.flush()


def render_trace(fmt: str, rec: Recorder, watcher: ChildWatcher | None, title: str) -> str:
    """A recorded trace in one of TRACE_FORMATS: ftrace function_graph, strace -f, Chrome trace JSON, HTML."""
    if fmt == "graph":
        from forklab.views.ftrace import function_graph  # lazy: as above

        return function_graph(rec, comments=True)
    if fmt == "strace":
        from forklab.views.strace import strace_text  # lazy: as above

        return strace_text(rec)
    if fmt == "json":
        from forklab.views.chrome import chrome_json  # lazy: as above

        return chrome_json(rec)
    from forklab.views.html import trace_to_html  # lazy: as above

    return trace_to_html(rec, watcher, title)


def _markup(text: str) -> str:
    """Text safe inside rich markup."""
    return text.replace("[", r"\[")


def _write_file(path: str, text: str, command: str) -> None:
    """Write ``text`` to ``path``; a one-line error if it cannot."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        _fail(f"cannot write {path}: {e.strerror}", command)


# --- forklab trace, ps, pstree -----------------------------------------------------------------

TRACE_HELP = """Trace a built-in scenario or a program file (PROGRAM.py defining main(os)) and print the trace.

Formats: graph (ftrace function_graph), strace (strace -f), json (Chrome/Perfetto trace events), html (one self-contained page). Scenarios: fork, vfork, thread, clone3-pidfd, newpid, newuser, cow, exec, pipeline, failure.
"""


@app.command("trace", help=TRACE_HELP)
def trace_cmd(
    what: str = typer.Argument(..., metavar="SCENARIO|PROGRAM.py"),
    fmt: str = typer.Option("graph", "--format", help="graph, strace, json or html"),
    output: str = typer.Option("", "-o", "--output", metavar="FILE", help="write the trace to FILE"),
    seed: str = typer.Option("0", "--seed", help="a program's schedule seed"),
) -> None:
    """Run a scenario or a program on the model with the trace on, and print it in a tool's format."""
    if fmt not in TRACE_FORMATS:
        _fail(f"--format must be one of {', '.join(TRACE_FORMATS)}, not {fmt!r}", "trace")
    _, rec, watcher = _traced_subject(what, _parse_count("--seed", seed, None, "trace"), "trace")
    text = render_trace(fmt, rec, watcher, f"forklab trace {what}")
    if output:
        _write_file(output, text, "trace")
        return
    sys.stdout.write(text)
    sys.stdout.flush()


def _traced_subject(what: str, seed: int, command: str,
                    extra: Callable[[Kernel], Any] | None = None) -> tuple[Kernel, Recorder, ChildWatcher]:
    """Run a scenario (by name) or a program file with a Recorder, a ChildWatcher and ``extra(k)`` attached."""
    from forklab.scenarios import SCENARIOS  # lazy: as above

    if what in SCENARIOS:
        from forklab import Kernel  # lazy: as above

        k = Kernel()
        rec, watcher = _listeners(k)
        if extra is not None:
            k.listeners.append(extra(k))
        try:
            SCENARIOS[what][0](k)
        finally:
            k.listeners.clear()
        return k, rec, watcher
    if not what.endswith(".py"):
        _fail(f"{what!r} is neither a scenario ({', '.join(SCENARIOS)}) nor a program file (.py)", command)
    path = _program_file(what, command)
    runner = _program_runner(path, [Path(path).stem or "prog"], seed, command)
    rec, watcher = _listeners(runner.kernel)
    if extra is not None:
        runner.kernel.listeners.append(extra(runner.kernel))
    _execute(runner, command)
    return runner.kernel, rec, watcher


class AtFullest:
    """A listener keeping ``view(k)`` as it was when the most tasks existed (the first such moment)."""

    def __init__(self, k: Kernel, view: Callable[[Kernel], str]) -> None:
        self.k, self.view = k, view
        self.most = 0
        self.text = ""

    def __call__(self, event: Any) -> None:
        if event.ph != "E":
            return
        count = len(self.k.all_threads())
        if count > self.most:
            self.most, self.text = count, self.view(self.k)


def _program_runner(path: str, argv: list[str], seed: int, command: str) -> Any:
    """A runner for the program file on a fresh kernel, before its first call (listeners can be attached)."""
    from forklab.runner.core import setup  # lazy: as above

    try:
        return setup(path, argv=argv).runner(seed)
    except (TypeError, ValueError) as e:
        _fail(str(e), command)


def _execute(runner: Any, command: str) -> Any:
    """Run the program to its end; its Run, or a one-line error."""
    try:
        runner.execute()
    except _run_errors() as e:
        _fail(f"{type(e).__name__}: {e}", command)
    return runner.result()


WHEN_HELP = "end: the state the scenario or program ends in; fullest: the moment the most tasks existed"


def _process_view(what: str, seed: str, when: str, command: str, view: Callable[[Kernel], str]) -> str:
    """``view`` of the model's tasks at the end of a scenario or program, or when they were the most."""
    if when not in ("end", "fullest"):
        _fail(f"--when must be end or fullest, not {when!r}", command)
    seed_value = _parse_count("--seed", seed, None, command)
    box: list[AtFullest] = []

    def fullest(k: Kernel) -> AtFullest:
        box.append(AtFullest(k, view))
        return box[0]

    k = _traced_subject(what, seed_value, command, fullest if when == "fullest" else None)[0]
    return box[0].text if box else view(k)


@app.command("ps")
def ps_cmd(what: str = typer.Argument("fork", metavar="SCENARIO|PROGRAM.py"),
           seed: str = typer.Option("0", "--seed"),
           when: str = typer.Option("end", "--when", help=WHEN_HELP)) -> None:
    """``ps -eLf`` of the model's tasks at the end of a scenario or a program (or at its fullest)."""
    from forklab.views.process_list import ps_elf  # lazy: as above

    typer.echo(_process_view(what, seed, when, "ps", ps_elf), nl=False)


@app.command("pstree")
def pstree_cmd(what: str = typer.Argument("fork", metavar="SCENARIO|PROGRAM.py"),
               seed: str = typer.Option("0", "--seed"),
               when: str = typer.Option("end", "--when", help=WHEN_HELP)) -> None:
    """``pstree -p`` of the model's tasks at the end of a scenario or a program (or at its fullest)."""
    from forklab.views.process_list import pstree_p  # lazy: as above

    typer.echo(_process_view(what, seed, when, "pstree", pstree_p), nl=False)


@app.command("diff-versions")
def diff_versions_cmd(old: str = typer.Argument("5.6.14"), new: str = typer.Argument("6.18")) -> None:
    """List what changed in the clone path between two kernel versions, one switch per change."""
    from rich.table import Table  # lazy: as above

    from forklab.version import VERSIONS, diff_versions  # lazy: as above

    for version in (old, new):
        if version not in VERSIONS:
            _fail(f"unknown kernel version {version!r}; forklab knows {', '.join(VERSIONS)}", "diff-versions")

    table = Table(title=f"clone path: Linux {old} -> {new}")
    table.add_column("since")
    table.add_column("switch")
    table.add_column("what a user sees")
    table.add_column("where")
    for change in diff_versions(old, new):
        table.add_row(".".join(map(str, change.since)), change.name, change.effect, change.source)
    Console().print(table)


@app.command("verify")
def verify_cmd(
    against_host: bool = typer.Option(False, "--against-host", help="compare the model with this machine's kernel"),
    n: int = typer.Option(2000, "-n", help="number of seeded random cases"),
    seed: int = typer.Option(0, help="seed of the random cases"),
    kernel: str = typer.Option("", "--kernel", help="model version (default: the one matching the host)"),
    modes: str = typer.Option("priv,unpriv,userns", help="callers: priv, unpriv (uid 1000), userns"),
    limit: int = typer.Option(40, help="disagreements to print"),
) -> None:
    """Run single flags, flag pairs and random clone/clone3 cases on the model and the host; print agreement."""
    from forklab import host  # lazy: only this command loads it
    from forklab import verify as verify_mod  # lazy: only this command loads it

    if not against_host:
        raise typer.BadParameter("only --against-host is supported: the host kernel is the oracle")
    version = kernel or verify_mod.model_version_for_host()
    if version is None:
        typer.echo("the model has no version matching this kernel; pass --kernel", err=True)
        raise typer.Exit(2)
    wanted = [m for m in modes.split(",") if m]
    usable = [m for m in wanted if host.available(m)]
    for m in set(wanted) - set(usable):
        typer.echo(f"skipping mode {m}: {host.unavailable_reason(m)}", err=True)
    if not usable:
        raise typer.Exit(2)
    report = verify_mod.verify(version, n_random=n, seed=seed, modes=usable)
    typer.echo(verify_mod.format_report(report, limit=limit))
    if report.disagreements:
        raise typer.Exit(1)


# --- forklab run -------------------------------------------------------------------------------

RUN_HELP = """Run PROGRAM.py (a file defining main(os)) on the model kernel: print its output and its exit status.

Exits with the program's status: its exit status, or 128 + the signal that killed it, as a shell reports it.

Status 2 with a one-line message means forklab could not run it: a missing file, no main, a bad option, or a run that cannot finish (a deadlock, a used-up budget).

The standard programs (/bin/sh, /bin/echo, /bin/cat, ...) are installed for its execs. With --all-outcomes it lists every outcome forklab.explore finds instead, and exits 0.
"""


def _fail(message: str, command: str = "run") -> NoReturn:
    """One line on stderr and status 2: how a command reports input it cannot use."""
    typer.echo(f"forklab {command}: {message}", err=True)
    raise typer.Exit(2)


def _parse_count(option: str, text: str, minimum: int | None, command: str = "run") -> int:
    """An int option given as text; a one-line error for anything else."""
    try:
        value = int(text, 10)
    except ValueError:
        _fail(f"{option} must be an integer, not {text!r}", command)
    if minimum is not None and value < minimum:
        _fail(f"{option} must be at least {minimum}, not {value}", command)
    return value


def _program_file(path: str, command: str = "run") -> str:
    """The program path if it is a readable .py file that compiles and defines main; else a one-line error."""
    from forklab.runner.errors import ProgramError  # lazy: only this command loads it
    from forklab.runner.program import from_file  # lazy: only this command loads it

    file = Path(path)
    if not file.is_file():
        _fail(f"{path}: no such program file" if not file.exists() else f"{path}: not a file", command)
    try:
        from_file(file, with_argv=False)
    except (ValueError, ProgramError) as e:
        _fail(str(e).splitlines()[0], command)
    return path


def shell_status(status: int) -> int:
    """A wait status as a shell's ``$?``: WEXITSTATUS, or 128 + WTERMSIG."""
    if status & 0x7F == 0:
        return (status >> 8) & 0xFF
    return 128 + (status & 0x7F)


def describe_status(status: int) -> str:
    """``exit status 3`` or ``killed by signal 6 (SIGABRT)``."""
    import signal

    if status & 0x7F == 0:
        return f"exit status {(status >> 8) & 0xFF}"
    sig = status & 0x7F
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    return f"killed by signal {sig} ({name})"


def _run_errors() -> tuple[type[BaseException], ...]:
    """What ends a run without a result: the runner's RunError, and calls or states the model does not have."""
    from forklab.runner.errors import RunError  # lazy: only this command loads it

    return (RunError, Unmodelled, KernelPanic, InternalError)


@app.command("run", help=RUN_HELP)
def run_cmd(
    program: str = typer.Argument(..., metavar="PROGRAM.py", help="a Python file defining main(os)"),
    args: Annotated[list[str] | None, typer.Argument(metavar="[-- ARGS]", help="the program's arguments")] = None,
    seed: str = typer.Option("0", "--seed", help="the schedule's seed; 0 is Linux-like (no preemption)"),
    all_outcomes: bool = typer.Option(False, "--all-outcomes", help="list every outcome (forklab.explore)"),
    max_runs: str = typer.Option("1000", "--max-runs", help="with --all-outcomes: the most runs to explore"),
    strace: bool = typer.Option(False, "--strace", help="print the run's syscalls as strace -f does, on stderr"),
    trace: str = typer.Option("", "--trace", metavar="FILE",
                              help="write the run's trace to FILE (.json: Chrome trace events, .html: a page, "
                                   "else ftrace function_graph text)"),
    pstree: bool = typer.Option(False, "--pstree", help="print pstree -p of the process tree at its fullest"),
    proc: str = typer.Option("", "--proc", metavar="PID", help="print /proc/PID/{status,stat,statm,maps} at its exit"),
) -> None:
    """Run a program file on the model and exit with its status."""
    seed_value = _parse_count("--seed", seed, None)
    runs = _parse_count("--max-runs", max_runs, 1)
    proc_pid = _parse_count("--proc", proc, 1) if proc else 0
    path = _program_file(program)
    argv = [Path(path).stem or "prog", *(args or [])]
    if all_outcomes:
        _explore(path, argv, runs)
        return
    runner = _program_runner(path, argv, seed_value, "run")
    rec, watcher = _listeners(runner.kernel) if strace or trace else (None, None)
    views = RunViews(runner.kernel, pstree, proc_pid)
    runner.kernel.listeners.append(views)
    result = _execute(runner, "run")
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    if rec is not None and strace:
        sys.stderr.write(render_trace("strace", rec, watcher, program))
    if rec is not None and trace:
        fmt = "json" if trace.endswith(".json") else "html" if trace.endswith(".html") else "graph"
        _write_file(trace, render_trace(fmt, rec, watcher, f"forklab run {program}"), "run")
    views.report(proc_pid)
    typer.echo(f"forklab run: {Path(path).name}: {describe_status(result.status)}", err=True)
    raise typer.Exit(shell_status(result.status))


class RunViews:
    """A listener for ``run --pstree`` and ``--proc``: the tree when it had the most tasks, a task's views at exit."""

    PROC_FILES = ("status", "stat", "statm", "maps")

    def __init__(self, k: Kernel, pstree: bool, pid: int) -> None:
        from forklab.views.process_list import pstree_p  # lazy: as above

        self.k, self.pstree, self.pid = k, pstree, pid
        self.fullest = AtFullest(k, pstree_p)
        self.proc: list[tuple[str, str]] = []

    def __call__(self, event: Any) -> None:
        if self.pstree:
            self.fullest(event)
        if self.pid and event.ph == "B" and event.kind == "do_exit" and event.tid == self.pid and not self.proc:
            self.proc = [(name, self._read(name)) for name in self.PROC_FILES]

    def _read(self, name: str) -> str:
        """One /proc file of the task, as init reads it; what the model cannot show says so."""
        try:
            return self.k.proc(f"/proc/{self.pid}/{name}")
        except (OSError, Unmodelled) as e:
            return f"({e})\n"

    def report(self, pid: int) -> None:
        """Print what was collected, on stderr."""
        if self.pstree:
            typer.echo(f"--- pstree -p at its fullest ({self.fullest.most} tasks)", err=True)
            typer.echo(self.fullest.text, err=True, nl=False)
        if pid and not self.proc:
            typer.echo(f"--- pid {pid} did not exit in this run", err=True)
        for name, text in self.proc:
            typer.echo(f"--- /proc/{pid}/{name} at exit", err=True)
            typer.echo(text, err=True, nl=False)


def _explore(path: str, argv: list[str], max_runs: int) -> None:
    """``--all-outcomes``: every distinct outcome ``forklab.explore`` finds, then how complete the search was."""
    explore = importlib.import_module("forklab.runner.explore").explore  # lazy, and patchable by the tests
    try:
        result = explore(path, max_runs=max_runs, argv=argv)
    except _run_errors() as e:
        _fail(f"{type(e).__name__}: {e}")
    except TypeError as e:
        _fail(f"forklab.explore cannot take this program: {e}")
    outcomes = list(result.outcomes)
    for i, outcome in enumerate(outcomes, 1):
        typer.echo(f"--- outcome {i} of {len(outcomes)}: {_outcome_status(outcome)}")
        sys.stdout.flush()
        sys.stdout.buffer.write(outcome.stdout)
        sys.stdout.flush()
        sys.stderr.buffer.write(getattr(outcome, "stderr", b""))
    how = "complete" if result.complete else "incomplete"
    typer.echo(f"--- {len(outcomes)} outcome{'s' if len(outcomes) != 1 else ''} in {result.runs} "
               f"run{'s' if result.runs != 1 else ''} ({how}: {result.basis})")


def _outcome_status(outcome: Any) -> str:
    """An outcome's status as ``describe_status`` says it, or why it has none (a deadlock)."""
    if outcome.status is None:
        return f"no status: {getattr(outcome, 'error', None) or 'the run did not end'}"
    return describe_status(outcome.status)


# --- forklab quiz ------------------------------------------------------------------------------

QUIZ_HELP = """The process-tree quiz of OSTEP's cpu-api/fork.py homework, with the same options, run on the model kernel.

Random forks and exits (or the -A list) are shown one at a time: say what the tree looks like after each (-c shows it), or with -t the trees are shown and you say the actions. Names are fork.py's: the root process is a, the next ones b, c, ...

By default each action runs on a fresh model kernel (k.fork, k.exit, k.wait4) and every tree is read from the kernel's task list, rooted at init. An orphan goes to its nearest child subreaper (--subreaper, or with -R every process is one), else to init. An exited process stays as 'NAME <defunct>' (a zombie) until its parent waits for it; init reaps its own zombie children at once. -A also takes 'X<' (X waits for any child, WNOHANG) and 'X<Y' (X waits for Y).

--ostep is fork.py's own model, output byte for byte: an orphan and all its descendants move to the root process (-R: the orphans go to the exiting process's parent), and nothing stays a zombie. A run without -s is seeded with -1, so it repeats (fork.py leaves it unseeded).
"""


class _QuizCommand(TyperCommand):
    """The quiz command: a usage error (an unknown option, a missing value) is one line and status 2."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as e:  # typer's own click: what an unknown option or a missing value raises
            _fail(e.format_message(), "quiz")


@app.command("quiz", help=QUIZ_HELP, cls=_QuizCommand, context_settings={"help_option_names": ["-h", "--help"]})
def quiz_cmd(
    ostep: bool = typer.Option(False, "--ostep", help="fork.py's model and output, byte for byte"),
    seed: str = typer.Option("-1", "-s", "--seed", metavar="INT", help="the random seed"),
    forks: str = typer.Option("0.7", "-f", "--forks", metavar="FRACTION",
                              help="fraction of actions that are forks (not exits)"),
    actions: str = typer.Option("5", "-a", "--actions", metavar="N", help="number of forks/exits to do"),
    action_list: str = typer.Option("", "-A", "--action_list", metavar="LIST",
                                    help="actions instead of random ones: a+b,b+c,b-"),
    show_tree: bool = typer.Option(False, "-t", "--show_tree", help="show the trees, ask for the actions"),
    print_style: str = typer.Option("fancy", "-P", "--print_style", metavar="STYLE",
                                     help="tree style: basic, line1, line2, fancy"),
    final_only: bool = typer.Option(False, "-F", "--final_only", help="only the final tree"),
    leaf_only: bool = typer.Option(False, "-L", "--leaf_only", help="only processes without children exit"),
    local_reparent: bool = typer.Option(False, "-R", "--local_reparent",
                                        help="orphans go to the exiting process's parent (Linux: all are subreapers)"),
    compute: bool = typer.Option(False, "-c", "--compute", help="show the answers"),
    waits: str = typer.Option("0", "-w", "--waits", metavar="FRACTION",
                              help="Linux: fraction of actions that are waits, when one can reap"),
    subreaper: str = typer.Option("", "--subreaper", metavar="NAMES",
                                  help="Linux: processes that set PR_SET_CHILD_SUBREAPER, e.g. a,c"),
    pids: bool = typer.Option(False, "-p", "--pids", help="Linux: show each process's pid, as pstree -p does"),
) -> None:
    """Run the fork.py quiz on the model (or, with --ostep, as fork.py itself) and print it."""
    from forklab import quiz as quiz_mod  # lazy: only this command loads it

    try:
        opts = quiz_mod.QuizOptions(
            seed=quiz_mod.optparse_int("-s", seed), fork_percentage=quiz_mod.optparse_float("-f", forks),
            actions=quiz_mod.optparse_int("-a", actions), action_list=action_list, show_tree=show_tree,
            just_final=final_only, leaf_only=leaf_only, local_reparent=local_reparent, print_style=print_style,
            solve=compute, mode="ostep" if ostep else "linux", wait_percentage=quiz_mod.optparse_float("-w", waits),
            subreapers=quiz_mod.subreaper_names(subreaper), show_pids=pids)
        text = quiz_mod.quiz(opts)
    except quiz_mod.QuizError as e:
        _fail(str(e), "quiz")
    except (Unmodelled, KernelPanic, InternalError) as e:
        _fail(f"{type(e).__name__}: {e}", "quiz")
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
