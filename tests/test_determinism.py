"""Same seed, same numbers: traces, solutions, simulations, bounds."""
import subprocess
import sys

import numpy as np

from wdtnopt import Scenario, generate_trace, hindsight_bound, simulate, solve


def test_solutions_are_identical():
    tr = generate_trace(Scenario.paper(n_mus=12, n_bss=3), seed=11, slots=3)
    for t in range(3):
        a, b = solve(tr.snapshot(t)), solve(tr.snapshot(t))
        for f in ("placement", "served", "tx_time", "cpu_hz", "power", "energy"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), f
        assert a.objective == b.objective and a.bound == b.bound


def test_simulation_and_bound_identical_across_processes():
    code = ("import numpy as np, wdtnopt as w;"
            "tr=w.generate_trace(w.Scenario.paper(n_mus=5, n_bss=2), seed=3, slots=12);"
            "r=w.simulate('lyapunov', tr); hb=w.hindsight_bound(tr, iters=2);"
            "print(repr(r.energy_per_mu_slot), repr(r.failure_ratio), repr(hb.energy_per_mu_slot))")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert outs[0] == outs[1] and outs[0].strip()
    tr = generate_trace(Scenario.paper(n_mus=5, n_bss=2), seed=3, slots=12)
    r = simulate("lyapunov", tr)
    hb = hindsight_bound(tr, iters=2)
    assert outs[0].split() == [repr(r.energy_per_mu_slot), repr(r.failure_ratio), repr(hb.energy_per_mu_slot)]
