"""A newcomer's pass (6e): what changed in the sixth round, tried on inputs the authors likely did not."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from wdtnopt import solve
from wdtnopt.testing import loaded_snapshot, paper_snapshot


# 1. fast: migration penalties far above the requesting MUs' failure penalties (the bundle's unit)
@pytest.mark.parametrize("make, seed", [(paper_snapshot, 0), (loaded_snapshot, 3)])
@pytest.mark.parametrize("fail_j, move_j", [(1e-6, 1e307), (1e-300, 1e10)])
def test_fast_with_migrations_far_above_the_failure_penalties_warns_nothing(make, seed, fail_j, move_j):
    from test_solver_properties import brute_force, check_against

    # the bundle master's unit is the requesting MUs' mean failure penalty; a row's cost over it
    # (a migration of 1e307 J over 1e-6 J) overflowed with a RuntimeWarning (the row is free then)
    s = make(5, 3, seed)
    s = s.replace(failure_penalty=np.full(5, fail_j), migration_penalty=np.full(5, move_j))
    with np.errstate(over="ignore"):
        optimum = brute_force(s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_against(s, "fast", optimum)
