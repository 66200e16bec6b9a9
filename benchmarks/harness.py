"""What every benchmark shares: the real side as a small C program, statistics, and the results file.

The real side of a benchmark is a minimal C program built at run time with the system's
``cc`` (never ``os.fork`` of this Python process, which forks an interpreter with numpy
mapped and makes the kernel look slow). Without a compiler, ``build`` returns None and the
benchmark says so and reports the model alone.

``record`` prints one result line and appends it, with a description of the machine, to
``benchmarks/RESULTS.md`` (or to the file named by ``FORKLAB_BENCH_RESULTS``, which the tests set).

Where noise matters the two sides are paired (``paired``): a long-lived C helper (``Helper``,
built from ``C_PRELUDE`` plus the benchmark's operations) and the model take turns, one
operation each, so load on the machine hits both sides alike. The helper reads one request per
line on its stdin, does the operation and replies with the numbers it measured around that
operation alone, one line. ``compare`` prints the two medians, their ranges, the ratio
model/real and the issue's target, and records the line.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

RESULTS = Path(os.environ.get("FORKLAB_BENCH_RESULTS") or Path(__file__).with_name("RESULTS.md"))
_BUILD_DIR = Path(tempfile.gettempdir()) / "forklab-bench"
RESULTS_HEADER = """# Benchmark results

Appended by the benchmarks in this directory (`./scripts/bench`), one line per result: when, which
benchmark, what it printed (model and real medians with their ranges, the ratio model/real, the
target of issue 9 and whether it is met), the forklab commit measured (lines without one predate
that field) and the machine it ran on. Nothing here is written by hand.

"""
MIB = 1 << 20
KIB = 1 << 10

# What every C helper starts with: a clock, /proc/meminfo fields, and the request loop's reader.
C_PRELUDE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

/* one field of /proc/meminfo in KiB, -1 when absent */
static long meminfo_kib(const char *field) {
    FILE *f = fopen("/proc/meminfo", "r"); char line[256]; long v = -1; size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') { v = atol(line + n + 1); break; }
    if (f) fclose(f);
    return v;
}

/* the next request: an operation name and a count (1 when not given); 0 at end of input */
static int next_request(char *op, long *count) {
    char line[4096];
    if (!fgets(line, sizeof line, stdin)) return 0;
    *count = 1;
    return sscanf(line, "%63s %ld", op, count) >= 1;
}

/* one reply line */
static void reply(double value) { printf("%.9f\n", value); fflush(stdout); }

static void die(const char *what) { perror(what); exit(1); }
"""


def build(name: str, source: str, skipped: str = "the real side is skipped") -> Path | None:
    """Compile ``source`` (C) to an executable named ``name``; None, after saying what is ``skipped``, when no
    ``cc`` is installed."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        print(f"no C compiler (cc): {skipped}")
        return None
    _BUILD_DIR.mkdir(exist_ok=True)
    src = _BUILD_DIR / f"{name}.c"
    exe = _BUILD_DIR / name
    src.write_text(source)
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True, capture_output=True)
    return exe


class Helper:
    """A long-lived C helper: one request per line on its stdin, one reply line of numbers per request."""

    def __init__(self, exe: Path, *args: object) -> None:
        self.proc = subprocess.Popen([str(exe), *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self._stdin: IO[str] = self._pipe(self.proc.stdin)
        self._stdout: IO[str] = self._pipe(self.proc.stdout)
        self.ready = self._reply("ready")  # the helper's set-up (touching memory ...) ends with one reply

    @staticmethod
    def _pipe(stream: IO[str] | None) -> IO[str]:
        if stream is None:
            raise RuntimeError("the helper has no pipe")
        return stream

    def _reply(self, request: str) -> list[float]:
        line = self._stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"the C helper died on {request!r} (exit status {self.proc.returncode})")
        return [float(word) for word in line.split()]

    def ask(self, request: str) -> list[float]:
        """Send one request, return the numbers of its reply."""
        self._stdin.write(request + "\n")
        self._stdin.flush()
        return self._reply(request)

    def close(self) -> None:
        """End the helper: close its stdin and reap it."""
        self._stdin.close()
        self.proc.wait()
        self._stdout.close()

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def paired(model: Callable[[], float], helper: Helper | None, request: str, rounds: int,
           warmup: int = 1) -> tuple[Sample, Sample | None]:
    """Alternate one real operation (``request`` to the helper) and one model operation, ``rounds`` times after
    ``warmup`` untimed pairs; each side returns the seconds of its one operation."""
    model_times: list[float] = []
    real_times: list[float] = []
    for i in range(warmup + rounds):
        real = helper.ask(request)[0] if helper is not None else None
        value = model()
        if i >= warmup:
            model_times.append(value)
            if real is not None:
                real_times.append(real)
    return Sample(tuple(model_times)), Sample(tuple(real_times)) if real_times else None


def run_real(exe: Path | None, *args: object) -> list[float]:
    """Run the C side; it prints one number per line (seconds, or KiB); [] without a compiler."""
    if exe is None:
        return []
    out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True, text=True).stdout
    return [float(line) for line in out.split()]


@dataclass(frozen=True, slots=True)
class Sample:
    """Repeated measurements of one quantity: median and range."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median measurement."""
        return statistics.median(self.values)

    def show(self, unit: str, scale: float = 1.0) -> str:
        """``median unit [min-max]``."""
        lo, hi = min(self.values) * scale, max(self.values) * scale
        return f"{self.median * scale:.4g} {unit} [{lo:.4g}-{hi:.4g}]"


