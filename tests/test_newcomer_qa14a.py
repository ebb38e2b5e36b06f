"""Newcomer QA (qa14a): extreme but legal snapshots and the CLI's handling of bad input.

Each test names the defect it guards against; the references are closed forms of the energy law
(docs/model.md, section 3) or the brute force of tests/test_solver_properties.py.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from wdtnopt.cost import evaluate
from wdtnopt.solvers import solve

from test_solver_properties import _snapshot

BIG = float(np.finfo(np.float64).max)
METHODS = ("exact", "fast", "relaxation")


def _one_mu(**over):
    """One MU alone on one server (gain 1e-10, N0 4e-21 W/Hz, B 1 MHz, D 1 Mbit, 100 cycles/bit)."""
    return _snapshot(1, 1, gain=[[1e-10]], data_bits=[1e6], cycles_per_bit=[100.0], failure_penalty=[1.0], **over)


def _alone_energy(T: float, F: float) -> float:
    """E(T - c/F) by hand: ``k t (2^(D / (B t)) - 1)`` with ``k = N0 B / g`` (served with all the CPU)."""
    t = T - 1e8 / F
    return 4e-21 * 1e6 / 1e-10 * t * math.expm1(1e6 * math.log(2) / (1e6 * t))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("field", ["cpu_hz", "p_max"])
def test_a_limit_at_the_largest_float_is_solved(method: str, field: str) -> None:
    """``cpu_hz`` or ``p_max`` of 1.7976931348623157e308 (finite, so legal) made ``solve`` raise
    ``SnapshotError: cpu_hz: must be finite, got inf``: the tolerance check built the tolerant
    snapshot with the limit times ``1 + FEAS_RTOL``, which overflowed. The solve now ends, and its
    objective is the hand-computed energy of the MU served with all of the CPU (deadline 0.5 s)."""
    s = _one_mu(**{field: [BIG]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # overflow warnings at 1.8e308 (report: left)
        sol = solve(s, method=method)
        ev = evaluate(s, sol)
    want = _alone_energy(0.5, float(s.cpu_hz[0]))
    assert not ev.violations and sol.objective == ev.objective
    assert sol.objective == pytest.approx(want, rel=1e-9)
    assert sol.bound <= want * (1 + 1e-9)
    assert sol.status == "optimal"


@pytest.mark.parametrize("method", METHODS)
def test_a_deadline_at_the_largest_float_does_not_raise(method: str) -> None:
    """The same overflow for ``deadline``: the solve ends with a decision evaluate accepts and a bound
    below its objective (the energy law itself rounds to 0 J at t ~ 1e308 s, so no closed form here)."""
    s = _one_mu(deadline=[BIG])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sol = solve(s, method=method)
        ev = evaluate(s, sol)
    assert not ev.violations and sol.objective == ev.objective
    assert sol.bound <= sol.objective
