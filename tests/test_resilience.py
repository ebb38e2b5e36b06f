"""Server failures, self-healing, prediction and the bound with failures (docs/model.md, section 12)."""
import dataclasses
import hashlib

import numpy as np
import pytest

from wdtnopt import Scenario, evaluate, gap, generate_trace, hindsight_bound, simulate
from wdtnopt.cost import SERVER_DOWN, Decision
from wdtnopt.errors import PolicyError, ScenarioError
from wdtnopt.processes import availability
from wdtnopt.simulation import SimState

FAILING = Scenario.paper(n_mus=8, n_bss=3, server_mtbf_s=30.0, server_mttr_s=10.0, failure_detection_s=0.5)


def _trace_hash(tr):
    h = hashlib.sha256()
    for f in dataclasses.fields(tr):
        if f.name in ("server_up", "background_load"):
            continue
        v = getattr(tr, f.name)
        if isinstance(v, np.ndarray):
            h.update(f.name.encode())
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


def test_default_traces_are_bit_identical_to_before_failures_existed():
    # hashes computed with the code before server availability was added
    assert _trace_hash(generate_trace(Scenario.paper(), seed=0, slots=40)) == "163bb6e94788a9d1"
    assert _trace_hash(generate_trace(Scenario.paper(n_mus=7, n_bss=3), seed=5, slots=25)) == "ea7c51f40109616d"
    tr = generate_trace(Scenario.paper(), seed=0, slots=40)
    assert tr.server_up.all() and not tr.background_load.any() and not tr.server_events
    snap = tr.snapshot(3)
    assert snap.cpu_hz is tr.cpu_hz and snap.server_up.all() and snap.migration_mask.all()


def test_failures_leave_every_other_stream_unchanged():
    a = generate_trace(Scenario.paper(n_mus=7, n_bss=3), seed=5, slots=25)
    b = generate_trace(Scenario.paper(n_mus=7, n_bss=3, server_mtbf_s=20.0, background_load_mean=0.2,
                                      background_load_std=0.1), seed=5, slots=25)
    assert _trace_hash(a) == _trace_hash(b)
    assert not b.server_up.all() and b.background_load.any()


def test_scenario_fields_are_validated():
    with pytest.raises(ScenarioError, match="server_mttr_s"):
        Scenario.paper(server_mttr_s=0.0)
    with pytest.raises(ScenarioError, match="server_mtbf_s"):
        Scenario.paper(server_mtbf_s=-1.0)
    with pytest.raises(ScenarioError, match="self_healing"):
        Scenario.paper(self_healing=2)
    with pytest.raises(ScenarioError, match="background_load_mean"):
        Scenario.paper(background_load_mean=0.99)
    sc = Scenario.paper(server_mtbf_s=1000.0, server_mttr_s=50.0)
    assert sc.server_availability == pytest.approx(1000 / 1050)
    assert Scenario.paper().server_availability == 1.0


def test_availability_statistics_match_the_model():
    """MTBF 1000 s, MTTR 50 s, tau 0.5 s: up-fraction within 0.5% of A over 10^6 slot-servers, and the
    mean up-time fitted over 10^7 slot-servers (about 4,800 failures; 10^6 give only ~480, a 4.6%
    standard error, so a 3% check there would pass or fail by chance) within 3% of MTBF."""
    tau, mtbf, mttr = 0.5, 1000.0, 50.0
    a = mtbf / (mtbf + mttr)
    pf, pr = availability.transition_probabilities(tau, mtbf, mttr)
    rng = np.random.default_rng(11)
    up = availability.server_up_chain(rng, 1000, 1000, pf, pr)                 # 10^6 slot-servers
    assert abs(up.mean() - a) / a < 0.005
    up = availability.server_up_chain(rng, 10_000, 1000, pf, pr)               # 10^7 slot-servers
    assert abs(up.mean() - a) / a < 0.005
    # maximum-likelihood fit of the mean up-time with censored runs (memoryless up-times): the
    # total up-time over the number of up -> down transitions (runs cut by the window's end count
    # in the time, not in the failures)
    failures = int((up[:-1] & ~up[1:]).sum())
    assert failures > 3000
    assert abs(up.sum() * tau / failures - mtbf) / mtbf < 0.03


