"""`init_memory_mapping`'s split of `[start, end)` into 4k / 2M / 1G ranges (arch/x86/mm/init.c, x86-64)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenpin.linux.init_memory_mapping import PG_LEVEL_1G, PG_LEVEL_2M, size_name, split_mem_range

M, G = 1 << 20, 1 << 30
BOTH = PG_LEVEL_2M | PG_LEVEL_1G


def _reference(start: int, end: int, mask: int) -> list[tuple[int, int, int]]:
    """2.6.39 init_memory_mapping, CONFIG_X86_64, its save_mr calls and the merge loop, transcribed."""
    pmd_shift, pud_shift, page_shift = 21, 30, 12
    pmd_size, pud_size = 1 << pmd_shift, 1 << pud_shift
    mr: list[list[int]] = []

    def save_mr(s: int, e: int, m: int) -> None:
        if s < e:
            mr.append([s << page_shift, e << page_shift, m])

    start_pfn = start >> page_shift
    pos = start_pfn << page_shift
    end_pfn = ((pos + pmd_size - 1) >> pmd_shift) << (pmd_shift - page_shift)
    if end_pfn > end >> page_shift:
        end_pfn = end >> page_shift
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, 0)
        pos = end_pfn << page_shift
    start_pfn = ((pos + pmd_size - 1) >> pmd_shift) << (pmd_shift - page_shift)
    end_pfn = ((pos + pud_size - 1) >> pud_shift) << (pud_shift - page_shift)
    if end_pfn > (end >> pmd_shift) << (pmd_shift - page_shift):
        end_pfn = (end >> pmd_shift) << (pmd_shift - page_shift)
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, mask & PG_LEVEL_2M)
        pos = end_pfn << page_shift
    start_pfn = ((pos + pud_size - 1) >> pud_shift) << (pud_shift - page_shift)
    end_pfn = (end >> pud_shift) << (pud_shift - page_shift)
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, mask & BOTH)
        pos = end_pfn << page_shift
    start_pfn = ((pos + pmd_size - 1) >> pmd_shift) << (pmd_shift - page_shift)
    end_pfn = (end >> pmd_shift) << (pmd_shift - page_shift)
    if start_pfn < end_pfn:
        save_mr(start_pfn, end_pfn, mask & PG_LEVEL_2M)
        pos = end_pfn << page_shift
    save_mr(pos >> page_shift, end >> page_shift, 0)
    i = 0
    while len(mr) > 1 and i < len(mr) - 1:
        if mr[i][1] != mr[i + 1][0] or mr[i][2] != mr[i + 1][2]:
            i += 1
            continue
        mr[i][1] = mr[i + 1][1]
        del mr[i + 1]
    return [tuple(x) for x in mr]


@pytest.mark.parametrize(
    ("start", "end", "mask", "ranges"),
    [
        # 4b239f458's log: " 0000000000 - 007f600000 page 2M", " 007f600000 - 007f750000 page 4k"
        (0, 0x7F750000, PG_LEVEL_2M, [(0, 0x7F600000, "2M"), (0x7F600000, 0x7F750000, "4k")]),
        (1 << 32, 0x2080000000, PG_LEVEL_2M, [(1 << 32, 0x2080000000, "2M")]),
        (0, 0x7F750000, BOTH, [(0, G, "1G"), (G, 0x7F600000, "2M"), (0x7F600000, 0x7F750000, "4k")]),
        (0, 0x100000000, 0, [(0, 0x100000000, "4k")]),  # Xen PV: " 0000000000 - 0100000000 page 4k"
        (0x1000, 0x300000, BOTH, [(0x1000, 0x300000, "4k")]),  # a 4k head and a 4k tail, merged
        (0x100000, 0x5FE00000, PG_LEVEL_2M, [(0x100000, 0x200000, "4k"), (0x200000, 0x5FE00000, "2M")]),
    ],
)  # fmt: skip
def test_examples(start: int, end: int, mask: int, ranges: list[tuple[int, int, str]]) -> None:
    assert [(s, e, size_name(m)) for s, e, m in split_mem_range(start, end, mask)] == ranges


_bounds = st.tuples(st.integers(0, 1 << 24), st.integers(0, 1 << 24)).map(
    lambda t: (min(t) << 12, max(t) << 12)
)


@given(_bounds, st.sampled_from([0, PG_LEVEL_2M, BOTH]), st.sampled_from([1, 512, 1 << 18]))
def test_ranges_cover_exactly_and_are_aligned(bounds: tuple[int, int], mask: int, scale: int) -> None:
    start, end = bounds[0] * scale % (1 << 46), bounds[1] * scale % (1 << 46)
    start, end = min(start, end), max(start, end)
    ranges = split_mem_range(start, end, mask)
    assert ranges == _reference(start, end, mask)
    if start < end:
        assert ranges[0][0] == start and ranges[-1][1] == end
    else:
        assert ranges == []
    for (s, e, m), nxt in zip(ranges, [*ranges[1:], None][: len(ranges)], strict=True):
        assert s < e and m & ~mask == 0
        if nxt is not None:
            assert e == nxt[0] and m != nxt[2]  # contiguous, merged
        if m & PG_LEVEL_1G:
            assert s % G == 0 and e % G == 0
        elif m & PG_LEVEL_2M:
            assert s % (2 * M) == 0 and e % (2 * M) == 0
    if mask == 0 and start < end:
        assert ranges == [(start, end, 0)]
