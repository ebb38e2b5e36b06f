"""Train the shipped pretrained agents (wdtnopt/pretrained/) and record how (docs/agents.md).

    nice -n 10 .venv/bin/python benchmarks/make_pretrained.py --algo beta-happo --steps 200000 --seed 0
    .venv/bin/python benchmarks/make_pretrained.py --algo beta-happo --preset smoke --out /tmp/pre

Trains ``--algo`` on the default scenario (``Scenario.paper()``, N = 30) exactly as
``wdtnopt train --algo ALGO --steps STEPS --seed SEED`` does (the same Trainer, defaults and
``--set`` overrides), then writes ``ALGO.pt`` (the actors, read with ``weights_only=True``) and
``ALGO.json``: the equivalent command, env steps, seed, CPU and wall time of the training, the
machine, and the deterministic policy's evaluation on the traces of ``benchmarks/eval_agents.py``
(which ``tests/test_pretrained.py`` reproduces) next to ``follow`` and ``static`` on the same traces.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_agents import EVAL_SEED_BASE, evaluate_policies  # noqa: E402
from wdtnopt import Scenario  # noqa: E402
from wdtnopt.agents.pretrained import DIRECTORY, export_pretrained  # noqa: E402
from wdtnopt.agents.trainer import Trainer  # noqa: E402
from wdtnopt.cli.train import _overrides  # noqa: E402
from wdtnopt.errors import WdtnoptError  # noqa: E402
from benchmarks import check_counts  # noqa: E402
from wdtnopt.io import atomic_write_json  # noqa: E402

CHECK_TRACES, CHECK_SLOTS = 1, 40
"""The short evaluation that the test reproduces exactly (the full one is recorded beside it)."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        return platform.processor() or ""


def _check(name: str, sc: Scenario) -> dict:
    row = evaluate_policies([name], sc, CHECK_TRACES, CHECK_SLOTS)[0]
    return {"traces": CHECK_TRACES, "slots": CHECK_SLOTS, "team_cost": row["team_cost"],
            "energy_mj": row["energy_mj"], "failure_ratio": row["failure_ratio"]}


def recheck(algo: str, traces: int = 0, slots: int = 0) -> None:
    """Rewrite the ``check`` entry of a shipped agent's record (its weights unchanged); with
    ``traces``, also its evaluation rows (on the traces of ``benchmarks/eval_agents.py``)."""
    path = DIRECTORY / f"{algo}.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    name, sc = f"pretrained:{algo}", Scenario.paper()
    if traces:
        record.setdefault("evaluation", {}).update({
            "trace_seeds": f"{EVAL_SEED_BASE}..{EVAL_SEED_BASE + traces - 1}", "slots": slots,
            "rows": evaluate_policies([name, "follow", "static"], sc, traces, slots)})
    record["check"] = _check(name, sc)
    atomic_write_json(path, record)
    path.chmod(0o644)
    print(record["check"], flush=True)


def train_command(algo: str, steps: int, seed: int, sets: list[str], preset_sets: dict[str, Any],
                  sizes: tuple[int, int] | None) -> str:
    """The ``wdtnopt train`` command that reproduces a run (add ``--out DIR``): the user's ``--set``
    items, those of the preset replacing a user's of the same key (as the run did), and
    ``--n-mus / --n-bss`` when the scenario is not the default one."""
    items = {s.partition("=")[0].strip(): s for s in sets}
    items.update({k: f"{k}={v}" for k, v in preset_sets.items()})
    size = f" --n-mus {sizes[0]} --n-bss {sizes[1]}" if sizes is not None else ""
    return f"wdtnopt train --algo {algo}{size} --steps {steps} --seed {seed}" + "".join(
        f" --set {v}" for v in items.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", required=True)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--preset", choices=["smoke", "default"], default="default")
    ap.add_argument("--traces", type=int, default=5)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--out", default=str(DIRECTORY))
    ap.add_argument("--eval-at", type=int, nargs="*", default=[50_000],
                    help="also evaluate the deterministic policy after these many env steps (recorded)")
    ap.add_argument("--recheck", action="store_true",
                    help="only recompute the shipped agent's short check evaluation (no training)")
    ap.add_argument("--reevaluate", action="store_true",
                    help="only recompute the shipped agent's evaluation and check (no training)")
    args = ap.parse_args()
    try:   # bad input: one line and exit 2 before any training, as the CLI (was a traceback)
        check_counts(args, steps=1, traces=1, slots=1, seed=0)
        if args.recheck or args.reevaluate:
            recheck(args.algo, args.traces if args.reevaluate else 0, args.slots)
            return
        train_and_export(ap, args)
    except WdtnoptError as e:
        print(f"make_pretrained.py: error: {e}", file=sys.stderr)
        sys.exit(2)


