"""Lexicographic minimisation (`minimise.py`) against brute force, and honesty when the solver gives up."""

from __future__ import annotations

import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from xenpin.symbolic.minimise import least, lexicographic_min

X, Y = z3.BitVec("x", 8), z3.BitVec("y", 8)


def _formula(a: int, b: int, m: int) -> z3.BoolRef:
    return z3.And(z3.URem(X * Y + c8(a), c8(m)) == c8(b % m), z3.UGE(X + Y, c8(a % 64)))


def c8(v: int) -> z3.BitVecRef:
    return z3.BitVecVal(v, 8)


def _brute_force(a: int, b: int, m: int) -> tuple[int, int] | None:
    for x in range(256):
        for y in range(256):
            if ((x * y + a) % 256) % m == b % m and (x + y) % 256 >= a % 64:
                return x, y
    return None


@settings(max_examples=25)
@given(a=st.integers(0, 255), b=st.integers(0, 255), m=st.integers(2, 40))
def test_least_pair_equals_brute_force(a: int, b: int, m: int) -> None:
    formula = _formula(a, b, m)
    solver = z3.Solver()
    solver.add(formula)
    expected = _brute_force(a, b, m)
    if solver.check() != z3.sat:
        assert expected is None
        return
    least = lexicographic_min(formula, [X, Y], solver.model(), rlimit=10_000_000, timeout_s=10)
    assert least.minimal and least.values == expected
    assert tuple(least.model.eval(t, model_completion=True).as_long() for t in (X, Y)) == expected


def test_gives_up_honestly_under_a_tiny_resource_limit() -> None:
    formula = z3.And(c8(143) == X * Y, z3.UGT(X, c8(1)), z3.UGT(Y, c8(1)))
    solver = z3.Solver()
    solver.add(formula, c8(143 // 11) == X, c8(11) == Y)
    assert solver.check() == z3.sat
    least = lexicographic_min(formula, [X, Y], solver.model(), rlimit=1, timeout_s=10)
    assert not least.minimal
    assert z3.is_true(least.model.eval(formula, model_completion=True))  # still a model, just not the least


def test_least_asks_the_first_question_itself_and_finds_the_same_least() -> None:
    formula = _formula(7, 3, 11)
    answer, found = least(formula, [X, Y], rlimit=10_000_000, timeout_s=10)
    assert answer.status == "sat" and found is not None and found.minimal
    solver = z3.Solver()
    solver.add(formula)
    assert solver.check() == z3.sat
    again = lexicographic_min(formula, [X, Y], solver.model(), rlimit=10_000_000, timeout_s=10)
    assert found.values == again.values == _brute_force(7, 3, 11)


def test_least_of_an_unsatisfiable_formula_or_under_a_tiny_limit_is_no_witness() -> None:
    answer, found = least(z3.And(X == 1, X == 2), [X], rlimit=10_000_000, timeout_s=10)
    assert (answer.status, found) == ("unsat", None)
    hard = z3.And(z3.BitVecVal(143, 8) == X * Y, z3.UGT(X, 1), z3.UGT(Y, 1))
    answer, found = least(hard, [X, Y], rlimit=1, timeout_s=10)
    assert (answer.status, found) == ("unknown", None) and answer.reason
