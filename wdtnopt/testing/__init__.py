"""Scenario and snapshot factories, tiny hand-made snapshots and hypothesis strategies, for the
project's tests and benchmarks and for users' own.

Every random snapshot here is a slot of :func:`wdtnopt.generate_trace`, so its physics (path loss,
fading, association, bandwidth split, interference, backhaul) is the model's, from one place
(docs/model.md, sections 2-3); the factories only choose the scenario, the decision state before
the snapshot (previous placement, migrating DTs) and the prices, and for :func:`tiny_snapshot`
perturb per-MU parameters into hard regimes. The hypothesis strategies are in
:mod:`wdtnopt.testing.strategies` (imported on use; they need ``hypothesis``, in the ``test``
extras).

>>> from wdtnopt.testing import paper_snapshot, tiny_snapshot, one_cell
>>> s = paper_snapshot(N=30, M=5, seed=0)          # a realistic snapshot of the default scenario
>>> t = tiny_snapshot(3, kind="tight_cpu")         # small and hard, for brute-force comparisons
>>> u = loaded_snapshot(N=50, M=5, seed=0)          # heavily loaded: scarce CPU and storage
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..scenario import Scenario
from ..snapshot import Snapshot
from ..trace import Trace, generate_trace

TINY_KINDS = ("plain", "tight_storage", "tight_cpu", "migrating", "no_migration", "cheap_fail", "zero_cycles")
"""The regimes :func:`tiny_snapshot` draws from when ``kind`` is None (``"edge"`` only on request)."""


def scenario(n_mus: int = 4, n_bss: int = 2, **overrides: Any) -> Scenario:
    """The default scenario at another size (``Scenario.paper(n_mus=..., n_bss=..., **overrides)``).

    Parameters
    ----------
    n_mus, n_bss : int, optional
        Number of MUs N and of BSs / servers M.
    **overrides
        Any other :class:`~wdtnopt.Scenario` field.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        If a field is unknown or out of its range.
    """
    return Scenario.paper(n_mus=n_mus, n_bss=n_bss, **overrides)


def trace(n_mus: int = 4, n_bss: int = 2, seed: int = 0, slots: int = 10, **overrides: Any) -> Trace:
    """A trace of :func:`scenario` ``(n_mus, n_bss, **overrides)`` (:func:`wdtnopt.generate_trace`)."""
    return generate_trace(scenario(n_mus, n_bss, **overrides), seed=seed, slots=slots)


def _decision_rng(seed: int) -> np.random.Generator:
    """The stream of the decision state, apart from the trace's streams of the same seed."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0x7E57]))


