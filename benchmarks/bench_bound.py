"""Speed of the hindsight bound: warm-started dual steps against solving every slot from scratch.

    python benchmarks/bench_bound.py --n-mus 30 --slots 200 --iters 20 --workers 2
    python benchmarks/bench_bound.py --preset smoke

Both runs use the same trace, the same dual budget (``iters`` evaluations) and the same inner gap;
``cold`` is ``hindsight_bound(warm_start=False, workers=1)`` (every slot solved from scratch at every
dual step, in one process: the method before warm starts), ``warm`` the default path on
``--workers`` processes. Reports the wall time of each (median of ``--repeats``), the bound value
(J per MU per slot; the warm one must be the same or higher), slot solves and skipped slots, and
the ratio of the times.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from wdtnopt import Scenario, generate_trace, hindsight_bound

PRESETS = {"smoke": dict(n_mus=10, slots=20, iters=4), "default": dict(n_mus=30, slots=200, iters=20)}


def run(trace, iters: int, workers: int, warm: bool) -> dict:
    t0 = time.perf_counter()
    hb = hindsight_bound(trace, iters=iters, workers=workers, warm_start=warm)
    secs = time.perf_counter() - t0
    ev = hb._evaluator  # type: ignore[attr-defined]
    return dict(time_s=secs, value=hb.energy_per_mu_slot, evaluations=len(hb.points), solves=ev.solves,
                skipped=ev.skipped)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None)
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["cold", "warm"], choices=["cold", "warm"])
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
        runs = [run(trace, args.iters, 1 if mode == "cold" else args.workers, mode == "warm") for _ in range(args.repeats)]
        med = dict(runs[0], time_s=statistics.median(r["time_s"] for r in runs))
        out[mode] = med
        print(f"{mode:5s} workers={1 if mode == 'cold' else args.workers}: {med['time_s']:.1f} s, bound "
              f"{med['value'] * 1e3:.6f} mJ/MU/slot, {med['evaluations']} evaluations, {med['solves']} slot solves, "
              f"{med['skipped']} skipped", flush=True)
    if "cold" in out and "warm" in out:
        c, w = out["cold"], out["warm"]
        print(f"speed-up {c['time_s'] / w['time_s']:.1f}x; bound warm/cold {w['value'] / c['value']:.6f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), results=out), f, indent=1)


if __name__ == "__main__":
    main()
