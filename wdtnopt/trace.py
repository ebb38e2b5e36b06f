"""Exogenous processes of one run (docs/model.md, section 2), generated once and replayed for every policy.

Nothing here depends on a decision, so one seeded :class:`Trace` gives common random numbers:
positions, gains, association, requests and interference are the same for all policies.
Everything is vectorized over MUs (and over slots where the process allows); the same
``(scenario, seed, slots)`` gives the same trace bit for bit. A trace too big to hold whole is a
:class:`WindowedTrace`: the same values, generated a window of slots at a time (docs/model.md,
section 2.2).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from . import physics
from .processes.mobility import _reflect, gauss_markov, resolve_mobility  # noqa: F401 (re-exported)
from .processes import availability
from .processes import channels, semantic
from .scenario import Scenario
from .snapshot import Snapshot
from .wording import counted, sizes

# independent streams of one seed (SeedSequence.spawn): adding a process never shifts another
_STREAMS = ("layout", "mobility", "fading", "requests", "workload", "blockage")

UNAVAILABLE_SLOTS_CAP = 2**53
"""Largest count :func:`unavailable_slots` returns: longer than any trace (docs/model.md, section
4.1), exactly representable as both a float and an int64, so counts stay exact in either."""


def unavailable_slots(t_s: Any, slot_s: float, *, at_least: int = 1) -> np.ndarray:
    """Slots of unavailability of a transfer taking ``t_s`` seconds: ``ceil(t_s / slot_s)``.

    The one place that turns a migration or restore time into a slot count (docs/model.md, section
    4.1: migrations; section 12: restores). A quotient within a relative ``1e-12`` of an integer is
    that integer, so an exact multiple of the slot does not gain a slot on round-off (the guard
    snaps to the nearest integer only: the former ``ceil(q (1 - 1e-12))`` dropped ``q 1e-12``
    whole slots from counts past ``1e12``); the count is at least ``at_least`` and at most
    :data:`UNAVAILABLE_SLOTS_CAP` (``2**53``), so a time that overflows the division (``inf``,
    ``1e308 / 1e-300``) is a finite count longer than any trace rather than an overflow.

    Parameters
    ----------
    t_s : float or array_like of float, any shape
        Transfer times (s), ``>= 0``; ``inf`` allowed.
    slot_s : float
        Slot length tau (s), ``> 0``.
    at_least : int, optional
        Smallest count returned (default 1: a move or restore takes at least its own slot).

    Returns
    -------
    numpy.ndarray of int64, shape of ``t_s``
        ``min(max(ceil(t_s / slot_s), at_least), 2**53)``.

    Raises
    ------
    ValueError
        If ``slot_s`` is not a positive number or some ``t_s`` is negative or NaN.
    """
    tau = float(slot_s)
    if not tau > 0:
        raise ValueError(f"slot_s: expected a positive slot length (s), got {slot_s!r}")
    t = np.asarray(t_s, dtype=float)
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError("t_s: expected transfer times >= 0 (s), got a negative or NaN time")
    with np.errstate(over="ignore", invalid="ignore"):   # t / tau past the largest float is inf: capped below
        q = t / tau
        near = np.round(q)
        k = np.where(np.abs(q - near) <= q * 1e-12, near, np.ceil(q))   # (inf - inf is NaN: not near)
    return np.clip(k, max(int(at_least), 0), UNAVAILABLE_SLOTS_CAP).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Trace:
    """All exogenous data of ``slots`` slots (arrays indexed [slot, MU, BS])."""

    scenario: Scenario
    seed: int
    bs_positions: np.ndarray        # [M, 2] (m)
    positions: np.ndarray           # [T, N, 2] MU positions at each slot (m), from the mobility source
    speed: np.ndarray               # [T, N] speed (m/s): position t+1 = position t + speed[t] tau (cos, sin)(heading[t])
    heading: np.ndarray             # [T, N] heading (rad)
    gain: np.ndarray                # [T, N, M] path loss x Rician fading (linear)
    assoc: np.ndarray               # [T, N] serving BS (largest large-scale gain)
    request: np.ndarray             # [T, N] sync requested
    bandwidth: np.ndarray           # [T, N] equal share of the serving BS's band (Hz)
    noise_psd: np.ndarray           # [T, N] thermal noise + interference at the serving BS (W/Hz)
    data_bits: np.ndarray           # [T, N] bits sent per sync (rho * raw)
    cycles_per_bit: np.ndarray      # [N] DT update work (cycles/bit)
    dt_size_bits: np.ndarray        # [N] DT size (bit)
    deadline: np.ndarray            # [N] (s)
    p_max: np.ndarray               # [N] (W)
    cpu_hz: np.ndarray              # [M] (cycles/s)
    storage_bits: np.ndarray        # [M] (bit)
    backhaul_latency_s: np.ndarray  # [M, M] (s)
    backhaul_s_per_bit: np.ndarray  # [M, M] (s/bit)
    hops: np.ndarray                # [M, M] backhaul hop counts
    initial_placement: np.ndarray   # [N] host of every DT at slot 0 (fits storage)
    mobility_report: Any = None     # what cleaning did to imported positions (None for a mobility model)
    server_up: np.ndarray | None = None        # [T, M] server up in the slot (docs/model.md, section 12)
    background_load: np.ndarray | None = None  # [T, M] share of each server's CPU taken by exogenous load
    levels: dict[str, np.ndarray] | None = None  # the semantic menu (Snapshot level fields), or None

    @property
    def server_events(self) -> bool:
        """Whether any server is ever down or loaded on this trace (else snapshots carry the nominal capacities)."""
        return bool(self.server_up is not None and (not self.server_up.all() or self.background_load.any()))

    def cpu_available_hz(self, t: int) -> np.ndarray:
        """[M] CPU left to DTs on each server in slot ``t``: 0 if down, ``cpu_hz (1 - load)`` if up.

        Raises
        ------
        IndexError
            If ``t`` is not a slot of the trace (``0 <= t < slots``; a negative ``t`` does not count
            from the end, and a trace without server events is no exception).
        """
        self._check_slot(t)
        if not self.server_events:
            return self.cpu_hz
        return np.where(self.server_up[t], self.cpu_hz * (1.0 - self.background_load[t]), 0.0)

    @property
    def slots(self) -> int:
        return int(self.request.shape[0])

    @property
    def window_slots(self) -> int | None:
        """Slots per window of a :class:`WindowedTrace`; None for a trace held whole."""
        return None

    def windows(self, window_slots: int | None = None) -> Iterator[TraceWindow]:
        """The per-slot fields in consecutive windows of slots, in slot order.

        Parameters
        ----------
        window_slots : int, optional
            Slots per window; default the trace's own windows (:attr:`window_slots`), one window
            for a trace held whole.

        Yields
        ------
        TraceWindow
            Slots ``start .. stop - 1``: views of a whole trace's arrays, or a windowed trace's
            window as generated (the last window may be shorter).
        """
        from .errors import WdtnoptError

        w = self.window_slots or self.slots if window_slots is None else window_slots
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise WdtnoptError(f"window_slots: expected an integer >= 1, got {window_slots!r}")
        for a in range(0, self.slots, int(w)):
            yield self._window(a, min(a + int(w), self.slots))

    def window_at(self, t: int) -> TraceWindow:
        """The window of the trace's own windows (:attr:`window_slots`; the whole trace when held
        whole) that holds slot ``t``, as :meth:`windows` yields it.

        Parameters
        ----------
        t : int
            Slot index, ``0 <= t < slots``.

        Returns
        -------
        TraceWindow
            Slots ``start <= t < stop``: views of a whole trace's arrays, or the windowed trace's
            window (generated if it is not the one in memory).

        Raises
        ------
        IndexError
            If ``t`` is not a slot of the trace.
        """
        self._check_slot(t)
        w = self.window_slots or self.slots
        a = int(t) // w * w
        return self._window(a, min(a + w, self.slots))

    def _check_slot(self, t: Any) -> None:
        """An IndexError unless ``t`` is an integer slot ``0 <= t < slots`` (no bool, no negative)."""
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or not 0 <= t < self.slots:
            raise IndexError(f"slot {t!r} out of range for {counted(self.slots, 'slot')}")

    def _window(self, a: int, b: int) -> TraceWindow:
        return TraceWindow(a, b, **{name: self._slot_block(name, a, b) for name in PER_SLOT_FIELDS},
                           server_up=None if self.server_up is None else self.server_up[a:b],
                           background_load=None if self.background_load is None else self.background_load[a:b])

    def _slot_block(self, name: str, a: int, b: int) -> np.ndarray:
        return getattr(self, name)[a:b]

    @property
    def n_mus(self) -> int:
        return self.scenario.n_mus

    @property
    def n_bss(self) -> int:
        return self.scenario.n_bss

    def migration_slots(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """[N] slots of unavailability when DT n moves src[n] -> dst[n]: ceil(T_mig / tau) (at least
        one, at most 2**53: :func:`unavailable_slots`), 0 if src == dst.

        Raises
        ------
        IndexError
            If ``src`` or ``dst`` is not N server indices in ``0 .. M - 1`` (a negative index would
            count from the last server and price a move that does not exist).
        """
        src, dst = np.asarray(src), np.asarray(dst)
        for name, v in (("src", src), ("dst", dst)):
            if (v.shape != (self.n_mus,) or v.dtype.kind not in "iu"
                    or (v.size and (v.min() < 0 or v.max() >= self.n_bss))):
                raise IndexError(f"{name}: expected {counted(self.n_mus, 'server index', 'server indices')} in "
                                 f"0..{self.n_bss - 1}, got {v!r}")
        t_mig = physics.backhaul_time(self.backhaul_latency_s[src, dst], self.backhaul_s_per_bit[src, dst], self.dt_size_bits)
        return np.where(src == dst, 0, unavailable_slots(t_mig, self.scenario.slot_s)).astype(np.int64)

    def transfer_time(self, src: int, dst: int, bits: float) -> float:
        """Backhaul time (s) of ``bits`` from server ``src`` to ``dst`` (latency + bits x per-bit time)."""
        return float(physics.backhaul_time(self.backhaul_latency_s[src, dst], self.backhaul_s_per_bit[src, dst], bits))

    def default_migration_penalty(self, failure_penalty: np.ndarray | float | None = None) -> np.ndarray:
        """[N] expected failure cost of a one-hop move: lam * ceil(T_mig,1hop / tau) * failure_penalty
        (the slot count of :func:`unavailable_slots`)."""
        sc = self.scenario
        fp = np.broadcast_to(np.asarray(sc.failure_price if failure_penalty is None else failure_penalty, float), (self.n_mus,))
        one_hop = sc.hop_latency_s + self.dt_size_bits / sc.hop_rate_bps
        return sc.request_prob * unavailable_slots(one_hop, sc.slot_s).astype(float) * fp

    def default_penalties(self) -> dict[str, np.ndarray]:
        """The [N] penalties of a snapshot whose caller gives none: ``failure_penalty`` the
        eta-weighted price ``eta * E_ref`` of docs/model.md, section 7, ``migration_penalty`` the expected
        failures of a one-hop move at that price."""
        fp = np.full(self.n_mus, float(self.scenario.failure_price))
        return {"failure_penalty": fp, "migration_penalty": self.default_migration_penalty(fp)}

    def snapshot(self, t: int, placement_prev: Any = None, migrating: Any = None,
                 failure_penalty: Any = None, migration_penalty: Any = None,
                 allow_migration: bool = True, hold_down_servers: bool = True) -> Snapshot:
        """The :class:`Snapshot` of slot ``t``.

        Parameters
        ----------
        t : int
            Slot index, ``0 <= t < slots``.
        placement_prev : array_like of int, shape [N], optional
            Host of every DT before the decision; default the initial placement.
        migrating : array_like of bool, shape [N], optional
            DTs under migration (they may not move and fail if they request); default none.
        failure_penalty : float or array_like, shape [N], optional
            Price of a failed sync (J); default ``eta * E_ref`` (:meth:`default_penalties`).
        migration_penalty : float or array_like, shape [N], optional
            Price of moving each DT (J); default the expected failures of a one-hop move priced at
            ``failure_penalty`` (:meth:`default_migration_penalty`).
        allow_migration : bool, optional
            False fixes the placement (the small-timescale problem).
        hold_down_servers : bool, optional
            With server failures (docs/model.md, section 12): True (a causal decision) pins the
            DTs on a down server (their state is on the failed machine; ``migration_mask`` False)
            and reports a down server's ``storage_bits`` as what it holds, so no DT can be moved
            onto it; False (the hindsight relaxation, docs/longterm.md) lets DTs sit anywhere
            (nominal storage, ``server_up`` all True). Either way ``cpu_hz`` is what is left to DTs:
            0 on a down server, ``cpu_hz (1 - load)`` on an up one, so none is served on a down one.

        Returns
        -------
        Snapshot
            The slot's channel, request and workload data with the given state and prices.

        Raises
        ------
        WdtnoptError
            If ``t`` is not an integer in range or ``hold_down_servers`` is not a bool;
            :class:`~wdtnopt.errors.SnapshotError` if a given array has the wrong shape or values
            (every wrong field is named).
        """
        if (isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer))
                or not 0 <= t < self.slots):   # 1.5, True or "1" are no slot (int() read them as 1)
            from .errors import WdtnoptError
            raise WdtnoptError(f"slot: expected an integer 0 <= slot < {self.slots}, got {t!r}")
        t = int(t)
        if not isinstance(hold_down_servers, (bool, np.bool_)):   # "no" was truthy: held
            from .errors import WdtnoptError
            raise WdtnoptError(f"hold_down_servers: expected true or false, got {hold_down_servers!r}")
        n = self.n_mus
        fp = failure_penalty
        if fp is None:
            defaults = self.default_penalties()
            fp = defaults["failure_penalty"]
            if migration_penalty is None:
                migration_penalty = defaults["migration_penalty"]
        fields = dict(
            gain=self.gain[t], assoc=self.assoc[t], bandwidth=self.bandwidth[t], noise_psd=self.noise_psd[t],
            p_max=self.p_max, data_bits=self.data_bits[t], cycles_per_bit=self.cycles_per_bit,
            deadline=self.deadline, request=self.request[t], dt_size_bits=self.dt_size_bits,
            cpu_hz=self.cpu_hz, storage_bits=self.storage_bits, backhaul_latency_s=self.backhaul_latency_s,
            backhaul_s_per_bit=self.backhaul_s_per_bit,
            placement_prev=self.initial_placement if placement_prev is None else placement_prev,
            migrating=np.zeros(n, bool) if migrating is None else migrating,
            failure_penalty=fp, migration_penalty=migration_penalty, allow_migration=allow_migration,
        )
        if self.server_events:
            fields["cpu_hz"] = _frozen(self.cpu_available_hz(t))
            if hold_down_servers:
                fields["server_up"] = self.server_up[t]
            if hold_down_servers and not self.server_up[t].all():
                x = np.asarray(fields["placement_prev"])
                if x.shape == (n,) and x.dtype.kind in "iu" and ((x >= 0) & (x < self.n_bss)).all():
                    up = self.server_up[t]
                    held = np.bincount(x, weights=self.dt_size_bits, minlength=self.n_bss)
                    fields["storage_bits"] = _frozen(np.where(up, self.storage_bits, held))
                    fields["migration_mask"] = _frozen(up[x])
        if self.levels is not None:
            fields.update(self.levels)
        # the trace's own arrays were validated when generated; check only what the caller gave,
        # and fall back to the validating constructor (with its error messages) if anything is off
        caller = _caller_arrays(fields, n, self.n_bss)
        if caller is None:
            for name in ("failure_penalty", "migration_penalty"):   # one number is every MU's (documented)
                v = fields[name]
                if v is not None and np.ndim(v) == 0 and np.asarray(v).dtype.kind in "iuf":
                    fields[name] = np.full(n, v, dtype=float)
            if migration_penalty is None:
                fpa = np.asarray(fields["failure_penalty"])
                ok = fpa.shape == (n,) and fpa.dtype.kind in "iuf"   # else the constructor names failure_penalty
                with np.errstate(invalid="ignore", over="ignore"):
                    fields["migration_penalty"] = (self.default_migration_penalty(fpa.astype(float)) if ok
                                                   else np.zeros(n))
            return Snapshot(**fields)
        if migration_penalty is None:
            caller["migration_penalty"] = _frozen(self.default_migration_penalty(caller["failure_penalty"]))
        pens = [caller.get(k, fields[k]) for k in ("failure_penalty", "migration_penalty")]
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.isfinite(sum(float(np.sum(p)) for p in pens)):   # the constructor names the field
                return Snapshot(**{**fields, **caller})
        return Snapshot._trusted(**{**fields, **caller})


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _caller_arrays(fields: dict[str, Any], n: int, m: int) -> dict[str, Any] | None:
    """The caller-supplied snapshot arrays as fresh read-only arrays, or None if any needs the full checks."""
    out: dict[str, Any] = {}
    am = fields["allow_migration"]
    if not isinstance(am, (bool, np.bool_)):
        return None
    out["allow_migration"] = bool(am)
    x = np.asarray(fields["placement_prev"])
    if x.shape != (n,) or x.dtype.kind not in "iu" or (x < 0).any() or (x >= m).any():
        return None
    out["placement_prev"] = _frozen(x.astype(np.int64))
    mig = np.asarray(fields["migrating"])
    if mig.shape != (n,) or mig.dtype != bool:
        return None
    out["migrating"] = _frozen(mig.copy())
    for name in ("failure_penalty", "migration_penalty"):
        if fields[name] is None:
            continue
        v = np.asarray(fields[name])
        if v.dtype.kind not in "iuf" or v.ndim > 1 or (v.ndim == 1 and v.shape != (n,)):
            return None
        v = np.broadcast_to(v.astype(float), (n,)).copy()
        if not np.isfinite(v).all() or (v < 0).any():
            return None
        out[name] = _frozen(v)
    return out


def bs_layout(n_bss: int, area_m: float) -> np.ndarray:
    """BS positions: the paper's 4 quadrant centres + centre for M = 5, else a centred grid."""
    if n_bss == 5:
        q = area_m / 4
        return np.array([[q, q], [3 * q, q], [q, 3 * q], [3 * q, 3 * q], [2 * q, 2 * q]])
    cols = math.ceil(math.sqrt(n_bss))
    rows = math.ceil(n_bss / cols)
    ix, iy = np.meshgrid(np.arange(cols), np.arange(rows))
    pts = np.stack([(ix.ravel() + 0.5) * area_m / cols, (iy.ravel() + 0.5) * area_m / rows], axis=1)
    return pts[:n_bss]


