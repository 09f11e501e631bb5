"""`setup_arch` from the E820 to the page allocator, in the order each release runs it (arch/x86/kernel/setup.c).

2.6.37 .. 3.1, 64-bit: `x86_64_start_reservations` reserves "TEXT DATA BSS" and "RAMDISK"; `setup_memory_map`
prints the map (`xen_memory_setup` on Xen, the BIOS's on bare metal); `max_pfn = e820_end_of_ram_pfn()` and, above
4 GiB, `max_low_pfn = e820_end_of_low_ram_pfn()` (each prints `last_pfn = ...`); `reserve_brk`; 2.6.39+'s
`cleanup_highmap`; `memblock_x86_fill`; `initial memory mapped : 0 - ...`; the trampoline below 1 MiB;
`init_memory_mapping(0, max_low_pfn << 12)` and above 4 GiB `init_memory_mapping(1UL << 32, max_pfn << 12)`;
`reserve_initrd` (`RAMDISK: ...`); `initmem_init`: no NUMA in a PV guest, so `dummy_numa_init` fakes one node and
`setup_node_bootmem` (3.0+: `setup_node_data`) allocates NODE_DATA top-down (2.6.x: from 4 GiB up when the node
spans it, "put it on high as possible"; 3.x: in `[16 MiB, max_pfn_mapped)`) and clears it with `memset`; then
`paging_init` and `x86_init.paging.pagetable_setup_done` -> `xen_pagetable_setup_done`: `xen_setup_shared_info`
(from here on CR2 is real) and `xen_post_allocator_init` (2.6.39-rc6: `mark_rw_past_pgt` once more). After
`setup_arch` the page allocator hands out every free page and the kernel writes to it.
3.9 allocates its BRK page-table seed (`early_alloc_pgt_buf`) before `reserve_brk` and runs `init_mem_mapping`.

Not modelled: `paging_init`'s own memblock allocations (sparse `mem_map`, usemaps), ACPI and SMP tables, EBDA,
crash kernel, and the order in which the page allocator hands pages out (xenpin writes the lowest free page
first); these change which line a failure prints, not whether a page is left RO or RW.
"""

from __future__ import annotations

from dataclasses import replace

from xenpin.linux.e820 import FOUR_GIB_PFN, ISA_END_ADDRESS, end_pfn_line
from xenpin.linux.guest import Guest, PfnRanges, direct_va
from xenpin.linux.init_memory_mapping import INIT_PGT_BUF_PAGES, DirectMapping, ProgressCallback
from xenpin.linux.layout import pfn_phys
from xenpin.linux.pv_ops import PvOps
from xenpin.linux.start_of_day import (
    BRK_PAGES,
    LEVEL1_IDENT_PAGES,
    cleanup_highmap,
    native_start_of_day,
    xen_start_of_day,
)
from xenpin.linux.xen_setup import xen_memory_setup

MAX_DMA_PFN = (16 << 20) >> 12
FOUR_GIB = 1 << 32


