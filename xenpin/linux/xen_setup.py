"""`xen_memory_setup` (arch/x86/xen/setup.c): the E820 a PV guest boots with, and Xen's early reservations.

One function per the releases' code (`VERSIONS`, the variant's `[code] xen_memory_setup`), read in each release:
2.6.37: `max_pfn = min(MAX_DOMAIN_PAGES, nr_pages)` (CONFIG_XEN_MAX_DOMAIN_MEMORY, 128 GiB since 58e05027b53),
`mem_end = PFN_PHYS(max_pfn)`; the map is the host's for dom0 (`XENMEM_machine_memory_map`) and, for a domU, one
RAM entry `[0, mem_end + 8 MiB)` (the `-ENOSYS` fallback's "8MB slack (to balance backend allocations)"; Xen
4.1's xl sets the same map with `xc_domain_set_memmap_limit(max_memkb + slack_memkb)`). RAM past `mem_end` is cut
off and counted as extra pages; `xen_extra_mem_start` starts at `mem_end` and moves past every entry that ends
above it. The ISA hole `[0xa0000, 0x100000)` is reserved, `[mfn_list, pt_base)` is reserved as "XEN START INFO",
dom0's RAM pfns inside E820 holes are given back (`xen_return_unused_memory`), and the extra pages -- at most 10x
the base -- become RAM at `xen_extra_mem_start`, reserved as "XEN EXTRA".
2.6.38: RAM entries lose their unaligned tail (7cb31b752c7, "Guard against non-page aligned E820 entries").
2.6.39-rc1: dom0's RAM past `mem_end` below 4 GiB becomes E820_UNUSABLE (2f14ddc3a71); non-RAM and gaps of the
raw map are set 1-1 in the p2m, "Set %ld page(s) to 1-1 mapping." (68df0da7f42, `xen_set_identity`).
2.6.39-rc5 .. 2.6.39.x: `xen_extra_mem_start = max(1ULL << 32, mem_end)` (24bdb0b62cc8).
3.0-rc4 .. 3.0.x: back at `mem_end`, for dom0 at least 4 GiB (acd049c6e99d); `xen_set_identity` skips
E820_UNUSABLE like RAM (0d97559675b).
3.1: the extra pages are clamped to `xen_get_max_pages()` (XENMEM_maximum_reservation, d312ae878b6): Xen 4.1's xl
gives a domU `target_memkb + LIBXL_MAXMEM_CONSTANT` (1 MiB) of it, so only 256 pages of the 8 MiB slack become
XEN EXTRA; construct_dom0's `~0U` leaves dom0 at MAX_DOMAIN_PAGES. `xen_release_chunk` prints "Freeing  %lx-%lx
pfn range: %lu pages freed".
3.9 (read at 3.9.6): `xen_get_max_pages` is `MAX_DOMAIN_PAGES` (CONFIG_XEN_MAX_DOMAIN_MEMORY = 500 GiB) for a domU
and the maximum reservation for dom0, so every RAM page past `mem_end` becomes extra, at most 10x the base; RAM
past that would be E820_UNUSABLE. (`xen_set_identity_and_release`'s release of dom0's holes, its lines and the
extend_brk of `set_phys_range_identity` are not modelled for 3.9.)
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

VERSIONS = ("2.6.37", "2.6.38", "2.6.39-rc1", "2.6.39-rc5", "3.0-rc4", "3.1", "3.9")
# CONFIG_XEN_MAX_DOMAIN_MEMORY's x86-64 default, in GiB: 128 from 2.6.37 (58e05027b53), 500 in 3.9
MAX_DOMAIN_PAGES = (128 << 30) >> PAGE_SHIFT
MAX_DOMAIN_PAGES_39 = (500 << 30) >> PAGE_SHIFT
EXTRA_MEM_RATIO = 10
LIBXL_MAXMEM_CONSTANT_PAGES = 1024 >> 2  # Xen 4.1 libxl: setmaxmem(target_memkb + 1024)
DOM0_MAX_PAGES = 0xFFFFFFFF  # Xen 4.1 construct_dom0: d->max_pages = ~0U
FOUR_GIB = FOUR_GIB_PFN << PAGE_SHIFT


def since(version: str, first: str) -> bool:
    """Whether `xen_memory_setup` of `version` has the change that came with `first`."""
    return VERSIONS.index(version) >= VERSIONS.index(first)


def max_domain_pages(version: str) -> int:
    return MAX_DOMAIN_PAGES_39 if version == "3.9" else MAX_DOMAIN_PAGES


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
    max_reservation: int | None = None,
) -> MemorySetup:
    """The release's `xen_memory_setup` (`version`: one of `VERSIONS`); reserves in `memblock`. `host` is the
    host's map for dom0, None for a domU (whose map is `[0, mem_end + slack)`). Pfns `mfn_list`, `pt_base`;
    `max_reservation` is XENMEM_maximum_reservation in pages (default: Xen 4.1's, `maximum_reservation`)."""
    max_pfn = min(max_domain_pages(version), nr_pages)
    mem_end = max_pfn << PAGE_SHIFT
    raw = list(host.map) if host is not None else [E820Entry(0, mem_end + slack, E820_RAM)]
    if version == "3.9":
        return _memory_setup_39(max_pfn, raw, memblock, mfn_list, pt_base)
    e820 = E820()
    extra_start = max(FOUR_GIB, mem_end) if version == "2.6.39-rc5" else mem_end
    extra_pages = 0
    for entry in raw:
        addr, size, type_ = entry.addr, entry.size, entry.type
        if type_ == E820_RAM and since(version, "2.6.38"):
            size -= (size + addr) % PAGE_SIZE  # "Guard against non-page aligned E820 entries."
        end = addr + size
        if type_ == E820_RAM and end > mem_end:  # "RAM off the end - may be partially included"
            delta = min(size, end - mem_end)
            size -= delta
            end -= delta
            extra_pages += delta >> PAGE_SHIFT
            if delta and dom0 and end < FOUR_GIB and since(version, "2.6.39-rc1"):
                e820.add_region(
                    end, delta, E820_UNUSABLE
                )  # "Set RAM below 4GB that is not for us to be unusable"
        if size > 0 and end > extra_start:
            extra_start = end
        if size > 0:
            e820.add_region(addr, size, type_)
    if since(version, "3.0-rc4") and dom0 and extra_start < FOUR_GIB:
        extra_start = (
            FOUR_GIB  # "Align the balloon area so that max_low_pfn does not get set to be at the _end_"
        )
    e820.add_region(ISA_START_ADDRESS, ISA_END_ADDRESS - ISA_START_ADDRESS, E820_RESERVED)
    memblock.reserve(mfn_list << PAGE_SHIFT, pt_base << PAGE_SHIFT, "XEN START INFO")
    e820.sanitize()
    if since(version, "3.1"):  # xen_get_max_pages(): the maximum reservation, at most MAX_DOMAIN_PAGES
        limit = min(maximum_reservation(nr_pages, dom0) if max_reservation is None else max_reservation,
                    MAX_DOMAIN_PAGES)  # fmt: skip
        if max_pfn + extra_pages > limit:
            extra_pages = limit - max_pfn if limit > max_pfn else 0
    # xen_release_chunk frees only pfns with an mfn: the p2m covers [0, max_pfn) (xen_build_dynamic_phys_to_machine)
    areas = _return_unused_memory(nr_pages, e820)
    released = [(lo, min(hi, max_pfn)) for lo, hi in areas if lo < max_pfn]
    lines = [_release_chunk_line(version, lo, hi, max(0, min(hi, max_pfn) - lo)) for lo, hi in areas]
    lines.append(f"released {sum(hi - lo for lo, hi in released)} pages of unused memory")
    extra_pages += sum(hi - lo for lo, hi in released)
    extra_limit = min(EXTRA_MEM_RATIO * max_pfn, max_pfn + extra_pages)
    extra_pages = extra_limit - max_pfn if extra_limit >= max_pfn else 0
    extra_bytes = extra_pages << PAGE_SHIFT
    if extra_pages:  # xen_add_extra_mem
        e820.add_region(extra_start, extra_bytes, E820_RAM)
        e820.sanitize()
        memblock.reserve(extra_start, extra_start + extra_bytes, "XEN EXTRA")
    if since(version, "2.6.39-rc1"):
        ranges = _identity_ranges(raw, dom0, skip_unusable=since(version, "3.0-rc4"))
        lines.extend(f"1-1 mapping on {lo:x}->{hi:x}" for lo, hi in ranges)  # set_phys_range_identity
        lines.append(f"Set {sum(hi - lo for lo, hi in ranges)} page(s) to 1-1 mapping.")
    return MemorySetup(e820, extra_start, extra_bytes, tuple(released), tuple(lines))


def maximum_reservation(nr_pages: int, dom0: bool) -> int:
    """XENMEM_maximum_reservation (`d->max_pages`) of a guest Xen 4.1 built: construct_dom0's `~0U`, or what xl's
    `libxl__build_pre` sets for a domU, `target_memkb + LIBXL_MAXMEM_CONSTANT`."""
    return DOM0_MAX_PAGES if dom0 else nr_pages + LIBXL_MAXMEM_CONSTANT_PAGES


def _release_chunk_line(version: str, lo: int, hi: int, freed: int) -> str:
    if since(version, "3.1"):
        return f"Freeing  {lo:x}-{hi:x} pfn range: {freed} pages freed"
    return f"xen_release_chunk: looking at area pfn {lo:x}-{hi:x}: {freed} pages freed"


def _identity_ranges(raw: list[E820Entry], dom0: bool, skip_unusable: bool) -> list[tuple[int, int]]:
    """`xen_set_identity` over the raw (unsanitized) map: the pfn ranges of non-RAM entries and gaps between RAM,
    from 0 for dom0 and from 1 MiB for a domU, that `set_phys_range_identity` sets 1-1."""
    last = 0 if dom0 else ISA_END_ADDRESS
    start_pci = last
    out: list[tuple[int, int]] = []

    def identity(start: int, end: int) -> None:
        lo, hi = -(-start // PAGE_SIZE), end // PAGE_SIZE  # PFN_UP, PFN_DOWN
        if hi >= lo:  # set_phys_range_identity prints even an empty range, returns 0 for a reversed one
            out.append((lo, hi))

    for entry in raw:
        start, end = max(entry.addr, last), entry.end
        if end <= start:
            continue
        if entry.type == E820_RAM or (skip_unusable and entry.type == E820_UNUSABLE):
            if start > start_pci:
                identity(start_pci, start)
            last = start_pci = end
            continue
        start_pci = min(start, start_pci)
        last = end
    if last > start_pci:
        identity(start_pci, last)
    return out


def _return_unused_memory(nr_pages: int, e820: E820) -> list[tuple[int, int]]:
    """`xen_return_unused_memory`: the areas (pfn ranges) above 1 MiB and below `nr_pages` that no E820 entry
    covers, each handed to `xen_release_chunk`."""
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
