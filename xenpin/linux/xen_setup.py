"""`xen_memory_setup` (arch/x86/xen/setup.c): the E820 a PV guest boots with, and Xen's early reservations.

2.6.37 .. 3.1: `max_pfn = min(MAX_DOMAIN_PAGES, nr_pages)`, `mem_end = PFN_PHYS(max_pfn)`; the map is the host's
for dom0 (`XENMEM_machine_memory_map`) and, for a domU of 2011 (`XENMEM_memory_map` not implemented), one RAM
entry `[0, mem_end + 8 MiB)` ("8MB slack (to balance backend allocations)"). RAM entries lose their unaligned tail
(2.6.38+); RAM past `mem_end` is cut off and counted as extra pages (dom0: below 4 GiB it becomes E820_UNUSABLE);
`xen_extra_mem_start` starts at `mem_end` (2.6.37 .. 2.6.39-rc4, and for a domU again from 3.0-rc4),
`max(4G, mem_end)` (24bdb0b62cc8: 2.6.39-rc5 .. 2.6.39.x) or, for dom0 from 3.0-rc4, at least 4 GiB, and moves past
every entry that ends above it. The ISA hole `[0xa0000, 0x100000)` is reserved, `[mfn_list, pt_base)` is
reserved as "XEN START INFO", dom0's RAM pfns inside E820 holes are given back (`xen_return_unused_memory`),
and the extra pages -- at most 10x the base -- become RAM at `xen_extra_mem_start`, reserved as "XEN EXTRA".
3.9 (read at 3.9.6): `xen_get_max_pages` is `MAX_DOMAIN_PAGES` (CONFIG_XEN_MAX_DOMAIN_MEMORY = 500 GiB) for a domU
and the maximum reservation (`~0U` under Xen 4.1's construct_dom0) for dom0, so every RAM page past `mem_end`
becomes extra, at most 10x the base; RAM past that would be E820_UNUSABLE. (`xen_set_identity_and_release`'s
release of dom0's holes is not modelled for 3.9.)
"""

from __future__ import annotations

from dataclasses import dataclass

from xenpin.linux.e820 import (
    E820,
    E820_RAM,
    E820_RESERVED,
    E820_UNUSABLE,
    FOUR_GIB_PFN,
    ISA_END_ADDRESS,
    ISA_START_ADDRESS,
    E820Entry,
)
from xenpin.linux.layout import PAGE_SHIFT, PAGE_SIZE, XEN_SLACK_BYTES
from xenpin.linux.memblock import Memblock

MAX_DOMAIN_PAGES = 1 << (46 - PAGE_SHIFT)  # x86-64: MAX_PHYSMEM_BITS
EXTRA_MEM_RATIO = 10
MAX_DOMAIN_PAGES_39 = (
    500 << 30
) >> PAGE_SHIFT  # 3.9: CONFIG_XEN_MAX_DOMAIN_MEMORY default 500 (GiB) on x86-64
FOUR_GIB = FOUR_GIB_PFN << PAGE_SHIFT


@dataclass(frozen=True)
class MemorySetup:
    e820: E820
    extra_start: int  # bytes
    extra_bytes: int
    released: tuple[tuple[int, int], ...]  # pfn ranges whose memory went back to Xen (no mfn any more)
    lines: tuple[str, ...]  # what it printed


