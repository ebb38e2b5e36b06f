"""The one implementation of an environment step, shared by the PettingZoo env, the batched env
and the checkpoint policy (MODEL.md section 7; docs/env.md).

A step is one slot of :class:`~wdtnopt.simulate.SimState`, scored by
:func:`~wdtnopt.evaluate.evaluate` in its environment view (``Decision(placement, power=...,
cpu_hz=...)``), exactly as :func:`~wdtnopt.simulate.simulate` drives it. This module only turns
agents' actions into that decision and the state into observations; it computes no cost.

Action conventions (every agent acts every slot; what is ignored is reported as "unused"):

* MU ``n``: transmit power in ``[0, p_max[n]]`` (clipped). Used iff it requests and its DT is
  available in the slot (after the frame-start placement).
* BS ``m``: a weight in ``[0, 1]`` for every one of the N DTs (clipped). The DTs hosted on ``m``
  that update in this slot (requesting, available) split ``cpu_hz[m]`` in proportion to
  ``max(weight, WEIGHT_FLOOR)``; the other entries are ignored.
* controller: a host for every DT (MultiDiscrete). Used only at frame starts. A choice that is not
  allowed by the action mask (a migrating DT may not move; a server without room for the DT) means
  "stay". Allowed moves are applied in DT index order; a move that no longer fits because earlier
  DTs filled the server is dropped (the DT stays), so the repaired placement always fits storage.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cost import Decision, Evaluation
from ..simulation import SimState
from ..snapshot import Snapshot
from ..trace import Trace

WEIGHT_FLOOR = 1e-6
"""Smallest CPU weight: a zero weight still gets a vanishing share, so shares are always defined."""

MU_FEATURES = ("request", "available", "t_min_over_deadline", "log10_snr_at_pmax_over_5",
               "spectral_demand_over_10", "relay_over_deadline", "equal_share_compute_over_deadline",
               "hosted_at_serving_bs", "frame_phase", "migration_left_over_K", "log10_noise_rise_over_3",
               "log10_power_needed_over_pmax_over_5")
BS_DT_FEATURES = ("hosted_here", "updates_here", "compute_at_full_cpu_over_deadline", "slack_here_over_deadline")
BS_FEATURES = ("active_dts_over_N", "frame_phase")
CTRL_DT_FEATURES = ("host_onehot[M]", "serving_bs_onehot[M]", "relay_to_server_over_deadline[M]",
                    "available", "migration_left_over_K", "dt_size_over_max")
CTRL_FEATURES = ("free_storage_fraction[M]", "is_frame_start")


def obs_dims(n: int, m: int) -> dict[str, int]:
    """Observation sizes per agent type, and of the global state."""
    ctrl = n * (3 * m + 3) + m + 1
    return {"mu": len(MU_FEATURES), "bs": len(BS_DT_FEATURES) * n + len(BS_FEATURES), "controller": ctrl,
            "state": ctrl + n * len(MU_FEATURES) + m}


@dataclass
class Observation:
    """Observations of one environment at one slot."""

    mu: np.ndarray         # [N, d_mu]
    bs: np.ndarray         # [M, d_bs]
    controller: np.ndarray  # [d_ctrl]
    state: np.ndarray      # [d_state] global state for centralized critics
    ctrl_mask: np.ndarray  # [N, M] bool: hosts the controller may choose now (one-hot of the host off frame starts)


@dataclass
class StepResult:
    """What one slot produced: the team reward and the evaluation it came from."""

    reward: float
    evaluation: Evaluation
    snapshot: Snapshot
    migrations: int
    frame_start: bool
    mu_used: np.ndarray    # [N] bool
    bs_used: np.ndarray    # [M, N] bool
    ctrl_used: bool


class Features:
    """Per-trace precomputation of the observation inputs that do not depend on decisions."""

    def __init__(self, trace: Trace):
        tr, sc = trace, trace.scenario
        dl = tr.deadline
        g = np.take_along_axis(tr.gain, tr.assoc[:, :, None], 2)[:, :, 0]                # [T, N] serving gain
        snr = tr.p_max * g / (tr.noise_psd * tr.bandwidth)
        rate = tr.bandwidth * np.log2(1.0 + snr)
        self.t_min = tr.data_bits / rate                                                 # [T, N] (s)
        self.log_snr = np.log10(1.0 + snr) / 5.0
        self.log10_snr_pmax = np.log10(snr)                                             # [T, N]
        self.bits_ln2_over_b = tr.data_bits * np.log(2.0) / tr.bandwidth                # [T, N] (s)
        self.spectral = tr.data_bits / (tr.bandwidth * dl) / 10.0
        self.noise_rise = np.log10(tr.noise_psd / sc.noise_psd_w_hz) / 3.0
        # relay time of MU n's data to server m at slot t: [T, N, M]
        self.relay = tr.backhaul_latency_s[tr.assoc] + tr.data_bits[:, :, None] * tr.backhaul_s_per_bit[tr.assoc]
        self.cycles = tr.cycles_per_bit * tr.data_bits                                   # [T, N]
        self.trace = tr


def _log10_power_needed_over_pmax(feat: Features, t: int, t_tx: np.ndarray) -> np.ndarray:
    """``log10(p_need / p_max) / 5`` clipped to ``[-1, 0.2]``: the least power that sends the MU's data
    in ``t_tx`` seconds (the deadline less relay and the DT update at an equal CPU share), relative to
    the cap; ``p_need / p_max = (2^{D/(B t)} - 1) / SNR(p_max)``, computed in the log domain."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.where(t_tx > 0, feat.bits_ln2_over_b[t] / np.where(t_tx > 0, t_tx, 1.0), np.inf)
        # log10(e^x - 1) = x / ln 10 + log10(1 - e^-x), exact and overflow-free for x > 0
        lg = x / np.log(10.0) + np.log10(-np.expm1(-x))
        lg = np.where(np.isfinite(lg), lg, 1.0e3)
    return np.clip((lg - feat.log10_snr_pmax[t]) / 5.0, -1.0, 0.2)


