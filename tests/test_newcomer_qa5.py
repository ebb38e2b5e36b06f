"""A newcomer's fifth pass: extreme but legal inputs, options that must not be ignored."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace


def _snapshot_dict(n_mus=6, n_bss=3, seed=3):
    return generate_trace(Scenario.paper(n_mus=n_mus, n_bss=n_bss), seed=seed, slots=2).snapshot(0).to_dict()


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_a_huge_server_cpu_is_solved_like_zero_compute(method):
    # cpu_hz = 1e300 is finite and positive, so legal; a server hosting one busy DT priced it with
    # a Python float's F**2, which raised OverflowError (a traceback through `wdtnopt solve`).
    # Reference: with that much CPU the computation takes no time, so the optimum is the one of the
    # same snapshot whose DTs need no cycles at all.
    from wdtnopt import Snapshot, evaluate, solve

    d = _snapshot_dict()
    d["cpu_hz"] = [1e300] * len(d["cpu_hz"])
    huge = Snapshot.from_dict(d)
    d["cycles_per_bit"] = [0.0] * len(d["cycles_per_bit"])
    zero = Snapshot.from_dict(d)
    sol = solve(huge, method=method)
    ref = solve(zero, method="exact")
    assert sol.status.value == "optimal" and ref.status.value == "optimal"
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    assert evaluate(huge, sol).objective == pytest.approx(sol.objective, rel=1e-9)


@pytest.mark.parametrize("command", ["simulate", "gap"])
def test_lyapunov_options_without_a_lyapunov_policy_are_refused(command, capsys):
    # `wdtnopt simulate --policy static --V 5 --eps 0.3` ran static and said nothing: the options
    # only reach lyapunov and lyapunov-fa (wdtnopt.cli.core.build_policy)
    from cli_runner import run_cli

    args = [command, "--policy", "static", "--policy", "oracle", "--V", "5", "--eps", "0.3",
            "--n-mus", "3", "--n-bss", "2", "--slots", "2"]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--V/--eps: only the lyapunov and lyapunov-fa policies take them" in err
    code, out, err = run_cli(["simulate", "--policy", "static", "--policy", "lyapunov", "--V", "5", "--n-mus", "3",
                              "--n-bss", "2", "--slots", "2", "--no-progress"], capsys)
    assert code == 0 and "lyapunov" in out
