"""Checkpoints of learned agents, and :class:`CheckpointPolicy`, which runs one in ``simulate``.

A checkpoint is a directory with ``checkpoint.pt`` (tensors and plain data only, written
atomically, read with ``torch.load(..., weights_only=True)``) and a human-readable
``config.json``. It holds everything needed to resume training exactly: the networks, the
optimizer moments, value normalization, the numpy and torch RNG states and the environments'
positions (traces are regenerated from their seeds).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WdtnoptError
from ..io import atomic_write, atomic_write_json
from ..policies import Policy
from ..snapshot import Snapshot
from ..wording import counted

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "wdtnopt-agent-checkpoint-v1"
_KEYS = ("format", "algo", "scenario", "config", "seed", "iteration", "env_steps", "agent", "env", "torch_rng")


def write_checkpoint(directory: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as DIR/checkpoint.pt (atomically) and DIR/config.json."""
    directory = Path(directory)
    payload = {"format": FORMAT, **payload}
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = directory / CHECKPOINT_FILE
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), binary=True)
    atomic_write_json(directory / "config.json", {k: payload[k] for k in ("algo", "seed", "iteration", "env_steps",
                                                                          "config", "scenario")})
    return path


def read_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Load DIR/checkpoint.pt safely; any problem raises :class:`WdtnoptError` naming the file."""
    directory = Path(directory)
    path = directory / CHECKPOINT_FILE if directory.is_dir() or not directory.suffix else directory
    if not path.is_file():
        raise WdtnoptError(f"checkpoint {path}: file not found (expected a directory written by `wdtnopt train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        # torch's first sentence only: the next ones advise weights_only=False, which would unpickle
        first = str(exc).strip().splitlines()[0].split(". ")[0][:200] if str(exc).strip() else ""
        if not any(ch.isalpha() for ch in first):   # a bare KeyError '101' (a text file): the type says more
            first = f"{type(exc).__name__} {first}".strip()
        raise WdtnoptError(f"checkpoint {path}: cannot be read, the file is corrupted or not a wdtnopt checkpoint ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WdtnoptError(f"checkpoint {path}: not a wdtnopt agent checkpoint (expected format {FORMAT!r})")
    missing = [k for k in _KEYS if k not in payload]
    if missing:
        raise WdtnoptError(f"checkpoint {path}: incomplete, missing {', '.join(missing)}")
    check_payload_fields(payload, f"checkpoint {path}")
    return payload


_FIELD_FORMS = {
    "algo": (lambda v: isinstance(v, str), "an algorithm name (a string)"),
    "scenario": (lambda v: isinstance(v, dict), "a table of scenario fields"),
    "config": (lambda v: isinstance(v, dict), "a table of config fields"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "iteration": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "env_steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "mobility": (lambda v: v is None or isinstance(v, str), "None or a mobility source (a string)"),
    "agent": (lambda v: isinstance(v, dict), "a table of network states"),
    "actors": (lambda v: isinstance(v, dict), "a table of network states"),
    "env": (lambda v: isinstance(v, dict), "a table of environment states"),
    "torch_rng": (lambda v: isinstance(v, torch.Tensor), "a torch RNG state (a tensor)"),
}


def check_payload_fields(payload: dict[str, Any], where: str) -> None:
    """Check the form of a loaded checkpoint's (or pretrained file's) plain fields.

    Parameters
    ----------
    payload : dict
        What ``torch.load`` returned; only the keys present among those of :data:`_FIELD_FORMS`
        are checked (missing keys are the caller's concern).
    where : str
        The prefix of the error message, naming the file (``"checkpoint DIR/checkpoint.pt"``).

    Raises
    ------
    WdtnoptError
        Naming the first field whose value is not of its expected form (a damaged or hand-edited
        file: ``seed`` a word, ``scenario`` not a table, ...), so that loading it fails with one
        clear line instead of a ``ValueError`` from ``int()`` deep in the agent's construction.
    """
    for key, (ok, form) in _FIELD_FORMS.items():
        if key in payload and not ok(payload[key]):
            value = payload[key]
            shown = repr(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
            raise WdtnoptError(f"{where}: {key}: expected {form}, got {shown[:80]}")


def load_agent_state(agent: Any, state: dict[str, Any], path: str | Path) -> None:
    """``agent.load_state_dict`` with shape/key mismatches turned into a :class:`WdtnoptError`."""
    try:
        agent.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise WdtnoptError(f"checkpoint {path}: does not match the {agent.name} networks it names ({first})") from None


def load_agent_actors(agent: Any, actors: dict[str, Any], path: str | Path) -> None:
    """``agent.actors.load_state_dict`` (the acting networks only), mismatches as :class:`WdtnoptError`."""
    try:
        agent.actors.load_state_dict(actors)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise WdtnoptError(f"checkpoint {path}: does not match the {agent.name} networks it names ({first})") from None


class CheckpointPolicy(Policy):
    """Run a trained checkpoint deterministically (Beta/Gaussian means, categorical modes) in ``simulate``.

    It sees exactly what the environment's agents see: at a frame start every agent acts on the
    observation before the move; the controller's hosts go through the environment's repair rule
    and the MU/BS actions of that same observation set the slot's power and CPU shares.
    ``reset`` sets torch's intra-op threads (process-wide, as :class:`~wdtnopt.agents.trainer.Trainer`
    does) to the agent's ``torch_threads`` (1 by default): with one thread per core, acting is up
    to 60 times slower on a busy machine, for the same actions.
    """

    name = "checkpoint"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        payload = read_checkpoint(self.directory)
        self._setup(payload, self.directory / CHECKPOINT_FILE)
        agent_state = payload["agent"]
        if not isinstance(agent_state, dict) or "actors" not in agent_state:
            raise WdtnoptError(f"checkpoint {self.path}: incomplete, missing the agent's actors")
        load_agent_actors(self.agent, agent_state["actors"], self.path)   # acting needs the actors only
        self.name = f"checkpoint:{payload['algo']}"

    def _setup(self, payload: dict[str, Any], path: Path) -> None:
        """The agent (fresh networks) that ``payload`` names, for its scenario."""
        from ..scenario import Scenario
        from .registry import build_agent

        self.path = path
        self.where = f"checkpoint {path}"   # how the errors name it (a shipped agent names itself)
        self.size_hint = ""
        try:
            self.scenario = Scenario.from_dict(dict(payload["scenario"]))
        except WdtnoptError as exc:
            raise WdtnoptError(f"checkpoint {self.path}: invalid scenario ({exc})") from None
        self.agent = build_agent(payload["algo"], self.scenario, payload["config"], int(payload["seed"]), self.path)
        self._pending: tuple[np.ndarray, ...] | None = None

    def reset(self, trace: Any) -> None:
        from ..env.core import Features
        sc = trace.scenario
        if (sc.n_mus, sc.n_bss) != (self.scenario.n_mus, self.scenario.n_bss):
            raise WdtnoptError(f"{self.where}: trained for {counted(self.scenario.n_mus, 'MU')} and "
                               f"{counted(self.scenario.n_bss, 'BS')}, the trace has {counted(sc.n_mus, 'MU')} and "
                               f"{counted(sc.n_bss, 'BS')}{self.size_hint}")
        spec = self.agent.spec
        if spec.has_levels:   # its level indices mean its own menu's levels (docs/agents.md, "Semantic levels")
            from .core import EnvSpec
            menu = EnvSpec.from_scenario(sc)
            if (menu.n_levels, menu.level_allowed) != (spec.n_levels, spec.level_allowed):
                raise WdtnoptError(
                    f"{self.where}: trained to choose among the {spec.n_levels} semantic levels of its "
                    f"menu (semantic_levels = {self.scenario.semantic_levels}, semantic_min_accuracy = "
                    f"{self.scenario.semantic_min_accuracy}), the trace's menu differs (semantic_levels = "
                    f"{sc.semantic_levels}, semantic_min_accuracy = {sc.semantic_min_accuracy})")
        self.trace = trace
        self.features = Features(trace)
        self._pending = None
        # torch's intra-op threads, as the Trainer sets them: the networks are small, and with torch's
        # default (one per core) acting spins threads against the environment's own work (100 slots
        # of the default scenario on 2 busy cores: 10 s against 0.16 s, the same actions)
        import torch
        torch.set_num_threads(int(getattr(self.agent.cfg, "torch_threads", 1)))

    def _decide(self, state: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ..env import BatchObs
        from ..env.core import observe
        from .core import to_env
        obs = BatchObs.stack([observe(self.features, state, server_status=self.agent.spec.server_status)])
        power, weights, hosts, *level = to_env(self.agent.act(obs, deterministic=True), self.agent.spec)
        if level:   # a scenario with a menu: the MUs' levels too
            return power[0], weights[0], hosts[0], level[0][0]
        return power[0], weights[0], hosts[0]

    def place(self, snapshot: Snapshot, state: Any) -> np.ndarray:
        from ..env.core import repair_placement
        self._pending = self._decide(state)
        return repair_placement(state, self._pending[2])

    def allocate(self, snapshot: Snapshot, state: Any) -> Any:
        from ..env.core import decision
        power, weights, _, *level = self._pending if self._pending is not None else self._decide(state)
        self._pending = None
        return decision(snapshot, power, weights, level[0] if level else None, mu_action=self.agent.spec.mu_action,
                        price_j=self.trace.scenario.failure_price, bs_action=self.agent.spec.bs_action)[0]
