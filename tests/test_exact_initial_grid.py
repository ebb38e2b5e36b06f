"""exact's initial tangent grid (docs/solvers.md, "Exact oracle", step 2): geometric in the CPU share
by default, or crowded near each pair's least share (``initial_first_step``). Either is a set of
tangents of the convex energy, so neither may change what is certified: the optimum against the
brute force of tests/test_solver_properties.py, and a bound below it."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt.errors import WdtnoptError
from wdtnopt.solvers import solve
from wdtnopt.solvers import exact
from wdtnopt.solvers.allocation import PairData
from wdtnopt.solvers.options import ExactOptions
from wdtnopt.testing import loaded_snapshot

from test_solver_properties import _crowded, brute_force, check_against


@pytest.mark.parametrize("step", [None, 0.03, 1.0])
def test_the_initial_cuts_sit_on_the_documented_grid(step) -> None:
    """Per pair, the shares cut are ``pmin``, the grid (``pmin`` to 1: geometric in the share, or
    ``pmin + (1 - pmin) r`` with ``r`` geometric from ``step`` to 1) and ``1/k`` for k up to the
    pairs on the server (at most 8), each clipped to ``[pmin, 1]``; written here from the formulas."""
    s = loaded_snapshot(12, 3, 0)
    pd = PairData.of(s)
    K = 6
    master = exact._Master(pd, 1.0, ExactOptions(initial_cuts=K, initial_first_step=step))
    master.initial_cuts()
    ns, ms = master.pair_columns()[:2]
    load = np.bincount(ms, minlength=s.n_bss)
    for n, m in zip(ns.tolist(), ms.tolist()):
        pmin = max(pd.f_min[n, m] / pd.cpu_hz[m], 1e-6)
        if step is None:
            grid = [pmin * (1.0 / pmin) ** (j / (K - 1)) for j in range(K)]
        else:
            grid = [pmin] + [pmin + (1 - pmin) * step ** (1 - j / (K - 2)) for j in range(K - 1)]
        want = sorted(set(min(max(p, pmin), 1.0) for p in [pmin, *grid, *(1 / k for k in range(1, min(load[m], 8) + 1))]))
        got = sorted(master.cuts[n, m])
        # as sets (a share within 1e-12 relative of another is one cut)
        assert all(np.isclose(want, g, rtol=1e-9, atol=0).any() for g in got), (n, m, got, want)
        assert all(np.isclose(got, w, rtol=1e-9, atol=0).any() for w in want), (n, m, got, want)


def test_the_crowded_grid_certifies_the_brute_force_optimum() -> None:
    """Crowded snapshots (CPU-short server), with no root rounds or price cuts, so the first
    master sees only the initial cuts: the optimum and a true bound, as with the default grid."""
    for seed in range(12):
        s = _crowded(np.random.default_rng(seed))
        want = brute_force(s)
        check_against(s, "exact", want, initial_first_step=0.03, root_rounds=0, price_cuts=())
        check_against(s, "exact", want, initial_first_step=1.0)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), "0.03", True])
def test_a_bad_first_step_is_refused_by_name(bad) -> None:
    with pytest.raises(WdtnoptError, match="initial_first_step must be"):
        solve(loaded_snapshot(6, 2, 0), method="exact", initial_first_step=bad)
