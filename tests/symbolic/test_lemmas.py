"""Lemmas about the walk's closed form: a false or unproved lemma makes what rests on it `unknown`; each lemma
holds at concrete machines of the domain (its claim evaluated, no solver); an instance speaks only of a call that
is made. (That every lemma the shipped obligations use is proved: test_prove.py, from the session's verdicts.)"""

from __future__ import annotations

import dataclasses

import pytest
import z3
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from symbolic_cases import SHAPE_LIST, VARIANTS

from xenpin.linux.variant import PROPERTIES
from xenpin.linux.xen_setup import MAX_DOMAIN_PAGES_39
from xenpin.symbolic import form, lemmas
from xenpin.symbolic import prove as prove_mod
from xenpin.symbolic.equiv import compare
from xenpin.symbolic.form import INT, Params, shape_of
from xenpin.symbolic.lemmas import LEMMAS, Instance, LemmaRef
from xenpin.symbolic.obligations import build
from xenpin.symbolic.prove import prove_property
from xenpin.symbolic.walk import c, terms_of

NAMES = ("nr", "kernel", "ramdisk", "slack", "low_end", "high_end", "base0", "base1", "gbpages")


def test_a_lemma_that_uses_itself_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    circular = dataclasses.replace(LEMMAS["allocs_fit"], uses=lambda t, k: [Instance("allocs_fit", t, k)])
    monkeypatch.setitem(LEMMAS, "allocs_fit", circular)
    with pytest.raises(ValueError, match="depends on itself"):
        lemmas.closure([LemmaRef("allocs_fit", SHAPE_LIST[-1].key, 0)])


# The tests below change the prover's lemma verdicts: they ask for the session's `verdicts` (conftest.py), so
# that they run once the batch has written its own.


