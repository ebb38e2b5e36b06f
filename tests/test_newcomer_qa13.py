"""Newcomer QA, session 13: paths the earlier passes left (the README and docs examples run as
written, the CLI's edges, the public functions at their smallest inputs)."""
from __future__ import annotations

import pytest

from cli_runner import run_cli

TRAIN = ["train", "--algo", "beta-happo", "--steps", "1", "--n-mus", "2", "--n-bss", "1"]


@pytest.mark.parametrize("force,shown", [("0", False), ("1", True)])
def test_train_progress_bar_follows_wdtnopt_progress(force, shown, monkeypatch, tmp_path, capsys):
    # README: long work shows a bar "on a terminal (WDTNOPT_PROGRESS=0/1 to force it off/on)";
    # train drew its tqdm bar on stderr always, into pipes and logs and with WDTNOPT_PROGRESS=0.
    # Under pytest stderr is no terminal, so only =1 may show it; --quiet silences even that.
    monkeypatch.setenv("WDTNOPT_PROGRESS", force)
    code, out, err = run_cli(TRAIN + ["--out", str(tmp_path / "a")], capsys)
    assert code == 0 and "1600 env steps" in out, (out, err)
    assert ("train beta-happo" in err and "step/s" in err) is shown, err
    code, out, err = run_cli(TRAIN + ["--out", str(tmp_path / "b"), "--quiet"], capsys)
    assert code == 0 and "step/s" not in err, err


def test_one_mu_one_bs_one_slot_are_counted_in_the_singular(monkeypatch, tmp_path, capsys):
    # the result lines of simulate, bound, gap and solve said "1 slots", "N=1 MUs, M=1 BSs",
    # "1 dual evaluations"; the messages elsewhere count nouns through wording.counted
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    small = ["--n-mus", "1", "--n-bss", "1", "--slots", "1"]
    texts = []
    for args in (["simulate", "--policy", "follow"], ["bound", "--iters", "1"], ["gap", "--policy", "follow", "--iters", "1"]):
        code, out, err = run_cli(args + small, capsys)
        assert code == 0, err
        texts.append(" ".join(out.split()))   # the tables wrap their titles
    snap = tmp_path / "s.json"
    assert run_cli(["snapshot", "--slots", "1", "--n-mus", "1", "--n-bss", "1", "-o", str(snap)], capsys)[0] == 0
    code, out, err = run_cli(["solve", str(snap)], capsys)
    assert code == 0, err
    texts.append(" ".join(out.split()))
    sim, bound, gap, solve = texts
    assert "N=1 MU, M=1 BS, 1 slot, seed 0" in sim, sim
    assert "N=1, 1 slot, seed 0" in bound and "(1 dual evaluation," in bound, bound
    assert "N=1, 1 slot, seed 0" in gap, gap
    assert "1 MU, 1 server:" in solve, solve
    for text in texts:
        for plural in ("1 slots", "1 MUs", "1 BSs", "1 servers", "1 dual evaluations"):
            assert plural not in text, (plural, text)


def test_evaluate_names_a_mistyped_decision_key_and_reads_a_solutions_dict():
    # a mapping's keys outside the decision fields were ignored: "levels" for "level" on a menu
    # snapshot evaluated every MU at level 0, an objective 7 times the solver's and a violation,
    # with no word about the key. The reference: the solver's own objective at its levels
    import json

    from wdtnopt import evaluate, solve
    from wdtnopt.errors import DecisionError
    from wdtnopt.testing import tiny_snapshot, with_menu

    s = with_menu(tiny_snapshot(1, N=3, M=1), 1)
    sol = solve(s)
    assert sol.status == "optimal" and sol.level.any()
    d = {"placement": sol.placement, "served": sol.served, "tx_time": sol.tx_time, "cpu_hz": sol.cpu_hz}
    assert evaluate(s, {**d, "level": sol.level}).objective == sol.objective
    with pytest.raises(DecisionError, match="levels: unknown field.*placement, served, tx_time, cpu_hz, power, level"):
        evaluate(s, {**d, "levels": sol.level})
    # what solve writes (to_dict, and the JSON file of `wdtnopt solve -o`) still reads as a decision
    assert evaluate(s, sol.to_dict()).objective == sol.objective
    assert evaluate(s, json.loads(json.dumps(sol.to_dict()))).objective == sol.objective


def test_snapshot_replace_names_an_unknown_field_as_from_dict_does():
    # replace(allow_migrations=False) was a TypeError from __init__ ("unexpected keyword argument"),
    # while from_dict names the same key as an unknown field of the snapshot
    from wdtnopt.errors import SnapshotError
    from wdtnopt.snapshot import Snapshot
    from wdtnopt.testing import one_cell

    s = one_cell()
    with pytest.raises(SnapshotError, match="allow_migrations: unknown field") as replaced:
        s.replace(allow_migrations=False)
    with pytest.raises(SnapshotError, match="allow_migrations: unknown field") as read:
        Snapshot.from_dict({**s.to_dict(), "allow_migrations": False})
    assert str(replaced.value) == str(read.value)
    assert s.replace(allow_migration=False).allow_migration is False   # a known field still replaces


