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
    algo = _Recording(spec, HAPPOConfig(ppo_epochs=3, actor_lr=1e-2, credit="local", bs_learn=True), seed=1)
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
    assert (name, cfg.action_map, cfg.bs_map, cfg.credit, cfg.actor_lr, cfg.ppo_epochs, cfg.n_envs) == (
        "beta-happo", "raw", "raw", "team", 5e-4, 5, 2)
    name, over = agent_config("maddpg:raw", {})
    assert make_config(algorithm_class(name), over).action_map == "raw"
    assert agent_config("beta-mappo", {}) == ("beta-mappo", {})
    default = make_config(algorithm_class("beta-happo"), {})
    assert (default.action_map, default.bs_map, default.credit) == ("structured", "kkt", "local")
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


# -- the KKT BS map (bs_action="tilt_over_kkt") --------------------------------------------------
def _kkt_inputs(snap):
    """kkt_cpu's inputs of one snapshot, with a leading [1]."""
    x = snap.placement_prev
    g = snap.gain[np.arange(snap.n_mus), snap.assoc]
    t_min = physics.time_for_power(snap.p_max, snap.data_bits, snap.bandwidth, snap.noise_psd, g)
    return [np.asarray(v)[None] for v in (x, snap.cycles, snap.deadline - snap.relay[np.arange(snap.n_mus), x], t_min,
                                          snap.noise_psd * snap.bandwidth / g,
                                          snap.data_bits * np.log(2.0) / snap.bandwidth)] + [snap.cpu_hz[None]]


def test_kkt_cpu_is_the_energy_optimal_split():
    """Against an independent solve of each server's problem (scipy SLSQP over the CPU split, from
    several starts): the KKT split's energy is never higher, it uses all of the CPU, and every DT in
    it meets its deadline at p_max."""
    from scipy.optimize import minimize
    checked = 0
    for seed in range(4):
        for snap in _slots(seed, slots=6):
            x, cyc, tb, t_min, noise_w, k, cpu = _kkt_inputs(snap)
            served = (snap.request & ~snap.migrating)[None]
            c = env_core.kkt_cpu(served, x, cyc, tb, t_min, noise_w, k, cpu)[0]
            for m in range(SC.n_bss):
                ids = np.flatnonzero(served[0] & (x[0] == m))
                ids = ids[c[ids] > 0]
                if len(ids) < 2:
                    continue
                assert np.isclose(c[ids].sum(), cpu[0, m], rtol=1e-12)
                t = tb[0, ids] - cyc[0, ids] / c[ids]
                assert (t >= t_min[0, ids] * (1 - 1e-9)).all()

                def energy(share, ids=ids, m=m):
                    tt = tb[0, ids] - cyc[0, ids] / np.maximum(share * cpu[0, m], 1e-300)
                    return float(np.sum(physics.energy_for_time(np.maximum(tt, 1e-12), snap.data_bits[ids],
                                                                snap.bandwidth[ids], snap.noise_psd[ids],
                                                                snap.gain[ids, snap.assoc[ids]])))
                lo = cyc[0, ids] / (tb[0, ids] - t_min[0, ids]) / cpu[0, m]   # least shares (p_max)
                best = np.inf
                for s0 in (np.full(len(ids), 1.0 / len(ids)), lo / lo.sum(), c[ids] / cpu[0, m]):
                    s0 = np.maximum(s0, lo * 1.001)
                    s0 = s0 / s0.sum() if s0.sum() > 1 else s0 + (1 - s0.sum()) / len(ids)
                    r = minimize(energy, s0, method="SLSQP", bounds=[(l, 1.0) for l in lo],
                                 constraints=[{"type": "eq", "fun": lambda s: s.sum() - 1.0}],
                                 options={"ftol": 1e-16, "maxiter": 500})
                    if r.success and r.x.sum() <= 1 + 1e-9 and (r.x >= lo * (1 - 1e-9)).all():
                        best = min(best, energy(r.x))
                assert energy(c[ids] / cpu[0, m]) <= best * (1 + 1e-6)
                checked += 1
    assert checked >= 10