def _forget(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Forget this process's verdicts of lemma `name` (each lemma is proved on its own: the others stand)."""
    kept = {key: lv for key, lv in prove_mod._LEMMA_VERDICTS.items() if key[0].name != name}
    monkeypatch.setattr(prove_mod, "_LEMMA_VERDICTS", kept)


def _false_lemma(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Replace lemma `name` by a claim false over the domain."""
    wrong = dataclasses.replace(LEMMAS[name], claim=lambda t, k, *params: z3.ULT(t.size, c(1 << 15)))
    monkeypatch.setitem(LEMMAS, name, wrong)
    _forget(monkeypatch, name)


def test_a_verdict_resting_on_a_false_lemma_is_unknown(monkeypatch: pytest.MonkeyPatch, verdicts) -> None:
    _false_lemma(monkeypatch, "walk_bounded")
    v = prove_property(VARIANTS["3.1"], "spare_freed")
    key = shape_of(VARIANTS["3.1"]).key
    assert v.verdict == "unknown"
    assert f"rests on lemma walk_bounded[{key}, call 0], which is refuted" in v.notes
    assert {lv.verdict for lv in v.lemmas if lv.ref.name == "walk_bounded"} == {"refuted"}


def test_a_verdict_resting_on_an_unproved_lemma_is_unknown(monkeypatch: pytest.MonkeyPatch, verdicts) -> None:
    _forget(monkeypatch, "alloc_monotone")
    real_prove_lemma = prove_mod.prove_lemma

    def give_up_on_a_lemma(ref, solver, limits):
        if ref.name == "alloc_monotone":
            return prove_mod.LemmaVerdict(ref, "unknown", 0.0, "canceled")
        return real_prove_lemma(ref, solver, limits)

    monkeypatch.setattr(prove_mod, "prove_lemma", give_up_on_a_lemma)
    v = prove_property(VARIANTS["2.6.39"], "spare_writable")
    assert v.verdict == "unknown"  # alloc_monotone reads only the walk: proved once per platform and call
    assert "rests on lemma alloc_monotone[xen, call 0], which is unknown (canceled)" in v.notes


def test_an_equivalence_resting_on_a_false_lemma_is_unknown(
    monkeypatch: pytest.MonkeyPatch, verdicts
) -> None:
    _false_lemma(monkeypatch, "pte_end_bounded")
    r = compare(VARIANTS["2.6.39"], VARIANTS["2.6.39-inline"])
    assert r.verdict == "unknown" and "pte_end_bounded" in r.detail


def test_counterexamples_do_not_rest_on_lemmas(monkeypatch: pytest.MonkeyPatch, verdicts) -> None:
    _false_lemma(monkeypatch, "walk_bounded")  # a false lemma only narrows the search; the replay decides
    v = prove_property(VARIANTS["2.6.39-rc6"], "spare_writable")
    assert v.verdict == "counterexample" and v.lemmas == []


def test_an_instance_about_a_call_not_made_says_nothing() -> None:
    """Call 1 does not exist below 4 GiB for 3.0: its terms are then meaningless (its range ends below its
    start, so its allocation count wraps around), and an instance about it must not constrain anything.
    (Unguarded, it made the equivalence of 3.0 and 3.0 without the RW half `unsat` at every size below 4 GiB.)"""
    t = terms_of(shape_of(VARIANTS["3.0"]))
    p = Params(0x4000, 0x200, 0, 0)
    sub = [(getattr(t.params, n), c(getattr(p, n))) for n in NAMES]
    k1 = form.calls(INT, t.shape, p)[1]
    assert not k1.exists and k1.total_allocs < 0  # so the raw claim is false there
    assert z3.is_false(z3.simplify(z3.substitute(LEMMAS["walk_bounded"].claim(t, t.call1), *sub)))
    assert z3.is_true(z3.simplify(z3.substitute(Instance("walk_bounded", t, t.call1).formula(), *sub)))


# --- every lemma at concrete machines -------------------------------------------------------------------------

XEN_SHAPES = [s for s in SHAPE_LIST if s.platform == "xen"]


def _used() -> set[tuple[str | None, int | None, str]]:
    """(shape, call, lemma) of every lemma the shipped obligations rest on, transitively. (A lemma a shape's
    obligations never use need not hold there: pte_end_bounded is false for 3.9, which writes no buffer PTEs.)"""
    refs = set()
    for v in VARIANTS.values():
        for prop in PROPERTIES:
            for call in (0, 1):
                ob = build(v, prop, call)
                refs.update(ob.lemmas)
                for p, k in ob.rests_on:
                    refs.update(build(v, p, k).lemmas)
    return {(r.shape, r.call, r.name) for r in lemmas.closure(sorted(refs))}


USED = _used()


@settings(max_examples=30, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    shape=st.sampled_from(XEN_SHAPES),
    nr=st.one_of(
        st.integers(form.DOMAIN_MIN_PFN, 1 << 21), st.integers(form.DOMAIN_MIN_PFN, MAX_DOMAIN_PAGES_39)
    ),
    kernel=st.integers(*form.KERNEL_PAGES),
    ramdisk=st.integers(*form.RAMDISK_PAGES),
    slack=st.integers(*form.SLACK_PAGES),
    data=st.data(),
)
def test_every_lemma_holds_at_concrete_machines(
    shape, nr: int, kernel: int, ramdisk: int, slack: int, data
) -> None:
    """Each lemma's claim, with the machine's values and concrete arguments substituted, simplifies to true (with
    IntOps for the machine: whether it is in the domain, and where its calls' pages are)."""
    p = Params(nr, kernel, ramdisk, slack)
    calls = form.calls(INT, shape, p)
    assume(form.domain(INT, shape, p, *calls))
    t = terms_of(shape)
    sub = [(getattr(t.params, n), c(getattr(p, n))) for n in NAMES]
    for k, kz in zip(calls, (t.call0, t.call1), strict=True):
        if not k.exists:
            continue
        event(f"call {k.index}")
        lo, hi = k.range_start, k.range_end
        pages = st.one_of(
            st.integers(lo, hi - 1), st.integers(k.pgt_buf_start, k.pgt_buf_top), st.integers(0, hi)
        )
        chunks = st.integers(max(0, k.first_new_chunk - 2), k.last_chunk + 2)
        for lemma in LEMMAS.values():
            step = lemma.generic is not None  # the induction's lemmas: at this machine's own walk
            if step and shape.placement == "mapped":
                continue
            if not step and lemma.about_walk and (shape.key, k.index, lemma.name) not in USED:
                continue
            if lemma.params == ("k", "pfn"):
                kk = data.draw(st.integers(0, k.iterations - 1))
                chunk = k.first_chunk + kk
                args = [kk, data.draw(st.integers(chunk << 9, (chunk << 9) + 511))]
            elif lemma.params == ("pfn",):
                args = [data.draw(pages)]
            elif lemma.params == ("alloc",):
                args = [data.draw(st.integers(0, k.total_allocs + 2))]
            elif lemma.params == ("x", "y"):
                args = sorted(data.draw(st.lists(chunks, min_size=2, max_size=2)))
            elif lemma.params == ("s", "a", "b"):
                args = data.draw(
                    st.lists(st.integers(0, (1 << lemmas.SMALL_BITS) - 1), min_size=3, max_size=3)
                )
            else:
                assert lemma.params == (), lemma.name
                args = []
            claim = lemma.claim(t, kz, *(c(a) for a in args))
            assert z3.is_true(z3.simplify(z3.substitute(claim, *sub))), (
                lemma.name,
                shape.key,
                p,
                k.index,
                args,
            )
