"""`xenpin equiv`: two kernel variants leave the same mappings and reservations for every configuration, or a
distinguishing configuration, replayed in the boot walk for both variants.

The comparison covers what the properties are about: for every page of either variant's buffers, whether its
direct-map PTE ends up read-only, and whether it ends up reserved.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from xenpin.linux.boot import BootResult, boot
from xenpin.linux.variant import KernelVariant
from xenpin.symbolic.minimise import lexicographic_min
from xenpin.symbolic.obligations import Equivalence, build, build_equiv
from xenpin.symbolic.prove import (
    NATIVE_PARAMS,
    REPLAY_LIMIT_BYTES,
    XEN_PARAMS,
    Witness,
    defaults,
    prove_lemmas,
    unproved_lemmas,
)
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S, SolverAnswer, check
from xenpin.symbolic.walk import c


@dataclass
class EquivResult:
    a: KernelVariant
    b: KernelVariant
    verdict: str  # equivalent | different | unknown
    mem_bytes: int | None = None
    call: int | None = None
    pfn: int | None = None
    detail: str = ""
    replay_a: BootResult | None = None
    replay_b: BootResult | None = None
    witness: Witness | None = None


def compare(
    a: KernelVariant, b: KernelVariant, *, rlimit: int = DEFAULT_RLIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
) -> EquivResult:
    """`equivalent` only from `unsat` in both calls (and proved lemmas, and, where call 1's placement rests on
    call 0's reservation, `unsat` of both variants' obligations for it); a difference is minimised (smallest
    memory, then lowest pfn) and replayed for both variants."""
    limits = {"rlimit": rlimit, "timeout_s": timeout_s}
    unknown = []
    refs = set()
    premises = set()
    eqs: list[Equivalence] = []
    for call in (0, 1):
        eq = build_equiv(a, b, call)
        if eq is None:
            return EquivResult(a, b, "unknown", detail="their walks differ in shape (placement, layout code):"
                               " the closed form compares variants that differ in their policies only")  # fmt: skip
        eqs.append(eq)
    for call, eq in enumerate(eqs):
        refs.update(h.ref for h in eq.hypotheses)
        premises.update(eq.rests_on)
        answer = check(eq.formula, **limits)
        if answer.status == "unknown":
            unknown.append(f"call {call}: {answer.reason}")
        elif answer.status == "sat":
            return _distinguish(a, b, list(enumerate(eqs))[call:], answer.model, limits)
    for variant in (a, b):
        for prop, call in sorted(premises):
            ob = build(variant, prop, call)
            refs.update(ob.lemmas)
            status = check(ob.formula(), **limits).status
            if status != "unsat":
                unknown.append(
                    f"call 1's buffer goes below call 0's reservation, taken to be [pgt_buf_start, pgt_buf_end);"
                    f" {variant.name} {'violates' if status == 'sat' else 'may violate'} {prop} in call {call}"
                )
    unknown += unproved_lemmas(prove_lemmas(sorted(refs), "z3", limits))  # `equivalent` rests on them
    if unknown:
        return EquivResult(a, b, "unknown", detail="; ".join(unknown))
    return EquivResult(a, b, "equivalent")


def _least(eqs: list[tuple[int, Equivalence]], model: z3.ModelRef, limits: dict):
    """The least distinguishing machine over the calls `eqs` (the first satisfiable, `model` one of its
    models), then the lowest page: with the default kernel, ramdisk and slack if some call has one there (as
    `prove` chooses its witnesses), else over every machine of the domain."""
    for usual in (True, False):
        best = None
        cut_short = False
        for i, (call, eq) in enumerate(eqs):
            p = eq.terms.params
            names = XEN_PARAMS if eq.terms.shape.platform == "xen" else NATIVE_PARAMS
            query = z3.And(eq.formula, defaults(eq) if usual else True)
            if best is not None:
                query = z3.And(query, z3.ULT(eq.terms.size, c(best[2].values[0])))
            given = i == 0 and not usual  # the model the caller found answers this query
            answer = SolverAnswer("sat", model, 0.0) if given else check(query, **limits)
            if answer.status == "sat":
                terms = [*(getattr(p, n) for n in names), eq.pfn]
                best = (call, eq, lexicographic_min(query, terms, answer.model, **limits), names)
            elif answer.status == "unknown":
                cut_short = True
        if best is not None:
            return (*best, cut_short)
    raise AssertionError("the first equivalence query was satisfiable")  # pragma: no cover


def _distinguish(
    a: KernelVariant, b: KernelVariant, eqs: list[tuple[int, Equivalence]], model: z3.ModelRef, limits: dict
) -> EquivResult:
    call, eq, least, names, cut_short = _least(eqs, model, limits)
    *values, pfn = least.values
    minimal = least.minimal and not cut_short
    witness = Witness(call, tuple(zip(names, values, strict=True)), pfn, None, minimal)

    def holds(term: z3.BoolRef) -> bool:
        return z3.is_true(least.model.eval(term, model_completion=True))

    what = []
    if holds(eq.ro_a) != holds(eq.ro_b):
        what.append(f"read-only in {a.name if holds(eq.ro_a) else b.name} only")
    if holds(eq.reserved_a) != holds(eq.reserved_b):
        what.append(f"reserved in {a.name if holds(eq.reserved_a) else b.name} only")
    res = EquivResult(a, b, "different", witness.mem_bytes, call, pfn, "; ".join(what), witness=witness)
    if not minimal:
        res.detail += " (minimisation stopped early: perhaps not the smallest)"
    if res.mem_bytes > REPLAY_LIMIT_BYTES:
        res.verdict = "unknown"
        res.detail += f" (more memory than the replay limit {REPLAY_LIMIT_BYTES:#x}: not confirmed)"
        return res
    res.replay_a, res.replay_b = boot(a, witness.config()), boot(b, witness.config())
    if _observed(res.replay_a, pfn) == _observed(res.replay_b, pfn):
        res.verdict = "unknown"
        res.detail += " (the boot walk shows no difference at this page: not confirmed)"
    return res


def _observed(result: BootResult, pfn: int) -> tuple[object, ...]:
    """What the boot walk left for `pfn`: (RW bit of its direct-map PTE or None, reserved)."""
    return result.final_pages.get(pfn, (None, False))


__all__ = ["EquivResult", "compare"]
