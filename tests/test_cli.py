"""`xenpin replay`: exit codes 0/1/2, one JSON document with --json, one-line errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenpin.cli import main

GOOD = """# pin an empty L1
name = "good"
rules = "modern"
frames = 8

[[step]]
op = "pin"
level = 1
mfn = 3
expect = "ok"

[[step]]
op = "pin"
level = 1
mfn = 3
expect = "EINVAL"
"""

MISMATCH = GOOD.replace('name = "good"', 'name = "wrong"').replace('expect = "EINVAL"', 'expect = "ok"')
BAD = GOOD.replace('level = 1\nmfn = 3\nexpect = "EINVAL"', 'level = 7\nmfn = 3\nexpect = "EINVAL"')


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("good", GOOD), ("mismatch", MISMATCH), ("bad", BAD)):
        out[name] = tmp_path / f"{name}.toml"
        out[name].write_text(text)
    return out


def test_all_expectations_met_exit_0(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(files["good"])]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "MATCH" in out and "MISMATCH" not in out
    assert "Mfn 3 already pinned" in out  # Xen's log line under the rejected step
    assert "L1 mfn 0x3" in out


def test_mismatch_exit_1(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(files["good"]), str(files["mismatch"])]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "FAIL" in out


def test_json_is_one_document(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--json", str(files["good"]), str(files["mismatch"])]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["verdict"] == "fail"
    assert [s["name"] for s in doc["scenarios"]] == ["good", "wrong"]
    step = doc["scenarios"][0]["steps"][1]
    assert step["result"] == "EINVAL" and step["expected"] == "EINVAL" and step["match"] is True
    assert step["log"]


def test_bad_file_exit_2_one_line_no_stdout(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(files["good"]), str(files["bad"])]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"xenpin: {files['bad']}:14: step 2: field 'level'")


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("xenpin: ")


def test_toml_syntax_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('name = "x"\nrules = \n')
    assert main(["replay", "--json", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"{path}:2:" in captured.err


def test_directory_argument(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = tmp_path / "dir"
    only.mkdir()
    (only / "a.toml").write_text(GOOD)
    assert main(["replay", str(only)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["replay", str(empty)]) == 2


@pytest.mark.parametrize("argv", [[], ["replay"], ["nosuchcommand"], ["replay", "--frobnicate", "x.toml"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().out == ""


def test_shipped_scenarios_replay_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = Path(__file__).resolve().parents[1] / "models" / "scenarios"
    code = main(["replay", "--json", str(scenarios)])
    doc = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert doc["summary"]["scenarios"] >= 22
    assert (code == 0) == (doc["summary"]["verdict"] == "pass")
