"""Channel laws of the trace: the macro path loss, THz links (free space + molecular absorption) and
RIS cascades (docs/model.md, section 13).

Every function is a pure, vectorized law of distances and parameters; :func:`large_scale_gain`
is the one interface the trace calls, and :func:`ris_boost` the RIS step applied after fading.
Nothing here draws random numbers except :func:`los_mask`, which takes its generator from the
caller (the trace's own ``blockage`` stream), so the default (macro) path never touches a new stream.

Sources
-------
* Molecular absorption: J. Kokkoniemi, J. Lehtomaki, M. Juntti, "A line-of-sight channel model for
  the 100-450 gigahertz frequency band", EURASIP J. Wireless Commun. Netw. 2021:88 (2021),
  eqs. (14)-(16) (six absorption lines and a polynomial floor, water vapour volume mixing ratio
  from Buck's saturation pressure).
* RIS: E. Bjornson, O. Ozdogan, E. G. Larsson, "Intelligent reflecting surface versus
  decode-and-forward: how large surfaces are needed to beat relaying?", IEEE Wireless Commun.
  Lett. 9(2), 2020 (arXiv 2019): far-field cascaded channel and its closed-form optimal phases.
* LOS probability: T. Bai, R. Vaze, R. W. Heath, "Analysis of blockage effects on urban cellular
  networks", IEEE Trans. Wireless Commun. 13(9), 2014: ``P_LOS(d) = exp(-d / L)``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

SPEED_OF_LIGHT_M_S = 299_792_458.0
LOG10_E = math.log10(math.e)
THZ_MODEL_RANGE_HZ = (100e9, 450e9)
"""Frequencies (Hz) where the absorption model of Kokkoniemi et al. (2021) is fitted."""


# -- macro law (today's default) -------------------------------------------------------------------
def macro_gain(dist_m: np.ndarray, pathloss_db_1km: float, slope_db: float, d_min_m: float) -> np.ndarray:
    """Large-scale gain of the macro law ``PL_dB(d) = A + B log10(max(d, d_min) / 1 km)`` (linear).

    Parameters
    ----------
    dist_m : array, m
    pathloss_db_1km, slope_db : float, dB and dB per decade
    d_min_m : float, m (distance floor)
    """
    d_km = np.maximum(dist_m, d_min_m) / 1000.0
    return 10.0 ** (-(pathloss_db_1km + slope_db * np.log10(d_km)) / 10.0)


# -- THz --------------------------------------------------------------------------------------------
def free_space_loss_db(carrier_hz: float, dist_m: np.ndarray) -> np.ndarray:
    """Free-space loss ``20 log10(4 pi f d / c)`` (dB) of isotropic antennas."""
    return 20.0 * np.log10(4.0 * math.pi * carrier_hz * np.asarray(dist_m, dtype=float) / SPEED_OF_LIGHT_M_S)


def water_vapor_mixing_ratio(temperature_k: float, relative_humidity: float, pressure_pa: float) -> float:
    """Volume mixing ratio ``mu`` of water vapour (Kokkoniemi et al. 2021, eqs. (15)-(16)).

    ``mu = RH p_w(T, p) / p`` with Buck's saturation pressure
    ``p_w = 6.1121 (1.0007 + 3.46e-6 p) exp(17.502 (T - 273.15) / (T - 32.18))`` (hPa, p in hPa).

    Parameters
    ----------
    temperature_k : float, K
    relative_humidity : float, fraction in [0, 1]
    pressure_pa : float, Pa
    """
    p_hpa = pressure_pa / 100.0
    p_w = 6.1121 * (1.0007 + 3.46e-6 * p_hpa) * math.exp(17.502 * (temperature_k - 273.15) / (temperature_k - 32.18))
    return relative_humidity * p_w / p_hpa


# (line centre in cm^-1, [a1, a2, a3] of the numerator, [b1, b2] of the width), eq. (14) of the paper;
# the first line is oxygen's (it depends on 1 - mu), the others water vapour's.
_O2_LINE = (3.96, (5.159e-5, -6.65e-5, 0.0159), (-2.09e-4, 0.05))
_H2O_LINES = (
    (6.11, (0.1925, 0.135, 0.0318), (0.4241, 0.0998)),
    (10.84, (0.2251, 0.1314, 0.0297), (0.4127, 0.0932)),
    (12.68, (2.053, 0.1717, 0.0306), (0.5394, 0.0961)),
    (14.65, (0.177, 0.0832, 0.0213), (0.2615, 0.0668)),
    (14.94, (2.146, 0.1206, 0.0277), (0.3789, 0.0871)),
)


def absorption_coefficient(carrier_hz: Any, temperature_k: float = 296.0, relative_humidity: float = 0.5,
                           pressure_pa: float = 101_325.0) -> np.ndarray:
    """Molecular absorption coefficient ``kappa`` (1/m) of the simplified model of Kokkoniemi,
    Lehtomaki and Juntti (2021), fitted for 100-450 GHz at sea-level pressure.

    ``kappa = sum_i A_i(mu) / (B_i(mu) + (f / (100 c) - c_i)^2) + mu / 0.0157 (2e-4 + 0.915e-112 f^9.42)``
    with ``f`` in Hz, ``c`` in m/s (so ``f / (100 c)`` is the wavenumber in cm^-1).

    Raises
    ------
    ValueError
        a carrier outside 100-450 GHz (the model's fitted range).
    """
    f = np.asarray(carrier_hz, dtype=float)
    lo, hi = THZ_MODEL_RANGE_HZ
    if ((f < lo) | (f > hi)).any():
        raise ValueError(f"carrier_hz: the absorption model is fitted for {lo:g}-{hi:g} Hz, got {f.min():g}-{f.max():g}")
    mu = water_vapor_mixing_ratio(temperature_k, relative_humidity, pressure_pa)
    nu = f / (100.0 * SPEED_OF_LIGHT_M_S)   # wavenumber, cm^-1
    c0, (a1, a2, a3), (b1, b2) = _O2_LINE
    kappa = a1 * (1 - mu) * (a2 * (1 - mu) + a3) / ((b1 * (1 - mu) + b2) ** 2 + (nu - c0) ** 2)
    for c0, (a1, a2, a3), (b1, b2) in _H2O_LINES:
        kappa = kappa + a1 * mu * (a2 * mu + a3) / ((b1 * mu + b2) ** 2 + (nu - c0) ** 2)
    return kappa + mu / 0.0157 * (2e-4 + 0.915e-112 * f ** 9.42)


def thz_path_loss_db(carrier_hz: float, dist_m: np.ndarray, kappa_per_m: float) -> np.ndarray:
    """``PL_dB = 20 log10(4 pi f d / c) + 10 log10(e) kappa d`` (isotropic antennas)."""
    d = np.asarray(dist_m, dtype=float)
    return free_space_loss_db(carrier_hz, d) + 10.0 * LOG10_E * kappa_per_m * d


def los_probability(dist_m: np.ndarray, los_decay_m: float) -> np.ndarray:
    """``P_LOS(d) = exp(-d / L)`` (Bai, Vaze and Heath 2014); ``L = 0`` means always LOS."""
    d = np.asarray(dist_m, dtype=float)
    if los_decay_m <= 0:
        return np.ones_like(d)
    return np.exp(-d / los_decay_m)


def los_mask(rng: np.random.Generator, dist_m: np.ndarray, los_decay_m: float) -> np.ndarray:
    """Independent LOS draws, one per entry of ``dist_m`` (True: line of sight)."""
    return rng.random(np.shape(dist_m)) < los_probability(dist_m, los_decay_m)


def thz_gain(dist_m: np.ndarray, sc: Any, los: np.ndarray | None = None) -> np.ndarray:
    """Large-scale gain of a THz link (linear): antenna gains, free space and absorption at
    ``max(d, d_min)``, and ``thz_blockage_db`` more loss where ``los`` is False."""
    d = np.maximum(dist_m, sc.d_min_m)
    kappa = float(absorption_coefficient(sc.thz_carrier_hz, sc.thz_temperature_k, sc.thz_relative_humidity,
                                         sc.thz_pressure_pa))
    loss_db = thz_path_loss_db(sc.thz_carrier_hz, d, kappa) - sc.thz_tx_gain_dbi - sc.thz_rx_gain_dbi
    if los is not None:
        loss_db = loss_db + np.where(los, 0.0, sc.thz_blockage_db)
    return 10.0 ** (-loss_db / 10.0)


def large_scale_gain(dist_m: np.ndarray, sc: Any, los: np.ndarray | None = None) -> np.ndarray:
    """The scenario's large-scale gain law: THz when ``thz_carrier_hz > 0``, else the macro law
    (exactly today's operations, so default traces stay bit-identical)."""
    if getattr(sc, "thz_carrier_hz", 0.0) > 0:
        return thz_gain(dist_m, sc, los)
    return macro_gain(dist_m, sc.pathloss_db_1km, sc.pathloss_slope_db, sc.d_min_m)


# -- RIS -------------------------------------------------------------------------------------------
def ris_cascaded_gain(g_direct: Any, beta1: Any, beta2: Any, n_elements: Any) -> np.ndarray:
    """Gain of the direct link plus an N-element RIS with the closed-form optimal phases
    (Bjornson, Ozdogan and Larsson): ``(sqrt(g_direct) + N sqrt(beta1 beta2))^2``.

    Parameters
    ----------
    g_direct : array, linear power gain of the direct link (0 if blocked)
    beta1, beta2 : array, per-element power gains transmitter-RIS and RIS-receiver
    n_elements : array of int, elements steered to this link
    """
    return (np.sqrt(g_direct) + np.asarray(n_elements, dtype=float) * np.sqrt(np.asarray(beta1) * beta2)) ** 2


def ris_optimal_phases(h_direct: complex, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """Closed-form phases ``theta_i = arg(h_d) - arg(h1_i h2_i)`` that align every reflected path
    with the direct one (each term of the sum then adds in magnitude)."""
    return np.angle(h_direct) - np.angle(np.asarray(h1) * np.asarray(h2))


def ris_gain_with_phases(h_direct: complex, h1: np.ndarray, h2: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``|h_d + sum_i h1_i h2_i e^{j theta_i}|^2`` for phase vectors ``theta [..., N]``."""
    return np.abs(h_direct + np.sum(np.asarray(h1) * np.asarray(h2) * np.exp(1j * np.asarray(theta)), axis=-1)) ** 2


def ris_element_gain(dist_m: np.ndarray, sc: Any) -> np.ndarray:
    """Far-field power gain of one RIS element over ``dist_m``: ``A / (4 pi d^2)`` with the element
    area ``A = (lambda / 2)^2`` (Bjornson et al.), times the molecular absorption ``exp(-kappa d)``
    when the THz law is on; the carrier is ``thz_carrier_hz`` or, for the macro law, ``ris_carrier_hz``."""
    d = np.maximum(np.asarray(dist_m, dtype=float), sc.d_min_m)
    thz = getattr(sc, "thz_carrier_hz", 0.0) > 0
    f = sc.thz_carrier_hz if thz else sc.ris_carrier_hz
    area = (SPEED_OF_LIGHT_M_S / f / 2.0) ** 2
    g = area / (4.0 * math.pi * d * d)
    if thz:
        kappa = float(absorption_coefficient(f, sc.thz_temperature_k, sc.thz_relative_humidity, sc.thz_pressure_pa))
        g = g * np.exp(-kappa * d)
    return g


def ris_positions(bs: np.ndarray, area_m: float, offset_m: float) -> np.ndarray:
    """One surface per BS, ``offset_m`` from it towards the centre of the area (the BS itself if at
    the centre: then along +x)."""
    centre = np.full(2, area_m / 2.0)
    v = centre[None, :] - bs
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    unit = np.where(norm > 0, v / np.where(norm > 0, norm, 1.0), np.array([[1.0, 0.0]]))
    return bs + offset_m * unit


def ris_element_shares(n_elements: int, assoc: np.ndarray, request: np.ndarray, n_bss: int) -> np.ndarray:
    """[T, N] elements of its serving BS's RIS steered to each MU: an equal split
    ``floor(N_ris / k)`` among the ``k`` requesting MUs of the cell, fixed before the slot; a silent MU
    is quoted the share it would get by joining (like the bandwidth)."""
    slots = assoc.shape[0]
    tix = np.arange(slots)[:, None]
    n_req = np.zeros((slots, n_bss))
    np.add.at(n_req, (np.broadcast_to(tix, assoc.shape), assoc), request)
    share = n_req[tix, assoc] + (~request)
    return np.floor(n_elements / share)


def ris_boost(gain: np.ndarray, positions: np.ndarray, bs: np.ndarray, assoc: np.ndarray, request: np.ndarray,
              sc: Any) -> np.ndarray:
    """The gain [T, N, M] with each MU's serving link replaced by its RIS cascade
    ``(sqrt(g) + N_n sqrt(beta1 beta2))^2`` (the other links are unchanged)."""
    m = bs.shape[0]
    ris = ris_positions(bs, sc.area_m, sc.ris_offset_m)
    beta1 = ris_element_gain(np.linalg.norm(ris - bs, axis=1), sc)                                  # [M]
    d2 = np.linalg.norm(positions - ris[assoc], axis=-1)                                           # [T, N]
    beta2 = ris_element_gain(d2, sc)
    n_el = ris_element_shares(int(sc.ris_elements), assoc, request, m)
    out = gain.copy()
    served = np.take_along_axis(gain, assoc[..., None], -1)[..., 0]
    boosted = ris_cascaded_gain(served, beta1[assoc], beta2, n_el)
    np.put_along_axis(out, assoc[..., None], boosted[..., None], -1)
    return out
