"""The Z3 terms of `walk.py` equal the Python values of `form.calls(form.INT, ...)`: one definition, two backends.

For every walk shape of the shipped variants, at concrete machines (substituted into the terms and simplified,
no solver), every field of both calls, their methods at pages, chunks and GiBs that matter (the range's ends,
the buffer's, chunk and GiB boundaries), the layout, and the domain: the domain for any machine, in it or not
(so no sum that wraps at 64 bits lets a machine in that Python keeps out), the rest for machines in it.
"""

from __future__ import annotations

import pytest
import z3
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from symbolic_cases import KERNEL, RAMDISK, SHAPE_LIST, SLACK

from xenpin.symbolic import form
from xenpin.symbolic.form import INT, Params, Shape
from xenpin.symbolic.walk import terms_of

MASK = (1 << 64) - 1
NAMES = ("nr", "kernel", "ramdisk", "slack", "low_end", "high_end", "base0", "base1", "gbpages")
FIELDS = ("exists", "range_start", "range_end", "pgt_buf_start", "pgt_buf_top", "first_new_chunk",
          "first_new_gib", "placed", "tables", "last_chunk", "total_allocs", "pgt_buf_end")  # fmt: skip
LAYOUT = ("mfn_list", "pt_base", "pt_end", "v_end", "existing_chunks", "max_pfn_mapped", "max_pfn", "max_low",
          "two_calls")  # fmt: skip
METHODS_OF_PFN = ("is_new_chunk_pfn", "pte_alloc", "end_when_pte_written", "gib_linked_after")


def _value(term):
    term = z3.simplify(term)
    if z3.is_bool(term):
        assert z3.is_true(term) or z3.is_false(term), term
        return z3.is_true(term)
    assert z3.is_bv_value(term), term
    return term.as_long()


def _python(x):
    return x if isinstance(x, bool) else x & MASK


class Machine:
    """One machine's Python closed form and its Z3 terms with the machine's values substituted."""

    def __init__(self, shape: Shape, values: dict[str, int]) -> None:
        self.t = terms_of(shape)
        self.p = Params(**values)
        self.calls = form.calls(INT, shape, self.p)
        self.layout = form.layout(INT, shape, self.p)
        self.in_domain = bool(form.domain(INT, shape, self.p, *self.calls))
        self.sub = [(getattr(self.t.params, n), z3.BitVecVal(values.get(n, 0), 64)) for n in NAMES]

    def z(self, term):
        return _value(z3.substitute(term, *self.sub))


