"""``evaluate`` (module ``wdtnopt.cost``): the single definition of cost (docs/model.md, sections 3, 5 and 7).

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
OK, DECLINED, MIGRATING, DEADLINE, SILENT, SERVER_DOWN = 0, 1, 2, 3, 4, 5
FAILURE_CAUSES = ("ok", "declined", "migrating", "deadline", "silent", "server_down")
"""Index -> name: ``declined`` the decision did not serve it, ``migrating`` its DT was moving,
``deadline`` it transmitted but missed the deadline, ``silent`` it did not transmit (power 0),
``server_down`` its DT's host was down (docs/model.md, section 12)."""


@dataclass
class Decision:
    """What a policy or solver decides for one snapshot (arrays of length N).

    ``placement`` is the host of every DT. The optimization view gives ``served`` and ``tx_time``;
    the environment view gives ``power`` instead. ``cpu_hz`` is the CPU each DT gets on its host.
    ``level`` is each MU's semantic compression level (an index into the snapshot's menu; ``None``
    = level 0, the only level of a snapshot without a menu).
    """

    placement: np.ndarray
    served: np.ndarray | None = None
    tx_time: np.ndarray | None = None
    cpu_hz: np.ndarray | None = None
    power: np.ndarray | None = None
    level: np.ndarray | None = None


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
                   "migration_not_allowed", "serve_migrating", "served_without_request", "server_down",
                   "move_to_down_server", "level_not_allowed")


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

    The single definition of cost (docs/model.md, sections 5 and 9).
    The numbers come from :func:`evaluate_arrays` (the same core the batched environment uses).

    Parameters
    ----------
    snapshot : Snapshot
        The decision point (N MUs, M servers).
    decision : Decision, mapping or object
        A :class:`Decision`, a mapping with its field names, or any object with those attributes
        (a ``Solution``): ``placement [N]`` (server index) and either the optimization view
        ``served [N]`` (bool: True/False or 0/1), ``tx_time [N]`` (s), ``cpu_hz [N]`` (cycles/s) or the environment view
        ``power [N]`` (W), ``cpu_hz [N]`` (cycles/s); on a snapshot with a semantic menu also
        ``level [N]`` (an index into the menu; absent: level 0 for every MU).

    Returns
    -------
    Evaluation
        Per MU ``energy [N]`` (J), ``power [N]`` (W), ``tx_time [N]`` and ``latency [N]`` (s),
        ``served [N]``, ``failed [N]``; totals ``energy_total``, ``failure_cost``,
        ``migration_cost`` and ``objective`` (J); ``violations`` lists every breached constraint
        (reported, not raised).

    Raises
    ------
    DecisionError
        If a field of ``decision`` is missing, of the wrong shape or type, out of range (server
        indices, a ``served`` other than True/False or 0/1, a ``level`` off the menu) or negative /
        NaN, or a mapping has a key that is neither one of these fields nor a field of a
        ``Solution`` (a mistyped ``levels`` is not ignored); every wrong field is named.
    """
    s = snapshot
    n, m = s.n_mus, s.n_bss
    d = _read_decision(decision, n, m, s.n_levels)
    if d["level"] is None and s.level_ratio is not None:
        # no level on a menu snapshot is level 0 (Decision's rule), not a raw send that is on no menu
        d["level"] = np.zeros(n, dtype=np.int64)
    b = evaluate_arrays(s, d["placement"], served=d["served"], tx_time=d["tx_time"], cpu_hz=d["cpu_hz"],
                        power=d["power"], level=d["level"])
    placement, power, latency, tx = d["placement"], b.power, b.latency, b.tx_time
    violations: list[Violation] = []
    if d["tx_time"] is not None:  # optimization view
        relay, compute = b.relay, b.compute
        for i in np.flatnonzero(b.violated["served_without_request"]):
            violations.append(Violation("served_without_request", int(i), 1.0, f"MU {i} is served but did not request a sync"))
        for i in np.flatnonzero(b.violated["serve_migrating"]):
            violations.append(Violation("serve_migrating", int(i), 1.0, f"MU {i} is served while its DT is migrating"))
        for i in np.flatnonzero(b.violated["server_down"]):
            violations.append(Violation("server_down", int(i), 1.0,
                                        f"MU {i} is served by its DT on server {placement[i]}, which is down"))
        for i in np.flatnonzero(b.violated["deadline"]):
            violations.append(Violation("deadline", int(i), float(latency[i] - s.deadline[i]),
                                        f"MU {i}: latency {latency[i]:.6g} s over deadline {s.deadline[i]:.6g} s "
                                        f"(tx {tx[i]:.4g} + relay {relay[i]:.4g} + compute {compute[i]:.4g})"))
    for i in np.flatnonzero(b.violated["level_not_allowed"]):
        violations.append(Violation("level_not_allowed", int(i), 1.0,
                                    f"MU {i}: level {d['level'][i]} has accuracy {s.level_accuracy[i, d['level'][i]]:.6g}"
                                    f" below its minimum {s.min_accuracy[i]:.6g}"))
    for i in np.flatnonzero(b.violated["power_cap"]):
        violations.append(Violation("power_cap", int(i), float(power[i] - s.p_max[i]),
                                    f"MU {i}: power {power[i]:.6g} W over cap {s.p_max[i]:.6g} W"))
    cpu_load, storage_load = b.cpu_load, b.storage_load
    for j in np.flatnonzero(b.violated["cpu_capacity"]):
        violations.append(Violation("cpu_capacity", int(j), float(cpu_load[j] - s.cpu_hz[j]),
                                    f"server {j}: CPU {cpu_load[j]:.6g} Hz over capacity {s.cpu_hz[j]:.6g} Hz"))
    for j in np.flatnonzero(b.violated["storage_capacity"]):
        violations.append(Violation("storage_capacity", int(j), float(storage_load[j] - s.storage_bits[j]),
                                    f"server {j}: DTs {storage_load[j]:.6g} bit over storage {s.storage_bits[j]:.6g} bit"))
    for i in np.flatnonzero(b.violated["move_migrating"]):
        violations.append(Violation("move_migrating", int(i), 1.0,
                                    f"MU {i}: DT moved from {s.placement_prev[i]} to {placement[i]} while migrating"))
    for i in np.flatnonzero(b.violated["migration_not_allowed"]):
        violations.append(Violation("migration_not_allowed", int(i), 1.0,
                                    f"MU {i}: DT moved from {s.placement_prev[i]} to {placement[i]} but migration is not allowed"))
    for i in np.flatnonzero(b.violated["move_to_down_server"]):
        violations.append(Violation("move_to_down_server", int(i), 1.0,
                                    f"MU {i}: DT moved to server {placement[i]}, which is down"))
    return Evaluation(
        energy=b.energy, power=power, tx_time=tx, latency=latency, served=b.served, failed=b.failed,
        failure_cause=b.failure_cause, migrated=b.migrated, cpu_load=cpu_load, storage_load=storage_load,
        energy_total=float(b.energy_total), failure_cost=float(b.failure_cost),
        migration_cost=float(b.migration_cost), objective=float(b.objective), violations=violations,
    )


@dataclass
class BatchEvaluation:
    """What :func:`evaluate_arrays` computes for decisions with leading batch dims ``[...]``:
    the fields of :class:`Evaluation` as arrays (totals ``[...]``), and one boolean mask per
    violation kind (``[..., N]`` for MUs, ``[..., M]`` for servers) instead of messages."""

    energy: np.ndarray
    power: np.ndarray
    tx_time: np.ndarray
    latency: np.ndarray
    served: np.ndarray
    failed: np.ndarray
    failure_cause: np.ndarray
    migrated: np.ndarray
    cpu_load: np.ndarray
    storage_load: np.ndarray
    energy_total: np.ndarray
    failure_cost: np.ndarray
    migration_cost: np.ndarray
    objective: np.ndarray
    violated: dict[str, np.ndarray]   # kind -> mask (every kind of VIOLATION_KINDS)
    relay: np.ndarray                 # [..., N] relay time to the chosen host (s)
    compute: np.ndarray               # [..., N] DT update time at the given CPU (s)

    @property
    def hard_violations(self) -> np.ndarray:
        """[...] any breach other than a missed deadline (what the simulator refuses)."""
        return np.any([v.any(-1) for k, v in self.violated.items() if k != "deadline"], axis=0)


def evaluate_arrays(s: Any, placement: np.ndarray, served: np.ndarray | None = None,
                    tx_time: np.ndarray | None = None, cpu_hz: np.ndarray | None = None,
                    power: np.ndarray | None = None, level: np.ndarray | None = None) -> BatchEvaluation:
    """The cost core: :func:`evaluate` for trusted, well-formed arrays with any leading batch dims.

    ``s`` is a :class:`Snapshot` or any object with the snapshot's field names whose arrays carry
    the same leading dims (``gain [..., N, M]``, ``request [..., N]``, ``cpu_hz [..., M]``,
    ``allow_migration`` a bool or ``[...]``); the decision arrays are ``[..., N]``. Nothing is
    validated. Every element is computed by the same operations as for a single snapshot, so a
    batch equals :func:`evaluate` of each of its snapshots exactly (tested). ``level [..., N]``
    (with a snapshot menu) sends ``level_ratio * data_bits`` after the MU's extraction, whose time
    adds to the latency and whose energy to a transmitting MU's energy.
    """
    placement = np.asarray(placement)
    lead = placement.shape[:-1]
    m = np.shape(s.cpu_hz)[-1]
    request, migrating = s.request, s.migrating
    pinned_req = request & migrating
    data, t_ext, e_ext, bad_level = s.data_bits, None, None, None
    if level is not None and getattr(s, "level_ratio", None) is not None:
        lv = np.asarray(level)[..., None]
        pick = lambda a: np.take_along_axis(a, lv, -1)[..., 0]  # noqa: E731
        data = pick(s.level_ratio) * s.data_bits
        ext_cycles = pick(s.level_cycles_per_bit) * s.data_bits
        t_ext = ext_cycles / s.mu_cpu_hz
        e_ext = s.mu_kappa * ext_cycles * s.mu_cpu_hz ** 2
        bad_level = ~(pick(s.level_accuracy) >= s.min_accuracy)
    pair = s.assoc * m + placement          # (serving BS, host) into the flattened [M, M] backhaul
    mm = (*np.shape(s.backhaul_latency_s)[:-2], m * m)
    relay = physics.backhaul_time(np.take_along_axis(np.reshape(s.backhaul_latency_s, mm), pair, -1),
                                  np.take_along_axis(np.reshape(s.backhaul_s_per_bit, mm), pair, -1), data)
    cycles = s.cycles_per_bit * data
    cpu = cpu_hz if cpu_hz is not None else np.zeros(placement.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = np.where(cpu > 0, cycles / np.where(cpu > 0, cpu, 1.0), np.where(cycles > 0, np.inf, 0.0))
    cause = np.zeros(placement.shape, dtype=np.int8)
    g = np.take_along_axis(s.gain, s.assoc[..., None], -1)[..., 0]
    none = np.zeros(placement.shape, bool)
    violated = {k: none for k in ("served_without_request", "serve_migrating", "deadline", "server_down",
                                     "level_not_allowed")}
    # server availability (docs/model.md, section 12): a DT on a down host is unavailable
    server_up = getattr(s, "server_up", None)
    if server_up is None:
        host_down = none
        mask = True
    else:
        host_down = ~np.take_along_axis(np.asarray(server_up), placement, -1)
        mask = s.migration_mask

    if tx_time is not None:  # optimization view
        served_in = served if served is not None else (tx_time > 0)
        tx = np.where(served_in, tx_time, 0.0)
        with np.errstate(invalid="ignore"):
            p_all = physics.power_for_time(tx, data, s.bandwidth, s.noise_psd, g)
            power_out = np.where(served_in, p_all, 0.0)
            energy = np.where(served_in, tx * p_all, 0.0)
        busy = tx + relay + compute
        if t_ext is not None:
            busy = busy + t_ext
            energy = energy + np.where(served_in, e_ext, 0.0)
            violated["level_not_allowed"] = served_in & bad_level
        latency = np.where(served_in, busy, np.nan)
        violated["served_without_request"] = served_in & ~request
        violated["serve_migrating"] = served_in & migrating
        violated["server_down"] = served_in & host_down & ~migrating
        with np.errstate(invalid="ignore"):
            late = served_in & ~(latency <= s.deadline * (1 + FEAS_RTOL))
        violated["deadline"] = late
        served_out = served_in & request & ~migrating & ~late & ~host_down
        cause[request & ~served_in] = DECLINED
        cause[request & served_in & late & ~migrating] = DEADLINE
        cause[request & host_down & ~migrating] = SERVER_DOWN
        cause[pinned_req] = MIGRATING
    else:  # environment view
        p_in = power if power is not None else np.zeros(placement.shape)
        transmits = request & ~migrating & ~host_down & (p_in > 0)
        power_out = np.where(transmits, p_in, 0.0)
        tx_all = physics.time_for_power(power_out, data, s.bandwidth, s.noise_psd, g)
        with np.errstate(invalid="ignore"):
            busy = tx_all + relay + compute
            if t_ext is not None:
                busy = busy + t_ext
            latency = np.where(transmits, busy, np.nan)
            served_out = transmits & (latency <= s.deadline * (1 + FEAS_RTOL))
            energy = np.where(transmits, power_out * np.where(served_out, tx_all, np.minimum(tx_all, s.deadline)), 0.0)
        if t_ext is not None:
            energy = energy + np.where(transmits, e_ext, 0.0)
            violated["level_not_allowed"] = transmits & bad_level
        tx = np.where(transmits, tx_all, 0.0)
        cause[request & ~migrating & ~transmits] = SILENT
        cause[transmits & ~served_out] = DEADLINE
        cause[request & host_down & ~migrating] = SERVER_DOWN
        cause[pinned_req] = MIGRATING

    violated["power_cap"] = power_out > s.p_max * (1 + FEAS_RTOL)
    cpu_load = _bincount_rows(placement, cpu, m)
    violated["cpu_capacity"] = cpu_load > s.cpu_hz * (1 + FEAS_RTOL)
    storage_load = _bincount_rows(placement, np.broadcast_to(s.dt_size_bits, placement.shape), m)
    violated["storage_capacity"] = storage_load > s.storage_bits * (1 + FEAS_RTOL)
    migrated = placement != s.placement_prev
    violated["move_migrating"] = migrated & migrating
    allow = np.asarray(s.allow_migration, bool)[..., None]
    violated["migration_not_allowed"] = migrated & ~migrating & ~(allow & mask)
    violated["move_to_down_server"] = migrated & host_down

    failed = request & ~served_out
    energy_total = _masked_sum(energy, request, lead)
    failure_cost = _masked_sum(np.broadcast_to(s.failure_penalty, placement.shape), failed, lead)
    migration_cost = _masked_sum(np.broadcast_to(s.migration_penalty, placement.shape), migrated, lead)
    return BatchEvaluation(
        energy=energy, power=power_out, tx_time=tx, latency=latency, served=served_out, failed=failed,
        failure_cause=cause, migrated=migrated, cpu_load=cpu_load, storage_load=storage_load,
        energy_total=energy_total, failure_cost=failure_cost, migration_cost=migration_cost,
        objective=energy_total + failure_cost + migration_cost,
        violated={k: violated[k] for k in VIOLATION_KINDS}, relay=relay, compute=compute)


def _bincount_rows(idx: np.ndarray, weights: np.ndarray, m: int) -> np.ndarray:
    """``np.bincount(idx, weights, minlength=m)`` of every row of ``[..., N]`` at once: ``[..., M]``
    (each bin adds its entries in the same order as the per-row call, so the sums are identical)."""
    lead, n = idx.shape[:-1], idx.shape[-1]
    if not lead:
        return np.bincount(idx, weights=weights, minlength=m)
    rows = int(np.prod(lead))
    flat = (idx.reshape(rows, n) + m * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, weights=np.reshape(weights, -1), minlength=rows * m).reshape(*lead, m)


def _masked_sum(values: np.ndarray, mask: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    """``values[mask].sum()`` per row (row by row: numpy's pairwise summation groups a compressed
    array differently from one padded with zeros, and totals must equal evaluate's bit for bit)."""
    if not lead:
        return np.float64(values[mask].sum())
    v, k = values.reshape(-1, values.shape[-1]), mask.reshape(-1, mask.shape[-1])
    return np.array([row[sel].sum() for row, sel in zip(v, k)], dtype=float).reshape(lead)


DECISION_FIELDS = ("placement", "served", "tx_time", "cpu_hz", "power", "level")


def _unknown_keys(decision: Mapping) -> list[tuple[str, str]]:
    """A mapping's keys that are neither a decision field nor one a ``Solution`` writes (its
    ``to_dict`` is read as a decision): a mistyped ``levels`` was ignored, every MU taken at level 0."""
    extra = [k for k in decision if k not in DECISION_FIELDS]
    if extra:
        from dataclasses import fields

        from .solvers import Solution   # numpy only; only where a key is not a decision field

        extra = [k for k in extra if k not in {f.name for f in fields(Solution)}]
    return [(str(k), f"unknown field; a decision has {', '.join(DECISION_FIELDS)} "
                     "(and may carry the other fields of a Solution)") for k in extra]


def _read_decision(decision: Any, n: int, m: int, n_levels: int = 1) -> dict[str, np.ndarray | None]:
    get = decision.get if isinstance(decision, Mapping) else (lambda k: getattr(decision, k, None))
    out: dict[str, np.ndarray | None] = {}
    problems: list[tuple[str, str]] = _unknown_keys(decision) if isinstance(decision, Mapping) else []
    for name, kind in zip(DECISION_FIELDS, "ibfffl"):
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
        if kind in "il":
            what, top = ("server indices", m) if kind == "i" else ("level indices into the snapshot's menu", n_levels)
            if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
                problems.append((name, f"expected integer {what}"))
                continue
            arr = arr.astype(np.int64)
            if ((arr < 0) | (arr >= top)).any():
                if kind == "l" and top == 1:   # "[0, 0]" did not say why
                    problems.append((name, "must be 0 everywhere: the snapshot has no semantic menu "
                                           "(or a menu of one level), so there is no other level"))
                else:
                    problems.append((name, f"{what} must lie in [0, {top - 1}]"))
                continue
        elif kind == "b":
            if arr.dtype.kind not in "biu":
                problems.append((name, "expected booleans"))
                continue
            flag = np.isin(arr, (0, 1))
            if not flag.all():   # served=[2, 0] is not a flag: only 0/1 stand for False/True
                i = int(np.flatnonzero(~flag)[0])
                problems.append((name, f"expected booleans (True/False or 0/1), got {arr[i]} for MU {i}"))
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
