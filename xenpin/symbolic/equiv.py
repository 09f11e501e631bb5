"""`xenpin equiv`: do two kernel variants leave the same thing behind when they boot, for every machine?

What a boot leaves (`BootResult.left`, recorded as the boot ended): for every page the early boot touched -- a
page of either call's buffer, a page whose direct-map PTE was ever written or made read-only (`mask_rw_pte`,
and Xen's `make_lowmem_page_readonly` / `make_lowmem_page_readwrite` of the pv_ops), a page table of Xen's start
of day or of the kernel image, a pinned page -- its direct-map PTE (RO, RW or unmapped), whether it is reserved,
and whether Xen holds it pinned; and how far the boot got (its outcome). Two Xen variants are compared on all
of it; a Xen variant and a native one on what both platforms leave (PTE and reservation: bare metal pins
nothing), on a domU and a bare-metal machine of the same memory.

Two methods, and the verdict says which decided it:
- `proof` (Z3 over the closed form, every machine of its domain): for two variants of one walk shape and the
  same code (the seed's hook and its inline twin count as one reserve step; not 2.6.39-rc6's deferred
  `mark_rw_past_pgt`, which acts after the calls, and not 3.9, which has no buffer). Per call, a page of any
  machine whose PTE after the last call (every page the walks write, not only the buffer's), or whose
  reservation, differs; and per property and call, a machine and page where one variant violates the property
  and the other does not (so that both boots get equally far and fail, if they fail, at the same step). Where
  the code is the same, everything else the boot leaves is the same function of those: Xen's and the kernel's
  tables are in memory the walk keeps, the pins are the allocations (the shape fixes their number), and what
  runs after the walk reads only the PTEs and reservations compared. `equivalent` needs every query `unsat`,
  the lemmas they assume proved, and call 0's reservation that call 1's closed form rests on.
- `paired boots` (any other pair: different shapes, platforms or code): both variants booted at each size of a
  list, smallest first, and compared page by page. A difference found so is real (it is a replay); no
  difference at the sizes tried is *not* equivalence: the verdict is `unknown` and says which sizes were booted.
A distinguishing machine is shown only if booting both variants on it shows the difference (else `unknown`):
the proof's the least one (smallest memory first, then image sizes, then the lowest page), the paired boots'
the smallest size tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from xenpin.linux.boot import BootResult, boot
from xenpin.linux.layout import BootConfig
from xenpin.linux.variant import PROPERTIES, KernelVariant
from xenpin.symbolic.form import DOMAIN_MIN_PFN, shape_of
from xenpin.symbolic.lemmas import Instance
from xenpin.symbolic.minimise import lexicographic_min
from xenpin.symbolic.obligations import (
    ALLOCATION_PROPERTIES,
    _hook_ran,
    _in,
    _Policies,
    _ro_after_call,
    build,
    reservation_premises,
)
from xenpin.symbolic.prove import (
    NATIVE_PARAMS,
    REPLAY_LIMIT_BYTES,
    XEN_PARAMS,
    Witness,
    defaults,
    prove_lemmas,
    unproved_lemmas,
)
from xenpin.symbolic.solver import DEFAULT_RLIMIT, DEFAULT_TIMEOUT_S, check
from xenpin.symbolic.walk import Terms, c, terms

MIB = 1 << 20
# The sizes `paired boots` tries, smallest first: the domain's least guest, odd sizes, a second GiB, and one
# past 4 GiB (a second init_memory_mapping call). Each boots in well under a second of CPU but the last (a few
# seconds per boot).
PAIRED_SIZES = (
    64 * MIB,
    80 * MIB,
    128 * MIB,
    200 * MIB,
    300 * MIB,
    1024 * MIB + 4 * MIB,
    4096 * MIB + 64 * MIB,
)
# How many of the closed form's distinguishing machines (each the least of one query) are replayed before the
# verdict is `unknown`: each costs a minimisation and three boots.
MAX_REPLAYS = 3
PROOF = "proof"
PAIRED = "paired boots"
_STATE = "final PTEs and reservations"

Page = tuple[bool | None, bool, bool]  # (RW bit of the direct-map PTE or None, reserved, pinned)


@dataclass
class EquivResult:
    a: KernelVariant
    b: KernelVariant
    verdict: str  # equivalent | different | unknown
    method: str = PROOF  # proof | paired boots
    compared: str = ""  # what was compared, in words
    mem_bytes: int | None = None
    call: int | None = None  # proof: the call whose query found the machine
    pfn: int | None = None  # the lowest page where the replays differ (None: they differ in outcome only)
    detail: str = ""
    replay_a: BootResult | None = None
    replay_b: BootResult | None = None
    witness: Witness | None = None  # proof: the machine, minimised
    sizes: tuple[int, ...] = ()  # paired boots: the memory sizes booted
    differing: list[int] = field(default_factory=list)  # every page where the replays differ
    query: str = ""  # proof: which query found the machine ("final PTEs and reservations" or a property)

    @property
    def pins_compared(self) -> bool:
        return self.a.xen and self.b.xen


def compared_text(a: KernelVariant, b: KernelVariant) -> str:
    """What `equiv` compares for this pair, in words."""
    if a.xen and b.xen:
        return (
            "for every page the boot touches: its final direct-map PTE (RO/RW, with Xen's"
            " make_lowmem_page_readonly/readwrite), its reservation and Xen's pin; and the boot's outcome"
        )
    if not a.xen and not b.xen:
        return (
            "for every page the boot touches: its final direct-map PTE and its reservation; and the outcome"
        )
    return (
        "what both platforms leave, on a domU and a bare-metal machine of the same memory: for every page either"
        " boot touches, its final direct-map PTE (RO/RW) and its reservation; and the outcome (pins: Xen only,"
        " not compared)"
    )


# ------------------------------------------------------------------------------------------------ the boots


def _config(v: KernelVariant, mem_bytes: int) -> BootConfig:
    return BootConfig(role="domU" if v.xen else "native", mem_bytes=mem_bytes)


def paired_boots(
    a: KernelVariant, b: KernelVariant, config_a: BootConfig, config_b: BootConfig
) -> tuple[BootResult, BootResult]:
    """Both variants booted, each recording the pages the other touched as well."""
    ra = boot(a, config_a, observe=())
    rb = boot(b, config_b, observe=ra.left)
    if set(rb.left) - set(ra.left):
        ra = boot(a, config_a, observe=rb.left)
    return ra, rb


def _seen(page: Page, pins: bool) -> Page:
    return page if pins else (page[0], page[1], False)


def differences(ra: BootResult, rb: BootResult, pins: bool) -> tuple[list[int], str]:
    """The pages where the two boots leave something different (pins only if `pins`), and the outcome's
    difference in words ("" if the same)."""
    pages = sorted(
        p for p in set(ra.left) | set(rb.left) if _seen(ra.left[p], pins) != _seen(rb.left[p], pins)
    )
    outcome = "" if ra.outcome == rb.outcome else f"outcome {ra.outcome} against {rb.outcome}"
    return pages, outcome


_PTE = {True: "RW", False: "RO", None: "unmapped"}


def page_text(page: Page, pins: bool) -> str:
    rw, reserved, pinned = page
    out = f"{_PTE[rw]}, {'reserved' if reserved else 'free'}"
    return out + (", pinned" if pinned else "") if pins else out


def _describe(r: EquivResult) -> None:
    """Fill in `differing`, `pfn` and `detail` from the two replays."""
    pins = r.pins_compared
    r.differing, outcome = differences(r.replay_a, r.replay_b, pins)
    what = []
    if r.differing:
        r.pfn = r.differing[0]
        pa, pb = r.replay_a.left[r.pfn], r.replay_b.left[r.pfn]
        what.append(
            f"pfn {r.pfn:#x} is {page_text(pa, pins)} in {r.a.name}, {page_text(pb, pins)} in {r.b.name}"
            + (f" ({len(r.differing)} pages differ)" if len(r.differing) > 1 else "")
        )
    if outcome:
        what.append(outcome)
    r.detail = "; ".join(what)


# ------------------------------------------------------------------------------------------------ the proof


def provable(a: KernelVariant, b: KernelVariant) -> str:
    """Why the closed form cannot compare `a` and `b` ("" if it can)."""
    if a.platform != b.platform:
        return "their platforms differ"
    if shape_of(a) != shape_of(b):
        return "their walks differ in shape (placement, layout code)"
    same = {"2.6.39": "2.6.39", "inline": "2.6.39"}  # one reserve step, as pv_ops runs it
    ca = {k: same.get(v, v) if k == "pagetable_reserve" else v for k, v in a.code.items()}
    cb = {k: same.get(v, v) if k == "pagetable_reserve" else v for k, v in b.code.items()}
    if ca != cb:
        keys = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))
        return f"their code differs ({', '.join(keys)})"
    if "2.6.39-rc6" in (a.code["pagetable_reserve"], b.code["pagetable_reserve"]):
        return "2.6.39-rc6's mark_rw_past_pgt acts after the calls, where the closed form does not follow it"
    if a.placement == "mapped":
        return "3.9 has no buffer for the closed form to follow"
    return ""


@dataclass(frozen=True)
class Query:
    """One question to the solver: a machine and page (and allocation) where the variants leave different
    things; `sat` is a distinguishing machine."""

    terms: Terms
    call: int
    what: str  # _STATE or a property
    formula: z3.BoolRef
    pfn: z3.BitVecRef
    alloc: z3.BitVecRef | None
    lemmas: tuple  # the lemma refs assumed


def queries(a: KernelVariant, b: KernelVariant) -> list[Query]:
    """The proof's queries (module docstring), call 0's first."""
    t = terms(a)
    pa, pb = _Policies(a), _Policies(b)
    pfn = z3.BitVec("pfn", 64)
    out = []
    for call in (0, 1):
        k, other = t.call(call), t.call(1 - call)
        # as the obligations assume them: pte_end_bounded only where PTEs are ever written read-only (on bare
        # metal it is refuted, and nothing needs it)
        names = (("walk_bounded", ()), ("pte_end_bounded", (pfn,))) if a.xen else (("walk_bounded", ()),)
        hyps = [Instance(name, t, x, args) for x in (k, other) for name, args in names]

        def reserved(pol: _Policies, k=k) -> z3.BoolRef:
            return z3.And(_hook_ran(k), _in(pfn, k.pgt_buf_start, k.pgt_buf_top), pol.reserve(pfn, k))

        # the PTEs after call 0 are final only where there is no call 1 (which may make call 0's pages RW)
        last = z3.BoolVal(True) if call == 1 else z3.Not(t.call1.exists)
        # a domU's pages from nr on (XEN EXTRA) have no mfn: no PTE is ever written for them
        if t.shape.platform == "xen":
            last = z3.And(last, z3.ULT(pfn, t.params.nr))
        ro_a, ro_b = _ro_after_call(pa, k, other, pfn), _ro_after_call(pb, k, other, pfn)
        differs = z3.Or(z3.And(last, ro_a != ro_b), reserved(pa) != reserved(pb))
        formula = z3.And(t.domain, k.exists, *(h.formula() for h in hyps), differs)
        out.append(Query(t, call, _STATE, formula, pfn, None, tuple(sorted({h.ref for h in hyps}))))
        for prop in PROPERTIES:
            oa, ob = build(a, prop, call), build(b, prop, call)
            formula = z3.And(oa.domain, oa.assumed(), ob.assumed(), oa.violation != ob.violation)
            alloc = oa.alloc if prop in ALLOCATION_PROPERTIES else None
            out.append(
                Query(t, call, prop, formula, oa.pfn, alloc, tuple(sorted(set(oa.lemmas) | set(ob.lemmas))))
            )
    return out


def _prove(a: KernelVariant, b: KernelVariant, limits: dict) -> EquivResult:
    compared = compared_text(a, b)
    unknown: list[str] = []
    found: list[tuple[Query, z3.ModelRef]] = []
    refs = set()
    for q in queries(a, b):
        refs.update(q.lemmas)
        answer = check(q.formula, **limits)
        if answer.status == "sat":
            found.append((q, answer.model))
        elif answer.status == "unknown":
            unknown.append(f"call {q.call} ({q.what}): {answer.reason}")
    if found:
        return _distinguish(a, b, found, limits, unknown)
    for variant in (a, b):
        for prop, call in sorted(reservation_premises(terms(a), 1)):
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
        return EquivResult(a, b, "unknown", PROOF, compared, detail="; ".join(unknown))
    return EquivResult(a, b, "equivalent", PROOF, compared)


def _minimal(q: Query, model: z3.ModelRef, bound: int | None, usual: bool, limits: dict):
    """The least machine (then page, then allocation) of `q`, below `bound` pages, with the default image if
    `usual`; None if there is none."""
    p = q.terms.params
    names = XEN_PARAMS if q.terms.shape.platform == "xen" else NATIVE_PARAMS
    query = z3.And(q.formula, defaults(q) if usual else True)
    if bound is not None:
        query = z3.And(query, z3.ULT(q.terms.size, c(bound)))
    if usual or bound is not None:
        answer = check(query, **limits)
        if answer.status != "sat":
            return None, answer.status == "unknown"
        model = answer.model
    tail = [q.pfn] + ([q.alloc] if q.alloc is not None else [])
    least = lexicographic_min(query, [*(getattr(p, n) for n in names), *tail], model, **limits)
    values = least.values
    machine = tuple(zip(names, values[: len(names)], strict=True))
    alloc = values[len(names) + 1] if q.alloc is not None else None
    return Witness(q.call, machine, values[len(names)], alloc, least.minimal), False


def _distinguish(
    a: KernelVariant,
    b: KernelVariant,
    found: list[tuple[Query, z3.ModelRef]],
    limits: dict,
    unknown: list[str],
) -> EquivResult:
    """The least machine over the satisfiable queries (with the default image if some query has one there),
    replayed for both variants; if the replay shows no difference, the least machine of the other queries."""
    compared = compared_text(a, b)
    cut_short = bool(unknown)
    remaining = list(found)
    tried: list[str] = []
    first = True
    while remaining and len(tried) < MAX_REPLAYS:
        best = None
        for usual in (True, False):
            for q, model in remaining:
                w, gave_up = _minimal(q, model, best[0].size if best else None, usual, limits)
                cut_short |= gave_up
                if w is not None:
                    best = (w, q, model)
            if best is not None:
                break
        if best is None:
            break
        w, q, model = best
        remaining = [(x, m) for x, m in remaining if x is not q]
        if w.mem_bytes > REPLAY_LIMIT_BYTES:
            tried.append(f"{w.describe()}: more memory than the replay limit {REPLAY_LIMIT_BYTES:#x}")
            continue
        res = EquivResult(a, b, "different", PROOF, compared, w.mem_bytes, q.call, witness=w, query=q.what)
        res.replay_a, res.replay_b = paired_boots(a, b, w.config(), w.config())
        _describe(res)
        if res.detail:
            if not (w.minimal and first) or cut_short:
                res.detail += (
                    " (perhaps not the smallest machine: minimisation cut short or not confirmed first)"
                )
            return res
        first = False
        tried.append(f"{w.describe()} (call {q.call}, {q.what}, pfn {w.pfn:#x}): the boots leave the same")
    if remaining:
        tried.append(f"{len(remaining)} more queries not replayed (at most {MAX_REPLAYS})")
    tried += [f"solver gave up on {reason}" for reason in unknown]
    return EquivResult(
        a, b, "unknown", PROOF, compared, detail="the closed form distinguishes them but no replay confirms it: "
        + "; ".join(tried),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ paired boots


def _paired(a: KernelVariant, b: KernelVariant, why: str, sizes: tuple[int, ...]) -> EquivResult:
    compared = compared_text(a, b)
    booted = []
    for mem in sorted(sizes):
        if mem < DOMAIN_MIN_PFN << 12:
            continue
        try:
            ra, rb = paired_boots(a, b, _config(a, mem), _config(b, mem))
        except ValueError:  # a machine the model cannot build for one of them
            continue
        booted.append(mem)
        res = EquivResult(
            a, b, "different", PAIRED, compared, mem, replay_a=ra, replay_b=rb, sizes=tuple(booted)
        )
        _describe(res)
        if res.detail:
            return res
    shown = ", ".join(_size_text(m) for m in booted) or "none"
    return EquivResult(
        a, b, "unknown", PAIRED, compared, sizes=tuple(booted),
        detail=f"not proved: {why}; paired boots at {shown} leave the same (a bounded check, not a proof)",
    )  # fmt: skip


def _size_text(mem: int) -> str:
    return f"{mem >> 20} MiB" if mem % MIB == 0 else f"{mem:#x} bytes"


def compare(
    a: KernelVariant,
    b: KernelVariant,
    *,
    rlimit: int = DEFAULT_RLIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sizes: tuple[int, ...] = PAIRED_SIZES,
) -> EquivResult:
    """`a` against `b` on what their boots leave (module docstring): by proof where the closed form can say,
    else by paired boots at `sizes`."""
    why = provable(a, b)
    if why:
        return _paired(a, b, why, sizes)
    return _prove(a, b, {"rlimit": rlimit, "timeout_s": timeout_s})


__all__ = [
    "PAIRED",
    "PAIRED_SIZES",
    "PROOF",
    "EquivResult",
    "compare",
    "compared_text",
    "differences",
    "paired_boots",
]
