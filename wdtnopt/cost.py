"""``evaluate`` (module ``wdtnopt.cost``): the single definition of cost (MODEL.md sections 3, 5 and 7).

The simulator, the environment, every solver's self-check and the benchmarks call this function;
no other module computes an objective. A decision is read in one of two views:

* **optimization view** (``served`` and ``tx_time`` given): a served MU transmits for exactly
  ``tx_time`` at the power ``p(t)`` that this needs; the decision must meet every constraint, and
  each breach is listed in ``Evaluation.violations``.
* **environment view** (``power`` given, no ``tx_time``): a MU transmits at ``power``; its sync
  succeeds iff it finishes within the deadline (transmission + relay + DT update). A MU whose power
  is too low still spends ``p * min(t, deadline)`` and fails; a MU whose DT is migrating does not
  transmit and fails. Only hard breaches (power cap, CPU, storage, moves) are violations.

Constraints hold to a relative tolerance ``FEAS_RTOL`` (floating-point round-off of solvers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import physics
from .errors import DecisionError
from .snapshot import Snapshot

FEAS_RTOL = 1e-9
"""Relative tolerance of every constraint check (latency, power, CPU, storage)."""

# failure causes, as stored in Evaluation.failure_cause
OK, DECLINED, MIGRATING, DEADLINE, SILENT = 0, 1, 2, 3, 4
FAILURE_CAUSES = ("ok", "declined", "migrating", "deadline", "silent")
"""Index -> name: ``declined`` the decision did not serve it, ``migrating`` its DT was moving,
``deadline`` it transmitted but missed the deadline, ``silent`` it did not transmit (power 0)."""


@dataclass
class Decision:
    """What a policy or solver decides for one snapshot (arrays of length N).

    ``placement`` is the host of every DT. The optimization view gives ``served`` and ``tx_time``;
    the environment view gives ``power`` instead. ``cpu_hz`` is the CPU each DT gets on its host.
    """

    placement: np.ndarray
    served: np.ndarray | None = None
    tx_time: np.ndarray | None = None
    cpu_hz: np.ndarray | None = None
    power: np.ndarray | None = None


@dataclass(frozen=True)
class Violation:
    """One breached constraint: its kind, the MU or server index, and by how much."""

    kind: str
    index: int
    amount: float
    message: str

    def __str__(self) -> str:
        return self.message


VIOLATION_KINDS = ("power_cap", "deadline", "cpu_capacity", "storage_capacity", "move_migrating",
                   "migration_not_allowed", "serve_migrating", "served_without_request")


@dataclass
class Evaluation:
    """The cost of a decision and every constraint it breaks (arrays of length N unless noted)."""

    energy: np.ndarray          # J spent by each MU's transmission
    power: np.ndarray           # W transmit power
    tx_time: np.ndarray         # s transmission time (inf where it never finishes)
    latency: np.ndarray         # s transmission + relay + DT update (nan if not transmitting)
    served: np.ndarray          # bool: requested and synchronized in time
    failed: np.ndarray          # bool: requested and not synchronized
    failure_cause: np.ndarray   # int: index into FAILURE_CAUSES
    migrated: np.ndarray        # bool: host differs from placement_prev
    cpu_load: np.ndarray        # [M] CPU given out on each server (cycles/s)
    storage_load: np.ndarray    # [M] DT bits stored on each server
    energy_total: float
    failure_cost: float
    migration_cost: float
    objective: float
    violations: list[Violation] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum())

    def summary(self) -> str:
        lines = [f"objective {self.objective:.6g} = energy {self.energy_total:.6g} J"
                 f" + failures {self.failure_cost:.6g} + migrations {self.migration_cost:.6g}",
                 f"served {int(self.served.sum())}, failed {self.n_failed}, migrated {int(self.migrated.sum())}"]
        lines += [f"violation: {v}" for v in self.violations]
        return "\n".join(lines)


def evaluate(snapshot: Snapshot, decision: Decision | Mapping[str, Any] | Any) -> Evaluation:
    """Recompute energy, latency and objective of ``decision`` and list every violated constraint.

    ``decision`` may be a :class:`Decision`, a mapping with its field names, or any object with
    those attributes (a ``Solution``). Arrays of the wrong shape or non-finite entries raise
    :class:`DecisionError`; constraint breaches are reported, not raised.
    """
    s = snapshot
    n, m = s.n_mus, s.n_bss
    d = _read_decision(decision, n, m)
    placement = d["placement"]
    idx = np.arange(n)
    violations: list[Violation] = []

    request = s.request
    pinned_req = request & s.migrating
    relay = s.relay[idx, placement]
    cpu = d["cpu_hz"] if d["cpu_hz"] is not None else np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = np.where(cpu > 0, s.cycles / np.where(cpu > 0, cpu, 1.0), np.where(s.cycles > 0, np.inf, 0.0))
    cause = np.zeros(n, dtype=np.int8)
    g = s.serving_gain

    if d["tx_time"] is not None:  # optimization view
        served_in = d["served"] if d["served"] is not None else (d["tx_time"] > 0)
        tx = np.where(served_in, d["tx_time"], 0.0)
        power = np.zeros(n)
        energy = np.zeros(n)
        if served_in.any():
            k = served_in
            power[k] = physics.power_for_time(tx[k], s.data_bits[k], s.bandwidth[k], s.noise_psd[k], g[k])
            energy[k] = tx[k] * power[k]
        latency = np.where(served_in, tx + relay + compute, np.nan)
        for i in np.flatnonzero(served_in & ~request):
            violations.append(Violation("served_without_request", int(i), 1.0, f"MU {i} is served but did not request a sync"))
        for i in np.flatnonzero(served_in & s.migrating):
            violations.append(Violation("serve_migrating", int(i), 1.0, f"MU {i} is served while its DT is migrating"))
        late = served_in & ~(latency <= s.deadline * (1 + FEAS_RTOL))
        for i in np.flatnonzero(late):
            violations.append(Violation("deadline", int(i), float(latency[i] - s.deadline[i]),
                                        f"MU {i}: latency {latency[i]:.6g} s over deadline {s.deadline[i]:.6g} s "
                                        f"(tx {tx[i]:.4g} + relay {relay[i]:.4g} + compute {compute[i]:.4g})"))
        served = served_in & request & ~s.migrating & ~late
        cause[request & ~served_in] = DECLINED
        cause[pinned_req] = MIGRATING
        cause[request & served_in & late & ~s.migrating] = DEADLINE
    else:  # environment view
        p_in = d["power"] if d["power"] is not None else np.zeros(n)
        transmits = request & ~s.migrating & (p_in > 0)
        power = np.where(transmits, p_in, 0.0)
        tx = np.full(n, np.nan)
        tx[transmits] = physics.time_for_power(power[transmits], s.data_bits[transmits], s.bandwidth[transmits],
                                               s.noise_psd[transmits], g[transmits])
        latency = np.where(transmits, tx + relay + compute, np.nan)
        served = transmits & (latency <= s.deadline * (1 + FEAS_RTOL))
        energy = np.where(transmits, power * np.where(served, tx, np.minimum(tx, s.deadline)), 0.0)
        tx = np.where(transmits, tx, 0.0)
        cause[request & ~s.migrating & ~transmits] = SILENT
        cause[transmits & ~served] = DEADLINE
        cause[pinned_req] = MIGRATING

    over = power > s.p_max * (1 + FEAS_RTOL)
    for i in np.flatnonzero(over):
        violations.append(Violation("power_cap", int(i), float(power[i] - s.p_max[i]),
                                    f"MU {i}: power {power[i]:.6g} W over cap {s.p_max[i]:.6g} W"))

    cpu_load = np.bincount(placement, weights=cpu, minlength=m)
    for j in np.flatnonzero(cpu_load > s.cpu_hz * (1 + FEAS_RTOL)):
        violations.append(Violation("cpu_capacity", int(j), float(cpu_load[j] - s.cpu_hz[j]),
                                    f"server {j}: CPU {cpu_load[j]:.6g} Hz over capacity {s.cpu_hz[j]:.6g} Hz"))
    storage_load = np.bincount(placement, weights=s.dt_size_bits, minlength=m)
    for j in np.flatnonzero(storage_load > s.storage_bits * (1 + FEAS_RTOL)):
        violations.append(Violation("storage_capacity", int(j), float(storage_load[j] - s.storage_bits[j]),
                                    f"server {j}: DTs {storage_load[j]:.6g} bit over storage {s.storage_bits[j]:.6g} bit"))
    migrated = placement != s.placement_prev
    for i in np.flatnonzero(migrated & s.migrating):
        violations.append(Violation("move_migrating", int(i), 1.0,
                                    f"MU {i}: DT moved from {s.placement_prev[i]} to {placement[i]} while migrating"))
    if not s.allow_migration:
        for i in np.flatnonzero(migrated & ~s.migrating):
            violations.append(Violation("migration_not_allowed", int(i), 1.0,
                                        f"MU {i}: DT moved from {s.placement_prev[i]} to {placement[i]} but migration is not allowed"))

    failed = request & ~served
    energy_total = float(energy[request].sum())
    failure_cost = float(s.failure_penalty[failed].sum())
    migration_cost = float(s.migration_penalty[migrated].sum())
    return Evaluation(
        energy=energy, power=power, tx_time=tx, latency=latency, served=served, failed=failed,
        failure_cause=cause, migrated=migrated, cpu_load=cpu_load, storage_load=storage_load,
        energy_total=energy_total, failure_cost=failure_cost, migration_cost=migration_cost,
        objective=energy_total + failure_cost + migration_cost, violations=violations,
    )


def _read_decision(decision: Any, n: int, m: int) -> dict[str, np.ndarray | None]:
    get = decision.get if isinstance(decision, Mapping) else (lambda k: getattr(decision, k, None))
    out: dict[str, np.ndarray | None] = {}
    problems: list[tuple[str, str]] = []
    for name, kind in (("placement", "i"), ("served", "b"), ("tx_time", "f"), ("cpu_hz", "f"), ("power", "f")):
        raw = get(name)
        if raw is None:
            out[name] = None
            if name == "placement":
                problems.append((name, "missing"))
            continue
        try:
            arr = np.asarray(raw)
        except (TypeError, ValueError):
            problems.append((name, "expected an array"))
            continue
        if arr.shape != (n,):
            problems.append((name, f"expected shape [N] = [{n}], got {list(arr.shape)}"))
            continue
        if kind == "i":
            if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
                problems.append((name, "expected integer server indices"))
                continue
            arr = arr.astype(np.int64)
            if ((arr < 0) | (arr >= m)).any():
                problems.append((name, f"server indices must lie in [0, {m - 1}]"))
                continue
        elif kind == "b":
            if arr.dtype.kind not in "biu":
                problems.append((name, "expected booleans"))
                continue
            arr = arr.astype(bool)
        else:
            if arr.dtype.kind not in "iuf":
                problems.append((name, "expected numbers"))
                continue
            arr = arr.astype(float)
            if np.isnan(arr).any() or (arr < 0).any():
                problems.append((name, "must be >= 0 and not NaN"))
                continue
        out[name] = arr
    if out.get("tx_time") is None and out.get("power") is None and not problems:
        if out.get("served") is not None and out["served"].any():
            problems.append(("tx_time", "missing: give tx_time (optimization view) or power (environment view)"))
    if problems:
        raise DecisionError(problems)
    return out
