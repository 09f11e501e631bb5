"""`xenpin verify-rules` on tiny selections (one guest frame): XSA-182's counterexample found, written as a
scenario that `xenpin replay` passes, and its JSON valid; small proved and vacuous cells; exit codes against an
expectations file; bad arguments and bad expectation files as one line and exit 2, before any solver work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from xenpin import shipped
from xenpin.cli import main
from xenpin.cli.verify_rules import DEFAULT_SCENARIOS, scenario_name
from xenpin.report.jsondoc import load_schema

XSA182 = ["--rules", "xen-4.1", "--op", "mmu_update[l4]", "--invariant", "global_safety", "--frames", "1"]
GDT = ["--rules", "modern", "--op", "set_gdt", "--frames", "1", "--jobs", "1"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify-rules", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def xsa182(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    """One run of the XSA-182 cell with --json (the solver's part costs a few seconds: run it once)."""
    import contextlib
    import io

    out_dir = tmp_path_factory.mktemp("cex") / "scenarios"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["verify-rules", *XSA182, "--jobs", "1", "--scenarios", str(out_dir), "--json"])
    return code, json.loads(out.getvalue()), out_dir


def test_xsa182_counterexample_is_written_and_replays(
    xsa182: tuple[int, dict, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, out_dir = xsa182
    assert code == 0  # the shipped expectations list it as a counterexample
    (ob,) = doc["obligations"]
    assert (ob["rules"], ob["operation"], ob["invariant"]) == ("xen-4.1", "mmu_update[l4]", "global_safety")
    assert (ob["verdict"], ob["expected"], ob["as_expected"]) == ("counterexample", "counterexample", True)
    path = out_dir / "xen-4.1.mmu_update-l4.global_safety.toml"
    assert ob["scenario"] == str(path) and [p.name for p in out_dir.iterdir()] == [path.name]
    assert ob["steps"][-1].startswith("mmu_update(") and ob["steps"][-1].endswith("-> ok")
    assert any(v.startswith("global_safety:") for v in ob["violations"])
    assert main(["replay", str(path)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_xsa182_json_is_valid(xsa182: tuple[int, dict, Path]) -> None:
    _, doc, _ = xsa182
    schema = load_schema("verify-rules")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert list(doc)[:3] == ["schema", "command", "bound"] and doc["bound"].startswith("1 guest frames")
    assert doc["summary"]["counterexample"] == 1 and doc["summary"]["differ"] == 0
    assert [lm["rules"] for lm in doc["lemmas"]] == ["xen-4.1"] and len(doc["witnesses"]) == 1
    for change in ({"seconds": "1"}, {"verdict": "refuted"}, {"scenario": 3}):
        bad = json.loads(json.dumps(doc))
        bad["obligations"][0].update(change)
        assert not jsonschema.Draft202012Validator(schema).is_valid(bad), change


def test_proved_cells_text_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run([*GDT, "--invariant", "type_count", "--invariant", "general_count"], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "modern:" and lines[1].split() == ["operation", "type_count", "general_count"]
    assert lines[2].split()[0] == "set_gdt" and lines[2].count("proved") == 2
    assert lines[-1].startswith("2 obligations: 2 proved, 0 counterexample, 0 vacuous, 0 unknown; 0 differ")
    assert "bound: 1 guest frames" in lines[-1]
    assert list(tmp_path.iterdir()) == []  # no counterexample: no folder


def test_vacuous_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([*GDT, "--invariant", "exclusivity"], capsys)
    assert code == 3  # one guest frame holds no state where exclusivity speaks of something
    assert "vacuous" in out and "not decided:" in out and "1 vacuous" in out.splitlines()[-1]


def test_a_proved_cell_expected_as_counterexample_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expect = tmp_path / "expect.toml"
    expect.write_text(
        '[[expect]]\nrules = "modern"\noperation = "set_gdt"\ninvariant = "type_count"\n'
        'verdict = "counterexample"\nwhy = "a test"\n'
    )
    code, out, _ = _run([*GDT, "--invariant", "type_count", "--expect", str(expect)], capsys)
    assert code == 1
    assert "proved" in out.splitlines()[2] and out.splitlines()[2].endswith("!")
    assert "modern set_gdt type_count: proved, expected counterexample (a test)" in out


def test_shipped_expectations_load() -> None:
    from xenpin.cli.verify_rules import load_expectations
    from xenpin.symbolic.pv.invariants import STATE_INVARIANTS
    from xenpin.symbolic.pv.operations import OPERATION_NAMES

    known = {"rules": ("xen-4.1", "modern"), "operation": OPERATION_NAMES, "invariant": STATE_INVARIANTS}
    found = load_expectations(str(shipped.RULES_EXPECT), known)
    assert ("xen-4.1", "mmu_update[l4]", "global_safety") in found
    assert ("xen-4.1", "mmu_update[l2]", "global_safety") in found
    assert all(e.verdict == "counterexample" and e.rules == "xen-4.1" for e in found.values())


def test_scenario_names() -> None:
    assert scenario_name("xen-4.1", "mmu_update[l2]", "closure") == "xen-4.1.mmu_update-l2.closure.toml"
    assert scenario_name("modern", "write[ptwr]", "type_count") == "modern.write-ptwr.type_count.toml"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--op", "nope"], "xenpin: --op: unknown operation 'nope' (known: mmu_update[l1], "),
        (["--invariant", "nope"], "xenpin: --invariant: unknown invariant 'nope' (known: wellformed, "),
        (["--rules", "xen-3"], "xenpin: --rules: unknown rule set 'xen-3' (known: xen-4.1, modern)"),
        (["--frames", "0"], "xenpin: --frames: 0 is not between 1 and 6"),
        (["--frames", "7"], "xenpin: --frames: 7 is not between 1 and 6"),
        (["--frames", "two"], "xenpin: --frames: 'two' is not a whole number"),
        (["--jobs", "0"], "xenpin: --jobs: must be a positive integer"),
        (["--timeout", "nan"], "xenpin: --timeout: must be a positive, finite number of seconds"),
        (["--rlimit", "0"], "xenpin: --rlimit: 0 is not between 1 and"),
    ],
)
def test_bad_arguments_exit_2_one_line(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("xenpin.symbolic.pv.matrix.verify", _no_solver)
    code, out, err = _run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith(message) and err.count("\n") == 1


def _no_solver(*args, **kwargs):
    raise AssertionError("bad input must be refused before any solver work")


def test_scenarios_dir_is_checked_before_solving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("xenpin.symbolic.pv.matrix.verify", _no_solver)
    a_file = tmp_path / "a-file"
    a_file.write_text("keep\n")
    code, out, err = _run([*XSA182, "--scenarios", str(a_file)], capsys)
    assert (code, out, err) == (2, "", f"xenpin: --scenarios: {a_file}: not a directory\n")
    folder = tmp_path / "out"
    (folder / "xen-4.1.mmu_update-l4.global_safety.toml").mkdir(parents=True)  # where the scenario would go
    code, out, err = _run([*XSA182, "--scenarios", str(folder)], capsys)
    assert (code, out) == (2, "") and "not a file but a directory" in err and err.count("\n") == 1
    assert a_file.read_text() == "keep\n" and not (tmp_path / DEFAULT_SCENARIOS).exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[expect]]\nrules = "xen-4.1"\noperation = "nope"\ninvariant = "closure"\nverdict = "proved"\n'
         'why = "x"\n', ":3: entry 1: field 'operation': unknown operation 'nope'"),
        ('[[expect]]\nrules = "xen-4.1"\n', ":1: entry 1: field 'operation': missing"),
        ('[[expect]]\nrules = "xen-4.1"\noperation = "unpin[l1]"\ninvariant = "closure"\nverdict = "maybe"\n'
         'why = "x"\n', ":5: entry 1: field 'verdict': 'maybe' is not one of proved, counterexample"),
        ('[[expect]]\nrules = "xen-4.1"\noperation = "unpin[l1]"\ninvariant = "closure"\nverdict = "proved"\n'
         'why = "x"\ncolour = "red"\n', ":7: entry 1: field 'colour': unknown"),
        ("[[expect]\n", ":1: TOML syntax: "),
        ('[other]\nx = 1\n', ":1: field 'other': unknown"),
    ],
)  # fmt: skip
def test_bad_expect_file_exit_2_names_line_and_field(
    text: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("xenpin.symbolic.pv.matrix.verify", _no_solver)
    expect = tmp_path / "expect.toml"
    expect.write_text(text)
    code, out, err = _run([*XSA182, "--expect", str(expect)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"xenpin: {expect}{message}") and err.count("\n") == 1


def test_duplicate_expectation_names_both_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("xenpin.symbolic.pv.matrix.verify", _no_solver)
    entry = '[[expect]]\nrules = "modern"\noperation = "unpin[l1]"\ninvariant = "closure"\nverdict = "proved"\nwhy = "x"\n'
    expect = tmp_path / "expect.toml"
    expect.write_text(entry + "\n" + entry)
    code, _, err = _run([*XSA182, "--expect", str(expect)], capsys)
    assert code == 2 and err == (
        f"xenpin: {expect}:11: entry 2: field 'invariant': modern unpin[l1] closure is already expected on line 1\n"
    )
    assert os.path.exists(expect)


def test_text_shows_each_counterexample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report of a counterexample (a canned verdict, no solver): the steps, check_invariants' lines, the
    scenario file written atomically under --scenarios."""
    from xenpin.symbolic.pv.matrix import Matrix
    from xenpin.symbolic.pv.obligations import RuleVerdict
    from xenpin.symbolic.pv.state import Bound

    bound = Bound(1)
    cex = RuleVerdict(
        "xen-4.1", "mmu_update[l4]", "closure", "counterexample", 1.5, str(bound), clause="entries of frame 0x0",
        scenario='name = "x"\n', steps=("write(mfn=0, slot=0, entry=mfn 0 P)", "mmu_update(...) -> ok"),
        violations=("closure: one", "global_safety: two", "exclusivity: three", "type_count: four"),
    )  # fmt: skip
    unknown = RuleVerdict(
        "xen-4.1", "mmu_update[l4]", "type_count", "unknown", 2.0, str(bound), note="gave up"
    )

    def canned(rules, operations, invariants, **kw):
        assert kw["bound"] == bound and kw["workers"] == 1
        return Matrix(bound, (), (), (), (cex, unknown))

    monkeypatch.setattr("xenpin.symbolic.pv.matrix.verify", canned)
    monkeypatch.chdir(tmp_path)
    argv = [
        "--rules",
        "xen-4.1",
        "--op",
        "mmu_update[l4]",
        "--invariant",
        "closure",
        "--invariant",
        "type_count",
    ]
    code, out, err = _run([*argv, "--frames", "1", "--jobs", "1"], capsys)
    assert code == 3  # the counterexample is expected, the unknown is not decided
    path = Path(DEFAULT_SCENARIOS) / "xen-4.1.mmu_update-l4.closure.toml"
    assert path.read_text() == 'name = "x"\n' and err == f"wrote 1 scenario files to {DEFAULT_SCENARIOS}\n"
    assert [p.name for p in tmp_path.iterdir()] == [DEFAULT_SCENARIOS]  # no temporary file left
    lines = out.splitlines()
    assert lines[2].split()[:5] == ["mmu_update[l4]", "CEX", "1.50s", "unknown", "2.00s"]
    assert "xen-4.1 mmu_update[l4] closure: counterexample (expected: XSA-182: " in out
    assert "  clause: entries of frame 0x0" in lines
    assert "    1. write(mfn=0, slot=0, entry=mfn 0 P)" in lines and "    2. mmu_update(...) -> ok" in lines
    assert "  check_invariants: closure: one" in lines and "... and 1 more" in out and "four" not in out
    assert f"  scenario: {path}" in lines
    assert "  xen-4.1 mmu_update[l4] type_count: unknown: gave up" in lines
