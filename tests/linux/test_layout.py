"""`find_early_table_space`'s sizing (arch/x86/mm/init.c, 2.6.37 .. 3.8), `BootConfig` and `parse_size`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenpin.linux.e820 import E820_RAM, E820_RESERVED, E820Entry
from xenpin.linux.layout import BootConfig, find_early_table_space_pages, parse_size, roundup

G = 1 << 30


def _reference(end: int, use_pse: bool, use_gbpages: bool) -> int:
    """find_early_table_space(end, use_pse, use_gbpages) of 2.6.39, line by line (bytes in, pages out)."""
    puds = (end + (1 << 30) - 1) >> 30
    tables = roundup(puds * 8, 4096)
    if use_gbpages:
        extra = end - ((end >> 30) << 30)
        pmds = (extra + (1 << 21) - 1) >> 21
    else:
        pmds = (end + (1 << 21) - 1) >> 21
    tables += roundup(pmds * 8, 4096)
    if use_pse:
        extra = end - ((end >> 21) << 21)
        ptes = (extra + 4095) >> 12
    else:
        ptes = (end + 4095) >> 12
    tables += roundup(ptes * 8, 4096)
    return tables >> 12


@pytest.mark.parametrize(
    ("end", "pse", "gb", "pages"),
    [
        (0x7F750000, True, False, 4),  # 4b239f458's log: @ [0x7f74c000-0x7f74ffff]
        (0x2080000000, True, False, 131),  # and @ [0x207ff7d000-0x207fffffff]: no 1 GiB pages on that box
        (0x2080000000, True, True, 1),
        (0x7F750000, True, True, 3),
        (0x100000000, False, False, 2053),  # Xen PV: 1 PUD + 4 PMD + 2048 PTE pages
        (0x40000000, False, False, 514),
        (0x1000000000, False, False, 32833),
        (0x1E0800000, False, False, 3853),  # 92bdaef7b2c5's second call: 1e0000000 - 1df0f3000
        (0x60800000, False, False, 775),
    ],
)
def test_table_space_of_real_boots(end: int, pse: bool, gb: bool, pages: int) -> None:
    assert find_early_table_space_pages(end >> 12, pse, gb) == pages


@given(st.integers(1, 1 << 34), st.booleans(), st.booleans())
def test_table_space_is_find_early_table_space(end_pfn: int, pse: bool, gb: bool) -> None:
    assert find_early_table_space_pages(end_pfn, pse, gb) == _reference(end_pfn << 12, pse, gb)


@given(st.integers(1, 1 << 30))
def test_table_space_without_large_pages_covers_every_table(end_pfn: int) -> None:
    """Without PSE every 4k page needs a PTE: at least one PTE page per 512 pages, one PMD page per GiB."""
    pages = find_early_table_space_pages(end_pfn)
    ptes, pmds, puds = -(-end_pfn // 512), -(-end_pfn // (1 << 18)), -(-end_pfn // (1 << 27))
    assert pages >= ptes + pmds + puds
    assert pages <= ptes + pmds + puds + 2


@pytest.mark.parametrize(
    ("text", "value"),
    [("1536M", 1536 << 20), ("1537M", 1537 << 20), ("4G", 4 << 30), ("7.5G", 0x1E0000000), ("6GiB", 6 << 30),
     ("0x60001000", 0x60001000), ("4096", 4096), (" 2g ", 2 << 30), ("512k", 512 << 10), ("1T", 1 << 40)],
)  # fmt: skip
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "3X", "G", "1.3M", "infG", "nanG", "1e400G", "--1G", "0xG"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad memory size"):
        parse_size(text)


def test_boot_config_roles() -> None:
    domu = BootConfig(mem_bytes=1536 << 20)
    assert (domu.nr_pages, domu.xen, domu.dom0, domu.domain_id) == (0x60000, True, False, 1)
    assert BootConfig(role="dom0").domain_id == 0 and BootConfig(role="domU", domid=7).domain_id == 7
    native = BootConfig(role="native", mem_bytes=6 << 30)
    assert not native.xen
    assert native.host_e820().map == [
        E820Entry(0, 0x9F000, E820_RAM),
        E820Entry(0x9F000, 0x1000, E820_RESERVED),
        E820Entry(0xF0000, 0x10000, E820_RESERVED),
        E820Entry(0x100000, 0xC0000000 - 0x100000, E820_RAM),
        E820Entry(0xFEC00000, 0x1400000, E820_RESERVED),
        E820Entry(1 << 32, 3 * G, E820_RAM),  # the RAM under the PCI hole moved above 4 GiB
    ]
    small = BootConfig(role="native", mem_bytes=G).host_e820()
    assert small.end_of_ram_pfn() == G >> 12 and len(small.map) == 4
