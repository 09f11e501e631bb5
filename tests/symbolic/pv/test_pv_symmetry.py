"""The reductions `verify-rules` proves with, checked: renaming the guest's frames (a permutation of 0 ..
frames-1) commutes with the symbolic step, keeps every invariant, renames each per-frame clause with its frame
and renames the frames an operation names -- the facts the symmetry-breaking constraint and the skipped clauses
of unnamed frames rest on (`obligations.reduced_clauses`); the step's counts in their low bits are flagged
`outside` where they would carry; and known holes (XSA-182, XSA-148, a mutant fast path) are still found with
the reductions on, as they are with them off."""

from __future__ import annotations

import dataclasses

import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from xenpin.symbolic.pv import invariants as inv
from xenpin.symbolic.pv.obligations import decide, op_facts
from xenpin.symbolic.pv.operations import OPERATIONS
from xenpin.symbolic.pv.state import MFN_MASK, Bound, Concrete, c, constant, evaluate, of_hypervisor
from xenpin.symbolic.pv.step import Run
from xenpin.symbolic.pv.witness import Call, fresh_hypervisor
from xenpin.xen.flags import PAGE_SHIFT, PSE, RW, Entry, P
from xenpin.xen.frame import FRESH_COUNT_INFO
from xenpin.xen.rules import MODERN, RULES, XEN_41

BOUND = Bound(4, (0,))  # one slot: the invariants of two-slot states cost seconds an example to build
EMPTY_MODEL = (lambda s: (s.check(), s.model())[1])(z3.Solver())
FLAGS = (P, P | RW, P | PSE, P | RW | PSE)


def value(t) -> int | bool:
    v = EMPTY_MODEL.eval(t, model_completion=True)
    return z3.is_true(v) if z3.is_bool(v) else v.as_long()


def renamed_mfn(perm: tuple[int, ...], mfn: int) -> int:
    return perm[mfn] if mfn < len(perm) else mfn


def renamed_entry(perm: tuple[int, ...], e: int) -> int:
    if not e & P:
        return e
    mfn = (e >> PAGE_SHIFT) & MFN_MASK
    return (e & ~(MFN_MASK << PAGE_SHIFT)) | (renamed_mfn(perm, mfn) << PAGE_SHIFT)


def renamed(perm: tuple[int, ...], s: Concrete) -> Concrete:
    n = len(perm)
    ci, ti, rows = list(s.count_info), list(s.type_info), list(s.entries)
    for m in range(n):
        ci[perm[m]], ti[perm[m]] = s.count_info[m], s.type_info[m]
        rows[perm[m]] = tuple(renamed_entry(perm, e) for e in s.entries[m])
    root = lambda m: None if m is None else renamed_mfn(perm, m)  # noqa: E731
    return Concrete(
        tuple(ci), tuple(ti), tuple(rows), root(s.baseptr), root(s.gdt), s.damage_type, s.damage_general
    )


def calls():
    mfn = st.integers(0, BOUND.foreign)
    slot = st.sampled_from(BOUND.slots)
    entry = st.none() | st.builds(Entry, st.integers(0, BOUND.foreign + 1), st.sampled_from(FLAGS))
    return st.one_of(
        st.builds(
            lambda op, m, s, e: Call(op, {"mfn": m, "slot": s, "entry": e}),
            st.sampled_from(("write", "mmu_update")),
            mfn,
            slot,
            entry,
        ),
        st.builds(lambda lv, m: Call("pin", {"level": lv, "mfn": m}), st.integers(1, 4), mfn),
        st.builds(
            lambda op, m: Call(op, {"mfn": m}), st.sampled_from(("unpin", "new_baseptr", "set_gdt")), mfn
        ),
    )


def arguments():
    slot = st.sampled_from(BOUND.slots)
    va = st.builds(lambda a, b, c_, d: (a << 39) | (b << 30) | (c_ << 21) | (d << 12), slot, slot, slot, slot)
    entry = st.just(0) | st.builds(
        lambda m, f: (m << PAGE_SHIFT) | f, st.integers(0, BOUND.foreign + 1), st.sampled_from(FLAGS)
    )
    return st.fixed_dictionaries(
        {"mfn": st.integers(0, BOUND.foreign + 1), "slot": slot, "entry": entry, "va": va}
    )


