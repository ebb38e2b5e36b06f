"""Mobility sources (docs/mobility.md): Gauss-Markov unchanged, SUMO FCD and recorded tables
imported and cleaned, and everything downstream on imported traces."""
from __future__ import annotations

import gzip
import hashlib
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_runner import run_cli
from wdtnopt import MobilityError, Scenario, generate_trace, hindsight_bound, simulate
from wdtnopt.processes.mobility import (CleaningRules, FcdFile, GaussMarkov, Records, TableFile, clean,
                                        load_mobility, read_fcd, read_table)


_PINNED_FIELDS = (
    "bs_positions", "positions", "speed", "heading", "gain", "assoc", "request", "bandwidth", "noise_psd",
    "data_bits", "cycles_per_bit", "dt_size_bits", "deadline", "p_max", "cpu_hz", "storage_bits",
    "backhaul_latency_s", "backhaul_s_per_bit", "hops", "initial_placement")


def _digest(trace) -> str:
    """SHA-256 of the trace's arrays of that commit (name, dtype and bytes, in field order); fields
    added since are left out so that new processes do not move the pin."""
    h = hashlib.sha256()
    for name in _PINNED_FIELDS:
        v = getattr(trace, name)
        if isinstance(v, np.ndarray):
            h.update(name.encode())
            h.update(str(v.dtype).encode())
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


def test_gauss_markov_traces_bit_identical_to_before_the_mobility_sources():
    # digests taken on the generator before mobility sources existed (commit 485e9df)
    assert _digest(generate_trace(Scenario.paper(), seed=0, slots=40)) == \
        "59685c5a9c617e13b721a1b0548b59b66b6ca69a483d6fd04dc5aa34a402dfe9"
    sc = Scenario.paper(n_mus=7, n_bss=4, area_m=300.0)
    assert _digest(generate_trace(sc, seed=11, slots=25)) == \
        "15623be4ddde050c86d6df1c3ef8dd21749d8b54ec25ba04e2b8f229c43abf39"
    # the source named explicitly is the default
    assert _digest(generate_trace(sc, seed=11, slots=25, mobility=GaussMarkov())) == \
        "15623be4ddde050c86d6df1c3ef8dd21749d8b54ec25ba04e2b8f229c43abf39"


# ----------------------------------------------------------------------------------------------
# the SUMO fixture (tests/data/make_sumo_grid_fcd.sh made it)

FIXTURE = Path(__file__).parent / "data" / "sumo_grid_fcd.xml.gz"
TAU = 0.5


def _sumo_reference() -> tuple[dict[tuple[str, int], tuple[float, float]], float]:
    """(vehicle id, step index) -> SUMO's (x, y), and the largest speed SUMO reported (m/s), read
    with ElementTree (not the package's reader)."""
    ref, v_max = {}, 0.0
    with gzip.open(FIXTURE) as f:
        for step in ET.parse(f).getroot().iter("timestep"):
            k = round(float(step.get("time")) / TAU)
            for v in step.iter("vehicle"):
                ref[(v.get("id"), k)] = (float(v.get("x")), float(v.get("y")))
                v_max = max(v_max, float(v.get("speed")))
    return ref, v_max


def test_fcd_positions_equal_sumo_at_reported_slot_times():
    sc = Scenario.paper(n_mus=20)
    tr = generate_trace(sc, seed=3, slots=200, mobility=str(FIXTURE))
    rep = tr.mobility_report
    ref, _ = _sumo_reference()
    k0 = round(rep.start_s / TAU)
    assert rep.start_s == k0 * TAU
    matched = 0
    held = {(f.vehicle, f.slot) for f in rep.fixes if f.kind == "held"}
    for mu, vid in enumerate(rep.mu_vehicles):
        for t in range(tr.slots):
            if (vid, k0 + t) in ref:
                assert np.abs(tr.positions[t, mu] - ref[(vid, k0 + t)]).max() <= 1e-6
                matched += 1
            else:
                # absent from SUMO at that time: the position is held, and reported as such
                assert (vid, t) in held
    assert matched + len(held) == tr.slots * sc.n_mus and matched > 0.85 * tr.slots * sc.n_mus
    assert rep.counts["interpolated"] == 0   # SUMO's step is the slot: nothing to interpolate


