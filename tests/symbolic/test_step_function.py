"""The step function (`step_function.py`): beside the executable walk (differential, over Python ints), beside the
closed form at every iteration, its induction lemmas proved and resting under every walk lemma, and a wrong
closed form caught by them.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from symbolic_cases import BUFFERED_XEN, GIB, KERNEL, MIB, NATIVE, RAMDISK, SLACK, VARIANTS, boot_of, domu

from xenpin.linux.boot import boot
from xenpin.linux.layout import BootConfig
from xenpin.linux.xen_setup import MAX_DOMAIN_PAGES_39
from xenpin.symbolic import closed_form as cf
from xenpin.symbolic import form, lemmas
from xenpin.symbolic import step_function as sf
from xenpin.symbolic.form import INT, Params, Shape, shape_of
from xenpin.symbolic.lemmas import LemmaRef
from xenpin.symbolic.solver import check

NATIVE_SHAPE = Shape("native", "any", "none", "none", "none")


def _allocated(its: list[sf.Iteration]) -> list[int]:
    """The pages the step function allocates, in order (PUD, PMD, PTE within an iteration)."""
    out = []
    for it in its:
        out += [page for flag, page in ((it.pud_alloc, it.pud_page), (it.pmd_alloc, it.pmd_page),
                                        (it.pte_alloc, it.pte_page)) if flag]  # fmt: skip
    return out


def _differences(v, config: BootConfig, r) -> list[str]:
    """The step function run for each call's n iterations against the boot `r`: the pages allocated, in order,
    and `pgt_buf_end` after the walk (empty: they agree)."""
    shape = shape_of(v)
    buffers = [b for b in r.buffers if b.call >= 0]
    bases = tuple(b.pgt_buf_start for b in buffers) + (cf.NATIVE_BASE,) * (2 - len(buffers))
    p = cf.params_of(v, config, bases)
    out = []
    for b in buffers:
        if not b.judged:
            continue
        w = sf.walk_of(INT, shape, p, b.call)
        if (w.range_start, w.range_end, w.pgt_buf_start) != (b.range_start, b.range_end, b.pgt_buf_start):
            out.append(f"call {b.call}: walk inputs {(w.range_start, w.range_end, w.pgt_buf_start)}")
            continue
        end, its = sf.run(w)
        booted = [s.pfn for s in r.steps if s.call == b.call and s.action == "alloc_low_page"]
        if v.xen and _allocated(its) != booted:
            out.append(f"call {b.call}: allocations {_allocated(its)[:8]}..., boot {booted[:8]}...")
        if (end.pgt_buf_end, end.allocs) != (b.pgt_buf_end, b.pgt_buf_end - b.pgt_buf_start):
            out.append(f"call {b.call}: pgt_buf_end {end.pgt_buf_end:#x}, boot {b.pgt_buf_end:#x}")
    return out


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(BUFFERED_XEN),
    nr=st.integers(form.DOMAIN_MIN_PFN, (GIB + 8 * MIB) >> 12),
    slack=st.sampled_from([0, SLACK, 513]),
)
@example(name="2.6.39", nr=(GIB + 2 * MIB + 4096) >> 12, slack=SLACK)
@example(name="3.1", nr=0x4000, slack=SLACK)
def test_step_function_equals_the_boot_walk_domu(name: str, nr: int, slack: int) -> None:
    v, config = VARIANTS[name], domu(nr, KERNEL, RAMDISK, slack)
    assert _differences(v, config, boot_of(v, config)) == []


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(NATIVE),
    low=st.integers(64, 3840).map(lambda mib: mib << 20),
    high=st.one_of(st.just(0), st.integers(1, 12 << 30)),
    gbpages=st.booleans(),
)
@example(name="3.1-native", low=3 << 30, high=(6 << 30) + (2 << 20) + 4096, gbpages=True)
def test_step_function_equals_the_boot_walk_bare_metal(name: str, low: int, high: int, gbpages: bool) -> None:
    """Small machines, with and without 1 GiB pages (running the step function over the 2**18 chunks past
    512 GiB, where PUD pages come in, takes too long in Python: test_closed_form.py boots those against the
    closed form, and the induction covers them)."""
    mem = low + high
    assert mem >= 64 * MIB
    v = VARIANTS[name]
    config = BootConfig(role="native", mem_bytes=mem, gbpages=gbpages)
    r = boot(v, config)
    assert r.outcome == "ok"
    assert _differences(v, config, r) == []


def _cf_matches_run(shape: Shape, p: Params) -> int:
    """The closed form's state at every iteration is the step function's (Python ints); iterations run."""
    total = 0
    for k in form.calls(INT, shape, p):
        if not k.exists:
            continue
        w = sf.walk_of(INT, shape, p, k.index)
        s = sf.initial_state(w)
        for kk in range(k.iterations):
            expect = sf.closed_form_state(w, k, kk)
            assert sf._same(INT, s, expect, 0, w.native), (shape.key, p, k.index, kk, s, expect)
            s = sf.iterate(w, s).after
        assert (s.allocs, s.pgt_buf_end) == (k.total_allocs, k.pgt_buf_end)
        total += k.iterations
    return total


@settings(max_examples=30, deadline=None)
@given(
    shape=st.sampled_from([s for s in (shape_of(v) for v in VARIANTS.values()) if sf.has_step_function(s)]),
    nr=st.integers(form.DOMAIN_MIN_PFN, 3 << 18),
    slack=st.integers(*form.SLACK_PAGES),
)
def test_closed_form_is_the_step_function_at_every_iteration(shape: Shape, nr: int, slack: int) -> None:
    if shape.platform == "native":
        p = Params(low_end=min(nr, form.NATIVE_LOW_MAX), high_end=(1 << 20) + slack * 3 if slack else 0,
                   base0=0x100, base1=0x100, gbpages=slack & 1)  # fmt: skip
    else:
        p = Params(nr, KERNEL, RAMDISK, slack)
    if form.domain(INT, shape, p, *form.calls(INT, shape, p)):
        assert _cf_matches_run(shape, p) > 0


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([s for s in (shape_of(v) for v in VARIANTS.values()) if sf.has_step_function(s)]),
    size=st.integers(form.DOMAIN_MIN_PFN, form.DOMAIN_MAX_PFN),
    gbpages=st.integers(0, 1),
    data=st.data(),
)
def test_one_iteration_anywhere_in_the_domain(shape: Shape, size: int, gbpages: int, data) -> None:
    """The inductive step at concrete iterations of large machines (up to 64 TiB on bare metal, the largest
    domU), where running every iteration would take too long."""
    if shape.platform == "native":
        p = Params(low_end=form.NATIVE_LOW_MAX, high_end=max(size, (1 << 20) + 1), base0=0x100, base1=0x100,
                   gbpages=gbpages)  # fmt: skip
    else:
        p = Params(min(size, form.max_nr(shape)), KERNEL, RAMDISK, SLACK)
    calls = form.calls(INT, shape, p)
    assert form.domain(INT, shape, p, *calls)
    for k in calls:
        if not k.exists:
            continue
        w = sf.walk_of(INT, shape, p, k.index)
        assert sf.walk_bounds(w, k)
        kk = data.draw(st.one_of(st.integers(0, k.iterations - 1), st.sampled_from([0, k.iterations - 1])))
        it = sf.iterate(w, sf.closed_form_state(w, k, kk))
        assert sf._same(INT, it.after, sf.closed_form_state(w, k, kk + 1), 0, w.native)
        if not w.native and it.pte_alloc:
            assert it.pte_page == k.pgt_buf_start + k.chunk_alloc(k.first_chunk + kk) - 1
        end = sf.closed_form_state(w, k, k.iterations)
        assert (end.allocs, end.pgt_buf_end) == (k.total_allocs, k.pgt_buf_end)


def test_the_domain_reaches_64_tib_on_bare_metal() -> None:
    """MAX_PHYSMEM_BITS = 46: the largest bare-metal machine is in the domain, one page more is not; its walk
    takes a PUD page per 512 GiB past the first (127), and the closed form counts them."""
    top = 1 << 34
    assert top == form.DOMAIN_MAX_PFN
    for gb in (0, 1):
        p = Params(low_end=form.NATIVE_LOW_MAX, high_end=top, base0=0x100, base1=0x100, gbpages=gb)
        calls = form.calls(INT, NATIVE_SHAPE, p)
        assert form.domain(INT, NATIVE_SHAPE, p, *calls)
        assert calls[1].total_allocs == 127 + (0 if gb else (top >> 18) - 4)
        assert not form.domain(INT, NATIVE_SHAPE, dataclasses.replace(p, high_end=top + 1), *calls)


def test_every_walk_lemma_rests_on_the_induction() -> None:
    """A verdict's lemmas, transitively, include the step function's: every verdict of a shape with a step
    function is `proved` only if the closed form is proved equal to the walk."""
    for name in ("2.6.39", "3.1", "2.6.37", "3.0", "2.6.39-native"):
        shape = shape_of(VARIANTS[name])
        refs = lemmas.closure(
            [LemmaRef("walk_bounded", shape.key, 0), LemmaRef("pte_end_bounded", shape.key, 1)]
        )
        for call in (0, 1):
            assert set(lemmas.step_refs(shape.platform, call)) <= set(refs), name
    mapped = shape_of(VARIANTS["3.9"])
    assert not any(
        r.name.startswith("step_") for r in lemmas.closure([LemmaRef("walk_bounded", mapped.key, 0)])
    )


@pytest.mark.parametrize("ref", [*lemmas.step_refs("xen", 0), *lemmas.step_refs("native", 1)], ids=str)
def test_the_induction_lemmas_are_proved(ref: LemmaRef) -> None:
    assert check(lemmas.proof(ref)[0]).status == "unsat"


def test_a_wrong_closed_form_is_caught_by_the_induction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed form that numbers a new GiB's PMD page one too late (after its first chunk's PTE page) is
    refuted by `step_allocates`, with a machine where the step function allocates otherwise."""
    real = form.Call.pmd_alloc
    monkeypatch.setattr(form.Call, "pmd_alloc", lambda self, gib: real(self, gib) + self.ops.c(1))
    lemmas._PROOFS.clear()
    try:
        answer = check(lemmas.proof(LemmaRef("step_allocates", "xen", 1))[0])
    finally:
        lemmas._PROOFS.clear()
    assert answer.status == "sat"


def test_the_largest_domu_is_covered() -> None:
    """The domU side stops at MAX_DOMAIN_PAGES (3.9: 500 GiB): the largest guest of each shape is in the domain
    and inside the induction's bounds (one PGD slot: below 512 GiB)."""
    for name in ("2.6.39", "3.1", "2.6.37", "3.0"):
        shape = shape_of(VARIANTS[name])
        p = Params(form.max_nr(shape), 0x8000, 0x20000, form.SLACK_PAGES[1])
        calls = form.calls(INT, shape, p)
        assert form.domain(INT, shape, p, *calls)
        for k in calls:
            assert sf.walk_bounds(sf.walk_of(INT, shape, p, k.index), k)
    assert form.max_nr(shape_of(VARIANTS["3.9"])) == MAX_DOMAIN_PAGES_39
