"""exact's per-server price rows and exchange search (docs/solvers.md, "Per-server price rows").

The rows ``sum_n eta[n, m] >= sum_n g_nm(lam) y[n, m] - lam`` must never cut off a feasible point:
they are read back from HiGHS and evaluated at every served set of small snapshots (least energies
by the independent KKT bisection of tests/test_solver_properties.py, so the brute-force optimum's
sets are among them) and at random feasible CPU splits (energies from ``physics``). The exchange
search is a start only: with it and the rows the certificate still holds against the brute force.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from wdtnopt import physics
from wdtnopt.solvers import SolverError, solve
from wdtnopt.solvers import exact
from wdtnopt.solvers.allocation import PairData, admit_server, allocate
from wdtnopt.solvers.options import ExactOptions
from wdtnopt.testing import paper_snapshot

from test_solver_properties import _crowded, brute_force, check_against, server_energy

PRICES = 10.0 ** np.arange(-6.0, 3.0)   # ref units per unit share: far below and above any KKT price


def _master(s):
    pd = PairData.of(s)
    ref = max(allocate(s, s.placement_prev, pair_data=pd).cost, 1e-300)
    return pd, exact._Master(pd, ref, ExactOptions())


def _added_rows(master, first: int):
    """The rows of HiGHS's model from ``first`` on: (lower bound, {column: coefficient})."""
    lp = master.h.getLp()
    a = lp.a_matrix_
    shape = (lp.num_row_, lp.num_col_)
    data = (np.asarray(a.value_), np.asarray(a.index_), np.asarray(a.start_))
    mat = (sp.csr_matrix(data, shape=shape) if a.format_ == type(a.format_).kRowwise
           else sp.csc_matrix(data, shape=shape).tocsr())
    out = []
    for r in range(first, lp.num_row_):
        row = mat.getrow(r)
        out.append((float(lp.row_lower_[r]), dict(zip(row.indices.tolist(), row.data.tolist()))))
    return out


def _row_value(master, m, coef, eta_sum_ref, served) -> tuple[float, float]:
    """The row at the integer point serving ``served`` on m with ``sum eta = eta_sum_ref``: its
    activity, and the most its terms are (for the tolerance)."""
    etas = {coef[master.eta[n, mm]] for (n, mm) in master.phi if mm == m}
    assert len(etas) == 1   # one eta coefficient per row
    eta = etas.pop()
    act = eta * eta_sum_ref + sum(coef.get(master.y[n, m], 0.0) for n in served)
    return act, abs(eta * eta_sum_ref) + sum(abs(coef.get(master.y[n, m], 0.0)) for n in served)


def _snapshots():
    for seed in range(6):
        yield paper_snapshot(N=5, M=2, seed=seed)
    for seed in range(12):
        yield _crowded(np.random.default_rng(seed))


def _energy_at_shares(s, n, m, p):
    F = float(s.cpu_hz[m])
    c = s.cycles_per_bit[n] * s.data_bits[n]
    t = s.deadline[n] - s.relay[n, m] - c / (F * p)
    return physics.energy_for_time(t, s.data_bits[n], s.bandwidth[n], s.noise_psd[n], s.gain[n, s.assoc[n]])


def _rows_of_small_snapshots():
    """Per snapshot of ``_snapshots`` with CPU pairs: the rows of every server at every price of
    ``PRICES``, read back from HiGHS, as (snapshot, pair data, master, {server: [(lower, coef)]})."""
    for s in _snapshots():
        pd, master = _master(s)
        if not master.phi:
            continue
        first = master.h.getNumRow()
        M = s.n_bss
        k = master.server_rows(np.repeat(np.arange(M), PRICES.size), np.tile(PRICES, M))
        rows = _added_rows(master, first)
        assert len(rows) == k > 0
        by_server: dict = {}
        for lower, coef in rows:
            m = next(mm for (n, mm) in master.phi if master.eta[n, mm] in coef)
            by_server.setdefault(m, []).append((lower, coef))
        yield s, pd, master, by_server


