"""The program runner (``forklab.run``) against the real kernel: fork loops, posix_spawn, memory, sleepers.

Run: ``./scripts/bench runner`` (or ``.venv/bin/python benchmarks/bench_runner.py [--only NAME]``).

* ``loop``: a shell-like loop of N iterations of fork, child ``_exit``, parent ``waitpid``.
  Fork returns twice by re-execution, so the child of iteration i replays the 2i calls its
  parent made before it: N(N-1) replayed calls in all, a cost that grows with N². Printed:
  the total time, the model kernel's share (the same calls made on a bare Kernel through its
  API), the replayed calls (checked against N(N-1)) and the µs per replayed call (the rest of
  the time divided by the replayed calls: an upper bound, since it includes every other cost
  of the runner). The real side runs the loop in C and in a Python process.
* ``spawn``: the same loop with ``posix_spawn`` of ``/bin/true``: nothing is replayed, so it is
  linear (shown at N/10 and N).
* ``memory``: what the runner adds per live process beyond the model's task: M children asleep
  in a pipe read, measured with tracemalloc against the same M tasks made through the Kernel
  API. The real side is the drop of MemAvailable per sleeping C child.
* ``sleepers``: 5,000 children asleep in a pipe read, then released by the parent closing the
  write end, until the last is reaped.
"""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Sample, build, int_list, make_parser, positive_int, record, run_real

import forklab
from forklab import Kernel

C_SOURCE = r"""
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static long avail_kib(void) {
    FILE *f = fopen("/proc/meminfo", "r"); char line[256]; long v = -1;
    while (f && fgets(line, sizeof line, f)) if (sscanf(line, "MemAvailable: %ld kB", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    const char *what = argv[1]; int n = atoi(argv[2]);
    double t0 = now();
    if (!strcmp(what, "loop")) {
        for (int i = 0; i < n; i++) { pid_t p = fork(); if (p == 0) _exit(0); waitpid(p, NULL, 0); }
    } else if (!strcmp(what, "spawn")) {
        char *args[] = {"true", NULL};
        for (int i = 0; i < n; i++) { pid_t p; posix_spawn(&p, "/bin/true", NULL, NULL, args, environ);
                                      waitpid(p, NULL, 0); }
    } else {  /* sleepers and memory: n children asleep in read(2) on one pipe */
        int fds[2]; char c; if (pipe(fds)) return 1;
        long before = avail_kib();
        for (int i = 0; i < n; i++) { if (fork() == 0) { close(fds[1]); _exit(read(fds[0], &c, 1) != 0); } }
        if (!strcmp(what, "memory")) { usleep(200000); printf("%f\n", (double)(before - avail_kib()) / n); }
        close(fds[1]);
        while (wait(NULL) > 0) {}
        if (!strcmp(what, "memory")) return 0;
    }
    printf("%f\n", now() - t0);
    return 0;
}
"""

PY_LOOP = "import os,sys,time\nt=time.perf_counter()\nfor _ in range({n}):\n pid=os.fork()\n if pid==0: os._exit(0)\n" \
          " os.waitpid(pid,0)\nprint(time.perf_counter()-t)"


def fork_loop(n: int):  # type: ignore[no-untyped-def]
    """The program: N iterations of fork, child _exit, parent waitpid."""
    def main(os):  # type: ignore[no-untyped-def]
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
    return main


def spawn_loop(n: int):  # type: ignore[no-untyped-def]
    """The program: N iterations of posix_spawn of /bin/true and waitpid."""
    def main(os):  # type: ignore[no-untyped-def]
        for _ in range(n):
            os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0)
    return main


def sleepers_program(n: int, probe: list[int] | None):  # type: ignore[no-untyped-def]
    """The program: N children asleep in a pipe read; ``probe`` gets tracemalloc's count once all sleep."""
    def main(os):  # type: ignore[no-untyped-def]
        r, w = os.pipe()
        for _ in range(n):
            if os.fork() == 0:
                os.close(w)
                os._exit(len(os.read(r, 1)))
        if probe is not None:
            os.getpid()  # a choice point: every child runs until it sleeps in its read
            probe.append(tracemalloc.get_traced_memory()[0])
        os.close(w)
        for _ in range(n):
            os.wait()
    return main


def kernel_loop(n: int) -> float:
    """The model kernel's share of the fork loop: the same calls through the Kernel API."""
    k = Kernel()
    parent = k.find_task(k.fork(k.init_task))
    t0 = time.perf_counter()
    for _ in range(n):
        pid = k.fork(parent)
        k.exit_group(k.find_task(pid), 0)
        k.wait4(parent, pid, 0)
    return time.perf_counter() - t0


