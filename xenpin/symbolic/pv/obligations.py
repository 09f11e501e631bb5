"""One obligation per (operation, invariant, rule set): `invariants(s) and step(s, a) = s'  =>  invariant(s')`.

The premise is the invariants of `invariants.PREMISES` on the state before the step (global safety follows from
them: `SAFETY_LEMMA`), the operation's case and well-formed arguments, and that the step stays inside the
unrolling (`step.Outcome.outside`, which `op_facts` proves unreachable from the premise). The conclusion is the
invariant's clauses (per frame, per table, per root: `invariants.clauses`), decided together in one fresh Z3
solver with the same limits as `xenpin prove` (`pv.solve.check`: a fixed bit-vector pipeline; if the solver
gives up on them together, each clause in a solver of its own, so the verdict can say which it cannot
decide); the obligation is `proved` only if the
answer is `unsat`, the premise is satisfiable, and the operation can succeed and can fail from it (otherwise
`vacuous`). A clause false in the `sat` model gives the counterexample: the witness is searched again at the
fewest frames that still break the invariant, minimised (fewest entries, entries that name real frames,
fewest flags, the lowest arguments), rebuilt from a fresh guest (`witness.construction`), and the executable
validator run on it: the verdict is `counterexample` only if the validator gives the same answer and state as
the symbolic step and `check_invariants` reports the same invariant violated. Anything else is `unknown`, with
the reason.

Reductions (each gives an obligation that is unsat exactly when the original one is; `tests/symbolic/pv/
test_pv_symmetry.py` checks the facts they rest on):
- *Symmetry of frames.* The guest's frames are interchangeable: renaming them (a permutation of 0 .. frames-1
  applied to frame indices, entry targets and roots, fixing the foreign frame and every mfn with no page)
  maps the premise, the step and every invariant to themselves, and each per-frame clause to the same clause
  of the renamed frame. The one part of the step that reads mfns as numbers is 4.1's `put_superpage` (a range
  of 512 frames); `op_facts` proves no step from the premise reaches it (`OpFacts.symmetric`). Where it holds,
  every query adds the case's symmetry-breaking constraint (the frames the case names -- the frame argument,
  the entry written, old and new, the walk, the root replaced -- are 0, 1, ... in the order they are first
  named: any counterexample can be renamed so), and the clauses of guest frames above the named ones are
  decided for one such frame only (`reduced_clauses`).
- *Counts in their low bits.* The step's `+1` / `-1` on a count works in the low `Bound.counter_bits` bits and
  flags a path where that would differ from the 55-bit arithmetic as `outside`; `inside_bound` proves no step
  from the premise is flagged, so on every state the obligation covers the narrowed step is Xen's.
- *The unrolling condition left out.* Where the row's `inside_bound` check is `unsat`, the premise implies
  that the step stays inside the unrolling, so the conjunct is dropped from the obligation's query.
- *`put_superpage` flagged.* In the obligations' encoding 4.1's `put_superpage` is flagged `outside` rather than
  unrolled (the refinement test runs it unrolled): only a PSE entry of a live L2 reaches it, and the row's
  `inside_bound` check proves no step from the premise does.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace

import z3

from xenpin.symbolic.minimise import lexicographic_min
from xenpin.symbolic.pv import invariants as inv
from xenpin.symbolic.pv.operations import OPERATIONS, Operation, operation
from xenpin.symbolic.pv.solve import check
from xenpin.symbolic.pv.state import DEFAULT_BOUND, Bound, Concrete, SymState, c, evaluate, of_hypervisor
from xenpin.symbolic.pv.step import ERRNO_NAME, Outcome, entry_mfn, has, type_count, type_of
from xenpin.symbolic.pv.witness import Call, construction, run_calls, scenario_text
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S
from xenpin.xen.flags import ALL_FLAGS, RW, Entry, P
from xenpin.xen.invariants import check_invariants
from xenpin.xen.rules import FASTPATH_FLAG_WHITELIST, RuleSet, get_rules

SAFETY_LEMMA = "global_safety from the premises"


@dataclass(frozen=True)
class Encoding:
    rules: RuleSet
    op: Operation
    bound: Bound
    state: SymState
    args: dict
    outcome: Outcome
    premise: z3.BoolRef  # without the unrolling condition
    symmetry: z3.BoolRef  # the case's symmetry-breaking constraint (`Operation.symmetry_breaking`)
    names: int  # how many frames it names: every named guest frame is below this
    # each invariant's clauses of the state after the step, built once (`post_clauses`)
    post: dict[str, inv.Clauses] = field(default_factory=dict, compare=False, repr=False)


def post_clauses(enc: Encoding, invariant: str) -> inv.Clauses:
    """The invariant's clauses of the state after the step (built once per encoding: a counterexample's
    search, minimisation and alternatives ask for them again and again)."""
    if invariant not in enc.post:
        enc.post[invariant] = inv.clauses(invariant, enc.outcome.state, enc.rules)
    return enc.post[invariant]


def post_holds(enc: Encoding, invariant: str) -> z3.BoolRef:
    return z3.And([clause for _name, clause in post_clauses(enc, invariant)])


@functools.cache
def encoding(rules_name: str | RuleSet, op_name: str, bound: Bound = DEFAULT_BOUND) -> Encoding:
    rules, op = get_rules(rules_name), operation(op_name)
    s = SymState.fresh(bound)
    args = op.symbolic_args(bound)
    # 4.1's `put_superpage` flagged rather than unrolled: only a PSE entry in a live L2 reaches it, which no
    # state of the premise has, and the row's `inside_bound` check proves no step from the premise reaches it
    outcome = op.run(s, args, rules, superpages=False)
    premise = z3.And(inv.premises_hold(s, rules), op.precondition(s, args))
    symmetry, names = op.symmetry_breaking(s, args)
    return Encoding(rules, op, bound, s, args, outcome, premise, symmetry, names)


@dataclass(frozen=True)
class OpFacts:
    """What the premise of an operation allows: the checks every verdict of its row rests on."""

    rules: str
    operation: str
    premise: str  # "sat" | "unsat" | "unknown"
    can_succeed: str
    can_fail: str
    inside_bound: str  # "unsat" (proved: no path leaves the unrolling) | "sat" | "unknown"
    seconds: float
    # "unsat": no step from the premise reaches the one mfn-ordered part of the step (`Outcome.asymmetric`),
    # so the obligations of the row may use the symmetry of frames; "sat" | "unknown": they may not
    symmetric: str = "unknown"

    @property
    def problem(self) -> str | None:
        """Why no obligation of the row can be `proved`, or None."""
        if self.premise != "sat":
            return f"the premise is {self.premise}"
        if self.can_succeed != "sat" and not (
            self.can_succeed == "unsat" and operation(self.operation).refused_case
        ):
            return f"the operation cannot succeed from the premise ({self.can_succeed})"
        if self.can_fail != "sat":
            return f"the operation cannot fail from the premise ({self.can_fail})"
        if self.inside_bound != "unsat":
            return f"a step from the premise may leave the unrolling ({self.inside_bound})"
        return None


@dataclass(frozen=True)
class RuleVerdict:
    rules: str
    operation: str
    invariant: str
    verdict: str  # proved | counterexample | vacuous | unknown
    seconds: float
    bound: str
    clause: str | None = None  # the clause a counterexample breaks
    note: str = ""
    scenario: str | None = None  # the generated file's text (the CLI writes it and records the path)
    steps: tuple[str, ...] = ()  # the construction and the step, for the report
    violations: tuple[str, ...] = ()  # what check_invariants reported after the step
    checks: int = 0
    timings: tuple[float, ...] = field(default=(), compare=False)
    changed: int | None = None  # a counterexample's step: the flags it changes in the entry it writes
    # further counterexamples of the same obligation that change other flags (each replayed like the first)
    alternatives: tuple[RuleVerdict, ...] = ()
    frames: int | None = field(default=None, compare=False)  # a counterexample's bound: its guest frames


def op_facts(rules_name: str, op_name: str, bound: Bound = DEFAULT_BOUND, **limits) -> OpFacts:
    """The row's facts. Whether the step keeps the symmetry of frames is decided first, without it; where it
    does, the other checks order the named frames too (`Operation.symmetry_breaking`): a `sat` answer found so
    is one without the order, and the premise, the step and its unrolling condition are unchanged by renaming
    frames, so an `unsat` one holds without it as well."""
    enc = encoding(rules_name, op_name, bound)
    t = time.perf_counter()
    out = enc.outcome
    if z3.is_false(out.asymmetric):  # the encoding has no such path at all
        symmetric = "unsat"
    else:
        symmetric = check(z3.And(enc.premise, out.asymmetric), **limits).status
    premise = z3.And(enc.premise, enc.symmetry) if symmetric == "unsat" else enc.premise
    succeed = check(z3.And(premise, out.accepted, z3.Not(out.outside)), **limits).status
    fail = check(z3.And(premise, z3.Not(out.accepted), z3.Not(out.outside)), **limits).status
    satisfiable = "sat" if "sat" in (succeed, fail) else check(premise, **limits).status
    outside = check(z3.And(premise, out.outside), **limits).status
    return OpFacts(
        enc.rules.name, op_name, satisfiable, succeed, fail, outside, time.perf_counter() - t, symmetric
    )


def decide(
    rules_name: str,
    op_name: str,
    invariant: str,
    facts: OpFacts,
    bound: Bound = DEFAULT_BOUND,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    symmetry: bool = True,
) -> RuleVerdict:
    """The verdict of one obligation (see the module docstring). `symmetry`: use the symmetry of frames where
    the row's facts allow it (`reduced_clauses`)."""
    limits = {"rlimit": rlimit, "timeout_s": timeout_s}
    enc = encoding(rules_name, op_name, bound)
    t0 = time.perf_counter()
    base = {"rules": enc.rules.name, "operation": op_name, "invariant": invariant, "bound": str(bound)}
    inside = z3.Not(enc.outcome.outside)
    reduced = symmetry and facts.symmetric == "unsat"
    todo, skipped = reduced_clauses(enc, invariant) if reduced else (post_clauses(enc, invariant), 0)
    # Where no step from the premise leaves the unrolling (proved in the row's facts), `inside` is implied by
    # the premise and is left out: it only weighs the solver down.
    context = [enc.premise]
    if not (reduced and facts.inside_bound == "unsat"):
        context.append(inside)
    if reduced:
        context.append(enc.symmetry)
    unknowns, timings = [], []

    def found(name: str) -> RuleVerdict:
        first = RuleVerdict(
            **base, **counterexample(enc, invariant, name, limits), timings=tuple(timings), seconds=0.0
        )
        others = _alternatives(
            enc, invariant, first, base, limits, ordered=reduced and facts.inside_bound == "unsat"
        )
        return replace(first, alternatives=others, seconds=time.perf_counter() - t0)

    # The whole invariant in one call (one bit-blasting of the premise and the step rather than one a clause);
    # only if the solver gives up on it are the clauses decided one by one, to say which it cannot decide.
    whole = check(z3.And(*context, z3.Not(z3.And([clause for _name, clause in todo]))), **limits)
    timings.append(whole.seconds)
    if whole.status == "sat":
        broken = [n for n, cl in todo if not z3.is_true(whole.model.eval(cl, model_completion=True))]
        return found(broken[0] if broken else todo[0][0])
    for name, clause in todo if whole.status == "unknown" else ():
        answer = check(z3.And(*context, z3.Not(clause)), **limits)
        timings.append(answer.seconds)
        if answer.status == "sat":
            return found(name)
        if answer.status == "unknown":
            unknowns.append(f"{name}: {answer.reason}")
    seconds = time.perf_counter() - t0
    checks = len(timings)
    if unknowns:
        note = f"the solver gave up on {len(unknowns)} of {checks} clauses ({unknowns[0]})"
        return RuleVerdict(
            **base, verdict="unknown", seconds=seconds, note=note, checks=checks, timings=tuple(timings)
        )
    problem = facts.problem
    if problem:
        verdict = "vacuous" if facts.premise == "unsat" or facts.can_succeed == "unsat" else "unknown"
        return RuleVerdict(
            **base, verdict=verdict, seconds=seconds, note=problem, checks=checks, timings=tuple(timings)
        )
    done = f"{len(todo)} clauses unsat" + (" in one call" if whole.status == "unsat" else "")
    if skipped:
        done += f" ({skipped} more by the symmetry of frames)"
    if reduced:
        done += ", named frames in order"
    if facts.can_succeed == "unsat":  # a refused case (`Operation.refused_case`): the state cannot change
        note = f"{done}; every call of this case is refused (the hypercall succeeds in its other cases)"
        return RuleVerdict(
            **base, verdict="proved", seconds=seconds, note=note, checks=checks, timings=tuple(timings)
        )
    return RuleVerdict(
        **base,
        verdict="proved",
        seconds=seconds,
        note=done,
        checks=checks,
        timings=tuple(timings),
    )


