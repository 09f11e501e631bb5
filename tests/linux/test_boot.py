"""Boots of every release: the outcome and the violated property follow the real history, and the lines the
boot prints are the kernel's and Xen's own formats.

History (linux-releases-2011.md): 2.6.37 and 2.6.38 (buffer low), 2.6.39 (the seed's hook), 3.0 (high, with
the hook), 3.1 (low again) and 3.9 (top-down) boot, as do the bare-metal kernels; 2.6.39-rc1 .. rc5 die in a
failed PIN_L1_TABLE wherever a spare page got an RW PTE in an L1 that is pinned before its PMD is linked (not
below 1 GiB, not at every size); 2.6.39-rc6/rc7 leave the spare tail read-only after the reserve step and crash
on NODE_DATA above 4 GiB (92bdaef7b2c5); the bisect states fault at once (4b239f458 without d8aa5ec3382e) or on
NODE_DATA (92bdaef7b2c5: b9269dc7 with the workaround reverted, before the hook).
"""

from __future__ import annotations

import pytest
from bootcache import NAMES, booted, variant

from xenpin.linux.layout import parse_size
from xenpin.linux.variant import PROPERTIES

BOOTING = ("2.6.37", "2.6.38", "2.6.39", "2.6.39-inline", "3.0", "3.1", "3.9")
NATIVE = ("2.6.38-native", "2.6.39-native", "3.1-native")


def _violated(r) -> list[str]:
    return [p for p in PROPERTIES if r.properties[p] is False]


def _check_history(name: str, mem: str) -> None:
    r = booted(name, mem)
    f = r.failure
    assert r.mismatches() == [], r.mismatches()
    if name in BOOTING or name in NATIVE:
        assert (r.outcome, _violated(r)) == ("ok", [])
        assert all(r.properties[p] is True for p in PROPERTIES)
    elif name == "2.6.39-rc6":  # the tail stays RO until mark_rw_past_pgt; the boot survives below 4 GiB
        assert _violated(r) == ["spare_writable"]
        if parse_size(mem) <= 4 << 30:
            assert r.outcome == "ok"
    elif name in ("2.6.39-rc1", "2.6.39-rc5", "bisect-a38647837a41"):
        if r.outcome != "ok":
            assert (r.outcome, _violated(r), f.operation.split()[0]) == (
                "xen-rejected",
                ["no_rw_alias"],
                "pin_l1",
            )
    elif name == "bisect-4b239f458":
        assert (r.outcome, _violated(r), f.phase) == (
            "kernel-fault",
            ["no_rw_alias"],
            "init_memory_mapping call 0",
        )
        assert f.errno == "EFAULT" and f.bug_site.startswith("early_memremap")  # the RW alias of a live table
    elif name == "bisect-92bdaef7b2c5":
        assert (r.outcome, _violated(r)) == ("kernel-fault", ["spare_writable"])
    else:  # pragma: no cover
        raise AssertionError(f"no history for {name}")
    for p, value in r.properties.items():  # a violation is always one the variant expects
        if value is False:
            assert variant(name).expect[p] == "counterexample"


@pytest.mark.parametrize("name", NAMES)
def test_history_at_1536m(name: str) -> None:
    _check_history(name, "1536M")


def test_rc5s_extra_region_at_4g_hides_the_pin_failure_below_4g() -> None:
    """24bdb0b62cc8 (rc5) moved XEN EXTRA from mem_end to 4 GiB: the buffer's chunks are then the last the first
    call maps, no allocation follows them, and the RW spare pages are never allocated; rc1's four more chunks
    (the extra region) allocate exactly those pages."""
    assert booted("2.6.39-rc1", "1536M").outcome == "xen-rejected"
    assert booted("2.6.39-rc5", "1536M").outcome == "ok"
    assert booted("bisect-a38647837a41", "1536M").outcome == "ok"
    assert booted("2.6.39-rc5", "6G").outcome == "xen-rejected"  # above 4 GiB the second call still fails


@pytest.mark.parametrize(
    "name", ["2.6.38", "2.6.39-rc1", "2.6.39-rc6", "2.6.39", "3.0", "3.9", "bisect-92bdaef7b2c5"]
)
def test_history_at_1537m(name: str) -> None:
    """Not 2 MiB aligned: the last PTE page is partly empty, the extra region starts mid-PMD."""
    _check_history(name, "1537M")


