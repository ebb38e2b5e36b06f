"""A newcomer's pass over the fifth round's new code: extreme but legal inputs, CLI options."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("item", ["method=fast", "snapshot=3"])
def test_cli_option_naming_a_solve_argument_is_one_line(tmp_path, capsys, item):
    """``--option method=fast`` (or ``snapshot=``) reached ``solve()`` twice: a TypeError traceback
    ("got multiple values for argument") instead of the CLI's one line and exit 2."""
    from cli_runner import run_cli
    from wdtnopt.testing import paper_snapshot

    path = tmp_path / "s.json"
    paper_snapshot(N=3, M=2, seed=1).save(path)
    code, out, err = run_cli(["solve", str(path), "--option", item], capsys)
    name = item.partition("=")[0]
    assert code == 2 and err.count("\n") == 1 and f"--option {name}=" in err, (code, out, err)
    assert "Traceback" not in out + err


@pytest.mark.parametrize("time_limit", [float("inf"), 1e300])
def test_pyomo_with_an_unbounded_time_limit_solves_as_without_one(time_limit):
    """``time_limit=inf`` is legal (> 0) and the only way ``wdtnopt solve --time-limit`` can lift pyomo's
    300 s default; SCIP refuses a limit above 1e20 (its parameter error left the model unsolved:
    status ``feasible``, bound 0, gap 1). Reference: the same snapshot without a limit."""
    pytest.importorskip("pyomo")
    pytest.importorskip("pyscipopt")
    from wdtnopt.solvers import solve
    from wdtnopt.testing import paper_snapshot

    s = paper_snapshot(N=6, M=2, seed=1)
    ref = solve(s, method="pyomo", time_limit=None)
    sol = solve(s, method="pyomo", time_limit=time_limit)
    assert ref.status.value == "optimal"
    assert sol.status == ref.status and "solver_failed" not in sol.stats, sol.stats
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    assert sol.bound == pytest.approx(ref.bound, rel=1e-6)   # SCIP's bound, not the failure's 0
