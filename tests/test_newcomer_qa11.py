"""A newcomer's pass (11): slot counts of unavailability, up-front checks of the benchmark suites and
cheap leftovers, each failing before its fix."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cli_runner import run_cli


# -- 1. one slot count of unavailability (docs/model.md, section 4.1) ------------------------------
def test_unavailable_slots_hand_computed_counts():
    from wdtnopt.trace import UNAVAILABLE_SLOTS_CAP, unavailable_slots

    # ceil(t / tau), at least one: 0.1 s in 0.5 s slots is one slot, 0.6 s two, 1.0 s exactly two
    # (the exact multiple does not gain a slot on round-off), 1.0000001 s three
    got = unavailable_slots([0.0, 0.1, 0.5, 0.6, 1.0, 1.0000001, 7.25], 0.5)
    assert got.dtype == np.int64
    assert got.tolist() == [1, 1, 1, 2, 2, 3, 15]
    # exact multiples whose float quotient lands a hair above the integer (0.27 / 0.09 =
    # 3.0000000000000004): ceil alone would give 4, the guard keeps 3
    assert 0.27 / 0.09 > 3 and 0.07 / 0.01 > 7
    assert unavailable_slots(0.27, 0.09).tolist() == 3
    assert unavailable_slots([0.07, 0.14], 0.01).tolist() == [7, 14]
    # at_least: a count of zero is allowed when asked for
    assert unavailable_slots([0.0, 0.2], 0.5, at_least=0).tolist() == [0, 1]
    # the cap: longer than any trace, exact as float and int64
    assert UNAVAILABLE_SLOTS_CAP == 2**53 == int(float(2**53))
    over = unavailable_slots([math.inf, 1e308, 1e20, 2.0**53 * 0.5 * 4], 0.5)
    assert over.tolist() == [2**53] * 4
    assert unavailable_slots(1e308, 1e-300).tolist() == 2**53          # quotient overflows to inf
    assert unavailable_slots(1e-300, 1e308).tolist() == 1              # quotient underflows to 0
    # below the cap the count is exact: the former guard ceil(q (1 - 1e-12)) dropped q 1e-12 slots
    assert unavailable_slots(2.0**52, 1.0).tolist() == 2**52
    assert unavailable_slots(1e13, 0.5).tolist() == 2 * 10**13
    assert unavailable_slots(1e13 + 3.0, 1.0).tolist() == 10**13 + 3
    assert unavailable_slots(np.zeros((2, 3)), 1.0).shape == (2, 3)


@pytest.mark.parametrize("t,tau", [(-1.0, 0.5), (math.nan, 0.5), (1.0, 0.0), (1.0, -1.0), (1.0, math.nan)])
def test_unavailable_slots_refuses_negative_or_nan(t, tau):
    from wdtnopt.trace import unavailable_slots

    with pytest.raises(ValueError, match="t_s|slot_s"):
        unavailable_slots(t, tau)


def _extreme_trace(slots=12, **extra):
    from wdtnopt import Scenario, generate_trace

    # legal values: the smallest slot, the largest DT and the slowest backhaul of their ranges
    sc = Scenario.paper(n_mus=4, n_bss=2, slot_s=1e-300, dt_size_bits_min=1e15, dt_size_bits_max=1e15,
                        hop_rate_bps=1.0, storage_factor=4.0, **extra)
    return generate_trace(sc, seed=0, slots=slots)


def test_counts_of_an_overflowing_scenario_are_capped_not_wrapped():
    tr = _extreme_trace()
    src = np.array([0, 0, 1, 1])
    dst = np.array([1, 0, 0, 1])
    # before: ceil(inf) cast to int64 wrapped to -2**63 (a DT "available" at once, after a move)
    with np.errstate(all="raise"):
        k = tr.migration_slots(src, dst)
    assert k.tolist() == [2**53, 0, 2**53, 0]
    pen = tr.default_migration_penalty()
    assert np.isfinite(pen).all()
    np.testing.assert_array_equal(pen, tr.scenario.request_prob * 2.0**53 * tr.scenario.failure_price)


def test_simulate_on_an_overflowing_scenario_runs():
    from wdtnopt import simulate
    from wdtnopt.simulation import SimState

    tr = _extreme_trace()
    for policy in ("static", "follow", "oracle", "lyapunov"):
        res = simulate(policy, tr)     # before: follow's snapshots had an inf migration penalty
        assert res.slots == tr.slots
    # a DT moved at slot 0 stays unavailable for the rest of the run (before: -2**63 slots)
    state = SimState(tr)
    target = state.placement.copy()
    target[0] = 1 - target[0]
    assert state.apply_placement(target) == 1
    assert state.unavailable[0] == 2**53 and (np.delete(state.unavailable, 0) == 0).all()


def test_self_healing_and_restore_prices_on_an_overflowing_scenario():
    from wdtnopt import simulate
    from wdtnopt.policies.failure_aware import restore_slots
    from wdtnopt.simulation import SimState

    # server 0 fails at once (MTBF 1e-300 s = one slot) and is never repaired in 6 slots
    tr = _extreme_trace(slots=6, server_mtbf_s=[1e-300, 0.0], server_mttr_s=1e12)
    assert not tr.server_up[:, 0].any() and tr.server_up[:, 1].all()
    r = restore_slots(tr, tr.assoc[0])
    assert r.shape == (4, 2) and (r == 2.0**53).all()
    # before: int(np.ceil(inf)) in SimState.heal raised OverflowError
    state = SimState(tr)
    on0 = tr.initial_placement == 0
    assert on0.any()
    assert (state.restoring == on0).all() and (state.placement == 1).all()
    assert (state.unavailable[on0] == 2**53).all() and (state.unavailable[~on0] == 0).all()
    for policy in ("static", "oracle-fa", "lyapunov-fa"):
        assert simulate(policy, tr).slots == 6


# -- 2. the benchmark suites check every name and setting before any task runs ---------------------
BAD_SETTINGS = [
    # (suite, TOML lines of the override file, words the one line must hold)
    ("paper", 'policies = ["static", "folow"]', ["policies", "folow", "follow", "lyapunov"]),
    ("paper", 'algos = ["beta-hapo"]', ["algos", "beta-hapo", "beta-happo", "maddpg"]),
    ("paper", 'algos = ["beta-happo:rw"]', ["algos", "beta-happo:rw", "beta-happo:raw"]),
    ("paper", 'sweep_algos = ["mappo"]', ["sweep_algos", "mappo", "beta-mappo"]),
    ("paper", 'agent = { n_envs = 0 }', ["agent", "n_envs", ">= 1"]),
    ("paper", 'agent = { hiden = 8 }', ["agent", "hiden", "hidden"]),
    ("paper", 'bound_method = "exat"', ["bound_method", "exat", "exact", "fast"]),
    ("paper", "lyapunov_V = 0.0", ["lyapunov_V", "> 0"]),
    ("paper", "lyapunov_theta = -1.0", ["lyapunov_theta", ">= 0"]),
    ("paper", "eval_every = 0", ["eval_every", ">= 1"]),
    ("paper", "eta_grid = [-1.0]", ["eta_grid", "eta"]),
    ("mobility", 'policies = ["static", "oracel"]', ["policies", "oracel", "oracle"]),
    ("mobility", 'bound_method = "fastest"', ["bound_method", "fastest", "exact"]),
    ("mobility", "lyapunov_V = -3.0", ["lyapunov_V", "> 0"]),
    ("resilience", 'run_policies = ["predictiv"]', ["run_policies", "predictiv", "predictive"]),
    ("resilience", 'gap_policies = ["lyapunov-fb"]', ["gap_policies", "lyapunov-fb", "lyapunov-fa"]),
    ("resilience", 'flaky_policies = ["oracle-fa", "x"]', ["flaky_policies", "'x'", "oracle-fa"]),
    ("resilience", 'learned_algo = "happo"', ["learned_algo", "happo", "beta-happo"]),
    ("resilience", "learned_agent = { hidden = 0 }", ["learned_agent", "hidden"]),
    ("resilience", 'bound_method = "exactly"', ["bound_method", "exactly", "exact"]),
    ("resilience", "flaky_mtbf = [20.0, 2000.0]", ["flaky_mtbf", "server_mtbf_s"]),
    ("solvers", 'methods = ["exact", "exat"]', ["methods", "exat", "exact", "pyomo", "fast"]),
    ("solvers", 'base = "loaded_smoke"\nsnapshots = ["lodaed"]', ["snapshots", "lodaed", "paper", "loaded"]),
    ("solvers", 'base = "loaded_smoke"\nsizes = ["5by3"]', ["sizes", "5by3", "NxM"]),
    ("solvers", "repeats = 0", ["repeats", ">= 1"]),
    ("solvers", "fast_gap = -0.5", ["fast_gap", ">= 0"]),
    ("solvers", 'time_limit = "60"', ["time_limit", "a number", "'60'"]),
    ("scaling", 'base = "loaded_smoke"\nsnapshots = "lodaed"', ["snapshots", "lodaed", "paper", "loaded"]),
    ("scaling", "n_grid = [30, 0]", ["n_grid", ">= 1"]),
    ("sixg", "slots = 0", ["slots", ">= 1"]),
]


@pytest.mark.parametrize("suite,line,words", BAD_SETTINGS, ids=[f"{s}-{ln.split(' ')[0]}-{i}" for i, (s, ln, _) in enumerate(BAD_SETTINGS)])
def test_bench_refuses_a_bad_setting_before_any_task_runs(suite, line, words, tmp_path, capsys):
    # before: the name reached a worker (make_policy, Trainer, hindsight_bound, solve) after other
    # tasks had run for minutes, or (solvers methods, snapshots) was silently skipped or replaced
    preset = tmp_path / "bad.toml"
    preset.write_text(("" if line.startswith("base") else 'base = "smoke"\n') + line + "\n")
    out = tmp_path / "out"
    code, stdout, err = run_cli(["bench", suite, "--preset", str(preset), "--out", str(out), "--no-progress"], capsys)
    assert code == 2, (stdout, err)
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)
    assert not (out / "tasks").exists() and not (out / "agents").exists()   # nothing ran


def test_bench_refuses_an_unknown_preset_naming_the_presets(tmp_path, capsys):
    code, _, err = run_cli(["bench", "paper", "--preset", "smok", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "preset" in err and "smoke" in err and "default" in err and "full" in err


@pytest.mark.parametrize("suite", ["paper", "solvers", "scaling", "mobility", "resilience", "sixg"])
def test_every_shipped_preset_passes_the_up_front_checks(suite):
    # the checks refuse nothing the project ships (each preset's own values)
    from wdtnopt.benchmarks.suites import load_config, suite_module
    from wdtnopt.benchmarks.suites.runner import _presets

    mod = suite_module(suite)
    for name in _presets(suite):
        mod.check(load_config(suite, name))


def test_run_suite_checks_before_making_tasks(tmp_path, monkeypatch):
    # the check is the runner's, not the CLI's: run_suite refuses before tasks() and run_tasks()
    from wdtnopt.benchmarks import suites
    from wdtnopt.errors import WdtnoptError

    preset = tmp_path / "bad.toml"
    preset.write_text('base = "smoke"\npolicies = ["nope"]\n')
    called = []
    monkeypatch.setattr(suites, "run_tasks", lambda *a, **k: called.append(1))
    with pytest.raises(WdtnoptError, match="policies"):
        suites.run_suite("mobility", preset, tmp_path / "o", progress=False)
    assert called == []


# -- 3. leftovers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", [["bench", "scaling", "--preset", "smoke", "--out", "OUT"],
                                 ["bound", "--n-mus", "3", "--n-bss", "2", "--slots", "2", "--iters", "1"],
                                 ["gap", "--n-mus", "3", "--n-bss", "2", "--slots", "2", "--iters", "1",
                                  "--policy", "follow"]])
def test_workers_with_a_scheduler_is_refused(cmd, tmp_path, capsys):
    # before: --workers was silently unused (the cluster's workers run the tasks); the address is
    # unreachable on purpose: the refusal comes before any connection
    cmd = [str(tmp_path / "o") if c == "OUT" else c for c in cmd]
    code, out, err = run_cli(cmd + ["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--workers" in err and "--scheduler" in err, err
    assert "cannot reach" not in err
    assert not (tmp_path / "o").exists()


def test_run_suite_refuses_workers_with_a_scheduler(tmp_path):
    from wdtnopt.benchmarks.suites import run_suite
    from wdtnopt.errors import WdtnoptError

    with pytest.raises(WdtnoptError, match="workers: not used with a scheduler"):
        run_suite("scaling", "smoke", tmp_path / "o", workers=2, scheduler="tcp://127.0.0.1:9", progress=False)


class _FakeFuture:
    def __init__(self, key, value):
        self.key, self._value = key, value

    def result(self):
        return self._value


def _fake_distributed(created):
    """A stand-in for the ``distributed`` package: a Client that runs submitted tasks at once."""
    import types

    class Client:
        def __init__(self, address, timeout=None):
            self.address, self.closed, self._n = address, False, 0
            created.append(self)

        def scheduler_info(self):
            return {"workers": {"tcp://w1:1": {}, "tcp://w2:1": {}}}

        def submit(self, fn, arg, workers=None, allow_other_workers=False, pure=False):
            assert not self.closed
            self._n += 1
            return _FakeFuture(f"{id(self)}-{self._n}", fn(arg))

        def map(self, fn, items, pure=False):
            return [self.submit(fn, x) for x in items]

        def close(self):
            self.closed = True

    mod = types.ModuleType("distributed")
    mod.Client = Client
    mod.as_completed = lambda futures: iter(list(futures))
    return mod


def test_hindsight_bound_closes_the_dask_client_it_opens(monkeypatch):
    import sys

    from wdtnopt import Scenario, gap, generate_trace, hindsight_bound, simulate

    created = []
    monkeypatch.setitem(sys.modules, "distributed", _fake_distributed(created))
    trace = generate_trace(Scenario.paper(n_mus=3, n_bss=2), seed=0, slots=3)
    ref = hindsight_bound(trace, iters=2, dual="supergradient", workers=1)
    hb = hindsight_bound(trace, iters=2, scheduler="tcp://127.0.0.1:9")
    assert len(created) == 1 and created[0].address == "tcp://127.0.0.1:9"
    assert created[0].closed            # before: left open for the life of the bound
    assert hb.energy_per_mu_slot == pytest.approx(ref.energy_per_mu_slot, rel=1e-12)
    # a further climb (gap) connects again and closes that client too
    report = gap([simulate("follow", trace)], trace, bound=hb, iters=1)
    assert len(report.rows) == 1
    assert len(created) >= 2 and all(c.closed for c in created)
    # a client the caller passes in is the caller's: used, never closed
    mine = sys.modules["distributed"].Client("tcp://mine:1")
    hindsight_bound(trace, iters=1, scheduler=mine)
    assert not mine.closed and mine._n > 0


def test_vehicle_counts_agree_in_number():
    from wdtnopt.wording import counted, verb

    assert counted(1, "vehicle") == "1 vehicle" and counted(0, "vehicle") == "0 vehicles"
    assert counted(2, "MU") == "2 MUs" and verb(1, "has", "have") == "has" and verb(3, "has", "have") == "have"


@pytest.mark.parametrize("factor,n,m,per", [(1e-300, 30, 5, 3), (0.1, 30, 5, 3), (5e-324, 1, 2, 0)])
def test_storage_that_cannot_hold_the_dts_is_refused_when_the_scenario_is_built(factor, n, m, per):
    # before: Scenario.paper accepted it and generate_trace refused it later, after the trace's
    # processes were drawn (5e-324 N / M underflows to 0: room for no DT at all)
    from wdtnopt import Scenario
    from wdtnopt.errors import ScenarioError

    with pytest.raises(ScenarioError, match=rf"storage_factor: every server holds at most {per} DTs? .*"
                                            rf"fewer than n_mus = {n}") as info:
        Scenario.paper(storage_factor=factor, n_mus=n, n_bss=m)
    assert len(str(info.value).splitlines()) == 1


def test_storage_that_can_hold_the_smallest_dts_is_still_accepted():
    # ceil(0.34 * 30 / 5) = 3 largest (300 Mbit) = 9 smallest (100 Mbit) per server, 45 >= 30: kept,
    # a seed whose drawn sizes do not fit is still refused by generate_trace, naming the field
    from wdtnopt import Scenario, generate_trace
    from wdtnopt.errors import ScenarioError

    sc = Scenario.paper(storage_factor=0.34)
    with pytest.raises(ScenarioError, match="storage_factor"):
        generate_trace(sc, seed=0, slots=1)
    # hand count: room for exactly N smallest DTs is accepted (equal sizes: 1 per server, M = N)
    Scenario.paper(storage_factor=1e-3, n_mus=4, n_bss=4, dt_size_bits_min=300e6, dt_size_bits_max=300e6)
    with pytest.raises(ScenarioError, match="storage_factor"):
        Scenario.paper(storage_factor=1e-3, n_mus=5, n_bss=4, dt_size_bits_min=300e6, dt_size_bits_max=300e6)


def test_mobility_messages_count_one_vehicle_in_the_singular():
    from wdtnopt import Scenario
    from wdtnopt.errors import MobilityError
    from wdtnopt.processes.mobility import CleaningRules, Records, clean

    rec = Records.from_arrays([0.0, 1.0, 2.0], ["a", "a", "a"], [10.0, 11.0, 12.0], [5.0, 5.0, 5.0])
    with pytest.raises(MobilityError, match="1 vehicle has usable records, the scenario needs n_mus = 2"):
        clean(rec, Scenario.paper(n_mus=2, n_bss=2), 3, CleaningRules(start_s=0.0))
    rep = clean(rec, Scenario.paper(n_mus=1, n_bss=2), 3, CleaningRules(start_s=0.0)).report
    assert ": 3 records of 1 vehicle; 1 MU from t = 0 s" in rep.summary()


@pytest.mark.parametrize("kw", [
    {"dt_size_bits_min": 1e-300, "dt_size_bits_max": 1e15},            # size ratio past the float range
    {"dt_size_bits_min": 5e-324, "dt_size_bits_max": 1e15},            # the least float: ratio inf
    {"storage_factor": 1e6, "n_mus": 10**6, "n_bss": 1, "dt_size_bits_min": 1e-300},
])
def test_storage_check_takes_the_ends_of_the_size_ranges(kw):
    """The up-front storage check reads a size ratio past the float range as room for any number of
    DTs (it overflowed int() at dt_size_bits_min near 0, an accepted end of its range), and the
    fields stay as given."""
    from wdtnopt import Scenario

    sc = Scenario.paper(**kw)
    assert all(getattr(sc, k) == v for k, v in kw.items())


def test_storage_check_still_refuses_at_extreme_factors():
    from wdtnopt import Scenario
    from wdtnopt.errors import ScenarioError

    with pytest.raises(ScenarioError, match="storage_factor: every server holds at most 3 DTs"):
        Scenario.paper(storage_factor=1e-300, n_mus=50, n_bss=5, dt_size_bits_min=100e6, dt_size_bits_max=300e6)
