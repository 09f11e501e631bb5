"""`xenpin list`: the shipped variants (name, file, release, commits, placement, reserve step, expectations),
the properties, the invariants and the rule sets; a PATH of one's own; exit 2 on a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenpin import shipped
from xenpin.cli import main
from xenpin.linux.variant import PROPERTIES
from xenpin.xen.invariants import INVARIANTS
from xenpin.xen.rules import RULES


def test_list_names_every_shipped_variant_property_invariant_and_rule_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    names = sorted(p.stem for p in shipped.KERNELS.glob("*.toml"))
    for name in names:
        row = next(line for line in lines if line.split()[:1] == [name])
        assert f"kernels/{name}.toml" in row.split()[1]
    rc1 = next(line for line in lines if line.split()[:1] == ["2.6.39-rc1"])
    assert "4b239f458c22 14988a4d350c d8aa5ec3382e" in rc1 and "high" in rc1
    assert rc1.endswith("counterexample: no_rw_alias")
    assert next(line for line in lines if line.split()[:1] == ["3.1"]).endswith("all proved")
    for word in (*PROPERTIES, *INVARIANTS, *RULES):
        assert any(line.split()[:1] == [word] and len(line.split()) > 3 for line in lines), word
    assert "XSA-240" in out and "allowsuperpage" in out


def test_list_json_of_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "mine.toml"
    model.write_text(
        (shipped.KERNELS / "2.6.39-rc6.toml").read_text().replace('name = "2.6.39-rc6"', 'name = "mine"')
    )
    assert main(["list", str(model), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (v,) = doc["variants"]
    assert (v["variant"], v["file"], v["release"], v["placement"], v["reserve_step"]) == (
        "mine",
        str(model),
        "2.6.39-rc6",
        "high",
        "2.6.39-rc6",
    )
    assert v["expect"]["spare_writable"] == "counterexample" and v["commit"].startswith("b9269dc7bfdf")
    assert [p["property"] for p in doc["properties"]] == list(PROPERTIES)
    assert [i["invariant"] for i in doc["invariants"]] == list(INVARIANTS)


def test_list_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", str(tmp_path / "nope.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"xenpin: {tmp_path / 'nope.toml'}")
    assert main(["list", str(tmp_path)]) == 2  # a folder without variants
    assert capsys.readouterr().err == f"xenpin: {tmp_path}: no kernel variant files (*.toml) in this folder\n"
