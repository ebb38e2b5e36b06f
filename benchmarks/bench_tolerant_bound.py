"""The tolerant bound's cost in ``solve``: fast's dual at its prices against a second solve.

    nice -n 10 .venv/bin/python benchmarks/bench_tolerant_bound.py

Where solve's tolerance check fires (solvers/tolerance.py; docs/solvers.md, "What each method
guarantees"), ``fast`` first prices the tolerant snapshot at the prices of its own bound and solves
it a second time only where that dual value does not certify the asked gap. This script times
``solve(s, method="fast")`` (CPU s, ``time.process_time``) with that pricing (``dual``) and without
it (``second solve``: :func:`~wdtnopt.solvers.tolerance.dual_at_prices` switched off, the code path
of solve before the pricing), alternated per seed in one process, and checks that objectives are
the same bit for bit. ``--smoke``: one snapshot where the check fires (default 100 x 10, seed 2).
"""
from __future__ import annotations

import argparse
import time

from wdtnopt.solvers import solve
from wdtnopt.solvers import tolerance
from wdtnopt.testing import paper_snapshot

ROWS = {"default 200 x 10": ((200, 10), range(5)), "default 1000 x 50": ((1000, 50), range(2))}


def solve_swapped(s, method: str, name: str, replacement=None):
    """``solve(s, method=method)`` with ``tolerance.<name>`` replaced by ``replacement`` for this one
    call (None: as it is), so two code paths of solve's tolerance check are timed in one process;
    (CPU s, solution)."""
    keep = getattr(tolerance, name)
    if replacement is not None:
        setattr(tolerance, name, replacement)
    try:
        t0 = time.process_time()
        sol = solve(s, method=method)
        return time.process_time() - t0, sol
    finally:
        setattr(tolerance, name, keep)


def timed(s, cheap: bool):
    """``solve(s, method="fast")`` with or without the dual pricing; (CPU s, solution)."""
    return solve_swapped(s, "fast", "dual_at_prices", None if cheap else (lambda s, sol: None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    rows = {"default 100 x 10": ((100, 10), range(2, 3))} if args.smoke else ROWS
    print("| snapshot | seed | fires | second solve (CPU s) | dual (CPU s) | ratio | status | bound, second solve | bound, dual |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ((n, m), seeds) in rows.items():
        for seed in seeds:
            s = paper_snapshot(n, m, seed)
            order = (False, True) if seed % 2 == 0 else (True, False)   # alternated per seed
            out = {cheap: timed(s, cheap) for cheap in order}
            (t_old, old), (t_new, new) = out[False], out[True]
            assert old.objective.hex() == new.objective.hex(), (name, seed)
            fires = "tolerance" in new.stats
            how = new.stats["tolerance"]["tolerant_status"] if fires else "-"
            print(f"| {name} | {seed} | {how if fires else 'no'} | {t_old:.2f} | {t_new:.2f} | {t_new / t_old:.2f} "
                  f"| {old.status} / {new.status} | {old.bound!r} | {new.bound!r} |", flush=True)


if __name__ == "__main__":
    main()
