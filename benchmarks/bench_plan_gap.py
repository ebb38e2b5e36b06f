"""What any valid per-trace bound can reach: a legal hindsight plan against the oracle and the bounds.

    python benchmarks/bench_plan_gap.py --n-mus 30 --slots 100 --seeds 0 1 2 3 4   # the measurement
    python benchmarks/bench_plan_gap.py --n-mus 50 --slots 100 --seeds 103 --policy lyapunov  # the scheduler's reference
    python benchmarks/bench_plan_gap.py --preset smoke

For each seed: the myopic oracle's run (energy ``E_O``, per-MU failures ``F_O``); the
column-generation hindsight bound ``LB_col`` and the migration-aware bound ``LB_mig`` at the
oracle's own failure ratios (as ``gap`` reports them); and a legal open-loop plan
(:func:`wdtnopt.bounds_plan.hindsight_plan`) that serves every MU at least as often as the oracle did,
replayed by the simulator (energy ``E_P`` by ``evaluate``). Every valid per-trace bound at the
oracle's failure ratios is <= ``E_P`` (the plan is one of the policies it bounds), so the oracle's
gap to any valid per-trace bound is >= ``(E_O - E_P) / E_P`` ("best any bound can do"): where that
exceeds half the reported gap ``(E_O - LB_col) / LB_col``, no valid per-trace bound halves it
(docs/longterm.md, "What a per-trace bound can reach"). ``--policy lyapunov`` takes the default
Lyapunov scheduler as the reference run instead (the keys and columns named "oracle" are then its
figures). ``plan_gap_column`` is the plan's own gap to the column bound at the plan's failure ratios
(``plan_gap_at_reference``: at the reference's, the bound ``gap`` gives the reference): what a plan
built with hindsight reaches against the bound. ``split`` says where the reference spends more than
the plan, request by request (:func:`split_against_plan`).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from wdtnopt import Scenario, WdtnoptError, gap, generate_trace, hindsight_bound, simulate
from wdtnopt.bounds_migration import migration_bound
from wdtnopt.bounds_plan import PlanPolicy, ServedRecorder, hindsight_plan
from wdtnopt.cost import FAILURE_CAUSES
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy

PRESETS = {"smoke": dict(n_mus=6, n_bss=2, slots=10, seeds=[0], iters=3, time_limit=120.0),
           "default": dict(n_mus=30, n_bss=5, slots=100, seeds=[0, 1, 2], iters=6, time_limit=30.0)}
REFERENCES = {"oracle": MyopicOraclePolicy, "lyapunov": LyapunovPolicy}   # the reference run's policy


class EnergyRecorder(ServedRecorder):
    """A :class:`ServedRecorder` that also keeps each slot's per-MU energy (J) and failure causes."""

    def reset(self, trace) -> None:
        super().reset(trace)
        self.energy = np.zeros((trace.slots, trace.n_mus))
        self.cause = np.zeros((trace.slots, trace.n_mus), np.int64)

    def observe(self, snapshot, evaluation) -> None:
        self.energy[self._t] = evaluation.energy
        self.cause[self._t] = np.where(evaluation.failed, evaluation.failure_cause, 0)
        super().observe(snapshot, evaluation)


def split_against_plan(trace, ref: EnergyRecorder, ref_result, plan: EnergyRecorder, plan_result) -> dict:
    """Where a run spends more energy than a plan on the same trace, request by request.

    The parts (J per MU per slot) sum exactly to ``E_ref - E_plan``: requests both serve, by where
    each had the DT (``local``: on the serving BS's server, else relayed); requests only the
    reference serves (their energy) and only the plan serves (minus theirs), i.e. which requests
    each lets fail; energy spent on requests not served (a missed deadline). Also each run's
    failures by cause, moves, share of served requests relayed, and the mean over slots of the
    largest number of requesting DTs on one server.
    """
    scale = trace.n_mus * trace.slots
    assoc = np.asarray(trace.assoc[:trace.slots])
    loc_r, loc_p = ref_result.placement == assoc, plan_result.placement == assoc
    both = ref.served & plan.served
    diff = ref.energy - plan.energy
    parts = {}
    for a, b, label in ((True, True, "both local"), (False, True, "reference relayed, plan local"),
                        (True, False, "reference local, plan relayed"), (False, False, "both relayed")):
        parts[f"served by both, {label}"] = float(diff[both & (loc_r == a) & (loc_p == b)].sum()) / scale
    parts["served by the reference only"] = float(ref.energy[ref.served & ~plan.served].sum()) / scale
    parts["served by the plan only"] = -float(plan.energy[plan.served & ~ref.served].sum()) / scale
    parts["spent on requests not served"] = float(ref.energy[~ref.served].sum() - plan.energy[~plan.served].sum()) / scale
    req = np.asarray(trace.request[:trace.slots], bool)
    runs = {}
    for name, rec, res in (("reference", ref, ref_result), ("plan", plan, plan_result)):
        c = rec.cause[rec.cause > 0]
        load = [np.bincount(res.placement[t][req[t]], minlength=trace.n_bss).max() for t in range(trace.slots)]
        runs[name] = dict(failures={FAILURE_CAUSES[i]: int((c == i).sum()) for i in np.unique(c)},
                          moves=res.migrations, served=int(rec.served.sum()),
                          relayed_share=float((rec.served & (res.placement != assoc)).sum() / max(rec.served.sum(), 1)),
                          mean_max_requests_per_server=float(np.mean(load)))
    return dict(difference=float(ref.energy.sum() - plan.energy.sum()) / scale, parts=parts, runs=runs,
                counts=dict(both=int(both.sum()), reference_only=int((ref.served & ~plan.served).sum()),
                            plan_only=int((plan.served & ~ref.served).sum())))


