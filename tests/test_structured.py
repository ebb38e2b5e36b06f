"""The structured MU action (BSs first, residual above the least deadline-meeting power, give-up
gate), per-agent local rewards and local credit in HAPPO (docs/env.md, docs/agents.md)."""
from __future__ import annotations

import numpy as np
import torch

from rollouts import random_rollout
from wdtnopt import Scenario, evaluate, generate_trace, physics
from wdtnopt.agents.core import EnvSpec, to_env
from wdtnopt.agents.happo import HAPPO, HAPPOConfig
from wdtnopt.cost import Decision
from wdtnopt.env import BatchedWdtnEnv
from wdtnopt.env import core as env_core
from wdtnopt.simulation import SimState

SC = Scenario.paper(n_mus=8, n_bss=3, frame_slots=4)


def _slots(seed: int, slots: int = 12):
    """(snapshot, state) of every slot of a trace under "stay"."""
    st = SimState(generate_trace(SC, seed=seed, slots=slots))
    while not st.done:
        snap = st.snapshot(allow_migration=False)
        yield snap
        st.finish_slot(snap, Decision(placement=snap.placement_prev.copy(), power=np.zeros(SC.n_mus),
                                      cpu_hz=np.zeros(SC.n_mus)))


def _reference_need(snap, served: np.ndarray, weights: np.ndarray, n: int) -> tuple[float, float]:
    """(p_need, t_avail) of MU n if it joined the DTs ``served`` on its server, one DT at a time."""
    x = snap.placement_prev
    j = x[n]
    members = [i for i in range(snap.n_mus) if x[i] == j and (served[i] or i == n)]
    w = {i: max(min(max(weights[j, i], 0.0), 1.0), env_core.WEIGHT_FLOOR) for i in members}
    cpu = snap.cpu_hz[j] * w[n] / sum(w.values())
    t = snap.deadline[n] - snap.relay[n, j] - snap.cycles[n] / cpu
    g = snap.gain[n, snap.assoc[n]]
    return float(physics.power_for_time(t, snap.data_bits[n], snap.bandwidth[n], snap.noise_psd[n], g)), float(t)


def test_structured_allocation_meets_deadlines_and_gate_is_exact():
    rng = np.random.default_rng(0)
    price = SC.failure_price
    gave_up_seen = transmit_seen = 0
    for seed in range(6):
        for snap in _slots(seed):
            weights = rng.random((SC.n_bss, SC.n_mus))
            weights[rng.random(weights.shape) < 0.2] = 0.0
            over = 1.0 + rng.random(SC.n_mus) * rng.choice([0.0, 1.0, 5.0], SC.n_mus)
            dec, used, _ = env_core.decision(snap, over, weights, mu_action="power_over_need", price_j=price)
            ev = evaluate(snap, dec)
            active = snap.request & ~snap.migrating
            tx = dec.power > 0
            assert not (tx & ~active).any() and np.array_equal(tx, used)
            # every MU that transmits meets its deadline within the power cap
            assert (ev.served[tx]).all() and (dec.power <= snap.p_max).all()
            # scalar reference of the gate: drop every MU that cannot make it (infeasible at p_max or
            # dearer than the failure price) at the shares of the MUs still in, until none drops
            ref = active.copy()
            while True:
                keep = ref.copy()
                for n in np.flatnonzero(ref):
                    p_need, t = _reference_need(snap, ref, weights, n)
                    keep[n] = t > 0 and p_need <= snap.p_max[n] and p_need * t <= price
                if np.array_equal(keep, ref):
                    break
                ref = keep
            assert np.array_equal(tx, ref)
            gave_up_seen += int((active & ~tx).sum())
            for n in np.flatnonzero(tx):   # the asked multiple of the least power (capped)
                transmit_seen += 1
                p_need, t = _reference_need(snap, tx, weights, n)
                assert np.isclose(dec.power[n], min(p_need * over[n], snap.p_max[n]), rtol=1e-9)
                if over[n] == 1.0:   # the least power: a little less misses the deadline
                    lower = Decision(placement=dec.placement, power=np.where(np.arange(SC.n_mus) == n,
                                     dec.power * (1 - 1e-6), dec.power), cpu_hz=dec.cpu_hz)
                    assert not evaluate(snap, lower).served[n]
    assert gave_up_seen > 0 and transmit_seen > 0


