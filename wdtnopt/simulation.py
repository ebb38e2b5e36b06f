"""The frame/slot loop with migration dynamics (docs/model.md, section 4).

:class:`SimState` holds the endogenous state (placement, remaining unavailability) and steps one
slot at a time; :func:`simulate` drives it with a policy, and the PettingZoo environment drives the
same class with agents' actions, so there is one implementation of the dynamics and, through
:func:`~wdtnopt.evaluate.evaluate`, one definition of cost.

Timeline of slot ``t``:
0. with server failures and self-healing (docs/model.md, section 12): every available DT whose
   server is down is restored from its backup elsewhere (:meth:`SimState.heal`), unavailable for
   the detection time plus the backhaul transfer, whatever the frame phase;
1. if ``t`` is a frame start (``t % K == 0``): the policy sees a snapshot with
   ``allow_migration=True`` and returns a placement; every moved DT becomes unavailable for
   ``ceil(T_mig / tau)`` slots starting with this one (a DT still migrating cannot move);
2. the policy sees the slot's snapshot (placement fixed, ``allow_migration=False``) and decides
   power/CPU; ``evaluate`` scores it; requests of unavailable DTs fail;
3. unavailability counters tick down.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import PolicyError, WdtnoptError
from .cost import DEADLINE, DECLINED, FEAS_RTOL, MIGRATING, SERVER_DOWN, SILENT, Decision, Evaluation, evaluate
from .io import atomic_write
from .snapshot import Snapshot
from .trace import Trace, unavailable_slots
from .wording import counted, sizes

TABLE_COLUMNS = ("slot", "frame_start", "requests", "served", "failures", "fail_declined", "fail_migrating",
                 "fail_deadline", "fail_silent", "migrations", "migrating_dts", "energy_j",
                 "energy_per_mu_j", "objective", "fail_server_down", "fail_restoring", "restorations",
                 "servers_down")


def move_in_index_order(placement: np.ndarray, target: np.ndarray, movable: np.ndarray, free_bits: np.ndarray,
                        dt_size_bits: np.ndarray) -> np.ndarray:
    """Move every ``movable`` DT ``n`` to ``target[n]`` where it still fits, DTs in index order.

    The sequential masking rule of docs/env.md and the ``follow`` heuristic (docs/model.md,
    section 10): a move is applied only if the target's free storage ``free_bits`` (bit, [M];
    ``-inf`` bars a server) covers the DT's size, and each move frees room on the server it
    leaves. Returns the new placement [N]; the inputs are not modified.
    """
    x = placement.copy()
    free = np.array(free_bits, dtype=float)
    for i in np.flatnonzero(movable):
        j = target[i]
        if free[j] >= dt_size_bits[i]:
            free[j] -= dt_size_bits[i]
            free[x[i]] += dt_size_bits[i]
            x[i] = j
    return x


def backup_server(hops: np.ndarray, host: int, site: int) -> int:
    """Where the backup of a DT hosted on ``host`` lives (docs/model.md, section 12, "Self-healing").

    The one rule that self-healing (:meth:`SimState.heal`) restores from and that failure-aware
    policies price restores with (:func:`wdtnopt.policies.failure_aware.restore_slots`).

    Parameters
    ----------
    hops : ndarray of int, shape [M, M]
        Backhaul hop counts between servers (``Trace.hops``).
    host : int
        The DT's host, ``0 <= host < M``.
    site : {0, 1}
        ``Scenario.backup_site``: 0, the nearest other server (fewest hops, then lowest index; the
        host itself if it is the only server); 1, the backhaul centre (fewest hops to all servers
        summed, then lowest index), whatever the host.

    Returns
    -------
    int
        The server holding the backup.
    """
    m = hops.shape[0]
    if site == 1:
        return int(np.argmin(hops.sum(axis=1)))
    if m == 1:
        return host
    d = np.where(np.arange(m) == host, np.iinfo(np.int64).max, hops[host])
    return int(np.argmin(d))


class SimState:
    """Endogenous state of a run on one trace: where each DT is and how long it stays unavailable."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.t = 0
        self.placement = trace.initial_placement.copy()
        self.unavailable = np.zeros(trace.n_mus, dtype=np.int64)   # slots of migration left
        self.migrations_now = 0
        self.restoring = np.zeros(trace.n_mus, dtype=bool)          # unavailable because restored from backup
        self.restorations_now = 0
        self.heal()

    @property
    def is_frame_start(self) -> bool:
        return self.t % self.trace.scenario.frame_slots == 0

    @property
    def done(self) -> bool:
        return self.t >= self.trace.slots

    def snapshot(self, *, allow_migration: bool, failure_penalty: Any = None,
                 migration_penalty: Any = None) -> Snapshot:
        """The snapshot of the current slot at the current placement (with the slot's server status)."""
        return self.trace.snapshot(self.t, placement_prev=self.placement, migrating=self.unavailable > 0,
                                   failure_penalty=failure_penalty, migration_penalty=migration_penalty,
                                   allow_migration=allow_migration)

    def heal(self) -> int:
        """Self-healing at the start of the slot (docs/model.md, section 12); returns the restores started.

        Every available DT whose host is down is restored from its backup on the up server with room
        nearest (in backhaul hops, then index) to its MU's serving BS, taking
        ``ceil((failure_detection_s + T_backhaul(backup -> target)) / tau)`` slots (at least one) of
        unavailability. The backup lives on the server nearest to the failed host
        (``backup_site = 0``) or on the backhaul centre (``backup_site = 1``). Without room on any
        up server, or with ``self_healing = 0``, the DT waits on its host for the repair.
        """
        tr = self.trace
        self.restoring &= self.unavailable > 0
        self.restorations_now = 0
        sc = tr.scenario
        if self.done or not sc.self_healing or tr.server_up is None:
            return 0
        up = tr.server_up[self.t]
        stranded = np.flatnonzero(~up[self.placement] & (self.unavailable == 0))
        if stranded.size == 0:
            return 0
        free = np.where(up, tr.storage_bits - np.bincount(self.placement, weights=tr.dt_size_bits, minlength=tr.n_bss), -np.inf)
        hops = tr.hops
        for i in stranded:
            src, bs = self.placement[i], tr.assoc[self.t, i]
            room = free >= tr.dt_size_bits[i] * (1 + FEAS_RTOL)
            if not room.any():
                continue
            target = int(np.lexsort((np.arange(tr.n_bss), np.where(room, hops[bs], np.iinfo(np.int64).max)))[0])
            backup = backup_server(hops, src, sc.backup_site)
            t_restore = sc.failure_detection_s + tr.transfer_time(backup, target, tr.dt_size_bits[i])
            free[target] -= tr.dt_size_bits[i]   # (a down server's room stays unoffered)
            self.placement[i] = target
            self.unavailable[i] = int(unavailable_slots(t_restore, sc.slot_s))
            self.restoring[i] = True
            self.restorations_now += 1
        return self.restorations_now

    def apply_placement(self, target: Any) -> int:
        """Move DTs at a frame start; returns the number of migrations started.

        Raises :class:`PolicyError` if ``target`` moves a migrating DT or overfills a server.
        """
        tr = self.trace
        if not self.is_frame_start:
            raise PolicyError(f"placement can change only at frame starts (slot {self.t})")
        target = np.asarray(target)
        if target.shape != (tr.n_mus,) or target.dtype.kind not in "iu":
            raise PolicyError(f"placement: expected {tr.n_mus} integer server indices, got shape {target.shape} dtype {target.dtype}")
        if ((target < 0) | (target >= tr.n_bss)).any():
            raise PolicyError(f"placement: server indices must lie in [0, {tr.n_bss - 1}]")
        moved = target != self.placement
        if (moved & (self.unavailable > 0)).any():
            raise PolicyError(f"placement moves DTs still migrating: {np.flatnonzero(moved & (self.unavailable > 0)).tolist()}")
        if tr.server_up is not None:
            up = tr.server_up[self.t]
            stuck = moved & ~up[self.placement]
            if stuck.any():
                raise PolicyError(f"placement moves DTs whose server is down: {np.flatnonzero(stuck).tolist()}")
            onto = moved & ~up[target]
            if onto.any():
                raise PolicyError(f"placement moves DTs onto a down server: {np.flatnonzero(onto).tolist()}")
        load = np.bincount(target, weights=tr.dt_size_bits, minlength=tr.n_bss)
        over = load > tr.storage_bits * (1 + FEAS_RTOL)
        if over.any():
            raise PolicyError(f"placement overfills storage of servers {np.flatnonzero(over).tolist()}")
        self.unavailable = np.where(moved, tr.migration_slots(self.placement, target), self.unavailable)
        self.placement = target.astype(np.int64).copy()
        self.migrations_now = int(moved.sum())
        return self.migrations_now

    def finish_slot(self, snapshot: Snapshot, decision: Decision | Any) -> Evaluation:
        """Score the slot's decision with ``evaluate`` and advance time."""
        ev = evaluate(snapshot, decision)
        hard = [v for v in ev.violations if v.kind not in ("deadline",)]
        if hard:
            raise PolicyError(f"slot {self.t}: infeasible decision: {hard[0].kind}: {hard[0]}" + (f" (+{len(hard) - 1} more)" if len(hard) > 1 else ""))
        self.advance()
        return ev

    def advance(self) -> None:
        """End the slot: migrations progress by one slot and time moves on (after the slot is scored)."""
        self.unavailable = np.maximum(self.unavailable - 1, 0)
        self.t += 1
        self.migrations_now = 0
        self.heal()


