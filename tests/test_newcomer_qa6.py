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


def test_a_band_so_narrow_that_the_snr_overflows_has_a_tiny_rate_and_every_policy_runs():
    from decimal import Decimal, getcontext

    from wdtnopt import simulate
    from wdtnopt.physics import min_tx_time, rate

    # B log2(1 + p g / (N0 B)) in 60-digit decimal arithmetic (no overflow there)
    getcontext().prec = 60
    p, b, n0, g = 0.2, 1e-300, 4e-21, 1e-10
    snr = Decimal(p) * Decimal(g) / (Decimal(n0) * Decimal(b))
    exact = float(Decimal(b) * (1 + snr).ln() / Decimal(2).ln())
    assert rate(p, b, n0, g) == pytest.approx(exact, rel=1e-12)
    assert rate(p, 1e6, n0, g) == pytest.approx(float(Decimal(1e6) * (1 + Decimal(p) * Decimal(g) / (Decimal(n0) * Decimal(1e6))).ln()
                                                     / Decimal(2).ln()), rel=1e-12)
    np.testing.assert_array_equal(rate(np.array([0.0, p]), b, n0, g), [0.0, rate(p, b, n0, g)])
    assert min_tx_time(1e6, b, n0, g, p) > 1e300                  # no sync fits a deadline
    # the whole toolkit on such a band: every request fails, no policy raises, nothing warns
    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2, bandwidth_hz=1e-300), seed=1, slots=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("static", "follow", "oracle", "lyapunov"):
            res = simulate(name, tr)
            assert res.energy_per_mu_slot == 0.0 and res.failure_ratio == 1.0


@pytest.mark.parametrize("field,value", [("area_m", 1e-300), ("hop_distance_m", 1e-300), ("hop_rate_bps", 1e-300)])
def test_sizes_that_overflowed_hop_counts_or_transfer_times_are_refused_by_name(field, value):
    from wdtnopt import ScenarioError

    # hop_distance_m = 1e-300 cast an infinite hop count to int64 (garbage hops), hop_rate_bps =
    # 1e-300 gave an infinite migration penalty that trace.snapshot's own check refused mid-run,
    # area_m = 1e-300 cast infinite wall crossings of the mobility model
    with pytest.raises(ScenarioError, match=field):
        Scenario.paper(**{field: value})
    # the lowest accepted values give finite, readable snapshots
    sc = Scenario.paper(n_mus=3, n_bss=3, **{field: 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = generate_trace(sc, seed=1, slots=3)
        snap = tr.snapshot(1)
    assert np.all(tr.hops >= 0) and np.isfinite(snap.migration_penalty).all()


def test_a_thz_air_pressure_below_the_vapour_pressure_is_refused_by_name(capsys, tmp_path):
    from wdtnopt import ScenarioError
    from wdtnopt.processes.channels import water_vapor_mixing_ratio

    thz = dict(thz_carrier_hz=300e9, bandwidth_hz=2e9, thz_temperature_k=350.0, thz_relative_humidity=1.0)
    # Buck's saturation pressure at 350 K, 1 atm, by hand: 6.1121 (1.0007 + 3.46e-6 * 1013.25)
    # exp(17.502 * 76.85 / 317.82) hPa = 421.2 hPa
    p_w = 100 * 6.1121 * (1.0007 + 3.46e-6 * 1013.25) * math.exp(17.502 * 76.85 / 317.82)
    assert water_vapor_mixing_ratio(350.0, 1.0, 101_325.0) == pytest.approx(p_w / 101_325.0, rel=1e-12)
    with pytest.raises(ScenarioError, match="thz_pressure_pa"):
        Scenario.paper(thz_pressure_pa=1e-300, **thz)                # overflowed the absorption lines
    with pytest.raises(ScenarioError, match="thz_pressure_pa"):
        Scenario.paper(thz_pressure_pa=40_000.0, **thz)
    Scenario.paper(thz_pressure_pa=50_000.0, **thz)                  # above the vapour pressure
    Scenario.paper(thz_pressure_pa=1e-300)                           # THz off: the field is unused
    bad = tmp_path / "thz.toml"
    bad.write_text("n_mus = 3\nn_bss = 2\nthz_carrier_hz = 3e11\nbandwidth_hz = 2e9\nthz_pressure_pa = 1e-300\n")
    code, _, err = run_cli(["simulate", "--scenario", str(bad), "--slots", "2"], capsys)
    assert code == 2 and "thz_pressure_pa" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("levels", [0, 3], ids=["no-menu", "menu"])
def test_heuristics_on_a_server_too_slow_for_any_update_fail_every_request_quietly(levels):
    from wdtnopt import simulate

    # cycles / (1e-300 Hz / k) overflows to an infinite update time: nobody can be served
    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2, cpu_hz=1e-300, semantic_levels=levels), seed=1, slots=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("static", "follow"):
            res = simulate(name, tr)
            assert res.energy_per_mu_slot == 0.0 and res.failure_ratio == 1.0


def test_suite_csv_cells_of_numpy_floats_read_as_plain_numbers():
    from pathlib import Path

    from wdtnopt.benchmarks.suites import style

    # a fresh run hands numpy floats to the CSV, a resumed one the plain floats read back from the
    # task files: both must give the same text (numpy 2 writes repr(np.float64(x)) as "np.float64(x)")
    row = [0.1, 2.5e-300, float("inf"), float("nan"), 3, "follow"]
    fresh = style.csv_text(["a", "b", "c", "d", "e", "f"], [[np.float64(v) if isinstance(v, float) else v for v in row]])
    resumed = style.csv_text(["a", "b", "c", "d", "e", "f"], [row])
    assert fresh == resumed == "a,b,c,d,e,f\n0.1,2.5e-300,inf,nan,3,follow\n"
    committed = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "resilience" / "resilience.csv"
    if committed.exists():
        assert "np." not in committed.read_text()


@pytest.mark.parametrize("slot", [1.5, 1.0, True, "1", np.float64(1.0)])
def test_a_slot_that_is_not_an_integer_is_named_not_truncated(slot):
    from wdtnopt import WdtnoptError

    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=4)
    with pytest.raises(WdtnoptError, match="slot: expected an integer"):
        tr.snapshot(slot)                    # int() read 1.5 / True / "1" as slot 1
    assert tr.snapshot(np.int64(1)).to_dict() == tr.snapshot(1).to_dict()


