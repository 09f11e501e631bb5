"""Proof obligations: for each property of DESIGN.md, the formula whose satisfying assignment is a violation.

Built from `walk.py` (the walk in closed form) and the variant's own parsed policies (`policy.to_z3`), so the
solver reads exactly what the boot walk evaluates. Free variables: the machine's parameters (`form.Params`), `pfn`
(the page that goes wrong) and, for `alias_writable` and `no_rw_alias`, `alloc` (the allocation whose pin or link
Xen rejects). `unsat` over the domain, with the lemma instances of `lemmas.py` assumed, means the property holds
for every machine of the domain.

The reserve step at the end of a call: `reserve` always (the inline `memblock_x86_reserve_range` of 2.6.37 and
2.6.39-rc6, `native_pagetable_reserve`, the seed's hook and its inline twin), `writable` only where the step
itself makes pages RW (`pagetable_reserve` 2.6.39 and inline, on Xen): 2.6.39-rc6's `mark_rw_past_pgt` does it
later, after the properties are judged (at the next call's first PTE write, or in `xen_post_allocator_init`),
and 2.6.37's code never. A deferred `writable` that covers a live table page is still a `no_rw_alias` violation of
the call whose buffer it is: Xen refuses the `update_va_mapping` whenever it comes (if it comes: only once
`mark_rw_past_pgt` finds the buffer's `pgt_buf_start` reserved).

`build(variant, "P@any", call)` is the same question with each call's `pgt_buf_start` free, anywhere the
release's memblock search allows (`form.py` item 3b, `placement.py`); its call 1 rests on call 0's `P@any`
reservation obligations as the high rule's does on call 0's `P`.

Call 1's buffer, in the high placement, goes below call 0's *reservation*, which the closed form takes to be
`[pgt_buf_start, pgt_buf_end)` (`form.calls`). That holds exactly where call 0 satisfies `live_reserved` and
`spare_freed`; an obligation of call 1 names those two as `rests_on`, and `prove.py` proves them before it trusts
an `unsat` of call 1 (a variant that reserves anything else has a counterexample in call 0 anyway).

A violation of `no_rw_alias` is one of: a page allocated as a table while an already pinned L1 of this call maps
it RW and the mapping is not reachable from the root yet (so `make_lowmem_page_readonly` does nothing and
`PIN_L1_TABLE` / `set_pud` fails); a table page whose own PTE a later L1 of this call writes RW; the reserve step
making a live table page RW again; or (map_low_page, 2.6.39-rc1+) the fixmap alias of an existing page table
written RW, which Xen refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from xenpin.linux.policy import to_z3
from xenpin.linux.variant import KernelVariant
from xenpin.symbolic import placement
from xenpin.symbolic.form import BRK_HOLE, Call, Params, anywhere, shape_of
from xenpin.symbolic.lemmas import Instance, LemmaRef
from xenpin.symbolic.walk import BV, Terms, c, terms, terms_of, umin

PROPERTY_TEXT = {
    "buffer_fits": "no alloc_low_page ever passes pgt_buf_top",
    "alias_writable": "every page alloc_low_page hands out is writable through its early_memremap alias",
    "no_rw_alias": "no page becomes a live table while a validated L1 maps it RW",
    "spare_writable": "after pagetable_reserve (or where its guard skips it), no mapped page in [pgt_buf_end,"
    " pgt_buf_top) stays read-only",
    "spare_freed": "no page in [pgt_buf_end, pgt_buf_top) stays reserved",
    "live_reserved": "every page in [pgt_buf_start, pgt_buf_end) is reserved",
}

# Properties whose violation is about one `alloc_low_page` (the witness names the allocation number).
ALLOCATION_PROPERTIES = ("alias_writable", "no_rw_alias")
BRK_PAGES = 16  # start_of_day: the .brk area at the end of the image
KERNEL_TABLES = 7  # start_of_day: head_64.S's tables and bm_pte, in the middle of the image


@dataclass(frozen=True)
class Obligation:
    """One (variant, property, call) question: `violation` satisfiable <=> a counterexample in `domain`."""

    variant: KernelVariant
    prop: str
    terms: Terms
    call: int  # which `init_memory_mapping` call (0, or 1 above 4 GiB)
    pfn: BV
    alloc: BV
    domain: z3.BoolRef
    hypotheses: tuple[Instance, ...]  # lemma instances (`lemmas.py`), each proved on its own
    violation: z3.BoolRef
    premise: z3.BoolRef  # non-vacuity: the situation the property talks about can arise
    # (property label, call) obligations whose `unsat` this one's meaning depends on (module docstring)
    rests_on: tuple[tuple[str, int], ...] = ()
    placement: str = (
        "rule"  # rule | any: the buffer where the variant's rule puts it, or anywhere (placement.py)
    )
    # Where the walk has an encoding of its own (topdown.py): what the property's situation is, in words; the
    # situation is then the obligation's `premise`. None: `SITUATIONS` over the closed form's buffer.
    own_situation: str | None = None

    @property
    def label(self) -> str:
        """The property as `prove` names it: `P`, or `P@any` (`placement.py`)."""
        return placement.label(self.prop, self.placement)

    @property
    def params(self) -> Params:
        return self.terms.params

    @property
    def size(self) -> BV:
        return self.terms.size

    @property
    def lemmas(self) -> list[LemmaRef]:
        """The lemmas this obligation's answer rests on (directly; `lemmas.closure` gives the rest)."""
        return sorted({h.ref for h in self.hypotheses})

    def assumed(self) -> z3.BoolRef:
        return z3.And(*(h.formula() for h in self.hypotheses))

    def formula(self) -> z3.BoolRef:
        return z3.And(self.domain, self.assumed(), self.violation)

    def non_vacuity(self) -> z3.BoolRef:
        return z3.And(self.domain, self.assumed(), self.premise)


