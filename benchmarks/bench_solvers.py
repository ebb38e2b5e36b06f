"""Benchmark of the snapshot solvers: exact oracle vs SCIP, fast allocation vs CVXPY.

    python benchmarks/bench_solvers.py                 # full run, writes BENCHMARKS.md's section
    python benchmarks/bench_solvers.py --quick --no-write

1. Exact oracle (``solve(method="exact", gap=1e-6)``) on paper-like snapshots (docs/model.md, section 8
   defaults, built by ``wdtnopt.testing.paper_snapshot``) for N in --sizes, M = 5: median wall time over instances
   (each the median of --repeats runs), and SCIP on the Pyomo MINLP (``method="pyomo"``) on the
   first --scip-instances of them under --scip-cap seconds: its time, status and gap at the cap.
   The ratio is SCIP time / oracle time on the same instances (a lower bound on the true ratio
   when SCIP hits the cap).
2. Fast allocation (fixed placement and served set) vs the CVXPY exponential-cone model solved by
   Clarabel at N = --alloc-n: a scaled paper system (5 BSs, CPU and band grown with N so that each
   server holds about N/10 served MUs). Reported: fast time, CVXPY first solve (with
   canonicalization) and DPP re-solve, objectives and their relative difference.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SECTION = "## Snapshot solvers"


CPU_TIMES: list[float] = []  # process CPU time of the last _timed call (median)


def _timed(fn, repeats: int):
    """Median wall time of ``repeats`` runs (its CPU time goes to CPU_TIMES), and the last result."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU_TIMES.append(statistics.median(cpu))
    return statistics.median(times), out


def bench_exact(sizes, instances, repeats, scip_instances, scip_cap, log):
    from wdtnopt.testing import paper_snapshot
    from wdtnopt.cost import evaluate
    from wdtnopt.solvers import solve

    rows = []
    for N in sizes:
        times, cpus, scip_rows, gaps = [], [], [], []
        for i in range(instances):
            s = paper_snapshot(N, 5, seed=1000 * N + i)
            t, sol = _timed(lambda: solve(s, method="exact", gap=1e-6), repeats)
            assert sol.status == "optimal" and not evaluate(s, sol).violations
            times.append(t)
            cpus.append(CPU_TIMES[-1])
            gaps.append(sol.gap)
            log(f"  exact N={N} #{i}: {t:.3f}s obj {sol.objective:.6g} gap {sol.gap:.1e}")
            if i < scip_instances:
                t0 = time.perf_counter()
                sc = solve(s, method="pyomo", gap=1e-6, time_limit=scip_cap)
                ts = time.perf_counter() - t0
                scip_rows.append((t, ts, sc.status, sc.gap, sc.objective / sol.objective - 1))
                log(f"  scip  N={N} #{i}: {ts:.2f}s {sc.status} gap {sc.gap:.2e} obj/exact-1 {sc.objective / sol.objective - 1:.1e}")
        rows.append({"N": N, "median": statistics.median(times), "max": max(times), "max_gap": max(gaps),
                     "cpu_median": statistics.median(cpus),
                     "scip": scip_rows})
    return rows


def allocation_snapshot(N: int, seed: int = 0):
    from wdtnopt.testing import paper_snapshot

    s = paper_snapshot(N, 5, seed=seed, cpu_hz=10e9 * N / 30)
    # the band of a BS grows with N too: each requesting MU gets what it gets in the paper system
    n_req = np.bincount(s.assoc[s.request], minlength=5)
    bw = 20e6 * (N / 30) / np.maximum(n_req[s.assoc], 1)
    return s.replace(bandwidth=bw, migrating=np.zeros(N, bool))


