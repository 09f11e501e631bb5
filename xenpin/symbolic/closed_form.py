"""Closed forms of the `init_memory_mapping` walk: who is allocated when, and `pgt_buf_end` at each PTE write.

Derived from `xenpin.linux.boot.BootWalk` and `xenpin.linux.layout`:
- `boot_layout` (layout.py): the start-of-day `max_pfn_mapped` (`M`), a fixed-point iteration, here unrolled
  `LAYOUT_ROUNDS` times (`max_pfn_mapped`);
- `find_early_table_space_pages` (layout.py) and `BootWalk._find_early_table_space` / `_top_down` (boot.py): the
  buffer `[pgt_buf_start, pgt_buf_top)` per placement regime (`buffer_placement`);
- `BootWalk._kernel_physical_mapping_init` -> `_phys_pmd_init` -> `_new_ptes` / `_phys_pte_init_existing`, with
  `_alloc_low_page`: the order of allocations (`alloc_index_of_chunk`, `pmd_alloc_index`, `total_allocations`),
  the value of `pgt_buf_end` in force while each direct-map PTE is written (`pgt_buf_end_when_pte_written`), the
  frame each allocation returns (`allocated_pfn`), and when a chunk's PTE page becomes reachable from the root
  (`linked_when`, `sees_pte`), which decides whether `make_lowmem_page_readonly` finds a PTE.

Every function is written so it can be mirrored term for term over 64-bit bit-vectors: only `+ - *`, shifts,
comparisons, min/max and if-then-else, ceil-division by powers of two; no loop over pages (the only loop is the
fixed `LAYOUT_ROUNDS` unrolling of `max_pfn_mapped`). All quantities are PFNs; a *chunk* is a 2 MiB range
`[c << 9, (c + 1) << 9)` (one PTE page), a *GiB* `g` is `[g << 18, (g + 1) << 18)` (one PMD page).

Walk facts the closed form rests on (each a reading of boot.py):
1. Xen's bootstrap tables map exactly `[0, M)` with `M` a multiple of 4 MiB, through one PMD page (l3d slot 0) and
   one full L1 per chunk `< M >> 9`; so in call 0 every PTE below `M` already exists (kept, never written), GiB 0
   has an existing PMD page, and chunks `c >= M >> 9` of GiB 0 each take one new PTE page. Precondition
   `M <= 1 GiB` (`M >> 9 <= 512`); otherwise the bootstrap L2 would overflow anyway.
2. In a new GiB the walk allocates the PMD page first, then one PTE page per chunk (ascending), so for chunk `c`
   allocation number (1-based) `k(c) = (c - f) + 1 + ((c >> 9) - G + 1)` where `f` is the first chunk needing a
   new PTE page and `G` the first GiB needing a new PMD page (call 0: `f = M >> 9`, `G = 1`; call 1:
   `f = 1 << 11`, `G = 4`). `pgt_buf_end = pgt_buf_start + k(c)` while chunk `c` is filled (`_new_ptes`).
3. Call 1 (`[4 GiB, max_pfn)`, only when `max_pfn > 4 GiB`) finds nothing existing.
4. `mapped` (3.9+): `pgt_buf_start = pgt_buf_end = pgt_buf_top = max_pfn_mapped` at the call's start and the walk
   never moves `pgt_buf_end`; allocation `k` (0-based) takes `top - 1 - k` top-down from mapped memory, `top` the
   highest free page: `0x1000` (`KERNEL_START_PFN`) in call 0, `4 GiB` in call 1.
Placement preconditions (checked by `placement_preconditions`, which the tests assert):
- `low`, call 0: the free window below the kernel, `[0x100, 0x1000)`, holds the buffer: `tables0 <= 0xf00`;
  then `pgt_buf_start = 0x1000 - tables0` (`_top_down` skips the reserved `[0x1000, M)`).
- `low`, call 1: `[M, 4 GiB)` holds it: `tables1 <= 4 GiB - M`; then `pgt_buf_start = 4 GiB - tables1`.
- `high`, call 0: `end0 - tables0` if that is `>= M` (nothing reserved there); else the `_top_down` fallback, the
  same window as `low` (needs `tables0 <= 0xf00`).
- `high`, call 1: `max_pfn - tables1 >= 4 GiB` (otherwise the walk panics: no fallback space above 4 GiB).
- `mapped`: call 0 needs `total_allocations <= 0xf00`, call 1 `total_allocations <= 4 GiB - M`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenpin.linux.layout import (
    FOUR_GIB_PFN,
    KERNEL_PAGES,
    KERNEL_START_PFN,
    LOW_FREE_START_PFN,
    PADDING_PAGES,
)

CHUNK_SHIFT = 9  # PFNs per PTE page (2 MiB)
GIB_SHIFT = 18  # PFNs per PMD page (1 GiB)
FOUR_GIB_CHUNK = FOUR_GIB_PFN >> CHUNK_SHIFT
FOUR_GIB_GIB = FOUR_GIB_PFN >> GIB_SHIFT
LAYOUT_ROUNDS = 4  # unrolled rounds of boot_layout's fixed point; `layout_converged` checks it is enough
MAX_PFN_MAPPED_LIMIT = 1 << GIB_SHIFT  # precondition: the bootstrap mapping fits in GiB 0


def cdiv_pow2(x: int, shift: int) -> int:
    """`ceil(x / 2**shift)` for `x >= 0`."""
    return (x + (1 << shift) - 1) >> shift


def roundup_pow2(x: int, shift: int) -> int:
    return cdiv_pow2(x, shift) << shift


# ---------------------------------------------------------------------------------------------- layout


def _layout_round(max_pfn: int, l1s: int) -> int:
    """One round of boot_layout's loop: `mapped` for a guess of the bootstrap L1 count."""
    after_kernel = KERNEL_START_PFN + KERNEL_PAGES + 1 + cdiv_pow2(max_pfn, 9)  # + start_info + p2m
    return roundup_pow2(after_kernel + 6 + l1s + PADDING_PAGES, 10)  # ROUND_4M


