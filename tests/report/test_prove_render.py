"""Rendering of proof runs: lemma lines grouped per lemma, unproved instances named, JSON carries both."""

from __future__ import annotations

from pathlib import Path

from xenpin.linux.variant import load_variant
from xenpin.report.prove import lemmas_of, prove_json, render_text
from xenpin.symbolic.lemmas import LemmaRef
from xenpin.symbolic.prove import LemmaVerdict, Verdict

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"


def _verdicts() -> list[Verdict]:
    v = load_variant(KERNELS / "3.0.toml")
    shared = LemmaVerdict(LemmaRef("walk_bounded", "low", 0), "proved", 0.25)
    a = Verdict(v, "spare_freed", "proved", 0.5, lemmas=[shared])
    b = Verdict(
        v,
        "spare_writable",
        "unknown",
        0.5,
        notes=["rests on lemma alloc_monotone[low, call 1], which is unknown (timeout)"],
        lemmas=[
            shared,
            LemmaVerdict(LemmaRef("walk_bounded", "low", 1), "proved", 0.5),
            LemmaVerdict(LemmaRef("alloc_monotone", "low", 1), "unknown", 60.0, "timeout"),
        ],
    )
    return [a, b]


def test_lemmas_listed_once_grouped_and_unproved_named() -> None:
    verdicts = _verdicts()
    assert [lv.ref for lv in lemmas_of(verdicts)] == [
        LemmaRef("walk_bounded", "low", 0),
        LemmaRef("walk_bounded", "low", 1),
        LemmaRef("alloc_monotone", "low", 1),
    ]
    text = render_text(verdicts, 1.0)
    assert "  proved    0.75s  walk_bounded [low 0, low 1]: " in text
    assert "  unknown  60.00s  alloc_monotone[low, call 1]: " in text and "(timeout)" in text
    assert "spare_writable  unknown" in text and "   <-- differs" in text
    assert "1 proved (resting on 2/3 proved lemmas)" in text


def test_json_lists_each_verdicts_lemmas_and_every_lemma_once() -> None:
    doc = prove_json(_verdicts(), 1.0)
    assert [o["lemmas"] for o in doc["obligations"]] == [
        ["walk_bounded[low, call 0]"],
        ["walk_bounded[low, call 0]", "walk_bounded[low, call 1]", "alloc_monotone[low, call 1]"],
    ]
    assert [(lv["lemma"], lv["verdict"]) for lv in doc["lemmas"]] == [
        ("walk_bounded[low, call 0]", "proved"),
        ("walk_bounded[low, call 1]", "proved"),
        ("alloc_monotone[low, call 1]", "unknown"),
    ]
