"""Physical layout of a 64-bit Xen PV guest at `init_memory_mapping` time, and the buffer's size and place.

Mirrors `find_early_table_space` (arch/x86/mm/init.c, 2.6.39 .. 3.8) for sizing, the three placement regimes of
the reference notes (R1 `high`: 4b239f458 puts the buffer at the top of the range being mapped; R2 `low`:
top-down below `max_pfn_mapped`; R3 `mapped`: 3.9+ takes each table page from already-mapped memory), and
the start-of-day state Xen's domain builder leaves: the kernel at 16 MiB, then start_info and the p2m list,
then the bootstrap page tables, all mapped by those tables up to `max_pfn_mapped` (rounded up to 4 MiB).
All quantities are PFNs unless named `*_bytes`. Pseudo-physical and machine frames coincide (identity p2m).
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PTRS_PER_TABLE = 512
PFNS_PER_PMD = PTRS_PER_TABLE  # 2 MiB
PFNS_PER_PUD = PTRS_PER_TABLE * PTRS_PER_TABLE  # 1 GiB
FOUR_GIB_PFN = 1 << (32 - PAGE_SHIFT)

KERNEL_START_PFN = 0x1000  # CONFIG_PHYSICAL_START = 16 MiB
KERNEL_PAGES = 0x1000  # a 16 MiB image (text, data, bss, brk)
LOW_FREE_START_PFN = 0x100  # the first MiB stays reserved
PADDING_PAGES = 128  # Xen's 512 KiB of slack after the bootstrap tables
ROUND_4M = 1 << (22 - PAGE_SHIFT)


def roundup(x: int, to: int) -> int:
    return -(-x // to) * to


def pfn_phys(pfn: int) -> int:
    """`PFN_PHYS`."""
    return pfn << PAGE_SHIFT


def find_early_table_space_pages(end_pfn: int) -> int:
    """Pages `find_early_table_space(end, use_pse=0, use_gbpages=0)` reserves for mapping `[0, end)`.

    `tables = roundup(8*puds, 4K) + roundup(8*pmds, 4K) + roundup(8*ptes, 4K)`: Xen PV has neither PSE nor 1G.
    """
    end = pfn_phys(end_pfn)
    puds = -(-end // (1 << 30))
    pmds = -(-end // (1 << 21))
    ptes = -(-end // PAGE_SIZE)
    tables = roundup(8 * puds, PAGE_SIZE) + roundup(8 * pmds, PAGE_SIZE) + roundup(8 * ptes, PAGE_SIZE)
    return tables >> PAGE_SHIFT


@dataclass(frozen=True)
class BootLayout:
    """Where things are before the kernel maps memory."""

    max_pfn: int
    max_low_pfn: int  # the first `init_memory_mapping` call covers [0, max_low_pfn)
    boot_tables_start: int  # Xen's bootstrap L4, L3s, L2s, L1s (pt_base), mapped RO
    boot_tables_pages: int
    max_pfn_mapped: int  # everything below is mapped by the bootstrap tables

    @property
    def calls(self) -> list[tuple[int, int]]:
        """The `init_memory_mapping(start, end)` calls `setup_arch` makes, in PFNs."""
        out = [(0, self.max_low_pfn)]
        if self.max_pfn > FOUR_GIB_PFN:
            out.append((FOUR_GIB_PFN, self.max_pfn))
        return out


def boot_layout(mem_bytes: int) -> BootLayout:
    """Xen's start-of-day layout for a guest of `mem_bytes` (see the module docstring)."""
    max_pfn = mem_bytes >> PAGE_SHIFT
    p2m_pages = roundup(max_pfn * 8, PAGE_SIZE) >> PAGE_SHIFT
    after_kernel = KERNEL_START_PFN + KERNEL_PAGES + 1 + p2m_pages  # + start_info
    # Bootstrap tables: L4, the kernel-map L3/L2, the direct-map L3/L2, and one L1 per 2 MiB they map; the L1
    # count depends on the mapped size, which includes the tables: iterate to the fixed point.
    l1s = 0
    while True:
        tables = 6 + l1s  # L4, 2 L3 and 2 L2 (kernel map, direct map), the fixmap L1, the direct-map L1s
        mapped = roundup(after_kernel + tables + PADDING_PAGES, ROUND_4M)
        need = -(-mapped // PFNS_PER_PMD)
        if need == l1s:
            break
        l1s = need
    if mapped > max_pfn:
        raise ValueError(
            f"{mem_bytes:#x} bytes is too small: Xen's start-of-day mapping needs {pfn_phys(mapped):#x} bytes"
        )
    return BootLayout(
        max_pfn=max_pfn,
        max_low_pfn=min(max_pfn, FOUR_GIB_PFN),
        boot_tables_start=after_kernel,
        boot_tables_pages=tables,
        max_pfn_mapped=mapped,
    )


def parse_size(text: str) -> int:
    """`"4G"`, `"512M"`, `"0x1000000"` -> bytes; raise ValueError with the accepted forms."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 10, "M": 20, "G": 30, "T": 40}
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * (1 << units[t[-1]]))
        return int(t, 0)
    except (ValueError, OverflowError):  # OverflowError: "infG"
        raise ValueError(f"bad memory size {text!r} (use e.g. 512M, 4G, 6GiB or a byte count)") from None
