"""A newcomer's pass over the fifth round's new code: extreme but legal inputs, CLI options."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("item", ["method=fast", "snapshot=3"])
def test_cli_option_naming_a_solve_argument_is_one_line(tmp_path, capsys, item):
    """``--option method=fast`` (or ``snapshot=``) reached ``solve()`` twice: a TypeError traceback
    ("got multiple values for argument") instead of the CLI's one line and exit 2."""
    from cli_runner import run_cli
    from wdtnopt.testing import paper_snapshot

    path = tmp_path / "s.json"
    paper_snapshot(N=3, M=2, seed=1).save(path)
    code, out, err = run_cli(["solve", str(path), "--option", item], capsys)
    name = item.partition("=")[0]
    assert code == 2 and err.count("\n") == 1 and f"--option {name}=" in err, (code, out, err)
    assert "Traceback" not in out + err


@pytest.mark.parametrize("time_limit", [float("inf"), 1e300])
def test_pyomo_with_an_unbounded_time_limit_solves_as_without_one(time_limit):
    """``time_limit=inf`` is legal (> 0) and the only way ``wdtnopt solve --time-limit`` can lift pyomo's
    300 s default; SCIP refuses a limit above 1e20 (its parameter error left the model unsolved:
    status ``feasible``, bound 0, gap 1). Reference: the same snapshot without a limit."""
    pytest.importorskip("pyomo")
    pytest.importorskip("pyscipopt")
    from wdtnopt.solvers import solve
    from wdtnopt.testing import paper_snapshot

    s = paper_snapshot(N=6, M=2, seed=1)
    ref = solve(s, method="pyomo", time_limit=None)
    sol = solve(s, method="pyomo", time_limit=time_limit)
    assert ref.status.value == "optimal"
    assert sol.status == ref.status and "solver_failed" not in sol.stats, sol.stats
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    assert sol.bound == pytest.approx(ref.bound, rel=1e-6)   # SCIP's bound, not the failure's 0


def test_bound_refusal_from_too_many_workers_names_workers(monkeypatch):
    """The supergradient bound's estimate has a part per worker process: when that part alone is
    above the memory, fewer MUs or BSs were advised (and named) although fewer workers fit every
    slot. Reference: the estimate itself, :func:`bound_memory_bytes`, at the advised count."""
    from wdtnopt import bounds, trace
    from wdtnopt.errors import WdtnoptError

    N, M, T = 50, 5, 10
    have = bounds.bound_memory_bytes(N, M, T, dual="supergradient", method="fast", workers=4) + 1
    monkeypatch.setattr(trace, "available_memory_bytes", lambda: have)
    bounds.check_bound_fits(N, M, T, dual="supergradient", method="fast", workers=4)   # fits
    with pytest.raises(WdtnoptError) as info:
        bounds.check_bound_fits(N, M, T, dual="supergradient", method="fast", workers=400)
    msg = str(info.value)
    assert msg.startswith("workers: ") and "(--workers)" in msg, msg
    most = int(msg.split("use at most ")[1].split()[0].replace(",", ""))
    assert bounds.bound_memory_bytes(N, M, T, dual="supergradient", method="fast", workers=most) <= have
    assert bounds.bound_memory_bytes(N, M, T, dual="supergradient", method="fast", workers=most + 1) > have


def test_huge_and_tiny_server_cpus_warn_nothing():
    """cpu_hz = 1e300 and 1e-300 are legal; fast's dual and its tangent CPU model squared the first
    (f^2 = inf: the slope's limit) and the allocation divided by the second (c / f = inf: no time
    left, so not servable), each a RuntimeWarning on every ``wdtnopt solve``. Reference: the
    brute force (tests/test_solver_properties.py)."""
    import sys
    import warnings
    from pathlib import Path

    from wdtnopt import Snapshot
    from wdtnopt.solvers import solve
    from wdtnopt.testing import paper_snapshot

    sys.path.insert(0, str(Path(__file__).parent))
    from test_solver_properties import _crowded, brute_force

    a = paper_snapshot(N=6, M=2, seed=1).to_dict()
    a["cpu_hz"] = [1e300, 1e-300]
    b = _crowded(np.random.default_rng(0)).to_dict()   # every DT on the server of 1e-300 Hz
    b["cpu_hz"] = [1e-300, 1e9]
    for s, method, options, gap in ((Snapshot.from_dict(d), *run) for d in (a, b) for run in (
            ("exact", {"exchange_gap": 0.0}, 1e-6), ("fast", {"milp_cpu": "tangent"}, 1e-2))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = brute_force(s)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = solve(s, method=method, **options)
        assert sol.status.value == "optimal", (method, sol.status)
        assert sol.bound <= opt * (1 + 1e-9) and opt * (1 - 1e-9) <= sol.objective <= opt * (1 + gap), (method, sol, opt)
