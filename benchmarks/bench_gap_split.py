"""Where a policy's gap to the hindsight bound sits: the bound's slot relaxation, placement, prices.

    python benchmarks/bench_gap_split.py --n-mus 50 --seed 0 --slots 100            # the N = 50 split
    python benchmarks/bench_gap_split.py --n-mus 50 --seed 0 --slots 10 --frame-check  # + one frame's MILP
    python benchmarks/bench_gap_split.py --preset smoke

For a policy run on a trace, let ``mu`` be the multipliers of the hindsight bound's best point at the
policy's own failure ratios (column generation, the default) and ``LB = G_col(mu) - mu . target`` the
bound. With ``F`` the policy's failures, ``target = max(F, forced)`` at its own ratios, so
``E - LB = (E + mu . F - G_col(mu)) + mu . (target - F)`` splits exactly into (docs/longterm.md,
"Where the gap sits"):

* (a) the bound's slot relaxation: ``G_exact(mu) - G_col(mu)``, each slot's relaxed snapshot solved by
  ``exact`` (its certified bound) against its Lagrangian bound over CPU and storage prices;
* (b) placement: ``A(mu) - G_exact(mu)``, with ``A`` the sum over slots of the exact minimum at ``mu``
  with the placement (and unavailable DTs) the policy had in that slot, against free re-placement;
* (c) prices: ``E + mu . F - A(mu)``: the policy's admission and allocation at its own prices
  against the best at ``mu`` for its placement;

and the rest ``mu . (target - F) >= 0`` (non-zero only for MUs with more forced failures than failures). ``--frame-check``
also solves the frame problem with hindsight for the first frame (one placement held over the frame,
every DT stored; a HiGHS MILP with continuous served shares and tangents of the energy) and
allocates each slot exactly at its placement: an upper bound of what holding a placement over the
frame costs when the requests are known, against the slots' free re-placement.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time

from typing import Any

import numpy as np

from wdtnopt import Scenario, WdtnoptError, gap, generate_trace, hindsight_bound, simulate
from wdtnopt.bounds_plan import phi_of_cpu as _phi
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy
from wdtnopt.trace import Trace

PRESETS = {"smoke": dict(n_mus=6, n_bss=2, slots=10, seed=0), "default": dict(n_mus=50, n_bss=5, slots=100, seed=0)}
POLICIES = {"oracle": lambda: MyopicOraclePolicy(), "lyapunov": lambda: LyapunovPolicy(),
            "lyapunov-slot": lambda: LyapunovPolicy(placement="slot")}   # lyapunov-slot: the one-slot placement
ALIASES = {"lyapunov one-slot placement": "lyapunov-slot"}   # the name before (still accepted)
TANGENTS = 8           # initial tangents per served pair of the frame MILP


class _FrameMilp:
    """The MILP of one frame (module docstring), scaled: energy in ``ref`` J, CPU in shares of the server."""

    def __init__(self, trace: Trace, slots: list[int], mu: np.ndarray, ref: float):
        from wdtnopt.solvers.allocation import PairData, storage_capacity
        from wdtnopt.solvers.highs import RowBatch, quiet_highs

        import highspy

        n_all, M = trace.n_mus, trace.n_bss
        self.ref = ref
        h = quiet_highs()
        inf = highspy.kHighsInf
        # x[n, m] for every DT
        n_x = n_all * M
        h.addCols(n_x, np.zeros(n_x), np.zeros(n_x), np.ones(n_x), 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
        h.changeColsIntegrality(n_x, np.arange(n_x, dtype=np.int32), np.full(n_x, highspy.HighsVarType.kInteger))
        rows = RowBatch()
        for n in range(n_all):
            rows.add(1.0, 1.0, [(n * M + m, 1.0) for m in range(M)])
        base = dict(placement_prev=trace.initial_placement, migrating=np.zeros(n_all, bool),
                    migration_penalty=np.zeros(n_all), allow_migration=True)
        first = trace.snapshot(slots[0], failure_penalty=np.zeros(n_all), hold_down_servers=False, **base)
        cap = storage_capacity(first)
        for m in range(M):
            rows.add(-math.inf, float(cap[m]) / float(cap[m] or 1.0),
                     [(n * M + m, float(trace.dt_size_bits[n]) / float(cap[m] or 1.0)) for n in range(n_all)])
        self.const = 0.0
        self.pairs: list[tuple[Any, np.ndarray, np.ndarray, int, int, int]] = []   # (pd, n, m, w0, f0, e0) busy
        ncol = n_x
        for t in slots:
            req = np.flatnonzero(trace.request[t])
            if req.size == 0:
                continue
            sub = trace.snapshot(t, failure_penalty=np.zeros(n_all), hold_down_servers=False, **base).select(req)
            pd = PairData.of(sub)
            mu_r = mu[req]
            self.const += float(mu_r.sum()) / ref
            bn, bm = np.nonzero(pd.servable & (pd.cycles[:, None] > 0))
            qn, qm = np.nonzero(pd.servable & (pd.cycles[:, None] <= 0))
            # busy pairs: w, f (share of the server), e
            P = bn.size
            if P:
                w0, f0, e0 = ncol, ncol + P, ncol + 2 * P
                cost = np.concatenate([-mu_r[bn] / ref, np.zeros(P), np.ones(P)])
                up = np.concatenate([np.ones(P), np.ones(P), np.full(P, inf)])
                h.addCols(3 * P, cost, np.zeros(3 * P), up, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
                ncol += 3 * P
                F = pd.cpu_hz[bm]
                fmin = pd.f_min[bn, bm] / F
                for j in range(P):
                    g = req[bn[j]]
                    rows.add(-math.inf, 0.0, [(w0 + j, 1.0), (g * M + bm[j], -1.0)])        # w <= x
                    rows.add(-math.inf, 0.0, [(f0 + j, 1.0), (w0 + j, -1.0)])               # f <= w (shares)
                    rows.add(-math.inf, 0.0, [(w0 + j, float(fmin[j])), (f0 + j, -1.0)])    # f >= f_min w
                for m in range(M):
                    js = np.flatnonzero(bm == m)
                    if js.size:
                        rows.add(-math.inf, 1.0, [(f0 + j, 1.0) for j in js])              # CPU of server m
                self.pairs.append((pd, bn, bm, w0, f0, e0))
                self._tangents(rows, pd, bn, bm, w0, f0, e0, np.arange(P),
                               [np.minimum(pd.f_min[bn, bm] * (F / pd.f_min[bn, bm]) ** q, F)
                                for q in np.linspace(0.0, 1.0, TANGENTS)])
            Q = qn.size
            if Q:
                w1 = ncol
                e_idle = pd.energy(qn, pd.budget[qn, qm])
                h.addCols(Q, (e_idle - mu_r[qn]) / ref, np.zeros(Q), np.ones(Q), 0, np.zeros(0, np.int32),
                          np.zeros(0, np.int32), np.zeros(0))
                ncol += Q
                for j in range(Q):
                    rows.add(-math.inf, 0.0, [(w1 + j, 1.0), (req[qn[j]] * M + qm[j], -1.0)])
            # each request served at most once
            for a in range(req.size):
                coefs = [(w0 + j, 1.0) for j in np.flatnonzero(bn == a)] if P else []
                if Q:
                    coefs += [(w1 + j, 1.0) for j in np.flatnonzero(qn == a)]
                if len(coefs) > 1:
                    rows.add(-math.inf, 1.0, coefs)
        rows.add_to(h)
        h.changeObjectiveOffset(self.const)
        self.h = h
        self.n_x = n_x

    def _tangents(self, rows: Any, pd: Any, bn: np.ndarray, bm: np.ndarray, w0: int, f0: int, e0: int,
                  js: np.ndarray, points: list[np.ndarray]) -> None:
        """Rows ``e >= phi(p) w + phi'(p) (f - p w)`` (scaled) for pairs ``js`` at CPU points (cycles/s)."""
        F = pd.cpu_hz[bm[js]]
        for p in points:
            val, der = _phi(pd, bn[js], bm[js], p)
            a_w = (val - der * p) / self.ref
            a_f = der * F / self.ref
            for j, aw, af in zip(js, a_w, a_f):
                rows.add(-math.inf, 0.0, [(w0 + j, float(aw)), (f0 + j, float(af)), (e0 + j, -1.0)])


