"""Learned baselines (torch): HAPPO, Gaussian-HAPPO, MAPPO and MADDPG on the WDTN environment.

Importing this package does not import torch (the algorithm modules do); ``import wdtnopt`` never
does. See docs/agents.md.
"""
from __future__ import annotations

from .registry import ALGORITHMS, Agent

__all__ = ["ALGORITHMS", "Agent"]
