"""Learned agents: heads against scipy, stacked networks, the HAPPO factor, checkpoints."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

from rollouts import random_rollout
from wdtnopt import Scenario, WdtnoptError, generate_trace, simulate
from wdtnopt.agents.checkpoint import CHECKPOINT_FILE, CheckpointPolicy
from wdtnopt.agents.core import (ActorGroup, EnvSpec, StackedAdam, StackedMLP, TYPES, gae, power_fraction, to_env)
from wdtnopt.agents.happo import HAPPO, HAPPOConfig
from wdtnopt.agents.trainer import Trainer
from wdtnopt.env import BatchObs, parallel_env
from wdtnopt.env import core as env_core

TINY = Scenario.paper(n_mus=3, n_bss=2, frame_slots=4)
FAST = {"n_envs": 2, "rollout_steps": 8, "episode_slots": 12, "ppo_epochs": 2, "critic_epochs": 2}


def test_beta_log_prob_and_entropy_match_scipy():
    grp = ActorGroup(2, 5, 3, "beta")
    out = torch.randn(2, 7, 6) * 2
    dist = grp.dist(out)
    x = grp.sample(dist)
    a = 1 + torch.nn.functional.softplus(out[..., :3])
    b = 1 + torch.nn.functional.softplus(out[..., 3:])
    ref_lp = scipy.stats.beta.logpdf(x.double().numpy(), a.double().numpy(), b.double().numpy())
    ref_h = scipy.stats.beta.entropy(a.double().numpy(), b.double().numpy())
    used = torch.ones_like(x)
    assert np.allclose(grp.log_prob(dist, x, used).numpy(), ref_lp.sum(-1), rtol=1e-4, atol=1e-4)
    assert np.allclose(grp.entropy(dist, used).numpy(), ref_h.sum(-1), rtol=1e-4, atol=1e-4)
    # clamping away from the bounds keeps the log-probability finite at 0 and 1
    edge = torch.tensor([[[0.0, 1.0, 0.5]]]).expand(2, 7, 3)
    assert torch.isfinite(grp.log_prob(dist, edge, used)).all()


def test_gaussian_stores_unclipped_sample_and_clips_toward_env():
    torch.manual_seed(0)
    grp = ActorGroup(1, 4, 1, "gaussian", init_log_std=math.log(2.0))
    x = grp.sample(grp.dist(grp.output(torch.zeros(1, 500, 4))))
    assert (x < 0).any() and (x > 1).any()
    acts = {"mu": x.transpose(0, 1).numpy()[:, :1, :].repeat(3, 1), "bs": np.zeros((500, 2, 3)),
            "controller": np.zeros((500, 1, 3), np.int64)}
    for decades in (0.0, 2.0):
        power, _, _ = to_env(acts, EnvSpec(3, 2, 0.2, power_decades=decades))
        assert power.min() >= 0 and power.max() <= 0.2


def test_power_map_is_increasing_from_zero_to_pmax():
    u = np.linspace(0.0, 1.0, 1001)
    assert np.array_equal(power_fraction(u, 0.0), u)
    for decades in (1.0, 2.0, 4.0):
        f = power_fraction(u, decades)
        assert f[0] == 0.0 and abs(f[-1] - 1.0) < 1e-12 and (np.diff(f) > 0).all()
        assert abs(power_fraction(np.array([0.5]), decades)[0] - 1 / (10 ** (decades / 2) + 1)) < 1e-12
    assert np.array_equal(power_fraction(np.array([-0.5, 1.5]), 2.0), [0.0, 1.0])


def test_controller_stay_logit_favours_the_current_host():
    from wdtnopt.env import BatchedWdtnEnv
    sc = Scenario.paper(n_mus=4, n_bss=3)
    benv = BatchedWdtnEnv(sc, n_envs=2, seed=0, slots=5)
    obs = benv.reset()
    spec = EnvSpec.from_scenario(sc)
    ctrl = torch.from_numpy(obs.controller)[None]                 # [1, E, d]
    x = np.stack([s.placement for s in benv.sims])
    onehot = torch.nn.functional.one_hot(torch.from_numpy(x), 3).float()    # the current hosts, [E, N, M]
    torch.manual_seed(0)
    plain = ActorGroup(1, spec.dims["controller"], 4, "categorical", n_choices=3)
    torch.manual_seed(0)
    prior = ActorGroup(1, spec.dims["controller"], 4, "categorical", n_choices=3, stay_logit=5.0)
    diff = (prior.output(ctrl) - plain.output(ctrl)).reshape(2, 4, 3)
    assert torch.allclose(diff, 5.0 * onehot)
    assert torch.allclose(prior.output_one(0, ctrl[0]), prior.output(ctrl)[0])
    p_stay = prior.dist(prior.output(ctrl)).probs.reshape(2, 4, 3)[onehot.bool()]
    assert (p_stay > 0.95).all()


def test_stacked_mlp_equals_loop_over_modules():
    net = StackedMLP(5, 7, 3, hidden=16)
    x = torch.randn(5, 11, 7)
    mods = net.as_modules()
    loop = torch.stack([m(x[i]) for i, m in enumerate(mods)])
    assert torch.allclose(net(x), loop, atol=1e-6)
    assert torch.allclose(net.forward_one(2, x[2]), loop[2], atol=1e-6)


def test_stacked_adam_steps_one_agent_like_torch_adam():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(3, 4, 2))
    ref = torch.nn.Parameter(w[1].detach().clone())
    opt = StackedAdam([w], lr=1e-2, eps=1e-5, max_grad_norm=1e9)
    ropt = torch.optim.Adam([ref], lr=1e-2, eps=1e-5)
    before = w.detach().clone()
    for _ in range(4):
        x = torch.randn(6, 4)
        opt.zero_grad()
        (x @ w[1]).pow(2).sum().backward()
        opt.step(1)
        ropt.zero_grad()
        (x @ ref).pow(2).sum().backward()
        ropt.step()
    assert torch.allclose(w[1], ref, atol=1e-6)
    assert torch.equal(w[0], before[0]) and torch.equal(w[2], before[2])


def test_gae_hand_computed():
    r = torch.tensor([[1.0], [0.0], [2.0]])
    v = torch.tensor([[0.5], [0.2], [0.1]])
    nv = torch.tensor([[0.2], [0.1], [0.3]])
    d = torch.tensor([[0.0], [1.0], [0.0]])
    g, lam = 0.9, 0.8
    d2 = 2.0 + g * 0.3 - 0.1
    d1 = 0.0 + g * 0.1 - 0.2                       # episode ends here: no lambda-chain through
    d0 = 1.0 + g * 0.2 - 0.5
    want = [d0 + g * lam * d1, d1, d2]
    assert torch.allclose(gae(r, v, nv, d, g, lam)[:, 0], torch.tensor(want), atol=1e-6)


def test_collect_bootstraps_the_time_limit_end_from_the_terminal_state():
    """The rollout's next values: V(terminal state) at an episode's end (replayed independently
    through core.step and core.observe), V(next state) inside it, never V(the reset state); with
    ``dones`` they feed ``gae`` (test_gae_hand_computed)."""
    from rollouts import record_steps, replayed_observations
    from wdtnopt.agents.core import collect
    cfg = {"n_envs": 2, "rollout_steps": 5, "episode_slots": 3}
    tr = Trainer("beta-happo", TINY, seed=1, config=cfg)
    recorded = record_steps(tr.env)
    seen = []

    def value_fn(s):
        seen.append(s.clone())
        return s.sum(1)

    buf, _, _ = collect(tr.agent.actors, value_fn, tr.env, tr.obs, tr.agent.spec, 5)
    spec, e_ = tr.agent.spec, 2
    assert len(seen) == 2 and torch.equal(seen[0], buf.state.reshape(10, -1))
    nxt = seen[1].reshape(5, e_, -1)
    assert torch.equal(buf.next_values, value_fn(seen[1]).reshape(5, e_))
    assert buf.dones.tolist() == [[0, 0], [0, 0], [1, 1], [0, 0], [0, 0]]
    for e in range(e_):
        terminal, fresh = replayed_observations(TINY, 1, e, 3, recorded, spec.mu_action, spec.bs_action)
        assert torch.equal(nxt[2, e], torch.from_numpy(terminal.state.astype(np.float32)))
        assert torch.equal(buf.state[3, e], torch.from_numpy(fresh.state.astype(np.float32)))
        assert not torch.equal(nxt[2, e], buf.state[3, e])
        for t in (0, 1, 3):
            assert torch.equal(nxt[t, e], buf.state[t + 1, e])


class _RecordingHAPPO(HAPPO):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.record: list[tuple[str, int, torch.Tensor]] = []

    def update_agent(self, kind, i, batch, adv, factor):
        self.record.append((kind, i, factor.clone()))
        return super().update_agent(kind, i, batch, adv, factor)


def test_happo_factor_is_product_of_earlier_agents_ratios():
    torch.manual_seed(0)
    spec = EnvSpec.from_scenario(TINY)
    algo = _RecordingHAPPO(spec, HAPPOConfig(ppo_epochs=3, actor_lr=1e-2, credit="team", bs_learn=True), seed=1)
    t, e = 5, 3
    buf = random_rollout(algo, t, e)       # a hand-made batch: random observations and actions
    algo.update(buf)
    assert len(algo.record) == spec.n_mus + spec.n_bss + 1
    assert sorted((k, i) for k, i, _ in algo.record) == sorted((k, i) for k in TYPES for i in range(spec.group(k)[0]))
    # after the iteration each agent's final ratio is what it multiplied in (later agents do not touch it)
    with torch.no_grad():
        ratios = {}
        for k, i, _ in algo.record:
            batch = algo.agent_batch(buf, k, i)
            lp, _ = algo.log_prob_one(k, i, batch, entropy=False)
            ratios[(k, i)] = torch.exp(lp - batch["logp"])
    prod = torch.ones(t * e)
    moved = False
    for k, i, factor in algo.record:
        assert torch.allclose(factor, prod, rtol=1e-5, atol=1e-6)
        moved |= not torch.allclose(ratios[(k, i)], torch.ones_like(prod))
        prod = prod * ratios[(k, i)]
    assert moved and not torch.allclose(prod, torch.ones_like(prod))


@pytest.mark.parametrize("algo", ["beta-happo", "beta-mappo", "maddpg"])
def test_resume_reproduces_next_iteration_exactly(tmp_path, algo):
    cfg = dict(FAST) if algo != "maddpg" else {"n_envs": 2, "rollout_steps": 8, "episode_slots": 12,
                                                "warmup_steps": 16, "batch_size": 8, "updates_per_iteration": 2}
    tr = Trainer(algo, TINY, seed=3, config=cfg)
    for _ in range(2):
        tr.train_iteration()
    tr.save(tmp_path)
    a = tr.train_iteration()
    params_a = [p.detach().clone() for p in tr.agent.actors.parameters()]
    tr2 = Trainer.load(tmp_path)
    assert tr2.iteration == 2
    b = tr2.train_iteration()
    a.pop("sps"), b.pop("sps")
    assert a == b
    for pa, pb in zip(params_a, tr2.agent.actors.parameters()):
        assert torch.equal(pa, pb)


def _trained_dir(tmp_path: Path, **config) -> Path:
    tr = Trainer("beta-happo", TINY, seed=0, config={**FAST, **config})
    tr.train_iteration()
    tr.save(tmp_path)
    return tmp_path


def test_corrupted_or_mismatched_checkpoint_is_a_clear_error(tmp_path):
    d = _trained_dir(tmp_path / "run")
    path = d / CHECKPOINT_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WdtnoptError, match=r"checkpoint .*checkpoint\.pt.*corrupted"):
        CheckpointPolicy(d)
    with pytest.raises(WdtnoptError, match="corrupted"):
        Trainer.load(d)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WdtnoptError, match="checkpoint.pt"):
        simulate(f"checkpoint:{d}", generate_trace(TINY, seed=0, slots=3))
    with pytest.raises(WdtnoptError, match="not found"):
        CheckpointPolicy(tmp_path / "nowhere")
    # a valid checkpoint on a trace of another size
    d2 = _trained_dir(tmp_path / "run2")
    with pytest.raises(WdtnoptError, match=r"trained for 3 MUs and 2 BSs"):
        simulate(f"checkpoint:{d2}", generate_trace(Scenario.paper(n_mus=5, n_bss=2), seed=0, slots=3))
    # tensors of the wrong shape
    payload = torch.load(d2 / CHECKPOINT_FILE, weights_only=True)
    key = next(k for k in payload["agent"]["actors"] if k.startswith("mu.net.weights"))
    payload["agent"]["actors"][key] = torch.zeros(1, 1, 1)
    torch.save(payload, d2 / CHECKPOINT_FILE)
    with pytest.raises(WdtnoptError, match=r"checkpoint .*does not match"):
        CheckpointPolicy(d2)


def test_simulate_checkpoint_runs_and_matches_the_env(tmp_path):
    d = _trained_dir(tmp_path, action_map="raw")   # the PettingZoo env takes powers (docs/env.md)
    trace = generate_trace(TINY, seed=7, slots=12)
    res = simulate(f"checkpoint:{d}", trace)
    assert res.policy == "checkpoint:beta-happo" and res.slots == 12
    # the same deterministic agent driven through the PettingZoo env gives the same energy per slot
    pol = CheckpointPolicy(d)
    env = parallel_env(scenario=TINY, slots=12)
    env.reset(seed=7)
    energies = []
    while env.agents:
        obs = BatchObs.stack([env_core.observe(env.features, env.sim)])
        power, weights, hosts = to_env(pol.agent.act(obs, deterministic=True), pol.agent.spec)
        acts = {f"mu_{i}": power[0, i:i + 1] for i in range(3)}
        acts.update({f"bs_{j}": weights[0, j] for j in range(2)})
        acts["controller"] = hosts[0]
        env.step(acts)
        energies.append(env.last_step.evaluation.energy_total)
    assert np.allclose(res.table["energy_j"], energies, rtol=1e-12, atol=0)


def test_stacked_beta_equals_torch_beta_bit_for_bit():
    from wdtnopt.agents.core import StackedBeta
    g = torch.Generator().manual_seed(0)
    a, b = 1 + torch.rand(7, 5, 3, generator=g) * 4, 1 + torch.rand(7, 5, 3, generator=g) * 4
    ours, ref = StackedBeta(torch.stack([a, b], -2)), torch.distributions.Beta(a, b)
    x = torch.rand(7, 5, 3, generator=g).clamp(1e-6, 1 - 1e-6)
    assert torch.equal(ours.log_prob(x), ref.log_prob(x))
    assert torch.equal(ours.mean, ref.mean) and torch.equal(ours.entropy(), ref.entropy())
    torch.manual_seed(3)
    s1 = ours.sample()
    torch.manual_seed(3)
    assert torch.equal(s1, ref.sample())


def test_simulate_structured_checkpoint_matches_core_step(tmp_path):
    """A checkpoint with the structured map: simulate equals env.core.step driven by the same agent."""
    from wdtnopt.simulation import SimState
    d = _trained_dir(tmp_path, action_map="structured")
    trace = generate_trace(TINY, seed=7, slots=12)
    res = simulate(f"checkpoint:{d}", trace)
    pol = CheckpointPolicy(d)
    assert (pol.agent.spec.mu_action, pol.agent.spec.bs_action) == ("power_over_need", "tilt_over_kkt")
    feat, st = env_core.Features(trace), SimState(trace)
    energies, failures = [], []
    while not st.done:
        obs = BatchObs.stack([env_core.observe(feat, st)])
        over, weights, hosts = to_env(pol.agent.act(obs, deterministic=True), pol.agent.spec)
        out = env_core.step(st, over[0], weights[0], hosts[0], mu_action="power_over_need", bs_action="tilt_over_kkt")
        energies.append(out.evaluation.energy_total)
        failures.append(out.evaluation.n_failed)
    assert np.allclose(res.table["energy_j"], energies, rtol=1e-12, atol=0)
    assert res.failures_per_mu.sum() == sum(failures)


@pytest.mark.parametrize("algo", ["beta-happo", "gaussian-happo", "beta-mappo", "maddpg"])
def test_every_algorithm_satisfies_the_agent_protocol(algo):
    from wdtnopt.agents import Agent
    tr = Trainer(algo, TINY, seed=0, config={"n_envs": 1, "rollout_steps": 4, "episode_slots": 4})
    assert isinstance(tr.agent, Agent)
    assert set(tr.agent.actors.keys()) == set(TYPES)
