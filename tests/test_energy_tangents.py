"""The energy tangents of fast's tangent MILP and of exact's cuts are one definition
(solvers/fast_master.py, ``energy_tangents``; exact's ``_Master.e_and_slope_pairs`` takes it in the
CPU share): both against the derivative of ``E(T - c/f)`` in 40-digit arithmetic (mpmath), from
ordinary data down to data of 1e-300 bits and servers of 1e300 Hz."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt.solvers.allocation import PairData
from wdtnopt.solvers.exact import _Master
from wdtnopt.solvers.fast_master import energy_tangents
from wdtnopt.testing import paper_snapshot, tiny_snapshot

mpmath = pytest.importorskip("mpmath")


def _exact_slope(s, n: int, m: int, f: float) -> tuple[float, float]:
    """``E_n(T - c_n / f)`` (J) and its derivative in ``f`` (J per cycle/s), in 40 digits: ``E(t) = k t
    (e^{alpha / t} - 1)``, ``k = N0 B / g``, ``alpha = D ln2 / B`` (docs/model.md, section 4)."""
    mp = mpmath.mp
    mp.dps = 40
    g = mp.mpf(float(s.serving_gain[n]))
    B, N0, D = (mp.mpf(float(x)) for x in (s.bandwidth[n], s.noise_psd[n], s.data_bits[n]))
    k, alpha = N0 * B / g, D * mp.log(2) / B
    T = mp.mpf(float(s.deadline[n] - s.relay[n, m]))
    c = mp.mpf(float(s.cycles[n]))

    def energy(x):
        t = T - c / x
        return k * t * mp.expm1(alpha / t)

    x = mp.mpf(f)
    # dE/df = -E'(t) c / f^2 with E'(t) = k (e^u - 1 - u e^u), u = alpha / t
    t = T - c / x
    u = alpha / t
    de_dt = k * (mp.expm1(u) - u * mp.exp(u))
    return float(energy(x)), float(de_dt * c / (x * x))


def _pairs(s, rng, per_pair: int = 3):
    pd = PairData.of(s)
    ns, ms = np.nonzero(pd.servable & (pd.cycles[:, None] > 0))
    ns, ms = np.repeat(ns, per_pair), np.repeat(ms, per_pair)
    lo, hi = pd.f_min[ns, ms], pd.cpu_hz[ms].astype(float)
    # CPUs from just above the least one (where t is barely above t_min) up to the whole server
    f = lo + (hi - lo) * np.concatenate([[1e-6], rng.uniform(size=ns.size - 2), [1.0]])[:ns.size]
    return pd, ns, ms, f


@pytest.mark.parametrize("case", ["paper", "tight_cpu", "data_1e-100", "data_1e-300", "cpu_1e300"])
def test_tangents_of_fast_and_exact_match_the_derivative_in_40_digits(case):
    rng = np.random.default_rng(7)
    s = {"paper": lambda: paper_snapshot(6, 2, 3), "tight_cpu": lambda: tiny_snapshot(102, N=5, M=2, kind="tight_cpu"),
         "data_1e-100": lambda: paper_snapshot(6, 2, 3).replace(data_bits=np.full(6, 1e-100)),
         "data_1e-300": lambda: paper_snapshot(6, 2, 3).replace(data_bits=np.full(6, 1e-300)),
         "cpu_1e300": lambda: paper_snapshot(6, 2, 3).replace(cpu_hz=np.array([1e300, 1e9]))}[case]()
    pd, ns, ms, f = _pairs(s, rng)
    assert ns.size >= 6
    e, de_df = energy_tangents(pd, ns, ms, f)
    F = pd.cpu_hz[ms].astype(float)
    share = f / F
    ref = 3.7e-3
    e_p, de_dp = _Master.e_and_slope_pairs(type("M", (), {"pd": pd, "ref": ref})(), ns, ms, share)
    for i in range(ns.size):
        want_e, want_de = _exact_slope(s, int(ns[i]), int(ms[i]), float(F[i] * share[i]))
        assert e[i] == pytest.approx(want_e, rel=1e-12), (case, i)
        # the slope to 1e-9 (one below the least normal float, 2.2e-308, may be its limit 0: f^2 past
        # the largest float at a server of 1e300 Hz)
        assert de_df[i] == pytest.approx(want_de, rel=1e-9, abs=2.3e-308), (case, i)
        assert e_p[i] * ref == pytest.approx(want_e, rel=1e-12), (case, i)
        # in the share: d e / d p = F d e / d f
        assert de_dp[i] * ref == pytest.approx(float(F[i]) * want_de, rel=1e-9), (case, i)
