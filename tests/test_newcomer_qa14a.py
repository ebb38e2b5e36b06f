"""Newcomer QA (qa14a): extreme but legal snapshots and the CLI's handling of bad input.

Each test names the defect it guards against; the references are closed forms of the energy law
(docs/model.md, section 3) or the brute force of tests/test_solver_properties.py.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from wdtnopt.cost import evaluate
from wdtnopt.solvers import solve

from test_solver_properties import _snapshot

BIG = float(np.finfo(np.float64).max)
METHODS = ("exact", "fast", "relaxation")


def _one_mu(**over):
    """One MU alone on one server (gain 1e-10, N0 4e-21 W/Hz, B 1 MHz, D 1 Mbit, 100 cycles/bit)."""
    return _snapshot(1, 1, gain=[[1e-10]], data_bits=[1e6], cycles_per_bit=[100.0], failure_penalty=[1.0], **over)


def _alone_energy(T: float, F: float) -> float:
    """E(T - c/F) by hand: ``k t (2^(D / (B t)) - 1)`` with ``k = N0 B / g`` (served with all the CPU)."""
    t = T - 1e8 / F
    return 4e-21 * 1e6 / 1e-10 * t * math.expm1(1e6 * math.log(2) / (1e6 * t))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("field", ["cpu_hz", "p_max"])
def test_a_limit_at_the_largest_float_is_solved(method: str, field: str) -> None:
    """``cpu_hz`` or ``p_max`` of 1.7976931348623157e308 (finite, so legal) made ``solve`` raise
    ``SnapshotError: cpu_hz: must be finite, got inf``: the tolerance check built the tolerant
    snapshot with the limit times ``1 + FEAS_RTOL``, which overflowed. The solve now ends, and its
    objective is the hand-computed energy of the MU served with all of the CPU (deadline 0.5 s)."""
    s = _one_mu(**{field: [BIG]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # overflow warnings at 1.8e308 (report: left)
        sol = solve(s, method=method)
        ev = evaluate(s, sol)
    want = _alone_energy(0.5, float(s.cpu_hz[0]))
    assert not ev.violations and sol.objective == ev.objective
    assert sol.objective == pytest.approx(want, rel=1e-9)
    assert sol.bound <= want * (1 + 1e-9)
    assert sol.status == "optimal"


@pytest.mark.parametrize("method", METHODS)
def test_a_deadline_at_the_largest_float_does_not_raise(method: str) -> None:
    """The same overflow for ``deadline``: the solve ends with a decision evaluate accepts and a bound
    below its objective (the energy law itself rounds to 0 J at t ~ 1e308 s, so no closed form here)."""
    s = _one_mu(deadline=[BIG])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sol = solve(s, method=method)
        ev = evaluate(s, sol)
    assert not ev.violations and sol.objective == ev.objective
    assert sol.bound <= sol.objective


def _relay_knife() -> tuple:
    """One MU on BS 0, its DT pinned on server 1 behind a 0.5 s relay: 1e-7 s are left to transmit
    (its shortest time, at p_max = 1 kW, is 0.952e-7 s; no CPU work). ``evaluate`` accepts a latency
    up to ``deadline (1 + FEAS_RTOL)``: 5e-10 s more, 0.5% of the transmission window."""
    from wdtnopt.cost import FEAS_RTOL, Decision

    snr = 1e3 * 1e-10 / (4e-21 * 1e6)
    D = 1e-7 / 1.05 * 1e6 * math.log2(1 + snr)
    s = _snapshot(1, 2, gain=[[1e-10, 1e-10]], data_bits=[D], cycles_per_bit=[0.0], p_max=[1e3],
                  deadline=[0.5 + 1e-7], placement_prev=[1], allow_migration=False, failure_penalty=[1e3],
                  backhaul_latency_s=0.5 * (1 - np.eye(2)), backhaul_s_per_bit=np.zeros((2, 2)))
    t = float(s.deadline[0]) * (1 + FEAS_RTOL) - 0.5   # the whole tolerated latency goes to transmission
    d = Decision(placement=np.array([1]), served=np.array([True]), tx_time=np.array([t]), cpu_hz=np.array([0.0]))
    return s, d, t


def test_the_relay_knife_decision_is_accepted_and_cheaper_by_hand() -> None:
    """The reference of the test below (an xfail until the fourteenth round), by hand: the decision that sends in the tolerated window
    is accepted by evaluate, and its energy ``k t (2^(D/(B t)) - 1)`` is 7% below the strict
    optimum (the same formula at ``t = 1e-7`` s, where a strict decision must end)."""
    s, d, t = _relay_knife()
    ev = evaluate(s, d)
    assert not ev.violations
    D = float(s.data_bits[0])
    e = lambda t: 4e-21 * 1e6 / 1e-10 * t * math.expm1(D * math.log(2) / (1e6 * t))   # noqa: E731
    assert ev.objective == pytest.approx(e(t), rel=1e-9)
    assert e(t) < 0.93 * e(1e-7 * (1 + 1e-12))


@pytest.mark.parametrize("method", METHODS)
def test_bound_is_below_every_decision_evaluate_accepts_behind_a_long_relay(method: str) -> None:
    """Every method reported ``optimal`` with a bound 7.9% above the decision above, which evaluate
    accepts (xfail until the fourteenth round): solve's residue check (solvers/tolerance.py
    ``residue_may_matter``) now sees the tolerance worth that much on the strict decision and takes
    the bound from the tolerant snapshot; the strict decision is kept, so the status is not
    ``optimal`` at the asked gap."""
    s, d, _ = _relay_knife()
    sol = solve(s, method=method)
    assert sol.bound <= evaluate(s, d).objective * (1 + 1e-9)
    assert "transmission windows" in sol.stats["tolerance"]["why"]
    assert sol.status != "optimal"


def test_a_partial_menu_is_one_short_line_naming_each_missing_field(tmp_path, capsys) -> None:
    """A snapshot file with ``level_ratio`` alone: the CLI's line named the five missing fields, each
    followed by the same 130-character rule (900 characters). Each field is still named, and the
    rule said once."""
    import json

    from cli_runner import run_cli
    from wdtnopt.snapshot import _LEVEL_SPEC

    d = _snapshot(2, 1).to_dict()
    d["level_ratio"] = [[1.0, 0.5]] * 2
    path = tmp_path / "partial_menu.json"
    path.write_text(json.dumps(d))
    code, out, err = run_cli(["solve", str(path)], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    missing = [f for f in _LEVEL_SPEC if f != "level_ratio"]
    assert all(f"{f}: missing" in lines[0] for f in missing)
    assert lines[0].count("a semantic menu needs all of") == 1
    assert len(lines[0]) < 300


def test_integers_past_int64_in_a_snapshot_file(tmp_path, capsys) -> None:
    """JSON integers past int64 made object arrays, refused as "expected a rectangular array" of a
    rectangular array. A number field now reads 10**30 as the float 1e30 (the same snapshot as
    written with 1e30), one past the largest float is named as such, and an index field says the
    integer is not a server index; from the CLI each is one line and exit 2."""
    import json

    from cli_runner import run_cli
    from wdtnopt.errors import SnapshotError
    from wdtnopt.snapshot import Snapshot

    d = _snapshot(2, 2).to_dict()
    as_int = dict(d, dt_size_bits=[10**30, 1e8], storage_bits=[2 * 10**30, 10**30])
    as_float = dict(d, dt_size_bits=[1e30, 1e8], storage_bits=[2e30, 1e30])
    a, b = Snapshot.from_dict(as_int), Snapshot.from_dict(as_float)
    assert a.dt_size_bits.dtype == np.float64
    assert np.array_equal(a.dt_size_bits, b.dt_size_bits) and np.array_equal(a.storage_bits, b.storage_bits)
    assert solve(a).objective == solve(b).objective
    for field, value, needle in (("data_bits", [10**400, 1.0], "data_bits: expected numbers, got an integer past "
                                                                "the largest float"),
                                 ("assoc", [10**30, 0], "assoc: expected integer server indices, got the integer 1e+30"),
                                 ("request", [10**30, 1], "request: expected booleans, got the integer 1e+30")):
        with pytest.raises(SnapshotError, match=re.escape(needle)):
            Snapshot.from_dict(dict(d, **{field: value}))
        path = tmp_path / f"{field}.json"
        path.write_text(json.dumps(dict(d, **{field: value})))
        code, _, err = run_cli(["solve", str(path)], capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[0], err
        assert "rectangular" not in lines[0]


def _cpu_knife() -> tuple:
    """One MU on a server of 1 Hz: 300 cycles take 300 s of a 300.000000135 s deadline, leaving
    1.35e-7 s to send 1 bit (shortest 5.7e-8 s). evaluate's tolerance on the deadline and on the
    CPU adds 6e-7 s to that window (1e-9 of 300 s, twice)."""
    from wdtnopt.cost import FEAS_RTOL, Decision

    s = _snapshot(1, 1, gain=[[3.4e-12]], data_bits=[1.0], cycles_per_bit=[300.0], cpu_hz=[1.0],
                  deadline=[300.000000135], failure_penalty=[1e12], allow_migration=False)
    f = 1.0 * (1 + FEAS_RTOL)
    t = float(s.deadline[0]) * (1 + FEAS_RTOL) - 300.0 / f
    d = Decision(placement=np.array([0]), served=np.array([True]), tx_time=np.array([t]), cpu_hz=np.array([f]))
    return s, d, t


def test_the_cpu_knife_decision_is_accepted_and_cheaper_by_hand() -> None:
    """Reference of the second case below (an xfail until the fourteenth round): accepted by evaluate, energy by hand 10 times below the strict
    optimum (the formula at the strict window, ``deadline - 300 s``)."""
    s, d, t = _cpu_knife()
    ev = evaluate(s, d)
    assert not ev.violations
    e = lambda t: 4e-21 * 1e6 / 3.4e-12 * t * math.expm1(math.log(2) / (1e6 * t))   # noqa: E731
    assert ev.objective == pytest.approx(e(t), rel=1e-9)
    assert e(t) < 0.1 * e(float(s.deadline[0]) - 300.0)


@pytest.mark.parametrize("method", METHODS)
def test_bound_is_below_every_decision_evaluate_accepts_on_a_1hz_server(method: str) -> None:
    """The same residue through the CPU's tolerance (xfail until the fourteenth round)."""
    s, d, _ = _cpu_knife()
    sol = solve(s, method=method)
    assert sol.bound <= evaluate(s, d).objective * (1 + 1e-9)
    assert "transmission windows" in sol.stats["tolerance"]["why"]
