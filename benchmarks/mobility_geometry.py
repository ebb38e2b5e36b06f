"""Distance to the serving BS on Gauss-Markov and SUMO grid traces (BENCHMARKS.md, "Mobility").

    .venv/bin/python benchmarks/mobility_geometry.py --n-mus 20 --slots 100 --seeds 0 1 2

The traces of the `mobility` suite's default preset (needs wdtnopt[sumo]): per seed and source,
the mean and 90th percentile of the MU-to-serving-BS distance over all MUs and slots.
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np

from wdtnopt import Scenario, generate_trace
from wdtnopt.processes.sumo import SumoGridSpec, build_sumo_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-mus", type=int, default=20)
    ap.add_argument("--slots", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--duration-s", type=float, default=300.0)
    args = ap.parse_args()
    sc = Scenario.paper(n_mus=args.n_mus)
    print("| seed | mobility | mean distance to serving BS (m) | 90th percentile (m) |\n|---|---|---|---|")
    for s in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            sumo = build_sumo_grid(SumoGridSpec(seed=s, duration_s=args.duration_s), workdir=tmp)
            for name, mobility in (("Gauss-Markov", None), ("SUMO grid", sumo)):
                tr = generate_trace(sc, seed=s, slots=args.slots, mobility=mobility)
                d = np.linalg.norm(tr.positions - tr.bs_positions[tr.assoc], axis=-1)
                print(f"| {s} | {name} | {d.mean():.1f} | {np.percentile(d, 90):.1f} |")


if __name__ == "__main__":
    main()