def test_kkt_split_serves_the_most_dts_whose_least_shares_fit():
    """On an overloaded server the split keeps the largest number of DTs whose least shares (the
    share that meets the deadline at p_max) add up to at most its CPU (brute force over subsets)."""
    from itertools import combinations
    rng = np.random.default_rng(3)
    n, m = 7, 2
    for _ in range(40):
        x = rng.integers(0, m, (1, n))
        served = rng.random((1, n)) < 0.85
        tb = np.full((1, n), 0.1)
        t_min = rng.uniform(0.01, 0.09, (1, n))
        t_min[0, rng.random(n) < 0.1] = 0.2            # some cannot make it at any share
        cpu = np.array([[1e9, 2e9]])
        cyc = rng.uniform(0.5e7, 6e7, (1, n))
        c = env_core.kkt_cpu(served, x, cyc, tb, t_min, np.full((1, n), 1e-9), np.full((1, n), 0.01), cpu)
        least = cyc / (tb - t_min)
        for j in range(m):
            cand = [i for i in range(n) if served[0, i] and x[0, i] == j and tb[0, i] > t_min[0, i]]
            most = max((len(s) for r in range(len(cand) + 1) for s in combinations(cand, r)
                        if least[0, list(s)].sum() <= cpu[0, j]), default=0)
            got = np.flatnonzero((c[0] > 0) & (x[0] == j))
            assert len(got) == most
            assert (c[0, got] >= least[0, got] * (1 - 1e-6)).all()


def test_tilt_over_kkt_meets_deadlines_gates_and_is_scale_free():
    """With the KKT map every transmitting MU meets its deadline at p_max or below; tilt 1 everywhere
    is the KKT split of the MUs that stay; scaling a server's tilts changes nothing."""
    rng = np.random.default_rng(5)
    price = SC.failure_price
    for seed in range(4):
        for snap in _slots(seed, slots=8):
            tilt = np.exp(rng.uniform(-1, 1, (SC.n_bss, SC.n_mus)))
            over = 1.0 + rng.random(SC.n_mus)
            dec, used, _ = env_core.decision(snap, over, tilt, mu_action="power_over_need", price_j=price,
                                             bs_action="tilt_over_kkt")
            ev = evaluate(snap, dec)
            tx = dec.power > 0
            assert np.array_equal(tx, used) and ev.served[tx].all() and (dec.power <= snap.p_max).all()
            active = snap.request & ~snap.migrating
            assert not (tx & ~active).any()
            scaled = tilt * rng.uniform(0.1, 10.0, (SC.n_bss, 1))
            dec2, _, _ = env_core.decision(snap, over, scaled, mu_action="power_over_need", price_j=price,
                                           bs_action="tilt_over_kkt")
            assert np.allclose(dec2.cpu_hz, dec.cpu_hz, rtol=1e-9, atol=0)
            one, used1, _ = env_core.decision(snap, np.ones(SC.n_mus), np.ones((SC.n_bss, SC.n_mus)),
                                              mu_action="power_over_need", price_j=price, bs_action="tilt_over_kkt")
            x, cyc, tb, t_min, noise_w, k, cpu = _kkt_inputs(snap)
            kkt = env_core.kkt_cpu(used1[None], x, cyc, tb, t_min, noise_w, k, cpu)[0]
            assert np.allclose(one.cpu_hz[used1], kkt[used1], rtol=1e-9)
            # the gate with the KKT map never transmits an infeasible or over-priced sync
            t = snap.deadline - snap.relay[np.arange(SC.n_mus), snap.placement_prev] - snap.cycles / np.where(
                one.cpu_hz > 0, one.cpu_hz, 1.0)
            assert (t[used1] > 0).all() and (one.power[used1] * t[used1] <= price * (1 + 1e-9)).all()


