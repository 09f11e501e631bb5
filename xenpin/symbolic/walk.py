"""The boot walk of `xenpin.linux.boot` in closed form, over 64-bit Z3 bit-vectors.

Every quantity the properties need is a term in the guest's size `max_pfn` (a symbolic `BitVec(64)`), derived
from the same functions the executable walk runs:
- `boot_layout`: `max_pfn_mapped = 1024 * ceil((kernel_end + 134) / 1022)` — the least fixed point of Xen's
  "tables + 512 KiB padding, rounded to 4 MiB" (checked equal to the iteration in `layout.py` by the tests);
- `find_early_table_space_pages` and the placement regimes (`high`: `end - tables`; `low`: top-down in the free
  window below `max_pfn_mapped`, i.e. below the kernel at 16 MiB for the first call and below 4 GiB for the
  second; `mapped`: no buffer);
- `kernel_physical_mapping_init`'s allocation order: the PTE page of 2 MiB chunk `c` is allocation number
  `A(c) = (c - c0 + 1) + max(g(c) - g0 + 1, 0)` of its call (`c0` the first chunk without a PTE page, `g0` the
  first GiB without a PMD page, `g(c) = c >> 9`), so `pgt_buf_end` while that chunk's PTEs are written is
  `pgt_buf_start + A(c)`; the PMD page of GiB `g >= g0` comes right before the GiB's first chunk;
- reachability for `make_lowmem_page_readonly`: a chunk's PTE page is reachable from the root once its GiB is
  linked: at once for a GiB with an existing PMD page, after the GiB's last chunk otherwise.
The domain of sizes is `DOMAIN_MIN_PFN <= max_pfn <= DOMAIN_MAX_PFN` (64 MiB .. 1 TiB), plus each regime's
precondition (the buffer fits where the regime puts it), stated by `domain()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from xenpin.linux.layout import (
    FOUR_GIB_PFN,
    KERNEL_PAGES,
    KERNEL_START_PFN,
    LOW_FREE_START_PFN,
    PADDING_PAGES,
)

W = 64
DOMAIN_MIN_PFN = (64 << 20) >> 12
DOMAIN_MAX_PFN = (1 << 40) >> 12

BV = z3.BitVecRef


def c(v: int) -> BV:
    return z3.BitVecVal(v, W)


def ceil_div(x: BV, d: int) -> BV:
    """`DIV_ROUND_UP(x, d)`; `d` a constant (a power of two is a shift)."""
    if d & (d - 1) == 0:
        shift = d.bit_length() - 1
        return z3.LShR(x + c(d - 1), shift)
    return z3.UDiv(x + c(d - 1), c(d))


def umin(a: BV, b: BV) -> BV:
    return z3.If(z3.ULE(a, b), a, b)


def tables_for(end: BV) -> BV:
    """`find_early_table_space(end)` in pages, without PSE/1G (Xen PV)."""
    puds = ceil_div(end, 1 << 18)
    pmds = ceil_div(end, 512)
    return ceil_div(puds, 512) + ceil_div(pmds, 512) + ceil_div(end, 512)


def max_pfn_mapped(max_pfn: BV) -> BV:
    """Xen's start-of-day mapping (see `boot_layout`): the least fixed point, in closed form."""
    kernel_end = c(KERNEL_START_PFN + KERNEL_PAGES + 1) + ceil_div(max_pfn, 512)  # + start_info + p2m list
    return c(1024) * z3.UDiv(kernel_end + c(6 + PADDING_PAGES) + c(1021), c(1022))


