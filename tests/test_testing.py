"""``wdtnopt.testing``: the factories take their physics from ``generate_trace`` (no second copy),
are deterministic, produce the regimes they promise, and work without the repository checkout."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

from wdtnopt import Scenario, Snapshot, generate_trace
from wdtnopt.testing import TINY_KINDS, one_cell, paper_snapshot, tiny_snapshot
from wdtnopt.testing.strategies import snapshot_dicts

TRACE_FIELDS = ("gain", "assoc", "bandwidth", "noise_psd", "data_bits", "request")


def _same(a: Snapshot, b: Snapshot) -> bool:
    da, db = a.to_dict(), b.to_dict()
    return da.keys() == db.keys() and all(np.array_equal(np.asarray(da[k]), np.asarray(db[k])) for k in da)


def test_paper_snapshot_is_slot_zero_of_the_trace():
    s = paper_snapshot(12, 3, seed=5, request_prob=0.8)
    tr = generate_trace(Scenario.paper(n_mus=12, n_bss=3, request_prob=0.8, compression_ratio=1.0), seed=5, slots=1)
    for f in TRACE_FIELDS:
        assert np.array_equal(getattr(s, f), getattr(tr, f)[0]), f
    for f in ("cycles_per_bit", "dt_size_bits", "cpu_hz", "storage_bits", "backhaul_latency_s", "backhaul_s_per_bit"):
        assert np.array_equal(getattr(s, f), getattr(tr, f)), f
    load = np.bincount(s.placement_prev, weights=s.dt_size_bits, minlength=3)
    assert (load <= s.storage_bits).all()
    assert (s.failure_penalty == 0.01).all() and (s.migration_penalty == 1e-3).all() and s.allow_migration
    assert _same(s, paper_snapshot(12, 3, seed=5, request_prob=0.8))
    assert not _same(s, paper_snapshot(12, 3, seed=6, request_prob=0.8))


def test_tiny_snapshot_regimes():
    for seed in range(12):
        for kind in TINY_KINDS + ("edge",):
            s = tiny_snapshot(seed, kind=kind)
            n, m = s.n_mus, s.n_bss
            assert 2 <= n <= 6 and 1 <= m <= 3
            load = np.bincount(s.placement_prev, weights=s.dt_size_bits, minlength=m)
            assert (load <= s.storage_bits * (1 + 1e-12)).all()
            assert s.allow_migration == (kind != "no_migration")
            if kind == "tight_storage":
                assert np.allclose(s.storage_bits, math.ceil(n / m) * 300e6)
            if kind == "tight_cpu":
                assert ((s.cpu_hz >= 1.5e9) & (s.cpu_hz <= 4e9)).all()
            if kind == "cheap_fail":
                assert (s.failure_penalty <= 2e-3).all()
            assert _same(s, tiny_snapshot(seed, kind=kind))
    kinds = {k: 0 for k in ("zero_cycles", "edge")}
    for seed in range(20):
        kinds["zero_cycles"] += int((tiny_snapshot(seed, kind="zero_cycles").cycles_per_bit == 0).any())
        e = tiny_snapshot(seed, kind="edge")
        kinds["edge"] += int((e.cpu_hz == 0).any() or (e.p_max == 0).any() or (e.deadline == 0.005).any())
    assert kinds["zero_cycles"] > 10 and kinds["edge"] > 10
    with pytest.raises(ValueError, match="kind"):
        tiny_snapshot(0, kind="bogus")


def test_one_cell_numbers_on_paper():
    s = one_cell()
    assert s.noise_psd[0] * s.bandwidth[0] / s.gain[0, 0] == pytest.approx(1e-4)
    assert s.cycles_per_bit[0] * s.data_bits[0] / s.cpu_hz[0] == pytest.approx(0.1)
    assert one_cell(deadline=[0.5, 0.5]).deadline.tolist() == [0.5, 0.5]


@settings(max_examples=25, deadline=None)
@given(d=snapshot_dicts(mutate=False))
def test_unmutated_strategy_draws_are_valid_snapshots(d):
    s = Snapshot.from_dict(d)
    assert s.n_mus == len(d["assoc"])


def test_bench_solvers_allocation_task_runs_outside_the_checkout(tmp_path):
    # a fresh interpreter in another directory: nothing of tests/ is importable, as for a user
    code = ("import json, pathlib, sys; from wdtnopt.benchmarks.suites.solvers import allocation_task; "
            "r = allocation_task({'n_mus': 12, 'repeats': 1}, pathlib.Path('.')); "
            "assert not any(p.rstrip('/').endswith('/tests') for p in sys.path); print(json.dumps(sorted(r)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    keys = out.stdout.strip().splitlines()[-1]
    assert "skipped" not in keys and "e_fast" in keys and "e_cvx" in keys


def test_loaded_snapshot_is_loaded_feasible_and_deterministic():
    from wdtnopt.testing import LOADED_STORAGE_SLACK, loaded_snapshot

    for N, M, seed in ((50, 5, 0), (100, 10, 3), (9, 2, 1)):
        s = loaded_snapshot(N, M, seed)
        again = loaded_snapshot(N, M, seed)
        assert all(np.array_equal(getattr(s, k), getattr(again, k)) for k in s.to_dict() if k != "allow_migration")
        assert ((1.5e9 <= s.cpu_hz) & (s.cpu_hz <= 4e9)).all()
        assert ((0.15 <= s.deadline) & (s.deadline <= 0.25)).all()
        assert abs(s.request.mean() - 0.7) < 0.25
        # the storage: at least LOADED_STORAGE_SLACK (grown only when the greedy packing fails) times the
        # DTs, servers uneven by up to 7x, the previous placement fits
        total = s.storage_bits.sum() / s.dt_size_bits.sum()
        assert LOADED_STORAGE_SLACK * (1 - 1e-12) <= total < LOADED_STORAGE_SLACK * 1.05 ** 5
        assert s.storage_bits.max() / s.storage_bits.min() <= 7 * (1 + 1e-12)
        load = np.bincount(s.placement_prev, weights=s.dt_size_bits, minlength=M)
        assert (load <= s.storage_bits).all()
        # random BS positions: the association is the nearest of them, not of the fixed layout
        tr_fixed = generate_trace(Scenario.paper(n_mus=N, n_bss=M, request_prob=0.7, compression_ratio=1.0),
                                  seed=seed, slots=1)
        assert not np.array_equal(s.gain, tr_fixed.gain[0])
        assert np.array_equal(s.data_bits, tr_fixed.data_bits[0])      # the trace's own workload streams
    # paper snapshots are untouched by the loaded generator
    a = paper_snapshot(N=10, M=5, seed=0)
    loaded_snapshot(10, 5, 0)
    assert np.array_equal(a.gain, paper_snapshot(N=10, M=5, seed=0).gain)
    with pytest.raises(ValueError, match="storage_slack"):
        loaded_snapshot(5, 2, 0, storage_slack=1.0)
    with pytest.raises(ValueError, match="cpu_hz_range"):
        loaded_snapshot(5, 2, 0, cpu_hz_range=(4e9, 1e9))


def test_loaded_snapshot_exact_optimum_against_brute_force():
    """A small loaded snapshot: the exact optimum equals the brute force of the solver tests."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_solver_properties import brute_force
    from wdtnopt.solvers import solve
    from wdtnopt.testing import loaded_snapshot

    for seed in range(3):
        s = loaded_snapshot(4, 2, seed)
        sol = solve(s, method="exact")
        assert sol.status == "optimal"
        assert sol.objective == pytest.approx(brute_force(s), rel=1e-6)


def test_suite_profile_draws_the_same_examples_each_run():
    """tests/conftest.py loads the ``repro`` profile (docs/testing.md, "Property tests"): a property
    test draws the same examples on every run, so a CI failure replays exactly."""
    import os

    from hypothesis import strategies as st

    if os.environ.get("HYPOTHESIS_PROFILE", "repro") != "repro":
        pytest.skip("another hypothesis profile was asked for")
    assert settings.default.derandomize and settings.default.database is None and settings.default.deadline is None
    seen: list[tuple[int, float]] = []

    @given(st.integers(), st.floats(allow_nan=False))
    def record(i, x):
        seen.append((i, x))

    record()
    first = list(seen)
    seen.clear()
    record()
    assert len(first) > 20 and seen == first
