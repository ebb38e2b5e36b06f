"""Lyapunov scheduler, myopic oracle, hindsight bound and optimality gaps."""
import numpy as np
import pytest

from wdtnopt import Scenario, gap, generate_trace, hindsight_bound, simulate
from wdtnopt.bounds import _Evaluator
from wdtnopt.errors import WdtnoptError
from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy

TINY = Scenario.paper(n_mus=4, n_bss=2, request_prob=0.6)


def relaxed(trace, t, mu):
    n = trace.n_mus
    return trace.snapshot(t, placement_prev=trace.initial_placement, migrating=np.zeros(n, bool),
                          failure_penalty=mu, migration_penalty=np.zeros(n), allow_migration=True)


def test_dual_function_equals_brute_force():
    from test_solvers_bruteforce import brute_force   # enumeration + SLSQP, independent of the oracle

    tr = generate_trace(TINY, seed=3, slots=6)
    mu = np.array([0.002, 0.01, 0.0005, 0.03])
    point = _Evaluator(tr, "exact", {}, 1, None, False)(mu)
    expected = sum(brute_force(relaxed(tr, t, mu)) for t in range(tr.slots))
    assert point.G == pytest.approx(expected, rel=1e-6)


def test_zero_multipliers_give_the_unconstrained_relaxed_optimum():
    from test_solvers_bruteforce import brute_force

    tr = generate_trace(TINY, seed=1, slots=5)
    hb = hindsight_bound(tr, iters=1, mu0=0.0)
    unconstrained = sum(brute_force(relaxed(tr, t, np.zeros(4))) for t in range(5))
    assert unconstrained == 0.0          # failing is free: the relaxed optimum spends nothing
    assert hb.points[0].G == pytest.approx(unconstrained, abs=1e-15)
    assert hb.energy_per_mu_slot == 0.0


def test_bound_below_every_policy_at_its_failure_ratios():
    tr = generate_trace(TINY, seed=2, slots=40)
    results = [simulate(p, tr) for p in ("static", "follow", MyopicOraclePolicy(), LyapunovPolicy(V=1.0, theta=0.0),
                                         LyapunovPolicy())]
    hb = hindsight_bound(tr, iters=6)
    report = gap(results, tr, bound=hb, iters=4)
    for row in report.rows:
        assert row.bound_per_mu_slot <= row.energy_per_mu_slot * (1 + 1e-9), row
        assert row.gap >= -1e-9
    # the bound is not trivial: it is positive for the reliable policies
    assert max(r.bound_per_mu_slot for r in report.rows) > 0
    # every evaluated multiplier gives a bound; the best one is what is reported
    lb, _ = hb.value_at(hb.eps)
    assert lb == pytest.approx(max(max(h, 0.0) for h in hb.history()) * 4 * 40)


def test_gap_finds_the_best_uniform_multiplier():
    """The gap's dual search reaches (within its 2% bracket) the best bound over a dense grid of
    uniform multipliers, evaluated independently, and for a constant-price policy it is at least
    the bound at that policy's own price (where the relaxed slot problems are the policy's own)."""
    tr = generate_trace(Scenario.paper(n_mus=10, n_bss=2), seed=8, slots=30)
    price = 0.004
    results = [simulate(MyopicOraclePolicy(failure_price=price), tr), simulate(LyapunovPolicy(), tr)]
    report = gap(results, tr, iters=6)
    grid_ev = _Evaluator(tr, "exact", {"gap": 1e-3}, 1, None, False)
    grid = [grid_ev(np.full(tr.n_mus, s)) for s in np.geomspace(5e-4, 0.02, 15)]
    scale = tr.n_mus * tr.slots
    for res, row in zip(results, report.rows):
        target = res.failure_ratio_per_mu * res.requests_per_mu
        best_grid = max(max(p.G - float(p.mu @ target), 0.0) for p in grid) / scale
        assert row.bound_per_mu_slot >= 0.98 * best_grid, (row, best_grid)
        assert row.bound_per_mu_slot <= row.energy_per_mu_slot * (1 + 1e-9)
    own = grid_ev(np.full(tr.n_mus, price))
    at_own_price = (own.G - price * float(results[0].failures_per_mu.sum())) / scale
    assert report.rows[0].bound_per_mu_slot >= 0.98 * at_own_price
    # weak duality at the policy's own price: its energy is at least that value
    assert results[0].energy_per_mu_slot >= at_own_price * (1 - 1e-9)


