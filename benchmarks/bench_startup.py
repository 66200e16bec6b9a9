"""Benchmark 10: start-up -- ``forklab --help`` and ``python -c "import forklab"``, wall time.

Run: ``./scripts/bench startup`` (``-- --quick``, ``--rounds N``).

A C helper starts each command with posix_spawn (stdout and stderr to /dev/null) and times it
until waitpid returns: the whole wall time of the command, interpreter start-up included.
The commands take turns, one run each per round:

* ``forklab --help``: the console script installed beside this interpreter (``forklab`` in
  the same bin directory);
* ``python -c "import forklab"``: this interpreter;
* the real side, a yardstick: a minimal C program (``int main(void) { return 0; }``), its
  exec and exit, started and timed the same way.

forklab's modules are byte-compiled first (``compileall``), as an installed package's are: pip
compiles them at install, and an editable install gets its ``__pycache__`` on first import. In
an environment with PYTHONDONTWRITEBYTECODE=1 nothing would write them, and every run would time
the compiler too (0.42-0.46 s instead of 0.30 s for ``forklab --help`` on this VM, 2026-12-02).

Without a compiler the two commands are timed from Python (subprocess.run) and the yardstick
is skipped. Targets (issue 9): ``forklab --help`` <= 0.3 s, ``import forklab`` <= 0.15 s
(medians).
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import C_PRELUDE, Helper, Sample, build, compare, fail, make_parser, positive_int

import forklab

C_SOURCE = C_PRELUDE + r"""
int main(void) {
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
    reply(0);
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {  /* one command per line, its words separated by tabs */
        char *argv[64]; int argc = 0;
        line[strcspn(line, "\n")] = 0;
        for (char *w = strtok(line, "\t"); w && argc < 63; w = strtok(NULL, "\t")) argv[argc++] = w;
        argv[argc] = NULL;
        pid_t pid; int status;
        double t0 = now();
        if (posix_spawn(&pid, argv[0], &quiet, NULL, argv, environ)) die("posix_spawn");
        waitpid(pid, &status, 0);
        double t = now() - t0;
        reply(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1);
    }
    return 0;
}
"""
C_MINIMAL = "int main(void) { return 0; }\n"


def commands() -> dict[str, list[str]]:
    """The two model commands, by label."""
    script = Path(sys.executable).with_name("forklab")
    if not script.exists():
        fail(f"no forklab console script at {script}: install forklab (pip install -e .) first")
    return {"forklab --help": [str(script), "--help"], 'python -c "import forklab"': [sys.executable, "-c",
                                                                                       "import forklab"]}


def timed_from_python(argv: list[str]) -> float:
    """Wall time of ``argv`` run from Python, without a C helper."""
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def spawn_time(helper: Helper, argv: list[str]) -> float:
    """Wall time of ``argv`` started by the helper; a failing command is an error."""
    seconds = helper.ask("\t".join(argv))[0]
    if seconds < 0:
        raise RuntimeError(f"{' '.join(argv)} failed")
    return seconds


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--rounds", type=positive_int, default=21, help="runs of each command")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    cmds = commands()
    if not compileall.compile_dir(Path(forklab.__file__).parent, quiet=1):
        print("startup: could not byte-compile every forklab module (a read-only install?); timing as installed")
    helper_exe = build("forklab_bench_startup", C_SOURCE,
                       "the yardstick is skipped and the commands are timed from Python")
    minimal = build("forklab_bench_minimal", C_MINIMAL) if helper_exe is not None else None
    times: dict[str, list[float]] = {label: [] for label in cmds}
    yardstick: list[float] = []
    if helper_exe is None or minimal is None:
        for _ in range(rounds + 1):
            for label, argv in cmds.items():
                times[label].append(timed_from_python(argv))
    else:
        with Helper(helper_exe) as helper:
            for _ in range(rounds + 1):  # the first round warms the page cache up
                yardstick.append(spawn_time(helper, [str(minimal)]))
                for label, argv in cmds.items():
                    times[label].append(spawn_time(helper, argv))
    real = Sample(tuple(yardstick[1:])) if yardstick else None
    for (label, values), limit in zip(times.items(), (0.3, 0.15), strict=True):
        compare("startup", f"10 {label}, {rounds} runs; real = a minimal C program's exec+exit", Sample(tuple(values[1:])),
                real, "s", 1.0, None, f"<= {limit} s", at_most=limit)


if __name__ == "__main__":
    main()