def test_k_step_up_probability_equals_the_chain_matrix_power():
    pf, pr = 0.03, 0.2
    P = np.array([[1 - pf, pf], [pr, 1 - pr]])      # state 0 = up, 1 = down
    for k in (0, 1, 2, 7, 40):
        Pk = np.linalg.matrix_power(P, k)
        got = availability.up_probability_ahead(np.array([True, False]), k, pf, pr)
        assert got == pytest.approx([Pk[0, 0], Pk[1, 0]], abs=1e-12)


def _down_snapshot():
    from wdtnopt.testing import paper_snapshot
    s = paper_snapshot(N=6, M=3, seed=4, migrating_prob=0.0, allow_migration=True)
    return s.replace(server_up=np.array([True, False, True]))


def test_evaluate_rejects_serving_on_a_down_server():
    s = _down_snapshot()
    on_down = np.flatnonzero((s.placement_prev == 1) & s.request)
    assert on_down.size  # the fixture has a requesting DT on the down server
    i = int(on_down[0])
    served = np.zeros(s.n_mus, bool)
    served[i] = True
    dec = Decision(placement=s.placement_prev.copy(), served=served, tx_time=np.where(served, 0.05, 0.0),
                   cpu_hz=np.where(served, 5e9, 0.0))
    ev = evaluate(s, dec)
    assert [v.kind for v in ev.violations if v.kind == "server_down"] == ["server_down"]
    assert not ev.served[i] and ev.failure_cause[i] == SERVER_DOWN
    # environment view: the MU does not transmit, spends nothing, fails with its own cause
    env = evaluate(s, Decision(placement=s.placement_prev.copy(), power=np.full(s.n_mus, 0.1),
                               cpu_hz=np.full(s.n_mus, 1e9)))
    assert env.energy[i] == 0 and env.failed[i] and env.failure_cause[i] == SERVER_DOWN
    # moving a DT onto a down server, and a DT that its mask pins
    j = int(np.flatnonzero(s.placement_prev != 1)[0])
    pl = s.placement_prev.copy()
    pl[j] = 1
    kinds = {v.kind for v in evaluate(s, {"placement": pl}).violations}
    assert "move_to_down_server" in kinds
    mask = np.ones(s.n_mus, bool)
    mask[j] = False
    pl[j] = (s.placement_prev[j] + 1) % 3 if (s.placement_prev[j] + 1) % 3 != 1 else (s.placement_prev[j] + 2) % 3
    kinds = {v.kind for v in evaluate(s.replace(migration_mask=mask), {"placement": pl}).violations}
    assert kinds == {"migration_not_allowed"}
    assert s.replace(migration_mask=mask).pinned[j]


def test_snapshot_round_trip_keeps_server_status():
    s = _down_snapshot()
    from wdtnopt import Snapshot
    d = s.to_dict()
    assert d["server_up"] == [True, False, True] and "migration_mask" not in d
    back = Snapshot.from_dict(d)
    assert back.server_up.tolist() == [True, False, True] and back.migration_mask.all()


def test_causal_snapshot_holds_down_servers_and_relaxed_one_only_removes_cpu():
    tr = generate_trace(FAILING, seed=1, slots=200)
    t = int(np.flatnonzero(~tr.server_up.all(axis=1))[0])
    down = ~tr.server_up[t]
    x = np.arange(tr.n_mus) % tr.n_bss
    s = tr.snapshot(t, placement_prev=x)
    held = np.bincount(x, weights=tr.dt_size_bits, minlength=tr.n_bss)
    assert (s.cpu_hz[down] == 0).all() and (s.cpu_hz[~down] == tr.cpu_hz[~down]).all()
    assert np.array_equal(s.storage_bits, np.where(down, held, tr.storage_bits))
    assert np.array_equal(s.migration_mask, ~down[x]) and np.array_equal(s.pinned, down[x])
    r = tr.snapshot(t, placement_prev=x, hold_down_servers=False)
    assert (r.cpu_hz[down] == 0).all() and r.server_up.all() and r.migration_mask.all()
    assert np.array_equal(r.storage_bits, tr.storage_bits)


POLICIES = ("static", "follow", "predictive", "oracle", "lyapunov", "oracle-fa", "lyapunov-fa")