class _Policies:
    def __init__(self, variant: KernelVariant) -> None:
        self.v = variant
        # the reserve step itself makes [end, top) RW only in the seed's hook (and its inline twin), on Xen
        self.restores = variant.xen and variant.code["pagetable_reserve"] in ("2.6.39", "inline")
        # 2.6.39-rc6's mark_rw_past_pgt applies `writable` to the buffer after the call (module docstring)
        self.restores_later = variant.xen and variant.code["pagetable_reserve"] == "2.6.39-rc6"

    def _env(self, pfn: BV, start: BV, end: BV, top: BV, ioremap: bool = False) -> dict:
        return {
            "pfn": pfn,
            "pgt_buf_start": start,
            "pgt_buf_end": end,
            "pgt_buf_top": top,
            "ioremap": z3.BoolVal(ioremap),
        }

    def readonly(self, pfn: BV, start: BV, end: BV, top: BV, ioremap: bool = False) -> z3.BoolRef:
        """`mask_rw_pte` for the PTE of `pfn`: the direct map, or (`ioremap`) the `early_memremap` alias."""
        if not self.v.xen:
            return z3.BoolVal(False)
        return to_z3(self.v.readonly, self._env(pfn, start, end, top, ioremap))

    def reserve(self, pfn: BV, k: Call) -> z3.BoolRef:
        return to_z3(self.v.reserve, self._env(pfn, k.pgt_buf_start, k.pgt_buf_end, k.pgt_buf_top))

    def writable(self, pfn: BV, k: Call, later: bool = False) -> z3.BoolRef:
        """The reserve step makes `pfn` RW (`later`: or, 2.6.39-rc6, the deferred `mark_rw_past_pgt`)."""
        if not (self.restores or (later and self.restores_later)):
            return z3.BoolVal(False)
        return to_z3(self.v.writable, self._env(pfn, k.pgt_buf_start, k.pgt_buf_end, k.pgt_buf_top))


def _in(x: BV, lo: BV, hi: BV) -> z3.BoolRef:
    return z3.And(z3.UGE(x, lo), z3.ULT(x, hi))


def _hook_ran(k: Call) -> z3.BoolRef:
    return z3.UGT(k.pgt_buf_end, k.pgt_buf_start)


def _ro_when_written(pol: _Policies, k: Call, pfn: BV) -> z3.BoolRef:
    """The direct-map PTE `call k` wrote for `pfn` is read-only (`mask_rw_pte` at that moment)."""
    return z3.And(
        k.is_new_chunk_pfn(pfn),
        pol.readonly(pfn, k.pgt_buf_start, k.end_when_pte_written(pfn), k.pgt_buf_top),
    )


