"""The E820 map (arch/x86/kernel/e820.c): sanitize_e820_map, e820_end_pfn, e820_print_map and reading it back."""

from __future__ import annotations

import pytest
from hypothesis import given

from xenpin.linux.e820 import (
    E820,
    E820_RAM,
    E820_RESERVED,
    E820_UNUSABLE,
    MAX_ARCH_PFN,
    E820Entry,
    E820Error,
    end_pfn_line,
    match_e820_line,
    parse_e820_lines,
    strip_timestamp,
)
from xenpin.strategies import disjoint_e820_maps, e820_spans

E820_ACPI = 3
E820_RESERVED_KERN = 128
G = 1 << 30


def _map(*entries: tuple[int, int, int]) -> E820:
    return E820(E820Entry(a, b - a, t) for a, b, t in entries)


# ------------------------------------------------------------------------------------------ sanitize


def test_sanitize_overlap_goes_to_the_larger_type_and_same_types_merge() -> None:
    e = _map((0, 0x9F000, E820_RAM), (0x9F000, 0xA0000, E820_RAM), (0x80000, 0xA0000, E820_RESERVED))
    e.add_region(0x100000, 0x1000, E820_RAM)
    e.add_region(0x101000, 0, E820_RESERVED)  # an empty region is never added
    e.sanitize()
    assert e.map == [
        E820Entry(0, 0x80000, E820_RAM),
        E820Entry(0x80000, 0x20000, E820_RESERVED),
        E820Entry(0x100000, 0x1000, E820_RAM),
    ]


def test_sanitize_xen_isa_hole_over_a_domu_ram_entry() -> None:
    """xen_memory_setup's one RAM entry and the ISA region it reserves: three entries, as a domU prints them."""
    e = _map((0, 0x60800000, E820_RAM), (0xA0000, 0x100000, E820_RESERVED))
    e.sanitize()
    assert [(x.addr, x.end, x.type) for x in e.map] == [
        (0, 0xA0000, E820_RAM),
        (0xA0000, 0x100000, E820_RESERVED),
        (0x100000, 0x60800000, E820_RAM),
    ]


_entries = e820_spans(max_page=40, max_pages=12, max_size=8)


@given(_entries)
def test_sanitize_is_the_pointwise_largest_type(raw: list[tuple[int, int, int]]) -> None:
    e = E820(E820Entry(a << 12, n << 12, t) for a, n, t in raw)
    e.sanitize()
    for page in range(0, 60):
        covering = [t for a, n, t in raw if a <= page < a + n]
        got = [x.type for x in e.map if x.addr <= page << 12 < x.end]
        assert got == ([max(covering)] if covering else [])
    for x, y in zip(e.map, e.map[1:], strict=False):
        assert x.end <= y.addr and x.size > 0  # sorted, disjoint
        assert not (x.end == y.addr and x.type == y.type)  # merged


# ------------------------------------------------------------------------------------------ end_pfn


def test_end_of_ram_and_low_ram() -> None:
    e = _map((0, 0xA0000, E820_RAM), (0x100000, 0xBF780000, E820_RAM), (0xBF780000, 0xC0000000, E820_ACPI),
             (1 << 32, 0x240000000, E820_RAM))  # fmt: skip
    assert e.end_of_ram_pfn() == 0x240000
    assert e.end_of_low_ram_pfn() == 0xBF780  # RAM below 4 GiB ends at the ACPI tables
    one = _map((0, 0x1E0800000, E820_RAM))
    assert one.end_of_low_ram_pfn() == 0x100000  # an entry across 4 GiB: the limit
    assert one.end_of_ram_pfn() == 0x1E0800
    assert _map((0, 0x1000, E820_RESERVED)).end_of_ram_pfn() == 0
    assert one.end_pfn(0x100000, E820_RESERVED) == 0
    assert _map((0, 1 << 50, E820_RAM)).end_of_ram_pfn() == MAX_ARCH_PFN
    # an unaligned end rounds down, like `(ei->addr + ei->size) >> PAGE_SHIFT`
    assert _map((0, 0x60000FFF, E820_RAM)).end_of_ram_pfn() == 0x60000


def test_end_pfn_line_is_the_kernel_format() -> None:
    assert end_pfn_line(0x100000) == "last_pfn = 0x100000 max_arch_pfn = 0x400000000"


def test_any_mapped_and_ram() -> None:
    e = _map((0, 0xA0000, E820_RAM), (0xA0000, 0x100000, E820_RESERVED), (0x100000, 2 * G, E820_RAM),
             (3 * G, 3 * G + 0x1000, E820_RESERVED_KERN))  # fmt: skip
    assert e.any_mapped(G, 2 * G) and not e.any_mapped(2 * G, 3 * G)
    assert e.any_mapped(0, 0x100000, E820_RESERVED) and not e.any_mapped(G, 2 * G, E820_RESERVED)
    assert e.ram() == [(0, 0xA0000), (0x100000, 2 * G), (3 * G, 3 * G + 0x1000)]  # RESERVED_KERN is RAM


# ------------------------------------------------------------------------------------------ printing


