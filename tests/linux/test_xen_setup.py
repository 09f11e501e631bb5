"""`xen_memory_setup` (arch/x86/xen/setup.c) per release: the E820 a PV guest boots with, its extra region, its
reservations, and dom0's trimmed and released memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenpin.linux.e820 import E820, E820_RAM, E820_RESERVED, E820_UNUSABLE, E820Entry
from xenpin.linux.memblock import Memblock
from xenpin.linux.variant import CODE
from xenpin.linux.xen_setup import VERSIONS, xen_memory_setup

E820_ACPI = 3
M, G = 1 << 20, 1 << 30
SLACK = 8 * M
MFN_LIST, PT_BASE = 0x2C3A, 0x3B3D  # the pfns of 92bdaef7b2c5's domU
# A PC's map: holes below 1 MiB, RAM to 0xbf780000, ACPI, the PCI hole, RAM above 4 GiB to 9 GiB.
HOST = E820(
    [
        E820Entry(0, 0x9F000, E820_RAM),
        E820Entry(0x9F000, 0x1000, E820_RESERVED),
        E820Entry(0xF0000, 0x10000, E820_RESERVED),
        E820Entry(0x100000, 0xBF780000 - 0x100000, E820_RAM),
        E820Entry(0xBF780000, 0x10000, E820_ACPI),
        E820Entry(0xBF790000, 0x870000, E820_RESERVED),
        E820Entry(0xFEE00000, 0x1000, E820_RESERVED),
        E820Entry(4 * G, 5 * G, E820_RAM),
    ]
)


def _setup(mem: int, version: str, host: E820 | None = None, max_reservation: int | None = None):
    mb = Memblock()
    ms = xen_memory_setup(
        mem >> 12, host, host is not None, version, mb, MFN_LIST, PT_BASE, max_reservation=max_reservation
    )
    return ms, {r.name: (r.base, r.end) for r in mb.reserved}


def _spans(e820: E820) -> list[tuple[int, int, int]]:
    return [(e.addr, e.end, e.type) for e in e820.map]


# ------------------------------------------------------------------------------------------ domU


@pytest.mark.parametrize(
    ("version", "mem", "extra_start"),
    [
        ("2.6.37", 1536 * M, 1536 * M),  # xen_extra_mem_start = mem_end
        ("2.6.37", 6 * G, 6 * G),
        ("2.6.39-rc5", 1536 * M, 4 * G),  # 24bdb0b62cc8: max(1ULL << 32, mem_end)
        ("2.6.39-rc5", 4095 * M, 4 * G),
        ("2.6.39-rc5", 7680 * M, 7680 * M),  # 92bdaef7b2c5's 7.5 GiB domU: max_pfn 0x1e0800
        ("3.0-rc4", 1536 * M, 1536 * M),  # acd049c6e99d: a domU's extra region back at mem_end
        ("3.0-rc4", 1537 * M, 1537 * M),
        ("3.9", 1536 * M, 1536 * M),  # 3.9.6: xen_get_max_pages() is MAX_DOMAIN_PAGES for a domU
        ("3.9", 6 * G, 6 * G),
    ],
)
def test_domu_slack_becomes_the_extra_region(version: str, mem: int, extra_start: int) -> None:
    """No XENMEM_memory_map in 2011: one RAM entry [0, mem_end + 8 MiB); the 8 MiB past nr_pages are extra."""
    ms, reserved = _setup(mem, version)
    assert (ms.extra_start, ms.extra_bytes, ms.released) == (extra_start, SLACK, ())
    assert reserved["XEN EXTRA"] == (extra_start, extra_start + SLACK)
    assert reserved["XEN START INFO"] == (MFN_LIST << 12, PT_BASE << 12)
    low = [(0, 0xA0000, E820_RAM), (0xA0000, 0x100000, E820_RESERVED)]
    if extra_start == mem:
        assert _spans(ms.e820) == [*low, (0x100000, mem + SLACK, E820_RAM)]
    else:
        assert _spans(ms.e820) == [
            *low,
            (0x100000, mem, E820_RAM),
            (extra_start, extra_start + SLACK, E820_RAM),
        ]
    assert ms.e820.end_of_ram_pfn() == (extra_start + SLACK) >> 12
    if version == "2.6.37":
        assert ms.lines == ("released 0 pages of unused memory",)
    elif version != "3.9":  # a domU's raw map has no hole above 1 MiB: nothing set 1-1
        assert ms.lines == ("released 0 pages of unused memory", "Set 0 page(s) to 1-1 mapping.")


def test_versions_are_the_variant_code_values() -> None:
    assert set(VERSIONS) == set(CODE["xen_memory_setup"])


@pytest.mark.parametrize(
    ("max_reservation", "extra"), [(None, 256), (0x60000, 256), (0x60000 + 2048, 2048), (10**9, 2048)]
)
def test_3_1_clamps_the_extra_pages_to_the_maximum_reservation(
    max_reservation: int | None, extra: int
) -> None:
    """3.1's xen_get_max_pages (d312ae878b6): xl gives a domU target_memkb + LIBXL_MAXMEM_CONSTANT (1 MiB), so
    256 of the 8 MiB of slack become XEN EXTRA; xm's maxmem = memory leaves none."""
    if max_reservation == 0x60000:
        extra = 0
    ms, reserved = _setup(0x60000 << 12, "3.1", max_reservation=max_reservation)
    assert ms.extra_bytes == extra << 12 and ms.e820.end_of_ram_pfn() == 0x60000 + extra
    assert reserved.get("XEN EXTRA") == ((0x60000 << 12, (0x60000 + extra) << 12) if extra else None)
    # before 3.1 the maximum reservation is not asked
    assert _setup(0x60000 << 12, "3.0-rc4", max_reservation=max_reservation)[0].extra_bytes == SLACK


