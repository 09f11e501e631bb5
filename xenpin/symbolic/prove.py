"""Verdicts: run each obligation, minimise a counterexample, replay it in the boot walk.

Per (variant, property): one obligation per `init_memory_mapping` call, each in a fresh solver. The verdict is
- `counterexample` when some call's obligation is `sat` AND a minimised configuration, booted in the executable
  model (`xenpin.linux.boot`), violates the same property in the same call (`violated_in`). Each satisfiable
  call gets its own witness, smallest first (the default kernel image, ramdisk and slack where that call fails
  with them); they are replayed in that order until one confirms, and all are reported. A witness past the
  replay limit (`replay_limit.py`: what this machine can boot) is minimised again among the machines under the
  limit, and that one is replayed. Where call 1's `unsat` cannot be trusted because call 0 reserves something
  else than the closed form assumes (`Obligation.rests_on` is violated), the premise's witness is replayed and
  a boot that violates the property in call 1 there is a counterexample too, shown with the premise's witness;
- `proved` when every call's obligation is `unsat` AND every lemma those obligations assume (`lemmas.py`,
  transitively) is proved in its own fresh solver AND every obligation they rest on is `unsat` AND nothing is
  vacuous: in every call the domain reaches, the obligation's premise is satisfiable with the same lemmas and
  the property's situation (`obligations.SITUATIONS`: allocations happen, a spare tail exists, ...) is
  satisfiable with the domain, each in a fresh solver with the same limits;
- `vacuous` when the obligations are `unsat` but one of those two checks is `unsat`: the proof holds because
  its situation cannot arise, which is no evidence about the kernel;
- `unknown` otherwise: a limit hit (in an obligation or a non-vacuity check), a lemma or premise not proved, a
  replay that does not confirm (both sides are kept so the disagreement can be read), or a counterexample that
  needs more memory than this machine can boot, with no smaller one (each note says which).

Lemmas never weaken a counterexample: they only add facts true over the whole domain, so a `sat` answer with
them is a `sat` answer without them, and the replay confirms it independently.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import z3

from xenpin.linux.boot import BootResult, boot
from xenpin.linux.e820 import E820, E820_RAM, E820_RESERVED, E820Entry
from xenpin.linux.layout import DEFAULT_KERNEL_BYTES, DEFAULT_RAMDISK_BYTES, XEN_SLACK_BYTES, BootConfig
from xenpin.linux.policy import unparse
from xenpin.linux.variant import POLICY_VARS, KernelVariant
from xenpin.symbolic import lemmas, placement
from xenpin.symbolic.form import FOUR_G
from xenpin.symbolic.lemmas import LemmaRef
from xenpin.symbolic.minimise import Minimum, least, lexicographic_min
from xenpin.symbolic.obligations import (
    ALLOCATION_PROPERTIES,
    Equivalence,
    Obligation,
    build,
    situation,
    situation_text,
)
from xenpin.symbolic.replay_limit import replay_limit_bytes
from xenpin.symbolic.solver import (
    DEFAULT_RLIMIT,
    DEFAULT_TIMEOUT_S,
    SolverAnswer,
    check,
    check_cvc5,
    model_from_values,
)
from xenpin.symbolic.walk import c

CALLS = (0, 1)
# The largest guest the replay boots, from this machine's RAM (`replay_limit.py`); a counterexample past it is
# minimised again under it, and is `unknown` only if there is none there (never shown unconfirmed).
REPLAY_LIMIT_BYTES = replay_limit_bytes()
# Verdicts that are no evidence either way: exit 3 where something else was expected
UNDECIDED = ("vacuous", "unknown")
EXIT_OK, EXIT_MISMATCH, EXIT_UNDECIDED = 0, 1, 3


def exit_code(verdicts: list[Verdict]) -> int:
    """`prove`'s (and a proof script's) exit code: 1 if a `proved` or `counterexample` verdict differs from its
    expectation, whatever the others are; else 3 if a `vacuous` or `unknown` one does; else 0 (a vacuous or
    unknown verdict that was expected is as expected)."""
    differs = [v for v in verdicts if not v.as_expected]
    if any(v.verdict not in UNDECIDED for v in differs):
        return EXIT_MISMATCH
    return EXIT_UNDECIDED if differs else EXIT_OK


# The machine parameters a witness names, and the defaults a minimised witness keeps where it can
XEN_PARAMS = ("nr", "kernel", "ramdisk", "slack")
NATIVE_PARAMS = ("low_end", "high_end", "gbpages")
DEFAULTS = {
    "kernel": DEFAULT_KERNEL_BYTES >> 12,
    "ramdisk": DEFAULT_RAMDISK_BYTES >> 12,
    "slack": XEN_SLACK_BYTES >> 12,
}


@dataclass(frozen=True)
class Witness:
    """A minimised counterexample, in the domain's terms: the machine (pages), the page, the allocation."""

    call: int
    machine: tuple[tuple[str, int], ...]  # (parameter, value) of `XEN_PARAMS` or `NATIVE_PARAMS`
    pfn: int
    alloc: int | None
    minimal: bool = True  # the least configuration (False: another one, or a minimisation a limit cut short)
    limit: int | None = None  # the least among machines of at most this many bytes (the replay limit), if set

    def __getitem__(self, name: str) -> int:
        return dict(self.machine)[name]

    @property
    def xen(self) -> bool:
        return self.machine[0][0] == "nr"

    @property
    def size(self) -> int:
        """The value minimised first: a domU's nr_pages, bare metal's end of low RAM."""
        return self.machine[0][1]

    @property
    def mem_bytes(self) -> int:
        if self.xen:
            return self["nr"] << 12
        return (self["low_end"] << 12) + max(0, (self["high_end"] << 12) - (1 << 32))

    def config(self) -> BootConfig:
        """The machine to replay the witness on (with the witness's buffer placement, if it names one)."""
        if self.xen:
            return BootConfig(
                role="domU",
                mem_bytes=self["nr"] << 12,
                kernel_bytes=self["kernel"] << 12,
                ramdisk_bytes=self["ramdisk"] << 12,
                slack_bytes=self["slack"] << 12,
                pgt_buf_start=placement.pgt_buf_start(dict(self.machine)),
            )
        entries = [E820Entry(0, 0x9F000, E820_RAM), E820Entry(0x9F000, 0x1000, E820_RESERVED),
                   E820Entry(0x100000, (self["low_end"] << 12) - 0x100000, E820_RAM)]  # fmt: skip
        if self["high_end"]:
            entries.append(E820Entry(1 << 32, (self["high_end"] << 12) - (1 << 32), E820_RAM))
        return BootConfig(
            role="native", mem_bytes=self.mem_bytes, e820=E820(entries), gbpages=bool(self["gbpages"])
        )

    def machine_json(self) -> dict[str, str | int]:
        """The machine for `--json`: sizes, ends and placements in bytes (hex), `gbpages` as 0 or 1."""
        return {name: value if name == "gbpages" else hex(value << 12) for name, value in self.machine}

    def describe(self) -> str:
        if self.xen:
            extra = ", ".join(
                f"{name} {self[name] << 12:#x}" for name in XEN_PARAMS[1:] if self[name] != DEFAULTS[name]
            )
            where = placement.describe(dict(self.machine))
            return f"domU of {self.mem_bytes:#x} bytes" + (f" ({extra})" if extra else "") + where
        high = f", RAM [4G, {self['high_end'] << 12:#x})" if self["high_end"] else ""
        gb = ", 1 GiB pages" if self["gbpages"] else ""
        return f"bare metal, RAM to {self['low_end'] << 12:#x}{high}{gb}"


