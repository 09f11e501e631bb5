"""Rendering of `xenpin logs`: each shipped log beside its variant (name and file), the result against the
expected one, and how many of its compared lines match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xenpin.report.jsondoc import document, file_of
from xenpin.report.table import shown_path, table_lines


@dataclass(frozen=True)
class LogRow:
    """One log of a manifest, reproduced: `result` is match, differ or unusable (the log cannot configure the
    machine: `detail` says why; otherwise it is the predicted outcome)."""

    log: str
    variant: str
    file: str
    expect: str
    result: str
    matched: int
    compared: int
    detail: str

    @property
    def as_expected(self) -> bool:
        return self.result == self.expect


def render_text(rows: list[LogRow]) -> str:
    cells = [
        (
            shown_path(r.log),
            r.variant,
            shown_path(r.file),
            r.result,
            r.detail if r.result == "unusable" else f"{r.matched}/{r.compared} lines match; {r.detail}",
            "" if r.as_expected else f"<-- expected {r.expect}",
        )
        for r in rows
    ]
    return "\n".join(table_lines(("log", "variant", "file", "result", "detail", ""), cells))


def logs_json(manifest: str, rows: list[LogRow]) -> dict[str, Any]:
    return document(
        "logs",
        manifest=file_of(manifest),
        logs=[
            {
                "log": file_of(r.log),
                "variant": r.variant,
                "file": file_of(r.file),
                "expect": r.expect,
                "result": r.result,
                "matched": r.matched,
                "compared": r.compared,
                "detail": r.detail,
                "as_expected": r.as_expected,
            }
            for r in rows
        ],
        summary={
            "logs": len(rows),
            "as_expected": sum(r.as_expected for r in rows),
            **{k: sum(r.result == k for r in rows) for k in ("match", "differ", "unusable")},
        },
        as_expected=all(r.as_expected for r in rows),
    )
