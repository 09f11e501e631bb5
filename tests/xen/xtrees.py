"""Helpers shared by the Xen model tests: build page-table trees by plain guest stores, read counts back."""

from __future__ import annotations

from dataclasses import dataclass

from xenpin.xen.flags import RW, Entry, P
from xenpin.xen.hypervisor import Hypervisor


def fill(hv: Hypervisor, mfn: int, *entries: tuple[int, int, int]) -> None:
    """Plain guest stores of `(slot, target, flags)` into `mfn` (a frame that is not a live table)."""
    for slot, target, flags in entries:
        r = hv.write(mfn, slot, Entry(target, flags))
        assert r.ok, r


def va_of(l4: int, l3: int, l2: int, l1: int, offset: int = 0) -> int:
    """The canonical virtual address whose walk uses these slot indices (L4 slots 256.. sign-extend bit 47)."""
    va = (l4 << 39) | (l3 << 30) | (l2 << 21) | (l1 << 12) | offset
    return va | 0xFFFF000000000000 if va & 1 << 47 else va


@dataclass(frozen=True)
class Tree:
    l4: int
    l3: int
    l2: int
    l1: int
    rw: int  # data frame mapped RW by the L1
    ro: int  # data frame mapped RO by the L1
    slots: tuple[int, int, int, int]  # L4, L3, L2, L1 slot of the RW mapping (the RO one is the next L1 slot)

    @property
    def tables(self) -> tuple[int, int, int, int]:
        return (self.l4, self.l3, self.l2, self.l1)

    @property
    def va_rw(self) -> int:
        return va_of(*self.slots)

    @property
    def va_ro(self) -> int:
        s4, s3, s2, s1 = self.slots
        return va_of(s4, s3, s2, s1 + 1)


def build_tree(
    hv: Hypervisor,
    l4: int = 1,
    l3: int = 2,
    l2: int = 3,
    l1: int = 4,
    rw: int = 5,
    ro: int = 6,
    slots: tuple[int, int, int, int] = (1, 2, 3, 5),
) -> Tree:
    """A 4-level tree filled in ordinary memory (nothing validated yet): L4 -> L3 -> L2 -> L1 -> {rw, ro}."""
    s4, s3, s2, s1 = slots
    fill(hv, l1, (s1, rw, P | RW), (s1 + 1, ro, P))
    fill(hv, l2, (s2, l1, P | RW))
    fill(hv, l3, (s3, l2, P | RW))
    fill(hv, l4, (s4, l3, P | RW))
    return Tree(l4, l3, l2, l1, rw, ro, slots)


def counts(hv: Hypervisor) -> dict[int, tuple[int, int]]:
    """`mfn -> (type count, general count)` for every frame."""
    return {m: (hv.frame(m).type_count, hv.frame(m).count) for m in hv.frames}


def state(hv: Hypervisor, mfn: int) -> tuple[str, int, int, bool, bool]:
    f = hv.frame(mfn)
    return (f.type_name, f.type_count, f.count, f.validated, f.pinned)
