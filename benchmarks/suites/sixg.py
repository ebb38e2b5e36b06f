"""Suite ``sixg``: energy, failures and optimality gaps as the 6G layer is switched on.

Three sweeps from one base scenario (the preset's ``base`` overrides of ``Scenario.paper``), each
point a task per seed: the **carrier** (``0`` = the macro law, else a THz carrier with the preset's
THz bandwidth), the **RIS size** (elements per BS's surface, macro law), and the **compression
menu** (``semantic_levels``: 0 = no menu, 1 = the single uncompressed level, L >= 2 = the
scenario's parametric menu). Every task simulates ``static``, ``follow``, the myopic ``oracle`` and
``lyapunov`` on one trace and computes the hindsight lower bound with the exact oracle (which
chooses levels with a menu), then each policy's gap at its own failure ratios
(docs/benchmarks.md, suite ``sixg``; the model in docs/model.md, section 13).

With ``learned_iters > 0`` every point of the menu sweep also gets a **learned** row: Beta-HAPPO
(structured MU action, local credit; with a menu its MUs choose their levels, docs/agents.md)
trained for ``learned_iters`` iterations on that scenario (4 environments, episodes of ``slots``
slots, trainer seed = the task's seed), then simulated deterministically on the task's trace and
scored against the same hindsight bound. These are separate tasks, so the other tasks' results
(and their cache) do not change.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from wdtnopt.errors import WdtnoptError
from wdtnopt.io import atomic_write_text
from wdtnopt.wording import counted

from . import style
from .runner import Task, check_counts

MODULE = "wdtnopt.benchmarks.suites.sixg"
POLICIES = ("static", "follow", "oracle", "lyapunov")
LEARNED = "beta-happo"
"""The learned row's algorithm (task kind ``learned``, menu sweep only)."""
AXES = {"carrier": ("thz_carrier_hz", "carrier (GHz; 0 = sub-6 GHz macro law)", 1e-9),
        "ris": ("ris_elements", "RIS elements per BS", 1.0),
        "menu": ("semantic_levels", "semantic compression levels (0 = no menu)", 1.0)}


def scenario_of(cfg: dict[str, Any]) -> dict[str, Any]:
    """The scenario overrides of one task: the base, the sweep's point, and for a THz carrier its band."""
    over = dict(cfg["base"])
    field = AXES[cfg["axis"]][0]
    over[field] = cfg["value"]
    if cfg["axis"] == "carrier" and cfg["value"] > 0:
        over.update(cfg["thz"])
    return over


def check(cfg: dict[str, Any]) -> None:
    """Refuse a bad setting before any task runs (one line naming the key and what it accepts;
    docs/benchmarks.md); every task's scenario is checked by :func:`tasks`."""
    check_counts(cfg, ("seeds", "learned_iters"), 0)
    check_counts(cfg, ("slots", "iters"), 1)
    for key in ("base", "thz"):
        if not isinstance(cfg[key], dict):
            raise WdtnoptError(f"preset: {key}: expected a table of scenario overrides, got {cfg[key]!r}")


def tasks(cfg: dict[str, Any]) -> list[Task]:
    out = []
    for axis in ("carrier", "ris", "menu"):
        for value in cfg[f"{axis}_grid"]:
            for seed in cfg["seeds"]:
                out.append(Task(f"{MODULE}:sixg_task", {
                    "suite": "sixg", "kind": "sweep", "axis": axis, "value": value, "seed": int(seed),
                    "slots": int(cfg["slots"]), "iters": int(cfg["iters"]), "base": dict(cfg["base"]),
                    "thz": dict(cfg["thz"])}))
    for value in cfg["menu_grid"] if cfg.get("learned_iters", 0) > 0 else ():
        for seed in cfg["seeds"]:
            out.append(Task(f"{MODULE}:learned_task", {
                "suite": "sixg", "kind": "learned", "axis": "menu", "value": value, "seed": int(seed),
                "slots": int(cfg["slots"]), "iters": int(cfg["iters"]), "base": dict(cfg["base"]),
                "thz": dict(cfg["thz"]), "learned_iters": int(cfg["learned_iters"])}))
    from wdtnopt import Scenario
    for task in out:   # a bad scenario is refused here, before any folder or worker (ScenarioError)
        Scenario.paper(**scenario_of(task.config))
    return out


