"""``Solution.from_dict`` checks the stored certificate: a saved solution whose status, bound or gap
contradict each other is refused with the field named, and every method's own output (and the
solutions of the reference files) reads back unchanged."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wdtnopt.errors import WdtnoptError
from wdtnopt.solvers import Solution, relative_gap, solve
from wdtnopt.testing import paper_snapshot, tiny_snapshot


def _methods():
    out = ["exact", "fast"]
    try:
        import cvxpy  # noqa: F401
        out.append("relaxation")
    except ImportError:
        pass
    try:
        import pyomo  # noqa: F401
        import pyscipopt  # noqa: F401
        out.append("pyomo")
    except ImportError:
        pass
    return out


def _snapshots():
    from wdtnopt.snapshot import Snapshot
    s = tiny_snapshot(4, N=4, M=2)
    storage_breached = s.replace(storage_bits=np.full(2, 1.0), allow_migration=False)   # infeasible
    d = s.to_dict()
    d["request"] = [False] * 4                                                          # objective 0
    from test_sixg import with_menu
    return [s, storage_breached, Snapshot.from_dict(d), with_menu(tiny_snapshot(3, N=4, M=2), 1)]   # a menu: level


@pytest.mark.parametrize("method", _methods())
def test_every_method_round_trips_through_json(method):
    statuses = set()
    for s in _snapshots():
        sol = solve(s, method=method, time_limit=30.0) if method == "pyomo" else solve(s, method=method)
        statuses.add(sol.status.value)
        back = Solution.from_dict(json.loads(json.dumps(sol.to_dict())))
        assert back.to_dict() == sol.to_dict()
        assert (back.level is None) == (s.level_ratio is None)
        assert back.asked_gap == sol.asked_gap is not None
        assert sol.status != "optimal" or sol.gap <= sol.asked_gap
    assert "infeasible" in statuses and "optimal" in statuses, statuses


def _saved():
    return solve(paper_snapshot(N=6, M=2, seed=1), method="exact").to_dict()


@pytest.mark.parametrize("change, field", [
    ({"bound": "OBJ*2"}, "bound"),                                 # a bound above the objective
    ({"gap": -0.01}, "gap"),                                       # negative gap
    ({"gap": 0.5}, "gap"),                                         # not the objective's and bound's gap
    ({"bound": "OBJ/2", "gap": 0.5}, "status"),                    # 'optimal' at 0.5 > asked 1e-6
    ({"bound": "nan"}, "bound"),
    ({"objective": "inf", "gap": "inf"}, "objective"),             # 'optimal' without a decision
    ({"status": "bound_only"}, "objective"),                       # no decision, yet a finite objective
    ({"status": "proven"}, "status"),                              # not a status
    ({"asked_gap": -1e-6}, "asked_gap"),
    ({"served": [True]}, "served"),                                # arrays of different lengths
    ({"placement": [-1, 0, 0, 0, 0, 0]}, "placement"),
])
def test_an_inconsistent_certificate_is_refused_naming_the_field(change, field):
    d = _saved()
    assert d["status"] == "optimal" and d["asked_gap"] == 1e-6
    obj = d["objective"]
    for k, v in change.items():
        d[k] = {"OBJ*2": obj * 2, "OBJ/2": obj / 2}.get(v, v) if isinstance(v, str) else v
    with pytest.raises(WdtnoptError, match=f"^invalid solution: {field}: "):
        Solution.from_dict(d)


def test_legitimate_variants_still_read():
    d = _saved()
    del d["asked_gap"]                          # written before the asked gap was recorded
    assert Solution.from_dict(d).asked_gap is None
    d = _saved()                                # 'feasible' at a gap above the asked one is honest
    d.update(bound=d["objective"] / 2, gap=0.5, status="feasible")
    assert Solution.from_dict(d).gap == 0.5
    d = _saved()                                # a gap written with fewer digits (round-off)
    d.update(bound=d["objective"] * 0.75, status="feasible")
    d["gap"] = float(f"{relative_gap(d['objective'], d['bound']):.12g}")
    Solution.from_dict(d)
    d.update(status="infeasible", objective="inf", bound="inf", gap="inf")
    assert math.isinf(Solution.from_dict(d).objective)


def test_solve_holds_a_replacement_method_to_its_asked_gap():
    # a registered method whose 'optimal' is not within the asked gap: solve() says 'feasible'
    from wdtnopt import solvers

    s = paper_snapshot(N=4, M=2, seed=2)

    def sloppy(snapshot, gap=1e-6):
        sol = solve(snapshot, method="exact")
        sol.bound, sol.gap, sol.asked_gap = sol.objective * 0.9, 0.1 + 0 * gap, None
        return sol

    solvers.register_method("sloppy_test", sloppy)
    try:
        sol = solve(s, method="sloppy_test", gap=1e-3)
    finally:
        solvers._METHODS.pop("sloppy_test")
    assert sol.status == "feasible" and sol.asked_gap == 1e-3 and "status_downgraded" in sol.stats
    Solution.from_dict(sol.to_dict())
