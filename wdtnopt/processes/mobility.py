"""Mobility sources: where the MU positions of a trace come from (docs/mobility.md).

A source turns ``(scenario, slots, layout_rng, mobility_rng)`` into a :class:`MobilityTrack`: MU
positions at the slot times, with speed and heading. :class:`GaussMarkov` is the built-in model
(docs/model.md, section 2) and the default; it draws from the trace's ``layout`` and ``mobility``
streams exactly as before sources existed, so default traces are unchanged bit for bit.

:class:`FcdFile` (SUMO floating-car data, XML, optionally gzipped) and :class:`TableFile` (CSV or
Parquet with ``time_s, id, x_m, y_m`` or ``lon_deg, lat_deg``) replay recorded positions. Both read
the file into :class:`Records` and pass them through :func:`clean`, which resamples them onto the
slot times, repairs what it can, maps vehicles onto the N MUs, and lists every fix in a
:class:`CleaningReport` (the rules: docs/mobility.md, section "Cleaning"). Replayed sources draw no
random numbers: the same file gives the same positions.
"""
from __future__ import annotations

import copy
import csv
import gzip
import io
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import MobilityError
from ..scenario import Scenario
from ..wording import counted, verb

WGS84_A_M = 6_378_137.0               # WGS 84 semi-major axis (m)
WGS84_F = 1 / 298.257223563           # WGS 84 flattening


@dataclass(frozen=True, eq=False)
class MobilityTrack:
    """MU positions of ``slots`` slots.

    Attributes
    ----------
    positions : ndarray, shape [T, N, 2]
        Position of each MU at each slot time (m): inside the square ``[0, area_m]^2`` (a replayed
        source: within its cleaning margin of it).
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
        pos, speed, heading = self.stream(scenario, slots, layout_rng, mobility_rng).next(slots)
        return MobilityTrack(pos, speed, heading)

    def stream(self, scenario: Scenario, slots: int, layout_rng: np.random.Generator,
               mobility_rng: np.random.Generator) -> GaussMarkovStream:
        """The same positions as :meth:`track`, generated a window of slots at a time
        (:class:`GaussMarkovStream`); ``slots`` is not needed to draw them."""
        start = layout_rng.uniform(0.0, scenario.area_m, (scenario.n_mus, 2))
        return GaussMarkovStream(mobility_rng, scenario, start)


class GaussMarkovStream:
    """The Gauss-Markov model with reflection (docs/model.md, section 2) stepped a window at a time.

    It holds the model's state across windows (positions, speed, heading and mean heading of every
    MU) and draws each window's noise ``[k, 2, N]`` from ``rng`` in slot order, so consecutive calls
    of :meth:`next` give bit for bit the values one call over all slots gives (numpy's
    ``Generator.standard_normal`` yields the same numbers drawn in pieces as in one block).

    Parameters
    ----------
    rng : numpy.random.Generator
        The trace's ``mobility`` stream (its first N draws are the mean headings).
    sc : Scenario
        Gives ``gm_memory``, ``slot_s``, ``area_m``, the speed and heading laws.
    start : ndarray, shape [N, 2]
        Positions at slot 0 (m).
    """

    report = None

    def __init__(self, rng: np.random.Generator, sc: Scenario, start: np.ndarray):
        self.rng, self.sc = rng, sc
        self.h_mean = rng.uniform(0.0, 2 * math.pi, start.shape[0])
        self.x, self.y = start[:, 0].copy(), start[:, 1].copy()
        self.v = np.full(start.shape[0], sc.speed_mean_mps)
        self.h = self.h_mean.copy()
        self.t = 0

    def clone(self) -> GaussMarkovStream:
        """An independent copy (state and generator), to replay from this slot again."""
        other = copy.copy(self)
        other.rng = copy.deepcopy(self.rng)
        return other

    def next(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions [k, N, 2] (m), speeds [k, N] (m/s) and headings [k, N] (rad) of the next ``k`` slots.

        Slot 0 holds the start; position t moves by ``v_{t-1} tau (cos h_{t-1}, sin h_{t-1})``. At
        the border the position is mirrored and the heading (and its mean) flips, so MUs stay inside.
        """
        sc = self.sc
        n = self.x.shape[0]
        a, tau, side = sc.gm_memory, sc.slot_s, sc.area_m
        root = math.sqrt(max(1.0 - a * a, 0.0))
        noise = self.rng.standard_normal((k, 2, n))
        pos = np.empty((k, n, 2))
        speed = np.empty((k, n))
        heading = np.empty((k, n))
        x, y, v, h, h_mean = self.x, self.y, self.v, self.h, self.h_mean
        for i in range(k):
            if self.t + i > 0:
                x = x + v * tau * np.cos(h)
                y = y + v * tau * np.sin(h)
                x, flip_x = _reflect(x, side)
                y, flip_y = _reflect(y, side)
                # mirror the direction of travel across the wall it hit (and its mean, to move away)
                h = np.where(flip_x, math.pi - h, h)
                h_mean = np.where(flip_x, math.pi - h_mean, h_mean)
                h = np.where(flip_y, -h, h)
                h_mean = np.where(flip_y, -h_mean, h_mean)
                v = np.maximum(a * v + (1 - a) * sc.speed_mean_mps + root * sc.speed_std_mps * noise[i, 0], 0.0)
                h = a * h + (1 - a) * h_mean + root * sc.heading_std_rad * noise[i, 1]
            pos[i, :, 0], pos[i, :, 1] = x, y
            speed[i], heading[i] = v, h
        self.x, self.y, self.v, self.h, self.h_mean = x, y, v, h, h_mean
        self.t += k
        return pos, speed, heading


