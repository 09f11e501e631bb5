"""The walk's step function: one iteration of `kernel_physical_mapping_init`'s loop, and the induction that proves
the closed form (`form.py`) equal to it.

`kernel_physical_mapping_init` (arch/x86/mm/init_64.c, 2.6.37 .. 3.8; read at 2.6.39) is three nested loops --
over PGD slots (512 GiB), in `phys_pud_init` over GiBs, in `phys_pmd_init` over 2 MiB chunks -- run once per
range `split_mem_range` makes (one 4 KiB range on Xen PV, which has neither PSE nor 1 GiB pages; on bare metal
the 1 GiB, 2 MiB and 4 KiB ranges). Flattened, it is one loop over the chunks `first_chunk .. last_chunk` of the
call's range, and `iterate` is its body: what the kernel does for one chunk, including entering a PGD slot or a
GiB when the chunk is the first of either in its range, and leaving them (`pgd_populate`, `pud_populate`) when it
is the last. The state it carries (`State`) is `pgt_buf_end`, the allocation count, and what is known of the
slot and GiB being mapped: whether their table pages were allocated by this walk, linked yet, or the GiB is one
1 GiB entry. The page tables before the walk enter as four predicates (`Walk`), read from the start of day:
`init_level4_pgt`'s direct-map slot holds `level3_ident_pgt`, whose GiB 0 is `level2_ident_pgt`; on Xen, its
first `existing_chunks` entries are full L1 pages (Xen's and `xen_map_identity_early`'s), on bare metal 2 MiB
entries (head_64.S); call 1 finds call 0's tables below 4 GiB as well. Every GiB of a range has an E820 entry
(the domain's machines: `closed_form.describable`), so `phys_pud_init`'s skip never happens.

The same `iterate` runs over Python ints (`run`: the differential test beside the executable walk) and over Z3
bit-vectors, where lemmas (`lemmas.py`) prove the closed form equal to it, each once per platform and call over
*any* call within `walk_bounds` (`abstract_walk`: fresh variables for the range's end, the buffer, the kept chunks
and call 0's end), which `walk_bounded` proves every shape's calls to be:
- `step_base`: the state before the first iteration is the closed form at k = 0 (`closed_form_state`);
- `step_state`, `step_allocates`, `step_writes`, `step_links` (the inductive step, in parts): for k < n, one
  iteration from the closed form at k gives the closed form at k + 1, and what the iteration does is what the
  closed form says of that chunk (domU; bare metal's properties read only the allocation count): no PUD page,
  the PMD/PTE pages it allocates are
  `pgt_buf_start + pmd_alloc(g) - 1` and `pgt_buf_start + chunk_alloc(c) - 1`, it writes the PTE of
  exactly the pfns `is_new_chunk_pfn` names, with `pgt_buf_end` = `end_when_pte_written(pfn)`, and a PTE page
  becomes reachable from the root after allocation `gib_linked_after(pfn)`;
- `step_exit`: at k = n >= 1 the loop stops, and its `pgt_buf_end` and allocation count are the closed form's
  `Call.pgt_buf_end` and `total_allocs`.
By induction over k, the closed form is the walk at every iteration of every machine of the domain; every lemma
about the walk (and so every `proved` verdict) rests on these. 3.9's walk (`init_mem_mapping`) is another
loop, and the closed form has no buffer for it: the `mapped` shape has no step function.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import z3

from xenpin.symbolic.form import (
    FOUR_G,
    MAX_PHYSMEM_BITS,
    Z3,
    Call,
    Layout,
    Params,
    Shape,
    W,
    calls,
    layout,
    low_bits,
    native_allocs,
)

GIB_CHUNKS = 512  # chunks per GiB (one PMD page)
SLOT_CHUNKS = 1 << 18  # chunks per PGD slot (512 GiB, one PUD page)


def has_step_function(shape: Shape) -> bool:
    """The closed form models this shape's walk (all but 3.9's `init_mem_mapping`)."""
    return shape.placement != "mapped"


@dataclass(frozen=True)
class Walk:
    """One `init_memory_mapping` call as the loop sees it: its range, its buffer, the page sizes
    `split_mem_range` gives each chunk, and the tables before the walk."""

    ops: Any
    native: bool
    index: int
    range_start: Any
    range_end: Any
    pgt_buf_start: Any
    gbpages: Any  # a condition (bare metal's CPU has 1 GiB pages)
    existing_chunks: Any  # Xen: chunks 0 .. f-1 have full L1 pages at the start of day
    below: Any  # call 1: the end of call 0's range (its tables are there); call 0: 0

    @property
    def first_chunk(self):
        return self.ops.shr(self.range_start, 9)

    @property
    def last_chunk(self):
        """`for (; start < end; ...)`: the last chunk with a pfn below `range_end`."""
        o = self.ops
        return o.shr(self.range_end + o.c(511), 9) - o.c(1)

    def _ends(self):
        o = self.ops
        return o.shr(self.range_end, 18) * o.c(GIB_CHUNKS), o.shr(self.range_end, 9)  # floor 1G, floor 2M

    def masks(self, chunk):
        """`split_mem_range`'s page sizes for the range holding `chunk`: (1 GiB, 2 MiB). Xen PV: 4 KiB only.
        Bare metal: `[start, floor_1G)` with 1 GiB (and 2 MiB) pages where the CPU has them, then `[., floor_2M)`
        with 2 MiB, then the 4 KiB tail."""
        o = self.ops
        if not self.native:
            return o.false, o.false
        g1, m2 = self._ends()
        return o.and_(self.gbpages, o.lt(chunk, g1)), o.lt(chunk, m2)

    def segment_first(self, chunk):
        """The first chunk of the `split_mem_range` range holding `chunk` (one `kernel_physical_mapping_init`)."""
        o = self.ops
        if not self.native:
            return self.first_chunk
        g1, m2 = self._ends()
        f = self.first_chunk
        after_1g = o.ite(self.gbpages, o.ite(o.ge(g1, f), g1, f), f)
        return o.ite(o.and_(self.gbpages, o.lt(chunk, g1)), f, o.ite(o.lt(chunk, m2), after_1g, m2))

    def segment_last(self, chunk):
        o = self.ops
        if not self.native:
            return self.last_chunk
        g1, m2 = self._ends()
        one = o.c(1)
        return o.ite(
            o.and_(self.gbpages, o.lt(chunk, g1)), g1 - one, o.ite(o.lt(chunk, m2), m2 - one, self.last_chunk)
        )

    # The tables before the walk (module docstring).
    def pgd_present(self, slot):
        return self.ops.eq(slot, self.ops.c(0))  # init_level4_pgt[272] -> level3_ident_pgt

    def pud_table(self, gib):
        """A PMD page at this GiB: `level2_ident_pgt` at GiB 0; call 1, call 0's PMD pages below its end."""
        o = self.ops
        return o.or_(o.eq(gib, o.c(0)), o.lt(gib, o.shr(self.below + o.c((1 << 18) - 1), 18)))

    def pmd_table(self, chunk):
        """A (full) PTE page at this chunk: Xen's and xen_map_identity_early's L1s; call 1, call 0's."""
        o = self.ops
        if self.native:
            return o.false
        return o.or_(o.lt(chunk, self.existing_chunks), o.lt(chunk, o.shr(self.below + o.c(511), 9)))


