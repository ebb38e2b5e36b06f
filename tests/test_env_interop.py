"""The environment with the tools people already use: PettingZoo's own tests (AEC conversion, seeds,
rendering), Gymnasium's masked sampling, TorchRL's ``PettingZooWrapper`` (docs/env.md, "Interop")."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, render_test, seed_test
from pettingzoo.utils.conversions import parallel_to_aec

from wdtnopt import Scenario, WdtnoptError
from wdtnopt.env import env, parallel_env

SIZES = [pytest.param(Scenario.paper(n_mus=4, n_bss=2, frame_slots=3), id="N4"),
         pytest.param(Scenario.paper(n_mus=30, n_bss=5, frame_slots=3), id="N30")]


def _actions(e):
    """A random action of every live agent (the spaces' own samplers)."""
    return {a: e.action_space(a).sample() for a in e.agents}


@pytest.mark.parametrize("sc", SIZES)
def test_pettingzoo_suite(sc):
    api_test(parallel_to_aec(parallel_env(scenario=sc, seed=0, slots=7)), num_cycles=20)
    api_test(env(scenario=sc, seed=0, slots=7), num_cycles=20)
    seed_test(lambda: env(scenario=sc, seed=0, slots=7), num_cycles=20)
    render_test(lambda render_mode=None: env(scenario=sc, seed=0, slots=7, render_mode=render_mode))
    parallel_api_test(parallel_env(scenario=sc, seed=0, slots=7), num_cycles=20)
    parallel_seed_test(lambda: parallel_env(scenario=sc, seed=0, slots=7), num_cycles=20)


@pytest.mark.parametrize("sc", SIZES)
def test_controller_mask_in_gymnasium_form_and_respected(sc):
    n, m = sc.n_mus, sc.n_bss
    e = parallel_env(scenario=Scenario.paper(n_mus=n, n_bss=m, frame_slots=3, storage_factor=1.0), slots=9)
    _, infos = e.reset(seed=1)
    space = e.action_space("controller")
    space.seed(0)
    restricted = 0
    for _ in range(9):
        mask = infos["controller"]["action_mask"]
        assert isinstance(mask, tuple) and len(mask) == n
        assert all(r.dtype == np.int8 and r.shape == (m,) for r in mask)
        want = np.stack(mask).astype(bool)
        x, t = e.sim.placement, e.sim.t
        # the rule of docs/env.md: the host is always allowed; off frame starts only the host
        assert want[np.arange(n), x].all()
        if t % 3:
            assert np.array_equal(want, np.eye(m, dtype=bool)[x])
        else:
            assert (want[e.sim.unavailable > 0].sum(1) == 1).all()      # a migrating DT stays
        restricted += int((~want).sum())
        for _ in range(20):
            a = space.sample(mask=mask)
            assert want[np.arange(n), a].all()
        acts = _actions(e)
        _, _, _, _, infos = e.step(acts)
    assert restricted > 0           # the check above could have failed


@pytest.mark.parametrize("n,m", [(4, 2), (30, 5), (7, 1)])
def test_every_observation_value_has_a_named_range(n, m):
    from wdtnopt.env import core
    from wdtnopt.env.core import obs_dims
    from wdtnopt.env.spaces import FEATURE_BOUNDS, named_layout

    layout = named_layout(n, m)
    assert {k: len(v) for k, v in layout.items()} == obs_dims(n, m)
    names = core.MU_FEATURES + core.BS_DT_FEATURES + core.BS_FEATURES + core.CTRL_DT_FEATURES + core.CTRL_FEATURES
    assert [k for k in names if k not in FEATURE_BOUNDS] == []      # every feature has its range
    unbounded = [k for k, (lo, hi) in FEATURE_BOUNDS.items() if not (np.isfinite(lo) and np.isfinite(hi))]
    assert sorted(unbounded) == ["log10_noise_rise_over_3", "log10_snr_at_pmax_over_5"]


@pytest.mark.parametrize("sc", SIZES)
def test_observations_lie_in_their_bounded_spaces(sc):
    e = parallel_env(scenario=sc, slots=12)
    obs, _ = e.reset(seed=4)
    for k, a in enumerate(e.possible_agents):
        e.action_space(a).seed(k)
    low = e.observation_space("mu_0").low
    assert np.isfinite(low).all() and np.isfinite(e.observation_space("bs_0").high).all()
    assert np.isfinite(e.observation_space("controller").high).all()
    while e.agents:
        for a, o in obs.items():
            assert e.observation_space(a).contains(o), a
        assert e.state_space.contains(e.state())
        obs, *_ = e.step(_actions(e))


def test_render_mode_validated_and_frame_shows_the_slot():
    sc = Scenario.paper(n_mus=8, n_bss=3, frame_slots=2)
    with pytest.raises(WdtnoptError, match="render_mode.*'bogus'"):
        parallel_env(scenario=sc, render_mode="bogus")
    assert parallel_env(scenario=sc).render() is None          # no render mode: nothing drawn
    e = parallel_env(scenario=sc, slots=6, render_mode="rgb_array")
    with pytest.raises(WdtnoptError, match="before reset"):
        e.render()
    e.reset(seed=2)
    first = e.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    rng = np.random.default_rng(0)
    moved = failed = 0
    while e.agents:
        acts = _actions(e)
        acts["controller"] = rng.integers(0, 3, 8)
        acts.update({f"mu_{i}": np.array([rng.uniform(0, 2e-3)], np.float32) for i in range(8)})  # too low: fails
        before = e.sim.placement.copy()
        e.step(acts)
        fr, res = e._frame, e.last_step
        assert np.array_equal(fr.failed, res.evaluation.failed)
        assert int((fr.moved_from >= 0).sum()) == res.migrations
        assert np.array_equal(fr.moved_from[fr.moved_from >= 0], before[fr.moved_from >= 0])
        moved += res.migrations
        failed += int(fr.failed.sum())
        assert e.render().shape == first.shape
    assert moved > 0 and failed > 0
    assert not np.array_equal(first, e.render())


def test_strict_action_check_names_agents_and_opt_out():
    sc = Scenario.paper(n_mus=4, n_bss=2, frame_slots=3)
    e = parallel_env(scenario=sc, slots=5)
    e.reset(seed=0)
    acts = _actions(e)
    with pytest.raises(WdtnoptError, match=r"no action for agent\(s\) 'mu_2', 'bs_1'"):
        e.step({a: v for a, v in acts.items() if a not in ("mu_2", "bs_1")})
    with pytest.raises(WdtnoptError, match=r"unknown agent\(s\) 'mu_7', 'contoller'"):
        e.step({**acts, "mu_7": acts["mu_0"], "contoller": acts["controller"]})
    with pytest.raises(WdtnoptError, match=r"actions\['bs_0'\]: expected 4 value"):
        e.step({**acts, "bs_0": np.ones(3)})
    with pytest.raises(WdtnoptError, match="expected a dict"):
        e.step([acts])
    assert e.sim.t == 0                               # nothing was stepped
    # opt-out: a missing agent takes the neutral action (power 0, weights 1, stay)
    lax = parallel_env(scenario=sc, slots=5, strict_actions=False)
    ref = parallel_env(scenario=sc, slots=5)
    lax.reset(seed=0)
    ref.reset(seed=0)
    neutral = {**acts, "mu_1": np.zeros(1), "bs_0": np.ones(4), "controller": ref.sim.placement.copy()}
    _, r_lax, *_ = lax.step({a: v for a, v in acts.items() if a not in ("mu_1", "bs_0", "controller")})
    _, r_ref, *_ = ref.step(neutral)
    assert r_lax == r_ref and np.array_equal(lax.sim.placement, ref.sim.placement)
    with pytest.raises(WdtnoptError, match="unknown agent"):
        lax.step({"mu_9": np.zeros(1)})


def test_every_info_key_present_from_reset():
    e = parallel_env(scenario=Scenario.paper(n_mus=5, n_bss=2), slots=3)
    _, at_reset = e.reset(seed=1)
    _, _, _, _, at_step = e.step(_actions(e))
    for a in e.possible_agents:
        assert at_reset[a].keys() == at_step[a].keys()
        for k in at_reset[a]:
            r, s = at_reset[a][k], at_step[a][k]
            assert type(r) is type(s) and np.shape(r) == np.shape(s), (a, k)
    assert at_reset["mu_0"]["energy_j"] == 0.0 and at_reset["bs_1"]["action_used"].sum() == 0


def test_max_cycles_alias_and_aec_equals_parallel():
    sc = Scenario.paper(n_mus=4, n_bss=2, frame_slots=2)
    assert parallel_env(scenario=sc, max_cycles=6).slots == 6 and parallel_env(scenario=sc).slots == 100
    with pytest.raises(WdtnoptError, match="max_cycles: an alias"):
        parallel_env(scenario=sc, slots=5, max_cycles=6)
    with pytest.raises(WdtnoptError, match="max_cycles: expected an integer >= 1, got 0"):
        parallel_env(scenario=sc, max_cycles=0)
    aec, par = env(scenario=sc, max_cycles=6), parallel_env(scenario=sc, max_cycles=6)
    aec.reset(seed=3)
    par.reset(seed=3)
    rng = np.random.default_rng(5)
    rewards = []
    while par.agents:
        acts = {a: par.action_space(a).sample() for a in par.agents}
        acts["controller"] = rng.integers(0, 2, 4)
        for a in aec.agent_iter(len(par.agents)):
            aec.step(acts[a])
        _, r, *_ = par.step(acts)
        rewards.append(r["controller"])
        assert aec.rewards["controller"] == r["controller"]
    assert len(rewards) == 6
    assert all(aec.truncations.values())


@pytest.mark.parametrize("sc", SIZES)
def test_torchrl_wrapper_specs_and_masked_rollout(sc):
    pytest.importorskip("torchrl", reason="TorchRL not installed (extras 'interop')")
    import torch
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    tenv = PettingZooWrapper(parallel_env(scenario=sc, seed=0, slots=8), return_state=True, use_mask=True,
                             categorical_actions=True)
    assert set(tenv.group_map) == {"mu", "bs", "controller"}
    check_env_specs(tenv, seed=0)
    td = tenv.rollout(12, break_when_any_done=False)      # crosses an automatic reset
    hosts = td["controller", "action"][:, 0]              # [T, N]
    mask = td["controller", "action_mask"][:, 0]          # [T, N, M]
    assert mask.shape[1:] == (sc.n_mus, sc.n_bss) and not mask.all()
    assert torch.gather(mask, 2, hosts[..., None]).all()  # random actions drawn within the mask
    assert td["next", "mu", "info", "energy_j"].shape == (12, sc.n_mus)


@pytest.mark.parametrize("sc", SIZES)
def test_team_env_for_single_agent_libraries(sc):
    from gymnasium.utils.env_checker import check_env

    from wdtnopt.env import TeamEnv

    n, m = sc.n_mus, sc.n_bss
    check_env(TeamEnv(sc, seed=0, slots=6), skip_render_check=True)
    team, par = TeamEnv(sc, slots=6), parallel_env(scenario=sc, slots=6)
    state, info = team.reset(seed=2)
    par.reset(seed=2)
    assert np.array_equal(state, par.state())
    rng = np.random.default_rng(0)
    done = False
    while not done:
        a = rng.uniform(-1, 1, team.action_space.shape).astype(np.float32)
        acts = team.decode(a)
        hosts = acts["controller"]
        assert info["action_mask"][np.arange(n), hosts].all()          # decoded within the mask
        scores = a[n + m * n:].reshape(n, m)
        assert (scores[np.arange(n), hosts] >= np.where(info["action_mask"], scores, -2).max(1)).all()
        assert np.allclose(acts["mu_0"], (a[0] + 1) / 2 * sc.p_max_w)
        state, r, term, done, info = team.step(a)
        _, r_par, *_ = par.step(acts)
        assert r == r_par["controller"] and not term
        assert np.array_equal(state, par.state())


def test_stable_baselines3_trains_the_team_env():
    pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 not installed (extras 'interop')")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env

    from wdtnopt.env import TeamEnv

    sc = Scenario.paper(n_mus=4, n_bss=2, frame_slots=3)
    check_env(TeamEnv(sc, seed=0, slots=8))
    model = PPO("MlpPolicy", TeamEnv(sc, seed=0, slots=8), n_steps=32, batch_size=16, n_epochs=1, seed=0,
                device="cpu")
    model.learn(64)
    assert model.num_timesteps == 64


def test_torchrl_policy_per_group_with_masked_controller():
    """The training set-up of docs/env.md: one policy per group, the controller's a MaskedCategorical
    on the mask; its rollout stays in the mask and its log-likelihood carries a gradient."""
    pytest.importorskip("torchrl", reason="TorchRL not installed (extras 'interop')")
    import torch
    from tensordict.nn import TensorDictModule, TensorDictSequential
    from torch import nn
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.modules import MaskedCategorical, ProbabilisticActor

    sc = Scenario.paper(n_mus=4, n_bss=2, frame_slots=3)
    n, m = sc.n_mus, sc.n_bss
    tenv = PettingZooWrapper(parallel_env(scenario=sc, seed=0, slots=8), use_mask=True, categorical_actions=True)
    dim = {g: tenv.observation_spec[g, "observation"].shape[-1] for g in ("mu", "bs", "controller")}

    def bounded(group, d_out, high):
        net = nn.Sequential(nn.Linear(dim[group], d_out), nn.Sigmoid())
        return TensorDictModule(lambda x: net(x) * high, in_keys=[(group, "observation")], out_keys=[(group, "action")])

    logits = nn.Linear(dim["controller"], n * m)
    ctrl = ProbabilisticActor(
        TensorDictModule(lambda x: logits(x).unflatten(-1, (n, m)), in_keys=[("controller", "observation")],
                         out_keys=[("controller", "logits")]),
        in_keys={"logits": ("controller", "logits"), "mask": ("controller", "action_mask")},
        out_keys=[("controller", "action")], distribution_class=MaskedCategorical, return_log_prob=True,
        log_prob_key=("controller", "log_prob"))
    policy = TensorDictSequential(bounded("mu", 1, sc.p_max_w), bounded("bs", n, 1.0), ctrl)
    td = tenv.rollout(12, policy=policy, break_when_any_done=False)
    hosts, mask = td["controller", "action"][:, 0], td["controller", "action_mask"][:, 0]
    assert torch.gather(mask, 2, hosts[..., None]).all() and not mask.all()
    assert (td["mu", "action"] <= sc.p_max_w).all() and (td["bs", "action"] <= 1).all()
    (td["controller", "log_prob"].sum() * td["next", "controller", "reward"].sum()).backward()
    assert logits.weight.grad.abs().sum() > 0
