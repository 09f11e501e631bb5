"""The x86-64 `init_memory_mapping` walk of a Xen PV guest, step by step, driving the Xen validator.

Mirrors arch/x86/mm/init.c and init_64.c (2.6.37 .. 3.8, and the 3.9+ design) with the Xen hooks of
arch/x86/xen/mmu.c:
- `find_early_table_space` sizes and places the buffer `[pgt_buf_start, pgt_buf_top)` (layout.py);
- `kernel_physical_mapping_init` -> `phys_pud_init` -> `phys_pmd_init` -> `phys_pte_init`, ascending, each new
  table page taken by `alloc_low_page` (`pgt_buf_end++`, reached through an `early_memremap` fixmap alias whose
  PTE goes through `mask_rw_pte` with `ioremap` set), filled completely, unmapped, then linked;
- `phys_pte_init` keeps existing PTEs and writes the others with `mask_rw_pte` (the variant's `readonly`);
  into a live L1 the store is emulated by Xen (ptwr), into a fresh page it is a plain store;
- `pmd_populate_kernel` -> `xen_alloc_pte_init` (`make_lowmem_page_readonly`, then `PIN_L1_TABLE`, `BUG()` on
  failure), `pud_populate` -> `xen_alloc_pmd_init` (read-only only); `set_pmd`/`set_pud` into a live table is a
  `mmu_update` hypercall;
- `if (pgt_buf_end > pgt_buf_start) pagetable_reserve(...)` with the variant's `reserve` / `writable` ranges;
- then a reuse phase: the page allocator hands out the free pages of the buffer and the kernel writes them.
The walk stops at the first failure, as the guest would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from xenpin.linux.layout import (
    KERNEL_START_PFN,
    LOW_FREE_START_PFN,
    PFNS_PER_PMD,
    PFNS_PER_PUD,
    PTRS_PER_TABLE,
    BootLayout,
    boot_layout,
    find_early_table_space_pages,
    pfn_phys,
)
from xenpin.linux.policy import to_function
from xenpin.linux.variant import PROPERTIES, KernelVariant
from xenpin.xen.flags import RW, Entry, P, format_flags
from xenpin.xen.hypervisor import Hypervisor, Result

PAGE_OFFSET = 0xFFFF880000000000  # the direct map: L4 slot 272
DIRECT_MAP_L4_SLOT = (PAGE_OFFSET >> 39) & 511
KERNEL_L4_SLOT = 511  # __START_KERNEL_map and the fixmap
FIXMAP_VA = 0xFFFFFFFFFFE00000  # the fixmap L1 (L4[511] -> L3[511] -> L2[511])
PAGE_KERNEL = P | RW

OUTCOMES = ("ok", "xen-rejected", "kernel-fault", "panic")


class BootStop(Exception):
    """The guest stops here (BUG, panic or an unhandled fault); `failure` says how."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class Failure:
    outcome: str  # one of OUTCOMES other than "ok"
    step: int
    pfn: int
    message: str  # the kernel's own line (panic, BUG, paging request)
    operation: str = ""
    errno: str | None = None
    xen_log: tuple[str, ...] = ()
    bug_site: str = ""
    reason: str = ""
    violates: str = ""  # the property this failure is a violation of, where no other rule says so


@dataclass(frozen=True)
class Step:
    index: int
    call: int  # which init_memory_mapping call (0, 1)
    action: str
    pfn: int
    detail: str
    pgt_buf_end: int


@dataclass
class BufferState:
    """One call's buffer: `pgt_buf_start/end/top` (PFNs) and the range the call maps."""

    call: int
    range_start: int
    range_end: int
    pgt_buf_start: int
    pgt_buf_end: int
    pgt_buf_top: int
    hook_ran: bool = False

    @property
    def used(self) -> range:
        return range(self.pgt_buf_start, self.pgt_buf_end)

    @property
    def spare(self) -> range:
        return range(self.pgt_buf_end, self.pgt_buf_top)

    def kernel_line(self) -> str:
        """Like the kernel's `kernel direct mapping tables up to %#lx @ [mem %#010lx-%#010lx]` line."""
        return (
            f"kernel direct mapping tables up to {pfn_phys(self.range_end):#x} @ "
            f"[{pfn_phys(self.pgt_buf_start):#010x}-{pfn_phys(self.pgt_buf_top) - 1:#010x}]"
        )


