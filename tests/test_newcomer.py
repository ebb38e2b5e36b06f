"""What a new user runs into first: inputs of the wrong type or from the wrong place end in a clear
error naming the field (CLI: exit 2 and one line), and documented equivalences hold."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import wdtnopt
from wdtnopt import Scenario, generate_trace, simulate
from wdtnopt.errors import WdtnoptError

from cli_runner import run_cli


@pytest.mark.parametrize("setting,field", [
    ("actor_lr=abc", "actor_lr"),          # a word for a float: used to end in a TypeError inside Adam
    ("hidden=1.5", "hidden"),              # a fraction for an int: used to end in torch.empty's TypeError
    ("value_norm=2", "value_norm"),        # a number for a bool: used to train silently
    ("head=foo", "head"),                  # an unknown head: used to end in a ValueError traceback
    ("rollout_steps=0", "rollout_steps"),  # no step per iteration: used to end in a reshape RuntimeError
])
def test_train_set_of_the_wrong_form_is_one_line_naming_the_field(tmp_path, capsys, setting, field):
    code, out, err = run_cli(["train", "--n-mus", "2", "--n-bss", "2", "--steps", "10", "--quiet",
                              "--out", str(tmp_path / "x"), "--set", setting], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:") and field in lines[0], err
    assert not (tmp_path / "x" / "checkpoint.pt").exists()


def test_train_set_none_for_an_optional_float_is_none(tmp_path):
    from wdtnopt.agents.registry import algorithm_class, make_config
    from wdtnopt.cli.train import _overrides

    cfg = make_config(algorithm_class("beta-happo"), _overrides(("bs_actor_lr=none", "actor_lr=1")))
    assert cfg.bs_actor_lr is None and cfg.actor_lr == 1.0 and isinstance(cfg.actor_lr, float)
    with pytest.raises(WdtnoptError, match="bs_actor_lr"):
        make_config(algorithm_class("beta-happo"), {"bs_actor_lr": "fast"})


def test_numpy_scalars_are_numbers_in_a_scenario():
    # a sweep over np.arange gives numpy integers; they are the same numbers as Python's
    a = Scenario.paper(n_mus=np.int64(3), n_bss=np.int32(2), bandwidth_hz=np.float32(1e6), frame_slots=np.int64(5))
    b = Scenario.paper(n_mus=3, n_bss=2, bandwidth_hz=float(np.float32(1e6)), frame_slots=5)
    assert a == b and type(a.n_mus) is int and type(a.bandwidth_hz) is float
    with pytest.raises(WdtnoptError, match="n_mus"):
        Scenario.paper(n_mus=np.bool_(True))
    with pytest.raises(WdtnoptError, match="n_mus"):
        Scenario.paper(n_mus=np.float64(2.5))


def test_generate_trace_names_a_scenario_of_the_wrong_type():
    with pytest.raises(WdtnoptError, match="scenario"):
        generate_trace({"n_mus": 3}, seed=0, slots=2)


def test_simulate_names_a_policy_or_trace_of_the_wrong_type():
    trace = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=2)
    for bad in (3, ["static", "follow"], None):
        with pytest.raises(WdtnoptError, match="policy"):
            simulate(bad, trace)
    with pytest.raises(WdtnoptError, match="trace"):
        simulate("static", "trace.json")
    for bad in ("yes", 1):   # was silently ignored (no bar, no callback)
        with pytest.raises(WdtnoptError, match="progress"):
            simulate("static", trace, progress=bad)
    seen = []
    simulate("static", trace, progress=seen.append)
    assert seen == [0, 1]


def test_gap_refuses_a_result_of_another_trace_or_not_a_result():
    sc = Scenario.paper(n_mus=3, n_bss=2)
    trace0, trace1 = generate_trace(sc, seed=0, slots=4), generate_trace(sc, seed=1, slots=4)
    res = simulate("static", trace0)
    with pytest.raises(WdtnoptError, match="another trace"):   # same N and slots, another seed
        wdtnopt.gap([res], trace1, iters=1)
    with pytest.raises(WdtnoptError, match="SimResult"):
        wdtnopt.gap(["static"], trace0, iters=1)
    assert wdtnopt.gap([res], trace0, iters=1).rows[0].policy == "static"


def test_a_checkpoint_without_a_level_head_acts_at_level_0_on_a_menu():
    # docs/agents.md, "Semantic levels"; docs/model.md, section 13: the shipped agents have no level
    # head, so on a trace with a menu every MU sends its uncompressed data, as without the menu
    plain = simulate("pretrained:beta-happo", generate_trace(Scenario.paper(), seed=0, slots=2))
    menu = simulate("pretrained:beta-happo", generate_trace(Scenario.paper(semantic_levels=3), seed=0, slots=2))
    assert np.array_equal(plain.table["energy_j"], menu.table["energy_j"])
    assert np.array_equal(plain.failures_per_mu, menu.failures_per_mu)
    static_plain = simulate("static", generate_trace(Scenario.paper(), seed=0, slots=2))
    static_menu = simulate("static", generate_trace(Scenario.paper(semantic_levels=3), seed=0, slots=2))
    assert static_menu.energy_per_mu_slot < static_plain.energy_per_mu_slot   # the heuristics do pick levels


def test_an_unknown_pyomo_solver_is_one_line_and_no_traceback(tmp_path):
    # Pyomo logs the failed executable lookup with its traceback on stdout; the CLI's promise is
    # one line on stderr and exit 2, and nothing else (a subprocess: Pyomo's log handler holds the
    # stream of its import, which pytest's capture does not see)
    pytest.importorskip("pyomo")
    path = tmp_path / "s.json"
    generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=1).snapshot(0).save(path)
    cli = [sys.executable, "-c", "import sys; from wdtnopt.cli import main; main(sys.argv[1:])"]
    r = subprocess.run(cli + ["solve", str(path), "--method", "pyomo", "--option", "solver=no-such-solver"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: Pyomo solver 'no-such-solver' is not available; "
                                             "for SCIP: pip install pyscipopt"]
    assert "Traceback" not in r.stdout and "no-such-solver" not in r.stdout, r.stdout


def test_solves_with_other_thread_counts_in_one_process_stay_certified():
    # HiGHS sizes one task scheduler per calling thread at its first run; a later model asking for
    # another thread count did not run: exact returned status feasible with bound 0, and the
    # hindsight bound after a threads=2 solve was 0 (valid, but vacuous)
    trace = generate_trace(Scenario.paper(n_mus=8, n_bss=3), seed=0, slots=6)
    snap = trace.snapshot(0)
    first = wdtnopt.solve(snap)
    for threads in (2, 1, 3, 1):
        sol = wdtnopt.solve(snap, threads=threads)
        assert sol.status == "optimal" and sol.gap <= 1e-6, (threads, sol.status, sol.stats.get("why"))
        assert sol.objective == pytest.approx(first.objective, rel=1e-6)
    wdtnopt.solve(snap, threads=2)
    bound = wdtnopt.hindsight_bound(trace, iters=3)   # its HiGHS masters run with one thread
    assert bound.energy_per_mu_slot > 0


@pytest.mark.parametrize("method,option", [
    ("exact", "heuristic_effort=abc"),   # used to be TypeError: '<=' not supported between float and str
    ("exact", "drop_slack=abc"),         # TypeError: '>=' ...
    ("exact", "use_mip_start=maybe"),    # used to run silently (a non-empty string is true)
    ("exact", "verbose=3"),
    ("fast", "box=abc"),                 # TypeError: '>' ...
    ("fast", "search_time=abc"),
    ("relaxation", "solver=3"),          # AttributeError: 'int' object has no attribute 'upper'
])
def test_solve_option_of_the_wrong_type_is_one_line_naming_it(tmp_path, capsys, method, option):
    path = tmp_path / "s.json"
    generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=1).snapshot(0).save(path)
    code, _, err = run_cli(["solve", str(path), "--method", method, "--option", option], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: method '{method}': {option.split('=')[0]} must be "), err


def test_solver_options_take_numpy_numbers_and_refuse_bools():
    snap = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=1).snapshot(0)
    sol = wdtnopt.solve(snap, gap=np.float32(1e-6), time_limit=np.int64(30), threads=np.int64(1))
    assert sol.status == "optimal"
    with pytest.raises(wdtnopt.WdtnoptError, match="gap must be a number"):
        wdtnopt.solve(snap, gap=True)
    with pytest.raises(wdtnopt.WdtnoptError, match="threads must be an integer"):
        wdtnopt.solve(snap, threads=True)


def test_relaxation_with_a_solver_that_is_not_installed_is_an_error():
    # a misspelt solver name used to run as a failed conic solve: status feasible, the rounding's
    # bound, and the cause only in stats["conic_status"]
    pytest.importorskip("cvxpy")
    snap = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=1).snapshot(0)
    with pytest.raises(wdtnopt.WdtnoptError, match="'CLARABL' is not an installed CVXPY solver"):
        wdtnopt.solve(snap, method="relaxation", solver="CLARABL")
    assert wdtnopt.solve(snap, method="relaxation", solver="clarabel").status == "optimal"


def test_env_actions_of_the_wrong_shape_and_bad_seeds_name_the_field():
    from wdtnopt.env import BatchedWdtnEnv, TeamEnv, parallel_env

    sc = Scenario.paper(n_mus=3, n_bss=2)
    benv = BatchedWdtnEnv(sc, n_envs=2, seed=0, slots=5)
    benv.reset()
    e, n, m = 2, 3, 2
    ok = (np.full((e, n), 0.01), np.full((e, m, n), 0.5), np.zeros((e, n), np.int64))
    # a transposed [N, E] power has the right size: a reshape used to scramble it silently
    for i, bad, name in [(0, np.full((n, e), 0.01), "power"), (1, np.full((e, n, m), 0.5), "weights"),
                         (2, np.zeros((e, n + 1), np.int64), "hosts"), (0, "x", "power")]:
        args = list(ok)
        args[i] = bad
        with pytest.raises(WdtnoptError, match=f"^{name}: expected"):
            benv.step(*args)
    benv.step(*ok)
    team = TeamEnv(sc, seed=0, slots=5)
    team.reset(seed=0)
    with pytest.raises(WdtnoptError, match="^action: expected 15 numbers"):
        team.step(np.zeros(2))
    team.step(np.zeros(15))
    for seed in (-1, 1.5, "a"):   # numpy's "expected non-negative integer" / SeedSequence TypeError before
        with pytest.raises(WdtnoptError, match="^seed: expected"):
            parallel_env(scenario=sc, seed=seed)
        with pytest.raises(WdtnoptError, match="^seed: expected"):
            parallel_env(scenario=sc).reset(seed=seed)


def test_policy_options_and_registrations_of_the_wrong_form_are_named():
    from wdtnopt import make_policy, register_policy

    with pytest.raises(WdtnoptError, match="policy 'lyapunov': options 'bogus' not accepted"):
        make_policy("lyapunov", bogus=1)    # was TypeError: SnapshotSolverPolicy.__init__() got an unexpected ...
    with pytest.raises(WdtnoptError, match="policy 'static': options 'V' not accepted"):
        make_policy("static", V=1)          # was TypeError: StaticPolicy() takes no arguments
    assert make_policy("lyapunov", V=10).V == 10
    with pytest.raises(WdtnoptError, match="^factory: expected a callable"):
        register_policy("newcomer-int", 3)  # was accepted, then 'int' object is not callable at make_policy
    with pytest.raises(WdtnoptError, match="^name: expected"):
        register_policy("a:b", "wdtnopt.policies.heuristics:StaticPolicy")
    assert "newcomer-int" not in wdtnopt.policies.policy_names()


def test_hindsight_bound_inputs_of_the_wrong_form_are_named():
    trace = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=4)
    with pytest.raises(WdtnoptError, match="^trace: expected"):
        wdtnopt.hindsight_bound("trace.json")         # was AttributeError: 'str' object has no attribute 'n_mus'
    with pytest.raises(WdtnoptError, match="^mu0: expected one or 3"):
        wdtnopt.hindsight_bound(trace, mu0=[1.0, 2.0])   # was numpy's broadcast ValueError
    with pytest.raises(WdtnoptError, match="^step: expected"):
        wdtnopt.hindsight_bound(trace, step=-1.0)      # was accepted: a supergradient *descent*
    with pytest.raises(WdtnoptError, match="^method: expected one of exact, "):
        wdtnopt.hindsight_bound(trace, method="exactt")   # was silently unused by the columns dual
    hb = wdtnopt.hindsight_bound(trace, iters=2)
    for bad in ([0.1, 0.2], "a"):
        with pytest.raises(WdtnoptError, match="^eps: expected"):
            hb.value_at(bad)
    assert hb.value_at([0.05, 0.05, 0.05])[0] == hb.value_at(0.05)[0]


def test_a_corrupted_checkpoint_is_named_without_advice_to_unpickle(tmp_path, capsys):
    # torch's message went on "Re-running torch.load with weights_only set to False", cut at 200
    # characters before its warning that this runs arbitrary code; the project never unpickles
    pytest.importorskip("torch")
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["simulate", "--policy", f"checkpoint:{tmp_path}", "--slots", "2"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "cannot be read" in lines[0], err
    assert "weights_only" not in lines[0]


def test_solution_from_dict_names_a_missing_or_malformed_field():
    from wdtnopt.solvers import Solution

    snap = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=1).snapshot(0)
    d = wdtnopt.solve(snap).to_dict()
    back = Solution.from_dict(d)
    assert back.to_dict() == d and wdtnopt.evaluate(snap, back).objective == back.objective
    for bad, field in [({k: v for k, v in d.items() if k != "placement"}, "placement"),   # was KeyError
                       ({**d, "placement": "a"}, "placement"),                             # was ValueError
                       ({**d, "status": "solved"}, "status"),                              # was ValueError
                       ({**d, "bound": [1.0]}, "bound")]:                                  # was TypeError
        with pytest.raises(WdtnoptError, match=f"^invalid solution: {field}: "):
            Solution.from_dict(bad)
    with pytest.raises(WdtnoptError, match="^invalid solution: expected a JSON object"):
        Solution.from_dict([1, 2])


def test_trainer_names_a_bad_scenario_seed_or_config():
    pytest.importorskip("torch")
    from wdtnopt.agents.trainer import Trainer

    sc = Scenario.paper(n_mus=2, n_bss=2)
    for kwargs, field in [(dict(scenario={"n_mus": 2}), "scenario"),   # was AttributeError
                          (dict(seed=-1), "seed"),                     # was numpy's ValueError
                          (dict(seed="a"), "seed"),
                          (dict(config=[("n_envs", 1)]), "config")]:   # was TypeError in dict()
        args = {"scenario": sc, "seed": 0, "config": {"n_envs": 1, "rollout_steps": 2}, **kwargs}
        with pytest.raises(WdtnoptError, match=f"^{field}: expected"):
            Trainer("beta-happo", args["scenario"], seed=args["seed"], config=args["config"])


def test_a_missing_bench_suite_is_one_line(capsys):
    code, _, err = run_cli(["bench"], capsys)   # click lists the choices one per line
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: Missing argument") and "paper, solvers," in lines[0]


def test_training_on_one_sample_is_quiet(tmp_path, recwarn):
    # one MU, one BS, one step: torch warned "var(): degrees of freedom is <= 0" on stderr
    pytest.importorskip("torch")
    import math

    import torch

    from wdtnopt.agents.core import explained_variance

    assert math.isnan(explained_variance(torch.tensor([1.0]), torch.tensor([2.0])))
    assert explained_variance(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert not [w for w in recwarn if "degrees of freedom" in str(w.message)]


def test_field_type_rule_reads_only_unions_as_one_of():
    """``tuple[float, ...]`` is a tuple, not "a float" (its arguments are not alternatives): the
    rule rejected exact's default price_cuts under that hint."""
    from typing import Optional

    from wdtnopt.fieldtypes import as_field_type

    assert as_field_type((0.7, 1.0), tuple[float, ...]) == ((0.7, 1.0), None)
    assert as_field_type(["a"], list[str]) == (["a"], None)
    assert as_field_type(3, float | None) == (3.0, None) and as_field_type(None, Optional[float]) == (None, None)
    assert as_field_type("a", Optional[float])[1] == "a number or None"
    assert as_field_type(True, int)[1] == "an integer"