@pytest.mark.parametrize("keep,median_m,max_m", [(2, 0.07, 1.2), (4, 0.09, 3.8), (8, 0.13, 9.1)])
def test_interpolated_positions_within_the_documented_error_of_held_out_sumo_samples(keep, median_m, max_m):
    """Only every keep-th SUMO step kept: interpolation across the gap g = keep * 0.5 s is within
    v_max * g / 2 of SUMO's held-out position (docs/mobility.md, section "Cleaning")."""
    ref, v_max = _sumo_reference()
    records = read_fcd(FIXTURE)
    step = np.rint(records.time_s / TAU).astype(np.int64)
    sc = Scenario.paper(n_mus=20)
    track = clean(records.take(step % keep == 0), sc, 200, CleaningRules(start_s=40.0))   # 40 s: a kept step
    interp = [f for f in track.report.fixes if f.kind == "interpolated"]
    assert len(interp) > 1000
    errors = []
    for f in interp:
        mu = track.report.mu_vehicles.index(f.vehicle)
        assert f.slot % keep != 0     # exactly the held-out steps are interpolated
        errors.append(math.dist(track.positions[f.slot, mu], ref[(f.vehicle, round(f.time_s / TAU))]))
    assert max(errors) <= v_max * keep * TAU / 2
    # measured on this fixture and quoted in docs/mobility.md (rounded up)
    assert np.median(errors) <= median_m and max(errors) <= max_m


def test_same_file_same_trace_and_downstream_follows_imported_positions(tmp_path):
    sc = Scenario.paper(n_mus=12)
    a = generate_trace(sc, seed=5, slots=80, mobility=str(FIXTURE))
    copy = tmp_path / "copy.xml.gz"
    shutil.copyfile(FIXTURE, copy)
    b = generate_trace(sc, seed=5, slots=80, mobility=copy)          # another path: read again
    assert _digest(a) == _digest(b)
    # the same path rewritten at once with other bytes of the same size is read again
    data = gzip.decompress(FIXTURE.read_bytes()).replace(b'.40"', b'.41"')   # every such coordinate + 1 cm
    copy.write_bytes(gzip.compress(data))
    moved = generate_trace(sc, seed=5, slots=80, mobility=copy)
    assert 0 < np.abs(moved.positions - a.positions).max() <= 0.01 + 1e-9
    # the other processes draw from their own streams: same seed, same fading, requests, workload
    gm = generate_trace(sc, seed=5, slots=80)
    for name in ("request", "data_bits", "cycles_per_bit", "dt_size_bits", "initial_placement"):
        if name != "initial_placement":
            np.testing.assert_array_equal(getattr(a, name), getattr(gm, name))
    # association: nearest BS of the imported positions; gain: path loss of their distance times
    # the same fading draw as the Gauss-Markov trace of that seed
    from wdtnopt.trace import pathloss_gain
    d_imp = np.linalg.norm(a.positions[:, :, None] - a.bs_positions[None, None], axis=-1)
    d_gm = np.linalg.norm(gm.positions[:, :, None] - gm.bs_positions[None, None], axis=-1)
    np.testing.assert_array_equal(a.assoc, d_imp.argmin(axis=2))
    np.testing.assert_allclose(a.gain / pathloss_gain(d_imp, sc), gm.gain / pathloss_gain(d_gm, sc), rtol=1e-12)
    # speed and heading move each position onto the next
    step = a.speed[:-1, :, None] * TAU * np.stack([np.cos(a.heading[:-1]), np.sin(a.heading[:-1])], -1)
    np.testing.assert_allclose(a.positions[:-1] + step, a.positions[1:], atol=1e-9)


# ----------------------------------------------------------------------------------------------
# the cleaner against injected defects


def _clean_records(n_veh: int, slots: int, seed: int) -> Records:
    """Vehicles at constant velocity inside [100, 900]^2, one record exactly at every slot time:
    linear in time, so a record lost inside the trace is recovered exactly by interpolation."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(300, 700, (n_veh, 2))
    vel = rng.uniform(-20, 20, (n_veh, 2)) / (slots * TAU) * 10
    t = np.arange(slots) * TAU
    pos = start[:, None, :] + vel[:, None, :] * t[None, :, None]        # [V, T, 2]
    ids = np.repeat([f"veh{v}" for v in range(n_veh)], slots)
    return Records.from_arrays(np.tile(t, n_veh), ids, pos[..., 0].ravel(), pos[..., 1].ravel())


def _out_of_order_reference(time_s: list[float], vid: list[str]) -> int:
    """Records whose time is below an earlier record's of the same vehicle, by a plain loop."""
    latest: dict[str, float] = {}
    count = 0
    for t, v in zip(time_s, vid):
        if v in latest and t < latest[v]:
            count += 1
        latest[v] = max(latest.get(v, -math.inf), t)
    return count


