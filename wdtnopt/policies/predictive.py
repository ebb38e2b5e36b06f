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

Recorded positions (a trace whose ``mobility_report`` is set: CSV/Parquet tables, SUMO FCD files,
docs/mobility.md) follow no Gauss-Markov law, so its parameters say nothing about them; there the
predictor extrapolates the observed motion at constant velocity (:func:`predict_positions_recorded`).
The trace's speed and heading at slot ``t`` of such a trace are the step from position ``t`` to
position ``t + 1`` (:func:`wdtnopt.processes.mobility.motion_from_positions`), a future record, so
the velocity is estimated from the positions at ``t - 1`` and ``t`` only.

Servers: the probability that a server is up k slots ahead given its state now is the two-state
chain's k-step transition (:func:`wdtnopt.processes.availability.up_probability_ahead`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cost import Decision
from ..processes import availability
from ..snapshot import Snapshot
from . import Policy, check_horizon_slots
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


def predict_positions_recorded(pos: np.ndarray, pos_prev: np.ndarray | None, slot_s: float, horizon: int) -> np.ndarray:
    """[horizon + 1, N, 2] positions 0..horizon slots ahead at constant velocity (recorded mobility).

    Parameters
    ----------
    pos : ndarray, shape [N, 2]
        Positions at the current slot (m).
    pos_prev : ndarray, shape [N, 2], or None
        Positions one slot earlier (m); None at slot 0, where the MUs are predicted to stay.
    slot_s : float
        Slot length (s).
    horizon : int
        Slots ahead.

    Returns
    -------
    ndarray, shape [horizon + 1, N, 2]
        ``pos + j * slot_s * v`` for ``j = 0..horizon`` with ``v = (pos - pos_prev) / slot_s`` (m/s),
        the last observed velocity (causal: no position after the current slot is used). Not
        reflected at the area's border: recorded vehicles do not bounce off it.
    """
    pos = np.asarray(pos, float)
    v = np.zeros_like(pos) if pos_prev is None else (pos - np.asarray(pos_prev, float)) / slot_s
    j = np.arange(horizon + 1, dtype=float)[:, None, None]
    return pos[None] + j * slot_s * v[None]


class PredictivePolicy(Policy):
    """At each frame start every movable DT goes to the server that is predicted to serve its MU for
    the most of the coming frame, weighted by the probability that the server is up then (failure
    prediction); storage permitting, MUs in index order; equal CPU shares and least power per slot
    (as ``follow``). ``horizon_slots`` (default: the frame) is how far ahead it looks.

    Positions are predicted with the Gauss-Markov model (:func:`predict_positions`) on a trace of
    that model, and at the last observed velocity (:func:`predict_positions_recorded`) on recorded
    mobility (a trace with a ``mobility_report``)."""

    name = "predictive"

    def __init__(self, *, horizon_slots: int | None = None):
        check_horizon_slots(horizon_slots)
        self.horizon_slots = horizon_slots
        self._seen: tuple[int, np.ndarray] | None = None

    def reset(self, trace: Any) -> None:
        super().reset(trace)
        self._seen = None

    def _recorded(self) -> bool:
        return getattr(self.trace, "mobility_report", None) is not None

    def _positions_before(self, t: int) -> np.ndarray | None:
        """[N, 2] positions at slot ``t - 1`` (None at slot 0): those :meth:`allocate` kept, else
        read from the trace (a windowed trace regenerates from slot 0 to read back)."""
        if t == 0:
            return None
        if self._seen is not None and self._seen[0] == t - 1:
            return self._seen[1]
        return np.asarray(self.trace.positions[t - 1], float)

    def _path(self, t: int, k: int) -> np.ndarray:
        tr = self.trace
        sc = tr.scenario
        if self._recorded():
            return predict_positions_recorded(tr.positions[t], self._positions_before(t), sc.slot_s, k)
        return predict_positions(tr.positions[t], tr.speed[t], tr.heading[t], sc, k)

    def targets(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        """[N] preferred host of each DT for the coming frame."""
        tr, t = self.trace, state.t
        sc = tr.scenario
        k = self.horizon_slots or sc.frame_slots
        path = self._path(t, k)                                                                # [k+1, N, 2]
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
        if self._recorded():   # keep this slot's positions for the next slot's velocity estimate
            self._seen = (state.t, np.array(self.trace.positions[state.t], float))
        return equal_share_allocation(snapshot)
