"""Benchmark 5: vfork and clone(CLONE_VM) as the parent grows from 0 to 4 GiB.

Run: ``./scripts/bench vfork_growth`` (``-- --quick``, ``--sizes 0,64,1024,4096``, ``--rounds N``).

The parent grows through the sizes (MiB of private anonymous memory populated with
MAP_POPULATE, untimed); at each size both calls are timed. Neither copies page tables, so on
Linux their cost does not depend on the parent's size.

* ``vfork``: from the call until the parent resumes -- the child calls _exit(0) at once (real)
  or ``Kernel.exit_group`` (model), which releases the parent. The reap (waitpid / wait4)
  is not timed.
* ``clone(CLONE_VM|SIGCHLD)``: the call alone, in the parent. Real: glibc's clone() with a
  64 KiB stack for the child, which returns 0 at once; model: ``Kernel.clone``. The child's
  exit and the reap are not timed.

The two sides take turns, one call each. Target (issue 9): flat within 2x across sizes (the
largest median over the smallest), as on Linux; the real side's spread is printed too.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    C_PRELUDE,
    MIB,
    Helper,
    Sample,
    build,
    compare,
    fits_in_memory,
    make_parser,
    paired,
    positive_int,
    record,
    size_list,
)
from model_procs import exit_and_reap, populated

from forklab import Kernel
from forklab.include.linux.sched import Task
from forklab.uapi import CLONE_VM, SIGCHLD

FLAT = 2.0  # the bound on largest/smallest median

C_SOURCE = C_PRELUDE + r"""
static int child_fn(void *arg) { (void)arg; return 0; }

int main(void) {
    static char stack[65536];
    reply(0);
    char op[64]; long count;
    while (next_request(op, &count)) {
        if (!strcmp(op, "grow")) {  /* count MiB more, populated */
            if (count > 0 && mmap(NULL, (size_t)count << 20, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0) == MAP_FAILED) die("mmap");
            reply(0);
            continue;
        }
        double t0 = now(), t; pid_t pid;
        if (!strcmp(op, "vfork")) {
            pid = vfork();
            if (pid == 0) _exit(0);
            t = now() - t0;
        } else {
            pid = clone(child_fn, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
            t = now() - t0;
        }
        if (pid < 0) die(op);
        waitpid(pid, NULL, 0);
        reply(t);
    }
    return 0;
}
"""


def model_vfork(k: Kernel, parent: Task) -> float:
    """Time Kernel.vfork until the child's exit_group releases the parent; the reap is not timed."""
    t0 = time.perf_counter()
    pid = k.vfork(parent)
    k.exit_group(k.find_task(pid), 0)
    elapsed = time.perf_counter() - t0
    k.wait4(parent, pid, 0)
    return elapsed


def model_clone_vm(k: Kernel, parent: Task) -> float:
    """Time Kernel.clone(CLONE_VM|SIGCHLD) alone; the child's exit and the reap are not timed."""
    t0 = time.perf_counter()
    pid = k.clone(parent, CLONE_VM | SIGCHLD)
    elapsed = time.perf_counter() - t0
    exit_and_reap(k, parent, pid)
    return elapsed


def spread(samples: list[Sample]) -> float:
    """The largest median over the smallest."""
    medians = [s.median for s in samples]
    return max(medians) / min(medians)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--sizes", type=size_list, default=[0, 64, 1024, 4096], help="MiB, increasing")
    parser.add_argument("--rounds", type=positive_int, default=300, help="paired calls per size and call")
    args = parser.parse_args()
    sizes, rounds = ([0, 4], 50) if args.quick else (list(args.sizes), args.rounds)
    if sizes != sorted(sizes):
        parser.error("--sizes must be increasing: the parent only grows")
    if not fits_in_memory(sizes[-1] * MIB, f"vfork growth to {sizes[-1]} MiB"):
        return
    exe = build("forklab_bench_vfork_growth", C_SOURCE)
    k = Kernel()
    parent = k.find_task(k.fork(k.init_task))
    helper = Helper(exe) if exe is not None else None
    results: dict[str, tuple[list[Sample], list[Sample]]] = {"vfork": ([], []), "clone(CLONE_VM)": ([], [])}
    try:
        grown = 0
        for mib in sizes:
            if mib > grown:
                populated(k, parent, (mib - grown) * MIB)
                if helper is not None:
                    helper.ask(f"grow {mib - grown}")
                grown = mib
            for call, fn, request in (("vfork", model_vfork, "vfork"), ("clone(CLONE_VM)", model_clone_vm, "clone")):
                model, real = paired(partial(fn, k, parent), helper, request, rounds, warmup=5)
                compare("vfork_growth", f"5 {call}, parent {mib} MiB, {rounds} paired calls", model, real, "us", 1e6,
                        None, "flat within 2x across sizes (summary line)")
                results[call][0].append(model)
                if real is not None:
                    results[call][1].append(real)
    finally:
        if helper is not None:
            helper.close()
    for call, (models, reals) in results.items():
        flat = spread(models)
        real_text = f"real {spread(reals):.2f}x" if reals else "real skipped"
        record("vfork_growth", f"5 {call} from {sizes[0]} to {sizes[-1]} MiB: largest/smallest median: model "
               f"{flat:.2f}x, {real_text}; target flat within {FLAT:g}x: {'met' if flat <= FLAT else 'NOT met'}")


if __name__ == "__main__":
    main()
