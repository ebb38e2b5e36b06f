"""A newcomer's pass (8): bugs found from the outside, each checked against an independent reference
(a plain loop over the records, a closed form, a brute force), failing before its fix."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario
from wdtnopt.processes.mobility import Records, clean


def test_a_100_hz_track_is_thinned_to_the_duplicate_tolerance_not_collapsed_onto_its_first_record():
    # two vehicles recorded every 5 ms for 4 s, moving in a straight line at 2 m/s: every record is
    # within the 10 ms tolerance of the one before, but only half of them of the last KEPT one
    # (docs/mobility.md, "Cleaning", rule 4); the cleaner used to chain the tolerance and keep only
    # the first record of each vehicle, so the track covered t = 0..0 s and nothing could be replayed
    dt, steps = 0.005, 801
    t = np.round(np.arange(steps) * dt, 9)
    rows = [(float(tk), f"v{i}", 100.0 + 2.0 * tk + 50 * i, 300.0 + 10 * i) for tk in t for i in range(2)]
    tt, vid, x, y = (list(c) for c in zip(*rows))
    sc = Scenario.paper(n_mus=2)
    got = clean(Records.from_arrays(tt, vid, x, y), sc, slots=8)

    # the reference: a loop keeping a record only past duplicate_tol_s of the last kept one
    tol = 0.01
    kept = [0.0]
    for tk in t[1:]:
        if tk - kept[-1] > tol:
            kept.append(float(tk))
    assert got.report.counts["near_duplicate"] == 2 * (steps - len(kept))
    slot_t = np.arange(8) * sc.slot_s
    want = np.stack([np.stack([100.0 + 2.0 * slot_t + 50 * i, np.full(8, 300.0 + 10 * i)], -1) for i in range(2)], 1)
    np.testing.assert_allclose(got.positions, want, rtol=0, atol=1e-9)


def test_a_sixg_preset_file_overrides_the_scenario_table_base_and_names_a_bad_field(tmp_path, capsys):
    # sixg's presets hold a [base] table of scenario overrides; a preset file's `base` was read
    # only as the NAME of the preset to start from, so a [base] table ended in a TypeError
    # traceback (an unhashable dict looked up among the preset names)
    from cli_runner import run_cli

    from wdtnopt.benchmarks.suites import load_config

    good = tmp_path / "good.toml"
    good.write_text("seeds = [1]\n[base]\nn_mus = 3\nn_bss = 2\n")
    cfg = load_config("sixg", good)
    assert cfg["base"] == {"n_mus": 3, "n_bss": 2} and cfg["seeds"] == [1]
    assert cfg["carrier_grid"] == load_config("sixg", "default")["carrier_grid"]   # the rest from default
    named = tmp_path / "named.toml"
    named.write_text('base = "smoke"\nseeds = [2]\n')
    assert load_config("sixg", named)["base"] == load_config("sixg", "smoke")["base"]
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = [1]\n[base]\nn_mus = 0\n")
    code, _, err = run_cli(["bench", "sixg", "--preset", str(bad), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "n_mus" in err
    assert not (tmp_path / "out").exists()      # refused before any task ran
    # `preset` is the loader's record of what was read: a file giving it (ignored before) is named
    own = tmp_path / "own.toml"
    own.write_text('preset = "smoke"\n')
    code, _, err = run_cli(["bench", "sixg", "--preset", str(own), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "preset" in err and 'base = "smoke"' in err


def test_a_resilience_preset_of_no_seeds_renders_like_the_other_suites(tmp_path):
    # paper, mobility, scaling and sixg render a suite of no tasks (empty tables); resilience ended
    # in matplotlib's "Data cannot be log-scaled" traceback on its empty MTBF/MTTR panels
    from wdtnopt.benchmarks.suites import run_suite

    preset = tmp_path / "none.toml"
    preset.write_text('base = "smoke"\nseeds = []\n')
    run, files = run_suite("resilience", preset, tmp_path / "out", workers=1, progress=False)
    assert run.complete and not run.records
    assert sorted(f.name for f in files) == ["fig_gap.png", "fig_mtbf.png", "fig_mttr.png", "report.md", "resilience.csv"]
    assert (tmp_path / "out" / "resilience.csv").read_text().count("\n") == 1     # the header only


@pytest.mark.parametrize("n", [1, 2, 3])
def test_fast_with_a_penalty_far_above_the_energy_of_data_of_1e_200_bits_warns_nothing_and_matches_the_brute_force(n):
    # the CPU price bracket of fast's admission, penalty / f_min, overflowed to inf (1e300 J over
    # the f_min of data of 1e-200 bits): "overflow encountered in divide" and 24 "invalid value"
    # warnings per solve (the bisection between inf and inf), though the answer was right
    import warnings

    from test_solver_properties import brute_force

    from wdtnopt import evaluate, solve
    from wdtnopt.testing import tiny_snapshot

    s = tiny_snapshot(27, N=n, M=1, kind="plain").replace(
        data_bits=np.full(n, 1e-200), failure_penalty=np.full(n, 1e300), cpu_hz=[1e36],
        request=np.ones(n, bool), migrating=np.zeros(n, bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(s, method="fast")
    optimum = brute_force(s)
    assert sol.status == "optimal" and not evaluate(s, sol).violations
    assert sol.bound <= optimum * (1 + 1e-9) and optimum <= sol.objective <= optimum * (1 + 1e-2)


@pytest.mark.parametrize("method", ["exact", "fast", "relaxation", "pyomo"])
def test_a_cpu_share_below_the_smallest_float_warns_nothing_and_matches_the_brute_force(method):
    # 1e-129 cycles on a 1e198 Hz server: c / F underflowed to 0 and log(c / F) to -inf
    # ("divide by zero encountered in log" from the pair pricing every method shares, the
    # allocation's group start and exact's share ends), though every answer was right
    import warnings

    from test_solver_properties import brute_force

    from wdtnopt import evaluate, solve
    from wdtnopt.solvers import SolverError
    from wdtnopt.testing import tiny_snapshot

    s = tiny_snapshot(5, N=2, M=1, kind="plain").replace(
        cycles_per_bit=np.full(2, 1.8e-135), cpu_hz=[1.7e198], bandwidth=np.full(2, 1e15),
        request=np.ones(2, bool), migrating=np.zeros(2, bool))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = solve(s, method=method, time_limit=30)
    except SolverError as exc:   # only a missing back end
        if "pip install" in str(exc):
            pytest.skip(str(exc))
        raise
    optimum = brute_force(s)
    # SCIP's own bound is lost at this scale: pyomo says so (feasible, its recomputed gap) honestly
    assert sol.status in (("optimal", "feasible") if method == "pyomo" else ("optimal",))
    assert not evaluate(s, sol).violations
    assert sol.bound <= optimum * (1 + 1e-9) and optimum * (1 - 1e-9) <= sol.objective <= optimum * (1 + 1e-2)


def test_a_decision_without_a_level_on_a_menu_snapshot_is_level_0_and_never_below_the_bound():
    # Decision's rule: no level = level 0. evaluate read it as a raw send of data_bits with no
    # extraction, an option on no menu: on a menu whose every level extracts, the raw optimum's
    # decision (no level) was accepted at a tenth of the certified bound of the menu snapshot
    from wdtnopt import evaluate, solve
    from wdtnopt.testing import tiny_snapshot, with_menu

    s = with_menu(tiny_snapshot(3, N=3, M=2, kind="plain"), 1, levels=2)
    n = s.n_mus
    s = s.replace(level_ratio=np.tile([0.9, 0.5], (n, 1)), level_cycles_per_bit=np.tile([2000.0, 4000.0], (n, 1)),
                  mu_kappa=np.full(n, 1e-26), request=np.ones(n, bool), migrating=np.zeros(n, bool))
    menu = solve(s, method="exact")
    raw = solve(s.replace(level_ratio=None, level_cycles_per_bit=None, level_accuracy=None, mu_cpu_hz=None,
                          mu_kappa=None, min_accuracy=None), method="exact")
    decision = {"placement": raw.placement, "served": raw.served, "tx_time": raw.tx_time, "cpu_hz": raw.cpu_hz}
    ev = evaluate(s, decision)
    at_0 = evaluate(s, {**decision, "level": np.zeros(n, int)})
    assert ev.objective == at_0.objective and ev.violations == at_0.violations
    assert ev.violations or ev.objective >= menu.bound
    assert raw.objective < 0.5 * menu.bound      # the raw send is far cheaper: the case that mattered


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_an_mu_of_1e_185_cycles_beside_a_capped_one_is_allocated_and_both_served_at_the_brute_force_optimum(seed):
    # the CPU price's Newton step divides by the free MUs' share of the CPU; at 1e-185 cycles it is
    # ~1e-138 and the step went to a log-price of -1e139, then NaN: the pair could not be allocated,
    # one MU failed, and every method ended "feasible" up to 11 times the optimum (seed 0)
    import warnings

    from test_solver_properties import brute_force

    from wdtnopt import evaluate, solve
    from wdtnopt.testing import tiny_snapshot

    s = tiny_snapshot(seed, N=2, M=1, kind="plain").replace(
        cycles_per_bit=[4.66e-191, 0.28], request=[True, True], migrating=[False, False])
    optimum = brute_force(s)
    for method in ("exact", "fast", "relaxation"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = solve(s, method=method)
        assert sol.status == "optimal" and not evaluate(s, sol).violations and sol.served.all(), method
        assert sol.bound <= optimum * (1 + 1e-9) and optimum * (1 - 1e-9) <= sol.objective <= optimum * (1 + 1e-6)


def test_relaxation_on_a_server_of_1e_minus_50_hz_with_penalties_of_1e300_warns_nothing():
    # the CPU dual over a 1e-50 Hz server overflows to inf (then priced 0, as the code meant): the
    # errstate around it silenced divide and invalid but not overflow
    import warnings

    from test_solver_properties import brute_force

    from wdtnopt import solve
    from wdtnopt.testing import tiny_snapshot

    s = tiny_snapshot(0, N=2, M=1, kind="plain").replace(
        cpu_hz=[1e-50], failure_penalty=[1e300, 1e300], migration_penalty=[1e300, 1e300],
        request=[True, True], migrating=[False, False])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve(s, method="relaxation")
    optimum = brute_force(s)      # 2e300: both fail (no CPU), nobody moves
    assert sol.status == "optimal" and sol.objective == optimum and sol.bound <= optimum


def test_a_gain_of_1e50_over_noise_of_1e_minus_300_without_requests_warns_nothing():
    # p g / N0 itself overflows (the SNR did already): the check that picks the SNR's log form
    # computed it outside the errstate, so every method warned "overflow encountered in divide"
    # on a snapshot whose optimum is 0 (nobody requests)
    import warnings

    from wdtnopt import solve
    from wdtnopt.solvers import SolverError
    from wdtnopt.testing import tiny_snapshot

    s = tiny_snapshot(1, N=2, M=2, kind="plain").replace(
        gain=np.full((2, 2), 1e50), noise_psd=np.full(2, 1e-300), request=[False, False], migrating=[False, False])
    for method in ("exact", "fast", "relaxation", "pyomo"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                sol = solve(s, method=method)
        except SolverError as exc:   # only a missing back end
            if "pip install" in str(exc):
                continue
            raise
        assert sol.status == "optimal" and sol.objective == 0.0 == sol.bound, method


def test_a_csv_header_naming_a_column_twice_is_named_not_read_from_the_first(tmp_path):
    # `time_s,id,x_m,y_m,x_m` (a spreadsheet's copied column) silently took the first x_m
    from wdtnopt.errors import MobilityError
    from wdtnopt.processes.mobility import read_table

    rows = "".join(f"{k * 0.5},v{i},{100 + k},{200 + i},{900 - k}\n" for k in range(4) for i in range(2))
    path = tmp_path / "twice.csv"
    path.write_text("time_s,id,x_m,y_m,x_m\n" + rows)
    with pytest.raises(MobilityError, match=r"twice.csv line 1: .*names x_m more than once"):
        read_table(path)
    path.write_text("time_s,id,x_m,y_m,speed\n" + rows)     # another column: read as before
    assert len(read_table(path)) == 8


def test_an_fcd_vehicle_with_an_empty_id_is_named_as_a_table_cell_is(tmp_path):
    # a CSV's empty id cell is an error naming its line; an FCD `id=""` made one vehicle named ""
    from wdtnopt.errors import MobilityError
    from wdtnopt.processes.mobility import read_fcd

    steps = "".join(f'<timestep time="{k * 0.5}"><vehicle id="a" x="{100 + k}" y="100"/>'
                    f'<vehicle id="b" x="200" y="{200 + k}"/></timestep>' for k in range(4))
    path = tmp_path / "fcd.xml"
    path.write_text(f'<?xml version="1.0"?>\n<fcd-export>{steps}\n<timestep time="2.0"><vehicle id="" x="1" y="2"/>'
                    "</timestep></fcd-export>\n")
    with pytest.raises(MobilityError, match=r"fcd.xml line 3: <vehicle> attribute id: expected a vehicle id"):
        read_fcd(path)
    path.write_text(f'<?xml version="1.0"?>\n<fcd-export>{steps}</fcd-export>\n')
    assert len(read_fcd(path)) == 8


def test_snapshot_select_names_masks_and_indices_it_cannot_take():
    # a fraction was truncated (1.5 -> MU 1), -1 read as the last MU, a short mask selected from
    # its first MUs, and an index past N was a bare IndexError
    from wdtnopt.errors import SnapshotError
    from wdtnopt.testing import tiny_snapshot, with_menu

    s = with_menu(tiny_snapshot(2, N=4, M=2), 1)
    for bad in ([5], [-1], [1.5], [True, False], "ab", []):
        with pytest.raises(SnapshotError, match="mus: "):
            s.select(bad)
    # the forms that are selections: indices (repeats allowed), whole floats, a full mask
    by_index, by_mask = s.select([0, 2]), s.select([True, False, True, False])
    for t in (by_index, by_mask, s.select(np.array([0.0, 2.0]))):
        assert t.n_mus == 2 and np.array_equal(t.gain, s.gain[[0, 2]])
        assert np.array_equal(t.level_ratio, s.level_ratio[[0, 2]])
    assert s.select([3, 3]).n_mus == 2


def test_trace_snapshot_takes_one_number_for_a_penalty_on_every_path_and_names_what_is_wrong():
    # "failure_penalty : float or array_like": one number worked only when every other argument
    # took the fast path; with migrating as 0/1 integers it was "expected shape [N], got []", a
    # wrong one (inf, -1) was named as a shape error, and a list of the wrong length a bare ValueError
    from wdtnopt import Scenario, generate_trace
    from wdtnopt.errors import SnapshotError

    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=4)
    fast = tr.snapshot(1, failure_penalty=0.01, migrating=np.array([True, False, False]))
    slow = tr.snapshot(1, failure_penalty=0.01, migrating=[1, 0, 0])
    for s in (fast, slow):
        assert np.array_equal(s.failure_penalty, np.full(3, 0.01)) and s.migrating.tolist() == [True, False, False]
    assert np.array_equal(slow.migration_penalty, fast.migration_penalty)
    assert np.array_equal(tr.snapshot(1, migrating=[1, 0, 0], migration_penalty=0.002).migration_penalty, np.full(3, 0.002))
    for kw, says in ((dict(failure_penalty=-1.0), "failure_penalty: must be >= 0"),
                     (dict(migration_penalty=np.inf), "migration_penalty: must be finite"),
                     (dict(failure_penalty=[1.0, 2.0]), r"failure_penalty: expected shape \[N\] = \[3\], got \[2\]")):
        with pytest.raises(SnapshotError, match=says):
            tr.snapshot(1, **kw)


@pytest.mark.parametrize("eps", [True, [True, 0.1, 0.1], np.array([False, True, True])])
def test_a_failure_target_given_as_booleans_is_named_not_read_as_0_or_1(eps):
    # hindsight_bound(trace, eps=True) was eps = 1: every request may fail, a bound of 0 J
    from wdtnopt import Scenario, WdtnoptError, generate_trace, hindsight_bound

    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=3)
    with pytest.raises(WdtnoptError, match="eps: expected a number or 3 numbers in"):
        hindsight_bound(tr, eps=eps)
    assert hindsight_bound(tr, eps=[1.0, 0.1, 0.1]).energy_per_mu_slot > 0    # the numbers themselves work


def test_trace_snapshot_names_a_hold_down_servers_that_is_not_a_bool():
    # hold_down_servers="no" was truthy: down servers held, the opposite of what was asked
    from wdtnopt import Scenario, WdtnoptError, generate_trace

    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2, server_mtbf_s=1.0, server_mttr_s=1.0), seed=0, slots=6)
    with pytest.raises(WdtnoptError, match="hold_down_servers: expected true or false, got 'no'"):
        tr.snapshot(1, hold_down_servers="no")
    down = next(t for t in range(6) if not tr.server_up[t].all())     # a slot with a server down
    held, free = tr.snapshot(down), tr.snapshot(down, hold_down_servers=np.False_)
    assert not held.server_up.all() and free.server_up.all()