def bench_loop(sizes: list[int], exe: Path | None) -> None:
    """The fork loop at each size."""
    forklab.run(fork_loop(2))  # warm up: imports and the standard programs' first load
    for n in sizes:
        t0 = time.perf_counter()
        run = forklab.run(fork_loop(n), threads_max=max(1024, 2 * n), timeout=None, max_steps=10 ** 9)
        total = time.perf_counter() - t0
        model = kernel_loop(n)
        expected = n * (n - 1)
        per_call = (total - model) / run.replayed * 1e6 if run.replayed else 0.0
        real = run_real(exe, "loop", n)
        py = float(subprocess.run([sys.executable, "-c", PY_LOOP.format(n=n)], capture_output=True, text=True,
                                  check=True).stdout)
        ratio = f", model/C {total / real[0]:.0f}x, model/Python {total / py:.0f}x" if real else ", no cc: no C side"
        check = "= N(N-1)" if run.replayed == expected else f"!= N(N-1) = {expected}"
        record("runner loop", f"N={n}: total {total:.3f} s, model kernel {model:.3f} s, replayed {run.replayed} "
               f"{check}, {per_call:.3f} us/replayed call; C {real[0] if real else float('nan'):.4f} s, "
               f"Python {py:.4f} s{ratio}")


def bench_spawn(n: int, exe: Path | None) -> None:
    """posix_spawn of /bin/true at N/10 and N: linear time, nothing replayed."""
    times = {}
    forklab.run(spawn_loop(2))  # warm up
    for size in (max(1, n // 10), n):
        t0 = time.perf_counter()
        run = forklab.run(spawn_loop(size), timeout=None, max_steps=10 ** 9)
        times[size] = time.perf_counter() - t0
        assert run.replayed == 0, run.replayed
    small, big = sorted(times)
    real = run_real(exe, "spawn", n)
    growth = times[big] / times[small] / (big / small)
    side = f"C {real[0]:.3f} s, model/C {times[big] / real[0]:.0f}x" if real else "no cc: no C side"
    record("runner spawn", f"N={small}: {times[small]:.3f} s, N={big}: {times[big]:.3f} s (growth per item "
           f"x{growth:.2f} of linear), replayed 0; {side}")


def bench_memory(m: int, exe: Path | None) -> None:
    """The runner's memory per live process beyond the model's task."""
    gc.collect()
    tracemalloc.start()
    probe: list[int] = []
    base = tracemalloc.get_traced_memory()[0]
    forklab.run(sleepers_program(m, probe), threads_max=4 * m + 64, timeout=None)
    runner_bytes = probe[0] - base
    tracemalloc.stop()
    gc.collect()
    tracemalloc.start()
    k = Kernel(threads_max=4 * m + 64)
    base = tracemalloc.get_traced_memory()[0]
    parent = k.find_task(k.fork(k.init_task))
    r, w = k.pipe2(parent, 0)
    for _ in range(m):
        child = k.find_task(k.fork(parent))
        k.close(child, w)
        with contextlib.suppress(forklab.Blocked):
            k.read(child, r, 1)
    kernel_bytes = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    extra = (runner_bytes - kernel_bytes) / m / 1024
    real = run_real(exe, "memory", m)
    side = f"; real kernel: MemAvailable drops {real[0]:.0f} KiB per sleeping C child" if real else ""
    record("runner memory", f"M={m} sleepers: model task {kernel_bytes / m / 1024:.1f} KiB, runner adds "
           f"{extra:.1f} KiB per live process{side}")


def bench_sleepers(n: int, exe: Path | None) -> None:
    """N children asleep in a pipe read, released, reaped."""
    t0 = time.perf_counter()
    run = forklab.run(sleepers_program(n, None), threads_max=4 * n + 64, timeout=None, max_steps=10 ** 9)
    total = time.perf_counter() - t0
    real = run_real(exe, "sleepers", n)
    side = f"C {real[0]:.3f} s, model/C {total / real[0]:.0f}x" if real else "no cc: no C side"
    record("runner sleepers", f"{n} sleepers released: {total:.3f} s (status {run.status}); {side}")


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--only", choices=["loop", "spawn", "memory", "sleepers"], action="append")
    parser.add_argument("--loop-sizes", type=int_list, default=[100, 1000, 10000])
    parser.add_argument("--spawn", type=positive_int, default=10000)
    parser.add_argument("--memory", type=positive_int, default=1000)
    parser.add_argument("--sleepers", type=positive_int, default=5000)
    args = parser.parse_args()
    if args.quick:
        args.loop_sizes, args.spawn, args.memory, args.sleepers = [10], 20, 10, 20
    exe = build("forklab_bench_runner", C_SOURCE)
    only = set(args.only or ["loop", "spawn", "memory", "sleepers"])
    if "loop" in only:
        bench_loop(list(args.loop_sizes), exe)
    if "spawn" in only:
        bench_spawn(args.spawn, exe)
    if "memory" in only:
        bench_memory(args.memory, exe)
    if "sleepers" in only:
        bench_sleepers(args.sleepers, exe)


if __name__ == "__main__":
    main()


__all__ = ["Sample", "main"]
