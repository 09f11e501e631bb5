"""Pictures of a counterexample's buffer: PTE RO/RW, role, reserved/free, as text runs, DOT, SVG or JSON.

A page of `[pgt_buf_start, pgt_buf_top)` is a *live* table below `pgt_buf_end` and *spare* above; a failing page
outside the buffer is a page *table* (Xen counts it as one) or a *data* page. Its direct-map PTE is RW, RO or
absent; it is reserved or free. The state is the one at the moment that matters for the property: for
`spare_writable`, `spare_freed` and `live_reserved` right after the call's reserve step; otherwise where the
boot stopped (the failing operation undone, as Xen undoes it). A PTE the walk wrote into an L1 that is not yet
linked into the live tree counts: Xen already counts it once that L1 is pinned.

Colours are Okabe-Ito (colour-blind safe): PTE RO blue, RW vermillion, not mapped light grey; the role is a
pattern (live: stripes, spare: plain, table: cross-hatch, data: dots), reserved a solid border and free a dashed
one, the failing page a thick reddish-purple outline with a label. Every segment also has a text label.
Runs of equal pages are merged, so a 30,000-page buffer is a handful of segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from xenpin.linux.boot import BootResult
from xenpin.linux.guest import PageState
from xenpin.linux.layout import pfn_phys

PTE_COLOURS = {"RO": "#0072B2", "RW": "#D55E00", "unmapped": "#DDDDDD"}  # Okabe-Ito blue, vermillion; grey
FAILING_COLOUR = "#CC79A7"  # Okabe-Ito reddish purple: the failing page's outline and marker
ROLE_NAMES = {
    "live": "live table",
    "spare": "spare",
    "table": "page table outside the buffer",
    "data": "data page outside the buffer",
}
ROLE_PATTERNS = {"live": "stripes", "spare": "plain", "table": "cross-hatch", "data": "dots"}
JUDGED_AT_RESERVE = ("spare_writable", "spare_freed", "live_reserved")


@dataclass(frozen=True)
class Segment:
    first: int
    last: int
    role: str  # live | spare | table | data (the last two: a failing page outside the buffer)
    pte: str  # RW | RO | unmapped
    reserved: bool
    marked: bool
    note: str = ""  # the failing page's details: where its PTE is, Xen's type

    @property
    def pages(self) -> int:
        return self.last - self.first + 1

    @property
    def span(self) -> str:
        return f"{self.first:#x}" if self.first == self.last else f"{self.first:#x}-{self.last:#x}"

    @property
    def label(self) -> str:
        n = self.pages
        mark = f"  <== counterexample{f' ({self.note})' if self.note else ''}" if self.marked else ""
        state = "reserved" if self.reserved else "free"
        return f"{self.span} ({n} page{'s' * (n != 1)}): {self.role}, {self.pte}, {state}{mark}"


@dataclass(frozen=True)
class Moment:
    step: int
    what: str


@dataclass(frozen=True)
class TimelineEntry:
    step: int
    call: int
    action: str
    text: str
    lines: tuple[str, ...] = ()


def _pte(rw: bool | None) -> str:
    return {True: "RW", False: "RO", None: "unmapped"}[rw]


def _states(result: BootResult, call: int, prop: str | None) -> tuple[dict[int, PageState | tuple], Moment]:
    buf = result.buffer(call)
    f = result.failure
    stopped_here = buf.pgt_buf_start in result.end_states or buf.pgt_buf_start == buf.pgt_buf_top
    if buf.judged and buf.states and (prop in JUDGED_AT_RESERVE or f is None or not stopped_here):
        return buf.states, Moment(
            buf.judged_at, f"right after call {call}'s reserve step (step {buf.judged_at})"
        )
    if result.end_states:
        if f is not None:
            what = f"as the boot stopped at step {f.step} ({f.outcome}), the failing operation undone"
        else:
            what = "at the end of the boot"
        return result.end_states, Moment(f.step if f else len(result.steps) - 1, what)
    return result.final_pages, Moment(-1, "as the call's reserve step left it (or as the boot stopped)")


def _split(state: PageState | tuple | None) -> tuple[str, bool]:
    if isinstance(state, PageState):
        return _pte(state.pte), state.reserved
    rw, reserved = state if state is not None else (None, False)
    return _pte(rw), reserved


def _note(state: PageState | tuple | None) -> str:
    if not isinstance(state, PageState):
        return ""
    parts = []
    if state.l1 is not None:
        where = "" if state.linked else ", its L1 not yet reachable from CR3"
        parts.append(f"PTE {_pte(state.pte)} in L1 {state.l1:#x}[{state.slot}]{where}")
    parts.append(f"Xen: {state.xen_type}, type count {state.type_count}{', pinned' if state.pinned else ''}")
    return "; ".join(parts)


def segments(
    result: BootResult, call: int, mark: int | None = None, prop: str | None = None
) -> list[Segment]:
    """The buffer of `call` as runs of equal pages; the failing page `mark` its own segment (appended last
    when it lies outside the buffer)."""
    buf = result.buffer(call)
    states, _ = _states(result, call, prop)
    out: list[Segment] = []
    for pfn in range(buf.pgt_buf_start, buf.pgt_buf_top):
        pte, reserved = _split(states.get(pfn))
        role = "live" if pfn < buf.pgt_buf_end else "spare"
        marked = pfn == mark
        prev = out[-1] if out else None
        if (
            prev
            and not marked
            and not prev.marked
            and (prev.role, prev.pte, prev.reserved) == (role, pte, reserved)
        ):
            out[-1] = Segment(prev.first, pfn, role, pte, reserved, False)
        else:
            out.append(
                Segment(pfn, pfn, role, pte, reserved, marked, _note(states.get(pfn)) if marked else "")
            )
    if mark is not None and not buf.pgt_buf_start <= mark < buf.pgt_buf_top:
        state = states.get(mark) or result.end_states.get(mark)
        pte, reserved = _split(state)
        table = isinstance(state, PageState) and state.xen_type.startswith("l") and state.type_count > 0
        out.append(Segment(mark, mark, "table" if table else "data", pte, reserved, True, _note(state)))
    return out


def moment(result: BootResult, call: int, prop: str | None = None) -> Moment:
    return _states(result, call, prop)[1]


def _head(result: BootResult, call: int) -> str:
    buf = result.buffer(call)
    return (
        f"buffer of call {call}: pgt_buf_start {buf.pgt_buf_start:#x} ({pfn_phys(buf.pgt_buf_start):#x})"
        f"  pgt_buf_end {buf.pgt_buf_end:#x}  pgt_buf_top {buf.pgt_buf_top:#x}"
    )


def render_text(result: BootResult, call: int, mark: int | None = None, prop: str | None = None) -> str:
    return "\n".join(
        [
            _head(result, call),
            f"  state shown: {moment(result, call, prop).what}",
            *(f"  {s.label}" for s in segments(result, call, mark, prop)),
        ]
    )


# ------------------------------------------------------------------------------------------------- timeline


def _level_named(result: BootResult, pfn: int, after: int) -> str:
    """What table an allocated page became: from its pin or the entry that links it."""
    for s in result.steps[after + 1 :]:
        if s.pfn != pfn:
            continue
        if s.action == "pin_pagetable_pfn":
            return f"an L{s.detail[len('MMUEXT_PIN_L')]} table"
        level = {"set_pmd": "an L1 (PTE page)", "set_pud": "an L2 (PMD page)", "set_pgd": "an L3 (PUD page)"}
        if s.action in level:
            return level[s.action]
    return "a page-table page"


def _reserved_after(result: BootResult, call: int) -> str:
    """What of the call's buffer the reserve step left reserved, as pfn runs (its hook's arguments are not
    what the variant's `reserve` rule makes of them)."""
    buf = result.buffer(call)
    if buf is None or not buf.states:
        return ""
    runs: list[list[int]] = []
    for pfn in sorted(p for p, state in buf.states.items() if state.reserved):
        if runs and runs[-1][1] == pfn:
            runs[-1][1] = pfn + 1
        else:
            runs.append([pfn, pfn + 1])
    shown = ", ".join(f"[{a:#x}, {b:#x})" for a, b in runs) or "none"
    return f"; of the buffer, reserved then: {shown}"


