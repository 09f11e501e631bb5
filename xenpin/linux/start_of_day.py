"""From the first instruction to `setup_arch`: the page tables the kernel runs on before it maps memory.

Xen PV (`xen_start_kernel` -> `xen_setup_kernel_pagetable`, arch/x86/xen/mmu.c, 64-bit, 2.6.37 .. 3.9): the domain
builder's tables (`xenpin.xen.domain_builder`) map `[0, v_end)` through one L2 at `__START_KERNEL_map`. The
kernel copies that L2 into head_64.S's `level2_ident_pgt`, `level2_kernel_pgt` and `level2_fixmap_pgt` (the
same Xen L1s now serve the direct map and the kernel map), links `level3_ident_pgt` under `init_level4_pgt[272]`
and `level3_kernel_pgt` under `[511]`; `xen_map_identity_early` extends the identity map with up to four L1s of
`level1_ident_pgt` (brk), filling the PMD slots past Xen's, while `pfn < nr_pages`; every one of these tables is
made RO (`set_page_prot`: `update_va_mapping` of its kernel-map address), `init_level4_pgt` is pinned, Xen's L4
unpinned, CR3 switched, and `[pt_base, pt_base + nr_pt_frames)` reserved "XEN PAGETABLES". `max_pfn_mapped` is,
per release, the last pfn `xen_map_identity_early` touched (2.6.37, 2.6.38: "if (pfn > max_pfn_mapped)
max_pfn_mapped = pfn", one short of the end) or `PFN_DOWN(__pa(xen_start_info->mfn_list))` (14988a4d350c,
2.6.39-rc1+). 3.9's 64-bit version no longer extends the identity map, and `check_pt_base` gives Xen's L4, L3
and L2 back (RW, cleared, unreserved). `early_ioremap_init` then links `bm_pte` under `level2_fixmap_pgt` (`pmd_populate_kernel`:
RO + `PIN_L1_TABLE`), and 2.6.39+'s `cleanup_highmap` drops the kernel-map PMDs outside `[_text, _brk_end)`
below `max_pfn_mapped`.

Bare metal (head_64.S, head64.c): `level2_ident_pgt` maps `[0, 1 GiB)` with 2 MiB pages, `level2_kernel_pgt` the
first 512 MiB; `max_pfn_mapped = KERNEL_IMAGE_SIZE >> PAGE_SHIFT` (512 MiB).

The kernel image: `[_text, _end)` from 16 MiB; head_64.S's tables sit in its .data, `bm_pte` in .bss, and the
brk (`level1_ident_pgt`, 3.9's BRK page-table seed) at its end.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial

from xenpin.linux.guest import (
    BTMAP_L2_SLOT,
    DIRECT_MAP_L4_SLOT,
    FIXMAP_L3_SLOT,
    KERNEL_L3_SLOT,
    KERNEL_L4_SLOT,
    START_KERNEL_MAP,
    Guest,
    KernelTables,
)
from xenpin.linux.layout import PFNS_PER_PMD, PTRS_PER_TABLE, pfn_phys
from xenpin.linux.pv_ops import PAGE_KERNEL, PAGE_KERNEL_RO
from xenpin.xen.domain_builder import (
    KERNEL_START_PFN,
    P2M,
    build_bootstrap_tables,
    construct_dom0_layout,
    pages,
    xc_dom_layout,
)
from xenpin.xen.flags import PSE, Entry
from xenpin.xen.hypervisor import Hypervisor

LEVEL1_IDENT_PAGES = 4  # LEVEL1_IDENT_ENTRIES = PTRS_PER_PTE * 4
BRK_PAGES = 16  # the .brk area at the end of the image: level1_ident_pgt, dmi, 3.9's INIT_PGT_BUF
KERNEL_IMAGE_PAGES = (512 << 20) >> 12  # KERNEL_IMAGE_SIZE
MIN_KERNEL_PAGES = 0x200  # room for the tables, .bss and the brk


def _kernel_tables(g: Guest, kernel_start: int, kernel_end: int) -> KernelTables:
    if kernel_end - kernel_start < MIN_KERNEL_PAGES:
        raise ValueError(f"a kernel image of {pfn_phys(kernel_end - kernel_start):#x} bytes is too small")
    data = (
        kernel_start + (kernel_end - kernel_start) // 2
    )  # somewhere in .data; the exact frames do not matter
    t = KernelTables(*range(data, data + 7))
    brk = kernel_end - BRK_PAGES
    t.level1_ident_pgt = list(range(brk, brk + LEVEL1_IDENT_PAGES))
    return t


def _mfn_of(p2m: P2M, frames: int) -> Callable[[int], int | None]:
    """`p2m.mfn` for pfns `0 .. frames - 1`; where that is one run of slope +-1, as a call with no Python frame
    (the validator asks for every frame's mfn: a million calls at 4 GiB)."""
    if p2m.nr_pages >= frames and not p2m.released and p2m.step in (1, -1):
        return partial(operator.add if p2m.step == 1 else operator.sub, p2m.base)
    return p2m.mfn


def xen_start_of_day(g: Guest) -> None:
    """Xen's domain builder, then `xen_setup_kernel_pagetable` and `early_ioremap_init` (module docstring)."""
    cfg = g.config
    layout = construct_dom0_layout if cfg.dom0 else xc_dom_layout
    sod = layout(cfg.nr_pages, cfg.kernel_bytes, cfg.ramdisk_bytes)
    if sod.v_end > cfg.nr_pages:
        raise ValueError(
            f"{cfg.mem_bytes:#x} bytes is too small: the domain builder's layout needs {pfn_phys(sod.v_end):#x}"
        )
    if sod.pg_l1 > PTRS_PER_TABLE:
        # The builder maps the boot image from __START_KERNEL_map; xen_setup_kernel_pagetable (2.6.37 .. 3.9)
        # keeps one L2 of that mapping (level2_kernel_pgt: 1 GiB). A bigger image -- the p2m list grows 8 bytes
        # a page -- is not mapped after the switch to init_level4_pgt: PV guests of these kernels stop near
        # 512 GiB (Linux 4.x moved the p2m list out of the image, XEN_ELFNOTE_INIT_P2M).
        raise ValueError(
            f"{cfg.mem_bytes:#x} bytes is too large for a 64-bit PV guest of this kernel: the domain builder maps"
            f" its boot image (kernel, ramdisk, a {pfn_phys(sod.start_info - sod.mfn_list) >> 20} MiB p2m list,"
            f" start info and tables) in {pfn_phys(sod.v_end) >> 20} MiB, more than the 1 GiB of it"
            " xen_setup_kernel_pagetable keeps (one L2, level2_kernel_pgt)"
        )
    g.sod, g.p2m = sod, cfg.guest_p2m()
    g.hv = Hypervisor(g.rules, frames=cfg.nr_pages, mfn_of=_mfn_of(g.p2m, cfg.nr_pages), guest=cfg.domain_id)
    build_bootstrap_tables(g.hv, sod, g.p2m)
    g.kernel_start, g.kernel_end = sod.kernel_start, sod.kernel_end
    if sod.ramdisk_end > sod.ramdisk_start:
        g.ramdisk = (pfn_phys(sod.ramdisk_start), pfn_phys(sod.ramdisk_end))
    t = g.tables = _kernel_tables(g, sod.kernel_start, sod.kernel_end)
    hv, m = g.hv, g.mfn
    xen_l2 = sod.pt_base + 2
    raw = g.console.print if cfg.dom0 else (lambda kind, text: None)  # HYPERVISOR_console_io: dom0's only
    raw("raw_console", "mapping kernel into physical memory")

    # head_64.S's pre-constructed entries (convert_pfn_mfn), "Zap identity mapping": init_level4_pgt[0] stays empty
    hv.fill_table(m(t.init_level4_pgt), [(DIRECT_MAP_L4_SLOT, m(t.level3_ident_pgt), PAGE_KERNEL),
                                         (KERNEL_L4_SLOT, m(t.level3_kernel_pgt), PAGE_KERNEL)])  # fmt: skip
    hv.fill_table(m(t.level3_ident_pgt), [(0, m(t.level2_ident_pgt), PAGE_KERNEL)])
    hv.fill_table(m(t.level3_kernel_pgt), [(KERNEL_L3_SLOT, m(t.level2_kernel_pgt), PAGE_KERNEL),
                                           (FIXMAP_L3_SLOT, m(t.level2_fixmap_pgt), PAGE_KERNEL)])  # fmt: skip
    xen_l1s = [(s, e.mfn, e.flags) for s, e in hv.entries(m(xen_l2))]
    for copy in (t.level2_ident_pgt, t.level2_kernel_pgt, t.level2_fixmap_pgt):  # memcpy of Xen's L2
        hv.fill_table(m(copy), xen_l1s)
    version = g.variant.code["xen_setup_kernel_pagetable"]  # the release's xen_setup_kernel_pagetable
    if version == "3.9":  # 64-bit 3.9: no xen_map_identity_early, only level2_ident_pgt made RO
        _set_page_prot(g, t.level2_ident_pgt, PAGE_KERNEL_RO)
    else:
        g.max_pfn_mapped = _map_identity_early(g, t)
    if version != "2.6.37":
        g.max_pfn_mapped = sod.mfn_list  # PFN_DOWN(__pa(xen_start_info->mfn_list))
    for table in (t.init_level4_pgt, t.level3_ident_pgt, t.level3_kernel_pgt, t.level2_kernel_pgt,
                  t.level2_fixmap_pgt):  # fmt: skip
        _set_page_prot(g, table, PAGE_KERNEL_RO)
    for r in (
        hv.pin(4, m(t.init_level4_pgt)),
        hv.unpin(m(sod.pt_base)),
        hv.new_baseptr(m(t.init_level4_pgt)),
    ):
        if not r.ok:  # pragma: no cover - the takeover is valid by construction
            raise AssertionError(f"xen_setup_kernel_pagetable was refused: {r}")
    pt_base = sod.pt_base
    if version == "3.9":  # check_pt_base: libxc's [L4], [L3], [L2] lead the area; they are freed and cleared
        for table in (sod.pt_base, sod.pt_base + 1, sod.pt_base + 2):
            _set_page_prot(g, table, PAGE_KERNEL)
            g.clear_page(table)
        pt_base += 3 if not cfg.dom0 else 1  # construct_dom0 lays out [L4], [L1], [L2], [L3]: only the L4
    g.memblock.reserve(pfn_phys(pt_base), pfn_phys(sod.pt_end), "XEN PAGETABLES")
    if g.variant.code["init_mem_mapping"] != "3.9":  # xen_ident_map_ISA(), printing for dom0 only
        raw("raw_console", "Xen: setup ISA identity maps")
    raw("raw_console", "about to get started...")
    _early_ioremap_init(g, t)


def _set_page_prot(g: Guest, pfn: int, flags: int) -> None:
    """`set_page_prot(addr, prot)`: `update_va_mapping` of the table's kernel-map address."""
    r = g.hv.update_va_mapping(START_KERNEL_MAP + pfn_phys(pfn), Entry(g.mfn(pfn), flags))
    if not r.ok:  # pragma: no cover
        raise AssertionError(f"set_page_prot({pfn:#x}) was refused: {r}")


def _map_identity_early(g: Guest, t: KernelTables) -> int:
    """`xen_map_identity_early(level2_ident_pgt, nr_pages)`; returns 2.6.37's `max_pfn_mapped`."""
    hv, m = g.hv, g.mfn
    max_pfn = g.config.nr_pages
    spare = list(t.level1_ident_pgt)
    used = []
    max_pfn_mapped = 0
    pfn = 0
    for pmdidx in range(PTRS_PER_TABLE):
        if pfn >= max_pfn:
            break
        if g.entry(t.level2_ident_pgt, pmdidx) is None:
            if not spare:  # "Check for free pte pages"
                break
            page = spare.pop(0)
            used.append(page)
            hv.fill_table(m(page), [(s, mfn, PAGE_KERNEL) for s in range(PTRS_PER_TABLE)
                                    if (mfn := g.mfn(pfn + s)) is not None])  # fmt: skip
            hv.fill_table(m(t.level2_ident_pgt), [(pmdidx, m(page), PAGE_KERNEL)])
        max_pfn_mapped = pfn + PTRS_PER_TABLE - 1  # "if (pfn > max_pfn_mapped) max_pfn_mapped = pfn"
        pfn += PTRS_PER_TABLE
    for page in used:
        _set_page_prot(g, page, PAGE_KERNEL_RO)
    _set_page_prot(g, t.level2_ident_pgt, PAGE_KERNEL_RO)
    return max_pfn_mapped


def _early_ioremap_init(g: Guest, t: KernelTables) -> None:
    """`early_ioremap_init`: `pmd_populate_kernel(&init_mm, pmd, bm_pte)` on Xen = RO, pin, `set_pmd`."""
    from xenpin.linux.pv_ops import PvOps  # the hooks need the guest's tables, made just above

    pv = PvOps(g)
    pv.alloc_pte(t.bm_pte)
    pv.set_upper(2, t.level2_fixmap_pgt, BTMAP_L2_SLOT, t.bm_pte, "set_pmd")
    g.steps.clear()
    g.pins = 0


def cleanup_highmap(g: Guest, pv) -> None:
    """2.6.39+ `cleanup_highmap`: kernel-map PMDs below `max_pfn_mapped` outside `[_text, roundup(_brk_end,
    2M))` are cleared (`set_pmd` -> `mmu_update` on the live level2_kernel_pgt)."""
    t = g.tables
    brk_end = -(-(g.kernel_end - BRK_PAGES + LEVEL1_IDENT_PAGES) // PFNS_PER_PMD)  # chunk after _brk_end
    for i in range(PTRS_PER_TABLE):
        if (i + 1) * PFNS_PER_PMD > g.max_pfn_mapped:  # "vaddr + PMD_SIZE - 1 < vaddr_end"
            break
        if g.entry(t.level2_kernel_pgt, i) is None:
            continue
        if i * PFNS_PER_PMD < g.kernel_start or i >= brk_end:
            pv.set_upper(2, t.level2_kernel_pgt, i, None, "set_pmd")


def native_start_of_day(g: Guest) -> None:
    """head_64.S's tables on bare metal (module docstring); frames are added as pages become tables."""
    cfg = g.config
    kernel_start = KERNEL_START_PFN
    kernel_end = kernel_start + pages(cfg.kernel_bytes)
    image = (pfn_phys(kernel_start), pfn_phys(kernel_end))
    if not any(a <= image[0] and image[1] <= b for a, b in cfg.host_e820().ram()):
        raise ValueError(
            f"no RAM holds the kernel image [{image[0]:#x}, {image[1]:#x}): the machine is too small"
        )
    g.kernel_start, g.kernel_end = kernel_start, kernel_end
    g.hv = Hypervisor(g.rules, frames=1)
    t = g.tables = _kernel_tables(g, kernel_start, kernel_end)
    g.hv.add_guest_frames(range(kernel_start, kernel_end))
    hv = g.hv
    hv.fill_table(t.init_level4_pgt, [(DIRECT_MAP_L4_SLOT, t.level3_ident_pgt, PAGE_KERNEL),
                                      (KERNEL_L4_SLOT, t.level3_kernel_pgt, PAGE_KERNEL)])  # fmt: skip
    hv.fill_table(t.level3_ident_pgt, [(0, t.level2_ident_pgt, PAGE_KERNEL)])
    hv.fill_table(t.level3_kernel_pgt, [(KERNEL_L3_SLOT, t.level2_kernel_pgt, PAGE_KERNEL),
                                        (FIXMAP_L3_SLOT, t.level2_fixmap_pgt, PAGE_KERNEL)])  # fmt: skip
    hv.fill_table(
        t.level2_ident_pgt, [(i, i * PFNS_PER_PMD, PAGE_KERNEL | PSE) for i in range(PTRS_PER_TABLE)]
    )
    hv.fill_table(t.level2_kernel_pgt, [(i, i * PFNS_PER_PMD, PAGE_KERNEL | PSE) for i in range(256)])
    hv.fill_table(t.level2_fixmap_pgt, [(BTMAP_L2_SLOT, t.bm_pte, PAGE_KERNEL)])
    hv.baseptr = t.init_level4_pgt  # CR3 is just a register on bare metal
    g.max_pfn_mapped = KERNEL_IMAGE_PAGES
    if cfg.ramdisk_bytes:
        g.ramdisk = native_ramdisk(g)


def native_ramdisk(g: Guest) -> tuple[int, int]:
    """Where the boot loader put the initrd: as given, or page-aligned at the top of RAM below 2 GiB - 1
    (`initrd_addr_max` of the boot protocol), as GRUB does."""
    cfg = g.config
    size = pfn_phys(pages(cfg.ramdisk_bytes))
    if cfg.ramdisk_start is not None:
        return cfg.ramdisk_start, cfg.ramdisk_start + size
    limit = 0x7FFFFFFF + 1
    top = max(min(e.end, limit) for e in cfg.host_e820().map if e.type == 1 and e.addr < limit)
    start = (top - size) & ~0xFFF
    return start, start + size


__all__ = ["cleanup_highmap", "native_start_of_day", "xen_start_of_day"]