@pytest.mark.parametrize(
    ("name", "mem", "outcome", "phase"),
    [
        ("2.6.39-rc1", "512M", "ok", ""),  # below 1 GiB the only PMD page is live: the pins succeed
        ("2.6.39-rc1", "1536M", "xen-rejected", "init_memory_mapping call 0"),
        ("2.6.39-rc1", "4097M", "ok", ""),  # not everywhere
        ("2.6.39-rc1", "6G", "xen-rejected", "init_memory_mapping call 1"),
        ("2.6.39-rc6", "4095M", "ok", ""),
        ("2.6.39-rc6", "6G", "kernel-fault", "initmem_init"),  # 92bdaef7b2c5: NODE_DATA in the RO tail
        ("bisect-4b239f458", "4097M", "kernel-fault", "init_memory_mapping call 0"),
        ("bisect-92bdaef7b2c5", "1537M", "kernel-fault", "initmem_init"),
        (
            "bisect-92bdaef7b2c5",
            "4097M",
            "kernel-fault",
            "page allocator",
        ),  # NODE_DATA lands above the buffers
    ],
)
def test_history_around_4g(name: str, mem: str, outcome: str, phase: str) -> None:
    r = booted(name, mem)
    assert r.outcome == outcome and (r.failure.phase if r.failure else "") == phase
    _check_history(name, mem)


def test_2_6_39_rc6_crashes_only_above_4g() -> None:
    """Below 4 GiB every later allocation finds the old tail already RW (the second call's first PTE ran
    mark_rw_past_pgt); above it NODE_DATA is allocated from 4 GiB up, in the second buffer's RO tail."""
    for mem in ("1536M", "1537M", "4095M"):
        assert booted("2.6.39-rc6", mem).outcome == "ok"
    r = booted("2.6.39-rc6", "6G")
    f = r.failure
    last = r.buffers[-1]
    assert f.function == "setup_node_bootmem" and last.pgt_buf_end <= f.pfn < last.pgt_buf_top
    assert r.final_pages[f.pfn] == (False, False)  # read-only and free
    # mark_rw_past_pgt ran once, for the first buffer, at the second call's first PTE; never for the second
    first = r.buffers[0]
    assert [(s.call, s.pfn) for s in r.steps if s.action == "mark_rw_past_pgt"] == [(1, first.pgt_buf_end)]


# ------------------------------------------------------------------------------------------ lines


def test_kernel_lines_of_a_two_call_boot() -> None:
    r = booted("2.6.39-rc6", "6G")
    assert r.lines("init_memory_mapping") == [
        "init_memory_mapping: 0000000000000000-0000000100000000",
        "init_memory_mapping: 0000000100000000-0000000180800000",
    ]
    assert r.lines("page_size") == [" 0000000000 - 0100000000 page 4k", " 0100000000 - 0180800000 page 4k"]
    tables = r.lines("tables")
    assert tables[0] == "kernel direct mapping tables up to 100000000 @ ff7fb000-100000000"  # 92bdaef7b2c5's
    b = r.buffers[1]
    assert (
        tables[1]
        == f"kernel direct mapping tables up to 180800000 @ {b.pgt_buf_start << 12:x}-{b.pgt_buf_top << 12:x}"
    )
    assert r.lines("last_pfn") == ["last_pfn = 0x180800 max_arch_pfn = 0x400000000",
                                   "last_pfn = 0x100000 max_arch_pfn = 0x400000000"]  # fmt: skip
    assert r.lines("mapped") == ["initial memory mapped : 0 - 02c3a000"]
    assert r.lines("ramdisk") == ["RAMDISK: 0203b000 - 02c3a000"]
    # mark_rw_past_pgt at the second call's first PTE: the first buffer's [end, top)
    assert r.lines("setting_rw") == ["xen: setting RW the range fffdc000 - 100000000"]
    assert "    memblock_x86_reserve_range: [0xff7fb000-0xfffdbfff]          PGTABLE" in r.lines("reserve")


def test_seed_hook_prints_each_call_s_tail() -> None:
    """2.6.39 puts the extra region at 4 GiB (24bdb0b62cc8): even a 1.5 GiB domU makes a second call."""
    r = booted("2.6.39", "1536M")
    assert [(b.range_start, b.range_end) for b in r.buffers] == [(0, 0x60000), (0x100000, 0x100800)]
    assert r.lines("setting_rw") == [
        f"xen: setting RW the range {b.pgt_buf_end << 12:x} - {b.pgt_buf_top << 12:x}" for b in r.buffers
    ]
    assert all(b.hook_ran for b in r.buffers)
    assert all(r.final_pages[p] == (True, False) for b in r.buffers for p in b.spare)  # RW and free
    assert all(r.final_pages[p][1] for b in r.buffers for p in b.used)  # reserved


