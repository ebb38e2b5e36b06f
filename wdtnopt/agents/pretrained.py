"""Pretrained agents shipped with the package, and :class:`PretrainedPolicy` (``pretrained:NAME``).

``wdtnopt/pretrained/NAME.pt`` holds the actors of one trained agent for the default scenario
(tensors and plain data only, read with ``torch.load(..., weights_only=True)``) and
``NAME.json`` its training record: the command, env steps, seed, CPU time and the evaluation
numbers it reproduces (docs/agents.md, "Pretrained agents"). ``NAME`` is the algorithm's name.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import WdtnoptError
from ..io import atomic_write, atomic_write_json
from .checkpoint import CheckpointPolicy, check_payload_fields, load_agent_actors
from .registry import ALGORITHMS

FORMAT = "wdtnopt-pretrained-v1"
_KEYS = ("format", "algo", "scenario", "config", "seed", "actors")
DIRECTORY = Path(__file__).resolve().parents[1] / "pretrained"
"""Where the shipped weights live (package data)."""


def pretrained_names() -> list[str]:
    """Names of the shipped agents (those with both a weights file and a record)."""
    return sorted(p.stem for p in DIRECTORY.glob("*.pt") if p.with_suffix(".json").is_file())


def pretrained_record(name: str) -> dict[str, Any]:
    """The training record of a shipped agent (command, steps, seed, CPU time, evaluation)."""
    path = _path(name).with_suffix(".json")
    return json.loads(path.read_text(encoding="utf-8"))


def _path(name: str) -> Path:
    if name not in ALGORITHMS or not (DIRECTORY / f"{name}.pt").is_file():
        raise WdtnoptError(f"pretrained: no shipped agent {name!r}; available: {', '.join(pretrained_names()) or 'none'}")
    return DIRECTORY / f"{name}.pt"


def export_pretrained(trainer: Any, name: str, record: dict[str, Any], directory: Path = DIRECTORY) -> Path:
    """Write a trainer's actors as ``directory/NAME.pt`` and ``record`` as ``NAME.json`` (atomically)."""
    payload = {"format": FORMAT, "algo": trainer.algo, "scenario": trainer.scenario.to_dict(),
               "config": {k: v for k, v in vars(trainer.config).items()}, "seed": trainer.seed,
               "env_steps": trainer.env_steps, "actors": trainer.agent.actors.state_dict()}
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = Path(directory) / f"{name}.pt"
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), binary=True)
    atomic_write_json(path.with_suffix(".json"), record)
    return path


def read_pretrained(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WdtnoptError(f"pretrained {path}: cannot be read ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WdtnoptError(f"pretrained {path}: not a wdtnopt pretrained agent (expected format {FORMAT!r})")
    missing = [k for k in _KEYS if k not in payload]
    if missing:
        raise WdtnoptError(f"pretrained {path}: incomplete, missing {', '.join(missing)}")
    check_payload_fields(payload, f"pretrained {path}")
    return payload


class PretrainedPolicy(CheckpointPolicy):
    """A shipped agent run deterministically in ``simulate`` (as :class:`CheckpointPolicy`)."""

    name = "pretrained"

    def __init__(self, name: str):  # noqa: D107 - the base class reads a checkpoint directory instead
        path = _path(name)
        payload = read_pretrained(path)
        self._setup(payload, path)
        load_agent_actors(self.agent, payload["actors"], path)
        self.name = f"pretrained:{name}"
        self.where = f"pretrained:{name} ({path})"
        self.size_hint = (f" (shipped for the default scenario only; for another size train one, "
                          f"`wdtnopt train --algo {payload['algo']} --n-mus N --n-bss M --out DIR`, "
                          f"and run checkpoint:DIR)")
        self.record = pretrained_record(name)
