"""The MUs' semantic-level choice in the batched environment and the learned agents: the batched
step with levels against the one-environment reference, the joint (power, level) log-probabilities
against torch's distributions, the level mask, and a short training that must find the cheaper level."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wdtnopt.agents.core import LEVEL, EnvSpec, collect
from wdtnopt.agents.registry import build_agent
from wdtnopt.env import BatchedWdtnEnv, core
from wdtnopt.scenario import Scenario
from wdtnopt.simulation import SimState

# accuracies 1, 0.95, 0.9 against a minimum of 0.92: level 2 is off every MU's menu
MENU = Scenario.paper(n_mus=4, n_bss=2, semantic_levels=3, semantic_min_accuracy=0.92, semantic_cycles_per_bit=2.0)
ALLOWED = np.array([True, True, False])
SMALL = {"n_envs": 2, "rollout_steps": 6, "episode_slots": 8}


@pytest.mark.parametrize("mu_action", ["power", "power_over_need"])
def test_batched_step_with_levels_equals_core_step(mu_action):
    """The batched step at the MUs' levels (at_levels_arrays) against core.step of each environment
    (Snapshot.at_levels and evaluate); a masked level means level 0."""
    e_, slots = 3, 6
    benv = BatchedWdtnEnv(MENU, n_envs=e_, seed=4, slots=slots, mu_action=mu_action)
    benv.reset()
    ref = [SimState(benv.sims[e].trace) for e in range(e_)]
    rng = np.random.default_rng(2)
    saw_level, saw_extraction = False, False
    for _ in range(slots - 1):
        p = rng.uniform(0, MENU.p_max_w, (e_, 4)) if mu_action == "power" else rng.uniform(1.0, 1.2, (e_, 4))
        w, h = rng.uniform(0, 1, (e_, 2, 4)), rng.integers(0, 2, (e_, 4))
        lv = rng.integers(0, 3, (e_, 4))
        _, rew, _, info = benv.step(p, w, h, lv)
        for e, sim in enumerate(ref):
            want_lv = np.where(ALLOWED[lv[e]], lv[e], 0)
            res = core.step(sim, p[e], w[e], h[e], want_lv, mu_action=mu_action)
            assert rew[e] == pytest.approx(res.reward, rel=1e-12, abs=1e-15)
            assert info["energy_j"][e] == pytest.approx(res.evaluation.energy_total, rel=1e-12, abs=1e-18)
            assert np.array_equal(info["mu_used"][e], res.mu_used)
            snap = res.snapshot
            assert np.array_equal(info["level_used"][e], snap.request & ~snap.migrating & snap.host_up)
            tx = res.evaluation.power > 0
            saw_level |= bool((want_lv[tx] > 0).any())
            # a transmitting MU pays its level's extraction energy on top of its radio energy
            ext = snap.extraction_energy_j[np.arange(4), want_lv]
            saw_extraction |= bool((ext[tx] > 0).any())
    assert saw_level and saw_extraction


def _agent(algo: str, **cfg):
    conf = dict(SMALL, **cfg)
    if algo != "maddpg":
        conf.setdefault("ppo_epochs", 2)
    return build_agent(algo, MENU, conf, 3)


@pytest.mark.parametrize("algo,credit,action_map", [("beta-happo", "local", "structured"), ("gaussian-happo", "team", "raw"),
                                                    ("beta-mappo", "local", "structured")])
def test_joint_power_level_log_probabilities_are_exact(algo, credit, action_map):
    """The stored old log-probability of a MU is log p(power) + log p(level) over the entries that took
    effect, recomputed here with torch.distributions (Beta / Normal) and a masked log-softmax; the
    algorithm's own recomputation (HAPPO per agent, MAPPO per group) gives the same values."""
    ag = _agent(algo, credit=credit, action_map=action_map)
    env = BatchedWdtnEnv(MENU, 2, 0, 8, mu_action=ag.spec.mu_action)
    buf, _, _ = collect(ag.actors, ag.values, env, env.reset(), ag.spec, 6)
    acts = buf.act[LEVEL][..., 0]
    assert ALLOWED[acts.numpy()].all() and (acts == 1).any() and (acts == 0).any()
    grp, lgrp = ag.actors["mu"], ag.actors[LEVEL]
    with torch.no_grad():
        obs = buf.obs["mu"].reshape(-1, 4, buf.obs["mu"].shape[-1]).transpose(0, 1)       # [A, B, d]
        out = grp.output(obs)
        u = buf.act["mu"].reshape(-1, 4, 1).transpose(0, 1)
        if grp.head == "beta":
            d = torch.distributions.Beta(1 + F.softplus(out[..., :1]), 1 + F.softplus(out[..., 1:]))
            lp_power = d.log_prob(u.clamp(1e-6, 1 - 1e-6))[..., 0]
        else:
            d = torch.distributions.Normal(out + 0.5, grp.log_std_of(None).exp().expand_as(out))
            lp_power = d.log_prob(u)[..., 0]
        logits = lgrp.output(obs).masked_fill(~torch.from_numpy(ALLOWED), float("-inf"))
        lv = buf.act[LEVEL].reshape(-1, 4, 1).transpose(0, 1)
        lp_level = torch.log_softmax(logits, -1).gather(-1, lv)[..., 0]
        used = buf.used["mu"].reshape(-1, 4).T
        lused = buf.used[LEVEL].reshape(-1, 4).T
        want = (lp_power * used + lp_level * lused).T.reshape(buf.logp["mu"].shape)
    assert (lused >= used).all()   # a MU whose power took effect chose its level too
    assert torch.allclose(buf.logp["mu"], want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        if algo == "beta-mappo":
            new, old, _ = ag.group_log_prob(buf, "mu", slice(None), entropy=False)
            assert torch.equal(old, buf.logp["mu"].reshape(-1, 4).T)
            assert torch.allclose(new, old, rtol=1e-5, atol=1e-5)
        else:
            for i in range(4):
                batch = ag.agent_batch(buf, "mu", i)
                new, _ = ag.log_prob_one("mu", i, batch, entropy=False)
                assert torch.allclose(new, batch["logp"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algo", ["beta-happo", "beta-mappo", "maddpg"])
def test_level_mask_is_respected(algo):
    """Sampled, deterministic and (MADDPG) replayed levels never leave the MU's menu, even when the
    level head's logits favour the masked level."""
    ag = _agent(algo, **({"warmup_steps": 4, "batch_size": 8, "updates_per_iteration": 1} if algo == "maddpg" else {}))
    with torch.no_grad():   # push every MU's logits towards the masked level 2
        ag.actors[LEVEL].net._out[1][..., 2] += 50.0
    env = BatchedWdtnEnv(MENU, 2, 0, 8, mu_action=ag.spec.mu_action)
    obs = env.reset()
    for det in (True, False, False, False):
        lv = ag.act(obs, deterministic=det)[LEVEL]
        assert lv.shape == (2, 4, 1) and ALLOWED[lv].all()
    obs, _ = ag.iterate(env, obs)
    if algo == "maddpg":
        assert ALLOWED[ag.buffer.act_level[: ag.buffer.size]].all()


def test_menu_of_one_level_trains_bit_for_bit_as_no_menu():
    """A menu of one level gives no level head: the spec, the networks and one training iteration are
    those of the scenario without a menu, bit for bit."""
    plain, one = Scenario.paper(n_mus=3, n_bss=2), Scenario.paper(n_mus=3, n_bss=2, semantic_levels=1)
    assert EnvSpec.from_scenario(one) == EnvSpec.from_scenario(plain)
    states = []
    for sc in (plain, one):
        ag = build_agent("beta-happo", sc, dict(SMALL, ppo_epochs=1), 0)
        env = BatchedWdtnEnv(sc, 2, 0, 8, mu_action=ag.spec.mu_action)
        ag.iterate(env, env.reset())
        states.append(ag.actors.state_dict())
    assert LEVEL not in dict(build_agent("beta-happo", one, {}, 0).actors)
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


# deeper levels send less data at no extraction cost: strictly cheaper; level 2 is masked (accuracy 0.9
# below 0.92), so the best level every MU may choose is level 1
CHEAP = Scenario.paper(n_mus=3, n_bss=2, semantic_levels=3, semantic_min_accuracy=0.92, semantic_cycles_per_bit=0.0,
                       semantic_ratio_min=0.01)


def test_cheaper_level_is_strictly_better_by_hand():
    """The hand-built case: at the same power, level 1 sends a tenth of the data with no extraction,
    so each transmitting MU spends less energy (and meets its deadline at least as often)."""
    env = BatchedWdtnEnv(CHEAP, 1, 0, 20)
    env.reset()
    st = env.get_state()
    totals = {}
    for lv in (0, 1):
        env.set_state(st)
        e = 0.0
        for _ in range(10):
            _, _, _, info = env.step(np.full((1, 3), 0.05), np.ones((1, 2, 3)), np.zeros((1, 3), int), np.full((1, 3), lv))
            e += info["energy_j"][0]
        totals[lv] = e
    assert totals[1] < 0.5 * totals[0]


@pytest.mark.parametrize("algo", ["beta-happo", "beta-mappo"])
def test_short_training_learns_the_cheaper_level(algo):
    """Beta-HAPPO / Beta-MAPPO on CHEAP: after a short training every MU's deterministic level is 1
    (the cheapest level on its menu), starting from a nearly uniform level head."""
    ag = build_agent(algo, CHEAP, {"n_envs": 4, "rollout_steps": 10, "episode_slots": 10, "ppo_epochs": 5,
                                           "action_map": "structured", "credit": "local"}, 0)
    env = BatchedWdtnEnv(CHEAP, 4, 0, 10, mu_action=ag.spec.mu_action)
    obs = env.reset()
    probs = []
    for _ in range(6):
        obs, _ = ag.iterate(env, obs)
        with torch.no_grad():
            go = torch.from_numpy(obs.mu.transpose(1, 0, 2).copy())
            p = torch.softmax(ag.actors[LEVEL].output(go).masked_fill(~torch.tensor([True, True, False]), -1e9), -1)
        probs.append(float(p[..., 1].mean()))
    assert ALLOWED[ag.act(obs)[LEVEL]].all()
    assert (ag.act(obs)[LEVEL] == 1).all()
    assert probs[-1] > 0.9 and probs[-1] > probs[0]


def test_checkpoint_with_levels_simulates_as_the_env(tmp_path):
    """A checkpoint trained on a menu scenario acts with levels in ``simulate`` exactly as the same
    agent's (power, level) actions in the PettingZoo env."""
    from wdtnopt import simulate
    from wdtnopt.agents.checkpoint import CheckpointPolicy
    from wdtnopt.agents.core import to_env
    from wdtnopt.agents.trainer import Trainer
    from wdtnopt.env import BatchObs, parallel_env
    from wdtnopt.trace import generate_trace
    tr = Trainer("maddpg", MENU, seed=0, config={**SMALL, "action_map": "raw", "warmup_steps": 4, "batch_size": 8,
                                                   "updates_per_iteration": 1})
    tr.train_iteration()
    tr.save(tmp_path)
    trace = generate_trace(MENU, seed=7, slots=8)
    res = simulate(f"checkpoint:{tmp_path}", trace)
    pol = CheckpointPolicy(tmp_path)
    env = parallel_env(scenario=MENU, slots=8)
    env.reset(seed=7)
    energies, levels = [], []
    while env.agents:
        obs = BatchObs.stack([core.observe(env.features, env.sim)])
        power, weights, hosts, level = to_env(pol.agent.act(obs, deterministic=True), pol.agent.spec)
        acts = {f"mu_{i}": {"power": power[0, i:i + 1], "level": int(level[0, i])} for i in range(4)}
        acts.update({f"bs_{j}": weights[0, j] for j in range(2)})
        acts["controller"] = hosts[0]
        env.step(acts)
        energies.append(env.last_step.evaluation.energy_total)
        levels.append(level[0])
    assert ALLOWED[np.array(levels)].all()
    assert np.allclose(res.table["energy_j"], energies, rtol=1e-12, atol=0)


@pytest.mark.parametrize("other", [dict(), dict(semantic_levels=5), dict(semantic_min_accuracy=1.0)],
                         ids=["no-menu", "five-levels", "other-min-accuracy"])
def test_checkpoint_refuses_a_trace_with_another_menu(tmp_path, other):
    """A checkpoint whose MUs choose among the levels of its menu is refused, in one error naming the
    menu, on a trace whose menu differs (its level indices would mean other levels, or levels off
    the MUs' menus), as it is for another N or M; the same menu runs."""
    from wdtnopt import simulate
    from wdtnopt.agents.trainer import Trainer
    from wdtnopt.errors import WdtnoptError
    from wdtnopt.trace import generate_trace
    tr = Trainer("maddpg", MENU, seed=0, config={**SMALL, "action_map": "raw", "warmup_steps": 4, "batch_size": 8,
                                                   "updates_per_iteration": 1})
    tr.train_iteration()
    tr.save(tmp_path)
    simulate(f"checkpoint:{tmp_path}", generate_trace(MENU, seed=1, slots=3))
    fields = {k: getattr(MENU, k) for k in ("n_mus", "n_bss", "semantic_cycles_per_bit")}
    if other:
        fields.update(semantic_levels=3, semantic_min_accuracy=0.92)
    fields.update(other)
    with pytest.raises(WdtnoptError, match="semantic_levels"):
        simulate(f"checkpoint:{tmp_path}", generate_trace(Scenario.paper(**fields), seed=1, slots=3))
