"""The one implementation of an environment step, shared by the PettingZoo env, the batched env
and the checkpoint policy (docs/model.md, section 7; docs/env.md).

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
  allowed by the action mask (a migrating DT may not move; a server without room for the DT), or
  outside ``0 .. M-1``, means "stay"; a fraction is truncated. Allowed moves are applied in DT index order; a move that no longer fits because earlier
  DTs filled the server is dropped (the DT stays), so the repaired placement always fits storage.

Server failures (docs/model.md, section 12) reach every agent through the observation without
changing its size: a DT on a down server is not ``available`` (its MU fails with cause
``server_down`` and does not transmit), a down server offers no CPU (``compute_*`` features
saturate) and no free storage, and the controller's mask forbids moving a DT off or onto a down
server. Background load shows as the CPU left (``cpu_hz`` of the slot's snapshot).

With failures on (``scenario.server_failures``) each BS agent and the controller also observe
server status as named features (:data:`BS_STATUS_FEATURES`, :data:`CTRL_STATUS_FEATURES`, appended
at the end of their observations): whether the server is up now and the probability that it is up
at the next frame start given its state now (the two-state chain's k-step transition,
docs/model.md, section 12). With failures off nothing is added, so observations keep the size and
values agents trained without failures expect (``server_status=False`` asks for that layout on
any trace: what a checkpoint trained without failures is given).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import physics
from ..cost import Decision, Evaluation, _bincount_rows
from ..errors import WdtnoptError
from ..simulation import SimState, move_in_index_order
from ..snapshot import Snapshot
from .features import Features, FeatureStack  # noqa: F401 (windowed feature precomputation)

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
BS_STATUS_FEATURES = ("server_up", "p_up_next_frame")
"""Appended to each BS agent's observation when servers fail: its own server's status."""
CTRL_STATUS_FEATURES = ("server_up[M]", "p_up_next_frame[M]")
"""Appended to the controller's observation (and so to the state) when servers fail."""


def obs_dims(n: int, m: int, server_status: bool = False) -> dict[str, int]:
    """Observation sizes per agent type, and of the global state (``server_status``: with the
    server-status features of a scenario whose servers fail)."""
    ctrl = n * (3 * m + 3) + m + 1 + (2 * m if server_status else 0)
    return {"mu": len(MU_FEATURES), "bs": len(BS_DT_FEATURES) * n + len(BS_FEATURES) + (2 if server_status else 0),
            "controller": ctrl, "state": ctrl + n * len(MU_FEATURES) + m}


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


def _log10_power_needed_over_pmax(bits_ln2_over_b: np.ndarray, log10_snr_pmax: np.ndarray, t_tx: np.ndarray) -> np.ndarray:
    """``log10(p_need / p_max) / 5`` clipped to ``[-1, 0.2]``: the least power that sends the MU's data
    in ``t_tx`` seconds (the deadline less relay and the DT update at an equal CPU share), relative to
    the cap; ``p_need / p_max = (2^{D/(B t)} - 1) / SNR(p_max)``, computed in the log domain."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.where(t_tx > 0, bits_ln2_over_b / np.where(t_tx > 0, t_tx, 1.0), np.inf)
        # log10(e^x - 1) = x / ln 10 + log10(1 - e^-x), exact and overflow-free for x > 0
        lg = x / np.log(10.0) + np.log10(-np.expm1(-x))
        lg = np.where(np.isfinite(lg), lg, 1.0e3)
    return np.clip((lg - log10_snr_pmax) / 5.0, -1.0, 0.2)


def _rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[e, idx[e, n]]`` for a: [E, M, ...] and idx: [E, N] -> [E, N, ...]."""
    return a[np.arange(a.shape[0])[:, None], idx]


def observe(feat: Features, state: SimState, server_status: bool | None = None) -> Observation:
    """Observations of every agent and the global state at the current slot of ``state``
    (``server_status``: see :func:`observe_arrays`)."""
    t = np.array([state.t])
    if feat._stack is None:
        feat._stack = FeatureStack.single(feat)
    o = observe_arrays(feat._stack, feat.trace.scenario, t, state.placement[None],
                       state.unavailable[None], server_status=server_status)
    return Observation(mu=o.mu[0], bs=o.bs[0], controller=o.controller[0], state=o.state[0], ctrl_mask=o.ctrl_mask[0])


