"""One frozen options dataclass per method of :func:`wdtnopt.solvers.solve`.

Every field has a unit (or says it is dimensionless) and a default; :meth:`SolverOptions.build`
turns ``solve``'s keyword arguments into an instance and rejects an unknown option with a
:class:`~wdtnopt.solvers.SolverError` that names it and lists the valid ones. Values are checked in
``__post_init__`` (a bad value names its field). This module imports the standard library only.
"""
from __future__ import annotations

import dataclasses
import math
import typing
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

from wdtnopt.fieldtypes import as_field_type


def max_threads() -> int:
    """The most ``threads`` an option set keeps: the CPUs this process may run on
    (:func:`wdtnopt.parallel.default_workers`: its CPU affinity, which a container or ``taskset`` can
    make smaller than ``os.cpu_count()``; 1 if unknown).

    More threads than CPUs cannot run at once, yet HiGHS starts them all (``threads=500`` on a 4 x 2
    snapshot took 4 s against 0.06 s; docs/solvers.md, "Options"): a larger value is capped to this
    with a ``RuntimeWarning`` naming ``threads`` (a script written for a bigger machine still runs).
    """
    from wdtnopt.parallel import default_workers

    return default_workers()


THREADS_HELP = ("Threads the back end may use (HiGHS, SCIP); more than the CPUs this process may use are capped "
                "to them with a warning")
"""What ``threads`` means, for the option's docs and ``wdtnopt solve --threads``'s help."""


def threads_capped_message(threads: int, spelled: str = "threads=") -> str:
    """The warning of a ``threads`` above :func:`max_threads` (one line; the option is then capped),
    the option written as ``spelled`` and its value (``"--threads "`` on the command line)."""
    return (f"{spelled}{threads} is more than the {max_threads()} CPUs this process may use; "
            f"using {spelled}{max_threads()}")


def capped_threads(threads: int, spelled: str = "threads=") -> tuple[int, str | None]:
    """``threads`` capped to :func:`max_threads`, and the warning to give (None when kept): the one
    rule of the option set and of ``wdtnopt solve --threads`` (which says it on one line)."""
    if threads > max_threads():
        return max_threads(), threads_capped_message(threads, spelled)
    return threads, None


def _tuple_form(value: Any) -> str:
    """How a tuple option is written, in Python and on the command line: said when ``value`` is no tuple."""
    return "" if isinstance(value, tuple) else \
        " (a tuple: (1.0,) or (0.7, 1.0, 1.4); with wdtnopt solve: --option NAME=1.0, or NAME=0.7,1,1.4)"


def _error(msg: str) -> Exception:
    from . import SolverError

    return SolverError(msg)