def test_json_and_toml_files_saved_with_a_byte_order_mark_read_as_without(tmp_path, capsys):
    from wdtnopt import Snapshot
    from wdtnopt.benchmarks.suites.runner import load_config
    from wdtnopt.testing import tiny_snapshot

    bom = b"\xef\xbb\xbf"   # what Notepad and spreadsheets write as "UTF-8"
    (tmp_path / "s.toml").write_bytes(bom + b"n_mus = 3\nn_bss = 2\n")
    (tmp_path / "s.json").write_bytes(bom + b'{"n_mus": 3, "n_bss": 2}')
    want = Scenario.paper(n_mus=3, n_bss=2)
    assert Scenario.load(tmp_path / "s.toml") == want and Scenario.load(tmp_path / "s.json") == want
    snap = tiny_snapshot(0)
    plain = tmp_path / "snap.json"
    snap.save(plain)
    marked = tmp_path / "snap_bom.json"
    marked.write_bytes(bom + plain.read_bytes())
    assert Snapshot.load(marked).to_dict() == snap.to_dict()
    code, out, err = run_cli(["solve", str(marked)], capsys)
    assert code == 0 and err == "" and "optimal" in out
    (tmp_path / "p.toml").write_bytes(bom + b'base = "smoke"\nslots = 7\n')
    assert load_config("sixg", tmp_path / "p.toml")["slots"] == 7


