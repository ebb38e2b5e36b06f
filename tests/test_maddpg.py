"""MADDPG's update against its plain reference: the same seed gives the same bits."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wdtnopt import Scenario
from wdtnopt.agents.core import TYPES
from wdtnopt.agents.trainer import Trainer


def _q(critic, state, a):
    b = state.shape[0]
    joint = torch.cat([a["mu"].transpose(0, 1).reshape(b, -1), a["bs"].transpose(0, 1).reshape(b, -1),
                       a["controller"][0].reshape(b, -1)], dim=1)
    return critic(torch.cat([state, joint], dim=1))[:, 0]


def reference_update(ag):
    """The plain MADDPG update (one critic call per actor pass, per-parameter Polyak): the slow,
    obvious reference ``MADDPG.update`` is tested against."""
    cfg = ag.cfg
    b = ag.buffer.sample(ag.rng, cfg.batch_size)
    m = ag.spec.n_bss
    with torch.no_grad():
        na = ag._policy(ag.target_actors, ag._obs(b["next_state"], b["next_bs"]), b["next_mask"][None], "greedy")
        y = b["reward"] + cfg.gamma * _q(ag.target_critic, b["next_state"], na)
    taken = {"mu": b["act_mu"].T[:, :, None], "bs": b["act_bs"].transpose(0, 1),
             "controller": F.one_hot(b["act_ctrl"], m).float()[None]}
    q = _q(ag.critic, b["state"], taken)
    critic_loss = F.mse_loss(q, y)
    ag.critic_opt.zero_grad()
    critic_loss.backward()
    nn.utils.clip_grad_norm_(ag.critic.parameters(), cfg.max_grad_norm)
    ag.critic_opt.step()

    pol = ag._policy(ag.actors, ag._obs(b["state"], b["bs"]), b["mask"][None], "gumbel")
    actor_loss = torch.zeros(())
    for k in TYPES:   # type k's actions from the current policies, the others' from the buffer
        actor_loss = actor_loss - _q(ag.critic, b["state"], {**taken, k: pol[k]}).mean()
    ag.actor_opt.zero_grad()
    actor_loss.backward()
    nn.utils.clip_grad_norm_(ag.actors.parameters(), cfg.max_grad_norm)
    ag.actor_opt.step()
    ag.critic.zero_grad(set_to_none=True)   # the actor loss also reached the critic's gradients

    with torch.no_grad():
        for tgt, src in ((ag.target_actors, ag.actors), (ag.target_critic, ag.critic)):
            for pt, ps in zip(tgt.parameters(), src.parameters()):
                pt.lerp_(ps, cfg.tau)
    return {"value_loss": float(critic_loss.detach()), "policy_loss": float(actor_loss.detach()) / len(TYPES),
            "q_mean": float(q.detach().mean())}


def _tensors(x, prefix=""):
    if isinstance(x, torch.Tensor):
        yield prefix, x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _tensors(v, f"{prefix}.{k}")
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            yield from _tensors(v, f"{prefix}[{i}]")


@pytest.mark.parametrize("max_grad_norm", [10.0, 1e-3])   # 1e-3: every step clips
def test_update_equals_reference_bit_for_bit(max_grad_norm):
    cfg = {"n_envs": 4, "rollout_steps": 16, "episode_slots": 12, "warmup_steps": 10_000, "batch_size": 32,
           "max_grad_norm": max_grad_norm}
    tr = Trainer("maddpg", Scenario.paper(n_mus=5, n_bss=3, frame_slots=4), seed=3, config=cfg)
    tr.train_iteration()                              # fills the replay buffer (below warmup: no update)
    fast, ref = tr.agent, copy.deepcopy(tr.agent)
    torch_rng = torch.get_rng_state()                 # the Gumbel noise comes from torch's generator
    fast_diags = [fast.update() for _ in range(4)]
    torch.set_rng_state(torch_rng)
    ref_diags = [reference_update(ref) for _ in range(4)]
    assert fast_diags == ref_diags
    a, b = dict(_tensors(fast.state_dict())), dict(_tensors(ref.state_dict()))
    assert a.keys() == b.keys() and len(a) > 20
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    # the networks moved (the comparison is not trivially of untouched weights)
    assert not torch.equal(fast.critic[0].weight, tr.agent.target_critic[0].weight)
