"""3.9's top-down `init_mem_mapping` (8d57470d8f85 series) in closed form: the steps unrolled, the allocations
counted, each allocation's page as a term, over an arithmetic backend (Python ints, or Z3 bit-vectors of the
parameters' low 32 bits: the domain keeps every quantity below 2**28 pages).

Read at 3.9.6 (arch/x86/mm/init.c, init_64.c, arch/x86/xen/mmu.c) and mirrored from the executable model
(`xenpin.linux.init_memory_mapping`, `setup_arch`, `start_of_day`, `xen_setup`), for a 64-bit PV domU:
1. Before the walk (`form.layout`, 3.9 shape): the kernel image `[0x1000, 0x1000 + kernel)` with its brk at the
   end (`brk = kernel_end - 16`; the BRK seed `early_alloc_pgt_buf` is `[brk + 4, brk + 9)`, and `reserve_brk`
   reserves `[brk, brk + 9)` "BRK"); the ramdisk; Xen's `mfn_list` .. `pt_end` (reserved "XEN START INFO" and
   "XEN PAGETABLES" from `pt_base + 3`: `check_pt_base` frees Xen's L4, L3, L2); the builder's L1s map
   `[0, v_end)` RW but its tables; XEN EXTRA `[nr, max_pfn)` is RAM, reserved. Nothing else is reserved above
   1 MiB, so the highest free 2 MiB is `[R - 512, R)` with `R = nr & ~511` (`real_end`), where `R - 512 >= pt_end`.
2. The steps (`init_mem_mapping`): `last_start = R`, `step = 2 MiB`; while `last_start > 1 MiB`: `start =
   max(round_down(last_start - 1, step), 1 MiB)`, map `[start, last_start)` (all RAM above 1 MiB, one
   `init_memory_mapping` call), `step <<= 5` if it mapped more than all steps before; then `[R, max_pfn)`. The
   schedule depends on R only, and the steps together map `[last_start, R)`: the loop's state is `last_start`
   and how many times the step grew. At most `MAX_STEPS` (8) iterations for every R up to 500 GiB: the lemma
   `topdown_steps`.
3. Each range's allocations (`kernel_physical_mapping_init`, ascending): a PTE page per 2 MiB chunk without an L1
   (the builder's L1s cover chunks `< v_end / 512`; each later chunk lies in exactly one step: every boundary
   but 1 MiB and `max_pfn` is 2 MiB aligned), a PMD page per GiB no step touched before (GiB 0 has
   `level2_ident_pgt`; the GiB holding a step's end was touched by the step before, unless that end is
   GiB-aligned). 500 GiB < 512 GiB: `level3_ident_pgt` covers every GiB, no PUD page.
4. `alloc_low_pages`: while the BRK seed has a page left and `can_use_brk_pgt` (the range does not overlap the
   seed's unused part), the seed's next page; otherwise `memblock_find_in_range(min_pfn_mapped, max_pfn_mapped)`,
   `memblock_reserve`d. During step 1 `max_pfn_mapped` is 0 (nothing from memblock: "ran out of memory"); in
   later steps memblock offers `[last_start, R)`, the memory the steps before mapped, and in the final range
   `[1 MiB, R)`. Its search is top-down and the pages it has taken are reserved, so the m-th memblock page is
   `R - m` as long as the run stays above `pt_end` (nothing else is reserved there): the lemma `topdown_run`.

The obligations (`build`) state the six properties for this allocator (README-topdown.md), over a superset of
the pages the walk hands out (the seed's and the run's up to the table count), so `unsat` proves the property
and a `sat` is replayed; both exactness lemmas are assumed and proved on their own. `buffer_fits` goes by cases:
a lemma per step that provably fits (`STEP_LEMMAS`), the obligation for the one that can run out (`RUNS_OUT`).
The Python-int evaluation (`evaluate`) is tested against the boot walk (tests/symbolic/test_topdown.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from xenpin.linux.e820 import ISA_END_ADDRESS
from xenpin.linux.init_memory_mapping import INIT_PGT_BUF_PAGES, STEP_SIZE_SHIFT
from xenpin.linux.policy import to_z3
from xenpin.linux.start_of_day import BRK_PAGES, LEVEL1_IDENT_PAGES
from xenpin.linux.variant import KernelVariant
from xenpin.symbolic.form import INT, KERNEL_START, Call, Params, Shape, Z3Ops, cdiv, layout, umax
from xenpin.symbolic.lemmas import LEMMAS, Instance, Lemma, LemmaRef
from xenpin.symbolic.obligations import Obligation
from xenpin.symbolic.walk import BV, Terms, c, terms

MAX_STEPS = (
    8  # init_mem_mapping's top-down iterations for any real_end up to 500 GiB (re-proved per obligation)
)
ISA_END = ISA_END_ADDRESS >> 12  # 0x100
CHUNK = 9  # a 2 MiB chunk: one PTE page
GIB = 18  # a GiB: one PMD page
SHAPE_39 = Shape("xen", "mapped", "none", "3.9", "3.9")  # `form.shape_of(3.9)`
ONE_L2 = 1 << GIB
STEPS_LEMMA = "topdown_steps"
RUN_LEMMA = "topdown_run"  # the builder's one L2 maps at most 1 GiB: v_end above it is outside the model


@dataclass(frozen=True)
class Step:
    """One `init_memory_mapping(start, end)` of the walk, in the order it runs, as terms."""

    index: int  # 1 .. MAX_STEPS: top-down steps; MAX_STEPS + 1: the final `[real_end, max_pfn)`
    active: Any  # the step runs
    start: Any
    end: Any
    allocs: Any  # alloc_low_pages calls (0 if not active)
    from_seed: Any  # of them, from the BRK seed (a prefix of the step's allocations)
    seed_end_before: Any  # pgt_buf_end when the step starts
    allocs_before: Any  # allocations of the steps before
    memblock_before: Any  # memblock pages taken before
    lowest_mapped: Any  # min_pfn_mapped during the step (memblock offers [lowest_mapped, R))

    @property
    def from_memblock(self):
        return self.allocs - self.from_seed


@dataclass(frozen=True)
class TopDown:
    """3.9's walk for one machine (module docstring), over `ops`."""

    ops: Any
    params: Params
    real_end: Any  # R
    max_pfn: Any
    v_end: Any
    pt_base: Any
    pt_end: Any
    brk: Any  # the brk's first page; the seed is [brk + 4, brk + 9)
    seed_start: Any
    seed_top: Any
    steps: tuple[Step, ...]  # MAX_STEPS top-down steps, then the final one
    beyond: Any  # the loop runs more than MAX_STEPS times
    seed_end: Any  # pgt_buf_end after the walk
    total_allocs: Any
    total_memblock: Any

    @property
    def final(self) -> Step:
        return self.steps[-1]

    @property
    def brk_reserved_end(self):
        return self.brk + self.ops.c(LEVEL1_IDENT_PAGES + INIT_PGT_BUF_PAGES)

    @property
    def inexact(self):
        """Where the closed form would not describe the walk: more steps than unrolled, no free 2 MiB right
        below `nr` above Xen's area, or a memblock run reaching down to it (it would skip reservations)."""
        o = self.ops
        return o.or_(
            self.beyond,
            o.lt(self.real_end, self.pt_end + o.c(512)),
            o.gt(self.total_memblock, self.real_end - self.pt_end),
        )

    def panics(self):
        """Some `alloc_low_pages` panics: step 1 needs memblock (`max_pfn_mapped` is 0), or a step's memblock
        pages do not fit in `[lowest_mapped, R)` ("can not alloc memory")."""
        o, r = self.ops, self.real_end
        out = [o.gt(self.steps[0].from_memblock, o.c(0))]
        for s in self.steps[1:]:
            out.append(o.and_(s.active, o.gt(s.memblock_before + s.from_memblock, r - s.lowest_mapped)))
        return o.or_(*out)

    def may_panic(self, index: int | None = None):
        """A necessary condition of `panics` (in step `index` only, if given), without the seed's share: step 1
        takes more than the seed holds (or maps it), or the tables up to a later step exceed the memory the steps
        before it mapped."""
        o, r = self.ops, self.real_end
        out = []
        for s in self.steps:
            if index is not None and s.index != index:
                continue
            if s.index == 1:
                out += [o.gt(s.allocs, o.c(INIT_PGT_BUF_PAGES)), o.lt(s.start, self.seed_top)]
            else:
                out.append(o.and_(s.active, o.gt(s.allocs_before + s.allocs, r - s.lowest_mapped)))
        return o.or_(*out)

    def allocation(self, n):
        """Allocation number `n` (1-based, in the order the walk makes them): (its page, whether it comes from the
        seed, its step's `lowest_mapped`, whether it succeeds: step 1 has no memblock, a later step's memblock
        page must lie in `[lowest_mapped, R)`), as if-then-else chains over the steps. A memblock page is
        `R - (n - seed pages used up to its step)`."""
        o = self.ops
        page, seed, low, ok = o.c(0), o.false, o.c(0), o.false
        for s in reversed(self.steps):
            j = n - s.allocs_before  # 1-based within the step
            here = o.and_(s.active, o.gt(n, s.allocs_before), o.le(n, s.allocs_before + s.allocs))
            in_seed = o.le(j, s.from_seed)
            used = s.seed_end_before - self.seed_start + s.from_seed
            p = o.ite(in_seed, s.seed_end_before + j - o.c(1), self.real_end - (n - used))
            fine = o.true if s.index > 1 else o.false
            p_ok = o.or_(in_seed, o.and_(fine, o.ge(p, s.lowest_mapped)))
            page, seed = o.ite(here, p, page), o.ite(here, in_seed, seed)
            low, ok = o.ite(here, s.lowest_mapped, low), o.ite(here, p_ok, ok)
        return page, seed, low, ok


