"""Shared test configuration: Hypothesis profiles.

`ci` is deterministic (derandomized, no deadline) so CI runs are reproducible; `dev` explores more.
Pick one with `HYPOTHESIS_PROFILE=ci pytest ...` (default: `dev`).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60, print_blob=True)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
