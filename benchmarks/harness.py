"""What every benchmark shares: the real side as a small C program, statistics, and the results file.

The real side of a benchmark is a minimal C program built at run time with the system's
``cc`` (never ``os.fork`` of this Python process, which forks an interpreter with numpy
mapped and makes the kernel look slow). Without a compiler, ``build`` returns None and the
benchmark says so and reports the model alone.

``record`` prints one result line and appends it, with a description of the machine, to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_BUILD_DIR = Path(tempfile.gettempdir()) / "forklab-bench"


def build(name: str, source: str) -> Path | None:
    """Compile ``source`` (C) to an executable named ``name``; None when no ``cc`` is installed."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    _BUILD_DIR.mkdir(exist_ok=True)
    src = _BUILD_DIR / f"{name}.c"
    exe = _BUILD_DIR / name
    src.write_text(source)
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True, capture_output=True)
    return exe


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


def record(benchmark: str, line: str) -> None:
    """Print ``line`` and append it to RESULTS.md under today's date and the machine."""
    print(line)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with RESULTS.open("a") as f:
        f.write(f"- {stamp} · {benchmark} · {line} · {machine()}\n")


def positive_int(text: str) -> int:
    """argparse type: an int of at least 1, with a clear error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def int_list(text: str) -> Sequence[int]:
    """argparse type: comma-separated positive ints (``100,1000``)."""
    return [positive_int(part) for part in text.split(",") if part]
