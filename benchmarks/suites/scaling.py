"""Suite ``scaling``: cost of the simulator and of the large-scale ``fast`` method as N grows.

One task per N (M fixed, ``n_bss``): the wall time of ``generate_trace`` and of ``simulate("follow")``
per slot, and of ``solve(method="fast")`` on the frame-start snapshot of slot 0 when ``fast`` is
registered (and ``exact`` up to ``exact_max_n``), each the median of ``repeats`` runs. The report
fits the growth exponent ``b`` of ``time ~ a N^b`` by least squares on log-log axes.

The ``loaded`` presets (``snapshots = "loaded"``) solve ``wdtnopt.testing.loaded_snapshot(N, M,
seed)`` instead (random BS positions, 1.5-4 GHz servers, tight storage, 70% requesting), with
``exact`` capped at ``time_limit`` s and SCIP (``pyomo``) side by side up to ``scip_max_n``, capped
at ``scip_cap`` s; the simulator's rows stay those of the default scenario.

Timings: the preset asks for one worker (``workers = 1``) so tasks do not share the CPU; a
``--workers`` or ``--scheduler`` given on the command line overrides it.
"""
from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

from wdtnopt.io import atomic_write_text
from wdtnopt.wording import counted

from . import style
from .runner import Task, check_choices, check_counts, check_number, check_scenarios

MODULE = "wdtnopt.benchmarks.suites.scaling"
LOADED_DEFAULTS = {"time_limit": 60.0, "scip_cap": 60.0}
"""Caps (s) of ``exact`` and SCIP on loaded snapshots where a preset file leaves them out (those of
the ``loaded`` preset)."""


def check(cfg: dict[str, Any]) -> None:
    """Refuse a bad setting before any task runs (one line naming the key and what it accepts;
    docs/benchmarks.md)."""
    check_choices("snapshots", cfg.get("snapshots", "paper"), ("paper", "loaded"))
    check_counts(cfg, ("n_grid", "n_bss", "slots", "repeats"), 1)
    check_counts(cfg, ("seed", "exact_max_n", "scip_max_n"), 0)
    for key in ("time_limit", "scip_cap"):
        check_number(key, cfg.get(key, LOADED_DEFAULTS[key]), "a finite number of seconds > 0", positive=True)
    check_scenarios("n_grid / n_bss", [{"n_mus": n, "n_bss": cfg["n_bss"]} for n in cfg["n_grid"]])


def tasks(cfg: dict[str, Any]) -> list[Task]:
    from wdtnopt.solvers import methods

    solve_methods = [m for m in ("fast", "exact", "pyomo") if m in methods()]
    loaded = cfg.get("snapshots", "paper") == "loaded"
    out = []
    for n in sorted(cfg["n_grid"], reverse=True):
        c = {"suite": "scaling", "kind": "scaling", "n_mus": int(n), "n_bss": int(cfg["n_bss"]),
             "slots": int(cfg["slots"]), "repeats": int(cfg["repeats"]), "seed": int(cfg["seed"]),
             "methods": [m for m in solve_methods if (m != "exact" or n <= cfg["exact_max_n"])
                         and (m != "pyomo" or (loaded and n <= cfg.get("scip_max_n", 0)))]}
        if loaded:  # keys only in loaded tasks: the default tasks' results stay reusable
            c.update(snapshots="loaded", **{key: float(cfg.get(key, dflt)) for key, dflt in LOADED_DEFAULTS.items()})
        out.append(Task(f"{MODULE}:scaling_task", c))
    return out


def _median_time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def scaling_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt import Scenario, generate_trace, simulate
    from wdtnopt.solvers import solve

    sc = Scenario.paper(n_mus=cfg["n_mus"], n_bss=cfg["n_bss"])
    t_trace, trace = _median_time(lambda: generate_trace(sc, seed=cfg["seed"], slots=cfg["slots"]), cfg["repeats"])
    t_sim, res = _median_time(lambda: simulate("follow", trace), cfg["repeats"])
    out = {"trace_s_per_slot": t_trace / cfg["slots"], "simulate_s_per_slot": t_sim / cfg["slots"],
           "energy_per_mu_slot": float(res.energy_per_mu_slot), "failure_ratio": float(res.failure_ratio)}
    snap = trace.snapshot(0, allow_migration=True)
    limits = {}
    if cfg.get("snapshots") == "loaded":
        from wdtnopt.testing import loaded_snapshot

        snap = loaded_snapshot(cfg["n_mus"], cfg["n_bss"], cfg["seed"])
        limits = {"exact": {"time_limit": cfg["time_limit"]}, "pyomo": {"time_limit": cfg["scip_cap"]}}
    for m in cfg["methods"]:
        t, sol = _median_time(lambda: solve(snap, method=m, **limits.get(m, {})), cfg["repeats"] if m != "pyomo" else 1)
        out[f"{m}_s"] = t
        out[f"{m}_gap"] = float(sol.gap)
        out[f"{m}_status"] = sol.status
    return out


