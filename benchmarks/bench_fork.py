"""Fork cost: the model against the real kernel, side by side in one run.

Run: ``.venv/bin/python benchmarks/bench_fork.py`` (or ``python3 benchmarks/bench_fork.py`` with
forklab installed). Each round forks a child with some touched private memory, lets it exit
and reaps it -- on the model (Kernel.fork/exit/wait4) and on this machine (os.fork, os._exit,
os.waitpid) -- and prints the time per round and the ratio model/real.
"""

from __future__ import annotations

import argparse
import os
import time

from forklab import Kernel
from forklab.uapi import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE


def model_round(k: Kernel) -> None:
    init = k.init_task
    pid = k.fork(init)
    k.exit(k.find_task(pid), 0)
    k.wait4(init, pid, 0)


def real_round() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--pages", type=int, default=64, help="touched private pages in the parent")
    args = parser.parse_args()
    k = Kernel()
    base = k.mmap(k.init_task, 0, args.pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    for i in range(args.pages):
        k.store(k.init_task, base + i * PAGE_SIZE, b"x")
    real_mem = bytearray(args.pages * PAGE_SIZE)  # touched memory in this process too
    real_mem[::PAGE_SIZE] = b"x" * args.pages
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        model_round(k)
    model = (time.perf_counter() - t0) / args.rounds
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        real_round()
    real = (time.perf_counter() - t0) / args.rounds
    print(f"fork+exit+wait, {args.pages} touched pages, {args.rounds} rounds")
    print(f"  model  {model * 1e6:9.1f} us/round")
    print(f"  kernel {real * 1e6:9.1f} us/round (os.fork from Python)")
    print(f"  ratio model/kernel: {model / real:.2f}")


if __name__ == "__main__":
    main()
