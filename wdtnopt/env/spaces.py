"""Observation bounds and the controller's action mask in Gymnasium's form (docs/env.md).

Every observation feature of :mod:`wdtnopt.env.core` is named there (``MU_FEATURES``, ...); this
module gives each name its range, so the observation spaces carry the real bounds. A feature
without an entry here is unbounded (``-inf .. inf``): adding a feature never breaks the spaces,
and ``tests/test_env_interop.py`` checks that every observation lies in its space and that every
value of an observation has a name.
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
    # server status, only when servers fail (BS: its own server; controller: every server)
    "server_up": (0.0, 1.0), "p_up_next_frame": (0.0, 1.0), "server_up[M]": (0.0, 1.0), "p_up_next_frame[M]": (0.0, 1.0),
}


def _expand(names: tuple[str, ...], m: int) -> list[tuple[float, float]]:
    """One ``(low, high)`` per value: a name ending in ``[M]`` stands for ``m`` values."""
    out: list[tuple[float, float]] = []
    for name in names:
        out += [FEATURE_BOUNDS.get(name, (-INF, INF))] * (m if name.endswith("[M]") else 1)
    return out


def named_layout(n: int, m: int, server_status: bool = False) -> dict[str, list[tuple[float, float]]]:
    """``(low, high)`` of every value of each observation kind (``mu``, ``bs``, ``controller``) and
    of the global ``state``, from the feature names, in the layout of
    :func:`wdtnopt.env.core.observe_arrays` (``server_status``: with the server-status features)."""
    mu = _expand(core.MU_FEATURES, m)
    bs = _expand(core.BS_DT_FEATURES, m) * n + _expand(core.BS_FEATURES, m)
    ctrl = _expand(core.CTRL_DT_FEATURES, m) * n + _expand(core.CTRL_FEATURES, m)
    if server_status:
        bs += _expand(core.BS_STATUS_FEATURES, m)
        ctrl += _expand(core.CTRL_STATUS_FEATURES, m)
    state = ctrl + mu * n + [FEATURE_BOUNDS["active_dts_over_N"]] * m
    return {"mu": mu, "bs": bs, "controller": ctrl, "state": state}


def obs_bounds(n: int, m: int, server_status: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(low, high)`` float32 arrays per observation kind, of the sizes of
    :func:`wdtnopt.env.core.obs_dims`. A kind whose named layout does not have that size (a value
    added without its name in :mod:`wdtnopt.env.core`) is left unbounded; ``tests/test_env_interop.py``
    fails on it."""
    dims = core.obs_dims(n, m, server_status)
    out = {}
    for kind, rows in named_layout(n, m, server_status).items():
        if len(rows) != dims[kind]:
            rows = [(-INF, INF)] * dims[kind]
        a = np.array(rows, dtype=np.float32).reshape(-1, 2)
        out[kind] = (a[:, 0].copy(), a[:, 1].copy())
    return out


def mask_rows(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """The controller's ``[N, M]`` mask as Gymnasium's ``MultiDiscrete`` expects it: a tuple of
    ``N`` int8 arrays of shape ``[M]`` (1 = host allowed), usable as ``space.sample(mask=...)``."""
    m8 = np.asarray(mask).astype(np.int8)
    return tuple(m8[i].copy() for i in range(m8.shape[0]))
