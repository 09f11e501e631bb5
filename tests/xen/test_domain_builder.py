"""Xen's domain builders (libxc 4.1 `xc_dom_build_image` for a domU, `construct_dom0` for dom0): the layout
of a 64-bit PV guest's first pages, checked against line-by-line transcriptions of the C; the p2m; and the
bootstrap page tables they leave, built in the validator."""

from __future__ import annotations

import pytest
from hypothesis import given

from xenpin.strategies import domain_sizes
from xenpin.xen.domain_builder import (
    KERNEL_START_PFN,
    P2M,
    VIRT_BASE,
    build_bootstrap_tables,
    construct_dom0_layout,
    pages,
    xc_dom_layout,
)
from xenpin.xen.flags import RW
from xenpin.xen.hypervisor import Hypervisor
from xenpin.xen.invariants import check_invariants

PAGE = 4096
ROUND_4M = 1024  # pfns


def _libxc(nr_pages: int, kernel_bytes: int, ramdisk_bytes: int) -> dict[str, int]:
    """tools/libxc/xc_dom_core.c xc_dom_build_image + xc_dom_x86.c alloc_magic_pages / count_pgtables (4.1),
    in virtual addresses as libxc computes them; returned as pfns (relative to virt_base)."""
    virt_alloc_end = VIRT_BASE + (KERNEL_START_PFN << 12) + pages(kernel_bytes) * PAGE  # the kernel segment
    virt_alloc_end += pages(ramdisk_bytes) * PAGE  # "ramdisk"
    mfn_list = virt_alloc_end
    virt_alloc_end += pages(nr_pages * 8) * PAGE  # "phys2mach"
    start_info = virt_alloc_end
    virt_alloc_end += 3 * PAGE  # start info, xenstore, console

    def bits_to_mask(bits: int) -> int:
        return (1 << bits) - 1

    def nr_page_tables(start: int, end: int, bits: int) -> int:
        mask = bits_to_mask(bits)
        start, end = start & ~mask, end | mask  # round_down / round_up of xc_dom_x86.c
        return ((end - start) >> bits) + 1

    extra_pages = 1 + 128  # alloc_bootstack; "512kB padding"
    npages = extra_pages
    while True:
        try_virt_end = (virt_alloc_end + npages * PAGE) | bits_to_mask(22)  # "4MB alignment"
        pg = [nr_page_tables(VIRT_BASE, try_virt_end, b) for b in (39 + 9, 39, 30, 21)]
        pgtables = sum(pg)
        npages = pgtables + extra_pages
        if virt_alloc_end + npages * PAGE <= try_virt_end + 1:
            break
    rel = lambda va: (va - VIRT_BASE) >> 12  # noqa: E731
    return {
        "mfn_list": rel(mfn_list),
        "start_info": rel(start_info),
        "pt_base": rel(virt_alloc_end),
        "nr_pt_frames": pgtables,
        "pg_l1": pg[3],
        "boot_stack": rel(virt_alloc_end) + pgtables,
        "v_end": rel(try_virt_end + 1),
    }


