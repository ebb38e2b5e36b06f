"""A newcomer's pass over the fifth round's new code: extreme but legal inputs, CLI options."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("item", ["method=fast", "snapshot=3"])
def test_cli_option_naming_a_solve_argument_is_one_line(tmp_path, capsys, item):
    """``--option method=fast`` (or ``snapshot=``) reached ``solve()`` twice: a TypeError traceback
    ("got multiple values for argument") instead of the CLI's one line and exit 2."""
    from cli_runner import run_cli
    from wdtnopt.testing import paper_snapshot

    path = tmp_path / "s.json"
    paper_snapshot(N=3, M=2, seed=1).save(path)
    code, out, err = run_cli(["solve", str(path), "--option", item], capsys)
    name = item.partition("=")[0]
    assert code == 2 and err.count("\n") == 1 and f"--option {name}=" in err, (code, out, err)
    assert "Traceback" not in out + err
