"""From Xen's start of day to `setup_arch`: the kernel takes over the domain builder's page tables
(`xen_setup_kernel_pagetable`, `xen_map_identity_early`, `early_ioremap_init`), or head_64.S's on bare metal."""

from __future__ import annotations

import pytest
from bootcache import variant

from xenpin.linux.guest import BTMAP_L2_SLOT, DIRECT_MAP_L4_SLOT, Guest
from xenpin.linux.layout import BootConfig
from xenpin.linux.start_of_day import KERNEL_IMAGE_PAGES, native_start_of_day, xen_start_of_day
from xenpin.xen.frame import PGT_pinned
from xenpin.xen.invariants import check_invariants

M = 1 << 20


def _guest(name: str, mem: int, **kw) -> Guest:
    v = variant(name)
    g = Guest(
        v, BootConfig(role=kw.pop("role", "domU" if v.xen else "native"), mem_bytes=mem, **kw), "xen-4.1"
    )
    (xen_start_of_day if v.xen else native_start_of_day)(g)
    return g


def test_takeover_of_xen_s_tables() -> None:
    g = _guest("2.6.39", 256 * M)
    hv, t, sod, m = g.hv, g.tables, g.sod, g.mfn
    # the kernel's init_level4_pgt is pinned and loaded; Xen's own L4 is unpinned and no longer the root
    assert hv.baseptr == m(t.init_level4_pgt)
    assert hv.frame(m(t.init_level4_pgt)).type_info & PGT_pinned
    assert not hv.frame(m(sod.pt_base)).type_info & PGT_pinned
    assert g.entry(t.init_level4_pgt, DIRECT_MAP_L4_SLOT)[0] == t.level3_ident_pgt
    assert g.entry(t.init_level4_pgt, 0) is None  # "Zap identity mapping"
    # level2_ident_pgt holds Xen's L1s (the same frames serve the direct map and the kernel map)
    xen_l2 = m(sod.pt_base + 2)
    assert [e.mfn for _, e in hv.entries(xen_l2)] == [
        m(g.entry(t.level2_kernel_pgt, s)[0]) for s, _ in hv.entries(xen_l2)
    ]
    for s in range(sod.pg_l1):
        assert g.entry(t.level2_ident_pgt, s) == g.entry(t.level2_kernel_pgt, s)
    # every table is mapped read-only; the rest of [0, v_end) read-write
    for table in (t.init_level4_pgt, t.level3_ident_pgt, t.level2_ident_pgt, sod.pt_base, t.bm_pte):
        assert g.mapped_rw(table) is False
    assert g.mapped_rw(sod.mfn_list) is True and g.mapped_rw(sod.v_end - 1) is True
    # early_ioremap_init: bm_pte is a pinned L1 under level2_fixmap_pgt
    assert g.live_level(t.bm_pte) == 1 and g.entry(t.level2_fixmap_pgt, BTMAP_L2_SLOT)[0] == t.bm_pte
    assert g.memblock.reserved_names(sod.pt_base << 12) == "XEN PAGETABLES"
    assert check_invariants(hv) == []


def test_max_pfn_mapped_per_release() -> None:
    """2.6.37/2.6.38: the last pfn xen_map_identity_early touched (Xen's L1s and four of level1_ident_pgt, one
    short of their end); 2.6.39-rc1+ (14988a4d350c): PFN_DOWN(__pa(xen_start_info->mfn_list))."""
    old, new = _guest("2.6.38", 1536 * M), _guest("2.6.39", 1536 * M)
    assert old.sod == new.sod
    assert (
        old.max_pfn_mapped == old.sod.v_end + 4 * 512 - 1 == 0x37FF
    )  # "initial memory mapped : 0 - 037ff000"
    assert new.max_pfn_mapped == new.sod.mfn_list == 0x2C3A  # "initial memory mapped : 0 - 02c3a000"
    # the four level1_ident_pgt pages extend the identity map, read-only, past Xen's v_end
    assert (
        old.mapped_rw(old.sod.v_end + 4 * 512 - 1) is True and old.mapped_rw(old.sod.v_end + 4 * 512) is None
    )
    for page in old.tables.level1_ident_pgt:
        assert old.mapped_rw(page) is False
    small = _guest("2.6.38", 64 * M)  # xen_map_identity_early stops at nr_pages
    assert small.max_pfn_mapped < small.config.nr_pages + 512


def test_dom0_prints_on_xen_s_console_domu_does_not() -> None:
    assert _guest("2.6.39", 128 * M).console.lines == []
    dom0 = _guest("2.6.39", 128 * M, role="dom0")
    assert dom0.console.of_kind("raw_console") == [
        "mapping kernel into physical memory",
        "Xen: setup ISA identity maps",
        "about to get started...",
    ]
    assert dom0.config.domain_id == 0 and dom0.p2m.step == 1
    assert "Xen: setup ISA identity maps" not in _guest("3.9", 128 * M, role="dom0").console.of_kind(
        "raw_console"
    )


def test_machines_too_small_are_refused() -> None:
    with pytest.raises(ValueError, match="too small: the domain builder's layout needs"):
        _guest("2.6.39", 32 * M)
    with pytest.raises(ValueError, match="kernel image of 0x1000 bytes is too small"):
        _guest("2.6.39", 256 * M, kernel_bytes=0x1000)
    with pytest.raises(ValueError, match="no RAM holds the kernel image"):
        _guest("2.6.39-native", 16 * M)


def test_bare_metal_head_64() -> None:
    g = _guest("2.6.39-native", 2048 * M)
    assert g.max_pfn_mapped == KERNEL_IMAGE_PAGES  # 512 MiB
    leaf = g.lookup(0xFFFF880000000000 + (1 << 30) - 4096)  # 2 MiB pages of level2_ident_pgt cover 1 GiB
    assert leaf is not None and leaf[2] == 2 and g.lookup(0xFFFF880000000000 + (1 << 30)) is None
    assert g.ramdisk is not None and g.ramdisk[1] <= 0x80000000  # GRUB: below initrd_addr_max
