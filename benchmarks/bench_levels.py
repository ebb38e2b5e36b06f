"""The exact oracle with semantic compression levels: time and certified gap vs the same snapshots
without a menu; and ``fast`` with levels against another revision's ``fast`` with levels.

    python benchmarks/bench_levels.py --n 30 --m 5 --levels 0 1 3 --seeds 1 2 3 --snapshots 5
    python benchmarks/bench_levels.py --fast-vs main --n 1000 --m 20 --seeds 1 2 3 --snapshots 1
    python benchmarks/bench_levels.py --pyomo-vs main --n 8 --m 2 --seeds 1 2 3 --snapshots 1

For each seed, ``generate_trace(Scenario.paper(n_mus=N, n_bss=M, semantic_levels=L,
semantic_ratio_min=0.3, semantic_cycles_per_bit=3.0), seed)`` gives frame-start snapshots (slots
0, 2, 4, ...) solved by ``solve(method="exact")``; the script prints the median and worst wall time
per L, its ratio to L = 0 (no menu: the same traces, as the menu changes no other trace input),
the statuses and the largest certified gap.

``--fast-vs REV`` times ``solve(method="fast")`` (this checkout) and ``solve_fast_levels`` of
revision REV's solvers/levels.py (read with ``git show``, loaded as a module of this package; its
own defaults) on the same frame-start snapshots with a menu of ``--levels`` levels (default 3),
alternating the two per snapshot, and prints each one's wall time, objective, certified bound, gap
and status, then the medians and the time ratio. ``--pyomo-vs REV`` does the same for
``solve(method="pyomo")`` against REV's solvers/minlp.py with REV's formulations/pyomo_minlp.py.
"""
from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from wdtnopt import Scenario, generate_trace
from wdtnopt.solvers import solve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--m", type=int, default=5)
    ap.add_argument("--levels", type=int, nargs="+", default=[0, 1, 3])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--snapshots", type=int, default=5)
    ap.add_argument("--fast-vs", default=None, metavar="REV", help="compare fast with levels against revision REV")
    ap.add_argument("--pyomo-vs", default=None, metavar="REV", help="compare pyomo with levels against revision REV")
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    if a.fast_vs or a.pyomo_vs:
        return versus(a)
    base = None
    for L in a.levels:
        times, gaps, status = [], [], set()
        for seed in a.seeds:
            sc = Scenario.paper(n_mus=a.n, n_bss=a.m, semantic_levels=L, semantic_ratio_min=0.3,
                                semantic_cycles_per_bit=3.0)
            tr = generate_trace(sc, seed=seed, slots=2 * a.snapshots)
            for t in range(0, 2 * a.snapshots, 2):
                s = tr.snapshot(t, allow_migration=True)
                t0 = time.perf_counter()
                sol = solve(s, method="exact")
                times.append(time.perf_counter() - t0)
                gaps.append(sol.gap)
                status.add(sol.status)
        med = statistics.median(times)
        base = med if base is None else base
        print(f"L = {L}: median {med:.3f} s, worst {max(times):.3f} s, ratio to L = {a.levels[0]}: "
              f"{med / base:.2f}, statuses {sorted(status)}, largest gap {max(gaps):.2e} ({len(times)} snapshots)")


def _revision_module(rev: str, path: str, name: str):
    """Revision ``rev``'s file ``path`` (``git show``) loaded as module ``name`` (inside this package)."""
    root = Path(__file__).resolve().parent.parent
    text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, check=True, capture_output=True, text=True).stdout
    file = Path(tempfile.mkdtemp()) / (name.rsplit(".", 1)[-1] + ".py")
    file.write_text(text)
    spec = importlib.util.spec_from_file_location(name, file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _revision_pyomo(rev: str):
    """``solve_pyomo`` of revision ``rev`` with that revision's Pyomo formulation."""
    import sys
    import wdtnopt.formulations.pyomo_minlp as current
    old = _revision_module(rev, "formulations/pyomo_minlp.py", "wdtnopt.formulations._pyomo_minlp_rev")
    minlp = _revision_module(rev, "solvers/minlp.py", "wdtnopt.solvers._minlp_rev")

    def run(s):
        sys.modules["wdtnopt.formulations.pyomo_minlp"] = old   # what the revision's solver imports
        try:
            return minlp.solve_pyomo(s)
        finally:
            sys.modules["wdtnopt.formulations.pyomo_minlp"] = current
    return run


def versus(a) -> None:
    from wdtnopt.solvers import make_solution  # noqa: F401  (the package, before loading the revision's module)
    rev = a.fast_vs or a.pyomo_vs
    if a.fast_vs:
        before = _revision_module(rev, "solvers/levels.py", "wdtnopt.solvers._levels_rev").solve_fast_levels
        method = "fast"
    else:
        before = _revision_pyomo(rev)
        method = "pyomo"
    L = max(a.levels)
    rows = {"before": [], "after": []}
    for seed in a.seeds:
        sc = Scenario.paper(n_mus=a.n, n_bss=a.m, semantic_levels=L, semantic_ratio_min=0.3, semantic_cycles_per_bit=3.0)
        tr = generate_trace(sc, seed=seed, slots=2 * a.snapshots)
        for t in range(0, 2 * a.snapshots, 2):
            s = tr.snapshot(t, allow_migration=True)
            for label, fn in (("before", lambda: before(s)), ("after", lambda: solve(s, method=method))):
                t0 = time.perf_counter()
                sol = fn()
                dt = time.perf_counter() - t0
                rows[label].append((dt, sol.objective, sol.bound, sol.gap))
                print(f"{method} {label} ({rev if label == 'before' else 'this checkout'}) seed {seed} slot {t}: "
                      f"{dt:.2f} s, objective {sol.objective:.6g}, bound {sol.bound:.6g}, gap {sol.gap:.4f}, "
                      f"status {sol.status}", flush=True)
    med = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
    for k, v in rows.items():
        print(f"{k}: median {med[k]:.2f} s, median gap {statistics.median(r[3] for r in v):.4f}, "
              f"largest gap {max(r[3] for r in v):.4f} ({len(v)} snapshots, N = {a.n}, M = {a.m}, L = {L})")
    print(f"after / before time: {med['after'] / med['before']:.3f}")


if __name__ == "__main__":
    main()