def _ro_after_hook(pol: _Policies, k: Call, pfn: BV) -> z3.BoolRef:
    """`pfn`'s PTE is read-only once call k's reserve step has run (it only ever sets RW)."""
    return z3.And(
        _ro_when_written(pol, k, pfn),
        z3.Not(z3.And(_hook_ran(k), _in(pfn, k.pgt_buf_start, k.pgt_buf_top), pol.writable(pfn, k))),
    )


def _ro_after_call(pol: _Policies, k: Call, other: Call, pfn: BV) -> z3.BoolRef:
    """`pfn` read-only right after call k's reserve step: written RO by this call, or (call 1, a page call 0
    mapped) left RO by call 0, and not made RW by this call's step."""
    ro = _ro_after_hook(pol, k, pfn)
    if k.index == 1:
        earlier = z3.And(z3.ULT(pfn, other.range_end), _ro_after_hook(pol, other, pfn))
        restored = z3.And(_hook_ran(k), _in(pfn, k.pgt_buf_start, k.pgt_buf_top), pol.writable(pfn, k))
        ro = z3.Or(ro, z3.And(earlier, z3.Not(restored)))
    return ro


def _unfixable_rw_alias(
    pol: _Policies, k: Call, q: BV, check_after: BV, strictly_before_link: bool
) -> z3.BoolRef:
    """At the check (after allocation `check_after`), an RW PTE of `q` written by call k exists and no walk
    from the root reaches it, so `make_lowmem_page_readonly(q)` silently does nothing."""
    written = k.pte_alloc(q)
    reachable = z3.ULT(k.gib_linked_after(q), check_after)
    return z3.And(
        k.is_new_chunk_pfn(q),
        z3.ULE(written, check_after),
        z3.Not(pol.readonly(q, k.pgt_buf_start, k.pgt_buf_start + written, k.pgt_buf_top)),
        z3.Not(reachable) if strictly_before_link else z3.BoolVal(True),
    )


def existing_tables(t: Terms, k: Call, pfn: BV) -> z3.BoolRef:
    """`pfn` is a page table the call reaches through `map_low_page` before it allocates anything: call 0's
    `level3_ident_pgt`, `level2_ident_pgt` and the L1s of the mapped chunks (Xen's, then level1_ident_pgt in
    the brk); call 1's `level3_ident_pgt` (`start_of_day._kernel_tables`)."""
    p, lay = t.params, t.layout
    kernel_end = c(0x1000) + p.kernel
    data = c(0x1000) + z3.LShR(p.kernel, 1)
    l3 = pfn == data + c(1)
    if k.index == 1:
        return l3
    xen_l1s = lay.pt_base + c(3)
    brk = kernel_end - c(BRK_PAGES)
    ext = lay.existing_chunks - z3.LShR(lay.v_end, 9)
    return z3.Or(
        l3,
        pfn == data + c(2),
        _in(pfn, xen_l1s, xen_l1s + z3.LShR(lay.v_end, 9)),
        _in(pfn, brk, brk + ext),
    )


Violation = tuple[z3.BoolRef, z3.BoolRef, list[Instance]]