def observe_arrays(stack: FeatureStack, sc: Any, t_now: np.ndarray, x: np.ndarray, unavailable: np.ndarray,
                   server_status: bool | None = None) -> Observation:
    """Observations of E environments at their current slots ``t_now [E]`` (placement ``x [E, N]``,
    migration slots left ``unavailable [E, N]``); every field of the result has a leading ``[E]``.
    ``server_status``: append the server-status features (None: iff the scenario's servers fail)."""
    e_, n = x.shape
    k = sc.frame_slots
    slots = stack.slots
    f = stack.at(np.minimum(t_now, slots - 1))   # after the last slot: observe the last one (terminal obs)
    m = f.cpu_hz.shape[1]
    idx = np.arange(n)
    dl = f.deadline
    host_up = np.take_along_axis(f.server_up, x, 1)
    avail = (unavailable == 0) & host_up     # a DT on a down server is unavailable, like a migrating one
    req = f.request
    active = req & avail
    phase = (t_now % k) / k
    frame_start = t_now % k == 0
    n_active = _bincount_rows(x, active.astype(float), m).astype(np.int64)
    share = _rows(f.cpu_hz, x) / np.maximum(_rows(n_active, x) + (~active), 1)      # equal share if it joined
    relay_x = np.take_along_axis(f.relay, x[:, :, None], 2)[:, :, 0]
    left = np.minimum(unavailable / k, 1.0)
    with np.errstate(divide="ignore"):   # no CPU on a down server: infinite compute time (features clip it)
        compute_eq = f.cycles / share
    need = _log10_power_needed_over_pmax(f.bits_ln2_over_b, f.log10_snr_pmax, dl - relay_x - compute_eq)
    mu = np.stack([
        req.astype(float), avail.astype(float), np.minimum(f.t_min / dl, 2.0), f.log_snr,
        np.minimum(f.spectral, 1.0), np.minimum(relay_x / dl, 2.0),
        np.minimum(compute_eq / dl, 2.0), (x == f.assoc).astype(float),
        np.broadcast_to(phase[:, None], (e_, n)), left, f.noise_rise, need,
    ], axis=2)
    hosted = x[:, None, :] == np.arange(m)[None, :, None]                                          # [E, M, N]
    with np.errstate(divide="ignore"):
        compute_full = np.minimum(f.cycles[:, None, :] / f.cpu_hz[:, :, None] / dl[:, None, :], 2.0)   # [E, M, N]
    slack = np.clip((dl[:, None, :] - f.relay.transpose(0, 2, 1) - f.t_min[:, None, :]) / dl[:, None, :], -1.0, 1.0)
    bs_dt = np.stack([hosted, hosted & active[:, None, :], compute_full, slack], axis=3).reshape(e_, m, -1)
    bs = np.concatenate([bs_dt, np.stack([n_active / n, np.broadcast_to(phase[:, None], (e_, m))], axis=2)], axis=2)
    eye = np.eye(m)
    load = _bincount_rows(x, np.broadcast_to(f.dt_size_bits, x.shape), m)
    free = np.where(f.server_up, f.storage_bits - load, 0.0)   # a down server takes no DT
    ctrl_dt = np.concatenate([eye[x], eye[f.assoc], np.minimum(f.relay / dl[:, :, None], 2.0),
                              avail[:, :, None].astype(float), left[:, :, None],
                              (f.dt_size_bits / sc.dt_size_bits_max)[:, :, None]], axis=2)
    ctrl = np.concatenate([ctrl_dt.reshape(e_, -1), free / f.storage_bits, frame_start[:, None].astype(float)], axis=1)
    if sc.server_failures if server_status is None else server_status:
        status = server_status_features(sc, f.server_up, t_now)                                  # [E, M, 2]
        bs = np.concatenate([bs, status], axis=2)
        ctrl = np.concatenate([ctrl, status.transpose(0, 2, 1).reshape(e_, -1)], axis=1)
    state_vec = np.concatenate([ctrl, mu.reshape(e_, -1), n_active / n], axis=1)
    # frame start: stay, or move to a server with room (if not migrating); otherwise only the host
    mask = (free[:, None, :] >= f.dt_size_bits[:, :, None]) & avail[:, :, None] & frame_start[:, None, None]
    mask[np.arange(e_)[:, None], idx, x] = True
    return Observation(mu=mu, bs=bs, controller=ctrl, state=state_vec, ctrl_mask=mask)


