"""Observation bounds and the controller's action mask in Gymnasium's form (docs/env.md).

Every observation feature of :mod:`wdtnopt.env.core` is named there (``MU_FEATURES``, ...); this
module gives each name its range, so the observation spaces carry the real bounds. A feature
without an entry here is unbounded (``-inf .. inf``): adding a feature never breaks the spaces,
and ``tests/test_env.py`` checks that every observation lies in its space.
"""
from __future__ import annotations

import numpy as np

from . import core

INF = np.inf

FEATURE_BOUNDS: dict[str, tuple[float, float]] = {
    # MU
    "request": (0.0, 1.0), "available": (0.0, 1.0), "t_min_over_deadline": (0.0, 2.0),
    "log10_snr_at_pmax_over_5": (0.0, INF), "spectral_demand_over_10": (0.0, 1.0),
    "relay_over_deadline": (0.0, 2.0), "equal_share_compute_over_deadline": (0.0, 2.0),
    "hosted_at_serving_bs": (0.0, 1.0), "frame_phase": (0.0, 1.0), "migration_left_over_K": (0.0, 1.0),
    "log10_noise_rise_over_3": (0.0, INF),          # noise plus interference >= thermal noise
    "log10_power_needed_over_pmax_over_5": (-1.0, 0.2),
    # BS, per DT and per BS
    "hosted_here": (0.0, 1.0), "updates_here": (0.0, 1.0), "compute_at_full_cpu_over_deadline": (0.0, 2.0),
    "slack_here_over_deadline": (-1.0, 1.0), "active_dts_over_N": (0.0, 1.0),
    # controller, per DT and global ("[M]": one value per server)
    "host_onehot[M]": (0.0, 1.0), "serving_bs_onehot[M]": (0.0, 1.0),
    "relay_to_server_over_deadline[M]": (0.0, 2.0), "dt_size_over_max": (0.0, 1.0),
    "free_storage_fraction[M]": (0.0, 1.0), "is_frame_start": (0.0, 1.0),
}


def _expand(names: tuple[str, ...], m: int) -> list[tuple[float, float]]:
    """One ``(low, high)`` per value: a name ending in ``[M]`` stands for ``m`` values."""
    out: list[tuple[float, float]] = []
    for name in names:
        out += [FEATURE_BOUNDS.get(name, (-INF, INF))] * (m if name.endswith("[M]") else 1)
    return out


def obs_bounds(n: int, m: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(low, high)`` float32 arrays per agent kind (``mu``, ``bs``, ``controller``) and of the
    global ``state``, in the layout of :func:`wdtnopt.env.core.observe_arrays`.

    Raises
    ------
    ValueError
        If a layout's length differs from :func:`wdtnopt.env.core.obs_dims` (a feature was added to
        the observation without its name in the tables of :mod:`wdtnopt.env.core`).
    """
    mu = _expand(core.MU_FEATURES, m)
    bs = _expand(core.BS_DT_FEATURES, m) * n + _expand(core.BS_FEATURES, m)
    ctrl = _expand(core.CTRL_DT_FEATURES, m) * n + _expand(core.CTRL_FEATURES, m)
    state = ctrl + mu * n + [FEATURE_BOUNDS["active_dts_over_N"]] * m
    dims = core.obs_dims(n, m)
    out = {}
    for kind, rows in (("mu", mu), ("bs", bs), ("controller", ctrl), ("state", state)):
        if len(rows) != dims[kind]:
            raise ValueError(f"observation bounds of {kind!r}: {len(rows)} named values, obs_dims says "
                             f"{dims[kind]}; name every feature in wdtnopt.env.core")
        a = np.array(rows, dtype=np.float32).reshape(-1, 2)
        out[kind] = (a[:, 0].copy(), a[:, 1].copy())
    return out


def mask_rows(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """The controller's ``[N, M]`` mask as Gymnasium's ``MultiDiscrete`` expects it: a tuple of
    ``N`` int8 arrays of shape ``[M]`` (1 = host allowed), usable as ``space.sample(mask=...)``."""
    m8 = np.asarray(mask).astype(np.int8)
    return tuple(m8[i].copy() for i in range(m8.shape[0]))