def _round_down(ops, x, growths: int, grown):
    """`round_down(x, step_size)` with `step_size = 2 MiB << 5 * grown` (`grown` <= `growths`): one mask per
    value; from 2 TiB on it is 0 (every R of the domain is below)."""
    out = ops.c(0)
    for g in reversed(range(min(growths, 3) + 1)):
        shift = CHUNK + STEP_SIZE_SHIFT * g
        out = ops.ite(ops.eq(grown, ops.c(g)), x & ops.c(~((1 << shift) - 1) & ((1 << 64) - 1)), out)
    return out


def _tables(ops, start, end, first_new_chunk):
    """The table pages mapping `[start, end)` takes when no step touched it before (the steps from `start` up to
    R, together): a PTE page per 2 MiB chunk from the first one without an L1, a PMD page per GiB but GiB 0."""
    lo = umax(ops, ops.shr(start, CHUNK), first_new_chunk)
    hi = cdiv(ops, end, CHUNK)
    ptes = ops.ite(ops.gt(hi, lo), hi - lo, ops.c(0))
    glo = umax(ops, ops.shr(start, GIB), ops.c(1))
    ghi = ops.shr(end - ops.c(1), GIB) + ops.c(1)
    pmds = ops.ite(ops.gt(ghi, glo), ghi - glo, ops.c(0))
    return ptes + pmds


