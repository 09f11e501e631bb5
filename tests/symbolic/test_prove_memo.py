"""A verdict's searches for least witnesses share their answers (`prove._least_of`): a bounded question answered
from the unbounded one's least witness is what the solver answers to it."""

from __future__ import annotations

from symbolic_cases import LIMITS, VARIANTS

from xenpin.symbolic import prove as prove_mod
from xenpin.symbolic.obligations import build


def test_a_bounded_question_from_the_memo_is_the_solvers_answer() -> None:
    ob = build(VARIANTS["2.6.39-rc6"], "spare_writable", 0)
    memo: dict = {}
    status, least = prove_mod._least_of(ob, True, None, None, LIMITS, memo)
    assert status == "sat" and least.minimal and (ob.label, ob.call, True) in memo
    for below in (least.size, least.size + 1):
        from_memo = prove_mod._least_of(ob, True, below, None, LIMITS, memo)
        asked = prove_mod._least_of(ob, True, below, None, LIMITS, {})
        assert from_memo == asked
        assert from_memo[0] == ("sat" if below > least.size else "unsat")