def pathloss_gain(dist_m: np.ndarray, sc: Scenario) -> np.ndarray:
    """Large-scale gain: PL_dB(d) = A + B log10(max(d, d_min) / 1 km) (the macro law)."""
    return channels.macro_gain(dist_m, sc.pathloss_db_1km, sc.pathloss_slope_db, sc.d_min_m)


def rician_power(rng: np.random.Generator, k_factor: float, shape: tuple[int, ...],
                 im_rng: np.random.Generator | None = None) -> np.ndarray:
    """|h|^2 of Rician fading with K-factor ``k_factor`` and unit mean power.

    The real parts of all entries are drawn from ``rng`` first, then the imaginary parts from
    ``im_rng`` (default: ``rng`` again, after the real parts). A windowed trace passes a second
    cursor of the same stream already moved past the real block, so its windows get the values of
    the whole block.
    """
    los = math.sqrt(k_factor / (k_factor + 1.0))
    s = math.sqrt(1.0 / (2.0 * (k_factor + 1.0)))
    re = los + s * rng.standard_normal(shape)
    im = s * (rng if im_rng is None else im_rng).standard_normal(shape)
    return re * re + im * im


def trace_memory_bytes(n_mus: int, n_bss: int, slots: int) -> int:
    """Peak bytes :func:`generate_trace` allocates for a trace of this size (an over-estimate).

    Calibrated with ``tracemalloc``: the [T, N, M] gains and their temporaries (distances,
    path loss, the two Rician components, interference) take about 48 bytes per entry at the peak,
    the [T, N] processes about 40 bytes per MU-slot; rounded up here.
    """
    t, n, m = int(slots), int(n_mus), int(n_bss)
    return 56 * t * n * m + 64 * t * n + 64 * n * m + (2 << 20)


