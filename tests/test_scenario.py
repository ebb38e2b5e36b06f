import json
import math

import pytest

from wdtnopt import Scenario, ScenarioError


def test_paper_defaults_follow_model_table():
    sc = Scenario.paper()
    assert (sc.n_mus, sc.n_bss, sc.area_m) == (30, 5, 1000.0)
    assert (sc.slot_s, sc.frame_slots) == (0.5, 10)
    assert (sc.gm_memory, sc.speed_mean_mps, sc.speed_std_mps) == (0.8, 5.0, 1.0)
    assert sc.heading_std_rad == pytest.approx(math.pi / 8)
    assert sc.request_prob == 0.5 and sc.rician_k == 3.0 and sc.d_min_m == 10.0
    assert sc.bandwidth_hz == 20e6 and sc.p_max_w == 0.2 and sc.cpu_hz == 10e9
    assert (sc.interference_zeta, sc.interference_p_ref_w) == (0.1, 0.1)
    assert (sc.eps, sc.energy_ref_j, sc.eta, sc.deadline_s) == (0.05, 0.01, 1.0, 0.2)
    # -174 dBm/Hz + 7 dB = -167 dBm/Hz
    assert sc.noise_psd_w_hz == pytest.approx(10 ** (-19.7))
    # storage: room for ceil(1.5 * 30 / 5) = 9 DTs of the largest size (300 Mbit)
    assert sc.storage_bits == 9 * 300e6


def test_overrides_and_replace():
    sc = Scenario.paper(n_mus=50, eta=1.3)
    assert sc.n_mus == 50 and sc.eta == 1.3 and sc.n_bss == 5
    assert sc.replace(n_bss=7).n_bss == 7


@pytest.mark.parametrize("key,value,needle", [
    ("n_mus", 0, "n_mus"),
    ("n_mus", 2.5, "integer"),
    ("n_mus", "30", "integer"),
    ("request_prob", 1.5, "request_prob"),
    ("cpu_hz", float("nan"), "finite"),
    ("cpu_hz", float("inf"), "finite"),
    ("slot_s", 0.0, "slot_s"),
    ("eta", True, "number"),
])
def test_bad_values_name_the_key(key, value, needle):
    with pytest.raises(ScenarioError) as err:
        Scenario.paper(**{key: value})
    assert key in str(err.value) and needle in str(err.value)


def test_unknown_key_and_inverted_range():
    with pytest.raises(ScenarioError, match="n_users: unknown parameter"):
        Scenario.paper(n_users=3)
    with pytest.raises(ScenarioError, match="data_bits_min"):
        Scenario.paper(data_bits_min=2e6, data_bits_max=1e6)


def test_several_problems_reported_together():
    with pytest.raises(ScenarioError) as err:
        Scenario.paper(n_mus=-1, eta=float("nan"))
    assert {f for f, _ in err.value.problems} == {"n_mus", "eta"}


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_file_round_trip(tmp_path, suffix):
    sc = Scenario.paper(n_mus=17, heading_std_rad=0.3, data_bits_min=1e5)
    path = tmp_path / f"s{suffix}"
    sc.save(path)
    assert Scenario.load(path) == sc


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("n_mus = \n")
    with pytest.raises(ScenarioError, match="invalid TOML"):
        Scenario.load(bad)
    unknown = tmp_path / "u.json"
    unknown.write_text(json.dumps({"n_mus": 3, "speed": 2}))
    with pytest.raises(ScenarioError, match="speed: unknown"):
        Scenario.load(unknown)
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "missing.json")
    lst = tmp_path / "l.json"
    lst.write_text("[1, 2]")
    with pytest.raises(ScenarioError, match="expected a table"):
        Scenario.load(lst)
    ok = tmp_path / "t.toml"
    ok.write_text("[scenario]\nn_mus = 12\n")
    assert Scenario.load(ok).n_mus == 12
