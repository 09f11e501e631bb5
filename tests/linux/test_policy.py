"""Tests for the kernel-variant policy language (xenpin.linux.policy)."""

from __future__ import annotations

import time

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenpin.linux.policy import (
    MASK,
    WIDTH,
    And,
    BinOp,
    Bool,
    Compare,
    Expr,
    Not,
    Num,
    Or,
    PolicyError,
    Var,
    evaluate,
    free_variables,
    parse_expr,
    parse_policy,
    to_function,
    to_z3,
    unparse,
)
from xenpin.strategies import policy_envs, policy_exprs

INT_VARS = ("pfn", "pgt_buf_start", "pgt_buf_end", "pgt_buf_top")
BOOL_VARS = ("ioremap",)
PARAMS = (*INT_VARS, *BOOL_VARS)
ENV = {"pfn": 5, "pgt_buf_start": 2, "pgt_buf_end": 0, "pgt_buf_top": 9, "ioremap": False}


def ev(text: str, **overrides: int | bool) -> int | bool:
    return evaluate(parse_expr(text), {**ENV, **overrides})


# --------------------------------------------------------------------------- unit tests


def test_constants_and_literals() -> None:
    assert parse_expr("0x1f") == Num(31)
    assert parse_expr("0X1F") == Num(31)
    assert parse_expr("1_000") == Num(1000)
    assert parse_expr("0xffff_ffff_ffff_ffff") == Num(MASK)
    assert parse_expr("PAGE_SHIFT") == Num(12)
    assert parse_expr("PAGE_SIZE") == Num(4096)
    assert parse_expr("true") == Bool(True)
    assert parse_expr("false") == Bool(False)
    assert WIDTH == 64 and MASK == 2**64 - 1


def test_precedence() -> None:
    assert parse_expr("1 + 2 * 3") == BinOp("+", Num(1), BinOp("*", Num(2), Num(3)))
    assert ev("1 + 2 * 3") == 7
    assert ev("(1 + 2) * 3") == 9
    assert ev("1 << 2 + 1") == 8  # + binds tighter than <<
    assert ev("10 - 3 - 2") == 5  # left associative
    assert ev("256 >> 2 >> 1") == 32
    assert ev("1 + 1 << 2 == 8")  # comparison below shifts
    assert parse_expr("not ioremap and pfn < 1 or true") == Or(
        And(Not(Var("ioremap")), Compare(("<",), (Var("pfn"), Num(1)))), Bool(True)
    )
    assert parse_expr("not pfn < 1") == Not(Compare(("<",), (Var("pfn"), Num(1))))
    assert ev("true or true and false") is True
    assert ev("(true or true) and false") is False
    assert ev("not not true") is True


def test_chained_comparisons() -> None:
    e = parse_policy("pgt_buf_start <= pfn < pgt_buf_top")
    assert e == Compare(("<=", "<"), (Var("pgt_buf_start"), Var("pfn"), Var("pgt_buf_top")))
    assert ev("pgt_buf_start <= pfn < pgt_buf_top") is True
    assert ev("pgt_buf_start <= pfn < pgt_buf_top", pfn=9) is False
    assert ev("pgt_buf_start <= pfn < pgt_buf_top", pfn=2) is True
    assert ev("pgt_buf_start <= pfn < pgt_buf_top", pfn=1) is False
    assert ev("3 > 2 > 1") is True  # not (3 > 2) > 1
    assert ev("1 < 3 > 2 != 2") is False
    assert ev("1 < 2 < 3 < 4 <= 4 == 4") is True


def test_wraparound_and_unsigned() -> None:
    assert ev("pgt_buf_end - 1") == 2**64 - 1
    assert ev("pgt_buf_end - 1 > pfn") is True  # unsigned comparison
    assert ev("0xffffffffffffffff + 2") == 1
    assert ev("0x8000000000000000 * 2") == 0
    assert ev("1 << 63") == 2**63
    assert ev("1 << 64") == 0
    assert ev("5 << 0xffffffffffffffff") == 0
    assert ev("0xffffffffffffffff >> 64") == 0
    assert ev("0xffffffffffffffff >> 63") == 1
    # Inputs are reduced modulo 2**64 like a C conversion to u64.
    assert ev("pfn", pfn=-1) == MASK
    assert to_function(parse_expr("pfn + 0"), ["pfn"])(-1) == MASK


