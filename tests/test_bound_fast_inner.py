"""The supergradient hindsight bound with the inner method ``fast``: the slot solves no longer
continue in exact's branch and bound (the bound sums each slot's certified dual bound, which the
continuation only raises; docs/longterm.md, "The inner method"), and the bound stays valid."""
from __future__ import annotations

import pytest

from wdtnopt import Scenario, generate_trace, hindsight_bound, simulate
from wdtnopt.bounds import FAST_INNER_OPTIONS
from wdtnopt.solvers import FastOptions


@pytest.fixture
def continuations(monkeypatch):
    import wdtnopt.solvers.fast as fast

    calls = []
    inner = fast._continue_in_exact

    def counted(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    monkeypatch.setattr(fast, "_continue_in_exact", counted)
    return calls


def test_the_fast_inner_method_does_not_continue_in_exact_and_stays_a_bound(continuations):
    tr = generate_trace(Scenario.paper(n_mus=20, n_bss=5), seed=0, slots=4)
    before = {k: getattr(FastOptions, k) for k in FAST_INNER_OPTIONS}   # fast's own defaults
    old = hindsight_bound(tr, iters=2, workers=1, dual="supergradient", method="fast", solver_options=before)
    assert continuations, "this trace's slots continue in exact under fast's own defaults"
    continuations.clear()
    hb = hindsight_bound(tr, iters=2, workers=1, dual="supergradient", method="fast")
    assert not continuations
    # the same certified dual bounds, less the continuation's share of the integrality gap
    assert hb.energy_per_mu_slot == pytest.approx(old.energy_per_mu_slot, rel=5e-3)
    for policy in ("static", "follow", "oracle"):
        assert hb.energy_per_mu_slot <= simulate(policy, tr).energy_per_mu_slot * (1 + 1e-9), policy
    # solver_options still win: asked for, the continuation runs
    hindsight_bound(tr, iters=1, workers=1, dual="supergradient", method="fast", solver_options={"exact_pairs": 2000})
    assert continuations


def test_bench_bound_fast_inner_smoke():
    """benchmarks/bench_bound_fast_inner.py at its smoke preset: both runs on one trace, valid bounds."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_bound_fast_inner.py"
    spec = importlib.util.spec_from_file_location("bench_bound_fast_inner", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--preset", "smoke"])
    assert out["before"]["solves"] == out["after"]["solves"] > 0
    assert out["after"]["value"] == pytest.approx(out["before"]["value"], rel=5e-3) and out["after"]["value"] > 0
