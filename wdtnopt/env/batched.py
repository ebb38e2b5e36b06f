"""Many WDTN environments stepped at once, with arrays per agent type (for training).

A step is :func:`wdtnopt.env.core.step` of every environment, computed with arrays ``[E, ...]``:
the frame-start placement goes through each environment's :class:`SimState` (the one
implementation of the migration dynamics), then the slot's power and CPU
(:func:`~wdtnopt.env.core.allocation`), its cost (:func:`wdtnopt.cost.evaluate_arrays`, the core
of ``evaluate``), the team reward and the observations (:func:`~wdtnopt.env.core.observe_arrays`)
are computed for all environments at once, with the same functions the PettingZoo env uses for
one. The results equal the PettingZoo env's exactly (tested step for step). Environments reset
automatically at the end of an episode; the terminal global state is returned in
``info["final_state"]`` so critics can bootstrap the time-limit truncation, and the terminal BS
observations and controller mask in ``info["final_bs"]`` and ``info["final_ctrl_mask"]`` so target
actors (MADDPG) act on the terminal state rather than on the new episode's first one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cost import evaluate_arrays
from ..errors import PolicyError, WdtnoptError
from ..scenario import Scenario
from ..simulation import SimState
from ..processes.mobility import resolve_mobility
from ..trace import generate_trace
from . import core
from .parallel import check_args


@dataclass
class BatchObs:
    """Observations of E environments (float32)."""

    mu: np.ndarray          # [E, N, d_mu]
    bs: np.ndarray          # [E, M, d_bs]
    controller: np.ndarray  # [E, d_ctrl]
    state: np.ndarray       # [E, d_state]
    ctrl_mask: np.ndarray   # [E, N, M] bool

    @classmethod
    def stack(cls, obs: list[core.Observation]) -> "BatchObs":
        """Stack single-environment observations (float32, as the PettingZoo env gives them)."""
        return cls(mu=np.stack([o.mu for o in obs]).astype(np.float32),
                   bs=np.stack([o.bs for o in obs]).astype(np.float32),
                   controller=np.stack([o.controller for o in obs]).astype(np.float32),
                   state=np.stack([o.state for o in obs]).astype(np.float32),
                   ctrl_mask=np.stack([o.ctrl_mask for o in obs]))


def episode_seed(seed: int, env_index: int, episode: int) -> int:
    """Trace seed of episode ``episode`` of environment ``env_index`` in a batched run of ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(env_index), int(episode)]).generate_state(1, np.uint32)[0] >> 1)


