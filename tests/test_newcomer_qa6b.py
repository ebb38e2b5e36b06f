"""A newcomer's pass (6b): predictive on recorded mobility, the thread cap, penalties near the
largest float, out-of-range semantic levels in the environments and mobility-file checks; each
against an independent reference (the motion written into the file, the brute force, the old code)."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, simulate
from wdtnopt.policies.predictive import PredictivePolicy, predict_positions, predict_positions_recorded


def _table(path, tracks: dict[str, list[tuple[float, float]]], dt_s: float = 1.0) -> str:
    """Write ``time_s,id,x_m,y_m`` with one record per ``dt_s`` of each vehicle's positions."""
    rows = ["time_s,id,x_m,y_m"]
    for k in range(len(next(iter(tracks.values())))):
        for vid, xy in tracks.items():
            rows.append(f"{k * dt_s!r},{vid},{xy[k][0]!r},{xy[k][1]!r}")
    path.write_text("\n".join(rows) + "\n")
    return str(path)


# ---------------------------------------------------------------------------------------------
# 1. predictive on recorded mobility


def test_parked_recorded_vehicles_are_predicted_to_stay(tmp_path):
    # three vehicles parked at (500, 500): nothing moves, so nothing should migrate and predictive
    # must do what follow and static do (the Gauss-Markov mean reversion to 5 m/s moved them before)
    path = _table(tmp_path / "parked.csv", {f"v{i}": [(500.0, 500.0)] * 31 for i in range(3)})
    sc = Scenario.paper(n_mus=3, n_bss=2)
    tr = generate_trace(sc, seed=0, slots=30, mobility=path)
    assert tr.mobility_report is not None
    pred, follow = simulate("predictive", tr), simulate("follow", tr)
    assert pred.migrations == 0
    assert pred.failure_ratio == follow.failure_ratio
    np.testing.assert_array_equal(pred.placement, follow.placement)


def _line_trace(tmp_path, name: str, turn_after_s: float | None = None):
    """One vehicle driving east at 8 m/s along y = 300 from x = 100 (3 more parked ones); with
    ``turn_after_s`` it turns north from then on."""
    xy = []
    for k in range(41):
        s = float(k)
        if turn_after_s is None or s <= turn_after_s:
            xy.append((100.0 + 8.0 * s, 300.0))
        else:
            xy.append((100.0 + 8.0 * turn_after_s, 300.0 + 8.0 * (s - turn_after_s)))
    tracks = {"car": xy, **{f"p{i}": [(200.0 + 300 * i, 800.0)] * 41 for i in range(3)}}
    path = _table(tmp_path / name, tracks)
    return generate_trace(Scenario.paper(n_mus=4, n_bss=4), seed=1, slots=60, mobility=path)


def test_a_vehicle_on_a_straight_recorded_line_is_predicted_on_it(tmp_path):
    tr = _line_trace(tmp_path, "line.csv")
    sc = tr.scenario
    k = sc.frame_slots
    car = int(np.argmax(np.ptp(np.asarray(tr.positions)[:, :, 0], axis=0)))
    t = 2 * k
    got = predict_positions_recorded(tr.positions[t], tr.positions[t - 1], sc.slot_s, k)
    # the recorded future of a constant-velocity line is the line itself (the reference: the file)
    np.testing.assert_allclose(got[:, car], np.asarray(tr.positions)[t:t + k + 1, car], atol=1e-9)
    # the policy's target is the server nearest to the recorded positions for most of the frame
    # (all servers are up, so the failure weights are 1)
    policy = PredictivePolicy()
    policy.reset(tr)
    state = type("S", (), {"t": t})()
    dist = np.linalg.norm(np.asarray(tr.positions)[t + 1:t + k + 1, car, None, :] - tr.bs_positions[None], axis=-1)
    counts = np.bincount(np.argmin(dist, axis=1), minlength=tr.n_bss)
    assert policy.targets(tr.snapshot(t), state)[car] in np.flatnonzero(counts == counts.max())
    # at slot 0 nothing has been observed moving yet: stay
    np.testing.assert_array_equal(predict_positions_recorded(tr.positions[0], None, sc.slot_s, k),
                                  np.broadcast_to(tr.positions[0], (k + 1,) + tr.positions[0].shape))


