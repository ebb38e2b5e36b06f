"""Short measured sweeps of the learned agents' hyperparameters on the default scenario.

    nice -n 10 .venv/bin/python benchmarks/sweep_rl.py --steps 50000 --seeds 0 \\
        --config "default" --config "ent=0.01 entropy_coef=0.01" --tag sweep
    .venv/bin/python benchmarks/sweep_rl.py --preset smoke --out /tmp/sweep.csv

Each ``--config`` is a label followed by ``KEY=VALUE`` overrides (as ``wdtnopt train --set``). Every
(config, seed) trains ``--algo`` for ``--steps`` env steps (``Trainer``, as ``wdtnopt train``), then
evaluates its deterministic policy with ``simulate`` on the unseen traces of
``benchmarks/eval_agents.py`` (seeds ``EVAL_SEED_BASE + i``), and appends one row (label, overrides,
seed, env steps, training CPU-s, team cost, energy, failure ratio) to ``--out`` (default
benchmarks/results/rl_sweep_TAG.csv; rows already there are kept, so a sweep can be resumed or
extended).
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_agents import RESULTS, evaluate_policies, write_rows  # noqa: E402
from wdtnopt import Scenario, WdtnoptError  # noqa: E402

from benchmarks import check_counts  # noqa: E402
from wdtnopt.agents.registry import algorithm_class, make_config  # noqa: E402
from wdtnopt.agents.trainer import Trainer  # noqa: E402
from wdtnopt.cli.train import _overrides  # noqa: E402


def parse_config(text: str) -> tuple[str, dict]:
    """``"label k=v k=v"`` -> (label, overrides); WdtnoptError if there is no label or it holds ``=``."""
    words = text.split()
    if not words or "=" in words[0]:
        raise WdtnoptError(f"--config: expected 'LABEL KEY=VALUE ...' (a label first, then space-separated "
                           f"overrides), got {text!r}")
    return words[0], _overrides(tuple(words[1:]))


def run_one(algo: str, sc: Scenario, label: str, overrides: dict, seed: int, steps: int, traces: int,
            slots: int) -> dict:
    """Train one (config, seed) and evaluate its deterministic policy on unseen traces (module docstring)."""
    tr = Trainer(algo, sc, seed=seed, config=overrides)
    c0 = time.process_time()
    while tr.env_steps < steps:
        tr.train_iteration()
    cpu_s = time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp:
        tr.save(tmp)
        row = evaluate_policies([f"checkpoint:{tmp}"], sc, traces, slots)[0]
    return {"algo": algo, "label": label, "set": " ".join(f"{k}={v}" for k, v in overrides.items()),
            "seed": seed, "n_mus": sc.n_mus, "env_steps": tr.env_steps, "train_cpu_s": round(cpu_s, 1),
            "traces": traces, "slots": slots, "team_cost": row["team_cost"], "energy_mj": row["energy_mj"],
            "failure_ratio": row["failure_ratio"], "migrations_per_trace": row["migrations_per_trace"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", default="beta-happo")
    ap.add_argument("--steps", type=int, default=50_000,
                    help="env steps to train (at least: rounded up to whole iterations)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--config", action="append", default=[], metavar="'LABEL KEY=VALUE ...'")
    ap.add_argument("--n-mus", type=int, default=30)
    ap.add_argument("--traces", type=int, default=5)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--tag", default="sweep")
    ap.add_argument("--out", default=None)
    ap.add_argument("--preset", choices=["smoke", "default"], default="default",
                    help="smoke: a 4-MU, 2-BS scenario, 16 steps, 1 trace of 10 slots and the first seed, in "
                         "place of --n-mus, --steps, --traces, --slots and --seeds (seconds, for the tests); "
                         "default: the flags as given")
    args = ap.parse_args()
    try:   # every config checked before anything trains: exit 2 and one line, as the CLI
        check_counts(args, steps=1, traces=1, slots=1)
        configs = [parse_config(c) for c in (args.config or ["default"])]
        for _, overrides in configs:
            make_config(algorithm_class(args.algo), overrides)
        sc = Scenario.paper(n_mus=args.n_mus)
    except WdtnoptError as e:
        print(f"sweep_rl.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    if args.preset == "smoke":
        sc = Scenario.paper(n_mus=4, n_bss=2)
        args.steps, args.traces, args.slots, args.seeds = 16, 1, 10, args.seeds[:1]
        configs = [(label, {**over, "n_envs": 2, "rollout_steps": 8, "episode_slots": 8}) for label, over in configs]
    out = Path(args.out) if args.out else RESULTS / f"rl_sweep_{args.tag}.csv"
    rows: list[dict] = []
    if out.is_file():
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    for label, overrides in configs:
        for seed in args.seeds:
            row = run_one(args.algo, sc, label, overrides, seed, args.steps, args.traces, args.slots)
            print(row, flush=True)
            rows.append(row)
            write_rows(rows, out)


if __name__ == "__main__":
    main()
