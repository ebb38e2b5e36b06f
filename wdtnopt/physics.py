"""The link, backhaul and compute laws of docs/model.md, section 3, vectorized and numerically careful.

Every other module (evaluate, the solvers, the simulator, the environment) computes energy, power
and transmission time through these functions, so there is one formula of each.

Notation: D data bits, B bandwidth (Hz), N0 noise-plus-interference PSD (W/Hz), g channel gain.
"""
from __future__ import annotations

import numpy as np

LN2 = float(np.log(2.0))


def backhaul_time(latency_s, s_per_bit, bits):
    """Time to move ``bits`` over the backhaul: fixed latency plus ``bits`` times the per-bit time (s);
    the relay of a sync's data to a remote host, and a DT's migration."""
    return latency_s + bits * s_per_bit


def power_for_time(t, data_bits, bandwidth, noise_psd, gain):
    """Power needed to send D bits in t seconds: ``(N0 B / g) (2^{D/(B t)} - 1)``; inf for t <= 0."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        x = np.where(t > 0, data_bits * LN2 / (bandwidth * np.where(t > 0, t, 1.0)), np.inf)
        return noise_psd * bandwidth / gain * np.expm1(x)


def energy_for_time(t, data_bits, bandwidth, noise_psd, gain):
    """MU energy of sending D bits in exactly t seconds, ``t p(t)``: convex, decreasing in t."""
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(t > 0, t * power_for_time(t, data_bits, bandwidth, noise_psd, gain), np.inf)


def rate(power, bandwidth, noise_psd, gain):
    """Shannon rate ``B log2(1 + p g / (N0 B))`` (bit/s).

    Where the SNR ``p g / (N0 B)`` overflows (a band so narrow that ``N0 B`` is below
    ``p g / 1.8e308``), ``log1p(SNR) = log(p g / N0) - log(B)`` to double precision, which keeps the
    rate finite (and tiny) instead of ``B * inf``."""
    p = np.asarray(power, dtype=float)
    with np.errstate(over="ignore", divide="ignore"):
        snr = p * gain / (noise_psd * bandwidth)
    r = bandwidth * np.log1p(snr) / LN2
    with np.errstate(over="ignore"):   # p g / N0 past the largest float too (g 1e50, N0 1e-300): rate inf
        over = np.isinf(snr) & np.isfinite(p * gain / noise_psd)
    if np.any(over):
        with np.errstate(divide="ignore", invalid="ignore"):
            wide = bandwidth * (np.log(p * gain / noise_psd) - np.log(bandwidth)) / LN2
        r = np.where(over, wide, r)
        r = r[()] if r.ndim == 0 else r
    return r


def time_for_power(power, data_bits, bandwidth, noise_psd, gain):
    """Transmission time of D bits at power p; inf where p = 0."""
    r = rate(power, bandwidth, noise_psd, gain)
    with np.errstate(divide="ignore"):
        return np.where(r > 0, data_bits / np.where(r > 0, r, 1.0), np.inf)


def min_tx_time(data_bits, bandwidth, noise_psd, gain, p_max):
    """Shortest transmission time under the power cap: ``D / (B log2(1 + Pmax g / (N0 B)))``."""
    return time_for_power(p_max, data_bits, bandwidth, noise_psd, gain)