def split(trace: Trace, result, hb, label: str) -> dict:
    """The parts (a), (b), (c) of the module docstring (J per MU per slot) for one policy's run."""
    from wdtnopt.solvers import solve

    n, scale = trace.n_mus, trace.n_mus * trace.slots
    eps = result.failure_ratio_per_mu
    lb, point = hb.best_point(eps)
    mu, target = point.mu, hb.targets(eps)
    g_exact = a_fixed = 0.0
    for t in range(trace.slots):
        rq = np.flatnonzero(trace.request[t])
        if rq.size == 0:
            continue
        free = trace.snapshot(t, placement_prev=trace.initial_placement, migrating=np.zeros(n, bool), failure_penalty=mu,
                              migration_penalty=np.zeros(n), allow_migration=True, hold_down_servers=False).select(rq)
        g_exact += max(solve(free, method="exact", gap=1e-4).bound, 0.0)
        held = trace.snapshot(t, placement_prev=result.placement[t], migrating=result.unavailable[t], failure_penalty=mu,
                              migration_penalty=np.zeros(n), allow_migration=False, hold_down_servers=False).select(rq)
        a_fixed += solve(held, method="exact").objective
    E = float(result.energy_per_mu.sum())
    lagr = E + float(mu @ result.failures_per_mu)
    return dict(policy=label, energy=E / scale, failure_ratio=result.failure_ratio, bound=lb / scale,
                gap=(E - lb) / lb, a_slot_relaxation=(g_exact - point.G) / scale, b_placement=(a_fixed - g_exact) / scale,
                c_prices=(lagr - a_fixed) / scale, rest=float(mu @ (target - result.failures_per_mu)) / scale)


