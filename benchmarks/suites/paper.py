"""Suite ``paper``: the case-study figures (docs/model.md, sections 6-7) with optimal bounds.

Panels, every one on the same replayed traces (``generate_trace(Scenario.paper(n_mus=N, eta=eta),
seed, slots)``, one per seed):

(a) average MU energy (and failure ratio) vs training steps of Beta-HAPPO, Gaussian-HAPPO,
    Beta-MAPPO and MADDPG at N = ``n_mus``, eta = 1; each evaluation point is the checkpoint of
    that moment simulated on the replayed trace;
(b) energy and failure ratio vs eta (``eta_grid``) of the ``sweep_algos`` and the myopic oracle
    (whose failure price is eta * E_ref); the Lyapunov scheduler and the heuristics do not depend
    on eta (horizontal lines);
(c), (d) energy and failure ratio vs N (``n_grid``).

Every panel shows the Lyapunov scheduler, the myopic oracle, ``static`` and ``follow``, and the
energy panels the hindsight lower bound at the scenario's target ``eps`` (it bounds every causal
policy whose per-MU failure ratios are at most ``eps``). The report also gives each method's gap to
the bound evaluated at its *own* per-MU failure ratios (``HindsightBound.value_at`` on the kept dual
points), which is a bound for that method whatever it fails.

Tasks (keyed by config + seed): ``policy`` (simulate one policy on one trace), ``bound`` (hindsight
bound of one trace, eta-independent), ``train`` (train one agent, checkpoints under
``agents/<key>/``, simulate them on the replayed trace).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from wdtnopt.io import atomic_write_text
from wdtnopt.wording import counted

from . import style
from .runner import (Task, check_agent, check_counts, check_lyapunov, check_method, check_policies, check_scenarios,
                     input_file, lyapunov_settings)

MODULE = "wdtnopt.benchmarks.suites.paper"
ETA_DEFAULT = 1.0
HEURISTICS = ("static", "follow")


# -- tasks -----------------------------------------------------------------------------------------
def check(cfg: dict[str, Any]) -> None:
    """Refuse a bad setting, policy, method, agent or Lyapunov parameter before any task runs (one
    line naming the key and what it accepts; docs/benchmarks.md)."""
    check_counts(cfg, ("seeds",), 0)
    check_counts(cfg, ("slots", "n_mus", "n_grid", "eval_every", "bound_iters"), 1)
    check_counts(cfg, ("iterations",), 0)
    check_policies("policies", cfg["policies"])
    for key in ("algos", "sweep_algos"):
        for algo in cfg[key]:
            check_agent(key, algo, "agent", cfg.get("agent", {}), VARIANTS)
    if cfg.get("bound", True):
        check_method("bound_method", cfg["bound_method"])
    check_lyapunov(cfg)
    etas = sorted({float(e) for e in cfg["eta_grid"]} | {ETA_DEFAULT})
    ns = sorted({int(n) for n in cfg["n_grid"]} | {int(cfg["n_mus"])})
    check_scenarios("n_grid / eta_grid", [{"n_mus": n, "eta": e} for n in ns for e in etas])


def tasks(cfg: dict[str, Any]) -> list[Task]:
    seeds = [int(s) for s in cfg["seeds"]]
    n0 = int(cfg["n_mus"])
    ns = sorted({int(n) for n in cfg["n_grid"]} | {n0})
    etas = sorted({float(e) for e in cfg["eta_grid"]} | {ETA_DEFAULT})
    slots = int(cfg["slots"])
    # a replayed mobility file (docs/mobility.md) enters every task's config; none leaves the
    # configs, and so the task keys, of Gauss-Markov runs as they were; a file's digest does, so an
    # edited file gives new keys (a "sumo-grid:..." run is named by its spec, kept as written)
    mob: dict[str, str] = {}
    if cfg.get("mobility", "").startswith("sumo-grid") and not Path(cfg["mobility"]).exists():
        mob = {"mobility": cfg["mobility"]}
    elif cfg.get("mobility"):
        f = input_file("preset: mobility", cfg["mobility"])
        mob = {"mobility": f["path"], "mobility_sha256": f["sha256"]}
    out: list[Task] = []
    # longest first, so the pool is not left waiting on one late training run
    train_base = {"suite": "paper", "kind": "train", "slots": slots, "iterations": int(cfg["iterations"]),
                  "eval_every": int(cfg["eval_every"]), "agent": dict(cfg.get("agent", {})), **mob}
    points = [(a, n0, ETA_DEFAULT) for a in cfg["algos"]]
    points += [(a, n0, e) for a in cfg["sweep_algos"] for e in etas]
    points += [(a, n, ETA_DEFAULT) for a in cfg["sweep_algos"] for n in ns]
    for a, n, e in sorted(set(points), key=lambda p: (-p[1], p)):
        for s in seeds:
            out.append(Task(f"{MODULE}:train_task", {**train_base, "algo": a, "n_mus": n, "eta": e, "seed": s}))
    if cfg.get("bound", True):
        for n in sorted(ns, reverse=True):
            for s in seeds:
                out.append(Task(f"{MODULE}:bound_task", {"suite": "paper", "kind": "bound", "n_mus": n, "seed": s,
                                                         "slots": slots, "iters": int(cfg["bound_iters"]),
                                                         "method": cfg["bound_method"], **mob}))
    for p in cfg["policies"]:
        for n in ns:
            for e in (etas if (p == "oracle" and n == n0) else [ETA_DEFAULT]):
                for s in seeds:
                    c = {"suite": "paper", "kind": "policy", "policy": p, "n_mus": n, "eta": e, "seed": s, "slots": slots,
                         **mob}
                    if p == "lyapunov":
                        c["V"], c["theta"] = lyapunov_settings(cfg)
                    out.append(Task(f"{MODULE}:policy_task", c))
    return out


def _trace(n_mus: int, eta: float, seed: int, slots: int, mobility: str | None = None) -> Any:
    from wdtnopt import Scenario, generate_trace
    return generate_trace(Scenario.paper(n_mus=n_mus, eta=eta), seed=seed, slots=slots, mobility=mobility)


def _summary(res: Any, trace: Any) -> dict[str, Any]:
    sc = trace.scenario
    failures = float(res.failures_per_mu.sum())
    return {"energy_per_mu_slot": float(res.energy_per_mu_slot), "failure_ratio": float(res.failure_ratio),
            "failure_ratio_per_mu": [float(x) for x in res.failure_ratio_per_mu],
            "migrations": int(res.migrations),
            # the team cost of docs/model.md, section 7 per MU per slot (minus the mean team reward)
            "team_cost": float(res.energy_per_mu_slot / sc.energy_ref_j + sc.eta * failures / (sc.n_mus * trace.slots)),
            "non_optimal_solves": int(res.extras.get("non_optimal_solves", 0)) if res.extras else 0}


def policy_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt import simulate
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    trace = _trace(cfg["n_mus"], cfg["eta"], cfg["seed"], cfg["slots"], cfg.get("mobility"))
    # tasks of configs written before lyapunov_theta existed ran the textbook rule (theta = 0)
    policy = (LyapunovPolicy(V=cfg["V"], theta=cfg.get("theta", 0.0)) if cfg["policy"] == "lyapunov"
              else cfg["policy"])
    return _summary(simulate(policy, trace), trace)


def bound_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt import hindsight_bound

    trace = _trace(cfg["n_mus"], ETA_DEFAULT, cfg["seed"], cfg["slots"], cfg.get("mobility"))
    hb = hindsight_bound(trace, iters=cfg["iters"], method=cfg["method"], workers=1)
    return {"energy_per_mu_slot": float(hb.energy_per_mu_slot), "eps": float(hb.eps.max()),
            "requests": [float(r) for r in hb.requests],
            "points": [{"G": float(p.G), "mu": [float(m) for m in p.mu], "certified_all_optimal": bool(p.certified_all_optimal)}
                       for p in hb.points]}


_RAW_PPO = {"action_map": "raw", "bs_map": "raw", "credit": "team", "actor_lr": 5e-4, "ppo_epochs": 5}
VARIANTS = {"raw": {"beta-happo": _RAW_PPO, "gaussian-happo": _RAW_PPO, "beta-mappo": _RAW_PPO,
                    "maddpg": {"action_map": "raw", "bs_map": "raw"}}}
"""``ALGO:raw`` in ``algos``: the case study's parametrization (raw power action, raw CPU weights, team
credit and the step sizes it was run with; docs/agents.md, "What is new by default"), so the report
shows what the structured actions and local credit change."""


def agent_config(algo: str, overrides: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(algorithm name, config overrides) of an ``algos`` entry ``ALGO`` or ``ALGO:VARIANT``."""
    name, _, variant = algo.partition(":")
    if variant and (variant not in VARIANTS or name not in VARIANTS[variant]):
        raise ValueError(f"algos: unknown variant {algo!r}; expected ALGO or ALGO:{'|'.join(VARIANTS)}")
    return name, {**(VARIANTS[variant][name] if variant else {}), **overrides}


