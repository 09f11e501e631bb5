"""Mutation testing of the prover against the boot walk: policy and placement mutants of the shipped variants,
each proved (`xenpin.symbolic.prove.prove_property`) and booted at the witness and at random sizes; the classes
must agree:
- `proved` => no boot at the sampled sizes of the proof's domain violates the property;
- `counterexample` => booting the witness (a boot of its own, not the prover's replay) violates it.
Any other verdict (`unknown`, and a `vacuous` one however it is spelled) makes no claim, and is not checked.

Policy mutants are single-point changes of a shipped `readonly` / `reserve` / `writable` rule: a comparison
flipped (`<` / `<=`, `>` / `>=`, `==` / `!=`), a constant changed by +-1, a clause dropped from `and` / `or`, `and`
and `or` swapped, a negation dropped, a buffer variable swapped for another (`pgt_buf_end` for `pgt_buf_top`,
...), a `PFN_PHYS` dropped. Only the rules that act are mutated: `readonly` on Xen, `writable` where the reserve
step (or 2.6.39-rc6's deferred one) applies it. Placement mutants give a Xen variant another release's
`find_early_table_space` (2.6.37, 2.6.39-rc1, 3.1: below max_pfn_mapped, at the top of the range, below the
kernel). Under the `ci` profile the examples are derandomized and few, on the faster properties; `XENPIN_SLOW=1`
runs many, on every property.
"""

from __future__ import annotations

import dataclasses
import os

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from symbolic_cases import BUFFERED_XEN, NATIVE, VARIANTS, skip_unless_slow, slow

from xenpin.linux.boot import boot
from xenpin.linux.layout import BootConfig
from xenpin.linux.policy import (
    And,
    BinOp,
    Bool,
    Call,
    Compare,
    Expr,
    Not,
    Num,
    Or,
    PolicyError,
    Var,
    parse_policy,
    unparse,
)
from xenpin.linux.variant import PROPERTIES, READONLY_VARS, KernelVariant
from xenpin.strategies import mutate
from xenpin.symbolic import closed_form as cf
from xenpin.symbolic.form import DOMAIN_MIN_PFN
from xenpin.symbolic.prove import prove_property

SLOW = os.environ.get("XENPIN_SLOW") == "1"
FAST_PROPERTIES = ("alias_writable", "spare_freed", "live_reserved", "buffer_fits")
FLIP = {"<": ("<=",), "<=": ("<",), ">": (">=",), ">=": (">",), "==": ("!=",), "!=": ("==",)}
BUFFER_VARS = ("pgt_buf_start", "pgt_buf_end", "pgt_buf_top")
PLACEMENTS = ("2.6.37", "2.6.39-rc1", "3.1")
MAX_RANDOM_PFN = (300 << 20) >> 12


def point_mutations(e: Expr) -> list[Expr]:
    """Every single-point mutant of `e` (module docstring), outermost first."""
    match e:
        case Num(value):
            return [Num(value + 1)] + ([Num(value - 1)] if value > 0 else [])
        case Var(name) if name in BUFFER_VARS:
            return [Var(other) for other in BUFFER_VARS if other != name]
        case Bool(value):
            return [Bool(not value)]
        case Call(func, arg):
            return [arg] + [Call(func, m) for m in point_mutations(arg)]
        case BinOp(op, left, right):
            out: list[Expr] = [BinOp({"+": "-", "-": "+"}[op], left, right)] if op in "+-" else []
            out += [BinOp(op, m, right) for m in point_mutations(left)]
            return out + [BinOp(op, left, m) for m in point_mutations(right)]
        case Compare(ops, operands):
            out = [
                Compare((*ops[:i], alt, *ops[i + 1 :]), operands)
                for i, op in enumerate(ops)
                for alt in FLIP[op]
            ]
            for i, operand in enumerate(operands):
                out += [
                    Compare(ops, (*operands[:i], m, *operands[i + 1 :])) for m in point_mutations(operand)
                ]
            return out
        case And(left, right) | Or(left, right):
            same, swapped = type(e), Or if isinstance(e, And) else And
            out = [left, right, swapped(left, right)]
            out += [same(m, right) for m in point_mutations(left)]
            return out + [same(left, m) for m in point_mutations(right)]
        case Not(operand):
            return [operand] + [Not(m) for m in point_mutations(operand)]
    return []


def acting_policies(v: KernelVariant) -> tuple[str, ...]:
    """The policies whose mutants can change what the boot does."""
    out = ["reserve"]
    if v.xen:
        out.append("readonly")
        if v.code["pagetable_reserve"] in ("2.6.39", "inline", "2.6.39-rc6"):
            out.append("writable")
    return tuple(out)


def placement_mutant(v: KernelVariant, search: str) -> KernelVariant:
    """`v` with another release's `find_early_table_space` (and so another placement)."""
    code = {**v.code, "find_early_table_space": search}
    return dataclasses.replace(v, name=f"{v.name}@{search}", code=code)


@st.composite
def policy_mutants(draw: st.DrawFn) -> KernelVariant:
    base = VARIANTS[draw(st.sampled_from(BUFFERED_XEN + NATIVE))]
    which = draw(st.sampled_from(acting_policies(base)))
    candidates = point_mutations(getattr(base, which))
    assume(candidates)
    text = unparse(draw(st.sampled_from(candidates)))
    try:
        return mutate(base, **{which: text})
    except PolicyError:  # ill-typed after the change
        assume(False)
        raise  # pragma: no cover