def test_numpy_bools_are_bools_for_options_and_configs():
    """numpy 2 names its bool type ``bool`` (numpy 1: ``bool_``), so np.False_ was refused for a bool
    option ("highs_presolve must be true or false, got np.False_") although numpy numbers are
    accepted everywhere else; it is still no number."""
    from wdtnopt.fieldtypes import as_field_type
    from wdtnopt.solvers import solve
    from wdtnopt.testing import one_cell

    for v in (np.False_, np.True_):
        assert as_field_type(v, bool) == (bool(v), None) and type(as_field_type(v, bool)[0]) is bool
        assert as_field_type(v, int)[1] == "an integer" and as_field_type(v, float)[1] == "a number"
    s = one_cell()
    assert solve(s, method="exact", highs_presolve=np.False_).objective == pytest.approx(
        solve(s, method="exact", highs_presolve=False).objective, rel=1e-9)


def test_exact_price_cuts_take_numpy_numbers_as_every_other_option():
    """price_cuts=(np.float32(0.7),) was refused ("must be a tuple of numbers > 0") while numpy numbers
    are accepted (and stored as Python's) for every other option; bools and non-positive factors are
    still refused, naming the option."""
    from wdtnopt.solvers import SolverError
    from wdtnopt.solvers.options import ExactOptions

    o = ExactOptions(price_cuts=(np.float32(0.5), np.int64(2), 1.4))
    assert o.price_cuts == (0.5, 2.0, 1.4) and all(type(c) is float for c in o.price_cuts)
    for bad in ((True,), (np.float64(0.0),), (np.float32("nan"),), [0.7], 0.7):
        with pytest.raises(SolverError, match="price_cuts"):
            ExactOptions(price_cuts=bad)
