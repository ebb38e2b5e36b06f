"""Solver faults: missing back ends and failing solvers give a clear error, never a wrong 'optimal'."""
import subprocess
import sys

import pytest

from handmade import one_cell
from wdtnopt import solve
from wdtnopt.solvers import SolverError


def test_missing_scip_is_a_clear_error():
    code = ("import sys; sys.modules['pyscipopt'] = None\n"
            "import json, wdtnopt\n"
            "from wdtnopt.solvers import SolverError\n"
            "snap = wdtnopt.Snapshot.load(sys.argv[1])\n"
            "try:\n"
            "    sol = wdtnopt.solve(snap, method='pyomo')\n"
            "    print('STATUS', sol.status)\n"
            "except SolverError as exc:\n"
            "    print('ERROR', exc)\n")
    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.json")
        one_cell().save(path)
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True).stdout
    assert out.startswith("ERROR") and "pyscipopt" in out, out


def test_failing_conic_solver_is_a_clear_error(monkeypatch):
    import cvxpy as cp

    def boom(self, *a, **k):
        raise cp.error.SolverError("injected failure")

    monkeypatch.setattr(cp.Problem, "solve", boom)
    with pytest.raises(SolverError, match="failed"):
        solve(one_cell(), method="relaxation")


def test_unknown_method_and_option():
    with pytest.raises(SolverError, match="method"):
        solve(one_cell(), method="magic")
    with pytest.raises(Exception, match="gap"):
        solve(one_cell(), gap=-1.0)