def test_lyapunov_meets_eps_per_mu_on_a_long_run():
    eps = 0.1
    tr = generate_trace(TINY, seed=4, slots=500)
    pol = LyapunovPolicy(V=1.0, eps=eps, theta=0.0, initial_price=0.0)
    res = simulate(pol, tr)
    R = res.requests_per_mu
    # queue law: failures_n - eps R_n <= Q_n(T) for every MU, exactly
    assert np.all(res.failures_per_mu - eps * R <= pol.Q + 1e-9)
    assert np.all(res.failure_ratio_per_mu <= eps + 0.02), res.failure_ratio_per_mu
    # every snapshot was solved to certified optimality
    assert res.extras["non_optimal_solves"] == 0


def test_larger_V_lowers_energy_and_raises_backlog():
    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=2), seed=5, slots=150)
    small = simulate(LyapunovPolicy(V=0.1, theta=0.0, initial_price=0.0), tr)
    large = simulate(LyapunovPolicy(V=1000.0, theta=0.0, initial_price=0.0), tr)
    assert large.energy_per_mu_slot < small.energy_per_mu_slot
    assert large.extras["mean_backlog"] > small.extras["mean_backlog"]


def test_bound_is_the_same_in_parallel():
    tr = generate_trace(TINY, seed=6, slots=8)
    a = hindsight_bound(tr, iters=3, workers=1, dual="supergradient")
    b = hindsight_bound(tr, iters=3, workers=2, dual="supergradient")
    assert [p.G for p in a.points] == [p.G for p in b.points]
    assert a.energy_per_mu_slot == b.energy_per_mu_slot


def test_bad_arguments():
    tr = generate_trace(TINY, seed=0, slots=2)
    with pytest.raises(ValueError, match="eps"):
        hindsight_bound(tr, eps=1.5)
    with pytest.raises(ValueError, match="iters"):
        hindsight_bound(tr, iters=0)
    with pytest.raises(ValueError, match="V"):
        LyapunovPolicy(V=-1)


def test_placeholder_backlog_makes_failures_selective():
    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=2), seed=7, slots=200)
    plain = LyapunovPolicy(V=100.0, eps=0.1, theta=0.0, initial_price=0.0)
    held = LyapunovPolicy(V=100.0, eps=0.1, theta=0.3, initial_price=0.0)
    a, b = simulate(plain, tr), simulate(held, tr)
    # the queue law still bounds every MU's failures
    for pol, res in ((plain, a), (held, b)):
        assert np.all(res.failures_per_mu - 0.1 * res.requests_per_mu <= pol.Q + 1e-9)
    # a floor under the price: fewer failures, and each failure buys more energy. Reference: a
    # price so high that only impossible requests fail
    ref = simulate(LyapunovPolicy(V=100.0, eps=0.1, theta=100.0, initial_price=0.0), tr)
    assert b.failure_ratio < a.failure_ratio

    def saving_per_failure(res):
        extra = res.failures_per_mu.sum() - ref.failures_per_mu.sum()
        return (ref.energy_per_mu.sum() - res.energy_per_mu.sum()) / extra

    assert saving_per_failure(b) > saving_per_failure(a) > 0
    with pytest.raises(ValueError, match="theta"):
        LyapunovPolicy(theta=-1.0)


def test_oracle_takes_one_price_per_mu():
    tr = generate_trace(TINY, seed=4, slots=30)
    scalar = simulate(MyopicOraclePolicy(failure_price=0.004), tr)
    same = simulate(MyopicOraclePolicy(failure_price=np.full(4, 0.004)), tr)
    assert np.array_equal(scalar.energy_per_mu, same.energy_per_mu)
    assert np.array_equal(scalar.failures_per_mu, same.failures_per_mu)
    # a free failure is always taken (serving costs energy)
    free0 = simulate(MyopicOraclePolicy(failure_price=np.array([0.0, 0.004, 0.004, 0.004])), tr)
    assert free0.requests_per_mu[0] > 0
    assert free0.failures_per_mu[0] == free0.requests_per_mu[0]
    assert free0.energy_per_mu[0] == 0.0
    with pytest.raises(ValueError, match="failure_price"):
        simulate(MyopicOraclePolicy(failure_price=np.full(3, 0.004)), tr)
    with pytest.raises(ValueError, match="failure_price"):
        MyopicOraclePolicy(failure_price=np.array([0.001, -1.0]))