def server_status_features(sc: Any, server_up: np.ndarray, t_now: np.ndarray) -> np.ndarray:
    """[E, M, 2]: ``server_up`` now (0/1) and P(up at the next frame start | state now), the chain's
    k-step transition with ``k`` the slots to the next frame start (``K`` at a frame start).
    (Time since the last failure would add nothing: the chain is memoryless.)"""
    from ..processes import availability

    k = sc.frame_slots - (np.asarray(t_now) % sc.frame_slots)
    p_fail, p_rep = availability.transition_probabilities(sc.slot_s, *sc.server_mtbf_mttr_s())
    p_up = availability.up_probability_ahead(server_up, k[:, None], p_fail, p_rep)
    return np.stack([np.asarray(server_up, float), p_up], axis=2)


def repair_placement(state: SimState, hosts: np.ndarray) -> np.ndarray:
    """The placement applied for the controller's choice ``hosts`` (module docstring: masking rule).

    A host outside ``0 .. M-1`` (negative, ``M`` or more, infinite or NaN) means "stay"; a fraction
    is truncated (the rule of :func:`allowed_level` for levels). The range is checked before the
    cast to integers: ``-0.5`` truncated first became server 0 (a move), and a value beyond int64
    (``inf``, ``1e30``) gave numpy's "invalid value encountered in cast" warning."""
    tr = state.trace
    x = state.placement
    raw = np.asarray(hosts, dtype=float).reshape(-1)
    in_range = (raw >= 0) & (raw < tr.n_bss)   # NaN fails both: stay
    hosts = np.where(in_range, raw, x).astype(np.int64)
    up = tr.server_up[state.t] if tr.server_up is not None else np.ones(tr.n_bss, bool)
    free = np.where(up, tr.storage_bits - np.bincount(x, weights=tr.dt_size_bits, minlength=tr.n_bss), -np.inf)
    movable = (hosts != x) & (state.unavailable == 0) & up[x]
    return move_in_index_order(x, hosts, movable, free, tr.dt_size_bits)


def allowed_level(f: Any, level: np.ndarray) -> np.ndarray:
    """The levels that take effect for the MUs' choices ``level [..., N]`` with a menu ``f`` (the
    snapshot level fields, with the same leading axes): a level off the MU's menu -- outside
    ``0 .. L-1`` or below its ``min_accuracy`` -- means level 0 (uncompressed, always on the menu);
    a fraction is truncated. The one rule of both environments (docs/env.md, "Semantic compression")."""
    n_lv = f.level_ratio.shape[-1]
    raw = np.asarray(level, dtype=float)
    lv = np.where((raw >= 0) & (raw < n_lv), raw, 0.0).astype(np.int64)   # NaN fails both: level 0
    ok = np.take_along_axis(f.level_accuracy, lv[..., None], -1)[..., 0] >= f.min_accuracy
    return np.where(ok, lv, 0)


def at_levels_arrays(f: Any, level: np.ndarray) -> tuple[SimpleNamespace, np.ndarray]:
    """:meth:`Snapshot.at_levels` for E environments: the fields of ``f`` (:meth:`FeatureStack.at`,
    with a menu) at the MUs' levels ``level [E, N]`` -- data ``level_ratio * data_bits`` (and the
    cycles and relay times of that data), deadline shortened by the extraction time -- and the
    extraction energy [E, N] (J), as :func:`wdtnopt.cost.evaluate_arrays` computes them."""
    lv = np.asarray(level)[..., None]
    pick = lambda a: np.take_along_axis(a, lv, -1)[..., 0]  # noqa: E731
    data = pick(f.level_ratio) * f.data_bits
    ext_cycles = pick(f.level_cycles_per_bit) * f.data_bits
    out = SimpleNamespace(**vars(f))
    out.data_bits = data
    out.cycles = f.cycles_per_bit * data
    out.relay = physics.backhaul_time(_rows(f.backhaul_latency_s, f.assoc), _rows(f.backhaul_s_per_bit, f.assoc),
                                      data[..., None])
    out.deadline = f.deadline - ext_cycles / f.mu_cpu_hz
    return out, f.mu_kappa * ext_cycles * f.mu_cpu_hz ** 2