@pytest.mark.parametrize("heal", [1, 0])
def test_no_policy_ever_serves_on_a_down_server(heal):
    """Over seeds: the simulator scores every slot with evaluate (which names serving on a down
    server a violation and the simulator refuses it); here each served MU's host is also checked."""
    from wdtnopt.policies import make_policy

    sc = FAILING.replace(self_healing=heal)
    for seed in (0, 1, 2):
        tr = generate_trace(sc, seed=seed, slots=60)
        assert not tr.server_up.all()
        for name in POLICIES:
            pol = make_policy(name)
            seen = []
            orig = pol.observe

            def observe(snap, ev, orig=orig, seen=seen):
                seen.append(bool((ev.served & ~snap.server_up[snap.placement_prev]).any()))
                assert not [v for v in ev.violations if v.kind in ("server_down", "move_to_down_server")]
                orig(snap, ev)
            pol.observe = observe
            res = simulate(pol, tr)
            assert not any(seen) and len(seen) == tr.slots, name
            if not heal:
                assert res.table["restorations"].sum() == 0


def test_placement_onto_a_down_server_is_refused():
    tr = generate_trace(FAILING, seed=1, slots=200)
    k = FAILING.frame_slots
    t = next(t for t in range(0, tr.slots, k) if not tr.server_up[t].all())
    st = SimState(tr)
    while st.t < t:
        st.advance()
    target = st.placement.copy()
    j = int(np.flatnonzero(~tr.server_up[t])[0])
    i = int(np.flatnonzero(st.placement != j)[0])
    target[i] = j
    with pytest.raises(PolicyError, match="down server"):
        st.apply_placement(target)


def test_self_healing_restores_with_detection_plus_backhaul_transfer():
    sc = FAILING.replace(failure_detection_s=0.7, backup_site=0)
    tr = generate_trace(sc, seed=1, slots=400)
    st = SimState(tr)
    checked = 0
    while st.t < tr.slots - 1:
        prev = st.placement.copy()
        st.advance()
        if not st.restorations_now:
            continue
        t = st.t
        free = {j: tr.storage_bits[j] - tr.dt_size_bits[prev == j].sum() for j in range(tr.n_bss) if tr.server_up[t, j]}
        for i in np.flatnonzero(st.placement != prev):    # restored this slot, in index order
            src, dst = prev[i], st.placement[i]
            assert not tr.server_up[t, src] and tr.server_up[t, dst] and st.restoring[i]
            # target: among up servers with room, the fewest hops from the MU's serving BS, then index
            fits = [j for j in free if free[j] >= tr.dt_size_bits[i]]
            assert dst == min(fits, key=lambda j: (tr.hops[tr.assoc[t, i], j], j))
            free[dst] -= tr.dt_size_bits[i]
            # backup: the server nearest (hops, then index) to the failed host
            backup = min((j for j in range(tr.n_bss) if j != src), key=lambda j: (tr.hops[src, j], j))
            t_rest = 0.7 + tr.backhaul_latency_s[backup, dst] + tr.dt_size_bits[i] * tr.backhaul_s_per_bit[backup, dst]
            assert st.unavailable[i] == max(int(np.ceil(t_rest / sc.slot_s - 1e-9)), 1)
            checked += 1
    assert checked >= 3


def test_self_healing_cuts_server_down_failures_at_mtbf_1000s():
    sc = Scenario.paper(n_mus=10, n_bss=5, server_mtbf_s=1000.0, server_mttr_s=50.0)
    down = {}
    for heal in (1, 0):
        tot = 0
        for seed in range(3):
            tr = generate_trace(sc.replace(self_healing=heal), seed=seed, slots=2000)
            tot += simulate("static", tr).table["fail_server_down"].sum()
        down[heal] = tot
    assert down[0] > 50 and down[1] == 0


def test_speed_predictor_mse_matches_the_ar1_error_variance():
    from wdtnopt.policies.predictive import predict_ar1

    sc = Scenario.paper(n_mus=300)
    tr = generate_trace(sc, seed=3, slots=1500)
    v = tr.speed[200:]     # after the start-up transient (speed starts at its mean)
    for k in (1, 2, 5, 10):
        pred, var = predict_ar1(v[:-k], sc.speed_mean_mps, sc.gm_memory, sc.speed_std_mps, k)
        mse = np.mean((v[k:] - pred) ** 2)
        assert mse == pytest.approx(var, rel=0.03), k


def test_position_predictor_beats_standing_still():
    from wdtnopt.policies.predictive import predict_positions

    sc = Scenario.paper(n_mus=200)
    tr = generate_trace(sc, seed=4, slots=300)
    err_pred, err_stay = [], []
    for t in range(50, 280, 10):
        path = predict_positions(tr.positions[t], tr.speed[t], tr.heading[t], sc, 10)
        err_pred.append(np.linalg.norm(path[10] - tr.positions[t + 10], axis=1).mean())
        err_stay.append(np.linalg.norm(tr.positions[t] - tr.positions[t + 10], axis=1).mean())
    assert np.mean(err_pred) < 0.5 * np.mean(err_stay)


