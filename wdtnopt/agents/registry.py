"""The algorithm registry: names, classes, configs and the :class:`Agent` protocol (docs/agents.md).

The trainer, checkpoints and pretrained agents all build agents here, so none of them imports
another (the checkpoint <-> trainer cycle is gone). Importing this module does not import torch;
:func:`algorithm_class` imports the algorithm's module on first use.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from importlib import import_module
from typing import Any, Protocol, runtime_checkable

from ..errors import WdtnoptError
from ..fieldtypes import as_field_type

ALGORITHMS = {
    "beta-happo": "wdtnopt.agents.happo:HAPPO",
    "gaussian-happo": "wdtnopt.agents.gaussian_happo:GaussianHAPPO",
    "beta-mappo": "wdtnopt.agents.mappo:MAPPO",
    "maddpg": "wdtnopt.agents.maddpg:MADDPG",
}
"""Algorithm name -> "module:class"."""

COUNT_FIELDS = frozenset({"n_envs", "rollout_steps", "episode_slots", "hidden", "critic_hidden", "ppo_epochs",
                          "minibatches", "critic_epochs", "critic_minibatches", "torch_threads", "buffer_size",
                          "batch_size", "updates_per_iteration"})
"""Config fields that count something and must be >= 1 (0 steps, layers or samples learns nothing)."""

UNIT_FIELDS = frozenset({"gamma", "gae_lambda", "tau"})
"""Config fields in [0, 1]: the discount, the GAE lambda and MADDPG's Polyak factor (docs/agents.md)."""

STEP_SIZE_FIELDS = frozenset({"actor_lr", "ctrl_actor_lr", "bs_actor_lr", "critic_lr"})
"""Config fields that are Adam step sizes and must be >= 0 (0 holds those networks where they start)."""

POSITIVE_FIELDS = frozenset({"clip", "adam_eps", "huber_delta", "max_grad_norm", "gumbel_tau"})
"""Config fields that must be > 0: PPO's clip range (0 or less froze or inverted the ratio's
clip), Adam's epsilon (0 divided 0 by 0 on a zero gradient), the Huber loss's delta and the
gradient-norm clip (0 zeroed every gradient; a negative one reversed them) and the Gumbel-softmax
temperature."""

NONNEGATIVE_FIELDS = frozenset({"noise_std", "warmup_steps", "entropy_coef", "ctrl_entropy_coef"})
"""Config fields that must be >= 0: MADDPG's exploration noise (a standard deviation) and its
warm-up (a count of transitions), and the entropy bonus weights (a negative one is a penalty on
exploration that drives the policies to collapse, not a bonus)."""

MAX_POWER_DECADES = 300.0
"""Largest ``power_decades`` (docs/agents.md, "Actions and heads"): ``10^decades`` must stay a float
(about 308 decades); a larger one overflowed in the first rollout of the ``raw`` map."""

MAX_BS_TILT = 300.0
"""Largest ``bs_tilt`` (docs/agents.md, "KKT BS map"): the tilt ``exp(bs_tilt (2u - 1))`` times a
server's CPU (Hz) must stay a float; 1e8 gave infinite weights and an "infeasible decision" error
that did not name the field."""

FLOAT32_MAX = 3.4028234663852886e38
"""Largest float32: the networks compute in float32, so a larger step size, clip range or stay
logit could not be converted and ended in torch's traceback."""

LEGACY_CONFIG = {"action_map": "raw", "credit": "team", "bs_map": "raw", "bs_learn": True}
"""What a checkpoint written before the structured maps, local credit and fixed KKT BSs existed was
trained with (``bs_learn``: BSs under the "kkt" map learned their tilt)."""


@runtime_checkable
class Agent(Protocol):
    """What the trainer, checkpoints and :class:`~wdtnopt.agents.checkpoint.CheckpointPolicy` need
    from an algorithm (all four satisfy it: tested).

    ``spec`` is the :class:`~wdtnopt.agents.core.EnvSpec` (with the action map), ``actors`` the
    ``torch.nn.ModuleDict`` of the ``mu``, ``bs`` and ``controller`` actor groups.
    """

    name: str
    spec: Any
    cfg: Any
    actors: Any

    def act(self, obs: Any, deterministic: bool = True) -> dict[str, Any]:
        """Normalized actions {type: [E, A, D]} for a :class:`~wdtnopt.env.BatchObs`."""

    def iterate(self, env: Any, obs: Any) -> tuple[Any, dict[str, float]]:
        """Collect and update once; the next observation and the iteration's metrics."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training exactly (tensors and plain data)."""

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""