def test_initial_price_sets_the_queues_and_the_finite_horizon_law():
    """Queues start at V p0 - theta; on the whole horizon F_n - eps R_n <= Q_n(T) - Q_n(0) exactly,
    so the MUs whose queues end at or below their start meet eps; started at the team reward's price
    on a loaded trace, every MU of this run does (the textbook start does not)."""
    tr = generate_trace(Scenario.paper(n_mus=40), seed=2, slots=60)
    pol = LyapunovPolicy(eps=0.05)
    res = simulate(pol, tr)
    assert pol.Q0 == pytest.approx(np.full(40, 1000 * tr.scenario.failure_price - 3.0))
    R = res.requests_per_mu
    assert np.all(res.failures_per_mu - 0.05 * R <= pol.Q - pol.Q0 + 1e-9)
    ended_low = pol.Q <= pol.Q0
    assert np.all(res.failure_ratio_per_mu[ended_low & (R > 0)] <= 0.05 + 1e-12)
    assert res.failure_ratio <= 0.05
    textbook = simulate(LyapunovPolicy(eps=0.05, initial_price=0.0), tr)
    assert textbook.failure_ratio > 0.05
    with pytest.raises(ValueError, match="initial_price"):
        LyapunovPolicy(initial_price=-1.0)


def test_per_slot_policies_call_fast_without_the_exact_continuation(monkeypatch):
    # a per-slot policy keeps fast's own decision: fast alone (exact_pairs=0) unless the user asks
    from wdtnopt import solvers

    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=3), seed=4, slots=3)
    real, seen = solvers.solve, []

    def spy(snapshot, method="exact", **options):
        seen.append((method, options))
        return real(snapshot, method=method, **options)

    monkeypatch.setattr(solvers, "solve", spy)
    simulate(MyopicOraclePolicy(method="fast"), tr)
    assert seen and all(m == "fast" and o.get("exact_pairs") == 0 for m, o in seen)
    seen.clear()
    simulate(MyopicOraclePolicy(method="fast", solver_options={"exact_pairs": 50}), tr)
    assert seen and all(o.get("exact_pairs") == 50 for _, o in seen)
    seen.clear()
    simulate(LyapunovPolicy(method="exact"), tr)
    assert seen and all(m == "exact" and "exact_pairs" not in o for m, o in seen)


@pytest.mark.parametrize("dual", ["supergradient", "columns"])
def test_gap_reports_each_policy_at_the_best_of_all_dual_points(dual):
    """A policy's bound does not depend on where it stands in the list: the dual points found while
    targeting later policies also bound the earlier ones, and each row reports the best of them at
    its own failure ratios (the same run listed twice gets the same bound)."""
    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=2, server_mtbf_s=[20.0, 0.0], server_mttr_s=100.0),
                        seed=0, slots=12)
    res_fol, res_orc = simulate("follow", tr), simulate("oracle", tr)
    report = gap([res_orc, res_fol, res_orc], tr, iters=2, dual=dual, workers=1)
    first, _, again = report.rows
    assert first.bound_per_mu_slot == again.bound_per_mu_slot
    hb = hindsight_bound(tr, iters=2, dual=dual, workers=1)
    for res, row in zip([res_orc, res_fol, res_orc], report.rows):
        assert row.bound_per_mu_slot <= row.energy_per_mu_slot * (1 + 1e-9)
        assert row.bound_per_mu_slot >= hb.value_at(res.failure_ratio_per_mu)[0] / (6 * 12) * (1 - 1e-12) - 1e-15


@pytest.mark.parametrize("eps", [[0.1, 0.2], "abc", [[0.1] * 4] * 2])
def test_eps_of_the_wrong_form_is_a_user_error(eps):
    """eps of another length than N (or not numbers) is named in a WdtnoptError, not a numpy error."""
    from wdtnopt.errors import WdtnoptError
    tr = generate_trace(TINY, seed=0, slots=3)
    with pytest.raises(WdtnoptError, match="eps: expected a number or 4 numbers"):
        hindsight_bound(tr, eps=eps, dual="columns")


