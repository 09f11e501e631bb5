"""Rendering of boot runs (`xenpin boot`): the machine, the console lines the boot printed, the buffers, the
outcome and the property table; and, with `--dmesg`, each logged line beside the predicted one.

Numbers are shown as the kernel and Xen show them: PFNs and byte addresses in hex, Xen's lines with their
`(XEN) mm.c:LINE:dN` prefix, the kernel's own lines in the release's printk formats.
"""

from __future__ import annotations

from typing import Any

from xenpin.linux.boot import BootResult
from xenpin.linux.dmesg import Comparison, Configured
from xenpin.linux.layout import pfn_phys
from xenpin.linux.variant import PROPERTIES
from xenpin.report.jsondoc import document, file_of
from xenpin.report.table import shown_path, table_lines


def size_text(mem: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if mem >= 1 << shift and mem % (1 << (shift - 4)) == 0:
            return f"{mem / (1 << shift):g} {unit}"
    return f"{mem:#x} bytes"


def _judge(result: BootResult, prop: str) -> tuple[str, str]:
    value = result.properties[prop]
    shown = {True: "holds", False: "VIOLATED", None: "not reached"}[value]
    expected = result.variant.expect[prop]
    ok = not (expected == "proved" and value is False)
    return shown, "ok" if ok else "MISMATCH"


def machine_text(result: BootResult) -> str:
    cfg = result.config
    if cfg.role == "native":
        ram = result.e820.ram_bytes() if result.e820 else 0
        return f"bare metal, {size_text(ram)} of RAM (max_pfn {result.max_pfn:#x})"
    p2m = f"; p2m {result.p2m.describe()}" if result.p2m else ""
    return (
        f"{cfg.role} d{cfg.domain_id}, {size_text(cfg.mem_bytes)} (nr_pages {cfg.nr_pages:#x}, max_pfn "
        f"{result.max_pfn:#x}), Xen rules {result.rules}{p2m}"
    )


def _hook(buf) -> str:
    if buf.call < 0:  # 3.9's BRK seed: no reserve step, alloc_low_pages memblock_reserve()s each page
        return "none (each page reserved as it is taken)"
    if buf.hook_ran:
        return "ran"
    return "not called (nothing allocated)" if buf.pgt_buf_end == buf.pgt_buf_start else "not reached"


def render_text(result: BootResult, trace: bool = False) -> str:
    v = result.variant
    out = [
        f"{v.name} (release {v.release}; {v.commit}): {v.description}",
        f"  file:     {shown_path(v.path)}",
        f"  {machine_text(result)}",
        f"  readonly: {v.source('readonly')}",
        f"  reserve:  {v.source('reserve')}",
        f"  writable: {v.source('writable')}",
        "console:",
        *(f"  {line.text}" for line in result.console),
        "buffers:",
    ]
    for buf in result.buffers:
        where = f"call {buf.call}: [{pfn_phys(buf.range_start):#x}, {pfn_phys(buf.range_end):#x})"
        if buf.call < 0:
            where = "BRK seed (alloc_low_pages)"
        out.append(
            f"  {where}  pgt_buf_start {buf.pgt_buf_start:#x}  pgt_buf_end {buf.pgt_buf_end:#x}  pgt_buf_top"
            f" {buf.pgt_buf_top:#x}  reserve step: {_hook(buf)}"
        )
    if trace:
        out.append("trace (steps that touched the buffers):")
        out.extend(
            f"  {s.index:6d}  call {s.call}  end={s.pgt_buf_end:#x}  {s.action:<26} pfn {s.pfn:#x}  {s.detail}"
            for s in result.steps
        )
    f = result.failure
    if f is None:
        out.append(f"outcome: ok ({result.pins} L1 pins, {result.pte_writes} PTE writes)")
    else:
        where = f" in {f.phase}" if f.phase else ""
        out.append(f"outcome: {f.outcome}{where} at step {f.step}, pfn {f.pfn:#x} ({pfn_phys(f.pfn):#x})")
        if f.operation:
            out.append(f"  hypercall: {f.operation} -> {f.errno}")
        out.extend(f"  {line}" for line in f.xen_log)
        if not f.message.startswith("(XEN)"):
            out.append(f"  {f.message}")
        if f.function:
            out.append(f"  in {f.function}")
        if f.reason:
            out.append(f"  why: {f.reason}")
    out.append("properties:")
    rows = [(prop, *_judge(result, prop)[:1], v.expect[prop], _judge(result, prop)[1]) for prop in PROPERTIES]
    out.extend(table_lines(("property", "this run", "expected", "judged"), rows, 2))
    mism = result.mismatches()
    out.append("result: " + ("as expected" if not mism else f"MISMATCH ({', '.join(mism)})"))
    return "\n".join(out)


def boot_summary(results: list[BootResult]) -> str:
    """The table under several boots: one row per variant, with its file."""
    rows = [
        (r.variant.name, shown_path(r.variant.path), r.outcome, "yes" if not r.mismatches() else "NO")
        for r in results
    ]
    return "\n".join(table_lines(("variant", "file", "outcome", "as expected"), rows))


def boot_json(result: BootResult, trace: bool = False) -> dict[str, Any]:
    """One boot, an element of `boots_json`'s `boots`."""
    f = result.failure
    cfg = result.config
    doc: dict[str, Any] = {
        "variant": result.variant.name,
        "file": file_of(result.variant.path),
        "release": result.variant.release,
        "role": cfg.role,
        "mem_bytes": hex(cfg.mem_bytes),
        "max_pfn": hex(result.max_pfn),
        "rules": result.rules,
        "outcome": result.outcome,
        "console": [{"kind": line.kind, "text": line.text} for line in result.console],
        "buffers": [
            {
                "call": b.call,
                "range": [hex(pfn_phys(b.range_start)), hex(pfn_phys(b.range_end))],
                **{n: hex(getattr(b, n)) for n in ("pgt_buf_start", "pgt_buf_end", "pgt_buf_top")},
                "hook_ran": b.hook_ran,
            }
            for b in result.buffers
        ],
        "failure": None
        if f is None
        else {
            "outcome": f.outcome,
            "phase": f.phase,
            "step": f.step,
            "pfn": hex(f.pfn),
            "message": f.message,
            "function": f.function,
            "operation": f.operation,
            "errno": f.errno,
            "xen_log": list(f.xen_log),
            "bug_site": f.bug_site,
            "reason": f.reason,
            "violates": f.violates,
        },
        "properties": {
            p: {
                "value": result.properties[p],
                "expected": result.variant.expect[p],
                "ok": _judge(result, p)[1] == "ok",
            }
            for p in PROPERTIES
        },
        "as_expected": not result.mismatches(),
        "pins": result.pins,
        "pte_writes": result.pte_writes,
    }
    if trace:
        doc["trace"] = [
            {"step": s.index, "call": s.call, "action": s.action, "pfn": hex(s.pfn), "detail": s.detail}
            for s in result.steps
        ]
    return doc


def boots_json(results: list[BootResult], trace: bool = False) -> dict[str, Any]:
    """`boot --json`: the same shape for one variant or many."""
    return document(
        "boot",
        boots=[boot_json(r, trace) for r in results],
        summary={
            "boots": len(results),
            "as_expected": sum(not r.mismatches() for r in results),
            "mismatched": [file_of(r.variant.path) or r.variant.name for r in results if r.mismatches()],
        },
    )


# ------------------------------------------------------------------------------------------- --dmesg


def dmesg_text(path: str, result: BootResult, configured: Configured, rows: list[Comparison]) -> str:
    v = result.variant
    out = [
        f"log {path} against {v.name} (release {v.release}; {shown_path(v.path)})",
        f"  machine from the log: {machine_text(result)}",
        *(f"  {note}" for note in configured.notes),
    ]
    cells: list[tuple[object, ...]] = []
    for r in rows:
        if r.match:
            cells.append((r.lineno, r.kind, "match", r.logged))
        else:
            cells.append((r.lineno, r.kind, "differ", f"logged:    {r.logged}"))
            cells.append(("", "", "", f"predicted: {r.predicted if r.predicted is not None else '(none)'}"))
    out.extend(table_lines(("line>", "kind", "result", "text"), cells, 2))
    good = sum(r.match for r in rows)
    out.append(f"{len(rows)} logged line(s) compared: {good} match, {len(rows) - good} differ")
    f = result.failure
    out.append(f"predicted outcome: {result.outcome}" + (f" in {f.phase}: {f.reason}" if f else ""))
    return "\n".join(out)


def dmesg_json(
    path: str, result: BootResult, configured: Configured, rows: list[Comparison]
) -> dict[str, Any]:
    """`boot --dmesg --json`: the machine the log configured, each compared line, the predicted outcome."""
    cfg = result.config
    good = sum(r.match for r in rows)
    return document(
        "boot --dmesg",
        log=file_of(path),
        variant=result.variant.name,
        file=file_of(result.variant.path),
        release=result.variant.release,
        role=cfg.role,
        mem_bytes=hex(cfg.mem_bytes),
        max_pfn=hex(result.max_pfn),
        machine=machine_text(result),
        notes=list(configured.notes),
        log_lines=[
            {"line": r.lineno, "kind": r.kind, "logged": r.logged, "predicted": r.predicted, "match": r.match}
            for r in rows
        ],
        outcome=result.outcome,
        failure=None if result.failure is None else result.failure.reason,
        all_match=bool(rows) and good == len(rows),
        summary={"compared": len(rows), "matched": good, "differ": len(rows) - good},
    )
