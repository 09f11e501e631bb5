"""The kernel's direct mapping of physical memory, as each release builds it, step by step.

Mirrors arch/x86/mm/init.c and init_64.c:
- 2.6.37 .. 3.8 `init_memory_mapping(start, end)`: the printk of the range; the split into 4k/2M/1G ranges
  (`save_mr`, merged; Xen PV has no PSE, so one 4k range); `find_early_table_space` sizing the buffer and
  placing it per release (`[code] find_early_table_space`: 2.6.37 `memblock_find_in_range(0x8000,
  max_pfn_mapped << 12)`, 2.6.39-rc1 `(0, end)`, 3.1 `(0, max_pfn_mapped << 12)`, each top-down); then
  `kernel_physical_mapping_init` -> `phys_pud_init` -> `phys_pmd_init` -> `phys_pte_init`, ascending: a new
  table page comes from `alloc_low_page` (`pgt_buf_end++`, cleared through an `early_memremap` alias), is
  filled completely, unmapped, then linked (`pgd/pud_populate`, `pmd_populate_kernel`); an existing table is
  written through `__va` (2.6.37) or through `map_low_page`'s fixmap alias (2.6.39-rc1, 4b239f458);
  `phys_pte_init` keeps existing PTEs (`if (pte_val(*pte)) continue;`); `phys_pud_init` skips a GiB with no
  E820 entry at all; finally `if (!after_bootmem && pgt_buf_end > pgt_buf_start)` the reserve step.
- 3.9 `init_mem_mapping` (8d57470d8f85): `[0, ISA_END)` first, then top-down from the last free 2 MiB below the
  end in steps that start at 2 MiB and grow 32x once a step mapped more than all before; `alloc_low_pages`
  takes the 5-page BRK seed while it does not overlap the range being mapped, then memory this walk already
  mapped, `[min_pfn_mapped, max_pfn_mapped)`, `memblock_reserve`d page by page; tables are reached and
  cleared through `__va`.
"""

from __future__ import annotations

from collections.abc import Callable

from xenpin.linux.e820 import E820_RAM, E820_RESERVED_KERN, ISA_END_ADDRESS
from xenpin.linux.guest import (
    BTMAP_VA,
    DIRECT_MAP_L4_SLOT,
    FIX_BTMAPS_SLOTS,
    NR_FIX_BTMAPS,
    BufferState,
    Guest,
    direct_va,
)
from xenpin.linux.layout import (
    PFNS_PER_PGD,
    PFNS_PER_PMD,
    PFNS_PER_PUD,
    PTRS_PER_TABLE,
    find_early_table_space_pages,
    pfn_phys,
)
from xenpin.linux.memblock import PAGE_SIZE
from xenpin.linux.pv_ops import PAGE_KERNEL, PAGE_KERNEL_RO, PvOps
from xenpin.xen.flags import PSE, RW, format_flags

PG_LEVEL_2M = 1 << 2
PG_LEVEL_1G = 1 << 3
PMD_SIZE = 1 << 21
PUD_SIZE = 1 << 30
INIT_PGT_BUF_PAGES = 5  # 3.9: "need 4 4k for initial PMD_SIZE, 4k for 0-ISA_END_ADDRESS"
STEP_SIZE_SHIFT = 5  # 3.9: (PUD_SHIFT - PMD_SHIFT) / 2

# `on_progress(what, done, total)`: which mapping call runs, and how many of the pages it maps are mapped. Called
# once per L1 table (2 MiB) or 1 GiB entry, and at each call's start and end: a few thousand times for a 4 GiB boot.
ProgressCallback = Callable[[str, int, int], None]


