"""A newcomer's sixth pass: inputs the authors had not tried, each checked against an independent
reference (the same data placed where the rule under test does not apply, a closed form)."""
from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from cli_runner import run_cli

from wdtnopt import Scenario, generate_trace
from wdtnopt.processes.mobility import read_table


def _track(lon_start: float) -> tuple[np.ndarray, np.ndarray]:
    """Two vehicles driving east 2.2 m per step at 52 deg N for 8 steps, from ``lon_start``."""
    k = np.arange(8)
    lon = np.array([lon_start + 3e-5 * k, lon_start + 1e-4 + 3e-5 * k])        # [2, 8] degrees
    lat = np.array([52.0 + 0 * k, 52.0002 + 0 * k])
    return lon, lat


def _write(path, lon, lat, wrap: bool) -> None:
    """A lon/lat table of the track; with ``wrap`` longitudes are written in [-180, 180)."""
    rows = []
    for t in range(lon.shape[1]):
        for v in range(2):
            x = float(lon[v, t])
            if wrap and x >= 180.0:
                x -= 360.0
            rows.append(f"{0.5 * t},v{v},{x!r},{float(lat[v, t])!r}\n")
    path.write_text("time_s,id,lon_deg,lat_deg\n" + "".join(rows))


@pytest.mark.parametrize("origin", [None, (179.9998, 52.0)], ids=["median-origin", "given-origin"])
def test_a_track_across_the_antimeridian_is_projected_like_one_elsewhere(tmp_path, origin):
    # the same track 0.0002 deg west of 180 E (crossing into -179.99... deg) and shifted to 10 E:
    # the local projection depends only on lon - lon0 and lat0, so the positions must agree
    lon, lat = _track(179.9998)
    across = tmp_path / "across.csv"
    _write(across, lon, lat, wrap=True)
    elsewhere = tmp_path / "elsewhere.csv"
    _write(elsewhere, lon - 169.9998 + 0.0, lat, wrap=False)          # starts at 10.0 E
    shifted = None if origin is None else (origin[0] - 169.9998, origin[1])
    a = read_table(across, projection="local", origin_lonlat=origin, area_m=1000.0)
    b = read_table(elsewhere, projection="local", origin_lonlat=shifted, area_m=1000.0)
    np.testing.assert_allclose(a.x_m, b.x_m, atol=1e-6)
    np.testing.assert_allclose(a.y_m, b.y_m, atol=1e-6)
    # a step of 3e-5 deg at 52 deg N is about 2.06 m east (closed form on the sphere, within 0.5 %)
    step = math.radians(3e-5) * 6_371_008.8 * math.cos(math.radians(52.0))
    dx = np.diff(a.x_m[a.vehicle == a.vehicle[0]])
    np.testing.assert_allclose(dx, step, rtol=5e-3)


def test_a_trace_replayed_across_the_antimeridian_keeps_every_record(tmp_path):
    lon, lat = _track(179.9998)
    path = tmp_path / "across.csv"
    _write(path, lon, lat, wrap=True)
    tr = generate_trace(Scenario.paper(n_mus=2, n_bss=2), seed=0, slots=6, mobility=str(path))
    assert tr.mobility_report.counts.get("out_of_area", 0) == 0
    assert np.all(np.diff(tr.positions[:, 0, 0]) > 2.0)                  # driving east, slot by slot


def test_failure_aware_policies_with_servers_failing_every_slot_warn_nothing():
    from wdtnopt import simulate
    from wdtnopt.policies.failure_aware import failure_within

    # 1 - (1 - p)^H in exact rational arithmetic, p = 1 included (an MTBF of 1 ns, a 0.5 s slot)
    for p in (0.0, 1e-12, 0.3, 1.0):
        for h in (1, 3, 10):
            exact = float(1 - (1 - Fraction(p)) ** h)
            assert failure_within(p, h) == pytest.approx(exact, rel=1e-12, abs=1e-300)
    sc = Scenario.paper(n_mus=4, n_bss=3, frame_slots=2, server_mtbf_s=1e-9, server_mttr_s=1.0)
    tr = generate_trace(sc, seed=2, slots=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("oracle-fa", "lyapunov-fa"):
            res = simulate(name, tr)
            assert 0.0 <= res.failure_ratio <= 1.0 and np.isfinite(res.energy_per_mu_slot)


def test_a_ris_carrier_whose_element_gain_overflows_is_refused_by_name(tmp_path, capsys):
    from wdtnopt import ScenarioError, Snapshot

    # (c / 2f)^2 overflows a float below about 1e-146 Hz (a traceback), and gives infinite gains
    # below that (a snapshot file that `wdtnopt solve` then refuses); both are refused up front
    for f in (1e-150, 1e-300, 1e7):
        with pytest.raises(ScenarioError, match="ris_carrier_hz"):
            Scenario.paper(ris_elements=64, ris_carrier_hz=f)
    bad = tmp_path / "ris.toml"
    bad.write_text("n_mus = 3\nn_bss = 2\nris_elements = 64\nris_carrier_hz = 1e-150\n")
    code, _, err = run_cli(["simulate", "--scenario", str(bad), "--slots", "2"], capsys)
    assert code == 2 and "ris_carrier_hz" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # at the lowest carrier, the largest surface at the closest offset: finite gains, and the
    # snapshot reads back (the cascade is the closed form of docs/model.md, section 13)
    sc = Scenario.paper(n_mus=4, n_bss=2, ris_elements=100_000_000, ris_carrier_hz=1e8, ris_offset_m=1e-3)
    tr = generate_trace(sc, seed=5, slots=3)
    assert np.isfinite(tr.gain).all() and np.isfinite(tr.noise_psd).all()
    snap = tr.snapshot(1)
    assert Snapshot.from_dict(snap.to_dict()).to_dict() == snap.to_dict()