def reduced_clauses(enc: Encoding, invariant: str) -> tuple[inv.Clauses, int]:
    """The clauses to decide under the case's symmetry-breaking constraint, and how many follow without a call.

    Under the constraint every named guest frame is below `enc.names` (K), so the guest frames K .. frames-1 are
    named by nothing: swapping two of them keeps the premise, the step, the constraint and the invariant, and
    turns one's clause into the other's. So a counterexample to the clause of frame m > K gives one to the clause
    of frame K of the same kind, and only frames 0 .. K are decided (the foreign frame and clauses about no one
    frame always are)."""
    n, k = enc.bound.frames, enc.names
    all_clauses = post_clauses(enc, invariant)
    names = {name for name, _clause in all_clauses}
    kept: inv.Clauses = []
    for name, clause in all_clauses:
        frame = inv.clause_frame(name)
        if frame is not None and k < frame < n and inv.clause_for_frame(name, k) in names:
            continue
        kept.append((name, clause))
    return kept, len(all_clauses) - len(kept)


# ------------------------------------------------------------------------------------------ counterexamples


def _exists(enc: Encoding, invariant: str, excluded: tuple[int, ...], ordered: bool) -> z3.BoolRef:
    """Whether a counterexample changing other flags exists (`_alternatives`)."""
    if not ordered:
        return _violates(enc, invariant, excluded)
    return z3.And(
        enc.premise,
        enc.symmetry,
        z3.Not(post_holds(enc, invariant)),
        *[changed_flags(enc) != sig for sig in excluded],
    )