def test_gate_never_transmits_when_infeasible_at_pmax():
    """Deadlines so short that nobody can make it: nobody transmits, nobody spends energy."""
    sc = Scenario.paper(n_mus=6, n_bss=2, deadline_s=1e-4)
    env = BatchedWdtnEnv(sc, n_envs=2, seed=0, slots=6, mu_action="power_over_need")
    env.reset()
    for _ in range(6):
        _, _, _, info = env.step(np.full((2, 6), 1.5), np.full((2, 2, 6), 0.5), np.zeros((2, 6), np.int64))
        assert not info["mu_used"].any() and (info["energy_j"] == 0).all()
        assert info["failures"].sum() == info["requests"].sum()


def test_local_rewards_average_to_team_reward():
    rng = np.random.default_rng(1)
    for mode in ("power", "power_over_need"):
        env = BatchedWdtnEnv(SC, n_envs=3, seed=2, slots=10, mu_action=mode)
        env.reset()
        for _ in range(25):   # across an automatic reset
            mu = rng.random((3, SC.n_mus)) * (SC.p_max_w if mode == "power" else 2.0) + (mode != "power")
            hosts = rng.integers(0, SC.n_bss, (3, SC.n_mus))
            t = np.array([s.t for s in env.sims])
            _, reward, _, info = env.step(mu, rng.random((3, SC.n_bss, SC.n_mus)), hosts)
            assert np.allclose(info["mu_reward"].mean(1), reward, rtol=1e-12, atol=1e-15)
            # the BS rewards: the team reward less the failures no BS can change (migrating DTs)
            snap = env.stack.at(t)   # the slot's requests (same trace until a reset)
            assert info["bs_reward"].shape == (3, SC.n_bss)
            assert (info["bs_reward"].sum(1) >= reward - 1e-12).all()


def test_structured_map_inverse_and_log_prob_are_exact():
    spec = EnvSpec(4, 2, 0.2, action_map="structured", residual_max=2.5)
    u = np.random.default_rng(0).random((5, 4, 1)).astype(np.float32)
    acts = {"mu": u, "bs": np.zeros((5, 2, 4)), "controller": np.zeros((5, 1, 4), np.int64)}
    over, _, _ = to_env(acts, spec)
    assert np.allclose((over - 1.0) / 2.5, u[:, :, 0], rtol=0, atol=1e-7)   # the inverse of the map
    assert (over >= 1.0).all() and (over <= 3.5).all()
    # the policy's log-density of the power p = p_need (1 + r u) is that of u less log(r p_need):
    # ratios of new to old densities (PPO) are the same in u and in power
    from wdtnopt.agents.core import ActorGroup
    import scipy.stats
    grp = ActorGroup(1, 3, 1, "beta")
    out = torch.randn(1, 5, 2)
    dist = grp.dist(out)
    uu = torch.rand(1, 5, 1).clamp(0.01, 0.99)
    a = (1 + torch.nn.functional.softplus(out[..., :1])).double().numpy()
    b = (1 + torch.nn.functional.softplus(out[..., 1:])).double().numpy()
    p_need, r = 0.003, 2.5
    p = p_need * (1 + r * uu.double().numpy())
    dens_p = scipy.stats.beta.logpdf((p / p_need - 1) / r, a, b) - np.log(r * p_need)
    lp = grp.log_prob(dist, uu, torch.ones_like(uu)).double().numpy()
    assert np.allclose(lp - np.log(r * p_need), dens_p[..., 0], atol=1e-4)


class _Recording(HAPPO):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.record = []

    def update_agent(self, kind, i, batch, adv, factor):
        self.record.append((kind, i, factor.clone(), adv.clone()))
        return super().update_agent(kind, i, batch, adv, factor)