def test_server_rows_hold_at_every_served_set() -> None:
    checked = 0
    for s, _, master, by_server in _rows_of_small_snapshots():
        for m, rows in by_server.items():
            on = [n for (n, mm) in master.phi if mm == m]
            for r in range(len(on) + 1):
                for S in itertools.combinations(on, r):
                    e = server_energy(s, m, S)   # the least energy of S on m, by an independent bisection
                    if not math.isfinite(e):
                        continue
                    for lower, coef in rows:
                        act, size = _row_value(master, m, coef, e / master.ref, S)
                        assert act >= lower - 1e-9 * max(size, abs(lower), 1e-300), (m, S, act, lower)
                        checked += 1
    assert checked > 500


def test_server_rows_hold_at_random_feasible_splits() -> None:
    rng = np.random.default_rng(7)
    checked = 0
    for s, pd, master, by_server in _rows_of_small_snapshots():
        for m, rows in by_server.items():
            on = np.array([n for (n, mm) in master.phi if mm == m])
            pmin = pd.f_min[on, m] / pd.cpu_hz[m]
            for _ in range(20 * len(rows)):
                S = on[rng.random(on.size) < 0.6]
                lo = pmin[np.isin(on, S)]
                if lo.sum() > 1:
                    continue
                # a random feasible split: least shares plus a random part of what is left
                p = lo + rng.dirichlet(np.ones(S.size + 1))[:S.size] * (1 - lo.sum()) if S.size else lo
                e = sum(float(_energy_at_shares(s, int(n), m, q)) for n, q in zip(S, p))
                for lower, coef in rows:
                    act, size = _row_value(master, m, coef, e / master.ref, S.tolist())
                    assert act >= lower - 1e-9 * max(size, abs(lower), 1e-300)
                    checked += 1
    assert checked > 200


def test_dual_terms_are_the_minimum_of_energy_plus_priced_share_from_below() -> None:
    """``g_nm(lam) = min_p e_nm(p) + lam p`` against a fine grid of shares: never above the grid's
    minimum, and within 1e-7 of it (relative)."""
    s = paper_snapshot(N=12, M=3, seed=1)
    pd, master = _master(s)
    ns, ms = master.pair_columns()[:2]
    pmin = pd.f_min[ns, ms] / pd.cpu_hz[ms]
    for lam in PRICES:
        g = master.server_dual_terms(ns, ms, np.full(ns.size, lam))
        for i, (n, m) in enumerate(zip(ns, ms)):
            p = np.geomspace(pmin[i], 1.0, 20001)
            h = _energy_at_shares(s, int(n), int(m), p) / master.ref + lam * p
            assert g[i] <= h.min() * (1 + 1e-12)
            assert g[i] >= h.min() - 1e-7 * abs(h.min())


def test_exchange_search_and_rows_hold_against_the_brute_force() -> None:
    """Forced on every open root (``exchange_gap=0``): the certificate holds, and the search and the
    rows both ran on some of these snapshots."""
    searched = rowed = 0
    for seed in range(25):
        s = _crowded(np.random.default_rng(seed))
        check_against(s, "exact", brute_force(s), exchange_gap=0.0)
        stats = solve(s, method="exact", exchange_gap=0.0).stats
        searched += "exchange_s" in stats
        rowed += stats.get("server_rows", 0) > 0
    assert searched >= 5 and rowed >= 1, (searched, rowed)


@pytest.mark.parametrize("seed", [3, 7])
def test_exchange_search_and_rows_change_no_optimum(seed) -> None:
    s = paper_snapshot(N=30, M=5, seed=seed)
    a = solve(s, method="exact")
    b = solve(s, method="exact", exchange_gap=None)
    assert a.stats.get("server_rows", 0) > 0 and "exchange_s" not in b.stats
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective, rel=1e-6)
    assert a.bound <= b.objective * (1 + 1e-9) and b.bound <= a.objective * (1 + 1e-9)
    again = solve(s, method="exact")   # capped by rounds, not by a clock: the same numbers
    assert again.objective == a.objective and again.bound == a.bound
    assert again.stats["milp_nodes"] == a.stats["milp_nodes"]


