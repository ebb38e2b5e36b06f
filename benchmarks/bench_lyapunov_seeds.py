"""The Lyapunov scheduler's gap at N = 50 per seed: the default frame placement against ``placement="sample"``.

    python benchmarks/bench_lyapunov_seeds.py                                  # the 16 traces + fresh 130-134
    python benchmarks/bench_lyapunov_seeds.py --seeds 2 3 4 103 113 124 --jsonl FILE   # the outlier seeds
    python benchmarks/bench_lyapunov_seeds.py --preset smoke

For each seed, one trace of ``Scenario.paper(n_mus=N)`` (100 slots at the default preset) replayed
for each policy; each run's gap to a fresh column-generation hindsight bound of its trace at the
run's own per-MU failure ratios (``hindsight_bound(trace, iters)``, then ``gap([run], trace,
bound=..., iters)``: what ``bench_lyapunov_load.py --gap-n 50`` reports for its first policy, and
how the eighth round measured). Per run also: failure ratio (mean and worst MU), energy, moves,
failures while a DT migrated, the mean failure price of the queues, and the mean over slots of the
largest requested CPU work on one server under the run's placement (``sum cycles / (cpu_hz *
deadline)`` of the available requesting DTs hosted there); per trace, the same for the serving cells
(every requesting MU's work counted at its serving BS: the "hot cell" load before any placement).
One JSON line per run goes to ``--jsonl`` as soon as it ends (a long measurement stopped early keeps
what it measured); the summary (median, max and mean of the per-seed gap, traces above 10%, worst
failure ratio) is printed at the end. docs/longterm.md, "Placement for the frame".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from wdtnopt import Scenario, gap, generate_trace, hindsight_bound, simulate
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy

PRESETS = {"smoke": dict(n_mus=8, n_bss=2, slots=20, seeds=[0], iters=3),
           "default": dict(n_mus=50, n_bss=5, slots=100, iters=6,
                           seeds=[2, 3, 4, 103, 113, 124, 0, 1, 110, 111, 112, 114, 120, 121, 122, 123,
                                  130, 131, 132, 133, 134])}
POLICIES = {"default": LyapunovPolicy, "sample": lambda: LyapunovPolicy(placement="sample", placement_samples=SAMPLES[0]),
            "oracle": MyopicOraclePolicy}
SAMPLES = [4]   # placement_samples of "sample" (--samples)


def busiest_load(trace, placement: np.ndarray, available: np.ndarray) -> float:
    """Mean over slots of the largest requested work on one server, ``sum cycles / (cpu_hz deadline)``.

    ``placement [T, N]`` is where each DT sits in each slot (the serving BS for the hot-cell figure),
    ``available [T, N]`` which DTs can be served; only requesting available DTs count.
    """
    T = placement.shape[0]
    req = np.asarray(trace.request[:T], bool) & available
    work = np.asarray(trace.data_bits[:T]) * trace.cycles_per_bit[None] / trace.deadline[None] * req   # [T, N] cycles/s
    per_server = np.zeros((T, trace.n_bss))
    np.add.at(per_server, (np.broadcast_to(np.arange(T)[:, None], placement.shape), placement), work)
    return float((per_server / trace.cpu_hz[None]).max(axis=1).mean())


def run_one(name: str, trace, iters: int) -> dict:
    pol = POLICIES[name]()
    c0, w0 = time.process_time(), time.perf_counter()
    res = simulate(pol, trace)
    run_cpu = time.process_time() - c0
    hb = hindsight_bound(trace, iters=iters)
    row = gap([res], trace, bound=hb, iters=iters).rows[0]
    ex = res.extras
    price = (float(ex["mean_backlog"]) + pol.theta) / pol.V if "mean_backlog" in ex else float(trace.scenario.failure_price)
    return dict(policy=name, seed=trace.seed, gap=float(row.gap), bound_mj=float(row.bound_per_mu_slot) * 1e3,
                energy_mj=res.energy_per_mu_slot * 1e3, failure_ratio=res.failure_ratio,
                worst_mu=float(res.failure_ratio_per_mu.max()), moves=res.migrations,
                fail_migrating=int(res.table["fail_migrating"].sum()), mean_price_mj=price * 1e3,
                busiest_server_load=busiest_load(trace, res.placement, ~res.unavailable),
                sample_choices=ex.get("sample_choices"), solve_calls=ex.get("solve_calls"),
                run_cpu_s=run_cpu, wall_s=time.perf_counter() - w0)


def summary(rows: list[dict], eps: float) -> list[str]:
    lines = ["| policy | traces | median gap | max gap | mean gap | traces above 10% | worst failure ratio (eps) | "
             "worst MU | moves (sum) | CPU s per run (median) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["policy"] for r in rows):
        sel = [r for r in rows if r["policy"] == name]
        g = np.array([r["gap"] for r in sel]) * 100
        lines.append(f"| {name} | {len(sel)} | {np.median(g):.2f}% | {g.max():.2f}% | {g.mean():.2f}% | {(g > 10).sum()} | "
                     f"{100 * max(r['failure_ratio'] for r in sel):.2f}% ({100 * eps:.0f}%) | "
                     f"{100 * max(r['worst_mu'] for r in sel):.1f}% | {sum(r['moves'] for r in sel)} | "
                     f"{np.median([r['run_cpu_s'] for r in sel]):.0f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="these seeds (default: the preset's)")
    ap.add_argument("--policies", nargs="+", default=["default", "sample"], choices=list(POLICIES))
    ap.add_argument("--jsonl", default=None, help="append one JSON line per run to this file")
    ap.add_argument("--samples", type=int, default=4, help="placement_samples of the policy 'sample' (default 4)")
    args = ap.parse_args()
    # bad input: one line and exit 2 before any run, as the CLI (a negative seed was a traceback,
    # an unwritable --jsonl failed only after the first run)
    bad = None
    if any(s < 0 for s in args.seeds or []):
        bad = f"--seeds: expected integers >= 0, got {min(args.seeds)}"
    elif args.samples < 1:
        bad = f"--samples: expected an integer >= 1, got {args.samples}"
    elif args.jsonl:
        folder = os.path.dirname(os.path.abspath(args.jsonl))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK) or os.path.isdir(args.jsonl):
            bad = f"--jsonl: cannot append to {args.jsonl} (expected a file in a writable folder)"
    if bad:
        print(f"bench_lyapunov_seeds.py: error: {bad}", file=sys.stderr)
        sys.exit(2)
    SAMPLES[0] = args.samples
    cfg = dict(PRESETS[args.preset])
    if args.seeds:
        cfg["seeds"] = args.seeds
    sc = Scenario.paper(n_mus=cfg["n_mus"], n_bss=cfg["n_bss"])
    print(f"machine: {platform.machine()}, python {platform.python_version()}; {cfg}; policies {args.policies}", flush=True)
    rows = []
    for seed in cfg["seeds"]:
        tr = generate_trace(sc, seed=seed, slots=cfg["slots"])
        cells = busiest_load(tr, np.asarray(tr.assoc[:tr.slots]), np.ones((tr.slots, tr.n_mus), bool))
        for name in args.policies:
            r = run_one(name, tr, cfg["iters"])
            r["hot_cell_load"] = cells
            r["placement_samples"] = args.samples if name == "sample" else None
            rows.append(r)
            print(f"seed {seed} {name}: gap {100 * r['gap']:.2f}%, failure ratio {100 * r['failure_ratio']:.2f}% "
                  f"(worst MU {100 * r['worst_mu']:.1f}%), energy {r['energy_mj']:.4f} mJ, moves {r['moves']}, "
                  f"failures while migrating {r['fail_migrating']}, mean price {r['mean_price_mj']:.2f} mJ, busiest "
                  f"server load {r['busiest_server_load']:.3f} (hot cell {cells:.3f}), choices {r['sample_choices']}, "
                  f"{r['run_cpu_s']:.0f} CPU-s", flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
    print("\n".join(summary(rows, float(sc.eps))))


if __name__ == "__main__":
    main()