def walk_of(
    ops, shape: Shape, p: Params, index: int, lay: Layout | None = None, both: tuple | None = None
) -> Walk:
    """Call `index`'s loop inputs, from the closed form's layout and placement (not from its walk)."""
    lay = lay if lay is not None else layout(ops, shape, p)
    k0, k = both if both is not None else (calls(ops, shape, p)[0], calls(ops, shape, p)[index])
    native = shape.platform == "native"
    return Walk(
        ops,
        native,
        index,
        k.range_start,
        k.range_end,
        k.pgt_buf_start,
        ops.eq(p.gbpages, ops.c(1)) if native else ops.false,
        ops.c(0) if native else lay.existing_chunks,
        k0.range_end if index == 1 else ops.c(0),
    )


@dataclass(frozen=True)
class State:
    """What the loop carries from one chunk to the next. The flags describe the slot and GiB of the chunk
    mapped last (meaningless before the first iteration, which enters both)."""

    chunk: Any  # the next chunk to map
    pgt_buf_end: Any
    allocs: Any  # alloc_low_page calls so far
    pud_new: Any  # the slot's PUD page was allocated by this walk (its entries start clear)
    pud_linked: Any  # ... and is reachable from init_level4_pgt (pgd_populate has run)
    pmd_new: Any  # the GiB's PMD page was allocated by this walk
    pmd_linked: Any  # ... and is reachable from its PUD page (pud_populate has run); true for a 1 GiB entry
    gib_large: Any  # the GiB is one 1 GiB entry (no PMD page)