def available_memory_bytes() -> int | None:
    """Memory the system can still give this process (``MemAvailable`` of /proc/meminfo, else the
    free physical pages); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def check_trace_fits(n_mus: int, n_bss: int, slots: int) -> None:
    """Refuse a trace that cannot fit in memory *before* allocating it.

    Raises
    ------
    WdtnoptError
        One line with the estimate, the memory available and the most slots that would fit.
    """
    need = trace_memory_bytes(n_mus, n_bss, slots)
    have = available_memory_bytes()
    if have is None or need <= have:
        return
    per_slot = trace_memory_bytes(n_mus, n_bss, 2) - trace_memory_bytes(n_mus, n_bss, 1)
    fit = max((have - trace_memory_bytes(n_mus, n_bss, 0)) // per_slot, 0)
    change = (f"use at most {n_slots(fit)} at this size, or fewer MUs or BSs" if fit >= 1 else
              NO_SLOT_FITS_ADVICE)
    check_memory_fits(need, f"a trace of {sizes(slots, n_mus, n_bss)}", change, have=have)


def _gib(b: float) -> str:
    return f"{b / 2**40:,.1f} TiB" if b >= 2**40 else f"{b / 2**30:,.1f} GiB"


PER_SLOT_FIELDS = ("positions", "speed", "heading", "gain", "assoc", "request", "bandwidth", "noise_psd", "data_bits")
"""The [T, ...] fields of a :class:`Trace` that a windowed trace holds one window of slots at a time."""

WHOLE_TRACE_MAX_BYTES = 1 << 30
"""With ``window_slots="auto"`` a trace whose :func:`trace_memory_bytes` is at most this is generated whole."""

WINDOW_BYTES = 256 << 20
"""With ``window_slots="auto"`` a larger trace is generated in windows of about this many bytes
(:func:`trace_memory_bytes` of one window, at least one slot)."""

_SKIP_CHUNK = 1 << 20   # draws discarded per call while moving a cursor (8 MiB of doubles at most)
_SKIP_BAR = 50_000_000   # draws above which moving a cursor shows a progress bar (about a second)


def stored_slot_bytes(n_mus: int, n_bss: int) -> int:
    """Bytes one slot of the per-slot fields takes once generated: ``gain [N, M]`` (8 bytes an entry)
    and the [N] fields (positions, speed, heading, assoc, request, bandwidth, noise, data; 73 bytes a
    MU, rounded up to 80)."""
    return 8 * int(n_mus) * int(n_bss) + 80 * int(n_mus)


def windowed_memory_bytes(n_mus: int, n_bss: int, slots: int, window_slots: int) -> int:
    """Peak bytes of a windowed trace (an over-estimate).

    Parameters
    ----------
    n_mus, n_bss, slots : int
        N, M and T of the trace.
    window_slots : int
        Slots per window W.

    Returns
    -------
    int
        Generating one window (:func:`trace_memory_bytes` of W slots) while the previous one is still
        referenced (:func:`stored_slot_bytes` per slot), plus the [T, M] server processes and their
        draws (32 bytes a server-slot), the generators' state carried between windows and one chunk
        of discarded draws while a cursor is moved (8 MiB).
    """
    t, n, m, w = int(slots), int(n_mus), int(n_bss), min(int(window_slots), int(slots))
    return trace_memory_bytes(n, m, w) + w * stored_slot_bytes(n, m) + 32 * t * m + 160 * n + 8 * _SKIP_CHUNK


NO_SLOT_FITS = "not even one slot fits"


def n_slots(n: int) -> str:
    """``"1 slot"``, ``"3 slots"``, ``"1,024 slots"``: a count of slots for a message."""
    return counted(int(n), "slot", thousands=True)
"""How a memory refusal's advice starts when only fewer MUs or BSs can help (named n_mus, n_bss)."""
NO_SLOT_FITS_ADVICE = f"{NO_SLOT_FITS}: use fewer MUs or BSs"
"""The whole advice of such a refusal."""