@dataclass
class SimResult:
    """Per-slot table and summary figures of one simulated run."""

    policy: str
    n_mus: int
    slots: int
    table: dict[str, np.ndarray]             # column -> [T] values (TABLE_COLUMNS)
    requests_per_mu: np.ndarray              # [N]
    failures_per_mu: np.ndarray              # [N]
    energy_per_mu: np.ndarray                # [N] total J over the run
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    placement: np.ndarray | None = None      # [T, N] host of each DT during each slot
    unavailable: np.ndarray | None = None    # [T, N] DT unavailable in the slot (migrating, restoring or host down)

    @property
    def energy_per_mu_slot(self) -> float:
        """Average MU energy per MU per slot (J)."""
        return float(self.energy_per_mu.sum() / (self.n_mus * self.slots))

    @property
    def failure_ratio(self) -> float:
        """Failed / requested syncs over the run (0 when nothing was requested)."""
        req = self.requests_per_mu.sum()
        return float(self.failures_per_mu.sum() / req) if req else 0.0

    @property
    def failure_ratio_per_mu(self) -> np.ndarray:
        """[N] failed / requested syncs of each MU (0 for a MU that never requested)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.requests_per_mu > 0, self.failures_per_mu / np.maximum(self.requests_per_mu, 1), 0.0)

    @property
    def migrations(self) -> int:
        return int(self.table["migrations"].sum())

    def ready_at_handover(self, serving_bs: np.ndarray) -> tuple[float, int]:
        """Share of cell crossings at which the DT was already hosted, available, on the new cell's
        server (the slot the MU is first served by it), and the number of crossings.

        ``serving_bs [T, N]`` is the trace's ``assoc``. A DT that follows its MU only after the
        crossing scores 0 at that crossing; one placed ahead of it scores 1.
        """
        a = np.asarray(serving_bs)
        cross = a[1:] != a[:-1]
        ready = (self.placement[1:] == a[1:]) & ~self.unavailable[1:]
        k = int(cross.sum())
        return (float(ready[cross].mean()) if k else float("nan")), k

    def failure_ratio_by_cause(self) -> dict[str, float]:
        """Failed / requested syncs split by cause (table columns ``fail_*``; they sum to ``failure_ratio``)."""
        req = self.requests_per_mu.sum()
        return {c[5:]: (float(self.table[c].sum() / req) if req else 0.0)
                for c in self.table if c.startswith("fail_")}

    def summary(self) -> dict[str, float]:
        return {"policy": self.policy, "energy_per_mu_slot": self.energy_per_mu_slot,
                "failure_ratio": self.failure_ratio, "max_failure_ratio_per_mu": float(self.failure_ratio_per_mu.max()),
                "migrations": self.migrations, "requests": int(self.requests_per_mu.sum()),
                "failures": int(self.failures_per_mu.sum())}

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the per-slot table as CSV, atomically."""
        cols = list(self.table)

        def write(fh: Any) -> None:
            w = csv.writer(fh)
            w.writerow(cols)
            for row in zip(*(self.table[c].tolist() for c in cols)):
                w.writerow(row)
        atomic_write(path, write)


