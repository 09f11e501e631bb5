"""memblock (mm/memblock.c, arch/x86/mm/memblock.c, 2.6.38 .. 3.0): reservations and the top-down search."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xenpin.linux.memblock import PAGE_SIZE, Memblock, Region, align_up, from_ranges, reserve_line

P = PAGE_SIZE


def _mb(memory: list[tuple[int, int]], reserved: list[tuple[int, int]] = ()) -> Memblock:
    mb = from_ranges(memory)
    for base, end in reserved:
        mb.reserve(base, end, "R")
    return mb


def _spans(r: list[Region]) -> list[tuple[int, int]]:
    return [(x.base, x.end) for x in r]


# ------------------------------------------------------------------------------------------ reserve


def test_reserve_merges_touching_and_overlapping_regions_and_keeps_the_first_name() -> None:
    mb = Memblock()
    mb.reserve(0x3000, 0x5000, "PGTABLE")
    mb.reserve(0x8000, 0x9000, "NODE_DATA")
    mb.reserve(0x5000, 0x6000, "BRK")  # touches the first: one region
    assert _spans(mb.reserved) == [(0x3000, 0x6000), (0x8000, 0x9000)]
    assert mb.reserved_names(0x5800) == "PGTABLE"
    mb.reserve(0x1000, 0x8800, "RAMDISK")  # swallows the first and overlaps the second
    assert _spans(mb.reserved) == [(0x1000, 0x9000)]
    assert mb.reserved_names(0x1000) == "RAMDISK"
    mb.reserve(0x9000, 0x9000, "EMPTY")  # nothing
    assert _spans(mb.reserved) == [(0x1000, 0x9000)]
    assert mb.is_reserved(0x1000) and mb.is_reserved(0x8FFF) and not mb.is_reserved(0x9000)
    assert not mb.is_reserved(0xFFF)


def test_free_splits_a_reservation() -> None:
    mb = _mb([(0, 0x10000)], [(0x2000, 0x8000)])
    mb.free(0x4000, 0x5000)
    assert _spans(mb.reserved) == [(0x2000, 0x4000), (0x5000, 0x8000)]
    assert mb.free_ranges() == [(0, 0x2000), (0x4000, 0x5000), (0x8000, 0x10000)]


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 6)), max_size=10))
def test_reserved_regions_are_the_union_sorted_and_merged(spans: list[tuple[int, int]]) -> None:
    mb = Memblock()
    for base, n in spans:
        mb.reserve(base * P, (base + n) * P, "X")
    covered = {p for base, n in spans for p in range(base, base + n)}
    assert {p for p in range(40) if mb.is_reserved(p * P)} == covered
    for a, b in zip(mb.reserved, mb.reserved[1:], strict=False):
        assert a.base < a.end < b.base  # sorted, disjoint, never touching


def test_debug_lines_are_printed_from_memblock_debug_on() -> None:
    printed: list[tuple[str, str]] = []
    mb = Memblock(printer=lambda kind, line: printed.append((kind, line)))
    mb.reserve(0x1000000, 0x203B000, "TEXT DATA BSS")
    assert printed == []  # before parse_early_param
    mb.debug = True
    mb.reserve(0x7F74C000, 0x7F74E000, "PGTABLE")
    assert printed == [
        ("reserve", "    memblock_x86_reserve_range: [0x7f74c000-0x7f74dfff]          PGTABLE")
    ]
    assert reserve_line(0x9B000, 0xA0000, "TRAMPOLINE", "3.9") == (
        "memblock_reserve: [0x0000000009b000-0x000000000a0000] TRAMPOLINE"  # base + size
    )


# ------------------------------------------------------------------------------------------ find_in_range


def _highest_fit(mb: Memblock, start: int, end: int, size: int, align: int) -> int | None:
    """Brute force: the highest `align`ed base whose [base, base + size) lies in [start, end), inside one memory
    region, clear of every reservation, and not at 0 (memblock_find_region's "start == 0 -> PAGE_SIZE")."""
    best = None
    for r in mb.memory:
        lo, hi = max(r.base, start), min(r.end, end)
        if lo == 0:
            lo = PAGE_SIZE
        base = align_up(lo, align)
        while base + size <= hi:
            if not any(x.base < base + size and base < x.end for x in mb.reserved):
                best = base if best is None else max(best, base)
            base += align
    return best


_layout = st.fixed_dictionaries(
    {
        "memory": st.lists(st.tuples(st.integers(0, 48), st.integers(1, 24)), min_size=1, max_size=4),
        "reserved": st.lists(st.tuples(st.integers(0, 60), st.integers(1, 10)), max_size=6),
        "start": st.integers(0, 40),
        "end": st.integers(0, 80),
        "size": st.integers(1, 12),
        "align": st.sampled_from([64, P, 2 * P, 4 * P]),
        "offset": st.sampled_from([0, 0x800]),  # memory not page-aligned: align matters
    }
)


@given(_layout)
def test_find_in_range_is_the_highest_free_aligned_fit(d: dict) -> None:
    off = d["offset"]
    mb = _mb(
        [(a * P + off, (a + n) * P + off) for a, n in d["memory"]],
        [(a * P, (a + n) * P) for a, n in d["reserved"]],
    )
    start, end, size = d["start"] * P, d["end"] * P, d["size"] * P
    assert mb.find_in_range(start, end, size, d["align"]) == _highest_fit(mb, start, end, size, d["align"])


def test_find_in_range_examples() -> None:
    mb = _mb([(0, 0x9F000), (0x100000, 0x60800000)], [(0x1000000, 0x2C3A000), (0x60000000, 0x60800000)])
    # the buffer of a 1.5 GiB domU's first call: below XEN EXTRA
    assert mb.find_in_range(0, 0x60800000, 0x307000) == 0x60000000 - 0x307000
    assert mb.find_in_range(0, 0x100000, 0x5000) == 0x9A000  # the trampoline: top of low memory
    assert mb.find_in_range(0x8000, 0x1000000, 0xF00000) == 0x100000  # exactly [1M, 16M)
    assert mb.find_in_range(0x8000, 0x1000000, 0xF01000) is None  # nothing bigger below the kernel
    assert mb.find_in_range(0, 0x60800000, 0x1000, 1 << 21) == 0x5FE00000
    assert mb.find_in_range(0, 0x2000, 0x2000) is None  # never at address 0
    assert mb.find_in_range(0x2000, 0x1000, 0x1000) is None  # an empty range


# ------------------------------------------------------------------------------------------ find_in_range_size


def _first_free(mb: Memblock, start: int) -> tuple[int, int] | None:
    """Brute force over pages: the first free page at or above `start` in some memory region, and the length
    of the free run from it to the next reservation or the region's end."""
    for r in mb.memory:
        addr = max(align_up(r.base, P), align_up(start, P))
        while addr < r.end and mb.is_reserved(addr):
            addr += P
        if addr < r.end:
            stop = min([r.end] + [x.base for x in mb.reserved if x.base > addr])
            return addr, stop - addr
    return None


@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 16)), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 60), st.integers(1, 8)), max_size=5),
    st.integers(0, 60),
)
def test_find_in_range_size_is_the_first_free_run(
    memory: list[tuple[int, int]], reserved: list[tuple[int, int]], start: int
) -> None:
    mb = _mb([(a * P, (a + n) * P) for a, n in memory], [(a * P, (a + n) * P) for a, n in reserved])
    assert mb.find_in_range_size(start * P) == _first_free(mb, start * P)


def test_find_in_range_size_as_mark_rw_past_pgt_asks_it() -> None:
    """2.6.39-rc6 asks whether `pgt_buf_start` is reserved yet: the first free address is it, or past it."""
    mb = _mb([(0, 0x100000000)], [(0x1000000, 0x2C3A000)])
    start = 0xFF7FB000
    assert mb.find_in_range_size(start) == (start, 0x100000000 - start)
    mb.reserve(start, 0xFFFDC000, "PGTABLE")
    assert mb.find_in_range_size(start) == (0xFFFDC000, 0x100000000 - 0xFFFDC000)
    mb.reserve(0xFFFDC000, 0x100000000, "X")
    assert mb.find_in_range_size(start) is None


def test_memory_queries() -> None:
    mb = _mb([(0, 0xA0000), (0x100000, 0x200000)])
    mb.add(0x200000, 0x300000)  # merges with the region below
    assert _spans(mb.memory) == [(0, 0xA0000), (0x100000, 0x300000)]
    assert mb.is_memory(0x100000, 0x300000) and not mb.is_memory(0x9F000, 0x101000)
