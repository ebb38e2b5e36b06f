"""A newcomer's pass (8d) over the long-term commands and the environment: leftovers found from the
outside, each failing before its fix."""
from __future__ import annotations

import pytest

from cli_runner import run_cli


@pytest.mark.parametrize("field,value,setting", [("server_mtbf_s", 50.0, "server_mtbf_s"),
                                                 ("semantic_levels", 3, "semantic_levels")])
def test_gap_migration_aware_on_an_uncovered_scenario_is_refused_in_cli_terms(field, value, setting, tmp_path, capsys):
    # the refusal named a Python function ("migration_bound: ... (use hindsight_bound)"), not the
    # option and the scenario setting a CLI user can change
    spec = tmp_path / "s.toml"
    spec.write_text(f"n_mus = 4\nn_bss = 2\n{field} = {value}\n")
    code, out, err = run_cli(["gap", "--scenario", str(spec), "--slots", "4", "--iters", "1", "--policy", "follow",
                              "--migration-aware"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--migration-aware" in err and setting in err, err
    assert "migration_bound" not in err and "hindsight_bound" not in err, err
    assert "follow" not in out   # refused up front: no policy was simulated