class SlotRecorder:
    """Accumulates per-slot rows and per-MU totals (shared by simulate and the environment)."""

    def __init__(self, n_mus: int, slots: int):
        self.rows = {c: np.zeros(slots, dtype=float) for c in TABLE_COLUMNS}
        self.requests = np.zeros(n_mus, dtype=np.int64)
        self.failures = np.zeros(n_mus, dtype=np.int64)
        self.energy = np.zeros(n_mus)
        self.n_mus = n_mus
        self.placement = np.zeros((slots, n_mus), dtype=np.int64)
        self.unavailable = np.zeros((slots, n_mus), dtype=bool)

    def record(self, t: int, frame_start: bool, migrations: int, snap: Snapshot, ev: Evaluation,
               restoring: np.ndarray | None = None, restorations: int = 0) -> None:
        """Add slot ``t``; ``restoring [N]`` marks the DTs unavailable because they are being restored
        from backup (their failures count as ``fail_restoring``, not ``fail_migrating``)."""
        r = self.rows
        cause = ev.failure_cause
        restoring = np.zeros(snap.n_mus, bool) if restoring is None else restoring
        r["slot"][t] = t
        r["frame_start"][t] = frame_start
        r["requests"][t] = snap.request.sum()
        r["served"][t] = ev.served.sum()
        r["failures"][t] = ev.failed.sum()
        r["fail_declined"][t] = (ev.failed & (cause == DECLINED)).sum()
        r["fail_migrating"][t] = (ev.failed & (cause == MIGRATING) & ~restoring).sum()
        r["fail_restoring"][t] = (ev.failed & (cause == MIGRATING) & restoring).sum()
        r["fail_server_down"][t] = (ev.failed & (cause == SERVER_DOWN)).sum()
        r["restorations"][t] = restorations
        r["servers_down"][t] = (~snap.server_up).sum()
        self.placement[t] = snap.placement_prev
        self.unavailable[t] = snap.migrating | ~snap.host_up
        r["fail_deadline"][t] = (ev.failed & (cause == DEADLINE)).sum()
        r["fail_silent"][t] = (ev.failed & (cause == SILENT)).sum()
        r["migrations"][t] = migrations
        r["migrating_dts"][t] = snap.migrating.sum()
        r["energy_j"][t] = ev.energy_total
        r["energy_per_mu_j"][t] = ev.energy_total / self.n_mus
        r["objective"][t] = ev.objective
        self.requests += snap.request
        self.failures += ev.failed
        self.energy += np.where(snap.request, ev.energy, 0.0)

    def result(self, policy: str, slots: int, seed: int, extras: dict[str, Any] | None = None) -> SimResult:
        table = {c: (v.astype(np.int64) if c not in ("energy_j", "energy_per_mu_j", "objective") else v)
                 for c, v in self.rows.items()}
        table["frame_start"] = table["frame_start"].astype(bool)
        return SimResult(policy=policy, n_mus=self.n_mus, slots=slots, table=table,
                         requests_per_mu=self.requests, failures_per_mu=self.failures,
                         energy_per_mu=self.energy, seed=seed, extras=extras or {},
                         placement=self.placement, unavailable=self.unavailable)


