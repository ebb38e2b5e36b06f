"""Learned-baseline benchmarks: training speed, batched vs looped actors, learning curves.

    # speed: env steps/s during training (collection + updates) and batched-vs-loop actor ratio
    .venv/bin/python benchmarks/bench_rl.py speed --n-mus 30 --iterations 4
    # learning curves on the default scenario: 4 algorithms x seeds, energy vs env steps
    .venv/bin/python benchmarks/bench_rl.py curves --steps 200000 --seeds 0 1 2
    # learning quality: the deterministic policy before and after training (fixed evaluation traces)
    .venv/bin/python benchmarks/bench_rl.py quality --steps 9600 --seeds 0 1 --tag after

Results go to benchmarks/results/rl_speed.csv, rl_curves.csv and rl_curves.png (atomically).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wdtnopt import Scenario  # noqa: E402
from wdtnopt.agents.core import TYPES, actor_inputs  # noqa: E402
from wdtnopt.agents.trainer import Trainer  # noqa: E402

from benchmarks.eval_agents import write_rows  # noqa: E402
from wdtnopt.errors import WdtnoptError  # noqa: E402
from benchmarks import check_counts  # noqa: E402
from wdtnopt.io import atomic_write  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ALGOS = ("beta-happo", "gaussian-happo", "beta-mappo", "maddpg")


def batched_vs_loop(trainer: Trainer, repeats: int, with_head: bool) -> tuple[float, float]:
    """Seconds per forward of every actor network on one batch of observations (and, with
    ``with_head``, the action head and sampling too): stacked computation vs a loop over modules."""
    agent = trainer.agent
    go, mask = actor_inputs(trainer.obs)
    loops = {k: agent.actors[k].net.as_modules() for k in TYPES}
    with torch.no_grad():
        for k in TYPES:   # the two paths compute the same networks
            ref = torch.stack([m(go[k][i]) for i, m in enumerate(loops[k])])
            assert torch.allclose(agent.actors[k].net(go[k]), ref, atol=1e-5)

        def head(k: str, out: torch.Tensor, agent_index: int | None) -> None:
            grp = agent.actors[k]
            if not with_head:
                return
            if grp.head == "deterministic":
                torch.sigmoid(out)
                return
            grp.sample(grp.dist(out, mask if k == "controller" else None, agent=agent_index))

        def batched() -> None:
            for k in TYPES:
                head(k, agent.actors[k].output(go[k]), None)

        def loop() -> None:
            for k in TYPES:
                for i, m in enumerate(loops[k]):
                    head(k, m(go[k][i])[None], i)
        out = []
        for fn in (batched, loop):
            fn()
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(repeats):
                    fn()
                times.append((time.perf_counter() - t0) / repeats)
            out.append(float(np.median(times)))
    return out[0], out[1]


def speed(args: argparse.Namespace) -> None:
    sc = Scenario.paper(n_mus=args.n_mus)
    rows = []
    for algo in args.algos:
        cfg = {"warmup_steps": 0} if algo == "maddpg" else {}
        cfg["torch_threads"] = args.threads
        tr = Trainer(algo, sc, seed=0, config=cfg)
        tr.train_iteration()                    # warm-up (allocations, first trace batch)
        t0, c0 = time.perf_counter(), time.process_time()
        steps0 = tr.env_steps
        for _ in range(args.iterations):
            tr.train_iteration()
        steps = tr.env_steps - steps0
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        # wall-clock SPS depends on other load on the machine; SPS per CPU-second of this process
        # (one torch thread, single-threaded numpy) is what an otherwise idle machine would give
        row = {"algo": algo, "n_mus": args.n_mus, "n_envs": tr.config.n_envs, "steps_per_iteration": tr.steps_per_iteration,
               "iterations": args.iterations, "env_steps_per_s": round(steps / wall, 1),
               "env_steps_per_cpu_s": round(steps / cpu, 1), "load_avg_1min": round(os.getloadavg()[0], 2)}
        if any(tr.agent.actors[k].shared for k in TYPES):   # MAPPO: one shared network per type, no loop to compare
            row.update({k: "" for k in ("actors_batched_ms", "actors_loop_ms", "loop_over_batched",
                                        "act_batched_ms", "act_loop_ms", "act_loop_over_batched")})
        else:
            b, lo = batched_vs_loop(tr, args.repeats, with_head=False)
            bh, loh = batched_vs_loop(tr, args.repeats, with_head=True)
            row.update({"actors_batched_ms": round(b * 1e3, 3), "actors_loop_ms": round(lo * 1e3, 3),
                        "loop_over_batched": round(lo / b, 2), "act_batched_ms": round(bh * 1e3, 3),
                        "act_loop_ms": round(loh * 1e3, 3), "act_loop_over_batched": round(loh / bh, 2)})
        print(row, flush=True)
        rows.append(row)
    write_rows(rows, RESULTS / "rl_speed.csv")
    print(f"machine: {platform.machine()}, python {platform.python_version()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")


def curves(args: argparse.Namespace) -> None:
    sc = Scenario.paper(n_mus=args.n_mus)
    path = RESULTS / "rl_curves.csv"
    rows = []
    if path.is_file():   # keep the other algorithms' rows, so one algorithm can be rerun alone
        with path.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["algo"] not in args.algos]
    for algo in args.algos:
        for seed in args.seeds:
            tr = Trainer(algo, sc, seed=seed)
            t0 = time.perf_counter()
            while tr.env_steps < args.steps:
                m = tr.train_iteration()
                rows.append({"algo": algo, "seed": seed, "env_steps": tr.env_steps, "reward": m["reward"],
                             "energy_per_mu_slot_j": m["energy_per_mu_slot"], "failure_ratio": m["failure_ratio"],
                             "wall_s": round(time.perf_counter() - t0, 2)})
            print(f"{algo} seed {seed}: {tr.env_steps} steps in {time.perf_counter() - t0:.0f} s, "
                  f"last energy {m['energy_per_mu_slot'] * 1e3:.3f} mJ, failure {m['failure_ratio']:.3f}", flush=True)
            write_rows(rows, path)
    plot_curves(rows, RESULTS / "rl_curves.png", f"N={args.n_mus}, {len(args.seeds)} seeds, {args.steps} env steps per run")


def quality(args: argparse.Namespace) -> None:
    """Deterministic policy (Beta/Gaussian mean, categorical mode) on 4 fixed evaluation traces
    (seed 10,000) at initialization and after ``--steps`` env steps of training."""
    sc = Scenario.paper(n_mus=args.n_mus)
    overrides = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        overrides[key] = float(raw) if any(c in raw for c in ".e") else int(raw)
    rows = []
    for algo in args.algos:
        for seed in args.seeds:
            tr = Trainer(algo, sc, seed=seed, config=overrides)
            t0 = time.perf_counter()
            first = tr.evaluate_policy(episodes=4)
            while tr.env_steps < args.steps:
                tr.train_iteration()
            last = tr.evaluate_policy(episodes=4)
            row = {"tag": args.tag, "algo": algo, "seed": seed, "env_steps": tr.env_steps,
                   "config": " ".join(args.set),
                   "init_reward": round(first["reward"], 5), "init_energy_mj": round(first["energy_per_mu_slot"] * 1e3, 4),
                   "init_failure_ratio": round(first["failure_ratio"], 4),
                   "reward": round(last["reward"], 5), "energy_mj": round(last["energy_per_mu_slot"] * 1e3, 4),
                   "failure_ratio": round(last["failure_ratio"], 4), "wall_s": round(time.perf_counter() - t0, 1)}
            print(row, flush=True)
            rows.append(row)
    write_rows(rows, RESULTS / f"rl_quality_{args.tag}.csv")


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for algo in dict.fromkeys(r["algo"] for r in rows):
        runs = {}
        for r in rows:
            if r["algo"] == algo:
                runs.setdefault(str(r["seed"]), []).append(r)
        n = min(len(v) for v in runs.values())
        steps = np.array([float(r["env_steps"]) for r in next(iter(runs.values()))[:n]])
        for ax, key, scale in ((axes[0], "energy_per_mu_slot_j", 1e3), (axes[1], "failure_ratio", 1.0),
                               (axes[2], "reward", 1.0)):
            y = np.array([[float(r[key]) * scale for r in v[:n]] for v in runs.values()])
            k = max(1, n // 20)     # moving average over iterations for readability
            ker = np.ones(k) / k
            y = np.array([np.convolve(row, ker, mode="valid") for row in y])
            s = steps[k - 1:]
            mean, std = y.mean(0), y.std(0)
            ax.plot(s, mean, label=algo)
            ax.fill_between(s, mean - std, mean + std, alpha=0.2)
    for ax, label in zip(axes, ("energy per MU per slot (mJ)", "failure ratio (failed / requested)",
                                "team reward per slot (units of E_ref)")):
        ax.set_xlabel("environment steps (slots x environments)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Learned baselines, training (stochastic) policies; mean +- std over seeds; {title}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), binary=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--n-mus", type=int, default=30)
    s.add_argument("--iterations", type=int, default=4)
    s.add_argument("--repeats", type=int, default=50)
    s.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    s.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    c = sub.add_parser("curves")
    c.add_argument("--n-mus", type=int, default=30)
    c.add_argument("--steps", type=int, default=200_000)
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    q = sub.add_parser("quality")
    q.add_argument("--n-mus", type=int, default=30)
    q.add_argument("--steps", type=int, default=9_600)
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    q.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    q.add_argument("--tag", default="run", help="results go to results/rl_quality_TAG.csv")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    args = p.parse_args()
    try:   # bad input: one line and exit 2, as the CLI (a bad --set, seed or size was a traceback)
        check_counts(args, n_mus=1, steps=1, iterations=1, repeats=1, threads=1)
        bad = [s for s in getattr(args, "seeds", []) if s < 0]
        if bad:
            raise WdtnoptError(f"--seeds: expected integers >= 0, got {bad[0]}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        {"speed": speed, "curves": curves, "quality": quality}[args.cmd](args)
    except WdtnoptError as e:
        print(f"bench_rl.py: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
