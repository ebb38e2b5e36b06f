"""exact under a time limit that is short for the snapshot's size starts from the fast method's
decision (docs/solvers.md, "Short time limits"): its decision is then never worse than that start,
and its certificate stays true."""
from __future__ import annotations

import pytest

from wdtnopt.solvers import solve
from wdtnopt.solvers.exact import SHORT_LIMIT_S_PER_PAIR, short_time_limit
from wdtnopt.solvers.fast import solve_fast
from wdtnopt.testing import loaded_snapshot


def test_short_limit_is_relative_to_the_pairs() -> None:
    s = loaded_snapshot(80, 5, 0)           # 400 pairs: short below 0.8 s
    edge = SHORT_LIMIT_S_PER_PAIR * 400
    assert short_time_limit(s, 0.3) and short_time_limit(s, 0.99 * edge)
    assert not short_time_limit(s, edge) and not short_time_limit(s, 10.0) and not short_time_limit(s, None)


def test_short_limit_starts_from_fast_and_is_no_worse_than_it() -> None:
    """Loaded 80 x 5 instance 0: exact alone at 0.3 s ended at 0.51056 J (time_limit) where fast
    gives 0.50584 J in 0.04 s; the reference is fast's own converged run without a limit."""
    s = loaded_snapshot(80, 5, 0)
    ref = solve_fast(s, exact_pairs=0)
    sol = solve(s, method="exact", time_limit=0.79)
    assert "fast_seed_s" in sol.stats
    assert sol.objective <= ref.objective * (1 + 1e-12)
    assert sol.status in ("optimal", "time_limit")
    assert sol.bound <= sol.objective


@pytest.mark.parametrize("options", [{"time_limit": 30.0}, {}, {"time_limit": 0.3, "primal_seed": "none"}])
def test_no_fast_start_with_a_long_or_no_limit_on_small_snapshots(options) -> None:
    s = loaded_snapshot(40, 5, 1)           # 200 pairs, below primal_seed's N M >= 500
    sol = solve(s, method="exact", max_iterations=1, **options)
    assert "fast_seed_s" not in sol.stats
