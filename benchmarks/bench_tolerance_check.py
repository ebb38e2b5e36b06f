"""Cost of solve's tolerance check (solvers/tolerance.py; docs/solvers.md, "What each method guarantees").

    nice -n 10 .venv/bin/python benchmarks/bench_tolerance_check.py --seeds 5 --repeats 5

For each size, the CPU time (``time.process_time``) of ``tolerance_may_change`` (median over
``--repeats`` calls, then median and max over the seeds), how many seeds it fires on (there
``solve`` runs a second solve on the tolerant snapshot), and the median CPU time of one
``solve_fast`` of the same snapshots as the peer (not for the menu row: fast's menu path differs).

    nice -n 10 .venv/bin/python benchmarks/bench_tolerance_check.py --exact-start --seeds 5

instead times ``solve(s, method="exact")`` where the check fires on default 100 x 10 snapshots
(seeds 0..n-1) with exact's second solve started from the strict decision (``start``,
:func:`~wdtnopt.solvers.tolerance.exact_from`) and without (``plain``: ``solve_exact`` on the
tolerant snapshot, the code path before), alternated per seed in one process (the order flips with
the seed's parity), CPU s; objectives must be the same bit for bit. It also times the ``evaluate``
of the strict decision that the check no longer repeats (median of 20 calls).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from wdtnopt.solvers.fast import solve_fast
from wdtnopt.solvers.tolerance import tolerance_may_change
from wdtnopt.testing import loaded_snapshot, paper_snapshot, with_menu

ROWS = {"default 30 x 5": lambda k: paper_snapshot(30, 5, k), "default 50 x 5": lambda k: paper_snapshot(50, 5, k),
        "default 100 x 10": lambda k: paper_snapshot(100, 10, k), "loaded 20 x 4": lambda k: loaded_snapshot(20, 4, k),
        "default 30 x 5, 3-level menu": lambda k: with_menu(paper_snapshot(30, 5, k), k)}


def exact_start(seeds: int) -> None:
    """The second exact solve with and without the strict decision as its start (module docstring)."""
    from wdtnopt.cost import Decision, evaluate
    from wdtnopt.solvers import tolerance
    from wdtnopt.solvers.exact import solve_exact

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_tolerant_bound import solve_swapped

    def timed(s, start: bool):
        plain = lambda s, sol, options: solve_exact(s, **options)  # noqa: E731  (the path before the start)
        return solve_swapped(s, "exact", "exact_from", None if start else plain)

    print("| snapshot | seed | plain (CPU s) | start (CPU s) | ratio | status (both) | bound, plain | bound, start "
          "| evaluate (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in range(seeds):
        s = paper_snapshot(100, 10, seed)
        if tolerance.tolerance_may_change(s) is None:
            print(f"| default 100 x 10 | {seed} | check does not fire | | | | | | |", flush=True)
            continue
        order = (False, True) if seed % 2 == 0 else (True, False)
        out = {start: timed(s, start) for start in order}
        (t_old, old), (t_new, new) = out[False], out[True]
        assert old.objective.hex() == new.objective.hex(), seed
        d = Decision(placement=new.placement, served=new.served, tx_time=new.tx_time, cpu_hz=new.cpu_hz)
        ev = []
        for _ in range(20):
            t0 = time.process_time()
            evaluate(s, d)
            ev.append(time.process_time() - t0)
        print(f"| default 100 x 10 | {seed} | {t_old:.2f} | {t_new:.2f} | {t_new / t_old:.2f} | {old.status} / "
              f"{new.status} | {old.bound!r} | {new.bound!r} | {1e3 * statistics.median(ev):.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--exact-start", action="store_true", help="time exact's second solve with and without a start")
    args = ap.parse_args()
    if args.exact_start:
        exact_start(args.seeds)
        return
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