@dataclass(frozen=True)
class LemmaVerdict:
    """A lemma's own proof: `proved` only from `unsat`; `refuted` (a `sat`) would be a bug in xenpin."""

    ref: LemmaRef
    verdict: str  # proved | refuted | unknown
    seconds: float
    reason: str = ""

    @property
    def text(self) -> str:
        return lemmas.LEMMAS[self.ref.name].text


# Lemma proofs are deterministic (a resource limit, not a clock, bounds them), so each is proved once per
# process and solver setting, and shared by every verdict that rests on it.
_LEMMA_VERDICTS: dict[tuple[LemmaRef, str, int], LemmaVerdict] = {}


def prove_lemma(ref: LemmaRef, solver: str, limits: dict) -> LemmaVerdict:
    """One lemma's own proof, in a fresh solver (whatever the lemmas it uses say: see `unproved_lemmas`)."""
    answer = _decide(lemmas.proof(ref)[0], solver, limits)
    verdict = {"unsat": "proved", "sat": "refuted"}.get(answer.status, "unknown")
    return LemmaVerdict(ref, verdict, answer.seconds, answer.reason)


def remember_lemmas(verdicts: list[LemmaVerdict], solver: str, limits: dict) -> None:
    """Lemma verdicts proved elsewhere (another process of `batch.py`), for `prove_lemmas` to reuse."""
    for lv in verdicts:
        _LEMMA_VERDICTS[(lv.ref, solver, limits["rlimit"])] = lv


def prove_lemmas(refs: list[LemmaRef], solver: str, limits: dict) -> list[LemmaVerdict]:
    """The verdicts of `refs` and of every lemma they rest on, each lemma after the ones its proof uses."""
    out = []
    for ref in lemmas.closure(refs):
        key = (ref, solver, limits["rlimit"])
        if key not in _LEMMA_VERDICTS:
            _LEMMA_VERDICTS[key] = prove_lemma(ref, solver, limits)
        out.append(_LEMMA_VERDICTS[key])
    return out


