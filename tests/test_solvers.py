"""Solver API: Solution contract, dispatch, statuses, properties, import weight, CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cli_runner import run_cli
from wdtnopt.testing import one_cell, paper_snapshot, tiny_snapshot
from wdtnopt.cost import evaluate
from wdtnopt.errors import WdtnoptError
from wdtnopt.snapshot import Snapshot
from wdtnopt.solvers import Solution, methods, register_method, solve
from wdtnopt.solvers.allocation import allocate


def test_solution_contract_and_json_roundtrip(tmp_path) -> None:
    s = paper_snapshot(20, 5, seed=4)
    sol = solve(s)
    for name in ("placement", "served", "tx_time", "power", "cpu_hz", "energy"):
        assert getattr(sol, name).shape == (s.n_mus,)
    ev = evaluate(s, sol)
    assert not ev.violations
    assert sol.objective == ev.objective
    np.testing.assert_allclose(sol.energy, ev.energy)
    np.testing.assert_allclose(sol.power, ev.power, rtol=1e-12)
    assert sol.bound <= sol.objective and sol.gap <= 1e-6 and sol.status == "optimal"
    assert (sol.power <= s.p_max * (1 + 1e-9)).all()
    text = json.dumps(sol.to_dict())
    back = Solution.from_dict(json.loads(text))
    assert back.objective == sol.objective and back.status == sol.status
    np.testing.assert_array_equal(back.placement, sol.placement)
    np.testing.assert_array_equal(back.served, sol.served)
    assert evaluate(s, back).objective == sol.objective


def test_unknown_method_names_the_choices() -> None:
    with pytest.raises(WdtnoptError, match="method 'bogus'.*exact.*pyomo.*relaxation"):
        solve(tiny_snapshot(0), method="bogus")


def test_register_method_hook() -> None:
    calls = []

    def fake(snapshot, **options):
        calls.append(options)
        return solve(snapshot, method="exact", **options)

    register_method("fake_for_test", fake)
    try:
        assert "fake_for_test" in methods()
        sol = solve(tiny_snapshot(1), method="fake_for_test", gap=1e-4)
        assert calls == [{"gap": 1e-4}] and sol.status == "optimal"
    finally:
        from wdtnopt.solvers import _METHODS
        _METHODS.pop("fake_for_test", None)


def test_infeasible_storage_is_a_status() -> None:
    s = tiny_snapshot(3, N=5, M=2)
    s = s.replace(storage_bits=np.full(2, float(s.dt_size_bits.max()) * 0.5))
    for method in ("exact", "relaxation"):
        sol = solve(s, method=method)
        assert sol.status == "infeasible"
        assert math.isinf(sol.objective)


def test_prev_overflow_but_moves_fix_it() -> None:
    """placement_prev overflows a server, migration allowed: the oracle moves DTs and stays exact."""
    s = tiny_snapshot(5, N=5, M=3, kind="plain")
    big = float(s.dt_size_bits.sum())
    prev = np.zeros(s.n_mus, dtype=np.int64)
    s = s.replace(placement_prev=prev, migrating=np.zeros(s.n_mus, bool),
                  storage_bits=np.array([big * 0.6, big, big]))
    sol = solve(s)
    assert sol.status == "optimal"
    assert not evaluate(s, sol).violations
    assert (sol.placement != prev).any()
    if not s.allow_migration:
        pytest.skip("drawn without migration")
    assert solve(s.replace(allow_migration=False)).status == "infeasible"


def test_no_migration_is_the_fixed_placement_allocation() -> None:
    s = tiny_snapshot(9, N=6, M=3, kind="no_migration")
    sol = solve(s)
    np.testing.assert_array_equal(sol.placement, s.placement_prev)
    assert sol.objective == pytest.approx(allocate(s, s.placement_prev).cost, rel=1e-12)
    # certified at the allocation's own cost: the gap is the last bit between the allocation's sum and
    # evaluate's sum of the same energies
    assert sol.status == "optimal" and sol.gap <= 1e-15


def test_time_limit_returns_incumbent_and_bound() -> None:
    s = paper_snapshot(50, 5, seed=3)
    sol = solve(s, time_limit=0.05)
    assert sol.status in ("time_limit", "optimal")
    assert not evaluate(s, sol).violations
    assert sol.bound <= sol.objective
    full = solve(s)
    assert full.objective <= sol.objective * (1 + 1e-9)
    assert sol.bound <= full.objective * (1 + 1e-9)


def test_relaxation_stopped_by_its_time_limit_says_time_limit() -> None:
    """The conic solver stopped by ``time_limit`` (Clarabel's user limit) gives status ``time_limit``
    (docs/solvers.md, "Statuses"), not ``feasible``, and is not re-run for another full limit."""
    pytest.importorskip("cvxpy")
    from wdtnopt.testing import loaded_snapshot

    s = loaded_snapshot(N=20, M=4, seed=0)
    sol = solve(s, method="relaxation", time_limit=1e-6)
    assert sol.stats["conic_status"] == "user_limit"
    assert sol.status == "time_limit"
    assert sol.stats["conic_attempts"] == 1
    assert not evaluate(s, sol).violations
    assert sol.bound <= sol.objective
    assert sol.bound <= solve(s, method="exact").objective * (1 + 1e-9)


def test_bad_options_are_user_errors() -> None:
    s = tiny_snapshot(0)
    with pytest.raises(WdtnoptError, match="gap"):
        solve(s, gap=-1)
    with pytest.raises(WdtnoptError, match="time_limit"):
        solve(s, time_limit=0)
    with pytest.raises(WdtnoptError, match="no option 'tolerance'"):
        solve(s, tolerance=1e-3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["plain", "tight_storage", "tight_cpu", "migrating",
                                                         "no_migration", "cheap_fail", "zero_cycles"]))
def test_properties_of_the_exact_oracle(seed: int, kind: str) -> None:
    s = tiny_snapshot(seed, kind=kind)
    sol = solve(s)
    if sol.status == "infeasible":
        fits = (np.bincount(s.placement_prev, weights=s.dt_size_bits, minlength=s.n_bss) <= s.storage_bits).all()
        assert not fits
        return
    assert sol.status == "optimal"
    ev = evaluate(s, sol)
    assert not ev.violations
    assert sol.objective == ev.objective
    assert sol.bound <= sol.objective
    assert sol.gap <= 1e-6
    # never worse than keeping the placement (exact allocation there), when that fits
    if (np.bincount(s.placement_prev, weights=s.dt_size_bits, minlength=s.n_bss) <= s.storage_bits).all():
        assert sol.objective <= allocate(s, s.placement_prev).cost * (1 + 1e-12)
    # migrating DTs stay and are not served; no move when not allowed
    assert (sol.placement[s.migrating] == s.placement_prev[s.migrating]).all()
    assert not sol.served[s.migrating].any()
    if not s.allow_migration:
        assert (sol.placement == s.placement_prev).all()


def test_import_wdtnopt_stays_light() -> None:
    code = ("import sys, wdtnopt, wdtnopt.solvers; s = wdtnopt.solve; "
            "heavy = [m for m in ('cvxpy', 'pyomo', 'highspy', 'pyscipopt', 'torch') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- CLI -----------------------------------------------------------------------------------------------
def test_cli_solve_prints_table_and_writes_json(tmp_path, capsys) -> None:
    s = paper_snapshot(12, 3, seed=1)
    path = tmp_path / "snap.json"
    s.save(path)
    out_path = tmp_path / "sol.json"
    code, out, err = run_cli(["solve", str(path), "-o", str(out_path)], capsys)
    assert code == 0, err
    assert "objective" in out and "bound" in out and "total" in out
    data = json.loads(out_path.read_text())
    sol = Solution.from_dict(data)
    assert data["status"] == "optimal"
    assert evaluate(s, sol).objective == pytest.approx(sol.objective, rel=1e-12)


@pytest.mark.parametrize("args,needle", [
    (["solve", "MISSING.json"], "cannot read"),
    (["solve", "SNAP", "--method", "nope"], "--method"),
    (["solve", "SNAP", "--method", "bogus"], "'bogus' is not one of 'exact'"),
    (["solve", "SNAP", "--method", "fast", "--option", "tim_limit=1"], "'tim_limit'"),
    (["solve", "SNAP", "--option", "max_iters=3"], "valid options are gap, time_limit"),
    (["solve", "SNAP", "--option", "gap=abc"], "own flag, --gap"),
    (["solve", "SNAP", "--option", "time_limit=2"], "own flag, --time-limit"),
    (["solve", "SNAP", "--method", "exact", "--option", "oracle=magic"], "oracle"),
    (["solve", "SNAP", "--option", "gap"], "NAME=VALUE"),
    (["solve", "SNAP", "--gap", "-1"], "--gap"),
    (["solve", "SNAP", "--time-limit", "0"], "--time-limit"),
    (["solve", "BAD"], "invalid snapshot"),
])
def test_cli_solve_bad_input_exits_2(tmp_path, capsys, args, needle) -> None:
    snap = tmp_path / "s.json"
    tiny_snapshot(0).save(snap)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"gain": [[1.0]]}))
    args = [str(snap) if a == "SNAP" else str(bad) if a == "BAD" else str(tmp_path / a) if a.endswith(".json") else a
            for a in args]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert needle in err + out
    assert "Traceback" not in err
    assert len((err + out).strip().splitlines()) == 1, err + out


def test_solve_names_a_snapshot_of_the_wrong_type() -> None:
    from wdtnopt.errors import SnapshotError

    with pytest.raises(SnapshotError, match=r"snapshot: expected a wdtnopt.Snapshot .* got dict"):
        solve(one_cell().to_dict())


# -- the exact oracle's two subproblem oracles ----------------------------------------------------
REFERENCE_IN_REPO = Path(__file__).parent / "data" / "reference_snapshots.json"


def _oracle_snapshots() -> list:
    """The reference snapshots when the repository has them, and random small default-scenario ones."""
    import wdtnopt

    snaps = []
    if REFERENCE_IN_REPO.is_file():
        cases = json.loads(REFERENCE_IN_REPO.read_text())["cases"]
        snaps += [pytest.param(Snapshot.from_dict(c["snapshot"]), id=c["name"].split()[0]) for c in cases]
    for seed, (n, m) in enumerate([(4, 2), (6, 2), (6, 3), (8, 2)]):
        trace = wdtnopt.generate_trace(wdtnopt.Scenario.paper(n_mus=n, n_bss=m), seed=seed, slots=4)
        snaps.append(pytest.param(trace.snapshot(seed % 4), id=f"random-{n}x{m}-seed{seed}"))
    return snaps


@pytest.mark.parametrize("snap", _oracle_snapshots())
def test_cvxpy_oracle_equals_kkt(snap) -> None:
    """exact with the CVXPY (Clarabel) subproblem oracle reaches the KKT oracle's optimum (1e-6)."""
    pytest.importorskip("cvxpy")
    kkt = solve(snap, method="exact", gap=1e-7)
    conic = solve(snap, method="exact", gap=1e-7, oracle="cvxpy")
    assert kkt.status == conic.status == "optimal"
    assert conic.stats["oracle"] == "cvxpy"
    assert conic.stats["conic_solves"] > 0 or not (conic.served & (snap.cycles > 0)).any()
    assert conic.objective == pytest.approx(kkt.objective, rel=1e-6, abs=1e-15)
    assert not evaluate(snap, conic).violations
    assert conic.bound <= kkt.objective * (1 + 1e-9)


# -- the solver contract ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["exact", "fast", "pyomo", "relaxation"])
def test_misspelled_option_is_named_for_every_method(method: str) -> None:
    from wdtnopt.solvers import OPTIONS, SolverError

    with pytest.raises(SolverError, match="'tim_limit'") as err:
        solve(tiny_snapshot(0), method=method, tim_limit=1)
    for name in OPTIONS[method].names():  # the valid ones are listed
        assert name in str(err.value)
    with pytest.raises(SolverError, match="max_iterations"):
        solve(tiny_snapshot(0), method=method, max_iterations=0)


def test_options_are_frozen_dataclasses_with_one_name_for_the_iteration_cap() -> None:
    import dataclasses

    from wdtnopt.solvers import ExactOptions, FastOptions, PyomoOptions, RelaxationOptions, SolverError

    for cls in (ExactOptions, FastOptions, PyomoOptions, RelaxationOptions):
        opts = cls()
        assert dataclasses.is_dataclass(opts) and "max_iterations" in cls.names()
        with pytest.raises(dataclasses.FrozenInstanceError):
            opts.gap = 0.5
    with pytest.raises(SolverError, match="takes ExactOptions"):
        solve(tiny_snapshot(0), method="exact", options=FastOptions())
    with pytest.raises(SolverError, match="oracle"):
        ExactOptions(oracle="magic")
    # an options object and a field override together; the override wins
    sol = solve(tiny_snapshot(1), method="fast", options=FastOptions(gap=0.5, max_iterations=3), gap=0.2)
    assert sol.stats["iterations"] <= 3


def test_status_is_a_str_enum_and_success_says_optimal() -> None:
    from wdtnopt.solvers import SolveStatus

    sol = solve(tiny_snapshot(2))
    assert isinstance(sol.status, SolveStatus) and sol.status == "optimal" and sol.success
    back = Solution.from_dict(json.loads(json.dumps(sol.to_dict())))
    assert back.status is SolveStatus.OPTIMAL and back.to_dict()["status"] == "optimal"
    capped = solve(paper_snapshot(N=30, M=5, seed=1), method="exact", max_iterations=1, gap=0.0)
    assert capped.status in ("feasible", "optimal") and capped.success == (capped.status == "optimal")
    if capped.status == "feasible":
        assert "max_iterations" in capped.stats["why"] or "round-off" in capped.stats["why"]


def test_a_decision_evaluate_rejects_raises_the_dedicated_error() -> None:
    from wdtnopt.solvers import InvalidDecisionError, make_solution

    s = tiny_snapshot(3, kind="plain")
    n = int(np.flatnonzero(s.request & ~s.migrating)[0])
    served = np.zeros(s.n_mus, dtype=bool)
    served[n] = True
    cpu = np.zeros(s.n_mus)
    cpu[n] = 10 * s.cpu_hz.max()  # above every server's CPU
    with pytest.raises(InvalidDecisionError, match="CPU .* over capacity") as err:
        make_solution(s, s.placement_prev, served, np.full(s.n_mus, 1e-3), cpu, bound=0.0, status="feasible",
                      method="mine", started=0.0)
    assert err.value.violations and err.value.method == "mine"


def test_make_solution_makes_the_status_true() -> None:
    from wdtnopt.solvers import make_solution

    s = tiny_snapshot(4)
    a = allocate(s, s.placement_prev)
    # optimal claimed with a gap above the asked one: downgraded
    sol = make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=0.5 * a.cost, status="optimal",
                        method="mine", started=0.0, gap=1e-6)
    assert sol.status == "feasible" and "status_downgraded" in sol.stats
    # a bound above the decision's own objective is no lower bound: rejected
    sol = make_solution(s, a.placement, a.served, a.tx_time, a.cpu_hz, bound=2 * a.cost, status="optimal",
                        method="mine", started=0.0, gap=1e-6)
    assert sol.bound == 0.0 and sol.status == "feasible" and sol.stats["bound_rejected"] == 2 * a.cost
