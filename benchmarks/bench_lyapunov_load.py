"""The Lyapunov scheduler under load: failure ratio and energy on the paper suite's traces.

    python benchmarks/bench_lyapunov_load.py                     # N = 10..50, 5 seeds, 100 slots
    python benchmarks/bench_lyapunov_load.py --gap-n 50 --iters 6  # also its gap to the bounds at N = 50
    python benchmarks/bench_lyapunov_load.py --n-grid 50 --gap-n 50 --out DIR  # N = 50 only, with gaps
    python benchmarks/bench_lyapunov_load.py --n-grid 50 --gap-n 50 --seeds 2 103 110 --policies lyapunov oracle
    python benchmarks/bench_lyapunov_load.py --preset smoke

For each N of the paper suite's grid and each seed, one 100-slot trace of ``Scenario.paper(n_mus=N)``
replayed for: the default scheduler (queues started at the team reward's price, placements planned
for the frame's expected load), the same with the one-slot placement (``placement="slot"``, the
default before), the textbook start (``initial_price=0``), the myopic oracle and the frame placement
planned on 80% of each server's CPU (``frame_cpu_share=0.8``, docs/longterm.md). Writes
``lyapunov_load.csv`` (one row per run) and ``lyapunov_load.md`` (per N: mean and worst failure
ratio, mean energy) under ``--out``. With ``--gap-n``, also the gaps of the default scheduler and the
oracle at that N against the hindsight bound and the migration-aware bound, at their own failure
ratios.
"""
from __future__ import annotations

import argparse
import csv
import io
import platform
import time
from pathlib import Path

import numpy as np

from wdtnopt import Scenario, gap, generate_trace, hindsight_bound, simulate
from wdtnopt.io import atomic_write_text
from wdtnopt.bounds_migration import migration_bound
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy

PRESETS = {"smoke": dict(n_grid=[6, 10], seeds=[0], slots=20), "default": dict(n_grid=list(range(10, 55, 5)),
                                                                               seeds=[0, 1, 2, 3, 4], slots=100)}


POLICIES = {"lyapunov": LyapunovPolicy, "lyapunov one-slot placement": lambda: LyapunovPolicy(placement="slot"),
            "lyapunov textbook start": lambda: LyapunovPolicy(initial_price=0.0), "oracle": MyopicOraclePolicy,
            "lyapunov frame CPU share 0.8": lambda: LyapunovPolicy(frame_cpu_share=0.8)}


def policies(names: list[str] | None = None):
    """Fresh policies (name, policy), all of them or those named, in the order of ``POLICIES``."""
    return [(name, make()) for name, make in POLICIES.items() if names is None or name in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--gap-n", type=int, nargs="*", default=[])
    ap.add_argument("--iters", type=int, default=6, help="dual evaluations of the bound (and per policy)")
    ap.add_argument("--out", default="benchmarks/results/longterm")
    ap.add_argument("--n-grid", type=int, nargs="*", default=None, help="only these N (default: the preset's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="these seeds (default: the preset's)")
    ap.add_argument("--policies", nargs="+", default=None, choices=list(POLICIES), metavar="NAME",
                    help="only these policies (default: all; names: " + ", ".join(repr(p) for p in POLICIES) + ")")
    args = ap.parse_args()
    cfg = dict(PRESETS[args.preset])
    if args.n_grid:
        cfg["n_grid"] = args.n_grid
    if args.seeds:
        cfg["seeds"] = args.seeds
    out = Path(args.out)
    print(f"machine: {platform.machine()}, python {platform.python_version()}; {cfg}")
    rows = []
    for n in cfg["n_grid"]:
        for seed in cfg["seeds"]:
            tr = generate_trace(Scenario.paper(n_mus=n), seed=seed, slots=cfg["slots"])
            results = [(name, simulate(p, tr)) for name, p in policies(args.policies)]
            extra: dict[str, tuple[float, float]] = {}
            if n in args.gap_n:
                t0 = time.perf_counter()
                hb = hindsight_bound(tr, iters=args.iters)
                rep = gap([r for _, r in results], tr, bound=hb, iters=args.iters)
                for (name, r), row in zip(results, rep.rows):
                    mb = migration_bound(tr, hb, r.failure_ratio_per_mu)
                    e = r.energy_per_mu_slot
                    extra[name] = (row.gap, (e - mb.energy_per_mu_slot) / mb.energy_per_mu_slot)
                print(f"  bounds N={n} seed {seed}: {time.perf_counter() - t0:.1f} s (hindsight bound, gaps and "
                      f"migration-aware bounds; the hindsight bound at eps: {hb.energy_per_mu_slot * 1e3:.4f} mJ)")
            for name, r in results:
                g, gm = extra.get(name, (float("nan"), float("nan")))
                rows.append([n, seed, name, r.failure_ratio, float(r.failure_ratio_per_mu.max()), r.energy_per_mu_slot, g, gm])
                print(f"N={n} seed={seed} {name}: failure ratio {r.failure_ratio:.4f}, energy "
                      f"{r.energy_per_mu_slot * 1e3:.4f} mJ" + (f", gap {100 * g:.1f}% / {100 * gm:.1f}% (migration-aware)"
                                                             if np.isfinite(g) else ""), flush=True)
    header = ["n_mus", "seed", "policy", "failure_ratio", "worst_mu_failure_ratio", "energy_per_mu_slot_j",
              "gap_hindsight", "gap_migration_aware"]
    buf = io.StringIO()
    csv.writer(buf).writerows([header] + rows)
    atomic_write_text(out / "lyapunov_load.csv", buf.getvalue())
    md = ["| N | policy | failure ratio (mean) | failure ratio (worst seed) | energy / MU / slot (mJ) | gap (hindsight) | gap (migration-aware) |",
          "|---|---|---|---|---|---|---|"]
    for n in cfg["n_grid"]:
        for name, _ in policies(args.policies):
            sel = [r for r in rows if r[0] == n and r[2] == name]
            f = np.array([r[3] for r in sel])
            e = np.array([r[5] for r in sel])
            g = np.array([r[6] for r in sel])
            gm = np.array([r[7] for r in sel])
            gs = f"{100 * np.nanmean(g):.1f}%" if np.isfinite(g).any() else ""
            gms = f"{100 * np.nanmean(gm):.1f}%" if np.isfinite(gm).any() else ""
            md.append(f"| {n} | {name} | {f.mean():.4f} | {f.max():.4f} | {e.mean() * 1e3:.4f} | {gs} | {gms} |")
    atomic_write_text(out / "lyapunov_load.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
