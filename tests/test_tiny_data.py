"""Data of 1e-12 bits (the contract allows any data > 0): the allocation's compute-time Newton
(solvers/allocation.py and solvers/fast_dual.py, ``_phi``) took ``t = T - s``, which rounds to 0 at
the power cap when ``t_min`` (~1e-19 s here) is below ``T``'s rounding unit, and divided by it. Run
with warnings as errors: no numpy RuntimeWarning, and the answers against the brute force."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, hindsight_bound, simulate
from wdtnopt.testing import paper_snapshot

from test_solver_properties import brute_force, check_against


def _tiny(seed: int, which: str):
    s = paper_snapshot(4, 2, seed)
    data = np.full(s.n_mus, 1e-12) if which == "all" else s.data_bits.copy()
    if which == "one":
        data[seed % s.n_mus] = 1e-12
    return s.replace(data_bits=data)


@pytest.mark.parametrize("method", ["exact", "fast", "relaxation", "pyomo"])
@pytest.mark.parametrize("seed, which", [(0, "all"), (1, "all"), (2, "one"), (3, "one")])
def test_methods_at_tiny_data_warn_nothing_and_match_the_brute_force(method, seed, which):
    s = _tiny(seed, which)
    optimum = brute_force(s)    # the reference, outside the warnings filter
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_against(s, method, optimum)


@pytest.mark.filterwarnings("error")
def test_policies_and_bounds_at_tiny_data_warn_nothing():
    sc = Scenario.paper(n_mus=6, n_bss=2, data_bits_min=1e-12, data_bits_max=1e-12)
    tr = generate_trace(sc, seed=0, slots=6)
    energies = [simulate(p, tr).energy_per_mu_slot for p in ("static", "follow", "oracle", "lyapunov")]
    for dual in ("columns", "supergradient"):
        hb = hindsight_bound(tr, iters=3, workers=1, dual=dual)
        assert hb.energy_per_mu_slot <= min(energies) * (1 + 1e-9)

