"""The compiled policies (xenpin.linux.policy: `to_function`, `CompiledPolicy.runs`, `specialize`) against the
reference interpreter `evaluate`, and Z3 (`to_z3`) against both, over random policies."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenpin.linux.policy import (
    MASK,
    MAX_DEPTH,
    BinOp,
    Call,
    Compare,
    CompiledPolicy,
    Expr,
    Num,
    Var,
    evaluate,
    free_variables,
    parse_policy,
    specialize,
    to_function,
    to_z3,
)
from xenpin.linux.variant import load_variant
from xenpin.shipped import KERNELS
from xenpin.strategies import bool_exprs, policy_envs, u64s

PARAMS = ("pfn", "pgt_buf_start", "pgt_buf_end", "pgt_buf_top", "ioremap")
OTHERS = PARAMS[1:]
_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# where the operands of shipped-shaped policies wrap: PFN_PHYS at 2**52, anything at 2**64, and small pfns
CORNERS = [0, 1, 4095, 4096, 2**32, 2**40, 2**52 - 3, 2**52, 2**63, MASK - 200, MASK - 3, MASK, MASK + 1]


def _starts() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(CORNERS), u64s(), st.integers(0, 2**20))


def _check_cover(runs: list, lo: int, hi: int) -> None:
    """The runs tile [lo, hi) in order, and are maximal: neighbours differ."""
    assert [r[0] for r in runs[:1]] == ([lo] if lo < hi else [])
    for (_, b, v), (c, _, w) in pairwise(runs):
        assert b == c and v != w
    assert all(a < b for a, b, _ in runs)
    assert (runs[-1][1] if runs else lo) == (hi if lo < hi else lo)


@_settings
@given(bool_exprs(), policy_envs(), _starts(), st.integers(0, 300))
def test_runs_agree_with_the_interpreter_at_every_pfn(
    expr: Expr, env: dict[str, int | bool], lo: int, width: int
) -> None:
    policy = CompiledPolicy(expr, PARAMS)
    others = [env[n] for n in OTHERS]
    runs = policy.runs(lo, lo + width, *others)
    _check_cover(runs, lo, lo + width)
    for a, b, value in runs:
        for p in range(a, b):
            assert value is evaluate(expr, {**env, "pfn": p}), (p, a, b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bool_exprs(), policy_envs(), _starts(), st.integers(300, 2**16), st.randoms(use_true_random=False))
def test_runs_over_wide_ranges_agree_at_their_ends_and_inside(
    expr: Expr, env: dict[str, int | bool], lo: int, width: int, rnd: random.Random
) -> None:
    policy = CompiledPolicy(expr, PARAMS)
    runs = policy.runs(lo, lo + width, *(env[n] for n in OTHERS))
    _check_cover(runs, lo, lo + width)
    for a, b, value in runs[:200]:
        for p in {a, b - 1, rnd.randrange(a, b)}:
            assert value is evaluate(expr, {**env, "pfn": p}), (p, a, b)


@_settings
@given(bool_exprs(), policy_envs(), st.sets(st.sampled_from(OTHERS)))
def test_specialize_keeps_the_value_and_drops_the_variables(
    expr: Expr, env: dict[str, int | bool], fixed: set[str]
) -> None:
    part = {n: env[n] for n in fixed}
    s = specialize(expr, part)
    assert not free_variables(s) & fixed
    assert free_variables(s) <= free_variables(expr)
    assert evaluate(s, env) is evaluate(expr, env)
    assert to_function(s, PARAMS)(*(env[n] for n in PARAMS)) is evaluate(expr, env)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bool_exprs(), st.sets(st.sampled_from(OTHERS)), policy_envs())
def test_specialize_is_the_same_term_to_z3(expr: Expr, fixed: set[str], env: dict[str, int | bool]) -> None:
    """Z3 sees a specialized policy as the policy with those variables fixed: no assignment tells them apart."""
    syms = {n: z3.BitVec(n, 64) for n in PARAMS[:4]} | {"ioremap": z3.Bool("ioremap")}
    part = {n: env[n] for n in fixed}
    pinned = {
        **syms,
        **{n: (z3.BoolVal(v) if type(v) is bool else z3.BitVecVal(v, 64)) for n, v in part.items()},
    }
    s = z3.Solver()
    s.set("timeout", 5000)
    s.add(to_z3(specialize(expr, part), syms) != to_z3(expr, pinned))
    assert s.check() in (z3.unsat, z3.unknown)  # unknown: a multiplication Z3 gave up on within 5 s


def test_runs_of_the_shipped_policies_are_a_handful_of_calls() -> None:
    """The shipped `readonly` policies over a 4 GiB guest's pfns, direct-map PTEs (ioremap false): a few runs,
    found with a few dozen evaluations instead of a million."""
    for path in sorted(KERNELS.glob("*.toml")):
        v = load_variant(path)
        policy = CompiledPolicy(specialize(v.readonly, {"ioremap": False}), PARAMS[:4])
        runs = policy.runs(0, 1 << 20, 0xFF000, 0xFF010, 0xFF800)
        assert len(runs) <= 3, (v.name, runs)
        for a, b, value in runs:
            env = {"pfn": a, "pgt_buf_start": 0xFF000, "pgt_buf_end": 0xFF010, "pgt_buf_top": 0xFF800}
            assert value is evaluate(v.readonly, {**env, "ioremap": False})
            assert value is evaluate(v.readonly, {**env, "pfn": b - 1, "ioremap": False})


def test_runs_split_where_an_operand_wraps_and_enumerate_where_pfn_is_on_both_sides() -> None:
    wraps = CompiledPolicy(parse_policy("PFN_PHYS(pfn) < 0x2000"), ["pfn"])
    assert wraps.runs(2**52 - 4, 2**52 + 4) == [(2**52 - 4, 2**52, False), (2**52, 2**52 + 2, True),
                                                (2**52 + 2, 2**52 + 4, False)]  # fmt: skip
    both = CompiledPolicy(parse_policy("pfn >> 1 << 1 == pfn or pfn < 3"), ["pfn"])
    assert both.runs(0, 8) == [(0, 3, True), (3, 4, False), (4, 5, True), (5, 6, False), (6, 7, True),
                               (7, 8, False)]  # fmt: skip
    assert both.runs(5, 5) == []
    with pytest.raises(TypeError, match="runs"):
        both.runs(0, 1, 2)
    with pytest.raises(ValueError, match="parameters"):
        CompiledPolicy(parse_policy("true"), ["pgt_buf_end"])


def test_a_policy_nested_deeper_than_python_parses_compiles() -> None:
    """The parser's MAX_DEPTH levels of PFN_UP compile as one expression; a tree built deeper than Python nests
    parentheses (200) is generated one assignment per node instead."""
    text = "PFN_UP(" * (MAX_DEPTH - 2) + "pfn" + ")" * (MAX_DEPTH - 2) + " == 1"
    deep: Expr = Var("pfn")
    for _ in range(150):
        deep = Call("PFN_UP", BinOp("+", deep, Num(4096)))
    for expr in (parse_policy(text), Compare(("==",), (deep, Num(151)))):
        f = to_function(expr, ["pfn"])
        for pfn in (0, 1, 4096, MASK):
            assert f(pfn) is evaluate(expr, {"pfn": pfn})