def walk(ops, p: Params) -> TopDown:
    """The walk of module docstring items 1-4 for the machine `p`.

    The steps map `[last_start, R)` together, so the allocations up to a step are a closed form of its start
    (`_tables`), the memory mapped before it is `R - last_start`, and the loop's state is `last_start` and the
    number of times the step size grew."""
    c_ = ops.c
    lay = layout(ops, SHAPE_39, p)
    r = ops.shr(p.nr, CHUNK) * c_(512)
    first_new_chunk = ops.shr(lay.v_end, CHUNK)
    kernel_end = c_(KERNEL_START) + p.kernel
    brk = kernel_end - c_(BRK_PAGES)
    seed_start = brk + c_(LEVEL1_IDENT_PAGES)
    seed_top = seed_start + c_(INIT_PGT_BUF_PAGES)

    steps: list[Step] = []
    seed_used, allocs = c_(0), c_(0)

    def seed_after(used, n, start, end):
        """The seed pages used after a step of `n` allocations over `[start, end)`, given `used` before: a case
        per value of `used` (0 .. 5), so the solver sees small constants rather than a chain of sums."""
        out = c_(INIT_PGT_BUF_PAGES)
        for k in reversed(range(INIT_PGT_BUF_PAGES)):
            # can_use_brk_pgt = max(start, pgt_buf_end) >= min(end, pgt_buf_top), pgt_buf_end = seed_start + k
            can_use = ops.or_(ops.ge(start, end), ops.ge(start, seed_top), ops.le(end, seed_start + c_(k)))
            take = c_(0)
            for m in range(1, INIT_PGT_BUF_PAGES - k + 1):  # min(n, 5 - k)
                take = ops.ite(ops.ge(n, c_(m)), c_(k + m), take if m > 1 else c_(k))
            value = ops.ite(can_use, take, c_(k)) if INIT_PGT_BUF_PAGES - k >= 1 else c_(k)
            out = ops.ite(ops.eq(used, c_(k)), value, out)
        return out

    def step(index, active, start, end, upto, lowest):
        """`upto`: the allocations of the walk up to and including this step."""
        nonlocal seed_used, allocs
        n = ops.ite(active, upto - allocs, c_(0))
        after = seed_after(seed_used, n, start, end)
        s = Step(index, active, start, end, n, after - seed_used, seed_start + seed_used, allocs, allocs - seed_used,
                 lowest)  # fmt: skip
        seed_used, allocs = after, ops.ite(active, upto, allocs)
        steps.append(s)

    last_start, grown = r, c_(0)
    for i in range(1, MAX_STEPS + 1):
        active = ops.gt(last_start, c_(ISA_END))
        start = umax(ops, _round_down(ops, last_start - c_(1), i - 1, grown), c_(ISA_END))
        # during step 1 min_pfn_mapped = R and max_pfn_mapped = 0; later memblock offers [last_start, R)
        step(i, active, start, last_start, _tables(ops, start, r, first_new_chunk), last_start)
        # only increase step_size after big range get mapped: more than the R - last_start before
        grow = ops.and_(active, ops.gt(last_start - start, r - last_start))
        grown = ops.ite(grow, grown + c_(1), grown)
        last_start = ops.ite(active, start, last_start)
    beyond = ops.gt(last_start, c_(ISA_END))
    final_active = ops.lt(r, lay.max_pfn)
    # R <= max_pfn: with the final step or without it, the walk maps [1 MiB, max_pfn)
    total = _tables(ops, c_(ISA_END), lay.max_pfn, first_new_chunk)
    step(MAX_STEPS + 1, final_active, r, lay.max_pfn, total, c_(ISA_END))
    return TopDown(ops, p, r, lay.max_pfn, lay.v_end, lay.pt_base, lay.pt_end, brk, seed_start, seed_top,
                   tuple(steps), beyond, seed_start + seed_used, total, total - seed_used)  # fmt: skip


