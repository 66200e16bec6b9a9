"""The ``forklab`` command line. ``forklab tour`` runs a short live demonstration of the model."""

from __future__ import annotations

import difflib
import importlib
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer._click import Context as ClickContext
from typer._click.exceptions import UsageError
from typer.core import TyperCommand

import forklab.uapi as uapi
from forklab import CloneArgs, Kernel, Recorder
from forklab.errors import InternalError, KernelPanic, Unmodelled
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    SIGCHLD,
)
from forklab.version import VERSIONS, diff_versions

app = typer.Typer(add_completion=False, help="forklab: Linux 5.6.14 process creation, executable and visible.")


@app.callback()
def _root() -> None:
    """forklab: Linux 5.6.14 process creation, executable and visible."""


def _sharing_table(k: Kernel, parent_pid: int, child_pid: int, title: str) -> Table:
    parent, child = k.find_task(parent_pid), k.find_task(child_pid)
    table = Table(title=title)
    table.add_column("resource")
    table.add_column("child vs parent")
    table.add_column("decided by")
    rules = {
        "mm": ("CLONE_VM", "kernel/fork.c:1409 copy_mm"),
        "files": ("CLONE_FILES", "kernel/fork.c:1461 copy_files"),
        "fs": ("CLONE_FS", "kernel/fork.c:1432 copy_fs"),
        "sighand": ("CLONE_SIGHAND", "kernel/fork.c:1506 copy_sighand"),
        "signal": ("CLONE_THREAD", "kernel/fork.c:1555 copy_signal"),
        "cred": ("CLONE_THREAD", "kernel/cred.c:339 copy_creds"),
        "nsproxy": ("CLONE_NEW*", "kernel/nsproxy.c:156 copy_namespaces"),
    }
    for name, (flag, where) in rules.items():
        shared = getattr(child, name) is getattr(parent, name)
        table.add_row(name, "[green]shared[/]" if shared else "[yellow]copied[/]", f"{flag} ({where})")
    return table


