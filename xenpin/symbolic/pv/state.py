"""The symbolic state of one PV guest as Xen's `mm.c` keeps it: `page_info` and the guest's tables, bounded.

Each frame has `count_info` and `type_info` as 64-bit vectors in `xenpin.xen.frame`'s bit layout (Xen 4.1
x86-64: type in bits 60-63, `PGT_pinned` 59, `PGT_validated` 58, the type count in bits 0-54; `PGC_allocated`
and the general count), and each table slot holds a 64-bit entry as the hardware reads it (`l1e_get_intpte`:
frame number in bits 12-51, the flags xenpin models below and in bit 63); a not-present entry is 0. Beside them:
the base pointer (`v->arch.guest_table`), the GDT frame, and whether Xen's own accounting went wrong (the
`damage` of `Hypervisor`, split into type and general counts).

The bound (`Bound`): the guest owns frames (mfns) `0 .. frames-1`; mfn `frames` is one frame of another domain
(d2), whose state the guest cannot change except through Xen 4.1's `put_superpage`; every larger mfn has no
page (`!mfn_valid`: I/O space). Only the slots in `slots` of each table are modelled; every other slot holds a
not-present entry. The default, 5 frames and slot 0 of each table, is the least in which a safe state has a
writable mapping at all (L4 -> L3 -> L2 -> L1 -> a data page: with 4 frames global safety would hold vacuously,
and `obligations.invariant_witness` says so) and which holds XSA-148's and XSA-182's trees; more slots (`Bound(5,
(0, 1, 256))`: two entries a table and one of Xen's own L4 slots) cover more and cost far more solver time. The
bound is part of every verdict: a proof covers every state within it, not every state of a real machine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import z3

from xenpin.xen.flags import ALL_FLAGS, ENTRIES_PER_TABLE, PAGE_SHIFT, Entry
from xenpin.xen.frame import (
    FRESH_COUNT_INFO,
    PGC_allocated,
    PGT_none,
    PGT_pinned,
    PGT_type_mask,
    PGT_validated,
)
from xenpin.xen.hypervisor import FOREIGN_DOMAIN, GUEST_DOMAIN, Hypervisor

W = 64
BV = z3.BitVecRef
MFN_BITS = 40
MFN_MASK = (1 << MFN_BITS) - 1
ENTRY_BITS = (MFN_MASK << PAGE_SHIFT) | ALL_FLAGS  # every bit an entry of the model may have


@functools.lru_cache(maxsize=4096)
def c(v: int) -> BV:
    """The 64-bit constant `v` (one term per value: the step and the invariants ask for the same few often)."""
    return z3.BitVecVal(v, W)


@dataclass(frozen=True)
class Bound:
    """How much of the machine the symbolic state holds (see the module docstring)."""

    frames: int = 5
    slots: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"a bound needs at least one guest frame, not {self.frames}")
        if not self.slots or list(self.slots) != sorted(set(self.slots)):
            raise ValueError(f"slots must be distinct and in order, not {self.slots}")
        if not all(0 <= s < ENTRIES_PER_TABLE for s in self.slots):
            raise ValueError(f"slots must be in 0..{ENTRIES_PER_TABLE - 1}: {self.slots}")

    @property
    def counter_bits(self) -> int:
        """The low bits of a count the symbolic step does its arithmetic in (`step.Run.counted`): room for every
        holder the bound has (each entry, the pin, the base pointer, the GDT, the allocation) and as many again
        taken within one step, so that no step from a state of the invariants carries out of them (the step
        flags a path that would, and the obligations prove none does)."""
        return (2 * (self.frames * len(self.slots) + 4)).bit_length()

    @property
    def foreign(self) -> int:
        """The mfn of the other domain's frame."""
        return self.frames

    def __str__(self) -> str:
        slots = ", ".join(str(s) for s in self.slots)
        return f"{self.frames} guest frames and 1 foreign, slots {slots} of each table"


DEFAULT_BOUND = Bound()


def shaped(name: str, free: int, fixed: int = 0) -> BV:
    """A 64-bit word whose bits in `free` are variables (one per run of them) and whose other bits are those
    of `fixed`."""
    parts, bit = [], 0
    while bit < W:
        top = bit
        is_free = bool(free >> bit & 1)
        while top < W and bool(free >> top & 1) == is_free:
            top += 1
        width = top - bit
        if is_free:
            parts.append(z3.BitVec(f"{name}.{bit}", width))
        else:
            parts.append(z3.BitVecVal(fixed >> bit & ((1 << width) - 1), width))
        bit = top
    parts.reverse()
    return parts[0] if len(parts) == 1 else z3.Concat(*parts)