def train_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Train ``algo`` (``ALGO`` or ``ALGO:raw``); at every ``eval_every`` iterations checkpoint it and
    simulate the checkpoint on the replayed trace. The last checkpoint stays in ``workdir``."""
    import torch

    from wdtnopt import Scenario, simulate
    from wdtnopt.agents.checkpoint import CheckpointPolicy
    from wdtnopt.agents.trainer import Trainer

    torch.set_num_threads(1)
    sc = Scenario.paper(n_mus=cfg["n_mus"], eta=cfg["eta"])
    trace = _trace(cfg["n_mus"], cfg["eta"], cfg["seed"], cfg["slots"], cfg.get("mobility"))
    algo, overrides = agent_config(cfg["algo"], cfg["agent"])
    tr = Trainer(algo, sc, cfg["seed"], {**overrides, "torch_threads": 1}, cfg.get("mobility"))
    curve = []

    def evaluate(train_stats: dict[str, float] | None) -> dict[str, Any]:
        tr.save(workdir)
        row = {"iteration": tr.iteration, "env_steps": tr.env_steps,
               **_summary(simulate(CheckpointPolicy(workdir), trace), trace)}
        row.pop("failure_ratio_per_mu")
        if train_stats is not None:
            row["train_energy_per_mu_slot"] = float(train_stats.get("energy_per_mu_slot", math.nan))
            row["train_failure_ratio"] = float(train_stats.get("failure_ratio", math.nan))
        curve.append(row)
        return row

    evaluate(None)
    for i in range(1, cfg["iterations"] + 1):
        stats = tr.train_iteration()
        if i % cfg["eval_every"] == 0 or i == cfg["iterations"]:
            evaluate(stats)
    final = _summary(simulate(CheckpointPolicy(workdir), trace), trace)
    return {"final": final, "curve": curve, "env_steps": tr.env_steps, "checkpoint": f"agents/{workdir.name}"}


# -- rendering -------------------------------------------------------------------------------------
def _runs(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[tuple[int, int], dict[str, Any]]]:
    """Flat rows (method, N, eta, seed, metrics) of every simulated run, and the bounds by (N, seed)."""
    rows, bounds = [], {}
    for rec in records:
        c, r = rec["config"], rec["result"]
        if c["kind"] == "bound":
            bounds[(c["n_mus"], c["seed"])] = r
        elif c["kind"] == "policy":
            rows.append({"method": c["policy"], "kind": "policy", "n_mus": c["n_mus"], "eta": c["eta"], "seed": c["seed"],
                         "slots": c["slots"], **r})
        else:
            rows.append({"method": c["algo"], "kind": "agent", "n_mus": c["n_mus"], "eta": c["eta"], "seed": c["seed"],
                         "slots": c["slots"], "env_steps": r["env_steps"], **r["final"]})
    # dedupe (the same task can serve several panels)
    uniq = {(r["method"], r["n_mus"], r["eta"], r["seed"]): r for r in rows}
    rows = sorted(uniq.values(), key=lambda r: (r["kind"], r["method"], r["n_mus"], r["eta"], r["seed"]))
    for r in rows:
        b = bounds.get((r["n_mus"], r["seed"]))
        r["bound_own"] = r["gap_own"] = math.nan
        if b is not None:
            lb = _bound_at(b, np.asarray(r["failure_ratio_per_mu"]), r["n_mus"], r["slots"])
            r["bound_own"] = lb
            r["gap_own"] = (r["energy_per_mu_slot"] - lb) / lb if lb > 0 else math.nan
    return rows, bounds


def _bound_at(b: dict[str, Any], eps: np.ndarray, n_mus: int, slots: int) -> float:
    """The hindsight bound (J per MU per slot) at per-MU failure ratios ``eps``, from the kept points."""
    req = np.asarray(b["requests"])
    best = 0.0
    for p in b["points"]:
        best = max(best, p["G"] - float(np.asarray(p["mu"]) @ (np.clip(eps, 0, 1) * req)))
    return best / (n_mus * slots)


def _reference_lines(axes, rows, methods, n0, b0, eps, mj) -> None:
    """Energy/failure panels: each policy at N = n0, eta = 1 as a line with band, the bound, eps."""
    for p in methods:
        sel = _select(rows, p, n_mus=n0, eta=ETA_DEFAULT)
        style.hline(axes[0], [r["energy_per_mu_slot"] for r in sel], p, scale=mj)
        style.hline(axes[1], [r["failure_ratio"] for r in sel], p)
    style.hline(axes[0], b0, "bound", scale=mj)
    axes[1].axhline(eps, color="gray", lw=0.8, ls="-.", label=f"target eps = {eps:g}")
    axes[0].set_ylabel("average MU energy per slot (mJ)")
    axes[1].set_ylabel("failure ratio (failed / requested syncs)")


def _select(rows: list[dict[str, Any]], method: str, **where: Any) -> list[dict[str, Any]]:
    return [r for r in rows if r["method"] == method and all(r[k] == v for k, v in where.items())]


def _by_seed(rows: list[dict[str, Any]], key: str) -> dict[int, float]:
    return {r["seed"]: r[key] for r in rows}


def _tighten_own_bounds(cfg: dict[str, Any], rows: list[dict[str, Any]], bounds: dict[tuple[int, int], dict[str, Any]],
                        out: Path) -> None:
    """Each run's bound at its *own* per-MU failure ratios, tightened there as :func:`wdtnopt.gap` does.

    A bound task climbs for ``eps`` only; its points alone are loose at a run that fails 1.5% of its
    requests (the myopic oracle's gap at N = 30 read 15% from them, 4-6% after ``bound_iters`` more
    dual evaluations at its own ratios). Per (N, seed) the bound is rebuilt on the same trace (same
    code, same budget, so the same points), tightened at every run's ratios in turn, and each run
    takes the best of all those points and the task's own (every point bounds every target).
    Results go to ``own_bounds.json`` in ``out``, keyed by run and its exact failure ratios, so a
    re-render recomputes only what changed.
    """
    from wdtnopt import hindsight_bound

    cache_path = out / "own_bounds.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    iters = int(cfg["bound_iters"])
    fresh: dict[str, Any] = {}
    by_trace: dict[tuple[int, int], list[tuple[str, dict[str, Any]]]] = {}
    for r in rows:
        n, seed = r["n_mus"], r["seed"]
        if (n, seed) in bounds:
            key = f"{cfg['bound_method']}|{iters}|{r['slots']}|{n}|{seed}|{r['method']}|{r['eta']}"
            by_trace.setdefault((n, seed), []).append((key, r))
    for (n, seed), group in sorted(by_trace.items()):
        if all(k in cache and cache[k]["eps"] == list(r["failure_ratio_per_mu"]) for k, r in group):
            fresh.update({k: cache[k] for k, _ in group})
            continue
        print(f"paper: tightening the bound at {len(group)} runs' own failure ratios, N = {n}, seed {seed}",
              flush=True)
        slots = group[0][1]["slots"]
        trace = _trace(n, ETA_DEFAULT, seed, slots, cfg.get("mobility") or None)
        hb = hindsight_bound(trace, iters=iters, method=cfg["bound_method"], workers=1)
        for _, r in group:
            hb.tighten(r["failure_ratio_per_mu"], iters, failure_price=trace.scenario.failure_price)
        for k, r in group:
            lb = hb.value_at(r["failure_ratio_per_mu"])[0] / (n * slots)
            fresh[k] = {"eps": list(r["failure_ratio_per_mu"]), "bound_own": max(lb, r["bound_own"])}
    atomic_write_text(cache_path, json.dumps(fresh, sort_keys=True))
    for group in by_trace.values():
        for k, r in group:
            lb = r["bound_own"] = fresh[k]["bound_own"]
            r["gap_own"] = (r["energy_per_mu_slot"] - lb) / lb if lb > 0 else math.nan


def render(cfg: dict[str, Any], records: list[dict[str, Any]], out: Path, info: dict[str, Any]) -> list[Path]:
    rows, bounds = _runs(records)
    _tighten_own_bounds(cfg, rows, bounds, out)
    n0 = int(cfg["n_mus"])
    ns = sorted({int(n) for n in cfg["n_grid"]} | {n0})
    etas = sorted({float(e) for e in cfg["eta_grid"]} | {ETA_DEFAULT})
    files = []

    # tables (no timings here: these are the numbers, identical on any back end)
    header = ["kind", "method", "n_mus", "eta", "seed", "slots", "energy_per_mu_slot_j", "failure_ratio",
              "team_cost", "migrations", "bound_own_j", "gap_own", "env_steps"]
    text = style.csv_text(header, ([r["kind"], r["method"], r["n_mus"], r["eta"], r["seed"], r["slots"],
                                    r["energy_per_mu_slot"], r["failure_ratio"], r["team_cost"], r["migrations"],
                                    r["bound_own"], r["gap_own"], r.get("env_steps", "")] for r in rows))
    atomic_write_text(out / "runs.csv", text)
    files.append(out / "runs.csv")
    curves = [(rec["config"], row) for rec in records if rec["config"]["kind"] == "train" for row in rec["result"]["curve"]]
    curves = {(c["algo"], c["n_mus"], c["eta"], c["seed"], row["iteration"]): (c, row) for c, row in curves}
    text = style.csv_text(["algo", "n_mus", "eta", "seed", "iteration", "env_steps", "energy_per_mu_slot_j",
                           "failure_ratio", "team_cost", "train_energy_per_mu_slot_j", "train_failure_ratio"],
                          ([c["algo"], c["n_mus"], c["eta"], c["seed"], row["iteration"], row["env_steps"],
                            row["energy_per_mu_slot"], row["failure_ratio"], row["team_cost"],
                            row.get("train_energy_per_mu_slot", math.nan), row.get("train_failure_ratio", math.nan)]
                           for _, (c, row) in sorted(curves.items())))
    atomic_write_text(out / "curves.csv", text)
    files.append(out / "curves.csv")
    text = style.csv_text(["n_mus", "seed", "eps", "bound_energy_per_mu_slot_j", "dual_points"],
                          ([n, s, b["eps"], b["energy_per_mu_slot"], len(b["points"])] for (n, s), b in sorted(bounds.items())))
    atomic_write_text(out / "bounds.csv", text)
    files.append(out / "bounds.csv")
    timings = style.csv_text(["key", "kind", "method", "n_mus", "eta", "seed", "elapsed_s", "host"],
                             ([rec["key"], rec["config"]["kind"], rec["config"].get("algo", rec["config"].get("policy", "")),
                               rec["config"]["n_mus"], rec["config"].get("eta", ""), rec["config"]["seed"],
                               rec["elapsed_s"], rec.get("host", "")] for rec in records))
    atomic_write_text(out / "timings.csv", timings)
    files.append(out / "timings.csv")

    files += _figures(cfg, rows, bounds, records, out, n0, ns, etas)
    files.append(_report(cfg, rows, bounds, records, out, n0, ns, etas, info))
    return files


def _policy_methods(cfg: dict[str, Any]) -> list[str]:
    return [p for p in ("lyapunov", "oracle", "static", "follow") if p in cfg["policies"]]


def _save(fig: Any, path: Path) -> Path:
    # energies and failure ratios are >= 0: a t-band reaching below 0 is clipped on the figure
    for ax in fig.axes:
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 0.0))
    return style.save(fig, path)


def _figures(cfg, rows, bounds, records, out, n0, ns, etas) -> list[Path]:
    plt = style.pyplot()
    files = []
    mj = 1e3
    eps = float(next(iter(bounds.values()))["eps"]) if bounds else 0.05
    b0 = [b["energy_per_mu_slot"] for (n, s), b in bounds.items() if n == n0]
    n_seeds = len(cfg["seeds"])

    # (a) training curves
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for algo in cfg["algos"]:
        curves: dict[int, list[dict[str, Any]]] = {}
        for rec in records:
            c = rec["config"]
            if c["kind"] == "train" and c["algo"] == algo and c["n_mus"] == n0 and c["eta"] == ETA_DEFAULT:
                curves[c["seed"]] = rec["result"]["curve"]
        if not curves:
            continue
        steps = [row["env_steps"] for row in next(iter(curves.values()))]
        for ax, key in zip(axes, ("energy_per_mu_slot", "failure_ratio")):
            per = [[cv[i][key] for cv in curves.values() if i < len(cv)] for i in range(len(steps))]
            style.band(ax, steps, per, algo, scale=mj if key == "energy_per_mu_slot" else 1.0)
    _reference_lines(axes, rows, _policy_methods(cfg), n0, b0, eps, mj)
    for ax in axes:
        ax.set_xlabel("training steps (environment slots, all parallel envs)")
    style.legend_below(fig, axes)
    fig.suptitle(f"(a) Learning curves, N = {n0}, eta = 1: checkpoints simulated on the replayed traces\n"
                 f"({style.band_words(n_seeds)}); hindsight lower bound at eps = {eps:g}")
    files.append(_save(fig, out / "fig_a_training.png"))

    # (b) eta sweep
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for m in list(cfg["sweep_algos"]) + (["oracle"] if "oracle" in cfg["policies"] else []):
        for ax, key in zip(axes, ("energy_per_mu_slot", "failure_ratio")):
            per = [[r[key] for r in _select(rows, m, n_mus=n0, eta=e)] for e in etas]
            style.band(ax, etas, per, m, scale=mj if key == "energy_per_mu_slot" else 1.0)
    _reference_lines(axes, rows, [p for p in _policy_methods(cfg) if p != "oracle"], n0, b0, eps, mj)
    for ax in axes:
        ax.set_xlabel("failure weight eta of the team reward (units of E_ref per failure)")
    style.legend_below(fig, axes)
    fig.suptitle(f"(b) Energy-reliability trade-off vs eta, N = {n0} ({style.band_words(n_seeds)})")
    files.append(_save(fig, out / "fig_b_eta.png"))

    # (c) energy vs N and (d) failure ratio vs N
    for fname, key, ylabel, title in (
            ("fig_c_energy_vs_n.png", "energy_per_mu_slot", "average MU energy per slot (mJ)", "(c) Energy vs number of MUs"),
            ("fig_d_failure_vs_n.png", "failure_ratio", "failure ratio (failed / requested syncs)", "(d) Failure ratio vs number of MUs")):
        fig, ax = plt.subplots(figsize=(7, 4.3))
        scale = mj if key == "energy_per_mu_slot" else 1.0
        for m in list(cfg["sweep_algos"]) + _policy_methods(cfg):
            per = [[r[key] for r in _select(rows, m, n_mus=n, eta=ETA_DEFAULT)] for n in ns]
            style.band(ax, ns, per, m, scale=scale)
        if key == "energy_per_mu_slot" and bounds:
            style.band(ax, ns, [[b["energy_per_mu_slot"] for (nn, s), b in bounds.items() if nn == n] for n in ns],
                       "bound", scale=scale)
        if key == "failure_ratio":
            ax.axhline(eps, color="gray", lw=0.8, ls="-.", label=f"target eps = {eps:g}")
        ax.set_xlabel("number of MUs N")
        ax.set_ylabel(ylabel)
        style.legend_below(fig, [ax])
        ax.set_title(f"{title}, eta = 1 ({style.band_words(n_seeds)})" +
                     (f"; bound at eps = {eps:g}" if key == "energy_per_mu_slot" else ""))
        files.append(_save(fig, out / fname))
    return files


# -- report ----------------------------------------------------------------------------------------
def _diff(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """Paired difference a - b over the seeds both have (same seed = same trace)."""
    seeds = sorted(set(a) & set(b))
    return style.mean_ci([a[s] - b[s] for s in seeds])


def _verdict(mean: float, half: float, want_negative: bool = True) -> str:
    if not np.isfinite(mean):
        return "not measured"
    if abs(mean) < 1e-15:
        return "does not hold (no change)"
    good = mean < 0 if want_negative else mean > 0
    if not np.isfinite(half):
        return "holds (one seed, no interval)" if good else "does not hold (one seed)"
    if good and abs(mean) > half:
        return "holds"
    if good:
        return "direction holds, not significant (95% interval includes 0)"
    if abs(mean) > half:
        return "does not hold (significantly reversed)"
    return "does not hold (reversed, not significant)"


def _slope(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares slope of y on x and its 95% t half-width."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.ptp(x) == 0:
        return math.nan, math.nan
    from scipy import stats
    res = stats.linregress(x, y)
    return float(res.slope), float(stats.t.ppf(0.975, x.size - 2) * res.stderr)


def _steps_to(curve: list[dict[str, Any]], frac: float = 0.9) -> float:
    """Environment steps until the team cost first closes ``frac`` of its total improvement."""
    cost = np.array([row["team_cost"] for row in curve])
    gain = cost[0] - cost.min()
    if gain <= 0:
        return math.nan
    target = cost[0] - frac * gain
    return float(curve[int(np.argmax(cost <= target + 1e-15))]["env_steps"])


def _fmt(m: float, h: float, scale: float = 1.0, digits: int = 4, percent: bool = False) -> str:
    return style.ci_text(m, h, scale=scale, digits=digits, percent=percent)


def _report(cfg, rows, bounds, records, out, n0, ns, etas, info) -> Path:
    mj = 1e3
    seeds = sorted({int(s) for s in cfg["seeds"]})
    eps = float(next(iter(bounds.values()))["eps"]) if bounds else float("nan")
    total = sum(r["elapsed_s"] for r in records)
    agent_cfg = ", ".join(f"{k} = {v}" for k, v in cfg.get("agent", {}).items()) or "algorithm defaults"
    lines = [
        "# Case-study benchmark (suite `paper`)", "",
        f"- Command (the run that rendered this report; tasks reused from earlier runs keep their own times "
        f"and hosts in `timings.csv`): `{info['command']}`",
        f"- Machine: {info['machine']}; Python {info['python']}, numpy {info['numpy']}; {info['date']}",
        f"- Preset: `{cfg['preset']}`; {counted(len(seeds), 'seed')} {seeds}; replayed traces of {counted(cfg['slots'], 'slot')} "
        f"(one per N, eta and seed, shared by every method); agents trained {counted(cfg['iterations'], 'iteration')} "
        f"({agent_cfg}), evaluated every {cfg['eval_every']}; hindsight bound: {cfg['bound_iters']} dual steps, "
        f"inner method `{cfg['bound_method']}`; Lyapunov scheduler V = {lyapunov_settings(cfg)[0]:g}, "
        f"theta = {lyapunov_settings(cfg)[1]:g}; mobility: "
        + (f"replayed from `{Path(cfg['mobility']).name}` (docs/mobility.md)." if cfg.get("mobility") else "Gauss-Markov."),
        f"- {len(records)} tasks, {total / 60:.1f} CPU-minutes of task time.",
        f"- Code: {info.get('code', 'not recorded')}.",
        "- Intervals are 95% t-intervals over seeds (mean ± half-width); differences are paired by seed (same trace).",
        "",
        f"## All methods at N = {n0}, eta = 1", "",
        f"Gap = (E - LB) / LB with LB the hindsight bound at the method's *own* per-MU failure ratios "
        f"(a valid lower bound for that method), tightened there with {int(cfg['bound_iters'])} more dual evaluations "
        f"per run (`own_bounds.json`); the bound at the target eps = {eps:g} is "
        f"{_fmt(*style.mean_ci([b['energy_per_mu_slot'] for (n, s), b in bounds.items() if n == n0])[:2], mj)} mJ.", "",
        "| method | energy / MU / slot (mJ) | failure ratio | team cost / MU / slot | gap to own bound |",
        "|---|---|---|---|---|"]
    methods = list(dict.fromkeys(list(cfg["algos"]) + list(cfg["sweep_algos"]) + _policy_methods(cfg)))
    for m in methods:
        sel = _select(rows, m, n_mus=n0, eta=ETA_DEFAULT)
        if not sel:
            continue
        e, f, c, g = (style.mean_ci([r[k] for r in sel])[:2] for k in ("energy_per_mu_slot", "failure_ratio", "team_cost", "gap_own"))
        lines.append(f"| {style.label(m)} | {_fmt(*e, mj)} | {_fmt(*f)} | {_fmt(*c)} | {_fmt(*g, 100, percent=True)} |")
    below = [r for r in rows if np.isfinite(r["bound_own"]) and r["energy_per_mu_slot"] < r["bound_own"] * (1 - 1e-9)]
    lines += ["", f"Sanity: runs with energy below their own bound: {len(below)} (must be 0)."]

    lines += ["", "## Trends of the case study", "",
              "| claim | measure | value (95% CI) | verdict |", "|---|---|---|---|"]

    def final(m: str, key: str, n: int = n0, eta: float = ETA_DEFAULT) -> dict[int, float]:
        return _by_seed(_select(rows, m, n_mus=n, eta=eta), key)

    algos = set(cfg["algos"])
    for a, b, claim in (("beta-happo", "gaussian-happo", "Beta below Gaussian (HAPPO)"),
                        ("beta-happo", "beta-mappo", "HAPPO below MAPPO (Beta)")):
        if a in algos and b in algos:
            d = _diff(final(a, "energy_per_mu_slot"), final(b, "energy_per_mu_slot"))
            dc = _diff(final(a, "team_cost"), final(b, "team_cost"))
            df = _diff(final(a, "failure_ratio"), final(b, "failure_ratio"))
            lines.append(f"| {claim} | energy {style.label(a)} - {style.label(b)} (mJ) | {_fmt(d[0], d[1], mj)} | "
                         f"{_verdict(d[0], d[1])} |")
            lines.append(f"| {claim} | failure ratio difference (context) | {_fmt(df[0], df[1])} | "
                         f"{'fewer failures too' if df[0] <= 0 else 'bought with more failures'} |")
            lines.append(f"| {claim} | team cost difference (what the agents optimize) | {_fmt(dc[0], dc[1])} | "
                         f"{_verdict(dc[0], dc[1])} |")
    if "beta-happo" in algos and "maddpg" in algos:
        def speeds(m: str) -> dict[int, float]:
            return {rec["config"]["seed"]: _steps_to(rec["result"]["curve"]) for rec in records
                    if rec["config"]["kind"] == "train" and rec["config"]["algo"] == m
                    and rec["config"]["n_mus"] == n0 and rec["config"]["eta"] == ETA_DEFAULT}
        sh, sm = speeds("beta-happo"), speeds("maddpg")
        d = _diff({k: v for k, v in sh.items() if np.isfinite(v)}, {k: v for k, v in sm.items() if np.isfinite(v)})
        nh, nm = sum(np.isfinite(v) for v in sh.values()), sum(np.isfinite(v) for v in sm.values())
        if d[2] > 0:
            lines.append(f"| HAPPO faster than MADDPG | env steps to 90% of the team-cost improvement, HAPPO - MADDPG "
                         f"(seeds where both improved: {d[2]}) | {_fmt(d[0], d[1], 1, 5)} | {_verdict(d[0], d[1])} |")
        else:
            hs = style.mean_ci([v for v in sh.values() if np.isfinite(v)])
            verdict = ("holds (MADDPG did not improve on any seed)" if nh and not nm else
                       "does not hold (HAPPO did not improve on any seed)" if nm and not nh else "not measured")
            lines.append(f"| HAPPO faster than MADDPG | seeds whose team cost improved: HAPPO {nh}/{len(sh)} (90% of it "
                         f"after {_fmt(*hs[:2], 1, 5)} env steps), MADDPG {nm}/{len(sm)} | - | {verdict} |")

        def area(m: str) -> dict[int, float]:
            return {rec["config"]["seed"]: float(np.mean([row["team_cost"] for row in rec["result"]["curve"]]))
                    for rec in records if rec["config"]["kind"] == "train" and rec["config"]["algo"] == m
                    and rec["config"]["n_mus"] == n0 and rec["config"]["eta"] == ETA_DEFAULT}
        da = _diff(area("beta-happo"), area("maddpg"))
        lines.append(f"| HAPPO faster than MADDPG | mean team cost over the learning curve, HAPPO - MADDPG | "
                     f"{_fmt(*da[:2])} | {_verdict(*da[:2])} |")
        dc = _diff(final("beta-happo", "team_cost"), final("maddpg", "team_cost"))
        lines.append(f"| HAPPO faster than MADDPG | final team cost HAPPO - MADDPG | {_fmt(*dc[:2])} | {_verdict(*dc[:2])} |")
    for m in list(cfg["sweep_algos"]) + (["oracle"] if "oracle" in cfg["policies"] else []):
        pts = [r for e in etas for r in _select(rows, m, n_mus=n0, eta=e)]
        if len({r["eta"] for r in pts}) < 2:
            continue
        se = _slope([r["eta"] for r in pts], [r["energy_per_mu_slot"] for r in pts])
        sf = _slope([r["eta"] for r in pts], [r["failure_ratio"] for r in pts])
        lines.append(f"| eta trade-off ({style.label(m)}) | slope of energy vs eta (mJ per unit eta) | {_fmt(se[0], se[1], mj)} | "
                     f"{_verdict(se[0], se[1], want_negative=False)} |")
        lines.append(f"| eta trade-off ({style.label(m)}) | slope of failure ratio vs eta | {_fmt(*sf)} | {_verdict(*sf)} |")
    for m in list(cfg["sweep_algos"]) + _policy_methods(cfg):
        pts = [r for n in ns for r in _select(rows, m, n_mus=n, eta=ETA_DEFAULT)]
        if len({r["n_mus"] for r in pts}) < 2:
            continue
        for key, what, sc in (("energy_per_mu_slot", "energy", mj), ("failure_ratio", "failure ratio", 1.0)):
            s = _slope([r["n_mus"] for r in pts], [r[key] for r in pts])
            means = [style.mean_ci([r[key] for r in pts if r["n_mus"] == n])[0] for n in ns]
            mono = sum(b >= a for a, b in zip(means, means[1:]))
            lines.append(f"| {what} rises with N ({style.label(m)}) | slope per MU{' (mJ)' if sc != 1 else ''}; "
                         f"non-decreasing steps {mono}/{len(ns) - 1} | {_fmt(s[0], s[1], sc)} | "
                         f"{_verdict(s[0], s[1], want_negative=False)} |")
    lines += ["", "## Per N (eta = 1)", "", "| N | method | energy (mJ) | failure ratio | gap to own bound | bound at eps (mJ) |",
              "|---|---|---|---|---|---|"]
    for n in ns:
        bn = style.mean_ci([b["energy_per_mu_slot"] for (nn, s), b in bounds.items() if nn == n])
        for m in list(cfg["sweep_algos"]) + _policy_methods(cfg):
            sel = _select(rows, m, n_mus=n, eta=ETA_DEFAULT)
            if sel:
                e, f, g = (style.mean_ci([r[k] for r in sel])[:2] for k in ("energy_per_mu_slot", "failure_ratio", "gap_own"))
                lines.append(f"| {n} | {style.label(m)} | {_fmt(*e, mj)} | {_fmt(*f)} | {_fmt(*g, 100, percent=True)} | {_fmt(*bn[:2], mj)} |")
    lines += ["", "## Files", "",
              "`runs.csv` (every simulated run: method, N, eta, seed, energy, failures, team cost, bound at own "
              "failure ratios, gap), `curves.csv` (every evaluation point of every training run), `bounds.csv`, "
              "`timings.csv`, `own_bounds.json` (each run's bound at its own failure ratios), figures `fig_a_training.png`, `fig_b_eta.png`, `fig_c_energy_vs_n.png`, "
              "`fig_d_failure_vs_n.png`; task results in `tasks/`, checkpoints in `agents/`.", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