def test_pfn_functions() -> None:
    assert ev("PFN_PHYS(pfn)") == 5 * 4096
    assert ev("PFN_PHYS(0x10_0000_0000_0000)") == 0  # wraps
    assert ev("PFN_DOWN(0x12345)") == 0x12
    assert ev("PFN_UP(4096)") == 1
    assert ev("PFN_UP(4097)") == 2
    assert ev("PFN_UP(0)") == 0
    assert ev("PFN_UP(0xffffffffffffffff)") == 0  # x + 4095 wraps, as in C
    assert ev("PFN_DOWN(PFN_PHYS(pgt_buf_top)) == pgt_buf_top") is True


def test_custom_variables() -> None:
    vars_ = {"start": "int", "xen": "bool"}
    e = parse_policy("start < 3 and xen", vars_)
    assert evaluate(e, {"start": 1, "xen": True}) is True
    with pytest.raises(PolicyError, match="unknown variable 'pfn'"):
        parse_expr("pfn", vars_)
    with pytest.raises(ValueError, match="reserved"):
        parse_expr("1", {"and": "int"})
    with pytest.raises(ValueError, match="kind"):
        parse_expr("1", {"x": "float"})


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "empty expression"),
        ("   ", 1, "empty expression"),
        ("pgt_buf_start <= pgt_buf_tp", 18, "unknown variable 'pgt_buf_tp' (known: pfn, pgt_buf_start"),
        ("pgt_buf_start <= pgt_buf_tp", 18, "did you mean 'pgt_buf_top'?"),
        ("PFN_PHYS(pfn", 13, "expected ')' but found end of expression"),
        ("(pfn < 1", 9, "expected ')' but found end of expression"),
        ("pfn + 1", 1, "policy must be a boolean expression, got an integer"),
        ("pfn <", 6, "expected an operand but found end of expression"),
        ("pfn < )", 7, "expected an operand but found ')'"),
        ("pfn < 1 2", 9, "expected end of expression but found '2'"),
        ("pfn < 1)", 8, "expected end of expression but found ')'"),
        ("FOO(pfn) < 1", 1, "unknown function 'FOO'"),
        ("pfn(1) < 1", 1, "unknown function 'pfn'"),
        ("PFN_UP + 1 < 2", 8, "expected '(' after function 'PFN_UP' but found '+'"),
        ("pfn & 1", 5, "unexpected character '&' (use 'and')"),
        ("pfn = 1", 5, "unexpected character '='"),
        ("pfn / 2 < 1", 5, "unexpected character '/'"),
        ("pfn < 1 $", 9, "unexpected character '$'"),
        ("pfn < 12ab", 7, "invalid integer literal '12ab'"),
        ("pfn < 0x", 7, "invalid integer literal '0x'"),
        ("pfn < 1__0", 7, "invalid integer literal"),
        ("pfn < 0x1_0000_0000_0000_0000", 7, "does not fit in 64 bits"),
        ("ioremap + 1 < 2", 1, "left operand of '+' must be an integer, got a boolean"),
        ("pfn < ioremap", 7, "right operand of '<' must be an integer, got a boolean"),
        ("pfn and true", 1, "left operand of 'and' must be a boolean, got an integer"),
        ("true or pfn", 9, "right operand of 'or' must be a boolean, got an integer"),
        ("not pfn", 5, "operand of 'not' must be a boolean, got an integer"),
        ("PFN_PHYS(true) < 1", 10, "argument of PFN_PHYS() must be an integer, got a boolean"),
        ("and pfn", 1, "expected an operand but found 'and'"),
        ("-1 < pfn", 1, "expected an operand but found '-'"),
    ],
)
def test_errors(text: str, column: int, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.column == column, str(err)
    assert fragment in err.message
    assert str(err) == f"column {column}: {err.message}"


def test_parse_expr_allows_int_but_policy_does_not() -> None:
    assert parse_expr("pfn + 1") == BinOp("+", Var("pfn"), Num(1))
    with pytest.raises(PolicyError):
        parse_policy("pfn + 1")


def test_free_variables() -> None:
    e = parse_policy("pgt_buf_start <= pfn < PFN_DOWN(PFN_PHYS(pgt_buf_top)) and not ioremap")
    assert free_variables(e) == {"pgt_buf_start", "pfn", "pgt_buf_top", "ioremap"}
    assert free_variables(parse_expr("PAGE_SIZE + 1")) == frozenset()


def test_unparse_examples() -> None:
    for text in [
        "pgt_buf_start <= pfn < pgt_buf_top",
        "(pfn - 1) * 2",
        "pfn - (1 - 2)",
        "not (ioremap and true)",
        "(true or false) and not not ioremap",
        "true or (false or true)",
        "1 << (2 << 3)",
        "PFN_PHYS(pfn + 1) >= PFN_UP(0x1000)",
    ]:
        e = parse_expr(text)
        assert parse_expr(unparse(e)) == e, unparse(e)
    assert unparse(parse_expr("((pfn))")) == "pfn"
    assert unparse(parse_expr("(pfn - 1) * 2")) == "(pfn - 1) * 2"


def test_evaluate_errors() -> None:
    with pytest.raises(ValueError, match="pfn"):
        evaluate(parse_expr("pfn + 1"), {})
    with pytest.raises(TypeError):
        evaluate(parse_expr("pfn + 1"), {"pfn": True})
    with pytest.raises(ValueError, match="not in params"):
        to_function(parse_expr("pfn + 1"), ["pgt_buf_end"])
    with pytest.raises(TypeError):
        to_function(parse_expr("pfn + 1"), ["pfn"])(1, 2)


def test_to_function_and_z3_examples() -> None:
    e = parse_policy("pgt_buf_start <= pfn < pgt_buf_top and not ioremap")
    f = to_function(e, PARAMS)
    assert f(5, 2, 0, 9, False) is True
    assert f(5, 2, 0, 9, True) is False
    assert f(9, 2, 0, 9, False) is False
    # to_z3 with symbolic variables: prove the range check matches its unchained form.
    syms = {n: z3.BitVec(n, 64) for n in INT_VARS} | {"ioremap": z3.Bool("ioremap")}
    unchained = parse_policy("pgt_buf_start <= pfn and pfn < pgt_buf_top and not ioremap")
    s = z3.Solver()
    s.add(to_z3(e, syms) != to_z3(unchained, syms))
    assert s.check() == z3.unsat
    # Unsigned: pfn >= 0 is valid, pgt_buf_end - 1 < pgt_buf_end is not (end = 0).
    s = z3.Solver()
    s.add(z3.Not(to_z3(parse_policy("pgt_buf_end - 1 < pgt_buf_end"), syms)))
    assert s.check() == z3.sat
    assert s.model().eval(syms["pgt_buf_end"]).as_long() == 0


# --------------------------------------------------------------------------- property tests

any_exprs = policy_exprs()
envs = policy_envs()

_settings = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _z3_value(expr: Expr, env: dict[str, int | bool]) -> int | bool:
    consts = {n: (z3.BoolVal(v) if isinstance(v, bool) else z3.BitVecVal(v, 64)) for n, v in env.items()}
    t = z3.simplify(to_z3(expr, consts))
    if z3.is_bool(t):
        assert z3.is_true(t) or z3.is_false(t), t
        return z3.is_true(t)
    assert z3.is_bv_value(t), t
    return t.as_long()


@_settings
@given(any_exprs, envs)
def test_evaluate_function_z3_agree(expr: Expr, env: dict[str, int | bool]) -> None:
    expected = evaluate(expr, env)
    got = to_function(expr, PARAMS)(*(env[p] for p in PARAMS))
    assert got == expected and type(got) is type(expected)
    if isinstance(expected, int) and not isinstance(expected, bool):
        assert 0 <= expected <= MASK
    assert _z3_value(expr, env) == expected


@_settings
@given(any_exprs)
def test_unparse_roundtrip(expr: Expr) -> None:
    text = unparse(expr)
    assert parse_expr(text) == expr
    if isinstance(expr, (Compare, And, Or, Not, Bool)) or expr == Var("ioremap"):
        assert parse_policy(text) == expr


@_settings
@given(st.text(alphabet="pfn_gtbusaroiex0123456789 <=>!+-*()&", max_size=30))
def test_parser_never_crashes(text: str) -> None:
    try:
        e = parse_expr(text)
    except PolicyError as err:
        assert 1 <= err.column <= len(text) + 1
    else:
        assert parse_expr(unparse(e)) == e


# --------------------------------------------------------------------------- benchmark


def test_to_function_speed() -> None:
    e = parse_policy("pgt_buf_start <= pfn < pgt_buf_top and not ioremap or PFN_PHYS(pfn) >= 0x100000")
    f = to_function(e, PARAMS)
    n = 100_000
    args = [(i, 100, 200, 300, bool(i & 1)) for i in range(1000)]
    t0 = time.perf_counter_ns()
    for _ in range(n // len(args)):
        for a in args:
            f(*a)
    per_call = (time.perf_counter_ns() - t0) / n
    t0 = time.perf_counter_ns()
    for a in args[:200]:
        evaluate(e, dict(zip(PARAMS, a, strict=True)))
    per_eval = (time.perf_counter_ns() - t0) / 200
    print(f"\nto_function: {per_call:.0f} ns/call; evaluate: {per_eval:.0f} ns/call")
    assert per_call < 20_000