def _violates(enc: Encoding, invariant: str, excluded: tuple[int, ...] = ()) -> z3.BoolRef:
    return z3.And(
        enc.premise,
        z3.Not(enc.outcome.outside),
        z3.Not(post_holds(enc, invariant)),
        *[changed_flags(enc) != sig for sig in excluded],
    )


def changed_flags(enc: Encoding) -> z3.BitVecRef:
    """The flags outside modern Xen's `FASTPATH_FLAG_WHITELIST` (P, RW, PSE) that a step writing an entry changes
    in it (old XOR new): what tells one fast-path hole from another (XSA-182 flips RW, XSA-148 flips PSE)."""
    a = enc.args
    return (enc.state.entry(a["mfn"], a["slot"]) ^ a["entry"]) & (ALL_FLAGS & ~FASTPATH_FLAG_WHITELIST)


def writes_an_entry(op: Operation) -> bool:
    return {"mfn", "slot", "entry"} <= set(op.args)


def state_cost(s: SymState, extra_entries: tuple = ()) -> list:
    """What a witness state is minimised on, most important first: entries that name no frame (a scenario
    cannot write them), entries, flags beyond P and RW, frames whose type outlived their last reference."""
    n = s.bound.frames
    one, zero = c(1), c(0)
    entries = [e for row in s.entries for e in row] + list(extra_entries)

    def count(conds):
        return sum((z3.If(x, one, zero) for x in conds), zero)

    extra_flags = ALL_FLAGS & ~(P | RW)
    return [
        count(z3.And(has(e, P), z3.UGT(entry_mfn(e), n)) for e in entries),
        count(has(e, P) for e in entries),
        count(z3.And(type_count(ti) == 0, type_of(ti) != 0) for ti in s.type_info),
        count(e & extra_flags != 0 for e in entries),
    ]


