"""Many WDTN environments stepped at once, with arrays per agent type (for training).

Every environment is the same :func:`wdtnopt.env.core.step` as the PettingZoo env, so the
semantics are identical by construction (and tested step for step). Environments reset
automatically at the end of an episode; the terminal global state is returned in
``info["final_state"]`` so critics can bootstrap the time-limit truncation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import WdtnoptError
from ..scenario import Scenario
from ..simulation import SimState
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
    """``n_envs`` WDTN environments; ``step`` takes [E, ...] arrays of actions per agent type."""

    def __init__(self, scenario: Scenario | None = None, n_envs: int = 8, seed: int = 0, slots: int = 100):
        self.scenario = check_args(scenario, slots)
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise WdtnoptError(f"n_envs: expected an integer >= 1, got {n_envs!r}")
        self.n_envs, self.seed, self.slots = int(n_envs), int(seed), int(slots)
        self.n_mus, self.n_bss = self.scenario.n_mus, self.scenario.n_bss
        self.dims = core.obs_dims(self.n_mus, self.n_bss)
        self.episode = np.zeros(self.n_envs, np.int64)
        self.sims: list[SimState] = []
        self.features: list[core.Features] = []
        self._acc = np.zeros((self.n_envs, 4))   # energy J, requests, failures, return of the running episode

    def _start(self, e: int) -> None:
        tr = generate_trace(self.scenario, seed=episode_seed(self.seed, e, int(self.episode[e])), slots=self.slots)
        self.sims[e] = SimState(tr)
        self.features[e] = core.Features(tr)
        self._acc[e] = 0.0

    def reset(self) -> BatchObs:
        self.episode[:] = 0
        self.sims = [None] * self.n_envs      # type: ignore[list-item]
        self.features = [None] * self.n_envs  # type: ignore[list-item]
        for e in range(self.n_envs):
            self._start(e)
        return self.observe()

    def observe(self) -> BatchObs:
        return BatchObs.stack([core.observe(f, s) for f, s in zip(self.features, self.sims)])

    def step(self, power: np.ndarray, weights: np.ndarray, hosts: np.ndarray
             ) -> tuple[BatchObs, np.ndarray, np.ndarray, dict[str, Any]]:
        """power [E, N] (W), weights [E, M, N], hosts [E, N] -> (obs, reward [E], done [E], info)."""
        e_, n, m = self.n_envs, self.n_mus, self.n_bss
        power = np.asarray(power, float).reshape(e_, n)
        weights = np.asarray(weights, float).reshape(e_, m, n)
        hosts = np.asarray(hosts).reshape(e_, n)
        reward = np.zeros(e_)
        done = np.zeros(e_, bool)
        info: dict[str, Any] = {"mu_used": np.zeros((e_, n), bool), "bs_used": np.zeros((e_, m, n), bool),
                                "ctrl_used": np.zeros(e_, bool), "energy_j": np.zeros(e_),
                                "failures": np.zeros(e_, np.int64), "requests": np.zeros(e_, np.int64),
                                "final_state": np.zeros((e_, self.dims["state"]), np.float32), "episodes": []}
        for e in range(e_):
            sim = self.sims[e]
            res = core.step(sim, power[e], weights[e], hosts[e])
            ev = res.evaluation
            reward[e] = res.reward
            info["mu_used"][e], info["bs_used"][e], info["ctrl_used"][e] = res.mu_used, res.bs_used, res.ctrl_used
            info["energy_j"][e] = ev.energy_total
            info["failures"][e] = ev.n_failed
            info["requests"][e] = int(res.snapshot.request.sum())
            self._acc[e] += (ev.energy_total, info["requests"][e], ev.n_failed, res.reward)
            if sim.done:
                done[e] = True
                info["final_state"][e] = core.observe(self.features[e], sim).state
                en, rq, fl, ret = self._acc[e]
                info["episodes"].append({"env": e, "episode": int(self.episode[e]), "return": ret,
                                         "energy_per_mu_slot": en / (n * self.slots),
                                         "failure_ratio": fl / rq if rq else 0.0})
                self.episode[e] += 1
                self._start(e)
        return self.observe(), reward, done, info

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
