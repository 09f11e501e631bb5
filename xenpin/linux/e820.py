"""The x86 E820 map as the kernel keeps it: entries, `sanitize_e820_map`, the end-of-RAM searches, its printout.

Mirrors arch/x86/kernel/e820.c (2.6.37 .. 3.9): `e820_add_region`, `sanitize_e820_map` (overlaps resolved in
favour of the larger type number, then adjacent entries of one type merged), `e820_end_of_ram_pfn` /
`e820_end_of_low_ram_pfn` (`e820_end_pfn`, with its `last_pfn = %#lx max_arch_pfn = %#lx` line),
`e820_any_mapped` (used by `phys_pud_init`) and `e820_print_map`, whose format changed in 3.x
(` Xen: 0000000000000000 - 00000000000a0000 (usable)` up to 3.1, `Xen: [mem 0x0000000000000000-0x000000000009ffff]
usable` from 3.9). `parse_e820_lines` reads either format back, so a map can be given as the kernel printed it.
Addresses are bytes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4
E820_UNUSABLE = 5
E820_RESERVED_KERN = 128

TYPE_NAMES = {
    E820_RAM: "usable",
    E820_RESERVED: "reserved",
    E820_ACPI: "ACPI data",
    E820_NVS: "ACPI NVS",
    E820_UNUSABLE: "unusable",
    E820_RESERVED_KERN: "usable",  # e820_print_type: "case E820_RAM: case E820_RESERVED_KERN:"
}
_NAME_TYPES = {"usable": E820_RAM, "reserved": E820_RESERVED, "ACPI data": E820_ACPI, "ACPI NVS": E820_NVS}
_NAME_TYPES["unusable"] = E820_UNUSABLE

PAGE_SHIFT = 12
MAX_ARCH_PFN = 1 << (46 - PAGE_SHIFT)  # MAX_PHYSMEM_BITS = 46 on x86-64
FOUR_GIB_PFN = 1 << (32 - PAGE_SHIFT)
ISA_START_ADDRESS = 0xA0000
ISA_END_ADDRESS = 0x100000


@dataclass(frozen=True)
class E820Entry:
    addr: int
    size: int
    type: int

    @property
    def end(self) -> int:
        return self.addr + self.size


class E820Error(ValueError):
    """A map that cannot be used: `str()` names the line and what is wrong."""


class E820:
    """`struct e820map`: a list of entries, kept sanitized by the callers as the kernel does."""

    def __init__(self, entries: Iterable[E820Entry] = ()) -> None:
        self.map: list[E820Entry] = list(entries)

    def add_region(self, addr: int, size: int, type_: int) -> None:
        """`e820_add_region`."""
        if size > 0:
            self.map.append(E820Entry(addr, size, type_))

    def sanitize(self) -> None:
        """`sanitize_e820_map`: at every address the largest type number among the overlapping entries wins;
        adjacent entries of the same type merge. Empty entries vanish."""
        points = sorted({p for e in self.map if e.size > 0 for p in (e.addr, e.end)})
        out: list[E820Entry] = []
        for lo, hi in itertools.pairwise(points):
            types = [e.type for e in self.map if e.size > 0 and e.addr <= lo and e.end >= hi]
            if not types:
                continue
            t = max(types)
            if out and out[-1].type == t and out[-1].end == lo:
                out[-1] = E820Entry(out[-1].addr, hi - out[-1].addr, t)
            else:
                out.append(E820Entry(lo, hi - lo, t))
        self.map = out

    def end_pfn(self, limit_pfn: int, type_: int = E820_RAM) -> int:
        """`e820_end_pfn(limit_pfn, type)`: the end of the last entry of `type` that starts below the limit."""
        last_pfn = 0
        for e in self.map:
            if e.type != type_:
                continue
            start_pfn, end_pfn = e.addr >> PAGE_SHIFT, e.end >> PAGE_SHIFT
            if start_pfn >= limit_pfn:
                continue
            if end_pfn > limit_pfn:
                last_pfn = limit_pfn
                break
            last_pfn = max(last_pfn, end_pfn)
        return min(last_pfn, MAX_ARCH_PFN)

    def end_of_ram_pfn(self) -> int:
        return self.end_pfn(MAX_ARCH_PFN)

    def end_of_low_ram_pfn(self) -> int:
        return self.end_pfn(FOUR_GIB_PFN)

    def any_mapped(self, start: int, end: int, type_: int = 0) -> bool:
        """`e820_any_mapped(start, end, type)`: some entry (of `type`, 0 = any) overlaps `[start, end)`."""
        return any((not type_ or e.type == type_) and e.addr < end and e.end > start for e in self.map)

    def ram_bytes(self) -> int:
        """The bytes of E820_RAM (usable) entries: what a machine or a host has."""
        return sum(e.size for e in self.map if e.type == E820_RAM)

    def ram(self) -> list[tuple[int, int]]:
        """The RAM ranges in bytes, as `memblock_x86_fill` adds them (E820_RAM and E820_RESERVED_KERN)."""
        return [(e.addr, e.end) for e in self.map if e.type in (E820_RAM, E820_RESERVED_KERN)]

    def lines(self, who: str, release_format: str = "2.6") -> list[str]:
        """`e820_print_map(who)` in the release's format ("2.6": 2.6.x .. 3.1; "3.9": `[mem ...]`)."""
        if release_format == "3.9":
            return [f"{who}: [mem {e.addr:#018x}-{e.end - 1:#018x}] {_type_name(e.type)}" for e in self.map]
        return [f" {who}: {e.addr:016x} - {e.end:016x} {_type_text(e.type)}" for e in self.map]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, E820) and self.map == other.map

    def __repr__(self) -> str:
        return f"E820({self.map!r})"


