"""The boot walk in closed form, written once over an arithmetic backend: Python ints or 64-bit Z3 bit-vectors.

Every quantity the properties need is a term in the machine's parameters -- a domU's `nr` pages of memory, its
kernel image (`kernel` pages), ramdisk (`ramdisk` pages) and E820 slack (`slack` pages); bare metal's end of low
RAM and end of RAM -- derived from the same code the executable model runs (`xenpin.linux`, `xenpin.xen.
domain_builder`). The same function builds the Python value (tested against the boot walk) and the Z3 term (what
the solver reads), so the two cannot drift apart. Only `+ - *`, shifts, comparisons, min/max and if-then-else
appear, and one division by 1022; no loop over pages. Quantities are pfns; a *chunk* is 2 MiB (`c << 9`, one PTE
page), a *GiB* `g` is `g << 18` (one PMD page).

A 64-bit PV domU (see `xc_dom_layout`, `xen_setup_kernel_pagetable`, `xen_memory_setup`, `init_memory_mapping`):
1. Layout: `mfn_list = 0x1000 + kernel + ramdisk`; the builder's allocations end at `mfn_list + ceil(nr/512) + 3`
   and its tables map `[0, v_end)`, `v_end = 1024 * ceil((alloc_end + 132) / 1022)` -- the least 4 MiB multiple
   leaving room for the tables (3 + one L1 per 2 MiB), the boot stack and 512 KiB of padding (`layout_ok` checks
   `v_end <= nr`). `xen_map_identity_early` adds up to 4 L1s while `pfn < nr`: call 0 finds the first
   `f = min(v_end/512 + 4, ceil(nr/512))` chunks mapped. `max_pfn_mapped` starts at `f*512 - 1` (2.6.37) or
   `mfn_list` (2.6.39-rc1+).
2. E820: RAM `[0, nr + extra)` with XEN EXTRA `[nr, nr + extra)` reserved, except 2.6.39-rc5 .. 2.6.39.x below
   4 GiB: `[0, nr)` and XEN EXTRA at `[4G, 4G + extra)`; `extra = min(slack, 9 * nr)` (`EXTRA_MEM_RATIO`:
   `extra_limit = min(10 * max_pfn, max_pfn + extra_pages)`), 3.1 `min(slack, 256)` (clamped to xl's maximum
   reservation, `nr + 256`), 3.9 `min(slack, 10 * nr, 500 GiB - nr)` (the maximum reservation is
   `MAX_DOMAIN_PAGES`, 500 GiB, and the extra pages at most 10x the base). Only a domU's map matters here, so
   `xen_memory_setup` versions that differ only for dom0 (2.6.37, 2.6.38, 2.6.39-rc1, 3.0-rc4) are one shape,
   "2.6.37". Then `max_pfn`,
   `max_low_pfn` (4 GiB if RAM crosses it, else the end of low RAM), and a second call `[4G, max_pfn)` iff
   `max_pfn > max_low_pfn`.
3. Placement, top-down: `high` (4b239f458): call 0 at `min(nr, 4G) - tables0`; call 1 at `nr - tables1` unless that
   overlaps call 0's reserved `[start0, end0)`, then right below `start0` (this takes call 0's reservation to be
   `[start0, end0)`: `obligations.reservation_premises`). `low` 3.1: call 0 below the kernel,
   `0x1000 - tables0`; 2.6.37: below `max_pfn_mapped` if the padding and the extension above Xen's tables hold it,
   else below the kernel; call 1 (both) at `min(nr, 4G) - tables1`. Each placement has its precondition (`placed`).
3b. Placement, anywhere (`Shape.anywhere`, the properties `P@any`): each call's `pgt_buf_start` is a free
   parameter (`base0`, `base1`), constrained to what `find_early_table_space`'s `memblock_find_in_range(start,
   end, tables, PAGE_SIZE)` may return (`search_allows`): `[start, start + tables)` inside `[lo, hi)` -- 2.6.37
   `[0x8000, max_pfn_mapped)`, 2.6.39-rc1 .. 3.0 `[0, end)` (the call's range end), 3.1 `[0, max_pfn_mapped)`,
   where `start = 0` means `PAGE_SIZE` and `max_pfn_mapped` is the start of day's for call 0 and call 0's end
   for call 1 -- and inside one of the free runs of RAM the reservations in force leave: `[1, 0x9b)` (RAM below
   640 KiB, the real-mode trampoline at its top), `[0x100, 0x1000)` (above the ISA hole, below the kernel), the
   unused `.brk` `[kernel_end - 12, kernel_end)`, and `[pt_end, nr)` (past the ramdisk, Xen's start info, p2m
   and tables; XEN EXTRA is reserved). Call 1's buffer also stays out of call 0's reservation `[start0,
   end0)` (the same premise as the high rule). The top-down rule of item 3 is one of these placements; any
   reservation the model does not know (ACPI, EBDA, another trampoline size) only removes candidates.
4. Walk order: call 0 keeps GiB 0's PMD (`level2_ident_pgt`) and the first `f` chunks; call 1 starts at 4 GiB with
   nothing. The PTE page of new chunk `c` is allocation `A(c) = (c - c0 + 1) + max(g(c) - g0 + 1, 0)`; the PMD page
   of a new GiB comes right before its first chunk; a chunk's PTE page is reachable once its GiB is linked: at
   once under an existing PMD, after the GiB's last chunk otherwise.
Bare metal: 2 MiB pages (and 1 GiB pages where the CPU has them: the parameter `gbpages`, 0 or 1) size and shape
the buffer; its place does not matter to any property (no page is ever read-only), so it is a free parameter. The
machine is RAM `[0, low_end)` (with the PC's holes below 1 MiB and anything that leaves no GiB without an E820
entry) and, if `high_end` is not 0, `[4G, high_end)`: `phys_pud_init` skips a GiB without any E820 entry, which
the closed form does not model (`closed_form.in_domain` says so). Each new GiB takes a PMD page (with 1 GiB pages
only the partial last one), a partial last 2 MiB chunk a PTE page, and each 512 GiB past the first (a PGD slot
past `level3_ident_pgt`'s) a PUD page.
The domain is `DOMAIN_MIN_PFN <= nr <= max_nr(shape)`: 64 MiB .. the release's `MAX_DOMAIN_PAGES` (128 GiB;
3.9: 500 GiB), past which `xen_memory_setup` ignores the rest of the guest (bare metal: up to
`MAX_PHYSMEM_BITS` = 46, 64 TiB, the most a 2011 x86-64 kernel maps), kernel and ramdisk sizes in `KERNEL_PAGES`
and `RAMDISK_PAGES`, the slack in `SLACK_PAGES`, and at least `FREE_PAST_BOOT_IMAGE` pages of the guest past Xen's
start-of-day mapping.

`Call.allocs_before(chunk)` is the closed form *during* the walk: the `alloc_low_page` calls made before
`kernel_physical_mapping_init` maps `chunk`. `step_function.py` proves it (and with it every quantity above) equal
to the kernel's loop, iteration by iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from xenpin.linux.e820 import ISA_END_ADDRESS, ISA_START_ADDRESS
from xenpin.linux.layout import DEFAULT_TRAMPOLINE_BYTES
from xenpin.linux.variant import KernelVariant
from xenpin.linux.xen_setup import LIBXL_MAXMEM_CONSTANT_PAGES, MAX_DOMAIN_PAGES, MAX_DOMAIN_PAGES_39

W = 64
FOUR_G = 1 << 20  # pfns
KERNEL_START = 0x1000
BRK_HOLE = 12  # start_of_day: the unused part of .brk between the reserved brk and the ramdisk
DOMAIN_MIN_PFN = (64 << 20) >> 12
MAX_PHYSMEM_BITS = 46  # 2011 x86-64 (asm/sparsemem.h): the direct map's 64 TiB
DOMAIN_MAX_PFN = 1 << (MAX_PHYSMEM_BITS - 12)  # bare metal's largest end of RAM
PGD_CHUNKS = 1 << 18  # 2 MiB chunks per PGD slot (512 GiB: one PUD page)
KERNEL_PAGES = (0x200, 0x8000)  # 2 MiB .. 128 MiB (start_of_day.MIN_KERNEL_PAGES is the floor)
RAMDISK_PAGES = (0, 0x20000)  # none .. 512 MiB
SLACK_PAGES = (0, 0x40000)  # none .. 1 GiB (xen_memory_setup's fallback and libxl's default: 8 MiB)
DEFAULT_SLACK = 2048
# xen_memory_setup's shapes: the domU map of each version (module docstring, item 2)
EXTRA_SHAPE = {"2.6.37": "2.6.37", "2.6.38": "2.6.37", "2.6.39-rc1": "2.6.37", "2.6.39-rc5": "2.6.39-rc5",
               "3.0-rc4": "2.6.37", "3.1": "3.1", "3.9": "3.9"}  # fmt: skip


def max_nr(shape: Shape) -> int:
    """The largest guest the closed form describes: `xen_memory_setup` uses at most MAX_DOMAIN_PAGES of it."""
    if shape.platform == "native":
        return DOMAIN_MAX_PFN
    return MAX_DOMAIN_PAGES_39 if shape.extra == "3.9" else MAX_DOMAIN_PAGES


# A guest must have this much memory past the builder's mapping (16 MiB): a smaller one is all boot image, and
# (the solver found) its buffer can start right after Xen's tables, where 2.6.39's ioremap clause maps the
# last L1 RW (`pfn == pgt_buf_end - 1` before the first allocation). `boot` shows it; the proofs leave it out.
FREE_PAST_BOOT_IMAGE = 4096
NATIVE_LOW_MAX = 0xF0000  # bare metal: low RAM ends below the 256 MiB PCI hole under 4 GiB
# item 3b: the free runs of RAM below the kernel; 2.6.37's search starts at 0x8000
ISA_END_PFN = ISA_END_ADDRESS >> 12
TRAMPOLINE_PFN = (
    ISA_START_ADDRESS - DEFAULT_TRAMPOLINE_BYTES
) >> 12  # setup_trampolines: top-down below 640 KiB
SEARCH_START_2637 = 0x8000 >> 12


class IntOps:
    """The backend of plain Python integers (unsigned values; the domain keeps them far below 2**64)."""

    @staticmethod
    def c(v: int) -> int:
        return v

    @staticmethod
    def ite(cond: bool, a: Any, b: Any) -> Any:
        return a if cond else b

    lt = staticmethod(lambda a, b: a < b)
    le = staticmethod(lambda a, b: a <= b)
    gt = staticmethod(lambda a, b: a > b)
    ge = staticmethod(lambda a, b: a >= b)
    eq = staticmethod(lambda a, b: a == b)
    and_ = staticmethod(lambda *xs: all(xs))
    or_ = staticmethod(lambda *xs: any(xs))
    not_ = staticmethod(lambda x: not x)
    shr = staticmethod(lambda x, k: x >> k)
    udiv = staticmethod(lambda x, d: x // d)
    true = True
    false = False


class Z3Ops:
    """The backend of 64-bit Z3 bit-vectors, unsigned."""

    @staticmethod
    def c(v: int) -> z3.BitVecRef:
        return z3.BitVecVal(v, W)

    @staticmethod
    def ite(cond: Any, a: Any, b: Any) -> Any:
        return z3.If(cond, a, b)

    lt = staticmethod(z3.ULT)
    le = staticmethod(z3.ULE)
    gt = staticmethod(z3.UGT)
    ge = staticmethod(z3.UGE)
    eq = staticmethod(lambda a, b: a == b)
    and_ = staticmethod(z3.And)
    or_ = staticmethod(z3.Or)
    not_ = staticmethod(z3.Not)
    shr = staticmethod(z3.LShR)
    udiv = staticmethod(lambda x, d: z3.UDiv(x, z3.BitVecVal(d, W)))
    true = z3.BoolVal(True)
    false = z3.BoolVal(False)


INT = IntOps()
Z3 = Z3Ops()


@dataclass(frozen=True)
class Shape:
    """What of a variant's code the closed form depends on (variants of one shape share lemmas)."""

    platform: str  # xen | native
    placement: str  # high | low | mapped
    low_search: str  # find_early_table_space of a low variant: "2.6.37" (0x8000) | "3.1"
    max_pfn_mapped: str  # xen_setup_kernel_pagetable's max_pfn_mapped: 2.6.37 | 2.6.39-rc1 | 3.9
    extra: str  # a domU's map from xen_memory_setup (EXTRA_SHAPE): 2.6.37 | 2.6.39-rc5 | 3.1 | 3.9
    anywhere: bool = False  # each pgt_buf_start is free, anywhere the search allows (item 3b), not the rule

    @property
    def key(self) -> str:
        """`platform/placement/search/max_pfn_mapped/extra[/any]`, e.g.
        `xen/high/2.6.39-rc1/2.6.39-rc1/2.6.39-rc5`."""
        parts = (self.platform, self.placement, self.low_search, self.max_pfn_mapped, self.extra)
        return "/".join(parts + (("any",) if self.anywhere else ()))

    @staticmethod
    def from_key(key: str) -> Shape:
        parts = key.split("/")
        return Shape(*parts[:5], anywhere=parts[5:] == ["any"])


