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


def test_mean_down_time_without_self_healing_is_capped_like_every_slot_count():
    # legal extremes: the mean down time tau / MTTR -> 1 / p_repair slots is past the float range
    # (slot 1e-300 s, MTTR 1e12 s: p_repair = 1e-312), past 2**53 but finite (slot 1e-4 s: 1e16), or
    # below the cap (slot 0.5 s, MTTR 5000 s: unchanged, not rounded: a mean)
    cap = 2.0**53
    for slot_s, mttr, want in ((1e-300, 1e12, cap), (1e-4, 1e12, cap), (0.5, 5000.0, 1 / -math.expm1(-0.5 / 5000.0))):
        sc = Scenario.paper(n_mus=4, n_bss=2, slot_s=slot_s, server_mtbf_s=[slot_s, 0.0], server_mttr_s=mttr,
                            self_healing=0, request_prob=0.5)
        tr = generate_trace(sc, seed=0, slots=3)
        with np.errstate(divide="raise", over="raise", invalid="raise"):    # before: overflow, then 0 * inf
            d = restore_slots(tr, tr.assoc[0])
            price = availability_price(tr, np.array([True, True]), tr.assoc[0], np.full(4, 0.01), horizon=7)
            price_down = availability_price(tr, np.array([False, True]), tr.assoc[0], np.full(4, 0.01), horizon=7)
        assert d.shape == (4, 2) and (d == want).all(), (slot_s, d)     # before: inf, 1e16
        # server 0 fails with p = 1 - exp(-1) per slot; server 1 never fails; a down server has no price
        q = 1 - math.exp(-1) ** 7
        assert price[:, 0] == pytest.approx(np.full(4, q * 0.5 * 0.01 * want), rel=1e-12)
        assert (price[:, 1] == 0).all() and (price_down == 0).all()     # before: NaN (0 * inf)


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
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    # the failure-aware variants keep the one-slot placement (their candidates are its placements)
    for name, base in (("oracle", "oracle"), ("lyapunov", LyapunovPolicy(placement="slot"))):
        a, b = simulate(base, tr), simulate(name + "-fa", tr)
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