def test_frame_placement_snapshot_is_the_frames_expected_load():
    sc = Scenario.paper(n_mus=6, n_bss=2)
    tr = generate_trace(sc, seed=0, slots=10)
    s = tr.snapshot(0, migrating=np.array([True, False, False, False, False, False]))
    plan = LyapunovPolicy()
    plan.reset(tr)
    p = plan.placement_snapshot(s)
    assert plan.placement == "frame"
    np.testing.assert_array_equal(p.request, [False, True, True, True, True, True])   # every available DT
    np.testing.assert_allclose(p.cpu_hz, s.cpu_hz / sc.request_prob)
    np.testing.assert_allclose(p.migration_penalty, s.migration_penalty / sc.frame_slots)
    for pol in (LyapunovPolicy(placement="slot"), MyopicOraclePolicy()):
        pol.reset(tr)
        assert pol.placement_snapshot(s) is s
    one = generate_trace(Scenario.paper(n_mus=6, n_bss=2, frame_slots=1), seed=0, slots=4)
    plan.reset(one)
    s1 = one.snapshot(0)
    assert plan.placement_snapshot(s1) is s1     # a frame of one slot is the slot
    with pytest.raises(WdtnoptError, match="placement"):
        LyapunovPolicy(placement="frames")


def test_frame_placement_spreads_dts_that_a_one_slot_placement_leaves_piled_up():
    # every DT on server 0, room for two busy DTs per server; one MU requests at the frame start
    sc = Scenario.paper(n_mus=6, n_bss=2)
    tr = generate_trace(sc, seed=0, slots=10)
    s = tr.snapshot(0, placement_prev=np.zeros(6, np.int64), failure_penalty=np.full(6, 0.01))
    need = (s.cycles / np.maximum(s.deadline - 0.05, 1e-3)).max()
    s = s.replace(request=np.array([True, False, False, False, False, False]),
                  cpu_hz=np.full(2, 2.0 * need), storage_bits=np.full(2, s.dt_size_bits.sum()))
    slot, frame = LyapunovPolicy(placement="slot"), LyapunovPolicy()
    for pol in (slot, frame):
        pol.reset(tr)
    x_slot = slot.place(s, None)
    x_frame = frame.place(s, None)
    # one slot: the lone request fits on server 0, a move costs its penalty: nothing moves
    assert (x_slot == 0).all()
    # the frame's load (six DTs at twice the CPU) does not fit on one server: some DTs move
    assert (x_frame == 1).any() and (x_frame == 0).any()


def test_frame_cpu_share_plans_on_a_share_of_each_server():
    # the planning snapshot: servers of share * cpu_hz / lam (hand-computed), the default share exactly the fluid load
    sc = Scenario.paper(n_mus=6, n_bss=2)
    tr = generate_trace(sc, seed=0, slots=10)
    s = tr.snapshot(0)
    default, headroom = LyapunovPolicy(), LyapunovPolicy(frame_cpu_share=0.8)
    for pol in (default, headroom):
        pol.reset(tr)
    np.testing.assert_array_equal(default.placement_snapshot(s).cpu_hz, np.asarray(s.cpu_hz, float) / sc.request_prob)
    np.testing.assert_allclose(headroom.placement_snapshot(s).cpu_hz, 0.8 * np.asarray(s.cpu_hz) / 0.5, rtol=1e-15)
    slot = LyapunovPolicy(placement="slot", frame_cpu_share=0.8)
    slot.reset(tr)
    assert slot.placement_snapshot(s) is s          # unused by the one-slot rule
    for bad in (0, 0.0, -0.5, 1.5, True, "0.8", float("nan")):
        with pytest.raises(WdtnoptError, match="frame_cpu_share"):
            LyapunovPolicy(frame_cpu_share=bad)


def test_frame_cpu_share_moves_dts_off_a_server_the_fluid_load_fits_on():
    # six DTs on server 0; server 0 holds the frame's fluid load (7x the CPU the most demanding DT needs to
    # finish 50 ms before its deadline), but not the CPU every DT needs at the very least (cycles / deadline,
    # transmission in no time) once only `share` of it is planned with: then some DT must move
    sc = Scenario.paper(n_mus=6, n_bss=2)
    tr = generate_trace(sc, seed=0, slots=10)
    s = tr.snapshot(0, placement_prev=np.zeros(6, np.int64))
    lam = sc.request_prob
    need = (s.cycles / np.maximum(s.deadline - 0.05, 1e-3)).max()
    least = float((s.cycles / s.deadline).sum())          # no placement on one server finishes with less
    s = s.replace(cpu_hz=np.full(2, lam * 7.0 * need), storage_bits=np.full(2, s.dt_size_bits.sum()),
                  failure_penalty=np.full(6, 10.0), migration_penalty=np.full(6, 1.0))
    share = 0.9 * least / (7.0 * need)
    assert 0 < share < 1
    fluid, headroom = LyapunovPolicy(), LyapunovPolicy(frame_cpu_share=share)
    for pol in (fluid, headroom):
        pol.reset(tr)
    # the fluid plan fits on server 0 and a move (0.1 J for the frame) costs more than any energy it saves
    assert (fluid.place(s, None) == 0).all()
    x = headroom.place(s, None)
    assert (x == 1).any()
    # what stays on server 0 fits the planned CPU at the least (a move costs 0.1 J, a failure 10 J)
    stay = x == 0
    assert float((s.cycles / s.deadline)[stay].sum()) <= share * 7.0 * need * (1 + 1e-9)