def test_lines_in_both_formats() -> None:
    e = _map((0, 0xA0000, E820_RAM), (0xA0000, 0x100000, E820_RESERVED), (0x100000, 0x100200000, E820_UNUSABLE),
             (0x100200000, 0x100201000, 12), (0x100201000, 0x100202000, E820_RESERVED_KERN))  # fmt: skip
    assert e.lines("Xen") == [
        " Xen: 0000000000000000 - 00000000000a0000 (usable)",
        " Xen: 00000000000a0000 - 0000000000100000 (reserved)",
        " Xen: 0000000000100000 - 0000000100200000 (unusable)",
        " Xen: 0000000100200000 - 0000000100201000 type 12",  # e820_print_type's default: no parentheses
        " Xen: 0000000100201000 - 0000000100202000 (usable)",  # E820_RESERVED_KERN prints as usable
    ]
    assert e.lines("Xen", "3.9") == [
        "Xen: [mem 0x0000000000000000-0x000000000009ffff] usable",
        "Xen: [mem 0x00000000000a0000-0x00000000000fffff] reserved",
        "Xen: [mem 0x0000000000100000-0x00000001001fffff] unusable",
        "Xen: [mem 0x0000000100200000-0x0000000100200fff] type 12",
        "Xen: [mem 0x0000000100201000-0x0000000100201fff] usable",
    ]


@given(disjoint_e820_maps(max_pages=1 << 20, max_size=6))
def test_printed_lines_read_back(e: E820) -> None:
    entries = list(e.map)
    for fmt in ("2.6", "3.9"):
        lines = e.lines("BIOS-e820", fmt)
        assert [match_e820_line(line) for line in lines] == [("BIOS-e820", x) for x in entries]
        assert parse_e820_lines(enumerate(lines, 1), "m") == e


# ------------------------------------------------------------------------------------------ parsing


def test_parse_both_formats_with_timestamps_comments_and_blank_lines() -> None:
    text = [
        "# the host of a38647837a41",
        "[    0.000000]  BIOS-e820: 0000000000000000 - 000000000009f000 (usable)",
        "",
        "<6>[    0.000000] BIOS-e820: [mem 0x000000000009f000-0x000000000009ffff] reserved\r\n",
        " BIOS-e820: 0000000000100000 - 00000000bf780000 (usable)",
        "e820: BIOS-e820: [mem 0x00000000bf780000-0x00000000bf78ffff] ACPI data".removeprefix("e820: "),
        " BIOS-e820: 0000000100000000 - 0000000240000000 (usable)",
    ]
    e = parse_e820_lines(enumerate(text, 1), "host.e820")
    assert e.map == [
        E820Entry(0, 0x9F000, E820_RAM),
        E820Entry(0x9F000, 0x1000, E820_RESERVED),
        E820Entry(0x100000, 0xBF680000, E820_RAM),
        E820Entry(0xBF780000, 0x10000, E820_ACPI),
        E820Entry(1 << 32, 0x140000000, E820_RAM),
    ]


@pytest.mark.parametrize(
    ("lines", "lineno", "what"),
    [
        ([" BIOS-e820: 0000000000000000 - 000000000009f000 (usable)", "garbage"], 2, "not an E820 line"),
        ([" BIOS-e820: 0000000000000000 - 000000000009f000 (bogus)"], 1, "not an E820 line"),
        ([" BIOS-e820: 0000000000001000 - 0000000000001000 (usable)"], 1, "not an E820 line"),  # empty entry
        (
            [
                " BIOS-e820: 0000000000000000 - 00000000000a0000 (usable)",
                " BIOS-e820: 0000000000090000 - 0000000000100000 (reserved)",
            ],
            2,
            "overlaps",
        ),
        (["# only a comment", ""], 1, "no E820 entries"),
        (
            ["BIOS-e820: [mem 0x0-0xfff] usable", " BIOS-e820: 000000000000 - 0000000000001000 (usable)"],
            2,
            "not an E820 line",
        ),
    ],
)
def test_parse_errors_name_file_and_line(lines: list[str], lineno: int, what: str) -> None:
    with pytest.raises(E820Error) as info:
        parse_e820_lines(enumerate(lines, 1), "host.e820")
    message = str(info.value)
    assert message.startswith(f"host.e820:{lineno}: ") and what in message and "\n" not in message


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (
            "[    0.000000] init_memory_mapping: 0000000000000000-0000000100000000",
            "init_memory_mapping: 00000000",
        ),
        ("<7>[   12.345678]  0000000000 - 0100000000 page 4k\r\n", " 0000000000 - 0100000000 page 4k"),
        (
            "<6>  NODE_DATA [00000001dfffb000 - 00000001dfffffff]",
            "  NODE_DATA [00000001dfffb000 - 00000001dff",
        ),
        (
            "   memblock_x86_reserve_range: [0x7f74c000-0x7f74dfff]",
            "   memblock_x86_reserve_range: [0x7f74c000",
        ),
        ("(XEN) mm.c:2424:d1 Bad type", "(XEN) mm.c:2424:d1 Bad type"),
    ],
)
def test_strip_timestamp_keeps_the_kernels_own_leading_spaces(raw: str, text: str) -> None:
    assert strip_timestamp(raw).startswith(text)
    assert not strip_timestamp(raw).endswith(("\r", "\n"))