def setup_arch(g: Guest, on_progress: ProgressCallback | None = None) -> None:
    """Run the boot up to and including the page allocator's first writes; raises BootStop on a failure.
    `on_progress` follows the direct mapping's walk (see `init_memory_mapping.ProgressCallback`)."""
    v = g.variant
    if g.xen:
        xen_start_of_day(g)
    else:
        native_start_of_day(g)
    pv = PvOps(g)
    dm = DirectMapping(g, pv, on_progress)
    release_39 = v.code["init_mem_mapping"] == "3.9"
    brk_start = g.kernel_end - BRK_PAGES
    brk_used = LEVEL1_IDENT_PAGES + (INIT_PGT_BUF_PAGES if release_39 else 0)

    # x86_64_start_reservations
    g.memblock.reserve(pfn_phys(g.kernel_start), pfn_phys(brk_start), "TEXT DATA BSS")
    if g.ramdisk:
        g.memblock.reserve(*g.ramdisk, "RAMDISK")

    _memory_setup(g)
    g.memblock.debug = (
        True  # memblock=debug is an early_param: reservations before parse_early_param never print
    )
    g.max_pfn = g.e820.end_of_ram_pfn()
    g.console.print("last_pfn", end_pfn_line(g.max_pfn, g.console.dialect))
    if g.max_pfn > FOUR_GIB_PFN:
        g.max_low_pfn = g.e820.end_of_low_ram_pfn()
        g.console.print("last_pfn", end_pfn_line(g.max_low_pfn, g.console.dialect))
    else:
        g.max_low_pfn = g.max_pfn
    if release_39:  # early_alloc_pgt_buf: extend_brk(INIT_PGT_BUF_SIZE)
        seed = brk_start + LEVEL1_IDENT_PAGES
        g.buf = _brk_seed(g, seed)
    g.memblock.reserve(pfn_phys(brk_start), pfn_phys(brk_start + brk_used), "BRK")
    if g.xen and v.code["kernel_physical_mapping_init"] != "2.6.37":
        cleanup_highmap(g, pv)
    for base, end in g.e820.ram():  # memblock_x86_fill
        g.memblock.add(base, end)
    g.console.initial_mapped(pfn_phys(g.max_pfn_mapped))
    _trampoline(g)

    if release_39:
        g.call = 0
        dm.init_mem_mapping_39()
    else:
        for call, (start, end) in enumerate(_calls(g)):
            g.call = call
            end_pfn = dm.init_memory_mapping(pfn_phys(start), pfn_phys(end))
            g.max_pfn_mapped = end_pfn if call == 0 else max(g.max_pfn_mapped, end_pfn)
    g.call = -1
    g.walk_done = True

    if g.ramdisk:  # reserve_initrd: inside the initial mapping, nothing to relocate
        g.console.ramdisk(*g.ramdisk)
    if g.config.dom0 and pv.deferred:
        # acpi_boot_table_init maps the ACPI tables with early_ioremap: a set_pte of a nonzero pfn, which in
        # 2.6.39-rc6 runs mark_rw_past_pgt (a domU has ACPI disabled by xen_arch_setup)
        pv.mark_rw_past_pgt()
    _initmem_init(g)
    # paging_init(); x86_init.paging.pagetable_setup_done -> xen_pagetable_setup_done
    g.shared_info_ready = True
    if pv.deferred:
        pv.mark_rw_past_pgt()  # xen_post_allocator_init
    _page_allocator(g)


def _calls(g: Guest) -> list[tuple[int, int]]:
    out = [(0, g.max_low_pfn)]
    if g.max_pfn > g.max_low_pfn:
        out.append((FOUR_GIB_PFN, g.max_pfn))
    return out


def _brk_seed(g: Guest, seed: int):
    from xenpin.linux.guest import BufferState

    buf = BufferState(-1, 0, 0, seed, seed, seed + INIT_PGT_BUF_PAGES)
    g.buffers.append(buf)
    return buf


def _memory_setup(g: Guest) -> None:
    """`setup_memory_map`: `x86_init.resources.memory_setup()` and the printed map."""
    cfg = g.config
    header = (
        "e820: BIOS-provided physical RAM map:"
        if g.console.dialect == "3.9"
        else "BIOS-provided physical RAM map:"
    )
    if g.xen:
        sod = g.sod
        ms = xen_memory_setup(
            cfg.nr_pages,
            cfg.e820,
            cfg.dom0,
            g.variant.code["xen_memory_setup"],
            g.memblock,
            sod.mfn_list,
            sod.pt_base,
            cfg.slack_bytes,
            cfg.max_reservation,
        )
        g.e820 = ms.e820
        if ms.released:  # xen_release_chunk: those pfns have no mfn any more
            g.p2m = replace(g.p2m, released=ms.released)
        for line in ms.lines:
            g.console.print("xen_setup", line)
        who = "Xen"
    else:
        g.e820 = cfg.host_e820()
        who = "BIOS-e820"
    g.console.print("e820_header", header)  # printed once memory_setup() has returned
    for line in g.e820.lines(who, "3.9" if g.console.dialect == "3.9" else "2.6"):
        g.console.print("e820", line)


