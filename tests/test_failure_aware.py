"""The availability price of the failure-aware policies and per-server MTBF/MTTR (docs/model.md, section 12)."""
import math

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, simulate
from wdtnopt.errors import ScenarioError, WdtnoptError
from wdtnopt.policies import make_policy
from wdtnopt.policies.failure_aware import availability_price, failure_within, restore_slots
from wdtnopt.processes import availability

FLAKY = Scenario.paper(n_mus=10, n_bss=4, server_mtbf_s=[20.0, 20.0, 2000.0, 2000.0], server_mttr_s=20.0)


def test_failure_within_matches_a_monte_carlo_of_the_chain():
    rng = np.random.default_rng(0)
    p_fail, p_rep = availability.transition_probabilities(0.5, 20.0, 20.0)
    for horizon in (1, 10, 100):
        # chains started up, stepped by the trace generator's own transition rule
        state = np.ones(200_000, bool)
        failed = np.zeros_like(state)
        for _ in range(horizon):
            u = rng.random(state.size)
            state = np.where(state, u >= p_fail, u < p_rep)
            failed |= ~state
        mc = failed.mean()
        exact = float(failure_within(p_fail, horizon))
        assert exact == pytest.approx(1 - (1 - p_fail) ** horizon, rel=1e-12)
        assert abs(mc - exact) < 4 * math.sqrt(exact * (1 - exact) / state.size) + 1e-12, (horizon, mc, exact)


def test_availability_price_by_hand():
    sc = FLAKY.replace(failure_detection_s=1.3, request_prob=0.7)
    tr = generate_trace(sc, seed=0, slots=5)
    up = np.array([True, False, True, True])
    assoc = tr.assoc[0]
    phi = np.linspace(0.01, 0.02, sc.n_mus)
    price = availability_price(tr, up, assoc, phi, horizon=7)
    assert (price[:, 1] == 0).all()              # a down server takes no DT: no price
    for n in (0, 4):
        for s in (0, 2):
            # restore: backup next to s (fewest hops, then index), target nearest to the serving BS (s excluded)
            hops = tr.hops
            backup = min((j for j in range(4) if j != s), key=lambda j: (hops[s, j], j))
            target = min((j for j in range(4) if j != s), key=lambda j: (hops[assoc[n], j], j))
            t = 1.3 + tr.backhaul_latency_s[backup, target] + tr.dt_size_bits[n] * tr.backhaul_s_per_bit[backup, target]
            d = max(math.ceil(t / 0.5 - 1e-9), 1)
            p = 1 - math.exp(-0.5 / sc.server_mtbf_s[s])
            want = (1 - (1 - p) ** 7) * 0.7 * phi[n] * d
            assert price[n, s] == pytest.approx(want, rel=1e-12), (n, s)
    # without self-healing a DT waits for the repair: the chain's mean down time 1 / p_repair slots
    tr0 = generate_trace(sc.replace(self_healing=0), seed=0, slots=5)
    d0 = restore_slots(tr0, assoc)
    assert d0 == pytest.approx(np.full((10, 4), 1 / (1 - math.exp(-0.5 / 20.0))))


def test_per_server_mtbf_is_validated_and_one_value_per_server_reproduces_the_scalar():
    assert FLAKY.server_mtbf_s == (20.0, 20.0, 2000.0, 2000.0)
    assert FLAKY.server_availability == pytest.approx((0.5, 0.5, 2000 / 2020, 2000 / 2020))
    with pytest.raises(ScenarioError, match="server_mtbf_s.*n_bss = 4"):
        Scenario.paper(n_bss=4, server_mtbf_s=[20.0, 30.0])
    with pytest.raises(ScenarioError, match="server_mttr_s.*index 1"):
        Scenario.paper(n_bss=2, server_mttr_s=[20.0, 0.0])
    with pytest.raises(ScenarioError, match="server_mtbf_s.*index 0"):
        Scenario.paper(n_bss=2, server_mtbf_s=["a", 1.0])
    a = generate_trace(Scenario.paper(n_mus=5, n_bss=3, server_mtbf_s=30.0), seed=4, slots=300)
    b = generate_trace(Scenario.paper(n_mus=5, n_bss=3, server_mtbf_s=[30.0, 30.0, 30.0]), seed=4, slots=300)
    assert np.array_equal(a.server_up, b.server_up) and not a.server_up.all()
    # a per-server list never changes the other streams, and each server keeps its own availability
    long = generate_trace(FLAKY.replace(n_mus=2), seed=1, slots=40_000)
    up = long.server_up.mean(axis=0)
    assert up[:2] == pytest.approx([0.5, 0.5], abs=0.05) and (up[2:] > 0.97).all()


def test_per_server_fields_round_trip_through_toml(tmp_path):
    FLAKY.save(tmp_path / "s.toml")
    assert Scenario.load(tmp_path / "s.toml") == FLAKY
    FLAKY.save(tmp_path / "s.json")
    assert Scenario.load(tmp_path / "s.json") == FLAKY


def test_failure_aware_is_its_base_policy_with_servers_of_one_mtbf():
    sc = Scenario.paper(n_mus=8, n_bss=3, server_mtbf_s=30.0, server_mttr_s=10.0)
    tr = generate_trace(sc, seed=0, slots=60)
    assert not tr.server_up.all()
    for base in ("oracle", "lyapunov"):
        a, b = simulate(base, tr), simulate(base + "-fa", tr)
        assert np.array_equal(a.energy_per_mu, b.energy_per_mu) and np.array_equal(a.placement, b.placement)
        assert b.extras["fa_changed_placements"] == 0


def _cost(res, tr):
    """Team cost per MU-slot: energy + eta E_ref per failed request (docs/model.md, section 7)."""
    return (res.energy_per_mu.sum() + tr.scenario.failure_price * res.failures_per_mu.sum()) / (res.n_mus * res.slots)


def test_failure_aware_beats_its_base_on_flaky_servers():
    """Two of four servers fail every 20 s on average and DTs wait for the repair (no self-healing):
    the price keeps DTs off them, cutting server_down failures and the team cost on every seed."""
    sc = FLAKY.replace(self_healing=0)
    for seed in (0, 1, 2):
        tr = generate_trace(sc, seed=seed, slots=200)
        base, fa = simulate("oracle", tr), simulate("oracle-fa", tr)
        assert fa.extras["fa_changed_placements"] > 0
        assert fa.failure_ratio_by_cause()["server_down"] < base.failure_ratio_by_cause()["server_down"], seed
        assert _cost(fa, tr) < _cost(base, tr), seed


def test_horizon_option_is_validated():
    with pytest.raises(WdtnoptError, match="horizon_slots"):
        make_policy("oracle-fa", horizon_slots=0)
    assert make_policy("lyapunov-fa", horizon_slots=20, V=500.0).V == 500.0
