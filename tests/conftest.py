"""Suite-wide settings: the hypothesis profile (docs/testing.md, "Property tests").

The suite runs the ``repro`` profile by default: examples are derived from each test's name
(``derandomize=True``), so a run on CI draws the same examples as the run before it and a red run
can be replayed exactly; there is no example database (``database=None``) to carry state between
clean clones; and no per-example deadline (the solver examples' times vary with the machine's
load, and a deadline failure would say nothing about correctness). ``HYPOTHESIS_PROFILE=explore``
draws fresh random examples each run (for hunting new failures locally); a test's own
``@settings`` still win over the profile.
"""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repro", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repro"))
