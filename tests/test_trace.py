import math

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace
from wdtnopt.trace import _reflect, bs_layout, gauss_markov, pathloss_gain, rician_power


def test_rician_unit_mean_power_and_k_factor():
    rng = np.random.default_rng(0)
    for k in (0.0, 3.0, 10.0):
        p = rician_power(rng, k, (400_000,))
        assert p.mean() == pytest.approx(1.0, abs=0.01)
        # Var[|h|^2] = (1 + 2K) / (1 + K)^2 for unit mean power: invert for K
        var = p.var()
        k_hat = (1 - var + math.sqrt(max(1 - var, 0.0))) / var if var < 1 else 0.0
        assert k_hat == pytest.approx(k, abs=0.05 * (1 + k))
    # K = 0 is Rayleigh: |h|^2 exponential with mean 1
    p = rician_power(rng, 0.0, (400_000,))
    assert np.mean(p > 1.0) == pytest.approx(math.exp(-1), abs=0.005)


def test_pathloss_law():
    sc = Scenario.paper()
    assert 10 * np.log10(1 / pathloss_gain(np.array(1000.0), sc)) == pytest.approx(128.1)
    assert 10 * np.log10(1 / pathloss_gain(np.array(100.0), sc)) == pytest.approx(128.1 - 37.6)
    # distance floor d_min = 10 m
    assert pathloss_gain(np.array(1.0), sc) == pathloss_gain(np.array(10.0), sc)


def test_gauss_markov_speed_statistics():
    sc = Scenario.paper(area_m=1e6)   # no walls in reach
    rng = np.random.default_rng(1)
    start = np.full((2000, 2), 5e5)
    _, speed, heading = gauss_markov(rng, sc, 200, start)
    v = speed[50:]  # past the transient
    assert v.mean() == pytest.approx(sc.speed_mean_mps, abs=0.02)
    assert v.std() == pytest.approx(sc.speed_std_mps, abs=0.02)   # AR(1) stationary std = s_v
    lag1 = np.corrcoef(v[1:].ravel(), v[:-1].ravel())[0, 1]
    assert lag1 == pytest.approx(sc.gm_memory, abs=0.02)
    dh = heading[60:] - heading[59:-1]
    assert np.std(heading[50:] - heading[50:].mean(axis=0)) > 0


def test_border_reflection():
    z, crossed = _reflect(np.array([-3.0, 5.0, 1003.0, 2005.0, -1001.0]), 1000.0)
    assert z.tolist() == [3.0, 5.0, 997.0, 5.0, 999.0]
    # -1001 bounced off both walls: moving the same way again, so no net flip
    assert crossed.tolist() == [True, False, True, False, False]
    sc = Scenario.paper(n_mus=50, area_m=100.0, speed_mean_mps=20.0)
    tr = generate_trace(sc, seed=3, slots=300)
    assert tr.positions.min() >= 0.0 and tr.positions.max() <= 100.0
    # the MUs really hit walls and keep moving (no sticking): positions spread over the area
    assert tr.positions[..., 0].std() > 20


def test_determinism_bit_for_bit():
    sc = Scenario.paper(n_mus=12)
    a, b = generate_trace(sc, seed=7, slots=20), generate_trace(sc, seed=7, slots=20)
    for name in ("positions", "gain", "assoc", "request", "bandwidth", "noise_psd", "data_bits",
                 "cycles_per_bit", "dt_size_bits", "initial_placement"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    c = generate_trace(sc, seed=8, slots=20)
    assert not np.array_equal(a.gain, c.gain)


def test_association_bandwidth_interference_against_loops():
    sc = Scenario.paper(n_mus=9, n_bss=5)
    tr = generate_trace(sc, seed=2, slots=5)
    noise = sc.noise_psd_w_hz
    for t in range(5):
        for n in range(9):
            d = [math.dist(tr.positions[t, n], tr.bs_positions[m]) for m in range(5)]
            assert tr.assoc[t, n] == int(np.argmin(d))
            b = tr.assoc[t, n]
            n_req = sum(1 for k in range(9) if tr.request[t, k] and tr.assoc[t, k] == b)
            expected_share = n_req if tr.request[t, n] else n_req + 1
            assert tr.bandwidth[t, n] == pytest.approx(sc.bandwidth_hz / expected_share)
            interf = sum(sc.interference_zeta * sc.interference_p_ref_w * tr.gain[t, k, b]
                         for k in range(9) if tr.request[t, k] and tr.assoc[t, k] != b)
            assert tr.noise_psd[t, n] == pytest.approx(noise + interf / sc.bandwidth_hz, rel=1e-12)


def test_workload_ranges_layout_and_backhaul():
    sc = Scenario.paper()
    tr = generate_trace(sc, seed=0, slots=50)
    assert tr.data_bits.min() >= sc.compression_ratio * sc.data_bits_min
    assert tr.data_bits.max() <= sc.compression_ratio * sc.data_bits_max
    assert tr.cycles_per_bit.min() >= 100 and tr.cycles_per_bit.max() <= 300
    assert tr.dt_size_bits.min() >= 100e6 and tr.dt_size_bits.max() <= 300e6
    assert tr.request.mean() == pytest.approx(0.5, abs=0.05)
    assert bs_layout(5, 1000.0).tolist() == [[250, 250], [750, 250], [250, 750], [750, 750], [500, 500]]
    # quadrant centres are 500 m apart -> 2 hops; centre to quadrant 354 m -> 1 hop
    assert tr.hops[0, 1] == 2 and tr.hops[0, 3] == 2 and tr.hops[0, 4] == 1
    assert tr.backhaul_latency_s[0, 1] == pytest.approx(0.02)
    assert tr.backhaul_s_per_bit[0, 4] == pytest.approx(1 / 500e6)
    load = np.bincount(tr.initial_placement, weights=tr.dt_size_bits, minlength=5)
    assert (load <= tr.storage_bits).all()


def test_snapshot_of_slot():
    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=2), seed=1, slots=4)
    s = tr.snapshot(3, failure_penalty=0.02)
    assert np.array_equal(s.gain, tr.gain[3]) and np.array_equal(s.request, tr.request[3])
    assert (s.failure_penalty == 0.02).all() and s.allow_migration
    assert np.array_equal(s.placement_prev, tr.initial_placement)
    with pytest.raises(ValueError, match="slot"):
        tr.snapshot(4)