@dataclass(frozen=True)
class Call:
    """One `init_memory_mapping(range_start, range_end)` call, all in PFNs, as terms of `max_pfn`."""

    index: int
    exists: z3.BoolRef
    range_start: BV
    range_end: BV
    pgt_buf_start: BV
    pgt_buf_top: BV
    first_new_chunk: BV  # c0
    first_new_gib: BV  # g0
    placed: z3.BoolRef  # the regime's precondition: the buffer is where the closed form says
    placement: str  # the variant's `placement`: high | low | mapped

    @property
    def tables(self) -> BV:
        return self.pgt_buf_top - self.pgt_buf_start

    def chunk_alloc(self, chunk: BV) -> BV:
        """`A(c)`: allocation number (1-based) of the PTE page of new chunk `chunk`."""
        g = z3.LShR(chunk, 9)
        pmds = z3.If(z3.UGE(g, self.first_new_gib), g - self.first_new_gib + c(1), c(0))
        return chunk - self.first_new_chunk + c(1) + pmds

    @property
    def last_chunk(self) -> BV:
        return ceil_div(self.range_end, 512) - c(1)

    @property
    def total_allocs(self) -> BV:
        if self.placement == "mapped":
            return c(0)
        return self.chunk_alloc(self.last_chunk)

    @property
    def pgt_buf_end(self) -> BV:
        """`pgt_buf_end` after the walk (the value the hook sees)."""
        return self.pgt_buf_start + self.total_allocs

    def is_new_chunk_pfn(self, pfn: BV) -> z3.BoolRef:
        """The PTE for `pfn` is written by this call (not kept from before)."""
        return z3.And(
            z3.UGE(z3.LShR(pfn, 9), self.first_new_chunk),
            z3.UGE(pfn, self.range_start),
            z3.ULT(pfn, self.range_end),
        )

    def pte_alloc(self, pfn: BV) -> BV:
        """Allocation number of the PTE page that maps `pfn` (a pfn of a new chunk)."""
        return self.chunk_alloc(z3.LShR(pfn, 9))

    def end_when_pte_written(self, pfn: BV) -> BV:
        return self.pgt_buf_start + self.pte_alloc(pfn)

    def gib_linked_after(self, pfn: BV) -> BV:
        """Allocation number after which the PTE page mapping `pfn` is reachable from the root."""
        chunk = z3.LShR(pfn, 9)
        g = z3.LShR(chunk, 9)
        last_of_gib = umin(g * c(512) + c(511), self.last_chunk)
        return z3.If(z3.UGE(g, self.first_new_gib), self.chunk_alloc(last_of_gib), self.chunk_alloc(chunk))


# Every obligation and lemma builds the calls of the same `max_pfn` variable: the terms are built once. The
# cached Calls hold `max_pfn`, so its AST id cannot be reused by another term while its entry lives.
_CALLS: dict[tuple[int, str], tuple[Call, Call]] = {}


def calls(max_pfn: BV, placement: str) -> tuple[Call, Call]:
    """The (up to) two calls `setup_arch` makes, for a placement regime."""
    key = (max_pfn.get_id(), placement)
    if key not in _CALLS:
        _CALLS[key] = _build_calls(max_pfn, placement)
    return _CALLS[key]


def _build_calls(max_pfn: BV, placement: str) -> tuple[Call, Call]:
    mapped = max_pfn_mapped(max_pfn)
    four_g = c(FOUR_GIB_PFN)
    e0 = umin(max_pfn, four_g)
    t0, t1 = tables_for(e0), tables_for(max_pfn)
    if placement == "high":
        s0, s1 = e0 - t0, max_pfn - t1
        placed0, placed1 = z3.UGE(s0, mapped), z3.UGE(s1, four_g)
    elif placement == "low":
        s0, s1 = c(KERNEL_START_PFN) - t0, four_g - t1
        placed0 = z3.ULE(t0, c(KERNEL_START_PFN - LOW_FREE_START_PFN))
        placed1 = z3.UGE(s1, mapped)
    else:  # mapped: tables from mapped memory one by one; an empty buffer
        s0, s1, t0, t1 = mapped, four_g, c(0), c(0)
        placed0 = placed1 = z3.BoolVal(True)
    call0 = Call(0, z3.BoolVal(True), c(0), e0, s0, s0 + t0, z3.LShR(mapped, 9), c(1), placed0, placement)
    call1 = Call(
        1,
        z3.UGT(max_pfn, four_g),
        four_g,
        max_pfn,
        s1,
        s1 + t1,
        c(FOUR_GIB_PFN >> 9),
        c(FOUR_GIB_PFN >> 18),
        placed1,
        placement,
    )
    return call0, call1


def domain(max_pfn: BV, placement: str) -> z3.BoolRef:
    """Sizes the proofs range over: 64 MiB .. 1 TiB where the regime can place its buffers."""
    c0, c1 = calls(max_pfn, placement)
    return z3.And(
        z3.UGE(max_pfn, c(DOMAIN_MIN_PFN)),
        z3.ULE(max_pfn, c(DOMAIN_MAX_PFN)),
        c0.placed,
        z3.Implies(c1.exists, c1.placed),
    )
