"""Suite ``resilience``: edge-server failures, self-healing and predictive placement (docs/model.md,
section 12; docs/benchmarks.md).

Two kinds of task, each one trace of one seed:

* ``run``: the cheap policies (``run_policies``) on a long trace (``run_slots``) at one
  ``(server_mtbf_s, server_mttr_s, self_healing)`` point: MTBF swept at ``mttr0``, MTTR swept at
  ``mtbf0``, self-healing on and off, plus a failure-free reference. Energy, failure ratio split by
  cause, migrations, restorations and the share of cell crossings at which the DT was already
  waiting on the new cell's server (``ready_at_handover``).
* ``gap``: every policy of ``gap_policies`` (self-healing on) on a shorter trace (``gap_slots``) with
  the hindsight lower bound evaluated at each policy's own per-MU failure ratios (a valid bound with
  failures, docs/longterm.md), so gaps are certified.

* ``flaky``: heterogeneous servers (``flaky_mtbf``: one MTBF per server, some flaky) at
  ``flaky_mttr``, self-healing on and off, the failure-aware policies against their bases
  (``flaky_policies``) on ``flaky_slots``: where availability in the placement price pays.
* ``learned``: a learned agent (``learned_algo``) trained with failures on, on the flaky
  scenario with self-healing, for ``learned_iterations`` iterations (``learned_agent``: config
  overrides), then simulated on the ``flaky`` traces (self-healing on and off): one training per seed.

The report gives means with 95% t-intervals over seeds, and paired per-seed differences for
``predictive - follow``, healing off - on and each ``-fa`` policy - its base (common random
numbers: both see the same trace).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wdtnopt.io import atomic_write_text
from wdtnopt.wording import counted

from . import style
from .runner import Task, check_agent, check_counts, check_method, check_policies, check_scenarios

MODULE = "wdtnopt.benchmarks.suites.resilience"
CAUSES = ("declined", "migrating", "deadline", "silent", "server_down", "restoring")


def _points(cfg: dict[str, Any]) -> list[tuple[float, float, int]]:
    pts = {(float(b), float(cfg["mttr0"]), h) for b in cfg["mtbf_grid"] for h in (1, 0)}
    pts |= {(float(cfg["mtbf0"]), float(r), h) for r in cfg["mttr_grid"] for h in (1, 0)}
    pts.add((0.0, float(cfg["mttr0"]), 1))     # reference: servers never fail
    return sorted(pts)


def check(cfg: dict[str, Any]) -> None:
    """Refuse a bad setting, policy, method or agent before any task runs (one line naming the key
    and what it accepts; docs/benchmarks.md)."""
    check_counts(cfg, ("seeds", "gap_iters", "learned_iterations"), 0)
    check_counts(cfg, ("n_mus", "n_bss", "run_slots", "gap_slots", "flaky_slots", "bound_iters"), 1)
    for key in ("run_policies", "gap_policies", "flaky_policies"):
        check_policies(key, list(cfg[key]))
    if cfg["gap_mtbf"]:
        check_method("bound_method", cfg["bound_method"])
    if cfg["learned_algo"]:
        check_agent("learned_algo", cfg["learned_algo"], "learned_agent", cfg["learned_agent"])
    size = {"n_mus": cfg["n_mus"], "n_bss": cfg["n_bss"]}
    check_scenarios("mtbf_grid / mttr_grid / mtbf0 / mttr0 / gap_mtbf",
                    [{**size, "server_mtbf_s": b, "server_mttr_s": r} for b, r, _ in _points(cfg)]
                    + [{**size, "server_mtbf_s": b, "server_mttr_s": cfg["mttr0"]} for b in cfg["gap_mtbf"]])
    if cfg["flaky_policies"] or cfg["learned_algo"]:
        check_scenarios("flaky_mtbf / flaky_mttr", [{**size, "server_mtbf_s": list(cfg["flaky_mtbf"]),
                                                     "server_mttr_s": cfg["flaky_mttr"]}])


def tasks(cfg: dict[str, Any]) -> list[Task]:
    base = {"suite": "resilience", "n_mus": int(cfg["n_mus"]), "n_bss": int(cfg["n_bss"])}
    out = [Task(f"{MODULE}:run_task", {**base, "kind": "run", "seed": int(s), "slots": int(cfg["run_slots"]),
                                       "mtbf_s": b, "mttr_s": r, "self_healing": h, "policies": list(cfg["run_policies"])})
           for b, r, h in _points(cfg) for s in cfg["seeds"]]
    out += [Task(f"{MODULE}:gap_task", {**base, "kind": "gap", "seed": int(s), "slots": int(cfg["gap_slots"]),
                                        "mtbf_s": float(b), "mttr_s": float(cfg["mttr0"]), "self_healing": 1,
                                        "policies": list(cfg["gap_policies"]), "bound_iters": int(cfg["bound_iters"]),
                                        "gap_iters": int(cfg["gap_iters"]), "bound_method": str(cfg["bound_method"])})
            for b in cfg["gap_mtbf"] for s in cfg["seeds"]]
    out += [Task(f"{MODULE}:run_task", {**base, "kind": "flaky", "seed": int(s), "slots": int(cfg["flaky_slots"]),
                                        "mtbf_s": [float(b) for b in cfg["flaky_mtbf"]], "mttr_s": float(cfg["flaky_mttr"]),
                                        "self_healing": h, "policies": list(cfg["flaky_policies"])})
            for h in (1, 0) for s in cfg["seeds"] if cfg["flaky_policies"]]
    out += [Task(f"{MODULE}:learned_task", {**base, "kind": "learned", "seed": int(s), "slots": int(cfg["flaky_slots"]),
                                            "mtbf_s": [float(b) for b in cfg["flaky_mtbf"]], "mttr_s": float(cfg["flaky_mttr"]),
                                            "self_healing": 1, "algo": str(cfg["learned_algo"]),
                                            "iterations": int(cfg["learned_iterations"]), "agent": dict(cfg["learned_agent"])})
            for s in cfg["seeds"] if cfg["learned_algo"]]
    return out


def _trace(cfg: dict[str, Any]) -> Any:
    from wdtnopt import Scenario, generate_trace

    sc = Scenario.paper(n_mus=cfg["n_mus"], n_bss=cfg["n_bss"], server_mtbf_s=cfg["mtbf_s"],
                        server_mttr_s=cfg["mttr_s"], self_healing=cfg["self_healing"])
    return generate_trace(sc, seed=cfg["seed"], slots=cfg["slots"])


def _metrics(res: Any, trace: Any) -> dict[str, Any]:
    ready, crossings = res.ready_at_handover(trace.assoc)
    by_cause = res.failure_ratio_by_cause()
    cost = (res.energy_per_mu.sum() + trace.scenario.failure_price * res.failures_per_mu.sum()) / (res.n_mus * res.slots)
    return {"energy_per_mu_slot": res.energy_per_mu_slot, "failure_ratio": res.failure_ratio, "team_cost_per_mu_slot": cost,
            **{f"fail_{c}": by_cause.get(c, 0.0) for c in CAUSES},
            "migrations_per_mu_1000_slots": 1000.0 * res.migrations / (res.n_mus * res.slots),
            "restorations": int(res.table["restorations"].sum()), "ready_at_handover": ready,
            "crossings": crossings}


def run_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt import simulate

    tr = _trace(cfg)
    return {"up_fraction": float(tr.server_up.mean()),
            "policies": {p: _metrics(simulate(p, tr), tr) for p in cfg["policies"]}}


def learned_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Train ``algo`` with failures on (flaky servers, self-healing on), then simulate the checkpoint
    on the flaky trace of the seed with self-healing on and off."""
    import torch

    from wdtnopt import simulate
    from wdtnopt.agents.checkpoint import CheckpointPolicy
    from wdtnopt.agents.trainer import Trainer

    torch.set_num_threads(1)
    tr = _trace(cfg)
    trainer = Trainer(cfg["algo"], tr.scenario, cfg["seed"], {**cfg["agent"], "torch_threads": 1})
    for _ in range(cfg["iterations"]):
        trainer.train_iteration()
    trainer.save(workdir)
    out = {}
    for heal in (1, 0):
        trace = tr if heal == cfg["self_healing"] else _trace({**cfg, "self_healing": heal})
        out[str(heal)] = {"up_fraction": float(trace.server_up.mean()),
                          "metrics": _metrics(simulate(CheckpointPolicy(workdir), trace), trace)}
    return {"by_healing": out, "env_steps": trainer.env_steps,
            "checkpoint": f"agents/{workdir.name}"}


