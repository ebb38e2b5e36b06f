"""The hindsight plan (wdtnopt/bounds_plan.py): legal, replayed by the simulator, never below the optimum.

The brute force enumerates every legal placement trajectory (moves at frame starts, a moved DT
unavailable for ceil(T_mig / tau) slots and not movable before it arrives, storage respected) and
every served set of every slot, each server's allocation by SLSQP (tests/test_solvers_bruteforce.py,
sharing nothing with the solvers but physics), and keeps the least energy among those serving each
MU at least a given number of times: the hindsight optimum over legal plans at those counts.
"""
import itertools
import math

import numpy as np
import pytest

from wdtnopt import Scenario, WdtnoptError, generate_trace, hindsight_bound, simulate
from wdtnopt.bounds_migration import migration_bound
from wdtnopt.bounds_plan import PlanPolicy, ServedRecorder, hindsight_plan
from wdtnopt.policies import Policy
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy

TINY = Scenario.paper(n_mus=2, n_bss=2, request_prob=0.8, frame_slots=2)
SCARCE = Scenario.paper(n_mus=2, n_bss=2, request_prob=0.9, frame_slots=2, speed_mean_mps=30.0, cpu_hz=2e9)


def oracle_and_plan(trace, **kw):
    rec = ServedRecorder(MyopicOraclePolicy())
    ro = simulate(rec, trace)
    return rec, ro, hindsight_plan(trace, rec.served, **kw)


def brute_optimum(trace, counts):
    """Least energy (J) of a legal plan serving MU n at least ``counts[n]`` times (module docstring)."""
    from test_solvers_bruteforce import slsqp_allocation

    N, M, T, K = trace.n_mus, trace.n_bss, trace.slots, trace.scenario.frame_slots
    subsets = [np.array(s, bool) for s in itertools.product([False, True], repeat=N)]
    cache = {}

    def slot_options(t, placement, migrating):
        """[(energy, served [N])] of every servable subset of slot t at this placement."""
        key = (t, tuple(placement), tuple(migrating))
        if key not in cache:
            s = trace.snapshot(t, placement_prev=np.array(placement), migrating=np.array(migrating),
                               allow_migration=False)
            out = []
            for sub in subsets:
                if (sub & ~(s.request & ~s.migrating)).any():
                    continue
                e = sum(slsqp_allocation(s, m, tuple(np.flatnonzero(sub & (placement == m)))) for m in range(M))
                if math.isfinite(e):
                    out.append((e, sub.astype(np.int64)))
            cache[key] = out
        return cache[key]

    best = [math.inf]

    def run(t, placement, unavailable, energy, served):
        if energy >= best[0]:
            return
        if t == T:
            if (served >= counts).all():
                best[0] = energy
            return
        options = [placement]
        if t % K == 0:
            options = []
            for target in itertools.product(range(M), repeat=N):
                target = np.array(target)
                if ((target != placement) & (unavailable > 0)).any():
                    continue
                if (np.bincount(target, weights=trace.dt_size_bits, minlength=M) > trace.storage_bits).any():
                    continue
                options.append(target)
        for target in options:
            un = np.where(target != placement, trace.migration_slots(placement, target), unavailable)
            for e, sub in slot_options(t, target, un > 0):
                run(t + 1, target, np.maximum(un - 1, 0), energy + e, served + sub)

    run(0, trace.initial_placement.copy(), np.zeros(N, dtype=np.int64), 0.0, np.zeros(N, dtype=np.int64))
    return best[0]


