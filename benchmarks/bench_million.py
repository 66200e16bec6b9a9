"""Benchmark 7: a million live realistic tasks in one kernel, forked as a tree.

Run: ``./scripts/bench million`` (``-- --quick``, ``--tasks N``, ``--fanout F``).

* Model: ``Kernel(pid_max=4194304)`` (PID_MAX_LIMIT, as ``sysctl kernel.pid_max=4194304``
  would set it) with threads_max raised to fit; the root is benchmarks/model_procs.py's
  realistic process (6 VMAs, a few pages touched in each, 3 open fds) and every task forks
  FANOUT children, breadth first, until N tasks are live (the root included). Timed: the
  N - 1 ``Kernel.fork`` calls. Memory: the growth of this process's VmRSS over the build
  (what the machine must hold), and tracemalloc's count per task from the small estimating
  run.
* Before the build, a small run in a fresh interpreter (2,000 tasks, or N if fewer) measures
  the bytes per task with tracemalloc; if N tasks would not fit in MemAvailable with a quarter to spare, the benchmark
  refuses (exit status 2) and says how many would.
* Real: a C program builds the same tree of N sleeping processes (each forks its children,
  reports on a pipe, sleeps in read(2)); timed from the first fork to the last report; its
  memory is the drop of MemAvailable. It runs only where N fits under the host's pid_max and
  threads-max and in MemAvailable (it is skipped with the reason otherwise; this benchmark
  does not change the host's sysctls).

Target (issue 9): 1,000,000 tasks fit in this machine's memory with room to spare (here: the
model's VmRSS growth at most half the MemAvailable at the start); the time to build is printed.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    C_PRELUDE,
    KIB,
    MIB,
    Sample,
    build,
    compare,
    fail,
    make_parser,
    mem_available_kib,
    positive_int,
    run_real,
)
from model_procs import realistic_process

from forklab import Kernel
from forklab.include.linux.sched import Task
from forklab.include.linux.threads import PID_MAX_LIMIT

ESTIMATE_TASKS = 2000
REAL_TASK_KIB = 128  # a generous bound on a real minimal process (about 100 KiB measured by task_memory)

C_SOURCE = C_PRELUDE + r"""
int main(int argc, char **argv) {
    long n = atol(argv[1]), fanout = atol(argv[2]), me = 0; int ready[2], release[2]; char c = 0;
    if (pipe(ready) || pipe(release)) die("pipe");
    long avail = meminfo_kib("MemAvailable");
    double t0 = now();
    for (long i = 1; i <= fanout; i++) {  /* fork my children; each child continues as node me*fanout+i */
        long node = me * fanout + i;
        if (node >= n) break;
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) { if (me == 0) { close(ready[0]); close(release[1]); }
                      me = node; i = 0; continue; }
    }
    if (me != 0) {
        if (write(ready[1], &c, 1) != 1 || read(release[0], &c, 1) != 0) {}
        while (wait(NULL) > 0) {}
        _exit(0);
    }
    for (long i = 1; i < n; i++) if (read(ready[0], &c, 1) != 1) die("read");
    double t = now() - t0;
    usleep(200000);
    double per_task = (double)(avail - meminfo_kib("MemAvailable")) / n;
    close(release[1]);
    while (wait(NULL) > 0) {}
    printf("%f\n%f\n", t, per_task);
    return 0;
}
"""


def build_tree(k: Kernel, root: Task, n: int, fanout: int) -> None:
    """Fork from ``root`` breadth first, ``fanout`` children per task, until ``n`` tasks are live."""
    queue = [root]
    live = 1
    head = 0
    while live < n:
        parent = queue[head]
        head += 1
        for _ in range(min(fanout, n - live)):
            queue.append(k.find_task(k.fork(parent)))
            live += 1


def new_kernel(n: int) -> tuple[Kernel, Task]:
    """A kernel with pid_max at PID_MAX_LIMIT and room for ``n`` tasks, and its realistic root."""
    k = Kernel(pid_max=PID_MAX_LIMIT, threads_max=max(1024, n + 1024))
    return k, realistic_process(k)


def estimate(n: int, fanout: int) -> float:
    """Bytes per task, from a tree of ESTIMATE_TASKS (or ``n``) tasks measured with tracemalloc."""
    small = min(n, ESTIMATE_TASKS)
    k, root = new_kernel(small)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    build_tree(k, root, small, fanout)
    per_task = (tracemalloc.get_traced_memory()[0] - base) / small
    tracemalloc.stop()
    return per_task


def estimate_elsewhere(n: int, fanout: int) -> float:
    """``estimate`` in a fresh interpreter, so that this one's heap holds nothing freed before the build."""
    out = subprocess.run([sys.executable, __file__, "--estimate", str(n), "--fanout", str(fanout)], check=True,
                         capture_output=True, text=True).stdout
    return float(out)


