"""A newcomer's pass (8b): leftovers of pass 8, each checked against an independent reference (a
hand-computed case, the plain definition) and failing before its fix."""
from __future__ import annotations

import numpy as np
import pytest

from cli_runner import run_cli
from wdtnopt import DecisionError, Scenario, evaluate
from wdtnopt.testing import paper_snapshot


def test_evaluate_refuses_a_served_of_2_and_keeps_0_1_as_false_true():
    # served=[2, 0] was read as [True, False]; only booleans or 0/1 are flags (docs/solvers.md)
    s = paper_snapshot(N=2, M=2, seed=0, request_prob=1.0)
    base = {"placement": [0, 1], "tx_time": [0.001, 0.0]}
    as_bool = evaluate(s, {**base, "served": [True, False]})
    as_int = evaluate(s, {**base, "served": [1, 0]})
    np.testing.assert_array_equal(as_int.served, as_bool.served)
    assert as_int.objective == as_bool.objective
    with pytest.raises(DecisionError, match=r"served: expected booleans.*got 2 for MU 0"):
        evaluate(s, {**base, "served": [2, 0]})
    with pytest.raises(DecisionError, match=r"served: .*got -1 for MU 1"):
        evaluate(s, {**base, "served": np.array([0, -1])})


@pytest.mark.parametrize("cell", ["1_000", "0x10", "\u0661\u0662"])
def test_a_table_cell_that_is_not_a_plain_decimal_is_an_error_naming_its_line_and_column(tmp_path, cell):
    # Python's float() reads "1_000" as 1000 and Arabic-Indic digits as 12: no table writer means that
    from wdtnopt.errors import MobilityError
    from wdtnopt.processes.mobility import read_table

    p = tmp_path / "t.csv"
    p.write_text(f"time_s,id,x_m,y_m\n0,a,10,20\n1,a,{cell},20\n", encoding="utf-8")
    with pytest.raises(MobilityError, match=rf"t.csv line 3: x_m: expected a number, got '{cell}'"):
        read_table(p)
    # the plain forms still read, exactly as written (the reference: the decimal value by hand)
    p.write_text("time_s,id,x_m,y_m\n0,a, 10 ,-2.5e1\n1.5,a,.5,nan\n", encoding="utf-8")
    r = read_table(p)
    np.testing.assert_array_equal(r.time_s, [0.0, 1.5])
    np.testing.assert_array_equal(r.x_m, [10.0, 0.5])
    assert r.y_m[0] == -25.0 and np.isnan(r.y_m[1])


