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