def vm_rss_kib() -> int:
    """This process's VmRSS in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def host_limit(path: str) -> int:
    """An integer sysctl of the host (0 when unreadable)."""
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return 0


def real_tree(exe: Path | None, n: int, fanout: int) -> tuple[Sample, Sample] | None:
    """The C tree's build time and MemAvailable drop per task, or None (with the reason printed)."""
    if exe is None:  # build said so
        return None
    limit = min(host_limit("/proc/sys/kernel/pid_max"), host_limit("/proc/sys/kernel/threads-max"))
    if n + 1000 > limit:
        print(f"real side skipped: {n} processes exceed the host's pid_max/threads-max ({limit}), left unchanged")
        return None
    if n * REAL_TASK_KIB * 5 // 4 > mem_available_kib():
        print(f"real side skipped: {n} processes need about {n * REAL_TASK_KIB // 1024} MiB")
        return None
    seconds, per_task = run_real(exe, n, fanout)
    return Sample((seconds,)), Sample((per_task * KIB,))


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--tasks", type=positive_int, default=1_000_000, help="live tasks, the root included")
    parser.add_argument("--fanout", type=positive_int, default=8, help="children per task")
    parser.add_argument("--estimate", type=positive_int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.estimate:
        print(estimate(args.estimate, args.fanout))
        return
    n = 200 if args.quick else args.tasks
    if n > PID_MAX_LIMIT - 1000:
        parser.error(f"--tasks must be below {PID_MAX_LIMIT - 1000}: every task needs a pid under pid_max")
    per_task = estimate_elsewhere(n, args.fanout)
    avail = mem_available_kib() * KIB
    fits = int(avail * 4 / 5 / per_task)
    if n * per_task * 5 // 4 > avail:
        fail(f"{n} model tasks need about {n * per_task / MIB:.0f} MiB ({per_task / KIB:.1f} KiB each, measured on "
             f"{min(n, ESTIMATE_TASKS)}) and MemAvailable is {avail / MIB:.0f} MiB: at most about {fits} fit; "
             f"try --tasks {fits}")
    print(f"estimate: {per_task / KIB:.1f} KiB per model task; {n} tasks need about {n * per_task / MIB:.0f} MiB "
          f"of {avail / MIB:.0f} MiB available")
    gc.collect()
    k, root = new_kernel(n)
    rss0 = vm_rss_kib()
    t0 = time.perf_counter()
    build_tree(k, root, n, args.fanout)
    seconds = time.perf_counter() - t0
    grown = (vm_rss_kib() - rss0) * KIB
    if k.nr_threads < n:
        raise RuntimeError(f"the model holds {k.nr_threads} tasks, not {n}")
    exe = build("forklab_bench_million", C_SOURCE)
    real = real_tree(exe, n, args.fanout)
    compare("million", f"7 tree of {n} live realistic tasks (fanout {args.fanout}, pid_max {k.pid_max}), time to "
            f"build, {n / seconds:.0f} forks/s", Sample((seconds,)), real[0] if real else None, "s", 1.0, None,
            "none, the time to build is reported")
    compare("million", f"7 memory of {n} live tasks: model VmRSS growth {grown / MIB:.0f} MiB of "
            f"{avail / MIB:.0f} MiB available; per task", Sample((grown / n,)), real[1] if real else None, "KiB",
            1 / KIB, None, "fits with room to spare: VmRSS growth <= half of MemAvailable", at_most=avail / 2 / n / KIB)


if __name__ == "__main__":
    main()
