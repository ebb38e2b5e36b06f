"""The per-trace bounds hold for every run ``evaluate`` accepts, knife-edge data included.

``evaluate`` accepts a latency up to ``deadline (1 + FEAS_RTOL)`` (docs/model.md, section 9). A
trace whose deadline sits 5e-10 relative below an MU's least latency at its host (full CPU, full
power) lets a plan serve it there, while the strict limits make the host unservable and leave only
a server that cannot hold the DT: the bounds then charged a failure price (5 J and 24 J) against a
run of 2.5 mJ (docs/longterm.md, "The hindsight lower bound").
"""
import dataclasses

import numpy as np
import pytest

from wdtnopt.bounds import hindsight_bound
from wdtnopt.bounds_migration import migration_bound
from wdtnopt.bounds_plan import PlanPolicy
from wdtnopt.scenario import Scenario
from wdtnopt.simulation import simulate
from wdtnopt.trace import generate_trace


def knife_edge_trace():
    """One MU, two servers, one slot: the DT's host (relay 0 s) with a quarter of the CPU and a
    deadline 5e-10 relative below its least latency there; the other server 100 times faster (meets
    the deadline strictly) but with room for half the DT only."""
    tr = generate_trace(Scenario(n_mus=1, n_bss=2), seed=0, slots=1)
    tr = dataclasses.replace(tr, request=np.ones_like(tr.request))
    k = int(tr.initial_placement[0])
    other = np.arange(2) != k
    tr = dataclasses.replace(tr, cpu_hz=np.where(other, 100.0, 0.25) * tr.cpu_hz,
                             storage_bits=np.where(other, tr.dt_size_bits[0] / 2, tr.storage_bits))
    s = tr.snapshot(0)
    least = s.relay[0] + s.t_min[0] + s.cycles[0] / s.cpu_hz
    assert least[~other][0] > least[other][0]    # the other server alone is strictly servable
    return dataclasses.replace(tr, deadline=np.array([least[k] * (1 - 5e-10)])), k


@pytest.mark.parametrize("dual", ["columns", "supergradient"])
def test_trace_bounds_are_below_a_run_evaluate_accepts_at_a_knife_edge_deadline(dual):
    tr, k = knife_edge_trace()
    s = tr.snapshot(0)
    plan = PlanPolicy(placement=np.array([[k]]), served=np.ones((1, 1), bool), tx_time=s.t_min[None].copy(),
                      cpu_hz=s.cpu_hz[[k]][None].copy())
    run = simulate(plan, tr)                    # the simulator refuses a plan evaluate finds in violation
    assert run.failures_per_mu.sum() == 0       # served at the host
    energy = float(run.energy_per_mu.sum())
    assert energy == pytest.approx(0.002544, rel=1e-3)
    hb = hindsight_bound(tr, eps=0.0, dual=dual)
    assert hb.forced_failures.sum() == 0
    best = max(p.G for p in hb.points)          # was 5.0006 J with the columns dual
    mb = migration_bound(tr, hb, eps=0.0)       # was 23.99 J with the columns dual
    assert best <= energy * (1 + 1e-9)
    assert mb.total_energy <= energy * (1 + 1e-9)
    assert best > 0.5 * energy                  # still a bound worth having (1.886 mJ)