def gap_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt import gap, hindsight_bound, simulate

    tr = _trace(cfg)
    results = [simulate(p, tr) for p in cfg["policies"]]
    hb = hindsight_bound(tr, iters=cfg["bound_iters"], method=cfg["bound_method"])
    report = gap(results, tr, bound=hb, iters=cfg["gap_iters"])
    out = {}
    for res, row in zip(results, report.rows):
        out[res.policy] = {**_metrics(res, tr), "bound_own": row.bound_per_mu_slot, "gap": row.gap,
                           "bound_below": bool(row.bound_per_mu_slot <= row.energy_per_mu_slot * (1 + 1e-9))}
    return {"up_fraction": float(tr.server_up.mean()), "policies": out, "bound_evaluations": len(hb.points),
            "bound_all_optimal": all(p.certified_all_optimal for p in hb.points)}


# -- rendering -------------------------------------------------------------------------------------
METRICS = ("energy_per_mu_slot", "failure_ratio", "team_cost_per_mu_slot", *(f"fail_{c}" for c in CAUSES),
           "migrations_per_mu_1000_slots",
           "restorations", "ready_at_handover", "crossings")


def _rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        c = r["config"]
        if c["kind"] == "learned":   # one training, simulated with self-healing on and off: flaky rows
            mtbf = "/".join(f"{b:g}" for b in c["mtbf_s"])
            for heal, v in r["result"]["by_healing"].items():
                rows.append({"kind": "flaky", "mtbf_s": mtbf, "mttr_s": c["mttr_s"], "self_healing": int(heal), "seed": c["seed"],
                             "slots": c["slots"], "up_fraction": v["up_fraction"],
                             "policy": f"{c['algo']} ({c['iterations']} it.)", **v["metrics"]})
            continue
        mtbf = c["mtbf_s"] if not isinstance(c["mtbf_s"], list) else "/".join(f"{b:g}" for b in c["mtbf_s"])
        for p, m in r["result"]["policies"].items():
            rows.append({"kind": c["kind"], "mtbf_s": mtbf, "mttr_s": c["mttr_s"], "self_healing": c["self_healing"],
                         "seed": c["seed"], "slots": c["slots"], "up_fraction": r["result"]["up_fraction"], "policy": p, **m})
    return rows


