"""`xenpin replay`: exit codes 0/1/2, one JSON document with --json, one-line errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import z3

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


# --- xenpin boot ------------------------------------------------------------------------------------------------

KERNELS = Path(__file__).resolve().parents[1] / "models" / "kernels"


def test_boot_reproduces_crash_on_reuse_as_expected(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["boot", str(KERNELS / "2.6.39-rc.toml"), "--mem", "64M", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0  # the model expects spare_writable to have a counterexample
    assert doc["outcome"] == "kernel-fault"
    assert doc["failure"]["message"].startswith("BUG: unable to handle kernel paging request at ffff8800")
    assert doc["failure"]["pfn"] == doc["buffers"][0]["pgt_buf_end"]
    assert doc["properties"]["spare_writable"]["value"] is False


def test_boot_text_shows_buffer_and_properties(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boot", str(KERNELS / "3.0.toml"), "--mem", "128M", "--trace"]) == 0
    out = capsys.readouterr().out
    assert "kernel direct mapping tables up to 0x8000000 @ [" in out
    assert "pagetable_reserve: ran" in out
    assert "alloc_low_page" in out and "pin_pagetable_pfn" in out
    assert "outcome: ok" in out and "result: as expected" in out


def test_boot_exit_1_when_a_proved_property_is_violated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        (KERNELS / "2.6.39-rc.toml")
        .read_text()
        .replace('spare_writable = "counterexample"', 'spare_writable = "proved"')
    )
    model = tmp_path / "wrong-expectation.toml"
    model.write_text(text)
    assert main(["boot", str(model), "--mem", "64M"]) == 1
    assert "MISMATCH (spare_writable)" in capsys.readouterr().out


def test_boot_bad_policy_exit_2_names_file_line_key_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        (KERNELS / "3.0.toml")
        .read_text()
        .replace('writable = "PFN_PHYS(pgt_buf_end)', 'writable = "PFN_PHYS(pgt_buf_edn)')
    )
    model = tmp_path / "typo.toml"
    model.write_text(text)
    assert main(["boot", str(model), "--mem", "64M"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.strip()
    assert "\n" not in line and "Traceback" not in line
    writable_line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("writable"))
    assert line.startswith(
        f"xenpin: {model}:{writable_line}: key 'writable': column 10: unknown variable 'pgt_buf_edn'"
    )


@pytest.mark.parametrize("mem", ["3X", "1M", "-5G", "infG", "nanG", "99999999999999999999999G", "1T"])
def test_boot_bad_mem_exit_2(mem: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boot", str(KERNELS / "3.0.toml"), f"--mem={mem}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("xenpin: --mem: ")


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("xenpin boot: ") and "MODEL" in err


# --- xenpin prove / explore / equiv ----------------------------------------------------------------------------


def test_explore_shows_replayed_counterexample_and_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svg, dot = tmp_path / "b.svg", tmp_path / "b.dot"
    code = main(
        ["explore", str(KERNELS / "2.6.39-rc.toml"), "spare_writable", "--svg", str(svg), "--dot", str(dot)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "smallest: memory 0x4000000 bytes" in out and "BUG: unable to handle kernel paging request" in out
    assert "0x3fec (1 page): spare, RO, free  <== counterexample" in out
    assert svg.read_text().startswith("<svg") and "counterexample" in svg.read_text()
    assert dot.read_text().startswith("digraph buffer {")


def test_prove_json_and_bad_property(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", str(KERNELS / "3.0.toml"), "--property", "spare_freed", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [o["verdict"] for o in doc["obligations"]] == ["proved"] and doc["bit_width"] == 64
    assert main(["prove", "--property", "nope"]) == 2
    assert capsys.readouterr().err.startswith("xenpin: --property: unknown property 'nope'")


def test_prove_resource_limit_hit_is_unknown_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prove", str(KERNELS / "2.6.38.toml"), "--property", "spare_writable", "--rlimit", "1000"])
    out = capsys.readouterr().out
    assert code == 3
    row = out.splitlines()[1].split()
    assert row[:3] == ["2.6.38", "spare_writable", "unknown"]  # a limit hit is never `proved`
    assert "solver gave up (max. resource limit exceeded)" in out


def test_equiv_inline_alternative(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["equiv", str(KERNELS / "3.0.toml"), str(KERNELS / "3.0-inline.toml")]) == 0
    assert "equivalent" in capsys.readouterr().out


def test_prove_smt2_writes_obligations_and_the_lemmas_they_assume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "smt"
    assert main(["prove", str(KERNELS / "3.0.toml"), "--property", "spare_writable", "--smt2", str(out)]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    assert "3.0.spare_writable.call0.smt2" in names and "3.0.spare_writable.call1.smt2" in names
    assert "lemma.pte_end_bounded.low.call0.smt2" in names and "lemma.add_monotone.smt2" in names
    for name in names:
        text = (out / name).read_text()
        assert "(set-logic QF_BV)" in text
        solver = z3.SolverFor("QF_BV")
        solver.add(z3.parse_smt2_string(text))
        assert solver.check() == z3.unsat, name  # every obligation of a proved verdict, every lemma
    header = (out / "3.0.spare_writable.call0.smt2").read_text().splitlines()[1]
    assert header.startswith("; assumes the lemmas ") and "pte_end_bounded[low, call 0]" in header


def test_prove_bad_jobs_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", str(KERNELS / "3.0.toml"), "--jobs", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "xenpin: --jobs: must be a positive integer\n"


def test_boot_exit_1_on_a_failure_no_property_accounts_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only fixmap alias: the kernel faults filling its first table page (alias_writable)."""
    text = (
        (KERNELS / "3.0.toml").read_text().replace(" or (ioremap and pfn != pgt_buf_end - 1)", " or ioremap")
    )
    model = tmp_path / "ro-alias.toml"
    model.write_text(text)
    assert main(["boot", str(model), "--mem", "64M"]) == 1
    out = capsys.readouterr().out
    assert "outcome: kernel-fault" in out and "MISMATCH (alias_writable)" in out
    assert main(["prove", str(model), "--property", "alias_writable", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "alias_writable  counterexample    proved" in out and "replay: kernel-fault" in out


@pytest.mark.parametrize("timeout", ["nan", "inf", "0", "-1"])
def test_prove_bad_timeout_exit_2(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", str(KERNELS / "3.0.toml"), f"--timeout={timeout}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("xenpin: --timeout: ")


def test_explore_unwritable_picture_is_exit_2_with_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(KERNELS / "2.6.39-rc.toml")
    assert main(["explore", model, "spare_writable", "--svg", str(tmp_path)]) == 2  # a directory
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"xenpin: {tmp_path}: not a file")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main(["explore", model, "spare_writable", "--svg", str(locked / "b.svg")])
    finally:
        locked.chmod(0o700)
    captured = capsys.readouterr()
    if code != 0:  # root may write anyway
        assert code == 2 and captured.out == "" and "cannot write" in captured.err
        assert list(locked.iterdir()) == []  # no partial file, no temporary left behind


def test_explore_without_counterexample_says_no_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svg = tmp_path / "b.svg"
    assert main(["explore", str(KERNELS / "3.0.toml"), "spare_writable", "--svg", str(svg)]) == 0
    assert f"no counterexample: {svg} not written" in capsys.readouterr().out and not svg.exists()


SCRIPTS = {
    "nameerr.py": (
        "from xenpin.symbolic.theorems import Theorem\nTHEOREMS = [VARIANT]\n",
        ":2: the script failed: NameError",
    ),
    "exits.py": ("import sys\nsys.exit(0)\n", ":2: the script failed: exits while loading"),
    "typo.py": (
        "from xenpin.symbolic.theorems import Theorem\n"
        "THEOREMS = [\n"
        "    Theorem('models/kernels/3.0.toml', 'spare_freed'),\n"
        "    Theorem('models/kernels/3.0.toml', 'spare_writeable'),\n"
        "]\n",
        ":4: Theorem prop: unknown property 'spare_writeable'",
    ),
    "badverdict.py": (
        "from xenpin.symbolic.theorems import Theorem\nTHEOREMS = [Theorem('models/kernels/3.0.toml', 'spare_freed', 'yes')]\n",
        ":2: Theorem expect: unknown verdict 'yes'",
    ),
    "syntax.py": ("THEOREMS = [\n", ":1: syntax error"),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_bad_proof_script_exit_2_names_script_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, message = SCRIPTS[name]
    script = tmp_path / name
    script.write_text(source)
    assert main(["prove", str(script), "--property", "spare_freed"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"xenpin: {script}{message}"), (
        captured.err
    )


def test_proof_script_prints_do_not_spoil_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(
        "from xenpin.symbolic.theorems import Theorem\nprint('hello')\n"
        "THEOREMS = [Theorem('models/kernels/3.0.toml', 'spare_freed')]\n"
    )
    assert main(["prove", str(script), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["obligations"][0]["verdict"] == "proved" and "hello" in captured.err