@dataclass(frozen=True)
class Iteration:
    """One chunk's work: the state after it, and what it did."""

    after: State
    pud_alloc: Any
    pud_page: Any
    pmd_alloc: Any
    pmd_page: Any
    pte_alloc: Any
    pte_page: Any
    pte_end: Any  # pgt_buf_end while phys_pte_init writes the chunk's PTEs (into the fresh page)
    pte_reachable_now: Any  # pmd_populate_kernel links the fresh PTE page under reachable tables
    gib_linked: Any  # pud_populate links this GiB's new PMD page at the end of this iteration
    gib_reachable: Any  # ... under a reachable PUD page


def initial_state(w: Walk) -> State:
    """Before the loop: `pgt_buf_end = pgt_buf_start` (find_early_table_space), nothing allocated."""
    o = w.ops
    return State(w.first_chunk, w.pgt_buf_start, o.c(0), o.false, o.false, o.false, o.false, o.false)


def _alloc(o, cond, s_end, s_allocs):
    """`alloc_low_page` if `cond`: the page is `pgt_buf_end`, then `pgt_buf_end++` (the caller checks it is below
    `pgt_buf_top`: `buffer_fits`). Written as `+ (cond ? 1 : 0)`, so that the solver sees the sums."""
    one = o.ite(cond, o.c(1), o.c(0))
    return s_end, s_end + one, s_allocs + one