def _construct_dom0(nr_pages: int, kernel_bytes: int, initrd_len: int) -> dict[str, int]:
    """xen/arch/x86/domain_build.c construct_dom0 (RELEASE-4.1.0), x86_64, no MOD_START_PFN, no p2m_base."""
    round_pgup = lambda x: (x + PAGE - 1) & ~(PAGE - 1)  # noqa: E731
    v_start = VIRT_BASE
    vkern_end = v_start + (KERNEL_START_PFN << 12) + kernel_bytes
    vinitrd_start = round_pgup(vkern_end)
    vinitrd_end = vinitrd_start + initrd_len
    vphysmap_start = round_pgup(vinitrd_end)
    vphysmap_end = vphysmap_start + nr_pages * 8
    vstartinfo_start = round_pgup(vphysmap_end)
    vstartinfo_end = vstartinfo_start + 1168 + 88  # sizeof(struct start_info) + sizeof(dom0_vga_console_info)
    vpt_start = round_pgup(vstartinfo_end)

    def nr(lo: int, hi: int, s: int) -> int:
        return (((hi + (1 << s) - 1) & ~((1 << s) - 1)) - (lo & ~((1 << s) - 1))) >> s

    nr_pt_pages = 2
    while True:
        vpt_end = vpt_start + nr_pt_pages * PAGE
        vstack_start = vpt_end
        vstack_end = vstack_start + PAGE
        v_end = (vstack_end + (1 << 22) - 1) & ~((1 << 22) - 1)
        if v_end - vstack_end < (512 << 10):
            v_end += 1 << 22  # "Add extra 4MB to get >= 512kB padding."
        need = 1 + nr(v_start, v_end, 39) + nr(v_start, v_end, 30) + nr(v_start, v_end, 21)
        if (need & ((1 << 64) - 1)) <= nr_pt_pages:
            break
        nr_pt_pages += 1
    rel = lambda va: (va - v_start) >> 12  # noqa: E731
    return {
        "mfn_list": rel(vphysmap_start),
        "start_info": rel(vstartinfo_start),
        "pt_base": rel(vpt_start),
        "nr_pt_frames": nr_pt_pages,
        "boot_stack": rel(vstack_start),
        "v_end": rel(v_end),
    }


_sizes = domain_sizes()  # nr_pages 64 MiB .. 64 GiB, the kernel image, the ramdisk (bytes)


def _fields(sod, names) -> dict[str, int]:
    return {n: getattr(sod, n) for n in names}


def test_layout_of_92bdaef7b2c5() -> None:
    """The 7.5 GiB domU of the log: `initial memory mapped : 0 - 02c3a000` is where mfn_list starts."""
    sod = xc_dom_layout(0x1E0000, 0x103B000, 0xBFF000)
    assert (sod.kernel_start, sod.kernel_end) == (0x1000, 0x203B)
    assert (sod.ramdisk_start, sod.ramdisk_end) == (0x203B, 0x2C3A)  # "RAMDISK: 0203b000 - 02c3a000"
    assert sod.mfn_list == 0x2C3A
    assert sod.start_info == 0x2C3A + 0xF00  # 8 bytes per page
    assert sod.pt_base == 0x3B3D
    assert sod.v_end == 0x3C00
    assert (sod.nr_pt_frames, sod.pg_l1, sod.boot_stack) == (33, 30, 0x3B3D + 33)


@given(_sizes)
def test_xc_dom_layout_is_libxc(sizes: tuple[int, int, int]) -> None:
    sod = xc_dom_layout(*sizes)
    ref = _libxc(*sizes)
    assert _fields(sod, ref) == ref


@given(_sizes)
def test_xc_dom_layout_is_a_fixed_point(sizes: tuple[int, int, int]) -> None:
    nr, kernel, ramdisk = sizes
    sod = xc_dom_layout(nr, kernel, ramdisk)
    assert sod.v_end % ROUND_4M == 0  # virt_pgtab_end: 4 MiB aligned
    assert sod.v_end - (sod.boot_stack + 1) >= 128  # >= 512 KiB of padding after the boot stack
    assert sod.pg_l1 * 512 == sod.v_end  # the L1s map exactly [0, v_end)
    assert sod.nr_pt_frames == 3 + sod.pg_l1  # one L4, L3 and L2
    assert sod.pt_end == sod.boot_stack
    assert sod.kernel_end == KERNEL_START_PFN + pages(kernel) and sod.ramdisk_end == sod.kernel_end + pages(
        ramdisk
    )
    # the smallest such layout: 4 MiB less would not hold the tables it needs
    smaller = sod.v_end - ROUND_4M
    assert sod.pt_base + 3 + smaller // 512 + 1 + 128 > smaller