def max_pfn_mapped(max_pfn: int) -> int:
    """`boot_layout(...).max_pfn_mapped` (`M`): the fixed point unrolled `LAYOUT_ROUNDS` times."""
    l1s = 0
    for _ in range(LAYOUT_ROUNDS):  # fixed unrolling, not a loop over pages
        l1s = _layout_round(max_pfn, l1s) >> CHUNK_SHIFT
    return _layout_round(max_pfn, l1s)


def layout_converged(max_pfn: int) -> bool:
    """The unrolling reached boot_layout's fixed point (one more round changes nothing)."""
    m = max_pfn_mapped(max_pfn)
    return _layout_round(max_pfn, m >> CHUNK_SHIFT) == m


def table_pages(end: int) -> int:
    """`find_early_table_space_pages(end)`: `ceil(puds/512) + ceil(pmds/512) + ceil(ptes/512)` pages."""
    puds = cdiv_pow2(end, GIB_SHIFT)
    pmds = cdiv_pow2(end, CHUNK_SHIFT)
    return cdiv_pow2(puds, 9) + cdiv_pow2(pmds, 9) + cdiv_pow2(end, 9)


# ---------------------------------------------------------------------------------------------- one call


@dataclass(frozen=True)
class CallForm:
    """The closed-form parameters of one `init_memory_mapping(start, end)` call (all PFNs or chunk/GiB numbers)."""

    call: int  # 0: [0, min(max_pfn, 4 GiB)); 1: [4 GiB, max_pfn)
    placement: str  # "high", "low", "mapped"
    max_pfn: int
    mapped0: int  # M: Xen's start-of-day max_pfn_mapped
    start: int
    end: int
    first_new_chunk: int  # f: chunks below have an existing, full L1 (kept PTEs)
    first_new_gib: int  # G: GiBs below have an existing PMD page
    end_chunk: int  # ceil(end / 512): one past the last chunk the call maps
    tables: int  # find_early_table_space_pages(end)
    pgt_buf_start: int
    pgt_buf_top: int


def calls(max_pfn: int) -> int:
    """How many init_memory_mapping calls: 2 iff `max_pfn > 4 GiB`."""
    return 2 if max_pfn > FOUR_GIB_PFN else 1


def call_form(max_pfn: int, placement: str, call: int) -> CallForm:
    m = max_pfn_mapped(max_pfn)
    if call == 0:
        start, end = 0, min(max_pfn, FOUR_GIB_PFN)
        first_new_chunk, first_new_gib = m >> CHUNK_SHIFT, 1
    else:
        start, end = FOUR_GIB_PFN, max_pfn
        first_new_chunk, first_new_gib = FOUR_GIB_CHUNK, FOUR_GIB_GIB
    tables = table_pages(end)
    base, top = buffer_placement(placement, call, max_pfn, m, end, tables)
    return CallForm(
        call, placement, max_pfn, m, start, end, first_new_chunk, first_new_gib,
        cdiv_pow2(end, CHUNK_SHIFT), tables, base, top,
    )  # fmt: skip


def call_forms(mem_bytes: int, placement: str) -> list[CallForm]:
    max_pfn = mem_bytes >> 12
    return [call_form(max_pfn, placement, c) for c in range(calls(max_pfn))]


def buffer_placement(
    placement: str, call: int, max_pfn: int, m: int, end: int, tables: int
) -> tuple[int, int]:
    """`(pgt_buf_start, pgt_buf_top)` under `placement_preconditions` (see the module docstring)."""
    below_kernel = KERNEL_START_PFN - tables  # the top of the free window [0x100, 0x1000)
    if placement == "mapped":
        base = m if call == 0 else max(m, FOUR_GIB_PFN)  # max_pfn_mapped when the call starts
        return base, base
    if placement == "low":
        base = below_kernel if call == 0 else FOUR_GIB_PFN - tables
    elif call == 0:  # high
        base = end - tables if end - tables >= m else below_kernel
    else:
        base = end - tables
    return base, base + tables


