"""Property-based fuzzing of the input boundary (a smaller share of benchmarks/fuzz_inputs.py)."""
import numpy as np
from hypothesis import HealthCheck, given, settings

from wdtnopt.testing.strategies import names_fields, file_texts, scenario_dicts, snapshot_dicts
from wdtnopt import Scenario, ScenarioError, Snapshot, SnapshotError, evaluate
from wdtnopt.policies.heuristics import equal_share_allocation

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(snapshot_dicts())
def test_snapshot_from_dict_accepts_or_names_the_field(d):
    try:
        snap = Snapshot.from_dict(d)
    except SnapshotError as err:
        assert names_fields(err), str(err)
        return
    # accepted: it must be usable, and a heuristic decision must evaluate cleanly
    ev = evaluate(snap, equal_share_allocation(snap))
    assert np.isfinite(ev.objective)
    assert not [v for v in ev.violations if v.kind not in ("storage_capacity", "move_migrating")]


@FAST
@given(scenario_dicts())
def test_scenario_accepts_or_names_the_key(d):
    try:
        Scenario.from_dict(d)
    except ScenarioError as err:
        assert names_fields(err), str(err)


@FAST
@given(file_texts())
def test_snapshot_files(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fz") / "s.json"
    path.write_text(text)
    try:
        Snapshot.load(path)
    except SnapshotError as err:
        assert names_fields(err), str(err)
