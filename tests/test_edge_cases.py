"""Numerical edge cases: each gives a correct, evaluate-clean result."""
import numpy as np
import pytest

from wdtnopt.testing import one_cell
from test_solvers_bruteforce import brute_force
from wdtnopt import evaluate, physics, solve


def check(snap, expected=None):
    sol = solve(snap, method="exact")
    assert sol.status == "optimal"
    ev = evaluate(snap, sol)
    assert ev.feasible, ev.violations
    assert ev.objective == pytest.approx(sol.objective, rel=1e-12, abs=1e-15)
    assert sol.bound <= sol.objective + 1e-15
    ref = brute_force(snap) if expected is None else expected
    assert sol.objective == pytest.approx(ref, rel=1e-6, abs=1e-12)
    return sol


def test_zero_requests():
    sol = check(one_cell(request=[False, False]), expected=0.0)
    assert not sol.served.any() and (sol.placement == [0, 0]).all()


def test_all_migrating():
    sol = check(one_cell(request=[True, True], migrating=[True, True]), expected=1.0)
    assert not sol.served.any() and (sol.placement == [0, 0]).all()


def test_server_with_no_dts_and_one_mu():
    snap = one_cell(gain=[[1e-10, 1e-12]], assoc=[0], bandwidth=[1e6], noise_psd=[1e-20], p_max=[0.2],
                    data_bits=[1e6], cycles_per_bit=[100.0], deadline=[1.0], request=[True], dt_size_bits=[1e8],
                    placement_prev=[0], migrating=[False], failure_penalty=[0.5], migration_penalty=[0.25])
    sol = check(snap)
    # alone on its server, it gets all of the CPU: t = 1 - 1e8/1e9 = 0.9 s
    assert sol.served[0] and sol.cpu_hz[0] == pytest.approx(1e9)
    assert sol.objective == pytest.approx(float(physics.energy_for_time(0.9, 1e6, 1e6, 1e-20, 1e-10)))


def test_deadline_shorter_than_relay():
    # the DT sits on server 1 (relay 12 ms) and must stay: deadline 10 ms -> cannot be served there
    snap = one_cell(placement_prev=[1, 0], allow_migration=False, deadline=[0.01, 1.0], cycles_per_bit=[0.0, 100.0])
    sol = check(snap, expected=0.5)
    assert not sol.served[0]


@pytest.mark.parametrize("g,served", [(1e-3, True), (1e-25, False)])
def test_extreme_gains(g, served):
    snap = one_cell(gain=[[g, g], [1e-10, 1e-12]])
    sol = check(snap)
    assert bool(sol.served[0]) is served
    assert np.isfinite(sol.objective)


def test_cpu_exactly_at_the_load():
    # MU 0 alone: at full power t_min = 1/log2(2001); CPU set so that t_min + cyc/F = deadline exactly
    t_min = 1.0 / np.log2(2001.0)
    cpu = 1e8 / (1.0 - t_min)
    snap = one_cell(cpu_hz=[cpu, cpu], failure_penalty=[10.0, 10.0])
    sol = check(snap, expected=float(t_min * 0.2))
    assert sol.served[0] and sol.power[0] == pytest.approx(0.2, rel=1e-6)


def test_storage_exactly_at_the_load():
    # two DTs of 1e8 bit and 2e8 bit of room on each server: both fit on one server exactly
    snap = one_cell(storage_bits=[2e8, 2e8], request=[True, True])
    sol = check(snap)
    load = np.bincount(sol.placement, weights=snap.dt_size_bits, minlength=2)
    assert (load <= snap.storage_bits).all()
