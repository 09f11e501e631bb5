"""The kernel's own console lines, in each release's printk format (2.6.37 .. 3.1, 3.9, the tip tree of 2010)."""

from __future__ import annotations

from xenpin.linux.console import Console

G = 1 << 30


def _lines(dialect: str, call) -> list[str]:
    c = Console(dialect)
    call(c)
    return [line.text for line in c.lines]


def test_init_memory_mapping_formats() -> None:
    def one(c: Console) -> None:
        c.init_memory_mapping(0, 4 * G)
        c.page_size(0, 4 * G, "4k")
        c.tables(4 * G, 0xFF7FB000, 0x100000000)

    assert _lines("2.6", one) == [
        "init_memory_mapping: 0000000000000000-0000000100000000",  # %016lx-%016lx
        " 0000000000 - 0100000000 page 4k",  # %010lx - %010lx page %s
        "kernel direct mapping tables up to 100000000 @ ff7fb000-100000000",  # end, start << 12, top << 12
    ]
    assert _lines("3.9", one)[:2] == [
        "init_memory_mapping: [mem 0x00000000-0xffffffff]",  # %#010lx, end - 1
        " [mem 0x00000000-0xffffffff] page 4k",
    ]
    assert _lines("tip-2010", one) == [  # 4b239f458's own message
        "init_memory_mapping: [0x00000000000000-0x000000ffffffff]",
        " 0000000000 - 0100000000 page 4k",
        "kernel direct mapping tables up to 100000000 @ [0xff7fb000-0xffffffff]",
    ]


def test_setup_arch_lines() -> None:
    def some(c: Console) -> None:
        c.initial_mapped(0x2C3A000)
        c.ramdisk(0x203B000, 0x2C3A000)
        c.setting_rw(0xFFFDC000, 0x100000000)
        c.trampoline(0x9B000, 20480)
        c.brk_pgtable(0x202F000, 0x2030000)

    assert _lines("2.6", some) == [
        "initial memory mapped : 0 - 02c3a000",
        "RAMDISK: 0203b000 - 02c3a000",
        "xen: setting RW the range fffdc000 - 100000000",
        "Base memory trampoline at [ffff88000009b000] 9b000 size 20480",
        "BRK [0x0202f000, 0x0202ffff] PGTABLE",
    ]
    assert _lines("3.9", some)[:2] == [
        "initial memory mapped: [mem 0x00000000-0x02c39fff]",
        "RAMDISK: [mem 0x0203b000-0x02c39fff]",
    ]


def test_numa_lines() -> None:
    def numa(c: Console) -> None:
        c.numa_dummy(0x1E0800000)
        c.initmem_node(0, 0, 0x1E0800000)
        c.node_data(0x1DFFFB000, 0x1E0000000)

    assert _lines("2.6", numa) == [  # 92bdaef7b2c5's log
        "No NUMA configuration found",
        "Faking a node at 0000000000000000-00000001e0800000",
        "Initmem setup node 0 0000000000000000-00000001e0800000",
        "  NODE_DATA [00000001dfffb000 - 00000001dfffffff]",
    ]
    assert _lines("3.9", numa) == [  # arch/x86/mm/numa.c of 3.9
        "No NUMA configuration found",
        "Faking a node at [mem 0x0000000000000000-0x00000001e07fffff]",
        "Initmem setup node 0 [mem 0x00000000-0x1e07fffff]",
        "  NODE_DATA [mem 0x1dfffb000-0x1dfffffff]",
    ]


def test_oops_line_of_no_context() -> None:
    c = Console()
    c.oops(0)
    c.oops(0xFFFF8800FFFDE000)
    assert c.of_kind("failure") == [
        "BUG: unable to handle kernel NULL pointer dereference at           (null)",  # %p of NULL: 16 wide
        "BUG: unable to handle kernel paging request at ffff8800fffde000",
    ]