@dataclass(frozen=True)
class SolverOptions:
    """Options every method takes."""

    gap: float = 1e-6
    """Asked relative optimality gap ``(objective - bound) / objective`` (dimensionless, >= 0)."""
    time_limit: float | None = None
    """Wall-clock limit in s (None: none); the method then stops with status ``time_limit``."""
    threads: int = 1
    """:data:`THREADS_HELP` (:func:`max_threads`); methods without threads ignore it."""
    max_iterations: int = 10_000
    """Cap on the method's outer iterations (decomposition rounds, dual steps); then ``feasible``."""
    verbose: bool = False
    """Print one progress line per iteration (and the back end's log where it has one)."""

    method = "any"  # class attribute, not an option: the method these options belong to

    def __post_init__(self) -> None:
        bad = self._coerce_types()
        if bad:   # the range checks below compare numbers: a word there would be a TypeError
            raise _error(f"method {self.method!r}: " + "; ".join(bad))
        if not (isinstance(self.gap, (int, float)) and self.gap >= 0):
            bad.append(f"gap must be a number >= 0, got {self.gap!r}")
        tl = self.time_limit
        if tl is not None and not (isinstance(tl, (int, float)) and tl > 0):
            bad.append(f"time_limit must be > 0 seconds or None, got {tl!r}")
        if not (isinstance(self.threads, int) and self.threads >= 1):
            bad.append(f"threads must be an integer >= 1, got {self.threads!r}")
        else:
            threads, capped = capped_threads(self.threads)
            if capped:
                warnings.warn(capped, RuntimeWarning, stacklevel=4)
                object.__setattr__(self, "threads", threads)
        if not (isinstance(self.max_iterations, int) and self.max_iterations >= 1):
            bad.append(f"max_iterations must be an integer >= 1, got {self.max_iterations!r}")
        bad += self._check()
        if bad:
            raise _error(f"method {self.method!r}: " + "; ".join(bad))

    def _check(self) -> list[str]:
        return []

    def _coerce_types(self) -> list[str]:
        """One line per option whose value is not of the field's type (wdtnopt/fieldtypes.py: an int
        is a float, a bool is no number); numbers of numpy types are stored as Python's."""
        bad = []
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, want = as_field_type(getattr(self, f.name), hints[f.name])
            if want is not None:
                bad.append(f"{f.name} must be {want}, got {value!r}")
            else:
                object.__setattr__(self, f.name, value)
        return bad

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The valid option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def build(cls, options: "SolverOptions | None" = None, overrides: Mapping[str, Any] | None = None):
        """An instance from ``options`` (or the defaults) with ``overrides`` applied.

        Raises
        ------
        SolverError
            An override names no field (the message lists the valid names), or a value is invalid.
        """
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(cls.names()))
        if unknown:
            raise _error(f"method {cls.method!r} has no option {', '.join(map(repr, unknown))}: "
                         f"valid options are {', '.join(cls.names())}")
        if options is None:
            return cls(**overrides)
        if not isinstance(options, cls):
            raise _error(f"method {cls.method!r} takes {cls.__name__}, got {type(options).__name__}")
        return dataclasses.replace(options, **overrides) if overrides else options

    @property
    def deadline_after(self) -> float:
        """``time_limit`` or ``inf``."""
        return math.inf if self.time_limit is None else float(self.time_limit)