def iterate(w: Walk, s: State) -> Iteration:
    """`kernel_physical_mapping_init` for chunk `s.chunk` (module docstring); kernel lines quoted."""
    o = w.ops
    c = s.chunk
    first = o.eq(c, w.first_chunk)
    seg_start = o.or_(first, o.eq(c, w.segment_first(c)))  # a new kernel_physical_mapping_init(mr)
    mask_1g, mask_2m = w.masks(c)
    end, allocs = s.pgt_buf_end, s.allocs

    # kernel_physical_mapping_init: `pgd = pgd_offset_k(start)`; `if (pgd_val(*pgd))` the PUD page is mapped
    # (map_low_page) and phys_pud_init'ed; else `pud = alloc_low_page(&pud_phys)`.
    new_slot = o.or_(first, o.eq(low_bits(o, c, 18), o.c(0)))
    enters_slot = o.or_(seg_start, new_slot)
    slot_present = o.or_(o.not_(new_slot), w.pgd_present(o.shr(c, 18)))  # visited already, or start of day
    pud_alloc = o.and_(enters_slot, o.not_(slot_present))
    pud_page, end, allocs = _alloc(o, pud_alloc, end, allocs)
    pud_new = o.ite(enters_slot, o.ite(new_slot, pud_alloc, s.pud_new), s.pud_new)
    pud_linked = o.ite(o.and_(enters_slot, new_slot), o.not_(pud_alloc), s.pud_linked)

    # phys_pud_init: `if (pud_val(*pud)) { if (!pud_large(*pud)) { pmd = map_low_page(...); phys_pmd_init(...);
    # continue; } if (page_size_mask & (1 << PG_LEVEL_1G)) continue; ... }`, then `if (page_size_mask & (1 <<
    # PG_LEVEL_1G)) { set_pte((pte_t *)pud, ... PAGE_KERNEL_LARGE); continue; }`, else `pmd = alloc_low_page(
    # &pmd_phys)`. A new PUD page is clear (`clear_page` in alloc_low_page); a GiB visited already keeps its entry.
    new_gib = o.or_(first, o.eq(low_bits(o, c, 9), o.c(0)))
    enters_gib = o.or_(seg_start, new_gib)
    start_table = o.and_(o.not_(pud_new), w.pud_table(o.shr(c, 9)))
    is_table = o.ite(new_gib, start_table, o.not_(s.gib_large))
    is_large = o.ite(new_gib, o.false, s.gib_large)  # the start of day has no 1 GiB entries
    large_store = o.and_(enters_gib, o.not_(is_table), o.not_(is_large), mask_1g)
    pmd_alloc = o.and_(enters_gib, o.not_(is_table), o.not_(mask_1g))
    pmd_page, end, allocs = _alloc(o, pmd_alloc, end, allocs)
    gib_large = o.ite(enters_gib, o.or_(large_store, o.and_(is_large, mask_1g)), s.gib_large)
    pmd_new = o.ite(enters_gib, o.ite(new_gib, pmd_alloc, o.or_(s.pmd_new, pmd_alloc)), s.pmd_new)
    pmd_linked = o.ite(
        enters_gib, o.ite(new_gib, o.not_(pmd_alloc), o.and_(s.pmd_linked, o.not_(pmd_alloc))), s.pmd_linked
    )

    # phys_pmd_init, this chunk (in a GiB mapped by a PMD page): `if (pmd_val(*pmd)) { if (!pmd_large(*pmd)) {
    # pte = map_low_page(...); phys_pte_init(pte, address, end, prot); continue; } if (page_size_mask & (1 <<
    # PG_LEVEL_2M)) continue; ... }`, `if (page_size_mask & (1 << PG_LEVEL_2M)) { set_pte((pte_t *)pmd, ... |
    # _PAGE_PSE); continue; }`, else `pte = alloc_low_page(&pte_phys); phys_pte_init(pte, ...);
    # pmd_populate_kernel(&init_mm, pmd, __va(pte_phys))`. A new PMD page is clear; an existing L1 is full, so
    # phys_pte_init's `if (pte_val(*pte)) continue;` writes none of its PTEs. A 2 MiB entry (bare metal's
    # head_64.S GiB 0) is kept under the 2 MiB mask and split into a new PTE page under the 4 KiB one, exactly
    # as a missing entry is stored or allocated: only a PTE page is read.
    in_pmd_page = o.not_(gib_large)
    pte_table = o.and_(o.not_(pmd_new), w.pmd_table(c))
    pte_alloc = o.and_(in_pmd_page, o.not_(pte_table), o.not_(mask_2m))
    pte_page, end, allocs = _alloc(o, pte_alloc, end, allocs)
    pte_reachable_now = o.and_(pte_alloc, pmd_linked, pud_linked)

    # Leaving: phys_pmd_init returns at `i == PTRS_PER_PMD` or `address >= end`, then phys_pud_init's
    # `pud_populate(&init_mm, pud, __va(pmd_phys))` for a new PMD page; likewise `pgd_populate` for a new PUD page.
    last_of_gib = o.or_(o.eq(low_bits(o, c, 9), o.c(511)), o.eq(c, w.segment_last(c)))
    last_of_slot = o.or_(o.eq(low_bits(o, c, 18), o.c(SLOT_CHUNKS - 1)), o.eq(c, w.segment_last(c)))
    gib_linked = o.and_(in_pmd_page, o.not_(pmd_linked), last_of_gib)
    gib_reachable = o.and_(gib_linked, pud_linked)
    pmd_linked = o.or_(pmd_linked, gib_linked)
    pud_linked = o.or_(pud_linked, last_of_slot)
    after = State(c + o.c(1), end, allocs, pud_new, pud_linked, pmd_new, pmd_linked, gib_large)
    return Iteration(
        after, pud_alloc, pud_page, pmd_alloc, pmd_page, pte_alloc, pte_page, end, pte_reachable_now,
        gib_linked, gib_reachable,
    )  # fmt: skip


