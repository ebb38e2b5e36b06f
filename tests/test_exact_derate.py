"""exact's HiGHS bound is safe by its derating alone (docs/solvers.md, "The exact bound under HiGHS's
tolerances"): with the other safeguards switched off, the bound must still be below the brute force.

The trap snapshots of tests/test_solver_properties.py start at a placement costing ~1e12 J next to
optima of nano- to millijoules. Here the master keeps its objective in units of that first incumbent
(no in-place rescale, no rebuild) and the tolerance-free Lagrangian floor and the local-search start
are off, so the reported bound is HiGHS's bound less ``_Master.derate`` and nothing else. HiGHS's
bound in units of 1e12 J lies far above such optima; with the derating term removed this test fails.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wdtnopt.solvers import exact

from test_solver_properties import _scale_trap, brute_force, check_against


@pytest.fixture
def derating_only(monkeypatch):
    monkeypatch.setattr(exact, "RESCALE_BELOW", 0.0)            # no rebuild at the incumbent's scale
    monkeypatch.setattr(exact, "RESCALE_OBJECTIVE_BELOW", 0.0)  # no in-place rescale of the objective
    monkeypatch.setattr(exact._Master, "price_certificate", lambda self: None)   # no Lagrangian floor
    monkeypatch.setattr(exact, "repair_storage", lambda *a: None)   # no second start: the master starts at ~1e12 J
    yield


def test_the_derating_alone_keeps_the_bound_below_the_optimum(derating_only) -> None:
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        s = _scale_trap(np.random.default_rng(seed))
        check_against(s, "exact", brute_force(s), primal_seed="none", polish_rounds=0)
    run()


def test_the_derating_term_counts_every_move_bound() -> None:
    """``derate`` against a hand count on a one-MU, two-server master: 2 over the DT's x, 6 for the
    request's y, phi, u and failure row, 2 per server for its storage and CPU rows, 1 per y <= x row,
    2 per pair for its phi rows, twice the most the eta can sum to, and the cut rows' slacks."""
    from test_solver_properties import _snapshot
    from wdtnopt.solvers.allocation import PairData
    from wdtnopt.solvers.options import ExactOptions

    s = _snapshot(1, 2, gain=np.full((1, 2), 1e-10), assoc=np.array([0]), data_bits=np.array([1e5]),
                  cycles_per_bit=np.array([100.0]), deadline=np.array([0.5]), request=np.array([True]),
                  dt_size_bits=np.array([1e8]), cpu_hz=np.array([2e9, 3e9]), storage_bits=np.array([1e9, 1e9]),
                  placement_prev=np.array([0]), failure_penalty=np.array([1.0]), migration_penalty=np.array([1e-3]))
    pd = PairData.of(s)
    master = exact._Master(pd, 2.0, ExactOptions())
    assert len(master.phi) == 2 and len(master.u) == 1 and master.free.size == 1
    d = master.dual_tol
    assert d == pytest.approx(exact.DUAL_TOL)
    v = 0.5                                                   # J
    top = max(master.e_top.values())                          # units of ref
    base = 2 * 1 + 6 * 1 + 2 * 2 + 2 + 2 * 2                 # x; y, phi, u and its row; storage + CPU; y<=x; phi rows
    want = d * 2.0 * (base + 2 * min(v / 2.0, top))
    assert master.derate(v) == pytest.approx(want, rel=1e-9)
    master.add_cuts(0, 1, [0.5])                              # a cut row adds its slack bound
    assert master.derate(v) > want
    assert master.derate(v) == pytest.approx(want + d * 2.0 * master.slack_top[0, 1], rel=1e-9)
    master.rescale(1e-3)                                      # proportional to the objective's unit
    assert master.derate(v) == pytest.approx((want + d * 2.0 * master.slack_top[0, 1]) * 1e-3 / 2.0, rel=1e-9)