def _trampoline(g: Guest) -> None:
    """The real-mode trampoline, top-down below 1 MiB (`setup_trampolines`, printed from 2.6.39 on; 3.9's
    `setup_real_mode` prints the same line)."""
    size = g.config.trampoline_bytes
    base = g.memblock.find_in_range(0, ISA_END_ADDRESS, size)
    if base is None:
        return
    g.memblock.reserve(base, base + size, "TRAMPOLINE")
    if g.variant.code["kernel_physical_mapping_init"] != "2.6.37":
        g.console.trampoline(base, size)


def _initmem_init(g: Guest) -> None:
    """`initmem_init` with `dummy_numa_init`: one node `[0, max_pfn)`, its NODE_DATA allocated and cleared."""
    c = g.console
    end = pfn_phys(g.max_pfn)
    c.numa_dummy(end)
    if g.variant.code["initmem_init"] == "2.6.37":  # numa_64.c compute_hash_shift: one node at 0 -> 63
        c.print("numa", "NUMA: Using 63 for the hash shift.")
    c.initmem_node(0, 0, end)
    size = g.config.node_data_bytes
    start = pfn_phys(MAX_DMA_PFN)
    if g.variant.code["initmem_init"] == "2.6.37":
        if start < FOUR_GIB < end:  # early_node_mem: "put it on high as possible"
            start = FOUR_GIB
        hi, function = end, "setup_node_bootmem"
    else:
        hi, function = pfn_phys(g.max_pfn_mapped), "setup_node_data"
    nd = g.memblock.find_in_range(start, hi, size, 64) or g.memblock.find_in_range(
        pfn_phys(MAX_DMA_PFN), hi, size, 64
    )
    if nd is None:
        return
    g.memblock.reserve(nd, nd + size, "NODE_DATA")
    c.node_data(nd, nd + size)
    g.step("node_data", nd >> 12, f"NODE_DATA [{nd:#x}, {nd + size:#x}) memset")
    for pfn in range(nd >> 12, -(-(nd + size) // 4096)):
        if g.mapped_rw(pfn) is not True:
            g.oops(
                direct_va(pfn),
                pfn,
                f"memset(NODE_DATA): page {pfn:#x} is {'mapped read-only' if g.mapped_rw(pfn) is False else 'not mapped'}",
                violates=_fault_property(g, pfn),
                function=function,
                phase="initmem_init",
            )


def _fault_property(g: Guest, pfn: int) -> str:
    """The property a write fault on free page `pfn` violates: a live table the reservation left free, or a
    buffer's spare tail left RO."""
    if g.live_level(pfn):
        return "live_reserved"
    if any(pfn in b.spare for b in g.buffers):
        return "spare_writable"
    return ""


def _page_allocator(g: Guest) -> None:
    """Every free page goes to the page allocator, and the kernel writes to it: the lowest one that is not
    mapped RW (or is a live page table) faults."""
    candidates = PfnRanges()
    for lo, hi in g.ro_pfns.runs():
        candidates.add_range(lo, hi)
    for b in g.buffers:
        candidates.add_range(b.pgt_buf_start, b.pgt_buf_top)
    for pfn in candidates:
        if g.memblock.is_reserved(pfn_phys(pfn)) or not g.memblock.is_memory(
            pfn_phys(pfn), pfn_phys(pfn + 1)
        ):
            continue
        level = g.live_level(pfn)
        rw = g.mapped_rw(pfn)
        if rw is True and not level:
            continue
        why = (
            f"page {pfn:#x} is a live L{level} table but was handed to the page allocator"
            if level
            else f"freed page {pfn:#x} is still mapped read-only"
            if rw is False
            else f"page {pfn:#x} is not mapped"
        )
        g.oops(
            direct_va(pfn),
            pfn,
            why,
            violates=_fault_property(g, pfn),
            function="the page allocator's first user",
            phase="page allocator",
        )


__all__ = ["setup_arch"]
