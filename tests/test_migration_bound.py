"""The migration-aware hindsight bound against a brute force over every placement trajectory.

The brute force enumerates every joint placement at every frame start (the simulator's rules: a
moved DT is unavailable for ceil(T_mig / tau) slots and cannot move again before it arrives; the
target must fit the storage) and solves each slot at its placement by the enumeration + SLSQP of
tests/test_solvers_bruteforce.py: the exact Lagrangian ``min_trajectories sum_t cost_t(mu) - mu . eps R``,
below which every valid bound must lie.
"""
import itertools

import numpy as np
import pytest

from wdtnopt import Scenario, gap, generate_trace, hindsight_bound, simulate
from wdtnopt.bounds_migration import _Prices, migration_bound, path_costs
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy

TINY = Scenario.paper(n_mus=2, n_bss=2, request_prob=0.8, frame_slots=2)


def lagrangian_brute(trace, mu, eps):
    from test_solvers_bruteforce import brute_force

    N, M, T, K = trace.n_mus, trace.n_bss, trace.slots, trace.scenario.frame_slots
    cache = {}

    def slot_cost(t, placement, migrating):
        key = (t, tuple(placement), tuple(migrating))
        if key not in cache:
            s = trace.snapshot(t, placement_prev=np.array(placement), migrating=np.array(migrating),
                               failure_penalty=mu, migration_penalty=np.zeros(N), allow_migration=False)
            cache[key] = brute_force(s)
        return cache[key]

    def run(t, placement, unavailable):
        if t == T:
            return 0.0
        options = [placement]
        if t % K == 0:
            options = []
            for target in itertools.product(range(M), repeat=N):
                target = np.array(target)
                moved = target != placement
                if (moved & (unavailable > 0)).any():
                    continue
                if (np.bincount(target, weights=trace.dt_size_bits, minlength=M) > trace.storage_bits).any():
                    continue
                options.append(target)
        best = np.inf
        for target in options:
            moved = target != placement
            un = np.where(moved, trace.migration_slots(placement, target), unavailable)
            c = slot_cost(t, target, un > 0) + run(t + 1, target, np.maximum(un - 1, 0))
            best = min(best, c)
        return best

    R = trace.request.sum(axis=0)
    return run(0, trace.initial_placement.copy(), np.zeros(N, dtype=np.int64)) - float(mu @ (eps * R))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_migration_bound_below_the_brute_force_lagrangian(seed):
    tr = generate_trace(TINY, seed=seed, slots=5)
    hb = hindsight_bound(tr, iters=3, dual="supergradient")   # prices from its slots' certificates
    eps = np.full(2, 0.05)
    rng = np.random.default_rng(seed)
    prices = _Prices(tr, hb._evaluator)
    R = tr.request.sum(axis=0)
    for _ in range(3):
        mu = rng.uniform(0.001, 0.03, 2)
        prices.from_certificates(mu)
        value, failures, _ = path_costs(tr, mu, prices.serve, prices.pi)
        lb = float(value.sum() - prices.const.sum() - mu @ (eps * R))
        assert lb <= lagrangian_brute(tr, mu, eps) * (1 + 1e-7) + 1e-12
        assert ((failures >= 0) & (failures <= R)).all()
    mb = migration_bound(tr, hb, eps, iters=3)
    assert mb.total_energy >= 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_migration_bound_from_column_prices_below_the_brute_force_lagrangian(seed):
    """The same check with the CPU and storage prices of the column-generation bound (the default)."""
    tr = generate_trace(TINY, seed=seed, slots=5)
    hb = hindsight_bound(tr, iters=4)
    assert hb.method == "columns"
    eps = np.full(2, 0.05)
    rng = np.random.default_rng(seed)
    prices = _Prices(tr, hb._columns.cd)
    R = tr.request.sum(axis=0)
    for p in hb.points:
        prices.from_slot_prices(*p.slot_prices)
        for mu in (p.mu, rng.uniform(0.001, 0.03, 2)):
            value, failures, _ = path_costs(tr, mu, prices.serve, prices.pi)
            lb = float(value.sum() - prices.const.sum() - mu @ (eps * R))
            assert lb <= lagrangian_brute(tr, mu, eps) * (1 + 1e-7) + 1e-12


