"""Calibration evidence (docs/model.md): the `follow` policy as N grows on the default scenario.

    python benchmarks/calibrate.py --seeds 1 2 3 --slots 200

Prints a Markdown table: mean over seeds of the energy per MU per slot and the failure ratio
(with the part caused by migrations) for N in {10, 15, ..., 50}. Pass --set key=value to try
another value of any scenario parameter (e.g. --set compression_ratio=1.0).
"""
from __future__ import annotations

import argparse

import numpy as np

from wdtnopt import Scenario, generate_trace, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--n-mus", type=int, nargs="+", default=list(range(10, 55, 5)))
    ap.add_argument("--policy", default="follow")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    over = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    print(f"policy {args.policy}, seeds {args.seeds}, {args.slots} slots, overrides {over or 'none'}")
    print("| N | energy / MU / slot (mJ) | failure ratio | of which migrating | worst MU failure ratio |")
    print("|---|---|---|---|---|")
    for n in args.n_mus:
        e, f, fm, worst = [], [], [], []
        for seed in args.seeds:
            r = simulate(args.policy, generate_trace(Scenario.paper(n_mus=n, **over), seed=seed, slots=args.slots))
            e.append(r.energy_per_mu_slot)
            f.append(r.failure_ratio)
            fm.append(r.table["fail_migrating"].sum() / max(r.requests_per_mu.sum(), 1))
            worst.append(r.failure_ratio_per_mu.max())
        print(f"| {n} | {np.mean(e) * 1e3:.3f} | {np.mean(f):.4f} | {np.mean(fm):.4f} | {np.mean(worst):.3f} |")


if __name__ == "__main__":
    main()