def timeline(result: BootResult, call: int, mark: int, prop: str | None = None) -> list[TimelineEntry]:
    """The boot steps that touched the failing page, and those that made Xen count its PTE (the pin and the
    link of the L1 holding it), up to the moment shown; the failure last, with Xen's lines."""
    steps = result.steps
    end = moment(result, call, prop).step
    home: int | None = None
    out: list[TimelineEntry] = []
    for s in steps[: end + 1 if end >= 0 else len(steps)]:
        if result.failure is not None and s.index == result.failure.step:
            continue
        text = ""
        if s.pfn == mark:
            if s.action in ("alloc_low_page", "alloc_low_pages"):
                text = f"allocated by {s.action} as {_level_named(result, mark, s.index)} ({s.detail})"
            elif s.action == "set_pte" and s.table is not None:
                rw = "RW" if "RW" in s.detail.split(" (")[0] else "RO"
                existing = "existing " if "existing" in s.detail else ""
                text = f"its direct-map PTE written {rw} in {existing}L1 {s.table:#x} at slot {s.slot}"
                home = s.table
            elif s.action == "pin_pagetable_pfn":
                text = f"pin requested: {s.detail}"
            elif s.action.startswith("set_p") and s.table is not None:
                text = f"linked by {s.action} into {s.table:#x}[{s.slot}]"
            else:
                text = f"{s.action}: {s.detail}"
        elif home is not None and s.pfn == home and s.action == "pin_pagetable_pfn":
            text = (
                f"the L1 holding its PTE ({home:#x}) pinned: Xen now counts that PTE's mapping ({s.detail})"
            )
        elif home is not None and s.pfn == home and s.action.startswith("set_p") and s.table is not None:
            text = f"the L1 holding its PTE ({home:#x}) linked by {s.action} into {s.table:#x}[{s.slot}]"
        elif s.action in ("pagetable_reserve", "mark_rw_past_pgt") and s.call == call:
            text = f"the reserve step: {s.action} {s.detail}{_reserved_after(result, call)}"
        if text:
            out.append(TimelineEntry(s.index, s.call, s.action, text))
    f = result.failure
    if f is not None and (end < 0 or f.step <= end):
        op = f"{f.operation} -> {f.errno}: " if f.operation and f.errno else ""
        what = {"xen-rejected": "rejected by Xen", "kernel-fault": "the kernel faults", "panic": "panic"}
        text = f"{what.get(f.outcome, f.outcome)} in {f.phase or 'the boot'}: {op}{f.reason or f.message}"
        lines = f.xen_log if f.message in f.xen_log else (*f.xen_log, f.message)
        out.append(TimelineEntry(f.step, steps[f.step].call, f.outcome, text, tuple(lines)))
    elif prop is not None:
        seg = next((s for s in segments(result, call, mark, prop) if s.marked), None)
        if seg is not None:
            state = "reserved" if seg.reserved else "free"
            out.append(
                TimelineEntry(end, call, "judged", f"{prop} judged here: PTE {seg.pte}, {seg.role}, {state}")
            )
    return out


