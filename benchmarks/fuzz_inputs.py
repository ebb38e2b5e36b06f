"""Fuzz the input boundary with >= 10,000 generated cases (docs/reliability.md).

    .venv/bin/python benchmarks/fuzz_inputs.py --examples 2500

Four targets, each fed ``--examples`` hypothesis-generated cases (strategies in ``wdtnopt.testing.strategies``):

* ``Snapshot.from_dict`` with malformed dicts (wrong shapes, NaN/inf, negative capacities,
  out-of-range indices, wrong types, missing/unknown keys, huge values);
* ``Scenario.from_dict`` with malformed parameter tables;
* ``wdtnopt solve FILE`` (the CLI, in-process) with malformed JSON files (truncated, empty, wrong
  root, garbage, NaN literals) and valid ones;
* ``wdtnopt simulate --scenario FILE`` with malformed TOML/JSON scenario files.

A case passes if it is accepted (and, for an accepted snapshot, ``evaluate`` of a heuristic
decision is clean and ``solve`` returns a decision that passes ``evaluate``), or rejected with the
library's own error naming a field (CLI: exit code 2, one line on stderr, no traceback). Any other
exception, a traceback, or a case running past ``--case-timeout`` seconds is a failure, printed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wdtnopt import Scenario, ScenarioError, Snapshot, SnapshotError, evaluate
from wdtnopt.cli import main as cli_main
from wdtnopt.policies.heuristics import equal_share_allocation
from wdtnopt.testing.strategies import file_texts, names_fields, scenario_dicts, snapshot_dicts


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    def handler(signum, frame):
        raise CaseTimeout(f"case ran past {seconds} s")
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main(args)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=2500, help="cases per target (4 targets)")
    ap.add_argument("--case-timeout", type=float, default=20.0)
    args = ap.parse_args()
    tally: Counter[str] = Counter()
    failures: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="wdtnopt-fuzz-"))
    cfg = settings(max_examples=args.examples, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))

    def record(target: str, outcome: str, detail: str = "") -> None:
        tally[f"{target}:{outcome}"] += 1
        if outcome == "FAIL":
            failures.append(f"{target}: {detail[:300]}")

    @cfg
    @given(snapshot_dicts(max_n=6, max_m=3))
    def snapshots(d):
        try:
            with time_limit(args.case_timeout):
                snap = Snapshot.from_dict(d)
                ev = evaluate(snap, equal_share_allocation(snap))
                hard = [v for v in ev.violations if v.kind not in ("storage_capacity", "move_migrating")]
                if hard:
                    return record("snapshot", "FAIL", f"heuristic decision violates {hard[0]}")
                from wdtnopt.solvers import solve
                sol = solve(snap, method="exact", time_limit=args.case_timeout / 2)
                if sol.status in ("optimal", "time_limit", "feasible") and not evaluate(snap, sol).feasible:
                    return record("snapshot", "FAIL", f"solve returned an infeasible decision ({sol.status})")
                if sol.bound > sol.objective * (1 + 1e-9) + 1e-12:
                    return record("snapshot", "FAIL", f"bound {sol.bound} above objective {sol.objective}")
                record("snapshot", f"accepted/{sol.status}")
        except SnapshotError as err:
            record("snapshot", "rejected" if names_fields(err) else "FAIL", str(err))
        except Exception as exc:  # noqa: BLE001 - the point is to catch everything else
            record("snapshot", "FAIL", f"{type(exc).__name__}: {exc} <- {json.dumps(d, default=str)[:200]}")

    @cfg
    @given(scenario_dicts())
    def scenarios(d):
        try:
            with time_limit(args.case_timeout):
                Scenario.from_dict(d)
                record("scenario", "accepted")
        except ScenarioError as err:
            record("scenario", "rejected" if names_fields(err) else "FAIL", str(err))
        except Exception as exc:  # noqa: BLE001
            record("scenario", "FAIL", f"{type(exc).__name__}: {exc} <- {d!r}"[:300])

    @cfg
    @given(file_texts())
    def solve_files(text):
        path = tmp / "case.json"
        path.write_text(text)
        _cli_case("cli-solve", ["solve", str(path), "-o", str(tmp / "sol.json")])

    @cfg
    @given(scenario_dicts(), st.sampled_from([".toml", ".json"]), st.booleans())
    def scenario_files(d, suffix, truncate):
        path = tmp / f"scenario{suffix}"
        if suffix == ".json":
            text = json.dumps(d, default=str)
        else:
            text = "\n".join(f"{k} = {json.dumps(v, default=str)}" for k, v in d.items())
        path.write_text(text[: len(text) // 2] if truncate else text)
        _cli_case("cli-scenario", ["simulate", "--scenario", str(path), "--slots", "2", "--n-mus", "3",
                                   "--no-progress"])

    def _cli_case(target: str, argv: list[str]) -> None:
        try:
            with time_limit(args.case_timeout):
                code, out, err = run_cli(argv)
        except Exception as exc:  # noqa: BLE001
            return record(target, "FAIL", f"{type(exc).__name__}: {exc}")
        if "Traceback" in out + err:
            return record(target, "FAIL", "traceback printed")
        if code == 0:
            return record(target, "accepted")
        if code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: "):
            return record(target, "rejected")
        record(target, "FAIL", f"exit {code}: {err.strip()[:200]}")

    t0 = time.perf_counter()
    for fn in (snapshots, scenarios, solve_files, scenario_files):
        fn()
    secs = time.perf_counter() - t0
    total = sum(tally.values())
    print(f"{total} cases in {secs:.0f} s, {len(failures)} failures")
    print("| target | outcome | cases |\n|---|---|---|")
    for key in sorted(tally):
        target, outcome = key.split(":", 1)
        print(f"| {target} | {outcome} | {tally[key]} |")
    for f in failures[:30]:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