def _cost_terms(enc: Encoding) -> list:
    extra = (enc.args["entry"],) if "entry" in enc.args else ()
    return [*state_cost(enc.state, extra), *[enc.args[k] for k in enc.op.args]]


def _smallest_bound(
    enc: Encoding, invariant: str, limits: dict, excluded: tuple[int, ...] = (), fewest: int = 1
) -> tuple[Encoding, z3.ModelRef | None]:
    """The encoding at the fewest guest frames (from `fewest`: no fewer break it) that still break the
    invariant, with a model of it."""
    for frames in range(fewest, enc.bound.frames + 1):
        bound = Bound(frames, enc.bound.slots)
        small = encoding(enc.rules, enc.op.name, bound)
        answer = check(_violates(small, invariant, excluded), **limits)
        if answer.status == "sat":
            return small, answer.model
    return enc, None


def _call_of(enc: Encoding, values: dict[str, int]) -> Call:
    args: dict = {}
    if enc.op.level is not None:
        args["level"] = enc.op.level
    for key in enc.op.args:
        v = values[key]
        if key == "entry":
            args[key] = Entry((v >> 12) & ((1 << 40) - 1), v & ALL_FLAGS) if v else None
        else:
            args[key] = v
    return Call(enc.op.call, args)


def counterexample(
    enc: Encoding, invariant: str, clause: str, limits: dict, excluded: tuple[int, ...] = (), fewest: int = 1
) -> dict:
    """Minimise, rebuild, replay (see the module docstring); the verdict's fields. `excluded`: flag changes of
    counterexamples already found (the witness must change others); `fewest`: no bound of fewer guest frames
    has a counterexample (`_alternatives`: none had one without the exclusions, so none has one with them)."""
    small, model = _smallest_bound(enc, invariant, limits, excluded, fewest)
    if model is None:
        return {"verdict": "unknown", "clause": clause, "note": "sat, but no model again at any bound"}
    formula = _violates(small, invariant, excluded)
    terms = _cost_terms(small)
    least = lexicographic_min(formula, terms, model, **limits)
    model = least.model
    pre = evaluate(small.state, model)
    values = {k: model.eval(v, model_completion=True).as_long() for k, v in small.args.items()}
    accepted = z3.is_true(model.eval(small.outcome.accepted, model_completion=True))
    errno = model.eval(small.outcome.errno, model_completion=True).as_long()
    outcome = "ok" if accepted else ERRNO_NAME.get(errno, str(errno))
    post = evaluate(small.outcome.state, model)
    broken = [
        name
        for name, cl in post_clauses(small, invariant)
        if not z3.is_true(model.eval(cl, model_completion=True))
    ]
    step = _call_of(small, values)
    fields = {"clause": broken[0] if broken else clause, "frames": small.bound.frames}
    if writes_an_entry(small.op):
        fields["changed"] = model.eval(changed_flags(small), model_completion=True).as_long()
    if values.get("entry") and (values["entry"] >> 12) & ((1 << 40) - 1) > small.bound.frames:
        return {**fields, "verdict": "unknown", "note": f"the witness's entry names no frame: {step}"}
    if any(z3.is_true(model.eval(t > 0, model_completion=True)) for t in terms[:1]):
        return {**fields, "verdict": "unknown", "note": "the witness's state has entries that name no frame"}
    calls = construction(pre, small.bound, small.rules)
    if calls is None:
        return {
            **fields,
            "verdict": "unknown",
            "note": "the state before the step is not reachable from a fresh guest by xenpin's construction; the invariants may need strengthening",
        }
    hv = run_calls(calls, small.bound, small.rules)
    result = step.apply(hv)
    real = "ok" if result.ok else str(result.errno)
    violations = tuple(str(v) for v in check_invariants(hv))
    steps = (*tuple(str(call) for call in calls), f"{step} -> {real}")
    after = of_hypervisor(hv, small.bound)
    if real != outcome or after != post:
        return {
            **fields,
            "verdict": "unknown",
            "steps": steps,
            "violations": violations,
            "note": f"the symbolic step ({outcome}) and the validator ({real}) disagree on {step}",
        }
    if not any(v.split(":", 1)[0] == invariant for v in violations):
        return {
            **fields,
            "verdict": "unknown",
            "steps": steps,
            "violations": violations,
            "note": f"the validator shows no {invariant} violation after {step}",
        }
    title = f"verify-rules: {small.op.name} breaks {invariant} under {small.rules.name}"
    notes = [
        f"Generated by xenpin verify-rules: a counterexample to {invariant} ({fields['clause']}) for {small.op.name},",
        f"found by Z3 in the bound of {small.bound} and minimised; the state before the step is rebuilt from a",
        "fresh guest by accepted calls, then the step runs and check_invariants reports the violation.",
    ]
    text = scenario_text(title, notes, small.rules, small.bound, calls, step, outcome, invariant)
    same = [v for v in violations if v.split(":", 1)[0] == invariant]
    note = f"{step} -> {outcome}; {same[0]}"
    return {
        **fields,
        "verdict": "counterexample",
        "scenario": text,
        "steps": steps,
        "violations": violations,
        "note": note,
    }


