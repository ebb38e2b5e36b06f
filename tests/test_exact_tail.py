"""Three options of exact aimed at its tail on the default scenario (docs/solvers.md, "Exact oracle",
Loop): three-DT cycles in the exchange search (``exchange_cycles``), cuts at HiGHS's improving
solutions (``improving_cuts``) and HiGHS's branching reliability in the rounds after the first
(``later_rounds_reliability``). None may change what is certified: the optimum against the brute
force of tests/test_solver_properties.py and a bound below it; the cycles only extend the search
(its end is never dearer than without them)."""
from __future__ import annotations

import numpy as np
import pytest

from wdtnopt.errors import WdtnoptError
from wdtnopt.solvers import exact, solve
from wdtnopt.solvers.allocation import PairData, allocate
from wdtnopt.testing import paper_snapshot, tiny_snapshot

from test_solver_properties import brute_force, check_against


def _end_cost(s, pd, placement, start) -> float:
    return start.cost if placement is None else allocate(s, placement, pair_data=pd).cost


def test_cycles_only_extend_the_exchange_search(monkeypatch) -> None:
    """The search takes the same steps as without cycles until no move or exchange improves, then
    a cycle only when it lowers the exact cost: its end is never dearer; from the start exact hands
    it on the default 50 x 5 seed 100 (whose optimum is a three-DT cycle away from the search's end
    without cycles) strictly cheaper."""
    for seed in range(4):
        s = paper_snapshot(N=30, M=5, seed=seed)
        pd = PairData.of(s)
        start = allocate(s, s.placement_prev, pair_data=pd)
        plain = exact._exchange_search(s, pd, start, None, 20, admit_rounds=5)
        cyc = exact._exchange_search(s, pd, start, None, 20, admit_rounds=5, cycles=100)
        assert _end_cost(s, pd, cyc, start) <= _end_cost(s, pd, plain, start) * (1 + 1e-12), seed
    seen = []
    search = exact._exchange_search

    def spy(s, pd, best, deadline, candidates, dual_terms=None, **kwargs):
        seen.append((s, pd, best, candidates, dual_terms, kwargs))
        return search(s, pd, best, deadline, candidates, dual_terms, **kwargs)

    monkeypatch.setattr(exact, "_exchange_search", spy)
    sol = solve(paper_snapshot(N=50, M=5, seed=100), method="exact", exchange_cycles=100)
    (s, pd, best, candidates, dual_terms, kwargs), = seen
    assert kwargs == {"cycles": 100}
    plain = search(s, pd, best, None, candidates, dual_terms)
    cyc = search(s, pd, best, None, candidates, dual_terms, cycles=100)
    a, b = _end_cost(s, pd, plain, best), _end_cost(s, pd, cyc, best)
    assert b < a * (1 - 1e-6), (a, b)
    assert sol.objective <= b * (1 + 1e-12) and sol.status == "optimal"
    moved = np.flatnonzero(cyc != plain)     # the cycle taken last moves 3 DTs, each count kept
    assert moved.size >= 3


def test_cycles_and_improving_cuts_certify_the_brute_force_optimum() -> None:
    """Three servers (cycles need three hosts) with the search forced on every open root; and the
    same snapshots with the master's refinements off (two initial cuts, no root rounds, price cuts
    or polish), so that rounds follow one another and HiGHS's improving solutions are used."""
    used = 0
    for seed in (0, 1, 9, 11):
        s = tiny_snapshot(seed, N=6, M=3)
        want = brute_force(s)
        check_against(s, "exact", want, exchange_gap=0.0, polish_gap=0.0, exchange_cycles=50, improving_cuts=True)
        options = dict(improving_cuts=True, root_rounds=0, price_cuts=(), polish_rounds=0, exchange_gap=None,
                       initial_cuts=2)
        check_against(s, "exact", want, **options)
        check_against(s, "exact", want, **{**options, "improving_cuts": False, "later_rounds_reliability": 0})
        used += solve(s, method="exact", **options).stats.get("improving_solutions", 0) > 0
    assert used >= 1


@pytest.mark.parametrize("options", [dict(improving_cuts=True, exchange_cycles=100), dict(),
                                     dict(first_round_reliability=None)])
def test_the_tail_options_change_no_optimum_on_the_default_scenario(options) -> None:
    s = paper_snapshot(N=30, M=5, seed=23)
    a = solve(s, method="exact", **options)
    b = solve(s, method="exact", first_round_reliability=None, later_rounds_reliability=None)   # HiGHS's own
    assert a.status == b.status == "optimal" and a.stats["iterations"] >= 2
    assert a.objective == pytest.approx(b.objective, rel=1e-6)
    assert a.bound <= b.objective * (1 + 1e-9) and b.bound <= a.objective * (1 + 1e-9)


