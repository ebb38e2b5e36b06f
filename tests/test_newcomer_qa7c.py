"""A newcomer's pass (7c): the suites' reports write ``mean ± 95% t half-width`` one way.

The half-width is computed here from its closed form, t_{0.975, n-1} s / sqrt(n) with s the sample
standard deviation, and compared with the cells of the paper, resilience and mobility reports for
n = 1 (the value itself, no interval), 2 and 5 seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from wdtnopt.benchmarks.suites import load_config, style
from wdtnopt.benchmarks.suites import mobility, paper, resilience

# per-seed values chosen off rounding ties at the digits the reports print
SAMPLES = {1: [0.1234567], 2: [0.1234567, 0.1617283], 5: [0.1234567, 0.1617283, 0.0987654, 0.1422222, 0.1111111]}


def _closed_form(values, scale=1.0):
    """Mean and 95% t half-width (nan for one value) of ``values * scale``, from the formula."""
    v = np.asarray(values, float) * scale
    n = v.size
    if n == 1:
        return float(v[0]), math.nan
    return float(v.mean()), float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))


def _cell(values, scale=1.0, digits=4):
    m, h = _closed_form(values, scale)
    return f"{m:.{digits}g}" if math.isnan(h) else f"{m:.{digits}g} ± {h:.2g}"


def _gap_cell(values):
    m, h = _closed_form(values, 100.0)
    return f"{m:.1f}%" if math.isnan(h) else f"{m:.1f} ± {h:.1f}%"


@pytest.mark.parametrize("n", [1, 2, 5])
def test_half_width_is_the_closed_form_t_interval(n):
    m, h, k = style.mean_ci(SAMPLES[n])
    m0, h0 = _closed_form(SAMPLES[n])
    assert k == n and m == pytest.approx(m0, rel=1e-12)
    assert math.isnan(h) if n == 1 else h == pytest.approx(h0, rel=1e-12)
    if n == 2:   # t with one degree of freedom: 12.706 standard errors
        assert h == pytest.approx(12.706204736 * np.std(SAMPLES[2], ddof=1) / math.sqrt(2), rel=1e-9)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_paper_and_resilience_cells_use_the_t_half_width(n):
    v = SAMPLES[n]
    # paper: every cell is _fmt of style.mean_ci; energies in mJ, gaps (ratios) in percent
    assert paper._fmt(*style.mean_ci(v)[:2]) == _cell(v)
    assert paper._fmt(*style.mean_ci(v)[:2], 1e3) == _cell(v, 1e3)
    assert paper._fmt(*style.mean_ci(v)[:2], 100, percent=True) == _gap_cell(v)
    # resilience: the same cell and the count of values behind it
    assert resilience._ci(v) == f"{_cell(v)} (n={n})"
    assert resilience._ci(v, 1e3, digits=3) == f"{_cell(v, 1e3, 3)} (n={n})"
    assert resilience._ci(v, 100, percent=True) == f"{_gap_cell(v)} (n={n})"
    assert paper._fmt(math.nan, math.nan) == resilience._ci([]) == "-"
    if n == 1:
        assert "±" not in paper._fmt(*style.mean_ci(v)[:2]) + resilience._ci(v)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_mobility_report_uses_the_t_half_width(n, tmp_path):
    cfg = {**load_config("mobility", "smoke"), "seeds": list(range(n)), "policies": ["static"]}
    energy = {"gauss-markov": SAMPLES[n], "sumo-grid": [x + 0.05 * (i + 1) ** 0.5 for i, x in enumerate(SAMPLES[n])]}
    gap = {"gauss-markov": [x / 10 for x in SAMPLES[n]], "sumo-grid": [x / 7 for x in SAMPLES[n]]}
    records = []
    for mob in ("gauss-markov", "sumo-grid"):
        for s in range(n):
            pol = {"energy_per_mu_slot": energy[mob][s] * 1e-3, "failure_ratio": 0.0, "migrations": 0.0,
                   "gap": gap[mob][s], "bound_per_mu_slot": energy[mob][s] * 1e-3 / (1 + gap[mob][s])}
            records.append({"config": {"mobility": mob, "seed": s},
                            "result": {"policies": {"static": pol}, "mean_speed_mps": 10.0, "assoc_changes_per_mu_slot": 0.1,
                                       "bound_per_mu_slot": pol["bound_per_mu_slot"], "cleaning": None}})
    info = {"command": "test", "machine": "test", "date": "test"}
    mobility.render(cfg, records, tmp_path, info)
    report = (tmp_path / "report.md").read_text()
    for mob in ("gauss-markov", "sumo-grid"):
        # energy per MU per slot in mJ (records hold J), gap in percent of the bound
        e = [x * 1e-3 for x in energy[mob]]
        zero = _cell([0.0] * n, digits=3)   # no failures, no migrations: "0 ± 0" over several seeds
        assert f"| {mob} | static | {_cell(e, 1e3)} | {zero} | {zero} | {_gap_cell(gap[mob])} |" in report
    diff = [(b - a) * 1e-3 for a, b in zip(energy["gauss-markov"], energy["sumo-grid"])]
    assert f"| static | {_cell(diff, 1e3)} | {zero} | {zero} |" in report
    assert ("±" in report) == (n > 1)