@settings(max_examples=int(__import__("os").environ.get("PV_EXAMPLES", 30)), deadline=None)
@given(
    st.sampled_from(sorted(RULES)),
    st.lists(calls(), max_size=10),
    st.permutations(range(BOUND.frames)),
    st.sampled_from(OPERATIONS),
    arguments(),
)
def test_renaming_frames_commutes_with_the_step_and_keeps_the_invariants(rules_name, sequence, perm, op, raw):
    rules, perm = RULES[rules_name], tuple(perm)
    hv = fresh_hypervisor(BOUND, rules)
    for call in sequence:
        call.apply(hv)
    before = of_hypervisor(hv, BOUND)
    s, ps = constant(BOUND, before), constant(BOUND, renamed(perm, before))
    args = {k: c(raw[k]) for k in op.args}
    pargs = {
        k: c(
            renamed_mfn(perm, raw[k])
            if k == "mfn"
            else renamed_entry(perm, raw[k])
            if k == "entry"
            else raw[k]
        )
        for k in op.args
    }
    # every invariant, clause by clause with the clause's frame renamed (so each invariant holds of both or
    # of neither)
    for name in inv.CLAUSES:
        mine = dict(inv.clauses(name, ps, rules))
        for clause, term in inv.clauses(name, s, rules):
            frame = inv.clause_frame(clause)
            other = clause if frame is None else inv.clause_for_frame(clause, renamed_mfn(perm, frame))
            assert value(term) == value(mine[other]), (name, clause, other)
    # the named frames are renamed with the state
    names = [value(t) for t in op.named_frames(s, args)]
    assert [value(t) for t in op.named_frames(ps, pargs)] == [renamed_mfn(perm, m) for m in names]
    # the step commutes with the renaming (except where it reached 4.1's put_superpage)
    out, pout = op.run(s, args, rules, fold=True), op.run(ps, pargs, rules, fold=True)
    if value(out.asymmetric):
        return
    assert value(out.accepted) == value(pout.accepted)
    assert value(out.outside) == value(pout.outside)
    if not value(out.accepted):
        assert value(out.errno) == value(pout.errno)
    assert renamed(perm, evaluate(out.state, EMPTY_MODEL)) == evaluate(pout.state, EMPTY_MODEL)


def test_a_count_that_would_carry_out_of_the_low_bits_is_outside():
    bound = Bound(1, (0,))
    top = (1 << bound.counter_bits) - 1
    state = Concrete(
        (FRESH_COUNT_INFO - 1 + top, FRESH_COUNT_INFO), (0, 0), ((0,),), None, None, False, False
    )
    run = Run(constant(bound, state), MODERN, fold=True)
    run.get_page(c(0))
    assert value(run.outside_bound)
    below = dataclasses.replace(state, count_info=(FRESH_COUNT_INFO - 2 + top, FRESH_COUNT_INFO))
    run = Run(constant(bound, below), MODERN, fold=True)
    run.get_page(c(0))
    assert not value(run.outside_bound)
    assert value(run.s.count_info[0]) == FRESH_COUNT_INFO - 1 + top


ONE, TWO = Bound(1, (0,)), Bound(2, (0,))


def both_ways(rules, op, invariant, bound):
    facts = op_facts(rules, op, bound)
    return (
        facts,
        decide(rules, op, invariant, facts, bound),
        decide(rules, op, invariant, facts, bound, symmetry=False),
    )


def test_known_holes_are_found_with_the_reductions_on():
    mutant = dataclasses.replace(MODERN, name="modern-41-fastpath", upper_fastpath_compare=P)
    xsa182 = dataclasses.replace(XEN_41, name="xen-4.1+xsa182", upper_fastpath_compare=P | RW)
    for rules, op, bound in (
        (mutant, "mmu_update[l4]", ONE),  # the mutant fast path
        ("xen-4.1", "mmu_update[l4]", ONE),  # XSA-182
        (xsa182, "mmu_update[l2]", TWO),  # XSA-148, once XSA-182 is fixed
    ):
        facts, reduced, plain = both_ways(rules, op, "closure", bound)
        assert facts.symmetric == "unsat" and facts.inside_bound == "unsat", facts
        assert reduced.verdict == plain.verdict == "counterexample", (reduced.note, plain.note)
        assert reduced.steps[-1] == plain.steps[-1]


def test_modern_is_proved_with_the_reductions_on_and_off():
    _facts, reduced, plain = both_ways("modern", "mmu_update[l2]", "general_count", TWO)
    assert reduced.verdict == plain.verdict == "proved"
    assert "named frames in order" in reduced.note and "named frames" not in plain.note
