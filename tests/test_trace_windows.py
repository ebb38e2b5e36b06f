"""Windowed traces: the same values bit for bit as the whole trace, one window in memory at a time."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import wdtnopt.trace as trace_mod
from wdtnopt import Scenario, generate_trace, hindsight_bound, simulate
from wdtnopt.errors import WdtnoptError
from wdtnopt.trace import PER_SLOT_FIELDS, SlotArray, WindowedTrace, windowed_memory_bytes

FIXTURE = Path(__file__).parent / "data" / "sumo_grid_fcd.xml.gz"
CONSTANTS = ("bs_positions", "cycles_per_bit", "dt_size_bits", "deadline", "p_max", "cpu_hz", "storage_bits",
             "backhaul_latency_s", "backhaul_s_per_bit", "hops", "initial_placement", "server_up", "background_load")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("draw", [
    lambda g, k: g.standard_normal(k),            # fading, mobility noise, background load
    lambda g, k: g.random(k),                     # requests, LOS draws, server up/down chain
    lambda g, k: g.uniform(3.0e3, 9.0e5, k),      # workload sizes and constants
    lambda g, k: g.uniform(0.0, 2 * np.pi, k),    # mean headings
], ids=["standard_normal", "random", "uniform", "uniform_2pi"])
def test_numpy_draws_in_pieces_equal_one_block(seed, draw):
    # what windowing rests on: a Generator gives the same numbers in pieces as in one call, and a
    # block drawn with a shape is the flat sequence in C order
    pieces = [1, 2, 3, 5, 64, 7, 1000, 4918]
    whole = draw(np.random.default_rng(seed), sum(pieces))
    g = np.random.default_rng(seed)
    parts = np.concatenate([draw(g, k) for k in pieces])
    assert whole.tobytes() == parts.tobytes()
    assert draw(np.random.default_rng(seed), 6000).tobytes() == whole[:6000].tobytes()


def _assert_same_trace(whole, win):
    assert isinstance(win, WindowedTrace) and not isinstance(whole, WindowedTrace)
    assert win.slots == whole.slots and win.window_slots < whole.slots
    for name in CONSTANTS:
        a, b = getattr(whole, name), getattr(win, name)
        assert (a is None and b is None) or (a.dtype == b.dtype and a.tobytes() == b.tobytes()), name
    for name in PER_SLOT_FIELDS:
        a, b = getattr(whole, name), getattr(win, name)
        assert isinstance(b, SlotArray) and b.shape == a.shape and b.dtype == a.dtype
        assert np.asarray(b).tobytes() == a.tobytes(), name
    # window by window, in slot order, as consumers read them
    seen = 0
    for w in win.windows():
        assert w.start == seen and w.stop - w.start <= win.window_slots
        for name in PER_SLOT_FIELDS:
            assert getattr(w, name).tobytes() == getattr(whole, name)[w.start:w.stop].tobytes(), (name, w.start)
        seen = w.stop
    assert seen == whole.slots


SCENARIOS = {
    "paper": {},
    "failures": dict(server_mtbf_s=20.0, server_mttr_s=5.0, background_load_mean=0.3, background_load_std=0.1,
                     background_load_memory=0.8),
    "thz_ris": dict(thz_carrier_hz=300e9, thz_los_decay_m=150.0, ris_elements=64, area_m=300.0),
    "semantic": dict(semantic_levels=3),
}


@pytest.mark.parametrize("options", SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("seed", [0, 5, 11])
def test_windowed_trace_equals_the_whole_one_bit_for_bit(options, seed):
    sc = Scenario.paper(n_mus=9, n_bss=4, **options)
    whole = generate_trace(sc, seed=seed, slots=13)
    for w in (1, 4, 12):
        _assert_same_trace(whole, generate_trace(sc, seed=seed, slots=13, window_slots=w))
    if whole.levels is not None:
        win = generate_trace(sc, seed=seed, slots=13, window_slots=5)
        assert all(np.array_equal(whole.levels[k], win.levels[k]) for k in whole.levels)


def test_replayed_mobility_windowed_equals_whole():
    sc = Scenario.paper(n_mus=6)
    whole = generate_trace(sc, seed=2, slots=20, mobility=str(FIXTURE))
    win = generate_trace(sc, seed=2, slots=20, mobility=str(FIXTURE), window_slots=6)
    _assert_same_trace(whole, win)
    assert win.mobility_report is not None and win.mobility_report.summary() == whole.mobility_report.summary()


def test_snapshots_in_any_order_and_a_whole_windows_view():
    sc = Scenario.paper(n_mus=10, n_bss=5, server_mtbf_s=15.0, server_mttr_s=5.0)
    whole = generate_trace(sc, seed=4, slots=17)
    win = generate_trace(sc, seed=4, slots=17, window_slots=4)
    for t in (16, 3, 9, 0, 16, 8, -1):
        a, b = whole.snapshot(t % 17), win.snapshot(t % 17)
        for name in ("gain", "assoc", "request", "bandwidth", "noise_psd", "data_bits", "cpu_hz", "storage_bits",
                     "server_up"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (t, name)
        assert np.array_equal(whole.gain[t], win.gain[t]) and whole.assoc[t, 3] == win.assoc[t, 3]
        assert np.array_equal(whole.positions[t, :, 1], win.positions[t, :, 1])
    # integer reductions window by window; float ones through the (checked) whole field
    assert np.array_equal(win.request.sum(axis=0), whole.request.sum(axis=0))
    assert win.request.sum() == whole.request.sum() and np.array_equal(win.request.any(axis=1), whole.request.any(axis=1))
    assert win.speed[:-1].mean() == whole.speed[:-1].mean()
    # a whole trace offers the same windows as views
    blocks = list(whole.windows(5))
    assert [(w.start, w.stop) for w in blocks] == [(0, 5), (5, 10), (10, 15), (15, 17)]
    assert all(np.shares_memory(w.gain, whole.gain) for w in blocks)
    assert [(w.start, w.stop) for w in win.windows(3)][-1] == (15, 17)
    assert np.array_equal(np.concatenate([w.gain for w in win.windows(3)]), whole.gain)
    with pytest.raises(IndexError):
        win.gain[17]
    with pytest.raises(WdtnoptError, match="window_slots"):
        generate_trace(sc, seed=4, slots=17, window_slots=0)


@pytest.mark.parametrize("policy", ["static", "follow", "lyapunov"])
def test_simulate_on_a_windowed_trace_equals_the_whole_one(policy):
    sc = Scenario.paper(n_mus=8, n_bss=4, server_mtbf_s=20.0, server_mttr_s=5.0)
    whole = generate_trace(sc, seed=3, slots=24)
    win = generate_trace(sc, seed=3, slots=24, window_slots=5)
    a, b = simulate(policy, whole), simulate(policy, win)
    for c in a.table:
        assert a.table[c].tobytes() == b.table[c].tobytes(), c
    assert np.array_equal(a.placement, b.placement) and np.array_equal(a.energy_per_mu, b.energy_per_mu)


def test_hindsight_bound_on_a_windowed_trace_equals_the_whole_one():
    sc = Scenario.paper(n_mus=6, n_bss=3)
    whole = generate_trace(sc, seed=1, slots=8)
    win = generate_trace(sc, seed=1, slots=8, window_slots=3)
    a = hindsight_bound(whole, iters=2, method="fast", workers=1)
    b = hindsight_bound(win, iters=2, method="fast", workers=1)
    assert a.energy_per_mu_slot == b.energy_per_mu_slot


def test_auto_windows_a_trace_too_big_to_hold_whole(monkeypatch):
    sc = Scenario.paper(n_mus=30, n_bss=6)
    whole = generate_trace(sc, seed=9, slots=40)
    monkeypatch.setattr(trace_mod, "WHOLE_TRACE_MAX_BYTES", trace_mod.trace_memory_bytes(30, 6, 39))
    monkeypatch.setattr(trace_mod, "WINDOW_BYTES", windowed_memory_bytes(30, 6, 40, 7))
    win = generate_trace(sc, seed=9, slots=40)
    assert isinstance(win, WindowedTrace) and win.window_slots == 7
    _assert_same_trace(whole, win)


def _peak_of_reading(n, m, slots, window):
    tracemalloc.start()
    try:
        tr = generate_trace(Scenario.paper(n_mus=n, n_bss=m), seed=0, slots=slots, window_slots=window)
        for t in range(slots):
            tr.snapshot(t)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_memory_of_a_windowed_trace_is_one_window_flat_in_slots(monkeypatch):
    monkeypatch.setattr(trace_mod, "_SKIP_CHUNK", 4096)   # cursors move in small pieces here too
    n, m, w = 300, 20, 3
    short, long = _peak_of_reading(n, m, 12, w), _peak_of_reading(n, m, 96, w)
    assert short <= windowed_memory_bytes(n, m, 12, w) and long <= windowed_memory_bytes(n, m, 96, w)
    # 8x the slots: the whole trace would take 8x the gains (96 x 48 kB); the window keeps it flat
    assert long - short < 8 * n * m * 8
    assert long < trace_mod.trace_memory_bytes(n, m, 96) / 4


def test_a_window_that_cannot_fit_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: 40 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(WdtnoptError) as info:
            generate_trace(Scenario.paper(n_mus=20000, n_bss=100), seed=0, slots=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("n_mus, n_bss:") and "not even one slot fits: use fewer MUs or BSs" in msg
    with pytest.raises(WdtnoptError, match=r"use at most \d+ slots per window \(window_slots\)"):
        generate_trace(Scenario.paper(n_mus=2000, n_bss=50), seed=0, slots=1000, window_slots=200)
    # what fits is windowed instead of refused
    assert isinstance(generate_trace(Scenario.paper(n_mus=2000, n_bss=50), seed=0, slots=100), WindowedTrace)


def test_simulate_refuses_a_record_that_cannot_fit(monkeypatch):
    from wdtnopt.simulation import simulation_memory_bytes

    tr = generate_trace(Scenario.paper(n_mus=40, n_bss=3), seed=0, slots=50)
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: simulation_memory_bytes(40, 50) - 1)
    with pytest.raises(WdtnoptError) as info:
        simulate("static", tr)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("slots:") and "use fewer slots, fewer MUs" in msg
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: simulation_memory_bytes(40, 50))
    assert simulate("static", tr).slots == 50
    # the CLI keeps one result per policy
    from wdtnopt.simulation import check_simulation_fits

    with pytest.raises(WdtnoptError, match="record of 2 runs .* or fewer policies per command"):
        check_simulation_fits(40, 50, runs=2)


def test_cli_simulate_runs_windowed_and_refuses_before_generating(monkeypatch, capsys, tmp_path):
    from wdtnopt.cli import main

    args = ["simulate", "--policy", "follow", "--n-mus", "12", "--n-bss", "4", "--slots", "9", "--seed", "3",
            "--no-progress", "-o"]
    monkeypatch.setattr(trace_mod, "WHOLE_TRACE_MAX_BYTES", 1)    # every trace windowed, 2 slots a window
    monkeypatch.setattr(trace_mod, "WINDOW_BYTES", windowed_memory_bytes(12, 4, 9, 2))
    assert trace_mod.plan_windows(12, 4, 9) == 2
    main(args + [str(tmp_path / "windowed")])
    monkeypatch.setattr(trace_mod, "WHOLE_TRACE_MAX_BYTES", 1 << 30)
    main(args + [str(tmp_path / "whole")])
    assert (tmp_path / "windowed" / "follow_seed3.csv").read_bytes() == (tmp_path / "whole" / "follow_seed3.csv").read_bytes()
    # a run whose record alone is too big: one line, exit 2, before any trace is generated
    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: 8 << 30)
    calls = []
    monkeypatch.setattr(trace_mod, "_SlotGenerator", lambda *a, **k: calls.append(a))
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--policy", "static", "--n-mus", "100000", "--n-bss", "10", "--slots", "100000",
              "--no-progress"])
    assert exc.value.code == 2 and not calls
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: slots:") and "use fewer slots, fewer MUs" in err


def test_whole_array_consumers_get_the_same_values():
    # the environment's features and the migration-aware bound read whole [T, ...] fields
    from wdtnopt import migration_bound
    from wdtnopt.env.core import Features

    sc = Scenario.paper(n_mus=5, n_bss=3)
    whole = generate_trace(sc, seed=6, slots=8)
    win = generate_trace(sc, seed=6, slots=8, window_slots=3)
    a, b = Features(whole), Features(win)
    for name in ("t_min", "log_snr", "bits_ln2_over_b", "spectral", "noise_rise", "relay", "cycles", "cpu_hz"):
        assert np.asarray(getattr(a, name)).tobytes() == np.asarray(getattr(b, name)).tobytes(), name
    assert (win.noise_psd * win.bandwidth).tobytes() == (whole.noise_psd * whole.bandwidth).tobytes()
    hw, hv = hindsight_bound(whole, iters=1, workers=1), hindsight_bound(win, iters=1, workers=1)
    assert hw.energy_per_mu_slot == hv.energy_per_mu_slot
    assert migration_bound(win, hv, iters=2).total_energy == migration_bound(whole, hw, iters=2).total_energy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distances_equal_numpy_norm_bit_for_bit(seed):
    from wdtnopt.trace import mu_bs_distances

    rng = np.random.default_rng(seed)
    pos, bs = rng.uniform(-10.0, 2000.0, (3, 257, 2)), rng.uniform(0.0, 2000.0, (13, 2))
    ref = np.linalg.norm(pos[:, :, None, :] - bs[None, None, :, :], axis=-1)
    assert mu_bs_distances(pos, bs).tobytes() == ref.tobytes()
    assert mu_bs_distances(pos[1], bs).tobytes() == ref[1].tobytes()


def test_bench_memory_smoke_preset_runs():
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "benchmarks" / "bench_memory.py"
    if not Path("/usr/bin/time").exists():
        pytest.skip("needs /usr/bin/time (GNU time) for the peak RSS")
    out = subprocess.run([sys.executable, str(script), "--preset", "smoke"], capture_output=True, text=True,
                         check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| whole") or line.startswith("| 4 ")]
    assert len(rows) == 4 and all(int(r.split("|")[4].replace(",", "")) > 0 for r in rows)
    assert [r.split("|")[3].strip() for r in rows] == ["None", "None", "4", "4"]
    # an environment episode, whole and in 5-slot windows: the same return
    out = subprocess.run([sys.executable, str(script), "--env", "--preset", "smoke"], capture_output=True, text=True,
                         check=True).stdout
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines() if line.startswith("| this tree")]
    assert [r[1] for r in rows] == ["whole", "5"] and [r[3] for r in rows] == ["None", "5"]
    assert rows[0][-1] == rows[1][-1] and all(int(r[4].replace(",", "")) > 0 for r in rows)


def test_a_slots_values_depend_on_the_trace_length_as_documented(tmp_path):
    # docs/model.md, section 2.1: the fading's imaginary parts and the DT constants are drawn after
    # the whole trace's blocks, so they change with T; the other per-slot fields do not
    from wdtnopt.cli import main
    from wdtnopt.snapshot import Snapshot

    sc = Scenario.paper(n_mus=6, n_bss=3)
    short, long = generate_trace(sc, seed=4, slots=6), generate_trace(sc, seed=4, slots=40)
    for name in ("positions", "speed", "heading", "assoc", "request", "data_bits"):
        assert getattr(short, name)[5].tobytes() == getattr(long, name)[5].tobytes(), name
    assert not np.array_equal(short.gain[5], long.gain[5])
    assert not np.array_equal(short.cycles_per_bit, long.cycles_per_bit)
    assert not np.array_equal(short.dt_size_bits, long.dt_size_bits)
    # the CLI's snapshot of slot 5 is slot 5 of a trace of --slots slots; a slot past them is refused
    with pytest.raises(SystemExit) as exc:
        main(["snapshot", "--n-mus", "6", "--n-bss", "3", "--slot", "5", "--slots", "5", "-o", str(tmp_path / "x.json")])
    assert exc.value.code == 2 and not (tmp_path / "x.json").exists()
    for slots, ref in (("6", short), ("40", long)):
        out = tmp_path / f"snap{slots}.json"
        main(["snapshot", "--n-mus", "6", "--n-bss", "3", "--seed", "4", "--slot", "5", "--slots", slots, "-o", str(out)])
        snap = Snapshot.load(str(out))
        assert np.array_equal(snap.gain, ref.gain[5]) and np.array_equal(snap.dt_size_bits, ref.dt_size_bits), slots


def test_moving_a_long_cursor_shows_progress_and_keeps_the_values(monkeypatch, capsys):
    """Skipping a window's cursors past the whole trace's blocks (normals cannot be skipped without
    drawing them) shows a bar above _SKIP_BAR draws; the windowed trace is still the whole one."""
    monkeypatch.setattr(trace_mod, "_SKIP_BAR", 10)
    monkeypatch.setenv("WDTNOPT_PROGRESS", "1")
    sc = Scenario.paper(n_mus=4, n_bss=2)
    win = generate_trace(sc, seed=3, slots=6, window_slots=2)
    assert "windowed trace: skipping the fading's imaginary parts" in capsys.readouterr().err
    _assert_same_trace(generate_trace(sc, seed=3, slots=6), win)