def measure(n_mus: int, n_bss: int, slots: int, seed: int, iters: int, time_limit: float,
            save: str | None = None, policy: str = "oracle") -> dict:
    """One seed's figures (J per MU per slot; gaps as fractions) and CPU seconds of each part; ``save``:
    a folder for the plan (``plan_seed{S}.npz``: placement, served, tx_time, cpu_hz; replay it with
    ``PlanPolicy(**np.load(f))``); ``policy``: the reference run's (``REFERENCES``)."""
    tr = generate_trace(Scenario.paper(n_mus=n_mus, n_bss=n_bss), seed=seed, slots=slots)
    scale = n_mus * slots
    c0 = time.process_time()
    rec = EnergyRecorder(REFERENCES[policy]())
    ro = simulate(rec, tr)
    c1 = time.process_time()
    hb = hindsight_bound(tr, iters=iters)
    row = gap([ro], tr, bound=hb, iters=iters).rows[0]
    mb = migration_bound(tr, hb, ro.failure_ratio_per_mu)
    c2 = time.process_time()
    plan = hindsight_plan(tr, rec.served, time_limit=time_limit)
    c3 = time.process_time()
    plan_row = gap([plan.result], tr, bound=hb, iters=iters).rows[0]
    replay = EnergyRecorder(PlanPolicy(plan.placement, plan.served, plan.tx_time, plan.cpu_hz))
    split = split_against_plan(tr, rec, ro, replay, simulate(replay, tr))
    if save:
        import os
        os.makedirs(save, exist_ok=True)
        np.savez_compressed(os.path.join(save, f"plan_seed{seed}.npz"), placement=plan.placement, served=plan.served,
                            tx_time=plan.tx_time, cpu_hz=plan.cpu_hz)
    e_o, e_p = float(ro.energy_per_mu.sum()), plan.energy_j
    lb_col, lb_mig = row.bound_per_mu_slot * scale, mb.total_energy
    reported = (e_o - lb_col) / lb_col
    return dict(seed=seed, policy=policy, oracle_energy=e_o / scale, oracle_failure_ratio=ro.failure_ratio,
                column_bound=lb_col / scale, migration_bound=lb_mig / scale, plan_energy=e_p / scale,
                plan_failure_ratio=plan.result.failure_ratio, plan_migrations=plan.result.migrations,
                oracle_migrations=ro.migrations, plan_shortfall=int(plan.shortfall.sum()),
                plan_violations=plan.violations,
                plan_failures_le_oracle=bool((plan.result.failures_per_mu <= ro.failures_per_mu).all()),
                gap_column=reported, plan_gap_column=plan_row.gap, plan_gap_at_reference=(e_p - lb_col) / lb_col,
                gap_migration=(e_o - lb_mig) / lb_mig, best_any_bound=(e_o - e_p) / e_p,
                half_reported=reported / 2, plan_above_bounds=bool(e_p >= max(lb_col, lb_mig)),
                milp_statuses=sorted(set(plan.statuses)), split=split,
                cpu_s=dict(oracle=c1 - c0, bounds=c2 - c1, plan=c3 - c2))