@pytest.mark.parametrize("algo", ["beta-happo", "gaussian-happo", "beta-mappo"])
def test_training_on_one_sample_per_iteration_keeps_the_networks_finite(algo):
    torch = pytest.importorskip("torch")
    from wdtnopt.agents.trainer import Trainer

    # n_envs = rollout_steps = 1: one advantage per iteration, whose std() is NaN; the NaN spread
    # to every weight and the next rollout's sampling raised "probability tensor contains nan"
    tr = Trainer(algo, Scenario.paper(n_mus=2, n_bss=1), seed=0,
                 config={"n_envs": 1, "rollout_steps": 1, "episode_slots": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)       # torch: "std(): degrees of freedom is <= 0"
        for _ in range(4):
            stats = tr.train_iteration()
    weights = list(tr.agent.actors.parameters()) + list(tr.agent.critic.parameters())
    assert weights and all(bool(torch.isfinite(w).all()) for w in weights)
    assert math.isfinite(stats["reward"]) and math.isfinite(stats["policy_loss"])
    ev = tr.evaluate_policy(episodes=1)
    assert all(math.isfinite(v) for v in ev.values())


def test_a_mu_level_that_is_not_a_number_or_a_mistyped_key_is_named_and_nothing_steps():
    from wdtnopt import WdtnoptError
    from wdtnopt.env import parallel_env

    e = parallel_env(scenario=Scenario.paper(n_mus=3, n_bss=2, semantic_levels=3), seed=0, slots=10)
    e.reset(seed=0)
    acts = {a: e.action_space(a).sample() for a in e.agents}
    t0 = e.sim.t
    # "x" / None / NaN were a ValueError or TypeError from int(); [1, 2] and "levle" passed silently
    for bad, field in [({"power": [0.1], "level": "x"}, r"\['level'\]"), ({"power": [0.1], "level": None}, r"\['level'\]"),
                       ({"power": [0.1], "level": float("nan")}, r"\['level'\]"),
                       ({"power": [0.1], "level": [1, 2]}, r"\['level'\]"),
                       ({"power": [0.1], "levle": 2}, "unknown key")]:
        with pytest.raises(WdtnoptError, match=r"actions\['mu_1'\]" + ".*" + field):
            e.step({**acts, "mu_1": bad})
        assert e.sim.t == t0                       # nothing stepped
    # the space's own samples (np.int64 levels) and plain ints still step
    e.step({**acts, "mu_1": {"power": np.array([0.1], np.float32), "level": 2}})
    assert e.sim.t == t0 + 1


def test_a_lyapunov_price_beyond_what_a_snapshot_holds_is_named_before_the_run(capsys):
    from wdtnopt import WdtnoptError, simulate
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    # V = 1e-308: (Q + theta) / V = inf, refused mid-run as "invalid snapshot: failure_penalty"
    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=1, slots=4)
    for kw in (dict(V=1e-308), dict(V=1e-300, theta=1e300)):
        with pytest.raises(WdtnoptError, match="^V, theta: "):
            simulate(LyapunovPolicy(**kw), tr)
    code, _, err = run_cli(["simulate", "--policy", "lyapunov-fa", "--V", "1e-308", "--n-mus", "3", "--n-bss", "2",
                            "--slots", "3"], capsys)
    assert code == 2 and err.startswith("error: V, theta: ") and len(err.strip().splitlines()) == 1
    # the largest price that a run can reach is (Q0 + slots + theta) / V: just inside the limit runs
    res = simulate(LyapunovPolicy(V=1e-297, theta=0.0, initial_price=0.0), tr)   # at most 4 / 1e-297 J
    assert 0.0 <= res.failure_ratio <= 1.0


def test_an_oracle_failure_price_near_the_float_limit_is_named():
    from wdtnopt import WdtnoptError, simulate
    from wdtnopt.policies.lyapunov import MyopicOraclePolicy

    # 1e308 passed the check and priced a migration at slots x lam x 1e308 = inf: a SnapshotError mid-run
    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2, hop_rate_bps=1e6), seed=1, slots=4)
    with pytest.raises(WdtnoptError, match="^failure_price: expected a number in"):
        MyopicOraclePolicy(failure_price=1e308)
    with pytest.raises(WdtnoptError, match="^failure_price: "):
        MyopicOraclePolicy(failure_price=[1.0, 1e301, 0.0])
    res = simulate(MyopicOraclePolicy(failure_price=1e300), tr)       # the limit itself runs
    assert res.failure_ratio == 0.0


def test_a_scenario_file_with_per_server_lists_for_the_cli_n_bss_loads(tmp_path, capsys):
    # the file was checked at the default n_bss = 5 before --n-bss 2 replaced it, so per-server
    # lists of 2 values were refused ("a list of n_bss = 5 numbers, got 2 values")
    path = tmp_path / "two.toml"
    path.write_text("server_mtbf_s = [100.0, 0.0]\nserver_mttr_s = [5.0, 7.0]\n")
    sc = Scenario.load(path, n_bss=2, n_mus=3)
    assert sc == Scenario.paper(n_mus=3, n_bss=2, server_mtbf_s=[100.0, 0.0], server_mttr_s=[5.0, 7.0])
    code, out, err = run_cli(["snapshot", "--scenario", str(path), "--n-bss", "2", "--n-mus", "3", "--slots", "2",
                              "-o", str(tmp_path / "s.json")], capsys)
    assert code == 0 and err == ""
    # the file's lists against another --n-bss: one line naming the field and the size asked for
    code, _, err = run_cli(["simulate", "--scenario", str(path), "--n-bss", "3", "--slots", "2"], capsys)
    assert code == 2 and "server_mtbf_s" in err and "n_bss = 3" in err and len(err.strip().splitlines()) == 1