def test_recorded_prediction_never_reads_a_future_record(tmp_path):
    # the same drive, once straight and once turning just after the frame start: a causal predictor
    # sees the same past, so it must predict the same path and choose the same targets at that slot
    straight = _line_trace(tmp_path, "straight.csv")
    k = straight.scenario.frame_slots
    t = 2 * k                                                  # slot 20 = 10 s
    turning = _line_trace(tmp_path, "turning.csv", turn_after_s=t * straight.scenario.slot_s)
    np.testing.assert_array_equal(np.asarray(straight.positions)[:t + 1], np.asarray(turning.positions)[:t + 1])
    assert not np.array_equal(straight.speed[t] * np.cos(straight.heading[t]),
                              turning.speed[t] * np.cos(turning.heading[t]))  # the fields do leak t + 1
    paths = []
    for tr in (straight, turning):
        policy = PredictivePolicy()
        policy.reset(tr)
        paths.append(policy._path(t, k))
    np.testing.assert_array_equal(paths[0], paths[1])
    # and the whole run's placements agree up to that frame start's decision
    a, b = simulate("predictive", straight), simulate("predictive", turning)
    np.testing.assert_array_equal(a.placement[:t + 1], b.placement[:t + 1])


def test_recorded_prediction_is_the_same_on_a_windowed_trace(tmp_path):
    tr = _line_trace(tmp_path, "line.csv")
    path = str(tmp_path / "line.csv")
    win = generate_trace(tr.scenario, seed=1, slots=60, mobility=path, window_slots=7)
    np.testing.assert_array_equal(simulate("predictive", tr).placement, simulate("predictive", win).placement)


class _OldPredictive(PredictivePolicy):
    """The policy's targets as they were before recorded mobility had its own predictor."""

    def targets(self, snapshot, state):
        from wdtnopt.processes import availability
        tr, t = self.trace, state.t
        sc = tr.scenario
        k = self.horizon_slots or sc.frame_slots
        path = predict_positions(tr.positions[t], tr.speed[t], tr.heading[t], sc, k)
        dist = np.linalg.norm(path[:, :, None, :] - tr.bs_positions[None, None], axis=-1)
        near = np.argmin(dist[1:], axis=2)
        p_fail, p_rep = availability.transition_probabilities(sc.slot_s, sc.server_mtbf_s, sc.server_mttr_s)
        p_up = availability.up_probability_ahead(snapshot.server_up[None, :], np.arange(1, k + 1)[:, None], p_fail, p_rep)
        score = np.zeros((tr.n_mus, tr.n_bss))
        rows = np.arange(tr.n_mus)
        for j in range(k):
            np.add.at(score, (rows, near[j]), p_up[j, near[j]])
        score[rows, snapshot.assoc] += 1e-9
        return np.argmax(score, axis=1)


def test_gauss_markov_predictions_unchanged():
    sc = Scenario.paper(n_mus=12, n_bss=4, server_mtbf_s=60.0, server_mttr_s=10.0)
    tr = generate_trace(sc, seed=5, slots=80)
    assert tr.mobility_report is None
    new, old = simulate("predictive", tr), simulate(_OldPredictive(), tr)
    assert new.migrations > 0
    np.testing.assert_array_equal(new.placement, old.placement)
    for col in new.table:
        np.testing.assert_array_equal(new.table[col], old.table[col])


# ---------------------------------------------------------------------------------------------
# 2. threads beyond the machine's CPUs


def test_threads_above_the_cpu_count_are_capped_with_a_warning_naming_them(tmp_path, capsys):
    import json
    import os
    import warnings

    from cli_runner import run_cli
    from wdtnopt import solve
    from wdtnopt.solvers.options import ExactOptions, FastOptions

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ExactOptions(threads=cpus).threads == cpus          # up to the CPU count: kept, silently
    for cls in (ExactOptions, FastOptions):
        with pytest.warns(RuntimeWarning, match=rf"threads=100000 is more than the {cpus} CPUs"):
            assert cls(threads=100000).threads == cpus
    snap = generate_trace(Scenario.paper(n_mus=4, n_bss=2), seed=0, slots=1).snapshot(0)
    ref = solve(snap, threads=1)
    with pytest.warns(RuntimeWarning, match="threads=2000"):
        sol = solve(snap, threads=2000)
    assert sol.status == ref.status == "optimal"
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    path = tmp_path / "snap.json"
    snap.save(path)
    code, out, err = run_cli(["solve", str(path), "--threads", "2000", "-o", str(tmp_path / "sol.json")], capsys)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: --threads 2000 is more than"), err
    assert json.loads((tmp_path / "sol.json").read_text())["status"] == "optimal"


