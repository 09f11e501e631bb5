"""Rendering of boot runs (`xenpin boot`): the outcome, the buffer as the kernel prints it, the property table.

Numbers are shown as the kernel and Xen show them: PFNs and byte addresses in hex, Xen's log lines with their
`(XEN)` prefix, the kernel's own failure line (`kernel BUG at …`, `BUG: unable to handle kernel paging request
at …`, `alloc_low_page: ran out of memory`).
"""

from __future__ import annotations

from typing import Any

from xenpin.linux.boot import BootResult
from xenpin.linux.layout import pfn_phys
from xenpin.linux.variant import PROPERTIES


def _size(mem: int) -> str:
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


def render_text(result: BootResult, trace: bool = False) -> str:
    v, lay = result.variant, result.layout
    out = [
        f"{v.name}" + (f" ({v.commit})" if v.commit else "") + f": {v.description}",
        f"  platform {v.platform}, placement {v.placement}, Xen rules {result.rules}",
        f"  readonly: {v.source('readonly')}",
        f"  reserve:  {v.source('reserve')}",
        f"  writable: {v.source('writable')}",
        f"memory {_size(result.mem_bytes)} (max_pfn {lay.max_pfn:#x}), Xen maps [0, {pfn_phys(lay.max_pfn_mapped):#x})"
        f" at start of day",
    ]
    for buf in result.buffers:
        out.append(f"init_memory_mapping({pfn_phys(buf.range_start):#x}, {pfn_phys(buf.range_end):#x})")
        out.append(f"  {buf.kernel_line()}")
        for name in ("pgt_buf_start", "pgt_buf_end", "pgt_buf_top"):
            pfn = getattr(buf, name)
            out.append(f"  {name:<14} pfn {pfn:#9x}   {pfn_phys(pfn):#012x}")
        hook = (
            "ran" if buf.hook_ran else "not called" if buf.pgt_buf_end == buf.pgt_buf_start else "not reached"
        )
        out.append(f"  pagetable_reserve: {hook}")
    if trace:
        out.append("trace (steps that touched the buffer range):")
        out.extend(
            f"  {s.index:6d}  call {s.call}  end={s.pgt_buf_end:#x}  {s.action:<26} pfn {s.pfn:#x}  {s.detail}"
            for s in result.steps
        )
    f = result.failure
    if f is None:
        out.append(f"outcome: ok ({result.pins} L1 pins, {result.pte_writes} PTE writes)")
    else:
        out.append(f"outcome: {f.outcome} at step {f.step}, pfn {f.pfn:#x} ({pfn_phys(f.pfn):#x})")
        if f.operation:
            out.append(f"  hypercall: {f.operation} -> {f.errno}")
        out.extend(f"  (XEN) {line}" for line in f.xen_log)
        out.append(f"  {f.message}")
        if f.reason:
            out.append(f"  why: {f.reason}")
    out.append("properties:")
    out.append(f"  {'property':<16}{'this run':<14}{'expected':<16}")
    for prop in PROPERTIES:
        shown, ok = _judge(result, prop)
        out.append(f"  {prop:<16}{shown:<14}{v.expect[prop]:<16}{ok}")
    mism = result.mismatches()
    out.append("result: " + ("as expected" if not mism else f"MISMATCH ({', '.join(mism)})"))
    return "\n".join(out)


def boot_json(result: BootResult, trace: bool = False) -> dict[str, Any]:
    f = result.failure
    doc: dict[str, Any] = {
        "variant": result.variant.name,
        "file": str(result.variant.path) if result.variant.path else None,
        "mem_bytes": result.mem_bytes,
        "rules": result.rules,
        "outcome": result.outcome,
        "buffers": [
            {
                "call": b.call,
                "range": [hex(pfn_phys(b.range_start)), hex(pfn_phys(b.range_end))],
                **{n: hex(getattr(b, n)) for n in ("pgt_buf_start", "pgt_buf_end", "pgt_buf_top")},
                "hook_ran": b.hook_ran,
                "kernel_line": b.kernel_line(),
            }
            for b in result.buffers
        ],
        "failure": None
        if f is None
        else {
            "outcome": f.outcome,
            "step": f.step,
            "pfn": hex(f.pfn),
            "message": f.message,
            "operation": f.operation,
            "errno": f.errno,
            "xen_log": list(f.xen_log),
            "bug_site": f.bug_site,
            "reason": f.reason,
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