def test_bench_gap_split_smoke(tmp_path):
    """benchmarks/bench_gap_split.py at its smoke preset: the parts add up to each policy's gap, none is
    negative, and a placement held over the first frame costs at least free re-placement."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "split.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_gap_split.py"), "--preset", "smoke", "--frame-check",
                    "--json", str(out)], check=True, capture_output=True, cwd=root)
    res = json.loads(out.read_text())
    assert [r["policy"] for r in res["split"]] == ["oracle", "lyapunov", "lyapunov-slot"]
    for r in res["split"]:
        parts = r["a_slot_relaxation"] + r["b_placement"] + r["c_prices"] + r["rest"]
        assert r["gap"] * r["bound"] == pytest.approx(parts, rel=1e-6, abs=1e-12)
        tol = 1e-4 * r["bound"]      # the slots' exact solves are asked for a 1e-4 gap
        assert min(r["a_slot_relaxation"], r["b_placement"], r["c_prices"], r["rest"]) >= -tol
    fc = res["frame_check"]
    assert fc["held_lower"] <= fc["held_upper"] * (1 + 1e-9)
    assert fc["free_replacement"] <= fc["held_upper"] * (1 + 1e-4)


@pytest.mark.parametrize("bad", [["--slots", "0"], ["--n-mus", "0"], ["--iters", "0"], ["--policies"],
                                 ["--frame-check", "--time-limit", "-1"],
                                 ["--slots", "0", "--policies", "lyapunov-slot", "lyapunov one-slot placement"]])
def test_bench_gap_split_refuses_bad_input_in_one_line(monkeypatch, capsys, bad):
    """Bad input: exit 2 and one line naming it, before any solve (it was a traceback; ``--policies``
    with no name ran the whole bound for nothing, or an IndexError with ``--frame-check``)."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_gap_split

    monkeypatch.setattr(sys, "argv", ["bench_gap_split.py", "--preset", "smoke", *bad])
    with pytest.raises(SystemExit) as e:
        bench_gap_split.main()
    err = capsys.readouterr()
    assert e.value.code == 2 and err.out == "" and len(err.err.strip().splitlines()) == 1, err.err
    named = {"--slots": "slots", "--n-mus": "n_mus", "--iters": "--iters", "--policies": "--policies",
             "--frame-check": "--time-limit"}[bad[0]]
    assert err.err.startswith(f"bench_gap_split.py: error: {named}") or f": {named}:" in err.err, err.err


