"""Random snapshot generators for the solver tests and benchmarks (issue 3).

``paper_snapshot`` builds a realistic snapshot from the defaults of MODEL.md section 8 by hand
(positions, path loss with Rician fading, nearest-BS association, equal band split among the
requesting MUs of a BS, interference rise, hop-count backhaul). ``tiny_snapshot`` builds small
adversarial ones (tight storage, tight CPU, migrating DTs, cheap failures, no migration) for the
comparisons with brute force.
"""
from __future__ import annotations

import math

import numpy as np

from wdtnopt.snapshot import Snapshot

NOISE_PSD = 10 ** ((-174.0 + 7.0 - 30.0) / 10.0)  # W/Hz


def _bs_positions(M: int, area: float) -> np.ndarray:
    if M == 5:
        q = area / 4
        return np.array([[q, q], [3 * q, q], [q, 3 * q], [3 * q, 3 * q], [2 * q, 2 * q]])
    side = math.ceil(math.sqrt(M))
    pts = [((i + 0.5) * area / side, (j + 0.5) * area / side) for j in range(side) for i in range(side)]
    return np.array(pts[:M])


def paper_snapshot(N: int = 30, M: int = 5, seed: int = 0, *, request_prob: float = 0.5,
                   failure_penalty: float = 0.01, migration_penalty: float = 1e-3,
                   migrating_prob: float = 0.05, stay_prob: float = 0.7, cpu_hz: float = 10e9,
                   allow_migration: bool = True) -> Snapshot:
    """A snapshot with the MODEL.md section 8 defaults (data 0.5-1.5 Mbit, rho = 1)."""
    rng = np.random.default_rng(seed)
    area = 1000.0
    bs = _bs_positions(M, area)
    mu = rng.uniform(0, area, size=(N, 2))
    d = np.linalg.norm(mu[:, None, :] - bs[None, :, :], axis=2)
    pl_db = 128.1 + 37.6 * np.log10(np.maximum(d, 10.0) / 1000.0)
    large = 10 ** (-pl_db / 10)
    K = 3.0
    los = math.sqrt(K / (K + 1))
    nlos = math.sqrt(1 / (K + 1)) * (rng.normal(size=(N, M)) + 1j * rng.normal(size=(N, M))) / math.sqrt(2)
    gain = large * np.abs(los + nlos) ** 2
    assoc = np.argmax(large, axis=1)
    request = rng.random(N) < request_prob
    n_req = np.bincount(assoc[request], minlength=M)
    bandwidth = 20e6 / np.maximum(n_req[assoc], 1)
    interf = np.zeros(M)
    for m in range(M):
        others = request & (assoc != m)
        interf[m] = 0.1 * 0.1 * gain[others, m].sum() / 20e6
    noise_psd = NOISE_PSD + interf[assoc]
    data_bits = rng.uniform(0.5e6, 1.5e6, N)
    cycles_per_bit = rng.uniform(100, 300, N)
    dt_size = rng.uniform(100e6, 300e6, N)
    storage = np.full(M, math.ceil(1.5 * N / M) * 300e6)
    bd = np.linalg.norm(bs[:, None, :] - bs[None, :, :], axis=2)
    hops = np.ceil(bd / 400.0)
    prev = np.where(rng.random(N) < stay_prob, assoc, rng.integers(0, M, N))
    prev = _repair_storage(prev, dt_size, storage, rng)
    migrating = rng.random(N) < migrating_prob
    return Snapshot(
        gain=gain, assoc=assoc, bandwidth=bandwidth, noise_psd=noise_psd, p_max=np.full(N, 0.2),
        data_bits=data_bits, cycles_per_bit=cycles_per_bit, deadline=np.full(N, 0.2), request=request,
        dt_size_bits=dt_size, cpu_hz=np.full(M, cpu_hz), storage_bits=storage,
        backhaul_latency_s=0.01 * hops, backhaul_s_per_bit=2e-9 * hops, placement_prev=prev,
        migrating=migrating, failure_penalty=np.full(N, failure_penalty),
        migration_penalty=np.full(N, migration_penalty), allow_migration=allow_migration)


