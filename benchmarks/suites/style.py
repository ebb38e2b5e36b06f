"""One look for every benchmark figure, and the statistics shown on them.

Every method keeps its colour, marker and label across figures; a curve is the mean over seeds
with its 95% t-interval as a band; bounds are dashed black lines.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from wdtnopt.wording import counted

LABELS = {
    "beta-happo": "Beta-HAPPO", "gaussian-happo": "Gaussian-HAPPO", "beta-mappo": "Beta-MAPPO",
    "maddpg": "MADDPG", "beta-happo:raw": "Beta-HAPPO (raw map, team credit)", "lyapunov": "Lyapunov drift-plus-penalty", "oracle": "myopic oracle",
    "static": "static", "follow": "follow", "bound": "hindsight lower bound",
    "exact": "exact oracle (HiGHS OA)", "pyomo": "SCIP (Pyomo MINLP)", "fast": "fast (Lagrangian)",
    "simulate": "simulate (follow)", "trace": "generate_trace",
    "predictive": "predictive", "oracle-fa": "failure-aware oracle", "lyapunov-fa": "failure-aware Lyapunov",
}
COLORS = {
    "beta-happo": "#1f77b4", "gaussian-happo": "#17becf", "beta-mappo": "#9467bd", "maddpg": "#e377c2",
    "beta-happo:raw": "#8c564b", "lyapunov": "#2ca02c", "oracle": "#d62728", "static": "#7f7f7f", "follow": "#bcbd22", "bound": "#000000",
    "exact": "#1f77b4", "pyomo": "#ff7f0e", "fast": "#2ca02c", "simulate": "#1f77b4", "trace": "#ff7f0e",
    "predictive": "#8c564b", "oracle-fa": "#ff9896", "lyapunov-fa": "#98df8a",
}
MARKERS = {
    "beta-happo": "o", "gaussian-happo": "v", "beta-mappo": "s", "maddpg": "D", "beta-happo:raw": "h", "lyapunov": "^",
    "oracle": "*", "static": "x", "follow": "+", "bound": "", "exact": "o", "pyomo": "s", "fast": "^",
    "simulate": "o", "trace": "s", "predictive": "P", "oracle-fa": "*", "lyapunov-fa": "^",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, int]:
    """Mean and half-width of the two-sided t-interval at ``level`` (half-width nan for one value)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    n = v.size
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    from scipy import stats
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return float(v.mean()), half, n


def ci_text(mean: float, half: float, *, scale: float = 1.0, digits: int = 4, percent: bool = False) -> str:
    """A report cell ``mean ± half-width`` (the interval of :func:`mean_ci`), both times ``scale``.

    Parameters
    ----------
    mean, half : float
        The mean and the half-width of its 95% t-interval; a half-width that is not finite (one
        seed: :func:`mean_ci` gives nan) leaves the value itself, no interval.
    scale : float
        Unit factor applied to both (1e3: J to mJ; 100: a fraction to percent).
    digits : int
        Significant digits of the mean; the half-width keeps two.
    percent : bool
        A percentage: both to one decimal and one trailing ``%`` ("0.8%", "0.9 ± 0.6%").

    Returns
    -------
    str
        The cell; "-" when ``mean`` is not finite.
    """
    if not math.isfinite(mean):
        return "-"
    m, h = mean * scale, half * scale
    if percent:
        return f"{m:.1f}" + (f" ± {h:.1f}" if math.isfinite(h) else "") + "%"
    return f"{m:.{digits}g}" + (f" ± {h:.2g}" if math.isfinite(h) else "")


def interval_words(n: int) -> str:
    """How a report's ``mean ± half-width`` cells read over ``n`` seeds (one seed has no interval)."""
    if n == 1:
        return "1 seed: the value itself, no interval"
    return f"{n} seeds; mean ± 95% t half-width"


def pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 130, "axes.grid": True, "grid.alpha": 0.3,
                         "font.size": 9, "legend.fontsize": 7.5, "axes.titlesize": 10, "lines.linewidth": 1.6,
                         "lines.markersize": 5})
    return plt