def shape_of(v: KernelVariant) -> Shape:
    code = v.code
    if v.platform == "native":  # no property depends on where a bare-metal buffer goes: one shape for all
        return Shape("native", "any", "none", "none", "none")
    return Shape(
        v.platform,
        v.placement,
        code.get("find_early_table_space", "none"),
        code.get("xen_setup_kernel_pagetable", "2.6.39-rc1"),
        EXTRA_SHAPE[code.get("xen_memory_setup", "2.6.39-rc5")],
    )


def cdiv(ops, x, shift: int):
    return ops.shr(x + ops.c((1 << shift) - 1), shift)


def low_bits(ops, x, n: int):
    """`x & ((1 << n) - 1)`, in the backends' operations."""
    return x - ops.shr(x, n) * ops.c(1 << n)


def umin(ops, a, b):
    return ops.ite(ops.le(a, b), a, b)


def umax(ops, a, b):
    return ops.ite(ops.ge(a, b), a, b)


def tables_for(ops, end, pse: bool = False, gbpages: bool = False):
    """`find_early_table_space(end)` in pages: `ceil(puds/512) + ceil(pmds/512) + ceil(ptes/512)`."""
    puds = cdiv(ops, end, 18)
    pmd_span = end - ops.shr(end, 18) * ops.c(1 << 18) if gbpages else end
    pte_span = end - ops.shr(end, 9) * ops.c(512) if pse else end
    return cdiv(ops, puds, 9) + cdiv(ops, cdiv(ops, pmd_span, 9), 9) + cdiv(ops, pte_span, 9)


