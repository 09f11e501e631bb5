"""The pytest plugin on a vacuous verdict: it fails unless `[expect]` says `vacuous`, and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ALIAS_READONLY = Path(__file__).resolve().parent / "symbolic" / "variants" / "3.9-alias-readonly.toml"


def test_a_vacuous_verdict_fails_unless_expected(pytester: pytest.Pytester) -> None:
    (pytester.path / "v.toml").write_text(ALIAS_READONLY.read_text())
    args = ("-p", "no:cacheprovider", "--xenpin", "v.toml", "-k", "alias_writable")
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "alias_writable: vacuous, expected proved" in out
    assert "note: call 0: the property's situation never arises in the domain" in out
    text = ALIAS_READONLY.read_text().replace("[expect]\n", '[expect]\nalias_writable = "vacuous"\n')
    (pytester.path / "v.toml").write_text(text)
    pytester.runpytest(*args).assert_outcomes(passed=1)