def _pfns(k) -> set[int]:
    """Pages of the call's range where the methods differ: its ends, the buffer's, chunk and GiB boundaries."""
    lo, hi = k.range_start, k.range_end
    base = {lo, hi - 1, k.pgt_buf_start, k.pgt_buf_top - 1, k.pgt_buf_end, k.pgt_buf_end - 1, (lo + hi) // 2}
    base |= {k.first_new_chunk << 9, (k.first_new_chunk << 9) - 1, k.last_chunk << 9}
    base |= {(g << 18) + d for g in (k.first_new_gib, (hi - 1) >> 18) for d in (-1, 0, 511, 512)}
    return {p for p in base if lo <= p < hi}


def check_machine(shape: Shape, values: dict[str, int]) -> Machine:
    m = Machine(shape, values)
    assert m.z(m.t.domain) == m.in_domain, (shape.key, values)
    if not m.in_domain:
        return m
    for name in LAYOUT:
        assert m.z(getattr(m.t.layout, name)) == _python(getattr(m.layout, name)), (shape.key, values, name)
    for k, kz in zip(m.calls, (m.t.call0, m.t.call1), strict=True):
        where = (shape.key, values, k.index)
        for name in FIELDS:
            assert m.z(getattr(kz, name)) == _python(getattr(k, name)), (*where, name)
        if not k.exists or shape.platform == "native" or shape.placement == "mapped":
            continue
        for pfn in _pfns(k):
            z = z3.BitVecVal(pfn, 64)
            for name in METHODS_OF_PFN:
                assert m.z(getattr(kz, name)(z)) == _python(getattr(k, name)(pfn)), (*where, name, pfn)
        for chunk in {k.first_new_chunk, k.last_chunk, (k.first_new_chunk + k.last_chunk) // 2}:
            assert m.z(kz.chunk_alloc(z3.BitVecVal(chunk, 64))) == _python(k.chunk_alloc(chunk)), (
                *where,
                chunk,
            )
        for gib in range(k.first_new_gib, (k.last_chunk >> 9) + 1, max(1, ((k.last_chunk >> 9) + 1) // 4)):
            assert m.z(kz.pmd_alloc(z3.BitVecVal(gib, 64))) == _python(k.pmd_alloc(gib)), (*where, gib)
    return m


XEN_SHAPES = [s for s in SHAPE_LIST if s.platform == "xen"]
NATIVE_SHAPES = [s for s in SHAPE_LIST if s.platform == "native"]
FIXED = [
    dict(nr=0x4000, kernel=KERNEL, ramdisk=RAMDISK, slack=SLACK),
    dict(nr=0x40201, kernel=KERNEL, ramdisk=RAMDISK, slack=SLACK),
    dict(nr=0x100100, kernel=KERNEL, ramdisk=RAMDISK, slack=SLACK),
    dict(nr=0xFFC00, kernel=KERNEL, ramdisk=RAMDISK, slack=SLACK),
    dict(nr=0x180000, kernel=0x8000, ramdisk=0x20000, slack=0x40000),
    dict(nr=None, kernel=0x200, ramdisk=0, slack=0),  # the largest guest: form.max_nr
]


@pytest.mark.parametrize("shape", XEN_SHAPES, ids=lambda s: s.key)
def test_terms_equal_python_values_at_fixed_machines(shape: Shape) -> None:
    for values in FIXED:
        values = {**values, "nr": values["nr"] or form.max_nr(shape)}
        assert check_machine(shape, values).in_domain, values


@settings(max_examples=25, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    shape=st.sampled_from(XEN_SHAPES),
    nr=st.one_of(
        st.integers(form.DOMAIN_MIN_PFN, 1 << 22),
        st.integers(form.DOMAIN_MIN_PFN, form.max_nr(XEN_SHAPES[0]) * 4),
    ),
    kernel=st.integers(*form.KERNEL_PAGES),
    ramdisk=st.integers(*form.RAMDISK_PAGES),
    slack=st.integers(*form.SLACK_PAGES),
)
def test_terms_equal_python_values_in_the_domain(
    shape: Shape, nr: int, kernel: int, ramdisk: int, slack: int
) -> None:
    m = check_machine(shape, dict(nr=nr, kernel=kernel, ramdisk=ramdisk, slack=slack))
    assume(m.in_domain)
    event("in the domain")


@settings(max_examples=40)
@given(
    shape=st.sampled_from(XEN_SHAPES),
    values=st.fixed_dictionaries(
        {
            "nr": st.integers(0, 1 << 30),
            "kernel": st.integers(0, 1 << 17),
            "ramdisk": st.integers(0, 1 << 19),
            "slack": st.integers(0, 1 << 20),
        }
    ),
)
def test_both_backends_agree_on_the_domain_anywhere(shape: Shape, values: dict[str, int]) -> None:
    """Machines outside the boxes too (64-bit wrap-around in Z3, negative numbers in Python)."""
    check_machine(shape, values)


@settings(max_examples=40)
@given(
    low_end=st.integers(0, 0x100000),
    high_end=st.one_of(st.just(0), st.integers(0, 1 << 28), st.integers(1 << 26, form.DOMAIN_MAX_PFN + 1)),
    base0=st.integers(0, 0x100000),
    base1=st.integers(0, 1 << 28),
    gbpages=st.integers(0, 2),
)
def test_bare_metal_terms_equal_python_values(
    low_end: int, high_end: int, base0: int, base1: int, gbpages: int
) -> None:
    for shape in NATIVE_SHAPES:
        check_machine(
            shape, dict(low_end=low_end, high_end=high_end, base0=base0, base1=base1, gbpages=gbpages)
        )
