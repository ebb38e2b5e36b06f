"""Predictive placement: DTs go at frame starts to where their MUs will be over the frame.

The Gauss-Markov speed and heading are AR(1) processes (docs/model.md, section 2), so their MMSE
k-step predictors given the current value are (docs/model.md, section 12)

    E[v_{t+k} | v_t] = mean + a^k (v_t - mean),    Var = s^2 (1 - a^(2k)),

and the heading likewise. Positions move by ``tau v cos(h)``, a nonlinear function; with ``v`` and
``h`` independent given the present and ``h`` Gaussian, ``E[v cos h] = E[v] cos(E[h]) exp(-Var(h)/2)``,
so the mean position k slots ahead has the closed form :func:`predict_positions` (exact for the
unclipped, unreflected model; the border reflection is applied to the mean path, an approximation
near the walls). The heading's long-run mean is hidden from a causal policy; the predictor takes
the current heading for it (the AR(1) predictor with ``mean = h_t``).

Servers: the probability that a server is up k slots ahead given its state now is the two-state
chain's k-step transition (:func:`wdtnopt.processes.availability.up_probability_ahead`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..cost import Decision
from ..processes import availability
from ..snapshot import Snapshot
from . import Policy
from .heuristics import equal_share_allocation, move_towards


def predict_ar1(x_now: np.ndarray, mean: float | np.ndarray, a: float, std: float, k: int | np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """MMSE k-step prediction of a stationary AR(1) ``x_t = a x_{t-1} + (1-a) mean + sqrt(1-a^2) std w_t``.

    Returns ``(mean + a^k (x_now - mean), std^2 (1 - a^(2k)))``: the conditional mean and the error
    variance (broadcast over ``x_now`` and ``k``).
    """
    ak = np.power(float(a), np.asarray(k, float))
    return mean + ak * (np.asarray(x_now, float) - mean), std * std * (1.0 - ak * ak)


def predict_positions(pos: np.ndarray, speed: np.ndarray, heading: np.ndarray, sc: Any, horizon: int) -> np.ndarray:
    """[horizon + 1, N, 2] mean positions 0..horizon slots ahead under the Gauss-Markov model.

    ``pos [N, 2]``, ``speed [N]``, ``heading [N]`` at the current slot. Step ``j`` moves by
    ``tau E[v_{t+j}] E[cos h_{t+j}], tau E[v_{t+j}] E[sin h_{t+j}]`` with the AR(1) predictions of
    :func:`predict_ar1` (heading mean taken as the current heading, see the module docstring).
    """
    from ..processes.mobility import _reflect

    j = np.arange(horizon)[:, None]
    v, _ = predict_ar1(speed[None, :], sc.speed_mean_mps, sc.gm_memory, sc.speed_std_mps, j)
    h, var_h = predict_ar1(heading[None, :], heading[None, :], sc.gm_memory, sc.heading_std_rad, j)
    damp = np.exp(-var_h / 2.0)
    step = sc.slot_s * np.maximum(v, 0.0) * damp
    path = np.concatenate([pos[None], pos[None] + np.cumsum(np.stack([step * np.cos(h), step * np.sin(h)], -1), 0)], 0)
    return np.stack([_reflect(path[..., 0], sc.area_m)[0], _reflect(path[..., 1], sc.area_m)[0]], -1)


class PredictivePolicy(Policy):
    """At each frame start every movable DT goes to the server that is predicted to serve its MU for
    the most of the coming frame, weighted by the probability that the server is up then (failure
    prediction); storage permitting, MUs in index order; equal CPU shares and least power per slot
    (as ``follow``). ``horizon_slots`` (default: the frame) is how far ahead it looks."""

    name = "predictive"

    def __init__(self, *, horizon_slots: int | None = None):
        self.horizon_slots = horizon_slots

    def targets(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        """[N] preferred host of each DT for the coming frame."""
        tr, t = self.trace, state.t
        sc = tr.scenario
        k = self.horizon_slots or sc.frame_slots
        path = predict_positions(tr.positions[t], tr.speed[t], tr.heading[t], sc, k)           # [k+1, N, 2]
        dist = np.linalg.norm(path[:, :, None, :] - tr.bs_positions[None, None], axis=-1)      # [k+1, N, M]
        near = np.argmin(dist[1:], axis=2)                                                     # [k, N] predicted serving BS
        p_fail, p_rep = availability.transition_probabilities(sc.slot_s, sc.server_mtbf_s, sc.server_mttr_s)
        p_up = availability.up_probability_ahead(snapshot.server_up[None, :], np.arange(1, k + 1)[:, None], p_fail, p_rep)  # [k, M]
        score = np.zeros((tr.n_mus, tr.n_bss))
        rows = np.arange(tr.n_mus)
        for j in range(k):
            np.add.at(score, (rows, near[j]), p_up[j, near[j]])
        score[rows, snapshot.assoc] += 1e-9   # ties: the serving BS now
        return np.argmax(score, axis=1)

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        return move_towards(snapshot, self.targets(snapshot, state))

    def allocate(self, snapshot: Snapshot, state: Any) -> Decision:
        return equal_share_allocation(snapshot)
