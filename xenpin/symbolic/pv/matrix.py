"""The whole operation x invariant matrix for some rule sets, on several cores.

First the lemma that global safety follows from the premises, per rule set. Then one task per row (rule set,
operation), longest row first: the row's facts (`op_facts`: premise, can succeed, can fail, inside the
unrolling), then each of its obligations in fresh solvers of its own, handed the facts (global safety last,
derived without a solver where the step keeps every premise and the lemma holds); beside them one task per
(rule set, invariant) for the invariant's non-vacuity witness. A row is one task so that a worker builds the
row's encoding once, not once for each of its obligations. Workers are those of `xenpin.symbolic.batch`
(spawned, SIGINT left to the parent, killed with it). Verdicts are qualified by their witness and lemma as
rows come back, and returned in matrix order whatever the workers.
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


# The rows in the order their tasks are submitted: longest first (measured CPU seconds of a row, facts and
# obligations, at the default bound), so that the workers do not end on a long row one at a time. The order
# changes no verdict; a row not listed goes after these.
SLOW_ROWS = (
    "mmu_update[l4]",
    "mmu_update[l3]",
    "mmu_update[l2]",
    "new_baseptr",
    "pin[l4]",
    "unpin[l4]",
    "unpin[l3]",
    "unpin[l2]",
    "pin[l3]",
    "update_va_mapping",
)
# 4.1's rows take longer (their counterexamples are minimised, rebuilt and replayed)
SLOW_RULES = ("xen-4.1",)


def _slow_first(row: tuple[str, str]) -> tuple[int, int]:
    rules, op = row
    return (
        SLOW_ROWS.index(op) if op in SLOW_ROWS else len(SLOW_ROWS),
        0 if rules in SLOW_RULES else 1,
    )


def _lemma_task(rules: str, bound: Bound, limits: dict) -> RuleVerdict:
    return safety_lemma(rules, bound, **limits)


def _witness_task(rules: str, invariant: str, bound: Bound, limits: dict) -> RuleVerdict:
    return invariant_witness(rules, invariant, bound, **limits)


def _row_task(
    rules: str, op: str, invariants: tuple[str, ...], lemma: RuleVerdict, bound: Bound, limits: dict
) -> tuple[OpFacts, dict[str, RuleVerdict]]:
    """One row: its facts, then its obligations (global safety last: where the step keeps every premise and
    the lemma holds, it follows without a solver). One task a row, so that each worker builds a row's
    encoding once; every obligation is still decided in fresh solvers of its own."""
    facts = op_facts(rules, op, bound, **limits)
    done: dict[str, RuleVerdict] = {}
    for invariant in [i for i in invariants if i != "global_safety"]:
        done[invariant] = decide(rules, op, invariant, facts, bound, **limits)
    if "global_safety" in invariants:
        premises = tuple(done[p] for p in PREMISES if p in done)
        done["global_safety"] = _safety_verdict(
            rules, op, facts, lemma, bound, limits, premises if len(premises) == len(PREMISES) else ()
        )
    return facts, done


def _safety_verdict(
    rules: str,
    op: str,
    facts: OpFacts,
    lemma: RuleVerdict,
    bound: Bound,
    limits: dict,
    premises: tuple[RuleVerdict, ...] = (),
) -> RuleVerdict:
    """Global safety without a solver where the step keeps every premise (`premises`, the row's verdicts) and
    the lemma holds; else decided."""
    if lemma.verdict == "proved" and premises and all(p.verdict == "proved" for p in premises):
        names = ", ".join(p.invariant for p in premises)
        return RuleVerdict(
            rules,
            op,
            "global_safety",
            "proved",
            0.0,
            str(bound),
            note=f"from this step's {names} verdicts and the lemma that {SAFETY_LEMMA}",
        )
    return decide(rules, op, "global_safety", facts, bound, **limits)


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
    """The matrix. The safety lemmas first (every row's global safety may rest on its rule set's), then one
    task per row, longest first (`SLOW_ROWS`), and the invariants' witnesses; each verdict is qualified by its
    witness and lemma (`qualify`) as its row comes back."""
    rules, operations, invariants = list(rules), list(operations), tuple(invariants)
    limits = {"rlimit": rlimit, "timeout_s": timeout_s}
    report = on_verdict or (lambda verdict: None)
    rows = sorted(((r, op) for r in rules for op in operations), key=_slow_first)
    pairs = [(r, i) for r in rules for i in invariants]
    facts: dict[tuple[str, str], OpFacts] = {}
    done: dict[tuple[str, str, str], RuleVerdict] = {}

    def row_done(row: tuple[str, str], result: tuple[OpFacts, dict[str, RuleVerdict]], witness) -> None:
        facts[row], verdicts = result
        for i in invariants:
            v = qualify(verdicts[i], lemmas[row[0]], witness(row[0], i))
            done[(*row, i)] = v
            report(v)

    if workers <= 1:
        lemmas = {r: _lemma_task(r, bound, limits) for r in rules}
        witnesses = {p: _witness_task(*p, bound, limits) for p in pairs}
        for row in rows:
            row_done(row, _row_task(*row, invariants, lemmas[row[0]], bound, limits), lambda *p: witnesses[p])
    else:
        with worker_pool(workers) as pool:
            with _spawning():
                l_fut = {r: pool.submit(_lemma_task, r, bound, limits) for r in rules}
            lemmas = {k: f.result() for k, f in l_fut.items()}
            with _spawning():
                r_fut = {
                    pool.submit(_row_task, *row, invariants, lemmas[row[0]], bound, limits): row
                    for row in rows[:workers]
                }
                w_fut = {p: pool.submit(_witness_task, *p, bound, limits) for p in pairs}
                r_fut.update(
                    {
                        pool.submit(_row_task, *row, invariants, lemmas[row[0]], bound, limits): row
                        for row in rows[workers:]
                    }
                )
            for future in as_completed(r_fut):
                row_done(r_fut[future], future.result(), lambda *p: w_fut[p].result())
            witnesses = {k: f.result() for k, f in w_fut.items()}
    order = {row: n for n, row in enumerate((r, op) for r in rules for op in operations)}
    in_order = sorted(facts, key=order.__getitem__)
    verdicts = [done[(*row, i)] for row in in_order for i in invariants]
    return Matrix(
        bound,
        tuple(facts[row] for row in in_order),
        tuple(lemmas[r] for r in rules),
        tuple(witnesses[p] for p in pairs),
        tuple(verdicts),
    )


__all__ = ["Matrix", "qualify", "verify"]
