"""Newcomer QA, session 14b: an RL researcher's first contact with the environment, the
checkpoints and the documented commands."""
from __future__ import annotations

import copy
import shutil

import pytest

from cli_runner import run_cli

TRAIN = ["train", "--algo", "beta-happo", "--steps", "1", "--n-mus", "2", "--n-bss", "1", "--quiet",
         "--set", "n_envs=2", "--set", "rollout_steps=5"]


def _script(monkeypatch, name: str):
    """``benchmarks/NAME.py`` imported as its own module (the scripts import each other and
    ``benchmarks`` from the repository root)."""
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root / "benchmarks"))
    monkeypatch.syspath_prepend(str(root))
    return importlib.import_module(name)


def _refused(mod, monkeypatch, capsys, argv: list, says: str):
    """``mod.main()`` with ``argv``: exit 2 and one stderr line ``SCRIPT.py: error: ...`` holding
    ``says``; the captured output."""
    import sys

    script = f"{mod.__name__}.py"
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with pytest.raises(SystemExit) as e:
        mod.main()
    cap = capsys.readouterr()
    assert e.value.code == 2 and len(cap.err.strip().splitlines()) == 1, cap.err
    assert cap.err.startswith(f"{script}: error: ") and says in cap.err, cap.err
    return cap



@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny training run (2 MUs, 1 BS, 10 env steps) and its payload."""
    import torch

    from wdtnopt.cli import main
    out = tmp_path_factory.mktemp("qa14b") / "run"
    try:
        main(TRAIN + ["--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return out, torch.load(out / "checkpoint.pt", weights_only=True)


# a damaged or hand-edited checkpoint whose keys are all there but whose plain fields are not of
# their form: before, `int(payload["seed"])`, `dict(payload["scenario"])` and
# `int(payload["env_steps"])` raised ValueError/TypeError out of simulate and train --resume
# (a traceback, exit 1) instead of the one-line error the other damaged checkpoints give
@pytest.mark.parametrize("key,value", [("seed", "a"), ("seed", -1), ("seed", 1.5), ("scenario", [1, 2]),
                                       ("env_steps", "x"), ("iteration", -3), ("algo", 5)])
@pytest.mark.parametrize("command", ["simulate", "resume"])
def test_checkpoint_with_a_field_of_the_wrong_form_is_one_error_line(tiny_run, tmp_path, monkeypatch, capsys,
                                                                      key, value, command):
    import torch
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    run, payload = tiny_run
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    damaged = copy.deepcopy(payload)
    damaged[key] = value
    torch.save(damaged, bad / "checkpoint.pt")
    if command == "simulate":
        args = ["simulate", "--policy", f"checkpoint:{bad}", "--n-mus", "2", "--n-bss", "1", "--slots", "2"]
    else:
        args = ["train", "--out", str(bad), "--resume", "--steps", "20", "--quiet"]
    code, out, err = run_cli(args, capsys)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: checkpoint ") and f"{key}: expected" in lines[0], err


def test_checkpoint_of_an_unknown_algorithm_names_the_file(tiny_run, tmp_path, monkeypatch, capsys):
    # simulate said "error: algo: unknown algorithm 'ppo'" without the file, while train --resume
    # of the same file named it
    import torch
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    run, payload = tiny_run
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    damaged = copy.deepcopy(payload)
    damaged["algo"] = "ppo"
    torch.save(damaged, bad / "checkpoint.pt")
    code, out, err = run_cli(["simulate", "--policy", f"checkpoint:{bad}", "--n-mus", "2", "--n-bss", "1",
                              "--slots", "2"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        f"error: checkpoint {bad / 'checkpoint.pt'}: algo: unknown algorithm 'ppo'; expected one of "
        "beta-happo, gaussian-happo, beta-mappo, maddpg"], err


def test_the_untouched_checkpoint_still_loads_and_resumes(tiny_run, tmp_path, monkeypatch, capsys):
    # the checks accept what `wdtnopt train` writes (and the shipped pretrained files)
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    run, _ = tiny_run
    copy_ = tmp_path / "ok"
    shutil.copytree(run, copy_)
    code, out, err = run_cli(["simulate", "--policy", f"checkpoint:{copy_}", "--n-mus", "2", "--n-bss", "1",
                              "--slots", "2"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["train", "--out", str(copy_), "--resume", "--steps", "20", "--quiet"], capsys)
    assert code == 0 and "20 env steps" in out, (out, err)
    from wdtnopt.agents.pretrained import _path, pretrained_names, read_pretrained
    for name in pretrained_names():
        read_pretrained(_path(name))


def test_pretrained_file_without_its_actors_is_one_error(tmp_path):
    # read_pretrained checked the format only: a file that lost "actors" (or "seed") raised a
    # KeyError where the policy is built
    import torch

    from wdtnopt.agents.pretrained import PretrainedPolicy, _path, read_pretrained
    from wdtnopt.errors import WdtnoptError
    payload = torch.load(_path("maddpg"), weights_only=True)
    for key, value in (("actors", None), ("seed", "zero")):
        damaged = dict(payload)
        if value is None:
            del damaged[key]
        else:
            damaged[key] = value
        torch.save(damaged, tmp_path / "x.pt")
        with pytest.raises(WdtnoptError, match=f"pretrained .*x.pt: .*{key}"):
            read_pretrained(tmp_path / "x.pt")
    assert PretrainedPolicy("maddpg").name == "pretrained:maddpg"


def test_every_test_file_the_docs_name_exists():
    # docs/testing.md told a newcomer to run `pytest -q tests/test_exact.py`, a file that does not
    # exist (pytest: "file or directory not found", exit 4); every tests/test_*.py named in the
    # README, BENCHMARKS.md, docs/ and the package's docstrings must be in the tree
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    files = [root / "README.md", root / "BENCHMARKS.md", *sorted((root / "docs").glob("*.md")),
             *sorted((root / "wdtnopt").rglob("*.py"))]
    named = {m for p in files for m in re.findall(r"tests/(test_[A-Za-z0-9_]+\.py)", p.read_text(errors="replace"))}
    assert named, "the docs name test files"
    missing = sorted(n for n in named if not (root / "tests" / n).is_file())
    assert not missing, missing


def test_output_folder_given_with_a_trailing_slash_is_shown_once(tmp_path, monkeypatch, capsys):
    # README's `wdtnopt simulate ... -o out/` printed "per-slot tables written to out//", and
    # `wdtnopt gap -o gaps/` "wrote gaps//gap.csv"
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    monkeypatch.setenv("COLUMNS", "300")   # one line per message
    small = ["--n-mus", "2", "--n-bss", "1", "--slots", "2"]
    out = f"{tmp_path / 'sim'}/"
    code, text, err = run_cli(["simulate", "--policy", "follow", *small, "-o", out], capsys)
    assert code == 0, err
    # the console may have been built with another width by an earlier test of the same process
    # (rich reads COLUMNS once) and fold a long path anywhere: compare with all white space removed
    flat = "".join(text.split())
    assert f"per-slottableswrittento{tmp_path / 'sim'}/" in flat and "//" not in text, text
    code, text, err = run_cli(["gap", "--policy", "follow", "--iters", "1", *small, "-o", f"{tmp_path / 'gaps'}/"], capsys)
    assert code == 0, err
    flat = "".join(text.split())
    assert f"wrote{tmp_path / 'gaps' / 'gap.csv'}andgap.md" in flat and "//" not in text, text
    assert (tmp_path / "gaps" / "gap.csv").is_file()


def test_pretrained_agent_at_another_size_names_itself_and_the_way_out(monkeypatch, capsys):
    # `simulate --policy pretrained:maddpg --n-mus 3 --n-bss 2` said "error: checkpoint
    # /.../wdtnopt/pretrained/maddpg.pt: trained for 30 MUs and 5 BSs, ...": the user named no
    # checkpoint, and the line did not say that the shipped agents exist for the default size only
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    code, out, err = run_cli(["simulate", "--policy", "pretrained:maddpg", "--n-mus", "3", "--n-bss", "2",
                              "--slots", "2"], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: pretrained:maddpg ("), err
    assert "trained for 30 MUs and 5 BSs, the trace has 3 MUs and 2 BSs" in lines[0], err
    assert "wdtnopt train --algo maddpg --n-mus N --n-bss M --out DIR" in lines[0], err


def test_huge_finite_tilts_split_the_cpu_as_their_ratios_do():
    # bs_action="tilt_over_kkt": a BS's action is a positive multiplier of the KKT split, and scaling
    # all of them changes nothing (docs/env.md). Tilts near the float range (1e308, finite, so not
    # refused as inf is) overflowed in multiplier x share (Hz): NaN CPU and every sync failed, with
    # numpy's overflow warning. Reference: the same ratios at a small scale.
    import warnings

    import numpy as np

    from wdtnopt import Scenario
    from wdtnopt.env import BatchedWdtnEnv
    sc = Scenario.paper(n_mus=3, n_bss=1, request_prob=1.0, cpu_hz=1.5e9)
    mode = dict(mu_action="power_over_need", bs_action="tilt_over_kkt")

    def step(tilts):
        env = BatchedWdtnEnv(sc, n_envs=1, seed=0, slots=5, **mode)
        env.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, reward, _, info = env.step(np.ones((1, 3)), np.array([[tilts]], float), np.zeros((1, 3)))
        return reward, info["energy_j"], info["failures"]

    for ratios in ([4.0, 2.0, 1.0], [1.0, 1.0, 1.0], [1.0, 3.0, 9.0]):
        small = step(ratios)
        assert small[2][0] < 3   # a case where the split matters: not everything fails
        huge = step([r * 1e307 for r in ratios])
        np.testing.assert_allclose(huge[0], small[0], rtol=1e-9)
        np.testing.assert_allclose(huge[1], small[1], rtol=1e-9)
        np.testing.assert_array_equal(huge[2], small[2])


def test_infinite_power_over_need_is_the_cap_without_a_numpy_warning():
    # mu_action="power_over_need": a MU transmits min(p_need * max(a, 1), p_max), so a = inf is
    # p_max (docs/env.md); the MUs that gave up have p_need 0 and inf * 0 raised numpy's
    # "invalid value encountered in multiply" at every such step. Reference: a = 1e30 (finite,
    # far above p_max / p_need) gives the same slot.
    import warnings

    import numpy as np

    from wdtnopt import Scenario
    from wdtnopt.env import BatchedWdtnEnv
    sc = Scenario.paper(n_mus=3, n_bss=1, request_prob=1.0, cpu_hz=1.5e9)

    def step(a):
        env = BatchedWdtnEnv(sc, n_envs=1, seed=0, slots=5, mu_action="power_over_need", bs_action="tilt_over_kkt")
        env.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, reward, _, info = env.step(np.full((1, 3), a), np.ones((1, 1, 3)), np.zeros((1, 3)))
        return reward, info["energy_j"], info["failures"], info["gave_up"]

    ref, got = step(1e30), step(np.inf)
    assert ref[3].any() and not ref[3].all()   # some MUs give up, some transmit (at p_max)
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("bad,says", [(["--policies", "follow", "checkpoint:{tmp}/nonexist"], "file not found"),
                                      (["--policies", "follow", "checkpoint:{run}"], "trained for 2 MUs and 1 BS"),
                                      (["--policies", "follow", "nope"], "unknown policy 'nope'"),
                                      (["--traces", "0"], "--traces: expected an integer >= 1"),
                                      (["--gap-iters", "-1"], "--gap-iters: expected an integer >= 0")])
def test_eval_agents_refuses_bad_input_in_one_line_before_running(tiny_run, tmp_path, monkeypatch, capsys, bad, says):
    # benchmarks/eval_agents.py (docs/agents.md's evaluation of the shipped agents) ended in a
    # traceback for a wrong checkpoint path or size (after the policies before it had run) and
    # for --traces 0 (numpy's "zero-size array to reduction operation")
    run, _ = tiny_run
    out = tmp_path / "eval.csv"
    args = [a.format(tmp=tmp_path, run=run) for a in bad]
    cap = _refused(_script(monkeypatch, "eval_agents"), monkeypatch, capsys,
                   ["--out", str(out), "--traces", "1", "--slots", "2", *args], says)
    assert cap.out == "" and not out.exists()   # nothing ran, nothing written


@pytest.mark.parametrize("bad,says", [(["--agent", "checkpoint:{tmp}/nonexist"], "file not found"),
                                      (["--agent", "checkpoint:{run}"], "trained for 2 MUs and 1 BS"),
                                      (["--agent", "follow"], "--agent: expected checkpoint:DIR"),
                                      (["--traces", "0"], "--traces: expected an integer >= 1")])
def test_gap_decomposition_refuses_bad_input_in_one_line(tiny_run, tmp_path, monkeypatch, capsys, bad, says):
    # benchmarks/gap_decomposition.py: the same tracebacks as eval_agents.py, and `--agent follow`
    # (a rule, not a learned agent) ended in "AttributeError: 'FollowPolicy' object has no
    # attribute '_pending'"
    run, _ = tiny_run
    out = tmp_path / "gaps.csv"
    args = [a.format(tmp=tmp_path, run=run) for a in bad]
    cap = _refused(_script(monkeypatch, "gap_decomposition"), monkeypatch, capsys,
                   ["--out", str(out), "--traces", "1", "--slots", "2", "--gap-iters", "0", *args], says)
    assert cap.out == "" and not out.exists()


@pytest.mark.parametrize("bad,says", [(["--algo", "nope", "--preset", "smoke"], "unknown algorithm 'nope'"),
                                      (["--algo", "beta-happo", "--preset", "smoke", "--set", "foo=1"],
                                       "unknown option(s) foo"),
                                      (["--algo", "beta-happo", "--traces", "0"], "--traces: expected an integer >= 1"),
                                      (["--algo", "beta-happo", "--steps", "0"], "--steps: expected an integer >= 1")])
def test_make_pretrained_refuses_bad_input_in_one_line_before_training(tmp_path, monkeypatch, capsys, bad, says):
    # benchmarks/make_pretrained.py ended in a traceback for an unknown --algo or --set key, and took
    # --traces 0 into a 200,000-step training that would crash at its evaluation
    out = tmp_path / "pre"
    _refused(_script(monkeypatch, "make_pretrained"), monkeypatch, capsys, ["--out", str(out), *bad], says)
    assert not out.exists()


@pytest.mark.parametrize("bad,says", [(["--agent", "checkpoint:{tmp}/nonexist"], "file not found"),
                                      (["--agent", "checkpoint:{run}"], "trained for 2 MUs and 1 BS"),
                                      (["--agent", "follow"], "--agent: expected a learned agent"),
                                      (["--traces", "0"], "--traces: expected an integer >= 1")])
def test_deterministic_actions_refuses_bad_input_in_one_line(tiny_run, tmp_path, monkeypatch, capsys, bad, says):
    # benchmarks/deterministic_actions.py: tracebacks for a wrong path or size, for --agent follow
    # ("'FollowPolicy' object has no attribute 'agent'") and for --traces 0 ("need at least one
    # array to concatenate")
    run, _ = tiny_run
    args = [a.format(tmp=tmp_path, run=run) for a in bad]
    cap = _refused(_script(monkeypatch, "deterministic_actions"), monkeypatch, capsys,
                   ["--traces", "1", "--slots", "2", *args], says)
    assert cap.out == ""


@pytest.mark.parametrize("bad,says", [(["quality", "--set", "foo=1"], "unknown option(s) foo"),
                                      (["quality", "--seeds", "-1"], "--seeds: expected integers >= 0"),
                                      (["quality", "--n-mus", "0"], "--n-mus: expected an integer >= 1"),
                                      (["speed", "--iterations", "0"], "--iterations: expected an integer >= 1")])
def test_bench_rl_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys, bad, says):
    # benchmarks/bench_rl.py (docs/agents.md's learning-quality measurements): a bad --set, a negative
    # seed or N = 0 ended in a traceback
    bench_rl = _script(monkeypatch, "bench_rl")
    monkeypatch.setattr(bench_rl, "RESULTS", tmp_path / "results")
    extra = ["--n-mus", "2", "--steps", "1", "--algos", "beta-happo", "--tag", "t"] if bad[0] == "quality" else \
        ["--n-mus", "2", "--algos", "beta-happo"]
    _refused(bench_rl, monkeypatch, capsys, [bad[0], *extra, *bad[1:]], says)
    assert not list((tmp_path / "results").glob("*.csv")) if (tmp_path / "results").exists() else True


@pytest.mark.parametrize("n,m,listed", [(1, 1, "mu_0, bs_0 and controller"), (2, 1, "mu_0..mu_1, bs_0 and controller"),
                                        (1, 3, "mu_0, bs_0..bs_2 and controller")])
def test_unknown_agent_error_lists_a_single_agent_by_name(n, m, listed):
    # at 1 MU or 1 BS the unknown-agent error listed "mu_0..mu_0" / "bs_0..bs_0"
    from wdtnopt import Scenario
    from wdtnopt.env import parallel_env
    from wdtnopt.errors import WdtnoptError
    pe = parallel_env(scenario=Scenario.paper(n_mus=n, n_bss=m), slots=2)
    with pytest.raises(WdtnoptError) as e:
        pe.observation_space("mu_9")
    assert str(e.value).endswith(f"the agents are {listed}"), str(e.value)
    pe.reset(seed=0)
    with pytest.raises(WdtnoptError) as e:
        pe.step({"contoller": 0})
    assert f"the agents are {listed}" in str(e.value), str(e.value)


@pytest.mark.parametrize("bad, says", [(["--seeds", "3", "-1"], "--seeds: expected integers >= 0, got -1"),
                                       (["--samples", "0"], "--samples: expected an integer >= 1, got 0"),
                                       (["--jsonl", "/nonexistent/folder/x.jsonl"], "--jsonl: cannot append to")])
def test_bench_lyapunov_seeds_refuses_bad_input_in_one_line_before_any_run(monkeypatch, capsys, bad, says):
    # benchmarks/bench_lyapunov_seeds.py (left by qa14b): --seeds -1 ended in a traceback, and an
    # unwritable --jsonl failed only after the first (minute-long) run
    mod = _script(monkeypatch, "bench_lyapunov_seeds")
    ran = []
    monkeypatch.setattr(mod, "generate_trace", lambda *a, **k: ran.append(a))
    _refused(mod, monkeypatch, capsys, bad, says)
    assert not ran