def xen_memory_setup(
    nr_pages: int,
    host: E820 | None,
    dom0: bool,
    version: str,
    memblock: Memblock,
    mfn_list: int,
    pt_base: int,
    slack: int = XEN_SLACK_BYTES,
) -> MemorySetup:
    """The release's `xen_memory_setup` (`version` = the variant's `[code] xen_extra_mem`); reserves in
    `memblock`. `host` is the host's map for dom0, None for a domU (whose map is `[0, mem_end + slack)`).
    Pfns `mfn_list`, `pt_base`."""
    max_pfn = min(MAX_DOMAIN_PAGES, nr_pages)
    mem_end = max_pfn << PAGE_SHIFT
    raw = list(host.map) if host is not None else [E820Entry(0, mem_end + slack, E820_RAM)]
    if version == "3.9":
        return _memory_setup_39(max_pfn, raw, memblock, mfn_list, pt_base)
    e820 = E820()
    extra_start = max(FOUR_GIB, mem_end) if version == "2.6.39-rc5" else mem_end
    extra_pages = 0
    for entry in raw:
        addr, size, type_ = entry.addr, entry.size, entry.type
        if type_ == E820_RAM:
            size -= (size + addr) % PAGE_SIZE  # "Guard against non-page aligned E820 entries."
        end = addr + size
        if type_ == E820_RAM and end > mem_end:  # "RAM off the end - may be partially included"
            delta = min(size, end - mem_end)
            size -= delta
            end -= delta
            extra_pages += delta >> PAGE_SHIFT
            if delta and dom0 and end < FOUR_GIB:
                e820.add_region(end, delta, E820_UNUSABLE)
        if size > 0 and end > extra_start:
            extra_start = end
        if size > 0:
            e820.add_region(addr, size, type_)
    if version == "3.0-rc4" and dom0 and extra_start < FOUR_GIB:
        extra_start = (
            FOUR_GIB  # "Align the balloon area so that max_low_pfn does not get set to be at the _end_"
        )
    e820.add_region(ISA_START_ADDRESS, ISA_END_ADDRESS - ISA_START_ADDRESS, E820_RESERVED)
    memblock.reserve(mfn_list << PAGE_SHIFT, pt_base << PAGE_SHIFT, "XEN START INFO")
    e820.sanitize()
    released = _return_unused_memory(nr_pages, e820)
    lines = [
        f"xen_release_chunk: looking at area pfn {lo:x}-{hi:x}: {hi - lo} pages freed" for lo, hi in released
    ]
    lines.append(f"released {sum(hi - lo for lo, hi in released)} pages of unused memory")
    extra_pages += sum(hi - lo for lo, hi in released)
    extra_limit = min(EXTRA_MEM_RATIO * max_pfn, max_pfn + extra_pages)
    extra_pages = extra_limit - max_pfn if extra_limit >= max_pfn else 0
    extra_bytes = extra_pages << PAGE_SHIFT
    if extra_pages:  # xen_add_extra_mem
        e820.add_region(extra_start, extra_bytes, E820_RAM)
        e820.sanitize()
        memblock.reserve(extra_start, extra_start + extra_bytes, "XEN EXTRA")
    return MemorySetup(e820, extra_start, extra_bytes, tuple(released), tuple(lines))


def _return_unused_memory(nr_pages: int, e820: E820) -> list[tuple[int, int]]:
    """`xen_return_unused_memory`: pfn ranges above 1 MiB and below `nr_pages` that no E820 entry covers."""
    max_addr = nr_pages << PAGE_SHIFT
    last_end = ISA_END_ADDRESS
    out = []
    for entry in e820.map:
        if last_end >= max_addr:
            break
        end = min(max_addr, entry.addr)
        if last_end < end:
            out.append((-(-last_end // PAGE_SIZE), end // PAGE_SIZE))
        last_end = max(last_end, entry.end)
    if last_end < max_addr:
        out.append((-(-last_end // PAGE_SIZE), max_addr // PAGE_SIZE))
    return [(lo, hi) for lo, hi in out if hi > lo]


def _memory_setup_39(
    max_pfn: int, raw: list[E820Entry], memblock: Memblock, mfn_list: int, pt_base: int
) -> MemorySetup:
    mem_end = max_pfn << PAGE_SHIFT
    extra_pages = max(0, MAX_DOMAIN_PAGES_39 - max_pfn)  # xen_get_max_pages() - max_pfn
    extra_pages = min(EXTRA_MEM_RATIO * max_pfn, extra_pages)
    e820 = E820()
    extra_start, extra_bytes = mem_end, 0
    for entry in sorted(raw, key=lambda e: e.addr):
        addr, size, type_ = entry.addr, entry.size, entry.type
        while size:
            part, t = size, type_
            if type_ == E820_RAM:
                if addr < mem_end:
                    part = min(size, mem_end - addr)
                elif extra_pages:
                    part = min(size, extra_pages << PAGE_SHIFT)
                    extra_pages -= part >> PAGE_SHIFT
                    if not extra_bytes:
                        extra_start = addr
                    extra_bytes += part
                    memblock.reserve(addr, addr + part, "XEN EXTRA")
                else:
                    t = E820_UNUSABLE
            e820.add_region(addr, part, t)
            addr, size = addr + part, size - part
    e820.add_region(ISA_START_ADDRESS, ISA_END_ADDRESS - ISA_START_ADDRESS, E820_RESERVED)
    memblock.reserve(mfn_list << PAGE_SHIFT, pt_base << PAGE_SHIFT, "XEN START INFO")
    e820.sanitize()
    return MemorySetup(e820, extra_start, extra_bytes, (), ())


__all__ = ["MemorySetup", "xen_memory_setup"]
