"""Learned baselines (torch): HAPPO, Gaussian-HAPPO, MAPPO and MADDPG on the WDTN environment.

Importing this package imports torch; ``import wdtnopt`` never does. See docs/agents.md.
"""
from __future__ import annotations

ALGORITHMS = {
    "beta-happo": "wdtnopt.agents.happo:HAPPO",
    "gaussian-happo": "wdtnopt.agents.gaussian_happo:GaussianHAPPO",
    "beta-mappo": "wdtnopt.agents.mappo:MAPPO",
    "maddpg": "wdtnopt.agents.maddpg:MADDPG",
}
"""Algorithm name -> "module:class"."""
