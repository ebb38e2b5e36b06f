"""Time limits honoured? Wall time minus the limit, with status and certificate (docs/reliability.md).

    .venv/bin/python benchmarks/time_limits.py --limits 0.05 0.2 1.0 --seeds 5

For each method and limit, solves instances big enough to hit the limit (exact: 60x5;
fast: 2000x50; pyomo/SCIP: 20x5; relaxation: 60x5) and reports the overshoot (wall - limit: median and max), the
statuses, and checks that every returned decision passes ``evaluate`` and ``bound <= objective``.
"""
from __future__ import annotations

import argparse
import statistics
import time

from wdtnopt import Scenario, evaluate, generate_trace, solve

CASES = {"exact": (60, 5), "fast": (2000, 50), "pyomo": (20, 5), "relaxation": (60, 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limits", type=float, nargs="+", default=[0.05, 0.2, 1.0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", nargs="+", default=list(CASES))
    args = ap.parse_args()
    print("| method | size | limit (s) | median overshoot (s) | max overshoot (s) | statuses | all clean |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods:
        n, m = CASES[method]
        snaps = [generate_trace(Scenario.paper(n_mus=n, n_bss=m, request_prob=0.9), seed=s, slots=1).snapshot(0)
                 for s in range(args.seeds)]
        solve(snaps[0], method=method, time_limit=min(args.limits))   # untimed: the method's first imports
        for limit in args.limits:
            over, statuses, clean = [], {}, True
            for snap in snaps:
                t0 = time.perf_counter()
                sol = solve(snap, method=method, time_limit=limit)
                over.append(time.perf_counter() - t0 - limit)
                statuses[sol.status] = statuses.get(sol.status, 0) + 1
                if sol.status in ("optimal", "time_limit", "feasible"):
                    clean &= evaluate(snap, sol).feasible and sol.bound <= sol.objective * (1 + 1e-9)
            st = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
            print(f"| {method} | {n}x{m} | {limit:g} | {statistics.median(over):+.3f} | {max(over):+.3f} | {st} | {clean} |")


if __name__ == "__main__":
    main()
