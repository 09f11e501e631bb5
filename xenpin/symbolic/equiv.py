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
from xenpin.symbolic.obligations import Equivalence, build_equiv
from xenpin.symbolic.prove import (
    NATIVE_PARAMS,
    REPLAY_LIMIT_BYTES,
    XEN_PARAMS,
    Witness,
    prove_lemmas,
    unproved_lemmas,
)
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S, check


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
    """`equivalent` only from `unsat` in both calls (and proved lemmas); a difference is minimised (smallest
    memory, then lowest pfn) and replayed for both variants."""
    limits = {"rlimit": rlimit, "timeout_s": timeout_s}
    unknown = []
    refs = set()
    for call in (0, 1):
        eq = build_equiv(a, b, call)
        if eq is None:
            return EquivResult(a, b, "unknown", detail="their walks differ in shape (placement, layout code):"
                               " the closed form compares variants that differ in their policies only")  # fmt: skip
        refs.update(h.ref for h in eq.hypotheses)
        answer = check(eq.formula, **limits)
        if answer.status == "unknown":
            unknown.append(f"call {call}: {answer.reason}")
        elif answer.status == "sat":
            return _distinguish(a, b, call, eq, answer.model, limits)
    unknown += unproved_lemmas(prove_lemmas(sorted(refs), "z3", limits))  # `equivalent` rests on them
    if unknown:
        return EquivResult(a, b, "unknown", detail="; ".join(unknown))
    return EquivResult(a, b, "equivalent")


def _distinguish(
    a: KernelVariant, b: KernelVariant, call: int, eq: Equivalence, model: z3.ModelRef, limits: dict
) -> EquivResult:
    p = eq.terms.params
    names = XEN_PARAMS if eq.terms.shape.platform == "xen" else NATIVE_PARAMS
    machine = [getattr(p, n) for n in names]
    least = lexicographic_min(eq.formula, [*machine, eq.pfn], model, **limits)
    *values, pfn = least.values
    witness = Witness(call, tuple(zip(names, values, strict=True)), pfn, None, least.minimal)

    def holds(term: z3.BoolRef) -> bool:
        return z3.is_true(least.model.eval(term, model_completion=True))

    what = []
    if holds(eq.ro_a) != holds(eq.ro_b):
        what.append(f"read-only in {a.name if holds(eq.ro_a) else b.name} only")
    if holds(eq.reserved_a) != holds(eq.reserved_b):
        what.append(f"reserved in {a.name if holds(eq.reserved_a) else b.name} only")
    res = EquivResult(a, b, "different", witness.mem_bytes, call, pfn, "; ".join(what), witness=witness)
    if not least.minimal:
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
