import json

import numpy as np
import pytest

from wdtnopt.testing import one_cell
from wdtnopt import Scenario, Snapshot, SnapshotError, generate_trace


def test_json_round_trip(tmp_path):
    snap = generate_trace(Scenario.paper(n_mus=7, n_bss=3), seed=4, slots=3).snapshot(2)
    d = snap.to_dict()
    json.dumps(d)  # JSON-ready
    again = Snapshot.from_dict(json.loads(json.dumps(d)))
    for key, value in d.items():
        assert np.array_equal(np.asarray(getattr(again, key)), np.asarray(value)), key
    path = tmp_path / "s.json"
    snap.save(path)
    loaded = Snapshot.load(path)
    assert loaded.to_dict() == d


def test_arrays_are_read_only_copies():
    gain = np.array([[1e-10, 1e-12], [1e-10, 1e-12]])
    snap = one_cell(gain=gain)
    gain[0, 0] = 5.0
    assert snap.gain[0, 0] == 1e-10
    with pytest.raises(ValueError):
        snap.gain[0, 0] = 1.0


@pytest.mark.parametrize("field,value,needle", [
    ("gain", [[1e-10, 1e-12]], "shape"),
    ("gain", [[1e-10, -1.0], [1e-10, 1e-12]], "> 0"),
    ("noise_psd", [float("nan"), 1e-20], "finite"),
    ("deadline", [1.0, float("inf")], "finite"),
    ("cpu_hz", [1e9, -1.0], ">= 0"),
    ("assoc", [0, 2], "server index"),
    ("placement_prev", [0, 1.5], "integer"),
    ("request", [1, 2], "booleans"),
    ("bandwidth", "wide", "array"),
    ("data_bits", [[1e6], [1e6, 2e6]], "rectangular"),
    ("backhaul_latency_s", [[0.0, 0.01]], "shape"),
    ("allow_migration", "yes", "true or false"),
])
def test_validation_names_the_field(field, value, needle):
    with pytest.raises(SnapshotError) as err:
        one_cell(**{field: value})
    assert field in str(err.value) and needle in str(err.value)


def test_missing_unknown_and_several_fields():
    d = one_cell().to_dict()
    del d["gain"]
    d["gains"] = 1
    with pytest.raises(SnapshotError) as err:
        Snapshot.from_dict(d)
    assert ("gain", "missing") in err.value.problems and ("gains", "unknown field") in err.value.problems
    with pytest.raises(SnapshotError) as err:
        one_cell(noise_psd=[0.0, 1e-20], assoc=[0, 9])
    assert {f for f, _ in err.value.problems} == {"noise_psd", "assoc"}


def test_file_errors(tmp_path):
    empty = tmp_path / "e.json"
    empty.write_text("")
    with pytest.raises(SnapshotError, match="empty"):
        Snapshot.load(empty)
    trunc = tmp_path / "t.json"
    trunc.write_text(json.dumps(one_cell().to_dict())[:-20])
    with pytest.raises(SnapshotError, match="invalid JSON"):
        Snapshot.load(trunc)
    with pytest.raises(SnapshotError, match="expected an object"):
        Snapshot.from_dict([1, 2])


def test_derived_quantities():
    s = one_cell(placement_prev=[1, 0])
    # relay MU 0 (served by BS 0) to server 1: 10 ms + 1e6 bit * 2 ns
    assert s.relay[0, 1] == pytest.approx(0.012)
    assert s.relay[0, 0] == 0.0
    assert s.cycles[0] == 1e8
    # t_min = D / (B log2(1 + Pmax g / (N0 B))) = 1e6 / (1e6 * log2(1 + 0.2 / 1e-4))
    assert s.t_min[0] == pytest.approx(1 / np.log2(2001))


@pytest.mark.parametrize("field,value,shown", [
    ("gain", [[1e-10, -1.0], [1e-10, 1e-12]], "got -1.0 at"),
    ("noise_psd", [float("nan"), 1e-20], "got nan at"),
    ("cpu_hz", [1e9, -2.5], "got -2.5 at"),
])
def test_validation_shows_the_value_as_the_file_has_it(field, value, shown):
    # the message is for a JSON file's author: 1.5, not numpy's repr np.float64(1.5)
    with pytest.raises(SnapshotError) as err:
        one_cell(**{field: value})
    assert shown in str(err.value) and "np." not in str(err.value)


def test_menu_validation_shows_plain_values():
    from wdtnopt import Scenario, generate_trace

    d = generate_trace(Scenario.paper(n_mus=3, n_bss=2, semantic_levels=3), seed=0, slots=1).snapshot(0).to_dict()
    d["level_ratio"][0][1] = 1.5
    with pytest.raises(SnapshotError) as err:
        Snapshot.from_dict(d)
    assert "level_ratio" in str(err.value) and "got 1.5 at" in str(err.value) and "np." not in str(err.value)


def test_menu_shape_error_says_which_shape():
    from wdtnopt import Scenario, generate_trace

    d = generate_trace(Scenario.paper(n_mus=3, n_bss=2, semantic_levels=3), seed=0, slots=1).snapshot(0).to_dict()
    d["level_ratio"] = [[1.0]] * 3           # one level, the other menu fields three
    with pytest.raises(SnapshotError) as err:
        Snapshot.from_dict(d)
    names = [name for name, _ in err.value.problems]
    assert names == ["level_cycles_per_bit", "level_accuracy"]
    assert all("[N, L] = [3, 1]" in msg and "got [3, 3]" in msg for _, msg in err.value.problems)
