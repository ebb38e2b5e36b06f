"""The PettingZoo environment: API conformance, batched == single, cost == evaluate."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from wdtnopt import Decision, Scenario, evaluate
from wdtnopt.env import BatchedWdtnEnv, episode_seed, obs_dims, parallel_env
from wdtnopt.env import core

TINY = Scenario.paper(n_mus=4, n_bss=2, frame_slots=3)


def test_parallel_api():
    parallel_api_test(parallel_env(scenario=TINY, seed=0, slots=20), num_cycles=60)
    parallel_api_test(parallel_env(scenario=Scenario.paper(n_mus=7, n_bss=3), seed=1, slots=12), num_cycles=30)


def test_spaces_and_state():
    env = parallel_env(scenario=TINY, seed=0, slots=5)
    obs, infos = env.reset(seed=3)
    d = obs_dims(4, 2)
    assert obs["mu_0"].shape == (d["mu"],) and obs["bs_1"].shape == (d["bs"],)
    assert obs["controller"].shape == (d["controller"],) and env.state().shape == (d["state"],)
    assert env.action_space("controller").nvec.tolist() == [2] * 4
    assert len(infos["controller"]["action_mask"]) == 4 and infos["controller"]["action_mask"][0].shape == (2,)
    assert env.state_space.contains(env.state())


def _random_actions(rng, e_, n, m, p_max):
    return rng.uniform(0, p_max, (e_, n)), rng.uniform(0, 1, (e_, m, n)), rng.integers(0, m, (e_, n))


@pytest.mark.parametrize("sc", [TINY, TINY.replace(server_mtbf_s=4.0, server_mttr_s=2.0, background_load_mean=0.2,
                                                   background_load_std=0.1)], ids=["plain", "server-failures"])
def test_batched_equals_single_step_for_step(sc):
    TINY = sc
    e_, slots = 3, 7
    benv = BatchedWdtnEnv(TINY, n_envs=e_, seed=11, slots=slots)
    bobs = benv.reset()
    singles = [parallel_env(scenario=TINY, slots=slots) for _ in range(e_)]
    sobs = [s.reset(seed=episode_seed(11, e, 0))[0] for e, s in enumerate(singles)]
    rng = np.random.default_rng(0)
    episode = np.zeros(e_, int)
    for _ in range(2 * slots + 3):          # crosses two automatic resets
        for e, s in enumerate(singles):
            assert np.array_equal(bobs.mu[e], np.stack([sobs[e][f"mu_{i}"] for i in range(4)]))
            assert np.array_equal(bobs.bs[e], np.stack([sobs[e][f"bs_{j}"] for j in range(2)]))
            assert np.array_equal(bobs.controller[e], sobs[e]["controller"])
            assert np.array_equal(bobs.state[e], s.state())
        p, w, h = _random_actions(rng, e_, 4, 2, TINY.p_max_w)
        bobs, rew, done, info = benv.step(p, w, h)
        assert not info["final_bs"][~done].any() and not info["final_ctrl_mask"][~done].any()   # zeros
        for e, s in enumerate(singles):
            # the same float64 actions as the batched env got
            acts = {f"mu_{i}": np.array([p[e, i]]) for i in range(4)}
            acts.update({f"bs_{j}": w[e, j] for j in range(2)})
            acts["controller"] = h[e]
            o, r, term, trunc, inf = s.step(acts)
            assert r["controller"] == rew[e]
            assert info["energy_j"][e] == s.last_step.evaluation.energy_total
            assert np.array_equal(info["mu_used"][e], s.last_step.mu_used)
            assert trunc["controller"] == done[e]
            if done[e]:   # the terminal observations, as the single env's last step gives them
                assert np.array_equal(info["final_state"][e], s.state())
                assert np.array_equal(info["final_bs"][e], np.stack([o[f"bs_{j}"] for j in range(2)]))
                assert np.array_equal(info["final_ctrl_mask"][e].astype(np.int8),
                                      np.stack(inf["controller"]["action_mask"]))
                episode[e] += 1
                o, _ = s.reset(seed=episode_seed(11, e, episode[e]))
            sobs[e] = o


def test_env_cost_equals_evaluate():
    env = parallel_env(scenario=Scenario.paper(n_mus=6, n_bss=3, frame_slots=2), seed=0, slots=10)
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    sc = env.scenario
    for _ in range(10):
        acts = {a: env.action_space(a).sample() for a in env.agents}
        power = np.array([float(acts[f"mu_{i}"][0]) for i in range(6)])
        weights = np.stack([acts[f"bs_{j}"] for j in range(3)]).astype(float)
        _, rew, _, _, _ = env.step(acts)
        res = env.last_step
        snap = res.snapshot
        # independent decision: CPU shares by the documented rule, power as given
        x = snap.placement_prev
        active = snap.request & ~snap.migrating
        wn = np.maximum(weights[x, np.arange(6)], core.WEIGHT_FLOOR) * active
        tot = np.bincount(x, weights=wn, minlength=3)
        cpu = np.where(active, snap.cpu_hz[x] * wn / np.where(tot[x] > 0, tot[x], 1), 0.0)
        ev = evaluate(snap, Decision(placement=x, power=power, cpu_hz=cpu))
        assert np.allclose(ev.energy, res.evaluation.energy, rtol=1e-12, atol=0)
        assert np.array_equal(ev.failed, res.evaluation.failed)
        want = -np.sum(np.where(snap.request, ev.energy, 0) / sc.energy_ref_j + sc.eta * ev.failed) / 6
        assert rew["mu_0"] == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert not [v for v in ev.violations if v.kind != "deadline"]
        rng.random()


def test_controller_repair_keeps_storage_and_pins_migrating():
    sc = Scenario.paper(n_mus=8, n_bss=2, frame_slots=1, storage_factor=1.0)
    env = parallel_env(scenario=sc, seed=0, slots=12)
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(12):
        before = env.sim.placement.copy()
        migrating = env.sim.unavailable > 0
        acts = {a: env.action_space(a).sample() for a in env.agents}
        acts["controller"] = rng.integers(0, 2, 8)
        env.step(acts)
        tr = env.trace
        load = np.bincount(env.sim.placement, weights=tr.dt_size_bits, minlength=2)
        assert (load <= tr.storage_bits * (1 + 1e-9)).all()
        assert np.array_equal(env.sim.placement[migrating], before[migrating])


def test_import_wdtnopt_env_does_not_import_torch():
    code = "import wdtnopt, wdtnopt.env, sys; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_mu_power_needed_feature_matches_physics():
    from wdtnopt.env.core import MU_FEATURES, Features, observe
    from wdtnopt.physics import power_for_time
    from wdtnopt.simulation import SimState
    from wdtnopt.trace import generate_trace
    sc = Scenario.paper(n_mus=12, n_bss=3)
    tr = generate_trace(sc, seed=3, slots=4)
    state = SimState(tr)
    feat = Features(tr)
    obs = observe(feat, state)
    f = dict(zip(MU_FEATURES, obs.mu.T))
    x, idx = state.placement, np.arange(sc.n_mus)
    active = tr.request[0] & (state.unavailable == 0)
    k = np.bincount(x[active], minlength=sc.n_bss)
    share = tr.cpu_hz[x] / np.maximum(k[x] + (~active), 1)
    relay = feat.relay[0, idx, x]
    t_tx = tr.deadline - relay - feat.cycles[0] / share
    g = tr.gain[0, idx, tr.assoc[0]]
    p_need = power_for_time(t_tx, tr.data_bits[0], tr.bandwidth[0], tr.noise_psd[0], g)
    ref = np.clip(np.log10(p_need / tr.p_max) / 5.0, -1.0, 0.2)
    assert np.allclose(f["log10_power_needed_over_pmax_over_5"], ref, atol=1e-9)
    assert (obs.mu >= -1).all()


def test_batched_step_equals_core_step_when_environments_are_out_of_step():
    """The vectorized batched step against the reference (core.step + core.observe per environment),
    with the environments at different slots (after set_state), across frame starts and a reset."""
    from wdtnopt.simulation import SimState
    e_, slots = 3, 8
    benv = BatchedWdtnEnv(TINY, n_envs=e_, seed=5, slots=slots)
    benv.reset()
    st = benv.get_state()
    st["t"] = [0, 2, 5]
    benv.set_state(st)
    ref = []
    for e in range(e_):    # the same traces, stepped one at a time by the reference functions
        sim = SimState(benv.sims[e].trace)
        sim.t = st["t"][e]
        ref.append((sim, core.Features(sim.trace)))
    rng = np.random.default_rng(3)
    for _ in range(slots - 2):
        p, w, h = _random_actions(rng, e_, 4, 2, TINY.p_max_w)
        obs, rew, done, info = benv.step(p, w, h)
        for e, (sim, feat) in enumerate(ref):
            res = core.step(sim, p[e], w[e], h[e])
            assert rew[e] == res.reward and info["energy_j"][e] == res.evaluation.energy_total
            assert np.array_equal(info["bs_used"][e], res.bs_used) and info["ctrl_used"][e] == res.ctrl_used
            o = core.observe(feat, sim)
            if done[e]:
                assert np.array_equal(info["final_state"][e], o.state.astype(np.float32))
                assert np.array_equal(info["final_bs"][e], o.bs.astype(np.float32))
                assert np.array_equal(info["final_ctrl_mask"][e], o.ctrl_mask)
                sim = SimState(benv.sims[e].trace)          # the next episode's trace
                ref[e] = (sim, core.Features(sim.trace))
                o = core.observe(ref[e][1], sim)
            assert np.array_equal(obs.mu[e], o.mu.astype(np.float32))
            assert np.array_equal(obs.state[e], o.state.astype(np.float32))
            assert np.array_equal(obs.ctrl_mask[e], o.ctrl_mask)
    assert benv.episode.tolist() == [0, 1, 1]
