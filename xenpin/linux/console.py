"""What the guest's console shows during early boot, line by line, in the printk formats of each release.

The formats are those of the releases' own source (checked at 2.6.37, 2.6.38, 2.6.39-rc1, 2.6.39, 3.0, 3.1 and
3.9.6): `init_memory_mapping: %016lx-%016lx` (arch/x86/mm/init.c), ` %010lx - %010lx page %s`, `kernel direct
mapping tables up to %lx @ %lx-%lx` (`find_early_table_space`: end, `pgt_buf_start << PAGE_SHIFT`,
`pgt_buf_top << PAGE_SHIFT`), `    memblock_x86_reserve_range: [%#010llx-%#010llx] %16s` (memblock=debug),
`xen: setting RW the range %llx - %llx` (`xen_mapping_pagetable_reserve`, `mark_rw_past_pgt`), `RAMDISK: %08llx -
%08llx` (`reserve_initrd`), `initial memory mapped : 0 - %08lx` (`setup_arch`), the NUMA lines of `initmem_init`
and the oops line of `no_context` (arch/x86/mm/fault.c). 3.9 prints `[mem %#010lx-%#010lx]` ranges instead
(end - 1). A third dialect, `tip-2010`, is the x86 tip tree of December 2010 whose lines 4b239f458's own message
shows (`init_memory_mapping: [0x00000000000000-0x0000007f74ffff]`, `... @ [0x1fffc000-0x1fffffff]`).

Each line carries a kind (`init_memory_mapping`, `page_size`, `tables`, `setting_rw`, `reserve`, `ramdisk`,
`mapped`, `numa`, `node_data`, `e820`, `last_pfn`, `trampoline`, `failure`, `xen`), which `boot --dmesg` compares
kind by kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIALECTS = ("2.6", "3.9", "tip-2010")
PAGE_OFFSET = 0xFFFF880000000000


@dataclass(frozen=True)
class Line:
    kind: str
    text: str


@dataclass
class Console:
    """The lines a boot printed, in order, in one dialect's formats."""

    dialect: str = "2.6"
    lines: list[Line] = field(default_factory=list)

    def print(self, kind: str, text: str) -> None:
        self.lines.append(Line(kind, text))

    def of_kind(self, kind: str) -> list[str]:
        return [line.text for line in self.lines if line.kind == kind]

    # --------------------------------------------------------------------------- arch/x86/mm/init.c

    def init_memory_mapping(self, start: int, end: int) -> None:
        if self.dialect == "3.9":
            text = f"init_memory_mapping: [mem {start:#010x}-{end - 1:#010x}]"
        elif self.dialect == "tip-2010":
            text = f"init_memory_mapping: [{start:#016x}-{end - 1:#016x}]"
        else:
            text = f"init_memory_mapping: {start:016x}-{end:016x}"
        self.print("init_memory_mapping", text)

    def page_size(self, start: int, end: int, size: str) -> None:
        if self.dialect == "3.9":
            self.print("page_size", f" [mem {start:#010x}-{end - 1:#010x}] page {size}")
        else:
            self.print("page_size", f" {start:010x} - {end:010x} page {size}")

    def tables(self, end: int, start_bytes: int, top_bytes: int) -> None:
        if self.dialect == "tip-2010":
            text = f"kernel direct mapping tables up to {end:x} @ [{start_bytes:#010x}-{top_bytes - 1:#010x}]"
        else:
            text = f"kernel direct mapping tables up to {end:x} @ {start_bytes:x}-{top_bytes:x}"
        self.print("tables", text)

    def brk_pgtable(self, start: int, end: int) -> None:
        """3.9 `alloc_low_pages` from the BRK seed: `BRK [%#010lx, %#010lx] PGTABLE`."""
        self.print("reserve", f"BRK [{start:#010x}, {end - 1:#010x}] PGTABLE")

    # --------------------------------------------------------------------------- arch/x86/xen/mmu.c

    def setting_rw(self, start: int, end: int) -> None:
        self.print("setting_rw", f"xen: setting RW the range {start:x} - {end:x}")

    # --------------------------------------------------------------------------- arch/x86/kernel/setup.c

    def initial_mapped(self, end: int) -> None:
        if self.dialect == "3.9":
            self.print("mapped", f"initial memory mapped: [mem 0x00000000-{end - 1:#010x}]")
        else:
            self.print("mapped", f"initial memory mapped : 0 - {end:08x}")

    def ramdisk(self, start: int, end: int) -> None:
        if self.dialect == "3.9":
            self.print("ramdisk", f"RAMDISK: [mem {start:#010x}-{end - 1:#010x}]")
        else:
            self.print("ramdisk", f"RAMDISK: {start:08x} - {end:08x}")

    def trampoline(self, base: int, size: int) -> None:
        self.print("trampoline", f"Base memory trampoline at [{PAGE_OFFSET + base:x}] {base:x} size {size}")

    # --------------------------------------------------------------------------- arch/x86/mm/numa*.c

    def numa_dummy(self, end: int) -> None:
        self.print("numa", "No NUMA configuration found")
        if self.dialect == "3.9":
            self.print("numa", f"Faking a node at [mem {0:#018x}-{end - 1:#018x}]")
        else:
            self.print("numa", f"Faking a node at {0:016x}-{end:016x}")

    def initmem_node(self, nid: int, start: int, end: int) -> None:
        if self.dialect == "3.9":
            self.print("numa", f"Initmem setup node {nid} [mem {start:#010x}-{end - 1:#010x}]")
        else:
            self.print("numa", f"Initmem setup node {nid} {start:016x}-{end:016x}")

    def node_data(self, start: int, end: int) -> None:
        if self.dialect == "3.9":
            self.print("node_data", f"  NODE_DATA [mem {start:#010x}-{end - 1:#010x}]")
        else:
            self.print("node_data", f"  NODE_DATA [{start:016x} - {end - 1:016x}]")

    # --------------------------------------------------------------------------- arch/x86/mm/fault.c

    def oops(self, address: int) -> None:
        """`no_context` -> `show_fault_oops`: `%p` prints NULL as `(null)` right-aligned in 16 columns."""
        if address < 4096:
            self.print("failure", f"BUG: unable to handle kernel NULL pointer dereference at {'(null)':>16}")
        else:
            self.print("failure", f"BUG: unable to handle kernel paging request at {address:016x}")


def reserve_kinds() -> tuple[str, ...]:
    return ("reserve",)


__all__ = ["DIALECTS", "PAGE_OFFSET", "Console", "Line"]