def decision(snap: Snapshot, power: np.ndarray, weights: np.ndarray, level: np.ndarray | None = None,
             mu_action: str = "power", price_j: float = 0.0,
             bs_action: str = "weights") -> tuple[Decision, np.ndarray, np.ndarray]:
    """The environment-view decision of the slot; also which MU / BS action entries take effect.
    ``level`` [N]: the MUs' semantic compression levels (a scenario with a menu; None = level 0).
    ``mu_action="power_over_need"``: ``power`` holds multiples of the least deadline-meeting power at
    the announced share and the MU's level, gated at ``price_j`` less the level's extraction energy
    (:func:`structured_allocation` on :func:`at_levels_arrays`), and ``bs_action``
    (:data:`BS_ACTIONS`) says what the BS weights mean."""
    n, m = snap.n_mus, snap.n_bss
    x = snap.placement_prev
    blocked = snap.migrating | ~snap.host_up   # a DT that is migrating or whose host is down cannot update
    if bs_action not in BS_ACTIONS:
        raise WdtnoptError(f"bs_action: expected one of {', '.join(BS_ACTIONS)}, got {bs_action!r}")
    if bs_action != "weights" and mu_action != "power_over_need":
        raise WdtnoptError("bs_action: 'tilt_over_kkt' needs mu_action='power_over_need' (the BSs act first)")
    if mu_action == "power_over_need":
        price = np.asarray(price_j, float)
        s = snap
        if level is not None and snap.has_levels:   # the least power at the chosen level (docs/env.md)
            s = snap.at_levels(level)
            price = price - np.take_along_axis(snap.extraction_energy_j, np.asarray(level, np.int64)[:, None], 1)[:, 0]
        f = SimpleNamespace(**{k: np.asarray(getattr(s, k))[None] for k in (
            "request", "p_max", "cpu_hz", "gain", "assoc", "bandwidth", "noise_psd", "data_bits", "relay", "cycles",
            "deadline")})
        p, cpu, used, bs_used, _, _ = structured_allocation(f, x[None], blocked[None],
                                                         np.asarray(power, float).reshape(1, n),
                                                         np.asarray(weights, float).reshape(1, m, n), price,
                                                         bs_action=bs_action)
        return Decision(placement=x.copy(), power=p[0], cpu_hz=cpu[0], level=level), used[0], bs_used[0]
    p, cpu, active, bs_used = allocation(x[None], blocked[None], snap.request[None], snap.p_max[None],
                                         snap.cpu_hz[None], np.asarray(power, float).reshape(1, n),
                                         np.asarray(weights, float).reshape(1, m, n))
    return Decision(placement=x.copy(), power=p[0], cpu_hz=cpu[0], level=level), active[0], bs_used[0]


