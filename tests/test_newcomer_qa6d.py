"""A newcomer's pass over the API edges (repeated CLI flags, tuple options from the shell, an options
object with keyword options, the server hull's indices and points, a solution's levels against its
snapshot): each test failed before the fix it comes with, or (where marked) pins a rule the docs now
state."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wdtnopt import evaluate
from wdtnopt.errors import DecisionError
from wdtnopt.solvers import OPTIONS, ExactOptions, Solution, SolverError, solve
from wdtnopt.solvers.allocation import PairData
from wdtnopt.solvers.server_hull import price_server, separate_fenchel
from wdtnopt.testing import tiny_snapshot

from cli_runner import run_cli
from test_server_hull import _server


@pytest.fixture
def snap_path(tmp_path):
    path = tmp_path / "snap.json"
    tiny_snapshot(1).save(path)
    return path


def _one_error_line(code, err, *words):
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    for w in words:
        assert w in lines[0]
    return lines[0]


@pytest.mark.parametrize("first, second", [("max_iterations=50", "max_iterations=5"), ("root_rounds=5", "root_rounds=5"),
                                           ("oracle=kkt", " oracle =cvxpy")])
def test_solve_refuses_an_option_given_twice(snap_path, tmp_path, capsys, first, second):
    # the last one silently won: --option max_iterations=50 --option max_iterations=5 ran 5
    name = first.partition("=")[0]
    out = tmp_path / "sol.json"
    code, _, err = run_cli(["solve", str(snap_path), "--option", first, "--option", second, "-o", str(out)], capsys)
    line = _one_error_line(code, err, f"--option {name}=", "twice")
    assert line.count(name) >= 1 and not out.exists()
    code, _, _ = run_cli(["solve", str(snap_path), "--option", first, "-o", str(out)], capsys)   # once: solved
    assert code == 0 and out.exists()


def test_train_refuses_a_config_field_set_twice(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--steps", "1", "--out", str(out), "--quiet",
                            "--set", "actor_lr=0.001", "--set", "actor_lr=0.0005"], capsys)
    _one_error_line(code, err, "--set actor_lr=", "twice")
    assert not out.exists()   # refused before the folder was made


@pytest.mark.parametrize("command", ["simulate", "gap"])
def test_a_policy_given_twice_is_refused(command, tmp_path, capsys):
    # it ran twice, and simulate's second CSV table was written over the first
    code, _, err = run_cli([command, "--policy", "follow", "--policy", "static", "--policy", "follow",
                            "--n-mus", "3", "--n-bss", "2", "--slots", "2", "-o", str(tmp_path / "o")], capsys)
    _one_error_line(code, err, "--policy follow", "twice")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["price_cuts", "server_prices", "server_prices_large"])
def test_a_tuple_option_given_one_number_names_the_comma_form(snap_path, capsys, name):
    # "must be a tuple of numbers > 0, got 1.0": nothing said how to write a tuple on the command line
    code, _, err = run_cli(["solve", str(snap_path), "--option", f"{name}=1.0"], capsys)
    line = _one_error_line(code, err, f"--option {name}=1.0", "tuple", f"{name}=1.0,", f"{name}=0.7,1,1.4")
    assert "got" not in line or "1.0" in line
    # and the forms it names are read as tuples and solve
    for form in (f"{name}=1.0,", f"{name}=0.7,1,1.4"):
        assert run_cli(["solve", str(snap_path), "--option", form], capsys)[0] == 0
    # the library's own message names the Python and the command-line forms too
    with pytest.raises(SolverError, match=rf"{name} must be a tuple of numbers > 0, got 1\.0 \(a tuple: \(1\.0,\).*NAME=1\.0,"):
        ExactOptions(**{name: 1.0})


def _method_ready(method):
    if method == "pyomo":
        pytest.importorskip("pyomo")
        pytest.importorskip("pyscipopt")
    if method == "relaxation":
        pytest.importorskip("cvxpy")


@pytest.mark.parametrize("method", sorted(OPTIONS))
def test_keywords_override_the_options_object_for_every_method(method):
    # pins the rule docs/solvers.md ("Options") now states: a keyword replaces that field of options=,
    # the other fields are the object's. The keyword's gap (looser than the object's) is the one the
    # method was asked: make_solution records the method's own, and solve() keeps the tighter of that
    # and the keyword, so the object's 1e-3 would show if the method had used it.
    _method_ready(method)
    cls = OPTIONS[method]
    s = tiny_snapshot(1)
    sol = solve(s, method=method, options=cls(gap=1e-3), gap=0.2)
    assert sol.asked_gap == 0.2
    ref = solve(s, method=method, gap=0.2)
    assert sol.status == ref.status and sol.asked_gap == ref.asked_gap
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    # a keyword is checked as the object's fields are (it is applied on top, then validated)
    with pytest.raises(SolverError, match="max_iterations"):
        solve(s, method=method, options=cls(), gap=0.2, max_iterations=0)


def test_fenchel_separation_refuses_a_point_that_is_not_a_number():
    # a NaN in y was read as 0: None (no cut) when every candidate was NaN, else a cut at another point
    s, pd, cand, _ = _server(2, 6)
    y = np.zeros(s.n_mus)
    y[cand] = 0.5
    assert separate_fenchel(pd, 0, y, cand) is not None
    for bad in (np.nan, np.inf):
        y_bad = y.copy()
        y_bad[cand] = bad
        with pytest.raises(SolverError, match="^y: .*finite"):
            separate_fenchel(pd, 0, y_bad, cand)
        y_bad = y.copy()
        y_bad[cand[2]] = bad
        with pytest.raises(SolverError, match="^y: "):
            separate_fenchel(pd, 0, y_bad, cand)
    with pytest.raises(SolverError, match=r"^y: .*shape"):
        separate_fenchel(pd, 0, y[:-1], cand)


def test_pricing_and_separation_refuse_indices_out_of_range_by_name():
    # a candidate N raised numpy's IndexError inside the search; -1 silently priced the last MU
    s, pd, cand, _ = _server(4, 6)
    w = np.zeros(s.n_mus)
    w[cand] = 1.0
    w[-1] = 1.0
    y = np.zeros(s.n_mus)
    y[cand] = 0.5
    for bad in (s.n_mus, -1, s.n_mus + 7):
        with pytest.raises(SolverError, match=rf"^candidates: .*\[0, {s.n_mus - 1}\].*{bad}"):
            price_server(pd, 0, w, np.append(cand, bad))
        with pytest.raises(SolverError, match=r"^candidates: "):
            separate_fenchel(pd, 0, y, np.append(cand, bad))
    with pytest.raises(SolverError, match="^candidates: .*integers"):
        price_server(pd, 0, w, cand.astype(float) + 0.5)
    for m in (1, -1):   # one server
        with pytest.raises(SolverError, match=r"^m: .*\[0, 0\]"):
            price_server(pd, m, w, cand)
        with pytest.raises(SolverError, match=r"^m: "):
            separate_fenchel(pd, m, y, cand)
    # the in-range call is unchanged (an int64 array of candidates, a numpy server index)
    assert price_server(pd, np.int64(0), w, cand).value == price_server(pd, 0, w, list(cand)).value


def test_a_level_on_a_menu_free_snapshot_is_caught_by_evaluate_naming_level():
    # pins the documented split: Solution.from_dict has no snapshot (it checks the certificate only);
    # evaluate(snapshot, solution) checks the solution against its snapshot and names the field
    s = tiny_snapshot(1)
    assert s.level_ratio is None
    d = solve(s).to_dict()
    d["level"] = [1] * s.n_mus
    sol = Solution.from_dict(json.loads(json.dumps(d)))
    # it said "must lie in [0, 0]", which did not say why: it names the missing menu
    with pytest.raises(DecisionError, match=r"level: must be 0 everywhere: the snapshot has no semantic menu"):
        evaluate(s, sol)
    d["level"] = [0] * s.n_mus   # level 0 is the one level of a snapshot without a menu: the same cost
    assert evaluate(s, Solution.from_dict(d)).objective == solve(s).objective


@pytest.mark.parametrize("form", ["price_cuts=0.7,,1", "price_cuts=,1", "price_cuts=[0.7,,1.4]"])
def test_a_comma_list_with_an_empty_entry_is_refused(snap_path, capsys, form):
    # 0.7,,1 was read as (0.7, 1): the empty entry dropped silently; only a trailing comma may be empty
    code, _, err = run_cli(["solve", str(snap_path), "--option", form], capsys)
    _one_error_line(code, err, f"--option {form}", "empty entry")
    for ok in ("price_cuts=1.0,", "price_cuts=0.7,1,1.4", "price_cuts=[0.7, 1, 1.4]"):
        assert run_cli(["solve", str(snap_path), "--option", ok], capsys)[0] == 0
