"""exact under a short time limit against fast in the same time, on small loaded snapshots.

    nice -n 10 .venv/bin/python benchmarks/short_limits.py --sizes 40 60 80 --seeds 0 1 2 --limit 0.3

For each ``wdtnopt.testing.loaded_snapshot(N, M, seed)`` solves ``exact`` and ``fast`` with the same
``time_limit`` (and ``fast`` with its defaults, no limit), and prints one row per snapshot: both
objectives and gaps, wall and CPU (``time.process_time``) seconds, and whether exact's decision is
worse than fast's in the same time (objective above it by more than 1e-9 relative). The last line
counts those. ``--exact-option k=v`` passes an exact option (e.g. ``primal_seed=none``) to compare.
"""
from __future__ import annotations

import argparse
import ast
import time

from wdtnopt import solve
from wdtnopt.testing import loaded_snapshot


def _timed(snap, **kw):
    w0, c0 = time.perf_counter(), time.process_time()
    sol = solve(snap, **kw)
    return sol, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 60, 80])
    ap.add_argument("--n-bss", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--limit", type=float, default=0.3)
    ap.add_argument("--exact-option", action="append", default=[], metavar="K=V")
    ap.add_argument("--no-fast-default", action="store_true", help="skip fast without a limit")
    args = ap.parse_args()
    extra = {}
    for kv in args.exact_option:
        k, v = kv.split("=", 1)
        try:
            extra[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            extra[k] = v
    print("| N x M | seed | exact obj | exact gap | exact status | wall / CPU s | fast obj (same limit) | fast gap "
          "| wall / CPU s | fast obj (no limit) | exact worse |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worse = total = 0
    for n in args.sizes:
        for k in args.seeds:
            snap = loaded_snapshot(n, args.n_bss, k)
            ex, ew, ec = _timed(snap, method="exact", time_limit=args.limit, **extra)
            fa, fw, fc = _timed(snap, method="fast", time_limit=args.limit)
            fd = "-" if args.no_fast_default else f"{solve(snap, method='fast').objective:.5f}"
            bad = ex.objective > fa.objective * (1 + 1e-9)
            worse += bad
            total += 1
            print(f"| {n} x {args.n_bss} | {k} | {ex.objective:.5f} | {ex.gap:.2%} | {ex.status} | {ew:.2f} / {ec:.2f} "
                  f"| {fa.objective:.5f} | {fa.gap:.2%} | {fw:.2f} / {fc:.2f} | {fd} | {'WORSE' if bad else 'no'} |")
    print(f"exact worse than fast in the same {args.limit:g} s on {worse} of {total}")


if __name__ == "__main__":
    main()
