"""Review leftovers of the thirteenth round: preset files of the solvers suite, bools refused by the
Lyapunov scheduler, counted nouns in messages, one check of the sampled placement."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt.errors import WdtnoptError


# -- a preset file sets the solvers suite's optional keys ------------------------------------------
def test_a_solvers_preset_file_on_smoke_sets_snapshots_sizes_fast_gap_and_time_limit(tmp_path):
    from wdtnopt.benchmarks.suites import load_config
    from wdtnopt.benchmarks.suites import solvers

    f = tmp_path / "mine.toml"
    f.write_text('base = "smoke"\nsnapshots = ["loaded"]\nsizes = ["8x2", "5x3"]\nfast_gap = 0.01\ntime_limit = 5\n')
    cfg = load_config("solvers", f)     # before: unknown key(s) fast_gap, sizes, snapshots, time_limit
    solvers.check(cfg)
    assert cfg["preset"] == "smoke+mine.toml"
    meths = solvers.available_methods(cfg)
    assert "exact" in meths
    # by hand: smoke's gap 1e-6 (fast: the file's 0.01), instances 1, repeats 1; pyomo on instance 0
    # of sizes N <= scip_max_n = 8, capped at scip_cap = 20 s; exact and fast at the file's 5 s
    want = []
    for n, m in ((8, 2), (5, 3)):
        for meth in meths:
            c = {"suite": "solvers", "kind": "solve", "n_mus": n, "n_bss": m, "instance": 0, "method": meth,
                 "gap": 0.01 if meth == "fast" else 1e-6, "repeats": 1, "snapshots": "loaded",
                 "time_limit": 20.0 if meth == "pyomo" else 5.0}
            want.append(c)
    want.append({"suite": "solvers", "kind": "allocation", "n_mus": 60, "repeats": 1})
    assert [t.config for t in solvers.tasks(cfg)] == want
    # without them: the smoke grid of paper snapshots, no time limit, fast at gap
    plain = [t.config for t in solvers.tasks(load_config("solvers", "smoke"))]
    assert {(c["n_mus"], c["n_bss"]) for c in plain if c["kind"] == "solve"} == {(5, 3), (8, 3)}
    assert all("snapshots" not in c for c in plain)
    assert all("time_limit" not in c for c in plain if c.get("method") != "pyomo")
    assert all(c["gap"] == 1e-6 for c in plain if c["kind"] == "solve")


@pytest.mark.parametrize("line,words", [
    ('fast_gap = "0.01"', ["fast_gap", "expected a number", "'0.01'"]),
    ("fast_gap = -0.5", ["fast_gap", ">= 0", "-0.5"]),
    ("time_limit = true", ["time_limit", "expected a number", "True"]),
    ("time_limit = inf", ["time_limit", ">= 0", "inf"]),
    ('snapshots = "loaded"', ["snapshots", "expected a list", "'loaded'"]),
    ('snapshots = ["lodaed"]', ["snapshots", "paper, loaded", "'lodaed'"]),
    ("sizes = [50]", ["sizes", "expected a string", "50"]),
    ('sizes = ["5by3"]', ["sizes", "NxM", "'5by3'"]),
])
def test_a_bad_optional_solvers_key_is_refused_naming_it(line, words, tmp_path):
    from wdtnopt.benchmarks.suites import load_config
    from wdtnopt.benchmarks.suites import solvers

    f = tmp_path / "bad.toml"
    f.write_text(f'base = "smoke"\n{line}\n')
    with pytest.raises(WdtnoptError) as info:
        solvers.check(load_config("solvers", f))
    msg = str(info.value)
    assert "unknown key" not in msg
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("line", ["snapshots = []", "methods = []", "sizes = []"])
def test_an_empty_selection_of_the_solvers_suite_selects_no_solve(line, tmp_path):
    # an empty list selects nothing, as in every suite (test_newcomer_qa8: a suite of no tasks
    # renders); before, sizes = [] fell back to n_grid x m_grid without a word
    from wdtnopt.benchmarks.suites import load_config
    from wdtnopt.benchmarks.suites import solvers

    f = tmp_path / "empty.toml"
    f.write_text(f'base = "smoke"\n{line}\n')
    cfg = load_config("solvers", f)
    solvers.check(cfg)
    assert [t.config for t in solvers.tasks(cfg)] == [{"suite": "solvers", "kind": "allocation", "n_mus": 60,
                                                        "repeats": 1}]


def test_a_solvers_run_of_no_snapshot_solves_renders(tmp_path):
    # methods = [] ended in matplotlib's "Number of columns must be a positive integer, not 0"
    # traceback after the allocation task had run
    from wdtnopt.benchmarks.suites import run_suite

    preset = tmp_path / "none.toml"
    preset.write_text('base = "smoke"\nmethods = []\n')
    run, files = run_suite("solvers", preset, tmp_path / "out", workers=1, progress=False)
    assert run.complete and len(run.records) == 1
    assert sorted(f.name for f in files) == ["fig_solvers_time.png", "report.md", "solvers.csv"]
    assert (tmp_path / "out" / "solvers.csv").read_text().count("\n") == 1     # the header only
    assert "Methods registered and run: none" in (tmp_path / "out" / "report.md").read_text()


def test_a_scaling_preset_file_on_smoke_solves_loaded_snapshots_with_the_loaded_caps(tmp_path):
    from wdtnopt.benchmarks.suites import load_config
    from wdtnopt.benchmarks.suites import scaling
    from wdtnopt.solvers import methods

    f = tmp_path / "mine.toml"
    f.write_text('base = "smoke"\nsnapshots = "loaded"\nscip_max_n = 30\ntime_limit = 7\n')
    cfg = load_config("scaling", f)     # before: unknown key(s) scip_max_n, snapshots, time_limit
    scaling.check(cfg)
    got = [t.config for t in scaling.tasks(cfg)]
    # by hand: smoke's n_grid [30, 100, 300] (largest first), M 5, 5 slots, 1 repeat, seed 0; exact up
    # to smoke's exact_max_n 30, SCIP up to the file's 30; exact at the file's 7 s, SCIP at the loaded
    # preset's 60 s (the file leaves scip_cap out)
    known = set(methods())
    want = []
    for n in (300, 100, 30):
        meths = [m for m in ("fast", "exact", "pyomo") if m in known and (m == "fast" or n <= 30)]
        want.append({"suite": "scaling", "kind": "scaling", "n_mus": n, "n_bss": 5, "slots": 5, "repeats": 1,
                     "seed": 0, "methods": meths, "snapshots": "loaded", "time_limit": 7.0, "scip_cap": 60.0})
    assert got == want
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "smoke"\nsnapshots = "loaded"\nscip_cap = 0\n')
    with pytest.raises(WdtnoptError, match=r"scip_cap: expected a finite number of seconds > 0, got 0"):
        scaling.check(load_config("scaling", bad))
    bad.write_text('base = "smoke"\nsnapshots = ["loaded"]\n')
    with pytest.raises(WdtnoptError, match=r"snapshots.*expected a string"):
        scaling.check(load_config("scaling", bad))


# -- the Lyapunov scheduler refuses a bool where it takes a number, as the suites' check does -------
@pytest.mark.parametrize("kwargs,field", [
    ({"V": True}, "V: expected a finite number > 0"),
    ({"theta": True}, "theta: expected a finite number >= 0"),
    ({"theta": False}, "theta: expected a finite number >= 0"),
    ({"initial_price": True}, "initial_price: expected a number >= 0"),
    ({"eps": True}, "eps: expected numbers in [0, 1]"),
    ({"eps": [0.1, True]}, "eps: expected numbers in [0, 1]"),
    ({"eps": np.array([True, False])}, "eps: expected numbers in [0, 1]"),
    ({"exact_max_mus": True}, "exact_max_mus: expected an integer >= 0"),
])
def test_lyapunov_policy_refuses_a_bool_naming_the_argument(kwargs, field):
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    with pytest.raises(WdtnoptError) as info:     # before: True was taken as 1 (False as 0)
        LyapunovPolicy(**kwargs)
    assert str(info.value).startswith(field) and repr(next(iter(kwargs.values()))) in str(info.value)


def test_the_oracle_refuses_a_bool_failure_price():
    from wdtnopt.policies.lyapunov import MyopicOraclePolicy

    for price in (True, [0.01, False]):
        with pytest.raises(WdtnoptError, match="failure_price: expected a number"):
            MyopicOraclePolicy(failure_price=price)
    assert MyopicOraclePolicy(failure_price=[0.01, 0.0])._price.tolist() == [0.01, 0.0]


def test_lyapunov_policy_and_the_suites_check_accept_the_same_v_and_theta():
    from wdtnopt.benchmarks.suites.runner import check_lyapunov
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    def policy_takes(**kw):
        try:
            LyapunovPolicy(**kw)
        except WdtnoptError:
            return False
        return True

    def suite_takes(key, v):
        try:
            check_lyapunov({key: v})
        except WdtnoptError as exc:
            assert str(exc) == f"preset: {key}: expected {'a finite number > 0' if key == 'lyapunov_V' else 'a finite number >= 0'}, got {v!r}"
            return False
        return True

    # by hand: V in (0, inf), theta in [0, inf); a bool, a string, inf, NaN are no such number
    values = [1, 250, 0.5, 1e-3, 0, 0.0, -0.0, -1, -2.5, float("inf"), float("nan"), True, False, "1", [1]]
    v_ok = [True, True, True, True, False, False, False, False, False, False, False, False, False, False, False]
    theta_ok = [True, True, True, True, True, True, True, False, False, False, False, False, False, False, False]
    assert [policy_takes(V=v) for v in values] == v_ok
    assert [suite_takes("lyapunov_V", v) for v in values] == v_ok
    assert [policy_takes(theta=v) for v in values] == theta_ok
    assert [suite_takes("lyapunov_theta", v) for v in values] == theta_ok
    assert (LyapunovPolicy(V=np.int64(7), theta=np.float32(0.5)).V, LyapunovPolicy(theta=np.float32(0.5)).theta) == (7.0, 0.5)


# -- counted nouns: one definition, with a thousands separator where the messages use one ----------
def test_counted_and_n_slots_agree_in_the_singular_and_past_a_thousand():
    from wdtnopt.trace import n_slots
    from wdtnopt.wording import counted, sizes

    assert counted(1, "slot") == "1 slot" and counted(np.int64(1), "MU") == "1 MU"
    assert counted(1024, "record") == "1024 records"                        # the default: as before
    assert counted(1024, "slot", thousands=True) == "1,024 slots"
    assert counted(np.int64(1_000_000), "BS", thousands=True) == "1,000,000 BSs"
    assert counted(2, "policy", "policies") == "2 policies"
    assert [n_slots(k) for k in (0, 1, 2, 1024)] == ["0 slots", "1 slot", "2 slots", "1,024 slots"]
    assert sizes(1, 1, 1) == "1 slot x 1 MU x 1 BS"
    assert sizes(1500, 1, 5) == "1,500 slots x 1 MU x 5 BSs" and sizes(10, 2_000) == "10 slots x 2,000 MUs"


def test_memory_refusals_count_one_mu_in_the_singular(monkeypatch):
    import wdtnopt.trace as trace_mod
    from wdtnopt import bounds, simulation

    monkeypatch.setattr(trace_mod, "available_memory_bytes", lambda: 10**5)

    def message(f, *args, **kw):
        with pytest.raises(WdtnoptError) as info:
            f(*args, **kw)
        return str(info.value)

    # before: "a trace of 10 slots x 1 MUs x 5 BSs", "1,500 slots x 1 MUs x 1 BSs", ...
    assert ": a trace of 10 slots x 1 MU x 5 BSs needs about" in message(trace_mod.check_trace_fits, 1, 5, 10)
    assert ": a trace of 1,500 slots x 1 MU x 1 BS in windows of 2 slots (" in message(trace_mod.plan_windows, 1, 1, 1500, 2)
    assert ": the record of 1 run of 1,500 slots x 1 MU (" in message(simulation.check_simulation_fits, 1, 1500, 1)
    assert ": simulating 1 policy on 1 slot x 1 MU x 1 BS (" in message(simulation.check_run_fits, 1, 1, 1, ["lyapunov"], None)
    assert ": the hindsight bound of 1 slot x 1,024 MUs x 1 BS needs" in message(bounds.check_bound_fits, 1024, 1, 1)


def test_a_one_slot_trace_names_one_slot():
    from wdtnopt import Scenario, generate_trace

    tr = generate_trace(Scenario.paper(n_mus=2, n_bss=2), seed=0, slots=1)
    with pytest.raises(IndexError, match=r"^slot 3 out of range for 1 slot$"):     # before: "1 slots"
        tr.window_at(3)


# -- placement="sample" and "frame" fall back to the slot by one check ------------------------------
@pytest.mark.parametrize("kw", [{"frame_slots": 1}, {"request_prob": 0.0}])
def test_sample_and_frame_placements_are_the_slots_when_the_frame_is_one_slot_or_nothing_requests(kw):
    from wdtnopt import Scenario, generate_trace, simulate
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    tr = generate_trace(Scenario.paper(n_mus=6, n_bss=2, **kw), seed=1, slots=6)
    runs = {pl: simulate(LyapunovPolicy(placement=pl), tr) for pl in ("slot", "frame", "sample")}
    for pl in ("frame", "sample"):
        np.testing.assert_array_equal(runs[pl].energy_per_mu, runs["slot"].energy_per_mu)
        np.testing.assert_array_equal(runs[pl].placement, runs["slot"].placement)
    assert runs["sample"].extras["sample_choices"] == []        # no frame was sampled
    pol = LyapunovPolicy(placement="frame")
    pol.reset(tr)
    s = tr.snapshot(0, allow_migration=True)
    assert pol.placement_snapshot(s) is s


# -- a trace's slot and server indices: out of range is an IndexError, not a value from elsewhere ---
def test_trace_slot_and_server_indices_are_checked_not_wrapped():
    from wdtnopt import Scenario, generate_trace
    from wdtnopt.physics import backhaul_time

    tr = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=4)
    for t in (4, 9, -1, True, 1.0):      # before: -1 and 9 returned [M] capacities of no slot
        with pytest.raises(IndexError, match=r"slot .* out of range for 4 slots"):
            tr.cpu_available_hz(t)
    assert np.array_equal(tr.cpu_available_hz(3), tr.cpu_hz)   # no server events: the nominal capacities
    src, dst = np.array([0, 1, 0]), np.array([1, 1, 0])
    # by hand: ceil(backhaul time / slot) where the DT moves, at least 1; 0 where it stays
    t01 = backhaul_time(tr.backhaul_latency_s[0, 1], tr.backhaul_s_per_bit[0, 1], tr.dt_size_bits[0])
    want = np.array([max(1, int(np.ceil(t01 / tr.scenario.slot_s))), 0, 0])
    assert np.array_equal(tr.migration_slots(src, dst), want)
    for bad in (np.array([-1, 0, 0]), np.array([0, 2, 0]), np.array([0, 1]), np.array([0.0, 1.0, 0.0])):
        with pytest.raises(IndexError, match=r"src: expected 3 server indices in 0\.\.1"):
            tr.migration_slots(bad, dst)
        with pytest.raises(IndexError, match=r"dst: expected 3 server indices in 0\.\.1"):
            tr.migration_slots(src, bad)


# -- TeamEnv: tied host scores stay, else spread over the hosts (not all to server 0) --------------
def test_team_env_breaks_host_ties_toward_the_current_host_then_cyclically():
    from wdtnopt import Scenario
    from wdtnopt.env import TeamEnv

    def by_hand(scores, mask, cur):
        # the documented rule, DT by DT: the best allowed score; the current host if it is among the
        # best, else the first of the best from index i mod M on, cyclically
        out = []
        for i in range(len(cur)):
            allowed = [j for j in range(mask.shape[1]) if mask[i, j]]
            top = max(scores[i, j] for j in allowed)
            best = [j for j in allowed if scores[i, j] == top]
            out.append(cur[i] if cur[i] in best else min(best, key=lambda j: (j - i) % mask.shape[1]))
        return out

    n, m = 6, 3
    te = TeamEnv(Scenario.paper(n_mus=n, n_bss=m), seed=0, slots=2)
    te.reset(seed=0)
    cur, mask = te.par.sim.placement.copy(), te._mask.copy()
    assert mask[np.arange(n), cur].all()      # staying is always allowed
    a = np.zeros(n + 2 * m * n)
    host = a[n + m * n:].reshape(n, m)      # a view: the host scores
    host[:] = 1.0                           # every host tied: every DT stays
    assert np.array_equal(te.decode(a)["controller"], cur)
    host[np.arange(n), cur] = 0.0           # the current host below the others
    assert te.decode(a)["controller"].tolist() == by_hand(host, mask, cur)
    rng = np.random.default_rng(5)
    for _ in range(50):                     # scores from {-1, 0, 1}: ties everywhere
        host[:] = rng.integers(-1, 2, size=(n, m))
        assert te.decode(a)["controller"].tolist() == by_hand(host, mask, cur)
    # a symmetric clipped policy no longer favours server 0 (before: 24% to server 0, 17% to server 4)
    big = TeamEnv(Scenario.paper(n_mus=30, n_bss=5), seed=0, slots=1)
    big.reset(seed=0)
    counts = np.zeros(5)
    for _ in range(200):
        counts += np.bincount(big.decode(np.clip(rng.normal(0, 1, big.action_space.shape), -1, 1))["controller"],
                              minlength=5)
    assert counts.max() / counts.sum() < 0.22 and counts.min() / counts.sum() > 0.18, counts / counts.sum()


def test_a_text_file_as_checkpoint_is_named_with_what_torch_raised(tmp_path):
    # torch raises a bare KeyError('101') for a text file: the message ended in "(101)"
    from wdtnopt.agents.checkpoint import read_checkpoint

    (tmp_path / "checkpoint.pt").write_text("hello\n")
    with pytest.raises(WdtnoptError) as info:
        read_checkpoint(tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"checkpoint {tmp_path / 'checkpoint.pt'}: cannot be read")
    assert msg.endswith("(KeyError 101)"), msg
