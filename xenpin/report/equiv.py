"""Rendering of variant comparisons (`xenpin equiv`): the verdict, how it was decided (a proof over the closed
form, or paired boots at a list of sizes), what was compared, and for two different variants the smallest
distinguishing machine with the lowest page where their boots leave something different, replayed on both sides.

Each side is named by its variant and its file, so two variants of the same name can be told apart.
"""

from __future__ import annotations

from typing import Any

from xenpin.linux.boot import BootResult
from xenpin.linux.variant import KernelVariant
from xenpin.report.jsondoc import document, file_of, hex_or_none
from xenpin.report.table import shown_path
from xenpin.symbolic.equiv import PROOF, EquivResult, page_text

_PTE = {True: "RW", False: "RO", None: "unmapped"}


def _sides(r: EquivResult) -> list[tuple[str, KernelVariant, BootResult]]:
    return [(w, v, rep) for w, v, rep in (("a", r.a, r.replay_a), ("b", r.b, r.replay_b)) if rep is not None]


def _machine(r: EquivResult) -> str:
    if r.witness is not None:
        return r.witness.describe()
    kinds = sorted({"domU" if v.xen else "bare metal" for v in (r.a, r.b)}, reverse=True)
    return f"{' and '.join(kinds)} of {r.mem_bytes:#x} bytes"


def _how(r: EquivResult) -> str:
    if r.method == PROOF:
        return "proof over every machine of the closed form's domain"
    sizes = ", ".join(f"{m >> 20} MiB" if m % (1 << 20) == 0 else hex(m) for m in r.sizes)
    return f"paired boots at {sizes}" if sizes else "paired boots"


def render_text(r: EquivResult) -> str:
    a, b = r.a, r.b
    names = f"{a.name} ({shown_path(a.path)}) and {b.name} ({shown_path(b.path)})"
    compared = f"  compared: {r.compared}"
    if r.verdict == "equivalent":
        return f"{names}: equivalent ({_how(r)})\n{compared}"
    if r.verdict != "different":
        return f"{names}: unknown ({r.detail})\n{compared}"
    where = f", call {r.call}" if r.call is not None else ""
    how = "the closed form's least machine, replayed" if r.method == PROOF else _how(r)
    out = [f"{names}: different ({how}) on a {_machine(r)}{where}: {r.detail}", compared]
    for _, variant, replay in _sides(r):
        page = ""
        if r.pfn is not None:
            page = f"; pfn {r.pfn:#x} is {page_text(replay.left[r.pfn], r.pins_compared)}"
        out.append(f"  replay {variant.name} ({shown_path(variant.path)}): outcome {replay.outcome}{page}")
    return "\n".join(out)


def equiv_json(r: EquivResult) -> dict[str, Any]:
    """`equiv --json`: both variants, the verdict and how it was decided, what was compared, the
    distinguishing machine and page, both replays."""
    replays = []
    for which, variant, replay in _sides(r):
        page = None
        if r.pfn is not None:
            rw, reserved, pinned = replay.left[r.pfn]
            page = {"pfn": hex(r.pfn), "pte": _PTE[rw], "reserved": reserved, "pinned": pinned}
        replays.append(
            {
                "side": which,
                "variant": variant.name,
                "file": file_of(variant.path),
                "outcome": replay.outcome,
                "page": page,
            }
        )
    return document(
        "equiv",
        a={"variant": r.a.name, "file": file_of(r.a.path), "release": r.a.release},
        b={"variant": r.b.name, "file": file_of(r.b.path), "release": r.b.release},
        verdict=r.verdict,
        method=r.method,
        compared=r.compared,
        pins_compared=r.pins_compared,
        sizes=[hex(m) for m in r.sizes],
        mem_bytes=hex_or_none(r.mem_bytes),
        call=r.call,
        pfn=hex_or_none(r.pfn),
        differing_pages=len(r.differing),
        machine=r.witness.machine_json() if r.witness else None,
        detail=r.detail,
        replays=replays,
    )