def test_trusted_snapshot_equals_validated_construction():
    from wdtnopt import Snapshot, SnapshotError
    tr = generate_trace(Scenario.paper(n_mus=7, n_bss=3), seed=9, slots=3)
    cases = [dict(), dict(placement_prev=np.array([2, 1, 0, 0, 1, 2, 2]), migrating=np.array([1, 0, 0, 0, 0, 1, 0], bool),
                          failure_penalty=0.03, allow_migration=False),
             dict(failure_penalty=np.linspace(0, 1, 7), migration_penalty=np.full(7, 0.2))]
    for kw in cases:
        fast = tr.snapshot(1, **kw)
        slow = Snapshot.from_dict(fast.to_dict())
        assert fast.to_dict() == slow.to_dict()
        for f in ("gain", "placement_prev", "failure_penalty", "migration_penalty", "migrating"):
            assert getattr(fast, f).dtype == getattr(slow, f).dtype and not getattr(fast, f).flags.writeable
    # caller mistakes still get the validating constructor's messages
    with pytest.raises(SnapshotError, match="placement_prev"):
        tr.snapshot(0, placement_prev=[0, 1, 2, 3, 0, 0, 0])
    with pytest.raises(SnapshotError, match="failure_penalty"):
        tr.snapshot(0, failure_penalty=-1.0)


def test_default_penalties_by_hand():
    sc = Scenario.paper(n_mus=5, eta=1.2)
    tr = generate_trace(sc, seed=4, slots=3)
    d = tr.default_penalties()
    price = 1.2 * sc.energy_ref_j
    hop_slots = [max(math.ceil((sc.hop_latency_s + float(b) / sc.hop_rate_bps) / sc.slot_s), 1) for b in tr.dt_size_bits]
    assert np.allclose(d["failure_penalty"], price, rtol=0, atol=0)
    assert np.allclose(d["migration_penalty"], [sc.request_prob * k * price for k in hop_slots], rtol=1e-15)
    snap = tr.snapshot(1)   # what a snapshot gets when the caller gives no penalties
    assert np.array_equal(snap.failure_penalty, d["failure_penalty"])
    assert np.array_equal(snap.migration_penalty, d["migration_penalty"])


def test_bs_positions_replace_the_layout_and_change_no_stream():
    from wdtnopt.errors import WdtnoptError

    sc = Scenario.paper(n_mus=8, n_bss=3)
    base = generate_trace(sc, seed=5, slots=4)
    same = generate_trace(sc, seed=5, slots=4, bs_positions=bs_layout(3, sc.area_m))
    for k in ("positions", "gain", "assoc", "request", "data_bits", "dt_size_bits", "initial_placement"):
        assert np.array_equal(getattr(base, k), getattr(same, k))
    bs = np.array([[10.0, 20.0], [900.0, 40.0], [480.0, 950.0]])
    moved = generate_trace(sc, seed=5, slots=4, bs_positions=bs)
    assert np.array_equal(moved.bs_positions, bs)
    assert np.array_equal(moved.positions, base.positions)           # the MUs' streams are untouched
    dist = np.linalg.norm(moved.positions[:, :, None, :] - bs[None, None], axis=-1)
    assert np.array_equal(moved.assoc, dist.argmin(axis=-1))
    for bad in (bs[:2], np.full((3, 2), np.nan)):
        with pytest.raises(WdtnoptError, match="bs_positions"):
            generate_trace(sc, seed=5, slots=4, bs_positions=bad)