def _violation(prop: str, pol: _Policies, t: Terms, k: Call, pfn: BV, alloc: BV, other: Call) -> Violation:
    """(violation, premise, lemma instances the proof uses) of `prop` for call `k`."""
    start, end, top = k.pgt_buf_start, k.pgt_buf_end, k.pgt_buf_top
    bounded = [Instance("walk_bounded", t, k)]
    if prop == "buffer_fits":  # about allocations: vacuous where the closed form has none (3.9's walk)
        return z3.UGT(k.total_allocs, k.tables), z3.UGE(k.total_allocs, c(1)), bounded
    if prop == "alias_writable":
        # `alloc_low_page` hands out q = pgt_buf_end++ and maps it through `early_memremap`, whose PTE goes
        # through `mask_rw_pte` with `ioremap` set and the incremented pgt_buf_end; a read-only alias faults
        # on the first store that fills the page.
        q = start + alloc - c(1)
        premise = z3.And(z3.UGE(alloc, c(1)), z3.ULE(alloc, k.total_allocs), pfn == q)
        if not pol.v.xen:
            return z3.BoolVal(False), premise, bounded
        alias_ro = pol.readonly(q, start, start + alloc, top, ioremap=True)
        return z3.And(premise, alias_ro), premise, [*bounded, Instance("alloc_in_buffer", t, k, (alloc,))]
    if prop == "spare_freed":
        premise = z3.And(_hook_ran(k), _in(pfn, end, top))
        return z3.And(premise, pol.reserve(pfn, k)), premise, bounded
    if prop == "live_reserved":
        premise = _in(pfn, start, end)
        return z3.And(premise, z3.Not(z3.And(_hook_ran(k), pol.reserve(pfn, k)))), premise, bounded
    if prop == "spare_writable":
        # Every buffer, hooked or not: where the `pgt_buf_end > pgt_buf_start` guard skips the step, nothing
        # makes [start, top) RW again, so a page left RO there is a violation too.
        premise = _in(pfn, end, top)
        if not pol.v.xen or t.shape.placement == "mapped":  # no PTE is ever written RO
            return z3.And(premise, _ro_after_call(pol, k, other, pfn)), premise, bounded
        hints = [*bounded, Instance("pte_end_bounded", t, k, (pfn,))]
        if k.index == 1:
            hints += [Instance("walk_bounded", t, other), Instance("pte_end_bounded", t, other, (pfn,))]
        return z3.And(premise, _ro_after_call(pol, k, other, pfn)), premise, hints
    if prop == "no_rw_alias":
        return _no_rw_alias(pol, t, k, other, pfn, alloc, bounded)
    raise ValueError(f"unknown property {prop!r}")


def _no_rw_alias(
    pol: _Policies, t: Terms, k: Call, other: Call, pfn: BV, alloc: BV, bounded: list[Instance]
) -> Violation:
    start, end, top = k.pgt_buf_start, k.pgt_buf_end, k.pgt_buf_top
    q = start + alloc - c(1)
    allocated = z3.And(z3.UGE(alloc, c(1)), z3.ULE(alloc, k.total_allocs), pfn == q)
    if not pol.v.xen:  # bare metal: nothing validates tables
        return z3.BoolVal(False), z3.UGE(k.total_allocs, c(1)), bounded
    # The allocation is a PMD page iff it is the first of its GiB's allocations (GiB >= g0).
    gib_of_alloc = z3.BitVec(f"gib{k.index}", 64)
    allocated = z3.And(allocated, _gib_of_allocation(k, alloc, gib_of_alloc))
    is_pmd = z3.And(z3.UGE(gib_of_alloc, k.first_new_gib), alloc == k.pmd_alloc(gib_of_alloc))
    last_of_gib = k.chunk_alloc(umin(gib_of_alloc * c(512) + c(511), k.last_chunk))
    pin_fails = _unfixable_rw_alias(pol, k, q, alloc, True)
    link_fails = _unfixable_rw_alias(pol, k, q, last_of_gib, True)
    bad_alloc = z3.And(allocated, z3.If(is_pmd, link_fails, pin_fails))
    # The reverse order: q's own direct-map PTE is written RW by a later L1 of this call, after q became a
    # table. Pinning that L1 takes a writable ref on q: Xen refuses it if q is live already, and if q is a
    # PMD page not linked yet, its `set_pud` validation fails instead. Either way a violation.
    written = k.pte_alloc(q)
    mapped_rw_later = z3.And(
        allocated,
        k.is_new_chunk_pfn(q),
        z3.UGT(written, alloc),
        z3.Not(pol.readonly(q, start, start + written, top)),
    )
    hook_rw_live = z3.And(_hook_ran(k), _in(pfn, start, end), pol.writable(pfn, k))
    parts = [bad_alloc, mapped_rw_later, hook_rw_live]
    if pol.restores_later:
        # mark_rw_past_pgt restores a buffer once it finds its pgt_buf_start reserved; it follows call 0's buffer
        # until then, so it comes to call 1's only if call 0's start was reserved too.
        restored = pol.reserve(start, k)
        if k.index == 1:
            restored = z3.And(restored, z3.And(_hook_ran(other), pol.reserve(other.pgt_buf_start, other)))
        parts.append(z3.And(_hook_ran(k), restored, _in(pfn, start, end), pol.writable(pfn, k, later=True)))
    if pol.v.map_low_page:  # an existing table's fixmap alias, mapped while pgt_buf_end == pgt_buf_start
        parts.append(
            z3.And(existing_tables(t, k, pfn), z3.Not(pol.readonly(pfn, start, start, top, ioremap=True)))
        )
    premise = z3.UGE(k.total_allocs, c(1))
    return z3.Or(*parts), premise, [*bounded, Instance("alloc_in_buffer", t, k, (alloc,))]