def algorithm_class(name: str) -> type:
    """The class registered under ``name``; an unknown name raises :class:`WdtnoptError`."""
    if name not in ALGORITHMS:
        raise WdtnoptError(f"algo: unknown algorithm {name!r}; expected one of {', '.join(ALGORITHMS)}")
    module, attr = ALGORITHMS[name].split(":")
    return getattr(import_module(module), attr)


HEAD_ALGOS = {"beta": "beta-happo", "gaussian": "gaussian-happo"}
"""The algorithm named for each continuous action head: a run's name says its head (docs/agents.md)."""


def make_config(cls: type, overrides: dict[str, Any] | None, *, stored: bool = False) -> Any:
    """The algorithm's config dataclass with ``overrides``; unknown keys raise WdtnoptError.

    ``head`` is fixed by the algorithm (its name says it): another head is refused, naming the
    algorithm that has it, unless ``stored`` (a checkpoint written before the refusal loads as it was).
    """
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise WdtnoptError(f"config: unknown option(s) {', '.join(unknown)} for {cls.name}; "
                           f"known: {', '.join(fields)}")
    own = fields["head"].default if "head" in fields else None
    if not stored and "head" in overrides and overrides["head"] != own:
        other = HEAD_ALGOS.get(overrides["head"]) if isinstance(overrides["head"], str) else None
        instead = f"; for a {overrides['head']} head use algo {other}" if other else ""
        raise WdtnoptError(f"config: head: {cls.name} always uses the {own} head, got {overrides['head']!r}{instead}")
    hints = typing.get_type_hints(cls.Config)
    return cls.Config(**{k: _typed(k, v, hints[k]) for k, v in overrides.items()})


def _typed(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the config field's type (wdtnopt/fieldtypes.py); else :class:`WdtnoptError` naming
    the field and the form expected. Counts (:data:`COUNT_FIELDS`) must be >= 1, numbers finite,
    :data:`UNIT_FIELDS` in [0, 1], step sizes (:data:`STEP_SIZE_FIELDS`) >= 0, :data:`POSITIVE_FIELDS`
    > 0 and :data:`NONNEGATIVE_FIELDS` >= 0."""
    out, want = as_field_type(value, hint)
    if want is None and isinstance(out, float) and not math.isfinite(out):
        want = "a finite number"
    elif want is None and isinstance(out, float) and abs(out) > FLOAT32_MAX:   # torch works in float32
        want = f"a number within float32's range (at most {FLOAT32_MAX:.4g} in magnitude)"
    if want is not None:
        raise WdtnoptError(f"config: {key}: expected {want}, got {value!r}")
    if key in COUNT_FIELDS and out < 1:
        raise WdtnoptError(f"config: {key}: expected an integer >= 1, got {value!r}")
    if key in UNIT_FIELDS and not 0.0 <= out <= 1.0:   # a discount of 2 trained on diverging returns, silently
        raise WdtnoptError(f"config: {key}: expected a number in [0, 1], got {value!r}")
    if key in STEP_SIZE_FIELDS and out is not None and out < 0.0:   # a negative step size ascends the loss
        raise WdtnoptError(f"config: {key}: expected a step size >= 0, got {value!r}")
    if key in POSITIVE_FIELDS and not out > 0:
        raise WdtnoptError(f"config: {key}: expected a number > 0, got {value!r}")
    if key in NONNEGATIVE_FIELDS and out < 0:
        raise WdtnoptError(f"config: {key}: expected a number >= 0, got {value!r}")
    if key == "power_decades" and out > MAX_POWER_DECADES:
        raise WdtnoptError(f"config: {key}: expected at most {MAX_POWER_DECADES:g} decades, got {value!r}")
    if key == "bs_tilt" and out > MAX_BS_TILT:
        raise WdtnoptError(f"config: {key}: expected at most {MAX_BS_TILT:g}, got {value!r}")
    return out


def stored_config(cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """A config read from a checkpoint, with :data:`LEGACY_CONFIG` for the keys it lacks."""
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    return {**{k: v for k, v in LEGACY_CONFIG.items() if k in fields}, **dict(config)}


def build_agent(algo: str, scenario: Any, config: dict[str, Any], seed: int, path: Any = None) -> Any:
    """A fresh agent of ``algo`` for ``scenario`` with a stored ``config``; keys a stored config lacks
    take their :data:`LEGACY_CONFIG` values (what older checkpoints were trained with)."""
    from .core import EnvSpec
    try:
        cls = algorithm_class(algo)
        config = stored_config(cls, config)
        cfg = make_config(cls, config, stored=True)
    except (WdtnoptError, TypeError) as exc:
        where = f"checkpoint {path}: " if path is not None else ""
        raise WdtnoptError(f"{where}{exc}") from None
    return cls(EnvSpec.from_scenario(scenario), cfg, seed)