def unproved_lemmas(verdicts: list[LemmaVerdict]) -> list[str]:
    """Notes for the lemmas that are not proved (empty: everything they support stands)."""
    return [
        f"rests on lemma {lv.ref}, which is {lv.verdict}" + (f" ({lv.reason})" if lv.reason else "")
        for lv in verdicts
        if lv.verdict != "proved"
    ]


@dataclass(frozen=True)
class NonVacuity:
    """One call's non-vacuity checks, each `sat` (it can arise), `unsat`, `unknown` (a limit), or `none` (the
    domain never makes this call): the obligation's premise, and the property's situation (`SITUATIONS`)."""

    call: int
    premise: str
    situation: str
    reason: str = ""  # why a check is `unknown`


@dataclass
class Attempt:
    """One witness tried for a verdict: where it comes from, its replay (None: not booted) and whether the
    replay confirms it (violates the verdict's property in the witness's call)."""

    witness: Witness
    source: str  # "call 0's obligation", "call 0's live_reserved, which call 1's proof rests on"
    replay: BootResult | None = None
    confirmed: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    variant: KernelVariant
    prop: str
    verdict: str  # proved | counterexample | vacuous | unknown
    seconds: float
    witness: Witness | None = None  # the confirmed witness (or, if none confirms, the smallest)
    replay: BootResult | None = None  # its replay
    notes: list[str] = field(default_factory=list)
    lemmas: list[LemmaVerdict] = field(default_factory=list)  # what a `proved` rests on
    checks: list[NonVacuity] = field(default_factory=list)  # per call, where the obligations are `unsat`
    attempts: list[Attempt] = field(default_factory=list)  # every witness tried or found, the confirmed first

    @property
    def vacuous(self) -> bool:
        return self.verdict == "vacuous"

    placement: str = "rule"  # rule | any (`placement.py`): `prop` where the rule puts the buffer, or anywhere

    @property
    def label(self) -> str:
        """The property as the report names it: `prop`, or `prop@any`."""
        return placement.label(self.prop, self.placement)

    @property
    def expected(self) -> str:
        return placement.expected(self.variant, self.label)

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.expected


def defaults(ob: Obligation | Equivalence) -> z3.BoolRef:
    """The default kernel image, ramdisk and slack (`BootConfig`'s) for a domU question; true otherwise."""
    p = ob.terms.params
    if ob.terms.shape.platform != "xen":
        return z3.BoolVal(True)
    return z3.And(*(getattr(p, n) == c(DEFAULTS[n]) for n in XEN_PARAMS[1:]))


def _minimised_terms(ob: Obligation) -> tuple[tuple[str, ...], list[z3.BitVecRef], list[z3.BitVecRef]]:
    """What a witness is minimised on, in order: the machine's parameters (named), then the pfn and allocation."""
    p = ob.params
    names = XEN_PARAMS if ob.terms.shape.platform == "xen" else NATIVE_PARAMS
    machine = [getattr(p, n) for n in names]
    placed = placement.machine_terms(ob)  # P@any: each call's pgt_buf_start, after the machine
    names, machine = (*names, *(n for n, _ in placed)), machine + [term for _, term in placed]
    tail = [ob.pfn] + ([ob.alloc] if ob.prop in ALLOCATION_PROPERTIES else [])
    return names, machine, tail


def _witness(ob: Obligation, names: tuple[str, ...], least: Minimum) -> Witness:
    values = least.values
    pfn, *alloc = values[len(names) :]
    return Witness(ob.call, tuple(zip(names, values[: len(names)], strict=True)), pfn,
                   alloc[0] if alloc else None, least.minimal)  # fmt: skip


def _minimise(ob: Obligation, first: z3.ModelRef, limits: dict, formula: z3.BoolRef | None = None) -> Witness:
    """Smallest memory first, then the least kernel, ramdisk and slack, then the lowest pfn, then the lowest
    allocation (`minimise.py`), over `formula` (default: the obligation's); `first` is a model of it."""
    names, machine, tail = _minimised_terms(ob)
    query = formula if formula is not None else ob.formula()
    return _witness(ob, names, lexicographic_min(query, machine + tail, first, **limits))


def _least_witness(ob: Obligation, query: z3.BoolRef, limits: dict) -> tuple[SolverAnswer, Witness | None]:
    """Is `query` (the obligation's formula and more) satisfiable, and its least witness (as `_minimise`) if so:
    the question and the minimisation in one solver (`minimise.least`)."""
    names, machine, tail = _minimised_terms(ob)
    answer, found = least(query, machine + tail, **limits)
    return answer, None if found is None else _witness(ob, names, found)


SOLVERS = ("z3", "cvc5", "both")


