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


# 2. exact with a semantic menu: penalties far above the energies
@pytest.mark.parametrize("seed, penalty_j", [(35, 1e12), (2, 1e14), (4, 1e6), (14, 1e10)])
def test_exact_with_a_menu_and_large_penalties_bounds_the_brute_force(seed, penalty_j):
    from test_sixg import brute_force_levels, with_menu

    from wdtnopt import evaluate
    from wdtnopt.testing import tiny_snapshot

    # the level master's objective less its shift was a difference of penalties of 1e12 J: seed 35
    # reported the bound 0.0078125 J (1/128) over the optimum 0.0078013 J, a wrong certificate; the
    # others a bound above the incumbent, rejected to 0 ('feasible' at gap 1)
    s = with_menu(tiny_snapshot(seed, N=3, M=2), seed, levels=3)
    s = s.replace(failure_penalty=np.full(3, penalty_j), migration_penalty=np.full(3, penalty_j))
    optimum = brute_force_levels(s)
    sol = solve(s, method="exact")
    assert sol.bound <= optimum * (1 + 1e-12), (sol.bound, optimum)
    ev = evaluate(s, sol)
    assert not ev.violations and ev.objective == sol.objective >= optimum * (1 - 1e-9)
    assert sol.status == "optimal" and sol.objective <= optimum * (1 + 2 * sol.asked_gap)


def test_exact_with_a_menu_keeps_the_zero_price_bound_when_the_master_bound_is_nan():
    from test_sixg import with_menu

    from wdtnopt import evaluate
    from wdtnopt.testing import tiny_snapshot

    # MU 0's host is down: it fails (1e308 J) or moves (1e300 J), so the optimum is at least 1e300 J.
    # Three levels' copies of 1e308 J sum past the largest float in the master (a NaN bound), and
    # max(nan, zero-price bound) is NaN: the bound fell to 0 ('feasible' at gap 1)
    s = with_menu(tiny_snapshot(1, N=3, M=2), 1, levels=3)
    s = s.replace(failure_penalty=np.array([1e308, 1.0, 1.0]), migration_penalty=np.full(3, 1e300))
    up = np.ones(2, dtype=bool)
    up[s.placement_prev[0]] = False
    s = s.replace(server_up=up)
    with np.errstate(over="ignore"):
        sol = solve(s, method="exact")
    ev = evaluate(s, sol)
    assert not ev.violations and ev.objective == sol.objective
    assert 1e300 * (1 - 1e-8) <= sol.bound <= sol.objective


# 3. simulate --out: two policies whose tables share a file name
def test_simulate_refuses_two_policies_whose_tables_share_a_file(tmp_path, capsys):
    from cli_runner import run_cli

    # checkpoint:runs/a and checkpoint:runs_a both wrote checkpoint_runs_a_seed0.csv (the second
    # over the first); refused before anything runs, so the folders need not exist
    code, _, err = run_cli(["simulate", "--policy", "checkpoint:runs/a", "--policy", "checkpoint:runs_a",
                            "--n-mus", "3", "--n-bss", "2", "--slots", "2", "-o", str(tmp_path / "o")], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "checkpoint:runs/a" in lines[0] and "checkpoint:runs_a" in lines[0]
    assert "checkpoint_runs_a_seed0.csv" in lines[0] and not (tmp_path / "o").exists()


# 4. predictive's horizon_slots, checked as the failure-aware policies' one
@pytest.mark.parametrize("horizon", [0, -1, 1.5, "3", True])
def test_predictive_refuses_a_horizon_that_is_not_a_positive_integer(horizon):
    from wdtnopt.errors import WdtnoptError
    from wdtnopt.policies.predictive import PredictivePolicy

    # 0 silently meant the frame, -1 ran predicting nothing, 1.5 and "3" raised numpy's TypeErrors
    with pytest.raises(WdtnoptError, match=r"^horizon_slots: expected an integer >= 1 or None, got "):
        PredictivePolicy(horizon_slots=horizon)


def test_predictive_horizon_of_one_slot_looks_one_slot_ahead():
    from wdtnopt import simulate
    from wdtnopt.policies.predictive import PredictivePolicy
    from wdtnopt.testing import trace

    tr = trace(4, 2, seed=1, slots=6)
    a = simulate(PredictivePolicy(horizon_slots=1), tr)
    b = simulate(PredictivePolicy(horizon_slots=1), tr)
    np.testing.assert_array_equal(a.placement, b.placement)   # still accepted, deterministic
