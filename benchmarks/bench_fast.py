"""The large-scale method ``fast``: time and certified gap, and agreement with the exact oracle.

    python benchmarks/bench_fast.py --sizes 200x10 1000x50 5000x50 --seeds 5 --exact 100x10 --exact-seeds 5

Part 1 solves ``paper_snapshot(N, M, seed)`` (``wdtnopt.testing``: raw data, a random previous
placement, some DTs migrating) and the trace generator's first
snapshot (``generate_trace(Scenario.paper(n_mus=N, n_bss=M), seed, slots=1).snapshot(0)``) with
``solve_fast(gap=0.01)`` and reports the median wall time and the median / worst certified gap
over the seeds. Part 2 solves the same snapshots with the exact oracle (``solve_exact``,
``gap=1e-4``) where it finishes, and reports the median time ratio, the largest relative excess
of ``fast``'s objective over the exact optimum, and whether ``fast``'s bound stayed below it.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import wdtnopt
from wdtnopt.cost import evaluate
from wdtnopt.solvers.exact import solve_exact
from wdtnopt.solvers.fast import solve_fast
from wdtnopt.testing import paper_snapshot


def _snapshots(kind: str, n: int, m: int, seeds: int):
    for seed in range(seeds):
        if kind == "paper_snapshot":
            yield paper_snapshot(n, m, seed)
        else:
            yield wdtnopt.generate_trace(wdtnopt.Scenario.paper(n_mus=n, n_bss=m), seed=seed, slots=1).snapshot(0)


def _size(text: str) -> tuple[int, int]:
    n, m = text.lower().split("x")
    return int(n), int(m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["200x10", "1000x50", "5000x50"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--exact", nargs="*", default=["100x10"])
    ap.add_argument("--exact-seeds", type=int, default=5)
    ap.add_argument("--exact-time-limit", type=float, default=300.0)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| instances | N x M | requests (median) | time s (median) | time s (max) | gap (median) | gap (worst) | statuses |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("paper_snapshot", "trace"):
        for size in args.sizes:
            n, m = _size(size)
            times, gaps, reqs, statuses = [], [], [], []
            for s in _snapshots(kind, n, m, args.seeds):
                t = time.perf_counter()
                f = solve_fast(s, gap=0.01)
                times.append(time.perf_counter() - t)
                assert evaluate(s, f).feasible
                gaps.append(f.gap)
                reqs.append(int(s.request.sum()))
                statuses.append(f.status)
            st = ", ".join(f"{k} {statuses.count(k)}" for k in sorted(set(statuses)))
            print(f"| {kind} | {n} x {m} | {statistics.median(reqs):.0f} | {statistics.median(times):.2f} | "
                  f"{max(times):.2f} | {100 * statistics.median(gaps):.2f}% | {100 * max(gaps):.2f}% | {st} |", flush=True)
    if not args.exact:
        return
    print()
    print("| instances | N x M | exact time s (median) | fast time s (median) | exact / fast | "
          "fast objective over optimum (worst) | fast bound <= optimum | exact statuses |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.exact:
        n, m = _size(size)
        te, tf, excess, valid, statuses = [], [], [], True, []
        for s in _snapshots("paper_snapshot", n, m, args.exact_seeds):
            t = time.perf_counter()
            f = solve_fast(s, gap=0.01)
            tf.append(time.perf_counter() - t)
            t = time.perf_counter()
            e = solve_exact(s, gap=1e-4, time_limit=args.exact_time_limit)
            te.append(time.perf_counter() - t)
            statuses.append(e.status)
            excess.append((f.objective - e.objective) / e.objective)
            valid &= f.bound <= e.objective * (1 + 1e-9)
        st = ", ".join(f"{k} {statuses.count(k)}" for k in sorted(set(statuses)))
        print(f"| paper_snapshot | {n} x {m} | {statistics.median(te):.2f} | {statistics.median(tf):.2f} | "
              f"{statistics.median(te) / statistics.median(tf):.1f} | {100 * max(excess):.2f}% | {valid} | {st} |",
              flush=True)


if __name__ == "__main__":
    main()
