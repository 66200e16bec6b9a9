"""What tracing costs with no listener: a fork+exit+wait cycle through the Kernel API, traced and not.

Run: ``./scripts/bench trace_overhead`` (``-- --quick``, ``--rounds``, ``--batches``, ``--repeats``).
It prints, for the same cycle:

1. an estimate: the traced calls of one cycle times the measured extra cost of one wrapper
   that finds no listener;
2. in one interpreter, alternating: a kernel with no listener while another kernel listens
   (the wrappers are bound, each tests ``k.listeners``) against no listener anywhere (the
   originals are bound: forklab/trace.py's ``ListenerList`` swaps them);
3. in child interpreters started alternately: the default with no listener anywhere against
   tracing compiled out (``FORKLAB_TRACE=0`` before forklab is imported), the "tracing removed"
   baseline; the best time of each, the ratio of the bests and the median of adjacent pairs.

Alternating, taking the best batch of each run and the median pair keeps other load on the
machine from favouring either side. ``--listening`` also times the cycle with a Recorder
attached, which builds the whole call tree.

This is benchmark 9 of issue 9, on benchmark 4's cycle (the model's bare parent); the kernel
has no such switch, so there is no real side: the ratio printed is traced/untraced. Target:
overhead <= 5% (the median pair ratio at most 1.05).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Sample, make_parser, positive_int, record  # the harness does not import forklab

OVERHEAD_LIMIT = 1.05


def cycle_time(rounds: int, batches: int, listening: bool) -> float:
    """The best time of one fork+exit+wait cycle, in µs, over ``batches`` batches of ``rounds`` cycles."""
    from forklab import Kernel, Recorder  # imported here: the parent process must not import forklab itself

    k = Kernel()
    init = k.init_task
    if listening:
        k.listeners.append(Recorder())
    best = float("inf")
    for batch in range(batches + 1):
        t0 = time.perf_counter()
        for _ in range(rounds):
            pid = k.fork(init)
            k.exit(k.find_task(pid), 0)
            k.wait4(init, pid, 0)
        if listening:
            k.listeners[:] = [Recorder()]  # keep memory flat
        if batch:  # the first batch warms up
            best = min(best, (time.perf_counter() - t0) / rounds * 1e6)
    return best


def wrapper_estimate(calls: int = 300_000) -> tuple[int, float, float]:
    """In one process: the traced calls of one fork+exit+wait cycle, the best extra cost of one wrapper with no
    listener (ns, a traced function against the same function unwrapped) and the cycle's time (µs)."""
    from forklab import Kernel, Recorder  # imported here, as in cycle_time
    from forklab.trace import traced  # the decorator under test

    def plain(k: object, a: int, b: int) -> int:
        """A stand-in kernel function (kernel/fork.c:1)."""
        return a

    wrapped = traced(plain)
    k = Kernel()
    best = {"plain": float("inf"), "wrapped": float("inf")}
    for _ in range(5):
        for name, fn in (("plain", plain), ("wrapped", wrapped)):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn(k, 1, 2)
            best[name] = min(best[name], (time.perf_counter() - t0) / calls * 1e9)
    rec = Recorder()
    k.listeners.append(rec)
    pid = k.fork(k.init_task)
    k.exit(k.find_task(pid), 0)
    k.wait4(k.init_task, pid, 0)
    k.listeners.clear()
    n = sum(1 for e in rec.stream if e.ph == "B" and e.node is not None and getattr(e.node, "kind", "") == "function")
    return n, best["wrapped"] - best["plain"], cycle_time(200, 3, False)


def in_process(rounds: int, batches: int, repeats: int) -> tuple[float, float, float]:
    """One interpreter, alternating: cycles on a kernel with no listener while another kernel listens (so the
    traced functions' wrappers are bound and each tests ``k.listeners``), then while none does (the original
    functions are bound). Returns the best time of each (µs) and the median ratio of adjacent pairs."""
    from forklab import Kernel  # imported here, as in cycle_time

    other = Kernel()
    on_times, off_times = [], []
    for _ in range(repeats):
        for on, times in ((True, on_times), (False, off_times)):
            if on:
                other.listeners.append(lambda event: None)
            else:
                other.listeners.clear()
            times.append(cycle_time(rounds, batches, False))
    pairs = sorted(a / b for a, b in zip(on_times, off_times, strict=True))
    return min(on_times), min(off_times), pairs[len(pairs) // 2]


def run_child(mode: str, rounds: int, batches: int) -> float:
    """Time cycles in a fresh interpreter with tracing compiled in (``on``, ``listening``) or out (``off``)."""
    env = dict(os.environ, FORKLAB_TRACE="0" if mode == "off" else "1", PYTHONHASHSEED="0")  # same hashing in both
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--rounds", str(rounds), "--batches",
                          str(batches)], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--rounds", type=positive_int, default=300, help="cycles per batch")
    parser.add_argument("--batches", type=positive_int, default=5, help="batches per child")
    parser.add_argument("--repeats", type=positive_int, default=25, help="children per mode, alternating")
    parser.add_argument("--listening", action="store_true", help="also time the cycle with a Recorder attached")
    parser.add_argument("--child", choices=("on", "off", "listening"), help=argparse.SUPPRESS)
    parser.add_argument("--estimate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(cycle_time(args.rounds, args.batches, args.child == "listening"))
        return
    if args.quick:
        args.rounds, args.batches, args.repeats = 20, 1, 1
    n, per_call, cycle = wrapper_estimate(10_000 if args.quick else 300_000)
    print(f"traced calls per cycle: {n}; one wrapper with no listener: {per_call:.0f} ns; "
          f"so {n * per_call / 1000:.1f} µs of a {cycle:.1f} µs cycle ({n * per_call / 1000 / cycle * 100:+.1f}%)")
    on, off, ratio = in_process(args.rounds, args.batches, args.repeats)
    print(f"one interpreter, alternating, another kernel listening (wrappers bound) / none: {on:.1f} / {off:.1f} µs;"
          f" median pair {ratio:.3f}x ({(ratio - 1) * 100:+.1f}%)")
    modes = ("on", "off", "listening") if args.listening else ("on", "off")
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for m in modes:
            times[m].append(run_child(m, args.rounds, args.batches))
    best = {m: min(ts) for m, ts in times.items()}
    pairs = sorted(on / off for on, off in zip(times["on"], times["off"], strict=True))
    median = pairs[len(pairs) // 2]
    print(f"fork+exit+wait, no listener anywhere (the default): {best['on']:8.1f} µs")
    print(f"fork+exit+wait, tracing compiled out:               {best['off']:8.1f} µs")
    if args.listening:
        print(f"fork+exit+wait, a Recorder building the call tree:  {best['listening']:8.1f} µs")
    print(f"overhead with no listener: best {best['on'] / best['off']:.3f}x, median of {len(pairs)} adjacent pairs "
          f"{median:.3f}x ({(median - 1) * 100:+.1f}%)")
    on, off = Sample(tuple(times["on"])), Sample(tuple(times["off"]))
    verdict = "met" if median <= OVERHEAD_LIMIT else "NOT met"
    record("trace_overhead", f"9 fork+exit+wait, no listener, {args.repeats} children per mode x {args.batches} "
           f"batches x {args.rounds} cycles (each child's best batch): traced {on.show('us')}, compiled out "
           f"{off.show('us')}; ratio traced/untraced: best {best['on'] / best['off']:.3f}x, median pair {median:.3f}x "
           f"({(median - 1) * 100:+.1f}%); target overhead <= {(OVERHEAD_LIMIT - 1) * 100:.0f}%: {verdict}")

if __name__ == "__main__":
    main()
