"""The whole operation x invariant matrix for some rule sets, on several cores.

Phase 1 runs what every verdict of a row rests on, one task each: the operation facts (`op_facts`: premise,
can succeed, can fail, inside the unrolling), the lemma that global safety follows from the premises, and each
invariant's non-vacuity witness. Phase 2 decides one task per (rule set, operation, invariant), handing each
the facts of its row. Workers are those of `xenpin.symbolic.batch` (spawned, SIGINT left to the parent, killed
with it); each builds the encodings it needs once. Results come back in matrix order whatever the workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import as_completed
from dataclasses import dataclass, replace

from xenpin.symbolic.batch import _spawning, worker_pool
from xenpin.symbolic.pv.invariants import PREMISES, STATE_INVARIANTS
from xenpin.symbolic.pv.obligations import (
    SAFETY_LEMMA,
    OpFacts,
    RuleVerdict,
    decide,
    invariant_witness,
    op_facts,
    safety_lemma,
)
from xenpin.symbolic.pv.operations import OPERATION_NAMES
from xenpin.symbolic.pv.state import DEFAULT_BOUND, Bound
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Matrix:
    bound: Bound
    facts: tuple[OpFacts, ...]
    lemmas: tuple[RuleVerdict, ...]  # the safety lemma per rule set
    witnesses: tuple[RuleVerdict, ...]  # per (rule set, invariant): a reachable state where it holds
    verdicts: tuple[RuleVerdict, ...]  # per (rule set, operation, invariant)


# The rows whose obligations take longest (validation and devalidation of whole trees), submitted first so that
# the workers do not end on them one at a time; the order changes no verdict.
SLOW_ROWS = ("mmu_update[l4]", "new_baseptr", "mmu_update[l3]", "mmu_update[l2]")


def _slow_first(row: tuple[str, str]) -> int:
    return SLOW_ROWS.index(row[1]) if row[1] in SLOW_ROWS else len(SLOW_ROWS)


def _fact_task(rules: str, op: str, bound: Bound, limits: dict) -> OpFacts:
    return op_facts(rules, op, bound, **limits)


def _lemma_task(rules: str, bound: Bound, limits: dict) -> RuleVerdict:
    return safety_lemma(rules, bound, **limits)


def _witness_task(rules: str, invariant: str, bound: Bound, limits: dict) -> RuleVerdict:
    return invariant_witness(rules, invariant, bound, **limits)


def _verdict_task(
    rules: str,
    op: str,
    invariant: str,
    facts: OpFacts,
    lemma: RuleVerdict,
    witness: RuleVerdict,
    bound: Bound,
    limits: dict,
    premises: tuple[RuleVerdict, ...] = (),
) -> RuleVerdict:
    """One obligation; global safety without a solver where the step keeps every premise (`premises`, the
    row's verdicts) and the lemma holds."""
    if (
        invariant == "global_safety"
        and lemma.verdict == "proved"
        and premises
        and all(p.verdict == "proved" for p in premises)
    ):
        names = ", ".join(p.invariant for p in premises)
        verdict = RuleVerdict(
            rules,
            op,
            invariant,
            "proved",
            0.0,
            str(bound),
            note=f"from this step's {names} verdicts and the lemma that {SAFETY_LEMMA}",
        )
    else:
        verdict = decide(rules, op, invariant, facts, bound, **limits)
    return qualify(verdict, lemma, witness)


def qualify(verdict: RuleVerdict, lemma: RuleVerdict, witness: RuleVerdict) -> RuleVerdict:
    """A `proved` verdict also needs its invariant witnessed (else `vacuous`) and, since global safety is not
    assumed before the step, the safety lemma proved (else `unknown`)."""
    if verdict.verdict != "proved":
        return verdict
    if witness.verdict != "proved":
        kind = "vacuous" if witness.verdict == "vacuous" else "unknown"
        return replace(
            verdict, verdict=kind, note=f"no reachable state witnesses {verdict.invariant}: {witness.note}"
        )
    if lemma.verdict != "proved":
        return replace(verdict, verdict="unknown", note=f"{SAFETY_LEMMA}: {lemma.verdict} ({lemma.note})")
    return verdict


def verify(
    rules: Iterable[str],
    operations: Iterable[str] = OPERATION_NAMES,
    invariants: Iterable[str] = STATE_INVARIANTS,
    *,
    bound: Bound = DEFAULT_BOUND,
    workers: int = 1,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_verdict: Callable[[RuleVerdict], None] | None = None,
) -> Matrix:
    rules, operations, invariants = list(rules), list(operations), list(invariants)
    limits = {"rlimit": rlimit, "timeout_s": timeout_s}
    report = on_verdict or (lambda verdict: None)
    rows = [(r, op) for r in rules for op in operations]
    # global safety last: where the step keeps every premise and the lemma holds, it follows without a solver
    first = [i for i in invariants if i != "global_safety"]
    last = [i for i in invariants if i == "global_safety"]
    pairs = [(r, i) for r in rules for i in invariants]
    done: dict[tuple[str, str, str], RuleVerdict] = {}

    def premises_of(r: str, op: str) -> tuple[RuleVerdict, ...]:
        got = tuple(done[r, op, p] for p in PREMISES if (r, op, p) in done)
        return got if len(got) == len(PREMISES) else ()

    if workers <= 1:
        facts = {row: _fact_task(*row, bound, limits) for row in rows}
        lemmas = {r: _lemma_task(r, bound, limits) for r in rules}
        witnesses = {p: _witness_task(*p, bound, limits) for p in pairs}
        for phase in (first, last):
            for r, op in rows:
                for i in phase:
                    v = _verdict_task(
                        r, op, i, facts[r, op], lemmas[r], witnesses[r, i], bound, limits, premises_of(r, op)
                    )
                    done[r, op, i] = v
                    report(v)
    else:
        with worker_pool(workers) as pool:
            with _spawning():
                f_fut = {
                    row: pool.submit(_fact_task, *row, bound, limits) for row in sorted(rows, key=_slow_first)
                }
                l_fut = {r: pool.submit(_lemma_task, r, bound, limits) for r in rules}
                w_fut = {p: pool.submit(_witness_task, *p, bound, limits) for p in pairs}
            facts = {k: f.result() for k, f in f_fut.items()}
            lemmas = {k: f.result() for k, f in l_fut.items()}
            witnesses = {k: f.result() for k, f in w_fut.items()}
            for phase in (first, last):
                with _spawning():
                    futures = {
                        pool.submit(
                            _verdict_task,
                            r,
                            op,
                            i,
                            facts[r, op],
                            lemmas[r],
                            witnesses[r, i],
                            bound,
                            limits,
                            premises_of(r, op),
                        ): (r, op, i)
                        for r, op in sorted(rows, key=_slow_first)
                        for i in phase
                    }
                for future in as_completed(futures):
                    done[futures[future]] = future.result()
                    report(done[futures[future]])
    verdicts = [done[r, op, i] for r, op in rows for i in invariants]
    return Matrix(
        bound,
        tuple(facts[row] for row in rows),
        tuple(lemmas[r] for r in rules),
        tuple(witnesses[p] for p in pairs),
        tuple(verdicts),
    )


__all__ = ["Matrix", "qualify", "verify"]
