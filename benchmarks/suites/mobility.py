"""Suite ``mobility``: the case study's policies on Gauss-Markov vs SUMO grid traffic at the same N.

One task per (mobility, seed): the trace of ``Scenario.paper(n_mus=N)`` under ``seed`` with MU
positions from the Gauss-Markov model, or replayed from SUMO (docs/mobility.md): a grid of
``grid_number`` x ``grid_number`` junctions ``grid_length_m`` apart (the case study's 1 km square
for 5 x 250 m), a random trip every ``trip_period_s``, SUMO's seed the trace seed, built by
``wdtnopt.processes.sumo.build_sumo_grid`` in the task's own temporary folder. Fading, requests
and workload come from the same seed in both, so the two traces differ only in where the MUs are.
The task simulates every policy, climbs the hindsight bound once and reports each policy's gap to
it at the policy's own per-MU failure ratios (``wdtnopt.gap``), with the mobility's own statistics
(speed, serving-BS changes, held slots of the cleaning).
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from wdtnopt.errors import WdtnoptError
from wdtnopt.io import atomic_write_text
from wdtnopt.wording import counted

from . import style
from .runner import (Task, check_counts, check_lyapunov, check_method, check_policies, check_scenarios, input_file,
                     lyapunov_settings)

MODULE = "wdtnopt.benchmarks.suites.mobility"
MOBILITIES = ("gauss-markov", "sumo-grid")


def check(cfg: dict[str, Any]) -> None:
    """Refuse a bad setting, policy, method or Lyapunov parameter before any task runs (one line
    naming the key and what it accepts; docs/benchmarks.md)."""
    check_counts(cfg, ("seeds", "gap_iters"), 0)
    check_counts(cfg, ("slots", "n_mus", "bound_iters"), 1)
    check_policies("policies", cfg["policies"])
    check_method("bound_method", cfg["bound_method"])
    check_lyapunov(cfg)
    check_scenarios("n_mus", [{"n_mus": cfg["n_mus"]}])
    if not cfg["fcd"]:   # the SUMO grid is built in the tasks: its spec is checked here
        from wdtnopt.processes.sumo import SumoGridSpec
        try:
            SumoGridSpec(grid_number=cfg["grid_number"], grid_length_m=cfg["grid_length_m"],
                         trip_period_s=cfg["trip_period_s"], duration_s=cfg["duration_s"])
        except (WdtnoptError, TypeError) as exc:
            raise WdtnoptError(f"preset: grid_number / grid_length_m / trip_period_s / duration_s: {exc}") from None


def tasks(cfg: dict[str, Any]) -> list[Task]:
    base = {"suite": "mobility", "kind": "mobility", "n_mus": int(cfg["n_mus"]), "slots": int(cfg["slots"]),
            "policies": list(cfg["policies"]), "V": lyapunov_settings(cfg)[0], "theta": lyapunov_settings(cfg)[1],
            "bound_iters": int(cfg["bound_iters"]), "bound_method": str(cfg["bound_method"]),
            "gap_iters": int(cfg["gap_iters"])}
    grid = {k: cfg[k] for k in ("grid_number", "grid_length_m", "trip_period_s", "duration_s")}
    fcd = input_file("preset: fcd", cfg["fcd"]) if cfg["fcd"] else None   # its digest enters the keys
    out = []
    for s in cfg["seeds"]:
        out.append(Task(f"{MODULE}:mobility_task", {**base, "mobility": "gauss-markov", "seed": int(s)}))
        sumo = {"fcd": fcd["path"], "fcd_sha256": fcd["sha256"]} if cfg["fcd"] else {"grid": grid}
        out.append(Task(f"{MODULE}:mobility_task", {**base, "mobility": "sumo-grid", "seed": int(s), **sumo}))
    return out


def mobility_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt import Scenario, gap, generate_trace, hindsight_bound, simulate
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    sc = Scenario.paper(n_mus=cfg["n_mus"])
    with tempfile.TemporaryDirectory(prefix="wdtnopt-sumo-") as tmp:
        source = None
        if cfg["mobility"] == "sumo-grid":
            if "fcd" in cfg:
                source = cfg["fcd"]
            else:
                from wdtnopt.processes.sumo import SumoGridSpec, build_sumo_grid
                spec = SumoGridSpec(grid_number=int(cfg["grid"]["grid_number"]),
                                    grid_length_m=float(cfg["grid"]["grid_length_m"]),
                                    trip_period_s=float(cfg["grid"]["trip_period_s"]), seed=int(cfg["seed"]),
                                    duration_s=float(cfg["grid"]["duration_s"]), step_s=float(sc.slot_s))
                sc = sc.replace(area_m=spec.area_m)
                source = build_sumo_grid(spec, workdir=tmp)
        trace = generate_trace(sc, seed=cfg["seed"], slots=cfg["slots"], mobility=source)
    results = []
    for p in cfg["policies"]:
        pol = LyapunovPolicy(V=cfg["V"], theta=cfg["theta"]) if p == "lyapunov" else p
        res = simulate(pol, trace)
        res.policy = p
        results.append(res)
    hb = hindsight_bound(trace, iters=cfg["bound_iters"], method=cfg["bound_method"], workers=1)
    report = gap(results, trace, bound=hb, iters=cfg["gap_iters"], method=cfg["bound_method"], workers=1)
    rep = trace.mobility_report
    return {
        "policies": {r.policy: {"energy_per_mu_slot": float(res.energy_per_mu_slot), "failure_ratio": float(res.failure_ratio),
                                "migrations": int(res.migrations), "bound_per_mu_slot": float(r.bound_per_mu_slot),
                                "gap": float(r.gap)}
                     for r, res in zip(report.rows, results)},
        "bound_per_mu_slot": float(hb.energy_per_mu_slot),
        "mean_speed_mps": float(trace.speed[:-1].mean()) if trace.slots > 1 else 0.0,
        "assoc_changes_per_mu_slot": float((np.diff(trace.assoc, axis=0) != 0).mean()) if trace.slots > 1 else 0.0,
        "requests": int(trace.request.sum()),
        "cleaning": None if rep is None else {"summary": rep.summary(), **rep.counts},
    }


def render(cfg: dict[str, Any], records: list[dict[str, Any]], out: Path, info: dict[str, Any]) -> list[Path]:
    by = {m: [r["result"] for r in records if r["config"]["mobility"] == m] for m in MOBILITIES}
    policies = list(cfg["policies"])
    metrics = (("energy_per_mu_slot", "energy / MU / slot (mJ)", 1e3), ("failure_ratio", "failure ratio", 1.0),
               ("migrations", "migrations per trace", 1.0), ("gap", "gap to hindsight bound (%)", 100.0))
    rows = []
    for m in MOBILITIES:
        for p in policies:
            row = [m, p]
            for key, _, scale in metrics:
                mean, half, _ = style.mean_ci(r["policies"][p][key] * scale for r in by[m])
                row += [mean, half]
            rows.append(row)
    header = ["mobility", "policy"] + [f"{k}{s}" for k, _, _ in metrics for s in ("", "_ci95")]
    atomic_write_text(out / "mobility.csv", style.csv_text(header, rows))

    plt = style.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    width = 0.8 / len(MOBILITIES)
    x = np.arange(len(policies))
    for ax, (key, ylabel, scale) in zip(axes, metrics):
        for i, m in enumerate(MOBILITIES):
            stats = [style.mean_ci(r["policies"][p][key] * scale for r in by[m]) for p in policies]
            ax.bar(x + (i - 0.5) * width, [s[0] for s in stats], width,
                   yerr=[0 if math.isnan(s[1]) else s[1] for s in stats], capsize=2,
                   label="Gauss-Markov" if m == "gauss-markov" else "SUMO grid", color=("#1f77b4", "#ff7f0e")[i])
            if key == "energy_per_mu_slot":
                lb = style.mean_ci(r["bound_per_mu_slot"] * scale for r in by[m])[0]
                ax.axhline(lb, color=("#1f77b4", "#ff7f0e")[i], ls="--", lw=1,
                           label=f"hindsight bound ({'GM' if i == 0 else 'SUMO'})")
        ax.set_xticks(x, [style.label(p) if p != "lyapunov" else "Lyapunov" for p in policies], rotation=20)
        ax.set_ylabel(ylabel)
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 1.45)     # room for the legend above the bars
    axes[0].legend(loc="upper left", ncol=2, fontsize=6.5)
    fig.suptitle(f"Gauss-Markov vs SUMO grid traffic, N = {cfg['n_mus']}, {counted(cfg['slots'], 'slot')}, "
                 f"{len(cfg['seeds'])} seed(s) (bars: mean, whiskers: 95% t-interval)")
    fig.tight_layout()
    style.save(fig, out / "fig_mobility.png")

    def f(v: float, digits: int = 4) -> str:
        return "-" if not math.isfinite(v) else f"{v:.{digits}g}"

    lines = ["# Mobility (suite `mobility`)", "", f"- Command: `{info['command']}`",
             f"- Machine: {info['machine']}; {info['date']}", f"- Code: {info.get('code', 'not recorded')}.",
             f"- Preset `{cfg['preset']}`: N = {cfg['n_mus']}, {counted(cfg['slots'], 'slot')} of the paper scenario, seeds "
             f"{list(cfg['seeds'])}; SUMO: " + (f"replayed `{Path(cfg['fcd']).name}`" if cfg["fcd"] else
                                                f"{cfg['grid_number']} x {cfg['grid_number']} grid, {cfg['grid_length_m']:g} m "
                                                f"blocks, a trip every {cfg['trip_period_s']:g} s, {cfg['duration_s']:g} s "
                                                "simulated, SUMO seed = trace seed") + ".",
             f"- Hindsight bound: {cfg['bound_iters']} dual steps ({cfg['bound_method']}), "
             f"+{cfg['gap_iters']} per policy at its own failure ratios.", "",
             "| mobility | mean speed (m/s) | serving-BS changes / MU / slot | hindsight bound (mJ) |", "|---|---|---|---|"]
    for m in MOBILITIES:
        sp = style.mean_ci(r["mean_speed_mps"] for r in by[m])[0]
        ho = style.mean_ci(r["assoc_changes_per_mu_slot"] for r in by[m])[0]
        lb = style.mean_ci(r["bound_per_mu_slot"] * 1e3 for r in by[m])[0]
        lines.append(f"| {m} | {f(sp, 3)} | {f(ho, 3)} | {f(lb)} |")
    lines += ["", f"Policies ({style.interval_words(len(cfg['seeds']))}; the gap in percent of the bound):", "",
              "| mobility | policy | energy / MU / slot (mJ) | failure ratio | migrations | gap to bound |",
              "|---|---|---|---|---|---|"]
    for row in rows:
        m, p, e, eh, fr, frh, mig, migh, g, gh = row
        ci = style.ci_text
        lines.append(f"| {m} | {p} | {ci(e, eh)} | {ci(fr, frh, digits=3)} | {ci(mig, migh, digits=3)} | "
                     f"{ci(g, gh, percent=True)} |")
    # paired by seed: the two traces of a seed share fading, requests and workload
    seeded = {m: {r["config"]["seed"]: r["result"] for r in records if r["config"]["mobility"] == m} for m in MOBILITIES}
    common = sorted(set(seeded["gauss-markov"]) & set(seeded["sumo-grid"]))
    lines += ["", f"SUMO grid minus Gauss-Markov, paired by seed ({style.interval_words(len(common))}):", "",
              "| policy | energy (mJ) | failure ratio | migrations |", "|---|---|---|---|"]
    for p in policies:
        cells = []
        for key, scale, d in (("energy_per_mu_slot", 1e3, 4), ("failure_ratio", 1.0, 3), ("migrations", 1.0, 3)):
            mean, half, _ = style.mean_ci((seeded["sumo-grid"][s]["policies"][p][key]
                                           - seeded["gauss-markov"][s]["policies"][p][key]) * scale for s in common)
            cells.append(style.ci_text(mean, half, digits=d))
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    cleaning = [r["cleaning"]["summary"] for r in by["sumo-grid"] if r.get("cleaning")]
    if cleaning:
        lines += ["", "Cleaning of the SUMO traces:", ""] + [f"- {c}" for c in cleaning]
    lines += ["", "Files: `mobility.csv`, `fig_mobility.png`, task results in `tasks/`.", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return [out / "mobility.csv", out / "fig_mobility.png", out / "report.md"]