# ------------------------------------------------------------------------------------------------ obligations

# What of a variant's code the encoding describes: 3.9's walk, start of day and memory map (`initmem_init` runs
# after the walk and does not matter to it).
SUPPORTED_CODE = {"init_mem_mapping": "3.9", "kernel_physical_mapping_init": "3.9",
                  "xen_setup_kernel_pagetable": "3.9", "xen_memory_setup": "3.9", "pagetable_reserve": "3.9"}  # fmt: skip


def applies(variant: KernelVariant) -> bool:
    """The variant's walk is 3.9's top-down one (`obligations.build` hands it here)."""
    return variant.xen and variant.code["init_mem_mapping"] == "3.9"


def check_supported(variant: KernelVariant) -> None:
    """ValueError naming the first `[code]` entry the encoding does not describe."""
    for key, version in SUPPORTED_CODE.items():
        if variant.code.get(key) != version:
            raise ValueError(
                f"{variant.name}: [code] {key} = {variant.code.get(key)!r} with init_mem_mapping 3.9: the top-down"
                f" encoding describes {key} {version!r} only"
            )


class Z3Ops32(Z3Ops):
    """32-bit Z3 bit-vectors: the domain keeps every quantity of the walk below 2**28 pages (500 GiB), so the
    walk is built on the parameters' low 32 bits (`NARROW`: their high bits are zero in the domain)."""

    @staticmethod
    def c(v: int) -> z3.BitVecRef:
        return z3.BitVecVal(v & 0xFFFFFFFF, NARROW)

    udiv = staticmethod(lambda x, d: z3.UDiv(x, z3.BitVecVal(d, NARROW)))


