"""A newcomer RL researcher driving the environments from outside (session 13, qa2): controller
hosts at the edges of their numbers, and the single-agent ``TeamEnv`` with actions that are not numbers."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from wdtnopt import Scenario, WdtnoptError
from wdtnopt.env import BatchedWdtnEnv, parallel_env

SC = Scenario.paper(n_mus=3, n_bss=2, frame_slots=2)


def _step_with_hosts(hosts):
    """Slot 0 (a frame start) of seed 1 with fixed MU/BS actions and the controller's ``hosts``:
    the placement applied and the observations after the step; warnings are errors."""
    e = parallel_env(scenario=SC, seed=0, slots=4)
    e.reset(seed=1)
    acts = {f"mu_{i}": np.array([0.05]) for i in range(SC.n_mus)}
    acts.update({f"bs_{j}": np.ones(SC.n_mus) for j in range(SC.n_bss)})
    acts["controller"] = hosts(e.sim.placement.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obs, rew, *_ = e.step(acts)
    return e.sim.placement.copy(), obs, rew["controller"]


@pytest.mark.parametrize("bad", [-0.5, -1.0, 2.0, np.inf, -np.inf, 1e30])
def test_a_host_outside_0_to_m_minus_1_means_stay_like_an_off_menu_level(bad):
    """-0.5 was truncated to server 0 before the range check (a migration the agent never chose),
    and inf or 1e30 gave numpy's cast warning: each must step exactly as "every DT stays"."""
    stay_x, stay_obs, stay_r = _step_with_hosts(lambda x: x)

    def one_bad(x):
        h = x.astype(float)
        h[0] = bad
        return h
    # the DT whose host is bad is on server 1 at seed 1 (so -0.5 -> 0 would be a move)
    assert stay_x[0] == 1
    x, obs, r = _step_with_hosts(one_bad)
    assert np.array_equal(x, stay_x) and r == stay_r
    assert all(np.array_equal(obs[a], stay_obs[a]) for a in obs)


def test_a_fractional_host_in_range_is_truncated():
    """1.9 names server 1, as a fractional level is truncated (docs/env.md)."""
    x_int, _, r_int = _step_with_hosts(lambda x: np.array([0, 0, 0]))
    x_frac, _, r_frac = _step_with_hosts(lambda x: np.array([0.9, 0.2, 0.99]))
    assert np.array_equal(x_int, x_frac) and r_int == r_frac
    assert x_int[0] == 0       # the DT on server 1 moved: the check above compares a real move


def test_the_batched_env_takes_hosts_by_the_same_rule_and_refuses_nan_hosts():
    """Batched hosts were cast to int64 first: NaN and inf gave numpy's cast warning (and NaN meant
    "stay" silently, where the PettingZoo env refuses a NaN controller action)."""
    def run(hosts):
        b = BatchedWdtnEnv(SC, n_envs=2, seed=0, slots=4)
        b.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            b.step(np.full((2, 3), 0.05), np.ones((2, 2, 3)), hosts(np.stack([s.placement for s in b.sims])))
        return np.stack([s.placement for s in b.sims]), b
    stay, _ = run(lambda x: x)
    for bad in (-0.5, np.inf, 1e30, 5.0):
        got, _ = run(lambda x: np.full(x.shape, bad))
        assert np.array_equal(got, stay), bad
    b = BatchedWdtnEnv(SC, n_envs=2, seed=0, slots=4)
    b.reset()
    with pytest.raises(WdtnoptError, match=r"hosts: expected numbers, got NaN"):
        b.step(np.full((2, 3), 0.05), np.ones((2, 2, 3)), np.full((2, 3), np.nan))
    assert all(s.t == 0 for s in b.sims)       # nothing stepped


def test_team_env_names_a_nan_action_by_its_index_and_steps_nothing():
    """A NaN host score chose a host silently (numpy's argmax picks a NaN), and a NaN power was
    reported as "actions['mu_0']" with the MU's Box, which a single-agent user never sees."""
    from wdtnopt.env import TeamEnv

    n, m = SC.n_mus, SC.n_bss
    te = TeamEnv(SC, seed=0, slots=4)
    te.reset(seed=1)
    stay = np.full(n * m, -1.0)
    stay[np.arange(n) * m + te.par.sim.placement] = 1.0          # every DT scores its own host best
    base = np.r_[np.zeros(n), np.ones(m * n), stay]
    for idx in (n + m * n, 0, n):                                 # a host score, a power, a CPU weight
        a = base.copy()
        a[idx] = np.nan
        with pytest.raises(WdtnoptError, match=rf"^action: expected numbers, got NaN at index {idx} "):
            te.step(a)
        assert te.par.sim.t == 0                                  # nothing stepped
    te.step(base)                                                 # the same action without the NaN steps
    assert te.par.sim.t == 1


def test_none_or_a_mu_dict_without_power_is_no_action_and_strict_mode_names_it():
    """``{"mu_0": None}`` (or a semantic MU's ``{"level": 1}``) stepped silently with power 0 and
    failed the MU's sync, although the strict check refuses an absent agent (docs/env.md)."""
    sem = Scenario.paper(n_mus=3, n_bss=2, frame_slots=2, semantic_levels=3)
    for sc, agent, value in [(SC, "mu_0", None), (SC, "bs_1", None), (SC, "controller", None),
                             (sem, "mu_1", {"level": 1}), (sem, "mu_2", {"power": None, "level": 2})]:
        e = parallel_env(scenario=sc, seed=0, slots=3)
        e.reset(seed=0)
        acts = {a: e.action_space(a).sample() for a in e.agents}
        with pytest.raises(WdtnoptError, match=rf"no action for agent\(s\) '{agent}'"):
            e.step({**acts, agent: value})
        assert e.sim.t == 0                                       # nothing stepped
    # strict_actions=False: None is the neutral action, exactly as an absent agent or the explicit
    # neutral actions (power 0, weights 1, stay); a MU's level given without power still applies
    def reward(sc, change, strict=False):
        e = parallel_env(scenario=sc, seed=0, slots=3, strict_actions=strict)
        e.reset(seed=0)
        acts = {f"mu_{i}": np.array([0.1]) for i in range(sc.n_mus)}
        acts.update({f"bs_{j}": np.full(sc.n_mus, 0.1) for j in range(sc.n_bss)}, controller=e.sim.placement.copy())
        if sc.semantic_levels:
            acts.update({f"mu_{i}": {"power": np.array([0.1]), "level": 0} for i in range(sc.n_mus)})
        change(acts, e)
        _, r, *_ = e.step(acts)
        return r["controller"], e.last_step.evaluation.energy.copy()

    def none(acts, e):
        acts.update(mu_0=None, bs_1=None, controller=None)

    def explicit(acts, e):
        acts.update(mu_0=np.zeros(1), bs_1=np.ones(SC.n_mus), controller=e.sim.placement.copy())
    r_none, en_none = reward(SC, none)
    r_ref, en_ref = reward(SC, explicit, strict=True)
    assert r_none == r_ref and np.array_equal(en_none, en_ref)
    r_lv, en_lv = reward(sem, lambda acts, e: acts.update(mu_1={"level": 2}))
    r_lv_ref, en_lv_ref = reward(sem, lambda acts, e: acts.update(mu_1={"power": np.zeros(1), "level": 2}), strict=True)
    assert r_lv == r_lv_ref and np.array_equal(en_lv, en_lv_ref)
