"""Rendering of variant comparisons (`xenpin equiv`): the verdict, and for two different variants the smallest
distinguishing machine with the page where they differ, replayed on both sides.

Each side is named by its variant and its file, so two variants of the same name can be told apart.
"""

from __future__ import annotations

from typing import Any

from xenpin.linux.boot import BootResult
from xenpin.report.jsondoc import document, file_of, hex_or_none
from xenpin.report.table import shown_path
from xenpin.symbolic.equiv import EquivResult

_PTE = {True: "RW", False: "RO", None: "unmapped"}


def _page(replay: BootResult, pfn: int) -> tuple[str, bool]:
    """The distinguishing page as the side's reserve step left it: its direct-map PTE, reserved or not."""
    rw, reserved = replay.final_pages.get(pfn, (None, False))
    return _PTE[rw], reserved


def _side(r: EquivResult, which: str) -> tuple[Any, BootResult | None]:
    return (r.a, r.replay_a) if which == "a" else (r.b, r.replay_b)


def render_text(r: EquivResult) -> str:
    a, b = r.a, r.b
    names = f"{a.name} ({shown_path(a.path)}) and {b.name} ({shown_path(b.path)})"
    if r.verdict == "equivalent":
        return f"{names}: equivalent (same direct-map RW bits and reservations for every size)"
    if r.verdict != "different":
        return f"{names}: unknown ({r.detail})"
    out = [f"{names}: different on a {r.witness.describe()}, call {r.call}, pfn {r.pfn:#x}: {r.detail}"]
    for which in ("a", "b"):
        variant, replay = _side(r, which)
        if replay is None:
            continue
        pte, reserved = _page(replay, r.pfn)
        out.append(
            f"  replay {variant.name} ({shown_path(variant.path)}): outcome {replay.outcome}; pfn {r.pfn:#x} is"
            f" {pte}, {'reserved' if reserved else 'free'}"
        )
    return "\n".join(out)


def equiv_json(r: EquivResult) -> dict[str, Any]:
    """`equiv --json`: both variants, the verdict, the distinguishing machine and page, both replays."""
    replays = []
    for which in ("a", "b"):
        variant, replay = _side(r, which)
        if replay is None or r.pfn is None:
            continue
        pte, reserved = _page(replay, r.pfn)
        replays.append(
            {
                "side": which,
                "variant": variant.name,
                "file": file_of(variant.path),
                "outcome": replay.outcome,
                "page": {"pfn": hex(r.pfn), "pte": pte, "reserved": reserved},
            }
        )
    return document(
        "equiv",
        a={"variant": r.a.name, "file": file_of(r.a.path), "release": r.a.release},
        b={"variant": r.b.name, "file": file_of(r.b.path), "release": r.b.release},
        verdict=r.verdict,
        mem_bytes=hex_or_none(r.mem_bytes),
        call=r.call,
        pfn=hex_or_none(r.pfn),
        machine=r.witness.machine_json() if r.witness else None,
        detail=r.detail,
        replays=replays,
    )
