"""Every method, on the whole kind of input the contract accepts, against an independent brute force.

Property (hypothesis, N <= 4, M <= 2): failure penalties 0 or 1e-12 .. 1e12 J, gains 1e-16 .. 1e-3,
data 1 .. 1e10 bit, CPU 0 or 1e6 .. 1e12 Hz, empty request / served / migrating sets, one MU, one
server, a server down and DTs not allowed to move, and starts costing ~1e12 J next to optima of
nano- to millijoules (``_scale_trap``). For every method: the decision is accepted by ``evaluate`` and its objective is
``evaluate``'s; the bound is at most the optimum (1e-9 relative); ``optimal`` implies the objective
is within the asked gap of the optimum; ``infeasible`` exactly when no placement fits; nothing
raises (the property test does not uninstall back ends: a missing one skips).

The brute force shares nothing with the solvers but ``physics.energy_for_time`` /
``physics.min_tx_time`` (the model's energy law) and evaluate's storage tolerance: it enumerates
every placement and every served set, and allocates one server's CPU for a served set by bisection
on the CPU price, each MU's CPU by bisection on its own KKT condition (both in logs, so that no slope
under- or overflows at data of 1e-300 bits). It returns the cost of a
feasible point (the CPU split at the upper end of the price bracket), so it is never below the
optimum, and above it only by the second-order effect of a 1e-12-relative price bracket.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wdtnopt import physics
from wdtnopt.cost import FEAS_RTOL, evaluate
from wdtnopt.snapshot import Snapshot
from wdtnopt.solvers import SolverError, solve

CASES = Path(__file__).parent / "data" / "solver_cases"
CASE_OPTIMA = {  # from tests/data/solver_cases/README.md (an independent brute force)
    "penalty_1e12_2x2.json": 0.05410175601868296,
    "penalties_1e-12.json": 5e-12,
    "serves_nobody_1x1.json": 0.0,
    "no_request_1x1.json": 0.0,
}
METHODS = ("exact", "fast", "relaxation", "pyomo")
GAP = {"exact": 1e-6, "fast": 1e-2, "relaxation": 1e-6, "pyomo": 1e-6}
TIME_LIMIT_S = {"exact": 60.0, "fast": 60.0, "relaxation": 60.0, "pyomo": 10.0}  # SCIP may stop at time_limit


# -- the brute force -------------------------------------------------------------------------------
def _energy(s: Snapshot, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    g = s.gain[n, s.assoc[n]]
    return physics.energy_for_time(t, s.data_bits[n], s.bandwidth[n], s.noise_psd[n], g)


def _log_neg_slope(s: Snapshot, n: np.ndarray, T: np.ndarray, tmin: np.ndarray, c: np.ndarray,
                   f: np.ndarray) -> np.ndarray:
    """``log(-d/df E_n(t))`` (of J per cycle/s) at ``t = max(T - c/f, tmin)``, from ``E(t) = k t (e^u - 1)``,
    ``u = D ln2 / (B t)``: ``-dE/df = k q(u) c / f^2`` with ``q(u) = u e^u - e^u + 1``, taken in logs so
    that no factor under- or overflows. (The slope in J s, floored at 1e-300 J s in the price
    bisection, underflowed at data of 1e-100 bits, and ``T - c/f`` rounded to 0 at ``fmin`` where
    ``tmin`` is below ``T``'s rounding unit: the CPU was not split, at a cost up to 37 times the
    optimum's on a crowded server.)"""
    g = s.gain[n, s.assoc[n]]
    log_k = np.log(s.noise_psd[n]) + np.log(s.bandwidth[n]) - np.log(g)
    t = np.maximum(T - c / f, tmin)
    u = s.data_bits[n] * math.log(2) / (s.bandwidth[n] * t)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        log_q = np.where(u < 1e-4, 2.0 * np.log(u) + np.log(0.5 + u / 3.0),            # q ~ u^2 / 2 (1 + 2u / 3)
                         np.where(u < 500.0, np.log(u * np.exp(u) - np.expm1(u)),
                                  u + np.log(u - 1.0 + np.exp(-u))))                  # e^u past the largest float
    return log_k + log_q + np.log(c) - 2.0 * np.log(f)


def server_energy(s: Snapshot, m: int, served: tuple[int, ...]) -> float:
    """Least energy of serving ``served`` on server ``m`` (inf if impossible)."""
    if not served:
        return 0.0
    n = np.array(served)
    g = s.gain[n, s.assoc[n]]
    T = s.deadline[n] - s.relay[n, m]
    tmin = physics.min_tx_time(s.data_bits[n], s.bandwidth[n], s.noise_psd[n], g, s.p_max[n])
    c = s.cycles_per_bit[n] * s.data_bits[n]
    F = float(s.cpu_hz[m])
    if not np.isfinite(tmin).all() or (T < tmin).any():
        return math.inf
    busy = c > 0
    idle = float(_energy(s, n[~busy], T[~busy]).sum()) if (~busy).any() else 0.0
    if not busy.any():
        return idle
    nb, Tb, tb, cb = n[busy], T[busy], tmin[busy], c[busy]
    if F <= 0 or (Tb <= tb).any():
        return math.inf
    fmin = cb / (Tb - tb)
    if fmin.sum() > F:
        return math.inf

    def f_at(log_lam: float) -> np.ndarray:
        """Each MU's CPU at the price exp(log_lam): fmin if its slope there is below it, else the root in
        [fmin, F] (by bisection on log f)."""
        lo, hi = np.log(fmin), np.full(fmin.size, math.log(F))
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            up = _log_neg_slope(s, nb, Tb, tb, cb, np.exp(mid)) > log_lam  # still worth more CPU
            lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
        f = np.exp(hi)
        return np.where(_log_neg_slope(s, nb, Tb, tb, cb, fmin) <= log_lam, fmin, np.minimum(f, F))

    def energy(f: np.ndarray) -> float:
        return idle + float(_energy(s, nb, np.maximum(Tb - cb / f, tb)).sum())

    if nb.size == 1:
        return energy(np.array([F]))
    if fmin.sum() >= F * (1 - 1e-15):
        return energy(fmin)
    # the log-price bracket: at lam_hi every MU takes fmin (fits); at lam_lo every MU asks for all of F
    lam_hi = float(_log_neg_slope(s, nb, Tb, tb, cb, fmin).max()) + math.log(2.0)
    lam_lo = float(_log_neg_slope(s, nb, Tb, tb, cb, np.full(nb.size, F)).min()) - math.log(2.0)
    for _ in range(200):
        if lam_hi - lam_lo <= 1e-12:   # a 1e-12-relative price bracket
            break
        mid = 0.5 * (lam_lo + lam_hi)
        if f_at(mid).sum() <= F:
            lam_hi = mid
        else:
            lam_lo = mid
    f = f_at(lam_hi)
    f = f * min(1.0, F / f.sum())  # stays feasible at the last round-off
    f = np.maximum(f, fmin)
    return energy(f)


def brute_force(s: Snapshot) -> float:
    """Least objective over every placement (storage within evaluate's tolerance) and served set."""
    N, M = s.n_mus, s.n_bss
    req = np.flatnonzero(s.request & ~s.migrating)
    memo: dict[tuple[int, tuple[int, ...]], float] = {}
    energy_memo: dict[tuple[int, tuple[int, ...]], float] = {}

    def energy(m: int, sub: tuple[int, ...]) -> float:
        if (m, sub) not in energy_memo:
            energy_memo[m, sub] = server_energy(s, m, sub)
        return energy_memo[m, sub]

    up = np.ones(M, dtype=bool) if s.server_up is None else np.asarray(s.server_up, dtype=bool)

    def server_cost(m: int, hosted: tuple[int, ...]) -> float:
        if (m, hosted) not in memo:
            best = math.inf
            for r in range(len(hosted) + 1 if up[m] else 1):  # a down server serves nobody
                for sub in itertools.combinations(hosted, r):
                    rest = sum(float(s.failure_penalty[i]) for i in hosted if i not in sub)
                    best = min(best, energy(m, sub) + rest)
            memo[m, hosted] = best
        return memo[m, hosted]

    mask = np.ones(N, dtype=bool) if s.migration_mask is None else np.asarray(s.migration_mask, dtype=bool)
    movable = ~s.migrating & bool(s.allow_migration) & mask
    prev = [int(p) for p in s.placement_prev]
    # a DT moves only onto a server that is up (it may stay on a down one)
    choices = [[m for m in range(M) if up[m] or m == prev[n]] if movable[n] else [prev[n]] for n in range(N)]
    fixed = float(s.failure_penalty[s.request & s.migrating].sum())
    best = math.inf
    for pl in itertools.product(*choices):
        pl = np.array(pl, dtype=np.int64)
        load = np.bincount(pl, weights=s.dt_size_bits, minlength=M)
        if (load > s.storage_bits * (1 + FEAS_RTOL)).any():
            continue
        cost = fixed + float(s.migration_penalty[pl != s.placement_prev].sum())
        for m in range(M):
            cost += server_cost(m, tuple(int(i) for i in req if pl[i] == m))
        best = min(best, cost)
    return best


def test_brute_force_on_a_hand_computed_case() -> None:
    """One MU alone on one server with all of its CPU: E(T - c/F), by hand from the energy law."""
    s = _snapshot(1, 1, gain=[[1e-10]], cpu_hz=[1e9], data_bits=[1e6], cycles_per_bit=[100.0], deadline=[0.5],
                  failure_penalty=[1.0])
    t = 0.5 - 1e8 / 1e9
    want = 4e-21 * 1e6 * t * (2 ** (1e6 / (1e6 * t)) - 1) / 1e-10
    assert brute_force(s) == pytest.approx(want, rel=1e-12)
    # two MUs sharing one server: the KKT split beats every other split on a fine grid
    s2 = _snapshot(2, 1, gain=[[1e-10], [3e-11]], cpu_hz=[2e9], data_bits=[1e6, 2e6], cycles_per_bit=[100.0, 50.0],
                   deadline=[0.5, 0.6], failure_penalty=[1.0, 1.0])
    grid = np.linspace(1e-3, 1 - 1e-3, 4001) * 2e9
    T, c = np.array([0.5, 0.6]), np.array([1e8, 1e8])
    n = np.array([0, 1])
    e = [float(_energy(s2, n, T - c / np.array([f, 2e9 - f])).sum()) if f > 0 else math.inf for f in grid]
    assert server_energy(s2, 0, (0, 1)) <= min(e) * (1 + 1e-12)
    assert server_energy(s2, 0, (0, 1)) >= min(e) * (1 - 1e-4)


# -- snapshots of the whole kind -----------------------------------------------------------------
def _snapshot(N: int, M: int, **over) -> Snapshot:
    d = {
        "gain": np.full((N, M), 1e-10), "assoc": np.zeros(N, dtype=int), "bandwidth": np.full(N, 1e6),
        "noise_psd": np.full(N, 4e-21), "p_max": np.full(N, 0.2), "data_bits": np.full(N, 1e6),
        "cycles_per_bit": np.full(N, 100.0), "deadline": np.full(N, 0.5), "request": np.ones(N, dtype=bool),
        "dt_size_bits": np.full(N, 1e8), "cpu_hz": np.full(M, 1e10), "storage_bits": np.full(M, 1e9),
        "backhaul_latency_s": 0.01 * (1 - np.eye(M)), "backhaul_s_per_bit": 1e-9 * (1 - np.eye(M)),
        "placement_prev": np.zeros(N, dtype=int), "migrating": np.zeros(N, dtype=bool),
        "failure_penalty": np.ones(N), "migration_penalty": np.full(N, 1e-3), "allow_migration": True,
    }
    d.update({k: np.asarray(v) if not isinstance(v, bool) else v for k, v in over.items()})
    return Snapshot.from_dict(d)


@st.composite
def snapshots(draw) -> Snapshot:
    """Snapshots of the whole kind: hypothesis draws a seed, numpy draws the fields from it.

    (Drawing every field through hypothesis favours its "simplest" values so much that almost no
    example served anyone.) Each scaled field is drawn from a moderate range (where MUs are served
    and compete for CPU and storage) or, with probability 1/3 per field, from the contract's whole
    range; each set is empty with probability 1/4.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    u = rng.random()
    if u < 0.2:
        return _scale_trap(rng)
    if u < 0.6:
        return _crowded(rng)
    N = int(rng.integers(1, 5))
    M = int(rng.integers(1, 3))

    def mixed(moderate, extreme, size, zero=0.0):
        lo, hi = np.where(rng.random(size) < 1 / 3, extreme[0], moderate[0]), np.where(
            rng.random(size) < 1 / 3, extreme[1], moderate[1])
        x = 10.0 ** rng.uniform(lo, hi)
        return np.where(rng.random(size) < zero, 0.0, x)

    def flags(p_true):
        kind = rng.integers(4)  # empty, full, or random
        return np.zeros(N, bool) if kind == 0 else np.ones(N, bool) if kind == 1 else rng.random(N) < p_true

    migrating = flags(0.3) if rng.random() < 0.3 else np.zeros(N, bool)
    return _snapshot(
        N, M, gain=mixed((-13, -8), (-16, -3), (N, M)), assoc=rng.integers(0, M, N),
        bandwidth=10.0 ** rng.uniform(5.5, 7.3, N), data_bits=mixed((4, 6), (0, 10), N),
        cycles_per_bit=rng.choice([0.0, 10.0, 100.0, 300.0], N), deadline=rng.uniform(0.05, 1.0, N),
        request=flags(0.7), migrating=migrating, dt_size_bits=10.0 ** rng.uniform(6, 8, N),
        cpu_hz=mixed((8.5, 10), (6, 12), M, zero=0.15), storage_bits=rng.uniform(0.5, 4.0, M) * 1e8,
        placement_prev=rng.integers(0, M, N), failure_penalty=mixed((-4, 1), (-12, 12), N, zero=0.1),
        migration_penalty=mixed((-4, 0), (-12, 12), N, zero=0.1), allow_migration=bool(rng.random() < 0.8))


def _crowded(rng: np.random.Generator) -> Snapshot:
    """Every DT on server 0, which is short of CPU (and sometimes of storage): moving, admission and
    CPU sharing all matter. One field at a time may take an extreme value of the contract's range."""
    N, M = int(rng.integers(2, 5)), 2
    f = {
        "gain": 10.0 ** rng.uniform(-12, -9, (N, M)), "assoc": rng.integers(0, M, N),
        "bandwidth": np.full(N, 1e6), "data_bits": 10.0 ** rng.uniform(5, 6.3, N),
        "cycles_per_bit": rng.choice([100.0, 300.0, 1000.0], N), "deadline": rng.uniform(0.3, 1.0, N),
        "request": rng.random(N) < 0.9, "dt_size_bits": 10.0 ** rng.uniform(7, 8, N),
        "cpu_hz": np.array([1.0, 3.0]) * 10.0 ** rng.uniform(8.5, 9.5), "storage_bits": np.full(M, 4e8),
        "placement_prev": np.zeros(N, dtype=int), "failure_penalty": 10.0 ** rng.uniform(-3, 0, N),
        "migration_penalty": 10.0 ** rng.uniform(-6, -3, N),
    }
    if rng.random() < 0.25:  # a server down, some DTs not allowed to move (docs/model.md, section 12)
        f["server_up"] = np.array([True, False]) if rng.random() < 0.5 else np.array([False, True])
        f["migration_mask"] = rng.random(N) < 0.7
    extreme = rng.integers(8)
    if extreme == 0:
        f["failure_penalty"] = 10.0 ** rng.choice([-12.0, 12.0], N)
    elif extreme == 1:
        f["gain"][:, :] = 10.0 ** rng.choice([-16.0, -3.0])
    elif extreme == 2:
        f["data_bits"][rng.integers(N)] = 10.0 ** rng.choice([0.0, 10.0])
    elif extreme == 3:
        f["cpu_hz"][rng.integers(M)] = rng.choice([0.0, 1e12])
    elif extreme == 4:
        f["storage_bits"][0] = float(f["dt_size_bits"].sum()) * 0.6  # not everyone fits on 0
    elif extreme == 5:
        f["migration_penalty"][:] = 10.0 ** rng.choice([-12.0, 12.0])
    return _snapshot(N, M, **f)


def _scale_trap(rng: np.random.Generator) -> Snapshot:
    """A start costing about 1e12 J next to an optimum of micro- to nanojoules.

    Failure penalties mixed from 1e12, 1e-12 and moderate values; every DT starts on server 0, which
    has no CPU (or is down), so the previous placement fails every request there and costs the sum
    of their penalties, while server 1 serves them cheaply (a move costs 1e-12 .. 1e-3 J). A solver
    whose bound rests on tolerances measured in units of its first incumbent reports bounds above
    the optimum here (an exact master scaled by 1e12 J once gave a bound 37% above an optimum of
    1.6e-4 J).
    """
    N, M = int(rng.integers(2, 4)), 2
    pen = rng.choice([1e12, 1e-12, 1e-3], N)
    pen[rng.integers(N)] = 1e12
    pen[rng.integers(N)] = 1e-12 if N > 1 else pen[0]
    f = {
        "gain": 10.0 ** rng.uniform(-11, -9, (N, M)), "assoc": rng.integers(0, M, N),
        "data_bits": 10.0 ** rng.uniform(3, 6, N), "cycles_per_bit": rng.choice([10.0, 100.0], N),
        "deadline": rng.uniform(0.3, 1.0, N), "request": rng.random(N) < 0.9, "dt_size_bits": np.full(N, 1e8),
        "cpu_hz": np.array([0.0, 10.0 ** rng.uniform(9, 10.5)]), "storage_bits": np.array([1e9, 1e8 * (N - rng.integers(0, 2))]),
        "placement_prev": np.zeros(N, dtype=int), "failure_penalty": pen,
        "migration_penalty": 10.0 ** rng.uniform(-12, -3, N),
    }
    if rng.random() < 0.3:  # server 0 down instead of CPU-less
        f["cpu_hz"][0] = 1e10
        f["server_up"] = np.array([False, True])
    return _snapshot(N, M, **f)


# -- the property --------------------------------------------------------------------------------
def check_against(s: Snapshot, method: str, optimum: float, **options) -> None:
    gap = GAP[method]
    try:
        sol = solve(s, method=method, gap=gap, time_limit=TIME_LIMIT_S[method], **options)
    except SolverError as exc:  # only a missing back end may raise
        if "pip install" in str(exc):
            pytest.skip(str(exc))
        raise
    if not math.isfinite(optimum):
        assert sol.status in ("infeasible", "bound_only"), (sol.status, sol.objective)
        return
    assert sol.status != "infeasible", "a placement fits the storage"
    assert sol.bound <= optimum * (1 + 1e-9) or sol.bound <= optimum + 1e-300, (sol.bound, optimum, sol.stats)
    if sol.status == "bound_only":
        return
    ev = evaluate(s, sol)
    assert not ev.violations, ev.violations
    assert sol.objective == ev.objective
    assert sol.objective >= optimum * (1 - 1e-9), (sol.objective, optimum)  # the brute force is optimal
    assert sol.gap == pytest.approx((sol.objective - sol.bound) / sol.objective if sol.objective > 0 else 0.0)
    if sol.status == "optimal":
        assert sol.success
        assert sol.objective <= optimum + gap * sol.objective * (1 + 1e-9) + 1e-300, (sol.objective, optimum, sol.stats)


@pytest.mark.parametrize("name", sorted(CASE_OPTIMA))
@pytest.mark.parametrize("method", METHODS)
def test_shared_cases(method: str, name: str) -> None:
    s = Snapshot.load(CASES / name)
    assert brute_force(s) == pytest.approx(CASE_OPTIMA[name], rel=1e-9, abs=1e-300)
    check_against(s, method, CASE_OPTIMA[name])


def test_case_optima_match_the_readme() -> None:
    text = (CASES / "README.md").read_text()
    for name, opt in CASE_OPTIMA.items():
        assert f"| {name} | {opt!r} |" in text or f"| {name} | {opt} |" in text, name


EXAMPLES = {"exact": 40, "fast": 40, "relaxation": 25, "pyomo": 10}
SCALE = float(os.environ.get("WDTNOPT_PROPERTY_SCALE", "1"))  # e.g. 10 for a longer search (not in CI)


def _property(method: str):
    @settings(max_examples=max(1, int(EXAMPLES[method] * SCALE)), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(s=snapshots())
    def run(s: Snapshot) -> None:
        check_against(s, method, brute_force(s))
    return run


@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_the_whole_kind(method: str) -> None:
    _property(method)()


def test_exact_with_the_fast_start_on_the_whole_kind() -> None:
    """exact seeded by the fast method (its decision and its Lagrangian bound; automatic on large
    snapshots) keeps every property on the whole kind, traps included."""
    @settings(max_examples=max(1, int(20 * SCALE)), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(s=snapshots())
    def run(s: Snapshot) -> None:
        check_against(s, "exact", brute_force(s), primal_seed="fast")
    run()


TRAP_EXAMPLES = {"exact": 40, "fast": 25, "relaxation": 10}


@pytest.mark.parametrize("method", sorted(TRAP_EXAMPLES))
def test_bound_below_the_optimum_when_the_start_costs_1e12(method: str) -> None:
    """Starts of ~1e12 J, optima of nano- to millijoules, penalties mixed from 1e12 and 1e-12: the
    bound stays below the brute force (exact's once came out 37% above it: HiGHS's tolerances in
    units of the first incumbent). Checked: with exact's rescaling, derating, Lagrangian floor and
    second start removed, this test fails (a bound of 1.0e-3 J over an optimum of 2.3e-4 J)."""
    @settings(max_examples=max(1, int(TRAP_EXAMPLES[method] * SCALE)), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        s = _scale_trap(np.random.default_rng(seed))
        check_against(s, method, brute_force(s))
    run()


def test_allocate_with_nobody_served_is_the_penalties() -> None:
    """The public ``allocate`` with an all-False served set: everyone requesting fails, no crash."""
    from wdtnopt.solvers.allocation import allocate

    for path in sorted(CASES.glob("*.json")):
        s = Snapshot.load(path)
        a = allocate(s, s.placement_prev, served=np.zeros(s.n_mus, dtype=bool))
        want = float(s.failure_penalty[s.request].sum())
        assert a.cost == pytest.approx(want, rel=1e-12) and not a.served.any(), path.name
        assert a.server_cost.dtype == float
    json.dumps(a.server_cost.tolist())