def _boundary_scenarios():
    """(field, value, scenario) at both ends of every field's documented range (the open end
    nudged inside), with the option the field belongs to switched on."""
    import dataclasses

    from wdtnopt import ScenarioError

    out = []
    for f in dataclasses.fields(Scenario):
        md = f.metadata
        if f.name in ("n_mus", "n_bss") or "lo" not in md:
            continue
        for v, is_open in ((md["lo"], md["lo_open"]), (md["hi"], md["hi_open"])):
            if not math.isfinite(v):
                continue
            if is_open:
                v = (v * (1 + 1e-12) if v > 0 else 1e-300) if v == md["lo"] else v * (1 - 1e-12)
            if isinstance(f.default, int) and not isinstance(f.default, bool):
                v = int(v)
            kw = {"n_mus": 3, "n_bss": 2, f.name: v}
            if f.name.startswith("thz_") and f.name != "thz_carrier_hz":
                kw.update(thz_carrier_hz=300e9, bandwidth_hz=2e9)
            if f.name.startswith("ris_"):
                kw.setdefault("ris_elements", 64)
            if f.name.startswith(("semantic_", "mu_")):
                kw.setdefault("semantic_levels", 3)
            if f.name in ("server_mttr_s", "self_healing", "failure_detection_s", "backup_site"):
                kw.setdefault("server_mtbf_s", 5.0)
            try:
                out.append(pytest.param(Scenario.paper(**kw), id=f"{f.name}={v!r}"))
            except ScenarioError:
                pass    # an end that a cross-field rule refuses (data_bits_min = 1e12 > data_bits_max)
    return out


@pytest.mark.parametrize("sc", _boundary_scenarios())
def test_every_scenario_field_at_the_ends_of_its_range_gives_a_usable_trace(sc):
    from wdtnopt import Snapshot, simulate

    # a value the scenario accepts must give finite data, a snapshot that reads back, and a run
    # (found here: ris_carrier_hz, thz_pressure_pa, bandwidth_hz, hop_*, area_m near 0)
    tr = generate_trace(sc, seed=1, slots=3)
    assert np.isfinite(tr.gain).all() and np.isfinite(tr.noise_psd).all() and np.isfinite(tr.positions).all()
    snap = tr.snapshot(1)
    assert Snapshot.from_dict(snap.to_dict()).to_dict() == snap.to_dict()
    res = simulate("follow", tr)
    assert np.isfinite(res.energy_per_mu_slot) and 0.0 <= res.failure_ratio <= 1.0


def test_python_dash_m_wdtnopt_is_the_command_line(tmp_path):
    import subprocess
    import sys

    # "No module named wdtnopt.__main__" before; errors keep the CLI's one line and exit code 2
    ok = subprocess.run([sys.executable, "-m", "wdtnopt", "--version"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "wdtnopt, version" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "wdtnopt", "solve", str(tmp_path / "none.json")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("origin", [(11.5, 100.0), (11.5, float("nan")), ("a", 1.0), (1.0,)])
def test_an_origin_that_is_not_a_lon_lat_pair_is_named(tmp_path, origin):
    from wdtnopt import MobilityError

    # latitude 100 projected every record to x = -0 (cos of 100 deg), NaN dropped every record,
    # ("a", 1) and (1,) were numpy's UFuncTypeError and an unpacking ValueError
    lon, lat = _track(11.5)
    path = tmp_path / "t.csv"
    _write(path, lon, lat, wrap=False)
    with pytest.raises(MobilityError, match="origin_lonlat: expected"):
        read_table(path, projection="local", origin_lonlat=origin, area_m=1000.0)
    good = read_table(path, projection="local", origin_lonlat=(11.5, 52.0), area_m=1000.0)
    assert good.x_m.min() == 0.0 and abs(good.y_m.min()) < 1e-9      # the origin becomes (0, 0)