def simulation_memory_bytes(n_mus: int, slots: int) -> int:
    """Bytes :func:`simulate` keeps for its result besides the trace: the host and availability of
    every DT in every slot (``placement`` int64 and ``unavailable`` bool, [T, N]) and the per-slot
    table (an over-estimate; per-slot work is O(N M) and not counted)."""
    return 9 * int(n_mus) * int(slots) + 16 * len(TABLE_COLUMNS) * int(slots) + 64 * int(n_mus)


def check_simulation_fits(n_mus: int, slots: int, runs: int = 1) -> None:
    """Refuse runs whose per-slot records (:func:`simulation_memory_bytes`) cannot fit, before allocating.

    Parameters
    ----------
    n_mus, slots : int
        N and T of each run.
    runs : int
        Results kept at once (the CLI keeps one per policy).

    Raises
    ------
    WdtnoptError
        One line with the estimate, the memory available and what to change.
    """
    from .trace import check_memory_fits

    per_slot = simulation_memory_bytes(n_mus, 1) - simulation_memory_bytes(n_mus, 0)
    what = f"the record of {counted(int(runs), 'run')} of {sizes(slots, n_mus)}"
    check_memory_fits(int(runs) * simulation_memory_bytes(n_mus, slots),
                      f"{what} ({per_slot:,} bytes per slot: every DT's host and availability)",
                      "use fewer slots, fewer MUs" + (" or fewer policies per command" if runs > 1 else ""))