def markdown(rows: list[dict]) -> str:
    """The table of docs/longterm.md and BENCHMARKS.md (energies in mJ per MU per slot)."""
    out = ["| seed | oracle: energy, failures | column bound | migration bound | plan: energy, failures, moves "
           "| oracle's reported gap (migration bound) | best any valid bound can do | half the reported gap |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['seed']} | {r['oracle_energy'] * 1e3:.4f}, {100 * r['oracle_failure_ratio']:.2f}% "
                   f"| {r['column_bound'] * 1e3:.4f} | {r['migration_bound'] * 1e3:.4f} "
                   f"| {r['plan_energy'] * 1e3:.4f}, {100 * r['plan_failure_ratio']:.2f}%, {r['plan_migrations']} "
                   f"| {100 * r['gap_column']:.2f}% ({100 * r['gap_migration']:.2f}%) "
                   f"| **{100 * r['best_any_bound']:.2f}%** | {100 * r['half_reported']:.2f}% |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--n-mus", type=int, default=None)
    ap.add_argument("--n-bss", type=int, default=None)
    ap.add_argument("--slots", type=int, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--iters", type=int, default=None, help="dual evaluations of the bound (and at the oracle's ratios)")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds of each frame MILP solve")
    ap.add_argument("--smoke", action="store_true", help="the smoke preset (replaces --preset)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--save-plans", default=None, help="folder for each seed's plan (npz)")
    ap.add_argument("--policy", choices=list(REFERENCES), default="oracle",
                    help="the reference run (the plan serves each MU at least as often)")
    args = ap.parse_args()
    cfg = dict(PRESETS["smoke" if args.smoke else args.preset])
    for k in ("n_mus", "n_bss", "slots", "seeds", "iters", "time_limit"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    try:
        for k in ("n_mus", "n_bss", "slots", "iters"):
            if cfg[k] < 1:
                raise WdtnoptError(f"--{k.replace('_', '-')}: expected an integer >= 1, got {cfg[k]}")
        if not cfg["time_limit"] > 0:
            raise WdtnoptError(f"--time-limit: expected seconds > 0, got {cfg['time_limit']}")
        Scenario.paper(n_mus=cfg["n_mus"], n_bss=cfg["n_bss"])
    except WdtnoptError as e:
        print(f"bench_plan_gap.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"machine: {platform.machine()}, python {platform.python_version()}; {cfg}", flush=True)
    rows = []
    for seed in cfg["seeds"]:
        r = measure(cfg["n_mus"], cfg["n_bss"], cfg["slots"], seed, cfg["iters"], cfg["time_limit"],
                    args.save_plans, args.policy)
        rows.append(r)
        print(f"seed {seed}: {args.policy} {r['oracle_energy'] * 1e3:.4f} mJ (failures {100 * r['oracle_failure_ratio']:.2f}%), "
              f"column bound {r['column_bound'] * 1e3:.4f}, migration bound {r['migration_bound'] * 1e3:.4f}, "
              f"plan {r['plan_energy'] * 1e3:.4f} mJ (failures {100 * r['plan_failure_ratio']:.2f}%, "
              f"{r['plan_migrations']} moves, shortfall {r['plan_shortfall']}, {r['plan_violations']} violations, failures "
              f"<= the reference's for every MU: {r['plan_failures_le_oracle']}); plan's own gap "
              f"{100 * r['plan_gap_column']:.2f}% ({100 * r['plan_gap_at_reference']:.2f}% at the reference's ratios); "
              f"{args.policy}'s gap "
              f"{100 * r['gap_column']:.2f}% (migration bound {100 * r['gap_migration']:.2f}%), best any valid "
              f"bound can do {100 * r['best_any_bound']:.2f}% vs half the reported {100 * r['half_reported']:.2f}%; "
              f"CPU s {r['cpu_s']['oracle']:.0f} / {r['cpu_s']['bounds']:.0f} / {r['cpu_s']['plan']:.0f}", flush=True)
        sp = r["split"]
        print(f"  {args.policy} over the plan: {sp['difference'] * 1e3:.4f} mJ per MU per slot = " + "; ".join(
            f"{k} {v * 1e3:+.4f} ({100 * v / (sp['difference'] or 1.0):+.0f}%)" for k, v in sp["parts"].items())
            + f"; served by both / reference only / plan only: {sp['counts']}; {sp['runs']}", flush=True)
    print(markdown(rows))
    best = np.array([r["best_any_bound"] for r in rows])
    half = np.array([r["half_reported"] for r in rows])
    print(f"seeds where no valid per-trace bound can halve the oracle's gap: {int((best > half).sum())} of {len(rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg, "rows": rows}, f, indent=1, default=float)


if __name__ == "__main__":
    main()