def _gib_of_allocation(k: Call, alloc: BV, gib: BV) -> z3.BoolRef:
    """`gib` is the GiB being mapped when allocation number `alloc` happens (inverse of `chunk_alloc`).

    Stated as bounds rather than a division: the allocations of a new GiB g run from its PMD page to its last
    chunk's PTE page; in the first call, GiB 0 (existing PMD page) comes first.
    """
    first_of_new = k.pmd_alloc(gib)
    last = k.chunk_alloc(umin(gib * c(512) + c(511), k.last_chunk))
    in_new_gib = z3.And(z3.UGE(gib, k.first_new_gib), z3.UGE(alloc, first_of_new), z3.ULE(alloc, last))
    in_old_gib = z3.And(
        gib == k.first_new_gib - c(1),
        z3.ULT(gib, k.first_new_gib),
        z3.ULE(alloc, k.pmd_alloc(k.first_new_gib)),
    )
    return z3.And(z3.ULE(gib, c(1 << 20)), z3.Or(in_new_gib, in_old_gib))


def build(variant: KernelVariant, prop: str, call_index: int) -> Obligation:
    """The obligation for one property of one variant, in one `init_memory_mapping` call, over all machines;
    `prop` is a label (`placement.py`): `P@any` for every placement the search allows."""
    prop, where = placement.split(prop)
    if topdown.applies(
        variant
    ):  # 3.9's top-down init_mem_mapping has an encoding of its own (no buffer to place)
        return topdown.build(variant, prop, call_index)
    t = terms_of(anywhere(shape_of(variant))) if where == placement.ANY else terms(variant)
    pfn = z3.BitVec("pfn", 64)
    alloc = z3.BitVec("alloc", 64)
    k, other = t.call(call_index), t.call(1 - call_index)
    violation, premise, hypotheses = _violation(prop, _Policies(variant), t, k, pfn, alloc, other)
    return Obligation(
        variant,
        prop,
        t,
        call_index,
        pfn,
        alloc,
        z3.And(t.domain, k.exists),
        tuple(hypotheses),
        violation,
        premise,
        reservation_premises(t, call_index),
        where,
    )


def reservation_premises(t: Terms, call_index: int) -> tuple[tuple[str, int], ...]:
    """The call-0 obligations call `call_index`'s closed form rests on (module docstring): the high rule's, and
    every placement anywhere (call 1's buffer stays out of call 0's reservation, `form.py` item 3b)."""
    if call_index != 1 or t.shape.platform != "xen":
        return ()
    if t.shape.anywhere:
        return (("live_reserved@any", 0), ("spare_freed@any", 0))
    if t.shape.placement == "high":
        return (("live_reserved", 0), ("spare_freed", 0))
    return ()


@dataclass(frozen=True)
class Equivalence:
    """Do two variants leave the same direct-map RW bits and reservations for every machine? `sat` = no."""

    terms: Terms
    pfn: BV
    formula: z3.BoolRef  # includes the lemma instances `hypotheses`
    hypotheses: tuple[Instance, ...]
    rests_on: tuple[tuple[str, int], ...]  # each variant's (property, call) obligations this one needs unsat
    ro_a: z3.BoolRef
    ro_b: z3.BoolRef
    reserved_a: z3.BoolRef
    reserved_b: z3.BoolRef