PROCESS_BASE_BYTES = 64 << 20
"""Resident memory of the process before any trace: the interpreter with numpy, the CLI's imports
and HiGHS (peak RSS of a 10-MU run measured at 41-51 MiB), rounded up."""

TORCH_BASE_BYTES = 320 << 20
"""Added for policies that run a learned agent (``checkpoint:``, ``pretrained:``): torch and the
agent (peak RSS of ``pretrained:maddpg`` on its 30 x 5 scenario measured at 324 MiB in all)."""

SLOT_WORK_BYTES = {
    "static": (32, 256, 4 << 20), "follow": (32, 256, 4 << 20),
    "lyapunov": (320, 1024, 32 << 20), "lyapunov-fa": (320, 1024, 32 << 20),
    "oracle": (320, 1024, 32 << 20), "oracle-fa": (320, 1024, 32 << 20),
    "predictive": (576, 1024, 16 << 20),
}
"""One slot's working set of each built-in policy in :func:`simulate`: ``(bytes per MU-BS pair,
per MU, fixed)``. Measured with ``tracemalloc`` (peak during ``simulate`` less its record) at
N x M = 5,000 x 50, 10,000 x 100, 10,000 x 20 and 2,000 x 100: ``static``/``follow`` 25-31 bytes a
pair, ``lyapunov`` (and the oracles' per-slot solves) 180-300, ``predictive`` 530-540; rounded up.
Other policies (a checkpoint, a registered one) get the largest, plus a window of the environment's
features for a checkpoint (:func:`slot_work_bytes`)."""


def _policy_kind(policy: str) -> str:
    return policy.split(":", 1)[0] if isinstance(policy, str) else type(policy).__name__


