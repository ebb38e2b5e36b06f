"""MADDPG's update against its plain reference: the same seed gives the same bits."""
import copy

import pytest
import torch

from wdtnopt import Scenario
from wdtnopt.agents.trainer import Trainer


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
    ref_diags = [ref.update_reference() for _ in range(4)]
    assert fast_diags == ref_diags
    a, b = dict(_tensors(fast.state_dict())), dict(_tensors(ref.state_dict()))
    assert a.keys() == b.keys() and len(a) > 20
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    # the networks moved (the comparison is not trivially of untouched weights)
    assert not torch.equal(fast.critic[0].weight, tr.agent.target_critic[0].weight)
