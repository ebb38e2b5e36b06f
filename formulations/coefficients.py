"""The energy law's coefficients, computed in one place for every formulation and solver.

The energy of sending ``D`` bits in time ``t`` at the power-cap-free optimum is
``E(t) = k t (exp(alpha / t) - 1)`` (docs/model.md, the transmission energy) with

    alpha = D ln2 / B      (s)        k = N0 B / g      (W)

(``D`` data bits, ``B`` bandwidth, ``N0`` noise PSD, ``g`` the gain to the serving BS).
"""
from __future__ import annotations

import numpy as np

from wdtnopt import physics
from wdtnopt.snapshot import Snapshot


def energy_coefficients(s: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha [N] in s, k [N] in W)`` of every MU of the snapshot (see the module docstring)."""
    alpha = s.data_bits * physics.LN2 / s.bandwidth
    with np.errstate(divide="ignore", over="ignore"):
        k = s.noise_psd * s.bandwidth / s.serving_gain
    return alpha, k


def storage_capacity_bits(s: Snapshot) -> np.ndarray:
    """[M] the most DT bits ``evaluate`` accepts on each server: ``storage_bits (1 + FEAS_RTOL)``.

    Every formulation and solver states storage with this capacity, so a placement is accepted by
    the methods exactly when ``evaluate`` accepts it.
    """
    from wdtnopt.cost import FEAS_RTOL

    return s.storage_bits * (1 + FEAS_RTOL)


def allowed_hosts(s: Snapshot) -> np.ndarray:
    """[N, M] bool: the servers each DT may be hosted on in this decision (docs/model.md, sections 5 and 12).

    A pinned DT (migrating, masked, or migration not allowed) stays on ``placement_prev``; the
    others may take any server that is up, or stay where they are (a DT on a down server may stay,
    unserved, but no DT moves onto a down server).
    """
    n, m = s.n_mus, s.n_bss
    allowed = np.broadcast_to(server_up(s), (n, m)).copy()
    allowed[s.pinned] = False
    allowed[np.arange(n), s.placement_prev] = True
    return allowed


def server_up(s: Snapshot) -> np.ndarray:
    """[M] bool: the server is up (can serve); all True when the snapshot does not say."""
    up = getattr(s, "server_up", None)
    return np.ones(s.n_bss, dtype=bool) if up is None else np.asarray(up, dtype=bool)