def observe(feat: Features, state: SimState) -> Observation:
    """Observations of every agent and the global state at the current slot of ``state``."""
    tr = feat.trace
    sc = tr.scenario
    n, m, k = tr.n_mus, tr.n_bss, sc.frame_slots
    t = min(state.t, tr.slots - 1)          # after the last slot: observe the last one (terminal obs)
    idx = np.arange(n)
    x = state.placement
    dl = tr.deadline
    avail = state.unavailable == 0
    req = tr.request[t]
    active = req & avail
    phase = (state.t % k) / k
    frame_start = state.t % k == 0
    n_active = np.bincount(x[active], minlength=m)
    share = tr.cpu_hz[x] / np.maximum(n_active[x] + (~active), 1)      # equal share if it joined
    relay_x = feat.relay[t, idx, x]
    left = np.minimum(state.unavailable / k, 1.0)
    compute_eq = feat.cycles[t] / share
    need = _log10_power_needed_over_pmax(feat, t, dl - relay_x - compute_eq)
    mu = np.stack([
        req.astype(float), avail.astype(float), np.minimum(feat.t_min[t] / dl, 2.0), feat.log_snr[t],
        np.minimum(feat.spectral[t], 1.0), np.minimum(relay_x / dl, 2.0),
        np.minimum(compute_eq / dl, 2.0), (x == tr.assoc[t]).astype(float),
        np.full(n, phase), left, feat.noise_rise[t], need,
    ], axis=1)
    hosted = x[None, :] == np.arange(m)[:, None]                                       # [M, N]
    compute_full = np.minimum(feat.cycles[t][None, :] / tr.cpu_hz[:, None] / dl, 2.0)  # [M, N]
    slack = np.clip((dl - feat.relay[t].T - feat.t_min[t][None, :]) / dl, -1.0, 1.0)  # [M, N]
    bs_dt = np.stack([hosted, hosted & active[None, :], compute_full, slack], axis=2).reshape(m, -1)
    bs = np.concatenate([bs_dt, np.stack([n_active / n, np.full(m, phase)], axis=1)], axis=1)
    eye = np.eye(m)
    load = np.bincount(x, weights=tr.dt_size_bits, minlength=m)
    free = tr.storage_bits - load
    ctrl_dt = np.concatenate([eye[x], eye[tr.assoc[t]], np.minimum(feat.relay[t] / dl[:, None], 2.0),
                              avail[:, None].astype(float), left[:, None],
                              (tr.dt_size_bits / sc.dt_size_bits_max)[:, None]], axis=1)
    ctrl = np.concatenate([ctrl_dt.ravel(), free / tr.storage_bits, [float(frame_start)]])
    state_vec = np.concatenate([ctrl, mu.ravel(), n_active / n])
    if frame_start:
        mask = (free[None, :] >= tr.dt_size_bits[:, None]) & avail[:, None]
        mask[idx, x] = True
    else:
        mask = np.zeros((n, m), bool)
        mask[idx, x] = True
    return Observation(mu=mu, bs=bs, controller=ctrl, state=state_vec, ctrl_mask=mask)