def test_construct_dom0_layout_example() -> None:
    sod = construct_dom0_layout(0x80000, 0x103B000, 0xBFF000)
    assert sod.dom0 and sod.mfn_list == 0x2C3A and sod.start_info == 0x2C3A + 0x400
    assert sod.pt_base == sod.start_info + 1  # start info and the VGA console info share a page
    assert sod.v_end % ROUND_4M == 0 and sod.v_end - (sod.boot_stack + 1) >= 128


@given(_sizes)
def test_construct_dom0_layout_is_domain_build(sizes: tuple[int, int, int]) -> None:
    sod = construct_dom0_layout(*sizes)
    ref = _construct_dom0(*sizes)
    assert _fields(sod, ref) == ref
    assert sod.v_end % ROUND_4M == 0 and sod.v_end - (sod.boot_stack + 1) >= 128
    assert sod.nr_pt_frames >= 3 + sod.v_end // 512  # L4, L3, L2 and the L1s (nr_pt_pages may be more)


# ------------------------------------------------------------------------------------------ p2m


def test_p2m() -> None:
    domu = P2M.default(0x60000, dom0=False)
    assert domu.step == -1 and domu.mfn(0) == 0xFFFFFF and domu.mfn(0x5FFFF) == 0xFFFFFF - 0x5FFFF
    assert domu.mfn(0x60000) is None and domu.mfn(-1) is None  # no memory behind the extra region
    assert domu.pfn(domu.mfn(0x1234)) == 0x1234
    assert P2M.default(1 << 26, dom0=False).mfn((1 << 26) - 1) >= 0  # bigger than the default host
    dom0 = P2M.default(0x80000, dom0=True)
    assert dom0.mfn(5) == 0x105 and dom0.describe() == "mfn = pfn + 0x100"
    hole = P2M(0x100000, 0x100, 1, released=((0xC0000, 0xFEE00),))
    assert hole.mfn(0xC0000) is None and hole.mfn(0xBFFFF) == 0xC00FF and hole.mfn(0xFEE00) == 0xFEF00
    # the pair a38647837a41's log names: mfn b1d89 (pfn bacf7)
    through = P2M.through(0xC0000, 0xBACF7, 0xB1D89, -1)
    assert through.mfn(0xBACF7) == 0xB1D89 and through.describe() == "mfn = 0x16ca80 - pfn"


# ------------------------------------------------------------------------------------------ the tables


@pytest.mark.parametrize("rules", ["xen-4.1", "modern"])
def test_bootstrap_tables_map_the_layout_rw_but_the_tables(rules: str) -> None:
    nr = 0x4000  # 64 MiB
    sod = xc_dom_layout(nr, 0x400000, 0x100000)
    p2m = P2M.default(nr, dom0=False)
    hv = Hypervisor(rules, frames=nr, mfn_of=p2m.mfn, guest=1)
    build_bootstrap_tables(hv, sod, p2m)
    m = p2m.mfn
    l4, l3, l2 = m(sod.pt_base), m(sod.pt_base + 1), m(sod.pt_base + 2)
    assert hv.baseptr == l4 and hv.frame(l4).type_info >> 59 & 1  # pinned and loaded
    assert hv.entry(l4, 511).mfn == l3 and hv.entry(l3, 510).mfn == l2
    assert [s for s, _ in hv.entries(l2)] == list(range(sod.pg_l1))
    assert hv.live_level(l4) == 4 and hv.live_level(l2) == 2
    tables = set(range(sod.pt_base, sod.pt_end))
    for pfn in range(sod.v_end):
        l1 = hv.entry(l2, pfn // 512).mfn
        e = hv.entry(l1, pfn % 512)
        assert e.mfn == m(pfn)
        assert bool(e.flags & RW) == (pfn not in tables), hex(pfn)
    assert hv.entry(hv.entry(l2, 0).mfn, 0) is not None
    assert hv.frame(m(sod.v_end)).level == 0 and check_invariants(hv) == []
    # the frames remember their pfn: Xen's messages name both
    assert hv.frame(m(0x1234)).pfn == 0x1234
