"""Rendering of proof runs (`xenpin prove`): one row per verdict, counterexamples in the domain's terms with
their replay, lemmas grouped per lemma with the unproved instances named; the JSON document's shape."""

from __future__ import annotations

import json
from functools import cache

from bootcache import variant

from xenpin.linux.variant import PROPERTIES
from xenpin.report.prove import lemmas_of, prove_json, render_text
from xenpin.symbolic.form import shape_of
from xenpin.symbolic.lemmas import LemmaRef
from xenpin.symbolic.prove import LemmaVerdict, Verdict, prove_property

HIGH = shape_of(variant("2.6.39")).key
LOW = shape_of(variant("3.1")).key


def _made_up() -> list[Verdict]:
    v = variant("3.1")
    shared = LemmaVerdict(LemmaRef("walk_bounded", LOW, 0), "proved", 0.25)
    a = Verdict(v, "spare_freed", "proved", 0.5, lemmas=[shared])
    b = Verdict(
        v,
        "spare_writable",
        "unknown",
        0.5,
        notes=[f"rests on lemma alloc_monotone[{LOW}, call 1], which is unknown (timeout)"],
        lemmas=[
            shared,
            LemmaVerdict(LemmaRef("walk_bounded", HIGH, 1), "proved", 0.5),
            LemmaVerdict(LemmaRef("add_monotone"), "proved", 0.125),
            LemmaVerdict(LemmaRef("alloc_monotone", LOW, 1), "unknown", 60.0, "timeout"),
        ],
    )
    return [a, b]


def test_lemmas_are_listed_once_grouped_per_lemma_and_the_unproved_named() -> None:
    verdicts = _made_up()
    assert [lv.ref for lv in lemmas_of(verdicts)] == [
        LemmaRef("walk_bounded", LOW, 0),
        LemmaRef("walk_bounded", HIGH, 1),
        LemmaRef("add_monotone"),
        LemmaRef("alloc_monotone", LOW, 1),
    ]
    lines = render_text(verdicts, 1.0).splitlines()
    assert "  proved    0.75s  walk_bounded [2 instances: 2 walk shapes x their calls]: " in "\n".join(lines)
    assert any(line.startswith("  proved    0.12s  add_monotone: below 2**30") for line in lines)  # no shape
    unknown = next(line for line in lines if line.startswith("  unknown"))
    assert f"60.00s  alloc_monotone[{LOW}, call 1]: " in unknown and unknown.endswith("(timeout)")
    row = next(line for line in lines if "spare_writable" in line)
    cells = row.split()
    assert [cells[0], *cells[2:5]] == ["3.1", "spare_writable", "unknown", "proved"] and row.endswith(
        "  <-- differs"
    )
    assert cells[1].endswith("models/kernels/3.1.toml")  # the variant's file in its row
    assert f"      note: rests on lemma alloc_monotone[{LOW}, call 1], which is unknown (timeout)" in lines
    assert lines[-1].startswith(
        "2 obligations: 1 proved (resting on 3/4 proved lemmas), 0 counterexample, 0 vacuous, 1 unknown;"
    )
    assert "1 differ from expectation; 1.0 s; z3 " in lines[-1] and lines[-1].endswith("64-bit bit-vectors")


def test_json_lists_each_verdicts_lemmas_and_every_lemma_once() -> None:
    doc = prove_json(_made_up(), 1.0)
    assert [o["lemmas"] for o in doc["obligations"]] == [
        [f"walk_bounded[{LOW}, call 0]"],
        [f"walk_bounded[{LOW}, call 0]", f"walk_bounded[{HIGH}, call 1]", "add_monotone",
         f"alloc_monotone[{LOW}, call 1]"],
    ]  # fmt: skip
    assert [(lv["lemma"], lv["verdict"], lv["reason"]) for lv in doc["lemmas"]] == [
        (f"walk_bounded[{LOW}, call 0]", "proved", ""),
        (f"walk_bounded[{HIGH}, call 1]", "proved", ""),
        ("add_monotone", "proved", ""),
        (f"alloc_monotone[{LOW}, call 1]", "unknown", "timeout"),
    ]