# item 3b: the fewest tables a call of the domain sizes (call 0 maps at least the least guest, call 1 past 4 GiB;
# `tables_for` grows with the end), which rule out the free runs too small for any buffer (`search_allows`)
MIN_TABLES = tables_for(INT, DOMAIN_MIN_PFN)
MIN_TABLES_CALL1 = tables_for(INT, FOUR_G + 1)
assert MIN_TABLES > BRK_HOLE and MIN_TABLES_CALL1 > TRAMPOLINE_PFN - 1


@dataclass(frozen=True)
class Params:
    """The machine: a domU's `nr`, `kernel`, `ramdisk`, `slack` pages; bare metal's `low_end`, `high_end`
    (pfns; `high_end` 0 for no RAM above 4 GiB), `gbpages` (1: the CPU maps with 1 GiB pages) and the free buffer
    places `base0`, `base1` (bare metal's; a domU's `pgt_buf_start` of each call under `Shape.anywhere`)."""

    nr: Any = 0
    kernel: Any = 0
    ramdisk: Any = 0
    slack: Any = 0
    low_end: Any = 0
    high_end: Any = 0
    base0: Any = 0
    base1: Any = 0
    gbpages: Any = 0

    @staticmethod
    def symbolic() -> Params:
        names = ("nr", "kernel", "ramdisk", "slack", "low_end", "high_end", "base0", "base1", "gbpages")
        return Params(*(z3.BitVec(n, W) for n in names))