def _type_name(t: int) -> str:
    return TYPE_NAMES.get(t, f"type {t}")


def _type_text(t: int) -> str:
    """2.6's `e820_print_type`: a known type in parentheses, another as `type %u` without."""
    return f"({TYPE_NAMES[t]})" if t in TYPE_NAMES else f"type {t}"


def end_pfn_line(last_pfn: int, release_format: str = "2.6") -> str:
    """The line `e820_end_pfn` prints (3.9: with an `e820: ` prefix)."""
    prefix = "e820: " if release_format == "3.9" else ""
    return f"{prefix}last_pfn = {last_pfn:#x} max_arch_pfn = {MAX_ARCH_PFN:#x}"


_OLD = re.compile(
    r"^\s*(?P<who>[\w-]+): (?P<a>[0-9a-fA-F]{16}) - (?P<b>[0-9a-fA-F]{16}) (?:\((?P<t>[^)]*)\)|(?P<n>type \d+))\s*$"
)
_NEW = re.compile(
    r"^\s*(?P<who>[\w-]+): \[mem 0x(?P<a>[0-9a-fA-F]+)-0x(?P<b>[0-9a-fA-F]+)\] (?P<t>usable|reserved|ACPI data"
    r"|ACPI NVS|unusable|type \d+)\s*$"
)


def match_e820_line(text: str) -> tuple[str, E820Entry] | None:
    """`(who, entry)` if `text` (a console line without its timestamp) is one line of `e820_print_map`."""
    m = _OLD.match(text)
    if m:
        addr, end = int(m["a"], 16), int(m["b"], 16)
    else:
        m = _NEW.match(text)
        if not m:
            return None
        addr, end = int(m["a"], 16), int(m["b"], 16) + 1
    name = m["t"] or m.groupdict().get("n") or ""
    if name.startswith("type "):
        type_ = int(name.split()[1])
    elif name in _NAME_TYPES:
        type_ = _NAME_TYPES[name]
    else:
        return None
    if end <= addr:
        return None
    return m["who"], E820Entry(addr, end - addr, type_)


def parse_e820_lines(lines: Iterable[tuple[int, str]], source: str) -> E820:
    """A map from `(line number, text)` pairs in either print format; every line must be an E820 line.

    Raises E820Error naming `source` and the line when a line is not an E820 entry or entries overlap.
    """
    out = E820()
    for lineno, text in lines:
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        got = match_e820_line(strip_timestamp(text))
        if got is None:
            raise E820Error(
                f"{source}:{lineno}: not an E820 line (expected e.g. ' BIOS-e820: 0000000000000000 - "
                f"000000000009f000 (usable)' or ' BIOS-e820: [mem 0x0000000000000000-0x000000000009efff] usable')"
            )
        entry = got[1]
        if out.map and entry.addr < out.map[-1].end:
            raise E820Error(f"{source}:{lineno}: entry {entry.addr:#x} overlaps or precedes the one before")
        out.map.append(entry)
    if not out.map:
        raise E820Error(f"{source}:1: no E820 entries")
    return out


_TIMESTAMP = re.compile(r"^(?:\s*<\d{1,3}>)?(?:\s*\[\s*\d+\.\d+\]\s?)?")  # either, both or none


def strip_timestamp(text: str) -> str:
    """A console line without its `[    0.000000] ` timestamp and `<7>` level prefix."""
    return _TIMESTAMP.sub("", text.rstrip("\r\n"), count=1)


__all__ = [
    "E820",
    "E820_RAM",
    "E820_RESERVED",
    "E820_UNUSABLE",
    "FOUR_GIB_PFN",
    "ISA_END_ADDRESS",
    "ISA_START_ADDRESS",
    "MAX_ARCH_PFN",
    "E820Entry",
    "E820Error",
    "end_pfn_line",
    "match_e820_line",
    "parse_e820_lines",
    "strip_timestamp",
]
