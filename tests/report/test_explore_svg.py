"""The buffer pictures without a browser: the state at the moment that matters, colours by PTE state, the role
as a pattern, reserved/free as a border, the failing page outlined and labelled, a legend, and `--json`'s picture."""

from __future__ import annotations

import json
import re

from bootcache import booted, variant

from xenpin.cli import main
from xenpin.report import explore as pictures

RC1_PFN = 0x40000  # 2.6.39-rc1 no_rw_alias: the smallest counterexample, a domU of 0x4001f000 bytes


def rc1():
    return booted("2.6.39-rc1", "0x4001f000")


def _rect_of(svg: str, cls: str) -> list[str]:
    return re.findall(rf'<rect [^>]*class="[^"]*{cls}[^"]*"[^>]*>', svg)


def test_the_failing_page_is_writable_at_the_moment_xen_rejects_it() -> None:
    r = rc1()
    segs = pictures.segments(r, 0, RC1_PFN, "no_rw_alias")
    marked = [s for s in segs if s.marked]
    assert len(marked) == 1 and (marked[0].first, marked[0].role, marked[0].pte) == (RC1_PFN, "live", "RW")
    assert "not yet reachable from CR3" in marked[0].note and "Xen: writable, type count 1" in marked[0].note
    when = pictures.moment(r, 0, "no_rw_alias")
    assert when.step == r.failure.step and "stopped at step" in when.what
    # the old picture's view (CR3 only) did not reach the PTE: that is what final_pages still holds
    assert r.final_pages[RC1_PFN][0] is None


def test_svg_colours_patterns_borders_mark_and_legend() -> None:
    r = rc1()
    svg = pictures.render_svg(r, 0, RC1_PFN, "no_rw_alias")
    assert svg.startswith("<svg ")
    ro = pictures.fill("live", "RO")
    rw = pictures.fill("live", "RW")
    assert ro != rw and pictures.PTE_COLOURS["RO"] != pictures.PTE_COLOURS["RW"]
    assert any(f'fill="{ro}"' in r_ for r_ in _rect_of(svg, "pte-RO"))
    assert any(f'fill="{rw}"' in r_ for r_ in _rect_of(svg, "pte-RW"))
    assert 'id="p-live-RW"' in svg and f'fill="{pictures.PTE_COLOURS["RW"]}"' in svg  # the pattern's colour
    outline = _rect_of(svg, "failing-outline")
    assert (
        len(outline) == 1
        and f'stroke="{pictures.FAILING_COLOUR}"' in outline[0]
        and 'stroke-width="5"' in outline[0]
    )
    assert f"failing page {RC1_PFN:#x}: PTE RW, live table, free" in svg
    for entry in ("PTE RO (read-only)", "PTE RW (writable)", "not mapped", "live table: stripes", "spare: plain",
                  "reserved: solid border", "free: dashed border", "failing page: thick reddish-purple outline"):  # fmt: skip
        assert entry in svg, entry
    free = _rect_of(svg, " free")
    assert free and all("stroke-dasharray" in f for f in free)
    assert all("stroke-dasharray" not in f for f in _rect_of(svg, "reserved"))


def test_reserved_pages_and_the_reserve_step_moment() -> None:
    r = booted("2.6.39-rc6", "64M")
    segs = pictures.segments(r, 0, 0x3FE2, "spare_writable")
    assert pictures.moment(r, 0, "spare_writable").what.startswith("right after call 0's reserve step")
    assert [s.reserved for s in segs if s.role == "live"] == [True]
    marked = next(s for s in segs if s.marked)
    assert (marked.role, marked.pte, marked.reserved) == ("spare", "RO", False)
    assert pictures.timeline(r, 0, 0x3FE2, "spare_writable")[-1].text.startswith("spare_writable judged here")


def test_a_failing_page_outside_the_buffer_is_drawn_apart() -> None:
    r = booted("bisect-4b239f458", "64M")
    segs = pictures.segments(r, 0, 0x181E, "no_rw_alias")
    assert (segs[-1].first, segs[-1].role, segs[-1].marked) == (0x181E, "table", True)
    assert "Xen: l3" in segs[-1].note
    dot = pictures.render_dot(r, 0, 0x181E, "no_rw_alias")
    assert "FAILING PAGE" in dot and f'color="{pictures.FAILING_COLOUR}"' in dot and "cluster_legend" in dot


def test_timeline_of_the_failing_page() -> None:
    r = rc1()
    tl = pictures.timeline(r, 0, RC1_PFN, "no_rw_alias")
    texts = [t.text for t in tl]
    assert any(t.startswith("its direct-map PTE written RW in L1 0x3fffc at slot 0") for t in texts)
    assert any("allocated by alloc_low_page as an L1 table" in t for t in texts)
    assert any("the L1 holding its PTE (0x3fffc) pinned" in t for t in texts)
    assert [t.step for t in tl] == sorted(t.step for t in tl)
    last = tl[-1]
    assert last.step == r.failure.step and "EINVAL" in last.text
    assert any(line.startswith("(XEN) mm.c:2424:d1 Bad type (saw 7400000000000001") for line in last.lines)


def test_explore_json_has_a_picture(capsys) -> None:
    assert main(["explore", str(variant("2.6.39-rc1").path), "no_rw_alias", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pic = doc["picture"]
    assert pic == doc["obligations"][0]["picture"] and pic["buffer"]["pgt_buf_start"] == "0x3fe17"
    failing = [p for p in pic["pages"] if p["failing"]]
    assert failing == [next(p for p in pic["pages"] if p["pfn"] == "0x40000")]
    assert (failing[0]["pte"], failing[0]["role"], failing[0]["reserved"]) == ("RW", "live", False)
    assert {p["pte"] for p in pic["pages"]} <= {"RO", "RW", "unmapped"}
    assert pic["timeline"][-1]["action"] == "xen-rejected" and pic["timeline"][-1]["lines"]
