"""Policies: the protocol the simulator drives, and the registry of named policies.

A policy decides the DT placement at frame starts and the power/CPU allocation every slot::

    class MyPolicy(Policy):
        name = "mine"
        def place(self, snapshot, state):      # frame starts: placement[N]
            return snapshot.placement_prev
        def allocate(self, snapshot, state):   # every slot: a Decision
            ...

Registered names: ``static`` and ``follow`` (here), ``lyapunov`` and ``oracle`` (the Lyapunov
scheduler and the myopic oracle), ``predictive`` (placement for where MUs will be over the frame),
``oracle-fa`` and ``lyapunov-fa`` (their failure-aware variants), ``checkpoint:DIR`` (a trained
agent) and ``pretrained:ALGO`` (an agent shipped with the package, docs/agents.md), loaded on first use.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

import numpy as np

from ..errors import WdtnoptError
from ..cost import Decision, Evaluation
from ..snapshot import Snapshot


class Policy:
    """Base class of the policies the simulator drives, with the do-nothing defaults.

    A subclass overrides what it decides: :meth:`place` (placement at frame starts),
    :meth:`allocate` (power and CPU of every slot), and optionally :meth:`penalties`,
    :meth:`observe`, :meth:`reset`, :meth:`extras`. ``allocate`` receives a
    :class:`~wdtnopt.Snapshot` with ``allow_migration=False`` and must return a
    :class:`~wdtnopt.Decision` at ``snapshot.placement_prev``: the environment view (``power [N]``
    W, ``cpu_hz [N]`` cycles/s) or the optimization view (``served [N]``, ``tx_time [N]`` s,
    ``cpu_hz [N]``); ``place`` returns ``placement [N]`` (server indices).
    """

    name = "policy"

    def reset(self, trace: Any) -> None:
        """Called once before the first slot of a run on ``trace``."""
        self.trace = trace

    def penalties(self, state: Any) -> dict[str, Any]:
        """``failure_penalty`` / ``migration_penalty`` to put in the snapshots it sees (default: the trace's)."""
        return {}

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        """Placement at a frame start (``snapshot.allow_migration`` is True). Default: stay."""
        return snapshot.placement_prev

    def allocate(self, snapshot: Snapshot, state: Any) -> Decision:
        raise NotImplementedError

    def observe(self, snapshot: Snapshot, evaluation: Evaluation) -> None:
        """Called after every slot with its evaluation (queues, learning, logging)."""

    def extras(self) -> dict[str, Any]:
        """Anything policy-specific to attach to the SimResult (e.g. queue backlogs)."""
        return {}


# name -> "module:attribute" of a factory; modules import lazily so torch etc. load only when used
_REGISTRY: dict[str, str | Callable[..., Policy]] = {
    "static": "wdtnopt.policies.heuristics:StaticPolicy",
    "follow": "wdtnopt.policies.heuristics:FollowPolicy",
    "lyapunov": "wdtnopt.policies.lyapunov:LyapunovPolicy",
    "oracle": "wdtnopt.policies.lyapunov:MyopicOraclePolicy",
    "predictive": "wdtnopt.policies.predictive:PredictivePolicy",
    "oracle-fa": "wdtnopt.policies.failure_aware:FailureAwareOraclePolicy",
    "lyapunov-fa": "wdtnopt.policies.failure_aware:FailureAwareLyapunovPolicy",
}
_CHECKPOINT = "wdtnopt.agents.checkpoint:CheckpointPolicy"
_PRETRAINED = "wdtnopt.agents.pretrained:PretrainedPolicy"


def check_horizon_slots(horizon_slots: Any) -> None:
    """Refuse a look-ahead ``horizon_slots`` that is not an integer >= 1 or None (the frame).

    Raises
    ------
    WdtnoptError
        Naming ``horizon_slots`` (0 had silently meant the frame, -1 predicted nothing, 1.5 a TypeError).
    """
    if horizon_slots is not None and (not isinstance(horizon_slots, int) or isinstance(horizon_slots, bool)
                                      or horizon_slots < 1):
        raise WdtnoptError(f"horizon_slots: expected an integer >= 1 or None, got {horizon_slots!r}")


def register_policy(name: str, factory: str | Callable[..., Policy]) -> None:
    """Register a policy factory under ``name`` (then ``simulate(name, trace)`` and the CLI know it).

    Parameters
    ----------
    name : str
        The policy's name.
    factory : callable or str
        A callable ``(**options) -> Policy`` or a ``"module:attribute"`` string imported on first use.

    Raises
    ------
    WdtnoptError
        If ``name`` is not a non-empty string without ``":"`` (kept for ``checkpoint:DIR`` and
        ``pretrained:ALGO``), or ``factory`` is neither callable nor a ``"module:attribute"`` string.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise WdtnoptError(f"name: expected a non-empty policy name without ':', got {name!r}")
    if not (callable(factory) or (isinstance(factory, str) and factory.count(":") == 1)):
        raise WdtnoptError(f"factory: expected a callable (**options) -> Policy or a 'module:attribute' string, "
                           f"got {factory!r}")
    _REGISTRY[name] = factory


def policy_names() -> list[str]:
    return sorted(_REGISTRY) + ["checkpoint:DIR", "pretrained:ALGO"]


def make_policy(spec: str | Policy, **options: Any) -> Policy:
    """A policy from its registered name.

    Parameters
    ----------
    spec : str or Policy
        A registered name (``"static"``, ``"follow"``, ``"lyapunov"``, ``"oracle"``,
        ``"checkpoint:DIR"``, or one added with :func:`register_policy`) or a policy object
        (returned as is).
    **options
        Keyword arguments of the policy's constructor (e.g. ``V=1000`` for ``"lyapunov"``).

    Returns
    -------
    Policy
        A new policy object.

    Raises
    ------
    WdtnoptError
        If ``spec`` is not a string or a Policy, the name is unknown, or its module is not
        available in this installation; constructors raise it for invalid options.
    """
    if isinstance(spec, Policy):
        return spec
    if not isinstance(spec, str):
        raise WdtnoptError(f"policy: expected a name or a Policy object, got {type(spec).__name__}")
    if spec.startswith("checkpoint:"):
        if not spec.split(":", 1)[1].strip():   # '' would be read as the working directory
            raise WdtnoptError("policy: 'checkpoint:' names no directory; expected checkpoint:DIR (a training run's folder)")
        factory: Any = _resolve(_CHECKPOINT, spec)
        return factory(spec.split(":", 1)[1], **options)
    if spec.startswith("pretrained:"):   # an agent shipped with the package (wdtnopt/pretrained/)
        factory = _resolve(_PRETRAINED, spec)
        return factory(spec.split(":", 1)[1], **options)
    entry = _REGISTRY.get(spec)
    if entry is None:
        raise WdtnoptError(f"policy: unknown policy {spec!r}; expected one of {', '.join(policy_names())}")
    factory = _resolve(entry, spec) if isinstance(entry, str) else entry
    try:
        return factory(**options)
    except TypeError as exc:   # an option the constructor does not take: a user error, named
        if options and ("unexpected keyword argument" in str(exc) or "takes no arguments" in str(exc)):
            raise WdtnoptError(f"policy {spec!r}: options {', '.join(map(repr, options))} not accepted ({exc})") from None
        raise


def _resolve(path: str, spec: str) -> Callable[..., Policy]:
    module, attr = path.split(":")
    try:
        return getattr(import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise WdtnoptError(f"policy: {spec!r} is not available in this installation ({exc})") from None
