"""``method="pyomo"`` has a default time limit (docs/solvers.md, "`method=\"pyomo\"`", Time limit):
the options' default, what ``wdtnopt solve`` passes, and the status when SCIP hits it."""
from __future__ import annotations

import pytest

from wdtnopt import Scenario, generate_trace
from wdtnopt.solvers import ExactOptions, FastOptions, PyomoOptions, RelaxationOptions

from cli_runner import run_cli


def test_pyomo_alone_has_a_default_limit_and_none_lifts_it() -> None:
    assert PyomoOptions().time_limit == 300.0
    assert PyomoOptions(time_limit=None).time_limit is None
    assert PyomoOptions.build(None, {"time_limit": 5}).time_limit == 5.0
    assert ExactOptions().time_limit is FastOptions().time_limit is RelaxationOptions().time_limit is None


def _snapshot_file(tmp_path, n, m):
    path = tmp_path / "s.json"
    generate_trace(Scenario.paper(n_mus=n, n_bss=m), seed=0, slots=1).snapshot(0).save(path)
    return str(path)


@pytest.mark.parametrize("flag, expected", [([], 300.0), (["--time-limit", "7"], 7.0)])
def test_cli_leaves_the_method_its_default(tmp_path, capsys, monkeypatch, flag, expected) -> None:
    pytest.importorskip("pyomo")
    pytest.importorskip("pyscipopt")
    from wdtnopt.solvers import minlp

    seen = []
    real = minlp.solve_pyomo

    def spy(snapshot, options=None, **overrides):
        seen.append(PyomoOptions.build(options, overrides).time_limit)
        return real(snapshot, options, **overrides)

    monkeypatch.setattr(minlp, "solve_pyomo", spy)
    code, out, err = run_cli(["solve", _snapshot_file(tmp_path, 3, 2), "--method", "pyomo", *flag], capsys)
    assert code == 0, err
    assert seen == [expected] and "pyomo (" in out


def test_cli_pyomo_stopped_by_its_limit_says_time_limit(tmp_path, capsys) -> None:
    """SCIP closes few 20 x 5 snapshots in 60 s: at 0.5 s it stops with an incumbent and a true bound."""
    pytest.importorskip("pyomo")
    pytest.importorskip("pyscipopt")
    code, out, err = run_cli(["solve", _snapshot_file(tmp_path, 20, 5), "--method", "pyomo", "--time-limit", "0.5"],
                             capsys)
    assert code == 0, err
    assert "pyomo (time_limit)" in out