def test_local_credit_factor_uses_only_coupled_agents():
    sc = Scenario.paper(n_mus=3, n_bss=2, frame_slots=4)
    spec = EnvSpec.from_scenario(sc)
    algo = _Recording(spec, HAPPOConfig(ppo_epochs=3, actor_lr=1e-2, credit="local"), seed=1)
    t, e = 5, 3
    host = torch.randint(0, spec.n_bss, (t, e, spec.n_mus), generator=torch.Generator().manual_seed(5))
    buf = random_rollout(algo, t, e, bs_hosts=host)   # each DT's host BS: one BS entry used per DT
    algo.update(buf)
    assert algo.record[0][0] == "controller" and torch.equal(algo.record[0][2], torch.ones(t * e))
    with torch.no_grad():
        ratio = {}
        for k, i, _, _ in algo.record:
            batch = algo.agent_batch(buf, k, i)
            ratio[(k, i)] = torch.exp(algo.log_prob_one(k, i, batch, entropy=False)[0] - batch["logp"])
    h = host.reshape(-1)
    done = {("controller", 0)}
    for k, i, factor, adv in algo.record[1:]:
        want = ratio[("controller", 0)].clone()
        if k == "mu":    # its host BS, if updated before it
            for m in range(spec.n_bss):
                if ("bs", m) in done:
                    want = torch.where(h.reshape(-1, spec.n_mus)[:, i] == m, want * ratio[("bs", m)], want)
        else:            # the MUs it serves, if updated before it
            for n in range(spec.n_mus):
                if ("mu", n) in done:
                    want = torch.where(h.reshape(-1, spec.n_mus)[:, n] == i, want * ratio[("mu", n)], want)
        assert torch.allclose(factor, want, rtol=1e-5, atol=1e-6)
        # its advantage is its local reward less the baseline, normalized over the used entries
        used = buf.used[k][:, :, i].amax(-1).reshape(-1) > 0
        assert (adv[~used] == 0).all() and abs(float(adv[used].mean())) < 1.0
        done.add((k, i))


def test_paper_suite_raw_variant_is_the_case_study_parametrization():
    import pytest
    from wdtnopt.agents.registry import algorithm_class, make_config
    from wdtnopt.benchmarks.suites.paper import agent_config
    name, over = agent_config("beta-happo:raw", {"n_envs": 2})
    cfg = make_config(algorithm_class(name), over)
    assert (name, cfg.action_map, cfg.credit, cfg.actor_lr, cfg.ppo_epochs, cfg.n_envs) == (
        "beta-happo", "raw", "team", 5e-4, 5, 2)
    name, over = agent_config("maddpg:raw", {})
    assert make_config(algorithm_class(name), over).action_map == "raw"
    assert agent_config("beta-mappo", {}) == ("beta-mappo", {})
    default = make_config(algorithm_class("beta-happo"), {})
    assert (default.action_map, default.credit) == ("structured", "local")
    with pytest.raises(ValueError, match="unknown variant"):
        agent_config("beta-happo:shiny", {})


def test_unknown_choice_in_config_is_a_clear_error():
    import pytest
    from wdtnopt import WdtnoptError
    from wdtnopt.agents.trainer import Trainer
    with pytest.raises(WdtnoptError, match="action_map must be one of structured, raw"):
        Trainer("beta-happo", SC, config={"action_map": "curved"})
    with pytest.raises(WdtnoptError, match="credit must be one of local, team"):
        Trainer("beta-mappo", SC, config={"credit": "everyone"})
    with pytest.raises(WdtnoptError, match="mu_action"):
        BatchedWdtnEnv(SC, mu_action="watts")


def test_least_cost_is_the_reward_at_the_least_power():
    """info["mu_least_cost"] (the MU baseline of local credit) is what a transmitting MU's reward
    would be at a = 1: with a = 1 they are equal; with a > 1 the reward is lower."""
    for a in (1.0, 1.5):
        env = BatchedWdtnEnv(SC, n_envs=2, seed=4, slots=8, mu_action="power_over_need")
        env.reset()
        for _ in range(8):
            _, _, _, info = env.step(np.full((2, SC.n_mus), a), np.full((2, SC.n_bss, SC.n_mus), 0.5),
                                     np.zeros((2, SC.n_mus), np.int64))
            tx = info["mu_used"]
            assert tx.any() and (info["mu_least_cost"][~tx] == 0).all()
            if a == 1.0:
                assert np.allclose(info["mu_reward"][tx], -info["mu_least_cost"][tx], rtol=1e-9, atol=0)
            else:
                assert (info["mu_reward"][tx] < -info["mu_least_cost"][tx]).all()
