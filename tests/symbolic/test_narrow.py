"""Narrowing constants by their top-level bounds (`xenpin.symbolic.narrow`): which bounds count, and that the
narrowed formula has the same answer and, widened, the same models as the formula."""

from __future__ import annotations

import z3
from hypothesis import given
from hypothesis import strategies as st

from xenpin.symbolic.minimise import least, lexicographic_min
from xenpin.symbolic.narrow import narrow
from xenpin.symbolic.solver import check

x, y, z = (z3.BitVec(n, 16) for n in "xyz")


def _widths(formula: z3.BoolRef) -> dict[str, int]:
    return {str(c): (low.size() if low is not None else 0) for c, low, _ in narrow(formula).parts}


def test_top_level_numeral_bounds_narrow_their_constant() -> None:
    f = z3.And(z3.ULE(x, 5), z3.And(z3.ULT(y, 100), z3.UGE(1000, z)), x + y != z)
    assert _widths(f) == {"x": 3, "y": 7, "z": 10}


def test_the_tightest_bound_wins_and_negations_count() -> None:
    assert _widths(z3.And(z3.ULE(x, 300), z3.ULE(x, 7), x != 1)) == {"x": 3}
    assert _widths(z3.And(z3.Not(z3.UGT(x, 7)), z3.Not(z3.Or(z3.UGE(y, 16), y == 3)))) == {"x": 3, "y": 4}
    assert _widths(z3.And(z3.Extract(15, 10, x) == 0, x != 0)) == {"x": 10}
    assert _widths(z3.And(x == 0, y == 9)) == {"x": 0, "y": 4}


def test_bounds_that_need_not_hold_do_not_narrow() -> None:
    assert _widths(z3.Or(z3.ULE(x, 5), z3.ULE(y, 5))) == {}  # under a disjunction
    assert _widths(z3.Not(z3.ULE(x, 5))) == {}  # a lower bound
    assert _widths(z3.ULE(x, 5) == z3.ULE(y, 5)) == {}
    assert _widths(z3.And(x <= 5, y <= 5)) == {}  # signed
    assert _widths(z3.And(z3.ULE(x, y), z3.ULE(y, 5))) == {"y": 3}  # only bounds by numerals
    assert _widths(z3.And(z3.ULT(x, 0), y == x)) == {}  # x < 0: left to the solver
    assert _widths(z3.ULE(x, 0xFFFF)) == {}  # no bit to spare


def test_a_widened_model_is_a_model_of_the_formula() -> None:
    f = z3.And(z3.ULE(x, 200), z3.ULE(y, 50), x * 3 + y == 500)
    answer = check(f)
    assert answer.status == "sat"
    assert z3.is_true(answer.model.eval(f, model_completion=True))


@st.composite
def _formulas(draw: st.DrawFn) -> z3.BoolRef:
    """Random 8-bit arithmetic over a, b, c with random top-level bounds on some of them."""
    a, b, c = (z3.BitVec(n, 8) for n in "abc")
    leaves = st.sampled_from([a, b, c, z3.BitVecVal(draw(st.integers(0, 255)), 8)])
    ops = [lambda p, q: p + q, lambda p, q: p * q, lambda p, q: p - q, z3.LShR, lambda p, q: p & q,
           z3.UDiv, z3.URem]  # fmt: skip

    def term(depth: int) -> z3.BitVecRef:
        if depth == 0 or draw(st.booleans()):
            return draw(leaves)
        return draw(st.sampled_from(ops))(term(depth - 1), term(depth - 1))

    rel = st.sampled_from([z3.ULE, z3.ULT, lambda p, q: p == q, lambda p, q: p != q])
    body = [draw(rel)(term(3), term(3)) for _ in range(draw(st.integers(1, 3)))]
    bounds = [
        draw(st.sampled_from([z3.ULE, z3.ULT]))(v, draw(st.integers(0, 255)))
        for v in (a, b, c)
        if draw(st.booleans())
    ]
    return z3.And(*bounds, *body)


@given(_formulas())
def test_narrowing_keeps_the_answer_and_the_models(f: z3.BoolRef) -> None:
    plain = z3.Solver()
    plain.add(f)
    answer = check(f)
    assert answer.status == str(plain.check())
    if answer.status == "sat":
        assert z3.is_true(answer.model.eval(f, model_completion=True))


def test_minimising_over_narrowed_constants_finds_the_least_of_the_formula() -> None:
    f = z3.And(z3.ULE(x, 1000), z3.ULE(y, 50), z3.UGE(x * 3 + y, 500))
    answer, found = least(f, [x, y], rlimit=10**7, timeout_s=10)
    assert answer.status == "sat" and found is not None and found.values == (150, 50)
    assert found.model.eval(x).as_long() == 150 and found.model.eval(y).as_long() == 50
    start = z3.Solver()
    start.add(f, x == 900)
    assert start.check() == z3.sat
    again = lexicographic_min(f, [x, y], start.model(), rlimit=10**7, timeout_s=10)
    assert again.values == (150, 50) and again.minimal
