"""Default-scenario rows of ``exact`` and ``fast``, for measuring two revisions in the same run.

    python benchmarks/bench_solver_revisions.py --label head > head.jsonl
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_solver_revisions.py --label base > base.jsonl
    python benchmarks/bench_solver_revisions.py --table base.jsonl head.jsonl

Each run prints one JSON line per instance: the method, size, seed, wall time (s), process CPU time
(s; less sensitive to other jobs on a shared machine), objective, bound, gap and status. ``--table``
renders the medians per (method, size) for each label side by side with the time ratio (``--cpu``:
of the CPU times). ``--first-seed`` starts the seeds elsewhere than 0 (instances not tuned on); each
line also carries exact's decomposition rounds, HiGHS nodes and root bound. Snapshots: ``wdtnopt.testing.paper_snapshot(N, M, seed)`` (docs/model.md
defaults), the same as bench_solvers.py (exact, M = 5, gap 1e-6) and bench_fast.py (fast, gap 0.01);
``--loaded-exact`` / ``--loaded-fast`` add ``wdtnopt.testing.loaded_snapshot(N, M, seed)`` rows
(exact to 1e-6 within 60 s, fast to 1e-2). ``--oracles`` adds exact with ``oracle="cvxpy"`` on the
same snapshots (only where the revision has it). An editable install of the package shadows
``PYTHONPATH``: measure each revision from an environment of its own. ``--exact-option NAME=VALUE``
(repeatable; VALUE in JSON, ``null`` for None) passes an option to every exact row, e.g.
``--exact-option exchange_gap=null --label no-exchange`` for exact without its exchange search.

``--variant NAME=JSON`` (repeatable; JSON an object of exact options) compares option sets in one
process: every exact row is solved once per variant in turn, seed by seed (so the variants see the
same load), each line labelled ``LABEL/NAME``; ``--variant 'main={}'`` is exact's defaults. Then
``--table FILE --cpu --tail 2`` prints, per variant, the CPU median, max and sum and the seeds above
2 s, and whether every seed's objective is the same in hex across the variants:

    python benchmarks/bench_solver_revisions.py --exact 50x5 --fast --seeds 60 --first-seed 1800 \
        --repeats 1 --variant 'main={}' --variant 'cycles={"exchange_cycles": 100}' > alt.jsonl
    python benchmarks/bench_solver_revisions.py --table alt.jsonl --cpu --tail 2
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    n, m = text.lower().split("x")
    return int(n), int(m)


def run(args) -> None:
    from wdtnopt.testing import paper_snapshot
    from wdtnopt.cost import evaluate
    from wdtnopt.solvers import solve

    extra = {}
    for item in args.exact_option:
        name, _, value = item.partition("=")
        value = json.loads(value)
        extra[name] = tuple(value) if isinstance(value, list) else value   # options take tuples
    variants = [("", {})]
    if args.variant:
        variants = []
        for item in args.variant:
            name, _, value = item.partition("=")
            opts = json.loads(value)
            if not name or not isinstance(opts, dict):
                raise SystemExit(f"--variant must be NAME=JSON object, got {item!r}")
            variants.append((name, {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}))
    jobs = [("exact", size, {"gap": 1e-6, **extra}) for size in args.exact]
    if args.oracles:
        jobs += [("exact-cvxpy", size, {"gap": 1e-6, "oracle": "cvxpy"}) for size in args.exact]
    jobs += [("fast", size, {"gap": 0.01}) for size in args.fast]
    jobs += [("exact-loaded", size, {"gap": 1e-6, "time_limit": 60.0, **extra}) for size in args.loaded_exact]
    jobs += [("fast-loaded", size, {"gap": 0.01}) for size in args.loaded_fast]
    solve(paper_snapshot(N=6, M=2, seed=0), method="exact")  # imports and HiGHS construction out of the timing
    for name, size, opts in jobs:
        n, m = _size(size)
        method = name.split("-")[0]
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if name.endswith("-loaded"):
                from wdtnopt.testing import loaded_snapshot
                s = loaded_snapshot(n, m, seed)
            else:
                s = paper_snapshot(N=n, M=m, seed=seed)
            # exact rows: each variant in turn on this seed (one process, the same load)
            for vname, vopts in (variants if name in ("exact", "exact-loaded") else [("", {})]):
                times, cpu, sol = [], [], None
                for _ in range(args.repeats):
                    t, c = time.perf_counter(), time.process_time()
                    sol = solve(s, method=method, **{**opts, **vopts})
                    times.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
                assert not evaluate(s, sol).violations
                label = f"{args.label}/{vname}" if vname else args.label
                _line(label, name, size, seed, times, cpu, sol)


def _line(label: str, name: str, size: str, seed: int, times: list, cpu: list, sol) -> None:
    """One JSON line: an instance's median wall and CPU times, objective (also in hex), bound, status
    and exact's rounds, nodes and root bound."""
    print(json.dumps({"label": label, "method": name, "size": size, "seed": seed,
                     "time_s": statistics.median(times), "cpu_s": statistics.median(cpu),
                     "objective": sol.objective, "objective_hex": float(sol.objective).hex(),
                     "bound": sol.bound,
                     "gap": sol.gap, "status": str(sol.status),
                     # where exact's time goes: decomposition rounds, HiGHS nodes, root bound (J)
                     "rounds": sol.stats.get("iterations"), "milp_nodes": sol.stats.get("milp_nodes"),
                     "root_bound": sol.stats.get("root_bound"),
                     # with hull_rounds: the root bound before the hull's Fenchel cuts (J)
                     # and their separation's CPU time (s)
                     "lagrangian_root_bound": sol.stats.get("lagrangian_root_bound"),
                     "hull_s": sol.stats.get("hull_s")}), flush=True)