def test_dp_matches_enumeration_of_one_mus_paths():
    """With prices zero and one MU, DP_n is the least cost over every allowed path, enumerated."""
    sc = Scenario.paper(n_mus=1, n_bss=3, request_prob=0.9, frame_slots=2)
    tr = generate_trace(sc, seed=4, slots=6)
    rng = np.random.default_rng(0)
    serve = np.where(tr.request[:, :, None], rng.uniform(0.001, 0.02, (6, 1, 3)), np.inf)
    pi = np.zeros((6, 3))
    mu = np.array([0.012])
    value, failures, _ = path_costs(tr, mu, serve, pi)
    best = np.inf
    for hosts in itertools.product(range(3), repeat=3):          # host chosen at frames 0, 2, 4
        cost, host, busy_until = 0.0, tr.initial_placement[0], 0
        for t in range(6):
            if t % 2 == 0 and t >= busy_until and hosts[t // 2] != host:
                k = int(tr.migration_slots(np.array([host]), np.array([hosts[t // 2]]))[0])
                host, busy_until = hosts[t // 2], t + k
            if t < busy_until:
                cost += mu[0] * tr.request[t, 0]
            elif tr.request[t, 0]:
                cost += min(mu[0], serve[t, 0, host])
        best = min(best, cost)
    assert value[0] == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_migration_bound_below_every_policy(seed):
    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=3), seed=seed, slots=30)
    results = [simulate(p, tr) for p in ("static", "follow", MyopicOraclePolicy(), LyapunovPolicy())]
    hb = hindsight_bound(tr, iters=4)
    report = gap(results, tr, bound=hb, iters=2)
    for r, row in zip(results, report.rows):
        mb = migration_bound(tr, hb, r.failure_ratio_per_mu, iters=4)
        assert mb.energy_per_mu_slot <= r.energy_per_mu_slot * (1 + 1e-9)


def test_gap_command_reports_the_migration_aware_bound(capsys):
    from cli_runner import run_cli

    code, out, err = run_cli(["gap", "--n-mus", "5", "--n-bss", "2", "--slots", "8", "--iters", "2", "--policy", "follow",
                              "--migration-aware"], capsys)
    assert code == 0, err
    line = [ln for ln in out.splitlines() if "migration-aware bound" in ln]
    assert len(line) == 1 and line[0].startswith("follow:")


def test_traces_with_server_failures_are_refused():
    tr = generate_trace(Scenario.paper(n_mus=4, n_bss=2, server_mtbf_s=50.0, server_mttr_s=5.0), seed=0, slots=4)
    hb = hindsight_bound(tr, iters=1)
    with pytest.raises(ValueError, match="server failures"):
        migration_bound(tr, hb)


def test_traces_with_semantic_levels_are_refused():
    # with a compression menu the DP's uncompressed serve costs are above the policies' energy
    # (N = 6, seed 0, 20 slots: follow 0.092 mJ against a "bound" of 0.153 mJ per MU per slot)
    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=3, semantic_levels=3), seed=0, slots=20)
    hb = hindsight_bound(tr, iters=1)
    with pytest.raises(ValueError, match="semantic compression"):
        migration_bound(tr, hb)


@pytest.mark.parametrize("kw", [dict(method="fast", dual="supergradient"), dict(method="exact", warm_start=False)])
def test_bound_without_price_certificates_stays_below_the_policies(kw):
    # slots without a certificate are priced at 0; they used to be left unservable, which charged
    # every request there as a failure (N = 5, seed 0: 12.3 mJ against follow's 0.46 mJ)
    tr = generate_trace(Scenario.paper(n_mus=5, n_bss=2), seed=0, slots=8)
    hb = hindsight_bound(tr, iters=2, **kw)
    assert not any(hb._evaluator.certificates)
    for p in ("static", "follow", LyapunovPolicy()):
        r = simulate(p, tr)
        mb = migration_bound(tr, hb, r.failure_ratio_per_mu, iters=4)
        assert 0 < mb.energy_per_mu_slot <= r.energy_per_mu_slot * (1 + 1e-9)


@pytest.mark.parametrize("field,value", [("server_mtbf_s", 50.0), ("semantic_levels", 3)])
def test_gap_command_refuses_an_uncovered_scenario_before_simulating(field, value, tmp_path, capsys):
    from cli_runner import run_cli

    spec = tmp_path / "s.toml"
    spec.write_text(f"n_mus = 4\nn_bss = 2\n{field} = {value}\n")
    code, out, err = run_cli(["gap", "--scenario", str(spec), "--slots", "4", "--iters", "1", "--policy", "follow",
                              "--migration-aware"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not covered" in err
    assert "follow" not in out  # refused up front: no policy was simulated
