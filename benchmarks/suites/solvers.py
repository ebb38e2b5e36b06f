"""Suite ``solvers``: the snapshot methods on growing N and M; the fast allocation vs CVXPY.

Instances are real snapshots: slot 0 of ``generate_trace(Scenario.paper(n_mus=N, n_bss=M), seed=i)``
with migration allowed (the frame-start problem), or, with ``snapshots = ["loaded"]`` (the
``loaded`` presets), ``wdtnopt.testing.loaded_snapshot(N, M, i)``: random BS positions, 1.5-4 GHz
servers, tight uneven storage, 70% of MUs requesting, deadlines 0.15-0.25 s. ``time_limit`` (s, 0:
none) caps ``exact`` and ``fast``; ``fast_gap`` is fast's asked gap (default: ``gap``). Each (N, M, instance, method) is one task:
``exact`` (the certified oracle, ``gap``), ``pyomo`` (SCIP on the Pyomo MINLP, capped at
``scip_cap`` s) and ``fast`` when a ``fast`` method is registered with ``wdtnopt.solve``. The report
gives times, certified gaps and agreement with the exact oracle (objective difference, same
placement). The allocation task reuses ``bench_allocation`` of benchmarks/bench_solvers.py by
import (its snapshot comes from ``wdtnopt.testing``, installed with the package).

Tasks run in parallel share the CPU: for clean timings run with ``--workers 1``.
"""
from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from wdtnopt.errors import WdtnoptError
from wdtnopt.io import atomic_write_text
from wdtnopt.wording import counted

from . import style
from .runner import Task, check_choices, check_counts, check_number

MODULE = "wdtnopt.benchmarks.suites.solvers"


def available_methods(cfg: dict[str, Any]) -> list[str]:
    from wdtnopt.solvers import methods

    known = set(methods())
    return [m for m in cfg["methods"] if m in known]


METHODS = ("exact", "pyomo", "fast")
"""The methods the suite knows; those not registered with ``wdtnopt.solve`` (SCIP missing) are skipped."""
SNAPSHOTS = ("paper", "loaded")


def check(cfg: dict[str, Any]) -> None:
    """Refuse a bad setting or method name before any task runs (one line naming the key and what
    it accepts; docs/benchmarks.md)."""
    from wdtnopt.solvers import methods

    check_choices("methods", list(cfg["methods"]), sorted(set(METHODS) | set(methods())))
    check_choices("snapshots", list(cfg.get("snapshots", ["paper"])), SNAPSHOTS)
    check_counts(cfg, ("n_grid", "m_grid", "instances", "repeats"), 1)
    check_counts(cfg, ("scip_instances", "scip_max_n", "alloc_n"), 0)
    for s in cfg.get("sizes") or []:
        n, _, m = s.lower().partition("x") if isinstance(s, str) else ("", "", "")
        if not (n.isdigit() and m.isdigit() and int(n) >= 1 and int(m) >= 1):
            raise WdtnoptError(f"preset: sizes: expected \"NxM\" strings (integers >= 1, e.g. \"50x5\"), got {s!r}")
    for key in ("gap", "fast_gap"):
        check_number(key, cfg.get(key, 0.0), "a finite number >= 0")
    check_number("time_limit", cfg.get("time_limit", 0.0), "a finite number of seconds >= 0 (0: none)")
    check_number("scip_cap", cfg.get("scip_cap", 1.0), "a finite number of seconds > 0", positive=True)


def tasks(cfg: dict[str, Any]) -> list[Task]:
    out = []
    meths = available_methods(cfg)
    for kind in cfg.get("snapshots", ["paper"]):
        for n, m in sizes(cfg):
            for i in range(int(cfg["instances"])):
                for meth in meths:
                    if meth == "pyomo" and (i >= int(cfg["scip_instances"]) or n > int(cfg["scip_max_n"])):
                        continue
                    gap = float(cfg.get("fast_gap", cfg["gap"])) if meth == "fast" else float(cfg["gap"])
                    c = {"suite": "solvers", "kind": "solve", "n_mus": int(n), "n_bss": int(m), "instance": i,
                         "method": meth, "gap": gap, "repeats": int(cfg["repeats"])}
                    if kind != "paper":  # the key stays out of the paper tasks: their results are reused
                        c["snapshots"] = kind
                    if meth == "pyomo":
                        c["time_limit"] = float(cfg["scip_cap"])
                    elif cfg.get("time_limit"):
                        c["time_limit"] = float(cfg["time_limit"])
                    out.append(Task(f"{MODULE}:solve_task", c))
    if cfg.get("alloc_n"):
        out.append(Task(f"{MODULE}:allocation_task", {"suite": "solvers", "kind": "allocation", "n_mus": int(cfg["alloc_n"]),
                                                      "repeats": int(cfg["repeats"])}))
    return out


