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
    if s.level_ratio is not None:
        return _equal_share_levels(s, x)
    idx = np.arange(s.n_mus)
    served = s.request & ~s.migrating
    while True:  # drop MUs that cannot make it and re-share among the rest (shares only grow)
        k = np.bincount(x[served], minlength=s.n_bss)
        cpu = np.where(served, s.cpu_hz[x] / np.maximum(k[x], 1), 0.0)
        with np.errstate(divide="ignore", over="ignore"):
            compute = np.where(cpu > 0, s.cycles / np.where(cpu > 0, cpu, 1.0), np.inf)
        t_avail = s.deadline - s.relay[idx, x] - compute
        ok = served & (t_avail >= s.t_min) & (t_avail > 0)
        if (ok == served).all():
            break
        served = ok
    return Decision(placement=x.copy(), served=served, tx_time=np.where(served, t_avail, 0.0),
                    cpu_hz=np.where(served, cpu, 0.0))


def _equal_share_levels(s: Snapshot, x: np.ndarray) -> Decision:
    """:func:`equal_share_allocation` with a semantic menu: under its equal CPU share each MU takes
    the level of least energy (transmission for as long as the deadline allows + extraction) among
    the levels on its menu that meet the deadline, or fails; then the shares are recomputed."""
    from .. import physics

    n = s.n_mus
    idx = np.arange(n)
    data = s.level_ratio * s.data_bits[:, None]                                                   # [N, L]
    relay = physics.backhaul_time(s.backhaul_latency_s[s.assoc, x][:, None], s.backhaul_s_per_bit[s.assoc, x][:, None], data)
    t_min = physics.min_tx_time(data, s.bandwidth[:, None], s.noise_psd[:, None], s.serving_gain[:, None], s.p_max[:, None])
    served = s.request & ~s.migrating
    while True:
        k = np.bincount(x[served], minlength=s.n_bss)
        cpu = np.where(served, s.cpu_hz[x] / np.maximum(k[x], 1), 0.0)
        cyc = s.cycles_per_bit[:, None] * data
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            compute = np.where(cpu[:, None] > 0, cyc / np.where(cpu[:, None] > 0, cpu[:, None], 1.0), np.inf)
            t_avail = s.deadline[:, None] - s.extraction_time_s - relay - compute
            ok = served[:, None] & s.level_allowed & (t_avail >= t_min) & (t_avail > 0)
            energy = np.where(ok, physics.energy_for_time(np.where(ok, t_avail, 1.0), data, s.bandwidth[:, None],
                                                          s.noise_psd[:, None], s.serving_gain[:, None])
                              + s.extraction_energy_j, np.inf)
        level = np.argmin(energy, axis=1)
        still = ok.any(axis=1)
        if (still == served).all():
            break
        served = still
    t = t_avail[idx, level]
    return Decision(placement=x.copy(), served=served, tx_time=np.where(served, t, 0.0),
                    cpu_hz=np.where(served, cpu, 0.0), level=np.where(served, level, 0))


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
    from ..simulation import move_in_index_order

    x = s.placement_prev
    free = s.storage_bits - np.bincount(x, weights=s.dt_size_bits, minlength=s.n_bss)
    return move_in_index_order(x, target, (x != target) & ~s.pinned & s.server_up[target], free, s.dt_size_bits)
