"""Reading real 2011 boot logs: classifying their lines, the machine they describe, and comparing a boot's
lines with them (`xenpin boot --dmesg`), including logs as people paste them."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootcache import LOGS, cached_boot, variant

from xenpin.linux.dmesg import LogError, compare, configure, parse_log, read_log
from xenpin.linux.e820 import E820, E820Entry

DOMU = LOGS / "92bdaef7b2c5-domU.log"
BEFORE, AFTER = LOGS / "4b239f458-before.log", LOGS / "4b239f458-after.log"
DOM0 = LOGS / "a38647837a41-dom0.log"
HOST = E820(  # the same host as tests/test_cli.py's HOST_E820: one boot serves both
    [
        E820Entry(0, 0x9F000, 1),
        E820Entry(0x9F000, 0x1000, 2),
        E820Entry(0xF0000, 0x10000, 2),
        E820Entry(0x100000, 0xBF780000 - 0x100000, 1),
        E820Entry(0xBF780000, 0x880000, 2),
        E820Entry(1 << 32, 1 << 30, 1),
    ]
)


def _rows(log, name: str, **kw):
    v = variant(name)
    c = configure(log, v, **kw)
    result = cached_boot(v, c.config)
    return c, result, compare(log, [(line.kind, line.text) for line in result.console])


def _differ(rows) -> list[tuple[int, str]]:
    return [(r.lineno, r.kind) for r in rows if not r.match]


# ------------------------------------------------------------------------------------------ classification


def test_lines_of_the_domu_log_are_classified() -> None:
    log = read_log(DOMU)
    kinds = {line.lineno: line.kind for line in log.lines}
    assert [kinds[n] for n in range(1, 19)] == [
        "last_pfn", "mapped", "trampoline", "init_memory_mapping", "page_size", "tables", "init_memory_mapping",
        "page_size", "tables", "setting_rw", "ramdisk", "numa", "numa", "numa", "numa", "node_data", "failure",
        "oops_ip",
    ]  # fmt: skip
    assert kinds[60] == "failure" and kinds[19] == "other"  # the panic; the oops' register dump is not read
    assert 24 not in kinds  # the blank line
    nd = log.of("node_data")[0]
    assert (nd.value("a"), nd.value("b")) == (0x1DFFFB000, 0x1E0000000)
    assert log.dialect == "2.6"


def test_xen_lines_are_classified_with_their_fields() -> None:
    log = read_log(DOM0)
    xen = log.of("xen")
    assert [x.lineno for x in xen] == [4, 5, 6, 7]  # "Domain 0 (vcpu#0) crashed" is not compared
    bad = xen[0].fields
    assert (bad["file"], bad["line"], bad["dom"], bad["mfn"], bad["pfn"]) == (
        "mm.c",
        "2466",
        "0",
        "b1d89",
        "bacf7",
    )
    assert [x.kind for x in log.of("raw_console")] == ["raw_console"] * 3


def test_tip_tree_formats_and_other_reservations() -> None:
    log = read_log(AFTER)
    assert log.dialect == "tip-2010"
    assert [x.kind for x in log.lines if "memblock_x86_reserve_range" in x.text] == [
        "reserve", "reserve", "reserve_other",  # CRASH KERNEL is not a reservation xenpin makes
    ]  # fmt: skip
    calls = log.of("init_memory_mapping")
    assert [(c.value("a"), c.value("b")) for c in calls] == [(0, 0x7F750000), (1 << 32, 0x2080000000)]


# ------------------------------------------------------------------------------------------ the machine


def test_mem_overrides_the_logs_size_and_says_so() -> None:
    c = configure(read_log(DOMU), variant("2.6.39-rc6"), mem_bytes=2 << 30)
    assert c.config.mem_bytes == 2 << 30
    assert c.notes == ["memory size from --mem (0x80000000 bytes), not from the log"]


def test_domu_machine_from_92bdaef7b2c5() -> None:
    c = configure(read_log(DOMU), variant("2.6.39-rc6"))
    cfg = c.config
    assert (cfg.role, cfg.mem_bytes, cfg.nr_pages) == ("domU", 0x1E0000000, 0x1E0000)  # a 7.5 GiB domU
    assert (cfg.kernel_bytes, cfg.ramdisk_bytes) == (0x103B000, 0xBFF000)  # RAMDISK: 0203b000 - 02c3a000
    assert (cfg.node_data_bytes, cfg.trampoline_bytes) == (0x5000, 20480)
    assert c.notes == ["memory: 0x1e0000000 bytes (0x1e0000 pages), which 2.6.39-rc6's xen_memory_setup turns"
                       " into max_pfn 0x1e0800"]  # fmt: skip


def test_native_machine_from_4b239f458() -> None:
    c = configure(read_log(BEFORE), variant("2.6.38-native"))
    cfg = c.config
    assert cfg.role == "native" and not cfg.gbpages and cfg.printk == "tip-2010"
    assert cfg.ramdisk_start == 0x7BC84000 and cfg.ramdisk_bytes == 0x7F745000 - 0x7BC84000
    assert cfg.e820.end_of_ram_pfn() == 0x2080000 and cfg.e820.end_of_low_ram_pfn() == 0x7F750
    assert any("no E820" in n for n in c.notes)


def test_a_log_without_layout_facts() -> None:
    """a38647837a41's dom0 log has Xen's lines but nothing that gives the memory size."""
    log = read_log(DOM0)
    with pytest.raises(LogError) as info:
        configure(log, variant("2.6.39-rc1"))
    assert (
        str(info.value)
        == f"{DOM0}:1: no line gives the memory size (last_pfn, init_memory_mapping, E820) of this dom0; give --mem and the host's map with --e820"
    )
    with pytest.raises(LogError, match=r":1: a dom0 boots on the host's E820 .* give it with --e820 FILE$"):
        configure(log, variant("2.6.39-rc1"), mem_bytes=3 << 30)


def test_dom0_log_with_the_missing_facts_given() -> None:
    """With --mem and --e820 the machine boots into the same failure: Xen's build line numbers and the p2m
    come from the log (mfn b1d89 < pfn bacf7: a debug Xen's reversed p2m above v_end)."""
    log = read_log(DOM0)
    c, result, rows = _rows(log, "2.6.39-rc1", mem_bytes=3 << 30, e820=HOST)
    assert c.config.role == "dom0" and c.config.domain_id == 0
    assert c.config.p2m.step == -1 and c.config.p2m.mfn(0xBACF7) == 0xB1D89
    assert dict(c.config.xen_build_lines) == {
        "Bad type": ("mm.c", 2466), "Error while pinning": ("mm.c", 3027), "Unhandled": ("traps.c", 481),
    }  # fmt: skip
    assert result.outcome == "xen-rejected"
    assert [r.kind for r in rows] == ["raw_console"] * 3 + ["xen"] * 4  # "Domain 0 crashed" is not compared
    assert _differ(rows) == [(4, "xen"), (5, "xen")]  # the same lines for another failing page of this host
    assert rows[3].predicted.startswith(
        "(XEN) mm.c:2466:d0 Bad type (saw 7400000000000001 != exp 1000000000000000)"
    )


# ------------------------------------------------------------------------------------------ comparing


def test_92bdaef7b2c5_reproduces_on_2_6_39_rc6() -> None:
    _, result, rows = _rows(read_log(DOMU), "2.6.39-rc6")
    assert len(rows) == 19 and all(r.match for r in rows)
    assert result.failure.function == "setup_node_bootmem"


def test_92bdaef7b2c5_against_the_seed() -> None:
    """2.6.39 boots the same machine: the buffers and the first tail's RW line are the same, the oops is gone."""
    _, result, rows = _rows(read_log(DOMU), "2.6.39")
    assert result.outcome == "ok"
    assert _differ(rows) == [(17, "failure"), (18, "oops_ip"), (60, "failure")]
    assert all(r.predicted is None for r in rows if not r.match)


@pytest.mark.parametrize(
    ("log", "name", "differ"),
    [
        (BEFORE, "2.6.38-native", []),
        (AFTER, "2.6.39-native", []),
        (AFTER, "2.6.38-native", [(5, "tables"), (6, "reserve"), (9, "tables"), (10, "reserve")]),
        (BEFORE, "2.6.39-native", [(5, "tables"), (6, "reserve"), (9, "tables"), (10, "reserve")]),
    ],
)
def test_4b239f458_before_and_after(log: Path, name: str, differ: list) -> None:
    _, _, rows = _rows(read_log(log), name)
    assert len(rows) == 11 and _differ(rows) == differ
    if differ:
        wrong = {r.lineno: r for r in rows}
        high = "@ [0x7f74c000-0x7f74ffff]"  # the buffer at the top of the range: 4b239f458
        assert (high in wrong[5].logged) != (high in wrong[5].predicted)


# ------------------------------------------------------------------------------------------ pasted logs


def _variants(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    return {
        "timestamps": [f"[    0.000000] {line}" for line in lines],
        "levels": [f"<7>{line}" for line in lines],
        "both": [f"<6>[    0.000000] {line}\r" for line in lines],
        "crlf": [f"{line}\r\n" for line in lines],
        "collapsed": [" ".join(line.split()) for line in lines],
        "indented": [f"   {line}" for line in lines],
    }


@pytest.mark.parametrize("how", sorted(_variants("")))
def test_pasted_logs_read_the_same(how: str) -> None:
    original = read_log(DOMU)
    pasted = parse_log(_variants(DOMU.read_text())[how], "pasted.log")
    assert [(x.lineno, x.kind) for x in pasted.lines] == [(x.lineno, x.kind) for x in original.lines]
    assert (
        configure(pasted, variant("2.6.39-rc6")).config == configure(original, variant("2.6.39-rc6")).config
    )
    _, _, rows = _rows(pasted, "2.6.39-rc6")
    assert len(rows) == 19 and all(r.match for r in rows), [r for r in rows if not r.match]


def test_an_excerpt_matches_in_order() -> None:
    lines = DOMU.read_text().splitlines()
    excerpt = parse_log(lines[5:11] + lines[15:17], "excerpt.log")  # tables .. RAMDISK, NODE_DATA, the oops
    _, _, rows = _rows(excerpt, "2.6.39-rc6")
    assert [r.kind for r in rows] == ["tables", "init_memory_mapping", "page_size", "tables", "setting_rw",
                                      "ramdisk", "node_data", "failure"]  # fmt: skip
    assert all(r.match for r in rows)
    swapped = parse_log([lines[8], lines[5]], "swapped.log")  # the two tables lines out of order
    _, _, rows = _rows(swapped, "2.6.39-rc6", mem_bytes=0x1E0000000)
    assert [r.match for r in rows] == [True, False]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 8, ":1: no early-boot line xenpin reads"),
        (b"", ":1: no early-boot line xenpin reads"),
        (b"Linux version 2.6.39\nCommand line: ro\n", ":1: no early-boot line xenpin reads"),
    ],
)
def test_unreadable_logs(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(content)
    with pytest.raises(LogError) as info:
        read_log(path)
    assert str(info.value).startswith(f"{path}{message}") and "\n" not in str(info.value)


def test_missing_log(tmp_path: Path) -> None:
    with pytest.raises(LogError, match=r"nope\.log: cannot read: No such file or directory$"):
        read_log(tmp_path / "nope.log")
    with pytest.raises(LogError, match=r": cannot read: Is a directory$"):
        read_log(tmp_path)
