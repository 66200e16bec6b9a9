"""Benchmark 2: exit + wait of a process with 1 GiB of touched private anonymous memory.

Run: ``./scripts/bench exit_big`` (``-- --quick``, ``--mib N``, ``--rounds N``).

Two cases, each timed from the moment the exiting process is told to exit until its parent's
wait returns (exit_mm unmaps every PTE; nothing else is timed):

* ``owner``: the exiting process mapped the memory itself with MAP_POPULATE, so its exit
  unmaps every PTE and frees every page. Real: the C helper forks a child that maps and
  populates SIZE MiB, says it is ready on a pipe and blocks reading another; the clock runs
  from the parent's write on that pipe to waitpid's return (the child's read returns and it
  calls _exit(0)). Model: a child forked from the parent maps SIZE MiB with MAP_POPULATE
  (untimed); the clock runs over ``Kernel.exit_group`` of the child and the parent's
  ``Kernel.wait4``.
* ``forked child``: the child of benchmark 1's fork (the parent holds SIZE MiB populated);
  its exit unmaps every PTE and drops one mapcount and refcount per page, freeing none.
  Real: as above, the child forked from the C helper holding the memory. Model: as above.

The two sides take turns, one exit each. Target (issue 9): model <= 1 x real.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import C_PRELUDE, MIB, Helper, build, compare, fits_in_memory, make_parser, paired, positive_int
from model_procs import exit_and_reap, populated

from forklab import Kernel
from forklab.include.linux.sched import Task

C_SOURCE = C_PRELUDE + r"""
int main(int argc, char **argv) {
    size_t size = (size_t)atol(argv[1]) << 20;
    char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap");
    reply(0);
    char op[64]; long count;
    while (next_request(op, &count)) {
        int owner = !strcmp(op, "owner"), ready[2], go[2]; char c = 0;
        if (pipe(ready) || pipe(go)) die("pipe");
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            if (owner) { munmap(mem, size);
                         if (mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                                  -1, 0) == MAP_FAILED) _exit(1); }
            if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
            _exit(0);
        }
        if (read(ready[0], &c, 1) != 1) die("read");
        double t0 = now();
        if (write(go[1], &c, 1) != 1) die("write");
        waitpid(pid, NULL, 0);
        double t = now() - t0;
        close(ready[0]); close(ready[1]); close(go[0]); close(go[1]);
        reply(t);
    }
    return 0;
}
"""


def model_exit(k: Kernel, parent: Task, nbytes: int, owner: bool) -> float:
    """Fork a child (which maps ``nbytes`` itself when ``owner``), then time its exit_group and the wait4."""
    pid = k.fork(parent)
    if owner:
        populated(k, k.find_task(pid), nbytes)
    t0 = time.perf_counter()
    exit_and_reap(k, parent, pid)
    return time.perf_counter() - t0


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--mib", type=positive_int, default=1024, help="size of the mapping in MiB")
    parser.add_argument("--rounds", type=positive_int, default=7, help="paired exits per case")
    args = parser.parse_args()
    mib, rounds = (4, 3) if args.quick else (args.mib, args.rounds)
    exe = build("forklab_bench_exit_big", C_SOURCE)
    if not fits_in_memory(2 * mib * MIB, f"exit of {mib} MiB"):
        return
    k = Kernel(threads_max=64)
    parent = k.find_task(k.fork(k.init_task))
    populated(k, parent, mib * MIB)
    helper = Helper(exe, mib) if exe is not None else None
    try:
        for case, owner in (("owner", True), ("forked child", False)):
            model, real = paired(partial(model_exit, k, parent, mib * MIB, owner), helper,
                                 "owner" if owner else "child", rounds)
            compare("exit_big", f"2 exit+wait, {case}, {mib} MiB, {rounds} paired rounds", model, real, "ms", 1e3,
                    1.0, "model <= 1 x real")
    finally:
        if helper is not None:
            helper.close()


if __name__ == "__main__":
    main()