def table(paths: list[str], key: str = "time_s") -> None:
    rows: dict[tuple[str, str], dict[str, list[dict]]] = {}
    labels: list[str] = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            r = json.loads(line)
            if r["label"] not in labels:
                labels.append(r["label"])
            rows.setdefault((r["method"], r["size"]), {}).setdefault(r["label"], []).append(r)
    a, b = labels[0], labels[-1]
    print(f"| method | N x M | {a} time s (median) | {b} time s (median) | {b} / {a} | {a} gap (max) | "
          f"{b} gap (max) | objectives equal (1e-6) | {b} statuses |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (method, size), by in rows.items():
        ra, rb = by.get(a, []), by.get(b, [])
        ta = statistics.median(r.get(key, math.nan) for r in ra) if ra else math.nan
        tb = statistics.median(r.get(key, math.nan) for r in rb) if rb else math.nan
        same = all(abs(x["objective"] - y["objective"]) <= 1e-6 * max(abs(x["objective"]), 1e-300)
                   for x, y in zip(ra, rb)) if ra and rb else "-"
        st = ", ".join(f"{k} {[r['status'] for r in rb].count(k)}" for k in sorted({r["status"] for r in rb}))
        ga = f"{max(r['gap'] for r in ra):.1e}" if ra else "-"
        gb = f"{max(r['gap'] for r in rb):.1e}" if rb else "-"
        print(f"| {method} | {size.replace('x', ' x ')} | {ta:.3f} | {tb:.3f} | {tb / ta:.2f} | {ga} | {gb} | {same} | {st} |")


def tail(paths: list[str], key: str, above: float) -> None:
    """Per (method, size, label): median, max and sum of ``key`` over the seeds, the seeds above
    ``above`` s, rounds and nodes in all; then whether each seed's objective is the same in hex in
    every label."""
    rows: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for p in paths:
        for line in Path(p).read_text().splitlines():
            r = json.loads(line)
            rows.setdefault((r["method"], r["size"]), {}).setdefault(r["label"], []).append(r)
    print(f"| method | N x M | label | seeds | median | max | sum | above {above:g} s | rounds | nodes | statuses |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (method, size), by in rows.items():
        for label, rs in by.items():
            v = [r[key] for r in rs]
            slow = ", ".join(f"{r['seed']} ({r[key]:.2f})" for r in rs if r[key] > above) or "none"
            st = ", ".join(f"{k} {[r['status'] for r in rs].count(k)}" for k in sorted({r["status"] for r in rs}))
            print(f"| {method} | {size.replace('x', ' x ')} | {label} | {len(rs)} | {statistics.median(v):.3f} | "
                  f"{max(v):.2f} | {sum(v):.2f} | {slow} | {sum(r.get('rounds') or 0 for r in rs)} | "
                  f"{sum(r.get('milp_nodes') or 0 for r in rs)} | {st} |")
        seeds: dict[int, set] = {}
        for rs in by.values():
            for r in rs:
                seeds.setdefault(r["seed"], set()).add(r.get("objective_hex", float(r["objective"]).hex()))
        differ = sorted(s for s, objs in seeds.items() if len(objs) > 1)
        print(f"\n{method} {size}: objectives equal in hex across labels on {len(seeds) - len(differ)} of "
              f"{len(seeds)} seeds{'' if not differ else ' (differ: ' + ', '.join(map(str, differ)) + ')'}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="head")
    ap.add_argument("--exact", nargs="*", default=["10x5", "20x5", "30x5"])
    ap.add_argument("--fast", nargs="*", default=["200x10", "1000x50"])
    ap.add_argument("--loaded-exact", nargs="*", default=[], help="exact (1e-6, 60 s) on testing.loaded_snapshot")
    ap.add_argument("--loaded-fast", nargs="*", default=[], help="fast (1e-2) on testing.loaded_snapshot")
    ap.add_argument("--cpu", action="store_true", help="--table: process CPU time instead of wall time")
    ap.add_argument("--seeds", type=int, default=5, help="how many seeds per size")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed (seeds first-seed, first-seed + 1, ...)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--oracles", action="store_true", help="also exact with oracle='cvxpy'")
    ap.add_argument("--smoke", action="store_true", help="2 seeds, 1 repeat, the smallest sizes")
    ap.add_argument("--exact-option", action="append", default=[], metavar="NAME=VALUE",
                    help="an option of every exact row (VALUE in JSON); repeatable")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                    help="exact's options as a JSON object; repeatable: each exact row runs every variant in turn")
    ap.add_argument("--table", nargs="+", metavar="JSONL", help="render JSON-lines files instead of running")
    ap.add_argument("--tail", type=float, default=None, metavar="SECONDS",
                    help="--table: per label median / max / sum and the seeds above SECONDS")
    args = ap.parse_args()
    if args.table:
        if args.tail is not None:
            tail(args.table, "cpu_s" if args.cpu else "time_s", args.tail)
        else:
            table(args.table, "cpu_s" if args.cpu else "time_s")
        return
    if args.smoke:
        args.seeds, args.repeats, args.exact, args.fast = 2, 1, args.exact[:1], args.fast[:1]
    run(args)


if __name__ == "__main__":
    main()
