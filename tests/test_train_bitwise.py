"""Training is pinned bit for bit: speed-ups of the training path must not change a single number.

Each case trains a tiny scenario for two iterations and hashes everything a run leaves behind:
every tensor of the agent's state (networks, optimizer moments, normalizers, MADDPG's replay
buffer and generator), the logged statistics of every iteration (exact float bits), the
environments' state and the torch generator. The digests were recorded with the default of BSs
fixed at the KKT split; the training speed-ups (BENCHMARKS.md, "Training speed") were checked to
give the same digests as the code before them (benchmarks/bench_train_speed.py); they hold for the platform they were recorded
on (float32 kernels differ in the last bits across torch builds and CPU instruction sets), and the
test is skipped elsewhere.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from wdtnopt import Scenario
from wdtnopt.agents.trainer import Trainer

PLATFORM = ("2.13.0+cpu", "AVX512", "2.4.6")
"""(torch version, ATen CPU capability, numpy version) the digests were recorded with"""

SMALL = {"n_envs": 3, "rollout_steps": 20, "episode_slots": 25}
PPO = {**SMALL, "ppo_epochs": 3, "critic_epochs": 2}
OFF_POLICY = {**SMALL, "warmup_steps": 40, "updates_per_iteration": 5, "batch_size": 32}
RAW = {"action_map": "raw", "bs_map": "raw"}
CASES = {   # name: (algorithm, config overrides, sha256 prefix[, scenario overrides])
    "beta-happo": ("beta-happo", PPO, "15892bcb4ef432be"),
    "beta-happo-raw-team": ("beta-happo", {**PPO, **RAW, "credit": "team"}, "3d3365d81396bf91"),
    "gaussian-happo": ("gaussian-happo", PPO, "54d5ef66dd1192f1"),
    "beta-mappo": ("beta-mappo", PPO, "f1ad3c2a9aa63729"),
    "maddpg": ("maddpg", OFF_POLICY, "0002687682c72643"),
    "maddpg-raw": ("maddpg", {**OFF_POLICY, **RAW}, "453757b98fc2176f"),
    # a semantic menu: the MUs' level head is stepped with their power head; two minibatches
    "beta-happo-levels": ("beta-happo", {**PPO, "minibatches": 2}, "bdd3017d83d3a74a", {"semantic_levels": 3}),
    # the BSs learning their tilt of the KKT split (not the default: docs/agents.md)
    "beta-happo-bs-learn": ("beta-happo", {**PPO, "bs_learn": True}, "3d65d6a85c8a5902"),
}


def _feed(h: "hashlib._Hash", obj: object) -> None:
    """Hash tensors and arrays by their bytes, floats by their exact bits, containers in key order."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().contiguous().numpy()
    if isinstance(obj, np.ndarray):
        h.update(f"{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            h.update(str(key).encode())
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(obj, float):
        h.update(obj.hex().encode())
    else:
        h.update(repr(obj).encode())


def fingerprint(algo: str, config: dict, scenario: dict | None = None) -> str:
    """sha256 (16 hex digits) of two training iterations of ``algo`` on a 6-MU, 3-BS scenario."""
    tr = Trainer(algo, Scenario.paper(n_mus=6, n_bss=3, **(scenario or {})), seed=3, config=config)
    h = hashlib.sha256()
    for _ in range(2):
        stats = tr.train_iteration()
        stats.pop("sps")   # wall-clock speed, the one logged figure that is not a result
        _feed(h, stats)
    _feed(h, tr.agent.state_dict())
    _feed(h, tr.env.get_state())
    _feed(h, torch.get_rng_state())
    return h.hexdigest()[:16]


@pytest.mark.skipif((torch.__version__, torch.backends.cpu.get_cpu_capability(), np.__version__) != PLATFORM,
                    reason=f"digests recorded on {PLATFORM}")
@pytest.mark.parametrize("case", list(CASES))
def test_training_is_bit_identical_to_the_recorded_run(case):
    algo, config, digest, *scenario = CASES[case]
    assert fingerprint(algo, config, *scenario) == digest