def _decide(formula: z3.BoolRef, solver: str, limits: dict, model: bool = True) -> SolverAnswer:
    """The answer of the solver(s) `solver` names: `z3` alone; `cvc5` alone (its model of a `sat`, checked in
    z3, starts the witness; with `model` False, as for a non-vacuity check, cvc5's `sat` is the answer); `both`,
    which must give the same answer (a disagreement is `unknown`, and a `sat` carries z3's model)."""
    if solver == "z3":
        return check(formula, **limits)
    other = check_cvc5(formula, timeout_s=limits["timeout_s"])
    if solver == "cvc5":
        return model_from_values(formula, other, **limits) if other.status == "sat" and model else other
    answer = check(formula, **limits)
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
    obligations = [build(variant, prop, call) for call in CALLS]  # `prop` is a label: P or P@any
    prop, where = placement.split(prop)
    answers = [(ob, _decide(ob.formula(), solver, limits)) for ob in obligations]
    sat = [(ob, a) for ob, a in answers if a.status == "sat"]
    unknown = [(ob.call, a) for ob, a in answers if a.status == "unknown"]
    verdict = Verdict(variant, prop, "unknown", 0.0, placement=where)
    gave_up = [f"call {call}: solver gave up ({a.reason})" for call, a in unknown]
    if sat:
        _counterexample(verdict, obligations, sat, unknown, limits)
        premises = _premises(variant, obligations) if verdict.verdict != "counterexample" else []
        violated = [(ob, a) for ob, a in _premise_answers(premises, solver, limits) if a.status == "sat"]
        if violated:  # call 1's witness may be where the closed form wrongly puts its buffer: boot call 0's
            _premise_counterexample(verdict, obligations, violated, limits)
        if verdict.verdict != "counterexample":
            verdict.notes.extend(gave_up)
    elif unknown:
        verdict.notes.extend(gave_up)
    else:
        premises = _premises(variant, obligations)
        verdict.lemmas = prove_lemmas(
            sorted({ref for ob in obligations + premises for ref in ob.lemmas}), solver, limits
        )
        verdict.notes.extend(_unproved_premises(premises, solver, limits))
        verdict.notes.extend(unproved_lemmas(verdict.lemmas))
        violated = [(ob, a) for ob, a in _premise_answers(premises, solver, limits) if a.status == "sat"]
        if violated:
            _premise_counterexample(verdict, obligations, violated, limits)
        elif not verdict.notes:
            _judge_vacuity(verdict, obligations, solver, limits)
    verdict.seconds = time.perf_counter() - t
    return verdict


# --- non-vacuity ------------------------------------------------------------------------------------------

# One machine of each walk shape's domain per call (None: the call is never made, or the domain is not
# decided), shared by the verdicts of one process: most non-vacuity questions are answered by it without a
# search over machines.
_MACHINES: dict[tuple[str, int, int], tuple[SolverAnswer, dict | None]] = {}


def _machine_of(ob: Obligation, limits: dict) -> tuple[SolverAnswer, dict | None]:
    key = (ob.terms.shape.key, ob.call, limits["rlimit"])
    if key not in _MACHINES:
        answer = check(ob.domain, **limits)
        p = ob.params
        names = [f.name for f in dataclasses.fields(p)]
        _MACHINES[key] = (
            answer,
            {n: answer.model.eval(getattr(p, n), model_completion=True) for n in names}
            if answer.status == "sat"
            else None,
        )
    return _MACHINES[key]


def _satisfiable(formula: z3.BoolRef, ob: Obligation, solver: str, limits: dict) -> SolverAnswer:
    """Is `formula` (the domain and more) satisfiable: first at the shape's one machine (a model there is a
    model of the whole question), then over every machine, in a fresh solver."""
    _, machine = _machine_of(ob, limits)
    if machine is not None:
        p = ob.params
        at = z3.substitute(formula, *((getattr(p, n), v) for n, v in machine.items()))
        answer = check(at, **limits)
        if answer.status == "sat":
            return answer
    return _decide(formula, solver, limits, model=False)


def non_vacuity(ob: Obligation, solver: str = "z3", limits: dict | None = None) -> NonVacuity:
    """The obligation's premise, and its property's situation, each checked satisfiable in its domain."""
    limits = limits or {"rlimit": DEFAULT_RLIMIT, "timeout_s": DEFAULT_TIMEOUT_S}
    made, _ = _machine_of(ob, limits)
    if made.status == "unknown":  # z3 gave up on the shape's machine: the solver(s) of the verdict decide
        made = _decide(ob.domain, solver, limits, model=False)
    if made.status == "unsat":
        return NonVacuity(ob.call, "none", "none")
    if made.status == "unknown":
        return NonVacuity(ob.call, "unknown", "unknown", made.reason)
    premise = _satisfiable(ob.non_vacuity(), ob, solver, limits)
    reached = _satisfiable(z3.And(ob.domain, situation(ob)), ob, solver, limits)
    reason = "; ".join(a.reason for a in (premise, reached) if a.status == "unknown" and a.reason)
    return NonVacuity(ob.call, premise.status, reached.status, reason)


