"""Mobility sources: where the MU positions of a trace come from (docs/mobility.md).

A source turns ``(scenario, slots, layout_rng, mobility_rng)`` into a :class:`MobilityTrack`: MU
positions at the slot times, with speed and heading. :class:`GaussMarkov` is the built-in model
(docs/model.md, section 2) and the default; it draws from the trace's ``layout`` and ``mobility``
streams exactly as before sources existed, so default traces are unchanged bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..scenario import Scenario


@dataclass(frozen=True, eq=False)
class MobilityTrack:
    """MU positions of ``slots`` slots.

    Attributes
    ----------
    positions : ndarray, shape [T, N, 2]
        Position of each MU at each slot time (m), inside the square ``[0, area_m]^2``.
    speed : ndarray, shape [T, N]
        Speed (m/s); position ``t + 1`` is position ``t`` moved by ``speed[t] * slot_s`` along
        ``heading[t]``.
    heading : ndarray, shape [T, N]
        Direction of travel (rad, counter-clockwise from the x axis).
    report : object or None
        What cleaning did to imported data (a :class:`CleaningReport`); None for a model.
    """

    positions: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    report: Any = None


@runtime_checkable
class MobilitySource(Protocol):
    """Anything that gives the MU positions of a trace."""

    def track(self, scenario: Scenario, slots: int, layout_rng: np.random.Generator,
              mobility_rng: np.random.Generator) -> MobilityTrack:
        """Positions of ``scenario.n_mus`` MUs at ``slots`` slot times.

        Parameters
        ----------
        scenario : Scenario
            Gives N, the slot length and the area.
        slots : int
            Number of slots T.
        layout_rng, mobility_rng : numpy.random.Generator
            The trace's ``layout`` and ``mobility`` streams (a replayed source ignores them).

        Returns
        -------
        MobilityTrack
        """
        ...


@dataclass(frozen=True)
class GaussMarkov:
    """The Gauss-Markov model with reflection at the border (docs/model.md, section 2).

    Starts are uniform over the area (``layout`` stream); speeds and headings follow
    :func:`gauss_markov` (``mobility`` stream). Parameters come from the scenario.
    """

    def track(self, scenario: Scenario, slots: int, layout_rng: np.random.Generator,
              mobility_rng: np.random.Generator) -> MobilityTrack:
        start = layout_rng.uniform(0.0, scenario.area_m, (scenario.n_mus, 2))
        pos, speed, heading = gauss_markov(mobility_rng, scenario, slots, start)
        return MobilityTrack(pos, speed, heading)


def gauss_markov(rng: np.random.Generator, sc: Scenario, slots: int, start: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions [T,N,2], speeds [T,N], headings [T,N] of the Gauss-Markov model with reflection.

    Slot 0 holds the start; position t moves by ``v_{t-1} tau (cos h_{t-1}, sin h_{t-1})``. At the
    border the position is mirrored and the heading (and its mean) flips, so MUs stay inside.
    """
    n = start.shape[0]
    a, tau, side = sc.gm_memory, sc.slot_s, sc.area_m
    root = math.sqrt(max(1.0 - a * a, 0.0))
    h_mean = rng.uniform(0.0, 2 * math.pi, n)
    noise = rng.standard_normal((slots, 2, n))
    pos = np.empty((slots, n, 2))
    speed = np.empty((slots, n))
    heading = np.empty((slots, n))
    x, y = start[:, 0].copy(), start[:, 1].copy()
    v = np.full(n, sc.speed_mean_mps)
    h = h_mean.copy()
    for t in range(slots):
        if t > 0:
            x = x + v * tau * np.cos(h)
            y = y + v * tau * np.sin(h)
            x, flip_x = _reflect(x, side)
            y, flip_y = _reflect(y, side)
            # mirror the direction of travel across the wall it hit (and its mean, to move away)
            h = np.where(flip_x, math.pi - h, h)
            h_mean = np.where(flip_x, math.pi - h_mean, h_mean)
            h = np.where(flip_y, -h, h)
            h_mean = np.where(flip_y, -h_mean, h_mean)
            v = np.maximum(a * v + (1 - a) * sc.speed_mean_mps + root * sc.speed_std_mps * noise[t, 0], 0.0)
            h = a * h + (1 - a) * h_mean + root * sc.heading_std_rad * noise[t, 1]
        pos[t, :, 0], pos[t, :, 1] = x, y
        speed[t], heading[t] = v, h
    return pos, speed, heading


def _reflect(z: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
    """Mirror coordinates into [0, side]; also report which ones crossed an odd number of walls."""
    period = 2 * side
    w = np.mod(z, period)
    crossed = np.floor_divide(z, side).astype(np.int64) % 2 != 0
    return np.where(w > side, period - w, w), crossed


def resolve_mobility(mobility: Any) -> MobilitySource:
    """The source that ``generate_trace(..., mobility=...)`` names.

    Parameters
    ----------
    mobility : None or MobilitySource
        None: :class:`GaussMarkov`; a source: itself.

    Returns
    -------
    MobilitySource

    Raises
    ------
    WdtnoptError
        ``mobility`` is none of these.
    """
    from ..errors import WdtnoptError

    if mobility is None:
        return GaussMarkov()
    if isinstance(mobility, MobilitySource):
        return mobility
    raise WdtnoptError(f"mobility: expected None or a mobility source, got {type(mobility).__name__}")