NARROW = 32
Z3_32 = Z3Ops32()
_WALKS: dict[int, TopDown] = {}


def narrow(x: BV) -> BV:
    return z3.Extract(NARROW - 1, 0, x)


def wide(x: BV) -> BV:
    return z3.ZeroExt(64 - NARROW, x)


def fits(x: BV) -> z3.BoolRef:
    """`x` has no bits above the narrow width."""
    return z3.Extract(63, NARROW, x) == 0


def symbolic_walk(t: Terms) -> TopDown:
    """The walk over the 3.9 shape's shared parameters, in `NARROW` bits (built once per process)."""
    key = id(t.params)
    if key not in _WALKS:
        p = t.params
        names = ("nr", "kernel", "ramdisk", "slack", "low_end", "high_end", "base0", "base1", "gbpages")
        _WALKS[key] = walk(Z3_32, Params(*(narrow(getattr(p, n)) for n in names)))
    return _WALKS[key]


def n32(v: int) -> BV:
    return z3.BitVecVal(v, NARROW)


def _in(x: BV, lo: BV, hi: BV) -> z3.BoolRef:
    return z3.And(z3.UGE(x, lo), z3.ULT(x, hi))


def readonly(variant: KernelVariant, pfn: BV) -> z3.BoolRef:
    """The variant's `readonly` for a direct-map PTE the walk writes (`pfn` narrow): 3.9's `mask_rw_pte` is
    `return pte;` and the old buffer globals are gone from Xen's code, so the model evaluates it with
    `pgt_buf_*` = 0 and `ioremap` false (the walk maps no `early_memremap` alias: `alloc_low_pages` clears
    through `__va`)."""
    zero = c(0)
    env = {"pfn": wide(pfn), "pgt_buf_start": zero, "pgt_buf_end": zero, "pgt_buf_top": zero,
           "ioremap": z3.BoolVal(False)}  # fmt: skip
    return to_z3(variant.readonly, env)


def ro_after_walk(variant: KernelVariant, td: TopDown, pfn: BV) -> z3.BoolRef:
    """`pfn`'s direct-map PTE is read-only after the walk, for a page that never became a table: under the
    builder's L1s (`pfn < v_end`, PTEs kept) only Xen's tables that stay reserved, `[pt_base + 3, pt_end)`;
    above, the PTE a step wrote through `mask_rw_pte` (the readonly policy)."""
    return z3.If(
        z3.ULT(pfn, td.v_end),
        _in(pfn, td.pt_base + n32(3), td.pt_end),
        z3.And(z3.ULT(pfn, td.max_pfn), readonly(variant, pfn)),
    )


def in_model(td: TopDown) -> z3.BoolRef:
    """The machines the executable model builds: the domain builder's one L2 maps at most 1 GiB (`v_end`)."""
    return z3.ULE(td.v_end, n32(ONE_L2))


def _steps_bounded(t: Terms, k: Call) -> z3.BoolRef:
    td = symbolic_walk(t)
    return z3.Implies(in_model(td), z3.Not(td.beyond))


def _run_above_xen(t: Terms, k: Call) -> z3.BoolRef:
    td = symbolic_walk(t)
    r = td.real_end
    return z3.Implies(
        in_model(td),
        z3.And(z3.UGE(r, td.pt_end + n32(512)), z3.ULE(td.total_allocs, r - td.pt_end)),
    )


def _step_fits(index: int):
    def claim(t: Terms, k: Call) -> z3.BoolRef:
        td = symbolic_walk(t)
        return z3.Implies(in_model(td), z3.Not(td.may_panic(index)))

    return claim