# -- server status in the environment's observations (docs/env.md) -------------------------------
def test_observations_unchanged_without_failures_and_named_status_features_with_them():
    from wdtnopt.env import core, parallel_env
    from wdtnopt.env.spaces import FEATURE_BOUNDS, named_layout

    n, m, k = 5, 3, 4
    off = Scenario.paper(n_mus=n, n_bss=m, frame_slots=k)
    tr = generate_trace(off, seed=3, slots=12)
    feat = core.Features(tr)
    from wdtnopt.simulation import SimState
    st = SimState(tr)
    a, b = core.observe(feat, st), core.observe(feat, st, server_status=False)
    for f in ("mu", "bs", "controller", "state"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert core.obs_dims(n, m) == core.obs_dims(n, m, False)
    assert a.bs.shape[1] == core.obs_dims(n, m)["bs"] and a.controller.size == core.obs_dims(n, m)["controller"]

    on = FLAKY.replace(n_mus=n, n_bss=m, server_mtbf_s=[5.0, 5.0, 500.0], server_mttr_s=3.0, frame_slots=k)
    dims = core.obs_dims(n, m, True)
    layout = named_layout(n, m, True)
    assert {kk: len(v) for kk, v in layout.items()} == dims
    assert all(name in FEATURE_BOUNDS for name in core.BS_STATUS_FEATURES + core.CTRL_STATUS_FEATURES)
    env = parallel_env(scenario=on, seed=0, slots=40)
    obs, _ = env.reset(seed=2)
    p_fail, p_rep = availability.transition_probabilities(on.slot_s, *on.server_mtbf_mttr_s())
    saw_down = False
    for _ in range(40):
        t = env.sim.t
        up = env.trace.server_up[t]
        steps = k - t % k
        # the chain's k-step transition, by the matrix power of each server's 2x2 transition matrix
        want = np.array([np.linalg.matrix_power(np.array([[1 - p_fail[j], p_fail[j]], [p_rep[j], 1 - p_rep[j]]]), steps)
                         [0 if up[j] else 1, 0] for j in range(m)])
        for j in range(m):
            o = obs[f"bs_{j}"]
            assert o.shape == (dims["bs"],) and env.observation_space(f"bs_{j}").contains(o)
            assert o[-2] == float(up[j]) and o[-1] == pytest.approx(want[j], rel=1e-5)
        c = obs["controller"]
        assert np.array_equal(c[-2 * m:-m], up.astype(np.float32)) and c[-m:] == pytest.approx(want, rel=1e-5)
        saw_down |= not up.all()
        acts = {ag: env.action_space(ag).sample() for ag in env.agents}
        obs, *_ = env.step(acts)
        if not env.agents:
            break
    assert saw_down


def test_agents_train_with_failures_and_never_serve_on_a_down_server(tmp_path):
    """Brief training with failures (status features on) on flaky servers; the trained agent runs
    in the simulator, which scores every slot with evaluate (serving a DT on a down server is a
    violation it refuses): no served request on a down host, and failures of that cause happened."""
    from wdtnopt.agents.trainer import Trainer
    from wdtnopt.env import core

    sc = Scenario.paper(n_mus=4, n_bss=3, request_prob=1.0, server_mtbf_s=[5.0, 5.0, 500.0], server_mttr_s=5.0)
    tr = Trainer("beta-happo", sc, seed=0, config={"n_envs": 2, "rollout_steps": 10})
    assert tr.agent.spec.server_status and tr.agent.spec.dims == core.obs_dims(4, 3, True)
    tr.train_iteration()
    tr.save(tmp_path / "agent")
    for seed in (7, 8):
        trace = generate_trace(sc, seed=seed, slots=40)
        pol = make_policy(f"checkpoint:{tmp_path / 'agent'}")
        served_on_down = []
        orig = pol.observe

        def observe(snap, ev, orig=orig):
            served_on_down.append(int((ev.served & ~snap.server_up[snap.placement_prev]).sum()))
            orig(snap, ev)
        pol.observe = observe
        res = simulate(pol, trace)
        host_up = trace.server_up[np.arange(40)[:, None], res.placement]
        assert len(served_on_down) == 40 and sum(served_on_down) == 0
        assert (~host_up).any() and res.failure_ratio_by_cause()["server_down"] > 0
        assert res.unavailable[~host_up].all()          # a DT on a down host is never available to serve


def test_availability_price_matches_a_monte_carlo_of_the_simulator():
    """Server 0 fails (MTBF 5 s), the others never do; MUs stand still, `static` never migrates and
    storage has room, so the requests a DT on server 0 loses to a failure within the horizon are
    exactly what the price counts: over seeds their mean is the price (phi = 1), and each restore
    lasts the price's restore slots."""
    horizon = 10
    sc = Scenario.paper(n_mus=12, n_bss=3, server_mtbf_s=[5.0, 0.0, 0.0], server_mttr_s=2.0, speed_mean_mps=0.0,
                        speed_std_mps=0.0, request_prob=0.5, storage_factor=3.0)
    lost, want, events = [], [], 0
    for seed in range(400):
        tr = generate_trace(sc, seed=seed, slots=horizon + 12)
        up0, on0 = tr.server_up[:, 0], tr.initial_placement == 0
        if not up0[0] or not on0.any():       # the price is conditional on the server being up now
            continue
        res = simulate("static", tr)
        down = np.flatnonzero(~up0)
        j = int(down[0]) if down.size else tr.slots
        if j <= horizon:
            d = restore_slots(tr, tr.assoc[0])[on0, 0]
            assert np.array_equal(res.unavailable[j:, on0].sum(axis=0), d)   # each restore lasts D slots
            events += 1
        lost.append(int((res.unavailable[j:, on0] & tr.request[j:, on0]).sum()) if j <= horizon else 0)
        want.append(availability_price(tr, np.ones(3, bool), tr.assoc[0], np.ones(12), horizon)[on0, 0].sum())
    lost, want = np.array(lost, float), np.array(want)
    assert len(lost) > 200 and events > 100
    assert abs(lost.mean() - want.mean()) < 4 * lost.std() / math.sqrt(len(lost)), (lost.mean(), want.mean())


def test_backup_server_by_hand_and_shared_by_healing_and_the_policy():
    from wdtnopt.policies import failure_aware
    from wdtnopt.simulation import backup_server

    hops = np.array([[0, 2, 1, 1], [2, 0, 1, 3], [1, 1, 0, 2], [1, 3, 2, 0]])
    # site 0: the nearest other server, ties to the lowest index
    assert [backup_server(hops, s, 0) for s in range(4)] == [2, 2, 0, 0]
    # site 1: the backhaul centre (row sums 4, 6, 4, 6: the lowest index of the two), whatever the host
    assert [backup_server(hops, s, 1) for s in range(4)] == [0, 0, 0, 0]
    assert backup_server(np.zeros((1, 1), int), 0, 0) == 0 and backup_server(np.zeros((1, 1), int), 0, 1) == 0
    rng = np.random.default_rng(0)
    for _ in range(20):   # against the rule written out: min over j != s of (hops, index)
        h = rng.integers(1, 5, (6, 6))
        h = np.triu(h, 1) + np.triu(h, 1).T
        for s in range(6):
            assert backup_server(h, s, 0) == min((j for j in range(6) if j != s), key=lambda j: (h[s, j], j))
    assert failure_aware.backup_server is backup_server   # one rule, imported where restores are priced


def test_failure_aware_policies_refuse_frame_placement():
    """Their candidates are solved on the frame start's own snapshot, so ``placement="frame"`` was
    accepted and then silently not used whenever servers can fail; it is refused, naming the option."""
    from wdtnopt.policies.failure_aware import FailureAwareLyapunovPolicy, FailureAwareOraclePolicy

    for cls in (FailureAwareLyapunovPolicy, FailureAwareOraclePolicy):
        with pytest.raises(WdtnoptError, match="placement"):
            cls(placement="frame")
        assert cls().placement == "slot" and cls(placement="slot").placement == "slot"
    with pytest.raises(WdtnoptError, match="placement"):
        FailureAwareLyapunovPolicy(placement="Frame")