WORKERS_ADVICE = "(--workers)"
"""How a memory refusal's advice ends when fewer worker processes fit (named workers)."""


def refused_field(change: str) -> str:
    """The field a memory refusal names: ``workers`` when its advice ``change`` ends with
    :data:`WORKERS_ADVICE`, ``n_mus, n_bss`` when it says that not even one slot fits (fewer slots
    cannot help then), else ``slots``."""
    if change.endswith(WORKERS_ADVICE):
        return "workers"
    return "n_mus, n_bss" if change.startswith(NO_SLOT_FITS) else "slots"


def check_memory_fits(need: int, what: str, change: str, *, have: int | None = None) -> None:
    """Refuse, before allocating, what needs more than the memory available.

    Parameters
    ----------
    need : int
        Bytes the request needs (an over-estimate).
    what : str
        What needs them, for the message ("a trace of ...").
    change : str
        What the user can change so that it fits.
    have : int, optional
        The bytes available, as the caller read them to compute ``change`` (None: read
        :func:`available_memory_bytes` now), so that the message and the advice agree.

    Raises
    ------
    WdtnoptError
        One line naming the field to change (:func:`refused_field`), the estimate, the memory
        available and ``change``.
    """
    from .errors import WdtnoptError

    if have is None:
        have = available_memory_bytes()
    if have is None or need <= have:
        return
    raise WdtnoptError(f"{refused_field(change)}: {what} needs about {_gib(need)} of memory and {_gib(have)} is available; {change}")