@dataclass(frozen=True)
class Layout:
    """The start of day and the E820, as terms."""

    mfn_list: Any
    pt_base: Any
    pt_end: Any
    v_end: Any
    existing_chunks: Any  # f
    max_pfn_mapped: Any
    max_pfn: Any
    max_low: Any
    two_calls: Any


@dataclass(frozen=True)
class Call:
    """One `init_memory_mapping(range_start, range_end)` call, as terms (PFNs, chunk and GiB numbers)."""

    index: int
    shape: Shape
    exists: Any
    range_start: Any
    range_end: Any
    pgt_buf_start: Any
    pgt_buf_top: Any
    first_new_chunk: Any  # c0
    first_new_gib: Any  # g0
    placed: Any  # the placement's precondition: the buffer is where the closed form says
    ops: Any
    native_allocs: Any = None  # bare metal: the allocation count (2 MiB / 1 GiB pages)
    gbpages: Any = None  # bare metal: 1 GiB pages (a condition)

    @property
    def placement(self) -> str:
        return self.shape.placement

    @property
    def tables(self):
        return self.pgt_buf_top - self.pgt_buf_start

    def chunk_alloc(self, chunk):
        """`A(c)`: allocation number (1-based) of the PTE page of new chunk `chunk`."""
        o = self.ops
        g = o.shr(chunk, 9)
        pmds = o.ite(o.ge(g, self.first_new_gib), g - self.first_new_gib + o.c(1), o.c(0))
        return chunk - self.first_new_chunk + o.c(1) + pmds

    @property
    def last_chunk(self):
        return cdiv(self.ops, self.range_end, 9) - self.ops.c(1)

    @property
    def first_chunk(self):
        """The chunk `kernel_physical_mapping_init` maps first (the range starts on one: 0 or 4 GiB)."""
        return self.ops.shr(self.range_start, 9)

    @property
    def iterations(self):
        """Chunks the walk visits: `first_chunk .. last_chunk`."""
        return self.last_chunk + self.ops.c(1) - self.first_chunk

    def allocs_before(self, chunk):
        """`alloc_low_page` calls of the walk before it maps `chunk` (`first_chunk <= chunk <= last_chunk + 1`):
        domU, `A(chunk - 1)` once past the kept chunks; bare metal, a PUD page per PGD slot past the first, a
        PMD page per new GiB entered (1 GiB pages: only the partial last GiB), the partial last chunk's PTE page."""
        o = self.ops
        prev = chunk - o.c(1)
        started = o.gt(chunk, self.first_chunk)
        if self.native_allocs is None:
            return o.ite(o.gt(chunk, self.first_new_chunk), self.chunk_alloc(prev), o.c(0))
        end, g = self.range_end, o.shr(prev, 9)
        puds = o.ite(started, o.shr(prev, 18), o.c(0))
        pmds = o.ite(o.and_(started, o.ge(g, self.first_new_gib)), g - self.first_new_gib + o.c(1), o.c(0))
        partial_gib = o.and_(
            o.ge(o.shr(end, 18), self.first_new_gib), o.not_(o.eq(low_bits(o, end, 18), o.c(0)))
        )
        pmds_gb = o.ite(o.and_(started, partial_gib, o.ge(g, o.shr(end, 18))), o.c(1), o.c(0))
        partial_chunk = o.not_(o.eq(low_bits(o, end, 9), o.c(0)))
        ptes = o.ite(o.and_(started, partial_chunk, o.ge(prev, o.shr(end, 9))), o.c(1), o.c(0))
        return puds + o.ite(self.gbpages, pmds_gb, pmds) + ptes

    @property
    def total_allocs(self):
        """`alloc_low_page` calls of the walk: the last chunk's allocation number (the domain has every call
        allocate: `last_chunk >= first_new_chunk`)."""
        o = self.ops
        if self.native_allocs is not None:
            return self.native_allocs
        if self.placement == "mapped":
            return o.c(0)
        return self.chunk_alloc(self.last_chunk)

    @property
    def pgt_buf_end(self):
        """`pgt_buf_end` after the walk (the value the reserve step sees)."""
        return self.pgt_buf_start + self.total_allocs

    def is_new_chunk_pfn(self, pfn):
        """This call writes the PTE for `pfn` (in its range, not kept from before)."""
        o = self.ops
        return o.and_(
            o.ge(o.shr(pfn, 9), self.first_new_chunk), o.ge(pfn, self.range_start), o.lt(pfn, self.range_end)
        )

    def pte_alloc(self, pfn):
        return self.chunk_alloc(self.ops.shr(pfn, 9))

    def end_when_pte_written(self, pfn):
        return self.pgt_buf_start + self.pte_alloc(pfn)

    def gib_linked_after(self, pfn):
        """Allocation number after which the PTE page mapping `pfn` (of a new chunk) is reachable."""
        o = self.ops
        chunk = o.shr(pfn, 9)
        g = o.shr(chunk, 9)
        last_of_gib = umin(o, g * o.c(512) + o.c(511), self.last_chunk)
        return o.ite(o.ge(g, self.first_new_gib), self.chunk_alloc(last_of_gib), self.chunk_alloc(chunk))

    def pmd_alloc(self, gib):
        """Allocation number of new GiB `gib`'s PMD page: just before its first chunk's PTE page."""
        o = self.ops
        first = o.ite(o.ge(gib * o.c(512), self.first_new_chunk), gib * o.c(512), self.first_new_chunk)
        return self.chunk_alloc(first) - o.c(1)


