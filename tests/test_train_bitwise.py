"""Training is pinned bit for bit: speed-ups of the training path must not change a single number.

Each case trains a tiny scenario for two iterations and hashes everything a run leaves behind:
every tensor of the agent's state (networks, optimizer moments, normalizers, MADDPG's replay
buffer and generator), the logged statistics of every iteration (exact float bits), the
environments' state and the torch generator. The digests were recorded with the default of BSs
fixed at the KKT split; the training speed-ups (BENCHMARKS.md, "Training speed") were checked to
give the same digests as the code before them (benchmarks/bench_train_speed.py).

The digests hold for the platform they were recorded on only: float32 kernels differ in the last
bits across torch builds, thread counts and CPU instruction sets, and torch's coarse capability
("AVX512") does not tell two AVX512 CPUs apart whose BLAS kernels round differently. A platform
here is therefore (torch version, ATen capability, numpy version, the CPU's SIMD flags); the test runs where digests for the platform are recorded and is skipped elsewhere.
To record a platform's digests: ``python tests/test_train_bitwise.py`` prints its entry of
``RECORDED`` (only from code whose training is known to be unchanged).
"""
from __future__ import annotations

import hashlib
import platform as pyplatform
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from wdtnopt import Scenario
from wdtnopt.agents.trainer import Trainer

SIMD_FLAG = re.compile(r"^(avx\w*|amx\w*|fma\w*|f16c|sse4_2)$")


def platform_key() -> tuple:
    """(torch version, ATen CPU capability, numpy version, the CPU's SIMD flags); the training's own
    thread count is its config's ``torch_threads`` (1 in every case), not the machine's."""
    try:
        flags = next(line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = [pyplatform.processor() or pyplatform.machine()]
    simd = " ".join(sorted(f for f in flags if SIMD_FLAG.match(f)))
    return (torch.__version__, torch.backends.cpu.get_cpu_capability(), np.__version__, simd)


SMALL = {"n_envs": 3, "rollout_steps": 20, "episode_slots": 25}
PPO = {**SMALL, "ppo_epochs": 3, "critic_epochs": 2}
OFF_POLICY = {**SMALL, "warmup_steps": 40, "updates_per_iteration": 5, "batch_size": 32}
RAW = {"action_map": "raw", "bs_map": "raw"}
CASES = {   # name: (algorithm, config overrides[, scenario overrides])
    "beta-happo": ("beta-happo", PPO),
    "beta-happo-raw-team": ("beta-happo", {**PPO, **RAW, "credit": "team"}),
    "gaussian-happo": ("gaussian-happo", PPO),
    "beta-mappo": ("beta-mappo", PPO),
    "maddpg": ("maddpg", OFF_POLICY),
    "maddpg-raw": ("maddpg", {**OFF_POLICY, **RAW}),
    # a semantic menu: the MUs' level head is stepped with their power head; two minibatches
    "beta-happo-levels": ("beta-happo", {**PPO, "minibatches": 2}, {"semantic_levels": 3}),
    # the BSs learning their tilt of the KKT split (not the default: docs/agents.md)
    "beta-happo-bs-learn": ("beta-happo", {**PPO, "bs_learn": True}),
}
RECORDED: dict[tuple, dict[str, str]] = {   # platform_key(): {case: sha256 prefix}
    # recorded 2026-12-02 on a 2-core Intel Xeon @ 2.00GHz (AVX512 without VNNI), at the code whose PPO-family
    # digests equal those of 278e8c9 on this platform; MADDPG's after its terminal-observation bootstrap.
    # (The first recording, 2026-11-30, on another AVX512 CPU whose flags were not kept, is dropped: this
    # platform's kernels give other last bits, so the test failed here on unchanged code.)
    ('2.13.0+cpu', 'AVX512', '2.4.6', 'avx avx2 avx512bw avx512cd avx512dq avx512f avx512vl f16c fma sse4_2'): {
        'beta-happo': 'fd235f19678568f0',
        'beta-happo-raw-team': 'ce2d6c99213939b2',
        'gaussian-happo': '5123baa927d1f361',
        'beta-mappo': '1e1a9dff719345c1',
        'maddpg': '5af112131e1a0fd8',
        'maddpg-raw': 'c51437b3442578f7',
        'beta-happo-levels': 'cfe0a02322597924',
        'beta-happo-bs-learn': '0a8d36086f593f98',
    },
    # recorded 2026-12-02 (fourteenth session) on a 2-core Intel Xeon with AMX and AVX512-FP16: the digests
    # of the first entry, bit for bit, from main at e4fc445 (the training code of the last CI run's 3e84397)
    ('2.13.0+cpu', 'AVX512', '2.4.6', 'amx_bf16 amx_int8 amx_tile avx avx2 avx512_bf16 avx512_bitalg avx512_fp16 '
     'avx512_vbmi2 avx512_vnni avx512_vpopcntdq avx512bw avx512cd avx512dq avx512f avx512ifma avx512vbmi avx512vl '
     'avx_vnni f16c fma sse4_2'): {
        'beta-happo': 'fd235f19678568f0',
        'beta-happo-raw-team': 'ce2d6c99213939b2',
        'gaussian-happo': '5123baa927d1f361',
        'beta-mappo': '1e1a9dff719345c1',
        'maddpg': '5af112131e1a0fd8',
        'maddpg-raw': 'c51437b3442578f7',
        'beta-happo-levels': 'cfe0a02322597924',
        'beta-happo-bs-learn': '0a8d36086f593f98',
    },
    # recorded 2026-12-02 on a 2-core AMD EPYC (AVX512 with VNNI, BF16, IFMA), the same code: equal digests
    # in two sessions on two machines of this kind before they were recorded.
    ('2.13.0+cpu', 'AVX512', '2.4.6', 'avx avx2 avx512_bf16 avx512_bitalg avx512_vbmi2 avx512_vnni avx512_vpopcntdq '
     'avx512bw avx512cd avx512dq avx512f avx512ifma avx512vbmi avx512vl f16c fma sse4_2'): {
        'beta-happo': '15892bcb4ef432be',
        'beta-happo-raw-team': '3d3365d81396bf91',
        'gaussian-happo': '54d5ef66dd1192f1',
        'beta-mappo': 'f1ad3c2a9aa63729',
        'maddpg': '57be012ae2df701b',
        'maddpg-raw': '7c2d7e042ff718cf',
        'beta-happo-levels': 'bdd3017d83d3a74a',
        'beta-happo-bs-learn': '3d65d6a85c8a5902',
    },
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


@pytest.mark.skipif(platform_key() not in RECORDED,
                    reason=f"no digests recorded for this platform {platform_key()} (module docstring)")
@pytest.mark.parametrize("case", list(CASES))
def test_training_is_bit_identical_to_the_recorded_run(case):
    algo, config, *scenario = CASES[case]
    assert fingerprint(algo, config, *scenario) == RECORDED[platform_key()][case]


if __name__ == "__main__":   # print this platform's entry of RECORDED
    print(f"    {platform_key()!r}: {{")
    for name, (algo, config, *scenario) in CASES.items():
        print(f"        {name!r}: {fingerprint(algo, config, *scenario)!r},")
    print("    },")