def _sel(rows: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def _ci(values: list[float], scale: float = 1.0, digits: int = 4, percent: bool = False) -> str:
    """:func:`style.ci_text` of ``values`` over seeds, with their count (cells of a table differ in it)."""
    m, h, n = style.mean_ci(values)
    text = style.ci_text(m, h, scale=scale, digits=digits, percent=percent)
    return text if text == "-" else f"{text} (n={n})"


def _paired(rows: list[dict[str, Any]], a: dict[str, Any], b: dict[str, Any], key: str) -> list[float]:
    """Per-seed differences ``a - b`` of ``key`` (rows matched by seed; common random numbers)."""
    ra = {r["seed"]: r[key] for r in _sel(rows, **a)}
    rb = {r["seed"]: r[key] for r in _sel(rows, **b)}
    return [ra[s] - rb[s] for s in sorted(set(ra) & set(rb)) if np.isfinite(ra[s]) and np.isfinite(rb[s])]


def _has_points(ax: Any) -> bool:
    """Whether a line of ``ax`` has a finite point (a band over no seeds is all NaN)."""
    return any(np.isfinite(np.asarray(line.get_ydata(), float)).any() for line in ax.get_lines())


def render(cfg: dict[str, Any], records: list[dict[str, Any]], out: Path, info: dict[str, Any]) -> list[Path]:
    rows = _rows(records)
    cols = ["kind", "mtbf_s", "mttr_s", "self_healing", "seed", "slots", "up_fraction", "policy", *METRICS, "bound_own", "gap"]
    atomic_write_text(out / "resilience.csv", style.csv_text(cols, ([r.get(c, "") for c in cols] for r in rows)))
    mj = 1e3
    run = _sel(rows, kind="run")
    mtbfs = sorted(float(b) for b in cfg["mtbf_grid"])
    mttrs = sorted(float(r) for r in cfg["mttr_grid"])
    mttr0, mtbf0 = float(cfg["mttr0"]), float(cfg["mtbf0"])
    plt = style.pyplot()

    # (a) versus MTBF at MTTR0, self-healing on (solid) and off (dashed)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key, ylab, scale in ((axes[0], "energy_per_mu_slot", "energy per MU per slot (mJ)", mj),
                                 (axes[1], "failure_ratio", "failure ratio (all causes)", 1.0),
                                 (axes[2], "fail_server_down", "failure ratio, cause server_down", 1.0)):
        for p in cfg["run_policies"]:
            for heal in (1, 0):
                per = [[r[key] for r in _sel(run, policy=p, mtbf_s=b, mttr_s=mttr0, self_healing=heal)] for b in mtbfs]
                style.band(ax, mtbfs, per, p, scale=scale, dashed=not heal, suffix=", healing on" if heal else ", healing off")
            ref = [r[key] for r in _sel(run, policy=p, mtbf_s=0.0)]
            if key != "fail_server_down":
                style.hline(ax, ref, p, scale=scale)
        ax.set_ylim(bottom=0)   # energies and failure ratios are >= 0: a t-band reaching below 0 is clipped
        if _has_points(ax):     # an empty panel (no seeds, an empty grid) has no positive limits to log-scale
            ax.set_xscale("log")
        ax.set_xlabel("server MTBF (s)")
        ax.set_ylabel(ylab)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"Versus MTBF (MTTR = {mttr0:g} s; solid: self-healing on, dashed: off, dotted: servers never fail; "
                 f"{style.band_words(len(cfg['seeds']))})")
    style.save(fig, out / "fig_mtbf.png")

    # (b) versus MTTR at MTBF0
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, ylab in ((axes[0], "failure_ratio", "failure ratio (all causes)"),
                          (axes[1], "fail_server_down", "failure ratio, cause server_down")):
        for p in cfg["run_policies"]:
            for heal in (1, 0):
                per = [[r[key] for r in _sel(run, policy=p, mtbf_s=mtbf0, mttr_s=m, self_healing=heal)] for m in mttrs]
                style.band(ax, mttrs, per, p, dashed=not heal, suffix=", healing on" if heal else ", healing off")
        ax.set_ylim(bottom=0)
        if _has_points(ax):
            ax.set_xscale("log")
        ax.set_xlabel("server MTTR (s)")
        ax.set_ylabel(ylab)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"Versus MTTR (MTBF = {mtbf0:g} s; solid: self-healing on, dashed: off)")
    style.save(fig, out / "fig_mttr.png")

    # (c) certified gaps at the gap points
    gaps = _sel(rows, kind="gap")
    gap_mtbf = sorted(float(b) for b in cfg["gap_mtbf"])
    fig, ax = plt.subplots(figsize=(8, 4))
    pols = list(cfg["gap_policies"])
    width = 0.8 / max(len(gap_mtbf), 1)
    for k, b in enumerate(gap_mtbf):
        stats = [style.mean_ci([r["gap"] for r in _sel(gaps, policy=p, mtbf_s=b) if np.isfinite(r["gap"])]) for p in pols]
        ax.bar(np.arange(len(pols)) + k * width, [100 * s[0] for s in stats], width,
               yerr=[100 * s[1] if np.isfinite(s[1]) else 0 for s in stats], capsize=3, label=f"MTBF {b:g} s")
    ax.set_xticks(np.arange(len(pols)) + width * (len(gap_mtbf) - 1) / 2, [style.label(p) for p in pols], rotation=20)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("gap to the hindsight bound at own failure ratios (%)")
    ax.set_title(f"Certified optimality gaps with server failures (MTTR = {mttr0:g} s, self-healing on; 95% t-interval)")
    ax.legend()
    style.save(fig, out / "fig_gap.png")

    lines = ["# Resilience (suite `resilience`)", "", f"- Command: `{info['command']}`",
             f"- Machine: {info['machine']}; {info['date']}", f"- Code: {info.get('code', 'not recorded')}.",
             f"- Preset `{cfg['preset']}`: N = {cfg['n_mus']}, M = {cfg['n_bss']}, seeds {list(cfg['seeds'])}; runs of "
             f"{counted(cfg['run_slots'], 'slot')} (policies {', '.join(cfg['run_policies'])}); gap runs of {counted(cfg['gap_slots'], 'slot')} "
             f"at MTBF {gap_mtbf} s with the hindsight bound ({cfg['bound_iters']} + {cfg['gap_iters']} per policy dual "
             f"evaluations, inner method `{cfg['bound_method']}`).",
             "- Every number: mean ± half-width of the 95% t-interval over seeds (n = seeds). Differences are paired "
             "per seed (the same trace for both sides).", ""]
    lines += ["## Versus MTBF (self-healing on / off)", "",
              "| MTBF (s) | up-fraction | policy | healing | energy (mJ/MU/slot) | failure ratio | server_down | restoring | migrating | declined |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for b in [0.0, *mtbfs]:
        for p in cfg["run_policies"]:
            for heal in ((1,) if b == 0 else (1, 0)):
                sel = _sel(run, policy=p, mtbf_s=b, mttr_s=mttr0, self_healing=heal)
                if not sel:
                    continue
                lines.append(f"| {'never fails' if b == 0 else f'{b:g}'} | {_ci([r['up_fraction'] for r in sel])} | {p} | "
                             f"{'on' if heal else 'off'} | {_ci([r['energy_per_mu_slot'] for r in sel], mj)} | "
                             f"{_ci([r['failure_ratio'] for r in sel])} | {_ci([r['fail_server_down'] for r in sel])} | "
                             f"{_ci([r['fail_restoring'] for r in sel])} | {_ci([r['fail_migrating'] for r in sel])} | "
                             f"{_ci([r['fail_declined'] for r in sel])} |")
    lines += ["", "## Self-healing: what it changes (off - on, paired per seed)", "",
              "| MTBF (s) | MTTR (s) | policy | server_down failure ratio | all failures |", "|---|---|---|---|---|"]
    for b, m, h in _points(cfg):
        if h != 1 or b == 0:
            continue
        for p in cfg["run_policies"]:
            d1 = _paired(run, dict(policy=p, mtbf_s=b, mttr_s=m, self_healing=0), dict(policy=p, mtbf_s=b, mttr_s=m, self_healing=1), "fail_server_down")
            d2 = _paired(run, dict(policy=p, mtbf_s=b, mttr_s=m, self_healing=0), dict(policy=p, mtbf_s=b, mttr_s=m, self_healing=1), "failure_ratio")
            lines.append(f"| {b:g} | {m:g} | {p} | {_ci(d1)} | {_ci(d2)} |")
    if "predictive" in cfg["run_policies"] and "follow" in cfg["run_policies"]:
        lines += ["", "## Predictive vs follow (predictive - follow, paired per seed; self-healing on)", "",
                  "| MTBF (s) | MTTR (s) | energy (mJ/MU/slot) | failure ratio | migrations per MU per 1000 slots | "
                  "ready at handover (share of crossings) | ready share: predictive / follow |", "|---|---|---|---|---|---|---|"]
        for b, m, h in _points(cfg):
            if h != 1:
                continue
            a, f = dict(policy="predictive", mtbf_s=b, mttr_s=m, self_healing=1), dict(policy="follow", mtbf_s=b, mttr_s=m, self_healing=1)
            lines.append(f"| {'never fails' if b == 0 else f'{b:g}'} | {m:g} | {_ci(_paired(run, a, f, 'energy_per_mu_slot'), mj)} | "
                         f"{_ci(_paired(run, a, f, 'failure_ratio'))} | {_ci(_paired(run, a, f, 'migrations_per_mu_1000_slots'))} | "
                         f"{_ci(_paired(run, a, f, 'ready_at_handover'))} | {_ci([r['ready_at_handover'] for r in _sel(run, **a)], digits=3)} / "
                         f"{_ci([r['ready_at_handover'] for r in _sel(run, **f)], digits=3)} |")
    lines += ["", "## Certified gaps with failures (self-healing on)", "",
              "| MTBF (s) | policy | energy (mJ/MU/slot) | failure ratio | server_down + restoring | bound at own ratios (mJ) | gap | bound <= energy |",
              "|---|---|---|---|---|---|---|---|"]
    below_all = True
    for b in gap_mtbf:
        for p in pols:
            sel = _sel(gaps, policy=p, mtbf_s=b)
            below = all(r["bound_below"] for r in sel)
            below_all &= below
            lines.append(f"| {b:g} | {p} | {_ci([r['energy_per_mu_slot'] for r in sel], mj)} | {_ci([r['failure_ratio'] for r in sel])} | "
                         f"{_ci([r['fail_server_down'] + r['fail_restoring'] for r in sel])} | {_ci([r['bound_own'] for r in sel], mj)} | "
                         f"{_ci([r['gap'] for r in sel if np.isfinite(r['gap'])], 100, percent=True)} | {'yes' if below else 'NO'} |")
    flaky = _sel(rows, kind="flaky")
    if flaky:
        lines += ["", f"## Failure-aware placement on flaky servers (MTBF per server {list(cfg['flaky_mtbf'])} s, "
                      f"MTTR {cfg['flaky_mttr']:g} s, {counted(cfg['flaky_slots'], 'slot')})", "",
                  "Team cost = energy + eta E_ref per failed request (the objective the policies minimize). "
                  "Differences `-fa` - base are paired per seed.", "",
                  "| healing | policy | energy (mJ/MU/slot) | failure ratio | server_down + restoring | team cost (mJ/MU/slot) | "
                  "team cost: policy - base (mJ) | failure ratio: policy - base |", "|---|---|---|---|---|---|---|---|"]
        learned = [f"{cfg['learned_algo']} ({cfg['learned_iterations']} it.)"] if cfg["learned_algo"] else []
        for heal in (1, 0):
            for p in [*cfg["flaky_policies"], *learned]:
                sel = _sel(flaky, policy=p, self_healing=heal)
                if not sel:
                    continue
                b = p[:-3] if p.endswith("-fa") and p[:-3] in cfg["flaky_policies"] else None
                dc = _ci(_paired(flaky, dict(policy=p, self_healing=heal), dict(policy=b, self_healing=heal), "team_cost_per_mu_slot"), mj) if b else "-"
                df = _ci(_paired(flaky, dict(policy=p, self_healing=heal), dict(policy=b, self_healing=heal), "failure_ratio")) if b else "-"
                lines.append(f"| {'on' if heal else 'off'} | {p} | {_ci([r['energy_per_mu_slot'] for r in sel], mj)} | "
                             f"{_ci([r['failure_ratio'] for r in sel])} | {_ci([r['fail_server_down'] + r['fail_restoring'] for r in sel])} | "
                             f"{_ci([r['team_cost_per_mu_slot'] for r in sel], mj)} | {dc} | {df} |")
        train = [r["elapsed_s"] for r in records if r["config"]["kind"] == "learned"]
        if train:
            lines += ["", f"Learned row: `{cfg['learned_algo']}` trained with failures on (flaky servers, self-healing on) for "
                          f"{counted(cfg['learned_iterations'], 'iteration')} per seed (config overrides {cfg['learned_agent'] or 'none'}), "
                          f"{_ci(train, digits=3)} s per seed (wall, training and both evaluations; one thread); a short budget, "
                          f"not a converged agent."]
    lines += ["", f"Sanity: the bound is below every policy's energy at its own failure ratios in every gap run: "
                  f"{'yes' if below_all else 'NO'}.", "",
              "Files: `resilience.csv` (one row per task and policy), `fig_mtbf.png`, `fig_mttr.png`, `fig_gap.png`, "
              "task results in `tasks/`.", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return [out / "resilience.csv", out / "fig_mtbf.png", out / "fig_mttr.png", out / "fig_gap.png", out / "report.md"]
