"""A bare-metal counterexample names a page of the buffer the boot placed, not of the solver's placement.

The closed form leaves a native buffer's place free (`closed_form.py`), so the solver's model may put it
anywhere; the witness shown (and replayed, drawn, reported to pytest) must be moved to the boot's buffer.
"""

from __future__ import annotations

import dataclasses

import pytest
from bootcache import variant

from xenpin.linux.policy import parse_policy
from xenpin.symbolic.explore import counterexamples
from xenpin.symbolic.prove import prove_property

MUTANTS = {
    "spare_freed": ("reserve", "pgt_buf_start <= pfn < pgt_buf_top"),
    "live_reserved": ("reserve", "pgt_buf_start + 1 <= pfn < pgt_buf_end"),
}


@pytest.mark.parametrize("prop", sorted(MUTANTS))
def test_the_failing_page_is_in_the_replayed_buffer(prop: str) -> None:
    field, rule = MUTANTS[prop]
    mutant = dataclasses.replace(variant("3.1-native"), **{field: parse_policy(rule)})
    for v in [prove_property(mutant, prop), *counterexamples(mutant, prop, 2)[1:]]:
        assert v.verdict == "counterexample", v.notes
        w, r = v.witness, v.replay
        buf = next(b for b in r.buffers if b.call == w.call)
        lo, hi = (
            (buf.pgt_buf_end, buf.pgt_buf_top)
            if prop == "spare_freed"
            else (buf.pgt_buf_start, buf.pgt_buf_end)
        )
        assert lo <= w.pfn < hi, (hex(w.pfn), buf)
        assert r.properties[prop] is False