class BatchedWdtnEnv:
    """``n_envs`` WDTN environments; ``step`` takes [E, ...] arrays of actions per agent type.

    Parameters
    ----------
    scenario : Scenario, optional
        The network (N MUs, M BSs); default ``Scenario.paper()``.
    n_envs : int, optional
        Number E of environments stepped together.
    seed : int, optional
        Episode ``k`` of environment ``e`` uses the trace seed ``episode_seed(seed, e, k)``.
    slots : int, optional
        Episode length in slots.
    mobility : optional
        The traces' mobility source (docs/mobility.md); None: Gauss-Markov.
    mu_action : {"power", "power_over_need"}, optional
        What a MU's action means: its power in W, or a multiple ``>= 1`` of the least
        deadline-meeting power at the CPU share the BSs announced, with the give-up gate
        (docs/env.md, "Within-slot protocol").
    bs_action : {"weights", "tilt_over_kkt"}, optional
        What a BS's action means with ``mu_action="power_over_need"``: CPU weights in ``[0, 1]``, or
        positive multipliers of the energy-optimal (KKT) split among the DTs it serves
        (``core.kkt_cpu``; docs/env.md, "Within-slot protocol").

    Raises
    ------
    WdtnoptError
        If ``scenario`` is not a Scenario, ``n_envs`` or ``slots`` is not an integer >= 1, or
        ``mu_action`` or ``bs_action`` is not one of its conventions (``tilt_over_kkt`` needs
        ``power_over_need``).
    """

    def __init__(self, scenario: Scenario | None = None, n_envs: int = 8, seed: int = 0, slots: int = 100,
                 mobility: Any = None, mu_action: str = "power", bs_action: str = "weights"):
        self.scenario = check_args(scenario, slots)
        self.mobility = resolve_mobility(mobility)   # docs/mobility.md; None: Gauss-Markov
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise WdtnoptError(f"n_envs: expected an integer >= 1, got {n_envs!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            # -1 was numpy's ValueError, 1.5 and True silently the traces of seed 1, None a TypeError
            raise WdtnoptError(f"seed: expected an integer >= 0, got {seed!r}")
        if mu_action not in core.MU_ACTIONS:
            raise WdtnoptError(f"mu_action: expected one of {', '.join(core.MU_ACTIONS)}, got {mu_action!r}")
        if bs_action not in core.BS_ACTIONS or (bs_action != "weights" and mu_action != "power_over_need"):
            raise WdtnoptError(f"bs_action: expected one of {', '.join(core.BS_ACTIONS)} ('tilt_over_kkt' with "
                               f"mu_action='power_over_need'), got {bs_action!r}")
        self.mu_action, self.bs_action = mu_action, bs_action
        self.n_envs, self.seed, self.slots = int(n_envs), int(seed), int(slots)
        self.n_mus, self.n_bss = self.scenario.n_mus, self.scenario.n_bss
        self.dims = core.obs_dims(self.n_mus, self.n_bss, self.scenario.server_failures)
        self.episode = np.zeros(self.n_envs, np.int64)
        self.sims: list[SimState] = []
        self.features: list[core.Features] = []
        self.stack = core.FeatureStack(self.n_envs)
        self._acc = np.zeros((self.n_envs, 4))   # energy J, requests, failures, return of the running episode

    def _start(self, e: int) -> None:
        tr = generate_trace(self.scenario, seed=episode_seed(self.seed, e, int(self.episode[e])), slots=self.slots,
                            mobility=self.mobility)
        self.sims[e] = SimState(tr)
        self.features[e] = core.Features(tr)
        self.stack.load(e, self.features[e])
        self._acc[e] = 0.0

    def reset(self) -> BatchObs:
        self.episode[:] = 0
        self.sims = [None] * self.n_envs      # type: ignore[list-item]
        self.features = [None] * self.n_envs  # type: ignore[list-item]
        for e in range(self.n_envs):
            self._start(e)
        return self.observe()

    def observe(self) -> BatchObs:
        return self._observe(*self._positions())

    def _positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(slot [E], placement [E, N], migration slots left [E, N]) of every environment."""
        return (np.array([s.t for s in self.sims]), np.stack([s.placement for s in self.sims]),
                np.stack([s.unavailable for s in self.sims]))

    def _observe(self, t: np.ndarray, x: np.ndarray, unavailable: np.ndarray) -> BatchObs:
        o = core.observe_arrays(self.stack, self.scenario, t, x, unavailable)
        return BatchObs(mu=o.mu.astype(np.float32), bs=o.bs.astype(np.float32),
                        controller=o.controller.astype(np.float32), state=o.state.astype(np.float32),
                        ctrl_mask=o.ctrl_mask)

    def step(self, power: np.ndarray, weights: np.ndarray, hosts: np.ndarray, level: np.ndarray | None = None
             ) -> tuple[BatchObs, np.ndarray, np.ndarray, dict[str, Any]]:
        """power [E, N] (W), weights [E, M, N], hosts [E, N] -> (obs, reward [E], done [E], info).

        ``level [E, N]``: the MUs' semantic compression levels, for a scenario with a menu (None:
        level 0); a level off a MU's menu (outside ``0 .. L-1`` or below its minimum accuracy)
        means level 0, as in the PettingZoo env (:func:`core.allowed_level`). ``info["level_used"] [E, N]``: the MUs whose level took effect (requesting
        and available: the level decides their data, and with ``power_over_need`` whether they
        give up). For the environments whose episode ended (``done``; they are reset, and ``obs``
        is the new episode's first observation) ``info["final_state"] [E, d_state]``,
        ``info["final_bs"] [E, M, d_bs]`` and ``info["final_ctrl_mask"] [E, N, M]`` hold the
        terminal observations (:func:`core.observe_arrays` at slot ``slots``); rows of the other
        environments are zeros (False)."""
        e_, n, m = self.n_envs, self.n_mus, self.n_bss
        sc = self.scenario
        # exact shapes: a reshape would silently scramble a transposed [N, E] or [E, N, M] array
        power = _shaped("power", power, (e_, n), float)
        weights = _shaped("weights", weights, (e_, m, n), float)
        hosts = _shaped("hosts", hosts, (e_, n), float)   # cast after the range check (core.repair_placement)
        # NaN as the PettingZoo env's strict check: a NaN power was silently silence, NaN weights paid the
        # sync's energy and failed it, and an infinite tilt ended in "infeasible decision: cpu_capacity"
        if np.isnan(power).any():
            raise WdtnoptError("power: expected numbers, got NaN")
        if np.isnan(hosts).any():   # as the PettingZoo env's controller; was numpy's cast warning, then "stay"
            raise WdtnoptError("hosts: expected numbers, got NaN")
        if np.isnan(weights).any() or (self.bs_action == "tilt_over_kkt" and np.isinf(weights).any()):
            what = "finite tilts" if self.bs_action == "tilt_over_kkt" else "numbers"
            raise WdtnoptError(f"weights: expected {what}, got {'NaN' if np.isnan(weights).any() else 'inf'}")
        frame_start = np.array([s.is_frame_start for s in self.sims])
        for e in np.flatnonzero(frame_start):      # placement first at frame starts (core.step)
            self.sims[e].apply_placement(core.repair_placement(self.sims[e], hosts[e]))
        t, x, unavailable = self._positions()
        # the slot's snapshots (SimState.snapshot(allow_migration=False) of every environment)
        snap = self.stack.at(t)
        snap.placement_prev, snap.migrating, snap.allow_migration = x, unavailable > 0, False
        host_up = np.take_along_axis(snap.server_up, x, 1)
        snap.migration_mask = host_up
        blocked = snap.migrating | ~host_up
        lv = None
        if level is not None and sc.semantic_levels > 0:
            lv = core.allowed_level(snap, _shaped("level", level, (e_, n), float))
        if self.mu_action == "power_over_need":   # the BSs act first, the MUs answer the announced shares
            f, price = snap, sc.failure_price
            if lv is not None:   # the least power at each MU's level; extraction energy counts against the gate
                f, e_ext = core.at_levels_arrays(snap, lv)
                price = sc.failure_price - e_ext
            p, cpu, mu_used, bs_used, gave_up, least = core.structured_allocation(f, x, blocked, power, weights, price,
                                                                                  self.bs_action)
            if lv is not None:
                least = np.where(mu_used, least + e_ext, 0.0)
        else:
            p, cpu, mu_used, bs_used = core.allocation(x, blocked, snap.request, snap.p_max, snap.cpu_hz, power, weights)
            gave_up, least = np.zeros_like(mu_used), np.zeros(mu_used.shape)
        ev = evaluate_arrays(snap, x, power=p, cpu_hz=cpu, level=lv)
        hard = ev.hard_violations
        if hard.any():   # as SimState.finish_slot; cannot happen with the repaired placement
            e = int(np.flatnonzero(hard)[0])
            kinds = [k for k, v in ev.violated.items() if k != "deadline" and v[e].any()]
            raise PolicyError(f"environment {e}, slot {t[e]}: infeasible decision: {', '.join(kinds)}")
        reward = core.team_rewards(ev.energy, snap.request, ev.failed, sc.energy_ref_j, sc.eta)
        requests = snap.request.sum(1)
        failures = ev.failed.sum(1)
        x_slot = x
        for sim in self.sims:   # as SimState.finish_slot after its evaluate
            sim.advance()
        t, x, unavailable = self._positions()
        done = t >= self.slots
        mu_reward, bs_reward = core.local_rewards(ev.energy, snap.request, ev.failed, x_slot,
                                                  snap.request & ~blocked, self.n_bss, sc.energy_ref_j, sc.eta)
        info: dict[str, Any] = {"mu_used": mu_used, "bs_used": bs_used, "ctrl_used": frame_start,
                                "mu_reward": mu_reward, "bs_reward": bs_reward, "gave_up": gave_up,
                                "mu_least_cost": least / sc.energy_ref_j,
                                "level_used": snap.request & ~blocked,
                                "energy_j": ev.energy_total, "failures": failures, "requests": requests,
                                "final_state": np.zeros((e_, self.dims["state"]), np.float32),
                                "final_bs": np.zeros((e_, m, self.dims["bs"]), np.float32),
                                "final_ctrl_mask": np.zeros((e_, n, m), bool), "episodes": []}
        self._acc += np.stack([ev.energy_total, requests, failures, reward], axis=1)
        if done.any():
            # the terminal observations, before the reset replaces them: the global state (critics
            # bootstrap from it) and what an actor reads beyond it (the BSs' observations and the
            # controller's mask; the MUs' and the controller's observations are slices of the state)
            final = self._observe(t, x, unavailable)
            info["final_state"][done] = final.state[done]
            info["final_bs"][done] = final.bs[done]
            info["final_ctrl_mask"][done] = final.ctrl_mask[done]
            for e in np.flatnonzero(done):
                en, rq, fl, ret = self._acc[e]
                info["episodes"].append({"env": int(e), "episode": int(self.episode[e]), "return": ret,
                                         "energy_per_mu_slot": en / (n * self.slots),
                                         "failure_ratio": fl / rq if rq else 0.0})
                self.episode[e] += 1
                self._start(e)
            return self.observe(), reward, done, info
        return self._observe(t, x, unavailable), reward, done, info

    # -- exact save/restore (traces are regenerated from their seeds) ---------------------------
    def get_state(self) -> dict[str, Any]:
        return {"episode": self.episode.tolist(), "t": [s.t for s in self.sims],
                "placement": [s.placement.tolist() for s in self.sims],
                "unavailable": [s.unavailable.tolist() for s in self.sims], "acc": self._acc.tolist()}

    def set_state(self, st: dict[str, Any]) -> None:
        if not self.sims:
            self.sims = [None] * self.n_envs      # type: ignore[list-item]
            self.features = [None] * self.n_envs  # type: ignore[list-item]
        if len(st["episode"]) != self.n_envs:
            raise WdtnoptError(f"environment state: expected {self.n_envs} environments, got {len(st['episode'])}")
        self.episode = np.asarray(st["episode"], np.int64)
        for e in range(self.n_envs):
            self._start(e)
            s = self.sims[e]
            s.t = int(st["t"][e])
            s.placement = np.asarray(st["placement"][e], np.int64)
            s.unavailable = np.asarray(st["unavailable"][e], np.int64)
        self._acc = np.asarray(st["acc"], float)


def _shaped(name: str, value: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``value`` as an array of ``shape`` and ``dtype``; else :class:`WdtnoptError` naming ``name``."""
    try:
        a = np.asarray(value, dtype)
    except (TypeError, ValueError):
        raise WdtnoptError(f"{name}: expected numbers of shape {list(shape)}, got {type(value).__name__}") from None
    if a.shape != shape:
        raise WdtnoptError(f"{name}: expected shape {list(shape)} ([E, N] / [E, M, N] of the batched step), "
                           f"got {list(a.shape)}")
    return a