@cache
def _real() -> tuple[Verdict, ...]:
    """A pin failure (Xen's lines), a tail left RO (no failure at all), and a proof."""
    return (
        prove_property(variant("bisect-4b239f458"), "no_rw_alias"),
        prove_property(variant("2.6.39-rc6"), "spare_writable"),
        prove_property(variant("2.6.39"), "spare_freed"),
    )


def test_a_counterexample_is_shown_in_the_domains_terms() -> None:
    alias = _real()[0]
    text = render_text(list(_real()), 2.0)
    w = alias.witness
    assert (
        f"smallest: domU of 0x4000000 bytes, init_memory_mapping call 0, pfn {w.pfn:#x} ({w.pfn << 12:#x})"
        in text
    )
    assert "allocation #" not in text.split("\n")[2]  # an existing table's alias: before any allocation
    b = alias.replay.buffers[0]
    assert f"call 0: pgt_buf_start {b.pgt_buf_start:#x} pgt_buf_end {b.pgt_buf_end:#x} pgt_buf_top" in text
    f = alias.replay.failure
    assert f"replay: kernel-fault in init_memory_mapping call 0 at boot step {f.step}, pfn {f.pfn:#x}" in text
    for line in f.xen_log:  # Xen's own lines, then the kernel's
        assert f"        {line}" in text and line.startswith("(XEN) ")
    assert "        BUG: unable to handle kernel NULL pointer dereference at" in text
    # 2.6.39-rc6: the tail is RO, nothing faults yet
    assert "replay: boot ok, spare_writable violated" in text
    assert "bit-vectors" in text.splitlines()[-1] and "3 obligations: 1 proved" in text.splitlines()[-1]


def test_a_long_variant_name_keeps_its_columns() -> None:
    v = prove_property(variant("bisect-92bdaef7b2c5"), "spare_freed")
    header, row = render_text([v], 1.0).splitlines()[:2]
    cells = row.split()
    assert [cells[0], *cells[2:5]] == ["bisect-92bdaef7b2c5", "spare_freed", "proved", "proved"]
    assert header.index("property") == row.index("spare_freed") and header.index("file") == row.index(
        cells[1]
    )


def test_json_document_shape() -> None:
    doc = json.loads(json.dumps(prove_json(list(_real()), 2.0)))  # plain JSON all the way down
    assert set(doc) == {"schema", "command", "obligations", "lemmas", "summary"} and doc["command"] == "prove"
    assert doc["summary"]["bit_width"] == 64 and doc["summary"]["counterexample"] == 2
    alias, tail, proved = doc["obligations"]
    keys = {"variant", "file", "property", "verdict", "expected", "as_expected", "vacuous", "seconds", "witness", "lemmas",
            "replay", "witnesses", "non_vacuity", "notes"}  # fmt: skip
    assert all(set(o) == keys for o in doc["obligations"])
    assert set(alias["witness"]) == {"call", "mem_bytes", "machine", "pfn", "alloc", "minimal", "limit"}
    assert alias["witness"]["limit"] is None and alias["witnesses"][0]["witness"] == alias["witness"]
    assert alias["witnesses"][0]["confirmed"] and alias["witnesses"][0]["replay"] == alias["replay"]
    assert alias["non_vacuity"] == [] and not proved["vacuous"]
    assert proved["non_vacuity"] == [{"call": k, "premise": "sat", "situation": "sat"} for k in (0, 1)]
    assert alias["witness"]["machine"] == {"nr": "0x4000000", "kernel": "0x103b000", "ramdisk": "0xbff000",
                                           "slack": "0x800000"}  # fmt: skip
    assert alias["witness"]["mem_bytes"] == "0x4000000" and alias["witness"]["pfn"].startswith("0x")
    assert alias["replay"]["outcome"] == "kernel-fault" and alias["replay"]["property_value"] is False
    assert alias["replay"]["xen_log"][0].startswith("(XEN) mm.c:") and alias["lemmas"] == []
    assert tail["replay"] == {"outcome": "ok", "property_value": False, "xen_log": [], "message": ""}
    assert proved["witness"] is None and proved["replay"] is None and proved["verdict"] == "proved"
    assert proved["lemmas"] and all(lv["verdict"] == "proved" for lv in doc["lemmas"])
    assert {lv["lemma"] for lv in doc["lemmas"]} == set(proved["lemmas"])
    assert set(PROPERTIES) >= {o["property"] for o in doc["obligations"]}