# ---------------------------------------------------------------------------------------------
# 3. penalties near the largest float


def _huge(case: str):
    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=3)
    if case == "both":         # both prices 1e307 J next to mJ energies (divided by a ~2 mJ scale
        # they overflowed); 1e308 each sums past the largest float, which a snapshot refuses
        return tr.snapshot(1, failure_penalty=1e307, migration_penalty=1e307)
    # MU 0's host is down: its DT moves (1e300 J) or it fails (1e308 J); the others' failures cost
    # 1 J (so that no decision's cost overflows: two failures of 1e308 J would be inf J)
    s = tr.snapshot(1, failure_penalty=np.array([1e308, 1.0, 1.0]), migration_penalty=1e300)
    up = np.ones(s.n_bss, dtype=bool)
    up[s.placement_prev[0]] = False
    return s.replace(server_up=up)


@pytest.mark.parametrize("method", ["exact", "fast", "relaxation", "pyomo"])
@pytest.mark.parametrize("case", ["both", "host-down"])
def test_penalties_near_the_largest_float_warn_nothing_and_match_the_brute_force(method, case):
    from test_solver_properties import brute_force, check_against

    s = _huge(case)
    with np.errstate(over="ignore"):   # the reference (outside the filter): failing all is inf J
        optimum = brute_force(s)
    assert np.isfinite(optimum) and (optimum < 1.0 if case == "both" else 1e300 <= optimum < 1e301)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_against(s, method, optimum)


def test_a_warm_master_repriced_between_huge_and_small_penalties_stays_exact():
    # the warm master keeps its rows across failure prices; the capped prices must follow each
    # snapshot's own known decision, and prices 1e30 times the master's units (coefficients above
    # HiGHS's infinite cost) ended 'feasible' with bound 0 before the master was rebuilt for them
    import warnings

    from test_solver_properties import brute_force
    from wdtnopt import solve
    from wdtnopt.solvers.exact import ExactWarmStart

    base = _huge("host-down")
    w = ExactWarmStart()
    for fail in ([1.0, 1.0, 1.0], [1e308, 1.0, 1.0], [1e-3, 1e-3, 1e-3], [1e308, 1e300, 1.0]):
        s = base.replace(failure_penalty=np.array(fail))
        with np.errstate(over="ignore"):   # the reference: failing two at 1e308 J is inf J
            optimum = brute_force(s)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = solve(s, method="exact", gap=1e-7, warm=w)
        assert sol.status == "optimal", (fail, sol.stats)
        assert sol.objective == pytest.approx(optimum, rel=1e-6), fail
        assert sol.bound <= optimum * (1 + 1e-9)
    # kept across the falling prices, rebuilt where they rose a million-fold (REBUILD_ABOVE)
    assert (w.solves, w.reused) == (4, 1)


# ---------------------------------------------------------------------------------------------
# 4. semantic levels outside the menu in the environments

# accuracies 1, 0.95, 0.9 against a minimum of 0.85: every level is on the menu, so a level clipped
# to the deepest one (2) and one read as level 0 differ
ALL_LEVELS = dict(n_mus=3, n_bss=2, semantic_levels=3, semantic_min_accuracy=0.85, semantic_cycles_per_bit=2.0)


def _pz_energies(levels: list) -> np.ndarray:
    from wdtnopt.env import parallel_env

    # the controller and the BSs are absent: they take the neutral action (every DT stays, CPU weights 1)
    env = parallel_env(Scenario.paper(**ALL_LEVELS), seed=0, slots=4, strict_actions=False)
    env.reset(seed=3)
    out = []
    for _ in range(4):
        acts = {f"mu_{i}": {"power": np.array([0.15], np.float32), "level": lv} for i, lv in enumerate(levels)}
        env.step(acts)
        out.append(env.last_step.evaluation.energy.copy())
    return np.array(out)


def test_pettingzoo_levels_off_the_menu_mean_level_0():
    zero, deep = _pz_energies([0, 0, 0]), _pz_energies([2, 2, 2])
    assert not np.array_equal(zero, deep)           # the menu's deepest level differs from level 0
    for bad in ([3, 0, 0], [0, 7, -1], [3, 3, 3]):  # above the menu (it was clipped to 2), negative
        np.testing.assert_array_equal(_pz_energies(bad), zero)