def repeat(fn: Callable[[], float], times: int) -> Sample:
    """Call ``fn`` (which returns one measurement) ``times`` times."""
    return Sample(tuple(fn() for _ in range(times)))


def machine() -> str:
    """A one-line description of this machine: CPU, cores, kernel, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}"


@functools.cache
def revision() -> str:
    """The forklab commit measured (short hash), ``+uncommitted`` when forklab/ differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "forklab"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "forklab at an unknown commit"
    return f"forklab {head}{'+uncommitted' if dirty else ''}"


def record(benchmark: str, line: str) -> None:
    """Print ``line`` and append it to RESULTS.md under today's date, the forklab commit and the machine."""
    print(line)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not RESULTS.exists():
        RESULTS.write_text(RESULTS_HEADER)
    with RESULTS.open("a") as f:
        f.write(f"- {stamp} · {benchmark} · {line} · {revision()} · {machine()}\n")


def compare(benchmark: str, what: str, model: Sample, real: Sample | None, unit: str, scale: float,
            limit: float | None, target: str, at_most: float | None = None) -> float | None:
    """Print and record one line: the model's and the real kernel's median and range, the ratio of the medians
    (model/real) and the target -- met when the ratio is at most ``limit``, or, with ``at_most``, when the model's
    median is at most that many ``unit``; returns the ratio."""
    ratio = model.median / real.median if real is not None and real.median > 0 else None
    real_text = real.show(unit, scale) if real is not None else "skipped (no cc or not enough memory)"
    ratio_text = f"ratio model/real {ratio:.3g}x" if ratio is not None else "ratio model/real n/a"
    if at_most is not None:
        verdict = "met" if model.median * scale <= at_most else "NOT met"
    elif limit is None:
        verdict = "not judged on this line"
    elif ratio is None:
        verdict = "not judged without the real side"
    else:
        verdict = "met" if ratio <= limit else "NOT met"
    record(benchmark, f"{what}: model {model.show(unit, scale)}; real {real_text}; {ratio_text}; "
           f"target {target}: {verdict}")
    return ratio


def mem_available_kib() -> int:
    """MemAvailable of /proc/meminfo in KiB (0 when it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def fits_in_memory(need_bytes: int, what: str) -> bool:
    """Whether ``need_bytes`` fit in MemAvailable with a quarter to spare; says so and why when they do not."""
    avail = mem_available_kib() * KIB
    if need_bytes * 5 // 4 <= avail:
        return True
    print(f"skipped {what}: it needs about {need_bytes / MIB:.0f} MiB and MemAvailable is {avail / MIB:.0f} MiB")
    return False


class BenchParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and exit 2."""
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def make_parser(doc: str | None) -> BenchParser:
    """The parser every benchmark starts from: its docstring as description, and ``--quick``."""
    parser = BenchParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: runs in a few seconds")
    return parser


def fail(message: str) -> NoReturn:
    """Refuse a request the machine cannot serve: one line on stderr, exit status 2."""
    sys.stderr.write(f"{Path(sys.argv[0]).name}: error: {message}\n")
    raise SystemExit(2)


def _int_at_least(text: str, minimum: int) -> int:
    """``text`` as an int of at least ``minimum``; argparse's error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an int of at least 1, with a clear error."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse type: an int of at least 0, with a clear error."""
    return _int_at_least(text, 0)


def int_list(text: str) -> Sequence[int]:
    """argparse type: comma-separated positive ints (``100,1000``)."""
    values = [positive_int(part) for part in text.split(",") if part]
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} names no size")
    return values


def size_list(text: str) -> Sequence[int]:
    """argparse type: comma-separated sizes in MiB, 0 allowed (``0,64,1024``)."""
    values = [nonnegative_int(part) for part in text.split(",") if part]
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} names no size")
    return values
