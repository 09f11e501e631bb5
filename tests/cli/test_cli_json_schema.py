"""Every command's `--json` document validates against its schema file (`xenpin/schemas/<command>.json`), has
the envelope `{"schema": 2, "command": ...}`, and a changed field type (a size as a number) fails validation."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from bootcache import cached_boot

from xenpin.cli import main
from xenpin.report.jsondoc import load_schema, schema_name

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "models" / "kernels"
SCENARIOS = ROOT / "models" / "scenarios"
LOGS = ROOT / "models" / "logs"
SCHEMAS = ROOT / "xenpin" / "schemas"


@pytest.fixture(autouse=True)
def cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xenpin.linux.boot.boot", cached_boot)


def _json(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> dict:
    assert main(argv) == code
    captured = capsys.readouterr()
    assert captured.err == "" or argv[0] == "prove"
    return json.loads(captured.out)


def _valid(doc: dict) -> dict:
    schema = load_schema(doc["command"])
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=None).validate(doc)
    assert doc["schema"] == 2 and list(doc)[:2] == ["schema", "command"]
    return doc


def _invalid(doc: dict) -> bool:
    return not jsonschema.Draft202012Validator(load_schema(doc["command"])).is_valid(doc)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of one log that matches and one its variant cannot use (the layout `logs` expects)."""
    root = tmp_path_factory.mktemp("shipped")
    (root / "logs").mkdir()
    (root / "kernels").mkdir()
    for name in ("2.6.38-native", "2.6.39-rc1"):
        shutil.copy(KERNELS / f"{name}.toml", root / "kernels")
    for log in ("4b239f458-before.log", "a38647837a41-dom0.log"):
        shutil.copy(LOGS / log, root / "logs")
    (root / "logs" / "manifest.toml").write_text(
        '[[log]]\nfile = "4b239f458-before.log"\nvariant = "2.6.38-native"\nexpect = "match"\n\n'
        '[[log]]\nfile = "a38647837a41-dom0.log"\nvariant = "2.6.39-rc1"\nexpect = "unusable"\n'
    )
    return root / "logs" / "manifest.toml"


