"""Remembered server allocations (solvers/allocation.py ``remembered_allocations``): inside the block a
repeated ``allocate_server`` call returns the allocation computed before, bit for bit what a fresh
call gives, and exact's solve (which runs in such a block) certifies the brute-force optimum."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt.solvers.allocation import PairData, allocate_server, reference_allocate_server, remembered_allocations
from wdtnopt.testing import paper_snapshot, tiny_snapshot

from test_solver_properties import _crowded, brute_force, check_against


def _fields(a) -> tuple:
    return (a.mus.tobytes(), a.tx_time.tobytes(), a.cpu_hz.tobytes(), float(a.energy).hex(), float(a.price).hex(),
            a.feasible)


def test_a_remembered_allocation_equals_a_fresh_one_bit_for_bit() -> None:
    s = paper_snapshot(N=30, M=5, seed=4)
    pd = PairData.of(s)
    rng = np.random.default_rng(0)
    asks = []
    for m in range(s.n_bss):
        cand = np.flatnonzero(pd.servable[:, m])
        for _ in range(6):
            asks.append((m, rng.permutation(cand)[:rng.integers(0, cand.size + 1)]))
    fresh = [allocate_server(pd, m, mus) for m, mus in asks]
    with remembered_allocations(pd):
        first = [allocate_server(pd, m, mus) for m, mus in asks]
        again = [allocate_server(pd, m, mus.copy()) for m, mus in asks]
    for f, a, b in zip(fresh, first, again):
        assert _fields(a) == _fields(f)
        assert b is a                      # the same sets, asked again: not solved again
        assert not a.cpu_hz.flags.writeable and not a.tx_time.flags.writeable
    # the order of the MUs is part of the question (the arrays are aligned with it)
    m, mus = next((m, mus) for m, mus in asks if mus.size >= 2)
    with remembered_allocations(pd):
        ab, ba = allocate_server(pd, m, mus), allocate_server(pd, m, mus[::-1])
    assert ba is not ab and np.array_equal(ba.mus, mus[::-1])
    assert ba.energy == pytest.approx(ab.energy, rel=1e-12)


def test_the_memory_is_per_block_and_per_pair_data() -> None:
    s = tiny_snapshot(3, N=6)
    pd, other = PairData.of(s), PairData.of(s)
    m = int(np.flatnonzero(pd.servable.any(axis=0))[0])
    mus = np.flatnonzero(pd.servable[:, m])
    with remembered_allocations(pd):
        a = allocate_server(pd, m, mus)
        assert allocate_server(other, m, mus) is not a          # another PairData is not served from it
        assert mus.flags.writeable                                # the caller's array is left alone
        with remembered_allocations(other):
            assert allocate_server(pd, m, mus) is not a           # an inner block has its own memory
        assert allocate_server(pd, m, mus) is a                   # the outer one is back after it
    assert allocate_server(pd, m, mus) is not a                   # none outside a block
    ref_e, _, _ = reference_allocate_server(pd, m, mus)
    if np.isfinite(ref_e):
        assert a.energy == pytest.approx(ref_e, rel=1e-9)


def test_exact_with_remembered_allocations_certifies_the_brute_force_optimum() -> None:
    for seed in range(6):
        s = _crowded(np.random.default_rng(300 + seed))
        check_against(s, "exact", brute_force(s))