def test_pin_failure_prints_xen_s_lines_and_its_trap() -> None:
    r = booted("2.6.39-rc1", "1536M")
    f = r.failure
    mfn = r.p2m.mfn(f.pfn)
    assert mfn != f.pfn  # the p2m is not the identity: Xen's lines name both
    assert f.xen_log == (
        f"(XEN) mm.c:2424:d1 Bad type (saw 7400000000000001 != exp 1000000000000000) for mfn {mfn:x} (pfn {f.pfn:x})",
        f"(XEN) mm.c:2985:d1 Error while pinning mfn {mfn:x}",
        "(XEN) traps.c:451:d1 Unhandled invalid opcode fault/trap [#6] on VCPU 0 [ec=0000]",
        "(XEN) domain_crash_sync called from entry.S",
    )
    assert r.lines("xen") == list(f.xen_log)
    # a BUG() this early is Xen's trap line: the kernel prints nothing of its own
    assert not any(line.startswith(("kernel BUG at", "BUG:")) for line in r.lines())
    assert f.message == f.xen_log[2] and f.bug_site == "arch/x86/xen/mmu.c pin_pagetable_pfn"
    # the page was a spare page of the buffer when its PTE was written RW; now it is the next table
    b = r.buffers[-1]
    assert b.pgt_buf_start <= f.pfn < b.pgt_buf_end == f.pfn + 1
    steps = [(s.action, s.detail, s.pgt_buf_end) for s in r.steps if s.pfn == f.pfn]
    assert steps[0] == ("set_pte", "direct-map PTE P|RW", f.pfn)  # mask_rw_pte: pfn < pgt_buf_end is false
    assert ("make_lowmem_page_readonly", "no PTE reaches it yet: nothing done", f.pfn + 1) in steps
    assert steps[-2][0] == "pin_pagetable_pfn"
    assert r.properties["no_rw_alias"] is False and r.properties["spare_writable"] is None


def test_rw_alias_store_faults_before_shared_info() -> None:
    """bisect-4b239f458: map_low_page's RW fixmap alias of a live table; ptwr emulation refuses the store."""
    r = booted("bisect-4b239f458", "1536M")
    assert r.lines("xen")[0].startswith(
        "(XEN) mm.c:2424:d1 Bad type (saw 3400000000000001 != exp 7000000000000000)"
    )
    assert "ptwr_emulate: could not get_page_from_l1e()" in r.lines("xen")[-1]
    # xen_setup_shared_info has not run: CR2 reads the dummy shared info's 0
    assert r.lines("failure") == [
        "BUG: unable to handle kernel NULL pointer dereference at           (null)",
        "Kernel panic - not syncing: Attempted to kill the idle task!",
    ]


def test_node_data_fault_is_a_null_pointer_oops_in_setup_node_bootmem() -> None:
    r = booted("bisect-92bdaef7b2c5", "1536M")
    nd = r.lines("node_data")[0]
    assert nd == "  NODE_DATA [000000005fffb000 - 000000005fffffff]"
    assert r.lines()[r.lines().index(nd) + 1 :][:3] == [
        "BUG: unable to handle kernel NULL pointer dereference at           (null)",
        "IP: setup_node_bootmem",
        "Kernel panic - not syncing: Attempted to kill the idle task!",
    ]
    assert r.failure.pfn == 0x5FFFB and r.failure.pfn in r.buffers[0].spare


def test_fault_after_shared_info_names_the_address() -> None:
    r = booted("bisect-92bdaef7b2c5", "4097M")
    f = r.failure
    assert (
        f.message
        == f"BUG: unable to handle kernel paging request at {0xFFFF880000000000 + (f.pfn << 12):016x}"
    )
    assert f.pfn in r.buffers[0].spare and "still mapped read-only" in f.reason


def test_release_3_9_lines() -> None:
    r = booted("3.9", "1536M")
    assert r.lines("init_memory_mapping")[:2] == [
        "init_memory_mapping: [mem 0x00000000-0x000fffff]",
        "init_memory_mapping: [mem 0x5fe00000-0x5fffffff]",  # the last 2 MiB below the extra region first
    ]
    assert r.lines("reserve")[r.lines("reserve").index("BRK [0x0202f000, 0x0202ffff] PGTABLE") + 1] == (
        "BRK [0x02030000, 0x02030fff] PGTABLE"
    )
    assert r.lines("last_pfn") == ["e820: last_pfn = 0x60800 max_arch_pfn = 0x400000000"]
    assert r.lines("e820")[-1] == "Xen: [mem 0x0000000000100000-0x00000000607fffff] usable"  # all 8 MiB extra
    assert r.lines("setting_rw") == [] and r.lines("tables") == []


def test_bare_metal_uses_large_pages() -> None:
    r = booted("2.6.39-native", "1536M")
    assert r.lines("page_size") == [" 0000000000 - 0060000000 page 2M"]
    assert r.pins == 0 and r.lines("xen") == []
    # 3 pages (PSE: no PTE page), high (4b239f458), just below the initrd GRUB put at the top of RAM
    assert r.lines("tables") == ["kernel direct mapping tables up to 60000000 @ 5f3fe000-5f401000"]
    assert r.lines("ramdisk") == ["RAMDISK: 5f401000 - 60000000"]


@pytest.mark.parametrize("name", ["2.6.39"])
def test_modern_rules_agree_on_the_fixed_releases(name: str) -> None:
    r = booted(name, "1536M", "modern")
    assert r.outcome == "ok" and not r.mismatches()