# The two facts the encoding's exactness rests on, proved once each (`lemmas.py`'s machinery).
LEMMAS[STEPS_LEMMA] = Lemma(
    STEPS_LEMMA,
    f"3.9's init_mem_mapping ends within {MAX_STEPS} top-down steps (the unrolling covers the domain)",
    (),
    _steps_bounded,
    lambda t, k: [],
)
LEMMAS[RUN_LEMMA] = Lemma(
    RUN_LEMMA,
    "3.9's real_end is nr rounded down to 2 MiB, above Xen's area, and all the walk's tables fit in"
    " [pt_end, real_end) (memblock's top-down run meets no other reservation)",
    (),
    _run_above_xen,
    lambda t, k: [],
)


# buffer_fits by cases, one per step: every step but RUNS_OUT is a lemma (the solver proves each in about a
# second), so the obligation asks about that step alone (its minimisation queries are then quick).
RUNS_OUT = 4  # the only step whose tables can outgrow the memory mapped before it (README-topdown.md)
STEP_LEMMAS = {i: f"topdown_step{i}" for i in range(1, MAX_STEPS + 2) if i != RUNS_OUT}
for _i, _name in STEP_LEMMAS.items():
    _what = "the BRK seed holds step 1's tables" if _i == 1 else (
        "the final range's tables fit in [1 MiB, real_end)" if _i == MAX_STEPS + 1
        else f"the tables up to step {_i} fit in the memory the steps before it mapped")  # fmt: skip
    LEMMAS[_name] = Lemma(_name, f"3.9's init_mem_mapping: {_what}", (), _step_fits(_i), lambda t, k: [])


@dataclass(frozen=True)
class TopDownObligation(Obligation):
    """An obligation whose violation leaves out cases lemmas settle (`discharged`: proved on their own, and
    listed with the verdict's lemmas, but not added to the formula)."""

    discharged: tuple[Instance, ...] = ()

    @property
    def lemmas(self) -> list[LemmaRef]:
        return sorted({h.ref for h in (*self.hypotheses, *self.discharged)})


def build(variant: KernelVariant, prop: str, call_index: int):
    """The obligation of `prop` for 3.9's walk (module docstring). `call_index` 0 is the whole `init_mem_mapping`;
    there is no call 1 (its domain is empty)."""
    check_supported(variant)
    t = terms(variant)
    td = symbolic_walk(t)
    pfn = z3.BitVec("pfn", 64)
    alloc = z3.BitVec("alloc", 64)
    violation, premise = _violation(variant, td, prop, pfn, alloc)
    domain = z3.And(t.domain, in_model(td)) if call_index == 0 else z3.BoolVal(False)
    hypotheses = (Instance(STEPS_LEMMA, t, t.call0), Instance(RUN_LEMMA, t, t.call0))
    cases = tuple(Instance(n, t, t.call0) for n in STEP_LEMMAS.values()) if prop == "buffer_fits" else ()
    return TopDownObligation(variant, prop, t, call_index, pfn, alloc, domain, hypotheses, violation, premise,
                             own_situation=SITUATIONS[prop], discharged=cases)  # fmt: skip


# What must be able to happen in 3.9's walk for a proof of each property to say anything (`prove.py` checks it
# satisfiable with the domain, else `vacuous`): the premise `_violation` gives with each violation.
SITUATIONS = {
    "buffer_fits": "alloc_low_pages takes pages from memblock (the BRK seed does not cover the walk)",
    "alias_writable": "alloc_low_pages hands out a page, which clear_page() writes through the direct map",
    "no_rw_alias": "alloc_low_pages hands out a page, which becomes a live page table",
    "spare_writable": "the BRK seed has unused pages after the walk",
    "spare_freed": "a reserve step keeps or frees a spare tail (3.9 has none: alloc_low_pages memblock_reserve()s"
    " each page as it takes it)",
    "live_reserved": "alloc_low_pages hands out a page, which becomes a live page table",
}