def _snapshot_file(tmp_path, capsys):
    snap = tmp_path / "s.json"
    assert run_cli(["snapshot", "--slots", "1", "--n-mus", "2", "--n-bss", "1", "-o", str(snap)], capsys)[0] == 0
    return snap


@pytest.mark.parametrize("cmd", ["solve", "bound", "simulate", "gap", "snapshot", "train", "bench"])
def test_an_output_path_through_a_file_is_refused_before_the_work(cmd, monkeypatch, tmp_path, capsys):
    # -o FILE/x.json ran the whole solve (or bound, simulate, ...) and then failed to write it
    # ("error: s.json: File exists", "Not a directory"): the result was lost at the end
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    snap = _snapshot_file(tmp_path, capsys)
    target = str(snap / "sub" / "out.json")
    small = ["--n-mus", "2", "--n-bss", "1", "--slots", "1"]
    args = {"solve": ["solve", str(snap), "-o", target], "bound": ["bound", *small, "-o", target],
            "simulate": ["simulate", *small, "-o", target], "gap": ["gap", "--policy", "follow", *small, "-o", target],
            "snapshot": ["snapshot", *small, "-o", target], "train": ["train", "--steps", "1", "--out", target],
            "bench": ["bench", "paper", "--limit", "1", "--out", target]}[cmd]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == "", (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{snap} is a file, not a folder" in lines[0], err
    assert ("'--out'" if cmd in ("train", "bench") else "'-o'") in lines[0], err   # the flag is named


def test_an_output_folder_still_missing_is_made_and_an_unwritable_one_refused(monkeypatch, tmp_path, capsys):
    import os

    snap = _snapshot_file(tmp_path, capsys)
    deep = tmp_path / "a" / "b" / "sol.json"
    code, out, err = run_cli(["solve", str(snap), "-o", str(deep)], capsys)
    assert code == 0 and deep.is_file(), err
    if os.geteuid() == 0:
        pytest.skip("root writes in a folder without write permission")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        code, out, err = run_cli(["solve", str(snap), "-o", str(locked / "x" / "sol.json")], capsys)
        assert code == 2 and "objective" not in out and f"no permission to write in {locked}" in err, (out, err)
    finally:
        locked.chmod(0o700)


def test_every_phony_make_target_has_a_recipe():
    # .PHONY named bench-smoke and fuzz, which had no rule: `make fuzz` said "Nothing to be done"
    # and exited 0, checking nothing
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split()
    for target in phony:
        rule = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M)
        assert rule, f"make {target}: no rule with a recipe"
    recipes = {t: re.search(rf"^{re.escape(t)}:.*\n((?:\t.*\n)+)", text, re.M).group(1) for t in phony}
    assert "benchmarks/fuzz_inputs.py --examples 2500" in recipes["fuzz"]      # README's command
    assert "wdtnopt bench paper --preset smoke" in recipes["bench-smoke"]


def test_testing_helpers_refuse_a_zero_size_and_a_one_level_menu():
    # tiny_snapshot(seed, N=0) read 0 as "draw a size" (a 4 x 2 snapshot came back) and
    # with_menu(levels=0) failed in numpy ("negative dimensions"); levels=1 (no menu) was accepted
    # although the docstring asks >= 2
    from wdtnopt import testing
    from wdtnopt.errors import ScenarioError

    with pytest.raises(ScenarioError, match="n_mus: must lie in"):
        testing.tiny_snapshot(1, N=0, M=2)
    with pytest.raises(ScenarioError, match="n_bss: must lie in"):
        testing.tiny_snapshot(1, N=2, M=0)
    s = testing.tiny_snapshot(1, N=1, M=1)          # the smallest sizes are still taken as given
    assert (s.n_mus, s.n_bss) == (1, 1)
    for levels in (0, 1, 2.0, True):
        with pytest.raises(ValueError, match="levels: expected an integer >= 2"):
            testing.with_menu(s, 0, levels=levels)
    assert testing.with_menu(s, 0, levels=2).n_levels == 2


def test_bound_value_at_and_tighten_take_eps_as_hindsight_bound_does():
    # HindsightBound.value_at(nan) was a bound of 0 and tighten(nan) spent its evaluations for
    # nothing, without a word; value_at(True) read as eps = 1. hindsight_bound refuses the same
    # values naming eps. The reference for the values still taken: the bound itself at its eps
    import numpy as np

    from wdtnopt import Scenario, WdtnoptError, generate_trace, hindsight_bound

    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=4)
    hb = hindsight_bound(tr)
    for bad in (float("nan"), -0.1, 1.5, True, np.array([True, False, True]), [0.1, 0.2], "x"):
        with pytest.raises(WdtnoptError, match=r"eps: expected a number or 3 numbers in \[0, 1\]"):
            hindsight_bound(tr, eps=bad)
        with pytest.raises(WdtnoptError, match=r"eps: expected a number or 3 numbers in \[0, 1\]"):
            hb.value_at(bad)
        with pytest.raises(WdtnoptError, match=r"eps: expected a number or 3 numbers in \[0, 1\]"):
            hb.tighten(bad, 1)
    assert hb.value_at(tr.scenario.eps)[0] == hb.value_at(np.full(3, tr.scenario.eps))[0] > 0
    assert hb.value_at(0.0)[0] >= hb.value_at(tr.scenario.eps)[0] >= hb.value_at(1.0)[0] == 0.0


