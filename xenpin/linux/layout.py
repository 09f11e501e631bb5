"""The machine a boot runs on (`BootConfig`), and the arithmetic of sizing the early page-table buffer.

`BootConfig` is what the kernel cannot choose: the role (a Xen `domU`, `dom0`, or `native` bare metal), the
memory (a domU's `memory=` in MiB-granular bytes, as `xl` takes it: `nr_pages = memory >> 12`), the E820 the
firmware or Xen hands over (dom0 and native: a host map with holes and unaligned ends; a domU gets none, since
`XENMEM_memory_map` was not implemented for PV guests in 2011, and `xen_memory_setup` makes one RAM entry with
8 MiB of slack), the sizes of the kernel image and the ramdisk (which the domain builder lays out), the p2m, the
CPU's 1 GiB pages (native only: Xen PV guests see neither PSE nor 1 GiB pages) and `sizeof(pg_data_t)`.
The defaults are those of the Ubuntu 2.6.39 `-virtual` domU of 92bdaef7b2c5's log: `_text` at 16 MiB, the image
up to 0x203b000 and the ramdisk up to 0x2c3a000, a 20 KiB NODE_DATA.

`find_early_table_space_pages` is the sizing of `find_early_table_space` (arch/x86/mm/init.c, 2.6.37 .. 3.8):
`tables = roundup(8 * puds, 4K) + roundup(8 * pmds, 4K) + roundup(8 * ptes, 4K)`, where with 1 GiB pages only the
part of `end` past the last 1 GiB boundary needs PMD entries and with PSE only the part past the last 2 MiB
boundary needs PTEs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xenpin.linux.e820 import E820, E820_RAM, E820_RESERVED, E820Entry
from xenpin.xen.domain_builder import P2M

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PTRS_PER_TABLE = 512
PFNS_PER_PMD = PTRS_PER_TABLE  # 2 MiB
PFNS_PER_PUD = PTRS_PER_TABLE * PTRS_PER_TABLE  # 1 GiB
PFNS_PER_PGD = PFNS_PER_PUD * PTRS_PER_TABLE  # 512 GiB
FOUR_GIB_PFN = 1 << (32 - PAGE_SHIFT)
PUD_SIZE = 1 << 30
PMD_SIZE = 1 << 21

ROLES = ("domU", "dom0", "native")
DEFAULT_KERNEL_BYTES = 0x203B000 - 0x1000000  # _text .. the ramdisk of 92bdaef7b2c5's domU
DEFAULT_RAMDISK_BYTES = 0x2C3A000 - 0x203B000
DEFAULT_NODE_DATA_BYTES = (
    0x5000  # roundup(sizeof(pg_data_t), PAGE_SIZE) of that kernel ("NODE_DATA [..fb000 - ..fffff]")
)
DEFAULT_TRAMPOLINE_BYTES = 0x5000  # its "Base memory trampoline at [ffff88000009b000] 9b000 size 20480"
XEN_SLACK_BYTES = 8 << 20  # xen_memory_setup: "8MB slack (to balance backend allocations)"


# What a Xen boot costs in RAM: peak RSS per GiB of guest memory, in GiB. Measured as the slope of ru_maxrss
# between a 4 GiB and a 16 GiB boot of 3.0, each in a process of its own (`python tests/benchmarks/bench_boot.py
# --rss 4G 16G`), on the validator's compact storage (xenpin/xen/storage.py): 72 MiB at 4 GiB, 166 MiB at 16 GiB,
# 0.0077 GiB per GiB (the dict-of-dicts storage before it: 0.23). Rounded up, for the slope's growth at 1 TiB (the
# README has that boot's numbers) and for headroom. Re-measure with the same command when the storage changes.
BOOT_RSS_GIB_PER_GUEST_GIB = 0.01
MAX_PHYSMEM_BITS = 46  # x86-64 (2011): 64 TiB of physical memory is all the direct mapping has room for
_FALLBACK_RAM_BYTES = 16 << 30  # a machine that does not say how much RAM it has


def machine_ram_bytes() -> int:
    """This machine's physical RAM in bytes (`sysconf(_SC_PHYS_PAGES)`, else /proc/meminfo's MemTotal)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and size > 0:
            return pages * size
    except (ValueError, OSError, AttributeError):
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return _FALLBACK_RAM_BYTES


def max_boot_bytes(ram_bytes: int | None = None) -> int:
    """The largest Xen guest a boot can run on a machine of `ram_bytes` of RAM (default: this one): the RAM over
    `BOOT_RSS_GIB_PER_GUEST_GIB`, in whole GiB (at least 1), and at most the architecture's 2**MAX_PHYSMEM_BITS."""
    ram = machine_ram_bytes() if ram_bytes is None else ram_bytes
    gib = max(1, int(ram / (1 << 30) / BOOT_RSS_GIB_PER_GUEST_GIB))
    return min(gib << 30, 1 << MAX_PHYSMEM_BITS)


def max_boot_reason(ram_bytes: int | None = None) -> str:
    """Why `max_boot_bytes` is what it is, in a few words: "100 GiB on this machine: 23.4 GiB of RAM, ..."."""
    ram = machine_ram_bytes() if ram_bytes is None else ram_bytes
    cap = max_boot_bytes(ram)
    if cap == 1 << MAX_PHYSMEM_BITS:
        return f"{cap >> 40} TiB: MAX_PHYSMEM_BITS = {MAX_PHYSMEM_BITS} of x86-64"
    return (
        f"{cap >> 30} GiB on this machine: {ram / (1 << 30):.1f} GiB of RAM, and a boot needs about"
        f" {BOOT_RSS_GIB_PER_GUEST_GIB} GiB of it per GiB of guest"
    )