def slot_work_bytes(policy: Any, n_mus: int, n_bss: int, window_slots: int | None = None, slots: int = 1) -> int:
    """Bytes one slot of ``simulate(policy, ...)`` works in besides the trace and the record (an
    over-estimate, :data:`SLOT_WORK_BYTES`), plus the process's base (:data:`PROCESS_BASE_BYTES`,
    :data:`TORCH_BASE_BYTES` for a learned agent).

    Parameters
    ----------
    policy : str or Policy
        A registered name (``"static"``, ``"checkpoint:DIR"``, ...) or a policy object.
    n_mus, n_bss : int
        N and M.
    window_slots : int, optional
        Slots per window of the trace (None: whole), for a learned agent's features.
    slots : int
        T of the trace, for a learned agent's features of a whole trace.

    Returns
    -------
    int
        Bytes.
    """
    kind = _policy_kind(policy)
    n, m = int(n_mus), int(n_bss)
    per_pair, per_mu, fixed = SLOT_WORK_BYTES.get(kind, max(SLOT_WORK_BYTES.values()))
    out = per_pair * n * m + per_mu * n + fixed + PROCESS_BASE_BYTES
    if kind in ("checkpoint", "pretrained"):
        from .trace import stored_slot_bytes
        # the environment's features of one window (relay times [W, N, M] and [W, N] fields) and their temporaries
        out += TORCH_BASE_BYTES + 3 * (window_slots or int(slots)) * stored_slot_bytes(n, m)
    return out


def run_memory_bytes(n_mus: int, n_bss: int, slots: int, policies: Any, window_slots: int | None) -> dict[str, int]:
    """The memory a ``wdtnopt simulate`` command needs, by part (each an over-estimate).

    Parameters
    ----------
    n_mus, n_bss, slots : int
        N, M and T.
    policies : sequence of str or Policy
        The policies run one after the other on the trace (one result kept per policy).
    window_slots : int or None
        The trace's window (:func:`wdtnopt.trace.plan_windows`; None: whole).

    Returns
    -------
    dict of str to int
        ``trace`` (generating it whole, or one window: :func:`~wdtnopt.trace.trace_memory_bytes`,
        :func:`~wdtnopt.trace.windowed_memory_bytes`), ``records`` (one
        :func:`simulation_memory_bytes` per policy), ``work`` (the largest :func:`slot_work_bytes`:
        the policies run one at a time) and ``total``, in bytes.
    """
    from .trace import trace_memory_bytes, windowed_memory_bytes

    n, m, t = int(n_mus), int(n_bss), int(slots)
    policies = list(policies)
    trace = (trace_memory_bytes(n, m, t) if window_slots is None or window_slots >= t
             else windowed_memory_bytes(n, m, t, window_slots))
    records = len(policies) * simulation_memory_bytes(n, t)
    work = max(slot_work_bytes(p, n, m, window_slots, t) for p in policies)
    return {"trace": trace, "records": records, "work": work, "total": trace + records + work}


def check_run_fits(n_mus: int, n_bss: int, slots: int, policies: Any, window_slots: int | None) -> None:
    """Refuse a ``simulate`` command whose trace, records and per-slot work together
    (:func:`run_memory_bytes`) cannot fit, before anything is allocated.

    Raises
    ------
    WdtnoptError
        One line naming ``slots``, the estimate by part, the memory available and what to change:
        the most slots that fit, or fewer MUs or BSs (or a lighter policy) when not even one does.
    """
    from .trace import _gib, available_memory_bytes, check_memory_fits, n_slots

    need = run_memory_bytes(n_mus, n_bss, slots, policies, window_slots)
    have = available_memory_bytes()
    if have is None or need["total"] <= have:
        return
    lo, hi = 0, int(slots)      # the most slots that fit (the estimate grows with the slots)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if run_memory_bytes(n_mus, n_bss, mid, policies, window_slots)["total"] <= have:
            lo = mid
        else:
            hi = mid - 1
    runs = len(list(policies))
    if lo >= 1:
        change = f"use at most {n_slots(lo)}" + (" or fewer policies per command" if runs > 1 else "")
    else:
        heavy = max(policies, key=lambda p: slot_work_bytes(p, n_mus, n_bss, window_slots, slots))
        change = (f"not even one slot fits: use fewer MUs or BSs, or a lighter policy than {_policy_kind(heavy)}"
                  if slot_work_bytes(heavy, n_mus, n_bss) > slot_work_bytes("static", n_mus, n_bss)
                  else "not even one slot fits: use fewer MUs or BSs")
    parts = ", ".join(f"{k} {_gib(v)}" for k, v in need.items() if k != "total")
    check_memory_fits(need["total"], f"simulating {counted(runs, 'policy', 'policies')} on {sizes(slots, n_mus, n_bss)} "
                      f"({parts}, per-slot work with the process's base)",
                      change)


