"""The pretrained agents shipped in the package (wdtnopt/pretrained/, docs/agents.md)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wdtnopt import Scenario, WdtnoptError, generate_trace, simulate
from wdtnopt.agents import ALGORITHMS, Agent
from wdtnopt.agents.pretrained import DIRECTORY, FORMAT, PretrainedPolicy, pretrained_names, pretrained_record
from wdtnopt.agents.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from eval_agents import evaluate_policies  # noqa: E402


def test_every_algorithm_is_shipped_with_its_training_record():
    assert pretrained_names() == sorted(ALGORITHMS)
    for name in pretrained_names():
        rec = pretrained_record(name)
        assert rec["algo"] == name and rec["command"].startswith(f"wdtnopt train --algo {name} ")
        assert rec["env_steps"] > 0 and rec["cpu_time_s"] > 0 and "seed" in rec and "check" in rec


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_pretrained_loads_weights_only_and_reproduces_its_record(name):
    path = DIRECTORY / f"{name}.pt"
    payload = torch.load(path, map_location="cpu", weights_only=True)   # plain tensors and data only
    assert payload["format"] == FORMAT and payload["algo"] == name
    pol = PretrainedPolicy(name)
    assert isinstance(pol.agent, Agent) and pol.scenario.n_mus == Scenario.paper().n_mus
    check = pretrained_record(name)["check"]
    row = evaluate_policies([f"pretrained:{name}"], Scenario.paper(), check["traces"], check["slots"])[0]
    # the recorded figures are rounded; float32 networks may differ in the last bits across CPUs
    assert row["failure_ratio"] == pytest.approx(check["failure_ratio"], abs=1e-4)
    assert row["team_cost"] == pytest.approx(check["team_cost"], rel=1e-3)
    assert row["energy_mj"] == pytest.approx(check["energy_mj"], rel=1e-3)


def test_simulate_pretrained_by_name_and_errors():
    trace = generate_trace(Scenario.paper(), seed=3, slots=4)
    threads = torch.get_num_threads()
    try:   # acting runs on the agent's torch_threads (1), whatever the process had, with the same actions
        torch.set_num_threads(2)
        res = simulate("pretrained:beta-happo", trace)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert res.policy == "pretrained:beta-happo" and res.slots == 4
    assert np.array_equal(res.energy_per_mu, simulate("pretrained:beta-happo", trace).energy_per_mu)
    with pytest.raises(WdtnoptError, match="no shipped agent 'nope'"):
        simulate("pretrained:nope", generate_trace(Scenario.paper(), seed=3, slots=4))
    with pytest.raises(WdtnoptError, match="trained for 30 MUs"):
        simulate("pretrained:beta-happo", generate_trace(Scenario.paper(n_mus=4), seed=3, slots=4))


def test_export_round_trip(tmp_path):
    from wdtnopt.agents.pretrained import export_pretrained, read_pretrained
    tr = Trainer("beta-happo", Scenario.paper(n_mus=3, n_bss=2), seed=0, config={"n_envs": 1, "rollout_steps": 4})
    path = export_pretrained(tr, "beta-happo", {"algo": "beta-happo"}, tmp_path)
    payload = read_pretrained(path)
    for k, v in tr.agent.actors.state_dict().items():
        assert torch.equal(payload["actors"][k], v)
    assert np.isfinite(tr.evaluate_policy(episodes=1)["reward"])


def test_gap_decomposition_hybrids_are_the_agent_and_the_fixed_rules():
    """benchmarks/gap_decomposition.py: the hybrid that takes every decision from the agent is the
    agent (same energies slot by slot), and "stay + KKT split + exact least power" is the agent's
    structured decision at u = 0.5 (KKT tilt 1), residual 0 and a controller that stays."""
    from gap_decomposition import HybridPolicy
    from wdtnopt.env import core as env_core
    trace = generate_trace(Scenario.paper(), seed=900_001, slots=12)
    ref = simulate("pretrained:beta-happo", trace)
    same = simulate(HybridPolicy("pretrained:beta-happo", "agent", "agent", "agent"), trace)
    assert np.array_equal(same.table["energy_j"], ref.table["energy_j"])
    rule = simulate(HybridPolicy("pretrained:beta-happo", "static", "kkt", "need"), trace)
    from wdtnopt.simulation import SimState
    st, energies = SimState(trace), []
    n, m = trace.n_mus, trace.n_bss
    while not st.done:
        out = env_core.step(st, np.ones(n), np.ones((m, n)), st.placement.copy(), mu_action="power_over_need",
                            bs_action="tilt_over_kkt")
        energies.append(out.evaluation.energy_total)
    assert np.allclose(rule.table["energy_j"], energies, rtol=1e-12, atol=0) and rule.migrations == 0


def test_sweep_rl_smoke_trains_evaluates_and_keeps_earlier_rows(tmp_path):
    """benchmarks/sweep_rl.py --preset smoke: one row per config, each a real evaluation (the
    deterministic policy's team cost, as eval_agents computes it), and a second run appends to the CSV."""
    import csv
    import subprocess
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "sweep_rl.py"
    out = tmp_path / "sweep.csv"
    for cfg in ("default", "learn bs_learn=true"):
        subprocess.run([sys.executable, str(script), "--preset", "smoke", "--out", str(out), "--config", cfg],
                       check=True, capture_output=True, text=True, timeout=300)
    rows = list(csv.DictReader(out.open()))
    assert [r["label"] for r in rows] == ["default", "learn"]
    assert "bs_learn=True" in rows[1]["set"] and int(rows[0]["env_steps"]) >= 16
    for r in rows:
        assert 0.0 < float(r["team_cost"]) < 10.0 and 0.0 <= float(r["failure_ratio"]) <= 1.0


@pytest.mark.parametrize("bad", [["--config", "ok", "--config", "x nokey=1"], ["--config", "x bs_learn=maybe"],
                                 ["--config", "x,bs_learn=true"], ["--config", " "], ["--algo", "nonsense"],
                                 ["--traces", "0"], ["--slots", "0"], ["--steps", "-5"], ["--n-mus", "0"]])
def test_sweep_rl_refuses_bad_input_in_one_line_before_training(tmp_path, monkeypatch, capsys, bad):
    """A bad --config (even the second one), algorithm or count: exit 2 with one line naming it, no
    traceback, and nothing trained or written (a bad second config used to surface only after the
    first had trained, as a traceback)."""
    import sweep_rl
    out = tmp_path / "sweep.csv"
    monkeypatch.setattr(sys, "argv", ["sweep_rl.py", "--out", str(out), "--n-mus", "4", "--steps", "1", *bad])
    with pytest.raises(SystemExit) as e:
        sweep_rl.main()
    err = capsys.readouterr()
    assert e.value.code == 2 and len(err.err.strip().splitlines()) == 1, err.err
    assert err.err.startswith("sweep_rl.py: error: ") and not out.exists() and err.out == ""
