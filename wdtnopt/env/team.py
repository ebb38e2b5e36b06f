"""The whole team as one Gymnasium agent, for single-agent libraries such as Stable-Baselines3
(docs/env.md, "Training with Stable-Baselines3").

Single-agent libraries take one observation space and one action space, and SB3 accepts no
``Dict``/``Tuple`` action space; the team mixes ``Box`` (MU powers, BS weights) and
``MultiDiscrete`` (the controller's hosts) actions. :class:`TeamEnv` joins them into one ``Box`` in
``[-1, 1]``: ``N`` power entries (scaled to ``[0, p_max]``), ``M * N`` CPU weights (scaled to
``[0, 1]``) and ``N * M`` host scores, decoded as the best-scoring host the controller's action mask
allows (on a tie, the DT's current host if it is among the best, else for DT ``i`` the first of
the best from index ``i mod M`` on, cyclically). The observation is the global state, the reward the team reward.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ..errors import WdtnoptError
from .parallel import WdtnParallelEnv


class TeamEnv(gym.Env):
    """One ``gymnasium.Env`` driving every agent of :class:`WdtnParallelEnv`.

    Parameters
    ----------
    *args, **kwargs
        Those of :class:`WdtnParallelEnv` (``scenario``, ``seed``, ``slots``, ``render_mode``, ...).

    Raises
    ------
    WdtnoptError
        As for :class:`WdtnParallelEnv`.
    """

    metadata = WdtnParallelEnv.metadata

    def __init__(self, *args: Any, **kwargs: Any):
        self.par = WdtnParallelEnv(*args, **kwargs)
        self.render_mode = self.par.render_mode
        n, m = self.par.scenario.n_mus, self.par.scenario.n_bss
        self.observation_space = self.par.state_space
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n + 2 * m * n,), dtype=np.float32)
        self._mask: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        _, infos = self.par.reset(seed=seed, options=options)
        return self.par.state(), self._info(infos)

    def decode(self, action: Any) -> dict[str, np.ndarray]:
        """The per-agent actions of the joint ``action`` (module docstring).

        Raises
        ------
        WdtnoptError
            ``action`` is not ``N + 2 M N`` numbers, or holds a NaN (naming its indices); nothing is
            stepped. Values outside ``[-1, 1]`` (infinities too) are clipped.
        """
        sc = self.par.scenario
        n, m = sc.n_mus, sc.n_bss
        try:
            a = np.asarray(action, float).reshape(-1)
        except (TypeError, ValueError):
            a = None
        if a is None or a.shape != self.action_space.shape:
            raise WdtnoptError(f"action: expected {self.action_space.shape[0]} numbers (N powers, M*N weights, N*M host "
                               f"scores in [-1, 1]), got {np.shape(action) if a is not None else type(action).__name__}")
        nan = np.flatnonzero(np.isnan(a))
        if nan.size:   # a NaN host score silently chose a host; a NaN power or weight named mu_i / bs_j's Box
            raise WdtnoptError(f"action: expected numbers, got NaN at index {', '.join(map(str, nan[:8]))}"
                               f"{', ...' if nan.size > 8 else ''} (0..{n - 1}: powers, {n}..{n + m * n - 1}: CPU "
                               f"weights, {n + m * n}..{n + 2 * m * n - 1}: host scores)")
        a = np.clip(a, -1.0, 1.0)
        power = (a[:n] + 1.0) / 2.0 * sc.p_max_w
        weights = ((a[n:n + m * n] + 1.0) / 2.0).reshape(m, n)
        scores = np.where(self._mask, a[n + m * n:].reshape(n, m), -np.inf)
        out = {f"mu_{i}": power[i:i + 1] for i in range(n)}
        out.update({f"bs_{j}": weights[j] for j in range(m)})
        # ties: DT i takes the first best host from index i mod M on (cyclically), and stays where its
        # current host is among the best. Plain argmax sent every tie to the lowest index (a clipped
        # Gaussian ties at +1 for ~18% of DTs: server 0 got 24% of a symmetric policy's choices,
        # server 4 17%, at N = 30, M = 5)
        best = scores.max(1)
        rank = (np.arange(m)[None, :] - np.arange(n)[:, None]) % m
        choice = np.argmin(np.where(scores >= best[:, None], rank, m), axis=1)
        if self.par.sim is not None:
            cur = self.par.sim.placement
            here = scores[np.arange(n), cur]   # -inf where the mask forbids the current host
            stay = np.isfinite(here) & (here >= best)
            choice = np.where(stay, cur, choice)
        out["controller"] = choice
        return out

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        _, rewards, _, truncations, infos = self.par.step(self.decode(action))
        return (self.par.state(), float(rewards["controller"]), False, bool(truncations["controller"]),
                self._info(infos))

    def _info(self, infos: dict) -> dict:
        self._mask = np.stack(infos["controller"]["action_mask"]).astype(bool)
        c = infos["controller"]
        return {"energy_j": c["energy_j"], "failures": c["failures"], "action_mask": self._mask.copy()}

    def render(self) -> np.ndarray | None:
        return self.par.render()

    def close(self) -> None:
        self.par.close()
