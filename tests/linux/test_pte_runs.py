"""The boot walk in runs (`readonly_runs`, `fill_pte_runs`, the reserve step's runs, `Guest.mfn_runs`, `PfnRanges`)
against the same walk answered the old way: every policy by one call of its compiled function per pfn (which
test_policy*.py hold to the interpreter `evaluate`), and every PTE's mfn by `pfn_to_mfn`, one by one. The two boots must be the same in everything: outcome, failure, console,
steps, buffers, pages, and Xen's whole state at the end."""

from __future__ import annotations

from itertools import pairwise
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenpin.linux import pv_ops as pv_ops_mod
from xenpin.linux import setup_arch as setup_arch_mod
from xenpin.linux.boot import BootResult, boot
from xenpin.linux.e820 import E820, E820_RAM, E820_RESERVED, E820Entry
from xenpin.linux.guest import Guest, PfnRanges
from xenpin.linux.layout import BootConfig
from xenpin.linux.policy import Expr, to_function
from xenpin.linux.pv_ops import PvOps
from xenpin.linux.variant import load_variant
from xenpin.shipped import KERNELS
from xenpin.strategies import mutants
from xenpin.xen.domain_builder import P2M
from xenpin.xen.flags import RW

M = 1 << 20
VARIANTS = [load_variant(p) for p in sorted(KERNELS.glob("*.toml"))]
XEN = [v for v in VARIANTS if v.xen]


class _PerPfn:
    """A policy answered pfn by pfn (`fn` and maximal `runs`, as CompiledPolicy has them)."""

    def __init__(self, expr: Expr, params: tuple[str, ...]) -> None:
        self.fn = to_function(expr, params)

    def runs(self, lo: int, hi: int, *others: int | bool) -> list[tuple[int, int, int | bool]]:
        out: list[tuple[int, int, int | bool]] = []
        for pfn in range(lo, hi):
            value = self.fn(pfn, *others)
            if out and out[-1][2] == value:
                out[-1] = (out[-1][0], pfn + 1, value)
            else:
                out.append((pfn, pfn + 1, value))
        return out


class PtePvOps(PvOps):
    """The hooks with every policy evaluated pfn by pfn (`readonly_runs` over just the range asked, nothing kept)
    and `fill_pte_runs` storing PTE by PTE through `pfn_to_mfn`."""

    def __init__(self, g: Guest) -> None:
        super().__init__(g)
        v, buffer = g.variant, ("pfn", "pgt_buf_start", "pgt_buf_end", "pgt_buf_top")
        self._readonly = _PerPfn(v.readonly, (*buffer, "ioremap"))
        readonly = self._readonly.fn
        self._readonly_direct = _PerPfn(v.readonly, (*buffer, "ioremap"))
        self._readonly_direct.fn = lambda *args: readonly(*args, False)
        self._reserve = _PerPfn(v.reserve, buffer)
        self._writable = _PerPfn(v.writable, buffer)

    def readonly_runs(self, lo: int, hi: int) -> list[tuple[int, int, bool]]:
        if not self.xen:
            return [(lo, hi, False)] if lo < hi else []
        return self._readonly_direct.runs(lo, hi, self.pgt_buf_start, self.pgt_buf_end, self.pgt_buf_top)

    def fill_pte_runs(self, table: int, runs) -> None:
        g = self.g
        if self.deferred:
            self.mark_rw_past_pgt()
        entries = []
        for lo, hi, flags in runs:
            for pfn in range(lo, hi):
                mfn = g.mfn(pfn)
                if mfn is not None:
                    entries.append((pfn % 512, mfn, flags))
                    if not flags & RW:
                        g.ro_pfns.add(pfn)
        g.hv.fill_table(g.mfn(table), entries)


def _boot(variant, config, per_pte: bool) -> tuple[BootResult, tuple]:
    guests: list[Guest] = []
    with mock.patch.object(setup_arch_mod, "PvOps", PtePvOps if per_pte else PvOps):
        r = boot(variant, config, on_step=lambda g: guests.append(g) if not guests else None)
    return r, guests[0].hv.snapshot() if guests else ()