@st.composite
def _defects(draw):
    n_veh, slots = 4, 12
    # interior records (not the first nor the last two): any run of them lost leaves a gap of at
    # most 5 s, the default max_gap_s, so every one is recoverable
    interior = [(v, k) for v in range(n_veh) for k in range(1, slots - 2)]
    lost = draw(st.lists(st.sampled_from(interior), unique=True, max_size=len(interior)))
    kinds = draw(st.lists(st.sampled_from(["delete", "nan_t", "nan_x", "inf_y", "far_x", "far_y"]),
                          min_size=len(lost), max_size=len(lost)))
    every = [(v, k) for v in range(n_veh) for k in range(slots)]
    dups = draw(st.lists(st.tuples(st.sampled_from(every), st.booleans(),
                                   st.floats(1e-4, 4e-3), st.floats(-0.5, 0.5)), max_size=8))
    shuffle = draw(st.one_of(st.none(), st.integers(0, 2**31)))
    return n_veh, slots, dict(zip(lost, kinds)), dups, shuffle, draw(st.integers(0, 1000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_defects())
def test_cleaner_recovers_the_clean_trace_and_counts_every_injected_defect(case):
    n_veh, slots, lost, dups, shuffle, seed = case
    sc = Scenario.paper(n_mus=3)
    base = _clean_records(n_veh, slots, seed)
    truth = clean(base, sc, slots)
    assert truth.report.fixes == ()
    rows = [[float(base.time_s[i]), base.ids[base.vehicle[i]], float(base.x_m[i]), float(base.y_m[i])]
            for i in range(len(base))]
    expect = {"non_finite": 0, "out_of_area": 0, "exact_duplicate": 0, "near_duplicate": 0}
    keep = []
    for i, row in enumerate(rows):
        kind = lost.get((i // slots, i % slots))
        if kind == "delete":
            continue
        if kind is not None:
            field_, value = {"nan_t": (0, math.nan), "nan_x": (2, math.nan), "inf_y": (3, math.inf),
                             "far_x": (2, 1000.0 + 50.0), "far_y": (3, -1e6)}[kind]
            row = list(row)
            row[field_] = value
            expect["non_finite" if kind in ("nan_t", "nan_x", "inf_y") else "out_of_area"] += 1
        keep.append(row)
    for (v, k), exact, dt, dx in dups:
        if (v, k) in lost:
            continue      # a copy of a lost record would bring it back
        row = list(rows[v * slots + k])
        if not exact:
            row[0] += dt          # within the 0.01 s duplicate tolerance, after the original
            row[2] += dx
        expect["exact_duplicate" if exact else "near_duplicate"] += 1
        keep.append(row)
    if shuffle is not None:
        keep = [keep[i] for i in np.random.default_rng(shuffle).permutation(len(keep))]
    t, vid, x, y = (list(c) for c in zip(*keep))
    dirty = Records.from_arrays(t, vid, x, y)
    got = clean(dirty, sc, slots)

    # the clean trace back: exact where a record survived, interpolation exact on a line
    np.testing.assert_allclose(got.positions, truth.positions, rtol=0, atol=1e-9)
    assert got.report.mu_vehicles == truth.report.mu_vehicles
    assert got.report.start_s == truth.report.start_s
    counts = got.report.counts
    ok = [(a, b, c, d) for a, b, c, d in keep if math.isfinite(a) and math.isfinite(c) and math.isfinite(d)
          and -10 <= c <= 1010 and -10 <= d <= 1010]
    expect["out_of_order"] = _out_of_order_reference([r[0] for r in ok], [r[1] for r in ok])
    # every lost record of an MU is one interpolated slot; of the spare vehicle, none reported
    mus = set(truth.report.mu_vehicles)
    expect["interpolated"] = sum(1 for (v, _) in lost if f"veh{v}" in mus)
    expect["held"] = 0
    assert counts == {k: expect[k] for k in counts}


def test_cleaner_rules_absent_vehicles_long_gaps_and_too_little_data():
    sc = Scenario.paper(n_mus=2)
    # a enters at 1 s and leaves after 3 s; b has a 6 s gap (over max_gap_s) in the middle
    t = [1.0, 1.5, 2.0, 2.5, 3.0] + [0.0, 0.5, 1.0, 7.0, 7.5] + [0.0, 9.0]
    vid = ["a"] * 5 + ["b"] * 5 + ["c"] * 2
    x = [10.0, 20, 30, 40, 50] + [500.0, 501, 502, 508, 509] + [0.0, 0.0]
    y = [5.0] * 12
    rec = Records.from_arrays(t, vid, x, y)
    tr = clean(rec, sc, 10, CleaningRules(start_s=0.0, min_coverage=0.3))
    rep = tr.report
    assert rep.mu_vehicles == ("a", "b")     # a present in 5 slots, b in 3 (then a gap over 5 s), c in 1
    np.testing.assert_array_equal(tr.positions[:, 0, 0], [10, 10, 10, 20, 30, 40, 50, 50, 50, 50])   # held
    np.testing.assert_array_equal(tr.positions[:, 1, 0], [500, 501, 502, 502, 502, 502, 502, 502, 502, 502])
    assert rep.counts["held"] == 5 + 7 and rep.counts["interpolated"] == 0
    with pytest.raises(MobilityError, match="1 vehicle has positions in at least 50%"):
        clean(rec, sc, 10, CleaningRules(start_s=0.0, min_coverage=0.5))
    with pytest.raises(MobilityError, match="cover t = 0..9 s"):
        clean(rec, sc, 40)
    with pytest.raises(MobilityError, match="3 vehicles have usable records"):
        clean(rec, Scenario.paper(n_mus=4), 4)
    with pytest.raises(MobilityError, match="no usable records"):
        clean(Records.from_arrays([0.0], ["a"], [math.nan], [0.0]), sc, 1)


def test_csv_table_and_lonlat_projection_give_the_fcd_positions(tmp_path):
    rec = read_fcd(FIXTURE)
    sc = Scenario.paper(n_mus=10)
    path = tmp_path / "t.csv"
    with open(path, "w") as f:
        f.write("time_s,id,x_m,y_m,speed_mps\n")
        for i in range(len(rec)):
            f.write(f"{float(rec.time_s[i])!r},{rec.ids[rec.vehicle[i]]},{float(rec.x_m[i])!r},{float(rec.y_m[i])!r},1\n")
    a = generate_trace(sc, seed=1, slots=60, mobility=str(FIXTURE))
    b = generate_trace(sc, seed=1, slots=60, mobility=str(path))
    assert isinstance(load_mobility(path), TableFile) and isinstance(load_mobility(FIXTURE), FcdFile)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert _digest(a) == _digest(b)

    # lon/lat around a point at 48 deg N, projected by the local equirectangular rule: distances
    # within 0.5 % of great-circle (haversine) ones on the mean sphere over the 1 km area (the
    # sphere itself departs from the WGS 84 ellipsoid by up to ~0.5 %; the geodesic check with
    # pyproj below is the tight one)
    lat0, lon0, r_earth = 48.0, 11.0, 6_371_008.8     # mean Earth radius (IUGG)
    rng = np.random.default_rng(0)
    lat = lat0 + rng.uniform(0, 0.009, 50)
    lon = lon0 + rng.uniform(0, 0.0135, 50)
    geo = tmp_path / "g.csv"
    geo.write_text("time_s,id,lon_deg,lat_deg\n" + "".join(f"0,v{i},{float(lon[i])!r},{float(lat[i])!r}\n" for i in range(50)))
    pts = read_table(geo, projection="local", origin_lonlat=(lon0, lat0))
    for i, j in rng.integers(0, 50, (200, 2)):
        if i == j:
            continue
        p1, p2, l1, l2 = map(math.radians, (lat[i], lat[j], lon[i], lon[j]))
        hav = 2 * r_earth * math.asin(math.sqrt(math.sin((p2 - p1) / 2) ** 2
                                                + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2))
        d = math.dist((pts.x_m[i], pts.y_m[i]), (pts.x_m[j], pts.y_m[j]))
        assert abs(d - hav) <= 5e-3 * hav
    assert pts.x_m.min() >= 0 and pts.y_m.min() >= 0 and pts.x_m.max() < 1010
    # without an origin, the median point lands at the area's centre
    centred = read_table(geo, projection="local", area_m=1000.0)
    assert np.median(centred.x_m) == pytest.approx(500.0) and np.median(centred.y_m) == pytest.approx(500.0)
    # without a projection, lon/lat go through the local one (what the CLI's --mobility FILE does)
    np.testing.assert_array_equal(read_table(geo, area_m=1000.0).x_m, centred.x_m)


def test_parquet_table_when_pyarrow_is_installed(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rec = read_fcd(FIXTURE)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"time_s": rec.time_s, "id": [rec.ids[v] for v in rec.vehicle],
                             "x_m": rec.x_m, "y_m": rec.y_m}), path)
    sc = Scenario.paper(n_mus=10)
    a = generate_trace(sc, seed=1, slots=60, mobility=str(FIXTURE))
    assert _digest(generate_trace(sc, seed=1, slots=60, mobility=path)) == _digest(a)


@pytest.mark.parametrize("ids,needle", [
    (["a", None, "b"], "t.parquet row 2: id: expected a vehicle id, got a null"),
    (["a", "b", ""], "t.parquet row 3: id: expected a vehicle id, got ''"),
    (["  ", "a", "b"], "t.parquet row 1: id: expected a vehicle id, got '  '"),
    ([1.0, float("nan"), 2.0], "t.parquet row 2: id: expected a vehicle id, got nan"),
])
def test_parquet_blank_id_is_an_error_naming_its_row(tmp_path, ids, needle):
    """A Parquet id that names no vehicle is refused like an empty id cell of a CSV (not read as the
    vehicle "None" or "")."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"time_s": [0.0, 0.5, 1.0], "id": ids, "x_m": [1.0, 2.0, 3.0], "y_m": [4.0, 5.0, 6.0]}), path)
    with pytest.raises(MobilityError) as err:
        read_table(path)
    assert needle in str(err.value)
    csv_path = tmp_path / "t.csv"   # the CSV rule it mirrors
    csv_path.write_text("time_s,id,x_m,y_m\n0,a,1,4\n0.5,,2,5\n")
    with pytest.raises(MobilityError, match="t.csv line 3: id: expected a vehicle id"):
        read_table(csv_path)


def test_parquet_null_number_is_a_missing_value_as_an_empty_csv_cell(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"time_s": pa.array([0.0, 0.5, 1.0]), "id": ["a", "a", "b"],
                             "x_m": pa.array([1.0, None, 3.0]), "y_m": pa.array([4, 5, None], pa.int64())}), path)
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("time_s,id,x_m,y_m\n0,a,1,4\n0.5,a,,5\n1,b,3,\n")
    a, b = read_table(path), read_table(csv_path)
    for k in ("time_s", "x_m", "y_m"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.ids == b.ids and np.isnan(a.x_m[1]) and np.isnan(a.y_m[2])
    bools = tmp_path / "b.parquet"
    pq.write_table(pa.table({"time_s": [0.0, 0.5], "id": ["a", "a"], "x_m": [True, False], "y_m": [1.0, 2.0]}), bools)
    with pytest.raises(MobilityError, match="b.parquet: x_m: expected a number column, got booleans"):
        read_table(bools)


_FCD_HEAD = '<fcd-export>\n  <timestep time="0.00">\n'


@pytest.mark.parametrize("name,text,needle", [
    ("trunc.xml", None, "trunc.xml line "),                                         # cut mid-file
    ("bad.xml", _FCD_HEAD + '    <vehicle id="a" x="1.0" y="oops"/>\n', "bad.xml line 3: <vehicle> attribute y"),
    ("noid.xml", _FCD_HEAD + '    <vehicle x="1.0" y="2"/>\n', "noid.xml line 3: <vehicle> has no id"),
    ("tag.xml", _FCD_HEAD + "    <vehicle id='a' x='1' y='2'>\n  </timestep>\n", "tag.xml line 4: malformed XML"),
    ("root.xml", "<routes>\n</routes>\n", "root.xml line 1: not a SUMO FCD file"),
    ("short.csv", "time_s,id,x_m,y_m\n0,a,1,2\n0.5,a,2\n", "short.csv line 3: expected 4 fields"),
    ("word.csv", "time_s,id,x_m,y_m\n0,a,1,2\n0.5,a,zz,2\n", "word.csv line 3: x_m: expected a number"),
    ("cols.csv", "t,id,x,y\n0,a,1,2\n", "cols.csv line 1: header"),
    ("trunc.xml.gz", None, "trunc.xml.gz line "),
])
def test_cli_bad_mobility_file_is_one_line_exit_2(tmp_path, capsys, name, text, needle):
    path = tmp_path / name
    if name == "trunc.xml":
        path.write_bytes(gzip.decompress(FIXTURE.read_bytes())[:30_000])
    elif name == "trunc.xml.gz":
        path.write_bytes(FIXTURE.read_bytes()[:20_000])
    else:
        path.write_text(text)
    for cmd in (["simulate", "--no-progress"], ["bound"]):
        code, out, err = run_cli([*cmd, "--mobility", str(path), "--n-mus", "2", "--slots", "3"], capsys)
        assert code == 2
        assert needle in err and "Traceback" not in err + out
        assert len(err.strip().splitlines()) == 1


def test_cli_simulate_and_gap_take_mobility(capsys):
    code, out, err = run_cli(["simulate", "--no-progress", "--policy", "follow", "--mobility", str(FIXTURE),
                              "--n-mus", "6", "--slots", "20"], capsys)
    assert code == 0, err
    assert "sumo_grid_fcd.xml.gz: 15130 records of 100 vehicles; 6 MUs from t = " in " ".join(out.split())
    code, out, err = run_cli(["gap", "--policy", "follow", "--mobility", str(FIXTURE), "--n-mus", "4", "--slots", "10",
                              "--iters", "2", "--workers", "1", "--method", "fast"], capsys)
    assert code == 0, err


def test_simulate_bound_and_env_on_an_imported_trace():
    from wdtnopt.env import BatchedWdtnEnv, parallel_env

    sc = Scenario.paper(n_mus=6)
    tr = generate_trace(sc, seed=2, slots=20, mobility=str(FIXTURE))
    res = simulate("follow", tr)
    hb = hindsight_bound(tr, iters=2, workers=1, method="fast")
    assert 0 <= hb.energy_per_mu_slot <= res.energy_per_mu_slot * (1 + 1e-9)
    env = parallel_env(scenario=sc, seed=0, slots=20, mobility=str(FIXTURE))
    env.reset(seed=4)
    np.testing.assert_array_equal(env.trace.positions, tr.positions)   # positions replayed, seed-free
    env.step({a: env.action_space(a).sample() for a in env.agents})
    benv = BatchedWdtnEnv(sc, n_envs=2, seed=0, slots=20, mobility=str(FIXTURE))
    benv.reset()
    np.testing.assert_array_equal(benv.sims[1].trace.positions, tr.positions)
    with pytest.raises(MobilityError, match="no such file"):
        generate_trace(sc, slots=3, mobility="missing.xml")


def _area_scenario(tmp_path: Path, area_m: float) -> Path:
    path = tmp_path / "area.json"
    Scenario.paper(area_m=area_m).save(path)
    return path


def test_sumo_grid_network_trips_sumo_import_simulate_bound(tmp_path, capsys):
    """Optional (needs eclipse-sumo): the whole path, twice with the same seed."""
    pytest.importorskip("sumo", reason="eclipse-sumo not installed (pip install 'wdtnopt[sumo]')")
    from wdtnopt.processes.sumo import SumoGridSpec, build_sumo_grid, sumo_version

    spec = SumoGridSpec(grid_number=4, grid_length_m=200.0, trip_period_s=1.5, seed=7, duration_s=90.0)
    sc = Scenario.paper(n_mus=8, area_m=spec.area_m)
    traces = []
    for run in ("a", "b"):
        source = build_sumo_grid(spec, workdir=tmp_path / run)
        traces.append(generate_trace(sc, seed=1, slots=60, mobility=source))
    assert _digest(traces[0]) == _digest(traces[1])
    assert traces[0].mobility_report.mu_vehicles == traces[1].mobility_report.mu_vehicles
    res = simulate("follow", traces[0])
    hb = hindsight_bound(traces[0], iters=2, workers=1, method="fast")
    assert 0 <= hb.energy_per_mu_slot <= res.energy_per_mu_slot * (1 + 1e-9)
    # another seed, other traffic
    other = build_sumo_grid(SumoGridSpec(grid_number=4, grid_length_m=200.0, trip_period_s=1.5, seed=8,
                                         duration_s=90.0), workdir=tmp_path / "c")
    assert not np.array_equal(generate_trace(sc, seed=1, slots=60, mobility=other).positions, traces[0].positions)
    # the CLI names the same run by a spec string
    code, out, err = run_cli(["simulate", "--no-progress", "--policy", "follow", "--n-mus", "8", "--slots", "60",
                              "--scenario", str(_area_scenario(tmp_path, spec.area_m)), "--seed", "1", "--mobility",
                              "sumo-grid:grid_number=4,grid_length_m=200,trip_period_s=1.5,seed=7,duration_s=90"],
                             capsys)
    assert code == 0, err
    rep = traces[0].mobility_report
    assert f"{rep.records} records of {rep.vehicles} vehicles; 8 MUs from t = {rep.start_s:g} s" in " ".join(out.split())
    assert f"{res.energy_per_mu_slot * 1e3:.4f}" in out
    # the builder runs the fixture's commands: same records from the SUMO that made the fixture
    if sumo_version() == "1.28.0":
        built = read_fcd(build_sumo_grid(SumoGridSpec(duration_s=200.0), workdir=tmp_path / "fx").path)
        fixture = read_fcd(FIXTURE)
        assert built.ids == fixture.ids
        for name in ("time_s", "x_m", "y_m", "vehicle"):
            np.testing.assert_array_equal(getattr(built, name), getattr(fixture, name))


def test_train_cli_on_a_replayed_file_resumes_on_it(tmp_path, capsys):
    from wdtnopt.agents.trainer import Trainer

    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--algo", "beta-mappo", "--n-mus", "3", "--n-bss", "2", "--steps", "16",
                            "--seed", "1", "--mobility", str(FIXTURE), "--out", str(out), "--quiet",
                            "--set", "n_envs=2", "--set", "rollout_steps=8", "--set", "episode_slots=10",
                            "--set", "ppo_epochs=1", "--set", "critic_epochs=1"], capsys)
    assert code == 0, err
    tr = Trainer.load(out)
    assert tr.mobility == str(FIXTURE.resolve())
    ref = generate_trace(tr.scenario, seed=0, slots=10, mobility=str(FIXTURE))
    np.testing.assert_array_equal(tr.env.sims[0].trace.positions, ref.positions)
    code, _, err = run_cli(["train", "--steps", "10", "--out", str(tmp_path / "x"), "--quiet",
                            "--mobility", str(tmp_path / "none.csv")], capsys)
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1


def test_lonlat_through_a_pyproj_crs_when_pyproj_is_installed(tmp_path):
    pytest.importorskip("pyproj")
    rng = np.random.default_rng(1)
    lon, lat = 11.0 + rng.uniform(0, 0.0135, 40), 48.0 + rng.uniform(0, 0.009, 40)
    geo = tmp_path / "g.csv"
    geo.write_text("time_s,id,lon_deg,lat_deg\n" + "".join(f"0,v{i},{float(lon[i])!r},{float(lat[i])!r}\n"
                                                           for i in range(40)))
    from pyproj import Geod

    utm = read_table(geo, projection="EPSG:32632", origin_lonlat=(11.0, 48.0))    # UTM zone 32N
    local = read_table(geo, projection="local", origin_lonlat=(11.0, 48.0))
    geod = Geod(ellps="WGS84")
    for i, j in rng.integers(0, 40, (100, 2)):
        if i != j:
            true = geod.inv(lon[i], lat[i], lon[j], lat[j])[2]        # WGS 84 geodesic (m)
            d_loc = math.dist((local.x_m[i], local.y_m[i]), (local.x_m[j], local.y_m[j]))
            d_utm = math.dist((utm.x_m[i], utm.y_m[i]), (utm.x_m[j], utm.y_m[j]))
            assert abs(d_loc - true) <= 1e-3 * true
            # UTM: its scale factor 0.9996 at the central meridian 9 deg E, ~1.0001 at 11 deg E
            assert abs(d_utm - true) <= 1e-3 * true
    with pytest.raises(MobilityError, match="unknown CRS"):
        read_table(geo, projection="EPSG:999999", origin_lonlat=(11.0, 48.0))


def test_cli_simulate_writes_every_fix_with_its_line(tmp_path, capsys):
    rows = ["time_s,id,x_m,y_m"]
    for k in range(8):
        for v, x0 in (("a", 100.0), ("b", 600.0)):
            rows.append(f"{k * TAU},{v},{x0 + 3 * k},{200.0}")
    rows[5] = "1.0,a,nan,200.0"                      # line 6: a's record at 1.0 s is lost
    rows.append("0.5,b,603.0,200.0")                 # line 18: b's record at 0.5 s once more, later
    rows.append("2.0,a,5000.0,200.0")                # line 19: far outside the 1 km square
    path = tmp_path / "rec.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, _, err = run_cli(["simulate", "--no-progress", "--policy", "static", "--mobility", str(path),
                            "--n-mus", "2", "--slots", "8", "-o", str(out)], capsys)
    assert code == 0, err
    fixes = (out / "mobility_fixes.csv").read_text().splitlines()
    assert fixes[0] == "kind,vehicle,time_s,line,slot"
    assert sorted(fixes[1:]) == sorted(["non_finite,a,1.0,6,", "out_of_area,a,2.0,19,", "out_of_order,b,0.5,18,",
                                        "exact_duplicate,b,0.5,18,", "interpolated,a,1.0,,2"])
    assert (out / "mobility_vehicles.csv").read_text() == "mu,vehicle\n0,a\n1,b\n"


def test_sumo_grid_spec_strings():
    from wdtnopt.processes.sumo import SumoGridSpec, parse_sumo_grid_spec

    assert parse_sumo_grid_spec("sumo-grid") == SumoGridSpec()
    assert parse_sumo_grid_spec("sumo-grid:seed=9, duration_s=120,grid_number=4") == \
        SumoGridSpec(seed=9, duration_s=120.0, grid_number=4)
    for text, needle in (("sumo-grid:sead=9", "key one of"), ("sumo-grid:seed=1.5", "seed: expected an integer"),
                         ("sumo-grid:grid_number=1", "grid_number: expected an integer >= 2"),
                         ("sumo-grid:duration_s=-3", "duration_s: expected a number > 0")):
        with pytest.raises(MobilityError, match=needle):
            parse_sumo_grid_spec(text)


_SMALL_FCD = ('<?xml version="1.0" encoding="UTF-8"?>\n<fcd-export>\n' + "".join(
    f'    <timestep time="{k * TAU:.2f}">\n'
    + "".join(f'        <vehicle id="{v}" x="{100 + 40 * v + 5 * k:.2f}" y="{300 + 7 * k:.2f}" speed="10"/>\n'
              for v in range(3))
    + "    </timestep>\n" for k in range(6)) + "</fcd-export>\n")
_SMALL_CSV = "time_s,id,x_m,y_m\n" + "".join(f"{k * TAU},{v},{100 + 40 * v + 5 * k},{300 + 7 * k}\n"
                                             for k in range(6) for v in range(3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["fcd", "csv", "fcd.gz"]), cut=st.integers(0, 2000), length=st.integers(0, 40),
       junk=st.text(alphabet='<>/="., \n0123456789abcxyz-', max_size=12))
def test_mangled_files_load_or_name_the_problem(tmp_path, which, cut, length, junk):
    """Any byte damage (a span replaced by junk, or the file cut) is read or is a MobilityError
    (one line, naming the file), never another exception."""
    text = _SMALL_CSV if which == "csv" else _SMALL_FCD
    cut = min(cut, len(text))
    mangled = (text[:cut] + junk + text[cut + length:]).encode()
    if which == "fcd.gz":
        mangled = gzip.compress(mangled)[: max(10, len(mangled) // 3)] if length > 30 else gzip.compress(mangled)
    path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.{which}"     # the directory is shared by examples
    path.write_bytes(mangled)
    sc = Scenario.paper(n_mus=2)
    try:
        tr = generate_trace(sc, seed=0, slots=3, mobility=str(path))
    except MobilityError as exc:
        msg = str(exc)
        assert "\n" not in msg and (path.name in msg or "mobility" in msg)
    else:
        assert tr.positions.shape == (3, 2, 2) and np.isfinite(tr.positions).all()


def test_sumo_grid_build_failure_is_a_mobility_error(tmp_path, monkeypatch):
    """Optional (needs eclipse-sumo): a failing SUMO command is reported with its last message."""
    pytest.importorskip("sumo", reason="eclipse-sumo not installed (pip install 'wdtnopt[sumo]')")
    import sys

    from wdtnopt.processes import sumo as sumo_mod

    monkeypatch.setattr(sumo_mod, "sumo_grid_commands",
                        lambda spec: [[sys.executable, "-c", "import sys; print('Error: no route'); sys.exit(3)"]])
    with pytest.raises(MobilityError, match=r"failed \(exit 3\): Error: no route"):
        sumo_mod.build_sumo_grid(sumo_mod.SumoGridSpec(), workdir=tmp_path)
    assert not (tmp_path / "fcd.xml.gz").exists() and list(tmp_path.iterdir()) == []


def test_geo_fcd_is_projected_like_a_lonlat_table(tmp_path):
    """An FCD file of `sumo --fcd-output.geo` (x = lon, y = lat) with projection= gives the positions
    of the same records as a lon/lat table."""
    rng = np.random.default_rng(3)
    lon = 11.0 + np.cumsum(rng.uniform(0, 1e-4, (8, 3)), axis=0)
    lat = 48.0 + np.cumsum(rng.uniform(0, 1e-4, (8, 3)), axis=0)
    fcd = tmp_path / "geo.xml"
    fcd.write_text("<fcd-export>\n" + "".join(
        f'<timestep time="{k * TAU}">\n' + "".join(f'<vehicle id="v{v}" x="{float(lon[k, v])!r}" y="{float(lat[k, v])!r}"/>\n'
                                                   for v in range(3)) + "</timestep>\n" for k in range(8))
        + "</fcd-export>\n")
    csv_path = tmp_path / "geo.csv"
    csv_path.write_text("time_s,id,lon_deg,lat_deg\n" + "".join(
        f"{k * TAU},v{v},{float(lon[k, v])!r},{float(lat[k, v])!r}\n" for k in range(8) for v in range(3)))
    sc = Scenario.paper(n_mus=3)
    a = load_mobility(fcd, projection="local", origin_lonlat=(11.0, 48.0)).track(sc, 8)
    b = load_mobility(csv_path, projection="local", origin_lonlat=(11.0, 48.0)).track(sc, 8)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert 0 < a.positions.min() and a.positions.max() < 100       # metres from the origin, not degrees


def test_geo_fcd_read_as_metres_is_warned_about(tmp_path):
    """The same geo file without a projection would put every MU within centimetres of the others:
    a warning names the remedy; with a projection, or for a network in metres, there is none."""
    import warnings

    rng = np.random.default_rng(4)
    lon = 11.0 + np.cumsum(rng.uniform(0, 1e-4, (8, 3)), axis=0)
    lat = 48.0 + np.cumsum(rng.uniform(0, 1e-4, (8, 3)), axis=0)

    def write(name, xs, ys):
        path = tmp_path / name
        path.write_text("<fcd-export>\n" + "".join(
            f'<timestep time="{k * TAU}">\n' + "".join(f'<vehicle id="v{v}" x="{float(xs[k, v])!r}" y="{float(ys[k, v])!r}"/>\n'
                                                       for v in range(3)) + "</timestep>\n" for k in range(8))
            + "</fcd-export>\n")
        return path

    geo = write("geo.xml", lon, lat)
    sc = Scenario.paper(n_mus=3)
    with pytest.warns(UserWarning, match=r"fcd-output\.geo.*projection='local'"):
        load_mobility(geo).track(sc, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mobility(geo, projection="local", origin_lonlat=(11.0, 48.0)).track(sc, 8)
        load_mobility(write("metres.xml", 20 + 1e5 * (lon - 11.0), 20 + 1e5 * (lat - 48.0))).track(sc, 8)  # tens of metres