@pytest.mark.parametrize(
    ("version", "max_pfn"), [("2.6.37", 128 << 18), ("3.1", 128 << 18), ("3.9", 129 << 18)]
)
def test_max_domain_pages(version: str, max_pfn: int) -> None:
    """CONFIG_XEN_MAX_DOMAIN_MEMORY: 128 GiB from 2.6.37 (58e05027b53), 500 GiB in 3.9; past it the guest's memory
    is not used (3.1: nor any extra page, xen_get_max_pages being at most MAX_DOMAIN_PAGES)."""
    ms, _ = _setup(129 * G, version)
    assert ms.e820.end_of_ram_pfn() == max_pfn + (0 if version == "3.1" else SLACK >> 12)
    if version != "3.9":  # the GiB past it has no p2m entries: xen_release_chunk finds nothing to free
        assert ms.released == () and ms.lines[1] == "released 0 pages of unused memory"
        assert ms.lines[0].endswith("2000000-2040000: 0 pages freed") or ms.lines[0].startswith(
            "Freeing  2000000"
        )


def test_max_pfn_of_92bdaef7b2c5() -> None:
    """The log: `last_pfn = 0x100000` (max_low_pfn) and a second call up to 1e0800000."""
    ms, _ = _setup(0x1E0000000, "2.6.39-rc5")
    assert ms.e820.end_of_ram_pfn() == 0x1E0800 and ms.e820.end_of_low_ram_pfn() == 0x100000


@given(st.integers(64, 70000), st.sampled_from(VERSIONS))
def test_domu_any_size(mib: int, version: str) -> None:
    mem = mib * M
    ms, reserved = _setup(mem, version)
    assert ms.extra_bytes == (1 * M if version == "3.1" else SLACK)
    assert ms.extra_start == (max(4 * G, mem) if version == "2.6.39-rc5" else mem)
    ram = [(a, b) for a, b, t in _spans(ms.e820) if t == E820_RAM]
    assert sum(b - a for a, b in ram) == mem + ms.extra_bytes - 0x60000  # everything but the ISA hole
    assert reserved["XEN EXTRA"] == (ms.extra_start, ms.extra_start + ms.extra_bytes)


# ------------------------------------------------------------------------------------------ dom0


def test_dom0_ram_past_nr_pages_below_4g_is_unusable_and_the_rest_extra() -> None:
    ms, reserved = _setup(2 * G, "2.6.39-rc5", HOST)
    assert _spans(ms.e820) == [
        (0, 0x9F000, E820_RAM),
        (0x9F000, 0x100000, E820_RESERVED),  # with the ISA region Xen reserves
        (0x100000, 2 * G, E820_RAM),
        (2 * G, 0xBF780000, E820_UNUSABLE),  # "Set RAM below 4GB that is not for us to be unusable"
        (0xBF780000, 0xBF790000, E820_ACPI),
        (0xBF790000, 0xC0000000, E820_RESERVED),
        (0xFEE00000, 0xFEE01000, E820_RESERVED),
        (4 * G, 4 * G + ms.extra_bytes, E820_RAM),  # the host's RAM above 4 GiB is all balloon space
    ]
    assert ms.extra_bytes == (0xBF780000 - 2 * G) + 5 * G
    assert reserved["XEN EXTRA"] == (4 * G, 4 * G + ms.extra_bytes)
    assert ms.released == ()