def select(values: tuple, index: BV, default):
    """`values[index]` for a symbolic index; `default` past the end. A constant index picks the value itself
    (the same term the `If`s simplify to, built without them)."""
    if z3.is_bv_value(index):
        i = index.as_long()
        return values[i] if i < len(values) else default
    out = default
    for i in reversed(range(len(values))):
        out = z3.If(index == i, values[i], out)
    return out


@dataclass(frozen=True)
class SymState:
    """One symbolic (or constant) state. `count_info`/`type_info` have `frames + 1` items (the foreign frame
    last); `entries[i][j]` is slot `bound.slots[j]` of guest frame `i`."""

    bound: Bound
    count_info: tuple[BV, ...]
    type_info: tuple[BV, ...]
    entries: tuple[tuple[BV, ...], ...]
    baseptr: BV
    has_baseptr: z3.BoolRef
    gdt: BV
    has_gdt: z3.BoolRef
    damage_type: z3.BoolRef
    damage_general: z3.BoolRef

    @classmethod
    def fresh(cls, bound: Bound, prefix: str = "s") -> SymState:
        """Any state of the bound that has the shape `invariants.wellformed` asks of every state: a word's bits
        are variables only where Xen's encoding (and the model) may set them (an entry's frame number and
        flags; a type, `PGT_pinned`, `PGT_validated` and a type count below `2 ** Bound.counter_bits`;
        `PGC_allocated` and a general count below `2 ** Bound.counter_bits` -- wellformed's limits are lower),
        and the foreign frame is as it was created. The words stay 64 bits wide, as Xen's are. Every use of a
        fresh state assumes wellformed of it, so this leaves out no state that matters; it only spares the
        solver words of bits that are always 0."""
        n = bound.frames
        bv = lambda name: z3.BitVec(f"{prefix}.{name}", W)  # noqa: E731
        count = (1 << bound.counter_bits) - 1
        ti_free = PGT_type_mask | PGT_pinned | PGT_validated | count
        return cls(
            bound,
            (
                *(shaped(f"{prefix}.count_info[{m}]", PGC_allocated | count) for m in range(n)),
                c(FRESH_COUNT_INFO),
            ),
            (*(shaped(f"{prefix}.type_info[{m}]", ti_free) for m in range(n)), c(PGT_none)),
            tuple(tuple(shaped(f"{prefix}.pt[{m}][{s}]", ENTRY_BITS) for s in bound.slots) for m in range(n)),
            bv("baseptr"),
            z3.Bool(f"{prefix}.has_baseptr"),
            bv("gdt"),
            z3.Bool(f"{prefix}.has_gdt"),
            z3.Bool(f"{prefix}.damage_type"),
            z3.Bool(f"{prefix}.damage_general"),
        )

    def with_(self, **changes) -> SymState:
        return replace(self, **changes)

    # ------------------------------------------------------------------------------------------ reading

    def ci(self, mfn: BV) -> BV:
        """`count_info` of a guest or the foreign frame (0 for an mfn with no page)."""
        return select(self.count_info, mfn, c(0))

    def ti(self, mfn: BV) -> BV:
        return select(self.type_info, mfn, c(PGT_none))

    def slot_index(self, slot: int) -> int | None:
        try:
            return self.bound.slots.index(slot)
        except ValueError:
            return None

    def entry(self, mfn: BV, slot: int | BV) -> BV:
        """The entry at `slot` of frame `mfn`: 0 (not present) for the foreign frame, an mfn with no page, or a
        slot the bound leaves out."""
        if isinstance(slot, int):
            j = self.slot_index(slot)
            if j is None:
                return c(0)
            return select(tuple(row[j] for row in self.entries), mfn, c(0))
        out = c(0)
        for j, s in reversed(list(enumerate(self.bound.slots))):
            out = z3.If(slot == s, select(tuple(row[j] for row in self.entries), mfn, c(0)), out)
        return out

    def terms(self) -> list:
        """Every component, in a fixed order (for equality and for models)."""
        out: list = [*self.count_info, *self.type_info]
        for row in self.entries:
            out.extend(row)
        out += [self.baseptr, self.has_baseptr, self.gdt, self.has_gdt, self.damage_type, self.damage_general]
        return out

    def same_as(self, other: SymState) -> z3.BoolRef:
        """The states are equal (a base pointer's or GDT's value counts only when it is set)."""
        parts = [
            a == b
            for a, b in zip(self.count_info + self.type_info, other.count_info + other.type_info, strict=True)
        ]
        parts += [
            a == b
            for r, q in zip(self.entries, other.entries, strict=True)
            for a, b in zip(r, q, strict=True)
        ]
        parts += [
            self.has_baseptr == other.has_baseptr,
            z3.Implies(self.has_baseptr, self.baseptr == other.baseptr),
            self.has_gdt == other.has_gdt,
            z3.Implies(self.has_gdt, self.gdt == other.gdt),
            self.damage_type == other.damage_type,
            self.damage_general == other.damage_general,
        ]
        return z3.And(parts)