def layout(ops, shape: Shape, p: Params) -> Layout:
    """Items 1 and 2 of the module docstring."""
    c = ops.c
    if shape.platform == "native":
        two = ops.gt(p.high_end, c(FOUR_G))
        return Layout(
            c(0), c(0), c(0), c(0), c(0), c(0x20000), ops.ite(two, p.high_end, p.low_end), p.low_end, two
        )
    mfn_list = c(KERNEL_START) + p.kernel + p.ramdisk
    alloc_end = mfn_list + cdiv(ops, p.nr, 9) + c(3)
    v_end = c(1024) * ops.udiv(alloc_end + c(132 + 1021), 1022)
    pt_end = alloc_end + c(3) + ops.shr(v_end, 9)
    f = umin(ops, ops.shr(v_end, 9) + c(4), cdiv(ops, p.nr, 9))
    mpm = f * c(512) - c(1) if shape.max_pfn_mapped == "2.6.37" else mfn_list
    if shape.extra == "3.9":  # extra_pages = min(10 * max_pfn, xen_get_max_pages() - max_pfn)
        room = ops.ite(ops.le(p.nr, c(MAX_DOMAIN_PAGES_39)), c(MAX_DOMAIN_PAGES_39) - p.nr, c(0))
        extra = umin(ops, umin(ops, p.slack, c(10) * p.nr), room)
    elif shape.extra == "3.1":  # 3.1's xen_get_max_pages(): xl's nr + LIBXL_MAXMEM_CONSTANT, then the ratio
        extra = umin(ops, umin(ops, p.slack, c(LIBXL_MAXMEM_CONSTANT_PAGES)), c(9) * p.nr)
    else:  # EXTRA_MEM_RATIO: extra_limit = min(10 * max_pfn, max_pfn + extra_pages)
        extra = umin(ops, p.slack, c(9) * p.nr)
    at_4g = (
        ops.and_(ops.lt(p.nr, c(FOUR_G)), ops.gt(extra, c(0))) if shape.extra == "2.6.39-rc5" else ops.false
    )
    max_pfn = ops.ite(at_4g, c(FOUR_G) + extra, p.nr + extra)
    max_low = ops.ite(ops.gt(max_pfn, c(FOUR_G)), ops.ite(at_4g, p.nr, c(FOUR_G)), max_pfn)
    return Layout(mfn_list, alloc_end, pt_end, v_end, f, mpm, max_pfn, max_low, ops.gt(max_pfn, max_low))


