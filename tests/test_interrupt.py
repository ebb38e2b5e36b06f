"""Interrupted work: a training run killed with SIGKILL loses no saved iteration and leaves no torn
file; resuming continues it exactly; same seed, same training curve (issue 7)."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wdtnopt import Scenario
from wdtnopt.agents.checkpoint import CHECKPOINT_FILE
from wdtnopt.agents.trainer import Trainer

SMALL = ["--algo", "beta-happo", "--n-mus", "3", "--n-bss", "2", "--set", "n_envs=2", "--set", "rollout_steps=10",
         "--set", "episode_slots=10", "--set", "ppo_epochs=1", "--set", "critic_epochs=1", "--quiet"]


def _wdtnopt(*args):
    return [sys.executable, "-c", "from wdtnopt.cli import main; main()", *args]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_during_training_then_resume(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_wdtnopt("train", *SMALL, "--steps", "1000000", "--save-every", "1", "--out", str(out)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / CHECKPOINT_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (ckpt.exists() and (out / "log.csv").exists()):
        time.sleep(0.05)
    time.sleep(1.0)                      # let it write a few more checkpoints, then kill it mid-flight
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), proc.stderr.read().decode()
    # no temporary files left visible as results, and the checkpoint loads cleanly
    saved = Trainer.load(out)
    assert saved.iteration >= 1
    with open(out / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(int(r["iteration"]) <= saved.iteration + 1 for r in rows)
    # resume for two more iterations: exit 0, and the run continues from the saved iteration
    target = saved.env_steps + 2 * saved.steps_per_iteration
    done = subprocess.run(_wdtnopt("train", "--resume", "--quiet", "--steps", str(target), "--out", str(out)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Trainer.load(out).iteration == saved.iteration + 2
    with open(out / "log.csv", newline="") as fh:
        its = [int(r["iteration"]) for r in csv.DictReader(fh)]
    assert its == list(range(1, saved.iteration + 3))


def test_same_seed_same_training_curve():
    cfg = {"n_envs": 2, "rollout_steps": 10, "episode_slots": 10, "ppo_epochs": 1, "critic_epochs": 1}
    sc = Scenario.paper(n_mus=3, n_bss=2)
    curves = []
    for _ in range(2):
        tr = Trainer("beta-happo", sc, seed=5, config=cfg)
        curves.append([{k: v for k, v in tr.train_iteration().items() if k != "sps"} for _ in range(3)])
    assert curves[0] == curves[1]
