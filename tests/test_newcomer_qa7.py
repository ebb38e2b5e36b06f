"""A newcomer's pass (7): the toolkit used from outside (RL interop, learners, mobility imports,
the command line) on inputs the authors likely did not try."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario

TINY = Scenario.paper(n_mus=3, n_bss=2, frame_slots=3)
SMALL = {"n_envs": 2, "rollout_steps": 8, "episode_slots": 8}
OFF_POLICY = {**SMALL, "warmup_steps": 8, "batch_size": 8}


def _config(algo):
    return OFF_POLICY if algo == "maddpg" else SMALL


def _rewards(tr, iterations):
    return [tr.train_iteration()["reward"] for _ in range(iterations)]


# 1. two trainers of the same seed in one process gave different runs: both drew from torch's
#    global generator, which the second one's construction reseeded under the first
@pytest.mark.parametrize("algo", ["beta-happo", "maddpg"])
def test_trainers_interleaved_in_one_process_give_the_runs_of_each_alone(algo):
    import torch

    from wdtnopt.agents.trainer import Trainer

    alone = _rewards(Trainer(algo, TINY, 3, _config(algo)), 3)
    a, b = Trainer(algo, TINY, 3, _config(algo)), Trainer(algo, TINY, 3, _config(algo))
    together = [], []
    for _ in range(3):
        together[0].append(a.train_iteration()["reward"])
        torch.rand(7)                                     # a user's own draw between iterations
        together[1].append(b.train_iteration()["reward"])
    assert together[0] == alone and together[1] == alone


# 2. a stochastic evaluation in the middle of a run is documented to leave training untouched;
#    MADDPG's exploration noise came from the agent's numpy generator, which it advanced
@pytest.mark.parametrize("algo", ["beta-happo", "maddpg"])
@pytest.mark.parametrize("deterministic", [True, False])
def test_an_evaluation_between_iterations_changes_nothing_in_the_run(algo, deterministic):
    from wdtnopt.agents.trainer import Trainer

    plain = _rewards(Trainer(algo, TINY, 5, _config(algo)), 3)
    tr = Trainer(algo, TINY, 5, _config(algo))
    seen = _rewards(tr, 1)
    first = tr.evaluate_policy(episodes=2, deterministic=deterministic)
    assert tr.evaluate_policy(episodes=2, deterministic=deterministic) == first   # repeatable too
    assert seen + _rewards(tr, 2) == plain


# 3. `wdtnopt train --resume` silently continued the checkpoint's run when --algo, --seed or
#    --scenario named another one (a user resuming "as maddpg" got more beta-happo)
def test_train_resume_refuses_another_algo_seed_or_scenario(tmp_path, capsys):
    from cli_runner import run_cli

    out = str(tmp_path / "run")
    start = ["train", "--algo", "beta-happo", "--scenario", "paper", "--n-mus", "3", "--n-bss", "2", "--seed", "0",
             "--steps", "16", "--out", out, "--quiet"] + [f"--set={k}={v}" for k, v in SMALL.items()]
    assert run_cli(start, capsys)[0] == 0
    other = tmp_path / "other.toml"
    other.write_text("n_mus = 3\nn_bss = 2\neta = 2.0\n")
    resume = ["train", "--out", out, "--steps", "32", "--quiet", "--resume"]
    for extra, named in ((["--algo", "maddpg"], "--algo maddpg"), (["--seed", "4"], "--seed 4"),
                         (["--scenario", str(other)], "--scenario"), (["--scenario", "nothere.toml"], "--scenario")):
        code, stdout, err = run_cli(resume + extra, capsys)
        assert code == 2 and err.startswith(f"error: {named}") and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and stdout == ""
    # the run's own values, as when --resume is added to the command that started it, are fine
    code, stdout, _ = run_cli(resume + ["--algo", "beta-happo", "--seed", "0", "--scenario", "paper"], capsys)
    assert code == 0 and "beta-happo: 32 env steps" in stdout