def test_batched_levels_off_the_menu_mean_level_0_like_pettingzoo():
    from wdtnopt.env.batched import BatchedWdtnEnv

    sc = Scenario.paper(**ALL_LEVELS)

    def run(level) -> np.ndarray:
        env = BatchedWdtnEnv(sc, n_envs=2, seed=0, slots=4)
        env.reset()
        rewards = []
        for _ in range(4):
            obs, rew, done, info = env.step(np.full((2, 3), 0.15), np.ones((2, 2, 3)),
                                            np.full((2, 3), -1), np.asarray(level, float))
            rewards.append(rew.copy())
        return np.array(rewards)

    zero, deep = run(np.zeros((2, 3))), run(np.full((2, 3), 2))
    assert not np.array_equal(zero, deep)
    for bad in (np.full((2, 3), 3.0), np.array([[5, -2, 1e30], [np.nan, 3, -1]])):
        np.testing.assert_array_equal(run(bad), zero)


# ---------------------------------------------------------------------------------------------
# 5. mobility files: longitudes out of range, an FCD element without x


def _lonlat_csv(path, lon0: float) -> str:
    rows = "".join(f"{0.5 * k},v{v},{lon0 + 2e-5 * k + 1e-4 * v!r},{48.0 + 1e-5 * k!r}\n" for k in range(6) for v in range(2))
    path.write_text("time_s,id,lon_deg,lat_deg\n" + rows)
    return str(path)


def test_longitudes_outside_minus_180_to_360_are_refused_by_name(tmp_path, capsys):
    from cli_runner import run_cli
    from wdtnopt.errors import MobilityError
    from wdtnopt.processes.mobility import load_mobility, read_table

    ok = read_table(_lonlat_csv(tmp_path / "ok.csv", 40.0), projection="local", area_m=1000.0)
    wrapped = read_table(_lonlat_csv(tmp_path / "wrapped.csv", 359.9), projection="local", area_m=1000.0)
    assert np.isfinite(ok.x_m).all() and np.isfinite(wrapped.x_m).all()      # in [0, 360): accepted
    for lon0 in (400.0, -180.5):
        with pytest.raises(MobilityError, match=r"bad\.csv line 2: lon_deg: expected WGS 84 degrees in \[-180, 360\]"):
            read_table(_lonlat_csv(tmp_path / "bad.csv", lon0), projection="local", area_m=1000.0)
    with pytest.raises(MobilityError, match=r"origin_lonlat: .*longitude in \[-180, 360\]"):
        read_table(_lonlat_csv(tmp_path / "ok.csv", 40.0), projection="local", origin_lonlat=(400.0, 48.0))
    # a .geo FCD file (x = lon, y = lat): the same rule, naming the element's line
    fcd = tmp_path / "geo.xml"
    fcd.write_text('<fcd-export>\n<timestep time="0">\n<vehicle id="a" x="11.0" y="48.0"/>\n'
                   '<vehicle id="b" x="411.0" y="48.0"/>\n</timestep>\n</fcd-export>\n')
    with pytest.raises(MobilityError, match=r"geo\.xml line 4: lon_deg: expected WGS 84 degrees"):
        load_mobility(fcd, projection="local", origin_lonlat=(11.0, 48.0)).records(1000.0)
    fcd.write_text(fcd.read_text().replace('x="411.0" y="48.0"', 'x="11.0" y="98.0"'))
    with pytest.raises(MobilityError, match=r"geo\.xml line 4: lat_deg: expected WGS 84 degrees in \[-90, 90\]"):
        load_mobility(fcd, projection="local", origin_lonlat=(11.0, 48.0)).records(1000.0)
    # the command line: exit 2, one line
    code, out, err = run_cli(["simulate", "--mobility", _lonlat_csv(tmp_path / "bad.csv", 400.0), "--n-mus", "2",
                              "--n-bss", "2", "--slots", "4"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "lon_deg" in err, err


@pytest.mark.parametrize("missing", ["x", "y", "id"])
def test_an_fcd_element_without_a_coordinate_names_the_attribute(tmp_path, missing):
    from wdtnopt.errors import MobilityError
    from wdtnopt.processes.mobility import read_fcd

    attrs = {"id": 'id="a"', "x": 'x="1.0"', "y": 'y="2.0"'}
    del attrs[missing]
    path = tmp_path / "f.xml"
    path.write_text(f'<fcd-export>\n<timestep time="0">\n<vehicle {" ".join(attrs.values())}/>\n</timestep>\n</fcd-export>\n')
    with pytest.raises(MobilityError, match=rf"f\.xml line 3: <vehicle> has no {missing} attribute$"):
        read_fcd(path)