def test_bound_below_every_policy_with_failures_on():
    for seed in (0, 1, 2):
        tr = generate_trace(FAILING.replace(n_mus=5, n_bss=3), seed=seed, slots=30)
        assert not tr.server_up.all()
        results = [simulate(p, tr) for p in ("static", "follow", "predictive", "oracle", "lyapunov")]
        hb = hindsight_bound(tr, iters=4)
        report = gap(results, tr, bound=hb, iters=3)
        for row in report.rows:
            assert row.bound_per_mu_slot <= row.energy_per_mu_slot * (1 + 1e-9), (seed, row)
        assert max(r.bound_per_mu_slot for r in report.rows) > 0


def test_environment_with_failures_costs_by_evaluate_and_exposes_status():
    from wdtnopt.env import core, parallel_env

    sc = Scenario.paper(n_mus=6, n_bss=3, frame_slots=2, server_mtbf_s=5.0, server_mttr_s=3.0)
    env = parallel_env(scenario=sc, seed=0, slots=30)
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    saw_down = 0
    for _ in range(30):
        obs = env._agent_obs() if hasattr(env, "_agent_obs") else None
        before, t = env.sim.placement.copy(), env.sim.t
        up = env.trace.server_up[t]
        acts = {a: env.action_space(a).sample() for a in env.agents}
        acts["controller"] = rng.integers(0, 3, 6)
        if obs is not None:
            avail = np.array([obs[f"mu_{i}"][core.MU_FEATURES.index("available")] for i in range(6)])
            assert not avail[~up[before]].any()          # a DT on a down server is shown unavailable
        power = np.array([float(acts[f"mu_{i}"][0]) for i in range(6)])
        weights = np.stack([acts[f"bs_{j}"] for j in range(3)]).astype(float)
        env.step(acts)
        res = env.last_step
        snap = res.snapshot
        x = snap.placement_prev
        # DTs on down servers stay, none moves onto one
        moved = x != before
        assert not (moved & ~up[before]).any() and not (moved & ~up[x]).any()
        host_up = snap.server_up[x]
        saw_down += int((snap.request & ~host_up & ~snap.migrating).sum())
        active = snap.request & ~snap.migrating & host_up
        wn = np.maximum(weights[x, np.arange(6)], core.WEIGHT_FLOOR) * active
        tot = np.bincount(x, weights=wn, minlength=3)
        cpu = np.where(active, snap.cpu_hz[x] * wn / np.where(tot[x] > 0, tot[x], 1), 0.0)
        ev = evaluate(snap, Decision(placement=x, power=power, cpu_hz=cpu))
        assert np.array_equal(ev.energy, res.evaluation.energy)
        assert np.array_equal(ev.failure_cause, res.evaluation.failure_cause)
        assert (ev.failure_cause[snap.request & ~host_up & ~snap.migrating] == SERVER_DOWN).all()
    assert saw_down > 0


def test_learned_agent_trains_and_runs_with_failures(tmp_path):
    from wdtnopt.agents.trainer import Trainer

    sc = Scenario.paper(n_mus=4, n_bss=2, request_prob=1.0, server_mtbf_s=10.0, server_mttr_s=5.0)
    tr = Trainer("beta-happo", sc, seed=0, config={"n_envs": 2, "rollout_steps": 10})
    tr.train_iteration()
    tr.save(tmp_path / "agent")
    trace = generate_trace(sc, seed=9, slots=40)
    res = simulate(f"checkpoint:{tmp_path / 'agent'}", trace)
    by = res.failure_ratio_by_cause()
    assert by["server_down"] + by["restoring"] > 0     # failures happened, under the agent's placement
    assert res.unavailable[~trace.server_up[np.arange(40)[:, None], res.placement]].all()


def test_predictive_places_dts_before_their_users_cross_cells():
    """At a cell crossing, ``follow`` has its DT on the new cell's server only if the crossing falls
    on a frame start; ``predictive`` moved it there ahead of time in a good share of crossings."""
    for seed in (0, 1, 2):
        tr = generate_trace(Scenario.paper(), seed=seed, slots=300)
        f, nf = simulate("follow", tr).ready_at_handover(tr.assoc)
        p, npred = simulate("predictive", tr).ready_at_handover(tr.assoc)
        assert nf == npred > 20
        assert p > f + 0.2, (seed, f, p)