# ------------------------------------------------------------------------------------------------- DOT


def _dot_style(s: Segment) -> str:
    style = ["filled", "dashed" if not s.reserved else "solid"]
    if s.role == "live":
        style.append("diagonals")
    if s.role in ("table", "data"):
        style.append("rounded")
    pen = f', penwidth=4, color="{FAILING_COLOUR}"' if s.marked else (", penwidth=2" if s.reserved else "")
    return f'style="{",".join(style)}", fillcolor="{PTE_COLOURS[s.pte]}"{pen}'


def render_dot(result: BootResult, call: int, mark: int | None = None, prop: str | None = None) -> str:
    segs = segments(result, call, mark, prop)
    lines = [
        "digraph buffer {",
        "  rankdir=LR; node [shape=box, fontname=monospace];",
        f'  label="{_head(result, call)}\\nstate shown: {moment(result, call, prop).what}"; labelloc=t;',
    ]
    for i, s in enumerate(segs):
        label = ("FAILING PAGE\\n" if s.marked else "") + s.label.replace('"', "'")
        lines.append(f'  s{i} [label="{label}", {_dot_style(s)}];')
    lines.extend(f"  s{i} -> s{i + 1};" for i in range(len(segs) - 1))
    lines.append('  subgraph cluster_legend { label="legend"; fontname=monospace;')
    for pte, colour in PTE_COLOURS.items():
        lines.append(f'    "PTE {pte}" [style=filled, fillcolor="{colour}"];')
    lines.append('    "live table: diagonals" [style="filled,diagonals", fillcolor=white];')
    lines.append(
        '    "reserved: solid border" [style=solid, penwidth=2]; "free: dashed border" [style=dashed];'
    )
    lines.append(f'    "failing page: thick outline" [penwidth=4, color="{FAILING_COLOUR}"];')
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- SVG


