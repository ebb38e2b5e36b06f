"""The exact oracle reproduces the reference snapshots kept in tests/data/reference_snapshots.json
(16 small snapshots with their optimal objective, solved independently of this package)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wdtnopt.cost import evaluate
from wdtnopt.snapshot import Snapshot
from wdtnopt.solvers import solve

REFERENCE = Path(__file__).resolve().parent / "data" / "reference_snapshots.json"


def _cases() -> list:
    data = json.loads(REFERENCE.read_text())   # part of the repository: a missing file is an error, not a skip
    return [pytest.param(c, id=c["name"].split()[0]) for c in data["cases"]]


CASES = _cases()


def test_reference_data_present() -> None:
    assert len(CASES) == 16


@pytest.mark.parametrize("case", CASES)
def test_exact_reproduces_reference(case: dict) -> None:
    s = Snapshot.from_dict(case["snapshot"])
    want = case["optimal_objective"]
    sol = solve(s, method="exact")
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(want, rel=1e-6, abs=1e-12)
    assert sol.bound <= sol.objective
    assert sol.gap <= 1e-6
    ev = evaluate(s, sol)
    assert not ev.violations, ev.summary()
    assert ev.objective == sol.objective
    # the reference decision is one optimum: it is feasible and costs the same
    ref = evaluate(s, case["an_optimal_decision"])
    assert ref.objective == pytest.approx(want, rel=1e-9, abs=1e-12)