def run(w: Walk) -> tuple[State, list[Iteration]]:
    """The loop over Python ints: `while chunk <= last_chunk`, from `initial_state`."""
    s, out = initial_state(w), []
    while s.chunk <= w.last_chunk:
        it = iterate(w, s)
        out.append(it)
        s = it.after
    return s, out


# --- the closed form at iteration k ---------------------------------------------------------------------------


def closed_form_state(w: Walk, k: Call, kk) -> State:
    """The closed form's `State` after `kk` iterations (`0 <= kk <= iterations`): the chunk `first_chunk + kk`,
    `allocs_before` it, and the flags of the slot and GiB of the chunk before it."""
    o = w.ops
    c = k.first_chunk + kk
    prev = c - o.c(1)
    started = o.gt(kk, o.c(0))
    allocs = k.allocs_before(c)
    slot, g = o.shr(prev, 18), o.shr(prev, 9)
    gb = k.gbpages if k.gbpages is not None else o.false
    large = o.and_(gb, o.ge(g, k.first_new_gib), o.lt(g, o.shr(k.range_end, 18)))
    pud_new = o.and_(started, o.ge(slot, o.c(1)))
    # linked once the walk has left the slot's (GiB's) first part: at the end of its range or of the slot (GiB)
    slot_first = o.ite(o.eq(slot, o.shr(k.first_chunk, 18)), k.first_chunk, slot * o.c(SLOT_CHUNKS))
    slot_done = o.ge(prev, o.ite(o.le(slot * o.c(SLOT_CHUNKS) + o.c(SLOT_CHUNKS - 1), w.segment_last(slot_first)),
                                 slot * o.c(SLOT_CHUNKS) + o.c(SLOT_CHUNKS - 1), w.segment_last(slot_first)))  # fmt: skip
    pud_linked = o.and_(started, o.or_(o.not_(pud_new), slot_done))
    pmd_new = o.and_(started, o.not_(large), o.ge(g, k.first_new_gib))
    gib_first = o.ite(o.ge(g * o.c(GIB_CHUNKS), k.first_chunk), g * o.c(GIB_CHUNKS), k.first_chunk)
    gib_end = g * o.c(GIB_CHUNKS) + o.c(GIB_CHUNKS - 1)
    seg_last = w.segment_last(gib_first)
    gib_done = o.ge(prev, o.ite(o.le(gib_end, seg_last), gib_end, seg_last))
    pmd_linked = o.and_(started, o.or_(o.not_(pmd_new), gib_done))
    return State(c, k.pgt_buf_start + allocs, allocs, pud_new, pud_linked, pmd_new, pmd_linked,
                 o.and_(started, large))  # fmt: skip


# Bare metal's claims are about allocations only, and the `*_linked` flags do not feed them (they say only when
# a table becomes reachable): its induction is over the state without them.
NATIVE_STATE = ("chunk", "allocs", "pud_new", "pmd_new", "gib_large")


def _same(o, a: State, b: State, base, native: bool = False):
    """`a == b`; `pgt_buf_end` compared as its distance from `base` (the same claim: subtracting is a bijection),
    which lets the solver cancel `pgt_buf_start` instead of bit-blasting two sums with it."""
    names = NATIVE_STATE if native else [f.name for f in fields(State) if f.name != "pgt_buf_end"]
    return o.and_(
        *(o.eq(getattr(a, name), getattr(b, name)) for name in names),
        o.eq(a.pgt_buf_end - base, b.pgt_buf_end - base),
    )