def learned_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Train :data:`LEARNED` on the task's scenario, simulate it on the task's trace, score its gap."""
    from wdtnopt import Scenario, generate_trace, simulate
    from wdtnopt.agents.trainer import Trainer
    from wdtnopt.bounds import gap, hindsight_bound

    sc = Scenario.paper(**scenario_of(cfg))
    trace = generate_trace(sc, seed=cfg["seed"], slots=cfg["slots"])
    tr = Trainer(LEARNED, sc, seed=cfg["seed"], config={"n_envs": 4, "rollout_steps": cfg["slots"],
                                                         "episode_slots": cfg["slots"], "action_map": "structured",
                                                         "credit": "local"})
    for _ in range(cfg["learned_iters"]):
        tr.train_iteration()
    with tempfile.TemporaryDirectory() as tmp:   # the checkpoint only carries the actors to simulate
        tr.save(tmp)
        res = simulate(f"checkpoint:{tmp}", trace)
    row = gap([res], trace, bound=hindsight_bound(trace, iters=cfg["iters"], workers=1), iters=cfg["iters"]).rows[0]
    return {LEARNED: {"energy_per_mu_slot": float(res.energy_per_mu_slot), "failure_ratio": float(res.failure_ratio),
                      "bound_per_mu_slot": float(row.bound_per_mu_slot), "gap": float(row.gap)}}


def sixg_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    import numpy as np

    from wdtnopt import Scenario, generate_trace, simulate
    from wdtnopt.bounds import gap, hindsight_bound

    sc = Scenario.paper(**scenario_of(cfg))
    trace = generate_trace(sc, seed=cfg["seed"], slots=cfg["slots"])
    results = [simulate(p, trace) for p in POLICIES]
    report = gap(results, trace, bound=hindsight_bound(trace, iters=cfg["iters"], workers=1), iters=cfg["iters"])
    serving = np.take_along_axis(trace.gain, trace.assoc[..., None], -1)[..., 0]
    out: dict[str, Any] = {"mean_serving_gain_db": float(np.mean(10 * np.log10(serving)))}
    for r, row in zip(results, report.rows):
        out[r.policy] = {"energy_per_mu_slot": float(r.energy_per_mu_slot), "failure_ratio": float(r.failure_ratio),
                         "bound_per_mu_slot": float(row.bound_per_mu_slot), "gap": float(row.gap)}
    return out


def render(cfg: dict[str, Any], records: list[dict[str, Any]], out: Path, info: dict[str, Any]) -> list[Path]:
    cols = ["axis", "value", "seed", "policy", "energy_per_mu_slot", "failure_ratio", "bound_per_mu_slot", "gap"]
    rows = []
    for r in records:
        c = r["config"]
        for p in (q for q in (*POLICIES, LEARNED) if q in r["result"]):
            v = r["result"][p]
            rows.append([c["axis"], c["value"], c["seed"], p, v["energy_per_mu_slot"], v["failure_ratio"],
                         v["bound_per_mu_slot"], v["gap"]])
    files = [out / "sixg.csv"]
    atomic_write_text(files[0], style.csv_text(cols, rows))
    plt = style.pyplot()
    lines = ["# The 6G layer (suite `sixg`)", "", f"- Command: `{info['command']}`",
             f"- Machine: {info['machine']}; {info['date']}", f"- Code: {info.get('code', 'not recorded')}.",
             f"- Preset `{cfg['preset']}`: base scenario {cfg['base']}, THz band {cfg['thz']}, "
             f"{counted(cfg['slots'], 'slot')}, seeds {list(cfg['seeds'])}, {counted(cfg['iters'], 'dual evaluation')} per bound.",
             "- Policies: " + ", ".join(POLICIES) + "; bound: the hindsight lower bound (exact inner minima) at "
             "each policy's own failure ratios; gap = (E - LB) / LB. Mean over seeds (95% t-interval).",
             f"- Learned row (menu sweep): {LEARNED} trained {counted(cfg.get('learned_iters', 0), 'iteration')} per point "
             "and seed (0: none), structured MU action, local credit, the MUs choosing their levels.", ""]
    below = sum(1 for row in rows if row[4] < row[6] * (1 - 1e-9))
    for axis, (field, xlabel, scale) in AXES.items():
        xs = sorted({r["config"]["value"] for r in records if r["config"]["axis"] == axis})
        if not xs:
            continue
        fig, axs = plt.subplots(1, 3, figsize=(12, 3.6))
        lines += [f"## {axis}: {xlabel}", "", "| " + field + " | policy | energy / MU / slot (mJ) | failure ratio | "
                  "bound (mJ) | gap |", "|---|---|---|---|---|---|"]
        present = [p for p in (*POLICIES, LEARNED)
                   if any(p in r["result"] for r in records if r["config"]["axis"] == axis)]
        for p in present:
            per = {k: [[r["result"][p][k] for r in records if r["config"]["axis"] == axis
                        and r["config"]["value"] == x and p in r["result"]] for x in xs]
                   for k in ("energy_per_mu_slot", "failure_ratio", "gap", "bound_per_mu_slot")}
            x_plot = [x * scale for x in xs]
            style.band(axs[0], x_plot, per["energy_per_mu_slot"], p, scale=1e3)
            style.band(axs[1], x_plot, per["failure_ratio"], p)
            style.band(axs[2], x_plot, [[g * 100 for g in v if math.isfinite(g)] for v in per["gap"]], p)
            for x, e, f, g, b in zip(xs, per["energy_per_mu_slot"], per["failure_ratio"], per["gap"],
                                     per["bound_per_mu_slot"]):
                me, mf, mb = (style.mean_ci(v)[0] for v in (e, f, b))
                fin = [v for v in g if math.isfinite(v)]
                mg = f"{100 * style.mean_ci(fin)[0]:.1f}%" if fin else "inf"
                lines.append(f"| {x * scale:g} | {p} | {me * 1e3:.4f} | {mf:.4f} | {mb * 1e3:.4f} | {mg} |")
        for ax, yl in zip(axs, ("energy / MU / slot (mJ)", "failure ratio", "gap to the hindsight bound (%)")):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(yl)
        axs[0].legend()
        fig.suptitle(f"The 6G layer: {axis} sweep")
        files.append(style.save(fig, out / f"fig_sixg_{axis}.png"))
        lines.append("")
    lines += [f"Sanity: policy runs with energy below their own bound: {below} (must be 0).", "",
              "Files: `sixg.csv`, " + ", ".join(f"`{f.name}`" for f in files[1:]) + ", task results in `tasks/`.", ""]
    files.append(out / "report.md")
    atomic_write_text(files[-1], "\n".join(lines))
    return files
