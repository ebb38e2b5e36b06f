"""A newcomer's pass (8c) over the learned baselines and their tools: bugs found from the outside,
each checked against an independent reference, failing before its fix."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from wdtnopt import Scenario
from wdtnopt.errors import WdtnoptError

from cli_runner import run_cli

TINY = Scenario.paper(n_mus=2, n_bss=2, request_prob=1.0)
SHORT = {"n_envs": 2, "rollout_steps": 5, "episode_slots": 5}


@pytest.mark.parametrize("algo,key", [("beta-happo", "ctrl_stay_logit"), ("beta-happo", "clip"),
                                      ("beta-mappo", "actor_lr"), ("maddpg", "critic_lr")])
def test_a_config_number_beyond_float32_is_named_not_a_torch_traceback(algo, key, tmp_path, capsys):
    # the networks compute in float32 (the largest is 3.4028e38): 1e300 passed the finite check and
    # ended in torch's "value cannot be converted to type float without overflow" traceback (exit 1)
    assert 1e300 > float(np.finfo(np.float32).max) > 3.4e38
    code, _, err = run_cli(["train", "--algo", algo, "--n-mus", "2", "--n-bss", "2", "--steps", "10",
                            "--set", f"{key}=1e300", "--set", "n_envs=2", "--set", "rollout_steps=5",
                            "--out", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and key in err and "float32" in err, err
    assert "Traceback" not in err


def test_the_largest_float32_stay_logit_still_trains():
    # the edge itself is legal: a stay prior of 3e38 keeps every DT on its host (probability 1)
    from wdtnopt.agents.trainer import Trainer
    tr = Trainer("beta-happo", TINY, 0, {**SHORT, "ctrl_stay_logit": 3e38})
    tr.train_iteration()
    assert tr.evaluate_policy(1)["reward"] < 0


def test_a_bs_tilt_whose_exponential_overflows_is_named():
    # bs_tilt 1e8: exp(bs_tilt (2u - 1)) times the CPU in Hz was infinite and the run stopped with
    # "environment 1, slot 3: infeasible decision: cpu_capacity", naming no field
    from wdtnopt.agents.trainer import Trainer
    with pytest.raises(WdtnoptError, match="bs_tilt: expected at most 300"):
        Trainer("beta-happo", TINY, 0, {**SHORT, "bs_tilt": 1e8, "bs_learn": True})
    # the largest accepted tilt trains with no overflow anywhere (numpy warnings as errors)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = Trainer("beta-happo", TINY, 0, {**SHORT, "bs_tilt": 300.0, "bs_learn": True})
        for _ in range(2):
            m = tr.train_iteration()
    assert all(np.isfinite(v) for v in m.values())
    # reference: the tilt's extremes times the CPU are floats, a tilt far above the bound's are not
    largest = np.log(np.finfo(np.float64).max)
    assert 300.0 + np.log(TINY.cpu_hz) < largest < 1e3


def test_a_diverging_run_stops_with_one_line_naming_the_step_sizes(tmp_path, capsys):
    # Gaussian-HAPPO at actor_lr 100: Adam moves the log-std by ~100 per step, exp() leaves float32,
    # the MU actors' weights become NaN and the next rollout died in torch's "normal expects all
    # elements of std >= 0.0" traceback (exit 1)
    code, _, err = run_cli(["train", "--algo", "gaussian-happo", "--n-mus", "2", "--n-bss", "2", "--steps", "20",
                            "--set", "n_envs=2", "--set", "rollout_steps=5", "--set", "episode_slots=5",
                            "--set", "actor_lr=100", "--out", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "diverged" in err and "actor_lr" in err and "actors.mu" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()   # no NaN weights saved


def test_non_finite_networks_names_exactly_the_broken_network():
    import torch

    from wdtnopt.agents.trainer import Trainer, non_finite_networks
    tr = Trainer("maddpg", TINY, 0, {**SHORT, "warmup_steps": 5, "batch_size": 4, "buffer_size": 50})
    assert non_finite_networks(tr.agent) == []
    with torch.no_grad():
        next(tr.agent.critic.parameters())[0, 0] = float("inf")
        next(tr.agent.actors["bs"].parameters()).view(-1)[3] = float("nan")
    assert non_finite_networks(tr.agent) == ["actors.bs", "critic"]


def test_two_checkpoints_of_one_algorithm_get_rows_that_say_which_run(tmp_path, capsys):
    # gap/simulate labelled every checkpoint "checkpoint:ALGO": comparing two runs of one algorithm
    # (the usual comparison) gave two rows of the same name in the table and in gap.csv
    import csv

    from wdtnopt import generate_trace, simulate
    from wdtnopt.agents.trainer import Trainer
    runs = []
    for seed in (0, 1):
        tr = Trainer("beta-happo", TINY, seed, {**SHORT, "bs_learn": True})
        tr.train_iteration()
        tr.save(tmp_path / f"run{seed}")
        runs.append(f"checkpoint:{tmp_path / f'run{seed}'}")
    code, _, err = run_cli(["gap", "--policy", runs[0], "--policy", runs[1], "--n-mus", "2", "--n-bss", "2",
                            "--slots", "4", "-o", str(tmp_path / "gap")], capsys)
    assert code == 0, err
    with open(tmp_path / "gap" / "gap.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["policy"] for r in rows] == [f"{runs[0]} (beta-happo)", f"{runs[1]} (beta-happo)"]
    # reference: each row is the energy of that run's own checkpoint, simulated alone
    trace = generate_trace(Scenario.paper(n_mus=2, n_bss=2), seed=0, slots=4)
    for row, spec in zip(rows, runs):
        assert float(row["energy_per_mu_slot_j"]) == simulate(spec, trace).energy_per_mu_slot


@pytest.mark.parametrize("damage", ["iteration\nx\n", "iteration,env_steps,wall_s,reward\n1,10,,-0.1\n"])
def test_resume_names_a_damaged_log_line_instead_of_a_traceback(damage, tmp_path, capsys):
    # an edited log.csv ended --resume in "ValueError: invalid literal for int()" (exit 1), or, with an
    # empty wall time, in float('') after the run's first iteration
    args = ["train", "--n-mus", "2", "--n-bss", "2", "--set", "n_envs=2", "--set", "rollout_steps=5",
            "--out", str(tmp_path / "run"), "--quiet"]
    assert run_cli([*args, "--steps", "10"], capsys)[0] == 0
    (tmp_path / "run" / "log.csv").write_text(damage)
    code, _, err = run_cli(["train", "--out", str(tmp_path / "run"), "--resume", "--steps", "20", "--quiet"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "log.csv, line 2" in err, err
    # without the log the checkpoint resumes, and the new log has the iterations run since
    (tmp_path / "run" / "log.csv").unlink()
    code, _, err = run_cli(["train", "--out", str(tmp_path / "run"), "--resume", "--steps", "20", "--quiet"], capsys)
    assert code == 0, err
    assert (tmp_path / "run" / "log.csv").read_text().splitlines()[1].startswith("2,20,")


@pytest.mark.parametrize("seed", [-1, 1.5, True, None, "3"])
def test_the_batched_env_names_a_seed_that_is_not_a_trace_seed(seed):
    # -1 was numpy's "expected non-negative integer" ValueError, None a TypeError, and 1.5, True and
    # "3" silently ran the traces of seeds 1, 1 and 3 (the parallel env refuses them all)
    from wdtnopt.env import BatchedWdtnEnv, parallel_env
    sc = Scenario.paper(n_mus=2, n_bss=2)
    with pytest.raises(WdtnoptError, match="^seed: expected an integer >= 0"):
        BatchedWdtnEnv(sc, 1, seed, 3)
    if seed is not None:   # the reference: the PettingZoo env's own rule
        with pytest.raises(WdtnoptError, match="^seed:"):
            parallel_env(scenario=sc, seed=seed, slots=3)
    BatchedWdtnEnv(sc, 1, np.int64(3), 3).reset()   # a numpy integer is an integer


@pytest.mark.parametrize("kw,field", [({"episodes": 0}, "episodes"), ({"episodes": 2.5}, "episodes"),
                                      ({"seed": -1}, "seed"), ({"deterministic": "no"}, "deterministic")])
def test_evaluate_policy_names_its_own_arguments(kw, field):
    # episodes=0 was reported as "n_envs: expected an integer >= 1", seed=-1 was numpy's ValueError and
    # deterministic="no" (truthy) evaluated the deterministic policy
    from wdtnopt.agents.trainer import Trainer
    tr = Trainer("beta-happo", TINY, 0, SHORT)
    with pytest.raises(WdtnoptError, match=f"^{field}: expected"):
        tr.evaluate_policy(**kw)


def test_set_with_spaces_around_the_equals_sign_sets_the_field(tmp_path, capsys):
    # --set "n_envs = 2" was refused as the unknown option "n_envs " while the list of known options
    # named n_envs; the run it sets must equal the run of --set n_envs=2 (the reference)
    common = ["train", "--n-mus", "2", "--n-bss", "2", "--steps", "10", "--quiet", "--set", "rollout_steps=5"]
    for out, form in (("spaced", "n_envs = 2"), ("plain", "n_envs=2")):
        code, _, err = run_cli([*common, "--set", form, "--out", str(tmp_path / out)], capsys)
        assert code == 0, err
    import json
    spaced, plain = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("spaced", "plain"))
    assert spaced["config"] == plain["config"] and spaced["config"]["n_envs"] == 2
    assert (tmp_path / "spaced" / "log.csv").read_text().splitlines()[1].split(",")[3] == \
        (tmp_path / "plain" / "log.csv").read_text().splitlines()[1].split(",")[3]


def test_gap_markdown_keeps_one_row_of_five_cells_for_a_folder_with_a_pipe(tmp_path, capsys):
    # the row of a checkpoint names its folder; "runs/x|y" split it into six cells
    import re

    from wdtnopt.agents.trainer import Trainer
    tr = Trainer("beta-happo", TINY, 0, SHORT)
    tr.save(tmp_path / "x|y")
    code, _, err = run_cli(["gap", "--policy", f"checkpoint:{tmp_path / 'x|y'}", "--policy", "static", "--n-mus", "2",
                            "--n-bss", "2", "--slots", "3", "-o", str(tmp_path / "gap")], capsys)
    assert code == 0, err
    rows = (tmp_path / "gap" / "gap.md").read_text().splitlines()
    cells = [re.split(r"(?<!\\)\|", row)[1:-1] for row in rows]   # a GitHub table's cell rule
    assert [len(c) for c in cells] == [5, 5, 5, 5]
    assert cells[2][0].strip() == f"checkpoint:{tmp_path / 'x'}\\|y (beta-happo)"


@pytest.mark.parametrize("mu_action,bs_action,bad", [("power", "weights", "power"), ("power", "weights", "weights"),
                                                     ("power_over_need", "tilt_over_kkt", "weights_inf")])
def test_the_batched_env_refuses_nan_actions_as_the_pettingzoo_env_and_steps_nothing(mu_action, bs_action, bad):
    # a NaN power was taken as silence (the sync failed), NaN CPU weights paid the sync's energy and
    # failed it, an infinite KKT tilt ended in "infeasible decision: cpu_capacity"
    from wdtnopt.env import BatchedWdtnEnv, parallel_env
    sc = Scenario.paper(n_mus=2, n_bss=2, request_prob=1.0)
    power = np.full((1, 2), 1.0 if mu_action == "power_over_need" else 0.1)
    weights, hosts = np.ones((1, 2, 2)), np.zeros((1, 2), np.int64)
    env = BatchedWdtnEnv(sc, 1, 0, 3, mu_action=mu_action, bs_action=bs_action)
    env.reset()
    nan_power = power.copy()
    nan_power[0, 1] = np.nan
    nan_weights = weights.copy()
    nan_weights[0, 1, 0] = np.inf if bad == "weights_inf" else np.nan
    args = (nan_power, weights, hosts) if bad == "power" else (power, nan_weights, hosts)
    with pytest.raises(WdtnoptError, match=f"^{bad[:5] if bad != 'weights_inf' else 'weights'}"):
        env.step(*args)
    # nothing was stepped: the next valid step is a fresh environment's first one
    fresh = BatchedWdtnEnv(sc, 1, 0, 3, mu_action=mu_action, bs_action=bs_action)
    fresh.reset()
    assert env.step(power, weights, hosts)[1].tolist() == fresh.step(power, weights, hosts)[1].tolist()
    # the reference rule: the PettingZoo env refuses a NaN action
    penv = parallel_env(scenario=sc, seed=0, slots=3)
    penv.reset(seed=0)
    acts = {a: penv.action_space(a).sample() for a in penv.agents}
    acts["mu_1" if bad == "power" else "bs_1"] = np.full_like(acts["mu_1" if bad == "power" else "bs_1"], np.nan)
    with pytest.raises(WdtnoptError):
        penv.step(acts)


@pytest.mark.parametrize("bad", [["--set", "gamma=2"], ["--scenario", "no_such_file.toml"]])
def test_a_bad_config_value_or_scenario_leaves_no_out_folder(bad, tmp_path, capsys, monkeypatch):
    # a repeated --set was refused before the folder was made, but a value out of range or a missing
    # scenario file left an empty --out folder behind
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", "--n-mus", "2", "--n-bss", "2", "--steps", "10", "--quiet", *bad,
                            "--out", str(tmp_path / "new" / "run")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "new").exists()
