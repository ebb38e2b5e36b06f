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


def _write_table(path, scale=1.0, offset=(0.0, 0.0)):
    rows = ["time_s,id,x_m,y_m"]
    for v in range(4):
        for k in range(40):
            rows.append(f"{k * 0.5},veh{v},{(100 + 200 * v + 3 * k) * scale + offset[0]},"
                        f"{(150 + 100 * v + 2 * k) * scale + offset[1]}")
    path.write_text("\n".join(rows) + "\n")
    return path


# 4. a table whose x_m, y_m hold degrees (a lon/lat export under the wrong header) or kilometres
#    replayed every MU within a metre of the others, silently (an FCD file in degrees warned)
@pytest.mark.parametrize("scale, offset", [(1e-5, (11.57, 48.13)), (1e-3, (0.0, 0.0))], ids=["degrees", "km"])
def test_a_table_in_degrees_or_kilometres_under_metre_columns_warns(tmp_path, scale, offset):
    from wdtnopt import generate_trace

    sc = Scenario.paper(n_mus=3, n_bss=2)
    bad = _write_table(tmp_path / "wrong_units.csv", scale, offset)
    with pytest.warns(UserWarning, match="x_m, y_m are metres.*lon_deg, lat_deg"):
        tr = generate_trace(sc, seed=0, slots=20, mobility=str(bad))
    assert np.ptp(tr.positions[..., 0]) < 1.0 and np.ptp(tr.positions[..., 1]) < 1.0   # what it is about
    good = _write_table(tmp_path / "metres.csv")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generate_trace(sc, seed=0, slots=20, mobility=str(good))


# 5. config values out of their domain ran silently (a clip range <= 0 froze or inverted PPO's
#    clip, a gradient-norm clip <= 0 zeroed or reversed every gradient) or crashed inside torch
#    (Huber delta, Adam epsilon, exploration noise, power decades past a float's range); a MADDPG
#    warm-up above its replay buffer's size never reached its first update
@pytest.mark.parametrize("algo, key, value", [
    ("beta-happo", "clip", 0.0), ("beta-happo", "clip", -1.0), ("beta-happo", "max_grad_norm", 0.0),
    ("beta-mappo", "max_grad_norm", -1.0), ("gaussian-happo", "huber_delta", 0.0), ("beta-happo", "adam_eps", 0.0),
    ("beta-happo", "adam_eps", -1e-5), ("maddpg", "noise_std", -0.1), ("maddpg", "gumbel_tau", 0.0),
    ("maddpg", "max_grad_norm", 0.0), ("maddpg", "warmup_steps", -1), ("beta-happo", "power_decades", 400.0),
    ("maddpg", "power_decades", 309.0)])
def test_learner_settings_out_of_their_domain_are_named(algo, key, value):
    from wdtnopt import WdtnoptError
    from wdtnopt.agents.trainer import Trainer

    with pytest.raises(WdtnoptError, match=f"config: {key}: expected"):
        Trainer(algo, TINY, 0, {**_config(algo), key: value})


def test_a_maddpg_warmup_above_the_replay_buffer_is_named_and_equal_is_trained():
    from wdtnopt import WdtnoptError
    from wdtnopt.agents.trainer import Trainer

    with pytest.raises(WdtnoptError, match=r"warmup_steps: expected at most buffer_size \(16\)"):
        Trainer("maddpg", TINY, 0, {**OFF_POLICY, "buffer_size": 16, "warmup_steps": 17})
    tr = Trainer("maddpg", TINY, 0, {**OFF_POLICY, "buffer_size": 16, "warmup_steps": 16})
    assert np.isfinite(tr.train_iteration()["q_mean"])     # 16 transitions: the first update runs


def test_the_largest_power_decades_accepted_trains_finite():
    from wdtnopt.agents.core import power_fraction
    from wdtnopt.agents.registry import MAX_POWER_DECADES
    from wdtnopt.agents.trainer import Trainer

    u = np.array([0.0, 0.5, 1.0])
    assert np.array_equal(power_fraction(u, MAX_POWER_DECADES)[[0, 2]], [0.0, 1.0])
    assert power_fraction(u, MAX_POWER_DECADES)[1] == pytest.approx(10.0 ** (-MAX_POWER_DECADES / 2), rel=1e-9)
    tr = Trainer("beta-happo", TINY, 0, {**SMALL, "action_map": "raw", "bs_map": "raw",
                                         "power_decades": MAX_POWER_DECADES})
    assert np.isfinite(tr.train_iteration()["reward"])