POLICY_METHODS = ("reset", "penalties", "place", "allocate", "observe")
"""What :func:`simulate` calls on a policy object (:class:`wdtnopt.policies.Policy` has them all)."""


def simulate(policy: Any, trace: Trace, *, progress: bool | Callable[[int], None] = False) -> SimResult:
    """Run ``policy`` on ``trace``; every slot is scored by ``evaluate`` (docs/model.md, section 4 dynamics).

    Parameters
    ----------
    policy : Policy or str
        A policy object or a registered name (``"static"``, ``"follow"``, ``"lyapunov"``,
        ``"oracle"``, ``"checkpoint:DIR"``, ...; see :func:`wdtnopt.make_policy`).
    trace : Trace
        The exogenous processes (:func:`wdtnopt.generate_trace`); a windowed trace is read a slot
        at a time, in order, so one window of it is in memory.
    progress : bool or callable, optional
        True shows a progress bar; a callable receives the slot index after each slot.

    Returns
    -------
    SimResult
        The per-slot table and the summary figures ``energy_per_mu_slot`` (J),
        ``failure_ratio``, ``failure_ratio_per_mu [N]`` and ``migrations``.

    Raises
    ------
    WdtnoptError
        If ``policy`` is an unknown name (:func:`wdtnopt.make_policy`) or neither a name nor an object
        with the methods of :class:`wdtnopt.policies.Policy`, ``trace`` is not a Trace, ``progress`` is
        neither a bool nor a callable, or the run's per-slot record
        cannot fit in memory (:func:`check_simulation_fits`, before it is allocated).
    PolicyError
        If the policy places a DT off a frame start, moves a migrating DT, overfills a server or
        gives server indices out of range; a decision of the wrong form raises
        :class:`~wdtnopt.errors.DecisionError`.
    """
    from .policies import make_policy

    pol = make_policy(policy) if isinstance(policy, str) else policy
    missing = [m for m in POLICY_METHODS if not callable(getattr(pol, m, None))]
    if missing:
        raise WdtnoptError(f"policy: expected a registered name or a wdtnopt.policies.Policy (with "
                           f"{', '.join(POLICY_METHODS)}), got {type(policy).__name__} lacking {', '.join(missing)}")
    if not isinstance(trace, Trace):
        raise WdtnoptError(f"trace: expected a wdtnopt.Trace (generate_trace), got {type(trace).__name__}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise WdtnoptError(f"progress: expected True, False or a callable of the slot index, got {progress!r}")
    name = getattr(pol, "name", type(pol).__name__)
    check_simulation_fits(trace.n_mus, trace.slots)
    state = SimState(trace)
    rec = SlotRecorder(trace.n_mus, trace.slots)
    pol.reset(trace)
    bar = None
    if progress is True:
        from .progress import progress_bar
        bar = progress_bar(total=trace.slots, desc=f"simulate {name}", unit="slot")
    while not state.done:
        frame_start = state.is_frame_start
        migrations = 0
        if frame_start:
            frame_snap = state.snapshot(allow_migration=True, **pol.penalties(state))
            migrations = state.apply_placement(pol.place(frame_snap, state))
        snap = state.snapshot(allow_migration=False, **pol.penalties(state))
        decision = pol.allocate(snap, state)
        t = state.t
        restoring, restorations = state.restoring.copy(), state.restorations_now
        ev = state.finish_slot(snap, decision)
        rec.record(t, frame_start, migrations, snap, ev, restoring, restorations)
        pol.observe(snap, ev)
        if bar is not None:
            bar.update(1)
        elif callable(progress):
            progress(t)
    if bar is not None:
        bar.close()
    return rec.result(name, trace.slots, trace.seed, extras=pol.extras() if hasattr(pol, "extras") else None)
