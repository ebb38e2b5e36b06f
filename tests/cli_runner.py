"""An in-process runner of the ``wdtnopt`` CLI for the tests (the hand-made snapshots are in
``wdtnopt.testing``)."""
from __future__ import annotations


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
