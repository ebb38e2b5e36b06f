"""Progress bars for long work: shown on a terminal, silent in logs and CI (not a TTY)."""
from __future__ import annotations

import os
import sys
from typing import Any


def progress_shown() -> bool:
    """Whether progress (bars, notes of long waits) goes to stderr: ``WDTNOPT_PROGRESS=1`` forces it
    on, ``=0`` off; by default on a terminal only (silent in logs, pipes and CI)."""
    force = os.environ.get("WDTNOPT_PROGRESS")
    if force not in (None, "", "0", "1"):
        import warnings

        warnings.warn(f"WDTNOPT_PROGRESS={force!r} is neither 0 nor 1; ignored (bars on a terminal only)",
                      stacklevel=3)
    return (force == "1") if force in ("0", "1") else sys.stderr.isatty()


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm bar with ETA; ``WDTNOPT_PROGRESS=1`` forces it on, ``=0`` off (default: on a TTY only)."""
    from tqdm.auto import tqdm

    disable = not progress_shown()
    kwargs.setdefault("leave", False)
    kwargs.setdefault("mininterval", 0.5)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(disable=disable, **kwargs)