def test_ready_at_handover_counts_by_hand():
    from wdtnopt.simulation import SimResult

    assoc = np.array([[0, 1], [1, 1], [1, 0], [1, 0]])          # MU 0 crosses at t=1, MU 1 at t=2
    placement = np.array([[0, 1], [1, 1], [1, 1], [1, 0]])     # MU 0's DT there at t=1; MU 1's only at t=3
    res = SimResult("x", 2, 4, {}, np.zeros(2), np.zeros(2), np.zeros(2), placement=placement,
                    unavailable=np.zeros((4, 2), bool))
    assert res.ready_at_handover(assoc) == (0.5, 2)
    res.unavailable[1, 0] = True                               # ... but migrating at the crossing
    assert res.ready_at_handover(assoc) == (0.0, 2)


def test_simulations_without_failures_are_bit_identical_to_before():
    # hash computed with the code before server availability was added (the Lyapunov scheduler of
    # then: empty queues at the start and the one-slot placement, now initial_price=0, placement="slot")
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=3), seed=3, slots=30)
    h = hashlib.sha256()
    for p in ("static", "follow", "oracle", LyapunovPolicy(initial_price=0.0, placement="slot")):
        r = simulate(p, tr)
        for a in (r.energy_per_mu, r.failures_per_mu, r.requests_per_mu, r.table["migrations"], r.table["objective"],
                  r.table["fail_migrating"]):
            h.update(np.ascontiguousarray(a).tobytes())
    assert h.hexdigest()[:16] == "c80092df918f2923"


def test_background_load_takes_its_share_of_the_cpu():
    sc = Scenario.paper(n_mus=4, n_bss=3, background_load_mean=0.3, background_load_std=0.1,
                        background_load_memory=0.8)
    tr = generate_trace(sc, seed=2, slots=4000)
    load = tr.background_load
    assert tr.server_up.all() and (load >= 0).all() and (load <= availability.LOAD_MAX).all()
    assert load.mean() == pytest.approx(0.3, abs=0.01) and load.std() == pytest.approx(0.1, rel=0.05)
    lag1 = np.corrcoef(load[1:].ravel() - 0.3, load[:-1].ravel() - 0.3)[0, 1]
    assert lag1 == pytest.approx(0.8, abs=0.03)
    s = tr.snapshot(17)
    assert np.array_equal(s.cpu_hz, tr.cpu_hz * (1 - load[17]))


SMALL_SUITE = """
base = "smoke"
seeds = [0]
mtbf_grid = [30.0]
run_slots = 60
gap_slots = 10
gap_policies = ["follow", "oracle", "oracle-fa"]
flaky_slots = 30
"""


def test_resilience_suite_on_a_dask_cluster_matches_the_local_run(tmp_path):
    """The suite's tasks on a local Dask cluster (in this process, no worker processes) give the local
    run's results. One thread per worker: training seeds torch's process-wide generator, so two
    learned tasks must not share a process at the same time."""
    import json

    distributed = pytest.importorskip("distributed")
    from wdtnopt.benchmarks.suites import run_suite

    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL_SUITE)
    run_l, files_l = run_suite("resilience", cfg, tmp_path / "local", workers=1, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        run_d, files_d = run_suite("resilience", cfg, tmp_path / "dask", scheduler=client, progress=False)
    assert run_l.complete and run_d.complete and not run_d.reused and files_d
    kinds = {json.loads(p.read_text())["config"]["kind"] for p in (tmp_path / "dask" / "tasks").glob("*.json")}
    assert kinds == {"run", "gap", "flaky", "learned"}
    local = {p.name: json.loads(p.read_text())["result"] for p in (tmp_path / "local" / "tasks").glob("*.json")}
    dask = {p.name: json.loads(p.read_text())["result"] for p in (tmp_path / "dask" / "tasks").glob("*.json")}
    assert local == dask and len(local) == len(run_l.executed)
    assert (tmp_path / "local" / "resilience.csv").read_text() == (tmp_path / "dask" / "resilience.csv").read_text()
    report = (tmp_path / "dask" / "report.md").read_text()
    assert "## Failure-aware placement on flaky servers" in report and "| beta-happo (1 it.) |" in report