@app.command()
def tour() -> None:
    """A live walk through fork, a rejected flag combination, copy-on-write, vfork and wait."""
    console = Console()
    k = Kernel()
    init = k.init_task
    console.rule("[bold]1. Boot")
    console.print(f"init_task: pid {init.pid}, uid {init.cred.uid if init.cred else '?'}, "
                  f"{len(k.all_threads())} task(s), pid_max {k.pid_max}, {k.nr_cpus} CPUs")

    console.rule("[bold]2. fork(): what is shared, what is copied")
    rec = Recorder()
    k.listeners.append(rec)
    child = k.fork(init)
    k.listeners.remove(rec)
    console.print(f"fork() returned {child} in the parent; the child's ax register is "
                  f"{k.find_task(child).regs.ax} (its return value)")
    steps = [e for e in rec.events if e.kind in {
        "dup_task_struct", "copy_creds", "sched_fork", "copy_sighand", "copy_signal", "copy_namespaces",
        "copy_thread_tls", "alloc_pid", "wake_up_new_task", "copy_files", "copy_fs", "dup_mm", "dup_mmap"}]
    for e in steps:
        console.print(f"  [cyan]{e.kind}[/] {e.detail} [dim]({e.source})[/]")
    console.print(_sharing_table(k, 1, child, "fork(): child vs parent"))
    thread = k.clone(init, CLONE_VM | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_FS)
    console.print(_sharing_table(k, 1, thread, "clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD)"))

    console.rule("[bold]3. A rejected flag combination, and the rule that decided")
    try:
        k.clone(init, CLONE_SIGHAND | SIGCHLD)
    except OSError as e:
        console.print(f"clone(CLONE_SIGHAND|SIGCHLD) -> [red]{e}[/]")

    console.rule("[bold]4. Copy-on-write")
    addr = k.mmap(init, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    k.store(init, addr, b"parent")
    before = k.translate(init, addr)
    cow_child = k.find_task(k.fork(init))
    assert before is not None
    page = k.page(before)
    console.print(f"after fork both map pfn {before}: _refcount {page._refcount}, mapcount {page._mapcount + 1}, "
                  "both PTEs write-protected (mm/memory.c:775 copy_one_pte)")
    k.store(cow_child, addr, b"child!")
    console.print(f"child writes: do_wp_page copies -> child pfn {k.translate(cow_child, addr)}, "
                  f"parent keeps pfn {k.translate(init, addr)} (mm/memory.c:2819 wp_page_copy)")
    k.store(init, addr, b"PARENT")
    console.print(f"parent writes next: mapcount is 1, so 5.6 reuses pfn {k.translate(init, addr)} in place "
                  "(mm/memory.c:2804 reuse_swap_page)")
    console.print(f"parent reads {k.load(init, addr, 6)!r}, child reads {k.load(cow_child, addr, 6)!r}")

    console.rule("[bold]5. vfork, exit and wait")
    vchild = k.vfork(init)
    console.print(f"vfork() -> {vchild}; parent state: {init.state!r}, waiting on {init.waits_on}")
    k.exit(k.find_task(vchild), 3)
    console.print(f"child exits: parent is {init.state!r} again (kernel/fork.c:1319 mm_release)")
    pid, status = k.wait4(init, vchild, 0)
    console.print(f"wait4 -> pid {pid}, status {status:#x} (exit code {status >> 8}); pid {vchild} is free again")
    k.check_invariants()
    console.print("[green]check_invariants(): every refcount equals its holders[/]")


def parse_flags(text: str) -> int:
    """``CLONE_VM|CLONE_FS|SIGCHLD`` or a number (0x..., decimal) to a flags word."""

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


@app.command()
def explain(
    call: str = typer.Argument(..., help="clone, clone3, fork, vfork or unshare"),
    flags: str = typer.Argument("0", help="e.g. 'CLONE_VM|CLONE_SIGHAND|SIGCHLD' (clone: exit signal in the low byte)"),
    kernel: str = typer.Option("5.6.14", "--kernel", help="kernel version profile: 5.6.14 or 6.18"),
    exit_signal: str = typer.Option("SIGCHLD", help="clone3's exit_signal"),
    uid: int = typer.Option(0, help="run the call as a task of this uid (setresuid drops capabilities)"),
    set_tid: str = typer.Option("", help="clone3 set_tid, comma separated"),
) -> None:
    """Run one call on a fresh model and say what it returned and which rule decided."""

    console = Console()
    if kernel not in VERSIONS:
        _fail(f"unknown kernel version {kernel!r}; forklab knows {', '.join(VERSIONS)}", "explain")
    try:
        tids = [int(x) for x in set_tid.split(",") if x.strip()]
    except ValueError:
        _fail(f"--set-tid must be comma-separated pids, not {set_tid!r}", "explain")
    k = Kernel(version=kernel)
    task = k.find_task(k.fork(k.init_task))
    if uid:
        k.setresuid(task, uid, uid, uid)
    word = parse_flags(flags)
    rec = Recorder()
    k.listeners.append(rec)
    label = f"{call}({flags})" + (f" as uid {uid}" if uid else "") + f" on Linux {kernel}"
    try:
        if call == "clone":
            result = k.clone(task, word)
        elif call == "clone3":
            result = k.clone3(task, CloneArgs(flags=word, exit_signal=parse_flags(exit_signal), set_tid=tids))
        elif call == "fork":
            result = k.fork(task)
        elif call == "vfork":
            result = k.vfork(task)
        elif call == "unshare":
            result = k.unshare(task, word)
        else:
            raise typer.BadParameter(f"unknown call {call!r}")
    except OSError as e:
        console.print(f"{label} -> [red]{e}[/]")
        _print_steps(console, rec)
        raise typer.Exit(1) from None
    finally:
        k.listeners.remove(rec)
    console.print(f"{label} -> [green]{result}[/]")
    _print_steps(console, rec)
    if call != "unshare":
        console.print(_sharing_table(k, task.pid, task.children[-1].pid if task.children else result, "child vs caller"))


def _print_steps(console: Console, rec: Recorder) -> None:
    for e in rec.events:
        console.print(f"  [cyan]{e.kind}[/] {e.detail} [dim]({e.source})[/]")


@app.command("diff-versions")
def diff_versions_cmd(old: str = typer.Argument("5.6.14"), new: str = typer.Argument("6.18")) -> None:
    """List what changed in the clone path between two kernel versions, one switch per change."""

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


def _parse_count(option: str, text: str, minimum: int | None) -> int:
    """An int option given as text; a one-line error for anything else."""
    try:
        value = int(text, 10)
    except ValueError:
        _fail(f"{option} must be an integer, not {text!r}")
    if minimum is not None and value < minimum:
        _fail(f"{option} must be at least {minimum}, not {value}")
    return value


def _program_file(path: str) -> str:
    """The program path if it is a readable .py file that compiles and defines main; else a one-line error."""
    from forklab.runner.errors import ProgramError  # lazy: only this command loads it
    from forklab.runner.program import from_file  # lazy: only this command loads it

    file = Path(path)
    if not file.is_file():
        _fail(f"{path}: no such program file" if not file.exists() else f"{path}: not a file")
    try:
        from_file(file, with_argv=False)
    except (ValueError, ProgramError) as e:
        _fail(str(e).splitlines()[0])
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


def _standard_programs(path: str) -> dict[str, Any]:
    """The standard executables, less the one at the path ``forklab.run`` gives the program itself."""
    from forklab.runner.programs import STANDARD_PROGRAMS  # lazy: only this command loads it

    own = f"/bin/{Path(path).stem or 'prog'}"
    return {p: prog for p, prog in STANDARD_PROGRAMS.items() if p != own}


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
) -> None:
    """Run a program file on the model and exit with its status."""
    seed_value = _parse_count("--seed", seed, None)
    runs = _parse_count("--max-runs", max_runs, 1)
    path = _program_file(program)
    argv = [Path(path).stem or "prog", *(args or [])]
    if all_outcomes:
        _explore(path, argv, runs)
        return
    import forklab  # lazy: only this command loads it

    try:
        result = forklab.run(path, seed=seed_value, argv=argv, programs=_standard_programs(path))
    except _run_errors() as e:
        _fail(f"{type(e).__name__}: {e}")
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    typer.echo(f"forklab run: {Path(path).name}: {describe_status(result.status)}", err=True)
    raise typer.Exit(shell_status(result.status))


def _explore(path: str, argv: list[str], max_runs: int) -> None:
    """``--all-outcomes``: every distinct outcome ``forklab.explore`` finds, then how complete the search was."""
    try:
        explore = importlib.import_module("forklab.runner.explore").explore
    except (ImportError, AttributeError):
        _fail("--all-outcomes needs forklab.explore (forklab/runner/explore.py), which this forklab does not have yet")
    try:
        result = explore(path, max_runs=max_runs, argv=argv, programs=_standard_programs(path))
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