def sizes(cfg: dict[str, Any]) -> list[tuple[int, int]]:
    """The (N, M) of the preset: its ``sizes`` ("NxM" strings) if given (``[]``: none, as an empty
    list selects nothing in every suite), else ``n_grid`` x ``m_grid`` (largest N first)."""
    if cfg.get("sizes") is not None:
        return [(int(a), int(b)) for a, b in (s.lower().split("x") for s in cfg["sizes"])]
    return [(int(n), int(m)) for n in sorted(cfg["n_grid"], reverse=True) for m in cfg["m_grid"]]


def instance(n_mus: int, n_bss: int, seed: int, snapshots: str = "paper") -> Any:
    """Instance ``seed`` of size ``n_mus x n_bss``: ``"paper"`` (the default scenario's frame start)
    or ``"loaded"`` (``wdtnopt.testing.loaded_snapshot``)."""
    from wdtnopt import Scenario, generate_trace

    if snapshots == "loaded":
        from wdtnopt.testing import loaded_snapshot

        return loaded_snapshot(n_mus, n_bss, seed)
    return generate_trace(Scenario.paper(n_mus=n_mus, n_bss=n_bss), seed=seed, slots=1).snapshot(0, allow_migration=True)


def solve_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt.solvers import solve

    snap = instance(cfg["n_mus"], cfg["n_bss"], cfg["instance"], cfg.get("snapshots", "paper"))
    opts = {"gap": cfg["gap"]}
    if "time_limit" in cfg:
        opts["time_limit"] = cfg["time_limit"]
    times, sol = [], None
    for _ in range(cfg["repeats"] if cfg["method"] != "pyomo" else 1):
        t0 = time.perf_counter()
        sol = solve(snap, method=cfg["method"], **opts)
        times.append(time.perf_counter() - t0)
    return {"status": sol.status, "objective": float(sol.objective), "bound": float(sol.bound), "gap": float(sol.gap),
            "wall_s": statistics.median(times), "placement": [int(x) for x in sol.placement],
            "served": int(np.sum(sol.served)), "requests": int(np.sum(snap.request))}