def base_claim(w: Walk, k: Call) -> z3.BoolRef:
    """`step_base`: the loop starts in the closed form's state at k = 0."""
    return _same(w.ops, initial_state(w), closed_form_state(w, k, w.ops.c(0)), k.pgt_buf_start, w.native)


STEP_PARTS = ("state", "allocates", "writes", "links")  # what `step_claims` checks (`step_<part>` lemmas)


def step_claims(w: Walk, k: Call, kk, pfn) -> dict[str, z3.BoolRef]:
    """The inductive step, in parts (each a lemma: proved apart, they are cheaper than their conjunction): from
    the closed form at `kk < n`, one iteration gives the closed form at `kk + 1` (`state`), and does what the
    closed form says of its chunk (module docstring) for every `pfn` of it: the pages it allocates
    (`allocates`), the PTEs it writes and with which `pgt_buf_end` (`writes`), when they become reachable
    (`links`). Bare metal: `state` only (its properties read nothing else)."""
    o = w.ops
    s = closed_form_state(w, k, kk)
    it = iterate(w, s)
    parts = {"state": [_same(o, it.after, closed_form_state(w, k, kk + o.c(1)), k.pgt_buf_start, w.native)]}
    if not w.native:
        c, g = s.chunk, o.shr(s.chunk, 9)
        start = k.pgt_buf_start
        in_chunk = o.and_(o.eq(o.shr(pfn, 9), c), o.ge(pfn, k.range_start), o.lt(pfn, k.range_end))
        new_chunk = o.ge(c, k.first_new_chunk)
        first_of_gib = o.ite(o.ge(g * o.c(512), k.first_new_chunk), g * o.c(512), k.first_new_chunk)
        last_of_gib = o.ite(
            o.le(g * o.c(512) + o.c(511), k.last_chunk), g * o.c(512) + o.c(511), k.last_chunk
        )
        new_gib = o.and_(o.ge(g, k.first_new_gib), o.eq(c, first_of_gib))
        parts["allocates"] = [
            o.not_(it.pud_alloc),  # a domU's walk stays in init_level4_pgt's first slot (below 512 GiB)
            o.eq(it.pmd_alloc, new_gib),
            # pages compared as distances from pgt_buf_start (see `_same`)
            z3.Implies(it.pmd_alloc, o.eq(it.pmd_page - start, k.pmd_alloc(g) - o.c(1))),
            o.eq(it.pte_alloc, new_chunk),
            z3.Implies(it.pte_alloc, o.eq(it.pte_page - start, k.chunk_alloc(c) - o.c(1))),
        ]
        parts[
            "writes"
        ] = [  # phys_pte_init writes the PTE of `pfn` (into the fresh page) iff the closed form says so
            z3.Implies(in_chunk, o.eq(it.pte_alloc, k.is_new_chunk_pfn(pfn))),
            z3.Implies(
                o.and_(in_chunk, it.pte_alloc), o.eq(it.pte_end - start, k.end_when_pte_written(pfn) - start)
            ),
        ]
        parts[
            "links"
        ] = [  # linked at once under an existing PMD page, else with its GiB after the last chunk
            z3.Implies(
                o.and_(in_chunk, it.pte_reachable_now), o.eq(k.gib_linked_after(pfn), it.after.allocs)
            ),
            z3.Implies(
                o.and_(in_chunk, it.pte_alloc, o.not_(it.pte_reachable_now)), o.ge(g, k.first_new_gib)
            ),
            z3.Implies(
                o.and_(it.gib_linked, o.eq(o.shr(pfn, 18), g), k.is_new_chunk_pfn(pfn)),
                o.and_(it.gib_reachable, o.eq(k.gib_linked_after(pfn), it.after.allocs)),
            ),
            z3.Implies(o.and_(o.ge(g, k.first_new_gib), o.eq(c, last_of_gib)), it.gib_linked),
        ]
    running = o.lt(kk, k.iterations)
    return {name: z3.Implies(running, o.and_(*claims)) for name, claims in parts.items()}


