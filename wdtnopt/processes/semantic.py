"""The semantic compression menu of a scenario (docs/model.md, section 13).

A menu gives every MU ``L`` levels ``l = 0 .. L-1``: level ``l`` sends ``level_ratio[n, l]`` times the
snapshot's ``data_bits`` and costs the MU ``level_cycles_per_bit[n, l] * data_bits`` extraction
cycles at its own CPU ``mu_cpu_hz`` (time ``cycles / f``, energy ``kappa cycles f^2``); its task
accuracy is ``level_accuracy[n, l]``, and levels below ``min_accuracy[n]`` are not on the MU's menu.
"""
from __future__ import annotations

from typing import Any

import numpy as np

LEVEL_FIELDS = ("level_ratio", "level_cycles_per_bit", "level_accuracy", "mu_cpu_hz", "mu_kappa", "min_accuracy")
"""The optional snapshot fields of a menu (all given or none)."""


def menu(n_mus: int, ratios, cycles_per_bit, accuracy, *, mu_cpu_hz: float = 1e9, mu_kappa: float = 1e-28,
         min_accuracy: float = 0.0) -> dict[str, np.ndarray]:
    """The snapshot level fields of one menu shared by ``n_mus`` MUs.

    Parameters
    ----------
    ratios, cycles_per_bit, accuracy : sequences of length L (ratio in (0, 1], cycles per data bit,
        accuracy in [0, 1])
    mu_cpu_hz : float, cycles/s; mu_kappa : float, J s^2 / cycle^3; min_accuracy : float

    Returns
    -------
    dict of the fields of :data:`LEVEL_FIELDS` ([N, L] and [N] float arrays)
    """
    r = np.asarray(ratios, dtype=float)
    rows = lambda v: np.tile(np.asarray(v, dtype=float), (n_mus, 1))  # noqa: E731
    return {"level_ratio": rows(r), "level_cycles_per_bit": rows(cycles_per_bit), "level_accuracy": rows(accuracy),
            "mu_cpu_hz": np.full(n_mus, float(mu_cpu_hz)), "mu_kappa": np.full(n_mus, float(mu_kappa)),
            "min_accuracy": np.full(n_mus, float(min_accuracy))}


def scenario_menu(sc: Any) -> dict[str, np.ndarray]:
    """The menu of a scenario with ``semantic_levels = L >= 1``: level ``l`` has ratio
    ``rho_min^(l / (L-1))``, extraction ``semantic_cycles_per_bit * l / (L-1)`` cycles per data bit and
    accuracy ``1 - semantic_accuracy_loss * l / (L-1)`` (L = 1: the single level ratio 1, no cost)."""
    L = int(sc.semantic_levels)
    x = np.arange(L) / (L - 1) if L > 1 else np.zeros(1)
    return menu(sc.n_mus, sc.semantic_ratio_min ** x, sc.semantic_cycles_per_bit * x,
                1.0 - sc.semantic_accuracy_loss * x, mu_cpu_hz=sc.mu_cpu_hz, mu_kappa=sc.mu_kappa,
                min_accuracy=sc.semantic_min_accuracy)
