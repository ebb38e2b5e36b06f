"""Speed of the hindsight bound: column generation and warm-started dual steps against solving every
slot from scratch.

    python benchmarks/bench_bound.py --n-mus 30 --slots 200 --iters 20 --workers 2
    python benchmarks/bench_bound.py --preset smoke

Both runs use the same trace, the same dual budget (``iters`` evaluations) and the same inner gap;
``cold`` is ``hindsight_bound(warm_start=False)`` (every slot solved from scratch at every dual step:
the method before warm starts) on ``--cold-workers`` processes, ``warm`` the default path on
``--workers`` processes (both ``dual="supergradient"``), ``columns`` the default
(``dual="columns"``: column generation over the whole trace, one process, no MILP; it stops early
once converged, so its evaluations are at most ``iters``). CPU seconds count the worker processes too. Reports the wall time of each (median of ``--repeats``), the bound value
(J per MU per slot; the new ones must be the same or higher), slot solves and skipped slots, and
the ratio of the times.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time

from wdtnopt import Scenario, generate_trace, hindsight_bound

PRESETS = {"smoke": dict(n_mus=10, slots=20, iters=4), "default": dict(n_mus=30, slots=200, iters=20)}


def _cpu_s() -> float:
    """CPU seconds of this process and its finished child processes (the worker pools)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(trace, iters: int, workers: int, mode: str) -> dict:
    c0, t0 = _cpu_s(), time.perf_counter()
    if mode == "columns":
        hb = hindsight_bound(trace, iters=iters, dual="columns")
        secs = time.perf_counter() - t0
        return dict(time_s=secs, cpu_s=_cpu_s() - c0, value=hb.energy_per_mu_slot, evaluations=len(hb.points),
                    solves=0, skipped=0, workers=1, columns=hb._columns.cd.columns)  # type: ignore[attr-defined]
    hb = hindsight_bound(trace, iters=iters, workers=workers, warm_start=mode == "warm", dual="supergradient")
    ev = hb._evaluator  # type: ignore[attr-defined]
    ev.pool.close()     # so that the workers' CPU time is counted
    secs = time.perf_counter() - t0
    return dict(time_s=secs, cpu_s=_cpu_s() - c0, value=hb.energy_per_mu_slot, evaluations=len(hb.points),
                solves=ev.solves, skipped=ev.skipped, workers=workers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None)
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["cold", "warm", "columns"], choices=["cold", "warm", "columns"])
    ap.add_argument("--cold-workers", type=int, default=None, help="workers of the cold run (default: --workers)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args()
    if args.preset:
        for k, v in PRESETS[args.preset].items():
            setattr(args, k, v)
    trace = generate_trace(Scenario.paper(n_mus=args.n_mus), seed=args.seed, slots=args.slots)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"N={args.n_mus}, {args.slots} slots, seed {args.seed}, {args.iters} dual evaluations")
    out = {}
    for mode in args.modes:
        workers = (args.cold_workers or args.workers) if mode == "cold" else args.workers
        runs = [run(trace, args.iters, workers, mode) for _ in range(args.repeats)]
        med = dict(runs[0], time_s=statistics.median(r["time_s"] for r in runs),
                   cpu_s=statistics.median(r["cpu_s"] for r in runs))
        out[mode] = med
        print(f"{mode:5s} workers={med['workers']}: {med['time_s']:.1f} s wall, {med['cpu_s']:.1f} CPU-s, bound "
              f"{med['value'] * 1e3:.6f} mJ/MU/slot, {med['evaluations']} evaluations, {med['solves']} slot solves, "
              f"{med['skipped']} skipped", flush=True)
    for new in ("warm", "columns"):
        if "cold" in out and new in out:
            c, w = out["cold"], out[new]
            print(f"{new} vs cold: speed-up {c['time_s'] / w['time_s']:.1f}x wall, {c['cpu_s'] / w['cpu_s']:.1f}x CPU; "
                  f"bound {new}/cold {w['value'] / c['value']:.6f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), results=out), f, indent=1)


if __name__ == "__main__":
    main()
