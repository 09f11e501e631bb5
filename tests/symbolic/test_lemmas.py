"""Lemmas about the walk's closed form: each is proved on its own, a verdict that rests on an unproved lemma is
`unknown`, and every lemma holds at concrete sizes evaluated without a solver."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from xenpin.linux.variant import PROPERTIES, load_variant
from xenpin.symbolic import lemmas
from xenpin.symbolic import prove as prove_mod
from xenpin.symbolic.equiv import compare
from xenpin.symbolic.lemmas import LEMMAS, Instance, LemmaRef
from xenpin.symbolic.obligations import build
from xenpin.symbolic.prove import prove_property
from xenpin.symbolic.solver import check
from xenpin.symbolic.walk import c, calls, domain

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
VARIANTS = {p.stem: load_variant(p) for p in sorted(KERNELS.glob("*.toml"))}


def _all_refs() -> list[LemmaRef]:
    refs = {
        ref
        for v in VARIANTS.values()
        for prop in PROPERTIES
        for call in (0, 1)
        for ref in build(v, prop, call).lemmas
    }
    return lemmas.closure(sorted(refs))


def test_every_lemma_the_shipped_obligations_use_is_proved() -> None:
    refs = _all_refs()
    assert {r.placement for r in refs} == {"high", "low", "mapped", None}
    for ref in refs:
        formula, _ = lemmas.proof(ref)
        assert check(formula).status == "unsat", ref


def test_closure_orders_each_lemma_after_the_lemmas_its_proof_uses() -> None:
    order = _all_refs()
    for i, ref in enumerate(order):
        for dep in lemmas.proof(ref)[1]:
            assert dep in order[:i], (ref, dep)


def test_a_lemma_that_uses_itself_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    circular = dataclasses.replace(
        LEMMAS["allocs_fit"], uses=lambda k, m: [Instance("allocs_fit", k), Instance("walk_bounded", k)]
    )
    monkeypatch.setitem(LEMMAS, "allocs_fit", circular)
    with pytest.raises(ValueError, match="depends on itself"):
        lemmas.closure([LemmaRef("allocs_fit", "high", 0)])


def _false_lemma(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Replace lemma `name` by a claim that is false over the domain (and start with no cached proofs)."""
    wrong = dataclasses.replace(LEMMAS[name], claim=lambda k, max_pfn, *p: z3.ULT(max_pfn, c(1 << 15)))
    monkeypatch.setitem(LEMMAS, name, wrong)
    monkeypatch.setattr(prove_mod, "_LEMMA_VERDICTS", {})


def test_verdict_resting_on_a_false_lemma_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    _false_lemma(monkeypatch, "walk_bounded")
    verdict = prove_property(VARIANTS["3.0"], "spare_freed")
    assert verdict.verdict == "unknown"
    assert any("rests on lemma walk_bounded[low, call 0], which is refuted" in n for n in verdict.notes)


def test_verdict_resting_on_an_unproved_lemma_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prove_mod, "_LEMMA_VERDICTS", {})
    real_decide = prove_mod._decide

    def give_up_on_lemmas(formula, solver, limits):
        if any(str(v).startswith("alloc_monotone.") for v in z3.z3util.get_vars(formula)):
            return prove_mod.SolverAnswer("unknown", None, 0.0, "canceled")
        return real_decide(formula, solver, limits)

    monkeypatch.setattr(prove_mod, "_decide", give_up_on_lemmas)
    verdict = prove_property(VARIANTS["3.0"], "spare_writable")
    assert verdict.verdict == "unknown"
    assert any("alloc_monotone[low, call 0], which is unknown (canceled)" in n for n in verdict.notes)


def test_equivalence_resting_on_a_false_lemma_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    _false_lemma(monkeypatch, "pte_end_bounded")
    r = compare(VARIANTS["3.0"], VARIANTS["3.0-inline"])
    assert r.verdict == "unknown" and "pte_end_bounded" in r.detail


def test_counterexamples_do_not_rest_on_lemmas(monkeypatch: pytest.MonkeyPatch) -> None:
    _false_lemma(monkeypatch, "walk_bounded")  # a false lemma only narrows the search; the replay decides
    verdict = prove_property(VARIANTS["2.6.39-rc"], "spare_writable")
    assert verdict.verdict == "counterexample" and verdict.lemmas == []


@settings(max_examples=30)
@given(
    pages=st.integers(min_value=(64 << 20) >> 12, max_value=(1 << 40) >> 12),
    placement=st.sampled_from(["high", "low", "mapped"]),
    call=st.sampled_from([0, 1]),
    offsets=st.lists(st.integers(min_value=0, max_value=(1 << 40) >> 12), min_size=3, max_size=3),
)
def test_lemmas_hold_at_concrete_sizes(pages: int, placement: str, call: int, offsets: list[int]) -> None:
    """Evaluated by simplification, not by the solver: a lemma false at some size would show here."""
    max_pfn = c(pages)
    k = calls(max_pfn, placement)[call]
    if not z3.is_true(z3.simplify(z3.And(domain(max_pfn, placement), k.exists))):
        return
    for lemma in LEMMAS.values():
        args = [c(o) for o in offsets[: len(lemma.params)]]
        if lemma.name == "add_monotone":
            args = [c(o & ((1 << 29) - 1)) for o in offsets]
        assert z3.is_true(z3.simplify(lemma.claim(k, max_pfn, *args))), (lemma.name, pages, placement, call)
