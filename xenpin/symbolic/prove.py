"""Verdicts: run each obligation, minimise a counterexample, replay it in the boot walk.

Per (variant, property): one obligation per `init_memory_mapping` call, each in a fresh solver. `proved` when
every call's obligation is `unsat` AND every lemma those obligations assume (`lemmas.py`, transitively) is
proved in its own fresh solver AND every obligation they rest on (`Obligation.rests_on`: call 1's placement
below call 0's reservation) is `unsat`; `counterexample` when one is `sat` AND the minimised configuration,
booted in the executable model (`xenpin.linux.boot`), violates the same property in the same call
(`violated_in`); otherwise `unknown` (a limit hit, a lemma or premise not proved, or a replay that does not
confirm: both sides are kept so the disagreement can be read). A non-vacuity check per property says whether the
situation the property talks about can arise at all.

The smallest counterexample is the least over both calls with the default kernel image, ramdisk and slack if
any call has one there, else the least over every machine of the domain.

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
from xenpin.symbolic.lemmas import LemmaRef
from xenpin.symbolic.minimise import lexicographic_min
from xenpin.symbolic.obligations import ALLOCATION_PROPERTIES, Equivalence, Obligation, build
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
# The largest guest the replay boots (a 16 GiB boot takes ~4 GiB of RSS and ~20 s); a bigger counterexample is
# reported `unknown`, never shown unconfirmed.
REPLAY_LIMIT_BYTES = 32 << 30


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
    lemmas: list[LemmaVerdict] = field(default_factory=list)  # what a `proved` rests on
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


def _minimise(ob: Obligation, first: z3.ModelRef, limits: dict, formula: z3.BoolRef | None = None) -> Witness:
    """Smallest memory first, then the least kernel, ramdisk and slack, then the lowest pfn, then the lowest
    allocation (`minimise.py`), over `formula` (default: the obligation's)."""
    p = ob.params
    names = XEN_PARAMS if ob.terms.shape.platform == "xen" else NATIVE_PARAMS
    machine = [getattr(p, n) for n in names]
    placed = placement.machine_terms(ob)  # P@any: each call's pgt_buf_start, after the machine
    names, machine = (*names, *(n for n, _ in placed)), machine + [term for _, term in placed]
    tail = [ob.pfn] + ([ob.alloc] if ob.prop in ALLOCATION_PROPERTIES else [])
    least = lexicographic_min(
        formula if formula is not None else ob.formula(), machine + tail, first, **limits
    )
    values = least.values
    pfn, *alloc = values[len(machine) :]
    return Witness(ob.call, tuple(zip(names, values[: len(machine)], strict=True)), pfn,
                   alloc[0] if alloc else None, least.minimal)  # fmt: skip


SOLVERS = ("z3", "cvc5", "both")


def _decide(formula: z3.BoolRef, solver: str, limits: dict) -> SolverAnswer:
    """The answer of the solver(s) `solver` names: `z3` alone; `cvc5` alone (its model of a `sat`, checked in
    z3, starts the witness); `both`, which must give the same answer (a disagreement is `unknown`, and a `sat`
    carries z3's model)."""
    if solver == "z3":
        return check(formula, **limits)
    other = check_cvc5(formula, timeout_s=limits["timeout_s"])
    if solver == "cvc5":
        return model_from_values(formula, other, **limits) if other.status == "sat" else other
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
    answers: list[tuple[int, SolverAnswer]] = []
    for ob in obligations:
        answer = _decide(ob.formula(), solver, limits)
        answers.append((ob.call, answer))
        if answer.status == "sat":
            break
    sat = [(call, a) for call, a in answers if a.status == "sat"]
    unknown = [(call, a) for call, a in answers if a.status == "unknown"]
    verdict = Verdict(variant, prop, "unknown", 0.0, placement=where)
    if sat:
        call, answer = sat[0]
        _confirm(verdict, _smallest(obligations[call:], answer.model, limits), limits)
    elif unknown:
        verdict.notes.extend(f"call {call}: solver gave up ({a.reason})" for call, a in unknown)
    else:
        premises = _premises(variant, obligations)
        verdict.lemmas = prove_lemmas(
            sorted({ref for ob in obligations + premises for ref in ob.lemmas}), solver, limits
        )
        verdict.notes.extend(_unproved_premises(premises, solver, limits))
        verdict.notes.extend(unproved_lemmas(verdict.lemmas))
        verdict.verdict = "unknown" if verdict.notes else "proved"
        # Vacuous: no call can even reach the situation the property talks about (each premise `unsat`).
        verdict.vacuous = not any(_reachable(ob, limits) for ob in obligations)
    verdict.seconds = time.perf_counter() - t
    return verdict


# One machine of each walk shape's domain per call (None: the call is never made), shared by the verdicts of
# one process: most non-vacuity questions are answered by it without a search over machines.
_MACHINES: dict[tuple[str, int, int], dict | None] = {}


def _machine_of(ob: Obligation, limits: dict) -> dict | None:
    key = (ob.terms.shape.key, ob.call, limits["rlimit"])
    if key not in _MACHINES:
        answer = check(ob.domain, **limits)
        p = ob.params
        names = [f.name for f in dataclasses.fields(p)]
        _MACHINES[key] = (
            {n: answer.model.eval(getattr(p, n), model_completion=True) for n in names}
            if answer.status == "sat"
            else None
        )
    return _MACHINES[key]


def _reachable(ob: Obligation, limits: dict) -> bool:
    """The situation the obligation talks about can arise (`non_vacuity` is `sat`): first at one machine of
    the domain (a model found there is a model of the whole question), then over every machine."""
    machine = _machine_of(ob, limits)
    if machine is not None:
        p = ob.params
        at = z3.substitute(ob.non_vacuity(), *((getattr(p, n), v) for n, v in machine.items()))
        if check(at, **limits).status == "sat":
            return True
    return check(ob.non_vacuity(), **limits).status == "sat"


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


def _unproved_premises(premises: list[Obligation], solver: str, limits: dict) -> list[str]:
    """A note for each premise obligation that is not `unsat` (each in a fresh solver)."""
    out = []
    for ob in premises:
        key = (*_obligation_key(ob), solver, limits["rlimit"])
        if key not in _PREMISE_ANSWERS:
            _PREMISE_ANSWERS[key] = _decide(ob.formula(), solver, limits)
        answer = _PREMISE_ANSWERS[key]
        if answer.status != "unsat":
            what = "violated" if answer.status == "sat" else f"not decided ({answer.reason})"
            out.append(
                f"call 1's closed form places its buffer below call 0's reservation, taken to be"
                f" [pgt_buf_start, pgt_buf_end); {ob.prop} in call {ob.call} is {what}, so it may be elsewhere"
            )
    return out


def _smallest(obligations: list[Obligation], model: z3.ModelRef, limits: dict) -> Witness:
    """The least witness over all calls (`obligations[0]` is satisfiable, `model` one of its models): with the
    default kernel, ramdisk and slack if some call has one there, else over every machine of the domain."""
    for usual in (True, False):
        best: Witness | None = None
        cut_short = False
        for i, ob in enumerate(obligations):
            query = z3.And(ob.formula(), defaults(ob) if usual else True)
            if best is not None:
                query = z3.And(query, z3.ULT(ob.size, c(best.size)))
            given = i == 0 and not usual  # the model the caller found answers this query
            answer = SolverAnswer("sat", model, 0.0) if given else check(query, **limits)
            if answer.status == "sat":
                best = _minimise(ob, answer.model, limits, query)
            elif answer.status == "unknown":
                cut_short = True
        if best is not None:
            return dataclasses.replace(best, minimal=best.minimal and not cut_short)
    raise AssertionError("the first obligation was satisfiable")  # pragma: no cover


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
    ob = build(verdict.variant, verdict.label, witness.call)
    p = ob.params
    fixed = [getattr(p, name) == c(value) for name, value in witness.machine]
    starts = {b.call: b.pgt_buf_start for b in verdict.replay.buffers if b.call in CALLS}
    fixed += [
        base == c(starts[call])
        for call, base in zip(CALLS, (p.base0, p.base1), strict=True)
        if call in starts
    ]
    query = z3.And(ob.formula(), *fixed)
    answer = check(query, **limits)
    if answer.status != "sat":
        return None
    tail = [ob.pfn] + ([ob.alloc] if witness.alloc is not None else [])
    least = lexicographic_min(query, tail, answer.model, **limits)
    pfn, *alloc = least.values
    return dataclasses.replace(
        witness, pfn=pfn, alloc=alloc[0] if alloc else None, minimal=witness.minimal and least.minimal
    )


def _confirm(verdict: Verdict, witness: Witness, limits: dict) -> None:
    """Replay `witness` in the boot walk: `counterexample` only if the walk violates the same property in the
    same call (a bare-metal witness's page is then moved to where the boot placed the buffer)."""
    verdict.witness = witness
    if not witness.minimal:
        verdict.notes.append("minimisation stopped early (a solver limit): perhaps not the smallest")
    if witness.mem_bytes > REPLAY_LIMIT_BYTES:
        verdict.notes.append(
            f"the smallest counterexample needs {witness.mem_bytes:#x} bytes, more than the replay limit"
            f" ({REPLAY_LIMIT_BYTES:#x}): not confirmed"
        )
        return
    verdict.replay = boot(verdict.variant, witness.config())
    failure = verdict.replay.failure
    if violated_in(verdict.replay, verdict.prop, witness.call):
        verdict.verdict = "counterexample"
        if not witness.xen:
            placed = placed_witness(verdict, witness, limits)
            if placed is None:
                verdict.notes.append(
                    f"pfn {witness.pfn:#x} is where the solver placed the buffer; at the boot's placement it"
                    " finds no failing page"
                )
            else:
                verdict.witness = witness = placed
        if (
            failure
            and failure.pfn != witness.pfn
            and f"mfn {witness.pfn:x} " not in " ".join(failure.xen_log)
        ):
            verdict.notes.append(
                f"the boot walk stops first at pfn {failure.pfn:#x}, before reaching the witness"
            )
        return
    elsewhere = [
        other for other in CALLS if other != witness.call and violated_in(verdict.replay, verdict.prop, other)
    ]
    if elsewhere:
        at = f", pfn {failure.pfn:#x}" if failure is not None else ""
        verdict.notes.append(
            f"the solver's counterexample is in call {witness.call}, but the boot walk violates {verdict.prop}"
            f" in call {elsewhere[0]} (outcome {verdict.replay.outcome}{at}): not confirmed"
        )
        return
    shown = {False: "holds", None: "is not reached"}[violated_in(verdict.replay, verdict.prop, witness.call)]
    verdict.notes.append(
        f"the solver's counterexample (call {witness.call}, {witness.describe()}, pfn {witness.pfn:#x})"
        f" does not replay: in the boot walk {verdict.prop} {shown} in call {witness.call}"
        f" (outcome {verdict.replay.outcome})"
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