def test_hindsight_bound_takes_numpy_iters_and_refuses_a_progress_that_is_not_a_bool():
    # hindsight_bound(iters=np.int64(3)) and gap(iters=np.int64(2)) were refused ("expected an
    # integer >= 1, got np.int64(3)") while iters=True ran as 1 and progress="no" turned the bars on.
    # The reference for a numpy count: the same bound as the plain int gives
    import numpy as np

    from wdtnopt import Scenario, WdtnoptError, gap, generate_trace, hindsight_bound, simulate

    tr = generate_trace(Scenario.paper(n_mus=2, n_bss=1), seed=0, slots=3)
    assert hindsight_bound(tr, iters=np.int64(3)).energy_per_mu_slot == hindsight_bound(tr, iters=3).energy_per_mu_slot
    res = simulate("follow", tr)
    assert gap(res, tr, iters=np.int64(2)).rows == gap(res, tr, iters=2).rows
    with pytest.raises(WdtnoptError, match="iters: expected an integer >= 1, got True"):
        hindsight_bound(tr, iters=True)
    for bad in ("no", "0", 1, None):
        with pytest.raises(WdtnoptError, match="progress: expected True or False"):
            hindsight_bound(tr, progress=bad)
    hindsight_bound(tr, progress=np.bool_(False))


def test_migration_bound_names_iters_that_are_not_a_count():
    # migration_bound(iters=-1) returned a bound of 0 without a word (no point evaluated), 2.5 was
    # a TypeError from range(); the reference for the counts taken: numpy's 2 is the int 2
    import numpy as np

    from wdtnopt import Scenario, WdtnoptError, generate_trace, hindsight_bound, migration_bound

    tr = generate_trace(Scenario.paper(n_mus=2, n_bss=1), seed=0, slots=3)
    hb = hindsight_bound(tr)
    for bad in (-1, 2.5, True, "2"):
        with pytest.raises(WdtnoptError, match="iters: expected an integer >= 0"):
            migration_bound(tr, hb, iters=bad)
    two = migration_bound(tr, hb, iters=2).energy_per_mu_slot
    assert migration_bound(tr, hb, iters=np.int64(2)).energy_per_mu_slot == two > 0
    assert migration_bound(tr, hb, iters=0).energy_per_mu_slot > 0   # the start alone is a bound


@pytest.mark.parametrize("name", ["", ".", "folder"])
def test_saving_to_a_folder_or_an_empty_name_is_named_and_leaves_nothing(name, monkeypatch, tmp_path):
    # Snapshot.save, Scenario.save and SimResult.write_csv into a folder (or '') failed at the rename
    # with the temporary file's name: "Device or resource busy: '..x1y2.tmp' -> '.'"
    from wdtnopt import Scenario, generate_trace, simulate
    from wdtnopt.testing import one_cell

    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    res = simulate("follow", generate_trace(Scenario.paper(n_mus=2, n_bss=1), seed=0, slots=2))
    for save in (one_cell().save, Scenario.paper().save, res.write_csv):
        with pytest.raises(IsADirectoryError, match="expected a file name, got (a folder|an empty one)") as err:
            save(name)
        assert ".tmp" not in str(err.value), err.value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"] and not any((tmp_path / "folder").iterdir())


@pytest.mark.parametrize("cmd", ["solve", "simulate"])
def test_an_output_path_through_a_broken_link_is_refused_before_the_work(cmd, monkeypatch, tmp_path, capsys):
    # a dangling symbolic link on the way (-o link/sol.json, --out link) passed the check (it does not
    # "exist") and the work ran; the folder could then not be made: 'error: link: File exists', the
    # result lost at the end, as for a file on the way
    monkeypatch.setenv("WDTNOPT_PROGRESS", "0")
    snap = _snapshot_file(tmp_path, capsys)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere" / "deeper")
    small = ["--n-mus", "2", "--n-bss", "1", "--slots", "1"]
    args = {"solve": ["solve", str(snap), "-o", str(link / "sol.json")],
            "simulate": ["simulate", "--policy", "follow", *small, "-o", str(link)]}[cmd]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == "", (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{link} is a broken link" in lines[0] and "'-o'" in lines[0], err
    assert not (tmp_path / "nowhere").exists()     # nothing made
    # a link to an existing folder is a folder: written through it
    (tmp_path / "real").mkdir()
    good = tmp_path / "good"
    good.symlink_to(tmp_path / "real")
    args = {"solve": ["solve", str(snap), "-o", str(good / "sol.json")],
            "simulate": ["simulate", "--policy", "follow", *small, "-o", str(good)]}[cmd]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and any((tmp_path / "real").iterdir()), err
