"""Training improves each algorithm on a tiny scenario; the `wdtnopt train` command."""
from __future__ import annotations

import csv

import pytest

from wdtnopt import Scenario
from wdtnopt.agents.trainer import Trainer
from wdtnopt.cli import main

# a tiny scenario where every MU requests every slot (less exogenous noise: quick, clear learning)
TINY = Scenario.paper(n_mus=4, n_bss=2, request_prob=1.0)
# the case study's setting (raw power action, team credit), where a random start leaves much to learn
ON_POLICY = {"n_envs": 8, "rollout_steps": 50, "gamma": 0.9, "gae_lambda": 0.9, "actor_lr": 3e-3,
             "critic_lr": 1e-3, "critic_epochs": 10, "ppo_epochs": 5, "action_map": "raw", "credit": "team"}
CONFIGS = {
    "beta-happo": ON_POLICY,
    "gaussian-happo": ON_POLICY,
    "beta-mappo": ON_POLICY,
    "maddpg": {"n_envs": 8, "rollout_steps": 50, "warmup_steps": 400, "actor_lr": 1e-4, "updates_per_iteration": 50,
               "action_map": "raw"},
}
ITERATIONS = {"beta-happo": 15, "gaussian-happo": 9, "beta-mappo": 15, "maddpg": 6}


@pytest.mark.parametrize("algo", list(CONFIGS))
def test_short_training_improves_reward(algo):
    tr = Trainer(algo, TINY, seed=0, config=CONFIGS[algo])
    before = tr.evaluate_policy(episodes=4)["reward"]      # deterministic policy, fixed evaluation traces
    for _ in range(ITERATIONS[algo]):
        tr.train_iteration()
    after = tr.evaluate_policy(episodes=4)["reward"]
    assert after > before + 0.05 * abs(before), (algo, before, after)


@pytest.mark.parametrize("algo", ["beta-happo", "beta-mappo"])
def test_local_credit_drives_the_residual_down(algo):
    """Structured map, local credit (the defaults): the MU residual above the least deadline-meeting
    power only costs energy, and the MUs learn to shrink it."""
    import torch
    from wdtnopt.agents.core import actor_inputs
    tr = Trainer(algo, TINY, seed=0, config={"n_envs": 8, "rollout_steps": 25})

    def mean_residual():
        go, _ = actor_inputs(tr.obs)
        grp = tr.agent.actors["mu"]
        with torch.no_grad():
            return float(grp.mode(grp.dist(grp.output(go["mu"]))).mean())
    before, r0 = mean_residual(), tr.evaluate_policy(episodes=4)["reward"]
    for _ in range(8):
        tr.train_iteration()
    after, r1 = mean_residual(), tr.evaluate_policy(episodes=4)["reward"]
    assert after < 0.8 * before and r1 > r0, (before, after, r0, r1)


def test_evaluating_on_the_training_seed_warns():
    """evaluate_policy(seed=s) on a run of seed s replays the training environments' first traces
    (docs/agents.md, "Evaluating a run"): a warning; other seeds evaluate silently."""
    import warnings

    import numpy as np
    from wdtnopt.env import BatchedWdtnEnv
    cfg = {"n_envs": 2, "rollout_steps": 2, "episode_slots": 3}
    tr = Trainer("beta-happo", TINY, seed=7, config=cfg)
    # the overlap the warning is about: evaluation environment e starts on training environment e's trace
    ev = BatchedWdtnEnv(TINY, 2, 7, 3).reset()
    assert np.array_equal(ev.state, tr.obs.state) and np.array_equal(ev.mu, tr.obs.mu)
    with pytest.warns(UserWarning, match=r"^seed: evaluating on seed 7, the run's training seed"):
        tr.evaluate_policy(episodes=2, seed=np.int64(7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # any other seed (the default 10000 here): no warning
        tr.evaluate_policy(episodes=2, seed=8)
        tr.evaluate_policy(episodes=2)
    with pytest.warns(UserWarning, match=r"seed 10000, the run's training seed"):   # the default seed's own run
        Trainer("beta-happo", TINY, seed=10_000, config=cfg).evaluate_policy(episodes=2)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_train_cli_log_curve_checkpoint_and_resume(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--algo", "beta-mappo", "--n-mus", "3", "--n-bss", "2", "--steps", "48", "--seed", "1",
            "--out", str(out), "--quiet", "--set", "n_envs=2", "--set", "rollout_steps=8", "--set", "episode_slots=10",
            "--set", "ppo_epochs=1", "--set", "critic_epochs=1"]
    main(args)
    rows = _rows(out / "log.csv")
    assert [int(r["env_steps"]) for r in rows] == [16, 32, 48]
    for col in ("reward", "energy_per_mu_slot", "failure_ratio", "policy_loss", "value_loss", "approx_kl", "sps"):
        assert rows[-1][col] != ""
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "checkpoint.pt").is_file() and (out / "config.json").is_file()
    main(["train", "--out", str(out), "--steps", "80", "--resume", "--quiet"])
    rows = _rows(out / "log.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4, 5]
    with pytest.raises(SystemExit) as exc:           # an existing run without --resume
        main(args)
    assert exc.value.code == 2


@pytest.mark.parametrize("extra", [["--set", "no_such_field=1"], ["--scenario", "missing.toml"]])
def test_train_cli_user_errors_exit_2(tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--steps", "10", "--out", str(tmp_path / "x"), "--quiet", *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
