"""The exact oracle with semantic compression levels: time and certified gap vs the same snapshots
without a menu.

    python benchmarks/bench_levels.py --n 30 --m 5 --levels 0 1 3 --seeds 1 2 3 --snapshots 5

For each seed, ``generate_trace(Scenario.paper(n_mus=N, n_bss=M, semantic_levels=L,
semantic_ratio_min=0.3, semantic_cycles_per_bit=3.0), seed)`` gives frame-start snapshots (slots
0, 2, 4, ...) solved by ``solve(method="exact")``; the script prints the median and worst wall time
per L, its ratio to L = 0 (no menu: the same traces, as the menu changes no other trace input),
the statuses and the largest certified gap.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

from wdtnopt import Scenario, generate_trace
from wdtnopt.solvers import solve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--m", type=int, default=5)
    ap.add_argument("--levels", type=int, nargs="+", default=[0, 1, 3])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--snapshots", type=int, default=5)
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    base = None
    for L in a.levels:
        times, gaps, status = [], [], set()
        for seed in a.seeds:
            sc = Scenario.paper(n_mus=a.n, n_bss=a.m, semantic_levels=L, semantic_ratio_min=0.3,
                                semantic_cycles_per_bit=3.0)
            tr = generate_trace(sc, seed=seed, slots=2 * a.snapshots)
            for t in range(0, 2 * a.snapshots, 2):
                s = tr.snapshot(t, allow_migration=True)
                t0 = time.perf_counter()
                sol = solve(s, method="exact")
                times.append(time.perf_counter() - t0)
                gaps.append(sol.gap)
                status.add(sol.status)
        med = statistics.median(times)
        base = med if base is None else base
        print(f"L = {L}: median {med:.3f} s, worst {max(times):.3f} s, ratio to L = {a.levels[0]}: "
              f"{med / base:.2f}, statuses {sorted(status)}, largest gap {max(gaps):.2e} ({len(times)} snapshots)")


if __name__ == "__main__":
    main()