def _judge_vacuity(verdict: Verdict, obligations: list[Obligation], solver: str, limits: dict) -> None:
    """`proved`, or `vacuous` where a call's premise or situation cannot arise, or `unknown` where that is not
    decided (an `unsat` cut short by a limit is not an `unsat`)."""
    verdict.checks = [non_vacuity(ob, solver, limits) for ob in obligations]
    vacuous, undecided = [], []
    for ch in verdict.checks:
        if ch.premise == "none":
            continue
        if ch.situation == "unsat":
            vacuous.append(
                f"call {ch.call}: the property's situation never arises in the domain ({situation_text(obligations[CALLS.index(ch.call)])})"
            )
        elif ch.premise == "unsat":
            vacuous.append(f"call {ch.call}: the obligation's premise is unsatisfiable in the domain")
        if "unknown" in (ch.premise, ch.situation):
            undecided.append(f"call {ch.call}: non-vacuity not decided ({ch.reason or 'a solver limit'})")
    if all(ch.premise == "none" for ch in verdict.checks):
        vacuous.append("the domain makes no init_memory_mapping call")
    verdict.notes.extend(vacuous + undecided)
    verdict.verdict = "vacuous" if vacuous else "unknown" if undecided else "proved"


# --- premises: call 1 rests on call 0's reservation --------------------------------------------------------


def _premises(variant: KernelVariant, obligations: list[Obligation]) -> list[Obligation]:
    """The obligations `obligations` rest on (`Obligation.rests_on`) that are not among them."""
    have = {(ob.label, ob.call) for ob in obligations}
    wanted = sorted({key for ob in obligations for key in ob.rests_on} - have)
    return [build(variant, prop, call) for prop, call in wanted]


# Premise answers, per obligation (what it reads of the variant), solver and limit: shared by the verdicts of
# one process (every property's call 1 of a high-placement variant rests on the same two).
_PREMISE_ANSWERS: dict[tuple, SolverAnswer] = {}


def _obligation_key(ob: Obligation) -> tuple:
    v = ob.variant
    return (v.platform, tuple(sorted(v.code.items())), *(unparse(getattr(v, k)) for k in POLICY_VARS), ob.label,
            ob.call)  # fmt: skip


def _premise_answers(
    premises: list[Obligation], solver: str, limits: dict
) -> list[tuple[Obligation, SolverAnswer]]:
    """Each premise obligation's answer (each in a fresh solver, once per process)."""
    out = []
    for ob in premises:
        key = (*_obligation_key(ob), solver, limits["rlimit"])
        if key not in _PREMISE_ANSWERS:
            _PREMISE_ANSWERS[key] = _decide(ob.formula(), solver, limits)
        out.append((ob, _PREMISE_ANSWERS[key]))
    return out


def _unproved_premises(premises: list[Obligation], solver: str, limits: dict) -> list[str]:
    """A note for each premise obligation that is not `unsat`."""
    out = []
    for ob, answer in _premise_answers(premises, solver, limits):
        if answer.status != "unsat":
            what = "violated" if answer.status == "sat" else f"not decided ({answer.reason})"
            out.append(
                f"call 1's closed form places its buffer below call 0's reservation, taken to be"
                f" [pgt_buf_start, pgt_buf_end); {ob.prop} in call {ob.call} is {what}, so it may be elsewhere"
            )
    return out


