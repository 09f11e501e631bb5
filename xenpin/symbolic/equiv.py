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
from xenpin.symbolic.obligations import build_equiv
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


def compare(
    a: KernelVariant, b: KernelVariant, *, rlimit: int = DEFAULT_RLIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
) -> EquivResult:
    unknown = []
    for call in (0, 1):
        eq = build_equiv(a, b, call)
        answer = check(eq.formula, rlimit=rlimit, timeout_s=timeout_s)
        if answer.status == "unknown":
            unknown.append(f"call {call}: {answer.reason}")
            continue
        if answer.status == "sat":
            model = answer.model

            def value(term: z3.ExprRef, model: z3.ModelRef = model) -> z3.ExprRef:
                return model.eval(term, model_completion=True)

            max_pfn, pfn = value(eq.max_pfn).as_long(), value(eq.pfn).as_long()
            what = []
            if z3.is_true(value(eq.ro_a)) != z3.is_true(value(eq.ro_b)):
                what.append(f"read-only in {a.name if z3.is_true(value(eq.ro_a)) else b.name} only")
            if z3.is_true(value(eq.reserved_a)) != z3.is_true(value(eq.reserved_b)):
                what.append(f"reserved in {a.name if z3.is_true(value(eq.reserved_a)) else b.name} only")
            res = EquivResult(a, b, "different", max_pfn << 12, call, pfn, "; ".join(what))
            res.replay_a, res.replay_b = boot(a, max_pfn << 12), boot(b, max_pfn << 12)
            if _observed(res.replay_a, pfn) == _observed(res.replay_b, pfn):
                res.verdict = "unknown"
                res.detail += " (the boot walk shows no difference at this page: not confirmed)"
            return res
    if unknown:
        return EquivResult(a, b, "unknown", detail="; ".join(unknown))
    return EquivResult(a, b, "equivalent")


def _observed(result: BootResult, pfn: int) -> tuple[object, ...]:
    """What the boot walk left for `pfn`: (RW bit of its direct-map PTE or None, reserved)."""
    return result.final_pages.get(pfn, (None, False))


__all__ = ["EquivResult", "compare"]