@dataclass(frozen=True)
class ExactOptions(SolverOptions):
    """Options of ``method="exact"`` (solvers/exact.py)."""

    oracle: str = "kkt"
    """Convex subproblem oracle: ``"kkt"`` (solvers/allocation.py, default) or ``"cvxpy"`` (the DPP
    allocation problem of formulations/cvxpy_models.py solved by Clarabel, needs cvxpy)."""
    initial_cuts: int = 8
    """Tangent cuts per (MU, server) pair on a geometric grid of CPU shares before the first master."""
    initial_first_step: float | None = None
    """None: the ``initial_cuts`` shares are geometric from the pair's least share to 1. A number in
    (0, 1]: they are ``pmin + (1 - pmin) r`` with ``r`` geometric from it to 1 (and ``pmin``), crowded
    where the energy is steepest (solvers/fast_master.py, ``tangent_cpus``)."""
    root_rounds: int = 50
    """Kelley cutting-plane rounds on the master's LP relaxation before branching."""
    use_mip_start: bool = True
    """Hand the incumbent to HiGHS as a MIP start."""
    highs_heuristics: bool = False
    """Let HiGHS run its primal heuristics (RINS, RENS, feasibility jump); our incumbents do that work."""
    highs_presolve: bool = True
    """Let HiGHS presolve the master MILP (off: faster on the default scenario's 50 x 5, slower on
    loaded snapshots; BENCHMARKS.md, "exact's tail on the default scenario"). Masters reused
    through ``warm=`` never presolve."""
    heuristic_effort: float = 0.0
    """HiGHS ``mip_heuristic_effort`` (dimensionless, 0..1)."""
    drop_slack: float | None = None
    """After the root, drop cuts with slack above this (objective units of the master's scale); None keeps all."""
    price_cuts: tuple[float, ...] = (0.7, 1.0, 1.4)
    """When the root leaves the gap open: tangent cuts of every pair at its best responses to its
    server's root CPU price times each of these factors (dimensionless, > 0; ``()``: none). Not with
    ``warm=`` (nor the polish)."""
    polish_rounds: int = 50
    """When the root leaves more than ``polish_gap`` open: at most this many rounds of the fast
    method's local search (single-DT moves, from the incumbent and from the Lagrangian best responses
    at the root's prices) for a better start before branching (0: none)."""
    polish_gap: float = 1e-2
    """The polish runs only when the root leaves more than this relative gap (dimensionless, >= 0)."""
    exchange_gap: float | None = 9e-3
    """When the polish leaves more than this relative gap open (dimensionless, >= 0; None: never):
    a search of single moves and pairwise exchanges of requests for a better start, and the rows of
    ``server_prices``, before branching."""
    exchange_candidates: int = 50
    """The exchanges (best first-order estimates) the exchange search evaluates per round (>= 0)."""
    exchange_candidates_large: int = 500
    """``exchange_candidates`` on snapshots with N M >= 500 (those ``primal_seed="auto"`` starts from
    the fast method, and fast's continuations on loaded snapshots; >= 0; docs/solvers.md, "Loop")."""
    exchange_cycles: int = 0
    """With the exchange search, on snapshots with N M < 500: where no move or exchange improves, the
    search also tries this many three-DT cycles, best first by their first-order estimates (>= 0;
    docs/solvers.md, "Loop")."""
    server_prices: tuple[float, ...] = tuple(2.0 ** (k / 14) for k in range(-14, 15))
    """With the exchange search: per server, one row bounding its served set's energy below by the
    allocation's Lagrangian dual function at its root CPU price times each of these factors
    (dimensionless, > 0; ``()``: none; docs/solvers.md, "Per-server price rows")."""
    server_prices_large: tuple[float, ...] = ()
    """``server_prices`` on snapshots with N M >= 500 (default none: there the rows cost more MILP
    time than they save; BENCHMARKS.md, "fast's continuation in exact on loaded 100 x 10")."""
    hull_rounds: int = 0
    """When the root leaves the gap open: at most this many rounds of Fenchel cuts of each server's
    convex hull of (served set, energy) at the root LP's solution (solvers/server_hull.py; >= 0,
    0: none; docs/solvers.md, "Fenchel cuts of each server's hull")."""
    proving_rows_gap: float | None = None
    """When a master round's solution is the incumbent's placement and the round's bound is within
    this relative gap of it (dimensionless, >= 0; None: never), the rows of ``server_prices`` before
    the next round, if the exchange search did not add them (docs/solvers.md, "Per-server price
    rows")."""
    improving_cuts: bool = False
    """After each master round, outer-approximation cuts also at the served sets of every improving
    solution HiGHS found during the round (its callback), each also priced exactly as a candidate
    incumbent (docs/solvers.md, "Loop"; off by default: BENCHMARKS.md, seventh round)."""
    first_round_reliability: int | None = 0
    """HiGHS's ``mip_pscost_minreliable`` (strong-branching evaluations before a pseudocost counts as
    reliable) in the first master round (>= 0; default 0: branch on pseudocosts without strong
    branching; None: HiGHS's own, 8; docs/solvers.md, "Loop")."""
    later_rounds_reliability: int | None = 0
    """The same in the master rounds after the first, which mostly re-prove a known incumbent (>= 0;
    None: the first round's value)."""
    mip_gap_share: float = 0.8
    """HiGHS's MIP gap is this share of ``gap`` less twice the bound's derating term (at least
    ``gap / 4``; dimensionless, in (0, 1); 0.25 gives the earlier ``gap / 4``)."""
    primal_seed: str = "auto"
    """A start from the fast method (its decision, exactly admitted, and its certified bound): ``"fast"``,
    ``"none"``, or ``"auto"`` (when N M >= 500, or when ``time_limit`` is below 2 ms per pair:
    solvers/exact.py ``short_time_limit``; not with ``warm=``)."""

    method = "exact"

    def _check(self) -> list[str]:
        bad = []
        if self.oracle not in ("kkt", "cvxpy"):
            bad.append(f"oracle must be 'kkt' or 'cvxpy', got {self.oracle!r}")
        if not (isinstance(self.initial_cuts, int) and self.initial_cuts >= 2):
            bad.append(f"initial_cuts must be an integer >= 2, got {self.initial_cuts!r}")
        ifs = self.initial_first_step
        if ifs is not None and not (isinstance(ifs, (int, float)) and not isinstance(ifs, bool) and 0.0 < ifs <= 1.0):
            bad.append(f"initial_first_step must be None or a number in (0, 1], got {ifs!r}")
        if not (isinstance(self.root_rounds, int) and self.root_rounds >= 0):
            bad.append(f"root_rounds must be an integer >= 0, got {self.root_rounds!r}")
        if not (0.0 <= self.heuristic_effort <= 1.0):
            bad.append(f"heuristic_effort must be in [0, 1], got {self.heuristic_effort!r}")
        if self.primal_seed not in ("auto", "fast", "none"):
            bad.append(f"primal_seed must be 'auto', 'fast' or 'none', got {self.primal_seed!r}")
        pc = self.price_cuts
        factors = [as_field_type(c, float) for c in pc] if isinstance(pc, tuple) else [(None, "a tuple")]
        if not all(want is None and math.isfinite(c) and c > 0 for c, want in factors):
            bad.append(f"price_cuts must be a tuple of numbers > 0, got {pc!r}{_tuple_form(pc)}")
        else:   # numpy numbers stored as Python's, as every other option
            object.__setattr__(self, "price_cuts", tuple(c for c, _ in factors))
        if not (isinstance(self.polish_rounds, int) and self.polish_rounds >= 0):
            bad.append(f"polish_rounds must be an integer >= 0, got {self.polish_rounds!r}")
        if not (isinstance(self.polish_gap, (int, float)) and self.polish_gap >= 0):
            bad.append(f"polish_gap must be a number >= 0, got {self.polish_gap!r}")
        if self.exchange_gap is not None and not (isinstance(self.exchange_gap, (int, float))
                                                  and self.exchange_gap >= 0):
            bad.append(f"exchange_gap must be a number >= 0 or None, got {self.exchange_gap!r}")
        if not (isinstance(self.exchange_candidates, int) and self.exchange_candidates >= 0):
            bad.append(f"exchange_candidates must be an integer >= 0, got {self.exchange_candidates!r}")
        if not (isinstance(self.exchange_candidates_large, int) and self.exchange_candidates_large >= 0):
            bad.append(f"exchange_candidates_large must be an integer >= 0, got {self.exchange_candidates_large!r}")
        if not (isinstance(self.exchange_cycles, int) and not isinstance(self.exchange_cycles, bool)
                and self.exchange_cycles >= 0):
            bad.append(f"exchange_cycles must be an integer >= 0, got {self.exchange_cycles!r}")
        for name in ("server_prices", "server_prices_large"):
            sp = getattr(self, name)
            factors = [as_field_type(c, float) for c in sp] if isinstance(sp, tuple) else [(None, "a tuple")]
            if not all(want is None and math.isfinite(c) and c > 0 for c, want in factors):
                bad.append(f"{name} must be a tuple of numbers > 0, got {sp!r}{_tuple_form(sp)}")
            else:
                object.__setattr__(self, name, tuple(c for c, _ in factors))
        if not (isinstance(self.hull_rounds, int) and self.hull_rounds >= 0):
            bad.append(f"hull_rounds must be an integer >= 0, got {self.hull_rounds!r}")
        if not (self.proving_rows_gap is None or (isinstance(self.proving_rows_gap, (int, float))
                                                   and not isinstance(self.proving_rows_gap, bool)
                                                   and math.isfinite(self.proving_rows_gap)
                                                   and self.proving_rows_gap >= 0)):
            bad.append(f"proving_rows_gap must be a number >= 0 or None, got {self.proving_rows_gap!r}")
        if not isinstance(self.improving_cuts, bool):
            bad.append(f"improving_cuts must be True or False, got {self.improving_cuts!r}")
        for name in ("first_round_reliability", "later_rounds_reliability"):
            lr = getattr(self, name)
            if lr is not None and not (isinstance(lr, int) and not isinstance(lr, bool) and lr >= 0):
                bad.append(f"{name} must be None or an integer >= 0, got {lr!r}")
        if not (isinstance(self.mip_gap_share, (int, float)) and 0 < self.mip_gap_share < 1):
            bad.append(f"mip_gap_share must be in (0, 1), got {self.mip_gap_share!r}")
        if self.drop_slack is not None and not self.drop_slack >= 0:
            bad.append(f"drop_slack must be >= 0 or None, got {self.drop_slack!r}")
        return bad


