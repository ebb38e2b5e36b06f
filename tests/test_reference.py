"""The exact oracle reproduces the reference snapshots of ../shared/reference (issue 3)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wdtnopt.cost import evaluate
from wdtnopt.snapshot import Snapshot
from wdtnopt.solvers import solve

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "snapshots.json"


def _cases() -> list:
    if not REFERENCE.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"reference snapshots not found at {REFERENCE}"))]
    data = json.loads(REFERENCE.read_text())
    return [pytest.param(c, id=c["name"].split()[0]) for c in data["cases"]]


@pytest.mark.parametrize("case", _cases())
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