def parts_of(native: bool) -> tuple[str, ...]:
    return ("state",) if native else STEP_PARTS


def walk_bounds(w: Walk, k: Call) -> z3.BoolRef:
    """What the induction assumes of a call's inputs (`step_domain` proves the domain implies it): call 0 ends by
    4 GiB, call 1 past it, below 512 GiB on Xen (one PGD slot) and by 64 TiB on bare metal; call 0's kept chunks
    lie in GiB 0 (the start of day maps less than 1 GiB); call 1 finds call 0's tables below 4 GiB."""
    o = w.ops
    top = 1 << (MAX_PHYSMEM_BITS - 12) if w.native else 1 << 27
    parts = []
    if w.index == 0:
        parts += [o.ge(w.range_end, o.c(1)), o.le(w.range_end, o.c(FOUR_G))]
        if not w.native:  # the kept chunks end within the range (the domain: the call allocates)
            parts.append(o.le(w.existing_chunks, w.last_chunk + o.c(1)))
    else:
        parts += [o.gt(w.range_end, o.c(FOUR_G)), o.le(w.range_end, o.c(top)), o.le(w.below, o.c(FOUR_G))]
    if not w.native:
        parts.append(o.le(w.existing_chunks, o.c(GIB_CHUNKS)))
    return o.and_(*parts)


def abstract_walk(shape: Shape, index: int) -> tuple[Walk, Call, z3.BoolRef]:
    """Call `index` of a walk of `shape` over fresh variables -- its range end, buffer, kept chunks, call 0's end
    and the CPU's 1 GiB pages -- with `walk_bounds` on them. The closed form's call of a machine is this one with
    the machine's terms substituted, so a claim proved here holds for every machine whose call is in bounds."""
    o = Z3
    tag = f"step.{index}."
    end, start, top, kept, below, gbv = (
        z3.BitVec(tag + n, W) for n in ("end", "start", "top", "kept", "below", "gb")
    )
    native = shape.platform == "native"
    range_start = o.c(0) if index == 0 else o.c(FOUR_G)
    first_gib = o.c(1) if index == 0 else o.c(4)
    below = below if index == 1 else o.c(0)
    if native:
        gb = gbv == o.c(1)
        k = Call(index, shape, o.true, range_start, end, start, top, o.c(0), first_gib, o.true, o,
                 native_allocs(o, end, first_gib, gb), gb)  # fmt: skip
        w = Walk(o, True, index, range_start, end, start, gb, o.c(0), below)
    else:
        first_new = kept if index == 0 else o.c(FOUR_G >> 9)
        k = Call(index, shape, o.true, range_start, end, start, top, first_new, first_gib, o.true, o)
        w = Walk(o, False, index, range_start, end, start, o.false, kept, below)
    return w, k, walk_bounds(w, k)


def exit_claim(w: Walk, k: Call) -> z3.BoolRef:
    """`step_exit`: the loop runs `iterations` times (at least once), and ends with the closed form's
    `pgt_buf_end` and allocation count."""
    o = w.ops
    n = k.iterations
    end = closed_form_state(w, k, n)
    return o.and_(
        o.ge(n, o.c(1)),
        o.eq(k.first_chunk, w.first_chunk),
        o.eq(k.last_chunk, w.last_chunk),
        o.eq(end.chunk, w.last_chunk + o.c(1)),
        o.eq(end.allocs, k.total_allocs),
        o.eq(end.pgt_buf_end - k.pgt_buf_start, k.pgt_buf_end - k.pgt_buf_start),
    )


__all__ = [
    "Iteration",
    "State",
    "Walk",
    "abstract_walk",
    "base_claim",
    "closed_form_state",
    "exit_claim",
    "has_step_function",
    "initial_state",
    "iterate",
    "parts_of",
    "run",
    "step_claims",
    "walk_bounds",
    "walk_of",
]
