"""Refinement: on random reachable states of a small bound, the symbolic step of `xenpin.symbolic.pv` gives the
executable validator's answer, errno and resulting state, and the symbolic invariants agree with
`check_invariants`. The states are reached from a fresh guest by random hypercalls, so both sides start equal."""

from __future__ import annotations

import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from xenpin.symbolic.pv import invariants as inv
from xenpin.symbolic.pv.operations import Operation
from xenpin.symbolic.pv.state import Bound, c, constant, evaluate, of_hypervisor
from xenpin.symbolic.pv.step import ERRNO_NAME
from xenpin.symbolic.pv.witness import Call, fresh_hypervisor
from xenpin.xen.flags import NX, PSE, RW, US, Entry, P
from xenpin.xen.hypervisor import INVALID_MFN
from xenpin.xen.invariants import check_invariants
from xenpin.xen.rules import RULES

BOUND = Bound(4, (0, 1))
# an L4 -> L3 -> L2 -> L1 chain, pinned and installed: most update_va_mapping calls need one to succeed
TREE = [
    Call("write", {"mfn": 0, "slot": 0, "entry": Entry(1, P | RW)}),
    Call("write", {"mfn": 1, "slot": 0, "entry": Entry(2, P | RW)}),
    Call("write", {"mfn": 2, "slot": 0, "entry": Entry(3, P | RW)}),
    Call("pin", {"level": 4, "mfn": 0}),
    Call("new_baseptr", {"mfn": 0}),
]
EMPTY_MODEL = (lambda s: (s.check(), s.model())[1])(z3.Solver())
FLAGS = (P, P | RW, P | PSE, P | RW | PSE, P | US, P | RW | NX)


def entries():
    # frames of the model, an mfn with no page, and INVALID_MFN
    mfns = st.integers(0, BOUND.foreign) | st.sampled_from((BOUND.foreign + 1, INVALID_MFN))
    present = st.builds(Entry, mfns, st.sampled_from(FLAGS))
    return st.none() | present


def calls():
    mfn = st.integers(0, BOUND.foreign)
    slot = st.sampled_from(BOUND.slots)
    va = st.builds(
        lambda l4, l3, l2, l1, high: (high << 48) | (l4 << 39) | (l3 << 30) | (l2 << 21) | (l1 << 12),
        *(st.sampled_from(BOUND.slots) for _ in range(4)),
        st.sampled_from((0, 0xFFFF, 0x8000)),
    )
    return st.one_of(
        st.builds(
            lambda op, m, s, e: Call(op, {"mfn": m, "slot": s, "entry": e}),
            st.sampled_from(("write", "mmu_update")),
            mfn,
            slot,
            entries(),
        ),
        st.builds(lambda v, e: Call("update_va_mapping", {"va": v, "entry": e}), va, entries()),
        st.builds(lambda lv, m: Call("pin", {"level": lv, "mfn": m}), st.integers(1, 4), mfn),
        st.builds(
            lambda op, m: Call(op, {"mfn": m}), st.sampled_from(("unpin", "new_baseptr", "set_gdt")), mfn
        ),
    )


def symbolic_call(call: Call) -> tuple[Operation, dict]:
    names = tuple(k for k in ("mfn", "va", "slot", "entry") if k in call.args)  # the order of the call
    op = Operation(call.op, call.op, names, level=call.args.get("level"))
    values = {}
    for k in names:
        v = call.args[k]
        values[k] = c(0 if v is None else v.intpte if isinstance(v, Entry) else v)
    return op, values


def value(t) -> int | bool:
    v = EMPTY_MODEL.eval(t, model_completion=True)
    return z3.is_true(v) if z3.is_bool(v) else v.as_long()


@settings(max_examples=int(__import__("os").environ.get("PV_EXAMPLES", 60)), deadline=None)
@given(st.sampled_from(sorted(RULES)), st.booleans(), st.lists(calls(), min_size=1, max_size=12))
def test_symbolic_step_refines_the_validator(rules_name, tree, sequence):
    hv = fresh_hypervisor(BOUND, RULES[rules_name])
    for call in (TREE if tree else []) + sequence:
        before = of_hypervisor(hv, BOUND)
        op, args = symbolic_call(call)
        out = op.run(constant(BOUND, before), args, RULES[rules_name], fold=True)
        result = call.apply(hv)
        if value(out.outside):
            continue  # beyond the unrolling: obligations prove no step from the invariants gets here
        assert value(out.accepted) == result.ok, (call, result)
        if not result.ok:
            assert ERRNO_NAME[value(out.errno)] == result.errno, (call, result)
        assert evaluate(out.state, EMPTY_MODEL) == of_hypervisor(hv, BOUND), (call, result)


@settings(max_examples=int(__import__("os").environ.get("PV_EXAMPLES", 60)), deadline=None)
@given(st.sampled_from(sorted(RULES)), st.lists(calls(), min_size=1, max_size=12))
def test_symbolic_invariants_agree_with_check_invariants(rules_name, sequence):
    rules = RULES[rules_name]
    hv = fresh_hypervisor(BOUND, rules)
    for call in sequence:
        call.apply(hv)
    state = constant(BOUND, of_hypervisor(hv, BOUND))
    violated = {v.invariant for v in check_invariants(hv)}
    for name in inv.CLAUSES:
        if name == "wellformed":
            assert value(inv.holds(name, state, rules)), "a reachable state is well formed"
            continue
        assert value(inv.holds(name, state, rules)) == (name not in violated), (name, violated)
