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
