"""Edge-server availability and exogenous background load (docs/model.md, section 12).

Each server alternates up/down as a two-state Markov chain sampled once per slot of length tau:

    p_fail   = 1 - exp(-tau / server_mtbf_s)      (up -> down)
    p_repair = 1 - exp(-tau / server_mttr_s)      (down -> up)

the per-slot transition probabilities of a continuous-time process with exponential up-times of mean
MTBF and down-times of mean MTTR (the alternating renewal model of repairable systems, e.g.
Trivedi, *Probability and Statistics with Reliability, Queuing and Computer Science
Applications*, 2nd ed., Wiley 2002, sections 8.1-8.2). The sampled chain's up-times are geometric in
slots with mean ``tau / p_fail`` (within ``tau / 2`` of MTBF), and its stationary up-probability is
``p_repair / (p_repair + p_fail)``, which tends to the availability ``A = MTBF / (MTBF + MTTR)`` as
``tau / MTBF -> 0``. Each server starts in its stationary state, so the process is stationary from
slot 0. Servers fail independently.

Background load is an AR(1) share of each server's CPU taken by exogenous work,
``l_t = clip(l_mean + b (l_{t-1} - l_mean) + sqrt(1 - b^2) l_std w_t, 0, LOAD_MAX)``, starting at
``l_mean``.

Both processes draw from one stream derived from the seed apart from the trace's other streams
(:func:`availability_rng`), so every other stream is unchanged whatever this one does; with
``server_mtbf_s = 0`` (servers never fail) and no background load, no number is drawn at all.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

# a spawn key far from the small integers that SeedSequence.spawn gives the other streams
_STREAM_KEY = 0x5E_2F_A1_15
LOAD_MAX = 0.95
"""Largest CPU share the background load may take (a server always keeps some CPU for DTs)."""


def availability_rng(seed: int) -> np.random.Generator:
    """The random stream of the availability processes of trace ``seed`` (independent of the others)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM_KEY,)))


def transition_probabilities(slot_s: float, mtbf_s: Any, mttr_s: Any) -> tuple[Any, Any]:
    """Per-slot ``(p_fail, p_repair)`` of the up/down chain (``p_fail = 0`` when ``mtbf_s = 0``, never failing).

    Scalars give floats; a per-server MTBF or MTTR (a sequence of M values) gives two ``[M]`` arrays.
    """
    if np.ndim(mtbf_s) == 0 and np.ndim(mttr_s) == 0:
        p_fail = 0.0 if mtbf_s <= 0 else -math.expm1(-slot_s / mtbf_s)
        return p_fail, -math.expm1(-slot_s / mttr_s)
    b, r = np.broadcast_arrays(np.asarray(mtbf_s, float), np.asarray(mttr_s, float))
    p_fail = np.where(b > 0, -np.expm1(-slot_s / np.where(b > 0, b, 1.0)), 0.0)
    return p_fail, -np.expm1(-slot_s / r)


def stationary_up_probability(p_fail: Any, p_repair: Any) -> Any:
    """Stationary probability that the sampled chain is up: ``p_repair / (p_repair + p_fail)`` (per server)."""
    if np.ndim(p_fail) == 0 and np.ndim(p_repair) == 0:
        return 1.0 if p_fail == 0 else p_repair / (p_repair + p_fail)
    pf, pr = np.broadcast_arrays(np.asarray(p_fail, float), np.asarray(p_repair, float))
    return np.where(pf == 0, 1.0, pr / (pr + pf))


def up_probability_ahead(up_now: np.ndarray, k: int | np.ndarray, p_fail: Any, p_repair: Any) -> np.ndarray:
    """P(server up k slots ahead | its state now): the k-step transition of the two-state chain.

    With ``pi = p_r / (p_r + p_f)`` and ``r = 1 - p_f - p_r``:
    ``P(up_k | up_0) = pi + (1 - pi) r^k``, ``P(up_k | down_0) = pi - pi r^k``.
    """
    pi = stationary_up_probability(p_fail, p_repair)
    r = (1.0 - np.asarray(p_fail) - np.asarray(p_repair)) ** np.asarray(k, float)
    up_now = np.asarray(up_now, bool)
    return np.where(up_now, pi + (1.0 - pi) * r, pi - pi * r)


def server_up_chain(rng: np.random.Generator, slots: int, n_servers: int, p_fail: Any, p_repair: Any) -> np.ndarray:
    """[T, M] bool up/down states of ``n_servers`` independent chains, each started in its stationary state
    (``p_fail``, ``p_repair``: one number, or one per server [M]; a server with ``p_fail = 0`` stays up)."""
    up = np.empty((slots, n_servers), dtype=bool)
    if not np.any(p_fail):     # no server fails: draw nothing (as one p_fail = 0 for all)
        up[:] = True
        return up
    u = rng.random((slots, n_servers))
    state = u[0] < stationary_up_probability(p_fail, p_repair)
    up[0] = state
    for t in range(1, slots):
        state = np.where(state, u[t] >= p_fail, u[t] < p_repair)
        up[t] = state
    return up


def background_load(rng: np.random.Generator, slots: int, n_servers: int, mean: float, std: float,
                    memory: float) -> np.ndarray:
    """[T, M] share of each server's CPU taken by exogenous AR(1) load (zeros when ``mean = std = 0``)."""
    load = np.full((slots, n_servers), min(mean, LOAD_MAX))
    if std == 0 or slots == 1:
        return load
    w = rng.standard_normal((slots, n_servers))
    root = math.sqrt(max(1.0 - memory * memory, 0.0))
    for t in range(1, slots):
        load[t] = np.clip(mean + memory * (load[t - 1] - mean) + root * std * w[t], 0.0, LOAD_MAX)
    return load


def generate(seed: int, slots: int, n_servers: int, *, slot_s: float, mtbf_s: Any, mttr_s: Any,
             load_mean: float, load_std: float, load_memory: float) -> tuple[np.ndarray, np.ndarray]:
    """``(server_up [T, M] bool, background_load [T, M] share)`` of trace ``seed``.

    Draws nothing when servers never fail and there is no background load, so such a trace uses the
    same random numbers as before these processes existed.
    """
    if np.all(np.asarray(mtbf_s) <= 0) and load_mean == 0 and load_std == 0:
        return np.ones((slots, n_servers), dtype=bool), np.zeros((slots, n_servers))
    rng = availability_rng(seed)
    p_fail, p_repair = transition_probabilities(slot_s, mtbf_s, mttr_s)
    up = server_up_chain(rng, slots, n_servers, p_fail, p_repair)
    load = background_load(rng, slots, n_servers, load_mean, load_std, load_memory)
    return up, load