@dataclass(frozen=True)
class FastOptions(SolverOptions):
    """Options of ``method="fast"`` (solvers/fast.py); ``threads`` is accepted and ignored."""

    gap: float = 0.01
    """Asked relative optimality gap (dimensionless)."""
    max_iterations: int = 100
    """Dual (bundle) iterations; then status ``feasible`` if the gap is not reached."""
    box: float = 1.0
    """Initial half-width of the trust box on the scaled prices (a server's whole CPU or storage
    priced at ``box`` typical failure penalties; dimensionless)."""
    primal_every: int = 50
    """Run the primal heuristics every that many dual iterations (and once the dual has converged)."""
    search_time: float = 5.0
    """Budget of each local search (s)."""
    milp_time: float = 1.0
    """Budget of each restricted-master MILP (s)."""
    milp_gap: float = 2e-3
    """Relative MIP gap asked of the restricted-master MILP (dimensionless, >= 0): its costs are those of
    fixed CPU shares, not the admitted ones, so a proof far below ``gap`` buys nothing."""
    milp_cpu: str = "auto"
    """CPU model of the restricted-master MILP: ``"tangent"`` (each served pair's CPU a variable, its
    energy above tangent cuts, every server's CPU shared), ``"fixed"`` (each option's CPU the share it
    asked where it was found) or ``"auto"`` (tangent on snapshots with N M <= 2000, the size that may
    continue in exact by default; fixed otherwise; docs/solvers_fast.md, section 2)."""
    search_starts: int = 3
    """While the gap is open, the local search also starts from this many of the restricted-master
    MILP's other incumbents, cheapest admitted cost first (0: from the best placement only)."""
    extra_options: str = "reduced_cost"
    """Options of the tangent MILP in the extra rounds: ``"found"`` (the bundle master's options only,
    as in the first round) or ``"reduced_cost"`` (also servable pairs whose Lagrangian reduced cost at
    the best prices is at most the best decision's cost less the bound, the only served pairs a
    cheaper decision can use, at most ``reduced_cost_pairs`` of them, and that decision as HiGHS's MIP
    start; the default since it certified seeds of loaded 100 x 10 that ``"found"`` never did and
    lost no more fresh seeds in the last run: docs/solvers_fast.md, section 2, "Options by reduced
    cost" and "The cap")."""
    reduced_cost_pairs: int | None = 60
    """With ``extra_options="reduced_cost"``: at most this many served pairs besides the bundle's, those
    of least reduced cost (None: every pair within the room; docs/solvers_fast.md, "The cap")."""
    extra_rounds: int = 2
    """Primal rounds (three times the MILP time each; a tangent MILP that HiGHS finished runs again with
    twice the slack) after the dual has converged, while the gap is open."""
    exchange_candidates: int = 400
    """With the fixed-share MILP (N M above 2000 by default), each extra round first runs exact's
    exchange search from the best decision: moves and pairwise exchanges of requesting DTs, this
    many of each per round by their first-order estimates, the best improvement taken (0: off;
    docs/solvers_fast.md, "Extra rounds")."""
    exchange_rounds: int = 60
    """At most this many improving steps of that search per extra round (a cap by work, not time: the
    same result on any machine)."""
    exact_max_candidates: int = 6
    """With every DT pinned, servers with at most this many admissible requests get the exact
    branch-and-bound admission (at most 2^k nodes)."""
    exact_pairs: int = 2000
    """Snapshots with at most this many MU-server pairs (N M) whose gap is still above ``gap`` once
    the dual has converged continue in the exact method's branch and bound, started from fast's
    decision and bound (0: never; docs/solvers_fast.md, "Small loaded snapshots")."""
    exact_time: float = 9.5
    """The continuation ends at most this many seconds after the solve began (and within ``time_limit``)."""
    phase_share: float = 0.5
    """On a snapshot that may continue in exact, fast's own primal ends by this share of ``exact_time``
    (or of ``time_limit`` when smaller) after the start, leaving the rest to the continuation (in (0, 1])."""

    method = "fast"

    def _check(self) -> list[str]:
        bad = []
        for name in ("box", "search_time", "milp_time", "exact_time"):
            if not getattr(self, name) > 0:
                bad.append(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.phase_share <= 1:
            bad.append(f"phase_share must be in (0, 1], got {self.phase_share!r}")
        if self.milp_cpu not in ("auto", "tangent", "fixed"):
            bad.append(f"milp_cpu must be 'auto', 'tangent' or 'fixed', got {self.milp_cpu!r}")
        if self.extra_options not in ("reduced_cost", "found"):
            bad.append(f"extra_options must be 'reduced_cost' or 'found', got {self.extra_options!r}")
        if self.reduced_cost_pairs is not None and not (isinstance(self.reduced_cost_pairs, int)
                                                        and not isinstance(self.reduced_cost_pairs, bool)
                                                        and self.reduced_cost_pairs >= 0):
            bad.append(f"reduced_cost_pairs must be None or a non-negative integer, got {self.reduced_cost_pairs!r}")
        if not self.milp_gap >= 0:
            bad.append(f"milp_gap must be >= 0, got {self.milp_gap!r}")
        for name in ("primal_every", "search_starts", "extra_rounds", "exact_max_candidates", "exact_pairs",
                     "exchange_candidates", "exchange_rounds"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= (1 if name == "primal_every" else 0)):
                bad.append(f"{name} must be a non-negative integer, got {v!r}")
        return bad


@dataclass(frozen=True)
class PyomoOptions(SolverOptions):
    """Options of ``method="pyomo"`` (solvers/minlp.py); ``verbose`` shows the solver's log."""

    time_limit: float | None = 300.0
    """Wall-clock limit in s (default 300: SCIP left alone can branch for hours on 30 x 5; None or
    above 1e20, inf included: none);
    the method then stops with status ``time_limit``, its incumbent and SCIP's bound."""
    solver: str = "scip_direct"
    """Pyomo solver name (``pyomo.contrib.solver`` factory first, classic ``SolverFactory`` second)."""
    scip_no_multiaggr: bool = True
    """Forbid SCIP's multi-aggregation in presolve (its perspective handler fails on some models)."""

    method = "pyomo"


@dataclass(frozen=True)
class RelaxationOptions(SolverOptions):
    """Options of ``method="relaxation"`` (solvers/relaxation.py); ``threads`` is ignored."""

    solver: str = "CLARABEL"
    """CVXPY conic solver with exponential cones (Clarabel, SCS, ECOS)."""

    method = "relaxation"


__all__ = ["SolverOptions", "ExactOptions", "FastOptions", "PyomoOptions", "RelaxationOptions"]