def _repair_storage(prev: np.ndarray, size: np.ndarray, storage: np.ndarray, rng) -> np.ndarray:
    prev = prev.copy()
    M = storage.size
    for _ in range(10 * prev.size):
        load = np.bincount(prev, weights=size, minlength=M)
        over = np.flatnonzero(load > storage)
        if over.size == 0:
            break
        m = over[0]
        n = rng.choice(np.flatnonzero(prev == m))
        prev[n] = int(np.argmin(load))
    return prev


def tiny_snapshot(seed: int, N: int | None = None, M: int | None = None, *, kind: str | None = None) -> Snapshot:
    """A small random snapshot (N <= 6, M <= 3) from one of several regimes.

    kind: "plain", "tight_storage", "tight_cpu", "migrating", "no_migration", "cheap_fail",
    "zero_cycles" (some MUs need no CPU), "edge" (zero CPU, zero power cap, zero-size DTs, zero
    penalties, unreachable deadlines), or None for a random one.
    """
    rng = np.random.default_rng(seed)
    kinds = ("plain", "tight_storage", "tight_cpu", "migrating", "no_migration", "cheap_fail", "zero_cycles")
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    N = N or int(rng.integers(2, 7))
    M = M or int(rng.integers(1, 4))
    d = rng.uniform(30, 600, size=(N, M))
    gain = 10 ** (-(128.1 + 37.6 * np.log10(d / 1000)) / 10) * rng.exponential(1.0, size=(N, M))
    assoc = np.argmax(gain, axis=1)
    request = rng.random(N) < 0.75
    n_req = np.bincount(assoc[request], minlength=M)
    bandwidth = 20e6 / np.maximum(n_req[assoc], 1)
    noise = NOISE_PSD * rng.uniform(1, 3, N)
    data = rng.uniform(0.5e6, 1.5e6, N)
    cpb = rng.uniform(100, 300, N)
    if kind == "zero_cycles":
        cpb[rng.random(N) < 0.5] = 0.0
    deadline = rng.uniform(0.12, 0.25, N)
    size = rng.uniform(100e6, 300e6, N)
    cpu = np.full(M, 10e9) * rng.uniform(0.7, 1.3, M)
    if kind == "tight_cpu":
        cpu = rng.uniform(1.5e9, 4e9, M)
    slots = math.ceil(1.5 * N / M)
    if kind == "tight_storage":
        slots = math.ceil(N / M)
    storage = np.full(M, slots * 300e6)
    bl = np.zeros((M, M))
    bs = np.zeros((M, M))
    for a in range(M):
        for b in range(M):
            if a != b:
                h = 1 + abs(a - b) // 2
                bl[a, b] = 0.01 * h
                bs[a, b] = 2e-9 * h
    prev = rng.integers(0, M, N)
    prev = _repair_storage(prev, size, storage, rng)
    migrating = rng.random(N) < (0.4 if kind == "migrating" else 0.1)
    fp = rng.uniform(0.002, 0.05, N)
    if kind == "cheap_fail":
        fp = rng.uniform(1e-5, 2e-3, N)
    mp = rng.uniform(0, 0.01, N)
    p_max = np.full(N, 0.2)
    if kind == "edge":
        cpu[rng.random(M) < 0.3] = 0.0
        p_max[rng.random(N) < 0.2] = 0.0
        size[rng.random(N) < 0.3] = 0.0
        fp[rng.random(N) < 0.2] = 0.0
        mp[rng.random(N) < 0.3] = 0.0
        deadline[rng.random(N) < 0.2] = 0.005
        cpb[rng.random(N) < 0.2] = 0.0
    return Snapshot(gain=gain, assoc=assoc, bandwidth=bandwidth, noise_psd=noise, p_max=p_max,
                    data_bits=data, cycles_per_bit=cpb, deadline=deadline, request=request,
                    dt_size_bits=size, cpu_hz=cpu, storage_bits=storage, backhaul_latency_s=bl,
                    backhaul_s_per_bit=bs, placement_prev=prev, migrating=migrating,
                    failure_penalty=fp, migration_penalty=mp, allow_migration=(kind != "no_migration"))
