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