def bench_allocation(N, repeats, log):
    from wdtnopt.cost import evaluate
    from wdtnopt.formulations.cvxpy_models import allocation_problem, set_allocation_data
    from wdtnopt.solvers.allocation import PairData, allocate

    s = allocation_snapshot(N)
    placement = s.assoc.copy()
    adm = allocate(s, placement)
    served = adm.served
    pd = PairData.of(s)
    t_fast, a = _timed(lambda: allocate(s, placement, served=served, pair_data=pd), repeats)
    ev = evaluate(s, {"placement": placement, "served": a.served, "tx_time": a.tx_time, "cpu_hz": a.cpu_hz})
    viol = [v.kind for v in ev.violations if v.kind != "storage_capacity"]
    assert not viol, viol
    mus = np.flatnonzero(served)
    import warnings

    warnings.simplefilter("ignore", UserWarning)  # Clarabel's "inaccurate" is reported from the status
    # CVXPY per server (the allocation separates by server), DPP: first solve, then re-solves
    t0 = time.perf_counter()
    problems = []
    for m in range(s.n_bss):
        here = mus[placement[mus] == m]
        if here.size:
            pp = allocation_problem(here.size, s.n_bss)
            set_allocation_data(pp, s, placement, here)
            pp.solve()
            problems.append(pp)
    t_cvx_first = time.perf_counter() - t0
    t_cvx, value = _timed(lambda: sum(pp.solve() for pp in problems), repeats)
    statuses = sorted({pp.problem.status for pp in problems})
    cvx_status = "/".join(statuses)
    # the same allocation as one CVXPY problem over all servers (reported for accuracy)
    joint = allocation_problem(mus.size, s.n_bss)
    set_allocation_data(joint, s, placement, mus)
    t_joint, joint_value = _timed(lambda: joint.solve(), 1)
    joint_rel = (joint_value - ev.energy_total) / ev.energy_total
    joint_status = joint.problem.status
    rel = (value - ev.energy_total) / ev.energy_total
    log(f"  allocation N={N}: {mus.size} served; fast {t_fast * 1e3:.2f} ms, cvxpy first {t_cvx_first:.2f} s, "
        f"re-solve {t_cvx:.3f} s; energy fast {ev.energy_total:.10g} cvxpy {value:.10g} (rel {rel:.1e})")
    return {"N": N, "served": int(mus.size), "fast": t_fast, "cvx_first": t_cvx_first, "cvx": t_cvx,
            "cvx_status": cvx_status, "joint_rel": joint_rel, "joint_status": joint_status, "t_joint": t_joint,
            "e_fast": ev.energy_total, "e_cvx": value, "rel": rel}