def _same_boot(variant, config, window: int | None = None) -> BootResult:
    """`window`: readonly_runs' look-ahead (default RUNS_WINDOW), small to cross windows inside L1 tables."""
    with mock.patch.object(pv_ops_mod, "RUNS_WINDOW", window or pv_ops_mod.RUNS_WINDOW):
        a, state_a = _boot(variant, config, False)
    b, state_b = _boot(variant, config, True)
    assert (a.outcome, a.failure, a.properties) == (b.outcome, b.failure, b.properties)
    assert [(line.kind, line.text) for line in a.console] == [(line.kind, line.text) for line in b.console]
    assert a.steps == b.steps and a.buffers == b.buffers
    assert (a.pte_writes, a.pins, a.final_pages, a.end_states) == (
        b.pte_writes,
        b.pins,
        b.final_pages,
        b.end_states,
    )
    assert state_a == state_b
    return a


def _dom0_host() -> E820:
    """A host map with a hole above 1 MiB below the dom0's memory: xen_release_chunk gives those pfns back."""
    return E820(
        [
            E820Entry(0, 0x9F000, E820_RAM),
            E820Entry(0xF0000, 0x10000, E820_RESERVED),
            E820Entry(0x100000, 100 * M - 0x100000, E820_RAM),
            E820Entry(110 * M, 290 * M, E820_RAM),
        ]
    )


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_every_shipped_variant_boots_the_same_in_runs(variant) -> None:
    r = _same_boot(variant, 72 * M)
    assert r.outcome != "ok" or r.pte_writes > 0 or not variant.xen


@pytest.mark.parametrize("name", ["2.6.37", "2.6.39-rc6", "3.1"])
def test_a_dom0_with_released_pfns_boots_the_same_in_runs(name: str) -> None:
    variant = next(v for v in VARIANTS if v.name == name)
    r = _same_boot(variant, BootConfig(role="dom0", mem_bytes=120 * M, e820=_dom0_host()))
    assert r.p2m.released  # pfns with no mfn inside the walk's runs


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants(XEN), st.sampled_from([64 * M, 96 * M, 130 * M]))
def test_mutated_policies_boot_the_same_in_runs(variant, mem: int) -> None:
    _same_boot(variant, mem, window=700)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(0, 5000),
    st.sampled_from([1, -1]),
    st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 40)), max_size=4),
    st.integers(-10, 3100),
    st.integers(0, 600),
)
def test_mfn_runs_are_pfn_to_mfn(nr: int, base: int, step: int, holes: list, lo: int, n: int) -> None:
    variant = VARIANTS[0]
    g = Guest(variant, BootConfig(role="native" if not variant.xen else "domU"), "xen-4.1")
    g.p2m = P2M(nr, base + 5000, step, tuple(sorted((a, a + w) for a, w in holes)))
    expect = [(pfn, g.mfn(pfn)) for pfn in range(lo, lo + n) if g.mfn(pfn) is not None]
    got = [
        (first + i, mfn + i * s) for first, end, mfn, s in g.mfn_runs(lo, lo + n) for i in range(end - first)
    ]
    assert got == expect
    g.p2m = None
    assert g.mfn_runs(lo, lo + n) == ([(lo, lo + n, lo, 1)] if n else [])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 30)), max_size=12), st.integers(0, 240))
def test_pfn_ranges_are_a_set_of_pfns(adds: list[tuple[int, int]], probe: int) -> None:
    ranges, model = PfnRanges(), set()
    for lo, width in adds:
        if width % 3 == 0:
            ranges.add(lo)
            model.add(lo)
        else:
            ranges.add_range(lo, lo + width)
            model.update(range(lo, lo + width))
    assert list(ranges) == sorted(model) and len(ranges) == len(model)
    assert (probe in ranges) == (probe in model)
    runs = ranges.runs()
    assert all(b < c for (_, b), (c, _) in pairwise(runs))  # disjoint and not adjacent
