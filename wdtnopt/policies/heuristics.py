"""The two simple policies: ``static`` (DTs never move) and ``follow`` (DTs follow their MU)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cost import Decision
from ..snapshot import Snapshot
from . import Policy


def equal_share_allocation(s: Snapshot, placement: np.ndarray | None = None) -> Decision:
    """Equal CPU shares and the least power that meets the deadline under them, or fail.

    On each server the requesting, available DTs it hosts split its CPU equally. Each such MU then
    transmits for as long as the deadline allows, ``t = deadline - relay - cyc / f`` (the least
    energy, E being decreasing in t); if that is shorter than the power cap allows (``t < t_min``)
    it does not transmit and fails, and the shares are recomputed among the MUs left (repeated until
    no MU drops out; shares only grow, so no MU that was feasible becomes infeasible).
    """
    x = s.placement_prev if placement is None else placement
    idx = np.arange(s.n_mus)
    served = s.request & ~s.migrating
    while True:  # drop MUs that cannot make it and re-share among the rest (shares only grow)
        k = np.bincount(x[served], minlength=s.n_bss)
        cpu = np.where(served, s.cpu_hz[x] / np.maximum(k[x], 1), 0.0)
        with np.errstate(divide="ignore"):
            compute = np.where(cpu > 0, s.cycles / np.where(cpu > 0, cpu, 1.0), np.inf)
        t_avail = s.deadline - s.relay[idx, x] - compute
        ok = served & (t_avail >= s.t_min) & (t_avail > 0)
        if (ok == served).all():
            break
        served = ok
    return Decision(placement=x.copy(), served=served, tx_time=np.where(served, t_avail, 0.0),
                    cpu_hz=np.where(served, cpu, 0.0))


class StaticPolicy(Policy):
    """DTs stay where they started; equal CPU shares, least deadline-meeting power."""

    name = "static"

    def allocate(self, snapshot: Snapshot, state: Any) -> Decision:
        return equal_share_allocation(snapshot)


class FollowPolicy(StaticPolicy):
    """At each frame start every DT moves to its MU's serving BS if storage allows (MUs in index order)."""

    name = "follow"

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        return move_towards(snapshot, snapshot.assoc)


def move_towards(s: Snapshot, target: np.ndarray) -> np.ndarray:
    """Placement that moves every unpinned DT to ``target[n]`` if that server is up and has room,
    MUs in index order (each move frees room on the server it leaves)."""
    x = s.placement_prev.copy()
    free = s.storage_bits - np.bincount(x, weights=s.dt_size_bits, minlength=s.n_bss)
    for i in np.flatnonzero((x != target) & ~s.pinned & s.server_up[target]):
        j = target[i]
        if free[j] >= s.dt_size_bits[i]:
            free[j] -= s.dt_size_bits[i]
            free[x[i]] += s.dt_size_bits[i]
            x[i] = j
    return x
