"""The PettingZoo ``ParallelEnv`` of the WDTN, and its AEC form ``env()`` (docs/env.md)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterable

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ..errors import UnknownAgentError, WdtnoptError
from ..scenario import Scenario
from ..simulation import SimState
from ..processes.mobility import resolve_mobility
from ..trace import generate_trace
from . import core
from .render import Frame, HumanWindow, rgb_array
from .spaces import mask_rows, obs_bounds

RENDER_MODES = ("human", "rgb_array")


def agent_names(n_mus: int, n_bss: int) -> list[str]:
    return [f"mu_{i}" for i in range(n_mus)] + [f"bs_{j}" for j in range(n_bss)] + ["controller"]


def check_args(scenario: Any, slots: Any) -> Scenario:
    sc = Scenario.paper() if scenario is None else scenario
    if not isinstance(sc, Scenario):
        raise WdtnoptError(f"scenario: expected a wdtnopt.Scenario, got {type(sc).__name__}")
    if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or slots < 1:
        raise WdtnoptError(f"slots: expected an integer >= 1, got {slots!r}")
    return sc


def check_seed(seed: Any) -> Any:
    """``seed`` if None or an integer >= 0 (a trace seed); else :class:`WdtnoptError` naming it."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise WdtnoptError(f"seed: expected None or an integer >= 0, got {seed!r}")
    return seed


def episode_slots(slots: int | None, max_cycles: int | None) -> int:
    """``slots``, or PettingZoo's name for it, ``max_cycles`` (default 100; both given must agree)."""
    if max_cycles is not None and (isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer))
                                   or max_cycles < 1):
        raise WdtnoptError(f"max_cycles: expected an integer >= 1, got {max_cycles!r}")
    if slots is not None and max_cycles is not None and slots != max_cycles:
        raise WdtnoptError(f"max_cycles: an alias of slots, got max_cycles={max_cycles!r} and slots={slots!r}")
    return 100 if slots is None and max_cycles is None else (slots if slots is not None else max_cycles)


def _names(keys: Iterable[Any]) -> str:
    return ", ".join(repr(k) for k in keys)


