"""A newcomer's fifth pass: extreme but legal inputs, options that must not be ignored."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace


def _snapshot_dict(n_mus=6, n_bss=3, seed=3):
    return generate_trace(Scenario.paper(n_mus=n_mus, n_bss=n_bss), seed=seed, slots=2).snapshot(0).to_dict()


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_a_huge_server_cpu_is_solved_like_zero_compute(method):
    # cpu_hz = 1e300 is finite and positive, so legal; a server hosting one busy DT priced it with
    # a Python float's F**2, which raised OverflowError (a traceback through `wdtnopt solve`).
    # Reference: with that much CPU the computation takes no time, so the optimum is the one of the
    # same snapshot whose DTs need no cycles at all.
    from wdtnopt import Snapshot, evaluate, solve

    d = _snapshot_dict()
    d["cpu_hz"] = [1e300] * len(d["cpu_hz"])
    huge = Snapshot.from_dict(d)
    d["cycles_per_bit"] = [0.0] * len(d["cycles_per_bit"])
    zero = Snapshot.from_dict(d)
    sol = solve(huge, method=method)
    ref = solve(zero, method="exact")
    assert sol.status.value == "optimal" and ref.status.value == "optimal"
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    assert evaluate(huge, sol).objective == pytest.approx(sol.objective, rel=1e-9)