def _fit_storage(prev: np.ndarray, size: np.ndarray, storage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move random DTs off overfull servers to the least loaded one until the placement fits."""
    prev = prev.copy()
    m = storage.size
    for _ in range(10 * prev.size):
        load = np.bincount(prev, weights=size, minlength=m)
        over = np.flatnonzero(load > storage)
        if over.size == 0:
            break
        prev[rng.choice(np.flatnonzero(prev == over[0]))] = int(np.argmin(load))
    return prev


def paper_snapshot(N: int = 30, M: int = 5, seed: int = 0, *, request_prob: float = 0.5,
                   failure_penalty: float = 0.01, migration_penalty: float = 1e-3, migrating_prob: float = 0.05,
                   stay_prob: float = 0.7, cpu_hz: float = 10e9, allow_migration: bool = True,
                   compression_ratio: float = 1.0, **overrides: Any) -> Snapshot:
    """A realistic snapshot: slot 0 of the default scenario's trace, with a random previous state.

    Parameters
    ----------
    N, M : int, optional
        Number of MUs and of servers.
    seed : int, optional
        Seed of the trace and of the previous state.
    request_prob : float, optional
        Probability that a MU requests.
    failure_penalty, migration_penalty : float, optional
        Prices of a failure and of a move (J), the same for every MU.
    migrating_prob : float, optional
        Probability that a DT is under migration.
    stay_prob : float, optional
        Probability that a DT was on its MU's serving BS before; otherwise on a random server
        (then moved until the placement fits the storage).
    cpu_hz : float, optional
        CPU of every server (cycles/s).
    allow_migration : bool, optional
        False: the small-timescale problem.
    compression_ratio : float, optional
        ``rho``; 1.0 (raw data, harder instances) by default, the default scenario's 0.6 on request.
    **overrides
        Other :class:`~wdtnopt.Scenario` fields.

    Returns
    -------
    Snapshot
        N MUs, M servers, SI units.
    """
    sc = Scenario.paper(n_mus=N, n_bss=M, request_prob=request_prob, cpu_hz=cpu_hz,
                        compression_ratio=compression_ratio, **overrides)
    tr = generate_trace(sc, seed=seed, slots=1)
    rng = _decision_rng(seed)
    assoc = tr.assoc[0]
    prev = np.where(rng.random(N) < stay_prob, assoc, rng.integers(0, M, N))
    prev = _fit_storage(prev, tr.dt_size_bits, tr.storage_bits, rng)
    return tr.snapshot(0, placement_prev=prev, migrating=rng.random(N) < migrating_prob,
                       failure_penalty=np.full(N, failure_penalty), migration_penalty=np.full(N, migration_penalty),
                       allow_migration=allow_migration)


def _pack(size: np.ndarray, storage: np.ndarray) -> np.ndarray | None:
    """A placement of DTs of ``size`` [N] into servers of ``storage`` [M] (first fit, largest first,
    into the server with most room left), or None if that greedy packing fails."""
    room = storage.astype(float).copy()
    out = np.zeros(size.size, dtype=np.int64)
    for n in np.argsort(-size, kind="stable"):
        m = int(np.argmax(room))
        if room[m] < size[n]:
            return None
        out[n] = m
        room[m] -= size[n]
    return out


LOADED_STORAGE_SLACK = 1.25
"""Total storage of a :func:`loaded_snapshot` over the total size of its DTs."""


def loaded_snapshot(N: int = 50, M: int = 5, seed: int = 0, *, request_prob: float = 0.7,
                    cpu_hz_range: tuple[float, float] = (1.5e9, 4e9), dts_per_server: tuple[float, float] = (1.0, 7.0),
                    storage_slack: float = LOADED_STORAGE_SLACK, deadline_s_range: tuple[float, float] = (0.15, 0.25),
                    failure_penalty: float = 0.01, migration_penalty: float = 1e-3, migrating_prob: float = 0.05,
                    stay_prob: float = 0.7, compression_ratio: float = 1.0, **overrides: Any) -> Snapshot:
    """A heavily loaded snapshot: random BS positions, scarce CPU and storage, most MUs requesting.

    Slot 0 of the trace of ``Scenario.paper(n_mus=N, n_bss=M, request_prob=...)`` with the BSs at
    random positions in the area, then: server CPU uniform in ``cpu_hz_range`` (1.5-4 GHz, against
    the default 10 GHz), deadlines uniform per MU in ``deadline_s_range`` (0.15-0.25 s), 70% of the
    MUs requesting, and tight, uneven storage.

    Storage. Every DT needs a host, so "room for 1 to 7 DTs per server" cannot be meant literally
    once N > 7 M (50 DTs on 5 servers would not fit). Read as the *unevenness* of the servers: each
    server gets a weight uniform in ``dts_per_server`` (1 to 7: the largest server holds up to 7
    times the smallest), and the storage of all servers together is ``storage_slack`` (1.25) times
    the total size of the DTs, shared in proportion to the weights. So every snapshot is feasible
    (a greedy packing is checked; the storage grows by 5% steps until it packs) and loaded: a fifth
    of the storage is free, and a DT can seldom move without another one making room.

    The decision state is drawn as in :func:`paper_snapshot` (a DT stays on its MU's BS with
    probability ``stay_prob``, else a random server; overfull servers are emptied at random, and
    if that fails the greedy packing is the previous placement). Streams: the trace's of ``seed``,
    and the layout, CPU, storage, deadlines and decision state from a stream of their own.

    Parameters
    ----------
    N, M : int, optional
        Number of MUs and of servers.
    seed : int, optional
        Seed of the trace and of everything drawn here.
    request_prob : float, optional
        Probability that a MU requests.
    cpu_hz_range : (float, float), optional
        Range of each server's CPU (cycles/s).
    dts_per_server : (float, float), optional
        Range of the servers' storage weights (see Storage).
    storage_slack : float, optional
        Total storage over the total DT size (> 1).
    deadline_s_range : (float, float), optional
        Range of each MU's deadline (s).
    failure_penalty, migration_penalty : float, optional
        Prices of a failure and of a move (J), the same for every MU.
    migrating_prob, stay_prob : float, optional
        As in :func:`paper_snapshot`.
    compression_ratio : float, optional
        ``rho`` (1.0: raw data).
    **overrides
        Other :class:`~wdtnopt.Scenario` fields.

    Returns
    -------
    Snapshot

    Raises
    ------
    ValueError
        If ``storage_slack <= 1`` or a range is empty or not positive.
    """
    for name, (lo, hi) in (("cpu_hz_range", cpu_hz_range), ("dts_per_server", dts_per_server),
                           ("deadline_s_range", deadline_s_range)):
        if not 0 < lo <= hi:
            raise ValueError(f"{name}: expected 0 < low <= high, got ({lo!r}, {hi!r})")
    if not storage_slack > 1:
        raise ValueError(f"storage_slack: expected a number > 1, got {storage_slack!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x10AD]))
    sc = Scenario.paper(n_mus=N, n_bss=M, request_prob=request_prob, compression_ratio=compression_ratio,
                        **overrides)
    bs = rng.uniform(0.0, sc.area_m, (M, 2))
    tr = generate_trace(sc, seed=seed, slots=1, bs_positions=bs)
    cpu = rng.uniform(*cpu_hz_range, M)
    deadline = rng.uniform(*deadline_s_range, N)
    size = np.asarray(tr.dt_size_bits, dtype=float)
    weight = rng.uniform(*dts_per_server, M)
    storage = weight / weight.sum() * storage_slack * size.sum()
    packed = _pack(size, storage)
    while packed is None:
        storage = storage * 1.05
        packed = _pack(size, storage)
    assoc = tr.assoc[0]
    prev = np.where(rng.random(N) < stay_prob, assoc, rng.integers(0, M, N))
    prev = _fit_storage(prev, size, storage, rng)
    if (np.bincount(prev, weights=size, minlength=M) > storage).any():
        prev = packed
    d = tr.snapshot(0, placement_prev=prev, migrating=rng.random(N) < migrating_prob,
                    failure_penalty=np.full(N, failure_penalty), migration_penalty=np.full(N, migration_penalty),
                    allow_migration=True).to_dict()
    d.update(cpu_hz=cpu, storage_bits=storage, deadline=deadline)
    return Snapshot.from_dict(d)


def tiny_snapshot(seed: int, N: int | None = None, M: int | None = None, *, kind: str | None = None) -> Snapshot:
    """A small random snapshot (2 <= N <= 6, 1 <= M <= 3) in one of several hard regimes.

    The channels, bandwidths and backhaul are slot 0 of a trace of the default scenario at that
    size (raw data, ``rho = 1``); the regime then sets the storage, CPU, deadlines, prices and state.

    Parameters
    ----------
    seed : int
        Seed of everything drawn.
    N, M : int, optional
        Sizes; drawn when None.
    kind : str, optional
        ``"plain"``, ``"tight_storage"`` (room for ``ceil(N / M)`` DTs per server), ``"tight_cpu"``
        (1.5-4 GHz servers), ``"migrating"`` (40% of DTs migrating), ``"no_migration"``,
        ``"cheap_fail"`` (failure prices 0.01-2 mJ), ``"zero_cycles"`` (some MUs need no CPU),
        ``"edge"`` (zero CPU, zero power cap, zero-size DTs, zero prices, unreachable deadlines),
        or None for one of :data:`TINY_KINDS`.

    Returns
    -------
    Snapshot

    Raises
    ------
    ValueError
        If ``kind`` is not one of the regimes above.
    ScenarioError
        If a given ``N`` or ``M`` is not an integer >= 1 (0 is a size, not "draw one").
    """
    rng = np.random.default_rng(seed)
    kind = kind or TINY_KINDS[int(rng.integers(len(TINY_KINDS)))]
    if kind not in TINY_KINDS + ("edge",):
        raise ValueError(f"kind: expected one of {', '.join(TINY_KINDS + ('edge',))}, got {kind!r}")
    # drawn only when not given: N=0 or M=0 was drawn as well, a random size instead of a refusal
    N = int(rng.integers(2, 7)) if N is None else N
    M = int(rng.integers(1, 4)) if M is None else M
    sc = Scenario.paper(n_mus=N, n_bss=M, request_prob=0.75, compression_ratio=1.0, area_m=800.0,
                        storage_factor=1.0 if kind == "tight_storage" else 1.5)
    tr = generate_trace(sc, seed=int(rng.integers(2**31)), slots=1)
    cpu = (rng.uniform(1.5e9, 4e9, M) if kind == "tight_cpu" else tr.cpu_hz * rng.uniform(0.7, 1.3, M))
    cpb = tr.cycles_per_bit.copy()
    if kind == "zero_cycles":
        cpb[rng.random(N) < 0.5] = 0.0
    deadline = rng.uniform(0.12, 0.25, N)
    size = tr.dt_size_bits.copy()
    prev = _fit_storage(rng.integers(0, M, N), size, tr.storage_bits, rng)
    migrating = rng.random(N) < (0.4 if kind == "migrating" else 0.1)
    fp = rng.uniform(1e-5, 2e-3, N) if kind == "cheap_fail" else rng.uniform(0.002, 0.05, N)
    mp = rng.uniform(0, 0.01, N)
    p_max = tr.p_max.copy()
    if kind == "edge":
        cpu[rng.random(M) < 0.3] = 0.0
        p_max[rng.random(N) < 0.2] = 0.0
        size[rng.random(N) < 0.3] = 0.0
        fp[rng.random(N) < 0.2] = 0.0
        mp[rng.random(N) < 0.3] = 0.0
        deadline[rng.random(N) < 0.2] = 0.005
        cpb[rng.random(N) < 0.2] = 0.0
    d = tr.snapshot(0, placement_prev=prev, migrating=migrating, failure_penalty=fp, migration_penalty=mp,
                    allow_migration=kind != "no_migration").to_dict()
    d.update(cpu_hz=cpu, cycles_per_bit=cpb, deadline=deadline, dt_size_bits=size, p_max=p_max)
    return Snapshot.from_dict(d)


def with_menu(s: Snapshot, seed: int, levels: int = 3, min_accuracy: float = 0.0) -> Snapshot:
    """``s`` with a random per-MU semantic compression menu (docs/model.md, section 13): level 0
    uncompressed and free, deeper levels smaller and dearer to extract.

    Parameters
    ----------
    s : Snapshot
    seed : int
        Seed of the menu's draws.
    levels : int
        Levels per MU (>= 2): ratios 0.2-0.9, extraction 0.5-12 cycles/bit, accuracy 0.8-1.
    min_accuracy : float
        Each MU's least acceptable accuracy (levels below it are off its menu).

    Returns
    -------
    Snapshot

    Raises
    ------
    ValueError
        If ``levels`` is not an integer >= 2 (one level is no menu; 0 failed deep in numpy).
    """
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 2:
        raise ValueError(f"levels: expected an integer >= 2 (level 0 raw and at least one deeper level), got {levels!r}")
    rng = np.random.default_rng(seed)
    n = s.n_mus
    ratio = np.concatenate([np.ones((n, 1)), np.sort(rng.uniform(0.2, 0.9, (n, levels - 1)), axis=1)[:, ::-1]], 1)
    cycles = np.concatenate([np.zeros((n, 1)), np.sort(rng.uniform(0.5, 12.0, (n, levels - 1)), axis=1)], 1)
    acc = np.concatenate([np.ones((n, 1)), np.sort(rng.uniform(0.8, 1.0, (n, levels - 1)), axis=1)[:, ::-1]], 1)
    return s.replace(level_ratio=ratio, level_cycles_per_bit=cycles, level_accuracy=acc,
                     mu_cpu_hz=rng.uniform(0.8e9, 2e9, n), mu_kappa=np.full(n, 1e-28),
                     min_accuracy=np.full(n, min_accuracy))


def one_cell(**fields: Any) -> Snapshot:
    """A hand-made snapshot whose numbers are easy to check on paper.

    N = 2 MUs and M = 2 servers; both MUs are served by BS 0 and their DTs sit on server 0; MU 0
    requests, MU 1 does not. ``N0 B / g = 1e-4`` W for MU 0 (gain 1e-10, 1 MHz, 1e-20 W/Hz), 1 Mbit
    to send, 100 cycles/bit on a 1 GHz server (0.1 s of update), a 1 s deadline, one hop of 10 ms
    and 2 ns/bit to server 1, prices 0.5 J per failure and 0.25 J per move.

    Parameters
    ----------
    **fields
        Snapshot fields to replace (plain lists or arrays).

    Returns
    -------
    Snapshot

    Raises
    ------
    SnapshotError
        If a replaced field is invalid.
    """
    d = dict(
        gain=[[1e-10, 1e-12], [1e-10, 1e-12]], assoc=[0, 0], bandwidth=[1e6, 1e6], noise_psd=[1e-20, 1e-20],
        p_max=[0.2, 0.2], data_bits=[1e6, 1e6], cycles_per_bit=[100.0, 100.0], deadline=[1.0, 1.0],
        request=[True, False], dt_size_bits=[1e8, 1e8], cpu_hz=[1e9, 1e9], storage_bits=[3e8, 3e8],
        backhaul_latency_s=[[0.0, 0.01], [0.01, 0.0]], backhaul_s_per_bit=[[0.0, 2e-9], [2e-9, 0.0]],
        placement_prev=[0, 0], migrating=[False, False], failure_penalty=[0.5, 0.5],
        migration_penalty=[0.25, 0.25], allow_migration=True,
    )
    d.update(fields)
    return Snapshot.from_dict(d)


__all__ = ["LOADED_STORAGE_SLACK", "TINY_KINDS", "loaded_snapshot", "one_cell", "paper_snapshot", "scenario",
           "tiny_snapshot", "trace", "with_menu"]
