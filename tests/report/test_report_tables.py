"""The reports' tables: widths from the content (a 40-character variant name keeps every column in line), the
variant file in every row, no colour or wrapping when captured."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootcache import cached_boot

from xenpin.cli import main
from xenpin.report.table import shown_path, table_lines

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
LONG = "a-variant-named-with-forty-characters-ok"


@pytest.fixture
def long_variant(tmp_path: Path) -> Path:
    assert len(LONG) == 40
    path = tmp_path / f"{LONG}.toml"
    path.write_text((KERNELS / "3.1.toml").read_text().replace('name = "3.1"', f'name = "{LONG}"'))
    return path


def _columns_line_up(header: str, row: str, cells: list[str]) -> None:
    """Each cell starts where its column's name starts."""
    for name, cell in zip(header.split(), cells, strict=False):
        start = header.index(name)
        assert row[start : start + len(cell)] == cell and (start == 0 or row[start - 1] == " "), (name, cell)


def test_table_lines_are_as_wide_as_their_content_and_plain() -> None:
    header, row = table_lines(("name", "n>", "x"), [("[bold]" + "y" * 200, 7, "z")])
    assert "\x1b" not in header + row and row.startswith(
        "[bold]" + "y" * 200
    )  # no markup, no wrap, no colour
    assert header.split() == ["name", "n", "x"] and header.index("x") == row.index("z")
    assert row.index("7") == header.rindex("n")  # right-aligned: a number under the end of its name
    assert table_lines(("a",), [], 2) == ["  a"]


def test_shown_path() -> None:
    assert shown_path(Path.cwd() / "models" / "x.toml") == str(Path("models") / "x.toml")
    assert shown_path("models/x.toml") == "models/x.toml" and shown_path(None) == "-"
    assert shown_path("/elsewhere/x.toml") == "/elsewhere/x.toml"
    assert shown_path("proofs/../models/x.toml") == "models/x.toml"


def test_prove_table_keeps_its_columns_for_a_long_name(
    long_variant: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = KERNELS / "3.1.toml"
    argv = ["prove", str(long_variant), str(short), "--property", "buffer_fits", "--jobs", "1"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    rows = [line for line in lines if "buffer_fits" in line]
    assert len(rows) == 2
    for row, name, path in zip(rows, (LONG, "3.1"), (long_variant, short), strict=True):
        _columns_line_up(header, row, [name, shown_path(path), "buffer_fits", "proved", "proved"])


def test_boot_summary_keeps_its_columns_for_a_long_name(
    long_variant: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("xenpin.linux.boot.boot", cached_boot)
    short = KERNELS / "3.1.toml"
    assert main(["boot", "--mem", "1G", str(long_variant), str(short)]) == 0
    out = capsys.readouterr().out.splitlines()
    header, *rows = out[-3:]
    assert header.split() == ["variant", "file", "outcome", "as", "expected"]
    assert f"file:     {shown_path(long_variant)}" in "\n".join(out)  # the per-boot report names its file
    for row, name, path in zip(rows, (LONG, "3.1"), (long_variant, short), strict=True):
        _columns_line_up(header, row, [name, shown_path(path), "ok", "yes"])