@st.composite
def placement_mutants(draw: st.DrawFn) -> KernelVariant:
    base = VARIANTS[draw(st.sampled_from(BUFFERED_XEN))]
    search = draw(st.sampled_from([s for s in PLACEMENTS if s != base.code["find_early_table_space"]]))
    return placement_mutant(base, search)


def domu(nr: int) -> BootConfig:
    return BootConfig(role="domU", mem_bytes=nr << 12)


def classes_agree(v: KernelVariant, prop: str, sizes: list[int]) -> str:
    """Prove (v, prop), boot it at the witness and at `sizes` (pages), assert the classes agree; the verdict."""
    verdict = prove_property(v, prop)
    claim = verdict.verdict if verdict.verdict in ("proved", "counterexample") else "none"
    if getattr(verdict, "vacuous", False):  # proved only because the situation cannot arise: no claim
        claim = "none"
    if claim == "counterexample":
        shown = boot(v, verdict.witness.config()).properties[prop]
        assert shown is False, (v.sources, v.code, prop, verdict.witness, verdict.notes)
    if claim == "proved":
        for nr in sizes:
            config = domu(nr) if v.xen else BootConfig(role="native", mem_bytes=nr << 12)
            if not cf.in_domain(v, config):
                continue
            shown = boot(v, config).properties[prop]
            assert shown is not False, (v.sources, v.code, prop, hex(nr << 12))
    return claim


SETTINGS = {
    "max_examples": 60 if SLOW else 5,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
sizes_strategy = st.lists(st.integers(DOMAIN_MIN_PFN, MAX_RANDOM_PFN), min_size=2, max_size=4 if SLOW else 2)


@settings(**SETTINGS)
@given(
    v=policy_mutants(),
    prop=st.sampled_from(PROPERTIES if SLOW else FAST_PROPERTIES),
    sizes=sizes_strategy,
)
def test_policy_mutants_proved_and_booted_agree(v: KernelVariant, prop: str, sizes: list[int]) -> None:
    claim = classes_agree(v, prop, [DOMAIN_MIN_PFN, *sizes])
    event(claim)  # --hypothesis-show-statistics: how many of each class
    assert claim in ("proved", "counterexample", "none")


@settings(**{**SETTINGS, "max_examples": 30 if SLOW else 2})
@given(
    v=placement_mutants(),
    prop=st.sampled_from(PROPERTIES if SLOW else ("spare_freed", "live_reserved")),
    sizes=sizes_strategy,
)
def test_placement_mutants_proved_and_booted_agree(v: KernelVariant, prop: str, sizes: list[int]) -> None:
    claim = classes_agree(v, prop, [DOMAIN_MIN_PFN, *sizes])
    event(claim)
    assert claim in ("proved", "counterexample", "none")


def test_the_mutation_operators_change_the_rule() -> None:
    """Each operator gives a different, well-typed rule: for 3.0's `readonly` a flipped bound, a dropped
    clause, `and`/`or` swapped, a buffer variable swapped and a constant changed are all among its mutants."""
    rule = VARIANTS["3.0"].readonly
    mutants = point_mutations(rule)
    assert rule not in mutants
    for text in (
        "(not ioremap and pgt_buf_start <= pfn <= pgt_buf_top) or (ioremap and pfn != pgt_buf_end - 1)",
        "not ioremap and pgt_buf_start <= pfn < pgt_buf_top",  # the ioremap clause dropped
        "(not ioremap or pgt_buf_start <= pfn < pgt_buf_top) or (ioremap and pfn != pgt_buf_end - 1)",
        "(not ioremap and pgt_buf_start <= pfn < pgt_buf_end) or (ioremap and pfn != pgt_buf_end - 1)",
        "(not ioremap and pgt_buf_start <= pfn < pgt_buf_top) or (ioremap and pfn != pgt_buf_end - 2)",
    ):
        assert parse_policy(text, READONLY_VARS) in mutants, text
    for m in mutants:
        mutate(VARIANTS["3.0"], readonly=unparse(m))  # parses back: well-typed


def test_a_known_mutant_is_a_confirmed_counterexample() -> None:
    """The hook without its RW half on 3.0 (a clause of `writable` dropped to `false`): a counterexample the
    boot confirms, so the campaign's `counterexample` branch is exercised whatever the examples drawn."""
    assert classes_agree(mutate(VARIANTS["3.0"], writable="false"), "spare_writable", []) == "counterexample"


def test_a_shipped_variant_is_proved_and_boots_clean() -> None:
    assert classes_agree(VARIANTS["3.1"], "spare_freed", [DOMAIN_MIN_PFN, 0x9000, MAX_RANDOM_PFN]) == "proved"


@slow
@skip_unless_slow
def test_every_placement_mutant_agrees() -> None:
    for name in BUFFERED_XEN:
        for search in PLACEMENTS:
            if search != VARIANTS[name].code["find_early_table_space"]:
                v = placement_mutant(VARIANTS[name], search)
                for prop in PROPERTIES:
                    classes_agree(v, prop, [DOMAIN_MIN_PFN, 0x9000, MAX_RANDOM_PFN])
