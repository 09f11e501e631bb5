"""The closed form (`xenpin.symbolic.form` over Python ints, `closed_form.py`) against the boot walk, exactly.

For a Xen domU, every quantity the obligations read is compared with the boot's own record: the layout of the
start of day and the E820 (`max_pfn`, `max_low_pfn`), each call's range and buffer (`pgt_buf_start`/`top` always,
`pgt_buf_end` where the call got through its reserve step), the allocation order (the n-th `alloc_low_page` is
`pgt_buf_start + n - 1`), which page became which chunk's PTE page and which GiB's PMD page (the `set_pmd` /
`set_pud` links), the `pgt_buf_end` each buffer page's direct-map PTE was written with, which buffer pages the
call writes at all, and whether each `make_lowmem_page_readonly` of the walk found a PTE (`gib_linked_after`).
Bare metal (cheap to boot): the buffer's size, place and fill over generated E820 maps, with and without 1 GiB
pages. And the domain: ordinary machines are in it; machines the closed form does not describe are not.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import z3
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from symbolic_cases import (
    BUFFERED_XEN,
    GIB,
    KERNEL,
    MIB,
    NATIVE,
    RAMDISK,
    REPRESENTATIVE,
    SHAPE_LIST,
    SLACK,
    VARIANTS,
    XEN,
    boot_of,
    domu,
    skip_unless_slow,
    slow,
)

from xenpin.linux.boot import BootResult, boot
from xenpin.linux.e820 import E820, E820_RAM, E820Entry
from xenpin.linux.layout import BootConfig, find_early_table_space_pages
from xenpin.linux.variant import KernelVariant
from xenpin.linux.xen_setup import MAX_DOMAIN_PAGES_39
from xenpin.strategies import native_machines, xen_machines
from xenpin.symbolic import closed_form as cf
from xenpin.symbolic import form
from xenpin.symbolic.form import INT, Params
from xenpin.symbolic.obligations import build
from xenpin.symbolic.solver import check
from xenpin.symbolic.walk import c
from xenpin.xen.domain_builder import xc_dom_layout

LINK = re.compile(r"mmu_update (0x[0-9a-f]+)\[(\d+)\] -> (0x[0-9a-f]+)")


def _links(steps, action: str) -> list[tuple[int, int, int]]:
    """(table, slot, page) of each `set_pmd` / `set_pud` of a call that links a page (not a clear)."""
    out = []
    for s in steps:
        if s.action == action and (m := LINK.fullmatch(s.detail)):
            out.append((int(m[1], 16), int(m[2]), int(m[3], 16)))
    return out


def mismatches(v: KernelVariant, config: BootConfig, r: BootResult) -> list[str]:
    """Every way the closed form differs from the boot `r` of `v` on `config` (empty: none)."""
    out: list[str] = []

    def same(what: str, closed, booted) -> None:
        if closed != booted:
            out.append(f"{what}: closed form {closed!r}, boot {booted!r}")

    lay, calls = cf.machine_layout(v, config), cf.machine_calls(v, config)
    sod = r.start_of_day
    for name, booted in (("mfn_list", sod.mfn_list), ("pt_base", sod.pt_base), ("pt_end", sod.pt_end),
                         ("v_end", sod.v_end), ("max_pfn", r.max_pfn), ("max_low", r.max_low_pfn)):  # fmt: skip
        same(name, getattr(lay, name), booted)
    same("two calls", lay.two_calls, r.max_pfn > r.max_low_pfn)
    if v.placement == "mapped":
        return out  # 3.9: no pgt_buf buffer; its walk is not in closed form
    buffers = [b for b in r.buffers if b.call >= 0]
    same("calls made", [k.index for k in calls if k.exists][: len(buffers)], [b.call for b in buffers])
    if r.failure is None:
        same("calls made", [k.index for k in calls if k.exists], [b.call for b in buffers])
    for b in buffers:
        k, n = calls[b.call], 0
        tag = f"call {b.call}"
        same(f"{tag} range", (k.range_start, k.range_end), (b.range_start, b.range_end))
        same(f"{tag} start/top", (k.pgt_buf_start, k.pgt_buf_top), (b.pgt_buf_start, b.pgt_buf_top))
        same(f"{tag} tables", k.tables, find_early_table_space_pages(b.range_end))
        if b.judged:
            same(f"{tag} pgt_buf_end", k.pgt_buf_end, b.pgt_buf_end)
        steps = [s for s in r.steps if s.call == b.call]
        written = set()
        for s in steps:
            if s.action == "alloc_low_page":
                n += 1
                same(f"{tag} allocation {n}", k.pgt_buf_start + n - 1, s.pfn)
            elif s.action == "set_pte":
                written.add(s.pfn)
                if not k.is_new_chunk_pfn(s.pfn):
                    out.append(f"{tag}: the boot writes the PTE of {s.pfn:#x}, the closed form keeps it")
                else:
                    same(
                        f"{tag} pgt_buf_end at the PTE of {s.pfn:#x}",
                        k.end_when_pte_written(s.pfn),
                        s.pgt_buf_end,
                    )
            elif s.action == "make_lowmem_page_readonly":
                found = "no PTE reaches it yet" not in s.detail
                q = s.pfn
                reached = not k.is_new_chunk_pfn(q) or (k.pte_alloc(q) <= n and k.gib_linked_after(q) < n)
                same(
                    f"{tag} make_lowmem_page_readonly({q:#x}) after {n} allocations finds a PTE",
                    reached,
                    found,
                )
        # which page became which GiB's PMD page, which chunk's PTE page: the call's own PMD pages serve its new
        # GiBs in order; a PMD page from elsewhere is level2_ident_pgt (GiB 0)
        pmd_pages: list[int] = []
        for table, _, _ in _links(steps, "set_pmd"):
            if b.pgt_buf_start <= table < b.pgt_buf_top and table not in pmd_pages:
                pmd_pages.append(table)
        gib_of = {page: k.first_new_gib + i for i, page in enumerate(pmd_pages)}
        linked = _links(steps, "set_pud")  # into level3_ident_pgt, whose slot is the GiB
        for _, gib, page in linked:
            same(f"{tag} GiB of the PMD page {page:#x}", gib_of.get(page), gib)
            same(f"{tag} PMD page of GiB {gib}", k.pgt_buf_start + k.pmd_alloc(gib) - 1, page)
        chunks = []
        for table, slot, page in _links(steps, "set_pmd"):
            chunk = gib_of.get(table, 0) * 512 + slot
            chunks.append(chunk)
            same(f"{tag} PTE page of chunk {chunk:#x}", k.pgt_buf_start + k.chunk_alloc(chunk) - 1, page)
        if b.judged:
            same(f"{tag} allocations", k.total_allocs, n)
            same(f"{tag} chunks linked", chunks, list(range(k.first_new_chunk, k.last_chunk + 1)))
            same(
                f"{tag} GiBs linked",
                [gib for _, gib, _ in linked],
                list(range(k.first_new_gib, (k.last_chunk >> 9) + 1)),
            )
            expect = {p for p in range(b.pgt_buf_start, b.pgt_buf_top) if k.is_new_chunk_pfn(p)}
            same(f"{tag} buffer pages whose PTE the call writes", sorted(expect), sorted(written))
    return out


def check_machine(name: str, config: BootConfig) -> BootResult:
    v = VARIANTS[name]
    r = boot_of(v, config)
    assert cf.in_domain(v, config), (name, config)
    assert mismatches(v, config, r) == [], (name, config)
    return r


# --- Xen: every variant, sizes MiB- and 4 KiB-granular -------------------------------------------------------

FAST_SIZES = [64 * MIB, 100 * MIB + 4096]
SLOW_SIZES = [100 * MIB, 1536 * MIB, 1537 * MIB, GIB + 2 * MIB + 4096, 4095 * MIB, 4097 * MIB, 6 * GIB]


@pytest.mark.parametrize("mem", FAST_SIZES, ids=lambda m: f"{m:#x}")
@pytest.mark.parametrize("name", XEN)
def test_closed_form_equals_the_boot_walk(name: str, mem: int) -> None:
    r = check_machine(name, domu(mem >> 12))
    if VARIANTS[name].placement != "mapped" and r.failure is None:  # the comparison had something to compare
        assert any(s.action == "make_lowmem_page_readonly" for s in r.steps)
        # a high buffer lies in chunks the call maps itself; a low one in chunks Xen's tables already map
        assert any(s.action == "set_pte" for s in r.steps) == (VARIANTS[name].placement == "high")


# Where a boot costs seconds, a few: past the first GiB by 2 MiB + 4 KiB (a partial chunk in a new GiB) for a
# high and a low buffer, and past 4 GiB (a second call above it, its buffer there too).
BIG = [("2.6.39", GIB + 2 * MIB + 4096), ("3.1", GIB + 2 * MIB + 4096), ("3.0", 4097 * MIB)]


@pytest.mark.parametrize(("name", "mem"), BIG, ids=lambda x: x if isinstance(x, str) else f"{x:#x}")
def test_closed_form_equals_the_boot_walk_past_a_gib(name: str, mem: int) -> None:
    r = check_machine(name, domu(mem >> 12))
    if mem > 4 * GIB:
        assert [b.call for b in r.buffers] == [0, 1]


@slow
@skip_unless_slow
@pytest.mark.parametrize("mem", SLOW_SIZES, ids=lambda m: f"{m:#x}")
@pytest.mark.parametrize("name", XEN)
def test_closed_form_equals_the_boot_walk_every_size(name: str, mem: int) -> None:
    check_machine(name, domu(mem >> 12))


# kernel, ramdisk and slack other than the defaults: the smallest image and none, odd sizes, slack of 511 and
# 513 pages (a partial chunk past nr); and the largest of all three, past a GiB
MACHINES = [
    (0x4000, 0x200, 0, 0),
    (0x4000, 0x201, 1, 1),
    (0x6000, KERNEL, RAMDISK, 511),
    (0x10000, 0x1234, 0x777, 513),
]
BIG_MACHINE = (0x40201, 0x8000, 0x20000, 0x40000)
SHAPE_NAMES = sorted({REPRESENTATIVE[s] for s in SHAPE_LIST} & set(BUFFERED_XEN))  # one variant per shape


@pytest.mark.parametrize("machine", MACHINES, ids=str)
@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_closed_form_equals_the_boot_walk_other_images_and_slack(name: str, machine: tuple[int, ...]) -> None:
    check_machine(name, domu(*machine))


@pytest.mark.parametrize("name", BUFFERED_XEN)
def test_closed_form_equals_the_boot_walk_smallest_image(name: str) -> None:
    check_machine(name, domu(*MACHINES[0]))


@pytest.mark.parametrize("name", ["3.0", "2.6.39", "3.9", "3.1"])
def test_the_slack_is_capped_at_nine_or_ten_times_the_guest(name: str) -> None:
    """1 GiB of slack for a 64 MiB guest: EXTRA_MEM_RATIO keeps 9 x 64 MiB of it (3.9: 10 x; 3.1: the maximum
    reservation xl sets keeps 256 pages)."""
    r = check_machine(name, domu(0x4000, slack=form.SLACK_PAGES[1]))
    extra = {"3.9": 10 * 0x4000, "3.1": 256}.get(name, 9 * 0x4000)
    assert (
        r.max_pfn == (1 << 20 if VARIANTS[name].code["xen_memory_setup"] == "2.6.39-rc5" else 0x4000) + extra
    )


def test_closed_form_equals_the_boot_walk_largest_images_and_slack() -> None:
    check_machine("2.6.39", domu(*BIG_MACHINE))  # the slack at 4 GiB: a second call of 1 GiB


@slow
@skip_unless_slow
@pytest.mark.parametrize("machine", [*MACHINES, BIG_MACHINE], ids=str)
@pytest.mark.parametrize("name", BUFFERED_XEN)
def test_closed_form_equals_the_boot_walk_other_images_and_slack_every_variant(name: str, machine) -> None:
    check_machine(name, domu(*machine))


@slow
@skip_unless_slow
@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_slack_takes_the_second_call_across_4_gib(name: str) -> None:
    """nr just below 4 GiB with the 8 MiB slack: the E820 of 2.6.37 .. 2.6.39-rc4 and 3.0+ makes call 0 [0, 4G)
    and call 1 above 4G for the slack alone (2.6.39-rc5 .. 2.6.39 put it at 4 GiB anyway; 3.1 keeps 256 pages of
    it, so it takes a guest within 1 MiB of 4 GiB)."""
    code = VARIANTS[name].code["xen_memory_setup"]
    extra = 256 if code == "3.1" else SLACK
    nr = (1 << 20) - extra // 2
    r = check_machine(name, domu(nr))
    at_4g = code == "2.6.39-rc5"
    expect = [(0, nr if at_4g else 1 << 20), (1 << 20, (1 << 20 if at_4g else nr) + extra)]
    assert [(k.range_start, k.range_end) for k in cf.machine_calls(VARIANTS[name], domu(nr))] == expect
    assert [(b.range_start, b.range_end) for b in r.buffers] == expect[: len(r.buffers)]


@settings(max_examples=5, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(name=st.sampled_from(XEN), machine=xen_machines(max_nr=GIB >> 12))
@example(name="2.6.39", machine=(0x40201, KERNEL, RAMDISK, SLACK))
def test_closed_form_equals_the_boot_walk_anywhere_in_the_domain(name: str, machine: tuple[int, ...]) -> None:
    config = domu(*machine)
    assume(cf.in_domain(VARIANTS[name], config))
    check_machine(name, config)


@slow
@skip_unless_slow
@settings(max_examples=60, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(name=st.sampled_from(XEN), machine=xen_machines(max_nr=(6 * GIB) >> 12))
def test_closed_form_equals_the_boot_walk_anywhere_in_the_domain_slow(
    name: str, machine: tuple[int, ...]
) -> None:
    config = domu(*machine)
    assume(cf.in_domain(VARIANTS[name], config))
    check_machine(name, config)


# --- Xen: the layout formula ---------------------------------------------------------------------------------


def _form_layout(nr: int, kernel: int, ramdisk: int):
    return form.layout(INT, SHAPE_LIST[-1], Params(nr, kernel, ramdisk, 0))


def _same_layout(nr: int, kernel: int, ramdisk: int) -> None:
    sod = xc_dom_layout(nr, kernel << 12, ramdisk << 12)
    lay = _form_layout(nr, kernel, ramdisk)
    assert (lay.mfn_list, lay.pt_base, lay.pt_end, lay.v_end) == (
        sod.mfn_list,
        sod.pt_base,
        sod.pt_end,
        sod.v_end,
    )
    alloc_end = sod.pt_base  # the builder's allocations end where its tables begin
    assert lay.v_end == 1024 * -(-(alloc_end + 132) // 1022)


def test_layout_formula_equals_the_domain_builders_loop_exhaustively() -> None:
    """`v_end = 1024 * ceil((alloc_end + 132) / 1022)` for every allocation end over 16 K consecutive values
    (several 4 MiB steps of the loop, both sides of each), and at sizes where ceil(nr / 512) steps."""
    for ramdisk in range(0, 0x4000):
        _same_layout(0x4000, 0x200, ramdisk)
    for nr in range(0x4000, 0x4000 + 2048, 7):
        _same_layout(nr, KERNEL, RAMDISK)


@given(
    nr=st.integers(form.DOMAIN_MIN_PFN, MAX_DOMAIN_PAGES_39),
    kernel=st.integers(*form.KERNEL_PAGES),
    ramdisk=st.integers(*form.RAMDISK_PAGES),
)
def test_layout_formula_equals_the_domain_builders_loop(nr: int, kernel: int, ramdisk: int) -> None:
    _same_layout(nr, kernel, ramdisk)


# --- bare metal -----------------------------------------------------------------------------------------------


def _native_mismatches(v: KernelVariant, config: BootConfig) -> list[str]:
    r = boot(v, config)
    buffers = [b for b in r.buffers if b.call >= 0]
    bases = tuple(b.pgt_buf_start for b in buffers) + (cf.NATIVE_BASE,) * (2 - len(buffers))
    calls = cf.machine_calls(v, config, bases)
    out = []
    if [k.index for k in calls if k.exists] != [b.call for b in buffers]:
        out.append(f"calls: closed form {[k.exists for k in calls]}, boot {[b.call for b in buffers]}")
    for b in buffers:
        k = calls[b.call]
        closed = (k.range_start, k.range_end, k.pgt_buf_start, k.pgt_buf_end, k.pgt_buf_top, k.total_allocs)
        booted = (
            b.range_start,
            b.range_end,
            b.pgt_buf_start,
            b.pgt_buf_end,
            b.pgt_buf_top,
            b.pgt_buf_end - b.pgt_buf_start,
        )
        if closed != booted:
            out.append(f"call {b.call}: closed form {closed}, boot {booted}")
    if not cf.in_domain(v, config, bases):
        out.append("not in the domain")
    return out


@settings(max_examples=40)
@given(name=st.sampled_from(NATIVE), config=native_machines())
@example(name="2.6.39-native", config=BootConfig(role="native", mem_bytes=6 * GIB, gbpages=True))
@example(name="3.1-native", config=BootConfig(role="native", mem_bytes=6 * GIB))
# past 512 GiB and 1 TiB: a PUD page per PGD slot past the first (1 GiB pages keep these boots quick)
@example(name="3.1-native", config=BootConfig(role="native", mem_bytes=512 * GIB + 4096, gbpages=True))
@example(
    name="2.6.39-native",
    config=BootConfig(role="native", mem_bytes=1100 * GIB + 2 * MIB + 4096, gbpages=True),
)
def test_bare_metal_closed_form_equals_the_boot_walk(name: str, config: BootConfig) -> None:
    assert _native_mismatches(VARIANTS[name], config) == []


def test_bare_metal_with_1g_pages_allocates_only_for_the_partial_gib() -> None:
    """With 1 GiB pages only the last, partial GiB takes a PMD page (the closed form once counted one per GiB)."""
    v, config = (
        VARIANTS["2.6.39-native"],
        BootConfig(role="native", mem_bytes=6 * GIB + 2 * MIB + 4096, gbpages=True),
    )
    assert _native_mismatches(v, config) == []
    call1 = cf.machine_calls(v, config)[1]
    assert call1.total_allocs == 2  # the PMD page of GiB 6, the PTE page of its partial first chunk


# --- the domain -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", XEN)
def test_ordinary_domus_are_in_the_domain(name: str) -> None:
    v = VARIANTS[name]
    largest = form.max_nr(form.shape_of(v))  # MAX_DOMAIN_PAGES: 128 GiB, 3.9's 500 GiB
    for mem in (64 * MIB, 100 * MIB + 4096, 1536 * MIB, 4 * GIB, 6 * GIB, 64 * GIB, largest << 12):
        assert cf.in_domain(v, domu(mem >> 12)), (name, hex(mem))
    assert cf.in_domain(v, domu(0x4000, 0x200, 0, 0))
    assert not cf.in_domain(v, domu(largest + 1)), name  # xen_memory_setup would ignore the rest
    assert not cf.in_domain(v, dataclasses.replace(domu(0x4000), max_reservation=0x4000)), name  # xm's maxmem


@pytest.mark.parametrize("name", NATIVE)
def test_ordinary_pcs_are_in_the_domain(name: str) -> None:
    for mem in (64 * MIB, 1536 * MIB, 6 * GIB):
        for gb in (False, True):
            assert cf.in_domain(VARIANTS[name], BootConfig(role="native", mem_bytes=mem, gbpages=gb))


def test_machines_the_closed_form_does_not_describe_are_outside_the_domain() -> None:
    xen, native = VARIANTS["2.6.39"], VARIANTS["2.6.39-native"]
    # a guest smaller than its boot image (plus FREE_PAST_BOOT_IMAGE): 60 MiB of ramdisk in 64 MiB
    assert not cf.in_domain(xen, domu(0x4000, KERNEL, 0x3C00 - KERNEL, SLACK))
    assert not cf.in_domain(xen, domu(0x3FFF))  # below 64 MiB
    assert not cf.in_domain(xen, domu(0x4000, 0x1FF))  # a kernel image below the floor
    assert not cf.in_domain(xen, domu(0x4000, slack=form.SLACK_PAGES[1] + 1))
    assert not cf.in_domain(
        xen, BootConfig(role="dom0", mem_bytes=GIB)
    )  # dom0: another builder, the host's map
    assert not cf.in_domain(xen, BootConfig(role="domU", mem_bytes=GIB, e820=BootConfig().host_e820()))
    # bare metal with a GiB that no E820 entry touches (phys_pud_init skips it), or RAM across 4 GiB
    gap = E820([E820Entry(0, 0x9F000, E820_RAM), E820Entry(0x100000, GIB - 0x100000, E820_RAM),
                E820Entry(4 * GIB, 2 * GIB, E820_RAM), E820Entry(8 * GIB, GIB, E820_RAM)])  # fmt: skip
    assert not cf.in_domain(native, BootConfig(role="native", mem_bytes=4 * GIB, e820=gap))
    across = E820([E820Entry(0, 0x9F000, E820_RAM), E820Entry(0x100000, 5 * GIB, E820_RAM)])
    assert not cf.in_domain(native, BootConfig(role="native", mem_bytes=5 * GIB, e820=across))


def test_free_past_the_boot_image_is_what_keeps_an_ioremap_alias_out() -> None:
    """The guest whose buffer starts right after Xen's boot tables: `pgt_buf_end - 1` is then the last of
    Xen's L1s, and 2.6.39's ioremap clause maps that live table RW through the fixmap (the boot shows it). The
    domain leaves such guests out (FREE_PAST_BOOT_IMAGE); without that bound the solver finds it too."""
    v, config = VARIANTS["2.6.39"], domu(65536, 512, 60536, 0)
    r = boot_of(v, config)
    assert r.outcome == "kernel-fault" and r.properties["no_rw_alias"] is False
    assert r.failure.violates == "no_rw_alias" and r.failure.pfn == r.start_of_day.pt_end - 1  # Xen's last L1
    assert r.buffers[0].pgt_buf_start == r.start_of_day.pt_end
    assert not cf.in_domain(v, config)
    assert (
        mismatches(v, config, r) == []
    )  # the closed form still describes this walk: only the domain excludes it
    lay = cf.machine_layout(v, config)
    assert lay.v_end + form.FREE_PAST_BOOT_IMAGE > 65536 >= lay.v_end


def test_the_obligation_sees_that_alias_and_only_the_domain_excludes_it() -> None:
    v = VARIANTS["2.6.39"]
    failure = boot_of(v, domu(65536, 512, 60536, 0)).failure
    ob = build(v, "no_rw_alias", 0)
    p = ob.params
    machine = z3.And(p.nr == c(65536), p.kernel == c(512), p.ramdisk == c(60536), p.slack == c(0))
    assert check(z3.And(ob.violation, machine, ob.pfn == c(failure.pfn))).status == "sat"
    assert check(z3.And(ob.formula(), machine)).status == "unsat"
    assert check(z3.And(ob.domain, machine)).status == "unsat"
    # besides FREE_PAST_BOOT_IMAGE, the walk there allocates nothing at all: Xen's tables map the whole guest
    k0 = cf.machine_calls(v, domu(65536, 512, 60536, 0))[0]
    assert k0.last_chunk < k0.first_new_chunk
