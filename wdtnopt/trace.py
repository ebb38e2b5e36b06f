"""Exogenous processes of one run (docs/model.md, section 2), generated once and replayed for every policy.

Nothing here depends on a decision, so one seeded :class:`Trace` gives common random numbers:
positions, gains, association, requests and interference are the same for all policies.
Everything is vectorized over MUs (and over slots where the process allows); the same
``(scenario, seed, slots)`` gives the same trace bit for bit.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import physics
from .processes.mobility import _reflect, gauss_markov, resolve_mobility  # noqa: F401 (re-exported)
from .processes import availability
from .processes import channels, semantic
from .scenario import Scenario
from .snapshot import Snapshot

# independent streams of one seed (SeedSequence.spawn): adding a process never shifts another
_STREAMS = ("layout", "mobility", "fading", "requests", "workload", "blockage")


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
        """[M] CPU left to DTs on each server in slot ``t``: 0 if down, ``cpu_hz (1 - load)`` if up."""
        if not self.server_events:
            return self.cpu_hz
        return np.where(self.server_up[t], self.cpu_hz * (1.0 - self.background_load[t]), 0.0)

    @property
    def slots(self) -> int:
        return int(self.request.shape[0])

    @property
    def n_mus(self) -> int:
        return self.scenario.n_mus

    @property
    def n_bss(self) -> int:
        return self.scenario.n_bss

    def migration_slots(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """[N] slots of unavailability when DT n moves src[n] -> dst[n]: ceil(T_mig / tau), 0 if src == dst."""
        t_mig = physics.backhaul_time(self.backhaul_latency_s[src, dst], self.backhaul_s_per_bit[src, dst], self.dt_size_bits)
        # a tiny relative guard keeps ceil() from jumping a slot on round-off of exact multiples
        k = np.ceil(t_mig / self.scenario.slot_s * (1 - 1e-12))
        return np.where(src == dst, 0, np.maximum(k, 1)).astype(np.int64)

    def transfer_time(self, src: int, dst: int, bits: float) -> float:
        """Backhaul time (s) of ``bits`` from server ``src`` to ``dst`` (latency + bits x per-bit time)."""
        return float(physics.backhaul_time(self.backhaul_latency_s[src, dst], self.backhaul_s_per_bit[src, dst], bits))

    def default_migration_penalty(self, failure_penalty: np.ndarray | float | None = None) -> np.ndarray:
        """[N] expected failure cost of a one-hop move: lam * ceil(T_mig,1hop / tau) * failure_penalty."""
        sc = self.scenario
        fp = np.broadcast_to(np.asarray(sc.failure_price if failure_penalty is None else failure_penalty, float), (self.n_mus,))
        one_hop = sc.hop_latency_s + self.dt_size_bits / sc.hop_rate_bps
        return sc.request_prob * np.maximum(np.ceil(one_hop / sc.slot_s * (1 - 1e-12)), 1) * fp

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
            If ``t`` is out of range; :class:`~wdtnopt.errors.SnapshotError` if a given array has
            the wrong shape or values (every wrong field is named).
        """
        if not 0 <= int(t) < self.slots:
            from .errors import WdtnoptError
            raise WdtnoptError(f"slot: expected 0 <= slot < {self.slots}, got {t}")
        t = int(t)
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
            if migration_penalty is None:
                fields["migration_penalty"] = self.default_migration_penalty(np.broadcast_to(np.asarray(fp, float), (n,)))
            return Snapshot(**fields)
        if migration_penalty is None:
            caller["migration_penalty"] = _frozen(self.default_migration_penalty(caller["failure_penalty"]))
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