def gauss_markov(rng: np.random.Generator, sc: Scenario, slots: int, start: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions [T,N,2], speeds [T,N], headings [T,N] of the Gauss-Markov model with reflection.

    Slot 0 holds the start; position t moves by ``v_{t-1} tau (cos h_{t-1}, sin h_{t-1})``. At the
    border the position is mirrored and the heading (and its mean) flips, so MUs stay inside
    (:class:`GaussMarkovStream` over all ``slots`` at once).
    """
    return GaussMarkovStream(rng, sc, start).next(slots)


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
    mobility : None, MobilitySource, str or os.PathLike
        None: :class:`GaussMarkov`; a source: itself; a path: the file it names, read by
        :func:`load_mobility` with the default cleaning rules; ``"sumo-grid[:key=value,...]"``:
        SUMO run on that grid (:func:`wdtnopt.processes.sumo.parse_sumo_grid_spec`, needs
        ``wdtnopt[sumo]``).

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
    if isinstance(mobility, str) and mobility.split(":", 1)[0] == "sumo-grid" and not Path(mobility).exists():
        from .sumo import build_sumo_grid, parse_sumo_grid_spec
        return build_sumo_grid(parse_sumo_grid_spec(mobility))
    if isinstance(mobility, (str, os.PathLike)):
        return load_mobility(mobility)
    if isinstance(mobility, MobilitySource):
        return mobility
    raise WdtnoptError(f"mobility: expected None, a mobility source or a file path, got {type(mobility).__name__}")


# ----------------------------------------------------------------------------------------------
# recorded positions


@dataclass(frozen=True, eq=False)
class Records:
    """Position records as read from a file, before cleaning (one entry per record).

    Attributes
    ----------
    time_s, x_m, y_m : ndarray, shape [R]
        Time stamp (s) and position (m); may hold non-finite values (cleaning drops them).
    vehicle : ndarray of int, shape [R]
        Index into ``ids`` of each record's vehicle.
    ids : tuple of str
        The vehicle ids, in order of first appearance in the file.
    line : ndarray of int, shape [R]
        Line (XML, CSV) or row (Parquet, 1-based) of each record, for the cleaning report.
    source : str
        File name, for messages.
    """

    time_s: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    vehicle: np.ndarray
    ids: tuple[str, ...]
    line: np.ndarray
    source: str = "records"

    @classmethod
    def from_arrays(cls, time_s: Any, ids: Any, x_m: Any, y_m: Any, line: Any = None,
                    source: str = "records") -> Records:
        """Records from parallel sequences (``ids`` any hashable labels, turned into strings).

        Parameters
        ----------
        time_s, x_m, y_m : array_like, shape [R]
            Time stamps (s) and positions (m).
        ids : sequence, length R
            Vehicle label of each record.
        line : array_like of int, optional
            Line or row of each record (default 1..R).
        source : str
            Name for messages.

        Returns
        -------
        Records
        """
        labels = [str(v) for v in ids]
        order: dict[str, int] = {}
        codes = np.fromiter((order.setdefault(v, len(order)) for v in labels), dtype=np.int64, count=len(labels))
        t = np.asarray(time_s, float).reshape(-1)
        x = np.asarray(x_m, float).reshape(-1)
        y = np.asarray(y_m, float).reshape(-1)
        if not (t.size == x.size == y.size == codes.size):
            raise MobilityError(f"{source}: time_s, id, x_m and y_m need the same length, got "
                                f"{t.size}, {codes.size}, {x.size}, {y.size}")
        ln = np.arange(1, t.size + 1) if line is None else np.asarray(line, np.int64).reshape(-1)
        arrays = [a.copy() for a in (t, x, y, codes, ln)]
        for a in arrays:
            a.setflags(write=False)     # records are cached per file and shared between traces
        t, x, y, codes, ln = arrays
        return cls(t, x, y, codes, tuple(order), ln, source)

    def __len__(self) -> int:
        return int(self.time_s.size)

    def take(self, keep: np.ndarray) -> Records:
        """The records selected by the boolean mask or index array ``keep`` (same ids)."""
        return Records(self.time_s[keep], self.x_m[keep], self.y_m[keep], self.vehicle[keep], self.ids,
                       self.line[keep], self.source)


@dataclass(frozen=True)
class CleaningRules:
    """How :func:`clean` turns records into MU positions (docs/mobility.md, section "Cleaning")."""

    max_gap_s: float = 5.0
    """Longest gap between two records of a vehicle that is bridged by linear interpolation (s)."""
    duplicate_tol_s: float = 0.01
    """A record within this time of the previous kept one of its vehicle is a duplicate (s)."""
    area_margin_m: float | None = None
    """Records farther than this outside the square [0, area_m]^2 are rejected (m); None: 1 % of area_m."""
    start_s: float | None = None
    """Time of slot 0 (s); None: the first time stamp by which N vehicles have appeared."""
    min_coverage: float = 0.5
    """Fraction of the window's slots a vehicle needs positions in to be an MU."""
    slot_tol_s: float = 1e-6
    """A record this close to a slot time is taken as the position at that slot, unchanged (s)."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_gap_s", "duplicate_tol_s", "slot_tol_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                problems.append(f"{name}: expected a finite number >= 0, got {v!r}")
        m = self.area_margin_m
        if m is not None and not (isinstance(m, (int, float)) and math.isfinite(m) and m >= 0):
            problems.append(f"area_margin_m: expected None or a finite number >= 0, got {m!r}")
        st = self.start_s
        if st is not None and not (isinstance(st, (int, float)) and math.isfinite(st)):
            problems.append(f"start_s: expected None or a finite number, got {st!r}")
        c = self.min_coverage
        if not (isinstance(c, (int, float)) and 0 <= c <= 1):
            problems.append(f"min_coverage: expected a number in [0, 1], got {c!r}")
        if problems:
            raise MobilityError("invalid cleaning rules: " + "; ".join(problems))


@dataclass(frozen=True)
class Fix:
    """One change cleaning made: ``kind``, the vehicle, and the record's line/row or the slot."""

    kind: str
    vehicle: str
    time_s: float
    line: int | None = None
    slot: int | None = None


FIX_KINDS = ("non_finite", "out_of_area", "out_of_order", "exact_duplicate", "near_duplicate",
             "interpolated", "held")


@dataclass(frozen=True)
class CleaningReport:
    """Everything :func:`clean` did (docs/mobility.md, section "Cleaning").

    Attributes
    ----------
    source : str
        The file (or records) cleaned.
    records : int
        Records read.
    vehicles : int
        Distinct vehicles read.
    start_s : float
        Time of slot 0 (s).
    mu_vehicles : tuple of str
        Vehicle id of each MU, in MU order.
    fixes : tuple of Fix
        Every fix: records dropped (``non_finite``, ``out_of_area``, ``exact_duplicate``,
        ``near_duplicate``), records found before an earlier time stamp of their vehicle and
        reordered (``out_of_order``), and MU slots whose position was ``interpolated`` inside a gap
        or ``held`` (the vehicle not present: before it entered, after it left, or in a gap longer
        than ``max_gap_s``).
    """

    source: str
    records: int
    vehicles: int
    start_s: float
    mu_vehicles: tuple[str, ...]
    fixes: tuple[Fix, ...] = field(repr=False)

    @property
    def counts(self) -> dict[str, int]:
        """Number of fixes of each kind (every kind listed, zeros included)."""
        out = dict.fromkeys(FIX_KINDS, 0)
        for f in self.fixes:
            out[f.kind] += 1
        return out

    def csv_text(self) -> str:
        """Every fix as CSV: ``kind, vehicle, time_s, line, slot`` (line or slot empty where not
        applicable)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["kind", "vehicle", "time_s", "line", "slot"])
        for f in self.fixes:
            w.writerow([f.kind, f.vehicle, repr(f.time_s), "" if f.line is None else f.line,
                        "" if f.slot is None else f.slot])
        return buf.getvalue()

    def summary(self) -> str:
        """One line: what was read and how many fixes of each kind."""
        c = self.counts
        fixes = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in c.items() if v) or "no fixes"
        return (f"{self.source}: {counted(self.records, 'record')} of {counted(self.vehicles, 'vehicle')}; "
                f"{counted(len(self.mu_vehicles), 'MU')} from t = {self.start_s:g} s; {fixes}")


def clean(records: Records, scenario: Scenario, slots: int, rules: CleaningRules | None = None
          ) -> MobilityTrack:
    """Resample ``records`` onto the slot times of ``scenario`` and map vehicles onto its N MUs.

    The rules, in order (docs/mobility.md, section "Cleaning"):

    1. drop records with a non-finite time or coordinate;
    2. drop records farther than ``area_margin_m`` outside ``[0, area_m]^2``;
    3. count records whose time stamp is below an earlier one of the same vehicle (out of order),
       then sort each vehicle's records by time (ties keep file order);
    4. drop a record within ``duplicate_tol_s`` of the previous kept one of its vehicle (exact if
       time and position are equal, else near): the earliest of a group is kept;
    5. slot k is at ``start_s + k * slot_s``; a record within ``slot_tol_s`` of it gives the
       position unchanged; otherwise the two records around it, if at most ``max_gap_s`` apart,
       give it by linear interpolation; otherwise the vehicle is absent at that slot;
    6. the N vehicles present in the most slots (ties: earlier first record, then id) become the
       MUs, in that order; each needs positions in at least ``min_coverage`` of the slots;
    7. an MU's absent slots hold the nearest earlier position (before its first: its first one).

    Parameters
    ----------
    records : Records
        The raw records.
    scenario : Scenario
        Gives N (``n_mus``), the slot length ``slot_s`` and the area ``area_m``.
    slots : int
        Number of slots T.
    rules : CleaningRules, optional
        Thresholds (defaults: :class:`CleaningRules`).

    Returns
    -------
    MobilityTrack
        Positions [T, N, 2] (m), speed and heading from consecutive positions, and the
        :class:`CleaningReport` as ``report``.

    Raises
    ------
    MobilityError
        Too little usable data: fewer than N vehicles, a window past the last record, or fewer
        than N vehicles with the required coverage.
    """
    rules = CleaningRules() if rules is None else rules
    n, tau, side = scenario.n_mus, float(scenario.slot_s), float(scenario.area_m)
    ids, src = records.ids, records.source
    fixes: list[Fix] = []

    def note(kind: str, idx: np.ndarray) -> None:
        for i in idx:
            fixes.append(Fix(kind, ids[records.vehicle[i]], float(records.time_s[i]), int(records.line[i])))

    t, x, y = records.time_s, records.x_m, records.y_m
    finite = np.isfinite(t) & np.isfinite(x) & np.isfinite(y)
    note("non_finite", np.flatnonzero(~finite))
    margin = 0.01 * side if rules.area_margin_m is None else float(rules.area_margin_m)
    with np.errstate(invalid="ignore"):
        inside = (x >= -margin) & (x <= side + margin) & (y >= -margin) & (y <= side + margin)
    note("out_of_area", np.flatnonzero(finite & ~inside))
    kept = np.flatnonzero(finite & inside)

    # group by vehicle in file order; a record is out of order if an earlier one of its vehicle
    # has a later time stamp
    by_vehicle = kept[np.argsort(records.vehicle[kept], kind="stable")]
    veh = records.vehicle[by_vehicle]
    bounds = np.flatnonzero(np.diff(veh)) + 1
    late = np.zeros(by_vehicle.size, bool)
    for seg in np.split(np.arange(by_vehicle.size), bounds):
        ts = t[by_vehicle[seg]]
        if ts.size > 1:
            late[seg[1:]] = ts[1:] < np.maximum.accumulate(ts)[:-1]
    note("out_of_order", by_vehicle[late])

    # sort by (vehicle, time), file order on ties; drop records within duplicate_tol_s of the
    # previous one of the same vehicle
    order = by_vehicle[np.lexsort((t[by_vehicle], veh))]
    veh = records.vehicle[order]
    ts = t[order]
    same = np.zeros(order.size, bool)
    same[1:] = (veh[1:] == veh[:-1]) & (ts[1:] - ts[:-1] <= rules.duplicate_tol_s)
    # inside a run of records each within duplicate_tol_s of the one before, a record is a
    # duplicate only within duplicate_tol_s of the last KEPT one (a 100 Hz track is thinned to one
    # record per duplicate_tol_s, not collapsed onto its first record): jump from each kept record
    # to the first one past its tolerance
    run_heads = np.flatnonzero(~same)
    run_ends = np.r_[run_heads[1:], order.size]
    for h, e in zip(run_heads[run_ends - run_heads > 1], run_ends[run_ends - run_heads > 1]):
        i = h
        while True:
            j = h + int(np.searchsorted(ts[h:e], ts[i] + rules.duplicate_tol_s, side="right"))
            # the first record whose time DIFFERENCE exceeds the tolerance, as the test above
            # compares (the sum ts[i] + tol may round the other way)
            while j > i + 1 and ts[j - 1] - ts[i] > rules.duplicate_tol_s:
                j -= 1
            while j < e and ts[j] - ts[i] <= rules.duplicate_tol_s:
                j += 1
            if j >= e:
                break
            same[j] = False
            i = j
    # each dropped record is compared with the kept one it duplicates (the last kept before it)
    head = order[np.maximum.accumulate(np.where(same, 0, np.arange(order.size)))]
    exact = same & (t[order] == t[head]) & (x[order] == x[head]) & (y[order] == y[head])
    note("exact_duplicate", order[exact])
    note("near_duplicate", order[same & ~exact])
    order = order[~same]
    veh, ts, xs, ys = records.vehicle[order], t[order], x[order], y[order]

    if order.size == 0:
        raise MobilityError(f"{src}: no usable records (of {len(records)} read)")
    starts = np.r_[0, np.flatnonzero(np.diff(veh)) + 1]
    ends = np.r_[starts[1:], order.size]
    if starts.size < n:
        raise MobilityError(f"{src}: {counted(starts.size, 'vehicle')} {verb(starts.size, 'has', 'have')} usable records, the scenario needs "
                            f"n_mus = {n}")
    first_t = ts[starts]
    if rules.start_s is not None:
        start = float(rules.start_s)
    else:
        start = float(np.sort(first_t)[n - 1])
    slot_t = start + tau * np.arange(slots)
    if slot_t[-1] > ts.max() + rules.slot_tol_s or start < ts.min() - rules.slot_tol_s:
        raise MobilityError(f"{src}: records cover t = {ts.min():g}..{ts.max():g} s, the {counted(slots, 'slot')} "
                            f"{verb(slots, 'needs', 'need')} "
                            f"t = {start:g}..{slot_t[-1]:g} s ({SHORT_RECORD_ADVICE})")

    # resample every vehicle onto the slot times
    n_veh = starts.size
    pos = np.full((n_veh, slots, 2), np.nan)
    interp = np.zeros((n_veh, slots), bool)
    for v in range(n_veh):
        a, b = starts[v], ends[v]
        tv = ts[a:b]
        j = np.searchsorted(tv, slot_t - rules.slot_tol_s, side="left")
        hit = (j < tv.size) & (np.abs(tv[np.minimum(j, tv.size - 1)] - slot_t) <= rules.slot_tol_s)
        pos[v, hit, 0] = xs[a:b][j[hit]]
        pos[v, hit, 1] = ys[a:b][j[hit]]
        lo = j - 1
        between = ~hit & (lo >= 0) & (j < tv.size)
        if between.any():
            i0, i1 = lo[between], j[between]
            gap_ok = tv[i1] - tv[i0] <= rules.max_gap_s
            k = np.flatnonzero(between)[gap_ok]
            i0, i1 = i0[gap_ok], i1[gap_ok]
            w = (slot_t[k] - tv[i0]) / (tv[i1] - tv[i0])
            pos[v, k, 0] = xs[a:b][i0] + w * (xs[a:b][i1] - xs[a:b][i0])
            pos[v, k, 1] = ys[a:b][i0] + w * (ys[a:b][i1] - ys[a:b][i0])
            interp[v, k] = True

    present = ~np.isnan(pos[:, :, 0])
    n_present = present.sum(axis=1)
    vid = np.array([ids[i] for i in veh[starts]], dtype=object)
    eligible = np.flatnonzero(n_present >= max(rules.min_coverage * slots, 1))
    if eligible.size < n:
        step = np.diff(ts)[np.diff(veh) == 0]             # time between a vehicle's consecutive records
        typical = float(np.median(step)) if step.size else math.nan
        hint = (f"; a vehicle's records are typically {typical:g} s apart, more than max_gap_s = {rules.max_gap_s:g} s "
                "(time_s must be in seconds; for sparser records raise max_gap_s)" if typical > rules.max_gap_s else "")
        raise MobilityError(f"{src}: {counted(eligible.size, 'vehicle')} {verb(eligible.size, 'has', 'have')} positions in at least "
                            f"{rules.min_coverage:.0%} of the {counted(slots, 'slot')} from t = {start:g} s, the scenario needs "
                            f"n_mus = {n} (fewer MUs or slots, another start_s, or a lower min_coverage){hint}")
    rank = sorted(eligible.tolist(), key=lambda v: (-int(n_present[v]), float(first_t[v]), str(vid[v])))
    chosen = np.array(rank[:n], dtype=np.int64)

    out = pos[chosen].transpose(1, 0, 2).copy()            # [T, N, 2]
    for mu, v in enumerate(chosen):
        name = str(vid[v])
        for k in np.flatnonzero(interp[v]):
            fixes.append(Fix("interpolated", name, float(slot_t[k]), slot=int(k)))
        missing = np.flatnonzero(~present[v])
        if missing.size:
            idx = np.where(present[v], np.arange(slots), -1)
            prev = np.maximum.accumulate(idx)
            first = int(np.argmax(present[v]))
            src_k = np.where(prev >= 0, prev, first)
            out[:, mu] = out[src_k, mu]
            for k in missing:
                fixes.append(Fix("held", name, float(slot_t[k]), slot=int(k)))

    speed, heading = motion_from_positions(out, tau)
    report = CleaningReport(src, len(records), len(ids), start, tuple(str(vid[v]) for v in chosen), tuple(fixes))
    return MobilityTrack(out, speed, heading, report)


def motion_from_positions(pos: np.ndarray, slot_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Speed [T, N] (m/s) and heading [T, N] (rad) that move position t to position t + 1.

    The last slot repeats the one before it (zero speed for a single slot), so the
    :class:`MobilityTrack` convention holds wherever there is a next position.
    """
    step = np.diff(pos, axis=0)                              # [T-1, N, 2]
    if step.shape[0] == 0:
        return np.zeros(pos.shape[:2]), np.zeros(pos.shape[:2])
    step = np.concatenate([step, step[-1:]], axis=0)
    return np.hypot(step[..., 0], step[..., 1]) / slot_s, np.arctan2(step[..., 1], step[..., 0])


# ----------------------------------------------------------------------------------------------
# readers


def _open_bytes(path: Path) -> Any:
    """The file as a binary stream, gunzipped if it starts with the gzip magic."""
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    f.seek(0)
    return f


# what a record too short for the slots asked for advises; train, whose slots are its config's
# episode_slots, names that knob instead of "fewer slots"
SHORT_RECORD_ADVICE = "fewer slots, another start_s or a longer record"

# a plain decimal number (optionally with an exponent), or nan/inf: Python's float() also takes
# "1_000" and non-ASCII digits, which no table writer means as a number
_PLAIN_NUMBER = re.compile(r"\s*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|nan|inf|infinity)\s*", re.IGNORECASE)


def _number(text: Any, what: str, where: str) -> float:
    try:
        if isinstance(text, str) and not _PLAIN_NUMBER.fullmatch(text):
            raise ValueError(text)
        return float(text)
    except (TypeError, ValueError):
        raise MobilityError(f"{where}: {what}: expected a number, got {text!r}") from None


def _sumo_time(text: Any, what: str, where: str) -> float:
    """A SUMO time attribute in seconds: a number, or the ``[D:]HH:MM:SS[.s]`` form that SUMO
    writes with ``--human-readable-time`` (days, hours, minutes and seconds, as SUMO reads it)."""
    if not isinstance(text, str) or ":" not in text:
        return _number(text, what, where)
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    parts = body.lstrip("-").split(":")
    try:
        if not 3 <= len(parts) <= 4 or any(not q.replace(".", "", 1).isdigit() for q in parts):
            raise ValueError
        if any("." in q for q in parts[:-1]) or int(parts[-2]) >= 60 or float(parts[-1]) >= 60:
            raise ValueError
        seconds = sum(float(q) * unit for q, unit in zip(reversed(parts), (1.0, 60.0, 3600.0, 86400.0)))
    except ValueError:
        raise MobilityError(f"{where}: {what}: expected seconds or SUMO's [D:]HH:MM:SS, got {text!r}") from None
    return sign * seconds


def read_fcd(path: str | os.PathLike, kinds: tuple[str, ...] = ("vehicle",)) -> Records:
    """Read a SUMO FCD file (``--fcd-output``; XML, optionally gzipped) with a streaming parser.

    Each ``<timestep time=...>`` holds one element per moving object; those named in ``kinds``
    (``vehicle``, ``person``, ``container``) give a record ``(time, id, x, y)``. Other attributes
    (speed, angle, lane) are not needed: speed and heading follow from the resampled positions.
    A ``person`` id is prefixed ``person:`` so it cannot collide with a vehicle's.

    Parameters
    ----------
    path : str or os.PathLike
        The FCD file.
    kinds : tuple of str
        Element names to read.

    Returns
    -------
    Records
        One record per element, ``line`` its line in the (decompressed) file.

    Raises
    ------
    MobilityError
        The file is missing, not an FCD file, malformed or truncated (naming the line), or an
        element lacks ``id``, ``x`` or ``y`` or has a non-number there (naming the line).
    """
    import xml.parsers.expat

    p = Path(path)
    name = p.name
    times: list[float] = []
    xs: list[float] = []
    ys: list[float] = []
    labels: list[str] = []
    lines: list[int] = []
    state: dict[str, Any] = {"time": None, "root": None}
    parser = xml.parsers.expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        where = f"{name} line {parser.CurrentLineNumber}"
        if state["root"] is None:
            state["root"] = tag
            if tag != "fcd-export":
                raise MobilityError(f"{where}: not a SUMO FCD file (root element <{tag}>, expected <fcd-export>)")
        elif tag == "timestep":
            state["time"] = _sumo_time(attrs.get("time"), "<timestep> attribute time", where)
        elif tag in kinds:
            if state["time"] is None:
                raise MobilityError(f"{where}: <{tag}> outside a <timestep>")
            for key in ("id", "x", "y"):   # by name (a missing x read as "expected a number, got None")
                if key not in attrs:
                    raise MobilityError(f"{where}: <{tag}> has no {key} attribute")
            if not attrs["id"].strip():   # as a table's empty id cell: not one vehicle named ""
                raise MobilityError(f"{where}: <{tag}> attribute id: expected a vehicle id, got an empty one")
            xs.append(_number(attrs.get("x"), f"<{tag}> attribute x", where))
            ys.append(_number(attrs.get("y"), f"<{tag}> attribute y", where))
            times.append(state["time"])
            labels.append(attrs["id"] if tag == "vehicle" else f"{tag}:{attrs['id']}")
            lines.append(parser.CurrentLineNumber)

    def end(tag: str) -> None:
        if tag == "timestep":
            state["time"] = None

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    if not p.is_file():
        raise MobilityError(f"mobility: no such file {str(path)!r}")
    try:
        with _open_bytes(p) as f:
            parser.ParseFile(f)
    except xml.parsers.expat.ExpatError as exc:
        raise MobilityError(f"{name} line {exc.lineno}: malformed XML "
                            f"({xml.parsers.expat.ErrorString(exc.code)})") from None
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise MobilityError(f"{name} line {parser.CurrentLineNumber}: unreadable or truncated file ({exc})") from None
    except LookupError as exc:   # expat looks up the XML declaration's encoding= by name
        raise MobilityError(f"{name} line 1: the XML declaration names an encoding Python does not know "
                            f"({exc}); SUMO writes UTF-8") from None
    if state["root"] is None:
        raise MobilityError(f"{name} line 1: empty file, expected a SUMO FCD file")
    return Records.from_arrays(times, labels, xs, ys, lines, name)


_XY_COLUMNS = (("x_m", "y_m"), ("lon_deg", "lat_deg"))


def read_table(path: str | os.PathLike, projection: str | None = None,
               origin_lonlat: tuple[float, float] | None = None, area_m: float | None = None) -> Records:
    """Read a recorded position table: CSV (optionally gzipped) or Parquet.

    Columns (others are ignored): ``time_s``, ``id``, and either ``x_m, y_m`` (metres in the
    scenario's frame) or ``lon_deg, lat_deg`` (WGS 84 degrees, projected by ``projection``); ``x_m,
    y_m`` win when a table has both. An empty cell is a missing value (a non-finite record that
    cleaning drops); a row with a missing or extra cell, or a cell that is not a number, is an error
    naming its line. A number cell is a plain decimal (``12``, ``-0.5``, ``1.5e3``) or ``nan`` /
    ``inf``: ``1_000``, ``0x10`` or digits of other scripts are errors naming the line and column
    (docs/mobility.md, "Tables").

    Parameters
    ----------
    path : str or os.PathLike
        ``.parquet`` (needs pyarrow), else CSV with a header row.
    projection : str, optional
        For lon/lat: ``"local"`` (the default; an equirectangular projection about the origin, no
        dependency) or a pyproj CRS such as ``"EPSG:32632"`` (needs pyproj).
    origin_lonlat : (float, float), optional
        For lon/lat: the point that becomes (0, 0) (the area's south-west corner). Default: the
        area is centred on the median of the records (needs ``area_m``), which a few wild points
        cannot move.
    area_m : float, optional
        Side of the scenario's square (m), for the default origin.

    Returns
    -------
    Records

    Raises
    ------
    MobilityError
        Missing file or column, a malformed row (naming its line/row), an unknown CRS, or a
        missing optional dependency.
    """
    p = Path(path)
    if not p.is_file():
        raise MobilityError(f"mobility: no such file {str(path)!r}")
    with open(p, "rb") as f:
        parquet = f.read(4) == b"PAR1"
    cols, labels, lines = _read_parquet(p) if parquet else _read_csv(p)
    name = p.name
    if "x_m" in cols and "y_m" in cols:
        x, y = cols["x_m"], cols["y_m"]
        span = _span_under_a_metre(x, y)
        if span is not None:   # lon/lat in the x_m, y_m columns, or kilometres
            import warnings

            warnings.warn(f"{name}: every position lies within {span:.3g} m of the others: x_m, y_m are metres in "
                          "the scenario's frame; degrees go in columns lon_deg, lat_deg (projected), kilometres "
                          "times 1000 (docs/mobility.md, section \"Tables\")", stacklevel=2)
    elif "lon_deg" in cols and "lat_deg" in cols:
        beyond = np.flatnonzero(np.abs(cols["lat_deg"]) > 90.0)   # e.g. lon and lat swapped; NaN stays missing
        if beyond.size:
            i = int(beyond[0])
            raise MobilityError(f"{name} {'row' if parquet else 'line'} {int(lines[i])}: lat_deg: expected WGS 84 "
                                f"degrees in [-90, 90], got {float(cols['lat_deg'][i]):g} (lon_deg and lat_deg swapped?)")
        x, y = project_lonlat(cols["lon_deg"], cols["lat_deg"], projection or "local", origin_lonlat, area_m, name,
                              lines, "row" if parquet else "line")
    else:
        raise MobilityError(f"{name}: expected columns time_s, id, x_m, y_m (or lon_deg, lat_deg)")
    return Records.from_arrays(cols["time_s"], labels, x, y, lines, name)


def _read_csv(p: Path) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    name = p.name
    try:   # utf-8-sig: the BOM of a spreadsheet's UTF-8 export is not part of the first column's name
        with _open_bytes(p) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                raise MobilityError(f"{name} line 1: empty file, expected a header with time_s, id, x_m, y_m")
            header = [h.strip() for h in header]
            need = ["time_s", "id"]
            pair = next((c for c in _XY_COLUMNS if all(k in header for k in c)), None)
            missing = [k for k in need if k not in header]
            if missing or pair is None:
                raise MobilityError(f"{name} line 1: header {header} lacks "
                                    f"{', '.join(missing) or 'x_m, y_m (or lon_deg, lat_deg)'}")
            twice = [k for k in (*need, *pair) if header.count(k) > 1]
            if twice:   # which of the two is meant cannot be told
                raise MobilityError(f"{name} line 1: header {header} names {', '.join(twice)} more than once")
            idx = {k: header.index(k) for k in (*need, *pair)}
            width = len(header)
            vals: dict[str, list[float]] = {k: [] for k in ("time_s", *pair)}
            labels: list[str] = []
            lines: list[int] = []
            for row in reader:
                ln = reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    raise MobilityError(f"{name} line {ln}: expected {width} fields, got {len(row)} "
                                        "(truncated or malformed row)")
                for k in vals:
                    cell = row[idx[k]].strip()
                    vals[k].append(math.nan if cell == "" else _number(cell, k, f"{name} line {ln}"))
                label = row[idx["id"]].strip()
                if label == "":
                    raise MobilityError(f"{name} line {ln}: id: expected a vehicle id, got an empty cell")
                labels.append(label)
                lines.append(ln)
    except (UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile) as exc:
        raise MobilityError(f"{name} line {locals().get('ln', 1)}: unreadable or truncated file ({exc})") from None
    return {k: np.asarray(v, float) for k, v in vals.items()}, labels, np.asarray(lines, np.int64)


def _read_parquet(p: Path) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MobilityError(f"{p.name}: reading Parquet needs pyarrow (pip install 'wdtnopt[tables]')") from None
    try:
        table = pq.read_table(p)
    except Exception as exc:   # pyarrow raises its own error types for damaged files
        raise MobilityError(f"{p.name}: unreadable Parquet file ({exc})") from None
    names = table.column_names
    pair = next((c for c in _XY_COLUMNS if all(k in names for k in c)), None)
    missing = [k for k in ("time_s", "id") if k not in names]
    if missing or pair is None:
        raise MobilityError(f"{p.name}: columns {names} lack {', '.join(missing) or 'x_m, y_m (or lon_deg, lat_deg)'}")
    cols: dict[str, np.ndarray] = {}
    for k in ("time_s", *pair):
        if str(table.schema.field(k).type) == "bool":   # True / False would pass as 1.0 / 0.0
            raise MobilityError(f"{p.name}: {k}: expected a number column, got booleans")
        col = table.column(k).to_numpy(zero_copy_only=False)
        try:
            cols[k] = np.asarray(col, dtype=float)
        except (TypeError, ValueError):
            bad = next(i for i, v in enumerate(col) if not _is_number(v))
            raise MobilityError(f"{p.name} row {bad + 1}: {k}: expected a number, got {col[bad]!r}") from None
    raw_ids = table.column("id").to_pylist()
    # a null, NaN or blank id names no vehicle: an error naming the row, as an empty id cell of a CSV
    blank = next((i for i, v in enumerate(raw_ids) if v is None or (isinstance(v, float) and math.isnan(v))
                  or (isinstance(v, (str, bytes)) and not v.strip())), None)
    if blank is not None:
        raise MobilityError(f"{p.name} row {blank + 1}: id: expected a vehicle id, got "
                            f"{'a null' if raw_ids[blank] is None else repr(raw_ids[blank])}")
    labels = [str(v) for v in raw_ids]
    return cols, labels, np.arange(1, len(labels) + 1)


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _longitude_difference(lon: np.ndarray, lon0: float) -> np.ndarray:
    """``lon - lon0`` in degrees, taken the short way round: a difference beyond 180 degrees (a
    track across the antimeridian, or longitudes given in [0, 360)) is wrapped into [-180, 180);
    other differences are returned exactly as computed."""
    d = np.asarray(lon, float) - lon0
    with np.errstate(invalid="ignore"):
        far = np.abs(d) > 180.0
    return np.where(far, np.mod(d + 180.0, 360.0) - 180.0, d)


def _median_longitude(lon: np.ndarray) -> float:
    """The median of finite longitudes (degrees); for points spread over more than 180 degrees of
    longitude (across the antimeridian), the median of their short-way offsets from the first."""
    if float(np.max(lon) - np.min(lon)) <= 180.0:
        return float(np.median(lon))
    ref = float(lon[0])
    return ref + float(np.median(_longitude_difference(lon, ref)))


# longitudes are taken in [-180, 180] or written in [0, 360) (docs/mobility.md, "Tables")
LON_MIN_DEG, LON_MAX_DEG = -180.0, 360.0


def project_lonlat(lon: np.ndarray, lat: np.ndarray, projection: str,
                   origin_lonlat: tuple[float, float] | None = None, area_m: float | None = None,
                   source: str = "records", line: np.ndarray | None = None,
                   line_word: str = "line") -> tuple[np.ndarray, np.ndarray]:
    """Project WGS 84 lon/lat (degrees) to metres in the scenario's frame.

    ``"local"``: equirectangular about the origin on the WGS 84 ellipsoid,
    ``x = N(lat0) cos(lat0) (lon - lon0)``, ``y = M(lat0) (lat - lat0)`` (radians; M and N the
    meridional and prime-vertical radii of curvature at lat0; ``lon - lon0`` the short way round,
    so a track across the antimeridian stays whole); over a few kilometres its distances
    are within 0.1 % of geodesic ones (docs/mobility.md). Any other string is a pyproj CRS, and the
    projected coordinates are shifted to the origin.

    Parameters
    ----------
    lon, lat : ndarray, shape [R]
        Degrees; non-finite entries stay non-finite.
    projection : str
        ``"local"`` or a CRS for pyproj.
    origin_lonlat : (float, float), optional
        The point mapped to (0, 0). Default: the median point of the records is mapped to the
        area's centre ``(area_m / 2, area_m / 2)``.
    area_m : float, optional
        The area's side (m), needed for the default origin.
    source : str
        Name for messages.
    line : ndarray, shape [R], optional
        Line (or row) of each record, to name the first out-of-range one.
    line_word : str
        ``"line"`` or ``"row"`` in that message.

    Returns
    -------
    (ndarray, ndarray)
        x and y (m).

    Raises
    ------
    MobilityError
        A longitude outside [-180, 360] (400 would act like 40) or a latitude outside [-90, 90]
        (naming the first one's line), no finite point, an ``origin_lonlat`` that is not two
        degrees in those ranges, pyproj missing or the CRS unknown.
    """
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    if origin_lonlat is not None:
        try:
            lon0, lat0 = (float(v) for v in origin_lonlat)
        except (TypeError, ValueError):
            lon0 = lat0 = math.nan
        if not (LON_MIN_DEG <= lon0 <= LON_MAX_DEG and -90.0 <= lat0 <= 90.0):
            raise MobilityError(f"{source}: origin_lonlat: expected (lon_deg, lat_deg), two finite degrees with the "
                                f"longitude in [{LON_MIN_DEG:g}, {LON_MAX_DEG:g}] and the latitude in [-90, 90], "
                                f"got {origin_lonlat!r}")
        origin_lonlat = (lon0, lat0)
    for what, v, lo, hi in (("lon_deg", lon, LON_MIN_DEG, LON_MAX_DEG), ("lat_deg", lat, -90.0, 90.0)):
        beyond = np.flatnonzero((v < lo) | (v > hi))   # NaN stays a missing value (cleaning drops it)
        if beyond.size:
            i = int(beyond[0])
            at = f" {line_word} {int(line[i])}" if line is not None else ""
            raise MobilityError(f"{source}{at}: {what}: expected WGS 84 degrees in [{lo:g}, {hi:g}], got "
                                f"{float(v[i]):g} ({counted(beyond.size, 'value')} out of range)")
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise MobilityError(f"{source}: no finite lon_deg/lat_deg value")
    if projection == "local":
        lon0, lat0 = origin_lonlat if origin_lonlat is not None else (_median_longitude(lon[ok]), float(np.median(lat[ok])))
        e2 = WGS84_F * (2 - WGS84_F)
        w = 1 - e2 * math.sin(math.radians(lat0)) ** 2
        m_radius, n_radius = WGS84_A_M * (1 - e2) / w ** 1.5, WGS84_A_M / math.sqrt(w)
        x = math.radians(1.0) * n_radius * math.cos(math.radians(lat0)) * _longitude_difference(lon, lon0)
        y = math.radians(1.0) * m_radius * (lat - lat0)
    else:
        try:
            from pyproj import Transformer
            from pyproj.exceptions import CRSError
        except ImportError:
            raise MobilityError(f"{source}: projection {projection!r} needs pyproj (pip install 'wdtnopt[geo]'), "
                                "or use projection='local'") from None
        try:
            tf = Transformer.from_crs("EPSG:4326", projection, always_xy=True)
        except CRSError as exc:
            raise MobilityError(f"{source}: projection: unknown CRS {projection!r} ({exc})") from None
        x, y = tf.transform(lon, lat)
        x, y = np.where(ok, x, np.nan), np.where(ok, y, np.nan)
        if origin_lonlat is not None:
            x0, y0 = tf.transform(*origin_lonlat)
            x, y = x - x0, y - y0
        else:
            x, y = x - float(np.median(x[ok])), y - float(np.median(y[ok]))
    if origin_lonlat is None:
        if area_m is None:
            raise MobilityError(f"{source}: lon/lat without origin_lonlat needs the area's side to centre it")
        x, y = x + area_m / 2, y + area_m / 2
    return np.asarray(x, float), np.asarray(y, float)


# ----------------------------------------------------------------------------------------------
# file sources


def _file_key(path: str | os.PathLike) -> tuple[str, str]:
    """The file's path and a digest of its bytes: a rewritten file is read again, however fast
    (modification times are only as fine as the file system's clock)."""
    import hashlib

    p = Path(path)
    if not p.is_file():
        raise MobilityError(f"mobility: no such file {str(path)!r}")
    h = hashlib.blake2b(digest_size=16)
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return str(p.resolve()), h.hexdigest()


@lru_cache(maxsize=8)
def _cached_fcd(key: tuple[str, str], kinds: tuple[str, ...]) -> Records:
    return read_fcd(key[0], kinds)


@lru_cache(maxsize=8)
def _cached_table(key: tuple[str, str], projection: str | None, origin: tuple[float, float] | None,
                  area_m: float | None) -> Records:
    return read_table(key[0], projection, origin, area_m)


def _warn_if_degrees(rec: Records) -> None:
    """Warn when network coordinates in metres look like ``--fcd-output.geo`` degrees: every
    position within longitude/latitude ranges and the whole file spanning under a metre (a city in
    degrees spans well under one; vehicles on a network in metres span far more)."""
    span = _span_under_a_metre(rec.x_m, rec.y_m)
    if span is not None:
        import warnings

        warnings.warn(f"{rec.source}: every position lies within {span:.3g} m of the others "
                      "and within longitude/latitude ranges: if this is `sumo --fcd-output.geo` output "
                      "(x = longitude, y = latitude), read it with load_mobility(path, projection='local') "
                      "(docs/mobility.md, section \"SUMO\")", stacklevel=3)


def _span_under_a_metre(x: np.ndarray, y: np.ndarray) -> float | None:
    """The span (m) of the finite positions when they all lie within longitude/latitude ranges and
    within a metre of each other but not all on one point (degrees or kilometres read as metres:
    vehicles in metres span far more); None otherwise."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return None
    x, y = x[ok], y[ok]
    if (np.abs(x).max() <= 180 and np.abs(y).max() <= 90 and np.ptp(x) < 1.0 and np.ptp(y) < 1.0
            and (np.ptp(x) > 0 or np.ptp(y) > 0)):
        return float(max(np.ptp(x), np.ptp(y)))
    return None


@dataclass(frozen=True)
class FcdFile:
    """Positions replayed from a SUMO FCD file (docs/mobility.md, section "SUMO").

    Parameters
    ----------
    path : str
        The FCD XML file, optionally gzipped.
    rules : CleaningRules
        How the records become MU positions.
    kinds : tuple of str
        FCD elements that are MUs (``vehicle``, ``person``).
    projection, origin_lonlat
        For a file of ``sumo --fcd-output.geo`` (``x`` = longitude, ``y`` = latitude, degrees):
        how they become metres, as in :func:`project_lonlat`; None (default) for network
        coordinates in metres.
    """

    path: str
    rules: CleaningRules = CleaningRules()
    kinds: tuple[str, ...] = ("vehicle",)
    projection: str | None = None
    origin_lonlat: tuple[float, float] | None = None

    def records(self, area_m: float | None = None) -> Records:
        """The file's records, in metres (read once per file content and cached)."""
        rec = _cached_fcd(_file_key(self.path), tuple(self.kinds))
        if self.projection is None:
            _warn_if_degrees(rec)
            return rec
        x, y = project_lonlat(rec.x_m, rec.y_m, self.projection, self.origin_lonlat, area_m, rec.source, rec.line)
        return Records.from_arrays(rec.time_s, [rec.ids[v] for v in rec.vehicle], x, y, rec.line, rec.source)

    def track(self, scenario: Scenario, slots: int, layout_rng: np.random.Generator | None = None,
              mobility_rng: np.random.Generator | None = None) -> MobilityTrack:
        """Cleaned positions of ``scenario.n_mus`` MUs (the generators are not used)."""
        return clean(self.records(float(scenario.area_m)), scenario, slots, self.rules)


@dataclass(frozen=True)
class TableFile:
    """Positions replayed from a recorded table, CSV or Parquet (docs/mobility.md, section "Tables").

    Parameters
    ----------
    path : str
        The table (see :func:`read_table` for its columns).
    rules : CleaningRules
        How the records become MU positions.
    projection, origin_lonlat
        For lon/lat columns, as in :func:`read_table`.
    """

    path: str
    rules: CleaningRules = CleaningRules()
    projection: str | None = None
    origin_lonlat: tuple[float, float] | None = None

    def records(self, area_m: float | None = None) -> Records:
        """The file's records (read once per file content and cached)."""
        origin = None if self.origin_lonlat is None else tuple(map(float, self.origin_lonlat))
        return _cached_table(_file_key(self.path), self.projection, origin, area_m)

    def track(self, scenario: Scenario, slots: int, layout_rng: np.random.Generator | None = None,
              mobility_rng: np.random.Generator | None = None) -> MobilityTrack:
        """Cleaned positions of ``scenario.n_mus`` MUs (the generators are not used)."""
        return clean(self.records(float(scenario.area_m)), scenario, slots, self.rules)


def load_mobility(path: str | os.PathLike, rules: CleaningRules | None = None, **options: Any) -> FcdFile | TableFile:
    """The replayed source of a mobility file, its format told by its content.

    An XML document (after gunzip, its first non-blank character ``<``) is SUMO FCD
    (:class:`FcdFile`); a file starting with ``PAR1`` is Parquet, anything else CSV
    (:class:`TableFile`). Nothing is read beyond the first bytes until a trace needs it.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    rules : CleaningRules, optional
        Cleaning thresholds.
    **options
        ``kinds`` for FCD; ``projection``, ``origin_lonlat`` for lon/lat (tables, geo FCD).

    Returns
    -------
    FcdFile or TableFile

    Raises
    ------
    MobilityError
        The file does not exist or cannot be opened, or an option does not fit its format.
    """
    p = Path(path)
    if not p.is_file():
        raise MobilityError(f"mobility: expected an FCD XML, CSV or Parquet file, no such file {str(path)!r}")
    try:
        with _open_bytes(p) as f:
            head = f.read(512)
    except (OSError, EOFError) as exc:
        raise MobilityError(f"{p.name} line 1: unreadable file ({exc})") from None
    rules = CleaningRules() if rules is None else rules
    is_xml = head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
    allowed = {"kinds", "projection", "origin_lonlat"} if is_xml else {"projection", "origin_lonlat"}
    extra = set(options) - allowed
    if extra:
        raise MobilityError(f"mobility: option(s) {sorted(extra)} do not apply to "
                            f"{'an FCD file' if is_xml else 'a table'} (allowed: {sorted(allowed)})")
    if is_xml:
        return FcdFile(str(p), rules, **options)
    return TableFile(str(p), rules, **options)
