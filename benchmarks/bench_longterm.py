"""Long-term figures: the V trade-off of the Lyapunov scheduler and the gap table.

    python benchmarks/bench_longterm.py --slots 400 --seed 0 --out benchmarks/results/longterm

(1) V trade-off: energy per MU per slot, failure ratio (overall and worst MU) and mean virtual-queue
backlog for V in --V-values, on one replayed trace of the default scenario, for the textbook rule
(theta = 0) and with a place-holder backlog theta = --floor-j * V (a failure-price floor of
--floor-j joules), both from empty queues (``initial_price=0``): table (CSV + Markdown) and a PNG plot. (2) Gap table: static, follow, myopic
oracle and both Lyapunov variants at --V against the hindsight lower bound on the same trace, each at
its own per-MU failure ratios.
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
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slots", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--V-values", type=float, nargs="+", default=[1, 10, 30, 100, 300, 1000, 3000])
    ap.add_argument("--V", type=float, default=1000.0, help="V of the Lyapunov rows of the gap table")
    ap.add_argument("--floor-j", type=float, default=0.003, help="failure-price floor theta/V (J) of the variant")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/longterm")
    ap.add_argument("--check-seeds", type=int, nargs="*", default=[],
                    help="only the default Lyapunov scheduler's gap on these further seeds (gap_seeds.md)")
    args = ap.parse_args()
    out = Path(args.out)
    sc = Scenario.paper(n_mus=args.n_mus)
    if args.check_seeds:
        return check_seeds(sc, args)
    trace = generate_trace(sc, seed=args.seed, slots=args.slots)
    print(f"machine: {platform.machine()}, python {platform.python_version()}; N={sc.n_mus}, {args.slots} slots, seed {args.seed}")

    # (1) V trade-off
    rows = []
    for floor in (0.0, args.floor_j):
        for v in args.V_values:
            t0 = time.perf_counter()
            r = simulate(LyapunovPolicy(V=v, theta=floor * v, initial_price=0.0), trace)
            rows.append((v, floor * v, r.energy_per_mu_slot, r.failure_ratio, float(r.failure_ratio_per_mu.max()),
                         r.extras["mean_backlog"], time.perf_counter() - t0))
    header = ["V", "theta", "energy_per_mu_slot_j", "failure_ratio", "worst_mu_failure_ratio", "mean_backlog", "time_s"]
    buf = io.StringIO()
    csv.writer(buf).writerows([header] + [list(r) for r in rows])
    atomic_write_text(out / "v_tradeoff.csv", buf.getvalue())
    md = ["| V | theta | energy / MU / slot (mJ) | failure ratio | worst MU | mean backlog |", "|---|---|---|---|---|---|"]
    md += [f"| {v:g} | {th:g} | {e * 1e3:.4f} | {f:.4f} | {w:.4f} | {b:.2f} |" for v, th, e, f, w, b, _ in rows]
    atomic_write_text(out / "v_tradeoff.md", "\n".join(md) + "\n")
    print("\n".join(md))
    _plot(rows, sc.eps, args.floor_j, out / "v_tradeoff.png")

    # (2) gap table
    results = []
    for pol in ("static", "follow", MyopicOraclePolicy(), LyapunovPolicy(V=args.V, theta=0.0, initial_price=0.0),
                LyapunovPolicy(V=args.V, theta=args.floor_j * args.V)):
        results.append(simulate(pol, trace))
    results[3].policy = f"lyapunov V={args.V:g}"
    results[4].policy = f"lyapunov V={args.V:g} theta={args.floor_j * args.V:g}"
    t0 = time.perf_counter()
    hb = hindsight_bound(trace, iters=args.iters, workers=args.workers, progress=True)
    report = gap(results, trace, bound=hb, iters=args.iters)
    secs = time.perf_counter() - t0
    table = report.to_markdown()
    atomic_write_text(out / "gap.md", table + f"\n\nhindsight bound: {len(hb.points)} dual evaluations, {secs:.0f} s\n")
    print(table)
    print(f"bound + gaps: {secs:.0f} s")


def check_seeds(sc: Scenario, args: argparse.Namespace) -> None:
    """The default ``LyapunovPolicy()`` against the bound on further traces (robustness of one number).

    With it, a reference that knows the hindsight: the myopic oracle pricing each MU's failures at
    the bound's multipliers for the scheduler's failure ratios (constant per-MU prices chosen with
    the whole trace known). Its gap shows how much of the scheduler's gap the bound's relaxation
    (free re-placement every slot, no migration transients) leaves to any price-based policy.
    """
    md = ["| seed | slots | policy | energy / MU / slot (mJ) | failure ratio | worst MU | hindsight bound (mJ) | gap | "
          "dual evaluations | time (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for seed in args.check_seeds:
        trace = generate_trace(sc, seed=seed, slots=args.slots)
        t0 = time.perf_counter()
        lyap = simulate(LyapunovPolicy(), trace)
        hb = hindsight_bound(trace, iters=args.iters, workers=args.workers)
        rows = gap(lyap, trace, bound=hb, iters=args.iters).rows
        prices = hb.value_at(lyap.failure_ratio_per_mu)[1]
        ref = simulate(MyopicOraclePolicy(failure_price=prices), trace)
        rows += gap(ref, trace, bound=hb, iters=args.iters).rows
        secs = time.perf_counter() - t0
        for name, res, row in (("lyapunov (default)", lyap, rows[0]), ("oracle at the bound's per-MU prices", ref, rows[1])):
            md.append(f"| {seed} | {args.slots} | {name} | {row.energy_per_mu_slot * 1e3:.4f} | {row.failure_ratio:.4f} | "
                      f"{res.failure_ratio_per_mu.max():.3f} | {row.bound_per_mu_slot * 1e3:.4f} | {100 * row.gap:.1f}% | "
                      f"{len(hb.points)} | {secs:.0f} |")
            print(md[-1], flush=True)
    atomic_write_text(Path(args.out) / "gap_seeds.md", "\n".join(md) + "\n")


def _plot(rows, eps: float, floor_j: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.9))
    for th_zero, label, mark in ((True, "theta = 0 (textbook)", "o-"), (False, f"theta = {floor_j * 1e3:g} mJ x V", "s--")):
        sel = [r for r in rows if (r[1] == 0) == th_zero]
        v = np.array([r[0] for r in sel])
        axes[0].plot(v, [r[2] * 1e3 for r in sel], mark, label=label)
        axes[1].plot(v, [r[3] for r in sel], mark, label=f"{label}: all MUs")
        axes[1].plot(v, [r[4] for r in sel], mark, alpha=0.4, label=f"{label}: worst MU")
        axes[2].plot(v, [r[5] for r in sel], mark, label=label)
        axes[3].plot([r[3] for r in sel], [r[2] * 1e3 for r in sel], mark, label=label)
    axes[1].axhline(eps, color="gray", ls=":", label=f"target eps = {eps:g}")
    axes[0].set_ylabel("energy per MU per slot (mJ)")
    axes[1].set_ylabel("failure ratio")
    axes[2].set_ylabel("mean virtual-queue backlog (failures)")
    for ax in axes[:3]:
        ax.set_xscale("log")
        ax.set_xlabel("V (failures per J)")
    axes[3].set_xlabel("failure ratio")
    axes[3].set_ylabel("energy per MU per slot (mJ)")
    axes[3].set_title("trade-off (points: V values)", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Lyapunov drift-plus-penalty: the V trade-off (default scenario, one trace)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
