"""The paravirt MMU hooks the early page-table code calls: Xen's (arch/x86/xen/mmu.c) and bare metal's.

Xen PV, as `xen_mmu_ops` stands until `xen_post_allocator_init` (2.6.37 .. 3.8; 3.9's mask_rw_pte is
`return pte;`):
- `set_pte` is `xen_set_pte_init`: `mask_rw_pte` (the variant's `readonly` policy; `ioremap` when the PTE lives
  in the early_ioremap table `bm_pte`), then a plain store. A store into a live L1 traps and Xen's ptwr
  emulation checks it like an `mmu_update`; if Xen refuses, the store faults (an oops).
- `set_pmd` / `set_pud` / `set_pgd` are `xen_set_pmd_hyper` & co.: an `mmu_update` hypercall, into a fresh page
  as into a live table (`arbitrary_virt_to_machine` copes with fixmap pointers). A failed multicall only WARNs
  in `xen_mc_flush`; xenpin stops there.
- `alloc_pte` is `xen_alloc_pte_init`: `make_lowmem_page_readonly(__va(pfn))`, then `MMUEXT_PIN_L1_TABLE`;
  `alloc_pmd` / `alloc_pud` are `xen_alloc_pmd_init`: read-only only.
- `make_lowmem_page_readonly` / `_readwrite`: `lookup_address`; if no PUD or PMD reaches the address it silently
  returns; otherwise `HYPERVISOR_update_va_mapping`, `BUG()` on failure.
- `pin_pagetable_pfn`: `HYPERVISOR_mmuext_op`, `BUG()` on failure. This early the guest has registered no
  handler for #6 (only `early_trap_init`'s #1, #3, #14), so the `ud2` of `BUG()` is Xen's: `Unhandled invalid
  opcode fault/trap [#6]` and `domain_crash_sync` -- no "kernel BUG at" line is ever printed.
- the reserve step: `xen_mapping_pagetable_reserve` (2.6.39, the seed), its inline twin, 2.6.39-rc6's deferred
  `mark_rw_past_pgt`, or 2.6.37's plain `memblock_x86_reserve_range` in `init_memory_mapping`.
Native: every store is plain, and the hooks do nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import chain, repeat

from xenpin.linux.guest import Guest, direct_va
from xenpin.linux.layout import PTRS_PER_TABLE, pfn_phys
from xenpin.linux.policy import CompiledPolicy, free_variables, specialize
from xenpin.xen.console import DOMAIN_CRASH_SYNC, trap_line, xen_line
from xenpin.xen.flags import RW, Entry, P, format_flags
from xenpin.xen.hypervisor import Result

PAGE_KERNEL = P | RW  # the bits Xen checks; _PAGE_GLOBAL is masked for PV and A/D/NX do not matter here
PAGE_KERNEL_RO = P
_POLICY_ARGS = ("pfn", "pgt_buf_start", "pgt_buf_end", "pgt_buf_top")
RUNS_WINDOW = 1 << 18  # pfns (1 GiB): how far ahead readonly_runs answers while the buffer globals stay put
# A run of PTEs: pfns [lo, hi) with the same flags
PteRun = tuple[int, int, int]


class PvOps:
    """The hooks of one boot (see the module docstring). `pgt_buf_*` are the kernel's globals."""

    def __init__(self, g: Guest) -> None:
        self.g = g
        v = g.variant
        self.xen = v.xen
        # each policy compiled once; mask_rw_pte of a direct-map PTE (not in bm_pte) also with `ioremap` false
        # folded in, for its runs
        self._readonly = CompiledPolicy(v.readonly, (*_POLICY_ARGS, "ioremap"))
        self._readonly_direct = CompiledPolicy(specialize(v.readonly, {"ioremap": False}), _POLICY_ARGS)
        uses = free_variables(self._readonly_direct.expr)
        self._direct_uses = tuple(name in uses for name in _POLICY_ARGS[1:])
        # the buffer globals the direct-map rule reads, as the last call saw them, and the runs it kept
        self._direct_key: tuple | None = None
        self._direct_window: tuple[int, int, list[tuple[int, int, bool]], list[int]] | None = None
        self._reserve = CompiledPolicy(v.reserve, _POLICY_ARGS)
        self._writable = CompiledPolicy(v.writable, _POLICY_ARGS)
        self.pgt_buf_start = self.pgt_buf_end = self.pgt_buf_top = 0
        self.deferred = v.code["pagetable_reserve"] == "2.6.39-rc6"
        # mark_rw_past_pgt's statics (2.6.39-rc6)
        self._saved: tuple[int, int, int] | None = None
        self._last_set_rw = 0

    # ---------------------------------------------------------------------------------- Xen's answers

    def _xen_line(self, message: str) -> str:
        g = self.g
        return xen_line(message, g.config.domain_id, g.rules, dict(g.config.xen_build_lines))

    def _xen_lines(self, result: Result) -> tuple[str, ...]:
        lines = tuple(self._xen_line(m) for m in result.log)
        for line in lines:
            self.g.console.print("xen", line)
        return lines

    def _bug(self, result: Result, pfn: int, site: str) -> None:
        """`BUG()` after a refused hypercall: Xen's #6 trap line and the domain crash."""
        g = self.g
        logged = self._xen_lines(result)
        trap = self._xen_line(trap_line(6, "invalid opcode"))
        g.console.print("xen", trap)
        g.console.print("xen", DOMAIN_CRASH_SYNC)
        g.stop(
            "xen-rejected",
            pfn,
            trap,
            operation=result.op,
            errno=result.errno,
            xen_log=(*logged, trap, DOMAIN_CRASH_SYNC),
            bug_site=site,
            reason=result.reason,
            violates="no_rw_alias",
        )

    def _refused_store(self, result: Result, va: int, pfn: int, site: str) -> None:
        """A store Xen's ptwr emulation refused: the guest's page fault at the store's address -> oops."""
        self.g.oops(
            va,
            pfn,
            f"{site}: {result.reason}",
            violates="no_rw_alias",
            operation=result.op,
            errno=result.errno,
            xen_log=self._xen_lines(result),
            bug_site=site,
        )

    def _hypercall(self, result: Result, pfn: int, site: str) -> Result:
        self.g.notify()
        if not result.ok:
            self._bug(result, pfn, site)
        return result

    # ---------------------------------------------------------------------------------- mask_rw_pte

    def mask_rw(self, pfn: int, ioremap: bool) -> bool:
        """`mask_rw_pte`: True if the new PTE for `pfn` loses its RW bit."""
        return self.xen and self._readonly.fn(
            pfn, self.pgt_buf_start, self.pgt_buf_end, self.pgt_buf_top, ioremap
        )

    def readonly_runs(self, lo: int, hi: int) -> list[tuple[int, int, bool]]:
        """`mask_rw` of the direct-map PTEs (`ioremap` false) of pfns `[lo, hi)` with the buffer globals as they
        are now: maximal runs `(start, end, read-only)`, ascending."""
        if not self.xen or lo >= hi:
            return [(lo, hi, False)] if lo < hi else []
        globals_ = (self.pgt_buf_start, self.pgt_buf_end, self.pgt_buf_top)
        key = tuple(v if used else None for v, used in zip(globals_, self._direct_uses, strict=True))
        window = self._direct_window
        if key != self._direct_key or window is None or not window[0] <= lo < hi <= window[1]:
            # the same globals twice in a row (the rule does not read the one that moved): the runs of the next
            # RUNS_WINDOW pfns at once, for the L1 tables to come
            end = max(hi, lo + RUNS_WINDOW) if key == self._direct_key else hi
            runs = self._readonly_direct.runs(lo, end, *globals_)
            window = self._direct_window = (lo, end, runs, [r[1] for r in runs])
            self._direct_key = key
        _, _, runs, ends = window
        out = []
        for i in range(bisect_right(ends, lo), len(runs)):
            first, end, readonly = runs[i]
            if first >= hi:
                break
            out.append((max(first, lo), min(end, hi), readonly))
        return out

    def pte_flags(self, pfn: int, ioremap: bool) -> int:
        return PAGE_KERNEL_RO if self.mask_rw(pfn, ioremap) else PAGE_KERNEL

    # ---------------------------------------------------------------------------------- stores

    def set_pte(self, table: int, slot: int, pfn: int | None, flags: int, via: int, site: str) -> None:
        """`set_pte(ptep, pte)` into `table[slot]`, reached through virtual address `via`.

        `flags` are already masked (`pte_flags`); on Xen `mark_rw_past_pgt` runs first for a nonzero pfn.
        """
        g = self.g
        if self.deferred and pfn:
            self.mark_rw_past_pgt()
        entry = g.hv_entry(pfn, flags)
        if pfn is not None and entry is not None and not flags & RW and table != g.tables.bm_pte:
            g.ro_pfns.add(pfn)
        mfn = g.mfn(table)
        if self.xen and g.hv.live_level(mfn) == 1:
            result = g.hv.write(mfn, slot, entry)
            g.notify()
            if not result.ok:
                self._refused_store(result, via, pfn or 0, f"{site} (ptwr emulation of set_pte)")
        else:
            g.hv.write(mfn, slot, entry)

    def fill_pte_runs(self, table: int, runs: Iterable[PteRun]) -> None:
        """Many `set_pte`s into a fresh (not yet live) PTE page: plain stores, the PTE of each pfn in `[lo, hi)`
        with `flags` into slot `pfn % 512`, a run at a time (`runs` inside one table, ascending). A pfn with no
        mfn gets no entry (`pte_pfn_to_mfn`)."""
        g = self.g
        if self.deferred:
            self.mark_rw_past_pgt()
        pieces = []  # (slot, first mfn, n, flags, step)
        for lo, hi, flags in runs:
            for first, end, mfn, step in g.mfn_runs(lo, hi):
                pieces.append((first % PTRS_PER_TABLE, mfn, end - first, flags, step))
                if not flags & RW:
                    g.ro_pfns.add_range(first, end)
        table_mfn = g.mfn(table)
        if len(pieces) == 1 and not g.hv.live_level(table_mfn):
            g.hv.write_run(table_mfn, *pieces[0])  # the usual PTE page: one run, one slice store
            return
        g.hv.fill_table(
            table_mfn,
            chain.from_iterable(
                zip(range(slot, slot + n), range(mfn, mfn + step * n, step), repeat(flags, n), strict=True)
                for slot, mfn, n, flags, step in pieces
            ),
        )

    def set_upper(self, level: int, table: int, slot: int, pfn: int | None, site: str) -> None:
        """`set_pmd` (level 2) / `set_pud` (3) / `set_pgd` (4): `xen_set_*_hyper`'s `mmu_update` on Xen."""
        g = self.g
        entry = g.hv_entry(pfn, PAGE_KERNEL) if pfn is not None else None
        if not self.xen:
            g.hv.write(g.mfn(table), slot, entry)
            return
        g.step(
            site,
            pfn or 0,
            f"mmu_update {table:#x}[{slot}] -> {pfn if pfn is None else hex(pfn)}",
            table,
            slot,
        )
        result = g.hv.mmu_update(g.mfn(table), slot, entry)
        g.notify()
        if not result.ok:
            # xen_mc_flush only WARNs about a failed multicall; the kernel goes on with a table missing.
            g.stop(
                "xen-rejected",
                pfn or 0,
                "WARNING: at arch/x86/xen/multicalls.c xen_mc_flush()",
                operation=result.op,
                errno=result.errno,
                xen_log=self._xen_lines(result),
                bug_site=f"xen_{site}_hyper (multicall)",
                reason=result.reason,
                violates="no_rw_alias",
            )

    # ---------------------------------------------------------------------------------- alloc hooks

    def alloc_pte(self, pfn: int) -> None:
        """`paravirt_alloc_pte` -> `xen_alloc_pte_init`."""
        if not self.xen:
            return
        self.make_lowmem_page_readonly(pfn)
        self.pin_pagetable_pfn(1, pfn)

    def alloc_pmd(self, pfn: int) -> None:
        """`paravirt_alloc_pmd` / `_pud` -> `xen_alloc_pmd_init`."""
        if self.xen:
            self.make_lowmem_page_readonly(pfn)

    def pin_pagetable_pfn(self, level: int, pfn: int) -> None:
        g = self.g
        g.step("pin_pagetable_pfn", pfn, f"MMUEXT_PIN_L{level}_TABLE mfn {g.mfn(pfn):#x}")
        g.pins += 1
        self._hypercall(g.hv.pin(level, g.mfn(pfn)), pfn, "arch/x86/xen/mmu.c pin_pagetable_pfn")

    def _make_lowmem_page(self, pfn: int, rw: bool) -> None:
        g = self.g
        va = direct_va(pfn)
        what = "readwrite" if rw else "readonly"
        where = g.lookup_pte(va)
        if where is None:
            g.step(f"make_lowmem_page_{what}", pfn, "no PTE reaches it yet: nothing done")
            return
        l1, slot = where
        old = g.hv.entry(g.mfn(l1), slot)
        new = Entry(old.mfn, (old.flags | RW) if rw else (old.flags & ~RW))
        if not rw:
            g.ro_pfns.add(pfn)
        if g.in_buffer(pfn):
            g.step(f"make_lowmem_page_{what}", pfn, f"update_va_mapping {va:#x} -> {format_flags(new.flags)}",
                   l1, slot)  # fmt: skip
        self._hypercall(g.hv.update_va_mapping(va, new), pfn, f"make_lowmem_page_{what} (update_va_mapping)")

    def make_lowmem_page_readonly(self, pfn: int) -> None:
        self._make_lowmem_page(pfn, rw=False)

    def make_lowmem_page_readwrite(self, pfn: int) -> None:
        self._make_lowmem_page(pfn, rw=True)

    # ---------------------------------------------------------------------------------- the reserve step

    def pagetable_reserve(self) -> None:
        """The end of `init_memory_mapping`: `if (!after_bootmem && pgt_buf_end > pgt_buf_start)` the release's
        reserve step (the guard is the caller's)."""
        g, buf = self.g, self.g.buf
        args = (buf.pgt_buf_start, buf.pgt_buf_end, buf.pgt_buf_top)
        buf.hook_ran = True
        code = g.variant.code["pagetable_reserve"]
        g.step("pagetable_reserve", buf.pgt_buf_start, f"{code}: [{pfn_phys(buf.pgt_buf_start):#x}, "
               f"{pfn_phys(buf.pgt_buf_end):#x})")  # fmt: skip
        for lo, hi, reserved in self._reserve.runs(buf.pgt_buf_start, buf.pgt_buf_top, *args):
            if reserved:
                g.memblock.reserve(pfn_phys(lo), pfn_phys(hi), "PGTABLE")
        if self.xen and code in ("2.6.39", "inline"):
            # xen_mapping_pagetable_reserve: "set as RW the rest", printed as [end, PFN_PHYS(pgt_buf_top))
            g.console.setting_rw(pfn_phys(buf.pgt_buf_end), pfn_phys(buf.pgt_buf_top))
            self._make_writable(buf.pgt_buf_start, buf.pgt_buf_top, args)

    def _make_writable(self, lo: int, hi: int, args: tuple[int, int, int]) -> None:
        """`make_lowmem_page_readwrite` of each pfn in `[lo, hi)` the `writable` policy picks, ascending."""
        for first, end, writable in self._writable.runs(lo, hi, *args):
            if writable:
                for pfn in range(first, end):
                    self.make_lowmem_page_readwrite(pfn)

    def mark_rw_past_pgt(self) -> None:
        """2.6.39-rc6's `mark_rw_past_pgt` (a38647837a41): the old buffer's [end, top) made RW once its start is
        reserved, detected with `memblock_x86_find_in_range_size(PFN_PHYS(__pgt_buf_start))`."""
        if not self.pgt_buf_end > self.pgt_buf_start:
            return
        g = self.g
        if self._saved is None:
            self._saved = (self.pgt_buf_start, self.pgt_buf_end, self.pgt_buf_top)
            return
        start, end, top = self._saved
        found = g.memblock.find_in_range_size(pfn_phys(start))
        if found is not None and found[0] == pfn_phys(start):  # still not reserved: follow the moving end
            self._saved = (start, self.pgt_buf_end, self.pgt_buf_top)
            return
        if end == self._last_set_rw:
            return
        g.console.setting_rw(pfn_phys(end), pfn_phys(top))
        g.step("mark_rw_past_pgt", end, f"[{pfn_phys(end):#x}, {pfn_phys(top):#x}) RW")
        args = (start, end, top)
        self._make_writable(start, top, args)
        self._last_set_rw = end
        self._saved = (self.pgt_buf_start, self.pgt_buf_end, self.pgt_buf_top)


__all__ = ["PAGE_KERNEL", "PAGE_KERNEL_RO", "PteRun", "PvOps"]
