"""The pytest plugin on a vacuous verdict: it fails unless `[expect]` says `vacuous`, and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

THREE_NINE = Path(__file__).resolve().parent.parent / "xenpin" / "models" / "kernels" / "3.9.toml"


def test_a_vacuous_verdict_fails_unless_expected(pytester: pytest.Pytester) -> None:
    """3.9 has no reserve step: its spare_freed is vacuous, as its [expect] says; expecting `proved` fails."""
    shipped = THREE_NINE.read_text()
    assert 'spare_freed = "vacuous"' in shipped
    (pytester.path / "v.toml").write_text(
        shipped.replace('spare_freed = "vacuous"', 'spare_freed = "proved"')
    )
    args = ("-p", "no:cacheprovider", "--xenpin", "v.toml", "-k", "spare_freed")
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "spare_freed: vacuous, expected proved" in out
    assert "note: call 0: the property's situation never arises in the domain" in out
    (pytester.path / "v.toml").write_text(shipped)
    pytester.runpytest(*args).assert_outcomes(passed=1)