def train_and_export(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Train ``args.algo`` as :func:`main` was asked, then write its weights and record."""
    n_mus = None
    if args.preset == "smoke" and Path(args.out).resolve() == DIRECTORY.resolve():
        ap.error("--preset smoke needs --out DIR (it must not replace the shipped agents)")
    if args.preset == "smoke":
        args.steps, args.traces, args.slots, n_mus = 64, 1, 10, 4
    sc = Scenario.paper() if n_mus is None else Scenario.paper(n_mus=n_mus, n_bss=2)
    overrides = _overrides(tuple(args.set))
    preset_sets: dict[str, Any] = {}
    if args.preset == "smoke":
        preset_sets = ({"n_envs": 2, "rollout_steps": 8, "episode_slots": 8} if args.algo != "maddpg" else
                       {"n_envs": 2, "rollout_steps": 8, "episode_slots": 8, "warmup_steps": 16, "batch_size": 8})
        overrides.update(preset_sets)
    tr = Trainer(args.algo, sc, seed=args.seed, config=overrides)
    c0, w0 = time.process_time(), time.perf_counter()
    pending, midway = sorted(args.eval_at), []
    while tr.env_steps < args.steps:
        m = tr.train_iteration()
        if pending and tr.env_steps >= pending[0] and args.preset != "smoke":   # not counted as training time
            pending.pop(0)
            c1 = time.process_time()
            with tempfile.TemporaryDirectory() as tmp:
                tr.save(tmp)
                row = evaluate_policies([f"checkpoint:{tmp}"], sc, args.traces, args.slots)[0]
            midway.append({"env_steps": tr.env_steps, "cpu_time_s": round(c1 - c0, 1), **row,
                           "policy": f"{args.algo} after {tr.env_steps} env steps"})
            c0 += time.process_time() - c1
        if tr.iteration % 10 == 0:
            print(f"{tr.env_steps} steps: reward {m['reward']:.4f}, energy {m['energy_per_mu_slot'] * 1e3:.3f} mJ, "
                  f"failures {m['failure_ratio']:.3f}", flush=True)
    cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
    command = train_command(args.algo, args.steps, args.seed, args.set, preset_sets,
                            None if n_mus is None else (sc.n_mus, sc.n_bss))
    record = {"algo": args.algo, "command": command, "env_steps": tr.env_steps, "seed": args.seed,
              "set": overrides, "cpu_time_s": round(cpu_s, 1), "wall_time_s": round(wall_s, 1),
              "machine": f"{platform.machine()} {_cpu_model()}".strip(), "torch": torch.__version__,
              "torch_threads": tr.config.torch_threads, "n_mus": sc.n_mus, "n_bss": sc.n_bss}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    export_pretrained(tr, args.algo, record, out)   # the weights first: the evaluations below load them
    for p in (out / f"{args.algo}.pt", out / f"{args.algo}.json"):
        p.chmod(0o644)   # package data: readable by every user of an installation
    name = f"pretrained:{args.algo}" if out.resolve() == DIRECTORY.resolve() else None
    record["evaluation"] = {"during_training": midway}
    if name is None:   # weights elsewhere: record the evaluations made during training
        export_pretrained(tr, args.algo, record, out)
    else:
        full = evaluate_policies([name, "follow", "static"], sc, args.traces, args.slots)
        record["evaluation"] = {"trace_seeds": f"{EVAL_SEED_BASE}..{EVAL_SEED_BASE + args.traces - 1}",
                                "slots": args.slots, "rows": full}
        record["evaluation"]["during_training"] = midway
        record["check"] = _check(name, sc)
        export_pretrained(tr, args.algo, record, out)
        for p in (out / f"{args.algo}.pt", out / f"{args.algo}.json"):
            p.chmod(0o644)
    print(record, flush=True)


if __name__ == "__main__":
    main()
