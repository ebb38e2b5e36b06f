"""A hand-made rollout of a learned agent (random observations, actions and rewards) for update tests;
the recorded actions of a batched env replayed in a single one (tests of the time-limit end)."""
from __future__ import annotations


def random_rollout(algo, t: int, e: int, seed: int = 2, bs_hosts=None):
    """A hand-made HAPPO rollout of ``algo``'s spec: random observations, actions, use masks (each
    entry used with probability 0.7, or, with ``bs_hosts [t, e, N]``, the BS entry of each DT's host),
    rewards and values; old log-probabilities are the current policies' (torch imported here)."""
    import torch
    from wdtnopt.agents.core import TYPES, RolloutBuffer

    spec = algo.spec
    buf = RolloutBuffer(spec, t, e)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k in TYPES:
            buf.obs[k].copy_(torch.rand(buf.obs[k].shape, generator=g))
            if k == "controller":
                buf.act[k].copy_(torch.randint(0, spec.n_bss, buf.act[k].shape, generator=g))
            else:
                buf.act[k].copy_(torch.rand(buf.act[k].shape, generator=g).clamp(0.05, 0.95))
            buf.used[k].copy_((torch.rand(buf.used[k].shape, generator=g) < 0.7).float())
        if bs_hosts is not None:
            buf.used["bs"].copy_(torch.nn.functional.one_hot(bs_hosts, spec.n_bss).permute(0, 1, 3, 2).float())
        for k in TYPES:
            for i in range(spec.group(k)[0]):
                lp, _ = algo.log_prob_one(k, i, algo.agent_batch(buf, k, i), entropy=False)
                buf.logp[k][:, :, i] = lp.reshape(t, e)
        for k in ("mu", "bs"):
            buf.local_rewards[k].copy_(torch.randn(buf.local_rewards[k].shape, generator=g))
        buf.rewards.copy_(torch.randn(t, e, generator=g))
        buf.state.copy_(torch.rand(buf.state.shape, generator=g))
        buf.values.copy_(torch.randn(t, e, generator=g))
        buf.next_values.copy_(torch.randn(t, e, generator=g))
    return buf


def record_steps(env):
    """Record the actions ``env.step`` (a BatchedWdtnEnv) is called with, as copies, in the returned list."""
    import numpy as np

    recorded, real_step = [], env.step

    def step(*actions):
        recorded.append([np.array(a, copy=True) for a in actions])
        return real_step(*actions)

    env.step = step
    return recorded


def replayed_observations(scenario, seed: int, e: int, slots: int, recorded, mu_action: str, bs_action: str):
    """(terminal, next) observations of environment ``e`` of ``BatchedWdtnEnv(scenario, seed=seed,
    slots=slots)`` after the ``recorded`` steps (:func:`record_steps`) of its first episode, computed
    independently of the batched env: one SimState of the episode's trace stepped by ``core.step``
    and observed by ``core.observe`` (the single-environment path), and the next episode's first
    observation, ``core.observe`` of a fresh SimState of its trace."""
    from wdtnopt.env import core
    from wdtnopt.env.batched import episode_seed
    from wdtnopt.simulation import SimState
    from wdtnopt.trace import generate_trace

    trace = generate_trace(scenario, seed=episode_seed(seed, e, 0), slots=slots)
    sim = SimState(trace)
    for acts in recorded[:slots]:
        core.step(sim, *(a[e] for a in acts), mu_action=mu_action, bs_action=bs_action)
    assert sim.t == slots
    nxt = generate_trace(scenario, seed=episode_seed(seed, e, 1), slots=slots)
    return core.observe(core.Features(trace), sim), core.observe(core.Features(nxt), SimState(nxt))