def render(cfg: dict[str, Any], records: list[dict[str, Any]], out: Path, info: dict[str, Any]) -> list[Path]:
    rows = sorted(({**r["config"], **r["result"]} for r in records), key=lambda r: r["n_mus"])
    series = {"trace": "trace_s_per_slot", "simulate": "simulate_s_per_slot", "fast": "fast_s", "exact": "exact_s",
              "pyomo": "pyomo_s"}
    cols = ["n_mus", "n_bss", "slots", "trace_s_per_slot", "simulate_s_per_slot", "fast_s", "fast_gap", "fast_status",
            "exact_s", "exact_gap", "exact_status", "pyomo_s", "pyomo_gap", "pyomo_status", "energy_per_mu_slot",
            "failure_ratio"]
    atomic_write_text(out / "scaling.csv", style.csv_text(cols, ([r.get(c, "") for c in cols] for r in rows)))
    fits = {}
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.3))
    for name, key in series.items():
        pts = [(r["n_mus"], r[key]) for r in rows if isinstance(r.get(key), float) and r[key] > 0]
        if not pts:
            continue
        b, se = style.fit_exponent(*zip(*pts)) if len(pts) >= 2 else (math.nan, math.nan)
        fits[name] = (b, se, len(pts), pts[0][0], pts[-1][0])
        unit = "per slot" if name in ("trace", "simulate") else "per snapshot"
        ax.plot(*zip(*pts), color=style.COLORS.get(name), marker=style.MARKERS.get(name, "o"),
                label=f"{style.label(name)} ({unit})" + (f", fitted N^{b:.2f}" if math.isfinite(b) else ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"number of MUs N (M = {cfg['n_bss']} servers)")
    ax.set_ylabel("wall time (s), median of repeats")
    ax.set_title("Scaling with N: simulator and snapshot methods")
    ax.legend()
    style.save(fig, out / "fig_scaling.png")
    lines = ["# Scaling (suite `scaling`)", "", f"- Command: `{info['command']}`", f"- Machine: {info['machine']}; {info['date']}", f"- Code: {info.get('code', 'not recorded')}.",
             f"- Preset `{cfg['preset']}`: N in {list(cfg['n_grid'])}, M = {cfg['n_bss']}, traces of {counted(cfg['slots'], 'slot')}, "
             f"median of {counted(cfg['repeats'], 'run')}."
             + (f" Snapshots solved: `loaded_snapshot(N, {cfg['n_bss']}, {cfg['seed']})`, exact capped at "
                f"{cfg.get('time_limit', LOADED_DEFAULTS['time_limit']):g} s, SCIP at "
                f"{cfg.get('scip_cap', LOADED_DEFAULTS['scip_cap']):g} s." if cfg.get("snapshots") == "loaded" else ""), "",
             "| what | N range | points | fitted exponent b (time ~ N^b) | std. error |", "|---|---|---|---|---|"]
    for name, (b, se, k, lo, hi) in fits.items():
        if k < 2:
            continue
        lines.append(f"| {style.label(name)} | {lo} - {hi} | {k} | {b:.3f} | {se:.3f} |")
    if "fast" not in fits:
        lines.append("\n`fast` is not registered in this build: only the simulator was measured.")
    lines += ["", "| N | trace (ms/slot) | simulate follow (ms/slot) | fast (s) | fast certified gap | exact (s) | "
              "exact certified gap | SCIP (s) | SCIP certified gap |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = lambda k, s=1.0: f"{r[k] * s:.4g}" if isinstance(r.get(k), float) else "-"
        lines.append(f"| {r['n_mus']} | {f('trace_s_per_slot', 1e3)} | {f('simulate_s_per_slot', 1e3)} | {f('fast_s')} | "
                     f"{f('fast_gap')} | {f('exact_s')} | {f('exact_gap')} | {f('pyomo_s')} | {f('pyomo_gap')} |")
    lines += ["", "Files: `scaling.csv`, `fig_scaling.png`, task results in `tasks/`.", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return [out / "scaling.csv", out / "fig_scaling.png", out / "report.md"]