def _violation(variant, td: TopDown, prop: str, pfn64: BV, alloc64: BV):
    """(violation, premise) of `prop` for 3.9's allocator (README-topdown.md).

    The pages `alloc_low_pages` hands out are the seed's, `[seed_start, seed_top)`, and memblock's run
    `R - m` for `1 <= m <= allocations` (`alloc` is m). Both sets hold every page the walk hands out (the run has
    at most `allocations - seed pages` pages), so `unsat` over them proves the property for the real ones; a
    `sat` is checked by the boot walk (`prove.violated_in`)."""
    pfn, m = narrow(pfn64), narrow(alloc64)
    seed = z3.And(fits(pfn64), _in(pfn, td.seed_start, td.seed_top))
    run = z3.And(
        fits(pfn64), fits(alloc64), z3.UGE(m, n32(1)), z3.ULE(m, td.total_allocs), pfn == td.real_end - m
    )
    handed_out = z3.Or(seed, run)
    if prop == "buffer_fits":  # no alloc_low_pages panics (the other steps: STEP_LEMMAS); memblock is used
        return td.may_panic(RUNS_OUT), z3.UGT(td.total_allocs, n32(INIT_PGT_BUF_PAGES))
    if prop == "alias_writable":
        # clear_page(__va(pfn)): the page must be mapped RW when alloc_low_pages hands it out. The seed lies in
        # the kernel image (the builder's L1s, kept); a memblock page in [lowest_mapped, R), mapped by a step
        # before through mask_rw_pte, and never a table yet (the run takes each page once).
        return z3.And(handed_out, ro_after_walk(variant, td, pfn)), handed_out
    if prop == "no_rw_alias":
        # A table page is safe if, when xen_alloc_pte/pmd runs make_lowmem_page_readonly on it, a linked L1 maps
        # it (so the update_va_mapping removes its only RW mapping before the pin or link) and no later PTE write
        # maps it again. A seed page: only if the builder's L1s map it (below v_end; phys_pte_init keeps those
        # PTEs). A memblock page lies in [min_pfn_mapped, max_pfn_mapped) = [last_start, R) by
        # memblock_find_in_range's own bounds (else it panics: buffer_fits), which the completed steps before
        # mapped and linked, each chunk's PTEs written once; it must lie below R, above Xen's area.
        unmapped = z3.Or(
            z3.And(seed, z3.UGE(pfn, td.v_end)),
            z3.And(run, z3.Or(z3.UGE(pfn, td.real_end), z3.ULT(pfn, td.pt_end))),
        )
        return unmapped, handed_out
    if prop == "live_reserved":
        # Every page handed out as a table is reserved: a seed page by reserve_brk's [brk, brk + 9) "BRK", a
        # memblock page by alloc_low_pages' own memblock_reserve (unconditional), and nothing frees either.
        return z3.And(seed, z3.Not(_in(pfn, td.brk, td.brk_reserved_end))), handed_out
    if prop == "spare_writable":
        # The seed's unused pages [pgt_buf_end, pgt_buf_top) after the walk (there is no other spare tail:
        # memblock pages are taken one by one) are not left read-only.
        spare = z3.And(fits(pfn64), _in(pfn, td.seed_end, td.seed_top))
        return z3.And(spare, seed, ro_after_walk(variant, td, pfn)), spare
    if prop == "spare_freed":
        # No reserve step: nothing reserves a range of the seed at the end of the walk (reserve_brk reserved the
        # whole brk before it, with the kernel image) and memblock pages are reserved one by one as taken, so
        # no page is reserved for tables and left unused by a reserve step. The situation cannot arise.
        return z3.BoolVal(False), z3.BoolVal(False)
    raise ValueError(f"unknown property {prop!r}")


def evaluate(nr: int, kernel: int, ramdisk: int, slack: int) -> TopDown:
    """The walk for one machine, in Python integers (tests compare it with the boot walk)."""
    return walk(INT, Params(nr=nr, kernel=kernel, ramdisk=ramdisk, slack=slack))


__all__ = ["MAX_STEPS", "SHAPE_39", "Step", "TopDown", "applies", "build", "evaluate", "walk"]