def allocation(x: np.ndarray, migrating: np.ndarray, request: np.ndarray, p_max: np.ndarray, cpu_hz: np.ndarray,
               power: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Power and CPU of E environments from the MU / BS actions (module docstring):
    x, migrating (unavailable: migrating or on a down server), request, p_max, power [E, N];
    cpu_hz [E, M]; weights [E, M, N]
    -> (power [E, N] W, cpu [E, N] Hz, MU entry used [E, N], BS entry used [E, M, N])."""
    e_, m, n = weights.shape
    active = request & ~migrating
    p = np.clip(power, 0.0, p_max)
    w = np.clip(weights, 0.0, 1.0)
    w_own = np.maximum(np.take_along_axis(w, x[:, None, :], 1)[:, 0], WEIGHT_FLOOR) * active   # each DT's weight at its host
    total = _rows(_bincount_rows(x, w_own, m), x)
    cpu = np.where(active, _rows(cpu_hz, x) * w_own / np.where(total > 0, total, 1.0), 0.0)
    bs_used = (x[:, None, :] == np.arange(m)[None, :, None]) & active[:, None, :]
    return p, cpu, active, bs_used


def team_reward(ev: Evaluation, snap: Snapshot, energy_ref_j: float, eta: float) -> float:
    """``-(1/N) sum_n (E_n / E_ref + eta * fail_n)`` over the slot (docs/model.md, section 7)."""
    return float(team_rewards(ev.energy[None], snap.request[None], ev.failed[None], energy_ref_j, eta)[0])


def team_rewards(energy: np.ndarray, request: np.ndarray, failed: np.ndarray, energy_ref_j: float, eta: float) -> np.ndarray:
    """:func:`team_reward` of E environments: [E, N] arrays -> [E]."""
    e = np.where(request, energy, 0.0)
    return -(e / energy_ref_j + eta * failed).sum(-1) / energy.shape[-1]


def step(state: SimState, power: np.ndarray, weights: np.ndarray, hosts: np.ndarray,
         level: np.ndarray | None = None, mu_action: str = "power", bs_action: str = "weights") -> StepResult:
    """Advance ``state`` by one slot under the agents' actions (placement first at frame starts);
    ``level``: the MUs' semantic compression levels when the trace has a menu; ``mu_action`` as
    :data:`MU_ACTIONS`, ``bs_action`` as :data:`BS_ACTIONS` (docs/env.md, "Within-slot protocol")."""
    sc = state.trace.scenario
    frame_start = state.is_frame_start
    migrations = 0
    if frame_start:
        migrations = state.apply_placement(repair_placement(state, hosts))
    snap = state.snapshot(allow_migration=False)
    dec, mu_used, bs_used = decision(snap, power, weights, level, mu_action=mu_action, price_j=sc.failure_price,
                                     bs_action=bs_action)
    ev = state.finish_slot(snap, dec)
    return StepResult(reward=team_reward(ev, snap, sc.energy_ref_j, sc.eta), evaluation=ev, snapshot=snap,
                      migrations=migrations, frame_start=frame_start, mu_used=mu_used, bs_used=bs_used,
                      ctrl_used=frame_start)


# -- structured MU action (docs/env.md, "Within-slot protocol") ----------------------------------
MU_ACTIONS = ("power", "power_over_need")
"""What a MU's action means: ``power`` (W, clipped to ``[0, p_max]``) or ``power_over_need``, a
multiplier ``>= 1`` of the least power that meets the deadline at the CPU share announced by the
BSs in this slot, with the give-up gate (:func:`structured_allocation`)."""


BS_ACTIONS = ("weights", "tilt_over_kkt")
"""What a BS's action means (with ``mu_action="power_over_need"``): ``weights`` in ``[0, 1]`` that split
the server's CPU in proportion, or ``tilt_over_kkt``, positive multipliers of the energy-optimal
(equal-marginal, KKT) CPU split among the DTs that update on the server (:func:`kkt_cpu`)."""


def kkt_cpu(served: np.ndarray, x: np.ndarray, cycles: np.ndarray, t_budget: np.ndarray, t_min: np.ndarray,
            noise_w: np.ndarray, bits_ln2_over_b: np.ndarray, cpu_hz: np.ndarray, iters: int = 10) -> np.ndarray:
    """Energy-optimal CPU split of every server among its served DTs (equal marginal energy, KKT).

    Per server ``m``: minimize ``sum_n E_n(t_n)`` over the served DTs on ``m``, with transmission time
    ``t_n = t_budget_n - cycles_n / c_n``, ``sum_n c_n = cpu_hz[m]`` and ``t_n >= t_min_n``, where
    ``E_n(t) = t noise_w_n (2^{D_n / (B_n t)} - 1)`` (docs/model.md, section 3) is convex and
    decreasing. With ``x = k / t`` (``k = D ln 2 / B``), ``-E_n'(t) = noise_w_n ((x - 1) e^x + 1)``,
    and the KKT conditions ask ``-E_n'(t_n) (t_budget_n - t_n)^2 / cycles_n = lambda_m`` for every DT
    whose ``t_n`` is not at a bound. Solved per server by a safeguarded Newton iteration on
    ``log lambda_m`` inside its bracket (bisection when a Newton step leaves it), each DT's
    ``s_n = log(t_budget_n - t_n)`` following by Newton steps (an increasing convex equation in
    ``s_n``, clipped to the feasible range); the result is scaled to use exactly ``cpu_hz[m]``. On
    paper snapshots 8 rounds reach the optimum to machine precision (tested against SciPy's SLSQP).
    Only the DTs that can meet the deadline at ``p_max`` with a share of the server take part; on a
    server whose least shares do not all fit, as many as fit, smallest least share first (the
    others get no CPU, and the gate drops them).

    Parameters
    ----------
    served : ndarray of bool [E, N]
        DTs that take part in the split.
    x : ndarray of int [E, N]
        Host of every DT.
    cycles, t_budget, t_min : ndarray [E, N]
        Update work (cycles), deadline less relay time (s), transmission time at ``p_max`` (s).
    noise_w, bits_ln2_over_b : ndarray [E, N]
        ``N0 B / g`` (W) and ``D ln 2 / B`` (s) of every MU.
    cpu_hz : ndarray [E, M]
        CPU of every server (cycles/s).
    iters : int, optional
        Rounds of the iteration on ``lambda``.

    Returns
    -------
    ndarray [E, N]
        CPU of every served DT (cycles/s), 0 for the others; the served DTs of a server share all of it.
    """
    m = cpu_hz.shape[1]
    cpu_x = _rows(cpu_hz, x)
    served = _fits_least_shares(served, x, cycles, t_budget, t_min, cpu_x, m)
    # per-server sums of [E, N] rows: the bincount of _bincount_rows with its flat bin index built once
    e_ = x.shape[0]
    flat_bins = (x + m * np.arange(e_)[:, None]).ravel()

    def per_server(w: np.ndarray) -> np.ndarray:
        return np.bincount(flat_bins, weights=np.reshape(w, -1), minlength=e_ * m).reshape(e_, m)

    cyc = np.where(served, cycles, 1.0)
    tb = np.where(served, t_budget, 1.0)
    kk = np.where(served, bits_ln2_over_b, 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s_hi = np.log(np.maximum(tb - np.where(served, t_min, 0.0), 1e-300))
        s_lo = np.minimum(np.log(cyc / cpu_x), s_hi)
        base = np.log(np.where(served, noise_w, 1.0)) - np.log(cyc)

        def marginal(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """log(-E'(t) (t_budget - t)^2 / cycles) at t = t_budget - e^s, and its derivative in s."""
            es = np.exp(s)
            t = np.maximum(tb - es, 1e-300)
            z = np.minimum(kk / t, 700.0)
            q = np.maximum(z + np.expm1(-z), 1e-300)          # (x - 1) e^x + 1 = e^x (x - 1 + e^-x)
            return base + z + np.log(q) + 2.0 * s, z * z / q * es / t + 2.0

        count = np.maximum(per_server(served.astype(float)), 1.0)
        s = np.clip(np.log(cyc * _rows(count, x) / cpu_x), s_lo, s_hi)
        # bracket of log lambda per server: every DT at the whole CPU (total >= cpu) .. every DT at
        # its least share (total <= cpu, as _fits_least_shares keeps)
        v_lo, _ = marginal(s_lo)
        v_hi, _ = marginal(s_hi)
        lo = _min_rows(x, np.where(served, v_lo, np.inf), m)
        hi = _max_rows(x, np.where(served, v_hi, -np.inf), m)
        has = np.isfinite(lo) & np.isfinite(hi)
        lo, hi = np.where(has, lo, 0.0), np.where(has, np.maximum(hi, lo), 0.0)
        lam = 0.5 * (lo + hi)
        log_cpu = np.log(np.where(cpu_hz > 0, cpu_hz, 1.0))
        val_slope = None   # marginal(s) at the current s, when already known (the same values: no recomputation)
        for _ in range(iters):
            lam_x = _rows(lam, x)
            for _ in range(3):   # each DT's s at the server's lambda: Newton on an increasing convex function
                val, slope = val_slope if val_slope is not None else marginal(s)
                val_slope = None
                s = np.clip(s - (val - lam_x) / slope, s_lo, s_hi)
            c = np.where(served, cyc * np.exp(-s), 0.0)
            val_slope = marginal(s)
            slope = val_slope[1]
            total = per_server(c)
            g = np.log(np.maximum(total, 1e-300)) - log_cpu           # decreasing in lambda
            lo, hi = np.where(g > 0, lam, lo), np.where(g > 0, hi, lam)
            d = per_server(np.where(served & (s > s_lo) & (s < s_hi), c / slope, 0.0))
            newton = lam + g * total / np.where(d > 0, d, 1.0)
            lam = np.where((d > 0) & (newton > lo) & (newton < hi), newton, 0.5 * (lo + hi))
        lam_x = _rows(lam, x)
        for _ in range(3):
            val, slope = val_slope if val_slope is not None else marginal(s)
            val_slope = None
            s = np.clip(s - (val - lam_x) / slope, s_lo, s_hi)
        c = np.where(served, cyc * np.exp(-s), 0.0)
    total = _rows(per_server(c), x)
    return np.where(served, c / np.where(total > 0, total, 1.0) * cpu_x, 0.0)


def _min_rows(idx: np.ndarray, values: np.ndarray, m: int) -> np.ndarray:
    """Minimum of ``values [E, N]`` per bin of ``idx [E, N]``: ``[E, M]`` (+inf for an empty bin)."""
    return np.where(idx[:, None, :] == np.arange(m)[None, :, None], values[:, None, :], np.inf).min(-1)


def _max_rows(idx: np.ndarray, values: np.ndarray, m: int) -> np.ndarray:
    """Maximum of ``values [E, N]`` per bin of ``idx [E, N]``: ``[E, M]`` (-inf for an empty bin)."""
    return -_min_rows(idx, -values, m)


def _fits_least_shares(served: np.ndarray, x: np.ndarray, cycles: np.ndarray, t_budget: np.ndarray,
                       t_min: np.ndarray, cpu_x: np.ndarray, m: int) -> np.ndarray:
    """The served DTs that :func:`kkt_cpu` splits the CPU among: those that can meet the deadline at
    ``p_max`` with the least share ``cycles / (t_budget - t_min)``, and, on a server whose least
    shares add up to more than its CPU, as many as fit, smallest least share first."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        frac = np.where(served & (t_budget > t_min), cycles / np.maximum(t_budget - t_min, 1e-300) / cpu_x, np.inf)
    ok = served & (frac <= 1.0)
    frac = np.where(ok, frac, 0.0)
    order = np.argsort(x + frac / (1.0 + frac), axis=1, kind="stable")     # by server, then least share
    fs = np.take_along_axis(frac, order, 1)
    per_server = _bincount_rows(x, frac, m)
    before = np.cumsum(per_server, axis=1) - per_server                    # least shares of earlier servers
    within = np.cumsum(fs, axis=1) - _rows(before, np.take_along_axis(x, order, 1))
    keep = np.zeros_like(ok)
    np.put_along_axis(keep, order, within <= 1.0 - 1e-9, 1)
    return ok & keep


def structured_allocation(f: Any, x: np.ndarray, migrating: np.ndarray, over_need: np.ndarray, weights: np.ndarray,
                          price_j: float, bs_action: str = "weights"
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Power and CPU of E environments when the BSs act first and the MUs answer the announced shares.

    The BS weights split each server's CPU among its DTs that update (as :func:`allocation`). A MU
    whose least deadline-meeting power at that share, ``p_need = (N0 B / g)(2^{D / (B t)} - 1)`` with
    ``t = deadline - relay - cycles / cpu``, exceeds ``p_max`` or whose least energy ``p_need t``
    exceeds the failure price ``price_j`` (``eta E_ref``: failing costs less) gives up: it does not
    transmit and its DT's share is handed back to the others on its server (repeated until no MU
    gives up; shares only grow, so no MU that stayed becomes infeasible or too expensive). The others
    transmit ``min(p_need * max(over_need, 1), p_max)``, which meets the deadline.

    Parameters
    ----------
    f : object
        The slot's snapshot fields with a leading ``[E]`` (``request``, ``p_max``, ``cpu_hz``,
        ``gain``, ``assoc``, ``bandwidth``, ``noise_psd``, ``data_bits``, ``relay [E, N, M]``,
        ``cycles``, ``deadline``), e.g. :meth:`FeatureStack.at`.
    x, migrating : ndarray [E, N]
        Placement in the slot and the DTs that are migrating.
    over_need : ndarray [E, N]
        The MUs' actions: power as a multiple of ``p_need`` (values below 1 mean 1).
    weights : ndarray [E, M, N]
        ``bs_action="weights"``: the BSs' CPU weights (clipped to ``[0, 1]``, floored at
        ``WEIGHT_FLOOR``); ``"tilt_over_kkt"``: positive multipliers of the KKT split of the DTs
        still served (:func:`kkt_cpu`, recomputed after every give-up), the shares then scaled to
        the server's CPU.
    price_j : float or ndarray [E, N]
        Failure price in J above which a sync is given up (per MU: less its extraction energy at
        its semantic level, :func:`at_levels_arrays`).
    bs_action : {"weights", "tilt_over_kkt"}, optional
        What ``weights`` mean (:data:`BS_ACTIONS`).

    Returns
    -------
    power [E, N] (W), cpu [E, N] (Hz), MU action used [E, N] (transmits), BS entry used [E, M, N],
    gave_up [E, N] (requesting, available, not transmitting), least energy [E, N] (J): ``p_need t``
    of the MUs that transmit (what they spend with ``over_need = 1``), 0 elsewhere.
    """
    e_, m, n = weights.shape
    active = f.request & ~migrating
    w = np.clip(weights, 0.0, 1.0)
    w_own = np.maximum(np.take_along_axis(w, x[:, None, :], 1)[:, 0], WEIGHT_FLOOR)
    g = np.take_along_axis(f.gain, f.assoc[:, :, None], 2)[:, :, 0]
    relay_x = np.take_along_axis(f.relay, x[:, :, None], 2)[:, :, 0]
    tilt = bs_action == "tilt_over_kkt"
    if tilt:   # inputs of the KKT split: N0 B / g, D ln 2 / B, deadline less relay, time at p_max
        noise_w = f.noise_psd * f.bandwidth / g
        k_s = f.data_bits * np.log(2.0) / f.bandwidth
        t_budget = f.deadline - relay_x
        t_min = physics.time_for_power(f.p_max, f.data_bits, f.bandwidth, f.noise_psd, g)
        w_own = np.maximum(np.take_along_axis(np.asarray(weights, float), x[:, None, :], 1)[:, 0], WEIGHT_FLOOR)
        # scaling an environment's multipliers changes no split, but tilts near the float range times
        # the KKT shares (Hz) overflowed to inf, inf / inf = NaN CPU, and every sync failed silently;
        # only such rows are scaled (the others keep their numbers bit for bit)
        big = w_own.max(axis=1, keepdims=True)
        w_own = np.where(big > 1e100, w_own / big, w_own)
    served = active.copy()
    while True:
        ws = w_own * served
        if tilt:
            ws = ws * kkt_cpu(served, x, f.cycles, t_budget, t_min, noise_w, k_s, f.cpu_hz)
        total = _rows(_bincount_rows(x, ws, m), x)
        cpu = np.where(served, _rows(f.cpu_hz, x) * ws / np.where(total > 0, total, 1.0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            compute = np.where(cpu > 0, f.cycles / np.where(cpu > 0, cpu, 1.0), np.inf)
            t_avail = f.deadline - relay_x - compute
            p_need = physics.power_for_time(t_avail, f.data_bits, f.bandwidth, f.noise_psd, g)
            ok = served & (t_avail > 0) & (p_need <= f.p_max) & (p_need * t_avail <= price_j)
        if (ok == served).all():
            break
        served = ok
    # over_need of the MUs that do not transmit is not used: 1 there (an infinite action times their
    # p_need of 0 was NaN, dropped by the outer where but with numpy's invalid-value warning)
    p = np.where(served, np.minimum(np.where(served, p_need, 0.0) * np.where(served, np.maximum(over_need, 1.0), 1.0),
                                    f.p_max), 0.0)
    bs_used = (x[:, None, :] == np.arange(m)[None, :, None]) & active[:, None, :]
    least = np.where(served, np.where(served, p_need, 0.0) * np.where(served, t_avail, 0.0), 0.0)
    return p, cpu, served, bs_used, active & ~served, least


def local_rewards(energy: np.ndarray, request: np.ndarray, failed: np.ndarray, x: np.ndarray, active: np.ndarray,
                  n_bss: int, energy_ref_j: float, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-agent local rewards of E environments (docs/agents.md, "Credit assignment").

    MU n: ``-(E_n / E_ref + eta fail_n)``, its own term of the team reward, whose mean over the MUs
    is the team reward (:func:`team_rewards`). BS m: ``(1/N) sum`` of the MU rewards of the DTs it
    serves in the slot (hosted, requesting, available), the part of the team reward its CPU weights
    can change; the BS rewards add up to the team reward less the failures of migrating DTs.

    energy, request, failed, x, active: [E, N] -> (MU rewards [E, N], BS rewards [E, M]).
    """
    mu = -(np.where(request, energy, 0.0) / energy_ref_j + eta * failed)
    bs = _bincount_rows(x, np.where(active, mu, 0.0), n_bss) / energy.shape[-1]
    return mu, bs