def test_dom0_holes_below_nr_pages_are_given_back() -> None:
    ms, _ = _setup(4 * G, "2.6.39-rc5", HOST)
    assert ms.released == ((0xC0000, 0xFEE00), (0xFEE01, 0x100000))  # xen_return_unused_memory
    freed = (0xFEE00 - 0xC0000) + (0x100000 - 0xFEE01)
    identity = (
        "1-1 mapping on 9f->100",  # the ISA hole, from 0 for dom0
        "1-1 mapping on bf780->100000",  # ACPI, reserved and the PCI hole up to the RAM at 4 GiB
        f"Set {0x100 - 0x9F + 0x100000 - 0xBF780} page(s) to 1-1 mapping.",
    )
    assert ms.lines == (
        "xen_release_chunk: looking at area pfn c0000-fee00: 257536 pages freed",
        "xen_release_chunk: looking at area pfn fee01-100000: 4607 pages freed",
        f"released {freed} pages of unused memory",
        *identity,
    )
    # 3.1 prints each chunk its own way, and counts the same
    assert _setup(4 * G, "3.1", HOST)[0].lines == (
        "Freeing  c0000-fee00 pfn range: 257536 pages freed",
        "Freeing  fee01-100000 pfn range: 4607 pages freed",
        f"released {freed} pages of unused memory",
        *identity,
    )
    assert _setup(4 * G, "2.6.38", HOST)[0].lines[-1] == f"released {freed} pages of unused memory"
    # the released pages come back as extra memory, after the host's RAM above 4 GiB
    assert ms.extra_bytes == 5 * G + (freed << 12)
    assert ms.extra_start == 4 * G


def test_dom0_extra_is_at_most_ten_times_the_base() -> None:
    ms, _ = _setup(256 * M, "2.6.39-rc5", HOST)
    assert ms.extra_bytes == 9 * 256 * M  # extra_limit = min(EXTRA_MEM_RATIO * max_pfn, max_pfn + extra)


@pytest.mark.parametrize(("version", "extra_start"), [("2.6.37", 0xFEE01000), ("3.0-rc4", 4 * G)])
def test_dom0_extra_region_placement(version: str, extra_start: int) -> None:
    """The extra region moves past every entry that ends above it; 3.0-rc4 keeps dom0's at 4 GiB or above
    ("so that max_low_pfn does not get set to be at the _end_ of the PCI gap")."""
    low_host = E820([e for e in HOST.map if e.addr < 4 * G])
    ms, _ = _setup(2 * G, version, low_host)
    assert ms.extra_start == extra_start
    assert ms.extra_bytes == 0xBF780000 - 2 * G


def test_dom0_unaligned_ram_end_is_cut() -> None:
    host = E820([E820Entry(0, 0x9F000, E820_RAM), E820Entry(0x100000, 0x7FF00800 - 0x100000, E820_RAM)])
    ms, _ = _setup(4 * G, "2.6.39-rc5", host)
    # "Guard against non-page aligned E820 entries"; the pfns up to nr_pages go back to Xen, and come back as
    # the extra region at 4 GiB
    assert _spans(ms.e820)[-2:] == [
        (0x100000, 0x7FF00000, E820_RAM),
        (4 * G, 4 * G + (0x80100 << 12), E820_RAM),
    ]
    assert ms.released == ((0x7FF00, 0x100000),)


def test_before_2_6_38_an_unaligned_ram_end_stays() -> None:
    host = E820([E820Entry(0, 0x9F000, E820_RAM), E820Entry(0x100000, 0x7FF00800 - 0x100000, E820_RAM)])
    assert (0x100000, 0x7FF00800, E820_RAM) in _spans(_setup(4 * G, "2.6.37", host)[0].e820)
    assert (0x100000, 0x7FF00000, E820_RAM) in _spans(_setup(4 * G, "2.6.38", host)[0].e820)


def test_dom0_unusable_from_2_6_39_rc1() -> None:
    """2f14ddc3a71: before it, dom0's RAM past nr_pages below 4 GiB is a hole in the map."""
    for version, unusable in (("2.6.38", False), ("2.6.39-rc1", True), ("3.1", True)):
        spans = _spans(_setup(2 * G, version, HOST)[0].e820)
        assert ((2 * G, 0xBF780000, E820_UNUSABLE) in spans) is unusable, version


def test_3_0_rc4_sets_no_unusable_entry_1_1() -> None:
    """0d97559675b: xen_set_identity skips E820_UNUSABLE like RAM from 3.0-rc4 on."""
    host = E820([*HOST.map[:4], E820Entry(0xBF780000, 0x80000, E820_UNUSABLE), *HOST.map[5:]])
    before = _setup(4 * G, "2.6.39-rc5", host)[0].lines
    after = _setup(4 * G, "3.0-rc4", host)[0].lines
    assert "1-1 mapping on bf780->100000" in before and "1-1 mapping on bf800->100000" in after
