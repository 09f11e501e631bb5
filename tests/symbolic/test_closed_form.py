"""The closed form of the walk (xenpin.symbolic.closed_form) equals what the real walk does, exactly.

A `RecordingWalk` (a `BootWalk` subclass) records every allocation (frame, `pgt_buf_end` after it), every
direct-map PTE the walk writes (with `pgt_buf_end` then) or keeps, the allocation count when each new PMD page
is filled, and whether each `make_lowmem_page_readonly` during the walk found a PTE. The tests compare all of
it, pfn by pfn and allocation by allocation, with the closed form.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenpin.linux.boot import BootWalk, direct_map_va
from xenpin.linux.layout import boot_layout, find_early_table_space_pages
from xenpin.linux.variant import load_variant
from xenpin.symbolic import closed_form as cf

KERNELS = Path(__file__).resolve().parents[2] / "models" / "kernels"
MIB, GIB = 1 << 20, 1 << 30


def variant(name: str):
    return load_variant(KERNELS / f"{name}.toml")


class RecordingWalk(BootWalk):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.allocs: dict[int, list[tuple[int, int]]] = {}  # call -> [(pfn, pgt_buf_end after)]
        self.written: dict[int, list[tuple[int, int, int]]] = {}  # call -> [(lo, hi, pgt_buf_end)]
        self.kept: dict[int, list[int]] = {}  # call -> pfns whose PTE already existed
        self.pmd_fills: dict[int, list[tuple[int, int]]] = {}  # call -> [(gib, allocation count)]
        self.ro_lookups: list[tuple[int, int, int, bool]] = []  # (call, pfn, allocation count, PTE found)
        self.in_walk = False

    def _call(self) -> int:
        return self.buf.call

    def _kernel_physical_mapping_init(self, start: int, end: int) -> None:
        self.in_walk = True
        try:
            super()._kernel_physical_mapping_init(start, end)
        finally:
            self.in_walk = False

    def _alloc_low_page(self) -> int:
        pfn = super()._alloc_low_page()
        self.allocs.setdefault(self._call(), []).append((pfn, self.buf.pgt_buf_end))
        return pfn

    def _phys_pmd_init(self, pmd_page: int, start: int, end: int, fresh: bool) -> None:
        if fresh:
            count = len(self.allocs.get(self._call(), []))
            self.pmd_fills.setdefault(self._call(), []).append((start >> 18, count))
        super()._phys_pmd_init(pmd_page, start, end, fresh)

    def _new_ptes(self, lo: int, hi: int):
        self.written.setdefault(self._call(), []).append((lo, hi, self.buf.pgt_buf_end))
        return super()._new_ptes(lo, hi)

    def _phys_pte_init_existing(self, l1: int, lo: int, hi: int) -> None:
        for pfn in range(lo, hi):
            if self.hv.entry(l1, pfn % 512) is None:
                self.written.setdefault(self._call(), []).append((pfn, pfn + 1, self.buf.pgt_buf_end))
            else:
                self.kept.setdefault(self._call(), []).append(pfn)
        super()._phys_pte_init_existing(l1, lo, hi)

    def _make_lowmem_page(self, pfn: int, rw: bool) -> None:
        if self.in_walk and not rw:
            where = self.hv.l1_slot_for_va(direct_map_va(pfn))
            found = where is not None and self.hv.entry(*where) is not None
            self.ro_lookups.append((self._call(), pfn, len(self.allocs.get(self._call(), [])), found))
        super()._make_lowmem_page(pfn, rw)


def check(name: str, mem_bytes: int) -> RecordingWalk:
    """Run the walk for `name` at `mem_bytes` and compare everything it recorded with the closed form."""
    v = variant(name)
    walk = RecordingWalk(v, mem_bytes)
    result = walk.run()
    forms = cf.call_forms(mem_bytes, v.placement)
    layout = boot_layout(mem_bytes)
    assert cf.max_pfn_mapped(layout.max_pfn) == layout.max_pfn_mapped
    assert [(f.start, f.end) for f in forms] == layout.calls
    assert len(result.buffers) <= len(forms)
    for form, buf in zip(forms, result.buffers, strict=False):
        assert cf.placement_preconditions(form), (name, mem_bytes, form)
        assert (buf.pgt_buf_start, buf.pgt_buf_top) == (form.pgt_buf_start, form.pgt_buf_top)
        assert form.tables == find_early_table_space_pages(form.end)
        call = form.call
        finished = walk.walk_done or call < len(result.buffers) - 1

        allocs = walk.allocs.get(call, [])
        for k, (pfn, end_after) in enumerate(allocs):
            assert pfn == cf.allocated_pfn(form, k), (name, mem_bytes, call, k)
            assert end_after == cf.pgt_buf_end_after(form, k + 1), (name, mem_bytes, call, k)
        if finished:
            assert len(allocs) == cf.total_allocations(form)
            assert buf.pgt_buf_end == cf.pgt_buf_end_after(form, cf.total_allocations(form))

        for gib, count in walk.pmd_fills.get(call, []):
            assert count == cf.pmd_alloc_index(form, gib), (name, mem_bytes, call, gib)

        seen: set[int] = set()
        for lo, hi, end_now in walk.written.get(call, []):
            for pfn in range(lo, hi):
                assert cf.pgt_buf_end_when_pte_written(form, pfn) == end_now, (name, mem_bytes, call, pfn)
            seen.update(range(lo, hi))
        for pfn in walk.kept.get(call, []):
            assert cf.pgt_buf_end_when_pte_written(form, pfn) is None, (name, mem_bytes, call, pfn)
        if finished:  # every pfn of the range is written exactly as the closed form says, or kept
            assert len(seen) + len(walk.kept.get(call, [])) == form.end - form.start
            assert len(seen) == form.end - max(form.start, form.first_new_chunk << 9)

    for call, pfn, n, found in walk.ro_lookups:
        assert cf.sees_pte(forms[call], pfn, n) == found, (name, mem_bytes, call, pfn, n)
    return walk


ALL = ["2.6.37", "2.6.38", "2.6.39-rc", "2.6.39", "3.0-inline", "3.0-native", "3.0", "3.9"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("mem", [64 * MIB, 100 * MIB, GIB + 2 * MIB])
def test_closed_form_matches_walk(name: str, mem: int) -> None:
    walk = check(name, mem)
    assert walk.ro_lookups or walk.variant.platform == "native"


@pytest.mark.parametrize("name", ["2.6.39", "3.0"])
def test_closed_form_matches_walk_2g(name: str) -> None:
    check(name, 2 * GIB)


@pytest.mark.parametrize(("name", "mem"), [("2.6.38", 5 * GIB), ("3.0-native", 6 * GIB)])
def test_closed_form_matches_walk_above_4g(name: str, mem: int) -> None:
    walk = check(name, mem)
    assert 1 in walk.allocs  # the second call ran (2.6.38 dies in it, mid-walk: the prefix is compared)


@settings(max_examples=15)
@given(
    chunks=st.integers(min_value=32, max_value=768),
    name=st.sampled_from(["3.0-native", "2.6.39", "3.9"]),
)
def test_closed_form_matches_walk_any_size(chunks: int, name: str) -> None:
    check(name, chunks * 2 * MIB)


@given(st.integers(min_value=64 * MIB >> 12, max_value=1 << 36))
def test_layout_and_sizing_closed_forms(max_pfn: int) -> None:
    layout = boot_layout(max_pfn << 12)
    assert cf.layout_converged(max_pfn)
    assert cf.max_pfn_mapped(max_pfn) == layout.max_pfn_mapped
    assert cf.table_pages(max_pfn) == find_early_table_space_pages(max_pfn)


def test_known_numbers() -> None:
    """The boot-log style numbers of the model at 5 GiB, by hand: M = 0x2c00, 2029 allocations in call 0."""
    first, second = cf.call_forms(5 * GIB, "high")
    assert first.mapped0 == 0x2C00
    assert (first.pgt_buf_start, first.pgt_buf_top) == (0xFF7FB, 0x100000)
    assert cf.total_allocations(first) == 2048 - 22 + 3
    assert cf.pmd_alloc_index(first, 1) == 513 - 22
    assert cf.pmd_alloc_index(second, 4) == 1
    assert cf.alloc_index_of_chunk(second, 2048) == 2
    assert cf.pgt_buf_end_when_pte_written(first, 0x2BFF) is None
    assert cf.pgt_buf_end_when_pte_written(first, 0x2C00) == 0xFF7FB + 1