def test_train_on_too_short_a_record_names_episode_slots_not_fewer_slots(tmp_path, capsys):
    # train has no --slots: its slots are the config's episode_slots (100 by default, docs/agents.md)
    rows = ["time_s,id,x_m,y_m"] + [f"{t},v{v},{100 + 10 * t + 50 * v},200" for t in range(3) for v in range(3)]
    (tmp_path / "short.csv").write_text("\n".join(rows) + "\n")
    code, _, err = run_cli(["train", "--mobility", str(tmp_path / "short.csv"), "--n-mus", "2", "--n-bss", "2",
                            "--steps", "1", "--quiet", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    slot_s = Scenario.paper(n_mus=2, n_bss=2).slot_s
    assert f"the 100 slots need t = 0..{99 * slot_s:g} s" in err
    assert "--set episode_slots" in err and "fewer slots" not in err


@pytest.mark.parametrize("cmd", ["bound", "gap"])
@pytest.mark.parametrize("extra", [["--method", "fast"], ["--workers", "2"], ["--method", "exact"]])
def test_method_or_workers_with_the_columns_dual_is_refused_naming_both(tmp_path, capsys, cmd, extra):
    # the columns dual solves no slots (docs/longterm.md): --method fast gave the very same bound as
    # without it, silently; even the default's name given explicitly is refused (it is not used)
    code, out, err = run_cli([cmd, "--n-mus", "3", "--n-bss", "2", "--slots", "2", "--iters", "1",
                              "--dual", "columns", *extra, "--policy" if cmd == "gap" else "--seed",
                              "follow" if cmd == "gap" else "0"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert extra[0] in err and "--dual columns" in err and "--dual supergradient" in err
    assert out == ""      # refused before the trace and the policies were computed


def test_method_with_the_supergradient_dual_is_still_used(tmp_path, capsys):
    # the reference: the supergradient bound of the API with the same inner method, bit for bit
    import json

    from wdtnopt import generate_trace
    from wdtnopt.bounds import hindsight_bound

    code, _, err = run_cli(["bound", "--n-mus", "3", "--n-bss", "2", "--slots", "2", "--iters", "1", "--dual",
                            "supergradient", "--method", "fast", "-o", str(tmp_path / "b.json")], capsys)
    assert code == 0, err
    got = json.loads((tmp_path / "b.json").read_text())
    ref = hindsight_bound(generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=2), iters=1, method="fast",
                          dual="supergradient", workers=1)
    assert got["method"] == "fast" and got["energy_per_mu_slot"] == ref.energy_per_mu_slot


@pytest.mark.parametrize("algo", ["beta-happo", "gaussian-happo", "beta-mappo", "maddpg"])
@pytest.mark.parametrize("n, m, levels", [(3, 2, 1), (3, 2, 3), (40, 6, 3)])
def test_the_network_size_estimate_is_a_lower_bound_of_the_parameters_built(algo, n, m, levels):
    # the reference: the parameters of the critic and the actors the algorithm really builds
    from wdtnopt.agents.core import EnvSpec
    from wdtnopt.agents.trainer import algorithm_class, make_config
    from wdtnopt.cli.train import networks_min_parameters

    sc = Scenario.paper(n_mus=n, n_bss=m, semantic_levels=levels)
    cls = algorithm_class(algo)
    cfg = make_config(cls, {"hidden": 8, "critic_hidden": 16})
    agent = cls(EnvSpec.from_scenario(sc), cfg, 0)
    built = sum(p.numel() for p in (*agent.critic.parameters(), *agent.actors.parameters()))
    est = networks_min_parameters(sc, cfg)
    assert 0.4 * built <= est <= built     # a lower bound, and not a vacuous one (0.46..0.92 of it)


def test_train_refuses_networks_beyond_the_memory_before_initialising_them(tmp_path, capsys, monkeypatch):
    # `train --n-mus 100000 --n-bss 1000` spent minutes in orthogonal initialisation before failing
    import wdtnopt.agents.trainer
    import wdtnopt.trace

    monkeypatch.setattr(wdtnopt.trace, "available_memory_bytes", lambda: 64 * 2**30)

    def never(*args, **kwargs):
        raise AssertionError("the networks were built")

    monkeypatch.setattr(wdtnopt.agents.trainer.Trainer, "__init__", never)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--n-mus", "100000", "--n-bss", "1000", "--steps", "1", "--quiet",
                            "--out", str(out)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "n_mus=100,000, n_bss=1,000" in err and "critic_hidden=128" in err and "64.0 GiB is available" in err
    assert "--n-mus" in err and "--set critic_hidden" in err and not out.exists()
    # the critic's first layer alone (state features x critic_hidden) is a closed-form floor of the count
    from wdtnopt.env.core import obs_dims

    floor = obs_dims(100_000, 1000)["state"] * 128
    got = int(err.split("at least ")[1].split(" parameters")[0].replace(",", ""))
    assert got >= floor and 16 * floor > 64 * 2**30


def test_the_documented_training_sizes_pass_the_network_check(monkeypatch):
    # the pretrained runs (N = 30, M = 5) and docs/agents.md's example (N = 10) with a 1 GiB machine
    from wdtnopt.agents.trainer import algorithm_class, make_config
    from wdtnopt.cli.train import _check_networks_fit
    import wdtnopt.trace

    monkeypatch.setattr(wdtnopt.trace, "available_memory_bytes", lambda: 2**30)
    for algo in ("beta-happo", "gaussian-happo", "beta-mappo", "maddpg"):
        for n in (10, 30):
            _check_networks_fit(algo, Scenario.paper(n_mus=n), make_config(algorithm_class(algo), {}))


def test_pyomo_refuses_a_menu_above_its_level_limit_before_running_scip(monkeypatch):
    # a 64-level menu made SCIP corrupt its heap and kill the process (SIGABRT) or hang past its time
    # limit (docs/solvers.md, "Large menus"); the refusal must come before any model is built or solved
    pytest.importorskip("pyomo")
    import wdtnopt.formulations.pyomo_minlp as pm
    from wdtnopt import generate_trace, solve
    from wdtnopt.solvers import SolverError
    from wdtnopt.solvers.minlp import PYOMO_MAX_LEVELS

    def never(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(pm, "build_level_model", never)
    sc = Scenario.paper(n_mus=4, n_bss=2, semantic_levels=PYOMO_MAX_LEVELS + 1, semantic_ratio_min=1e-3)
    s = generate_trace(sc, seed=0, slots=1).snapshot(0)
    assert s.n_levels == PYOMO_MAX_LEVELS + 1
    want = rf"{PYOMO_MAX_LEVELS + 1} levels is above the {PYOMO_MAX_LEVELS}.*'exact' or 'fast'"
    with pytest.raises(SolverError, match=want):
        solve(s, method="pyomo", time_limit=5)


def test_an_fcd_file_declaring_an_unknown_encoding_is_a_mobility_error_naming_it(tmp_path):
    """A damaged XML declaration (``encoding="TF-8"``, found by the mangled-file property test)
    ended in expat's LookupError; it is one line naming the file, and a known encoding still reads."""
    from wdtnopt import MobilityError, Scenario, generate_trace

    body = ('<fcd-export>' + "".join(f'<timestep time="{k}.00"><vehicle id="a" x="{100 + k}" y="300"/>'
                                     f'<vehicle id="b" x="200" y="{300 + k}"/></timestep>' for k in range(6))
            + '</fcd-export>\n')
    bad = tmp_path / "bad.fcd.xml"
    bad.write_text('<?xml version="1.0" encoding="TF-8"?>\n' + body)
    with pytest.raises(MobilityError, match=r"bad\.fcd\.xml line 1: .*encoding") as info:
        generate_trace(Scenario.paper(n_mus=2), seed=0, slots=3, mobility=str(bad))
    assert "\n" not in str(info.value)
    good = tmp_path / "good.fcd.xml"
    good.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + body)
    tr = generate_trace(Scenario.paper(n_mus=2), seed=0, slots=3, mobility=str(good))
    assert tr.positions.shape == (3, 2, 2)