def machine() -> str:
    from wdtnopt.benchmarks.suites.runner import cpu_name

    cpu = cpu_name()
    try:
        load = ", load average %.1f" % os.getloadavg()[0]
    except OSError:
        load = ""
    import highspy  # noqa: F401
    import pyscipopt
    return (f"{cpu}, {os.cpu_count()} cores{load}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"HiGHS {_highs_version()}, SCIP (pyscipopt {pyscipopt.__version__})")


def _highs_version() -> str:
    import highspy
    try:
        h = highspy.Highs()
        return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
    except Exception:
        return "?"


def render(rows, alloc, args, elapsed) -> str:
    cmd = "python benchmarks/bench_solvers.py " + " ".join(sys.argv[1:])
    out = [SECTION, "",
           f"Machine: {machine()}. Command: `{cmd.strip()}` ({elapsed:.0f} s). Snapshots: wdtnopt.testing "
           "`paper_snapshot(N, 5, seed)` (docs/model.md, section 8 defaults, data 0.5-1.5 Mbit, rho = 1). "
           f"Times are medians of {args.repeats} runs per instance, then the median over {args.instances} instances.",
           "",
           "Exact oracle (`solve(method=\"exact\", gap=1e-6)`) vs SCIP on the Pyomo MINLP (`method=\"pyomo\"`, "
           f"cap {args.scip_cap:g} s, first {args.scip_instances} instances of each size):",
           "",
           "| N x M | exact median wall (s) | exact median CPU (s) | exact max wall (s) | max certified gap | SCIP time (s) | SCIP status / gap at cap | SCIP / exact |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["scip"]:
            st = statistics.median([x[1] for x in r["scip"]])
            states = ", ".join(f"{x[2]} {x[3]:.1e}" for x in r["scip"])
            ratio = statistics.median([x[1] / x[0] for x in r["scip"]])
            capped = any(x[2] != "optimal" for x in r["scip"])
            ratio_s = f"{'>= ' if capped else ''}{ratio:.0f}x"
        else:
            st, states, ratio_s = float("nan"), "-", "-"
        out.append(f"| {r['N']} x 5 | {r['median']:.3f} | {r['cpu_median']:.3f} | {r['max']:.3f} | {r['max_gap']:.1e} | {st:.2f} | {states} | {ratio_s} |")
    a = alloc
    out += ["",
            f"Fast allocation vs CVXPY (Clarabel, exponential cones, tolerances 1e-10) at N = {a['N']} "
            f"(5 servers, {a['served']} served MUs, fixed placement and served set):",
            "",
            "| method | time | energy (J) |",
            "|---|---|---|",
            f"| fast KKT allocation (solvers/allocation.py) | {a['fast'] * 1e3:.2f} ms | {a['e_fast']:.12g} |",
            f"| CVXPY, one DPP problem per server: first solve (canonicalization + Clarabel) | {a['cvx_first']:.2f} s | |",
            f"| CVXPY, one DPP problem per server: re-solve (status {a['cvx_status']}) | {a['cvx']:.3f} s | {a['e_cvx']:.12g} |",
            "",
            f"Ratio CVXPY re-solve / fast: {a['cvx'] / a['fast']:.0f}x (first solve: {a['cvx_first'] / a['fast']:.0f}x); "
            f"relative energy difference {a['rel']:.1e} (CVXPY - fast; positive: the conic solution is worse). "
            f"The same allocation as one CVXPY problem over all servers: {a['t_joint']:.2f} s, status "
            f"{a['joint_status']}, relative difference {a['joint_rel']:.1e} (Clarabel's accuracy degrades on the joint "
            "problem; per server it reaches 1e-8).",
            ""]
    out += notes(rows, a)
    return "\n".join(out)


def notes(rows, a) -> list[str]:
    """The targets, checked against this run's figures."""
    lines = ["Targets:", ""]
    r30 = next((r for r in rows if r["N"] == 30), None)
    if r30 is not None:
        ok = r30["median"] <= 1.0
        lines.append(f"- 30 x 5 to 1e-6 with median <= 1 s: {'met' if ok else 'MISSED'} (median {r30['median']:.3f} s wall, "
                     f"{r30['cpu_median']:.3f} s CPU; max certified gap {r30['max_gap']:.1e}).")
        if r30["scip"]:
            ratio = statistics.median([x[1] / x[0] for x in r30["scip"]])
            capped = any(x[2] != "optimal" for x in r30["scip"])
            lines.append(f"- >= 100x faster than SCIP at 30 x 5: {'met' if ratio >= 100 else 'MISSED'} (ratio "
                         f"{'>= ' if capped else ''}{ratio:.0f}x{'; SCIP stopped at the cap with the gaps shown' if capped else ''}).")
    ratio_a = a["cvx"] / a["fast"]
    lines.append(f"- allocation >= 100x faster than CVXPY: {'met' if ratio_a >= 100 else 'MISSED'} against the DPP re-solves "
                 f"({ratio_a:.0f}x); {a['cvx_first'] / a['fast']:.0f}x against a first solve.")
    same = abs(a["rel"]) <= 1e-6
    lines.append(f"- same objective to 1e-6: {'met' if same else 'MISSED'} ({a['rel']:.1e}). "
                 + ("" if same else f"Clarabel ends {a['cvx_status']} and its point is the worse one; the fast "
                    "allocation's KKT residuals are verified (1e-11) and it matches a SciPy brentq reference to 1e-9 and "
                    "Clarabel to 1e-6 on the smaller instances of tests/test_allocation.py."))
    lines += ["", "Wall times are on a shared 2-core machine (other jobs running: see the load average); the CPU "
              "column is the solver process's own time. The 50 x 5 tail is HiGHS closing the ~1% integrality gap of "
              "the perspective relaxation (two MILP rounds); the allocation and cut work is a few percent of it.", ""]
    return lines


def write_section(text: str, path: Path) -> None:
    from wdtnopt.io import atomic_write_text

    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Snapshot solvers\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text + "\n"
    atomic_write_text(path, new)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--sizes", default="10,20,30,50", help="comma-separated N values (M = 5)")
    p.add_argument("--instances", type=int, default=7, help="snapshots per size")
    p.add_argument("--repeats", type=int, default=3, help="runs per snapshot (median)")
    p.add_argument("--scip-instances", type=int, default=2, help="snapshots per size also given to SCIP")
    p.add_argument("--scip-cap", type=float, default=60.0, help="SCIP time limit per snapshot (s)")
    p.add_argument("--alloc-n", type=int, default=1000, help="N of the allocation benchmark")
    p.add_argument("--quick", action="store_true", help="small run: sizes 10,30; 3 instances; 1 repeat; SCIP cap 10 s")
    p.add_argument("--no-write", action="store_true", help="print only; do not touch BENCHMARKS.md")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="Markdown file to update")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.instances, args.repeats, args.scip_instances, args.scip_cap = "10,30", 3, 1, 1, 10.0
    sizes = [int(x) for x in args.sizes.split(",") if x]
    t0 = time.perf_counter()
    log = lambda msg: print(msg, flush=True)
    log("exact oracle vs SCIP")
    rows = bench_exact(sizes, args.instances, args.repeats, args.scip_instances, args.scip_cap, log)
    log("fast allocation vs CVXPY")
    alloc = bench_allocation(args.alloc_n, args.repeats, log)
    text = render(rows, alloc, args, time.perf_counter() - t0)
    print()
    print(text)
    if not args.no_write:
        write_section(text, Path(args.output))
        print(f"\nupdated {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
