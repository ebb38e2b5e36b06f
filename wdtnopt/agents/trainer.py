"""The training loop shared by every algorithm: batched environments, iterations, checkpoints."""
from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..env import BatchedWdtnEnv
from ..errors import WdtnoptError
from ..scenario import Scenario
from .checkpoint import CHECKPOINT_FILE, load_agent_state, read_checkpoint, write_checkpoint
from .core import EnvSpec
from .registry import algorithm_class, build_agent, make_config, stored_config  # noqa: F401 - re-exported


class Trainer:
    """One training run: ``algo`` on ``scenario`` under ``seed``; ``train_iteration`` until done.

    Parameters
    ----------
    algo : str
        ``"beta-happo"``, ``"gaussian-happo"``, ``"beta-mappo"`` or ``"maddpg"`` (docs/agents.md).
    scenario : Scenario
        The training scenario (N MUs, M BSs).
    seed : int, optional
        Seed of the networks, sampling and traces (an integer >= 0).
    config : dict, optional
        Overrides of the algorithm's config fields (docs/agents.md, "Configs"); each is checked.
    mobility : str, os.PathLike, FcdFile or TableFile, optional
        A mobility file (or ``sumo-grid:`` spec) replayed for MU positions (docs/mobility.md); a
        file source with other than the default cleaning settings is refused (a checkpoint keeps
        the path only). None: Gauss-Markov.

    Raises
    ------
    WdtnoptError
        A bad scenario, seed or config value (naming the field); networks or environments whose
        allocation fails (naming the sizes; ``wdtnopt train`` also refuses networks beyond the
        memory before building them); from :meth:`train_iteration`, an iteration that leaves a
        network's weights non-finite (naming the networks and the step sizes to lower).
    """

    def __init__(self, algo: str, scenario: Scenario, seed: int = 0, config: dict[str, Any] | None = None,
                 mobility: str | None = None):
        if not isinstance(scenario, Scenario):
            raise WdtnoptError(f"scenario: expected a wdtnopt.Scenario, got {type(scenario).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise WdtnoptError(f"seed: expected an integer >= 0, got {seed!r}")
        if config is not None and not isinstance(config, dict):
            raise WdtnoptError(f"config: expected a dict of config fields, got {type(config).__name__}")
        self.algo, self.scenario, self.seed = algo, scenario, int(seed)
        # a mobility file (docs/mobility.md) is kept by path, so a checkpoint can resume on it
        self.mobility = _mobility_path(mobility)
        cls = algorithm_class(algo)
        self.config = make_config(cls, config)
        torch.set_num_threads(self.config.torch_threads)
        try:
            self.agent = cls(EnvSpec.from_scenario(scenario), self.config, self.seed)
            self.env = BatchedWdtnEnv(scenario, self.config.n_envs, self.seed, self.config.episode_slots,
                                      self.mobility, mu_action=self.agent.spec.mu_action,
                                      bs_action=self.agent.spec.bs_action)
            self.obs = self.env.reset()
        except (MemoryError, RuntimeError) as exc:   # torch's allocator raises RuntimeError
            if isinstance(exc, RuntimeError) and "allocate" not in str(exc):
                raise
            sizes = ", ".join(f"{k}={getattr(self.config, k)}" for k in ("hidden", "critic_hidden", "n_envs",
                                                                         "episode_slots", "buffer_size")
                              if hasattr(self.config, k))
            first = (str(exc).strip().splitlines() or ["an allocation failed"])[0]
            raise WdtnoptError(f"config: out of memory building the networks and environments ({sizes}): "
                               f"{first}") from None
        self.iteration = 0
        self.env_steps = 0
        # the run's own torch generator state: each call below starts from it and leaves the
        # global generator there, so two trainers in one process (or torch draws between calls)
        # do not shift each other's streams; one trainer alone draws exactly as before
        self._torch_rng = torch.get_rng_state()

    @property
    def steps_per_iteration(self) -> int:
        return self.config.n_envs * self.config.rollout_steps

    def train_iteration(self) -> dict[str, float]:
        """Collect and update once; the metrics of the iteration (reward, energy, losses, SPS...)."""
        t0 = time.perf_counter()
        torch.set_rng_state(self._torch_rng)
        self.obs, stats = self.agent.iterate(self.env, self.obs)
        self._torch_rng = torch.get_rng_state()
        diverged = non_finite_networks(self.agent)
        if diverged:   # else the next rollout sampled from NaN parameters and died in torch's traceback
            raise WdtnoptError(f"training diverged in iteration {self.iteration + 1}: weights that are not finite "
                               f"in {', '.join(diverged)}; lower the step sizes (actor_lr, ctrl_actor_lr, "
                               "bs_actor_lr, critic_lr)")
        dt = time.perf_counter() - t0
        self.iteration += 1
        self.env_steps += self.steps_per_iteration
        return {"iteration": self.iteration, "env_steps": self.env_steps, **{k: float(v) for k, v in stats.items()},
                "sps": self.steps_per_iteration / dt}

    def evaluate_policy(self, episodes: int = 4, seed: int = 10_000, deterministic: bool = True) -> dict[str, float]:
        """Mean team reward per slot, energy per MU per slot (J) and failure ratio of the current
        policy on ``episodes`` traces (a separate environment; training state is untouched).

        Parameters
        ----------
        episodes : int, optional
            Number of evaluation episodes (environments), each ``episode_slots`` slots.
        seed : int, optional
            Evaluation environment seed: episode ``e`` runs on the trace ``episode_seed(seed, e, 0)``
            (:class:`wdtnopt.env.BatchedWdtnEnv`). The training environments draw theirs from the
            run's seed the same way, so ``seed`` equal to the run's seed evaluates on the first
            training traces (in-sample): that gives a warning (docs/agents.md, "Evaluating a run").
        deterministic : bool, optional
            Act by the policies' modes (True) or sample them (False).

        Returns
        -------
        dict
            ``reward`` (per slot), ``energy_per_mu_slot`` (J) and ``failure_ratio``.

        Raises
        ------
        WdtnoptError
            ``episodes`` is not an integer >= 1, ``seed`` not an integer >= 0, or ``deterministic``
            not a bool.

        Warns
        -----
        UserWarning
            ``seed`` equals the training seed (the traces evaluated on were trained on).
        """
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
            raise WdtnoptError(f"episodes: expected an integer >= 1, got {episodes!r}")   # was named n_envs
        if not isinstance(deterministic, (bool, np.bool_)):   # "no" was truthy: the deterministic policy
            raise WdtnoptError(f"deterministic: expected True or False, got {deterministic!r}")
        if not isinstance(seed, bool) and isinstance(seed, (int, np.integer)) and seed == self.seed:
            # episode_seed(seed, e, 0): the same traces as the training environments' first episodes
            warnings.warn(f"seed: evaluating on seed {seed}, the run's training seed: environment e's trace is the "
                          "one training environment e started on, so this evaluation is in-sample; pass "
                          "another evaluation seed", UserWarning, stacklevel=2)
        env = BatchedWdtnEnv(self.scenario, episodes, seed, self.config.episode_slots, self.mobility,
                             mu_action=self.agent.spec.mu_action,
                                  bs_action=self.agent.spec.bs_action)
        obs = env.reset()
        from .core import to_env
        tot = [0.0, 0.0, 0, 0]
        # draws for a stochastic evaluation (torch's sampling, MADDPG's exploration noise from the
        # agent's numpy generator) must not shift the training run's streams
        rng = getattr(self.agent, "rng", None)
        np_state = None if rng is None else copy.deepcopy(rng.bit_generator.state)
        torch.set_rng_state(self._torch_rng)
        try:
            for _ in range(self.config.episode_slots):
                obs, r, _, info = env.step(*to_env(self.agent.act(obs, deterministic), self.agent.spec))
                tot[0] += r.sum()
                tot[1] += info["energy_j"].sum()
                tot[2] += info["failures"].sum()
                tot[3] += info["requests"].sum()
        finally:
            torch.set_rng_state(self._torch_rng)
            if rng is not None:
                rng.bit_generator.state = np_state
        n = episodes * self.config.episode_slots
        return {"reward": tot[0] / n, "energy_per_mu_slot": tot[1] / (n * self.scenario.n_mus),
                "failure_ratio": tot[2] / max(tot[3], 1)}

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        return write_checkpoint(directory, {
            "algo": self.algo, "scenario": self.scenario.to_dict(), "config": dataclasses.asdict(self.config),
            "seed": self.seed, "mobility": self.mobility, "iteration": self.iteration, "env_steps": self.env_steps,
            "agent": self.agent.state_dict(), "env": self.env.get_state(), "torch_rng": self._torch_rng})

    @classmethod
    def load(cls, directory: str | Path) -> "Trainer":
        """Resume exactly where :meth:`save` left off."""
        payload = read_checkpoint(directory)
        path = Path(directory) / CHECKPOINT_FILE
        try:
            scenario = Scenario.from_dict(dict(payload["scenario"]))
        except WdtnoptError as exc:
            raise WdtnoptError(f"checkpoint {path}: invalid scenario ({exc})") from None
        try:
            mobility = payload.get("mobility")
            tr = cls(payload["algo"], scenario, int(payload["seed"]),
                     stored_config(algorithm_class(payload["algo"]), dict(payload["config"])),
                     None if mobility is None else str(mobility))
        except WdtnoptError as exc:
            raise WdtnoptError(f"checkpoint {path}: {exc}") from None
        load_agent_state(tr.agent, payload["agent"], path)
        try:
            tr.env.set_state(payload["env"])
            torch.set_rng_state(payload["torch_rng"])
            tr._torch_rng = torch.get_rng_state()
        except (WdtnoptError, RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise WdtnoptError(f"checkpoint {path}: inconsistent environment or RNG state ({exc})") from None
        tr.obs = tr.env.observe()
        tr.iteration, tr.env_steps = int(payload["iteration"]), int(payload["env_steps"])
        return tr


def non_finite_networks(agent: Any) -> list[str]:
    """Names of the agent's networks (``actors.mu``, ``critic``, ...) with a parameter or buffer that
    is NaN or infinite: a step size far too large for the losses makes the weights overflow."""
    bad = []
    for name, module in vars(agent).items():
        if not isinstance(module, torch.nn.Module):
            continue
        children = dict(module.named_children()) if isinstance(module, torch.nn.ModuleDict) else {"": module}
        for child, net in children.items():
            tensors = [*net.parameters(), *net.buffers()]
            if not all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point()):
                bad.append(f"{name}.{child}" if child else name)
    return bad


def _mobility_path(mobility: Any) -> str | None:
    """What a checkpoint keeps of ``mobility`` (docs/mobility.md): its file path (or ``sumo-grid:...``
    string). A file source object (``load_mobility(path)``, an ``FcdFile`` or ``TableFile``) with
    the default settings is its path; one with other cleaning rules, kinds or projection could not be
    resumed from a path, so it is refused here rather than trained on and then stored wrongly (its
    ``str`` was kept as if it were a path, and the environments found no such file)."""
    import os

    from ..processes.mobility import FcdFile, GaussMarkov, TableFile, load_mobility

    if mobility is None or isinstance(mobility, GaussMarkov):
        return None
    if isinstance(mobility, (str, os.PathLike)):
        return str(mobility)
    if isinstance(mobility, (FcdFile, TableFile)):
        if mobility == load_mobility(mobility.path):
            return str(mobility.path)
        raise WdtnoptError(f"mobility: a checkpoint keeps the mobility file's path, so a {type(mobility).__name__} "
                           "with other cleaning rules, kinds or projection than load_mobility(path) gives cannot be "
                           "resumed; train on the path, or on a file written with the positions you want")
    raise WdtnoptError(f"mobility: expected None, a file path, a 'sumo-grid:...' string or a file source "
                       f"(load_mobility(path)), got {type(mobility).__name__}")
