"""Hand-made snapshots whose numbers are easy to check on paper, and an in-process CLI runner."""
from __future__ import annotations

import numpy as np

from wdtnopt import Snapshot


def one_cell(**over) -> Snapshot:
    """N = 2 MUs, M = 2 servers, both MUs served by BS 0; N0 B / g = 1e-4 W for MU 0."""
    d = dict(
        gain=[[1e-10, 1e-12], [1e-10, 1e-12]],
        assoc=[0, 0],
        bandwidth=[1e6, 1e6],
        noise_psd=[1e-20, 1e-20],
        p_max=[0.2, 0.2],
        data_bits=[1e6, 1e6],
        cycles_per_bit=[100.0, 100.0],
        deadline=[1.0, 1.0],
        request=[True, False],
        dt_size_bits=[1e8, 1e8],
        cpu_hz=[1e9, 1e9],
        storage_bits=[3e8, 3e8],
        backhaul_latency_s=[[0.0, 0.01], [0.01, 0.0]],
        backhaul_s_per_bit=[[0.0, 2e-9], [2e-9, 0.0]],
        placement_prev=[0, 0],
        migrating=[False, False],
        failure_penalty=[0.5, 0.5],
        migration_penalty=[0.25, 0.25],
        allow_migration=True,
    )
    d.update(over)
    return Snapshot.from_dict(d)


def run_cli(args, capsys):
    """Run the ``wdtnopt`` CLI in-process: (exit code, stdout, stderr)."""
    from wdtnopt.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