def frame_check(trace: Trace, mu: np.ndarray, slots: list[int], time_limit: float) -> dict:
    """One frame with hindsight (J): the sum of its slots' exact relaxed minima (free re-placement in
    every slot), the frame MILP's dual bound (placement held, a lower bound of holding it), and the
    cost of holding the MILP's placement over the frame, each slot allocated exactly at it (an upper
    bound of the best held placement)."""
    from wdtnopt.solvers import solve
    from wdtnopt.solvers.highs import run_model

    n, M = trace.n_mus, trace.n_bss
    base = dict(migrating=np.zeros(n, bool), failure_penalty=mu, migration_penalty=np.zeros(n), hold_down_servers=False)
    milp = _FrameMilp(trace, slots, mu, float(mu.max()) if mu.any() else 1.0)
    milp.h.setOptionValue("mip_rel_gap", 1e-4)
    res = run_model(milp.h, time_limit=time_limit)
    x = res.x[:milp.n_x].reshape(n, M).argmax(axis=1)
    free = held = 0.0
    for t in slots:
        rq = np.flatnonzero(trace.request[t])
        if rq.size:
            s = trace.snapshot(t, placement_prev=trace.initial_placement, allow_migration=True, **base).select(rq)
            free += solve(s, method="exact", gap=1e-4).objective
            held += solve(trace.snapshot(t, placement_prev=x, allow_migration=False, **base).select(rq),
                          method="exact").objective
    return dict(slots=slots, free_replacement=free, held_lower=res.bound * milp.ref, held_upper=held,
                status=res.raw_status)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--n-mus", type=int, default=None)
    ap.add_argument("--slots", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--iters", type=int, default=6, help="dual evaluations of the bound (and per policy)")
    ap.add_argument("--policies", nargs="*", default=list(POLICIES), choices=list(POLICIES) + list(ALIASES),
                    help="lyapunov-slot: the Lyapunov scheduler with the one-slot placement")
    ap.add_argument("--frame-check", action="store_true", help="also the first frame's MILP with hindsight")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds of the frame MILP")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    args.policies = [ALIASES.get(p, p) for p in args.policies]
    cfg = dict(PRESETS[args.preset])
    for k in ("n_mus", "slots", "seed"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    try:   # bad input: exit 2 and one line before anything is solved, as the CLI
        if not args.policies:
            raise WdtnoptError("--policies: expected at least one of " + ", ".join(repr(p) for p in POLICIES))
        if args.iters < 1:
            raise WdtnoptError(f"--iters: expected an integer >= 1, got {args.iters}")
        if not args.time_limit > 0:
            raise WdtnoptError(f"--time-limit: expected a number of seconds > 0, got {args.time_limit}")
        tr = generate_trace(Scenario.paper(n_mus=cfg["n_mus"], n_bss=cfg["n_bss"]), seed=cfg["seed"],
                            slots=cfg["slots"])
    except WdtnoptError as e:
        print(f"bench_gap_split.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"machine: {platform.machine()}, python {platform.python_version()}; {cfg}")
    results = [simulate(POLICIES[p](), tr) for p in args.policies]
    hb = hindsight_bound(tr, iters=args.iters)
    gap(results, tr, bound=hb, iters=args.iters)
    out = {"config": cfg, "split": [], "frame_check": None}
    for label, r in zip(args.policies, results):
        t0 = time.perf_counter()
        row = split(tr, r, hb, label)
        out["split"].append(row)
        lb = row["bound"]
        print(f"{label}: energy {row['energy'] * 1e3:.4f} mJ, failure ratio {row['failure_ratio']:.4f}, gap "
              f"{100 * row['gap']:.2f}% = (a) slot relaxation {100 * row['a_slot_relaxation'] / lb:.2f}% + (b) placement "
              f"{100 * row['b_placement'] / lb:.2f}% + (c) prices {100 * row['c_prices'] / lb:.2f}% + rest "
              f"{100 * row['rest'] / lb:.2f}% of the bound ({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.frame_check:
        mu = hb.best_point(results[0].failure_ratio_per_mu)[1].mu
        K = tr.scenario.frame_slots
        fc = frame_check(tr, mu, list(range(min(K, tr.slots))), args.time_limit)
        out["frame_check"] = fc
        free = fc["free_replacement"]
        print(f"first frame at the {results[0].policy}'s multipliers: free re-placement {free:.6g} J; one placement "
              f"held over the frame (hindsight): between {fc['held_lower']:.6g} J and {fc['held_upper']:.6g} J "
              f"(+{100 * (fc['held_upper'] / free - 1):.2f}% at most), MILP {fc['status']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)


if __name__ == "__main__":
    main()