def test_kkt_bs_map_is_exp_tilt_centred_on_the_kkt_split():
    spec = EnvSpec(4, 2, 0.2, action_map="structured", bs_map="kkt", bs_tilt=1.5)
    u = np.random.default_rng(0).random((5, 2, 4)).astype(np.float32)
    acts = {"mu": np.zeros((5, 4, 1)), "bs": u, "controller": np.zeros((5, 1, 4), np.int64)}
    _, w, _ = to_env(acts, spec)
    assert spec.bs_action == "tilt_over_kkt"
    assert np.allclose(np.log(w) / 1.5 * 0.5 + 0.5, u, atol=1e-6)        # inverse of the map
    acts["bs"] = np.full((5, 2, 4), 0.5, np.float32)
    assert np.allclose(to_env(acts, spec)[1], 1.0)                        # u = 0.5: the KKT split
    assert EnvSpec(4, 2, 0.2, action_map="raw", bs_map="kkt").bs_action == "weights"
    import pytest
    from wdtnopt import WdtnoptError
    with pytest.raises(WdtnoptError, match="bs_action"):
        BatchedWdtnEnv(SC, bs_action="tilt_over_kkt")                    # needs the BSs to act first
    with pytest.raises(WdtnoptError, match="bs_map must be one of kkt, raw"):
        HAPPOConfig(bs_map="linear")


def test_bs_fixed_at_the_kkt_split_by_default_and_learn_option_trains_them():
    """Default (``bs_learn=False`` under the kkt map): the BSs act at u = 0.5 (tilt exp(0) = 1, the
    KKT split) in rollouts and evaluation, their entries are not scored (log-probability 0, so their
    HAPPO ratio is 1) and no update moves them, while the MUs learn. ``bs_learn=True`` trains them
    (at ``bs_actor_lr``; 0 keeps their initial, stochastic policy). So each case can fail."""
    import pytest
    from wdtnopt import WdtnoptError
    from wdtnopt.agents.core import to_env
    from wdtnopt.agents.trainer import Trainer
    tiny = Scenario.paper(n_mus=3, n_bss=2, frame_slots=4)
    fast = {"n_envs": 2, "rollout_steps": 8, "episode_slots": 12, "ppo_epochs": 2, "critic_epochs": 2}
    fast_maddpg = {"n_envs": 2, "rollout_steps": 8, "episode_slots": 12, "warmup_steps": 8, "batch_size": 8,
                   "updates_per_iteration": 2}
    for algo in ("beta-happo", "beta-mappo", "gaussian-happo", "maddpg"):
        base = fast_maddpg if algo == "maddpg" else fast
        cases = [({}, False), ({"bs_learn": True}, True)]
        if algo != "maddpg":
            cases += [({"bs_learn": True, "bs_actor_lr": 0.0}, False)]
        for over, bs_moves in cases:
            tr = Trainer(algo, tiny, seed=1, config={**base, **over})
            assert tr.agent.spec.bs_fixed == (not over), (algo, over)
            before = {k: [p.detach().clone() for p in tr.agent.actors[k].parameters()] for k in ("mu", "bs")}
            tr.train_iteration()
            tr.train_iteration()
            moved = {k: any(not torch.equal(a, b) for a, b in zip(before[k], tr.agent.actors[k].parameters()))
                     for k in ("mu", "bs")}
            assert moved == {"mu": True, "bs": bs_moves}, (algo, over, moved)
            obs = tr.env.observe()
            for det in (True, False):
                w = to_env(tr.agent.act(obs, deterministic=det), tr.agent.spec)[1]
                assert (w == 1.0).all() == (not over), (algo, over, det)   # tilt exp(0): the KKT split
    # the rollout of the default: BS actions 0.5, never scored, HAPPO's M of the MUs from the controller alone
    from wdtnopt.agents.core import collect
    tr = Trainer("beta-happo", tiny, seed=2, config=fast)
    buf, _, _ = collect(tr.agent.actors, tr.agent.values, tr.env, tr.obs, tr.agent.spec, 6)
    assert (buf.act["bs"] == 0.5).all() and (buf.used["bs"] == 0).all() and (buf.logp["bs"] == 0).all()
    assert (buf.used["mu"] > 0).any() and (buf.logp["mu"] != 0).any()
    with pytest.raises(WdtnoptError, match="bs_actor_lr"):
        HAPPOConfig(bs_actor_lr=-1.0)