def allocation_task(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from wdtnopt.benchmarks.bench_solvers import bench_allocation

    r = bench_allocation(cfg["n_mus"], cfg["repeats"], lambda msg: None)
    return {k: _plain(v) for k, v in r.items()}


def _plain(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v if isinstance(v, (str, type(None))) else str(v)


def render(cfg: dict[str, Any], records: list[dict[str, Any]], out: Path, info: dict[str, Any]) -> list[Path]:
    solves = [(r["config"], r["result"]) for r in records if r["config"]["kind"] == "solve"]
    for c, _ in solves:
        c.setdefault("snapshots", "paper")
    exact = {(c["snapshots"], c["n_mus"], c["n_bss"], c["instance"]): res for c, res in solves if c["method"] == "exact"}
    rows = []
    for c, res in solves:
        ref = exact.get((c["snapshots"], c["n_mus"], c["n_bss"], c["instance"]))
        rel = same = math.nan
        if ref is not None and math.isfinite(res["objective"]) and ref["objective"] > 0:
            rel = (res["objective"] - ref["objective"]) / ref["objective"]
            same = float(res["placement"] == ref["placement"])
        rows.append({**c, **res, "rel_obj_vs_exact": rel, "same_placement": same})
    rows.sort(key=lambda r: (r["snapshots"], r["method"], r["n_mus"], r["n_bss"], r["instance"]))
    files = []
    text = style.csv_text(["snapshots", "method", "n_mus", "n_bss", "instance", "status", "objective_j", "bound_j", "gap",
                           "wall_s", "served", "requests", "rel_obj_vs_exact", "same_placement"],
                          ([r["snapshots"], r["method"], r["n_mus"], r["n_bss"], r["instance"], r["status"], r["objective"], r["bound"],
                            r["gap"], r["wall_s"], r["served"], r["requests"], r["rel_obj_vs_exact"], r["same_placement"]]
                           for r in rows))
    atomic_write_text(out / "solvers.csv", text)
    files.append(out / "solvers.csv")

    plt = style.pyplot()
    ms = sorted({r["n_bss"] for r in rows})
    fig, axes = plt.subplots(1, max(len(ms), 1), figsize=(4.2 * max(len(ms), 1), 3.8), squeeze=False)
    if not ms:   # a preset of no snapshot solves (methods, snapshots or sizes empty): an empty panel
        axes[0][0].text(0.5, 0.5, "no snapshot solves in this run", ha="center", va="center")
        axes[0][0].set_axis_off()
    for ax, m in zip(axes[0], ms):
        for kind, meth in sorted({(r["snapshots"], r["method"]) for r in rows}):
            sel = [r for r in rows if r["method"] == meth and r["n_bss"] == m and r["snapshots"] == kind]
            ns = sorted({r["n_mus"] for r in sel})
            if not ns:
                continue
            med = [statistics.median([r["wall_s"] for r in sel if r["n_mus"] == n]) for n in ns]
            ax.plot(ns, med, color=style.COLORS.get(meth), marker=style.MARKERS.get(meth, "o"),
                    linestyle="--" if kind == "loaded" else "-", label=f"{style.label(meth)} ({kind})")
        ax.set_yscale("log")
        ax.set_xlabel("number of MUs N")
        ax.set_ylabel("solve time, median over instances (s)")
        ax.set_title(f"M = {m} servers")
        ax.legend()
    fig.suptitle("Snapshot solvers: wall time vs N (paper: frame starts of the default scenario; loaded: "
                 "wdtnopt.testing.loaded_snapshot)")
    files.append(style.save(fig, out / "fig_solvers_time.png"))

    lines = ["# Snapshot solvers (suite `solvers`)", "",
             f"- Command: `{info['command']}`", f"- Machine: {info['machine']}; {info['date']}", f"- Code: {info.get('code', 'not recorded')}.",
             f"- Preset `{cfg['preset']}`: N x M in {', '.join(f'{n}x{m}' for n, m in sizes(cfg))}, {counted(cfg['instances'], 'instance')} "
             f"(SCIP on the first {cfg['scip_instances']}, N <= {cfg['scip_max_n']}, cap {cfg['scip_cap']:g} s), "
             f"asked gap {cfg['gap']:g} (fast {float(cfg.get('fast_gap', cfg['gap'])):g}), time limit of exact and fast "
             f"{(str(cfg['time_limit']) + ' s') if cfg.get('time_limit') else 'none'}, time = median of {counted(cfg['repeats'], 'run')}; "
             f"snapshots: {', '.join(cfg.get('snapshots', ['paper']))}.",
             f"- Methods registered and run: {', '.join(available_methods(cfg)) or 'none (the preset asks for none)'}"
             + ("" if "fast" in available_methods(cfg) or "fast" not in cfg["methods"]
                else " (`fast` is not registered in this build: not measured)"), "",
             "| snapshots | method | N x M | instances | median time (s) | max time (s) | statuses | max certified gap | "
             "max rel. objective vs exact | same placement as exact |", "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, meth in sorted({(r["snapshots"], r["method"]) for r in rows}):
        for n, m in sorted({(r["n_mus"], r["n_bss"]) for r in rows if r["method"] == meth and r["snapshots"] == kind}):
            sel = [r for r in rows if r["method"] == meth and r["n_mus"] == n and r["n_bss"] == m and r["snapshots"] == kind]
            st = ", ".join(f"{k} {v}" for k, v in sorted(_count(r["status"] for r in sel).items()))
            rel = [abs(r["rel_obj_vs_exact"]) for r in sel if math.isfinite(r["rel_obj_vs_exact"])]
            same = [r["same_placement"] for r in sel if math.isfinite(r["same_placement"])]
            gaps = [r["gap"] for r in sel if math.isfinite(r["gap"])]
            lines.append(f"| {kind} | {style.label(meth)} | {n} x {m} | {len(sel)} | {statistics.median(r['wall_s'] for r in sel):.3g} | "
                         f"{max(r['wall_s'] for r in sel):.3g} | {st} | {max(gaps):.1e} | "
                         f"{(max(rel) if rel else math.nan):.1e} | {sum(same):.0f}/{len(same)} |"
                         if gaps else f"| {kind} | {style.label(meth)} | {n} x {m} | {len(sel)} | - | - | {st} | - | - | - |")
    alloc = [r["result"] for r in records if r["config"]["kind"] == "allocation"]
    if alloc:
        a = alloc[0]
        lines += ["", "## Fast allocation vs CVXPY", ""]
        if "skipped" in a:
            lines.append(f"Skipped: {a['skipped']}")
        else:
            lines += [f"N = {a['N']} (5 servers, {a['served']} served MUs, fixed placement and served set), through "
                      "`bench_allocation` of benchmarks/bench_solvers.py:", "",
                      "| method | time | energy (J) |", "|---|---|---|",
                      f"| fast KKT allocation | {a['fast'] * 1e3:.2f} ms | {a['e_fast']:.12g} |",
                      f"| CVXPY first solve (canonicalization + Clarabel) | {a['cvx_first']:.2f} s | |",
                      f"| CVXPY DPP re-solve (status {a.get('cvx_status', '?')}) | {a['cvx']:.3f} s | {a['e_cvx']:.12g} |", "",
                      f"CVXPY re-solve / fast: {a['cvx'] / a['fast']:.0f}x; relative energy difference {a['rel']:.1e}."]
    lines += ["", "Files: `solvers.csv` (every solve), `fig_solvers_time.png`, task results in `tasks/`.", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    files.append(out / "report.md")
    return files


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out