def _premise_counterexample(
    verdict: Verdict,
    obligations: list[Obligation],
    violated: list[tuple[Obligation, SolverAnswer]],
    limits: dict,
) -> None:
    """Where a premise is violated the closed form says nothing of call 1: boot the premise's smallest witness
    (under the replay limit) and judge the verdict's property in the calls that rest on it there. A violation
    is a counterexample, shown with the premise's witness; otherwise the verdict stays `unknown`."""
    dependent = [ob.call for ob in obligations if ob.rests_on]
    mine: list[Attempt] = []
    for premise, answer in violated:
        found = _smallest([premise], answer.model, limits)
        source = f"call {premise.call}'s {premise.prop}, which call {', '.join(map(str, dependent))} rests on"
        att = Attempt(found, source)
        verdict.attempts.append(att)
        mine.append(att)
        witness = _replayable(premise, found, att.notes, limits)
        if witness is None:
            continue
        att.witness = witness
        att.replay = boot(verdict.variant, witness.config())
        for call in dependent:
            if violated_in(att.replay, verdict.prop, call):
                pfn = _boot_pfn(att.replay, verdict.prop, call)
                shown = Witness(
                    call, witness.machine, witness.pfn if pfn is None else pfn, None, False, witness.limit
                )
                verdict.attempts.insert(0, Attempt(shown, f"the boot at {source.split(',')[0]}'s witness",
                                                   att.replay, True))  # fmt: skip
                verdict.verdict = "counterexample"
                verdict.lemmas = []  # a counterexample rests on no lemma
                verdict.witness, verdict.replay = shown, att.replay
                verdict.notes[:] = [
                    f"{premise.prop} fails in call {premise.call} ({witness.describe()}, pfn {witness.pfn:#x}), so"
                    f" the closed form does not say where call {call}'s buffer goes; booted there, the walk violates"
                    f" {verdict.prop} in call {call}",
                    *att.notes,
                    *(n for n in verdict.notes if not n.startswith("rests on lemma")),
                ]
                return
        judged = {False: "holds", None: "is not reached"}
        verdict.notes.append(
            f"booted at the smallest machine where call {premise.call}'s {premise.prop} fails"
            f" ({witness.describe()}), {verdict.prop} "
            + ", ".join(
                f"{judged[violated_in(att.replay, verdict.prop, call)]} in call {call}" for call in dependent
            )
            + f" (outcome {att.replay.outcome}): not confirmed"
        )
    verdict.notes.extend(n for att in mine for n in att.notes)


def _boot_pfn(replay: BootResult, prop: str, call: int) -> int | None:
    """The page where the boot walk shows `prop` violated in `call` (its failure, or the buffer's lowest page
    the property is about)."""
    failure = replay.failure
    if failure is not None and failure.violates == prop:
        return failure.pfn
    buf = replay.buffer(call)
    pages = (
        {
            "spare_writable": buf.ro_after_reserve,
            "spare_freed": buf.spare_reserved,
            "live_reserved": buf.used_unreserved,
        }.get(prop, ())
        if buf is not None
        else ()
    )
    if pages:
        return min(pages)
    return failure.pfn if failure is not None else None


# --- counterexamples ---------------------------------------------------------------------------------------


def _smallest(
    obligations: list[Obligation], model: z3.ModelRef, limits: dict, memo: dict | None = None
) -> Witness:
    """The least witness over all calls (`obligations[0]` is satisfiable, `model` one of its models): with the
    default kernel, ramdisk and slack if some call has one there, else over every machine of the domain.
    `memo` (one verdict's) keeps each call's answers for the next search over the same obligations."""
    memo = {} if memo is None else memo
    for usual in (True, False):
        best: Witness | None = None
        cut_short = False
        for i, ob in enumerate(obligations):
            given = i == 0 and not usual  # the model the caller found answers this query
            status, found = _least_of(
                ob, usual, None if best is None else best.size, model if given else None, limits, memo
            )
            if status == "sat":
                best = found
            elif status == "unknown":
                cut_short = True
        if best is not None:
            return dataclasses.replace(best, minimal=best.minimal and not cut_short)
    raise AssertionError("the first obligation was satisfiable")  # pragma: no cover


def _least_of(
    ob: Obligation, usual: bool, below: int | None, model: z3.ModelRef | None, limits: dict, memo: dict
) -> tuple[str, Witness | None]:
    """The answer and least witness of `ob`'s formula (with the default image if `usual`; of a size below
    `below` if given; `model`, if given, is a model of it). `memo` holds each (obligation, usual)'s answer
    without a bound: its least witness, if minimal, is the bounded question's too (or it has none) -- the least
    of a set that holds a smaller one than the bound is the least below the bound; and `unsat` stays `unsat`."""
    key = (ob.label, ob.call, usual)
    if key in memo:
        status, known = memo[key]
        if status == "unsat":
            return status, None
        if status == "sat" and known.minimal:
            return ("sat", known) if below is None or known.size < below else ("unsat", None)
    query = z3.And(ob.formula(), defaults(ob) if usual else True)
    if below is not None:
        query = z3.And(query, z3.ULT(ob.size, c(below)))
    if model is not None:
        status, found = "sat", _minimise(ob, model, limits, query)
    else:
        answer, found = _least_witness(ob, query, limits)
        status = answer.status
    if below is None or (status == "sat" and found.minimal):
        memo[key] = (status, found)
    return status, found


def mem_pages(ob: Obligation) -> z3.BitVecRef:
    """`Witness.mem_bytes` in pages, as a term: a domU's nr; bare metal's low RAM and RAM above 4 GiB."""
    p = ob.params
    if ob.terms.shape.platform == "xen":
        return p.nr
    return p.low_end + z3.If(z3.UGT(p.high_end, c(FOUR_G)), p.high_end - c(FOUR_G), c(0))