BAND_MIN_SEEDS = 3
"""Fewest seeds with a shaded 95% t-band: over 2 seeds the band is +-12.7 standard errors (t with one
degree of freedom) and filled the axes, hiding the means it was meant to qualify."""


def band_words(n: int) -> str:
    """A figure caption's account of its lines and bands over ``n`` seeds (see :data:`BAND_MIN_SEEDS`)."""
    if n >= BAND_MIN_SEEDS:
        return f"mean and 95% t-band over n = {n} seeds"
    return f"mean over n = {counted(n, 'seed')}; no band below {BAND_MIN_SEEDS} seeds"


def legend_below(fig: Any, axes: Iterable[Any], ncol: int = 3) -> None:
    """One legend for ``axes`` (each label once) below the figure, outside every plot (:func:`save`
    keeps it in the image)."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=ncol, frameon=False)


def band(ax: Any, x: Any, per_seed: list[list[float]], name: str, *, scale: float = 1.0, dashed: bool = False,
         suffix: str = "") -> None:
    """Plot the mean over seeds of ``per_seed[i]`` (values at ``x[i]``) with its 95% t-band
    (``suffix`` is appended to the legend label)."""
    stats = [mean_ci(v) for v in per_seed]
    m = np.array([s[0] for s in stats]) * scale
    h = np.array([s[1] for s in stats]) * scale
    n = max((s[2] for s in stats), default=0)
    ls = "--" if dashed or name == "bound" else "-"
    ax.plot(x, m, ls, color=COLORS.get(name), marker=MARKERS.get(name, "o"), label=f"{label(name)}{suffix} (n={n})")
    ok = np.isfinite(h) & (np.array([s[2] for s in stats]) >= BAND_MIN_SEEDS)
    if ok.any():
        ax.fill_between(np.asarray(x, float)[ok], (m - h)[ok], (m + h)[ok], color=COLORS.get(name), alpha=0.15, lw=0)


def hline(ax: Any, values: list[float], name: str, *, scale: float = 1.0) -> None:
    """A method that does not depend on the x axis: its mean as a horizontal line, the 95% band shaded."""
    m, h, n = mean_ci(values)
    if not np.isfinite(m):
        return
    ls = "--" if name == "bound" else ":"
    ax.axhline(m * scale, color=COLORS.get(name), ls=ls, lw=1.4, label=f"{label(name)} (n={n})")
    if np.isfinite(h) and n >= BAND_MIN_SEEDS:
        ax.axhspan((m - h) * scale, (m + h) * scale, color=COLORS.get(name), alpha=0.08, lw=0)


def save(fig: Any, path: Path) -> Path:
    from wdtnopt.io import atomic_write
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", bbox_inches="tight")   # legends placed outside the axes stay in
    import matplotlib.pyplot as plt
    plt.close(fig)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()), binary=True)
    return path


def fit_exponent(x: Iterable[float], y: Iterable[float]) -> tuple[float, float]:
    """Least-squares fit of ``log y = a + b log x``: the growth exponent ``b`` and its standard error."""
    lx, ly = np.log(np.asarray(list(x), float)), np.log(np.asarray(list(y), float))
    if lx.size < 2:
        return math.nan, math.nan
    A = np.vstack([np.ones_like(lx), lx]).T
    coef, res, *_ = np.linalg.lstsq(A, ly, rcond=None)
    if lx.size > 2:
        s2 = float(np.sum((ly - A @ coef) ** 2) / (lx.size - 2))
        se = math.sqrt(s2 / float(np.sum((lx - lx.mean()) ** 2)))
    else:
        se = math.nan
    return float(coef[1]), se


def csv_text(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_fmt(v) for v in r])
    return buf.getvalue()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):   # numpy's float64 too: its repr under numpy 2 is "np.float64(...)"
        v = float(v)
        return repr(v) if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))
    return v
