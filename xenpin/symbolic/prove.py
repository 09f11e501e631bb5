"""Verdicts: run each obligation, minimise a counterexample, replay it in the boot walk.

Per (variant, property): one obligation per `init_memory_mapping` call, each in a fresh solver. `proved` when
every call's obligation is `unsat`; `counterexample` when one is `sat` AND the minimised configuration, booted
in the executable model (`xenpin.linux.boot`), violates the same property; otherwise `unknown` (a limit hit,
or a replay that does not confirm: both sides are kept so the disagreement can be read). A non-vacuity check
per property says whether the situation the property talks about can arise at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import z3

from xenpin.linux.boot import BootResult, boot
from xenpin.linux.variant import PROPERTIES, KernelVariant
from xenpin.symbolic.obligations import build
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S, SolverAnswer, check, check_cvc5
from xenpin.symbolic.walk import DOMAIN_MIN_PFN, c

CALLS = (0, 1)
# The largest guest the replay boots (a 16 GiB boot takes ~4 GiB of RSS and ~20 s); a bigger counterexample is
# reported `unknown`, never shown unconfirmed.
REPLAY_LIMIT_BYTES = 32 << 30


@dataclass(frozen=True)
class Witness:
    """A minimised counterexample, in the domain's terms."""

    call: int
    max_pfn: int
    pfn: int
    alloc: int | None

    @property
    def mem_bytes(self) -> int:
        return self.max_pfn << 12


@dataclass
class Verdict:
    variant: KernelVariant
    prop: str
    verdict: str  # proved | counterexample | unknown
    seconds: float
    witness: Witness | None = None
    replay: BootResult | None = None
    vacuous: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def expected(self) -> str:
        return self.variant.expect[self.prop]

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.expected


def _value(model: z3.ModelRef, term: z3.BitVecRef) -> int:
    return model.eval(term, model_completion=True).as_long()


def _minimise(variant: KernelVariant, prop: str, call: int, first: z3.ModelRef, limits: dict) -> Witness:
    """Smallest memory size, then lowest pfn (and allocation), by bisection with fresh solvers."""
    ob = build(variant, prop, call)
    base = ob.formula()

    def smallest(term: z3.BitVecRef, fixed: list, lo: int, hi: int) -> int:
        # Invariant: a solution with term <= hi exists; find the least.
        while lo < hi:
            mid = (lo + hi) // 2
            if check(z3.And(base, *fixed, z3.ULE(term, c(mid))), **limits).status == "sat":
                hi = mid
            else:
                lo = mid + 1
        return hi

    max_pfn = smallest(ob.max_pfn, [], DOMAIN_MIN_PFN, _value(first, ob.max_pfn))
    fixed = [ob.max_pfn == c(max_pfn)]
    model = check(z3.And(base, *fixed), **limits).model
    pfn = smallest(ob.pfn, fixed, 0, _value(model, ob.pfn))
    fixed.append(ob.pfn == c(pfn))
    alloc = None
    if prop == "no_rw_alias":
        model = check(z3.And(base, *fixed), **limits).model
        alloc = _value(model, ob.alloc)
    return Witness(call, max_pfn, pfn, alloc)


SOLVERS = ("z3", "cvc5", "both")


def _decide(formula: z3.BoolRef, solver: str, limits: dict) -> SolverAnswer:
    """z3's answer (with its model), checked against cvc5's when asked; a disagreement is `unknown`."""
    answer = check(formula, **limits)
    if solver == "z3":
        return answer
    other = check_cvc5(formula, timeout_s=limits["timeout_s"])
    if solver == "cvc5" and answer.status == "unknown" and other.status == "unsat":
        return other
    if answer.status != other.status:
        return SolverAnswer(
            "unknown",
            None,
            answer.seconds + other.seconds,
            f"solvers disagree: z3 {answer.status}, cvc5 {other.status}",
        )
    return answer


def prove_property(
    variant: KernelVariant,
    prop: str,
    *,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    solver: str = "z3",
) -> Verdict:
    limits = {"rlimit": rlimit, "timeout_s": timeout_s}
    t = time.perf_counter()
    answers: list[tuple[int, SolverAnswer]] = []
    for call in CALLS:
        answer = _decide(build(variant, prop, call).formula(), solver, limits)
        answers.append((call, answer))
        if answer.status == "sat":
            break
    sat = [(call, a) for call, a in answers if a.status == "sat"]
    unknown = [(call, a) for call, a in answers if a.status == "unknown"]
    premise = any(
        check(z3.And(ob.domain, ob.premise), **limits).status == "sat"
        for ob in (build(variant, prop, call) for call in CALLS)
    )
    verdict = Verdict(variant, prop, "unknown", 0.0, vacuous=not premise)
    if sat:
        call, answer = sat[0]
        witness = _minimise(variant, prop, call, answer.model, limits)
        verdict.witness = witness
        if witness.mem_bytes > REPLAY_LIMIT_BYTES:
            verdict.notes.append(
                f"the smallest counterexample needs {witness.mem_bytes:#x} bytes, more than the replay limit"
                f" ({REPLAY_LIMIT_BYTES:#x}): not confirmed"
            )
            verdict.seconds = time.perf_counter() - t
            return verdict
        verdict.replay = boot(variant, witness.mem_bytes)
        replayed = verdict.replay.properties[prop]
        if replayed is False:
            verdict.verdict = "counterexample"
        else:
            shown = {True: "holds", None: "is not reached"}[replayed]
            verdict.notes.append(
                f"the solver's counterexample (call {call}, {witness.mem_bytes:#x} bytes, pfn {witness.pfn:#x})"
                f" does not replay: in the boot walk {prop} {shown} (outcome {verdict.replay.outcome})"
            )
    elif unknown:
        verdict.notes.extend(f"call {call}: solver gave up ({a.reason})" for call, a in unknown)
    else:
        verdict.verdict = "proved"
    verdict.seconds = time.perf_counter() - t
    return verdict


def prove_variant(variant: KernelVariant, **limits) -> list[Verdict]:
    return [prove_property(variant, prop, **limits) for prop in PROPERTIES]
