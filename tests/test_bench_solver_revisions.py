"""benchmarks/bench_solver_revisions.py: exact's option variants alternated per seed in one process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from wdtnopt.solvers import solve
from wdtnopt.testing import paper_snapshot

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_solver_revisions.py"


def test_variants_alternate_per_seed_and_the_tail_table_reads_them(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--exact", "10x3", "--fast", "--seeds", "2", "--first-seed", "5",
           "--repeats", "1", "--label", "t", "--variant", "main={}",
           "--variant", 'cuts={"initial_cuts": 4, "price_cuts": [1.0]}']
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    # one row per seed and variant, the variants in turn on each seed
    assert [(r["seed"], r["label"]) for r in rows] == [(5, "t/main"), (5, "t/cuts"), (6, "t/main"), (6, "t/cuts")]
    for r in rows:
        s = paper_snapshot(N=10, M=3, seed=r["seed"])
        opts = {"initial_cuts": 4, "price_cuts": (1.0,)} if r["label"] == "t/cuts" else {}
        ref = solve(s, method="exact", gap=1e-6, **opts)   # the same options outside the script
        assert r["status"] == "optimal" and r["objective_hex"] == ref.objective.hex()
        assert r["rounds"] == ref.stats["iterations"]
    path = tmp_path / "alt.jsonl"
    path.write_text(out)
    table = subprocess.run([sys.executable, str(SCRIPT), "--table", str(path), "--cpu", "--tail", "1e9"],
                           capture_output=True, text=True, check=True, cwd=ROOT).stdout
    lines = [line for line in table.splitlines() if line.startswith("| exact")]
    assert [line.split(" | ")[2] for line in lines] == ["t/main", "t/cuts"]
    assert all(" | 2 | " in line and "| none |" in line for line in lines)   # 2 seeds, none above 1e9 s
    assert "objectives equal in hex across labels on 2 of 2 seeds" in table


def test_a_variant_must_be_a_json_object(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--exact", "10x3", "--fast", "--seeds", "1", "--repeats", "1",
                        "--variant", "bad=[1]"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "NAME=JSON object" in r.stderr
