"""Pictures of a buffer after a boot: page roles, RO/RW, reserved/free, as text runs, DOT or SVG.

A page of `[pgt_buf_start, pgt_buf_top)` is a *live table* below `pgt_buf_end` and *spare* above; its direct-map
PTE is RW, RO or absent; it is reserved or free. Runs of equal pages are merged, so a 30,000-page buffer is a
handful of segments; the counterexample's page is its own segment, marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from xenpin.linux.boot import BootResult
from xenpin.linux.layout import pfn_phys

COLOURS = {
    ("live", "RO", True): "#4c72b0",
    ("live", "RW", True): "#c44e52",
    ("spare", "RW", False): "#55a868",
    ("spare", "RO", False): "#dd8452",
}


@dataclass(frozen=True)
class Segment:
    first: int
    last: int
    role: str  # live | spare
    pte: str  # RW | RO | unmapped
    reserved: bool
    marked: bool

    @property
    def label(self) -> str:
        span = f"{self.first:#x}" if self.first == self.last else f"{self.first:#x}-{self.last:#x}"
        n = self.last - self.first + 1
        mark = "  <== counterexample" if self.marked else ""
        state = "reserved" if self.reserved else "free"
        return f"{span} ({n} page{'s' * (n != 1)}): {self.role}, {self.pte}, {state}{mark}"


def segments(result: BootResult, call: int, mark: int | None = None) -> list[Segment]:
    buf = next(b for b in result.buffers if b.call == call)
    out: list[Segment] = []
    for pfn in range(buf.pgt_buf_start, buf.pgt_buf_top):
        rw, reserved = result.final_pages.get(pfn, (None, False))
        key = (
            "live" if pfn < buf.pgt_buf_end else "spare",
            {True: "RW", False: "RO", None: "unmapped"}[rw],
            reserved,
            pfn == mark,
        )
        if out and (out[-1].role, out[-1].pte, out[-1].reserved, out[-1].marked) == key and not key[3]:
            out[-1] = Segment(out[-1].first, pfn, *key)
        else:
            out.append(Segment(pfn, pfn, *key))
    return out


def render_text(result: BootResult, call: int, mark: int | None = None) -> str:
    buf = next(b for b in result.buffers if b.call == call)
    head = (
        f"buffer of call {call}: pgt_buf_start {buf.pgt_buf_start:#x} ({pfn_phys(buf.pgt_buf_start):#x})"
        f"  pgt_buf_end {buf.pgt_buf_end:#x}  pgt_buf_top {buf.pgt_buf_top:#x}"
    )
    return "\n".join([head, *(f"  {s.label}" for s in segments(result, call, mark))])


def render_dot(result: BootResult, call: int, mark: int | None = None) -> str:
    segs = segments(result, call, mark)
    lines = ["digraph buffer {", "  rankdir=LR; node [shape=box, style=filled, fontname=monospace];"]
    for i, s in enumerate(segs):
        colour = COLOURS.get((s.role, s.pte, s.reserved), "#8c8c8c")
        pen = ", penwidth=4, color=black" if s.marked else ""
        lines.append(f'  s{i} [label="{s.label}", fillcolor="{colour}"{pen}];')
    lines.extend(f"  s{i} -> s{i + 1};" for i in range(len(segs) - 1))
    lines.append("}")
    return "\n".join(lines)


def render_svg(result: BootResult, call: int, mark: int | None = None) -> str:
    """A bar over the buffer (width proportional to pages, at least 6 px a segment) with a legend."""
    segs = segments(result, call, mark)
    total = sum(s.last - s.first + 1 for s in segs)
    width, x, rows = 900.0, 10.0, []
    bar = []
    for i, s in enumerate(segs):
        w = max(6.0, width * (s.last - s.first + 1) / total)
        colour = COLOURS.get((s.role, s.pte, s.reserved), "#8c8c8c")
        stroke = ' stroke="black" stroke-width="3"' if s.marked else ""
        bar.append(
            f'<rect x="{x:.1f}" y="30" width="{w:.1f}" height="40" fill="{colour}"{stroke}><title>{escape(s.label)}</title></rect>'
        )
        rows.append(
            f'<rect x="10" y="{95 + 20 * i}" width="12" height="12" fill="{colour}"/>'
            f'<text x="28" y="{106 + 20 * i}" font-family="monospace" font-size="12">{escape(s.label)}</text>'
        )
        x += w
    height = 110 + 20 * len(segs)
    title = escape(render_text(result, call, mark).splitlines()[0])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{x + 10:.0f}" height="{height}">'
        f'<text x="10" y="20" font-family="monospace" font-size="13">{title}</text>{"".join(bar)}{"".join(rows)}</svg>\n'
    )