def test_every_command_has_a_schema_file() -> None:
    names = {"replay", "boot", "boot --dmesg", "logs", "prove", "explore", "equiv", "list", "verify-rules"}
    assert {p.name for p in SCHEMAS.glob("*.json")} == {schema_name(n) for n in names}
    for name in names:
        schema = load_schema(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["command"] == {"const": name}


def test_replay(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _valid(_json(["replay", "--json", str(SCENARIOS / "19-xsa148-xen41.toml")], capsys))
    scn = doc["scenarios"][0]
    assert scn["file"] == str(SCENARIOS / "19-xsa148-xen41.toml")
    assert scn["steps"][0]["args"] == {"mfn": "0xa", "slot": 0, "entry": {"present": True, "mfn": "0xb",
                                                                         "flags": "P|RW"}}  # fmt: skip
    bad = copy.deepcopy(doc)
    bad["scenarios"][0]["steps"][0]["args"]["mfn"] = 10
    assert _invalid(bad)


def test_boot_one_variant_is_a_list_of_one(capsys: pytest.CaptureFixture[str]) -> None:
    model = str(KERNELS / "2.6.37.toml")
    doc = _valid(_json(["boot", "--mem", "1G", model, "--json"], capsys))
    assert doc["command"] == "boot" and len(doc["boots"]) == 1 and doc["summary"]["boots"] == 1
    boot = doc["boots"][0]
    assert (boot["file"], boot["mem_bytes"], boot["max_pfn"]) == (model, "0x40000000", hex((1024 + 8) << 8))
    for change in ({"mem_bytes": 1 << 30}, {"pins": "0x10"}, {"file": 3}, {"unknown_key": 1}):
        bad = copy.deepcopy(doc)
        bad["boots"][0].update(change)
        assert _invalid(bad), change  # a type change (mem_bytes as a number) is caught
    bad = copy.deepcopy(doc)
    bad["boots"][0]["buffers"][0]["pgt_buf_start"] = "0xZZ"
    assert _invalid(bad)
    two = _valid(_json(["boot", "--mem", "1G", model, str(KERNELS / "3.1.toml"), "--json"], capsys))
    assert [b["variant"] for b in two["boots"]] == ["2.6.37", "3.1"] and set(two) == set(doc)


def test_boot_dmesg(capsys: pytest.CaptureFixture[str]) -> None:
    log = str(LOGS / "4b239f458-before.log")
    doc = _valid(_json(["boot", str(KERNELS / "2.6.38-native.toml"), "--dmesg", log, "--json"], capsys))
    assert doc["command"] == "boot --dmesg" and doc["log"] == log and doc["all_match"] is True
    assert doc["file"] == str(KERNELS / "2.6.38-native.toml") and doc["summary"]["matched"] == 11
    bad = copy.deepcopy(doc)
    bad["log_lines"][0]["line"] = "1"
    assert _invalid(bad)


def test_logs(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _valid(_json(["logs", str(manifest), "--json"], capsys))
    assert [(r["variant"], r["result"]) for r in doc["logs"]] == [("2.6.38-native", "match"),
                                                                  ("2.6.39-rc1", "unusable")]  # fmt: skip
    assert doc["logs"][0]["file"].endswith("kernels/2.6.38-native.toml") and doc["as_expected"] is True
    assert doc["logs"][0]["log"].endswith("logs/4b239f458-before.log")
    bad = copy.deepcopy(doc)
    bad["logs"][0]["matched"] = 11.5
    assert _invalid(bad)


def test_prove(capsys: pytest.CaptureFixture[str]) -> None:
    model = str(KERNELS / "3.1.toml")
    doc = _valid(_json(["prove", "--property", "buffer_fits", model, "--jobs", "1", "--json"], capsys))
    (ob,) = doc["obligations"]
    assert (ob["variant"], ob["file"], ob["verdict"]) == ("3.1", model, "proved")
    s = doc["summary"]
    assert (s["obligations"], s["proved"], s["counterexample"], s["unknown"], s["differ"]) == (1, 1, 0, 0, 0)
    assert s["solver"].startswith("z3 ") and s["bit_width"] == 64 and s["lemmas_proved"] == s["lemmas"]
    bad = copy.deepcopy(doc)
    bad["summary"]["proved"] = "1"
    assert _invalid(bad)


def test_explore_and_its_optional_picture(capsys: pytest.CaptureFixture[str]) -> None:
    model = str(KERNELS / "2.6.39-rc6.toml")
    doc = _valid(_json(["explore", model, "spare_writable", "--json"], capsys))
    assert (doc["variant"], doc["file"], doc["property"]) == ("2.6.39-rc6", model, "spare_writable")
    w = doc["obligations"][0]["witness"]
    assert (w["mem_bytes"], w["machine"]["nr"]) == ("0x4000000", "0x4000000") and w["pfn"].startswith("0x")
    assert doc["summary"]["counterexample"] == 1
    picture = doc["picture"]
    assert picture["pages"] and any(page["failing"] for page in picture["pages"])
    _valid({**doc, "picture": None})
    for wrong in ("a picture", {"segments": []}):
        assert _invalid({**doc, "picture": wrong})
    bad = copy.deepcopy(doc)
    bad["picture"]["pages"][0]["pfn"] = 0x3FDE  # a pfn is a hex string
    assert _invalid(bad)
    bad = copy.deepcopy(doc)
    bad["obligations"][0]["witness"]["mem_bytes"] = 1 << 26
    assert _invalid(bad)


def test_equiv_has_both_replays(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(KERNELS / "2.6.39-rc5.toml"), str(KERNELS / "bisect-92bdaef7b2c5.toml")
    doc = _valid(_json(["equiv", a, b, "--json"], capsys, code=1))
    assert doc["verdict"] == "different" and (doc["a"]["file"], doc["b"]["file"]) == (a, b)
    assert doc["mem_bytes"] == "0x4000000" and doc["call"] == 0 and doc["method"] == "proof"
    assert [(r["side"], r["file"], r["page"]["pte"]) for r in doc["replays"]] == [
        ("a", a, "RW"),
        ("b", b, "RO"),
    ]
    assert all(r["page"]["pfn"] == doc["pfn"] for r in doc["replays"])
    bad = copy.deepcopy(doc)
    bad["mem_bytes"] = 1 << 26
    assert _invalid(bad)


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _valid(_json(["list", "--json"], capsys))
    assert len(doc["variants"]) >= 16 and {r["rules"] for r in doc["rule_sets"]} == {"xen-4.1", "modern"}
    bad = copy.deepcopy(doc)
    bad["variants"][0]["expect"]["buffer_fits"] = "maybe"
    assert _invalid(bad)


def test_verify_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "verify-rules",
        "--rules",
        "modern",
        "--op",
        "set_gdt",
        "--invariant",
        "type_count",
        "--frames",
        "1",
    ]
    doc = _valid(_json([*argv, "--jobs", "1", "--scenarios", str(tmp_path / "cex"), "--json"], capsys))
    (ob,) = doc["obligations"]
    assert (ob["rules"], ob["operation"], ob["verdict"], ob["scenario"]) == (
        "modern",
        "set_gdt",
        "proved",
        None,
    )
    assert doc["summary"]["proved"] == 1 and doc["facts"][0]["premise"] == "sat"
    bad = copy.deepcopy(doc)
    bad["summary"]["proved"] = "1"
    assert _invalid(bad)
