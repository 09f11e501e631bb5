"""pytest plugin: `pytest --xenpin [PATH ...]` collects scenarios, (variant x property) proofs and proof-script
theorems as test items. (Being built; registered by the `pytest11` entry point.)"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xenpin")
    group.addoption("--xenpin", action="store_true", help="collect xenpin's models and proofs as tests")
