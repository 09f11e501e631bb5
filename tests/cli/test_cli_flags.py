"""The smaller flags of issue 10: `--rlimit` in the README's notation, `--jobs` capped at the usable cores and
the obligations, `--quiet` on every command, and one exit rule for `unknown` (prove and explore)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from xenpin import shipped
from xenpin.cli import main
from xenpin.linux.variant import load_variant
from xenpin.symbolic import batch
from xenpin.symbolic.prove import Verdict

KERNEL = str(shipped.KERNELS / "3.1.toml")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """`prove_many` replaced: what `prove` asked of it (no solver runs), every verdict as expected."""
    seen: list[dict] = []

    def fake(jobs, **kw):
        seen.append({"jobs": jobs, **kw})
        return [Verdict(v, prop, v.expect[prop], 0.0) for v, prop in jobs]

    monkeypatch.setattr(batch, "prove_many", fake)
    return seen


@pytest.mark.parametrize(
    ("text", "value"),
    [("4e8", 400_000_000), ("400000000", 400_000_000), ("400_000_000", 400_000_000), ("4_0e7", 400_000_000),
     ("4.0e8", 400_000_000), ("1E6", 1_000_000), ("0x1000", 4096), ("4294967295", 2**32 - 1)],
)  # fmt: skip
def test_rlimit_takes_whole_numbers_in_float_notation(
    text: str, value: int, calls: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prove", KERNEL, "--property", "spare_freed", "--rlimit", text]) == 0
    assert calls[-1]["rlimit"] == value
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "text",
    [
        "4.5",
        "1e400",
        "nan",
        "inf",
        "-4e8",
        "0",
        "4294967296",
        "1e-3",
        "four",
        "",
        "_4",
        "4__0",
        "1_e8",
        "0b101",
        "0o17",
    ],
)
def test_rlimit_rejects_what_is_not_a_positive_whole_number(
    text: str, calls: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prove", KERNEL, f"--rlimit={text}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not calls
    assert captured.err.startswith("xenpin: --rlimit: ") and captured.err.count("\n") == 1


def test_rlimit_default_is_the_readmes_4e8(calls: list[dict]) -> None:
    assert main(["prove", KERNEL, "--property", "spare_freed"]) == 0
    assert calls[-1]["rlimit"] == 400_000_000


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "process_cpu_count", lambda: 2, raising=False)


@pytest.mark.parametrize(
    ("argv", "workers"),
    [
        (["--jobs", "1000"], 2),  # not more than the cores
        ([], 2),  # the default: every core
        (["--jobs", "1"], 1),
        (["--jobs", "1000", "--property", "spare_freed"], 1),  # not more than the obligations
    ],
)
def test_jobs_is_capped_at_the_cores_and_the_obligations(
    argv: list[str], workers: int, two_cores: None, calls: list[dict]
) -> None:
    assert main(["prove", KERNEL, *argv]) == 0
    assert calls[-1]["workers"] == workers


def test_default_workers_counts_the_usable_cores(two_cores: None) -> None:
    assert batch.default_workers() == 2


def test_the_pool_gets_the_capped_count(two_cores: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--jobs 1000` on 2 cores: the process pool is made with 2 workers (stopped before any solver call)."""
    made: list[int] = []

    class Pool:
        def __init__(self, max_workers: int, **kwargs: object) -> None:
            made.append(max_workers)
            raise RuntimeError("no pool in this test")

    monkeypatch.setattr(batch, "ProcessPoolExecutor", Pool)
    with pytest.raises(RuntimeError, match="no pool"):
        main(["prove", KERNEL, "--jobs", "1000"])
    assert made == [2]


def test_help_says_jobs_is_capped_and_rlimit_takes_4e8(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "at most: the cores this process may use" in text and "no more than the obligations" in text
    assert "4e8" in text


@pytest.mark.parametrize("command", ["boot", "prove", "logs", "replay", "explore", "equiv", "list"])
def test_every_command_takes_quiet(command: str) -> None:
    from xenpin.cli import build_parser

    positional = {"boot": ["m.toml"], "prove": [], "logs": [], "replay": ["s.toml"],
                  "explore": ["m.toml", "spare_freed"], "equiv": ["a.toml", "b.toml"], "list": []}[command]  # fmt: skip
    args = build_parser().parse_args([command, *positional, "--quiet"])
    assert args.quiet is True


# --- exit 3: an unknown verdict ------------------------------------------------------------------------------


def _verdicts(monkeypatch: pytest.MonkeyPatch, cases: list[tuple[str, str]]) -> None:
    """`prove` gets one verdict per (expected, verdict) in `cases`, on 3.1's properties in order."""
    base = load_variant(KERNEL)
    props = list(base.expect)

    def fake(jobs, **kw):
        out = []
        for prop, (expected, got) in zip(props, cases, strict=False):
            v = dataclasses.replace(base, expect={**base.expect, prop: expected})
            out.append(Verdict(v, prop, got, 0.0))
        return out

    monkeypatch.setattr(batch, "prove_many", fake)


@pytest.mark.parametrize(
    ("cases", "code"),
    [
        ([("proved", "proved"), ("counterexample", "counterexample")], 0),
        ([("unknown", "unknown"), ("proved", "proved")], 0),  # an expected unknown is as expected
        ([("proved", "unknown"), ("proved", "proved")], 3),  # an unexpected unknown
        ([("unknown", "unknown"), ("proved", "unknown")], 3),
        ([("proved", "counterexample"), ("proved", "proved")], 1),
        ([("proved", "unknown"), ("proved", "counterexample")], 1),  # a mismatch outweighs an unknown
        ([("unknown", "proved")], 1),  # decided where unknown was expected: a mismatch
    ],
)
def test_prove_exit_code_rule(
    cases: list[tuple[str, str]],
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _verdicts(monkeypatch, cases)
    assert main(["prove", KERNEL, "--jobs", "1"]) == code
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("expected", "code"), [("unknown", 0), ("proved", 3)])
def test_explore_follows_the_same_exit_rule(
    expected: str, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xenpin.symbolic import explore

    text = (shipped.KERNELS / "3.1.toml").read_text()
    model = tmp_path / "3.1.toml"
    model.write_text(text.replace('spare_freed = "proved"', f'spare_freed = "{expected}"'))
    monkeypatch.setattr(
        explore, "counterexamples", lambda v, prop, n: [Verdict(v, prop, "unknown", 0.0, notes=["limit"])]
    )
    assert main(["explore", str(model), "spare_freed"]) == code