@dataclass(frozen=True)
class Concrete:
    """A state of the bound with plain values: what a model gives and what a `Hypervisor` holds."""

    count_info: tuple[int, ...]
    type_info: tuple[int, ...]
    entries: tuple[tuple[int, ...], ...]
    baseptr: int | None
    gdt: int | None
    damage_type: bool
    damage_general: bool

    def present(self) -> list[tuple[int, int, Entry]]:
        """`(mfn, slot, entry)` of every present entry, in order (`bound.slots` positions resolved by caller)."""
        return [
            (m, j, Entry((v >> PAGE_SHIFT) & MFN_MASK, v & ALL_FLAGS))
            for m, row in enumerate(self.entries)
            for j, v in enumerate(row)
            if v
        ]


def constant(bound: Bound, state: Concrete) -> SymState:
    """The symbolic state with exactly these values."""
    return SymState(
        bound,
        tuple(c(v) for v in state.count_info),
        tuple(c(v) for v in state.type_info),
        tuple(tuple(c(v) for v in row) for row in state.entries),
        c(state.baseptr or 0),
        z3.BoolVal(state.baseptr is not None),
        c(state.gdt or 0),
        z3.BoolVal(state.gdt is not None),
        z3.BoolVal(state.damage_type),
        z3.BoolVal(state.damage_general),
    )


def evaluate(state: SymState, model: z3.ModelRef) -> Concrete:
    """The values of a symbolic state in a model (or of a constant state: any model)."""

    def val(t) -> int:
        return model.eval(t, model_completion=True).as_long()

    def flag(t) -> bool:
        return z3.is_true(model.eval(t, model_completion=True))

    return Concrete(
        tuple(val(t) for t in state.count_info),
        tuple(val(t) for t in state.type_info),
        tuple(tuple(val(t) for t in row) for row in state.entries),
        val(state.baseptr) if flag(state.has_baseptr) else None,
        val(state.gdt) if flag(state.has_gdt) else None,
        flag(state.damage_type),
        flag(state.damage_general),
    )


class OutsideBound(ValueError):
    """A `Hypervisor` state the bound cannot hold."""


def of_hypervisor(hv: Hypervisor, bound: Bound) -> Concrete:
    """The bound's view of a validator built as `witness.fresh_hypervisor(bound)` builds it."""
    n = bound.frames
    guest = [m for m in hv.frames if hv.frame(m).owner == GUEST_DOMAIN]
    foreign = [m for m in hv.frames if hv.frame(m).owner == FOREIGN_DOMAIN]
    if sorted(guest) != list(range(n)) or foreign != [n]:
        raise OutsideBound(f"the validator's frames are not those of the bound ({bound})")
    rows = []
    for m in range(n):
        row = [0] * len(bound.slots)
        for slot, e in hv.entries(m):
            if slot not in bound.slots:
                raise OutsideBound(f"frame {m:#x} has an entry in slot {slot}, which the bound leaves out")
            row[bound.slots.index(slot)] = e.intpte
        rows.append(tuple(row))
    types = {}
    for invariant, _message in hv.damage:
        types[invariant] = True
    return Concrete(
        tuple(hv.frame(m).count_info for m in range(n + 1)),
        tuple(hv.frame(m).type_info for m in range(n + 1)),
        tuple(rows),
        hv.baseptr,
        hv.gdt,
        types.get("type_count", False),
        types.get("general_count", False),
    )


__all__ = [
    "BV",
    "DEFAULT_BOUND",
    "ENTRY_BITS",
    "MFN_MASK",
    "Bound",
    "Concrete",
    "OutsideBound",
    "SymState",
    "W",
    "c",
    "constant",
    "evaluate",
    "of_hypervisor",
    "select",
]