def roundup(x: int, to: int) -> int:
    return -(-x // to) * to


def pfn_phys(pfn: int) -> int:
    """`PFN_PHYS`."""
    return pfn << PAGE_SHIFT


def find_early_table_space_pages(end_pfn: int, use_pse: bool = False, use_gbpages: bool = False) -> int:
    """Pages `find_early_table_space(end, use_pse, use_gbpages)` reserves for mapping `[0, end)`."""
    end = pfn_phys(end_pfn)
    puds = -(-end // PUD_SIZE)
    tables = roundup(8 * puds, PAGE_SIZE)
    extra = end - ((end >> 30) << 30) if use_gbpages else end
    pmds = -(-extra // PMD_SIZE)
    tables += roundup(8 * pmds, PAGE_SIZE)
    extra = end - ((end >> 21) << 21) if use_pse else end
    ptes = -(-extra // PAGE_SIZE)
    tables += roundup(8 * ptes, PAGE_SIZE)
    return tables >> PAGE_SHIFT


@dataclass(frozen=True)
class BootConfig:
    """The machine and the images a boot starts from (see the module docstring). Sizes in bytes."""

    role: str = "domU"
    mem_bytes: int = 6 << 30  # domU / dom0: nr_pages << PAGE_SHIFT; native: the E820's RAM
    e820: E820 | None = None  # dom0, native: the host's map; domU: None
    slack_bytes: int = (
        XEN_SLACK_BYTES  # domU: its E820 is [0, memory + slack) (the kernel's or libxl's 8 MiB)
    )
    max_reservation: int | None = (
        None  # Xen: XENMEM_maximum_reservation in pages (default: what Xen 4.1 and xl set)
    )
    kernel_bytes: int = DEFAULT_KERNEL_BYTES
    ramdisk_bytes: int = DEFAULT_RAMDISK_BYTES
    ramdisk_start: int | None = None  # native: where the boot loader put it; Xen: right after the kernel
    node_data_bytes: int = DEFAULT_NODE_DATA_BYTES
    trampoline_bytes: int = DEFAULT_TRAMPOLINE_BYTES
    p2m: P2M | None = None  # Xen: the pfn -> mfn table (default: `P2M.default`)
    gbpages: bool = False  # native: cpu_has_gbpages && direct_gbpages
    domid: int | None = None  # Xen's id of the guest (default 0 for dom0, 1 for a domU)
    xen_build_lines: tuple[
        tuple[str, tuple[str, int]], ...
    ] = ()  # Xen source lines of another build than 4.1.0
    printk: str | None = None  # console dialect (`console.DIALECTS`) if not the release's own: "tip-2010"
    # init_memory_mapping call k's buffer at pfn pgt_buf_start[k] instead of the top-down search's choice (it must
    # be a place the search could return: free RAM inside its range); calls past the tuple search as usual
    pgt_buf_start: tuple[int, ...] | None = None

    @property
    def nr_pages(self) -> int:
        return self.mem_bytes >> PAGE_SHIFT

    @property
    def xen(self) -> bool:
        return self.role != "native"

    @property
    def dom0(self) -> bool:
        return self.role == "dom0"

    @property
    def domain_id(self) -> int:
        return self.domid if self.domid is not None else (0 if self.dom0 else 1)

    def guest_p2m(self) -> P2M:
        return self.p2m or P2M.default(self.nr_pages, self.dom0)

    def host_e820(self) -> E820:
        """The native machine's map: the given one, or a PC's (640 KiB, ROM, RAM to 3 GiB, the PCI hole, the
        rest above 4 GiB)."""
        if self.e820 is not None:
            return self.e820
        low = min(self.mem_bytes, 0xC0000000)
        entries = [
            E820Entry(0, 0x9F000, E820_RAM),
            E820Entry(0x9F000, 0x1000, E820_RESERVED),
            E820Entry(0xF0000, 0x10000, E820_RESERVED),
            E820Entry(0x100000, low - 0x100000, E820_RAM),
        ]
        if self.mem_bytes > low:
            entries.append(E820Entry(0xFEC00000, 0x1400000, E820_RESERVED))
            entries.append(E820Entry(1 << 32, self.mem_bytes - low, E820_RAM))
        return E820(entries)


def parse_size(text: str) -> int:
    """`"4G"`, `"1536M"`, `"6GiB"`, `"0x1000000"` -> bytes; raise ValueError with the accepted forms."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 10, "M": 20, "G": 30, "T": 40}
    try:
        if t and t[-1] in units:
            value = float(t[:-1]) * (1 << units[t[-1]])
            if value != int(value):
                raise ValueError
            return int(value)
        return int(t, 0)
    except (ValueError, OverflowError):  # OverflowError: "infG"
        raise ValueError(f"bad memory size {text!r} (use e.g. 1536M, 4G, 6GiB or a byte count)") from None


__all__ = [
    "BOOT_RSS_GIB_PER_GUEST_GIB",
    "FOUR_GIB_PFN",
    "MAX_PHYSMEM_BITS",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PFNS_PER_PMD",
    "PFNS_PER_PUD",
    "PTRS_PER_TABLE",
    "ROLES",
    "BootConfig",
    "find_early_table_space_pages",
    "machine_ram_bytes",
    "max_boot_bytes",
    "max_boot_reason",
    "parse_size",
    "pfn_phys",
    "roundup",
]