def rician_power(rng: np.random.Generator, k_factor: float, shape: tuple[int, ...]) -> np.ndarray:
    """|h|^2 of Rician fading with K-factor ``k_factor`` and unit mean power."""
    los = math.sqrt(k_factor / (k_factor + 1.0))
    s = math.sqrt(1.0 / (2.0 * (k_factor + 1.0)))
    re = los + s * rng.standard_normal(shape)
    im = s * rng.standard_normal(shape)
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
    from .errors import WdtnoptError

    need = trace_memory_bytes(n_mus, n_bss, slots)
    have = available_memory_bytes()
    if have is None or need <= have:
        return
    per_slot = trace_memory_bytes(n_mus, n_bss, 2) - trace_memory_bytes(n_mus, n_bss, 1)
    fit = max((have - trace_memory_bytes(n_mus, n_bss, 0)) // per_slot, 0)
    change = (f"use at most {fit:,} slots at this size, or fewer MUs or BSs" if fit >= 1 else
              "not even one slot fits: use fewer MUs or BSs")
    raise WdtnoptError(f"slots: a trace of {slots:,} slots x {n_mus:,} MUs x {n_bss:,} BSs needs about "
                       f"{_gib(need)} of memory and {_gib(have)} is available; {change}")


def _gib(b: float) -> str:
    return f"{b / 2**40:,.1f} TiB" if b >= 2**40 else f"{b / 2**30:,.1f} GiB"


def generate_trace(scenario: Scenario | None = None, seed: int = 0, slots: int = 100, mobility: Any = None) -> Trace:
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

    Returns
    -------
    Trace
        ``positions [T, N, 2]`` (m), ``gain [T, N, M]`` (linear), ``assoc [T, N]``,
        ``request [T, N]``, ``bandwidth [T, N]`` (Hz), ``noise_psd [T, N]`` (W/Hz),
        ``data_bits [T, N]`` (bit), the per-MU and per-server constants (``cycles_per_bit [N]``,
        ``dt_size_bits [N]`` bit, ``deadline [N]`` s, ``p_max [N]`` W, ``cpu_hz [M]`` cycles/s,
        ``storage_bits [M]`` bit, ``backhaul_latency_s [M, M]`` s, ``backhaul_s_per_bit [M, M]``
        s/bit) and ``initial_placement [N]``; ``T = slots``.

    Raises
    ------
    WdtnoptError
        A bad ``slots``, ``seed`` or ``mobility``, or a trace that would not fit in the memory
        available (refused before anything is allocated: :func:`check_trace_fits`).
    """
    from .errors import WdtnoptError

    sc = Scenario.paper() if scenario is None else scenario
    if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or slots < 1:
        raise WdtnoptError(f"slots: expected an integer >= 1, got {slots!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise WdtnoptError(f"seed: expected an integer >= 0, got {seed!r}")
    slots, seed = int(slots), int(seed)
    check_trace_fits(sc.n_mus, sc.n_bss, slots)
    rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))
    n, m = sc.n_mus, sc.n_bss

    bs = bs_layout(m, sc.area_m)
    # the one seam where positions enter: every process below follows them, whatever their source
    track = resolve_mobility(mobility).track(sc, slots, rngs["layout"], rngs["mobility"])
    pos, speed, heading = track.positions, track.speed, track.heading

    dist = np.linalg.norm(pos[:, :, None, :] - bs[None, None, :, :], axis=-1)   # [T, N, M]
    los = None
    if sc.thz_carrier_hz > 0 and sc.thz_los_decay_m > 0:
        los = channels.los_mask(rngs["blockage"], dist, sc.thz_los_decay_m)
    large = channels.large_scale_gain(dist, sc, los)
    assoc = np.argmin(dist, axis=2)        # largest path-loss gain = nearest BS
    gain = large * rician_power(rngs["fading"], sc.rician_k, large.shape)
    del dist, large, los

    request = rngs["requests"].random((slots, n)) < sc.request_prob
    if sc.ris_elements > 0:
        gain = channels.ris_boost(gain, pos, bs, assoc, request, sc)
    w = rngs["workload"]
    data_bits = sc.compression_ratio * w.uniform(sc.data_bits_min, sc.data_bits_max, (slots, n))
    cycles_per_bit = w.uniform(sc.cycles_per_bit_min, sc.cycles_per_bit_max, n)
    dt_size = w.uniform(sc.dt_size_bits_min, sc.dt_size_bits_max, n)

    # equal split of each BS's band among its requesting MUs; a silent MU is quoted the share it
    # would get by joining, so every snapshot field stays positive
    tix = np.arange(slots)[:, None]
    n_req = np.zeros((slots, m))
    np.add.at(n_req, (np.broadcast_to(tix, assoc.shape), assoc), request)
    share = n_req[tix, assoc] + (~request)
    bandwidth = sc.bandwidth_hz / share

    # exogenous co-channel interference I_m = zeta * sum_{k req, assoc_k != m} p_ref g[k, m]
    rx = sc.interference_zeta * sc.interference_p_ref_w * gain * request[:, :, None]   # [T, N, M]
    total = rx.sum(axis=1)                                                              # [T, M]
    own = np.zeros((slots, m))
    np.add.at(own, (np.broadcast_to(tix, assoc.shape), assoc), np.take_along_axis(rx, assoc[:, :, None], 2)[:, :, 0])
    interference = total - own
    del rx
    noise_psd = sc.noise_psd_w_hz + interference[tix, assoc] / sc.bandwidth_hz

    hops = np.ceil(np.linalg.norm(bs[:, None, :] - bs[None, :, :], axis=-1) / sc.hop_distance_m - 1e-9)
    hops = np.maximum(hops, 0.0)
    np.fill_diagonal(hops, 0.0)
    storage = np.full(m, sc.storage_bits)
    server_up, load = availability.generate(
        seed, slots, m, slot_s=sc.slot_s, mtbf_s=sc.server_mtbf_s, mttr_s=sc.server_mttr_s,
        load_mean=sc.background_load_mean, load_std=sc.background_load_std, load_memory=sc.background_load_memory)
    trace = Trace(
        scenario=sc, seed=seed, bs_positions=bs, positions=pos, speed=speed, heading=heading,
        gain=gain, assoc=assoc, request=request, bandwidth=bandwidth, noise_psd=noise_psd,
        data_bits=data_bits, cycles_per_bit=cycles_per_bit, dt_size_bits=dt_size,
        deadline=np.full(n, sc.deadline_s), p_max=np.full(n, sc.p_max_w), cpu_hz=np.full(m, sc.cpu_hz),
        storage_bits=storage, backhaul_latency_s=hops * sc.hop_latency_s,
        backhaul_s_per_bit=hops / sc.hop_rate_bps, hops=hops.astype(np.int64),
        initial_placement=initial_placement(assoc[0], dist_rank(pos[0], bs), dt_size, storage),
        mobility_report=track.report,
        server_up=server_up, background_load=load,
        levels=semantic.scenario_menu(sc) if sc.semantic_levels > 0 else None,
    )
    for f in dataclasses.fields(trace):
        value = getattr(trace, f.name)
        for a in (value.values() if f.name == "levels" and value is not None else (value,)):
            if isinstance(a, np.ndarray):
                a.setflags(write=False)   # snapshots share these arrays without copies
    return trace


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
