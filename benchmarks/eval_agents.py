"""Team cost of learned agents against the heuristics on traces no agent trained on.

    .venv/bin/python benchmarks/eval_agents.py --policies follow static checkpoint:runs/happo pretrained:beta-happo
    .venv/bin/python benchmarks/eval_agents.py --preset smoke
    .venv/bin/python benchmarks/eval_agents.py --traces 2 --slots 100 --gap-iters 5 --policies pretrained:beta-happo follow

Every policy is run by ``simulate`` (so every slot is scored by ``wdtnopt.evaluate``) on the same
``--traces`` traces of ``--slots`` slots, trace seeds ``EVAL_SEED_BASE + i`` (training traces use
``episode_seed(seed, env, episode)``, a different stream). Team cost per MU per slot is the negated
team reward of docs/env.md: ``(sum E / E_ref + eta * failures) / (N T)``. Prints one row per policy
(mean over traces, and the min/max over traces) and writes benchmarks/results/eval_agents.csv.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wdtnopt import Scenario, generate_trace, simulate  # noqa: E402
from wdtnopt.errors import WdtnoptError  # noqa: E402
from benchmarks import check_counts  # noqa: E402
from wdtnopt.io import atomic_write_text  # noqa: E402
from wdtnopt.policies import make_policy  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
EVAL_SEED_BASE = 900_000


def team_cost(res, scenario: Scenario) -> float:
    """``(sum E / E_ref + eta * failures) / (N T)`` of one simulated run (the negated mean team reward)."""
    return float((res.energy_per_mu.sum() / scenario.energy_ref_j + scenario.eta * res.failures_per_mu.sum())
                 / (res.n_mus * res.slots))


def evaluate_policies(policies: list[str], scenario: Scenario, traces: int, slots: int, gap_iters: int = 0) -> list[dict]:
    """One row per policy (module docstring); with ``gap_iters`` also the mean optimality gap to the
    hindsight bound of each trace at the policy's own per-MU failure ratios (``wdtnopt.gap``)."""
    trs = [generate_trace(scenario, seed=EVAL_SEED_BASE + i, slots=slots) for i in range(traces)]
    for name in policies:   # a bad name, checkpoint or size fails here, before any policy runs
        make_policy(name).reset(trs[0])
    all_runs = {name: [simulate(name, tr) for tr in trs] for name in policies}
    gaps: dict[str, list[float]] = {name: [] for name in policies}
    if gap_iters:
        from wdtnopt import gap, hindsight_bound
        for k, tr in enumerate(trs):
            hb = hindsight_bound(tr, iters=gap_iters, workers=1)
            report = gap([all_runs[name][k] for name in policies], tr, bound=hb, iters=1)
            for name, row in zip(policies, report.rows):
                gaps[name].append(float(row.gap))
    rows = []
    for name in policies:
        runs = all_runs[name]
        cost = np.array([team_cost(r, scenario) for r in runs])
        energy = np.array([r.energy_per_mu_slot for r in runs])
        fails = sum(int(r.failures_per_mu.sum()) for r in runs)
        reqs = sum(int(r.requests_per_mu.sum()) for r in runs)
        rows.append({"policy": name, "n_mus": scenario.n_mus, "traces": traces, "slots": slots,
                     "team_cost": round(float(cost.mean()), 5), "team_cost_min": round(float(cost.min()), 5),
                     "team_cost_max": round(float(cost.max()), 5), "energy_mj": round(float(energy.mean()) * 1e3, 4),
                     "failure_ratio": round(fails / max(reqs, 1), 4),
                     "migrations_per_trace": round(float(np.mean([r.migrations for r in runs])), 1)})
        if gap_iters:
            rows[-1]["gap_to_hindsight_bound"] = round(float(np.mean(gaps[name])), 4)
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", nargs="+", default=["follow", "static"])
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--traces", type=int, default=5)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--preset", choices=["smoke", "default"], default="default")
    ap.add_argument("--gap-iters", type=int, default=0,
                    help="dual steps of each trace's hindsight bound; 0: no gap (the bound is slow)")
    ap.add_argument("--out", default=str(RESULTS / "eval_agents.csv"))
    args = ap.parse_args()
    if args.preset == "smoke":
        args.n_mus, args.traces, args.slots = 6, 2, 20
    try:   # bad input: one line and exit 2, as the CLI (a wrong checkpoint path was a traceback)
        check_counts(args, n_mus=1, traces=1, slots=1, gap_iters=0)
        rows = evaluate_policies(args.policies, Scenario.paper(n_mus=args.n_mus), args.traces, args.slots,
                                 args.gap_iters)
    except WdtnoptError as e:
        print(f"eval_agents.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    write_rows(rows, Path(args.out))


def write_rows(rows: list[dict], path: Path) -> None:
    """The rows as a CSV file (header from the first row), written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


if __name__ == "__main__":
    main()