class _Checker(PlanPolicy):
    """Replays a plan and keeps every slot's evaluation (to check that nothing is violated)."""

    def reset(self, trace):
        super().reset(trace)
        self.evals = []

    def observe(self, snapshot, evaluation):
        self.evals.append((snapshot, evaluation))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan_is_never_below_the_brute_force_optimum(seed):
    """Against the oracle's served sets on a tiny trace, and against random served subsets on a
    tiny trace with fast MUs and scarce CPU (where a plan's choice of requests and moves matters)."""
    tr = generate_trace(TINY, seed=seed, slots=4)
    rec, ro, plan = oracle_and_plan(tr, time_limit=120.0)
    assert plan.shortfall.sum() == 0
    own = plan.result.requests_per_mu - plan.result.failures_per_mu      # the plan's own served counts
    ref = ro.requests_per_mu - ro.failures_per_mu
    assert (own >= ref).all()
    opt = brute_optimum(tr, own)
    assert math.isfinite(opt)
    assert plan.energy_j >= opt * (1 - 1e-6) - 1e-12
    # at the oracle's counts the optimum can only be lower, and the oracle is one of those plans too
    opt_ref = brute_optimum(tr, ref)
    assert opt_ref <= opt * (1 + 1e-9) + 1e-12
    assert opt_ref <= float(ro.energy_per_mu.sum()) * (1 + 1e-6) + 1e-12

    tr = generate_trace(SCARCE, seed=seed, slots=6)
    want = np.asarray(tr.request) & (np.random.default_rng(seed).random((6, 2)) < 0.6)
    plan = hindsight_plan(tr, want, time_limit=120.0)
    own = plan.result.requests_per_mu - plan.result.failures_per_mu
    assert plan.shortfall.sum() == 0 and (own >= want.sum(axis=0)).all()
    assert plan.energy_j >= brute_optimum(tr, own) * (1 - 1e-6) - 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan_replays_legally_and_dominates_the_oracles_failures(seed):
    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=3), seed=seed, slots=12)
    rec, ro, plan = oracle_and_plan(tr, time_limit=120.0)
    assert plan.shortfall.sum() == 0
    assert (plan.result.failures_per_mu <= ro.failures_per_mu).all()
    chk = _Checker(plan.placement, plan.served, plan.tx_time, plan.cpu_hz)
    rep = simulate(chk, tr)
    # the replay is the plan: same energy, same failures, no constraint violated in any slot
    assert float(rep.energy_per_mu.sum()) == plan.energy_j
    assert (rep.failures_per_mu == plan.result.failures_per_mu).all()
    assert (rep.placement == plan.result.placement).all()
    for t, (snap, ev) in enumerate(chk.evals):
        assert ev.violations == [], (t, ev.violations)
        assert not (plan.served[t] & ~(snap.request & ~snap.migrating)).any()   # served within the requests
        assert (ev.served == plan.served[t]).all()
    # placement changes only at frame starts
    K = tr.scenario.frame_slots
    moved = (np.diff(rep.placement, axis=0) != 0).any(axis=1)
    assert not moved[np.arange(1, tr.slots) % K != 0].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan_lies_above_both_bounds(seed):
    """A legal plan is one of the policies the bounds are below, at its own failure ratios and at the
    oracle's (its failures are no more than the oracle's)."""
    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=3), seed=seed, slots=12)
    rec, ro, plan = oracle_and_plan(tr, time_limit=120.0)
    hb = hindsight_bound(tr, iters=4)
    for eps in (plan.result.failure_ratio_per_mu, ro.failure_ratio_per_mu):
        lb = hb.value_at(eps)[0]
        assert lb <= plan.energy_j * (1 + 1e-9)
        assert migration_bound(tr, hb, eps, iters=4).total_energy <= plan.energy_j * (1 + 1e-9)


def test_plan_policy_is_open_loop():
    """The replay's actions depend on the slot only: a policy that never looks at the snapshot's
    contents other than the slot index gives the same run."""
    tr = generate_trace(TINY, seed=3, slots=6)
    _, _, plan = oracle_and_plan(tr, time_limit=120.0)
    assert isinstance(plan.policy(), Policy)
    a = simulate(plan.policy(), tr)
    b = simulate(plan.policy(), tr)
    assert (a.energy_per_mu == b.energy_per_mu).all() and a.energy_per_mu.sum() == plan.energy_j


