"""Scenario files: every shipped scenario meets its expectations, malformed input gives one-line errors with
FILE:LINE and the field, and a rejected step never changes the hypervisor state (XSA-291's lesson)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenpin.cli import main
from xenpin.xen.flags import NX, Entry, P
from xenpin.xen.scenario import (
    ScenarioError,
    apply_step,
    load_scenario,
    make_hypervisor,
    parse_scenario,
    run_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "models" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.toml"))

# Scenarios whose expectation is what Xen does but the validator disagrees (reported to the validator's author).
# strict: once the validator is fixed the XPASS fails, and the entry must be removed.
KNOWN_VALIDATOR_BUGS: dict[str, str] = {}


def _params() -> list:
    params = []
    for path in FILES:
        marks = []
        if path.name in KNOWN_VALIDATOR_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_VALIDATOR_BUGS[path.name]))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_enough_scenarios_shipped() -> None:
    assert len(FILES) >= 22


@pytest.mark.parametrize("path", _params())
def test_shipped_scenario_meets_expectations(path: Path) -> None:
    run = run_scenario(load_scenario(path))
    bad = [
        f"step {o.step.index} ({o.step.op}): got {o.outcome}, expected {o.step.expect}"
        for o in run.outcomes
        if o.matched is False
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_shipped_step_has_expect_and_scenario_has_comments(path: Path) -> None:
    scn = load_scenario(path)
    assert scn.steps
    assert all(step.expect is not None for step in scn.steps)
    assert path.read_text().lstrip().startswith("#")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_rejected_step_leaves_state_unchanged(path: Path) -> None:
    scn = load_scenario(path)
    hv = make_hypervisor(scn)
    for step in scn.steps:
        before = hv.snapshot()
        outcome = apply_step(hv, step)
        if step.op == "check":
            assert hv.snapshot() == before, f"step {step.index}: check changed the state"
        elif outcome.outcome != "ok":
            assert hv.snapshot() == before, f"step {step.index} ({step.op}) rejected but changed the state"


# --- malformed input ---------------------------------------------------------------------------------------

HEADER = 'name = "t"\nrules = "modern"\nframes = 8\nforeign = [40]\n'
PIN = '\n[[step]]\nop = "pin"\nlevel = 1\nmfn = 3\nexpect = "ok"\n'


def _error(text: str, tmp_path: Path) -> ScenarioError:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    return info.value


# (text, line, step, field, words in the message)
MALFORMED = {
    "unknown op": (HEADER + PIN + '\n[[step]]\nop = "frobnicate"\nmfn = 3\n', 13, 2, "op", "unknown op"),
    "missing field": (HEADER + '\n[[step]]\nop = "pin"\nmfn = 3\n', 6, 1, "level", "missing"),
    "extra field": (HEADER + '\n[[step]]\nop = "unpin"\nmfn = 3\nlevel = 1\n', 9, 1, "level", "not a field"),
    "wrong type": (HEADER + '\n[[step]]\nop = "pin"\nlevel = "one"\nmfn = 3\n', 8, 1, "level", "integer"),
    "bool is not int": (HEADER + '\n[[step]]\nop = "unpin"\nmfn = true\n', 8, 1, "mfn", "integer"),
    "unknown flag": (
        HEADER + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { mfn = 4, flags = "P|XX" }\n',
        10,
        1,
        "entry.flags",
        "unknown flag",
    ),
    "frame out of range": (
        HEADER + PIN + '\n[[step]]\nop = "unpin"\nmfn = 8\n',
        14,
        2,
        "mfn",
        "out of range",
    ),
    "entry frame out of range": (
        HEADER + '\n[[step]]\nop = "mmu_update"\nmfn = 3\nslot = 0\nentry = { mfn = 39, flags = "P" }\n',
        10,
        1,
        "entry.mfn",
        "out of range",
    ),
    "present entry without mfn": (
        HEADER + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { flags = "P" }\n',
        10,
        1,
        "entry.mfn",
        "missing",
    ),
    "level": (HEADER + '\n[[step]]\nop = "pin"\nlevel = 5\nmfn = 3\n', 8, 1, "level", "1..4"),
    "slot": (HEADER + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 512\nentry = {}\n', 9, 1, "slot", "0..511"),
    "expect": (HEADER + '\n[[step]]\nop = "unpin"\nmfn = 3\nexpect = "ENOMEM"\n', 9, 1, "expect", "ENOMEM"),
    "check expect": (HEADER + '\n[[step]]\nop = "check"\nexpect = "EINVAL"\n', 8, 1, "expect", "violated"),
    "invariant": (
        HEADER + '\n[[step]]\nop = "check"\nexpect = "violated"\ninvariant = "nope"\n',
        9,
        1,
        "invariant",
        "unknown invariant",
    ),
    # An entry that names a frame or flags but lacks P used to become a not-present entry silently.
    "entry without flags": (
        HEADER + PIN + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { mfn = 4 }\n',
        16,
        2,
        "entry.flags",
        "write entry = {} for a not-present entry",
    ),
    "entry flags without P": (
        HEADER + '\n[[step]]\nop = "mmu_update"\nmfn = 3\nslot = 0\nentry = { mfn = 4, flags = "RW" }\n',
        10,
        1,
        "entry.flags",
        "'RW' lacks P",
    ),
    "entry flags empty": (
        HEADER + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { mfn = 4, flags = "" }\n',
        10,
        1,
        "entry.flags",
        "empty: a present entry needs P",
    ),
    "entry flags empty name": (
        HEADER + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { mfn = 4, flags = "P||RW" }\n',
        10,
        1,
        "entry.flags",
        "empty flag name in 'P||RW'",
    ),
    "entry flags trailing bar": (
        HEADER + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { mfn = 4, flags = "P|" }\n',
        10,
        1,
        "entry.flags",
        "empty flag name",
    ),
    # A quoted [["step"]] header is the same table array: its steps have their real lines.
    "quoted step header": (
        HEADER + PIN + '\n[["step"]]\nop = "pin"\nlevel = 9\nmfn = 3\n',
        14,
        2,
        "level",
        "1..4",
    ),
    "literal-quoted step header": (
        HEADER + "\n[['step']]\nop = 'unpin'\nmfn = 99\n",
        8,
        1,
        "mfn",
        "out of range",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_step_is_one_line_with_file_line_step_field(case: str, tmp_path: Path) -> None:
    text, line, step, field, words = MALFORMED[case]
    err = _error(text, tmp_path)
    assert (err.line, err.step, err.field) == (line, step, field)
    assert f":{line}: step {step}: field {field!r}: " in str(err)
    assert words in str(err)


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ('name = "t"\nrules = "xen-9"\nframes = 8\n', 2, "rules", "unknown rules"),
        ('name = "t"\nrules = "modern"\nframes = "8"\n', 3, "frames", "integer"),
        ('name = "t"\nrules = "modern"\nframes = 8\nforeign = [3]\n', 4, "foreign", "owned by the guest"),
        ('name = "t"\nrules = "modern"\n', 1, "frames", "missing"),
        ('name = "t"\nrules = "modern"\nframes = 8\ncolour = 1\n', 4, "colour", "unknown field"),
        ('\nname = ""\nrules = "modern"\nframes = 8\n', 2, "name", "must not be empty"),
        ('name = 3\nrules = "modern"\nframes = 8\n', 1, "name", "non-empty string, not an integer"),
        # A single [step] table instead of [[step]]: reported at its header, not at line 1.
        ('name = "t"\nrules = "modern"\nframes = 8\n\n[step]\nop = "check"\n', 5, "step", "[[step]]"),
        ('name = "t"\nrules = "modern"\nframes = 8\n\n[ "step" ]\nop = "check"\n', 5, "step", "[[step]]"),
    ],
)
def test_malformed_top_level(text: str, line: int, field: str, words: str, tmp_path: Path) -> None:
    err = _error(text, tmp_path)
    assert (err.line, err.step, err.field) == (line, None, field)
    assert f":{line}: field {field!r}: " in str(err) and words in str(err)


def test_toml_syntax_error_uses_tomllib_line(tmp_path: Path) -> None:
    err = _error('name = "t"\nrules = "modern"\nframes = \n', tmp_path)
    assert err.line == 3 and "TOML syntax" in str(err)


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario("/nonexistent/x.toml")


def test_parse_entries_and_non_present() -> None:
    scn = parse_scenario(
        HEADER
        + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { mfn = 4, flags = "P|RW" }\n'
        + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 1\nentry = {}\n'
        + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 2\nentry = { mfn = 4, flags = " P | NX " }\n'
        + '\n[["step"]]\nop = "check"\n'
    )
    entries = [s.args.get("entry") for s in scn.steps]
    assert entries[0] is not None and entries[0].mfn == 4 and entries[0].present
    assert entries[1] is None  # `entry = {}` is the one way to write a not-present entry
    assert entries[2] == Entry(4, P | NX)
    assert scn.steps[3].expect is None
    assert [s.line for s in scn.steps] == [6, 12, 18, 24]


def test_step_without_expect_only_reports() -> None:
    scn = parse_scenario(HEADER + '\n[[step]]\nop = "unpin"\nmfn = 3\n')
    run = run_scenario(scn)
    assert run.outcomes[0].matched is None and run.outcomes[0].outcome == "EINVAL"
    assert run.passed


@pytest.mark.parametrize(
    "text",
    [
        HEADER + '\n[[step]]\nop = "write"\nmfn = 3\nslot = 0\nentry = { mfn = 4 }\n',
        'name = "t"\nrules = "modern"\nframes = 8\n\n[step]\nop = "check"\n',
        '\nname = ""\nrules = "modern"\nframes = 8\n',
    ],
    ids=["entry without flags", "[step] table", "empty name"],
)
def test_replay_exits_2_with_one_line(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["replay", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in err
