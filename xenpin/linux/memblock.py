"""The early boot allocator `memblock` of 2.6.37 .. 3.9: memory and reserved regions, top-down search.

Mirrors mm/memblock.c and arch/x86/mm/memblock.c (2.6.38 .. 3.0):
- `memblock_x86_fill` adds the E820 RAM ranges to `memblock.memory`;
- `memblock_x86_reserve_range(start, end, name)` adds `[start, end)` to `memblock.reserved` and, booted with
  `memblock=debug`, prints `    memblock_x86_reserve_range: [%#010llx-%#010llx] %16s` (end - 1);
- `memblock_find_in_range(start, end, size, align)` is `memblock_find_base`: the memory regions from the top
  down, each clipped to `[start, end)`, and in each `memblock_find_region`'s walk down past the reserved
  regions overlapping the candidate (with its quirks: `start == 0` becomes `PAGE_SIZE`; a reserved region
  starting below `size` ends the search of that region);
- `memblock_x86_find_in_range_size(start, &size, align)`: the first free address at or above `start`, as
  `mark_rw_past_pgt` (2.6.39-rc6) uses it to ask whether `pgt_buf_start` has been reserved yet.
3.9's `__memblock_find_range_top_down` walks the free ranges top-down; for the single-node guests modelled here
it returns the same address. Addresses are bytes; `MEMBLOCK_ERROR` is None.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

PAGE_SIZE = 4096


def align_down(x: int, a: int) -> int:
    return x & ~(a - 1)


def align_up(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


@dataclass
class Region:
    base: int
    end: int
    name: str = ""


@dataclass
class Memblock:
    """`struct memblock`: sorted, non-overlapping memory and reserved regions (adjacent ones merged)."""

    memory: list[Region] = field(default_factory=list)
    reserved: list[Region] = field(default_factory=list)
    debug: bool = False  # print the reserve lines, as `memblock=debug` does (from parse_early_param on)
    dialect: str = "2.6"  # 3.9 prints `memblock_reserve: [%#016llx-%#016llx] %pF`
    printer: Callable[[str, str], None] | None = None  # `Console.print(kind, line)` for the debug lines

    # ------------------------------------------------------------------------------------------ updates

    def add(self, base: int, end: int) -> None:
        """`memblock_add`."""
        _insert(self.memory, base, end, "")

    def reserve(self, base: int, end: int, name: str) -> None:
        """`memblock_x86_reserve_range(base, end, name)` (3.x `memblock_reserve(base, size)`)."""
        if end <= base:
            return
        if self.debug and self.printer is not None:
            self.printer("reserve", reserve_line(base, end, name, self.dialect))
        _insert(self.reserved, base, end, name)

    def free(self, base: int, end: int) -> None:
        """`memblock_x86_free_range`: `[base, end)` is no longer reserved."""
        out: list[Region] = []
        for r in self.reserved:
            if r.end <= base or r.base >= end:
                out.append(r)
                continue
            if r.base < base:
                out.append(Region(r.base, base, r.name))
            if r.end > end:
                out.append(Region(end, r.end, r.name))
        self.reserved = out

    # ------------------------------------------------------------------------------------------ queries

    def is_reserved(self, addr: int) -> bool:
        i = bisect.bisect_right([r.base for r in self.reserved], addr) - 1
        return i >= 0 and self.reserved[i].end > addr

    def is_memory(self, base: int, end: int) -> bool:
        """`memblock_is_region_memory`: `[base, end)` lies inside one memory region."""
        return any(r.base <= base and end <= r.end for r in self.memory)

    def _overlaps_reserved(self, base: int, size: int) -> int:
        """`memblock_overlaps_region(&memblock.reserved, base, size)`: index of the first overlap, or -1."""
        for i, r in enumerate(self.reserved):
            if r.base < base + size and base < r.end:
                return i
        return -1

    def _find_region(self, start: int, end: int, size: int, align: int) -> int | None:
        """`memblock_find_region`."""
        if end < size:
            return None
        base = align_down(end - size, align)
        if (
            start == 0
        ):  # "Prevent allocations returning 0 as it's also used to indicate an allocation failure"
            start = PAGE_SIZE
        while start <= base:
            j = self._overlaps_reserved(base, size)
            if j < 0:
                return base
            res_base = self.reserved[j].base
            if res_base < size:
                break
            base = align_down(res_base - size, align)
        return None

    def find_in_range(self, start: int, end: int, size: int, align: int = PAGE_SIZE) -> int | None:
        """`memblock_find_in_range(start, end, size, align)`: the highest free fit, or None (MEMBLOCK_ERROR).

        An explicit `end` is not clipped to `memblock.current_limit` (only MEMBLOCK_ALLOC_ACCESSIBLE is)."""
        for r in reversed(self.memory):
            if r.end - r.base < size:
                continue
            if r.end <= start:
                break
            bottom, top = max(r.base, start), min(r.end, end)
            if bottom >= top:
                continue
            found = self._find_region(bottom, top, size, align)
            if found is not None:
                return found
        return None

    def find_in_range_size(self, start: int, align: int = PAGE_SIZE) -> tuple[int, int] | None:
        """`memblock_x86_find_in_range_size(start, &size, align)`: `(addr, size)` of the first free range of a
        memory region at or above `start`, or None."""
        for r in self.memory:
            addr = max(align_up(r.base, align), align_up(start, align))
            if addr >= r.end:
                continue
            size = r.end - addr
            addr, size = self._check_with_reserved_size(addr, size, align)
            if size:
                return addr, size
        return None

    def _check_with_reserved_size(self, addr: int, size: int, align: int) -> tuple[int, int]:
        """`check_with_memblock_reserved_size`, looped as its caller loops it."""
        while True:
            last = addr + size
            for r in self.reserved:
                if last > r.base and addr < r.base:
                    size = r.base - addr
                    break
                if last > r.end and addr < r.end:
                    addr = align_up(r.end, align)
                    size = last - addr
                    break
                if last <= r.end and addr >= r.base:
                    return addr, 0
            else:
                return addr, size

    def free_ranges(self) -> list[tuple[int, int]]:
        """Memory minus reserved, in ascending order (what `free_all_bootmem` hands to the page allocator)."""
        out: list[tuple[int, int]] = []
        for m in self.memory:
            lo = m.base
            for r in self.reserved:
                if r.end <= lo or r.base >= m.end:
                    continue
                if r.base > lo:
                    out.append((lo, r.base))
                lo = max(lo, r.end)
            if lo < m.end:
                out.append((lo, m.end))
        return out

    def reserved_names(self, addr: int) -> str:
        for r in self.reserved:
            if r.base <= addr < r.end:
                return r.name
        return ""


def _insert(regions: list[Region], base: int, end: int, name: str) -> None:
    """Add `[base, end)` keeping `regions` sorted and merged (`memblock_add_region`); a merged region keeps the
    name of the first reservation, as only the debug line ever shows names."""
    lo = [r for r in regions if r.end < base]
    hi = [r for r in regions if r.base > end]
    mid = [r for r in regions if not (r.end < base or r.base > end)]
    if mid:
        first = min(mid, key=lambda r: r.base)
        base, end = min(base, first.base), max(end, *(r.end for r in mid))
        name = first.name if first.base <= base else name
    regions[:] = [*lo, Region(base, end, name), *hi]


def reserve_line(base: int, end: int, name: str, dialect: str = "2.6") -> str:
    """The `memblock=debug` line of `memblock_x86_reserve_range` (2.6.37 .. 3.1: `end - 1`); 3.9's
    `memblock_reserve` prints `base + size` (mm/memblock.c, 3.9.6) and names its caller (`%pF`), shown here as
    the reservation's name instead."""
    if dialect == "3.9":
        return f"memblock_reserve: [{base:#016x}-{end:#016x}] {name}"
    return f"    memblock_x86_reserve_range: [{base:#010x}-{end - 1:#010x}] {name:>16}"


def from_ranges(ram: Iterable[tuple[int, int]]) -> Memblock:
    """`memblock_x86_fill`: a memblock whose memory is `ram` (byte ranges), nothing reserved."""
    mb = Memblock()
    for base, end in ram:
        mb.add(base, end)
    return mb


__all__ = ["PAGE_SIZE", "Memblock", "Region", "align_down", "align_up", "from_ranges", "reserve_line"]