def _replayable(ob: Obligation, witness: Witness, notes: list[str], limits: dict) -> Witness | None:
    """`witness` if the replay can boot it; else the smallest witness of `ob` among machines under the replay
    limit; None (and why, in `notes`) if there is none there or that is not decided."""
    if witness.mem_bytes <= REPLAY_LIMIT_BYTES:
        return witness
    limit = REPLAY_LIMIT_BYTES
    head = (
        f"call {witness.call}'s smallest counterexample needs {witness.mem_bytes:#x} bytes, more than the replay"
        f" limit ({limit:#x}, what this machine can boot)"
    )
    cap = z3.ULE(mem_pages(ob), c(limit >> 12))
    undecided = ""
    for usual in (True, False):
        query = z3.And(ob.formula(), cap, defaults(ob) if usual else True)
        answer, found = _least_witness(ob, query, limits)
        if found is not None:
            notes.append(f"{head}; replayed instead: the smallest of at most {limit:#x} bytes")
            return dataclasses.replace(found, limit=limit)
        if answer.status == "unknown":
            undecided = answer.reason or "a solver limit"
    if undecided:
        notes.append(
            f"{head}; whether one of at most that size exists is not decided ({undecided}): not confirmed"
        )
    else:
        notes.append(f"{head}, and there is none of at most that size (unsat): not confirmed by a boot here")
    return None


def _counterexample(
    verdict: Verdict,
    obligations: list[Obligation],
    sat: list[tuple[Obligation, SolverAnswer]],
    undecided: list[tuple[int, SolverAnswer]],
    limits: dict,
) -> None:
    """The smallest witness over the calls (`_smallest`), replayed; each other satisfiable call's own smallest
    witness beside it, replayed in turn only while none confirms. `counterexample` when one confirms (it is
    then the verdict's witness), `unknown` if none does; every witness is kept. A call whose obligation is not
    decided may hold a smaller one: the witness is then not called the smallest."""
    first = sat[0][0]
    memo: dict = {}  # the calls' answers, shared by the searches below (`_least_of`)
    for ob, _ in sat[1:]:  # each needs its own least witness anyway; it also answers the bounded question
        _least_of(ob, True, None, None, limits, memo)  # the search over the calls asks of it (none then)
    primary = Attempt(_smallest(obligations[first.call :], sat[0][1].model, limits, memo), "")
    primary.source = f"call {primary.witness.call}'s obligation"
    _confirm(verdict, obligations[primary.witness.call], primary, limits)
    verdict.attempts.append(primary)
    for ob, answer in sat:
        if ob.call == primary.witness.call:
            continue
        att = Attempt(_smallest([ob], answer.model, limits, memo), f"call {ob.call}'s obligation")
        verdict.attempts.append(att)
        if not any(other.confirmed for other in verdict.attempts):
            _confirm(verdict, ob, att, limits)
    confirmed = [att for att in verdict.attempts if att.confirmed]
    shown = confirmed[0] if confirmed else primary
    verdict.attempts.remove(shown)
    verdict.attempts.insert(0, shown)
    if confirmed and undecided and shown.witness.minimal:
        shown.witness = dataclasses.replace(shown.witness, minimal=False)
        shown.notes.extend(
            f"call {call}'s obligation is not decided ({a.reason}): a smaller counterexample may be there"
            for call, a in undecided
        )
    verdict.verdict = "counterexample" if confirmed else "unknown"
    verdict.witness, verdict.replay = shown.witness, shown.replay
    verdict.notes.extend(shown.notes)
    if not confirmed:
        verdict.notes.extend(n for att in verdict.attempts[1:] for n in att.notes)


WALK_PROPERTIES = ("buffer_fits", "alias_writable", "no_rw_alias")


def violated_in(replay: BootResult, prop: str, call: int) -> bool | None:
    """Did the boot walk violate `prop` in `init_memory_mapping` call `call`? True, False (it holds there), or
    None (the boot stopped before that call's part of the property could be judged).

    A failure counts for the call it belongs to (`_failed_call`); otherwise the walk properties hold in a call
    the boot got through (2.6.39-rc6's `no_rw_alias` once the buffer's deferred restore has run, or the boot
    finished), and the others are read from the call's buffer as its reserve step left it."""
    failure = replay.failure
    if failure is not None and failure.violates == prop and _failed_call(replay, -1) == call:
        return True
    buf = replay.buffer(call)
    if buf is None or not buf.judged:
        return None
    if prop == "no_rw_alias" and replay.variant.xen and replay.variant.hook == "deferred":
        # 2.6.39-rc6: the buffer's deferred mark_rw_past_pgt is part of the call's no_rw_alias
        restored = any(s.action == "mark_rw_past_pgt" and s.pfn == buf.pgt_buf_end for s in replay.steps)
        return False if restored or replay.outcome == "ok" else None
    if prop in WALK_PROPERTIES:
        return False
    return bool(
        {
            "spare_writable": buf.ro_after_reserve,
            "spare_freed": buf.spare_reserved if buf.hook_ran else (),
            "live_reserved": buf.used_unreserved,
        }[prop]
    )


