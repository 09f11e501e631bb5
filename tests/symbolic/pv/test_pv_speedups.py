"""What the speed-ups of `verify-rules` rest on, checked: the pipeline solver keeps the limits and answers as
Z3 does (a model of a `sat` answer satisfies the formula), the 64-bit words of a fresh state and the arguments
have variable bits exactly where wellformed and the precondition allow set bits (so shaping them leaves out no
state or argument), the constant-folding readers build the same formulas, and the matrix's row tasks give the
verdicts that deciding each obligation on its own gives."""

from __future__ import annotations

import z3

from xenpin.symbolic.pv import invariants as inv
from xenpin.symbolic.pv.matrix import verify
from xenpin.symbolic.pv.obligations import decide, encoding, op_facts
from xenpin.symbolic.pv.operations import operation
from xenpin.symbolic.pv.solve import check
from xenpin.symbolic.pv.state import ENTRY_BITS, Bound, SymState, c
from xenpin.symbolic.pv.step import conj, disj, entry_mfn, eq, has, implies, live_level, neg, type_count
from xenpin.xen.flags import RW, P
from xenpin.xen.frame import PGC_allocated, PGT_pinned, PGT_type_mask, PGT_validated
from xenpin.xen.rules import MODERN

BOUND = Bound(3, (0,))


def test_the_pipeline_answers_sat_with_a_model_unsat_and_keeps_the_limits():
    x, y = z3.BitVecs("x y", 64)
    formula = z3.And(x + y == 7, z3.ULT(x, 3), y & 1 == 0)
    answer = check(formula)
    assert answer.status == "sat"
    assert z3.is_true(answer.model.eval(formula, model_completion=True))
    assert check(z3.And(formula, y & 1 == 1)).status == "unsat"
    enc = encoding(MODERN, "new_baseptr", BOUND)
    hard = z3.And(enc.premise, z3.Not(inv.holds("general_count", enc.outcome.state, enc.rules)))
    limited = check(hard, rlimit=1000)
    assert limited.status == "unknown" and "resource limit" in limited.reason


def free_state(bound: Bound) -> SymState:
    """A state whose count and type words are any 64-bit values (what `SymState.fresh` narrows)."""
    s = SymState.fresh(bound, "any")
    n = bound.frames
    return s.with_(
        count_info=(*(z3.BitVec(f"any.ci{m}", 64) for m in range(n)), s.count_info[n]),
        type_info=(*(z3.BitVec(f"any.ti{m}", 64) for m in range(n)), s.type_info[n]),
    )


def test_a_wellformed_state_sets_no_bit_a_fresh_state_has_constant():
    s = free_state(BOUND)
    count = (1 << BOUND.counter_bits) - 1
    outside = [ci & ~(PGC_allocated | count) != 0 for ci in s.count_info[: BOUND.frames]]
    outside += [
        ti & ~(PGT_type_mask | PGT_pinned | PGT_validated | count) != 0 for ti in s.type_info[: BOUND.frames]
    ]
    assert check(inv.holds("wellformed", s, MODERN)).status == "sat"
    assert check(z3.And(inv.holds("wellformed", s, MODERN), z3.Or(outside))).status == "unsat"
    # and a fresh state still has every count wellformed allows, up to its limit
    s2 = SymState.fresh(BOUND)
    most = (1 << inv.count_bits(s2)) - 1
    for word in (s2.count_info[0], s2.type_info[0]):
        assert check(z3.And(inv.holds("wellformed", s2, MODERN), word & most == most)).status == "sat"


def test_arguments_that_meet_the_precondition_set_no_bit_the_shaped_ones_have_constant():
    s = SymState.fresh(BOUND)
    op = operation("mmu_update[other]")
    wide = {name: z3.BitVec(f"wide.{name}", 64) for name in op.args}
    shaped = op.symbolic_args(BOUND)
    for name in op.args:
        free = 0
        for bit in range(64):  # the bits of the shaped term that are variables
            if z3.is_bv_value(z3.simplify(z3.Extract(bit, bit, shaped[name]))):
                continue
            free |= 1 << bit
        escaped = wide[name] & ~free != 0
        assert check(z3.And(op.precondition(s, wide), escaped)).status == "unsat", name
    assert check(z3.And(op.precondition(s, shaped), shaped["mfn"] == BOUND.frames)).status == "sat"
    assert check(z3.And(op.precondition(s, shaped), shaped["entry"] == ENTRY_BITS)).status == "sat"


def test_the_folding_readers_build_the_same_formulas():
    e, ti = z3.BitVecs("e ti", 64)
    for value in (0, P | RW | (3 << 12), 0x8000000000000000 | P | (2 << 12)):
        assert check(entry_mfn(c(value)) != entry_mfn(e)).status == "sat"  # the symbolic one is not constant
        assert check(z3.And(e == value, entry_mfn(c(value)) != entry_mfn(e))).status == "unsat"
        assert check(z3.And(e == value, has(c(value), RW) != has(e, RW))).status == "unsat"
    for value in (0, (1 << 60) | PGT_validated | 1, (4 << 60) | PGT_validated | PGT_pinned | 2, 2 << 60):
        assert check(z3.And(ti == value, live_level(c(value)) != live_level(ti))).status == "unsat"
        assert check(z3.And(ti == value, type_count(c(value)) != type_count(ti))).status == "unsat"
    a, b = z3.Bools("a b")
    t, f = z3.BoolVal(True), z3.BoolVal(False)
    for args in ((a, t), (a, f), (t, t), (a, b), ()):
        assert check(conj(*args) != z3.And(*args)).status == "unsat", args
        assert check(disj(*args) != z3.Or(*args)).status == "unsat", args
    for x in (a, t, f):
        assert check(neg(x) != z3.Not(x)).status == "unsat"
        for y in (b, t, f):
            assert check(implies(x, y) != z3.Implies(x, y)).status == "unsat"
    assert z3.is_true(eq(c(5), 5)) and z3.is_false(eq(c(5), c(4)))
    assert check(eq(e, 5) != (e == 5)).status == "unsat"


def test_row_tasks_give_the_verdicts_of_obligations_decided_one_by_one():
    ops, invariants = ["mmu_update[l2]", "pin[l2]"], ["closure", "type_count"]
    matrix = verify(["xen-4.1"], ops, invariants, bound=Bound(2, (0,)))
    alone = {}
    for op in ops:
        facts = op_facts("xen-4.1", op, Bound(2, (0,)))
        for i in invariants:
            alone[op, i] = decide("xen-4.1", op, i, facts, Bound(2, (0,))).verdict
    assert {(v.operation, v.invariant): v.verdict for v in matrix.verdicts} == alone
    assert alone["mmu_update[l2]", "closure"] == "counterexample"
