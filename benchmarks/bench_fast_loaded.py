"""``fast`` on loaded snapshots: how many end <= gap within the wall budget, and what is missing.

    python benchmarks/bench_fast_loaded.py --size 100x10 --seeds 20 --first-seed 500
    python benchmarks/bench_fast_loaded.py --size 100x10 --seed-list 303 401 --reference-time 200
    python benchmarks/bench_fast_loaded.py --smoke

Solves ``wdtnopt.testing.loaded_snapshot(N, M, seed)`` with ``solve(s, method="fast", gap=0.01)``
(default options) and prints one JSON line per seed: wall and process CPU time (s), objective and
bound (J), the gap, the status, and fast's own phase before any continuation in exact (its
objective, its Lagrangian bound, the continuation's wall time; ``stats["exact_continuation"]``).
The last line counts the seeds that end ``<= gap`` within ``--wall`` seconds (the acceptance line
"fast <= 1% on loaded 100 x 10 in <= 10 s") with the medians and maxima of wall and CPU time.

``--variant LABEL=JSON`` (repeatable) solves each seed once per variant, in turn (alternated per
seed, so that the load of a shared machine falls on every variant alike), with the JSON object's
fast options, e.g. ``--variant main='{"extra_options": "found"}' --variant branch='{}'``; each row
carries its ``variant`` and the summary has one line per variant.

``--reference-time T`` also runs ``exact`` (``gap=1e-4``, time limit T s) and fast alone
(``exact_pairs=0``) per seed, and splits fast's own gap into the primal's part (fast's objective
above exact's best) and the bound's part (exact's best above fast's Lagrangian bound): which side a
failing seed misses.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def _size(text: str) -> tuple[int, int]:
    n, m = text.lower().split("x")
    return int(n), int(m)


def run(size: str, seeds: list[int], gap: float, wall: float, reference_time: float | None,
        variants: dict[str, dict] | None = None) -> list[dict]:
    from wdtnopt.cost import evaluate
    from wdtnopt.solvers import solve
    from wdtnopt.testing import loaded_snapshot

    n, m = _size(size)
    solve(loaded_snapshot(8, 2, 0), method="fast")   # imports and HiGHS construction out of the timing
    rows = []
    for seed, (label, options) in ((seed, v) for seed in seeds for v in (variants or {None: {}}).items()):
        s = loaded_snapshot(n, m, seed)
        t, c = time.perf_counter(), time.process_time()
        sol = solve(s, method="fast", gap=gap, **options)
        row = {"size": size, "seed": seed, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
               "objective": sol.objective, "bound": sol.bound, "gap": sol.gap, "status": str(sol.status)}
        if label is not None:
            row["variant"] = label
        assert not evaluate(s, sol).violations
        cont = sol.stats.get("exact_continuation")
        row["phase_objective"] = cont["fast_objective"] if cont else sol.objective
        row["phase_bound"] = cont["fast_bound"] if cont else sol.bound
        row["continuation_wall_s"] = cont["wall_s"] if cont else 0.0
        row["met"] = bool(sol.gap <= gap and row["wall_s"] <= wall)
        if reference_time is not None:
            alone = solve(s, method="fast", gap=gap, **{**options, "exact_pairs": 0})
            ref = solve(s, method="exact", gap=1e-4, time_limit=reference_time)
            best = min(ref.objective, sol.objective, alone.objective)   # the best decision known
            row.update(alone_objective=alone.objective, alone_bound=alone.bound, exact_objective=ref.objective,
                       exact_bound=ref.bound, exact_status=str(ref.status),
                       # fast alone's gap = primal part + bound part (relative to its objective)
                       primal_part=(alone.objective - best) / alone.objective,
                       bound_part=(best - alone.bound) / alone.objective)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def summary(rows: list[dict], wall: float) -> str:
    walls = [r["wall_s"] for r in rows]
    cpus = [r["cpu_s"] for r in rows]
    return (f"# {sum(r['met'] for r in rows)} of {len(rows)} <= gap within {wall:g} s; wall median "
            f"{statistics.median(walls):.2f} max {max(walls):.2f} s; CPU median {statistics.median(cpus):.2f} "
            f"max {max(cpus):.2f} s; gap median {100 * statistics.median(r['gap'] for r in rows):.3f}% "
            f"max {100 * max(r['gap'] for r in rows):.3f}%; fast's own phase <= gap on "
            f"{sum(r['phase_bound'] >= r['phase_objective'] * (1 - 0.01) for r in rows)}")


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100x10", help="N x M of loaded_snapshot")
    ap.add_argument("--seeds", type=int, default=20, help="how many seeds, from --first-seed")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--seed-list", type=int, nargs="+", default=None, help="these seeds instead")
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--wall", type=float, default=10.0, help="the wall-time budget a seed must meet (s)")
    ap.add_argument("--reference-time", type=float, default=None,
                    help="also exact (gap 1e-4) within this many s and fast alone: the primal / bound split")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=JSON",
                    help="fast options of one variant (repeatable): each seed runs every variant in turn")
    ap.add_argument("--smoke", action="store_true", help="16 x 4, 2 seeds, a 20 s reference")
    args = ap.parse_args(argv)
    variants = {}
    for text in args.variant:
        label, _, options = text.partition("=")
        variants[label] = json.loads(options or "{}")
    if args.smoke:
        args.size, args.seeds, args.first_seed, args.seed_list, args.reference_time = "16x4", 2, 0, None, 20.0
    seeds = args.seed_list or list(range(args.first_seed, args.first_seed + args.seeds))
    rows = run(args.size, seeds, args.gap, args.wall, args.reference_time, variants or None)
    if not variants:
        print(summary(rows, args.wall))
    for label in variants:
        print(summary([r for r in rows if r["variant"] == label], args.wall) + f" [{label}]")
    return rows


if __name__ == "__main__":
    main()
