"""The buffer size of `find_early_table_space` against the reference numbers, the start-of-day layout, and
memory-size parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenpin.linux.layout import (
    FOUR_GIB_PFN,
    KERNEL_PAGES,
    KERNEL_START_PFN,
    PAGE_SIZE,
    PFNS_PER_PMD,
    ROUND_4M,
    boot_layout,
    find_early_table_space_pages,
    parse_size,
    pfn_phys,
)

MiB, GiB = 1 << 20, 1 << 30


def pfns(nbytes: int) -> int:
    return nbytes // PAGE_SIZE


# ------------------------------------------------------------------------------ find_early_table_space


@pytest.mark.parametrize(
    ("nbytes", "pages"),
    [
        (1 * GiB, 514),  # 1 PUD + 1 PMD + 512 PTE pages
        (4 * GiB, 2053),  # 1 PUD + 4 PMD + 2048 PTE pages
        (64 * GiB, 32833),  # 1 PUD + 64 PMD + 32768 PTE pages
    ],
)
def test_reference_sizes(nbytes: int, pages: int) -> None:
    assert find_early_table_space_pages(pfns(nbytes)) == pages


@pytest.mark.parametrize(
    ("nbytes", "pages"),
    [
        (4 * 1024, 3),  # one of each level, even for one page
        (2 * MiB, 3),
        (2 * MiB + 4096, 4),  # the second PTE page
        (512 * GiB, 1 + 512 + 512 * 512),  # 512 PUD entries fill one page, 512 * 512 PMD entries 512
        (512 * GiB + 4096, 2 + 513 + 512 * 512 + 1),
    ],
)
def test_rounding_at_page_boundaries(nbytes: int, pages: int) -> None:
    assert find_early_table_space_pages(pfns(nbytes)) == pages


@given(st.integers(min_value=1, max_value=pfns(1 << 46)))
def test_size_formula(end_pfn: int) -> None:
    """`roundup(8*puds, 4K) + roundup(8*pmds, 4K) + roundup(8*ptes, 4K)`, by level counts: PTE pages
    `ceil(end/2M)`, PMD pages `ceil(end/1G)`, PUD pages `ceil(end/512G)`."""
    pte_pages = -(-end_pfn // PFNS_PER_PMD)
    pmd_pages = -(-pte_pages // 512)
    pud_pages = -(-pmd_pages // 512)
    assert find_early_table_space_pages(end_pfn) == pte_pages + pmd_pages + pud_pages


@given(st.integers(min_value=1, max_value=pfns(1 << 40)), st.integers(min_value=0, max_value=1 << 20))
def test_size_is_monotonic(a: int, delta: int) -> None:
    assert find_early_table_space_pages(a) <= find_early_table_space_pages(a + delta)


# ------------------------------------------------------------------------------------------ boot_layout

SIZES = [64 * MiB, 100 * MiB, 512 * MiB, 1 * GiB, 4 * GiB - PAGE_SIZE, 4 * GiB, 6 * GiB, 64 * GiB]


@pytest.mark.parametrize("nbytes", SIZES, ids=[f"{s:#x}" for s in SIZES])
def test_layout_sanity(nbytes: int) -> None:
    lay = boot_layout(nbytes)
    assert lay.max_pfn == pfns(nbytes)
    assert lay.max_low_pfn == min(lay.max_pfn, FOUR_GIB_PFN)
    # the kernel, start_info and the p2m list come first, then Xen's bootstrap tables
    p2m_pages = -(-lay.max_pfn * 8 // PAGE_SIZE)
    assert lay.boot_tables_start == KERNEL_START_PFN + KERNEL_PAGES + 1 + p2m_pages
    # the bootstrap tables lie inside the region they map, which is rounded up to 4 MiB and fits in memory
    assert lay.boot_tables_start > KERNEL_START_PFN + KERNEL_PAGES
    assert lay.boot_tables_start + lay.boot_tables_pages <= lay.max_pfn_mapped <= lay.max_pfn
    assert lay.max_pfn_mapped % ROUND_4M == 0
    assert lay.max_pfn_mapped - ROUND_4M < lay.boot_tables_start + lay.boot_tables_pages + 128
    # 6 fixed tables + exactly one L1 per 2 MiB mapped
    assert lay.boot_tables_pages == 6 + lay.max_pfn_mapped // PFNS_PER_PMD


@pytest.mark.parametrize("nbytes", SIZES, ids=[f"{s:#x}" for s in SIZES])
def test_calls_split_at_4gib(nbytes: int) -> None:
    lay = boot_layout(nbytes)
    if lay.max_pfn <= FOUR_GIB_PFN:
        assert lay.calls == [(0, lay.max_pfn)]
    else:
        assert lay.calls == [(0, FOUR_GIB_PFN), (FOUR_GIB_PFN, lay.max_pfn)]
    # the calls cover [0, max_pfn) exactly, in order, without overlap
    assert lay.calls[0][0] == 0 and lay.calls[-1][1] == lay.max_pfn
    assert all(a[1] == b[0] for a, b in zip(lay.calls, lay.calls[1:], strict=False))


@given(st.integers(min_value=pfns(64 * MiB), max_value=pfns(128 * GiB)))
def test_layout_sanity_any_size(max_pfn: int) -> None:
    lay = boot_layout(pfn_phys(max_pfn))
    assert lay.boot_tables_start + lay.boot_tables_pages <= lay.max_pfn_mapped <= lay.max_pfn
    assert lay.boot_tables_pages == 6 + lay.max_pfn_mapped // PFNS_PER_PMD
    assert [end for _, end in lay.calls] == sorted({min(max_pfn, FOUR_GIB_PFN), max_pfn})


def test_too_small_is_an_error() -> None:
    with pytest.raises(ValueError, match="too small"):
        boot_layout(16 * MiB)
    with pytest.raises(ValueError, match="too small"):
        boot_layout(35 * MiB)
    assert boot_layout(36 * MiB).max_pfn_mapped == pfns(36 * MiB)  # the smallest guest: all of it mapped


# ------------------------------------------------------------------------------------------- parse_size


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("4G", 4 * GiB),
        ("4g", 4 * GiB),
        ("512M", 512 * MiB),
        ("6GiB", 6 * GiB),
        ("6GB", 6 * GiB),
        ("64K", 64 * 1024),
        ("1T", 1 << 40),
        ("1.5G", 3 * GiB // 2),
        (" 2G ", 2 * GiB),
        ("0x1000000", 16 * MiB),
        ("4096", 4096),
    ],
)
def test_parse_size(text: str, nbytes: int) -> None:
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "G", "four", "4X", "4 G B", "0xZZ", "--1G"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"bad memory size .*512M, 4G, 6GiB"):
        parse_size(text)