@dataclass
class BootResult:
    variant: KernelVariant
    mem_bytes: int
    rules: str
    layout: BootLayout
    outcome: str
    failure: Failure | None
    buffers: list[BufferState]
    properties: dict[str, bool | None]  # None: the boot stopped before the property could be judged
    steps: list[Step] = field(default_factory=list)
    pins: int = 0
    pte_writes: int = 0
    # Every buffer page at the end: (RW bit of its direct-map PTE, or None if unmapped; reserved)
    final_pages: dict[int, tuple[bool | None, bool]] = field(default_factory=dict)

    def mismatches(self) -> list[str]:
        """What differs from the variant's expectations: each property it expects `proved` that this run
        violates, and a failed boot that no violated property accounts for (say, a size outside the proofs'
        domain where the buffer cannot be placed)."""
        out = [p for p in PROPERTIES if self.variant.expect[p] == "proved" and self.properties[p] is False]
        if self.failure is not None and not any(v is False for v in self.properties.values()):
            out.append(f"outcome {self.outcome}, which no property accounts for")
        return out


def direct_map_va(pfn: int) -> int:
    return PAGE_OFFSET + pfn_phys(pfn)


class BootWalk:
    """One boot of one variant at one memory size. `run()` returns the `BootResult`."""

    def __init__(
        self,
        variant: KernelVariant,
        mem_bytes: int,
        rules: str = "xen-4.1",
        *,
        on_step: Callable[[BootWalk], None] | None = None,
    ) -> None:
        self.variant = variant
        self.mem_bytes = mem_bytes
        self.rules = rules
        self.layout = boot_layout(mem_bytes)
        self.xen = variant.xen
        self.on_step = on_step  # called after every Xen interaction (tests check invariants here)
        self.hv = Hypervisor(rules, frames=self.layout.max_pfn)
        self.reserved = bytearray(self.layout.max_pfn)  # memblock: 1 = reserved
        self.steps: list[Step] = []
        self.buffers: list[BufferState] = []
        self.buf: BufferState | None = None
        self.max_pfn_mapped = self.layout.max_pfn_mapped
        self.pins = 0
        self.pte_writes = 0
        self.walk_done = False
        params = ("pfn", "pgt_buf_start", "pgt_buf_end", "pgt_buf_top")
        self._readonly = to_function(variant.readonly, (*params, "ioremap"))
        self._reserve = to_function(variant.reserve, params)
        self._writable = to_function(variant.writable, params)
        self._alias_slots: list[int] = []
        self._alias_rw: dict[int, bool] = {}

    # ------------------------------------------------------------------------------------------ records

    def _step(self, action: str, pfn: int, detail: str = "") -> None:
        buf = self.buf
        self.steps.append(
            Step(len(self.steps), buf.call if buf else -1, action, pfn, detail, buf.pgt_buf_end if buf else 0)
        )

    def _in_buffer(self, pfn: int) -> bool:
        buf = self.buf
        return buf is not None and buf.pgt_buf_start <= pfn < buf.pgt_buf_top

    def _xen(self, result: Result, pfn: int, bug_site: str) -> Result:
        """A Xen interaction the guest cannot survive failing: `BUG()` at `bug_site` on rejection."""
        if self.on_step is not None:
            self.on_step(self)
        if not result.ok:
            self._stop(
                "xen-rejected",
                pfn,
                f"kernel BUG at {bug_site}",
                operation=result.op,
                errno=result.errno,
                xen_log=result.log,
                bug_site=bug_site,
                reason=result.reason,
            )
        return result

    def _stop(self, outcome: str, pfn: int, message: str, **kw) -> None:
        self._step(outcome, pfn, message)
        raise BootStop(Failure(outcome, len(self.steps) - 1, pfn, message, **kw))

    # ------------------------------------------------------------------------------------ start of day

    def _xen_start_of_day(self) -> None:
        """Xen's domain builder: bootstrap tables mapping [0, max_pfn_mapped), themselves RO; pinned; CR3."""
        lay, hv = self.layout, self.hv
        first = lay.boot_tables_start
        self.l4, l3d, self.l2d, l3k, l2k, self.fixmap_l1 = range(first, first + 6)
        boot_l1s = range(first + 6, first + lay.boot_tables_pages)
        tables = range(first, first + lay.boot_tables_pages)
        self.l3d = l3d
        hv.fill_table(self.l4, [(DIRECT_MAP_L4_SLOT, l3d, P | RW), (KERNEL_L4_SLOT, l3k, P | RW)])
        hv.fill_table(l3d, [(0, self.l2d, P | RW)])
        hv.fill_table(l3k, [(511, l2k, P | RW)])
        hv.fill_table(l2k, [(511, self.fixmap_l1, P | RW)])
        hv.fill_table(self.l2d, [(i, m, P | RW) for i, m in enumerate(boot_l1s)])
        for i, l1 in enumerate(boot_l1s):
            base = i * PTRS_PER_TABLE
            hv.fill_table(
                l1,
                (
                    (s, pfn, P if pfn in tables else P | RW)
                    for s, pfn in enumerate(range(base, min(base + PTRS_PER_TABLE, lay.max_pfn_mapped)))
                ),
            )
        if self.xen:
            for r in (hv.pin(4, self.l4), hv.new_baseptr(self.l4)):
                assert r.ok, f"Xen's own bootstrap tables were rejected: {r}"
        else:
            hv.baseptr = self.l4  # native: CR3 is just a register
        self.reserved[:LOW_FREE_START_PFN] = b"\x01" * LOW_FREE_START_PFN
        self.reserved[KERNEL_START_PFN : lay.max_pfn_mapped] = b"\x01" * (
            lay.max_pfn_mapped - KERNEL_START_PFN
        )

    # ------------------------------------------------------------------------------- the buffer

    def _find_early_table_space(self, call: int, start: int, end: int) -> BufferState:
        tables = find_early_table_space_pages(end)
        placement = self.variant.placement
        if placement == "high":  # 4b239f458: the top of the range being mapped
            base = end - tables
            if base < start or self.reserved.find(1, base, end) != -1:
                base = self._top_down(start, end, tables)
        elif placement == "low":  # top-down below max_pfn_mapped
            base = self._top_down(LOW_FREE_START_PFN, self.max_pfn_mapped, tables)
        else:  # 3.9+: no buffer; tables come one by one from mapped memory
            base, tables = self.max_pfn_mapped, 0
        if base < 0:
            self._stop("panic", 0, "Cannot find space for the kernel page tables")
        return BufferState(call, start, end, base, base, base + tables)

    def _top_down(self, lo: int, hi: int, pages: int) -> int:
        """`memblock_find_in_range(lo, hi, size)`, top-down: the highest free run of `pages`, or -1."""
        while hi - pages >= lo:
            r = self.reserved.rfind(1, hi - pages, hi)
            if r == -1:
                return hi - pages
            hi = r
        return -1

    def _alloc_low_page(self) -> int:
        """`alloc_low_page`: the next buffer page, cleared through an `early_memremap` alias."""
        buf = self.buf
        if self.variant.placement == "mapped":  # 3.9+ `alloc_low_pages`: mapped memory, reserved at once
            pfn = self._top_down(LOW_FREE_START_PFN, self.max_pfn_mapped, 1)
            if pfn < 0:
                self._stop("panic", 0, "alloc_low_pages: can not alloc memory")
            self.reserved[pfn] = 1
        else:
            pfn = buf.pgt_buf_end
            buf.pgt_buf_end += 1
            if pfn >= buf.pgt_buf_top:
                self._stop("panic", pfn, "alloc_low_page: ran out of memory")
        self._step("alloc_low_page", pfn, f"pgt_buf_end -> {buf.pgt_buf_end:#x}")
        self._early_memremap(pfn)
        return pfn

    def _pte_flags(self, pfn: int, ioremap: bool) -> int:
        """`xen_set_pte_init` -> `mask_rw_pte`: PAGE_KERNEL, RW cleared where the variant says read-only."""
        buf = self.buf
        if self.xen and self._readonly(pfn, buf.pgt_buf_start, buf.pgt_buf_end, buf.pgt_buf_top, ioremap):
            return PAGE_KERNEL & ~RW
        return PAGE_KERNEL

    def _early_memremap(self, pfn: int) -> None:
        slot = len(self._alias_slots)
        self._alias_slots.append(pfn)
        flags = self._pte_flags(pfn, ioremap=True)
        self._alias_rw[pfn] = bool(flags & RW)
        self._step("early_memremap", pfn, f"fixmap slot {slot} {format_flags(flags)}")
        self._store_pte(self.fixmap_l1, slot, Entry(pfn, flags), pfn, "early_memremap")

    def _early_iounmap(self, pfn: int) -> None:
        slot = self._alias_slots.index(pfn)
        self._store_pte(self.fixmap_l1, slot, None, pfn, "early_iounmap")
        self._alias_slots[slot] = -1
        while self._alias_slots and self._alias_slots[-1] == -1:
            self._alias_slots.pop()
        del self._alias_rw[pfn]

    def _store_pte(self, l1: int, slot: int, entry: Entry | None, pfn: int, site: str) -> None:
        """A `set_pte` into an L1 page: emulated by Xen if the L1 is live, a plain store otherwise."""
        if self.xen and self.hv.live_level(l1) == 1:
            self._xen(self.hv.write(l1, slot, entry), pfn, f"{site} (ptwr emulation of set_pte)")
        else:
            self.hv.write(l1, slot, entry)

    def _through_alias(self, page: int) -> None:
        """A store into a fresh table page goes through its fixmap alias: a read-only alias faults."""
        if self.xen and not self._alias_rw.get(page, True):
            self._stop(
                "kernel-fault",
                page,
                f"BUG: unable to handle kernel paging request at {FIXMAP_VA + 0x1000 * self._alias_slots.index(page):x}",
                violates="alias_writable",
                reason=f"the early_memremap alias of page {page:#x} was mapped read-only by mask_rw_pte",
            )

    def _plain_stores(self, page: int, entries: list[tuple[int, int, int]]) -> None:
        """Fill a fresh table page through its fixmap alias."""
        self._through_alias(page)
        self.hv.fill_table(page, entries)

    # ----------------------------------------------------------------------------- Xen hooks (mmu.c)

    def _make_lowmem_page(self, pfn: int, rw: bool) -> None:
        """`make_lowmem_page_readonly` / `_readwrite`: silently nothing if no PTE maps the page yet."""
        va = direct_map_va(pfn)
        where = self.hv.l1_slot_for_va(va)
        what = "readwrite" if rw else "readonly"
        if where is None or self.hv.entry(*where) is None:
            self._step(f"make_lowmem_page_{what}", pfn, "no PTE reaches it yet: nothing done")
            return
        old = self.hv.entry(*where)
        if bool(old.flags & RW) == rw:
            return
        new = Entry(old.mfn, (old.flags | RW) if rw else (old.flags & ~RW))
        self._step(f"make_lowmem_page_{what}", pfn, f"update_va_mapping {va:#x} -> {format_flags(new.flags)}")
        self._xen(self.hv.update_va_mapping(va, new), pfn, f"make_lowmem_page_{what} (update_va_mapping)")

    def _pmd_populate_kernel(self, pmd_page: int, slot: int, pte_page: int) -> None:
        if self.xen:  # xen_alloc_pte_init
            self._make_lowmem_page(pte_page, rw=False)
            self._step("pin_pagetable_pfn", pte_page, "MMUEXT_PIN_L1_TABLE")
            self.pins += 1
            self._xen(self.hv.pin(1, pte_page), pte_page, "arch/x86/xen/mmu.c pin_pagetable_pfn")
        self._set_entry(pmd_page, slot, Entry(pte_page, P | RW), pte_page, "set_pmd")

    def _pud_populate(self, pud_page: int, slot: int, pmd_page: int) -> None:
        if self.xen:  # xen_alloc_pmd_init
            self._make_lowmem_page(pmd_page, rw=False)
        self._set_entry(pud_page, slot, Entry(pmd_page, P | RW), pmd_page, "set_pud")

    def _set_entry(self, table: int, slot: int, entry: Entry, pfn: int, site: str) -> None:
        """`set_pmd` / `set_pud`: a hypercall into a live (pinned) table, a plain store into a fresh page."""
        if self.xen and self.hv.live_level(table):
            self._step(site, pfn, f"mmu_update {table:#x}[{slot}] -> {entry}")
            self._xen(self.hv.mmu_update(table, slot, entry), pfn, f"xen_{site} (mmu_update)")
        else:
            self._through_alias(table)
            if self._in_buffer(pfn) or self._in_buffer(table):
                self._step(site, pfn, f"store {table:#x}[{slot}] -> {entry}")
            self.hv.write(table, slot, entry)

    # ------------------------------------------------------------------------------ the walk (init_64.c)

    def _kernel_physical_mapping_init(self, start: int, end: int) -> None:
        for pud_idx in range(start // PFNS_PER_PUD, -(-end // PFNS_PER_PUD)):
            lo, hi = max(start, pud_idx * PFNS_PER_PUD), min(end, (pud_idx + 1) * PFNS_PER_PUD)
            existing = self.hv.entry(self.l3d, pud_idx)
            if existing is not None:
                self._phys_pmd_init(existing.mfn, lo, hi, fresh=False)
                continue
            pmd_page = self._alloc_low_page()
            self._phys_pmd_init(pmd_page, lo, hi, fresh=True)
            self._early_iounmap(pmd_page)
            self._pud_populate(self.l3d, pud_idx, pmd_page)

    def _phys_pmd_init(self, pmd_page: int, start: int, end: int, fresh: bool) -> None:
        for pmd_base in range(start - start % PFNS_PER_PMD, end, PFNS_PER_PMD):
            slot = (pmd_base // PFNS_PER_PMD) % PTRS_PER_TABLE
            lo, hi = max(start, pmd_base), min(end, pmd_base + PFNS_PER_PMD)
            existing = None if fresh else self.hv.entry(pmd_page, slot)
            if existing is not None:
                self._phys_pte_init_existing(existing.mfn, lo, hi)
                continue
            pte_page = self._alloc_low_page()
            self._plain_stores(pte_page, self._new_ptes(lo, hi))
            self._early_iounmap(pte_page)
            self._pmd_populate_kernel(pmd_page, slot, pte_page)

    def _new_ptes(self, lo: int, hi: int) -> list[tuple[int, int, int]]:
        buf = self.buf
        args = (buf.pgt_buf_start, buf.pgt_buf_end, buf.pgt_buf_top)
        readonly = self._readonly if self.xen else None
        out = []
        for pfn in range(lo, hi):
            flags = PAGE_KERNEL & ~RW if readonly is not None and readonly(pfn, *args, False) else PAGE_KERNEL
            out.append((pfn % PTRS_PER_TABLE, pfn, flags))
            if buf.pgt_buf_start <= pfn < buf.pgt_buf_top:
                self._step("set_pte", pfn, f"direct-map PTE {format_flags(flags)}")
        self.pte_writes += len(out)
        return out

    def _phys_pte_init_existing(self, l1: int, lo: int, hi: int) -> None:
        """`phys_pte_init` on an existing PTE page: `if (pte_val(*pte)) continue;`, else `set_pte`."""
        for pfn in range(lo, hi):
            slot = pfn % PTRS_PER_TABLE
            if self.hv.entry(l1, slot) is not None:
                continue
            flags = self._pte_flags(pfn, ioremap=False)
            if self._in_buffer(pfn):
                self._step("set_pte", pfn, f"direct-map PTE {format_flags(flags)} (existing L1 {l1:#x})")
            self.pte_writes += 1
            self._store_pte(l1, slot, Entry(pfn, flags), pfn, "phys_pte_init")

    # ------------------------------------------------------------------------------- the reserve step

    def _pagetable_reserve(self) -> None:
        """`x86_init.mapping.pagetable_reserve(PFN_PHYS(pgt_buf_start), PFN_PHYS(pgt_buf_end))` and kin."""
        buf = self.buf
        args = (buf.pgt_buf_start, buf.pgt_buf_end, buf.pgt_buf_top)
        buf.hook_ran = True
        self._step(
            "pagetable_reserve",
            buf.pgt_buf_start,
            f"[{pfn_phys(buf.pgt_buf_start):#x}, {pfn_phys(buf.pgt_buf_end):#x})",
        )
        for pfn in range(buf.pgt_buf_start, buf.pgt_buf_top):
            if self._reserve(pfn, *args):
                self.reserved[pfn] = 1
        if not self.xen:
            return
        for pfn in range(buf.pgt_buf_start, buf.pgt_buf_top):
            if self._writable(pfn, *args):
                self._make_lowmem_page(pfn, rw=True)

    # ------------------------------------------------------------------------------- reuse

    def _reuse_freed_pages(self) -> None:
        """The page allocator hands out every free page of each buffer; the kernel writes to it."""
        for buf in self.buffers:
            for pfn in range(buf.pgt_buf_start, buf.pgt_buf_top):
                if self.reserved[pfn]:
                    continue
                va = direct_map_va(pfn)
                where = self.hv.l1_slot_for_va(va)
                entry = self.hv.entry(*where) if where else None
                if entry is None or not entry.flags & RW:
                    self._stop(
                        "kernel-fault",
                        pfn,
                        f"BUG: unable to handle kernel paging request at {va:x}",
                        reason=f"freed page {pfn:#x} is still mapped read-only"
                        if entry
                        else f"page {pfn:#x} is not mapped",
                    )
                if self.hv.frame(pfn).level:
                    self._stop(
                        "kernel-fault",
                        pfn,
                        f"BUG: unable to handle kernel paging request at {va:x}",
                        reason=f"page {pfn:#x} is a live L{self.hv.frame(pfn).level} table but was handed to the page allocator",
                    )
                self._step("reuse", pfn, f"page allocator hands out {pfn:#x}; kernel writes {va:#x}")

    # ------------------------------------------------------------------------------------ run

    def run(self) -> BootResult:
        failure = None
        try:
            self._xen_start_of_day()
            for call, (start, end) in enumerate(self.layout.calls):
                self.buf = self._find_early_table_space(call, start, end)
                self.buffers.append(self.buf)
                self._step("find_early_table_space", self.buf.pgt_buf_start, self.buf.kernel_line())
                self._kernel_physical_mapping_init(start, end)
                if self.variant.placement != "mapped" and self.buf.pgt_buf_end > self.buf.pgt_buf_start:
                    self._pagetable_reserve()
                self.max_pfn_mapped = max(self.max_pfn_mapped, end)
            self.walk_done = True
            self._reuse_freed_pages()
        except BootStop as stop:
            failure = stop.failure
        return BootResult(
            variant=self.variant,
            mem_bytes=self.mem_bytes,
            rules=self.rules,
            layout=self.layout,
            outcome=failure.outcome if failure else "ok",
            failure=failure,
            buffers=self.buffers,
            properties=self._properties(failure),
            steps=self.steps,
            pins=self.pins,
            pte_writes=self.pte_writes,
            final_pages={
                p: (self._mapped_rw(p), bool(self.reserved[p]))
                for b in self.buffers
                for p in range(b.pgt_buf_start, b.pgt_buf_top)
            },
        )

    def _properties(self, failure: Failure | None) -> dict[str, bool | None]:
        """The properties of DESIGN.md (and `alias_writable`), judged on this run (None: not reached)."""
        finished_walk = self.walk_done
        props: dict[str, bool | None] = dict.fromkeys(PROPERTIES)
        ran_out = failure is not None and failure.message == "alloc_low_page: ran out of memory"
        props["buffer_fits"] = False if ran_out else (True if finished_walk else None)
        alias_fault = failure is not None and failure.violates == "alias_writable"
        props["alias_writable"] = False if alias_fault else (True if finished_walk else None)
        rejected = failure is not None and failure.outcome == "xen-rejected"
        props["no_rw_alias"] = False if rejected else (True if finished_walk else None)
        if finished_walk:
            hooked = [b for b in self.buffers if b.hook_ran]
            # Every buffer: a hook the guard skipped must not have been needed.
            props["spare_writable"] = all(
                self._mapped_rw(p) is not False for b in self.buffers for p in b.spare
            )
            props["spare_freed"] = not any(self.reserved[p] for b in hooked for p in b.spare)
            props["live_reserved"] = all(self.reserved[p] for b in self.buffers for p in b.used)
        return props

    def _mapped_rw(self, pfn: int) -> bool | None:
        where = self.hv.l1_slot_for_va(direct_map_va(pfn))
        entry = self.hv.entry(*where) if where else None
        return None if entry is None else bool(entry.flags & RW)


def boot(variant: KernelVariant, mem_bytes: int, rules: str = "xen-4.1", **kw) -> BootResult:
    """Run one boot of `variant` with `mem_bytes` of memory."""
    return BootWalk(variant, mem_bytes, rules, **kw).run()


__all__ = ["BootResult", "BootWalk", "Failure", "Step", "boot", "direct_map_va"]