def placement_preconditions(cf: CallForm) -> bool:
    """The placement is the closed form's (the walk's `_top_down` agrees; see the module docstring)."""
    m = cf.mapped0
    ok = m <= MAX_PFN_MAPPED_LIMIT and m <= cf.max_pfn and layout_converged(cf.max_pfn)
    window = KERNEL_START_PFN - LOW_FREE_START_PFN
    if cf.placement == "mapped":
        room = window if cf.call == 0 else FOUR_GIB_PFN - m
        return ok and total_allocations(cf) <= room
    if cf.call == 0:
        high_fits = cf.placement == "high" and cf.end - cf.tables >= m
        return ok and (high_fits or cf.tables <= window)
    if cf.placement == "low":
        return ok and cf.tables <= FOUR_GIB_PFN - m
    return ok and cf.end - cf.tables >= FOUR_GIB_PFN


# ---------------------------------------------------------------------------------------- allocation order


def alloc_index_of_chunk(cf: CallForm, chunk: int) -> int:
    """Allocations made up to and including chunk `chunk`'s PTE page (1-based; needs `f <= chunk < end_chunk`).

    Equals `pgt_buf_end - pgt_buf_start` right after that allocation, i.e. while the chunk's PTEs are written.
    """
    return (chunk - cf.first_new_chunk) + 1 + ((chunk >> (GIB_SHIFT - CHUNK_SHIFT)) - cf.first_new_gib + 1)


def pmd_alloc_index(cf: CallForm, gib: int) -> int:
    """Allocation number (1-based) of GiB `gib`'s new PMD page (needs `G <= gib`, `gib << 9 < end_chunk`)."""
    return alloc_index_of_chunk(cf, gib << (GIB_SHIFT - CHUNK_SHIFT)) - 1


def total_allocations(cf: CallForm) -> int:
    """`alloc_low_page` calls the whole call makes (0 when every chunk is kept)."""
    return max(0, alloc_index_of_chunk(cf, cf.end_chunk - 1))


def allocated_pfn(cf: CallForm, k: int) -> int:
    """The frame the allocation with 0-based number `k` returns."""
    if cf.placement == "mapped":
        top = KERNEL_START_PFN if cf.call == 0 else FOUR_GIB_PFN
        return top - 1 - k
    return cf.pgt_buf_start + k


def pgt_buf_end_after(cf: CallForm, n: int) -> int:
    """`pgt_buf_end` after `n` allocations (the `mapped` walk never moves it)."""
    return cf.pgt_buf_start if cf.placement == "mapped" else cf.pgt_buf_start + n


def pte_written(cf: CallForm, pfn: int) -> bool:
    """This call writes `pfn`'s direct-map PTE (inside the range, not kept from Xen's tables)."""
    return cf.start <= pfn < cf.end and (pfn >> CHUNK_SHIFT) >= cf.first_new_chunk


def pgt_buf_end_when_pte_written(cf: CallForm, pfn: int) -> int | None:
    """`pgt_buf_end` when this call writes `pfn`'s PTE; None if it does not write one (kept, or out of range)."""
    if not pte_written(cf, pfn):
        return None
    return pgt_buf_end_after(cf, alloc_index_of_chunk(cf, pfn >> CHUNK_SHIFT))


def linked_when(cf: CallForm, chunk: int) -> int:
    """The allocation count after which chunk `chunk`'s PTE page is reachable from the root.

    0 for chunks with a bootstrap L1 (reachable before the call). Under GiB 0's existing PMD page: at the
    `pmd_populate` right after its fill, `alloc_index_of_chunk`. Under a new PMD page: at `pud_populate` after
    the GiB's last chunk, that chunk's index. Every `make_lowmem_page_readonly` issued while the count is `n`
    happens before that count's own link, so it finds the chunk's PTEs iff `linked_when(chunk) < n` (`sees_pte`).
    """
    if chunk < cf.first_new_chunk:
        return 0
    gib = chunk >> (GIB_SHIFT - CHUNK_SHIFT)
    if gib < cf.first_new_gib:
        return alloc_index_of_chunk(cf, chunk)
    last = min(cf.end_chunk, (gib + 1) << (GIB_SHIFT - CHUNK_SHIFT)) - 1
    return alloc_index_of_chunk(cf, last)


def sees_pte(cf: CallForm, pfn: int, n: int) -> bool:
    """A `make_lowmem_page_readonly(pfn)` issued by this call at allocation count `n` finds a PTE for `pfn`.

    `pfn` mapped by an earlier call is always found; by a later call, never; by this call, iff its chunk
    is linked before (see `linked_when`). Needs `pfn` in `[0, max_pfn)`.
    """
    if pfn < cf.start:
        return True
    if pfn >= cf.end:
        return False
    return linked_when(cf, pfn >> CHUNK_SHIFT) < n


__all__ = [
    "CallForm",
    "alloc_index_of_chunk",
    "allocated_pfn",
    "buffer_placement",
    "call_form",
    "call_forms",
    "linked_when",
    "max_pfn_mapped",
    "pgt_buf_end_when_pte_written",
    "placement_preconditions",
    "pmd_alloc_index",
    "sees_pte",
    "table_pages",
    "total_allocations",
]
