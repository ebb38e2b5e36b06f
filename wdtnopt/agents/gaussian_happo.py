"""Gaussian-HAPPO: HAPPO (wdtnopt.agents.happo) with diagonal Gaussian actors for MU power and BS weights.

The Gaussian lives in the normalized box ``[0, 1]^D`` with a state-independent, per-agent log
standard deviation (mean = network output + 0.5). The *unclipped* sample is stored and scored by
the log-probability; only the action sent to the environment is clipped to the box. Everything
else (sequential updates with the factor M, critic, GAE) is HAPPO's.
"""
from __future__ import annotations

from dataclasses import dataclass

from .happo import HAPPO, HAPPOConfig


@dataclass
class GaussianHAPPOConfig(HAPPOConfig):
    """HAPPO's hyperparameters with the Gaussian head."""

    head: str = "gaussian"
    """continuous action head (diagonal Gaussian, unclipped samples stored)"""


class GaussianHAPPO(HAPPO):
    name = "gaussian-happo"
    Config = GaussianHAPPOConfig
