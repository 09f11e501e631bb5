"""Shared test configuration: Hypothesis profiles, and under pytest-xdist the session's verdicts batch
started by the controller (`early_verdicts.py`).

`ci` is deterministic (derandomized, no deadline) so CI runs are reproducible; `dev` explores more.
Pick one with `HYPOTHESIS_PROFILE=ci pytest ...` (default: `dev`).
"""

from __future__ import annotations

import os

import early_verdicts
import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60, print_blob=True)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.hookimpl(trylast=True)  # after the tmp_path plugin's configure: the run's basetemp is known
def pytest_configure(config: pytest.Config) -> None:
    early_verdicts.start(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    early_verdicts.stop()