def placed_witness(verdict: Verdict, witness: Witness, limits: dict) -> Witness | None:
    """A bare-metal witness's page where the boot put the buffer: the closed form leaves a native buffer's place
    free (`closed_form.py`), so the solver's model puts it anywhere; fixed to the machine and to the replay's
    `pgt_buf_start` of each call, the lowest failing page (and allocation) there. None: no page fails there."""
    return _placed(verdict.variant, verdict.label, verdict.replay, witness, limits)


def _placed(
    variant: KernelVariant, prop: str, replay: BootResult, witness: Witness, limits: dict
) -> Witness | None:
    ob = build(variant, prop, witness.call)
    p = ob.params
    fixed = [getattr(p, name) == c(value) for name, value in witness.machine]
    starts = {b.call: b.pgt_buf_start for b in replay.buffers if b.call in CALLS}
    fixed += [
        base == c(starts[call])
        for call, base in zip(CALLS, (p.base0, p.base1), strict=True)
        if call in starts
    ]
    query = z3.And(ob.formula(), *fixed)
    tail = [ob.pfn] + ([ob.alloc] if witness.alloc is not None else [])
    _, lowest = least(query, tail, **limits)
    if lowest is None:
        return None
    pfn, *alloc = lowest.values
    return dataclasses.replace(
        witness, pfn=pfn, alloc=alloc[0] if alloc else None, minimal=witness.minimal and lowest.minimal
    )


def _confirm(verdict: Verdict, ob: Obligation, att: Attempt, limits: dict) -> None:
    """Replay `att.witness` (or, past the replay limit, the smallest witness under it) in the boot walk:
    confirmed only if the walk violates the same property in the same call (a bare-metal witness's page is then
    moved to where the boot placed the buffer)."""
    witness = att.witness
    if not witness.minimal:
        att.notes.append("minimisation stopped early (a solver limit): perhaps not the smallest")
    replayable = _replayable(ob, witness, att.notes, limits)
    if replayable is None:
        return
    att.witness = witness = replayable
    att.replay = replay = boot(verdict.variant, witness.config())
    failure = replay.failure
    if violated_in(replay, verdict.prop, witness.call):
        att.confirmed = True
        if not witness.xen:
            placed = _placed(verdict.variant, verdict.label, replay, witness, limits)
            if placed is None:
                att.notes.append(
                    f"pfn {witness.pfn:#x} is where the solver placed the buffer; at the boot's placement it"
                    " finds no failing page"
                )
            else:
                att.witness = witness = placed
        if (
            failure
            and failure.pfn != witness.pfn
            and f"mfn {witness.pfn:x} " not in " ".join(failure.xen_log)
        ):
            att.notes.append(
                f"the boot walk stops first at pfn {failure.pfn:#x}, before reaching the witness"
            )
        return
    elsewhere = [
        other for other in CALLS if other != witness.call and violated_in(replay, verdict.prop, other)
    ]
    if elsewhere:
        at = f", pfn {failure.pfn:#x}" if failure is not None else ""
        att.notes.append(
            f"the solver's counterexample is in call {witness.call}, but the boot walk violates {verdict.prop}"
            f" in call {elsewhere[0]} (outcome {replay.outcome}{at}): not confirmed"
        )
        return
    shown = {False: "holds", None: "is not reached"}[violated_in(replay, verdict.prop, witness.call)]
    att.notes.append(
        f"the solver's counterexample (call {witness.call}, {witness.describe()}, pfn {witness.pfn:#x})"
        f" does not replay: in the boot walk {verdict.prop} {shown} in call {witness.call}"
        f" (outcome {replay.outcome})"
    )


def _failed_call(replay: BootResult, default: int) -> int:
    """The `init_memory_mapping` call a failure belongs to: the call it happened in, or, after the walk, the call
    whose buffer holds the page. A failure of 2.6.39-rc6's deferred `mark_rw_past_pgt` (which runs in the next
    call, or after the walk) belongs to the call whose buffer it was restoring."""
    failure = replay.failure
    if failure is None:
        return default
    for before in reversed(replay.steps[: failure.step]):  # the restore the failing update belongs to
        if before.action == "mark_rw_past_pgt":
            restored = [b.call for b in replay.buffers if b.call >= 0 and b.pgt_buf_end == before.pfn]
            if restored:
                return restored[-1]
        if before.action != "make_lowmem_page_readwrite":
            break
    call = replay.steps[failure.step].call
    if call >= 0:
        return call
    return next(
        (b.call for b in replay.buffers if b.call >= 0 and b.pgt_buf_start <= failure.pfn < b.pgt_buf_top),
        default,
    )
