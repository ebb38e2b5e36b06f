"""The PettingZoo ``ParallelEnv`` of the WDTN (docs/env.md)."""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ..errors import WdtnoptError
from ..scenario import Scenario
from ..simulation import SimState
from ..trace import generate_trace
from . import core


def agent_names(n_mus: int, n_bss: int) -> list[str]:
    return [f"mu_{i}" for i in range(n_mus)] + [f"bs_{j}" for j in range(n_bss)] + ["controller"]


def check_args(scenario: Any, slots: Any) -> Scenario:
    sc = Scenario.paper() if scenario is None else scenario
    if not isinstance(sc, Scenario):
        raise WdtnoptError(f"scenario: expected a wdtnopt.Scenario, got {type(sc).__name__}")
    if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or slots < 1:
        raise WdtnoptError(f"slots: expected an integer >= 1, got {slots!r}")
    return sc


class WdtnParallelEnv(ParallelEnv):
    """MU, BS and controller agents acting on one trace per episode; team reward (MODEL.md section 7).

    ``reset(seed=s)`` generates the trace of seed ``s``; ``reset()`` draws the next trace seed from
    the generator seeded at construction. An episode is ``slots`` slots and ends by truncation.
    """

    metadata = {"name": "wdtn_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, scenario: Scenario | None = None, seed: int | None = None, slots: int = 100,
                 render_mode: str | None = None):
        self.scenario = check_args(scenario, slots)
        self.slots = int(slots)
        self.render_mode = render_mode
        self._seed_rng = np.random.default_rng(seed)
        n, m = self.scenario.n_mus, self.scenario.n_bss
        self.possible_agents = agent_names(n, m)
        self.agents: list[str] = []
        dims = core.obs_dims(n, m)

        def box(d: int) -> spaces.Box:
            return spaces.Box(low=-1.0, high=np.inf, shape=(d,), dtype=np.float32)
        p_max = np.float32(self.scenario.p_max_w)
        self._obs_spaces: dict[str, spaces.Space] = {}
        self._act_spaces: dict[str, spaces.Space] = {}
        for a in self.possible_agents:
            kind = a.split("_")[0]
            self._obs_spaces[a] = box(dims[kind])
            if kind == "mu":
                self._act_spaces[a] = spaces.Box(low=np.float32(0.0), high=p_max, shape=(1,), dtype=np.float32)
            elif kind == "bs":
                self._act_spaces[a] = spaces.Box(low=0.0, high=1.0, shape=(n,), dtype=np.float32)
            else:
                self._act_spaces[a] = spaces.MultiDiscrete(np.full(n, m, dtype=np.int64))
        self.state_space = box(dims["state"])
        self.trace = None
        self.sim: SimState | None = None
        self.last_step: core.StepResult | None = None
        self._obs: core.Observation | None = None

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        trace_seed = int(seed) if seed is not None else int(self._seed_rng.integers(2**31))
        if seed is not None:
            self._seed_rng = np.random.default_rng(seed)
        self.trace = generate_trace(self.scenario, seed=trace_seed, slots=self.slots)
        self.features = core.Features(self.trace)
        self.sim = SimState(self.trace)
        self.agents = list(self.possible_agents)
        self.last_step = None
        self._obs = core.observe(self.features, self.sim)
        return self._agent_obs(), self._infos(None)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self.sim is None or not self.agents:
            raise WdtnoptError("step() called before reset() or after the episode ended")
        n, m = self.scenario.n_mus, self.scenario.n_bss
        power = np.array([np.asarray(actions.get(f"mu_{i}", 0.0), float).reshape(-1)[0] for i in range(n)])
        weights = np.stack([np.asarray(actions.get(f"bs_{j}", np.ones(n)), float).reshape(n) for j in range(m)])
        hosts = np.asarray(actions.get("controller", self.sim.placement), np.int64).reshape(n)
        res = core.step(self.sim, power, weights, hosts)
        self.last_step = res
        self._obs = core.observe(self.features, self.sim)
        obs = self._agent_obs()
        infos = self._infos(res)
        rewards = {a: res.reward for a in self.agents}
        done = self.sim.done
        terminations = {a: False for a in self.agents}
        truncations = {a: done for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        if self._obs is None:
            raise WdtnoptError("state() called before reset()")
        return self._obs.state.astype(np.float32)

    def _agent_obs(self) -> dict[str, np.ndarray]:
        o = self._obs
        out: dict[str, np.ndarray] = {}
        for i in range(self.scenario.n_mus):
            out[f"mu_{i}"] = o.mu[i].astype(np.float32)
        for j in range(self.scenario.n_bss):
            out[f"bs_{j}"] = o.bs[j].astype(np.float32)
        out["controller"] = o.controller.astype(np.float32)
        return out

    def _infos(self, res: core.StepResult | None) -> dict[str, dict]:
        infos: dict[str, dict] = {a: {} for a in self.possible_agents}
        infos["controller"]["action_mask"] = self._obs.ctrl_mask.astype(np.int8)
        if res is not None:
            for i in range(self.scenario.n_mus):
                infos[f"mu_{i}"]["action_used"] = bool(res.mu_used[i])
            for j in range(self.scenario.n_bss):
                infos[f"bs_{j}"]["action_used"] = res.bs_used[j].copy()
            infos["controller"]["action_used"] = bool(res.ctrl_used)
            for a in self.possible_agents:
                infos[a]["energy_j"] = res.evaluation.energy_total
                infos[a]["failures"] = res.evaluation.n_failed
        return {a: infos[a] for a in (self.agents or self.possible_agents)}

    def render(self) -> None:
        return None

    def close(self) -> None:
        pass


def parallel_env(scenario: Scenario | None = None, seed: int | None = None, slots: int = 100,
                 render_mode: str | None = None) -> WdtnParallelEnv:
    """The WDTN PettingZoo ``ParallelEnv`` (see :class:`WdtnParallelEnv`)."""
    return WdtnParallelEnv(scenario=scenario, seed=seed, slots=slots, render_mode=render_mode)