class WdtnParallelEnv(ParallelEnv):
    """MU, BS and controller agents acting on one trace per episode; team reward (docs/model.md, section 7).

    ``reset(seed=s)`` generates the trace of seed ``s``; ``reset()`` draws the next trace seed from
    the generator seeded at construction. An episode is ``slots`` slots and ends by truncation.

    Parameters
    ----------
    scenario : Scenario, optional
        The network (N MUs, M BSs, ...); default ``Scenario.paper()``.
    seed : int, optional
        Seed of the generator of trace seeds used by ``reset()`` without a seed.
    slots : int, optional
        Episode length in slots (default 100).
    render_mode : {None, "rgb_array", "human"}, optional
        ``"rgb_array"``: ``render()`` returns the picture of the last slot as an ``[H, W, 3]`` uint8
        array; ``"human"``: a matplotlib window is redrawn at every reset and step.
    max_cycles : int, optional
        PettingZoo's name of ``slots`` (an alias; if both are given they must be equal).
    strict_actions : bool, optional
        If True (default), ``step`` raises when an agent alive in the episode has no action (absent,
        None, or with a semantic menu a MU's dict without ``"power"``); False lets such agents take
        the neutral action (power 0, CPU weights 1, DTs stay; a MU's level still applies).
        An unknown agent name is an error in both cases.

    mobility : None, MobilitySource, str or os.PathLike, optional
        Where MU positions come from, passed to :func:`~wdtnopt.generate_trace` (None:
        Gauss-Markov; a replayed file gives every episode the same positions, docs/mobility.md).

    Raises
    ------
    WdtnoptError
        If ``scenario`` is not a :class:`~wdtnopt.Scenario`, ``slots`` is not an integer >= 1,
        ``max_cycles`` disagrees with ``slots`` or ``render_mode`` is not one of the modes above.
    """

    metadata = {"name": "wdtn_v0", "render_modes": list(RENDER_MODES), "is_parallelizable": True,
                "render_fps": 2}

    def __init__(self, scenario: Scenario | None = None, seed: int | None = None, slots: int | None = None,
                 render_mode: str | None = None, *, max_cycles: int | None = None, strict_actions: bool = True,
                 mobility: Any = None):
        slots = episode_slots(slots, max_cycles)
        self.scenario = check_args(scenario, slots)
        self.mobility = resolve_mobility(mobility)
        self.slots = int(slots)
        self.max_cycles = self.slots
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise WdtnoptError(f"render_mode: expected None or one of {_names(RENDER_MODES)}, got {render_mode!r}")
        self.render_mode = render_mode
        self.strict_actions = bool(strict_actions)
        self._window = HumanWindow() if render_mode == "human" else None
        self._frame: Frame | None = None
        self._seed_rng = np.random.default_rng(check_seed(seed))
        n, m = self.scenario.n_mus, self.scenario.n_bss
        self.possible_agents = agent_names(n, m)
        self.agents: list[str] = []
        bounds = obs_bounds(n, m, self.scenario.server_failures)

        def box(kind: str) -> spaces.Box:
            return spaces.Box(low=bounds[kind][0], high=bounds[kind][1], dtype=np.float32)
        p_max = np.float32(self.scenario.p_max_w)
        self._obs_spaces: dict[str, spaces.Space] = {}
        self._act_spaces: dict[str, spaces.Space] = {}
        for a in self.possible_agents:
            kind = a.split("_")[0]
            self._obs_spaces[a] = box(kind)
            if kind == "mu":
                power_space = spaces.Box(low=np.float32(0.0), high=p_max, shape=(1,), dtype=np.float32)
                levels = self.scenario.semantic_levels
                # with a semantic menu a MU also picks its compression level: a categorical
                # (docs/env.md); its allowed levels are the info's "level_mask"
                self._act_spaces[a] = (spaces.Dict({"power": power_space, "level": spaces.Discrete(levels)})
                                       if levels > 0 else power_space)
            elif kind == "bs":
                self._act_spaces[a] = spaces.Box(low=0.0, high=1.0, shape=(n,), dtype=np.float32)
            else:
                self._act_spaces[a] = spaces.MultiDiscrete(np.full(n, m, dtype=np.int64))
        self.state_space = box("state")
        self.trace = None
        self.sim: SimState | None = None
        self.last_step: core.StepResult | None = None
        self._obs: core.Observation | None = None

    def _agents_phrase(self) -> str:
        def span(kind: str, count: int) -> str:   # one agent of a kind is named alone, not "bs_0..bs_0"
            return f"{kind}_0" if count == 1 else f"{kind}_0..{kind}_{count - 1}"
        return f"the agents are {span('mu', self.scenario.n_mus)}, {span('bs', self.scenario.n_bss)} and controller"

    def _space(self, spaces_of: dict, what: str, agent: str) -> spaces.Space:
        try:
            return spaces_of[agent]
        except (KeyError, TypeError):   # TypeError: an unhashable name such as a list
            raise UnknownAgentError(f"{what}: unknown agent {agent!r}; {self._agents_phrase()}") from None

    def observation_space(self, agent: str) -> spaces.Space:
        """The observation space of ``agent`` (one of ``possible_agents``).

        Raises
        ------
        UnknownAgentError
            ``agent`` is not one of ``possible_agents`` (a ``WdtnoptError`` and a ``KeyError``).
        """
        return self._space(self._obs_spaces, "observation_space", agent)

    def action_space(self, agent: str) -> spaces.Space:
        """The action space of ``agent`` (one of ``possible_agents``).

        Raises
        ------
        UnknownAgentError
            ``agent`` is not one of ``possible_agents`` (a ``WdtnoptError`` and a ``KeyError``).
        """
        return self._space(self._act_spaces, "action_space", agent)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        trace_seed = int(check_seed(seed)) if seed is not None else int(self._seed_rng.integers(2**31))
        if seed is not None:
            self._seed_rng = np.random.default_rng(seed)
        self.trace = generate_trace(self.scenario, seed=trace_seed, slots=self.slots, mobility=self.mobility)
        self.features = core.Features(self.trace)
        self.sim = SimState(self.trace)
        self.agents = list(self.possible_agents)
        self.last_step = None
        self._obs = core.observe(self.features, self.sim)
        self._frame = self._make_frame(None, self.sim.placement)
        if self.render_mode == "human":
            self.render()
        return self._agent_obs(), self._infos(None)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self.sim is None or not self.agents:
            raise WdtnoptError("step() called before reset() or after the episode ended")
        n, m = self.scenario.n_mus, self.scenario.n_bss
        self._check_keys(actions)
        level = None
        if self.scenario.semantic_levels > 0:
            actions, level = self._split_levels(actions)
        power = np.array([self._action(actions, f"mu_{i}", 1, 0.0)[0] for i in range(n)])
        weights = np.stack([self._action(actions, f"bs_{j}", n, 1.0) for j in range(m)])
        hosts = self._action(actions, "controller", n, self.sim.placement)   # out of 0..M-1: stay (core)
        before = self.sim.placement.copy()
        res = core.step(self.sim, power, weights, hosts, level)
        self.last_step = res
        self._frame = self._make_frame(res, before)
        if self.render_mode == "human":
            self.render()
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

    def _check_keys(self, actions: Any) -> None:
        """Unknown agents are always an error; missing ones unless ``strict_actions`` is False."""
        if not isinstance(actions, dict):
            raise WdtnoptError(f"actions: expected a dict from agent name to action, got {type(actions).__name__}")
        unknown = [k for k in actions if k not in self.agents]
        # None is no action (PettingZoo's AEC form steps dead agents with None); it was silently the
        # neutral one, as was a semantic MU's dict without its power
        semantic = self.scenario.semantic_levels > 0
        missing = [a for a in self.agents if actions.get(a) is None
                   or (semantic and a.startswith("mu_") and isinstance(actions[a], dict)
                       and actions[a].get("power") is None)]
        if unknown:
            raise WdtnoptError(f"actions: unknown agent(s) {_names(unknown)}; {self._agents_phrase()}")
        if missing and self.strict_actions:
            raise WdtnoptError(f"actions: no action for agent(s) {_names(missing)} (absent, None, or a MU's dict "
                               "without 'power'; every agent acts every slot; pass strict_actions=False to let "
                               "them take the neutral action)")

    def _split_levels(self, actions: dict) -> tuple[dict, np.ndarray]:
        """MU actions ``{"power", "level"}`` of a scenario with a semantic menu: the actions with
        each MU's power alone, and the levels [N] (a level off the MU's menu -- outside ``0 .. L-1``
        or below its minimum accuracy -- or none means 0: :func:`core.allowed_level`)."""
        n, L = self.scenario.n_mus, self.scenario.semantic_levels
        out = dict(actions)
        level = np.zeros(n)
        for i in range(n):
            a = actions.get(f"mu_{i}")
            if isinstance(a, dict):
                extra = sorted(str(k) for k in a if k not in ("power", "level"))
                if extra:   # a typo such as "levle" would otherwise mean level 0
                    raise WdtnoptError(f"actions['mu_{i}']: unknown key(s) {', '.join(map(repr, extra))}; "
                                       "expected 'power' and 'level'")
                out[f"mu_{i}"] = a.get("power")   # None (strict_actions=False): power 0
                raw = a.get("level", 0)
                try:
                    v = np.asarray(raw, float).reshape(-1)
                except (TypeError, ValueError):
                    v = np.array([np.nan, np.nan])
                if v.size != 1 or not np.isfinite(v[0]):   # a word, None, NaN or several values
                    raise WdtnoptError(f"actions['mu_{i}']['level']: expected one level number (Discrete({L})), "
                                       f"got {type(raw).__name__} {raw!r:.60}")
                level[i] = v[0]
        return out, core.allowed_level(SimpleNamespace(**self.trace.levels), level)

    def _action(self, actions: dict, agent: str, size: int, default: Any) -> np.ndarray:
        """Agent ``agent``'s action as a float array of ``size`` values (``default`` if absent)."""
        raw = actions.get(agent)
        try:
            a = np.broadcast_to(np.asarray(default, float), (size,)) if raw is None else np.asarray(raw, float)
        except (TypeError, ValueError):
            raise WdtnoptError(f"actions[{agent!r}]: expected {size} number(s) ({self._act_spaces[agent]}), "
                               f"got {type(raw).__name__} {raw!r:.60}") from None
        if a.size != size:
            raise WdtnoptError(f"actions[{agent!r}]: expected {size} value(s) ({self._act_spaces[agent]}), "
                               f"got shape {a.shape}")
        if np.isnan(a).any():
            raise WdtnoptError(f"actions[{agent!r}]: expected numbers ({self._act_spaces[agent]}), got NaN")
        return a.reshape(size)

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
        """Every key from reset on (clients such as TorchRL size their specs from the reset infos);
        after reset no action was used and the slot's totals are 0."""
        n, m = self.scenario.n_mus, self.scenario.n_bss
        infos: dict[str, dict] = {a: {} for a in self.possible_agents}
        infos["controller"]["action_mask"] = mask_rows(self._obs.ctrl_mask)
        for i in range(n):
            infos[f"mu_{i}"]["action_used"] = bool(res.mu_used[i]) if res is not None else False
        for j in range(m):
            infos[f"bs_{j}"]["action_used"] = res.bs_used[j].copy() if res is not None else np.zeros(n, bool)
        infos["controller"]["action_used"] = bool(res.ctrl_used) if res is not None else False
        for a in self.possible_agents:
            infos[a]["energy_j"] = float(res.evaluation.energy_total) if res is not None else 0.0
            infos[a]["failures"] = int(res.evaluation.n_failed) if res is not None else 0
        if self.trace is not None and self.trace.levels is not None:
            allowed = self.trace.levels["level_accuracy"] >= self.trace.levels["min_accuracy"][:, None]
            for i in range(n):
                infos[f"mu_{i}"]["level_mask"] = allowed[i].astype(np.int8)
        return {a: infos[a] for a in (self.agents or self.possible_agents)}

    def _make_frame(self, res: core.StepResult | None, before: np.ndarray) -> Frame:
        tr = self.trace
        t = self.sim.t - 1 if res is not None else self.sim.t
        x = res.snapshot.placement_prev if res is not None else self.sim.placement
        load = np.bincount(x, weights=tr.dt_size_bits, minlength=tr.n_bss)
        return Frame(t=t, placement=x.copy(), moved_from=np.where(x != before, before, -1),
                     failed=res.evaluation.failed.copy() if res is not None else np.zeros(tr.n_mus, bool),
                     request=tr.request[t].copy(), free_storage=1.0 - load / tr.storage_bits,
                     reward=res.reward if res is not None else None)

    def render(self) -> np.ndarray | None:
        """The last slot drawn (docs/env.md, "Rendering").

        Returns
        -------
        numpy.ndarray or None
            ``[H, W, 3]`` uint8 RGB picture when ``render_mode="rgb_array"``; None otherwise (in
            ``"human"`` mode the window is redrawn; without a render mode nothing is drawn).

        Raises
        ------
        WdtnoptError
            If called before ``reset()``.
        """
        if self.render_mode is None:
            return None
        if self._frame is None:
            raise WdtnoptError("render() called before reset()")
        if self.render_mode == "rgb_array":
            return rgb_array(self.trace, self._frame)
        self._window.show(self.trace, self._frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()


def parallel_env(scenario: Scenario | None = None, seed: int | None = None, slots: int | None = None,
                 render_mode: str | None = None, *, max_cycles: int | None = None,
                 strict_actions: bool = True, mobility: Any = None) -> WdtnParallelEnv:
    """The WDTN PettingZoo ``ParallelEnv``.

    Parameters and errors: see :class:`WdtnParallelEnv` (``slots`` defaults to 100; ``max_cycles``
    is its PettingZoo alias).

    Returns
    -------
    WdtnParallelEnv
        Agents ``mu_0..mu_{N-1}`` (power, W), ``bs_0..bs_{M-1}`` (CPU weights ``[N]``) and
        ``controller`` (host of every DT, ``MultiDiscrete([M] * N)``); call ``reset`` first.
    """
    return WdtnParallelEnv(scenario=scenario, seed=seed, slots=slots, render_mode=render_mode,
                           max_cycles=max_cycles, strict_actions=strict_actions, mobility=mobility)


def env(*args: Any, **kwargs: Any):
    """The WDTN environment in PettingZoo's AEC form (agents act one after another).

    It is :func:`parallel_env` converted by ``pettingzoo.utils.parallel_to_aec``: the actions are
    collected agent by agent in the order of ``possible_agents`` and the slot is stepped when the
    last agent (the controller) has acted, so both forms give the same episodes.

    Parameters
    ----------
    *args, **kwargs
        Those of :func:`parallel_env` (``scenario``, ``seed``, ``slots``, ``render_mode``,
        ``max_cycles``, ``strict_actions``, ``mobility``, ...).

    Returns
    -------
    pettingzoo.AECEnv
        The AEC environment (wrapped by PettingZoo's order-enforcing wrapper).

    Raises
    ------
    WdtnoptError
        As for :class:`WdtnParallelEnv`.
    """
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(parallel_env(*args, **kwargs))