def build_equiv(a: KernelVariant, b: KernelVariant, call_index: int) -> Equivalence | None:
    """A distinguishing machine: one where both variants are in their domain, and a page of either buffer
    whose RW bit right after the call, or whose reservation, differs between them. None when the two variants'
    walks are of different shapes (the closed form compares variants that differ only in their policies)."""
    ta, tb = terms(a), terms(b)
    if ta.shape != tb.shape:
        return None
    pfn = z3.BitVec("pfn", 64)
    ka, kb = ta.call(call_index), tb.call(call_index)
    oa, ob = ta.call(1 - call_index), tb.call(1 - call_index)
    pa, pb = _Policies(a), _Policies(b)

    def reserved(pol: _Policies, k: Call) -> z3.BoolRef:
        return z3.And(_hook_ran(k), _in(pfn, k.pgt_buf_start, k.pgt_buf_top), pol.reserve(pfn, k))

    ro_a, ro_b = _ro_after_call(pa, ka, oa, pfn), _ro_after_call(pb, kb, ob, pfn)
    res_a, res_b = reserved(pa, ka), reserved(pb, kb)
    in_buffer = _in(pfn, ka.pgt_buf_start, ka.pgt_buf_top)
    hypotheses = tuple(
        Instance(name, ta, k, args)
        for k in {id(x): x for x in (ka, oa)}.values()
        for name, args in (("walk_bounded", ()), ("pte_end_bounded", (pfn,)))
    )
    formula = z3.And(
        ta.domain,
        ka.exists,
        *(h.formula() for h in hypotheses),
        in_buffer,
        z3.Or(ro_a != ro_b, res_a != res_b),
    )
    premises = reservation_premises(ta, call_index)
    return Equivalence(ta, pfn, formula, hypotheses, premises, ro_a, ro_b, res_a, res_b)


# 3.9's encoding builds on this module (and registers its lemmas on import)
from xenpin.symbolic import topdown  # noqa: E402

__all__ = [
    "ALLOCATION_PROPERTIES",
    "BRK_HOLE",
    "PROPERTY_TEXT",
    "SITUATIONS",
    "Equivalence",
    "Obligation",
    "build",
    "build_equiv",
    "reservation_premises",
    "situation",
    "situation_text",
]


# --- the situation each property talks about ---------------------------------------------------------------

# What must be able to happen in a call for a proof of the property to say anything about it: `prove.py` checks
# it satisfiable together with the call's domain (besides each obligation's own premise), else the verdict is
# `vacuous`. Stated over the walk's terms only (no pfn, no allocation number): one machine where it holds.
SITUATIONS: dict[str, str] = {
    "buffer_fits": "alloc_low_page is called",
    "alias_writable": "alloc_low_page hands out a page and maps it through an early_memremap alias (3.9's"
    " alloc_low_pages hands out pages the direct map already covers: no alias)",
    "no_rw_alias": "a page becomes a live page table (alloc_low_page is called)",
    "spare_writable": "a spare tail [pgt_buf_end, pgt_buf_top) is left after the walk",
    "spare_freed": "the reserve step runs and a spare tail [pgt_buf_end, pgt_buf_top) is left",
    "live_reserved": "a live table page in [pgt_buf_start, pgt_buf_end) exists",
}


def situation_text(ob: Obligation) -> str:
    """What must be able to happen for a proof of `ob` to say anything (`SITUATIONS`, or the walk's own)."""
    return ob.own_situation if ob.own_situation is not None else SITUATIONS[ob.prop]


def situation(ob: Obligation) -> z3.BoolRef:
    """`SITUATIONS[ob.prop]` for the obligation's call, as a formula over the machine's parameters (or the
    walk's own, `Obligation.own_situation`)."""
    if ob.own_situation is not None:
        return ob.premise
    k = ob.terms.call(ob.call)
    allocates = z3.UGE(k.total_allocs, c(1))
    tail = z3.ULT(k.pgt_buf_end, k.pgt_buf_top)
    aliased = (
        ob.variant.code.get("kernel_physical_mapping_init") != "3.9"
    )  # init_memory_mapping.alloc_low_page
    return {
        "buffer_fits": allocates,
        "alias_writable": z3.And(allocates, z3.BoolVal(aliased)),
        "no_rw_alias": allocates,
        "spare_writable": tail,
        "spare_freed": z3.And(_hook_ran(k), tail),
        "live_reserved": z3.ULT(k.pgt_buf_start, k.pgt_buf_end),
    }[ob.prop]
