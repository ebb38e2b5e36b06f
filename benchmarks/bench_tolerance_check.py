"""Cost of solve's tolerance check (solvers/tolerance.py; docs/solvers.md, "What each method guarantees").

    nice -n 10 .venv/bin/python benchmarks/bench_tolerance_check.py --seeds 5 --repeats 5

For each size, the CPU time (``time.process_time``) of ``tolerance_may_change`` (median over
``--repeats`` calls, then median and max over the seeds), how many seeds it fires on (there
``solve`` runs a second solve on the tolerant snapshot), and the median CPU time of one
``solve_fast`` of the same snapshots as the peer (not for the menu row: fast's menu path differs).
"""
from __future__ import annotations

import argparse
import statistics
import time

from wdtnopt.solvers.fast import solve_fast
from wdtnopt.solvers.tolerance import tolerance_may_change
from wdtnopt.testing import loaded_snapshot, paper_snapshot, with_menu

ROWS = {"default 30 x 5": lambda k: paper_snapshot(30, 5, k), "default 50 x 5": lambda k: paper_snapshot(50, 5, k),
        "default 100 x 10": lambda k: paper_snapshot(100, 10, k), "loaded 20 x 4": lambda k: loaded_snapshot(20, 4, k),
        "default 30 x 5, 3-level menu": lambda k: with_menu(paper_snapshot(30, 5, k), k)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print("| snapshots (seeds 0..n-1) | check, median (ms) | check, max (ms) | fires on | fast solve, median (ms) |")
    print("|---|---|---|---|---|")
    for name, make in ROWS.items():
        check, fast, fired = [], [], 0
        for seed in range(args.seeds):
            s = make(seed)
            runs = []
            for _ in range(args.repeats):
                t0 = time.process_time()
                why = tolerance_may_change(s)
                runs.append(time.process_time() - t0)
            check.append(statistics.median(runs))
            fired += why is not None
            if "menu" not in name:
                t0 = time.process_time()
                solve_fast(s)
                fast.append(time.process_time() - t0)
        peer = f"{1e3 * statistics.median(fast):.0f}" if fast else "-"
        print(f"| {name} | {1e3 * statistics.median(check):.1f} | {1e3 * max(check):.1f} | {fired} of {args.seeds} "
              f"| {peer} |", flush=True)


if __name__ == "__main__":
    main()
