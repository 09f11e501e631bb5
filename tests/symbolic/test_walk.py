"""The Z3 walk (`xenpin.symbolic.walk`) against the Python closed form, which the boot-walk tests pin down."""

from __future__ import annotations

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from xenpin.symbolic import closed_form as cf
from xenpin.symbolic.walk import c, calls, domain

MIB = 1 << 20


def _val(term: z3.BitVecRef) -> int:
    return z3.simplify(term).as_long()


def _check(mem: int, placement: str) -> None:
    max_pfn = mem >> 12
    sym = calls(c(max_pfn), placement)
    assert z3.is_true(z3.simplify(domain(c(max_pfn), placement)))
    for form in cf.call_forms(mem, placement):
        k = sym[form.call]
        assert (_val(k.pgt_buf_start), _val(k.pgt_buf_top)) == (form.pgt_buf_start, form.pgt_buf_top)
        if placement == "mapped":
            continue  # no buffer: pgt_buf_end never moves
        assert _val(k.total_allocs) == cf.total_allocations(form)
        hi = form.end
        for pfn in {form.start, hi - 1, hi - 513, (form.start + hi) // 2, hi - (1 << 18) - 1}:
            if not form.start <= pfn < hi:
                continue
            written = z3.is_true(z3.simplify(k.is_new_chunk_pfn(c(pfn))))
            assert written == cf.pte_written(form, pfn)
            if written:
                assert _val(k.end_when_pte_written(c(pfn))) == cf.pgt_buf_end_when_pte_written(form, pfn)


@pytest.mark.parametrize("placement", ["high", "low", "mapped"])
@pytest.mark.parametrize("mem", [64 * MIB, 100 * MIB, (1 << 30) + 4096, 5 << 30, 6 << 30, 17 << 30])
def test_walk_terms_equal_closed_form(mem: int, placement: str) -> None:
    _check(mem, placement)


@settings(max_examples=25)
@given(
    pages=st.integers(min_value=(64 * MIB) >> 12, max_value=(64 << 30) >> 12),
    placement=st.sampled_from(["high", "low"]),
)
def test_walk_terms_equal_closed_form_any_size(pages: int, placement: str) -> None:
    mem = pages << 12
    forms = cf.call_forms(mem, placement)
    if not all(cf.placement_preconditions(f) for f in forms):
        return  # outside the proofs' domain; `domain()` excludes it too
    _check(mem, placement)