def split_mem_range(start: int, end: int, page_size_mask: int) -> list[tuple[int, int, int]]:
    """`init_memory_mapping`'s (3.9: `split_mem_range`'s) ranges `(start, end, mask)` in bytes, x86-64."""
    mr: list[tuple[int, int, int]] = []

    def save(s: int, e: int, mask: int) -> None:
        if s < e:
            mr.append((s << 12, e << 12, mask))

    limit = end >> 12
    pfn = start >> 12
    end_pfn = min(-(-pfn // 512) * 512, limit)  # head: up to the first 2M boundary
    if pfn < end_pfn:
        save(pfn, end_pfn, 0)
        pfn = end_pfn
    start_pfn = -(-pfn // 512) * 512  # 2M pages up to the first 1G boundary
    end_pfn = min(-(-pfn // PFNS_PER_PUD) * PFNS_PER_PUD, limit // 512 * 512)
    if start_pfn < end_pfn:
        save(start_pfn, end_pfn, page_size_mask & PG_LEVEL_2M)
        pfn = end_pfn
    start_pfn = -(-pfn // PFNS_PER_PUD) * PFNS_PER_PUD  # 1G pages
    end_pfn = limit // PFNS_PER_PUD * PFNS_PER_PUD
    if start_pfn < end_pfn:
        save(start_pfn, end_pfn, page_size_mask & (PG_LEVEL_2M | PG_LEVEL_1G))
        pfn = end_pfn
    start_pfn = -(-pfn // 512) * 512  # 2M tail
    end_pfn = limit // 512 * 512
    if start_pfn < end_pfn:
        save(start_pfn, end_pfn, page_size_mask & PG_LEVEL_2M)
        pfn = end_pfn
    save(pfn, limit, 0)  # 4k tail
    merged: list[tuple[int, int, int]] = []
    for s, e, m in mr:
        if merged and merged[-1][1] == s and merged[-1][2] == m:
            merged[-1] = (merged[-1][0], e, m)
        else:
            merged.append((s, e, m))
    return merged


def size_name(mask: int) -> str:
    return "1G" if mask & PG_LEVEL_1G else "2M" if mask & PG_LEVEL_2M else "4k"


class DirectMapping:
    """The walk of one boot (see the module docstring); `pv` are the paravirt hooks."""

    def __init__(self, g: Guest, pv: PvOps, on_progress: ProgressCallback | None = None) -> None:
        self.g = g
        self.pv = pv
        self.on_progress = on_progress
        # what `on_progress` reports: the call's name, the pages mapped before the current range, its first pfn,
        # and the pages the call maps in all (3.9: the whole of init_mem_mapping)
        self.progress_what = ""
        self.progress_before = 0
        self.progress_start = self.progress_end = 0
        self.progress_total = 0
        v = g.variant
        self.map_low_page = v.map_low_page
        self.release_39 = v.code["init_mem_mapping"] == "3.9"
        self.fixmap: list[int | None] = [None] * FIX_BTMAPS_SLOTS  # early_ioremap's prev_map[] (pfns)
        # Native: PSE always, 1 GiB pages where the CPU has them; Xen PV hides both (xen_cpuid, CR4.PSE off).
        self.use_pse = not v.xen
        self.use_gbpages = not v.xen and g.config.gbpages
        self.page_size_mask = (PG_LEVEL_2M if self.use_pse else 0) | (PG_LEVEL_1G if self.use_gbpages else 0)
        # 3.9 state
        self.min_pfn_mapped = 0
        self.can_use_brk_pgt = True
        self.pfn_mapped: list[tuple[int, int]] = []

    # ------------------------------------------------------------------------------------ early_memremap

    def early_memremap(self, pfn: int) -> int:
        """`early_memremap(PFN_PHYS(pfn), PAGE_SIZE)`: the first free fixmap slot, its PTE through mask_rw_pte
        with `ioremap` set. Returns the alias's virtual address."""
        g, pv = self.g, self.pv
        slot = self.fixmap.index(None)
        self.fixmap[slot] = pfn
        index = slot * NR_FIX_BTMAPS
        va = BTMAP_VA + index * PAGE_SIZE
        flags = pv.pte_flags(pfn, ioremap=True)
        if g.in_buffer(pfn) or g.live_level(pfn):
            g.step("early_memremap", pfn, f"fixmap slot {slot} {format_flags(flags)}")
        pv.set_pte(g.tables.bm_pte, index, pfn, flags, va, "early_memremap")
        return va

    def early_iounmap(self, pfn: int) -> None:
        g = self.g
        slot = self.fixmap.index(pfn)
        index = slot * NR_FIX_BTMAPS
        self.pv.set_pte(g.tables.bm_pte, index, None, 0, BTMAP_VA + index * PAGE_SIZE, "early_iounmap")
        self.fixmap[slot] = None

    def alias_rw(self, pfn: int) -> bool:
        slot = self.fixmap.index(pfn)
        e = self.g.entry(self.g.tables.bm_pte, slot * NR_FIX_BTMAPS)
        return e is not None and bool(e[1] & RW)

    def through_alias(self, pfn: int, what: str) -> None:
        """A plain store into page `pfn` through its fixmap alias: a read-only alias faults."""
        g = self.g
        if not g.xen or pfn not in self.fixmap or self.alias_rw(pfn):
            return
        slot = self.fixmap.index(pfn)
        g.oops(
            BTMAP_VA + slot * NR_FIX_BTMAPS * PAGE_SIZE,
            pfn,
            f"{what}: the early_memremap alias of page {pfn:#x} was mapped read-only by mask_rw_pte",
            violates="alias_writable",
            function="alloc_low_page" if what == "clear_page" else "phys_pte_init",
        )

    # ------------------------------------------------------------------------------------ table pages

    def alloc_low_page(self) -> int:
        """`alloc_low_page`: 2.6.37 .. 3.8 from the buffer (3.9: `alloc_low_pages(1)`)."""
        if self.release_39:
            return self.alloc_low_pages()
        g, buf = self.g, self.g.buf
        pfn = buf.pgt_buf_end
        buf.pgt_buf_end += 1
        self.pv.pgt_buf_end = buf.pgt_buf_end
        if pfn >= buf.pgt_buf_top:
            g.console.print("failure", "Kernel panic - not syncing: alloc_low_page: ran out of memory")
            g.stop("panic", pfn, "Kernel panic - not syncing: alloc_low_page: ran out of memory",
                   violates="buffer_fits")  # fmt: skip
        g.step("alloc_low_page", pfn, f"pgt_buf_end -> {buf.pgt_buf_end:#x}")
        self.early_memremap(pfn)
        self.through_alias(pfn, "clear_page")
        g.clear_page(pfn)
        return pfn

    def unmap_low_page(self, pfn: int) -> None:
        if not self.release_39:
            self.early_iounmap(pfn)

    def open_existing(self, pfn: int) -> None:
        """`map_low_page` (2.6.39-rc1 .. 3.8) for an existing table; `__va` otherwise."""
        if self.map_low_page:
            self.early_memremap(pfn)

    def close_existing(self, pfn: int) -> None:
        if self.map_low_page:
            self.early_iounmap(pfn)

    def report(self, pfn: int) -> None:
        """Tell `on_progress` the walk has mapped up to `pfn` of the current range."""
        if self.on_progress is not None:
            done = self.progress_before + max(0, min(pfn, self.progress_end) - self.progress_start)
            self.on_progress(self.progress_what, min(done, self.progress_total), self.progress_total)

    def via(self, pfn: int) -> int:
        """The address the kernel writes page `pfn`'s entries through: its fixmap alias, or `__va`."""
        if pfn in self.fixmap:
            return BTMAP_VA + self.fixmap.index(pfn) * NR_FIX_BTMAPS * PAGE_SIZE
        return direct_va(pfn)

    # ------------------------------------------------------------------------------------ init.c

    def init_memory_mapping(self, start: int, end: int) -> int:
        """`init_memory_mapping(start, end)` (bytes); returns the end pfn mapped."""
        g = self.g
        g.console.init_memory_mapping(start, end)
        if not self.release_39:
            self.progress_what = f"init_memory_mapping call {g.call} [{start:#x}, {end:#x})"
            self.progress_before, self.progress_total = 0, (end - start) >> 12
        self.progress_start, self.progress_end = start >> 12, end >> 12
        self.report(start >> 12)
        ranges = split_mem_range(start, end, self.page_size_mask)
        for s, e, mask in ranges:
            g.console.page_size(s, e, size_name(mask))
        if not self.release_39:
            g.buf = self.find_early_table_space(start >> 12, end >> 12)
            g.buffers.append(g.buf)
            pv = self.pv
            pv.pgt_buf_start, pv.pgt_buf_end, pv.pgt_buf_top = (
                g.buf.pgt_buf_start,
                g.buf.pgt_buf_end,
                g.buf.pgt_buf_top,
            )
        ret = end >> 12
        for s, e, mask in ranges:
            ret = self.kernel_physical_mapping_init(s >> 12, e >> 12, mask)
        self.report(end >> 12)
        self.progress_before += (end - start) >> 12
        if self.release_39:
            self.add_pfn_range_mapped(start >> 12, ret)
            return ret
        buf = g.buf
        if buf.pgt_buf_end > buf.pgt_buf_start:
            self.pv.pagetable_reserve()
        g.judge(buf)
        return ret

    def find_early_table_space(self, start_pfn: int, end_pfn: int) -> BufferState:
        g = self.g
        tables = find_early_table_space_pages(end_pfn, self.use_pse, self.use_gbpages)
        version = g.variant.code["find_early_table_space"]
        lo, hi = {
            "2.6.37": (0x8000, pfn_phys(g.max_pfn_mapped)),
            "2.6.39-rc1": (0, pfn_phys(end_pfn)),
            "3.1": (0, pfn_phys(g.max_pfn_mapped)),
        }[version]
        forced = g.config.pgt_buf_start
        if forced is not None and g.call < len(forced):  # a placement given (xenpin.symbolic.placement)
            base = pfn_phys(forced[g.call])
            if not _searchable(g.memblock, lo, hi, tables * PAGE_SIZE, base):
                why = f"pgt_buf_start {forced[g.call]:#x}: memblock_find_in_range({lo:#x}, {hi:#x}) cannot return it"
                g.stop(
                    "panic",
                    forced[g.call],
                    why,
                    reason=f"[{base:#x}, +{tables} pages) is not free RAM in range",
                )
        else:
            base = g.memblock.find_in_range(lo, hi, tables * PAGE_SIZE, PAGE_SIZE)
        if base is None:
            g.console.print(
                "failure", "Kernel panic - not syncing: Cannot find space for the kernel page tables"
            )
            g.stop("panic", 0, "Kernel panic - not syncing: Cannot find space for the kernel page tables",
                   reason=f"memblock_find_in_range({lo:#x}, {hi:#x}) has no {tables} free pages")  # fmt: skip
        first = base >> 12
        buf = BufferState(g.call, start_pfn, end_pfn, first, first, first + tables)
        g.console.tables(pfn_phys(end_pfn), pfn_phys(buf.pgt_buf_start), pfn_phys(buf.pgt_buf_top))
        g.step("find_early_table_space", first, g.console.lines[-1].text)
        return buf

    # ------------------------------------------------------------------------------------ init_64.c

    def kernel_physical_mapping_init(self, start: int, end: int, mask: int) -> int:
        """Pfns in, the end pfn mapped out."""
        g, pv = self.g, self.pv
        root = g.tables.init_level4_pgt
        pgd_index = DIRECT_MAP_L4_SLOT + start // PFNS_PER_PGD
        while start < end:
            nxt = min((start // PFNS_PER_PGD + 1) * PFNS_PER_PGD, end)
            existing = g.entry(root, pgd_index)
            if existing is not None:
                pud = existing[0]
                self.open_existing(pud)
                self.phys_pud_init(pud, start, end, mask)  # `end`, not `next`: as the kernel passes it
                self.close_existing(pud)
            else:
                pud = self.alloc_low_page()
                self.phys_pud_init(pud, start, nxt, mask)
                self.unmap_low_page(pud)
                pv.alloc_pmd(pud)  # pgd_populate -> paravirt_alloc_pud -> xen_alloc_pmd_init
                pv.set_upper(4, root, pgd_index, pud, "set_pgd")
            start, pgd_index = nxt, pgd_index + 1
        return end

    def phys_pud_init(self, pud_page: int, addr: int, end: int, mask: int) -> None:
        g, pv = self.g, self.pv
        i = (addr // PFNS_PER_PUD) % PTRS_PER_TABLE
        while i < PTRS_PER_TABLE and addr < end:
            gib_end = (addr // PFNS_PER_PUD + 1) * PFNS_PER_PUD
            existing = g.entry(pud_page, i)
            if not g.e820.any_mapped(pfn_phys(addr), pfn_phys(addr + PFNS_PER_PUD)):
                if existing is not None:
                    pv.set_upper(3, pud_page, i, None, "set_pud")
            elif existing is not None and not existing[1] & PSE:
                pmd = existing[0]
                self.open_existing(pmd)
                self.phys_pmd_init(pmd, addr, end, mask, fresh=False)
                self.close_existing(pmd)
            elif existing is not None and mask & PG_LEVEL_1G:
                pass  # keep the existing 1 GiB mapping
            elif mask & PG_LEVEL_1G:
                self._plain_store(pud_page, i, addr // PFNS_PER_PUD * PFNS_PER_PUD, PAGE_KERNEL | PSE)
            else:
                pmd = self.alloc_low_page()
                self.phys_pmd_init(pmd, addr, end, mask, fresh=True)
                self.unmap_low_page(pmd)
                pv.alloc_pmd(pmd)  # pud_populate -> paravirt_alloc_pmd -> xen_alloc_pmd_init
                pv.set_upper(3, pud_page, i, pmd, "set_pud")
            addr, i = gib_end, i + 1
            self.report(addr)

    def phys_pmd_init(self, pmd_page: int, address: int, end: int, mask: int, fresh: bool) -> None:
        g, pv = self.g, self.pv
        i = (address // PFNS_PER_PMD) % PTRS_PER_TABLE
        while i < PTRS_PER_TABLE:
            chunk = address // PFNS_PER_PMD * PFNS_PER_PMD
            nxt = chunk + PFNS_PER_PMD
            if address >= end:
                # set_pmd(pmd, __pmd(0)) for the rest (3.9: only where no RAM is); a fresh page is clear already
                if not fresh:
                    for j in range(i, PTRS_PER_TABLE):
                        base = chunk + (j - i) * PFNS_PER_PMD
                        if g.entry(pmd_page, j) is not None and not self._ram_kept(base, base + PFNS_PER_PMD):
                            pv.set_upper(2, pmd_page, j, None, "set_pmd")
                return
            existing = None if fresh else g.entry(pmd_page, i)
            if existing is not None and not existing[1] & PSE:
                pte = existing[0]
                self.open_existing(pte)
                self.phys_pte_init_existing(pte, address, end)
                self.close_existing(pte)
            elif existing is not None and mask & PG_LEVEL_2M:
                pass  # keep the existing 2 MiB mapping
            elif mask & PG_LEVEL_2M:
                self._plain_store(pmd_page, i, chunk, PAGE_KERNEL | PSE)
            else:
                pte = self.alloc_low_page()
                self.phys_pte_init_fresh(pte, address, end)
                self.unmap_low_page(pte)
                pv.alloc_pte(pte)  # pmd_populate_kernel -> paravirt_alloc_pte -> xen_alloc_pte_init
                pv.set_upper(2, pmd_page, i, pte, "set_pmd")
            if not mask & PG_LEVEL_2M:
                self.report(nxt)
            address, i = nxt, i + 1

    def _ram_kept(self, lo: int, hi: int) -> bool:
        """3.9 leaves entries past `end` alone where E820 RAM is (a later step maps it)."""
        if not self.release_39:
            return False
        e820 = self.g.e820
        a, b = pfn_phys(lo), pfn_phys(hi)
        return e820.any_mapped(a, b, E820_RAM) or e820.any_mapped(a, b, E820_RESERVED_KERN)

    def _plain_store(self, table: int, slot: int, pfn: int, flags: int) -> None:
        """A large-page entry `set_pte((pte_t *)pmd, ...)` (native only: Xen PV has neither PSE nor 1G)."""
        self.g.hv.write(self.g.mfn(table), slot, self.g.hv_entry(pfn, flags))

    def phys_pte_init_fresh(self, pte_page: int, addr: int, end: int) -> None:
        """`phys_pte_init(pte_page, addr, end)` into a page `alloc_low_page` just cleared (arch/x86/mm/init_64.c,
        2.6.37 .. 3.8): no `pte_val(*pte)` is set yet, so for each PTE up to `end` or the page's end

            set_pte(pte, pfn_pte(addr >> PAGE_SHIFT, PAGE_KERNEL));  /* xen_set_pte_init -> mask_rw_pte */

        as plain stores through the page's early_memremap alias (Xen does not know the page as a table yet).
        The buffer globals `mask_rw_pte` reads do not move inside the loop, so its answer is constant over each
        run `readonly_runs` gives, and a run of PTEs is stored at once; the steps of the buffer's own pages are
        recorded PTE by PTE, in the loop's order."""
        g, pv = self.g, self.pv
        hi = min(end, (addr // PFNS_PER_PMD + 1) * PFNS_PER_PMD)
        self.through_alias(pte_page, "phys_pte_init")
        runs = []
        for lo, run_end, readonly in pv.readonly_runs(addr, hi):
            flags = PAGE_KERNEL_RO if readonly else PAGE_KERNEL
            runs.append((lo, run_end, flags))
            for pfn in g.buffer_pfns(lo, run_end):
                g.step(
                    "set_pte", pfn, f"direct-map PTE {format_flags(flags)}", pte_page, pfn % PTRS_PER_TABLE
                )
        g.pte_writes += max(0, hi - addr)
        pv.fill_pte_runs(pte_page, runs)

    def phys_pte_init_existing(self, l1: int, lo: int, end: int) -> None:
        """`phys_pte_init` on an existing PTE page (arch/x86/mm/init_64.c, 2.6.37 .. 3.9), PTE by PTE: each store
        into a live L1 is Xen's to check (ptwr emulation)::

            if (addr >= end) { set_pte(pte, __pte(0)); continue; }   /* 3.9: not over E820 RAM */
            if (pte_val(*pte)) continue;                             /* keep what is there */
            set_pte(pte, pfn_pte(addr >> PAGE_SHIFT, prot));         /* xen_set_pte_init -> mask_rw_pte */

        `mask_rw_pte`'s answers come in runs (`readonly_runs`): the buffer globals do not move in the loop."""
        g, pv = self.g, self.pv
        hi = min(end, (lo // PFNS_PER_PMD + 1) * PFNS_PER_PMD)
        chunk_end = (lo // PFNS_PER_PMD + 1) * PFNS_PER_PMD
        mfn = g.mfn(l1)
        entry = g.hv.entry
        via = self.via(l1)
        for first, run_end, readonly in pv.readonly_runs(lo, hi):
            flags = PAGE_KERNEL_RO if readonly else PAGE_KERNEL
            for pfn in range(first, run_end):
                slot = pfn % PTRS_PER_TABLE
                if entry(mfn, slot) is not None:
                    continue
                if g.in_buffer(pfn):
                    g.step("set_pte", pfn, f"direct-map PTE {format_flags(flags)} (existing L1 {l1:#x})",
                           l1, slot)  # fmt: skip
                g.pte_writes += 1
                pv.set_pte(l1, slot, pfn, flags, via + slot * 8, "phys_pte_init")
        for pfn in range(hi, chunk_end):  # `if (addr >= end) set_pte(pte, __pte(0))` (3.9: not over RAM)
            slot = pfn % PTRS_PER_TABLE
            if entry(mfn, slot) is not None and not self._ram_kept(pfn, pfn + 1):
                pv.set_pte(l1, slot, None, 0, via + slot * 8, "phys_pte_init")

    # ------------------------------------------------------------------------------------ 3.9

    def add_pfn_range_mapped(self, start_pfn: int, end_pfn: int) -> None:
        g = self.g
        self.pfn_mapped.append((start_pfn, end_pfn))
        g.max_pfn_mapped = max(g.max_pfn_mapped, end_pfn)

    def alloc_low_pages(self) -> int:
        """3.9 `alloc_low_pages(1)`: the BRK seed while it may be used, else a page of memory already mapped."""
        g, buf = self.g, self.g.buf
        if buf.pgt_buf_end + 1 > buf.pgt_buf_top or not self.can_use_brk_pgt:
            if self.min_pfn_mapped >= g.max_pfn_mapped:
                g.console.print("failure", "Kernel panic - not syncing: alloc_low_page: ran out of memory")
                g.stop("panic", 0, "Kernel panic - not syncing: alloc_low_page: ran out of memory",
                       violates="buffer_fits")  # fmt: skip
            ret = g.memblock.find_in_range(
                pfn_phys(self.min_pfn_mapped), pfn_phys(g.max_pfn_mapped), PAGE_SIZE
            )
            if not ret:
                g.console.print("failure", "Kernel panic - not syncing: alloc_low_page: can not alloc memory")
                g.stop("panic", 0, "Kernel panic - not syncing: alloc_low_page: can not alloc memory",
                       violates="buffer_fits")  # fmt: skip
            g.memblock.reserve(ret, ret + PAGE_SIZE, "PGTABLE")
            pfn = ret >> 12
            g.step("alloc_low_pages", pfn, "memblock_reserve: from memory this walk mapped")
        else:
            pfn = buf.pgt_buf_end
            buf.pgt_buf_end += 1
            g.console.brk_pgtable(pfn_phys(pfn), pfn_phys(pfn + 1))
            g.step("alloc_low_pages", pfn, f"BRK seed, pgt_buf_end -> {buf.pgt_buf_end:#x}")
        if g.mapped_rw(pfn) is not True:  # clear_page(__va(pfn)): the page must be mapped and writable
            g.oops(direct_va(pfn), pfn, f"clear_page: page {pfn:#x} is not mapped writable", violates="alias_writable",
                   function="alloc_low_pages")  # fmt: skip
        g.clear_page(pfn)
        return pfn

    def init_range_memory_mapping(self, r_start: int, r_end: int) -> int:
        """3.9: `init_memory_mapping` of each RAM range inside `[r_start, r_end)` (bytes); bytes mapped."""
        g, buf = self.g, self.g.buf
        mapped = 0
        for base, end in [(r.base, r.end) for r in g.memblock.memory]:
            start, stop = min(max(base, r_start), r_end), min(max(end, r_start), r_end)
            if start >= stop:
                continue
            self.can_use_brk_pgt = max(start, pfn_phys(buf.pgt_buf_end)) >= min(
                stop, pfn_phys(buf.pgt_buf_top)
            )
            self.init_memory_mapping(start, stop)
            mapped += stop - start
            self.can_use_brk_pgt = True
        return mapped

    def init_mem_mapping_39(self) -> None:
        """3.9 `init_mem_mapping` (see the module docstring)."""
        g = self.g
        end = pfn_phys(g.max_pfn)
        self.progress_what = f"init_mem_mapping [0x0, {end:#x})"
        self.progress_total = (ISA_END_ADDRESS >> 12) + sum(
            max(0, min(r.end, end) - max(r.base, ISA_END_ADDRESS)) >> 12 for r in g.memblock.memory
        )
        self.init_memory_mapping(0, ISA_END_ADDRESS)
        addr = g.memblock.find_in_range(ISA_END_ADDRESS, end, PMD_SIZE, PMD_SIZE)
        real_end = addr + PMD_SIZE
        step = PMD_SIZE
        g.max_pfn_mapped = 0  # "will get exact value next"
        self.min_pfn_mapped = real_end >> 12
        last_start = real_end
        mapped_total = 0
        while last_start > ISA_END_ADDRESS:
            if last_start > step:
                start = max((last_start - 1) // step * step, ISA_END_ADDRESS)
            else:
                start = ISA_END_ADDRESS
            new = self.init_range_memory_mapping(start, last_start)
            last_start = start
            self.min_pfn_mapped = last_start >> 12
            if new > mapped_total:
                step <<= STEP_SIZE_SHIFT
            mapped_total += new
        if real_end < end:
            self.init_range_memory_mapping(real_end, end)
        g.judge(g.buf)


def _searchable(mb, lo: int, hi: int, size: int, base: int) -> bool:
    """`memblock_find_in_range(lo, hi, size, PAGE_SIZE)` may return `base` (given more reservations): a free,
    page-aligned fit of one memory region inside the range (`start == 0` means PAGE_SIZE)."""
    inside = max(lo, PAGE_SIZE) <= base and base + size <= hi and base % PAGE_SIZE == 0
    return (
        inside
        and mb.is_memory(base, base + size)
        and not any(r.base < base + size and base < r.end for r in mb.reserved)
    )


__all__ = ["DirectMapping", "split_mem_range"]