MAX_ALTERNATIVES = 2


def _alternatives(
    enc: Encoding, invariant: str, first: RuleVerdict, base: dict, limits: dict, ordered: bool = False
) -> tuple:
    """Other holes in the same step: counterexamples that change other flags of the entry (up to
    MAX_ALTERNATIVES), so that one hole does not hide another (under 4.1, XSA-182's RW flip of a linear entry
    is the smallest counterexample for an L2 update; XSA-148's PSE flip is the next). `ordered`: the row keeps
    the symmetry of frames, so whether another hole exists is asked with the named frames in order (and the
    premise's unrolling condition left out: the row's facts prove it), which is the same question."""
    if first.verdict != "counterexample" or first.changed is None:
        return ()
    found, excluded = [], (first.changed,)
    # the first witness's bound is the least with any counterexample; one changing other flags is one too
    fewest = first.frames or 1
    for _ in range(MAX_ALTERNATIVES):
        if check(_exists(enc, invariant, excluded, ordered), **limits).status != "sat":
            break
        fields = counterexample(enc, invariant, first.clause or "", limits, excluded, fewest)
        v = RuleVerdict(**base, **fields, seconds=0.0)
        if v.changed is None:
            break
        found.append(v)
        excluded = (*excluded, v.changed)
    return tuple(found)