def plan_windows(n_mus: int, n_bss: int, slots: int, window_slots: Any = "auto") -> int | None:
    """The window length :func:`generate_trace` uses: None for a whole trace, else slots per window.

    ``"auto"`` keeps a trace whole when :func:`trace_memory_bytes` is at most
    :data:`WHOLE_TRACE_MAX_BYTES`, else takes windows of about :data:`WINDOW_BYTES` (fewer slots
    when less memory is available, at least one).

    Raises
    ------
    WdtnoptError
        A bad ``window_slots``, or a request that cannot fit (one line: the estimate, the memory
        available and what to change), before anything is allocated.
    """
    from .errors import WdtnoptError

    n, m, t = int(n_mus), int(n_bss), int(slots)
    whole = f"a trace of {sizes(t, n, m)}"
    if window_slots is None:
        check_trace_fits(n, m, t)
        return None
    if isinstance(window_slots, str) and window_slots == "auto":
        have = available_memory_bytes()
        need = trace_memory_bytes(n, m, t)
        if need <= WHOLE_TRACE_MAX_BYTES and (have is None or need <= have):
            return None
        budget = WINDOW_BYTES if have is None else min(WINDOW_BYTES, have // 2)
        base = windowed_memory_bytes(n, m, t, 0)
        w = int(min(max((budget - base) // (windowed_memory_bytes(n, m, t, 1) - base), 1), t))
    elif isinstance(window_slots, bool) or not isinstance(window_slots, (int, np.integer)) or window_slots < 1:
        raise WdtnoptError(f"window_slots: expected an integer >= 1, None (whole) or 'auto', got {window_slots!r}")
    else:
        w = int(min(int(window_slots), t))
    if w == t:   # one window is the whole trace
        check_trace_fits(n, m, t)
        return None
    have = available_memory_bytes()
    need = windowed_memory_bytes(n, m, t, w)
    if have is not None and need > have:
        base = windowed_memory_bytes(n, m, t, 0)
        fit = (have - base) // (windowed_memory_bytes(n, m, t, 1) - base)
        if fit >= 1:
            change = f"use at most {n_slots(fit)} per window (window_slots)"
        elif windowed_memory_bytes(n, m, 1, 1) <= have:
            change = "use fewer slots (the [T, M] server processes alone do not fit)"
        else:
            change = NO_SLOT_FITS_ADVICE
        check_memory_fits(need, f"{whole} in windows of {n_slots(w)} (whole: {_gib(trace_memory_bytes(n, m, t))})",
                          change, have=have)
    return w


def _discard(draw: Any, count: int, what: str = "draws") -> None:
    """Draw ``count`` numbers with ``draw(k)`` and throw them away, in bounded chunks.

    Normal draws are rejection-sampled (a variable number of generator steps each), so a stream
    cannot be advanced past them without drawing them; above ``_SKIP_BAR`` draws (a second or more)
    a progress bar says so (:func:`wdtnopt.progress.progress_bar`: on a terminal or with
    ``WDTNOPT_PROGRESS=1``).
    """
    count = int(count)
    bar = None
    if count > _SKIP_BAR:
        from .progress import progress_bar
        bar = progress_bar(total=count, desc=f"windowed trace: skipping {what}", unit="draw", unit_scale=True)
    while count > 0:
        k = min(count, _SKIP_CHUNK)
        draw(k)
        count -= k
        if bar is not None:
            bar.update(k)
    if bar is not None:
        bar.close()


class _TrackStream:
    """A whole :class:`MobilityTrack` (a replayed source) served a window at a time."""

    def __init__(self, track: Any):
        self.track, self.t = track, 0
        self.report = track.report

    def clone(self) -> "_TrackStream":
        other = _TrackStream(self.track)
        other.t = self.t
        return other

    def next(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tr, a, b = self.track, self.t, self.t + k
        self.t = b
        return tr.positions[a:b], tr.speed[a:b], tr.heading[a:b]


class _SlotGenerator:
    """The per-slot processes of one trace, generated in consecutive windows of slots.

    Every random stream of docs/model.md, section 2 is a cursor that moves forward only; a block the
    whole trace draws after another of the same stream ([T, N, M] imaginary fading parts after the
    real ones, the per-MU workload constants after the [T, N] data sizes) gets its own cursor,
    moved once to the block's start by drawing and discarding. Processes with memory (mobility)
    carry their state from one window to the next. So the windows hold the whole trace's values bit
    for bit, whatever their length.
    """

    def __init__(self, sc: Scenario, seed: int, slots: int, mobility: Any, whole: bool,
                 bs_positions: np.ndarray | None = None):
        n, m = sc.n_mus, sc.n_bss
        rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))
        self.sc, self.slots, self.t = sc, int(slots), 0
        self.bs = bs_layout(m, sc.area_m) if bs_positions is None else bs_positions
        # the one seam where positions enter: every process below follows them, whatever their source
        source = resolve_mobility(mobility)
        stream = getattr(source, "stream", None)
        self.mobility = (stream(sc, slots, rngs["layout"], rngs["mobility"]) if callable(stream)
                         else _TrackStream(source.track(sc, slots, rngs["layout"], rngs["mobility"])))
        self.blockage = rngs["blockage"] if sc.thz_carrier_hz > 0 and sc.thz_los_decay_m > 0 else None
        self.fading, self.requests, self.workload = rngs["fading"], rngs["requests"], rngs["workload"]
        self.fading_im: np.random.Generator | None = None
        self.cycles_per_bit = self.dt_size = None
        if not whole:
            total = self.slots * n * m
            self.fading_im = copy.deepcopy(self.fading)
            _discard(self.fading_im.standard_normal, total, "the fading's imaginary parts")
            w = copy.deepcopy(self.workload)
            _discard(lambda k: w.uniform(sc.data_bits_min, sc.data_bits_max, k), self.slots * n, "the data sizes")
            self._constants(w)

    def _constants(self, w: np.random.Generator) -> None:
        sc = self.sc
        self.cycles_per_bit = w.uniform(sc.cycles_per_bit_min, sc.cycles_per_bit_max, sc.n_mus)
        self.dt_size = w.uniform(sc.dt_size_bits_min, sc.dt_size_bits_max, sc.n_mus)

    def clone(self) -> "_SlotGenerator":
        """An independent copy at the same slot (replays the same windows)."""
        other = copy.copy(self)
        other.mobility = self.mobility.clone()
        for name in ("blockage", "fading", "fading_im", "requests", "workload"):
            setattr(other, name, copy.deepcopy(getattr(self, name)))
        return other

    def next(self, k: int) -> dict[str, np.ndarray]:
        """The per-slot fields (:data:`PER_SLOT_FIELDS`) of the next ``k`` slots, each [k, ...]."""
        sc, bs = self.sc, self.bs
        n, m = sc.n_mus, sc.n_bss
        if self.t + k > self.slots:
            raise ValueError(f"window past the trace's end ({self.t} + {k} > {self.slots})")
        whole = self.fading_im is None
        if whole and (self.t != 0 or k != self.slots):
            raise ValueError("a whole-trace generator gives one window of every slot")
        pos, speed, heading = self.mobility.next(k)

        dist = mu_bs_distances(pos, bs)                                             # [k, N, M]
        los = None
        if self.blockage is not None:
            los = channels.los_mask(self.blockage, dist, sc.thz_los_decay_m)
        large = channels.large_scale_gain(dist, sc, los)
        assoc = np.argmin(dist, axis=2)        # largest path-loss gain = nearest BS
        gain = large * rician_power(self.fading, sc.rician_k, large.shape, self.fading_im)
        del dist, large, los

        request = self.requests.random((k, n)) < sc.request_prob
        if sc.ris_elements > 0:
            gain = channels.ris_boost(gain, pos, bs, assoc, request, sc)
        data_bits = sc.compression_ratio * self.workload.uniform(sc.data_bits_min, sc.data_bits_max, (k, n))
        if whole:
            self._constants(self.workload)

        # equal split of each BS's band among its requesting MUs; a silent MU is quoted the share it
        # would get by joining, so every snapshot field stays positive
        tix = np.arange(k)[:, None]
        n_req = np.zeros((k, m))
        np.add.at(n_req, (np.broadcast_to(tix, assoc.shape), assoc), request)
        share = n_req[tix, assoc] + (~request)
        bandwidth = sc.bandwidth_hz / share

        # exogenous co-channel interference I_m = zeta * sum_{k req, assoc_k != m} p_ref g[k, m]
        rx = sc.interference_zeta * sc.interference_p_ref_w * gain * request[:, :, None]   # [k, N, M]
        total = rx.sum(axis=1)                                                              # [k, M]
        own = np.zeros((k, m))
        np.add.at(own, (np.broadcast_to(tix, assoc.shape), assoc), np.take_along_axis(rx, assoc[:, :, None], 2)[:, :, 0])
        interference = total - own
        del rx
        noise_psd = sc.noise_psd_w_hz + interference[tix, assoc] / sc.bandwidth_hz
        self.t += k
        out = dict(positions=pos, speed=speed, heading=heading, gain=gain, assoc=assoc, request=request,
                   bandwidth=bandwidth, noise_psd=noise_psd, data_bits=data_bits)
        for a in out.values():
            a.setflags(write=False)   # snapshots share these arrays without copies
        return out


@dataclass(frozen=True, eq=False)
class TraceWindow:
    """Slots ``start .. stop - 1`` of a trace: its per-slot fields, each ``[stop - start, ...]``.

    Attributes
    ----------
    start, stop : int
        First slot and one past the last.
    positions : ndarray, shape [W, N, 2] (m); speed, heading : [W, N] (m/s, rad)
    gain : ndarray, shape [W, N, M] (linear); assoc, request : [W, N]
    bandwidth, noise_psd, data_bits : ndarray, shape [W, N] (Hz, W/Hz, bit)
    server_up, background_load : ndarray, shape [W, M], or None
    """

    start: int
    stop: int
    positions: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    gain: np.ndarray
    assoc: np.ndarray
    request: np.ndarray
    bandwidth: np.ndarray
    noise_psd: np.ndarray
    data_bits: np.ndarray
    server_up: np.ndarray | None = None
    background_load: np.ndarray | None = None


class _WindowCache:
    """The one window of a windowed trace in memory, regenerated on demand.

    Moving forward generates the windows in between; moving back restarts from a copy of the
    generator taken at slot 0 (so slots are cheapest read in order, as ``simulate`` does).
    """

    def __init__(self, gen: _SlotGenerator, window_slots: int, first: dict[str, np.ndarray], start0: _SlotGenerator):
        self.gen, self.window_slots, self.slots = gen, int(window_slots), gen.slots
        self.start0 = start0
        self.start, self.arrays = 0, first

    def at(self, t: int) -> tuple[int, dict[str, np.ndarray]]:
        """``(start, fields)`` of the window holding slot ``t``."""
        w = self.window_slots
        start = t // w * w
        if start != self.start:
            if start < self.gen.t:
                self.gen = self.start0.clone()
            self.arrays = {}   # drop the old window before generating the next one
            while self.gen.t < start:
                self.gen.next(min(w, self.slots - self.gen.t))
            self.start, self.arrays = start, self.gen.next(min(w, self.slots - start))
        return self.start, self.arrays


class SlotArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A read-only ``[T, ...]`` field of a windowed trace, one window of slots in memory at a time.

    ``a[t]`` and ``a[t, ...]`` (an integer slot first) read the window holding slot ``t``; integer
    and boolean ``sum``/``any`` are accumulated window by window. Anything else (``np.asarray(a)``,
    slices, arithmetic and ufuncs, float reductions) materializes the whole field, after checking
    that it fits (:class:`~wdtnopt.errors.WdtnoptError` otherwise, before allocating).
    """

    def __init__(self, cache: _WindowCache, name: str, shape: tuple[int, ...], dtype: np.dtype):
        self._cache, self.name = cache, name
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"SlotArray({self.name}, shape={self.shape}, dtype={self.dtype}, window_slots={self._cache.window_slots})"

    def __getitem__(self, key: Any) -> Any:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) and key else (key, ())
        if isinstance(first, (int, np.integer)) and not isinstance(first, (bool, np.bool_)):
            t = int(first) + (self.shape[0] if first < 0 else 0)
            if not 0 <= t < self.shape[0]:
                raise IndexError(f"{self.name}: slot {first} out of range for {counted(self.shape[0], 'slot')}")
            start, arrays = self._cache.at(t)
            row = arrays[self.name][t - start]
            return row[rest] if rest else row
        return self.materialize()[key]

    def windows(self) -> Any:
        """``(start, block)`` of every window in slot order (block ``[W, ...]``)."""
        for start in range(0, self.shape[0], self._cache.window_slots):
            yield start, self._cache.at(start)[1][self.name]

    def materialize(self) -> np.ndarray:
        """The whole field as one read-only ndarray (refused if it cannot fit)."""
        sc = self._cache.gen.sc
        check_memory_fits(self.nbytes + windowed_memory_bytes(sc.n_mus, sc.n_bss, self.shape[0], self._cache.window_slots),
                f"the whole {self.name} field {list(self.shape)} of a windowed trace",
                "read it a slot or a window at a time (Trace.windows)")
        out = np.empty(self.shape, self.dtype)
        for start, block in self.windows():
            out[start:start + block.shape[0]] = block
        out.setflags(write=False)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.materialize()
        return a if dtype is None else a.astype(dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(x.materialize() if isinstance(x, SlotArray) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def _reduce(self, op: str, axis: Any, kw: dict[str, Any]) -> Any:
        if self.dtype.kind not in "biu" or kw or not (axis is None or isinstance(axis, (int, np.integer))):
            return getattr(self.materialize(), op)(axis=axis, **kw)
        ax = None if axis is None else int(axis) % self.ndim
        parts = [getattr(block, op)(axis=ax) for _, block in self.windows()]
        if ax == 0 or ax is None:
            return functools.reduce(np.logical_or if op == "any" else np.add, parts)
        return np.concatenate(parts)

    def sum(self, axis: Any = None, **kw: Any) -> Any:
        """Sum like ``ndarray.sum``; exact integer sums window by window."""
        return self._reduce("sum", axis, kw)

    def any(self, axis: Any = None, **kw: Any) -> Any:
        """``ndarray.any``, window by window."""
        return self._reduce("any", axis, kw)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.materialize(), name)


def generate_trace(scenario: Scenario | None = None, seed: int = 0, slots: int = 100, mobility: Any = None,
                   window_slots: Any = "auto", bs_positions: Any = None) -> Trace:
    """Generate every exogenous process of ``slots`` slots under ``seed`` (docs/model.md, section 2).

    Parameters
    ----------
    scenario : Scenario, optional
        The scenario (default ``Scenario.paper()``).
    seed : int
        Seed of every random stream (layout, mobility, fading, requests, workload).
    slots : int
        Number of slots T.
    mobility : None, MobilitySource, str or os.PathLike
        Where MU positions come from (docs/mobility.md): None for the built-in Gauss-Markov model,
        a source object, a SUMO FCD or CSV/Parquet file to replay (cleaned on the way in), or
        ``"sumo-grid:seed=7,..."``. Association, channel and requests follow the positions
        whatever their source; the other streams of ``seed`` are the same for every source.
    window_slots : "auto", int or None
        How the per-slot fields are held (docs/model.md, section "Windowed traces"): None, whole
        arrays; an integer W, a :class:`WindowedTrace` that holds W slots at a time, generated on
        demand with the same values bit for bit; ``"auto"`` (default), whole when the trace takes
        at most :data:`WHOLE_TRACE_MAX_BYTES` (1 GiB) to generate, else windows of about
        :data:`WINDOW_BYTES` (256 MiB).
    bs_positions : array_like, shape [M, 2], optional
        BS positions (m) instead of the scenario's fixed layout (:func:`bs_layout`); association,
        channels, interference and backhaul hops follow them. No random stream changes.

    Returns
    -------
    Trace
        ``positions [T, N, 2]`` (m), ``gain [T, N, M]`` (linear), ``assoc [T, N]``,
        ``request [T, N]``, ``bandwidth [T, N]`` (Hz), ``noise_psd [T, N]`` (W/Hz),
        ``data_bits [T, N]`` (bit), the per-MU and per-server constants (``cycles_per_bit [N]``,
        ``dt_size_bits [N]`` bit, ``deadline [N]`` s, ``p_max [N]`` W, ``cpu_hz [M]`` cycles/s,
        ``storage_bits [M]`` bit, ``backhaul_latency_s [M, M]`` s, ``backhaul_s_per_bit [M, M]``
        s/bit) and ``initial_placement [N]``; ``T = slots``. A :class:`WindowedTrace` holds the
        per-slot fields as :class:`SlotArray` objects.

    Raises
    ------
    WdtnoptError
        A ``scenario`` that is not a Scenario, a bad ``slots``, ``seed``, ``mobility``, ``window_slots`` or
        ``bs_positions``, or a trace that would not fit
        in the memory available (refused before anything is allocated, in one line with the
        estimate and what to change: :func:`plan_windows`).
    """
    from .errors import WdtnoptError

    sc = Scenario.paper() if scenario is None else scenario
    if not isinstance(sc, Scenario):
        raise WdtnoptError(f"scenario: expected a wdtnopt.Scenario (Scenario.paper(**fields) or Scenario.load(path)), "
                           f"got {type(sc).__name__}")
    if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or slots < 1:
        raise WdtnoptError(f"slots: expected an integer >= 1, got {slots!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise WdtnoptError(f"seed: expected an integer >= 0, got {seed!r}")
    slots, seed = int(slots), int(seed)
    n, m = sc.n_mus, sc.n_bss
    if bs_positions is not None:
        bs_positions = np.array(bs_positions, dtype=float)
        if bs_positions.shape != (m, 2) or not np.isfinite(bs_positions).all():
            raise WdtnoptError(f"bs_positions: expected {m} finite (x, y) pairs in m, shape ({m}, 2), "
                               f"got shape {bs_positions.shape}")
    window = plan_windows(n, m, slots, window_slots)
    gen = _SlotGenerator(sc, seed, slots, mobility, whole=window is None, bs_positions=bs_positions)
    start0 = None if window is None else gen.clone()
    first = gen.next(slots if window is None else window)

    bs = gen.bs
    hops = np.ceil(np.linalg.norm(bs[:, None, :] - bs[None, :, :], axis=-1) / sc.hop_distance_m - 1e-9)
    hops = np.maximum(hops, 0.0)
    np.fill_diagonal(hops, 0.0)
    storage = np.full(m, sc.storage_bits)
    server_up, load = availability.generate(
        seed, slots, m, slot_s=sc.slot_s, mtbf_s=sc.server_mtbf_s, mttr_s=sc.server_mttr_s,
        load_mean=sc.background_load_mean, load_std=sc.background_load_std, load_memory=sc.background_load_memory)
    fields: dict[str, Any] = dict(first)
    cls: type[Trace] = Trace
    if window is not None:
        cache = _WindowCache(gen, window, first, start0)
        fields = {name: SlotArray(cache, name, (slots,) + a.shape[1:], a.dtype) for name, a in first.items()}
        fields["cache"] = cache
        cls = WindowedTrace
    trace = cls(
        scenario=sc, seed=seed, bs_positions=bs, cycles_per_bit=gen.cycles_per_bit, dt_size_bits=gen.dt_size,
        deadline=np.full(n, sc.deadline_s), p_max=np.full(n, sc.p_max_w), cpu_hz=np.full(m, sc.cpu_hz),
        storage_bits=storage, backhaul_latency_s=hops * sc.hop_latency_s,
        backhaul_s_per_bit=hops / sc.hop_rate_bps, hops=hops.astype(np.int64),
        initial_placement=initial_placement(first["assoc"][0], dist_rank(first["positions"][0], bs), gen.dt_size, storage),
        mobility_report=gen.mobility.report,
        server_up=server_up, background_load=load,
        levels=semantic.scenario_menu(sc) if sc.semantic_levels > 0 else None,
        **fields,
    )
    for f in dataclasses.fields(trace):
        value = getattr(trace, f.name)
        for a in (value.values() if f.name == "levels" and value is not None else (value,)):
            if isinstance(a, np.ndarray):
                a.setflags(write=False)   # snapshots share these arrays without copies
    return trace


@dataclass(frozen=True, eq=False)
class WindowedTrace(Trace):
    """A :class:`Trace` whose per-slot fields (:data:`PER_SLOT_FIELDS`) are :class:`SlotArray`
    objects: one window of slots is in memory at a time, generated on demand with the values of the
    whole trace bit for bit (docs/model.md, section "Windowed traces").

    Everything a :class:`Trace` offers works; reading slots in order (``snapshot(t)``,
    ``gain[t]``, :meth:`windows`) keeps memory bounded, reading back restarts the generator from slot 0.
    """

    cache: Any = dataclasses.field(default=None, repr=False)

    @property
    def window_slots(self) -> int:
        return self.cache.window_slots

    @property
    def slots(self) -> int:
        return self.cache.slots

    def _slot_block(self, name: str, a: int, b: int) -> np.ndarray:
        start, arrays = self.cache.at(a)
        block = arrays[name]
        if b - start <= block.shape[0]:
            return block[a - start:b - start]
        field = getattr(self, name)
        return np.stack([field[t] for t in range(a, b)])


def mu_bs_distances(pos: np.ndarray, bs: np.ndarray) -> np.ndarray:
    """[..., N, M] distances (m) from MU positions ``pos [..., N, 2]`` to BSs ``bs [M, 2]``.

    ``sqrt(dx^2 + dy^2)``: the same operations, hence the same bits, as
    ``np.linalg.norm(pos[..., None, :] - bs, axis=-1)``, without its reduction over a length-2 axis
    (about 4x faster at N = 10,000, M = 100).
    """
    dx = np.ascontiguousarray(pos[..., 0])[..., None] - bs[:, 0]
    dy = np.ascontiguousarray(pos[..., 1])[..., None] - bs[:, 1]
    dx *= dx
    dy *= dy
    dx += dy
    return np.sqrt(dx, out=dx)


def dist_rank(pos: np.ndarray, bs: np.ndarray) -> np.ndarray:
    """[N, M] servers ordered nearest first for each MU."""
    return np.argsort(np.linalg.norm(pos[:, None, :] - bs[None, :, :], axis=-1), axis=1, kind="stable")


def initial_placement(assoc: np.ndarray, order: np.ndarray, dt_size: np.ndarray, storage: np.ndarray) -> np.ndarray:
    """Each DT on its MU's serving BS, or the nearest server with room (MUs in index order)."""
    free = storage.astype(float).copy()
    out = np.empty(assoc.shape[0], dtype=np.int64)
    for i in range(assoc.shape[0]):
        for j in order[i]:
            if free[j] >= dt_size[i]:
                out[i] = j
                free[j] -= dt_size[i]
                break
        else:
            from .errors import ScenarioError
            raise ScenarioError([("storage_factor", "the servers cannot store every DT; raise storage_factor")])
    return out