def calls(ops, shape: Shape, p: Params) -> tuple[Call, Call]:
    """The (up to) two calls `setup_arch` makes, with item 3's placements and their preconditions."""
    c = ops.c
    lay = layout(ops, shape, p)
    if shape.platform == "native":
        return _native_calls(ops, shape, p, lay)
    four = c(FOUR_G)
    t0, t1 = tables_for(ops, lay.max_low), tables_for(ops, lay.max_pfn)
    top0 = umin(ops, p.nr, four)
    anywhere = shape.anywhere and shape.placement != "mapped"
    if anywhere:
        s0 = p.base0
        placed0 = search_allows(ops, shape, p, lay, 0, s0, t0)
    elif shape.placement == "high":
        s0 = top0 - t0
        placed0 = ops.and_(ops.le(t0, top0), ops.ge(s0, lay.pt_end))
    elif shape.placement == "low" and shape.low_search == "3.1":
        s0 = c(KERNEL_START) - t0
        placed0 = ops.and_(ops.gt(t0, c(BRK_HOLE)), ops.le(t0, c(KERNEL_START - 0x100)))
    elif shape.placement == "low":  # 2.6.37: below max_pfn_mapped, else below the kernel
        above = ops.ge(lay.max_pfn_mapped, lay.pt_end + t0)
        s0 = ops.ite(above, lay.max_pfn_mapped - t0, c(KERNEL_START) - t0)
        below_kernel = ops.and_(ops.gt(t0, c(BRK_HOLE)), ops.le(t0, c(KERNEL_START - 0x100)))
        placed0 = ops.and_(ops.le(lay.max_pfn_mapped, p.nr), ops.or_(above, below_kernel))
    else:  # mapped (3.9): no buffer in the closed form
        s0, t0, t1 = lay.mfn_list, c(0), c(0)
        placed0 = ops.true
    call0 = Call(0, shape, ops.true, c(0), lay.max_low, s0, s0 + t0, lay.existing_chunks, c(1), placed0, ops)
    used0 = call0.total_allocs
    end0 = s0 + used0
    if anywhere:
        s1 = p.base1
        top1 = s1 + t1
        clear_of_call0 = ops.or_(ops.le(top1, s0), ops.ge(s1, end0))
        placed1 = ops.and_(search_allows(ops, shape, p, lay, 1, s1, t1), clear_of_call0)
    elif shape.placement == "high":
        cand = p.nr - t1
        above = ops.ge(cand, end0)
        s1 = ops.ite(above, cand, s0 - t1)
        # = s1 + t1, stated per case: the solver then sees at once that top1 <= s0 or s1 >= end0
        top1 = ops.ite(above, p.nr, s0)
        placed1 = ops.and_(
            ops.le(t1, p.nr),
            ops.ite(above, ops.ge(cand, lay.pt_end), ops.ge(s0, lay.pt_end + t1)),
        )
    elif shape.placement == "low":
        s1 = top0 - t1
        top1 = s1 + t1
        placed1 = ops.and_(ops.le(t1, top0), ops.ge(s1, umax(ops, lay.pt_end, s0 + t0)))
    else:
        s1, placed1 = four, ops.true
        top1 = s1 + t1
    call1 = Call(1, shape, lay.two_calls, four, lay.max_pfn, s1, top1, c(FOUR_G >> 9), c(4), placed1, ops)
    return call0, call1