@pytest.mark.parametrize("name, bad", [("exchange_cycles", -1), ("exchange_cycles", 2.5), ("exchange_cycles", True),
                                       ("improving_cuts", 1), ("improving_cuts", "yes"),
                                       ("later_rounds_reliability", -1), ("later_rounds_reliability", 1.0),
                                       ("first_round_reliability", -2), ("first_round_reliability", False),
                                       ("proving_rows_gap", -1e-3), ("proving_rows_gap", "1e-3"),
                                       ("proving_rows_gap", True), ("proving_rows_gap", float("nan"))])
def test_bad_tail_options_are_refused_by_name(name, bad) -> None:
    with pytest.raises(WdtnoptError, match=f"{name} must be"):
        solve(paper_snapshot(N=6, M=2, seed=0), method="exact", **{name: bad})


def test_later_rounds_branch_with_the_asked_reliability(monkeypatch) -> None:
    """Round 0 runs with ``first_round_reliability`` (None: HiGHS's own ``mip_pscost_minreliable``,
    8), every later round with ``later_rounds_reliability`` (None: the first round's)."""
    seen = []
    start = exact._round_start

    def spy(master, stats, it, *args):
        seen.append((it, master.h.getOptionValue("mip_pscost_minreliable")[1]))
        return start(master, stats, it, *args)

    monkeypatch.setattr(exact, "_round_start", spy)
    s = paper_snapshot(N=30, M=5, seed=23)
    for first, value, want_first, later in ((None, 0, 8, 0), (None, 3, 8, 3), (None, None, 8, 8), (0, None, 0, 0),
                                            (2, 5, 2, 5)):
        seen.clear()
        sol = solve(s, method="exact", first_round_reliability=first, later_rounds_reliability=value)
        assert sol.status == "optimal" and len(seen) >= 2
        assert seen == [(0, want_first)] + [(it, later) for it in range(1, len(seen))]


def test_proving_rows_certify_the_brute_force_optimum(monkeypatch) -> None:
    """``proving_rows_gap``: the per-server price rows are added before a round only where the last
    round's solution is the incumbent and its bound is within the gap, at most once; the optimum and
    a bound below it are the brute force's (seeds 9 and 11 take two rounds and the rows)."""
    calls = []
    add = exact._add_server_price_rows

    def spy(master, opts, large, stats):
        calls.append(stats["iterations"])
        return add(master, opts, large, stats)

    monkeypatch.setattr(exact, "_add_server_price_rows", spy)
    added = 0
    for seed in (0, 9, 11, 13):
        s = tiny_snapshot(seed, N=6, M=3)
        want = brute_force(s)
        # the root's prices kept (the rows are priced there), its price cuts and the polish off
        options = dict(price_cuts=(), polish_rounds=0, exchange_gap=None, initial_cuts=2)
        check_against(s, "exact", want, proving_rows_gap=1.0, **options)
        calls.clear()
        sol = solve(s, method="exact", proving_rows_gap=1.0, **options)
        assert len(calls) <= 1 and all(it >= 1 for it in calls), calls   # (not before round 0)
        added += sol.stats.get("server_rows", 0) > 0
        calls.clear()
        assert "server_rows" not in solve(s, method="exact", **options).stats and not calls
    assert added >= 2


def test_proving_rows_change_no_optimum_on_the_default_scenario() -> None:
    s = paper_snapshot(N=30, M=5, seed=23)
    a = solve(s, method="exact", proving_rows_gap=1.0)
    b = solve(s, method="exact")
    assert a.status == b.status == "optimal" and a.stats["iterations"] >= 2
    assert a.objective == pytest.approx(b.objective, rel=1e-6)
    assert a.bound <= b.objective * (1 + 1e-9) and b.bound <= a.objective * (1 + 1e-9)


def test_the_exchange_search_stops_within_a_round_at_its_deadline(monkeypatch) -> None:
    """The exchange search (exact's start, fast's extra rounds) checked its deadline only between
    rounds, and a round evaluates every move and up to ``candidates`` exchanges, one allocation per
    touched server each: at default 1000 x 50 fast ran 0.2-0.35 s past ``time_limit`` in it (0.03-0.05
    s with ``exchange_candidates=0``). With a clock that passes the deadline after the round's first
    candidate, the search must allocate no more than that candidate's servers (a few), where the
    whole round allocates many."""
    s = paper_snapshot(N=30, M=5, seed=0)
    pd = PairData.of(s)
    start = allocate(s, s.placement_prev, pair_data=pd)
    calls = []
    real = exact.allocate_server

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(exact, "allocate_server", counted)
    exact._exchange_search(s, pd, start, None, 20, kept_rounds=1, admit_rounds=0)
    whole_round = len(calls)
    assert whole_round > 20
    ticks = iter(range(10**6))
    monkeypatch.setattr(exact, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: float(next(ticks)))}))
    calls.clear()
    exact._exchange_search(s, pd, start, 1.5, 20, kept_rounds=1, admit_rounds=0)   # past it from the 2nd check
    assert len(calls) <= 5 + s.n_bss, (len(calls), whole_round)
