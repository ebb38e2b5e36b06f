"""A newcomer's pass (11): slot counts of unavailability, up-front checks of the benchmark suites and
cheap leftovers, each failing before its fix."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cli_runner import run_cli


# -- 1. one slot count of unavailability (docs/model.md, section 4.1) ------------------------------
def test_unavailable_slots_hand_computed_counts():
    from wdtnopt.trace import UNAVAILABLE_SLOTS_CAP, unavailable_slots

    # ceil(t / tau), at least one: 0.1 s in 0.5 s slots is one slot, 0.6 s two, 1.0 s exactly two
    # (the exact multiple does not gain a slot on round-off), 1.0000001 s three
    got = unavailable_slots([0.0, 0.1, 0.5, 0.6, 1.0, 1.0000001, 7.25], 0.5)
    assert got.dtype == np.int64
    assert got.tolist() == [1, 1, 1, 2, 2, 3, 15]
    # exact multiples whose float quotient lands a hair above the integer (0.27 / 0.09 =
    # 3.0000000000000004): ceil alone would give 4, the guard keeps 3
    assert 0.27 / 0.09 > 3 and 0.07 / 0.01 > 7
    assert unavailable_slots(0.27, 0.09).tolist() == 3
    assert unavailable_slots([0.07, 0.14], 0.01).tolist() == [7, 14]
    # at_least: a count of zero is allowed when asked for
    assert unavailable_slots([0.0, 0.2], 0.5, at_least=0).tolist() == [0, 1]
    # the cap: longer than any trace, exact as float and int64
    assert UNAVAILABLE_SLOTS_CAP == 2**53 == int(float(2**53))
    over = unavailable_slots([math.inf, 1e308, 1e20, 2.0**53 * 0.5 * 4], 0.5)
    assert over.tolist() == [2**53] * 4
    assert unavailable_slots(1e308, 1e-300).tolist() == 2**53          # quotient overflows to inf
    assert unavailable_slots(1e-300, 1e308).tolist() == 1              # quotient underflows to 0
    # below the cap the count is exact: the former guard ceil(q (1 - 1e-12)) dropped q 1e-12 slots
    assert unavailable_slots(2.0**52, 1.0).tolist() == 2**52
    assert unavailable_slots(1e13, 0.5).tolist() == 2 * 10**13
    assert unavailable_slots(1e13 + 3.0, 1.0).tolist() == 10**13 + 3
    assert unavailable_slots(np.zeros((2, 3)), 1.0).shape == (2, 3)


@pytest.mark.parametrize("t,tau", [(-1.0, 0.5), (math.nan, 0.5), (1.0, 0.0), (1.0, -1.0), (1.0, math.nan)])
def test_unavailable_slots_refuses_negative_or_nan(t, tau):
    from wdtnopt.trace import unavailable_slots

    with pytest.raises(ValueError, match="t_s|slot_s"):
        unavailable_slots(t, tau)


def _extreme_trace(slots=12, **extra):
    from wdtnopt import Scenario, generate_trace

    # legal values: the smallest slot, the largest DT and the slowest backhaul of their ranges
    sc = Scenario.paper(n_mus=4, n_bss=2, slot_s=1e-300, dt_size_bits_min=1e15, dt_size_bits_max=1e15,
                        hop_rate_bps=1.0, storage_factor=4.0, **extra)
    return generate_trace(sc, seed=0, slots=slots)


def test_counts_of_an_overflowing_scenario_are_capped_not_wrapped():
    tr = _extreme_trace()
    src = np.array([0, 0, 1, 1])
    dst = np.array([1, 0, 0, 1])
    # before: ceil(inf) cast to int64 wrapped to -2**63 (a DT "available" at once, after a move)
    with np.errstate(all="raise"):
        k = tr.migration_slots(src, dst)
    assert k.tolist() == [2**53, 0, 2**53, 0]
    pen = tr.default_migration_penalty()
    assert np.isfinite(pen).all()
    np.testing.assert_array_equal(pen, tr.scenario.request_prob * 2.0**53 * tr.scenario.failure_price)


def test_simulate_on_an_overflowing_scenario_runs():
    from wdtnopt import simulate
    from wdtnopt.simulation import SimState

    tr = _extreme_trace()
    for policy in ("static", "follow", "oracle", "lyapunov"):
        res = simulate(policy, tr)     # before: follow's snapshots had an inf migration penalty
        assert res.slots == tr.slots
    # a DT moved at slot 0 stays unavailable for the rest of the run (before: -2**63 slots)
    state = SimState(tr)
    target = state.placement.copy()
    target[0] = 1 - target[0]
    assert state.apply_placement(target) == 1
    assert state.unavailable[0] == 2**53 and (np.delete(state.unavailable, 0) == 0).all()


def test_self_healing_and_restore_prices_on_an_overflowing_scenario():
    from wdtnopt import simulate
    from wdtnopt.policies.failure_aware import restore_slots
    from wdtnopt.simulation import SimState

    # server 0 fails at once (MTBF 1e-300 s = one slot) and is never repaired in 6 slots
    tr = _extreme_trace(slots=6, server_mtbf_s=[1e-300, 0.0], server_mttr_s=1e12)
    assert not tr.server_up[:, 0].any() and tr.server_up[:, 1].all()
    r = restore_slots(tr, tr.assoc[0])
    assert r.shape == (4, 2) and (r == 2.0**53).all()
    # before: int(np.ceil(inf)) in SimState.heal raised OverflowError
    state = SimState(tr)
    on0 = tr.initial_placement == 0
    assert on0.any()
    assert (state.restoring == on0).all() and (state.placement == 1).all()
    assert (state.unavailable[on0] == 2**53).all() and (state.unavailable[~on0] == 0).all()
    for policy in ("static", "oracle-fa", "lyapunov-fa"):
        assert simulate(policy, tr).slots == 6