def _patterns() -> str:
    """A pattern per (role, PTE state): the PTE colour underneath, the role's marks on top."""
    out = []
    for pte, colour in PTE_COLOURS.items():
        ink = "#000000" if pte == "unmapped" else "#FFFFFF"
        marks = {
            "live": f'<path d="M0,8 L8,0 M-2,2 L2,-2 M6,10 L10,6" stroke="{ink}" stroke-width="1.5"/>',
            "table": f'<path d="M0,0 L8,8 M8,0 L0,8" stroke="{ink}" stroke-width="1.2"/>',
            "data": f'<circle cx="4" cy="4" r="1.5" fill="{ink}"/>',
        }
        for role, mark in marks.items():
            out.append(
                f'<pattern id="p-{role}-{pte}" width="8" height="8" patternUnits="userSpaceOnUse">'
                f'<rect width="8" height="8" fill="{colour}"/>{mark}</pattern>'
            )
    return "<defs>" + "".join(out) + "</defs>"


def fill(role: str, pte: str) -> str:
    return PTE_COLOURS[pte] if role == "spare" else f"url(#p-{role}-{pte})"


def _box(x: float, y: float, w: float, h: float, role: str, pte: str, reserved: bool, extra: str = "") -> str:
    border = (
        'stroke="#000000" stroke-width="2"'
        if reserved
        else 'stroke="#000000" stroke-width="1" stroke-dasharray="4 2"'
    )
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill(role, pte)}" {border}'
        f' class="page role-{role} pte-{pte} {"reserved" if reserved else "free"}"{extra}'
    )


CHAR_W = 8.0  # a character of the pictures' 12-13 px monospace text, at most: what a label needs across