def test_exchange_search_skips_only_what_cannot_improve() -> None:
    """With the Lagrangian screen the search takes the same steps as without it; and the screen's
    bounds are below the exact admission's cost of random hosted sets."""
    for seed in (3, 8, 9, 11):
        s = paper_snapshot(N=20, M=5, seed=seed)
        pd, master = _master(s)
        start = allocate(s, s.placement_prev, pair_data=pd)

        def dual(ns, ms, lam):
            return master.server_dual_terms(ns, ms, lam / master.ref) * master.ref

        plain = exact._exchange_search(s, pd, start, None, 20)
        screened = exact._exchange_search(s, pd, start, None, 20, dual)
        assert (plain is None) == (screened is None)
        if plain is not None:
            assert np.array_equal(plain, screened)
        req = s.request & ~s.migrating
        rng = np.random.default_rng(seed)
        res = [admit_server(pd, m, np.flatnonzero(req & (s.placement_prev == m))) for m in range(s.n_bss)]
        w, lam = exact._server_lower_terms(pd, req, res, dual)
        for _ in range(30):
            m = int(rng.integers(s.n_bss))
            hosted = np.flatnonzero(req & (rng.random(s.n_mus) < 0.4))
            cost = admit_server(pd, m, hosted).cost
            low = float(np.max(w[m][:, hosted].sum(axis=1) - lam[m]))
            assert low <= cost * (1 + 1e-9) + 1e-300, (m, hosted, low, cost)


def test_bad_exchange_options_name_their_field() -> None:
    ExactOptions(server_prices=(), exchange_gap=None)   # allowed: none
    with pytest.raises(SolverError, match="exchange_gap"):
        ExactOptions(exchange_gap=-1.0)
    with pytest.raises(SolverError, match="exchange_candidates"):
        ExactOptions(exchange_candidates=-1)
    with pytest.raises(SolverError, match="server_prices"):
        ExactOptions(server_prices=(1.0, 0.0))
    with pytest.raises(SolverError, match="server_prices"):
        ExactOptions(server_prices=[1.0])


def test_large_snapshots_take_the_large_exchange_options(monkeypatch) -> None:
    """At N M >= 500 (``exact.PRIMAL_SEED_MIN_PAIRS``) the search evaluates ``exchange_candidates_large``
    exchanges per round, below it ``exchange_candidates``; the certificate holds either way (each
    run's bound is below the objective of the run without the search)."""
    seen = []
    search = exact._exchange_search

    def spy(s, pd, best, deadline, candidates, *args, **kwargs):
        seen.append((s.n_mus * s.n_bss, candidates))
        return search(s, pd, best, deadline, candidates, *args, **kwargs)

    monkeypatch.setattr(exact, "_exchange_search", spy)
    forced = dict(exchange_gap=0.0, polish_gap=0.0, primal_seed="none", exchange_candidates=7,
                  exchange_candidates_large=11)
    for n, pairs, gap in ((30, 150, 1e-6), (100, 500, 1e-2)):
        s = paper_snapshot(N=n, M=5, seed=3)
        with_search = solve(s, method="exact", gap=gap, **forced)
        assert seen[-1] == (pairs, 7 if pairs < exact.PRIMAL_SEED_MIN_PAIRS else 11)
        without = solve(s, method="exact", gap=gap, exchange_gap=None, primal_seed="none")
        assert with_search.status == without.status == "optimal"
        assert with_search.bound <= without.objective * (1 + 1e-9)
        assert without.bound <= with_search.objective * (1 + 1e-9)
    assert len(seen) == 2


def test_bad_large_exchange_options_name_their_field() -> None:
    ExactOptions(server_prices_large=(1.0,), exchange_candidates_large=0)
    with pytest.raises(SolverError, match="exchange_candidates_large"):
        ExactOptions(exchange_candidates_large=2.5)
    with pytest.raises(SolverError, match="server_prices_large"):
        ExactOptions(server_prices_large=(1.0, -1.0))