def test_bench_lyapunov_load_on_chosen_seeds_and_policies(tmp_path):
    """benchmarks/bench_lyapunov_load.py with --seeds and --policies: one row per (N, seed, named
    policy), each the figures of simulating that policy on that trace directly, and a gap that is
    the one ``gap`` reports against the same column-generation bound."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_lyapunov_load.py"), "--preset", "smoke",
                    "--n-grid", "6", "--gap-n", "6", "--iters", "3", "--seeds", "3", "--policies", "oracle", "lyapunov",
                    "--out", str(tmp_path)], check=True, capture_output=True, cwd=root)
    rows = list(csv.DictReader((tmp_path / "lyapunov_load.csv").open()))
    assert [(r["n_mus"], r["seed"], r["policy"]) for r in rows] == [("6", "3", "lyapunov"), ("6", "3", "oracle")]
    tr = generate_trace(Scenario.paper(n_mus=6), seed=3, slots=20)
    runs = [simulate(LyapunovPolicy(), tr), simulate(MyopicOraclePolicy(), tr)]
    rep = gap(runs, tr, bound=hindsight_bound(tr, iters=3), iters=3)
    for r, run, g in zip(rows, runs, rep.rows):
        assert float(r["failure_ratio"]) == run.failure_ratio
        assert float(r["energy_per_mu_slot_j"]) == run.energy_per_mu_slot
        assert float(r["gap_hindsight"]) == pytest.approx(g.gap, rel=1e-9, abs=1e-12)
    md = (tmp_path / "lyapunov_load.md").read_text()
    assert "| 6 | lyapunov |" in md and "| 6 | oracle |" in md and "one-slot" not in md


def _run_digest(policies, trace):
    import hashlib

    h = hashlib.sha256()
    for p in policies:
        r = simulate(p, trace)
        for a in (r.energy_per_mu, r.failures_per_mu, r.placement, r.table["objective"]):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def test_sample_placement_leaves_the_other_placements_bit_identical_and_repeats_itself():
    # digest computed with the code before placement="sample" existed (main at 278e8c9): the default
    # (frame plan), the one-slot rule and a CPU share of 0.8 (which moves a DT on this trace)
    tr = generate_trace(Scenario.paper(n_mus=12, n_bss=3, cpu_hz=4e9), seed=5, slots=30)
    a, b = simulate(LyapunovPolicy(placement="sample"), tr), simulate(LyapunovPolicy(placement="sample"), tr)
    np.testing.assert_array_equal(a.energy_per_mu, b.energy_per_mu)
    np.testing.assert_array_equal(a.placement, b.placement)
    assert a.extras["sample_choices"] == b.extras["sample_choices"] and len(a.extras["sample_choices"]) == 3
    assert "sample_choices" not in simulate(LyapunovPolicy(), tr).extras
    # the others are what they were, also right after "sample" runs (its draws come from its own stream)
    assert _run_digest((LyapunovPolicy(), LyapunovPolicy(placement="slot"), LyapunovPolicy(frame_cpu_share=0.8)),
                       tr) == "2e460811da71afd0"


def test_sample_slots_follow_the_traces_laws():
    # requests only among available DTs, sizes in [rho d_min, rho d_max], and the band of each BS split
    # equally among its requesting MUs (a silent MU quoted the share it would get by joining): W / count
    sc = Scenario.paper(n_mus=12, n_bss=3)
    tr = generate_trace(sc, seed=1, slots=10)
    mig = np.zeros(12, bool)
    mig[[0, 5]] = True
    s = tr.snapshot(0, migrating=mig)
    pol = LyapunovPolicy(placement="sample", placement_samples=50)
    pol.reset(tr)
    draws = pol.sample_slots(s)
    assert len(draws) == 50
    reqs = np.array([d.request for d in draws])
    assert not reqs[:, mig].any() and 0.35 < reqs[:, ~mig].mean() < 0.65     # lam = 0.5 over 500 draws
    for d in draws:
        assert not d.allow_migration
        lo, hi = sc.compression_ratio * sc.data_bits_min, sc.compression_ratio * sc.data_bits_max
        assert (d.data_bits >= lo).all() and (d.data_bits <= hi).all()
        count = np.array([(d.request & (d.assoc == d.assoc[n])).sum() + (not d.request[n]) for n in range(12)])
        np.testing.assert_allclose(d.bandwidth, sc.bandwidth_hz / count, rtol=1e-12)
        np.testing.assert_array_equal(d.gain, s.gain)
        np.testing.assert_array_equal(d.failure_penalty, s.failure_penalty)


def test_sample_placement_keeps_the_candidate_of_least_brute_force_sample_average():
    # the choice is the argmin over {stay, frame plans} of (1/S) sum_s J_s(x) + moved penalties lam / K, with
    # J_s computed here by brute force (enumeration + SLSQP) on the same drawn slots
    from test_solvers_bruteforce import brute_force

    sc = Scenario.paper(n_mus=4, n_bss=2, request_prob=0.6)
    tr = generate_trace(sc, seed=2, slots=10)
    s = tr.snapshot(0, placement_prev=np.zeros(4, np.int64), failure_penalty=np.full(4, 0.01))
    need = (s.cycles / np.maximum(s.deadline - 0.05, 1e-3)).max()
    s = s.replace(cpu_hz=np.full(2, 2.0 * need), storage_bits=np.full(2, s.dt_size_bits.sum()),
                  migration_penalty=np.full(4, 2e-4))
    for shares in ((1.0, 0.8), (1.0,)):
        pol = LyapunovPolicy(placement="sample", placement_samples=3, sample_shares=shares)
        pol.reset(tr)
        import copy
        rng = copy.deepcopy(pol._sample_rng)
        x = pol.sample_placement(s)
        pol._sample_rng = rng
        draws = pol.sample_slots(s)
        cands = [s.placement_prev] + [pol._solve(pol._frame_snapshot(s, v)).placement for v in shares]
        costs = [np.mean([brute_force(d.replace(placement_prev=c)) for d in draws])
                 + s.migration_penalty[c != s.placement_prev].sum() * sc.request_prob / sc.frame_slots for c in cands]
        chosen = pol.sample_choices[-1]
        np.testing.assert_array_equal(x, cands[chosen])
        assert costs[chosen] <= min(costs) * (1 + 1e-4) + 1e-12
    # a move dearer than any energy it could save: nothing moves
    pol = LyapunovPolicy(placement="sample", placement_samples=2)
    pol.reset(tr)
    np.testing.assert_array_equal(pol.sample_placement(s.replace(migration_penalty=np.full(4, 1e3))), s.placement_prev)


def test_sample_placement_options_are_checked():
    for bad in (0, -1, 1.5, True, "4"):
        with pytest.raises(WdtnoptError, match="placement_samples"):
            LyapunovPolicy(placement="sample", placement_samples=bad)
    for bad in ((), [0.0], [1.0, 1.0], [1.2], "0.8", [True], 0.8):
        with pytest.raises(WdtnoptError, match="sample_shares"):
            LyapunovPolicy(placement="sample", sample_shares=bad)
    with pytest.raises(WdtnoptError, match="frame_cpu_share"):
        LyapunovPolicy(placement="sample", frame_cpu_share=0.8)
    from wdtnopt.policies.failure_aware import FailureAwareLyapunovPolicy
    with pytest.raises(WdtnoptError, match="placement"):
        FailureAwareLyapunovPolicy(placement="sample")
    one = generate_trace(Scenario.paper(n_mus=6, n_bss=2, frame_slots=1), seed=0, slots=4)
    a, b = simulate(LyapunovPolicy(placement="sample"), one), simulate(LyapunovPolicy(placement="slot"), one)
    np.testing.assert_array_equal(a.energy_per_mu, b.energy_per_mu)   # a frame of one slot is the slot


def test_bench_lyapunov_seeds_smoke(tmp_path):
    """benchmarks/bench_lyapunov_seeds.py at its smoke preset: each JSON line holds the figures of
    simulating that policy on that trace directly, its gap the one ``gap`` reports against a fresh
    column bound, and the hot-cell load the mean over slots of the largest requested work
    ``sum cycles / (cpu_hz deadline)`` at one serving BS, counted here MU by MU."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "runs.jsonl"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_lyapunov_seeds.py"), "--preset", "smoke",
                           "--policies", "default", "sample", "--jsonl", str(out)], check=True, capture_output=True,
                          cwd=root, text=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["policy"]) for r in rows] == [(0, "default"), (0, "sample")]
    assert "| sample | 1 |" in proc.stdout
    tr = generate_trace(Scenario.paper(n_mus=8, n_bss=2), seed=0, slots=20)
    hot = 0.0
    for t in range(tr.slots):
        work = np.zeros(tr.n_bss)
        for n in range(tr.n_mus):
            if tr.request[t, n]:
                work[tr.assoc[t, n]] += tr.data_bits[t, n] * tr.cycles_per_bit[n] / tr.deadline[n] / tr.cpu_hz[tr.assoc[t, n]]
        hot += work.max() / tr.slots
    for r, pol in zip(rows, (LyapunovPolicy(), LyapunovPolicy(placement="sample"))):
        run = simulate(pol, tr)
        assert r["failure_ratio"] == run.failure_ratio and r["energy_mj"] == run.energy_per_mu_slot * 1e3
        assert r["moves"] == run.migrations
        g = gap([run], tr, bound=hindsight_bound(tr, iters=3), iters=3).rows[0].gap
        assert r["gap"] == pytest.approx(g, rel=1e-9, abs=1e-12)
        assert r["hot_cell_load"] == pytest.approx(hot, rel=1e-12)
    assert rows[1]["sample_choices"] is not None and rows[0]["sample_choices"] is None
