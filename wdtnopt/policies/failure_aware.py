"""Failure-aware variants of the myopic oracle and the Lyapunov scheduler (docs/model.md, section 12).

Availability price
------------------
Hosting DT ``n`` on an up server ``s`` over the decision horizon of ``H`` slots (the frame: the
next placement decision comes ``H`` slots later) costs, in expectation,

    pi[n, s] = P(s fails within H slots | up now) * lam * phi_n * D[n, s]

* ``P(fail within H | up) = 1 - (1 - p_fail[s])^H``: the first passage of the two-state chain
  (per-slot ``p_fail = 1 - exp(-tau / MTBF_s)``), servers failing independently;
* ``D[n, s]`` slots during which every request of ``n`` fails once ``s`` is down: with
  self-healing, ``max(ceil((failure_detection_s + T_backhaul(backup(s) -> target)) / tau), 1)``,
  the restore the simulator performs (backup next to ``s`` or at the backhaul centre, target the
  server nearest in hops to the MU's serving BS, ``s`` excluded): the forced migration's
  unavailability; without self-healing, the mean remaining down time ``1 / p_repair[s]`` slots
  (the down time of the sampled chain is geometric), both capped at ``2**53`` slots (docs/model.md,
  section 4.1);
* ``lam`` the request probability per slot and ``phi_n`` the policy's failure price of MU ``n``
  (``eta E_ref`` for the oracle, ``(Q_n + theta) / V`` for the Lyapunov scheduler): the same price
  the snapshot puts on a failed request, so the availability price and the slot's objective are in
  one unit (J-equivalent).

A failure is counted whole even if its restore spills over the horizon: it is the consequence of
the hosting decision. A down server gets no price (no DT may move onto it; DTs stranded on it are
pinned, so their price is a constant of the decision).

Placement with the price
------------------------
The snapshot problem has no per-(DT, server) cost, so the policy does not hand the price to the
solver; it compares placements by the objective ``evaluate(snapshot, decision).objective +
sum_n pi[n, x_n]`` (the one definition of cost plus the price) over a few candidates:

1. the base policy's placement (the snapshot solver on the unchanged snapshot);
2. for each threshold ``q`` among the distinct failure probabilities of the up servers: the
   solver's placement on the snapshot where the servers that fail with probability above ``q``
   are closed: they take no new DT, each DT on one gets its migration penalty lowered by the price
   it saves by leaving for the cheapest open server (never below 0), and the DTs whose saving
   exceeds their migration penalty must leave (the closed servers' storage holds only the others;
   a candidate without room for them is infeasible and skipped).

Every candidate is feasible on the true snapshot (only storage was tightened and penalties
changed), and the base placement is one of them, so the chosen placement's priced objective is
never above the base policy's. With servers of one MTBF every up server has the same failure
probability, there is no second candidate, and the policy is its base policy exactly.

When it pays: with self-healing a failure costs about what a migration costs (both are one backhaul
transfer, the failure's plus the detection time), and a failure is less than certain, so leaving a
flaky server rarely pays; closing it to new DTs still can. Without self-healing (a DT waits
``MTTR``) or with slow detection, the price of a flaky server is many migrations' worth
(docs/model.md, section 12 has the numbers).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..cost import evaluate
from ..processes import availability
from ..simulation import backup_server
from ..snapshot import Snapshot
from ..trace import UNAVAILABLE_SLOTS_CAP, unavailable_slots
from .lyapunov import LyapunovPolicy, MyopicOraclePolicy
from . import check_horizon_slots

_FEAS = 1e-9


def failure_within(p_fail: Any, horizon: int) -> np.ndarray:
    """P(an up server goes down within ``horizon`` slots): ``1 - (1 - p_fail)^horizon`` (per server);
    1 where ``p_fail`` is 1 (an MTBF far below the slot), where ``log1p(-1)`` is ``-inf``."""
    with np.errstate(divide="ignore"):
        return -np.expm1(horizon * np.log1p(-np.asarray(p_fail, float)))


def restore_slots(trace: Any, assoc: np.ndarray) -> np.ndarray:
    """[N, M] slots of unavailability of DT ``n`` if its host ``s`` fails now (module docstring).

    With self-healing: detection plus the backhaul transfer of the DT from the backup of ``s`` to
    the server nearest (hops, then index) to the MU's serving BS ``assoc[n]``, ``s`` excluded (as
    :meth:`wdtnopt.simulation.SimState.heal` restores when every other server is up with room).
    Without: the mean down time ``1 / p_repair[s]`` of the sampled chain (geometric in slots), capped
    like every other slot count of unavailability at :data:`wdtnopt.trace.UNAVAILABLE_SLOTS_CAP`
    (``2**53``, docs/model.md, section 4.1): an MTTR far above the slot makes ``p_repair`` tiny or 0
    and the quotient past the float range, and the price of a DT that would wait "longer than any
    trace" is then finite (``0 * inf`` would make the price of a down or never-failing server NaN).
    The mean is not rounded up to whole slots: it is an expectation, not the length of one outage.
    """
    sc = trace.scenario
    n, m = trace.n_mus, trace.n_bss
    if not sc.self_healing or m == 1:
        _, p_rep = availability.transition_probabilities(sc.slot_s, *sc.server_mtbf_mttr_s())
        with np.errstate(divide="ignore", over="ignore"):        # 1 / (tiny or 0) is inf: capped below
            mean_down = 1.0 / np.asarray(p_rep, float)
        return np.broadcast_to(np.minimum(mean_down, float(UNAVAILABLE_SLOTS_CAP)), (n, m)).copy()
    hops = trace.hops
    big = np.iinfo(np.int64).max
    out = np.empty((n, m))
    for s in range(m):
        backup = backup_server(hops, s, sc.backup_site)
        d = np.where(np.arange(m)[None, :] == s, big, hops[assoc])                  # [N, M] hops to serving BS
        target = np.argmin(d, axis=1)                                                 # lowest index on ties
        t_rest = sc.failure_detection_s + np.array([trace.transfer_time(backup, int(j), b)
                                                    for j, b in zip(target, trace.dt_size_bits)])
        out[:, s] = unavailable_slots(t_rest, sc.slot_s)       # (exact in float: at most 2**53)
    return out


def availability_price(trace: Any, server_up: np.ndarray, assoc: np.ndarray, failure_price: np.ndarray,
                       horizon: int) -> np.ndarray:
    """[N, M] expected cost (J-equivalent) of hosting each DT on each server for ``horizon`` slots.

    Parameters
    ----------
    trace : Trace
        Its scenario gives MTBF/MTTR (one or one per server), ``slot_s``, ``request_prob``,
        self-healing and the backup site; its backhaul gives the restore transfer times.
    server_up : array_like of bool, shape [M]
        Server status now (a down server's column is 0).
    assoc : array_like of int, shape [N]
        Serving BS of each MU now (where a restored DT goes).
    failure_price : array_like, shape [N]
        Price of one failed request of each MU (J).
    horizon : int
        Decision horizon (slots).

    Returns
    -------
    ndarray, shape [N, M]
        ``P(fail within horizon) * lam * failure_price[n] * restore_slots[n, s]`` (module docstring).
    """
    sc = trace.scenario
    p_fail, _ = availability.transition_probabilities(sc.slot_s, *sc.server_mtbf_mttr_s())
    q = np.where(np.asarray(server_up, bool), failure_within(p_fail, horizon), 0.0)            # [M]
    return q[None, :] * sc.request_prob * np.asarray(failure_price, float)[:, None] * restore_slots(trace, assoc)


class _FailureAware:
    """Mixin: the placement of the base policy chosen by its objective plus the availability price
    (module docstring); the per-slot allocation is the base policy's. ``horizon_slots`` (default:
    the frame) is the horizon ``H`` of the price. The candidates are placements of the frame
    start's own snapshot, so these variants use the one-slot placement (``placement="slot"``,
    docs/longterm.md); ``placement="frame"`` and ``"sample"`` are refused (their candidates would
    silently ignore it whenever servers can fail)."""

    def __init__(self, *, horizon_slots: int | None = None, **options: Any):
        from ..errors import WdtnoptError

        check_horizon_slots(horizon_slots)
        placement = options.setdefault("placement", "slot")
        if placement in ("frame", "sample"):
            raise WdtnoptError("placement: the failure-aware policies solve their candidate placements on the "
                               f"frame start's own snapshot, expected 'slot', got {placement!r} (docs/longterm.md, "
                               "\"Placement for the frame\")")
        super().__init__(**options)   # type: ignore[call-arg]
        self.horizon_slots = horizon_slots

    def reset(self, trace: Any) -> None:
        super().reset(trace)   # type: ignore[misc]
        self.fa_candidates = 0
        self.fa_changed = 0

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        base = super().place   # type: ignore[misc]
        sc = self.trace.scenario   # type: ignore[attr-defined]
        if not sc.server_failures:
            return base(snapshot, state)
        horizon = self.horizon_slots or sc.frame_slots
        price = availability_price(self.trace, snapshot.server_up, snapshot.assoc,  # type: ignore[attr-defined]
                                   snapshot.failure_penalty, horizon)
        p_fail, _ = availability.transition_probabilities(sc.slot_s, *sc.server_mtbf_mttr_s())
        q = np.where(snapshot.server_up, failure_within(p_fail, horizon), -1.0)
        levels = np.unique(q[snapshot.server_up])[:-1]                  # thresholds that close >= 1 up server
        best, best_cost, first = None, np.inf, None
        for thr in [None, *levels[::-1]]:
            s = snapshot if thr is None else self._closed(snapshot, q > thr, price)
            sol = self._solve(s)   # type: ignore[attr-defined]
            if thr is not None and sol.status == "infeasible":   # no room for the DTs that must leave
                continue
            x = np.asarray(sol.placement)
            first = x if first is None else first
            cost = self._priced_objective(snapshot, sol, price)
            self.fa_candidates += 1
            if best is None or cost < best_cost - _FEAS * abs(best_cost):
                best, best_cost = x, cost
        self.fa_changed += int(not np.array_equal(best, first))
        return best

    @staticmethod
    def _closed(s: Snapshot, closed: np.ndarray, price: np.ndarray) -> Snapshot:
        """The snapshot where servers ``closed [M]`` take no new DT, leaving them is cheaper by the
        price saved (moving to the cheapest open up server), and the DTs whose saving exceeds their
        migration penalty must leave (the closed servers' storage holds only the others)."""
        open_up = s.server_up & ~closed
        if not open_up.any():
            return s
        idx = np.arange(s.n_mus)
        saved = price[idx, s.placement_prev] - price[:, open_up].min(axis=1)
        on_closed = closed[s.placement_prev]
        leave = on_closed & ~s.pinned & (saved > s.migration_penalty)
        stay_load = np.bincount(s.placement_prev[~leave], weights=s.dt_size_bits[~leave], minlength=s.n_bss)
        storage = np.where(closed, np.minimum(s.storage_bits, stay_load), s.storage_bits)
        mig = np.where(on_closed, np.maximum(s.migration_penalty - saved, 0.0), s.migration_penalty)
        return s.replace(storage_bits=storage, migration_penalty=mig)

    @staticmethod
    def _priced_objective(s: Snapshot, sol: Any, price: np.ndarray) -> float:
        from ..cost import Decision

        x = np.asarray(sol.placement)
        dec = Decision(placement=x, served=np.asarray(sol.served), tx_time=np.asarray(sol.tx_time),
                       cpu_hz=np.asarray(sol.cpu_hz), level=sol.level)
        ev = evaluate(s, dec)
        if any(v.kind != "deadline" for v in ev.violations):
            return np.inf
        return float(ev.objective) + float(price[np.arange(s.n_mus), x].sum())

    def extras(self) -> dict[str, Any]:
        return {**super().extras(), "fa_candidates": self.fa_candidates,   # type: ignore[misc]
                "fa_changed_placements": self.fa_changed}


class FailureAwareOraclePolicy(_FailureAware, MyopicOraclePolicy):
    """The myopic oracle whose placement also pays the availability price (:mod:`failure_aware`)."""

    name = "oracle-fa"


class FailureAwareLyapunovPolicy(_FailureAware, LyapunovPolicy):
    """The Lyapunov scheduler whose placement also pays the availability price (:mod:`failure_aware`)."""

    name = "lyapunov-fa"
