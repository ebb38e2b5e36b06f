"""A newcomer's fourth pass: inputs of the wrong form are named, documented behaviour holds."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt import Scenario, generate_trace, simulate
from wdtnopt.errors import WdtnoptError


@pytest.mark.parametrize("eps", [[0.1, 0.2], "abc", [[0.1]]])
def test_lyapunov_eps_of_the_wrong_form_is_named(eps):
    # one price per MU of the wrong length, a word or a nested list used to end in numpy's
    # ValueError about broadcasting, naming no field
    from wdtnopt.policies.lyapunov import LyapunovPolicy

    trace = generate_trace(Scenario.paper(n_mus=4, n_bss=2), seed=0, slots=2)
    with pytest.raises(WdtnoptError, match=r"eps: expected one number in \[0, 1\] or one per MU \(4\)"):
        simulate(LyapunovPolicy(eps=eps), trace)
    ok = simulate(LyapunovPolicy(eps=[0.05] * 4), trace)     # one per MU stays accepted, as one number
    assert ok.energy_per_mu_slot == simulate(LyapunovPolicy(eps=0.05), trace).energy_per_mu_slot


def _snapshot_dict():
    return generate_trace(Scenario.paper(n_mus=4, n_bss=3), seed=0, slots=2).snapshot(0).to_dict()


@pytest.mark.parametrize("field", ["backhaul_latency_s", "backhaul_s_per_bit"])
def test_a_backhaul_with_a_relay_to_the_serving_bs_is_refused(field):
    # docs/model.md, section 3: the relay is zero when the DT sits on its MU's serving BS; a
    # hand-made snapshot with a non-zero diagonal used to be accepted and its diagonal charged as
    # that relay by evaluate and every solver (0.15 s on it: the exact optimum of a 30 x 5 snapshot went from 0.028 to 0.081 J)
    from wdtnopt import Snapshot
    from wdtnopt.errors import SnapshotError

    d = _snapshot_dict()
    d[field] = [[0.15 if i == j else v for j, v in enumerate(row)] for i, row in enumerate(d[field])]
    with pytest.raises(SnapshotError, match=rf"{field}: the diagonal must be 0 .* at index 0,0"):
        Snapshot.from_dict(d)
    snap = Snapshot.from_dict(_snapshot_dict())
    assert (snap.relay[np.arange(snap.n_mus), snap.assoc] == 0).all()


def test_a_snapshot_file_without_mus_names_the_sizes():
    # empty per-MU lists used to be reported as "request: expected booleans" (numpy reads [] as floats)
    from wdtnopt import Snapshot
    from wdtnopt.errors import SnapshotError

    d = _snapshot_dict()
    for k, v in d.items():
        if isinstance(v, list) and len(v) == 4:
            d[k] = []
    with pytest.raises(SnapshotError) as err:
        Snapshot.from_dict(d)
    assert "N, M >= 1" in str(err.value) and "booleans" not in str(err.value)


@pytest.mark.parametrize("agent,bad", [("mu_0", "abc"), ("mu_0", [np.nan]), ("bs_1", [np.nan, 1.0, 1.0]),
                                       ("controller", [np.nan, 0, 0]), ("controller", {"a": 1})])
def test_env_actions_that_are_not_numbers_name_the_agent(agent, bad):
    # a word used to end in numpy's "could not convert string to float" naming no agent, a NaN
    # power in evaluate's "power: must be >= 0" naming no agent, a NaN host in an int cast of garbage
    from wdtnopt.env import parallel_env

    env = parallel_env(scenario=Scenario.paper(n_mus=3, n_bss=2), seed=0, max_cycles=3)
    env.reset(seed=1)
    actions = {a: env.action_space(a).sample() for a in env.agents}
    actions[agent] = bad
    with pytest.raises(WdtnoptError, match=rf"^actions\['{agent}'\]: expected"):
        env.step(actions)
    assert env.sim.t == 0          # nothing was stepped


def test_cli_lyapunov_options_reach_the_failure_aware_scheduler():
    # `--policy lyapunov-fa --V 1 --theta 0` used to run lyapunov-fa at its defaults (V = 1000,
    # theta = 3): the options went to "lyapunov" only, silently
    from wdtnopt.cli.core import build_policy
    from wdtnopt.policies.failure_aware import FailureAwareLyapunovPolicy

    pol = build_policy("lyapunov-fa", 1.0, 0.1, 0.0)
    assert (pol.V, pol._eps, pol.theta) == (1.0, 0.1, 0.0)
    sc = Scenario.paper(n_mus=4, n_bss=3, server_mtbf_s=(5.0, 5.0, 1e6), server_mttr_s=5.0, self_healing=0)
    trace = generate_trace(sc, seed=0, slots=12)
    got = simulate(pol, trace)
    ref = simulate(FailureAwareLyapunovPolicy(V=1.0, eps=0.1, theta=0.0), trace)
    assert (got.energy_per_mu_slot, got.failure_ratio) == (ref.energy_per_mu_slot, ref.failure_ratio)


def test_snapshot_solver_policy_names_an_unknown_method_when_built():
    """`LyapunovPolicy(method="bogus")` was accepted and failed only at the first solve of a run."""
    from wdtnopt.policies.lyapunov import LyapunovPolicy, MyopicOraclePolicy

    for cls in (LyapunovPolicy, MyopicOraclePolicy):
        with pytest.raises(WdtnoptError, match=r"method: expected 'auto' or one of .*exact.*'bogus'"):
            cls(method="bogus")
        assert cls(method="fast").method == "fast" and cls().method == "auto"


def test_checkpoint_policy_without_a_directory_is_named():
    """`checkpoint:` with nothing after it looked for ./checkpoint.pt in the working directory."""
    from wdtnopt.policies import make_policy

    for spec in ("checkpoint:", "checkpoint:  "):
        with pytest.raises(WdtnoptError, match=r"names no directory; expected checkpoint:DIR"):
            make_policy(spec)