def repair_placement(state: SimState, hosts: np.ndarray) -> np.ndarray:
    """The placement applied for the controller's choice ``hosts`` (module docstring: masking rule)."""
    tr = state.trace
    x = state.placement.copy()
    hosts = np.asarray(hosts).astype(np.int64).reshape(-1)
    free = tr.storage_bits - np.bincount(x, weights=tr.dt_size_bits, minlength=tr.n_bss)
    for i in np.flatnonzero((hosts != x) & (state.unavailable == 0) & (hosts >= 0) & (hosts < tr.n_bss)):
        j = hosts[i]
        if free[j] >= tr.dt_size_bits[i]:
            free[j] -= tr.dt_size_bits[i]
            free[x[i]] += tr.dt_size_bits[i]
            x[i] = j
    return x


def decision(snap: Snapshot, power: np.ndarray, weights: np.ndarray) -> tuple[Decision, np.ndarray, np.ndarray]:
    """The environment-view decision of the slot; also which MU / BS action entries take effect."""
    n, m = snap.n_mus, snap.n_bss
    x = snap.placement_prev
    active = snap.request & ~snap.migrating
    p = np.clip(np.asarray(power, float).reshape(n), 0.0, snap.p_max)
    w = np.clip(np.asarray(weights, float).reshape(m, n), 0.0, 1.0)
    w_own = np.maximum(w[x, np.arange(n)], WEIGHT_FLOOR) * active                   # each DT's weight at its host
    total = np.bincount(x, weights=w_own, minlength=m)
    cpu = np.where(active, snap.cpu_hz[x] * w_own / np.where(total[x] > 0, total[x], 1.0), 0.0)
    bs_used = (x[None, :] == np.arange(m)[:, None]) & active[None, :]
    return Decision(placement=x.copy(), power=p, cpu_hz=cpu), active, bs_used


def team_reward(ev: Evaluation, snap: Snapshot, energy_ref_j: float, eta: float) -> float:
    """-(1/N) sum_n (E_n / E_ref + eta * fail_n) (MODEL.md section 7)."""
    e = np.where(snap.request, ev.energy, 0.0)
    return -float((e / energy_ref_j + eta * ev.failed).sum()) / snap.n_mus


def step(state: SimState, power: np.ndarray, weights: np.ndarray, hosts: np.ndarray) -> StepResult:
    """Advance ``state`` by one slot under the agents' actions (placement first at frame starts)."""
    sc = state.trace.scenario
    frame_start = state.is_frame_start
    migrations = 0
    if frame_start:
        migrations = state.apply_placement(repair_placement(state, hosts))
    snap = state.snapshot(allow_migration=False)
    dec, mu_used, bs_used = decision(snap, power, weights)
    ev = state.finish_slot(snap, dec)
    return StepResult(reward=team_reward(ev, snap, sc.energy_ref_j, sc.eta), evaluation=ev, snapshot=snap,
                      migrations=migrations, frame_start=frame_start, mu_used=mu_used, bs_used=bs_used,
                      ctrl_used=frame_start)
