"""Benchmark 6: memory per live task -- (a) a bare forked task, (b) a realistic minimal process.

Run: ``./scripts/bench task_memory`` (``-- --quick``, ``--tasks N``, ``--rounds N``).

N children of one parent are created and kept alive; the memory they add, divided by N, is
the cost of one live task.

* Model: measured with tracemalloc (every Python allocation the N ``Kernel.fork`` calls and
  the children's stores leave behind). (a) the parent is the model's bare process forked from
  init (no VMAs, no fds); (b) the parent is benchmarks/model_procs.py's realistic process (6
  VMAs: text, data, heap, stack and two libraries, a few pages touched in each; 3 open fds),
  whose touched pages every child maps (shared, as after any fork).
* Real: a C helper forks N children, each of which reports on a pipe and sleeps in read(2)
  on another; once all are asleep (and 0.2 s later), the growth of Slab + PageTables +
  KernelStack + AnonPages (from /proc/meminfo) per child is the real side, and the drop of
  MemAvailable per child is printed beside it (it moves with everything else the machine
  does, so it is the noisier of the two). The helper is a minimal dynamically linked C process (its VMA
  count printed, about 24, and 3 fds): the smallest real process, so it is the yardstick of
  both (a) and (b), measured afresh for each. Run nothing else meanwhile: MemAvailable is
  the whole machine's.

Targets (issue 9): (a) <= 5 KiB, (b) <= 12 KiB per model task.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import C_PRELUDE, KIB, Helper, Sample, build, compare, make_parser, positive_int
from model_procs import nr_vmas, realistic_process

from forklab import Kernel

C_SOURCE = C_PRELUDE + r"""
static long kernel_kib(void) {
    return meminfo_kib("Slab") + meminfo_kib("PageTables") + meminfo_kib("KernelStack") + meminfo_kib("AnonPages");
}

static void child(int ready, int release) {
    char c = 0;
    if (write(ready, &c, 1) != 1) _exit(1);
    _exit(read(release, &c, 1) != 0);
}

int main(void) {
    FILE *maps = fopen("/proc/self/maps", "r"); char line[512]; int vmas = 0;
    while (maps && fgets(line, sizeof line, maps)) vmas++;
    if (maps) fclose(maps);
    printf("%d %.1f\n", vmas, 0.0); fflush(stdout);
    char op[64]; long n;
    while (next_request(op, &n)) {
        int ready[2], release[2]; char c;
        if (pipe(ready) || pipe(release)) die("pipe");
        long avail = meminfo_kib("MemAvailable"), kern = kernel_kib();
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid < 0) die("fork");
            if (pid == 0) { close(ready[0]); close(release[1]); child(ready[1], release[0]); }
        }
        for (long i = 0; i < n; i++) if (read(ready[0], &c, 1) != 1) die("read");
        usleep(200000);
        double drop = (double)(avail - meminfo_kib("MemAvailable")) / n, grown = (double)(kernel_kib() - kern) / n;
        close(release[1]);
        while (wait(NULL) > 0) {}
        close(ready[0]); close(ready[1]); close(release[0]);
        printf("%.3f %.3f\n", drop, grown); fflush(stdout);
    }
    return 0;
}
"""


def model_task_bytes(case: str, n: int) -> tuple[float, int]:
    """Bytes per live task for ``n`` children (case ``bare`` or ``realistic``), and the parent's VMA count."""
    k = Kernel(threads_max=max(1024, 2 * n))
    parent = realistic_process(k) if case == "realistic" else k.find_task(k.fork(k.init_task))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        k.fork(parent)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / n, nr_vmas(k, parent)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--tasks", type=positive_int, default=1000, help="live children per measurement")
    parser.add_argument("--rounds", type=positive_int, default=3, help="measurements per case and side")
    args = parser.parse_args()
    n, rounds = (50, 1) if args.quick else (args.tasks, args.rounds)
    exe = build("forklab_bench_task_memory", C_SOURCE)
    helper = Helper(exe) if exe is not None else None
    real_vmas = f"{helper.ready[0]:.0f}" if helper is not None else "?"
    try:
        for case, label, target in (("bare", "(a) bare forked task", 5), ("realistic", "(b) realistic task", 12)):
            models: list[float] = []
            drops: list[float] = []
            grown: list[float] = []
            vmas = 0
            for _ in range(rounds):
                per_task, vmas = model_task_bytes(case, n)
                models.append(per_task)
                if helper is not None:
                    drop, kern = helper.ask(f"{case} {n}")
                    drops.append(drop * KIB)
                    grown.append(kern * KIB)
            real = Sample(tuple(grown)) if grown else None
            extra = f"; real MemAvailable drop {Sample(tuple(drops)).show('KiB', 1 / KIB)}" if drops else ""
            compare("task_memory", f"6 {label} x {n} live, {rounds} rounds, model parent {vmas} VMAs, C parent "
                    f"{real_vmas} VMAs; real = Slab+PageTables+KernelStack+AnonPages growth{extra}",
                    Sample(tuple(models)), real, "KiB",
                    1 / KIB, None, f"<= {target} KiB per model task", at_most=target)
    finally:
        if helper is not None:
            helper.close()


if __name__ == "__main__":
    main()