# ---------------------------------------------------------------------------------------- the state lemmas


def safety_lemma(rules_name: str, bound: Bound = DEFAULT_BOUND, **limits) -> RuleVerdict:
    """Global safety follows from the premises in every state of the bound."""
    rules = get_rules(rules_name)
    s = SymState.fresh(bound, "l")
    t0 = time.perf_counter()
    prem = inv.premises_hold(s, rules)
    for name, clause in inv.clauses("global_safety", s, rules):
        answer = check(z3.And(prem, z3.Not(clause)), **limits)
        if answer.status != "unsat":
            return RuleVerdict(
                rules_name,
                "(state)",
                SAFETY_LEMMA,
                "unknown",
                time.perf_counter() - t0,
                str(bound),
                clause=name,
                note=f"{answer.status}: {answer.reason or 'a safe-looking state is unsafe'}",
            )
    return RuleVerdict(rules_name, "(state)", SAFETY_LEMMA, "proved", time.perf_counter() - t0, str(bound))


def invariant_witness(
    rules_name: str,
    invariant: str,
    bound: Bound = DEFAULT_BOUND,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RuleVerdict:
    """Non-vacuity of an invariant: a state reachable from a fresh guest where it holds and speaks of something."""
    rules = get_rules(rules_name)
    limits = {"rlimit": rlimit, "timeout_s": timeout_s}
    s = SymState.fresh(bound, "w")
    t0 = time.perf_counter()
    answer = check(z3.And(inv.all_hold(s, rules), inv.subject(invariant, s)), **limits)
    base = (rules_name, "(state)", invariant)
    if answer.status != "sat":
        verdict = "vacuous" if answer.status == "unsat" else "unknown"
        return RuleVerdict(
            *base,
            verdict,
            time.perf_counter() - t0,
            str(bound),
            note=f"no state of the bound: {answer.status}",
        )
    formula = z3.And(inv.all_hold(s, rules), inv.subject(invariant, s))
    least = lexicographic_min(formula, state_cost(s), answer.model, **limits)
    pre: Concrete = evaluate(s, least.model)
    calls = construction(pre, bound, rules)
    if calls is None:
        return RuleVerdict(
            *base,
            "unknown",
            time.perf_counter() - t0,
            str(bound),
            note="the witness state is not reachable by xenpin's construction",
        )
    violations = check_invariants(run_calls(calls, bound, rules))
    if violations:
        return RuleVerdict(
            *base,
            "unknown",
            time.perf_counter() - t0,
            str(bound),
            note=f"the validator finds {violations[0]}",
        )
    return RuleVerdict(
        *base,
        "proved",
        time.perf_counter() - t0,
        str(bound),
        steps=tuple(map(str, calls)),
        note="a reachable state where it holds non-trivially",
    )


__all__ = [
    "OPERATIONS",
    "Encoding",
    "OpFacts",
    "RuleVerdict",
    "decide",
    "encoding",
    "invariant_witness",
    "op_facts",
    "safety_lemma",
]