def native_allocs(ops, end, first_gib, gb):
    """A bare-metal call's `alloc_low_page` calls, for a range `[first_gib GiB, end)` (module docstring)."""
    c = ops.c
    gibs = cdiv(ops, end, 18) - first_gib  # new GiBs, each a PMD page without 1 GiB pages
    pmds = ops.ite(ops.gt(end, first_gib * c(1 << 18)), gibs, c(0))
    partial_gib = ops.and_(
        ops.ge(ops.shr(end, 18), first_gib), ops.not_(ops.eq(end - ops.shr(end, 18) * c(1 << 18), c(0)))
    )
    pmds_gb = ops.ite(partial_gib, c(1), c(0))
    ptes = ops.ite(ops.eq(end - ops.shr(end, 9) * c(512), c(0)), c(0), c(1))
    # a PUD page per PGD slot past the first (init_level4_pgt's direct-map slot holds level3_ident_pgt)
    puds = ops.ite(ops.gt(end, c(PGD_CHUNKS << 9)), cdiv(ops, end, 27) - c(1), c(0))
    return ops.ite(gb, pmds_gb, pmds) + ptes + puds


def search_range(ops, shape: Shape, lay: Layout, index: int):
    """`[lo, hi)` in pfns of call `index`'s `memblock_find_in_range(start, end, ...)` (item 3b)."""
    lo = ops.c(SEARCH_START_2637 if shape.low_search == "2.6.37" else 1)  # start 0 means PAGE_SIZE
    if shape.low_search == "2.6.39-rc1":  # (0, end): the call's own range end
        return lo, lay.max_low if index == 0 else lay.max_pfn
    # (start, max_pfn_mapped << PAGE_SHIFT): the start of day's for call 0; call 0's end for call 1
    return lo, lay.max_pfn_mapped if index == 0 else lay.max_low