# 6. networks too large to allocate ended `wdtnopt train` in a 47-line traceback of torch's allocator
#    (critic_hidden=1000000 on this machine); whether an allocation fails depends on the machine's memory and
#    overcommit policy, so the allocators' failures are raised where they happen
@pytest.mark.parametrize("where, exc", [
    ("wdtnopt.agents.happo.mlp", RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                                             "can't allocate memory: you tried to allocate 4000000000000 bytes.")),
    ("wdtnopt.agents.trainer.BatchedWdtnEnv", MemoryError("Unable to allocate 29.8 GiB for an array"))])
def test_networks_too_large_to_allocate_are_one_line_naming_the_sizes(tmp_path, capsys, monkeypatch, where, exc):
    from cli_runner import run_cli

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(where, fail)
    code, _, err = run_cli(["train", "--out", str(tmp_path / "run"), "--steps", "8", "--n-mus", "2", "--n-bss", "2",
                            "--quiet", "--set", "critic_hidden=48"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("error: config: out of memory") and "critic_hidden=48" in err
    assert str(exc).split(".")[0][:20] in err


def test_a_torch_error_that_is_not_about_memory_is_not_hidden(monkeypatch):
    from wdtnopt.agents.trainer import Trainer

    def fail(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr("wdtnopt.agents.happo.mlp", fail)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        Trainer("beta-happo", TINY, 0, SMALL)


# 7. a table with time_s in milliseconds was refused as "0 vehicles have positions in at least 50%
#    of the slots" without a word about why: its records are 1000x further apart than max_gap_s
def test_records_far_sparser_than_max_gap_say_so(tmp_path):
    from wdtnopt import MobilityError, generate_trace

    rows = ["time_s,id,x_m,y_m"] + [f"{k * 500},veh{v},{100 + 200 * v + k},{300 + k}" for v in range(4) for k in range(60)]
    ms = tmp_path / "ms.csv"
    ms.write_text("\n".join(rows) + "\n")
    with pytest.raises(MobilityError, match=r"typically 500 s apart, more than max_gap_s = 5 s \(time_s must be in "
                                            r"seconds"):
        generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=20, mobility=str(ms))
    # records 0.5 s apart of vehicles each on the road for 5 s only: refused without that hint
    rows = ["time_s,id,x_m,y_m"] + [f"{10 * v + k * 0.5},veh{v},{100 + 200 * v + k},{300 + k}"
                                    for v in range(8) for k in range(10)]
    brief = tmp_path / "brief.csv"
    brief.write_text("\n".join(rows) + "\n")
    with pytest.raises(MobilityError, match="vehicles have positions in at least") as info:
        generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=40, mobility=str(brief))
    assert "apart" not in str(info.value)


# 8. docs/env.md said reset() draws from the generator of the constructor's seed; reset(seed=s)
#    reseeds it (Gymnasium's rule), as the docs now say
def test_resets_after_a_seeded_reset_follow_that_seed():
    from wdtnopt.env import parallel_env

    def gains(e, k):
        out = []
        for _ in range(k):
            e.reset()
            out.append(e.trace.gain.copy())
        return out

    sc = Scenario.paper(n_mus=2, n_bss=2)
    e = parallel_env(scenario=sc, seed=0, slots=3)
    e.reset(seed=9)
    after = gains(e, 3)
    assert all(np.array_equal(a, b) for a, b in zip(after, gains(parallel_env(scenario=sc, seed=9, slots=3), 3)))
    assert not any(np.array_equal(a, b) for a, b in zip(after, gains(parallel_env(scenario=sc, seed=0, slots=3), 3)))


# 9. a warning on the command line came out as Python prints it, a 'path/mobility.py:970:
#    UserWarning:' header and a line of the package's source; it is one 'warning: ...' line now
def test_a_warning_on_the_command_line_is_one_line(tmp_path):
    import subprocess
    import sys

    bad = _write_table(tmp_path / "km.csv", 1e-3)
    done = subprocess.run([sys.executable, "-m", "wdtnopt", "simulate", "--mobility", str(bad), "--n-mus", "3",
                           "--n-bss", "2", "--slots", "5", "--policy", "static"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: km.csv: every position lies within"), done.stderr
    assert ".py:" not in done.stderr


def _fcd(path, stamp):
    steps = []
    for k in range(30):
        cars = "".join(f'<vehicle id="c{v}" x="{100 + 150 * v + 4 * k}" y="{200 + 60 * v}" angle="90" speed="8"/>'
                       for v in range(3))
        steps.append(f'<timestep time="{stamp(3600.0 + 0.5 * k)}">{cars}</timestep>')
    path.write_text('<?xml version="1.0"?>\n<fcd-export>\n' + "\n".join(steps) + "\n</fcd-export>\n")
    return path


# 10. SUMO writes times as [D:]HH:MM:SS with --human-readable-time; such an FCD file was refused
#     ("expected a number"), although SUMO itself reads the form back
def test_an_fcd_file_with_sumo_human_readable_times_reads_like_seconds(tmp_path):
    from wdtnopt import MobilityError, generate_trace
    from wdtnopt.processes.mobility import read_fcd

    def clock(t):
        return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:05.2f}"

    plain = read_fcd(_fcd(tmp_path / "s.xml", lambda t: f"{t:.2f}"))
    human = read_fcd(_fcd(tmp_path / "h.xml", clock))
    assert np.array_equal(human.time_s, plain.time_s) and human.time_s[0] == 3600.0
    assert np.array_equal(human.x_m, plain.x_m)
    sc = Scenario.paper(n_mus=3, n_bss=2)
    a = generate_trace(sc, seed=1, slots=20, mobility=str(tmp_path / "s.xml"))
    b = generate_trace(sc, seed=1, slots=20, mobility=str(tmp_path / "h.xml"))
    assert np.array_equal(a.positions, b.positions)
    with_days = read_fcd(_fcd(tmp_path / "d.xml", lambda t: "1:" + clock(t)))
    assert with_days.time_s[0] == 86400.0 + 3600.0
    for bad in ("00:61:00", "1:30", "01:00:1e3"):
        (tmp_path / "bad.xml").write_text(f'<fcd-export><timestep time="{bad}"></timestep></fcd-export>')
        with pytest.raises(MobilityError, match=r"bad.xml line 1: <timestep> attribute time: expected seconds or "
                                                r"SUMO's \[D:\]HH:MM:SS"):
            read_fcd(tmp_path / "bad.xml")


# 11. on an 80-column output (a pipe, a log file) the policy column was cut to "pretrained…", so
#     `--policy pretrained:beta-happo --policy pretrained:beta-mappo` printed two rows of the same name
def _policy_cells(text):
    return "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))


def test_long_policy_names_are_never_cut_in_the_tables(capsys):
    import io

    from rich.console import Console

    from cli_runner import run_cli
    from wdtnopt.bounds import GapReport, GapRow

    code, out, err = run_cli(["simulate", "--slots", "2", "--policy", "pretrained:beta-happo", "--policy",
                              "pretrained:beta-mappo"], capsys)
    assert code == 0, err
    assert "…" not in out
    assert "pretrained:beta-happo" in _policy_cells(out) and "pretrained:beta-mappo" in _policy_cells(out)
    names = ["pretrained:beta-happo", "pretrained:beta-mappo", "checkpoint:runs/a/very/long/folder/name"]
    buf = io.StringIO()
    Console(file=buf, width=80).print(GapReport([GapRow(n, 3e-4, 0.01, 2.9e-4, 0.0345) for n in names]).table())
    assert "…" not in buf.getvalue() and all(n in _policy_cells(buf.getvalue()) for n in names)


# 12. an empty output name (`--out "$DIR"` with DIR unset) meant the current folder: `wdtnopt bench`
#     and `wdtnopt train` spread their tasks/, agents/, CSVs, figures and checkpoint there, and
#     `simulate -o ""` / `solve -o ""` silently wrote nothing
@pytest.mark.parametrize("args", [["simulate", "-o"], ["solve", "SNAP", "-o"], ["bench", "paper", "--out"],
                                  ["train", "--out"], ["snapshot", "-o"], ["bound", "-o"], ["gap", "-o"]],
                         ids=lambda a: a[0])
def test_an_empty_output_name_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch, args):
    from cli_runner import run_cli
    from wdtnopt.testing import tiny_snapshot

    tiny_snapshot(0).save(tmp_path / "snap.json")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli([a.replace("SNAP", "snap.json") for a in args] + [""], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "expected a file or folder name, got ''" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.json"]     # nothing written


# 13. docs/mobility.md: Trainer(..., mobility=) takes what generate_trace takes; a source object
#     was kept as its str() ("TableFile(path='t.csv', rules=...)") and the environments then looked
#     for a file of that name
def test_trainer_takes_a_loaded_mobility_file_like_its_path(tmp_path):
    from wdtnopt import WdtnoptError
    from wdtnopt.agents.trainer import Trainer
    from wdtnopt.processes.mobility import CleaningRules, load_mobility

    table = str(_write_table(tmp_path / "t.csv"))
    sc = Scenario.paper(n_mus=3, n_bss=2)
    by_path = Trainer("beta-happo", sc, 0, SMALL, mobility=table)
    by_source = Trainer("beta-happo", sc, 0, SMALL, mobility=load_mobility(table))
    assert by_source.mobility == table
    assert _rewards(by_source, 2) == _rewards(by_path, 2)
    by_source.save(tmp_path / "run")
    assert Trainer.load(tmp_path / "run").mobility == table
    with pytest.raises(WdtnoptError, match="mobility: a checkpoint keeps the mobility file's path"):
        Trainer("beta-happo", sc, 0, SMALL, mobility=load_mobility(table, rules=CleaningRules(max_gap_s=1.0)))