def test_bad_input_is_named():
    tr = generate_trace(TINY, seed=0, slots=4)
    with pytest.raises(WdtnoptError, match="served"):
        hindsight_plan(tr, np.zeros((3, 2), bool))
    with pytest.raises(WdtnoptError, match="served"):
        hindsight_plan(tr, ~np.asarray(tr.request))   # (the trace has slots without a request)
    with pytest.raises(WdtnoptError, match="time_limit"):
        hindsight_plan(tr, np.zeros((4, 2), bool), time_limit=0)
    with pytest.raises(WdtnoptError, match="passes"):
        hindsight_plan(tr, np.zeros((4, 2), bool), passes=0)
    failing = generate_trace(Scenario.paper(n_mus=2, n_bss=2, server_mtbf_s=100.0), seed=0, slots=4)
    with pytest.raises(WdtnoptError, match="hindsight_plan: traces with server failures"):
        hindsight_plan(failing, np.zeros((4, 2), bool))
    with pytest.raises(WdtnoptError, match="plan: expected placement"):
        simulate(PlanPolicy(np.zeros((1, 2), int), np.zeros((4, 2), bool), np.zeros((4, 2)), np.zeros((4, 2))), tr)


def test_bench_plan_gap_smoke(tmp_path):
    """benchmarks/bench_plan_gap.py at its smoke preset: the plan is legal, no more failures than the
    oracle, above both bounds, and the figures it prints are consistent."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "plan.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_plan_gap.py"), "--smoke", "--json", str(out)],
                   check=True, capture_output=True, cwd=root)
    (r,) = json.loads(out.read_text())["rows"]
    assert r["plan_shortfall"] == 0 and r["plan_failures_le_oracle"] and r["plan_above_bounds"]
    assert r["plan_energy"] >= r["column_bound"] and r["plan_energy"] >= r["migration_bound"]
    assert r["best_any_bound"] == pytest.approx((r["oracle_energy"] - r["plan_energy"]) / r["plan_energy"], rel=1e-9)
    assert r["best_any_bound"] <= r["gap_column"] + 1e-12
    # the plan's own gap: the bound at its (no larger) failure ratios is still below it
    assert r["plan_gap_column"] >= -1e-9 and r["policy"] == "oracle"
    assert r["plan_gap_at_reference"] == pytest.approx((r["plan_energy"] - r["column_bound"]) / r["column_bound"],
                                                       rel=1e-9)
    # the split: the replayed plan spends what the plan does, and the parts add up to the difference
    sp = r["split"]
    assert sp["difference"] == pytest.approx(r["oracle_energy"] - r["plan_energy"], rel=1e-9, abs=1e-15)
    assert sum(sp["parts"].values()) == pytest.approx(sp["difference"], rel=1e-9, abs=1e-15)
    requests = int(generate_trace(Scenario.paper(n_mus=6, n_bss=2), seed=0, slots=10).request[:10].sum())
    for run, ratio in (("reference", r["oracle_failure_ratio"]), ("plan", r["plan_failure_ratio"])):
        failed = sum(sp["runs"][run]["failures"].values())     # every request is served or fails, once
        assert sp["runs"][run]["served"] + failed == requests and failed == round(ratio * requests)
    assert sp["runs"]["plan"]["moves"] == r["plan_migrations"] and sp["runs"]["reference"]["moves"] == r["oracle_migrations"]


def test_bench_plan_gap_with_the_lyapunov_reference(tmp_path):
    """``--policy lyapunov``: the reference run is the default Lyapunov scheduler's (its failure ratio
    as a direct simulation gives it), and the plan fails no MU more often than it."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "plan.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_plan_gap.py"), "--smoke", "--policy", "lyapunov",
                    "--json", str(out)], check=True, capture_output=True, cwd=root)
    (r,) = json.loads(out.read_text())["rows"]
    ref = simulate(LyapunovPolicy(), generate_trace(Scenario.paper(n_mus=6, n_bss=2), seed=0, slots=10))
    assert r["policy"] == "lyapunov" and r["oracle_failure_ratio"] == ref.failure_ratio
    assert r["oracle_energy"] == pytest.approx(ref.energy_per_mu_slot, rel=1e-12)
    assert r["plan_shortfall"] == 0 and r["plan_failures_le_oracle"] and r["plan_gap_column"] >= -1e-9
