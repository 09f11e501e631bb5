"""x86-64 page-table entry flags and entry encoding, as Xen and Linux see them.

Mirrors `_PAGE_*` in Xen's `asm-x86/x86_64/page.h` / Linux's `pgtable_types.h`. An entry is
`(mfn << PAGE_SHIFT) | flags`, NX in bit 63, as `l1e_get_intpte` would print it.
"""

from __future__ import annotations

from typing import NamedTuple

PAGE_SHIFT = 12
ENTRIES_PER_TABLE = 512

P = 0x001
RW = 0x002
US = 0x004
A = 0x020
D = 0x040
PSE = 0x080  # PAT in an L1 entry
G = 0x100
NX = 1 << 63

FLAG_NAMES: dict[str, int] = {"P": P, "RW": RW, "US": US, "A": A, "D": D, "PSE": PSE, "G": G, "NX": NX}
ALL_FLAGS = P | RW | US | A | D | PSE | G | NX


class Entry(NamedTuple):
    """A present or non-present page-table entry: the frame it names and its flags."""

    mfn: int
    flags: int

    @property
    def present(self) -> bool:
        return bool(self.flags & P)

    @property
    def intpte(self) -> int:
        """The raw 64-bit value (`l1e_get_intpte`)."""
        return (self.mfn << PAGE_SHIFT) | self.flags

    def __str__(self) -> str:
        return f"mfn {self.mfn:x} {format_flags(self.flags)}"


def parse_flags(text: str) -> int:
    """Parse `"P|RW|NX"` into a flag mask; raise ValueError naming an unknown or empty flag name."""
    mask = 0
    for name in text.split("|"):
        name = name.strip()
        if not name:
            raise ValueError(
                f"empty flag name in {text!r} (flags are |-joined names: {' '.join(FLAG_NAMES)})"
            )
        if name not in FLAG_NAMES:
            raise ValueError(f"unknown flag {name!r} (known: {' '.join(FLAG_NAMES)})")
        mask |= FLAG_NAMES[name]
    return mask


def format_flags(flags: int) -> str:
    """Render a flag mask as `P|RW`; `-` for no flags."""
    names = [name for name, bit in FLAG_NAMES.items() if flags & bit]
    return "|".join(names) if names else "-"