def search_allows(ops, shape: Shape, p: Params, lay: Layout, index: int, start, tables):
    """`[start, start + tables)` is a place call `index`'s search may return: inside its `[lo, hi)` and inside a
    free run of RAM (item 3b). Stated without a sum that could wrap: `start <= hi - tables`."""
    c = ops.c
    lo, hi = search_range(ops, shape, lay, index)
    end = start + tables
    # The runs a buffer of the domain can fit (the others are left out, which changes no answer): the unused
    # .brk never (`MIN_TABLES` > BRK_HOLE); RAM below 640 KiB not call 1's (`MIN_TABLES_CALL1` > its size);
    # past Xen's tables not 3.1's call 0 (its search ends at mfn_list, below pt_end).
    free_runs = [(c(ISA_END_PFN), c(KERNEL_START))]
    if index == 0:
        free_runs.insert(0, (c(1), c(TRAMPOLINE_PFN)))
    if index == 1 or shape.low_search != "3.1":
        free_runs.append((lay.pt_end, p.nr))
    return ops.and_(
        ops.le(tables, hi),
        ops.ge(start, lo),
        ops.le(start, hi - tables),
        ops.or_(*(ops.and_(ops.ge(start, a), ops.le(end, b)) for a, b in free_runs)),
    )


def anywhere(shape: Shape) -> Shape:
    """The shape whose buffers may lie anywhere the search allows (item 3b); bare metal's buffer is free
    already and 3.9 has none, so theirs is the shape itself."""
    if shape.platform != "xen" or shape.placement == "mapped":
        return shape
    return Shape(shape.platform, shape.placement, shape.low_search, shape.max_pfn_mapped, shape.extra, True)


def _native_calls(ops, shape: Shape, p: Params, lay: Layout) -> tuple[Call, Call]:
    """Bare metal: head_64.S maps GiB 0 with 2 MiB pages. Without 1 GiB pages every new GiB of the range takes a
    PMD page; with them only the partial last GiB does (the whole GiBs are 1 GiB entries); a partial last 2 MiB
    chunk takes a PTE page either way (`split_mem_range`); every PGD slot past the first a PUD page."""
    c = ops.c
    gb = ops.eq(p.gbpages, c(1))
    out = []
    for index, (start, end, exists, base) in enumerate(
        ((c(0), lay.max_low, ops.true, p.base0), (c(FOUR_G), lay.max_pfn, lay.two_calls, p.base1))
    ):
        t = ops.ite(gb, tables_for(ops, end, pse=True, gbpages=True), tables_for(ops, end, pse=True))
        first_gib = c(1) if index == 0 else c(4)
        allocs = native_allocs(ops, end, first_gib, gb)
        # anywhere in RAM below the call's end (stated without a sum that could wrap)
        placed = ops.and_(ops.ge(base, c(0x100)), ops.le(t, end), ops.le(base, end - t))
        out.append(
            Call(index, shape, exists, start, end, base, base + t, c(0), first_gib, placed, ops, allocs, gb)
        )
    return out[0], out[1]


def domain(ops, shape: Shape, p: Params, call0: Call, call1: Call):
    """The machines the proofs range over (module docstring), where the closed form's placements hold."""
    c = ops.c
    if shape.platform == "native":
        return ops.and_(
            ops.ge(p.low_end, c(DOMAIN_MIN_PFN)),
            ops.le(p.low_end, c(NATIVE_LOW_MAX)),
            ops.le(p.gbpages, c(1)),
            ops.or_(
                ops.eq(p.high_end, c(0)),
                ops.and_(ops.gt(p.high_end, c(FOUR_G)), ops.le(p.high_end, c(DOMAIN_MAX_PFN))),
            ),
            call0.placed,
            ops.or_(ops.not_(call1.exists), call1.placed),
        )
    lay = layout(ops, shape, p)
    return ops.and_(
        ops.ge(p.nr, c(DOMAIN_MIN_PFN)),
        ops.le(p.nr, c(max_nr(shape))),
        ops.ge(p.kernel, c(KERNEL_PAGES[0])),
        ops.le(p.kernel, c(KERNEL_PAGES[1])),
        ops.le(p.ramdisk, c(RAMDISK_PAGES[1])),
        ops.le(p.slack, c(SLACK_PAGES[1])),
        ops.le(lay.v_end + c(FREE_PAST_BOOT_IMAGE), p.nr),
        ops.ge(call0.last_chunk, call0.first_new_chunk),  # implied by the line above; stated for the solver
        call0.placed,
        ops.or_(ops.not_(call1.exists), call1.placed),
    )


__all__ = [
    "INT",
    "Z3",
    "Call",
    "IntOps",
    "Layout",
    "Params",
    "Shape",
    "Z3Ops",
    "anywhere",
    "calls",
    "domain",
    "layout",
    "search_allows",
    "search_range",
    "shape_of",
]
