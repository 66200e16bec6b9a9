"""Benchmark 4: minimal fork + exit + wait cycles per second, through the Kernel API against C.

Run: ``./scripts/bench cycle`` (``-- --quick``, ``--rounds N``). This replaces the old
bench_fork.py, whose real side forked this Python process (an interpreter with numpy mapped).

One cycle: the parent forks, the child exits with status 0, the parent waits for it.

* Real: a minimal C helper (dynamically linked, its VMA count printed) does one cycle per
  request -- fork(), _exit(0) in the child, waitpid() in the parent -- timed in C around the
  three calls.
* Model: ``Kernel.fork`` of a process forked from init, ``Kernel.exit_group`` of the child,
  ``Kernel.wait4`` by the parent, timed together. Two parents: ``minimal`` (the model's bare
  process: no VMAs, no fds) and ``realistic`` (6 VMAs with a few touched pages each and 3 open
  fds, benchmarks/model_procs.py).

The two sides take turns, one cycle each. Target (issue 9): model >= 1 x real in cycles per
second, that is model <= 1 x real in time per cycle.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import C_PRELUDE, Helper, build, compare, make_parser, paired, positive_int
from model_procs import exit_and_reap, nr_vmas, realistic_process

from forklab import Kernel
from forklab.include.linux.sched import Task

C_SOURCE = C_PRELUDE + r"""
int main(void) {
    FILE *maps = fopen("/proc/self/maps", "r"); char line[512]; int vmas = 0;
    while (maps && fgets(line, sizeof line, maps)) vmas++;
    if (maps) fclose(maps);
    reply(vmas);
    char op[64]; long count;
    while (next_request(op, &count)) {
        double t0 = now();
        for (long i = 0; i < count; i++) {
            pid_t pid = fork();
            if (pid == 0) _exit(0);
            if (pid < 0) die("fork");
            waitpid(pid, NULL, 0);
        }
        reply((now() - t0) / count);
    }
    return 0;
}
"""


def model_cycle(k: Kernel, parent: Task) -> float:
    """Time one fork + exit_group + wait4 of a child of ``parent`` through the Kernel API."""
    t0 = time.perf_counter()
    exit_and_reap(k, parent, k.fork(parent))
    return time.perf_counter() - t0


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--rounds", type=positive_int, default=3000, help="paired cycles per parent")
    args = parser.parse_args()
    rounds = 100 if args.quick else args.rounds
    exe = build("forklab_bench_cycle", C_SOURCE)
    helper = Helper(exe) if exe is not None else None
    real_vmas = f"{helper.ready[0]:.0f}" if helper is not None else "?"
    try:
        for case in ("minimal", "realistic"):
            k = Kernel()
            parent = realistic_process(k) if case == "realistic" else k.find_task(k.fork(k.init_task))
            model, real = paired(partial(model_cycle, k, parent), helper, "cycle", rounds, warmup=20)
            rates = f"model {1 / model.median:.0f}/s" + (f", real {1 / real.median:.0f}/s" if real else "")
            compare("cycle", f"4 fork+exit+wait, {case} model parent ({nr_vmas(k, parent)} VMAs) vs C parent "
                    f"({real_vmas} VMAs), {rounds} paired cycles; {rates}", model, real, "us", 1e6, 1.0,
                    "model rate >= 1 x real (time <= 1 x real)")
    finally:
        if helper is not None:
            helper.close()


if __name__ == "__main__":
    main()