def render_svg(result: BootResult, call: int, mark: int | None = None, prop: str | None = None) -> str:
    """A bar over the buffer (width proportional to pages, at least 8 px a segment, the failing page 16 px),
    a labelled row per segment and a legend."""
    segs = segments(result, call, mark, prop)
    total = sum(s.pages for s in segs)
    font = 'font-family="monospace" font-size="12"'
    width, x, bar_y, bar_h = 900.0, 10.0, 80.0, 40.0
    bar: list[str] = []
    rows: list[str] = []
    marker = ""
    for i, s in enumerate(segs):
        if s.role in ("table", "data"):
            x += 24  # a gap: this page lies outside the buffer
        w = max(16.0 if s.marked else 8.0, width * s.pages / total)
        bar.append(
            _box(x, bar_y, w, bar_h, s.role, s.pte, s.reserved) + f"><title>{escape(s.label)}</title></rect>"
        )
        y = 160 + 22 * i
        rows.append(_box(10, y, 16, 14, s.role, s.pte, s.reserved) + "/>")
        rows.append(f'<text x="34" y="{y + 12}" {font}>{escape(s.label)}</text>')
        if s.marked:
            bar.append(
                f'<rect x="{x - 4:.1f}" y="{bar_y - 4}" width="{w + 8:.1f}" height="{bar_h + 8}" fill="none"'
                f' stroke="{FAILING_COLOUR}" stroke-width="5" class="failing-outline"/>'
            )
            mid = x + w / 2
            tx, anchor = (x + w + 4, "end") if mid > width / 2 else (max(x - 4, 10.0), "start")
            marker = (
                f'<path d="M{x + w / 2 - 8:.1f},{bar_y - 18} L{x + w / 2 + 8:.1f},{bar_y - 18} L{x + w / 2:.1f},'
                f'{bar_y - 6} Z" fill="{FAILING_COLOUR}" stroke="#000000"/>'
                f'<text x="{tx:.1f}" y="{bar_y - 24}" text-anchor="{anchor}" font-family="monospace"'
                f' font-size="13" font-weight="bold" class="failing-label">failing page {s.first:#x}:'
                f" PTE {s.pte}, {ROLE_NAMES[s.role]}, {'reserved' if s.reserved else 'free'}</text>"
            )
            rows.append(
                f'<rect x="7" y="{y - 3}" width="22" height="20" fill="none" stroke="{FAILING_COLOUR}"'
                ' stroke-width="3"/>'
            )
        x += w
    legend_y = 160 + 22 * len(segs) + 20
    legend = [f'<text x="10" y="{legend_y}" {font} font-weight="bold">legend</text>']
    items: list[tuple[str, str]] = [
        (_box(0, 0, 16, 14, "spare", pte, True), f"PTE {name}")
        for pte, name in (("RO", "RO (read-only)"), ("RW", "RW (writable)"), ("unmapped", "not mapped"))
    ]
    items += [
        (_box(0, 0, 16, 14, role, "unmapped", True), f"{ROLE_NAMES[role]}: {ROLE_PATTERNS[role]}")
        for role in ("live", "spare", "table", "data")
    ]
    items += [
        (_box(0, 0, 16, 14, "spare", "unmapped", True), "reserved: solid border"),
        (_box(0, 0, 16, 14, "spare", "unmapped", False), "free: dashed border"),
        (
            f'<rect x="0" y="0" width="16" height="14" fill="none" stroke="{FAILING_COLOUR}" stroke-width="5"',
            "failing page: thick reddish-purple outline",
        ),
    ]
    legend_right = 0.0
    for i, (box, text) in enumerate(items):
        col, row = i % 3, i // 3
        lx, ly = 10 + 300 * col, legend_y + 12 + 22 * row
        legend_right = max(legend_right, lx + 24 + CHAR_W * len(text))
        legend.append(f'<g transform="translate({lx},{ly})" class="legend-entry">{box}/>')
        legend.append(f'<text x="24" y="12" {font}>{escape(text)}</text></g>')
    height = legend_y + 22 * ((len(items) + 2) // 3) + 24
    title = escape(_head(result, call))
    when = escape(f"state shown: {moment(result, call, prop).what}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(x + 10, 920, legend_right + 10):.0f}" height="{height}">{_patterns()}'
        f'<rect width="100%" height="100%" fill="#FFFFFF"/>'
        f'<text x="10" y="18" font-family="monospace" font-size="13">{title}</text>'
        f'<text x="10" y="36" {font}>{when}</text>{"".join(bar)}{marker}{"".join(rows)}{"".join(legend)}</svg>\n'
    )


# ------------------------------------------------------------------------------------------------- JSON


def picture_json(result: BootResult, call: int, mark: int, prop: str | None = None) -> dict[str, Any]:
    """The picture for `--json`: the moment, the buffer, the runs of pages and the failing page's timeline."""
    buf = result.buffer(call)
    when = moment(result, call, prop)
    return {
        "call": call,
        "moment": {"step": when.step, "what": when.what},
        "buffer": {
            "pgt_buf_start": hex(buf.pgt_buf_start),
            "pgt_buf_end": hex(buf.pgt_buf_end),
            "pgt_buf_top": hex(buf.pgt_buf_top),
        },
        "pages": [
            {
                "pfn": hex(s.first),
                "last": hex(s.last),
                "count": s.pages,
                "pte": s.pte,
                "role": s.role,
                "reserved": s.reserved,
                "failing": s.marked,
                **({"note": s.note} if s.note else {}),
            }
            for s in segments(result, call, mark, prop)
        ],
        "timeline": [
            {"step": t.step, "call": t.call, "action": t.action, "text": t.text, "lines": list(t.lines)}
            for t in timeline(result, call, mark, prop)
        ],
    }
